//! Splits a scanner's byte stream into scans: a scan ends at CR or LF (a CR LF pair is one
//! end), empty lines are skipped, and a line longer than the scan limit is reported once as
//! too long instead of growing a buffer without bound.

use crate::devices::barcode::SCAN_LEN_MAX;

/// One complete line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// The text of the scan (invalid UTF-8 replaced).
    Text(String),
    /// A line longer than [`SCAN_LEN_MAX`] bytes, with its length.
    TooLong(usize),
}

/// Incremental line splitter.
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
    overflow: usize,
}

impl LineSplitter {
    /// An empty splitter.
    pub fn new() -> LineSplitter {
        LineSplitter::default()
    }

    /// Feeds bytes; returns the lines they complete, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Line> {
        let mut lines = Vec::new();
        for &b in bytes {
            if b == b'\r' || b == b'\n' {
                if self.overflow > 0 {
                    lines.push(Line::TooLong(self.overflow));
                } else if !self.buf.is_empty() {
                    lines.push(Line::Text(String::from_utf8_lossy(&self.buf).into_owned()));
                }
                self.buf.clear();
                self.overflow = 0;
            } else if self.overflow > 0 {
                self.overflow = self.overflow.saturating_add(1);
            } else if self.buf.len() == SCAN_LEN_MAX {
                self.overflow = SCAN_LEN_MAX + 1;
                self.buf.clear();
            } else {
                self.buf.push(b);
            }
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cr_lf_and_crlf_end_lines_and_blank_lines_vanish() {
        let mut s = LineSplitter::new();
        assert_eq!(s.push(b"841234"), []);
        assert_eq!(
            s.push(b"5678905\r\n96385074\n\r\nx\r"),
            [
                Line::Text("8412345678905".into()),
                Line::Text("96385074".into()),
                Line::Text("x".into())
            ]
        );
    }

    #[test]
    fn an_endless_line_is_reported_once_as_too_long() {
        let mut s = LineSplitter::new();
        assert_eq!(s.push(&[b'9'; SCAN_LEN_MAX + 5]), []);
        assert_eq!(
            s.push(b"\nok\n"),
            [Line::TooLong(SCAN_LEN_MAX + 5), Line::Text("ok".into())]
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let _ = LineSplitter::new().push(&bytes);
        }
    }
}
