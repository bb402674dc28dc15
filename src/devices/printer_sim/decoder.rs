//! Incremental ESC/POS decoder: bytes from a printer connection in, a paper model out.
//!
//! Bytes may arrive in any split; an incomplete command waits for more input (bounded by the
//! longest command, a `GS ( k` of 64 KiB). Unknown commands are skipped, never fatal. Status
//! queries (`DLE EOT n`) are surfaced so the connection can answer them at once, and a cut
//! ends the current job.

use crate::devices::escpos::builder::{DLE, EOT, ESC, GS};
use crate::devices::escpos::cp858;
use crate::devices::escpos::{Align, StatusKind};

/// Columns of font A on 80 mm paper: text wraps here as on a real printer.
pub const SIM_COLUMNS: usize = 48;
/// Items a single job may hold before it is cut off and saved (a runaway sender).
pub const JOB_ITEMS_MAX: usize = 20_000;
/// Bytes of QR data kept.
const QR_DATA_MAX: usize = 7_089;

/// A run of text in one style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Decoded text.
    pub text: String,
    /// Emphasised.
    pub bold: bool,
    /// Underlined.
    pub underline: bool,
    /// Width multiplier, 1 to 8.
    pub width: u8,
    /// Height multiplier, 1 to 8.
    pub height: u8,
}

/// One thing on the paper roll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A printed line (possibly empty).
    Line {
        /// Alignment in effect for the line.
        align: Align,
        /// Styled runs, left to right.
        runs: Vec<Run>,
    },
    /// A QR code (model 2).
    Qr {
        /// Alignment in effect.
        align: Align,
        /// Module size in printer dots.
        module_dots: u8,
        /// The stored data (lossy UTF-8).
        data: String,
    },
    /// A linear barcode printed with `GS k`.
    Barcode(String),
    /// The cash drawer was kicked (`ESC p`).
    DrawerKick {
        /// Connector pin: 2 or 5.
        pin: u8,
        /// Pulse on-time in milliseconds.
        on_ms: u16,
    },
    /// Paper cut: ends the job.
    Cut,
}

/// What the connection must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A `DLE EOT n` query: answer one status byte now.
    Status(StatusKind),
    /// A finished job (ended by a cut or by reaching [`JOB_ITEMS_MAX`]).
    Job(Vec<Item>),
}

#[derive(Debug, Clone, Copy)]
struct Style {
    bold: bool,
    underline: bool,
    width: u8,
    height: u8,
    align: Align,
    code_page: u8,
}

impl Default for Style {
    fn default() -> Self {
        Style {
            bold: false,
            underline: false,
            width: 1,
            height: 1,
            align: Align::Left,
            code_page: 0,
        }
    }
}

/// Decoder state for one connection.
#[derive(Debug, Default)]
pub struct Decoder {
    pending: Vec<u8>,
    style: Style,
    items: Vec<Item>,
    line: Vec<Run>,
    line_align: Option<Align>,
    line_cols: usize,
    qr_module: u8,
    qr_data: Vec<u8>,
}

enum Step {
    /// The command at the front is incomplete.
    Need,
    /// Consumed this many bytes.
    Took(usize),
}

impl Decoder {
    /// A decoder in the power-on state.
    pub fn new() -> Decoder {
        Decoder {
            qr_module: 3,
            ..Decoder::default()
        }
    }

    /// Feeds bytes; returns status queries and finished jobs in order.
    pub fn feed(&mut self, input: &[u8]) -> Vec<Output> {
        self.pending.extend_from_slice(input);
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < self.pending.len() {
            let bytes = std::mem::take(&mut self.pending);
            let step = self.step(&bytes[pos..], &mut out);
            self.pending = bytes;
            match step {
                Step::Need => break,
                Step::Took(n) => pos += n.max(1),
            }
            let cut = matches!(self.items.last(), Some(Item::Cut));
            if cut || self.items.len() >= JOB_ITEMS_MAX {
                out.push(Output::Job(std::mem::take(&mut self.items)));
            }
        }
        self.pending.drain(..pos.min(self.pending.len()));
        out
    }

    /// Ends the connection: returns what was printed since the last cut, if anything.
    pub fn finish(&mut self) -> Option<Vec<Item>> {
        self.pending.clear();
        if !self.line.is_empty() {
            self.end_line();
        }
        if self.items.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.items))
        }
    }

    fn step(&mut self, b: &[u8], out: &mut Vec<Output>) -> Step {
        match b[0] {
            b'\n' => {
                self.end_line();
                Step::Took(1)
            }
            ESC => self.esc(b),
            GS => self.gs(b),
            DLE => self.dle(b, out),
            b'\t' => {
                self.push_char(' ');
                Step::Took(1)
            }
            c if c < 0x20 || c == 0x7f => Step::Took(1),
            c => {
                let ch = self.decode(c);
                self.push_char(ch);
                Step::Took(1)
            }
        }
    }

    fn decode(&self, c: u8) -> char {
        match (c, self.style.code_page) {
            (0x20..=0x7e, _) => char::from(c),
            (_, 16) => decode_cp1252(c),
            (_, 19) | (_, 2) => cp858::decode_byte(c),
            _ => '?',
        }
    }

    fn esc(&mut self, b: &[u8]) -> Step {
        let Some(&cmd) = b.get(1) else {
            return Step::Need;
        };
        let arg = |i: usize| b.get(i).copied();
        let need = |n: usize| b.len() < n;
        match cmd {
            b'@' => {
                self.style = Style::default();
                Step::Took(2)
            }
            b'E' | b'G' | b'-' | b'a' | b't' | b'd' | b'J' | b'!' | b'M' | b'3' | b'2' | b'r'
            | b'{' | b'V' | b'R' | b' ' => {
                if cmd == b'2' {
                    return Step::Took(2);
                }
                let Some(n) = arg(2) else {
                    return Step::Need;
                };
                self.esc_arg(cmd, n);
                Step::Took(3)
            }
            b'p' => {
                if need(5) {
                    return Step::Need;
                }
                self.items.push(Item::DrawerKick {
                    pin: if b[2] & 1 == 1 { 5 } else { 2 },
                    on_ms: u16::from(b[3]) * 2,
                });
                Step::Took(5)
            }
            _ => Step::Took(2),
        }
    }

    fn esc_arg(&mut self, cmd: u8, n: u8) {
        match cmd {
            b'E' | b'G' => self.style.bold = n & 1 == 1,
            b'-' => self.style.underline = n & 3 != 0,
            b'a' => {
                self.style.align = match n {
                    1 | b'1' => Align::Center,
                    2 | b'2' => Align::Right,
                    _ => Align::Left,
                }
            }
            b't' => self.style.code_page = n,
            b'd' => {
                if !self.line.is_empty() {
                    self.end_line();
                }
                for _ in 0..n.min(32) {
                    self.end_line();
                }
            }
            b'J' => self.end_line(),
            b'!' => {
                self.style.bold = n & 0x08 != 0;
                self.style.height = if n & 0x10 != 0 { 2 } else { 1 };
                self.style.width = if n & 0x20 != 0 { 2 } else { 1 };
                self.style.underline = n & 0x80 != 0;
            }
            _ => {}
        }
    }

    fn gs(&mut self, b: &[u8]) -> Step {
        let Some(&cmd) = b.get(1) else {
            return Step::Need;
        };
        match cmd {
            b'!' => {
                let Some(&n) = b.get(2) else {
                    return Step::Need;
                };
                self.style.width = (n >> 4).min(7) + 1;
                self.style.height = (n & 0x0f).min(7) + 1;
                Step::Took(3)
            }
            b'V' => {
                let Some(&m) = b.get(2) else {
                    return Step::Need;
                };
                let len = if matches!(m, 65 | 66 | 97 | 98 | 103 | 104) {
                    4
                } else {
                    3
                };
                if b.len() < len {
                    return Step::Need;
                }
                if !self.line.is_empty() {
                    self.end_line();
                }
                self.items.push(Item::Cut);
                Step::Took(len)
            }
            b'(' => self.gs_paren(b),
            b'k' => self.gs_k_barcode(b),
            b'v' => gs_v_raster(b),
            b'B' | b'H' | b'h' | b'w' | b'f' | b'a' | b'b' | b'L' | b'W' => {
                let len = if matches!(cmd, b'L' | b'W') { 4 } else { 3 };
                if b.len() < len {
                    Step::Need
                } else {
                    Step::Took(len)
                }
            }
            _ => Step::Took(2),
        }
    }

    fn gs_paren(&mut self, b: &[u8]) -> Step {
        if b.len() < 5 {
            return Step::Need;
        }
        let body_len = usize::from(b[3]) | (usize::from(b[4]) << 8);
        let total = 5 + body_len;
        if b.len() < total {
            return Step::Need;
        }
        let body = &b[5..total];
        if b[2] == b'k' && body.len() >= 3 && body[0] == 49 {
            match body[1] {
                67 => self.qr_module = body[2].clamp(1, 16),
                80 => {
                    let data = &body[3..];
                    self.qr_data = data[..data.len().min(QR_DATA_MAX)].to_vec();
                }
                81 => self.print_qr(),
                _ => {}
            }
        }
        Step::Took(total)
    }

    fn print_qr(&mut self) {
        if self.qr_data.is_empty() {
            return;
        }
        if !self.line.is_empty() {
            self.end_line();
        }
        self.items.push(Item::Qr {
            align: self.style.align,
            module_dots: self.qr_module,
            data: String::from_utf8_lossy(&self.qr_data).into_owned(),
        });
    }

    fn gs_k_barcode(&mut self, b: &[u8]) -> Step {
        let Some(&m) = b.get(2) else {
            return Step::Need;
        };
        let (data, total) = if m <= 6 {
            match b[3..].iter().position(|&c| c == 0) {
                Some(end) => (&b[3..3 + end], 3 + end + 1),
                None if b.len() > 3 + 255 => (&b[3..3 + 255], 3 + 255),
                None => return Step::Need,
            }
        } else {
            let Some(&n) = b.get(3) else {
                return Step::Need;
            };
            let total = 4 + usize::from(n);
            if b.len() < total {
                return Step::Need;
            }
            (&b[4..total], total)
        };
        if !self.line.is_empty() {
            self.end_line();
        }
        self.items
            .push(Item::Barcode(String::from_utf8_lossy(data).into_owned()));
        Step::Took(total)
    }

    fn dle(&mut self, b: &[u8], out: &mut Vec<Output>) -> Step {
        if b.len() < 3 {
            return if b.len() == 2 && b[1] != EOT {
                Step::Took(1)
            } else {
                Step::Need
            };
        }
        if b[1] != EOT {
            return Step::Took(1);
        }
        let kind = match b[2] {
            1 => StatusKind::Printer,
            2 => StatusKind::Offline,
            3 => StatusKind::Error,
            4 => StatusKind::Paper,
            _ => return Step::Took(3),
        };
        out.push(Output::Status(kind));
        Step::Took(3)
    }

    fn push_char(&mut self, c: char) {
        let cols = usize::from(self.style.width);
        if self.line_cols + cols > SIM_COLUMNS {
            self.end_line();
        }
        if self.line_align.is_none() {
            self.line_align = Some(self.style.align);
        }
        self.line_cols += cols;
        let s = self.style;
        match self.line.last_mut() {
            Some(run)
                if run.bold == s.bold
                    && run.underline == s.underline
                    && run.width == s.width
                    && run.height == s.height =>
            {
                run.text.push(c)
            }
            _ => self.line.push(Run {
                text: c.to_string(),
                bold: s.bold,
                underline: s.underline,
                width: s.width,
                height: s.height,
            }),
        }
    }

    fn end_line(&mut self) {
        let align = self.line_align.take().unwrap_or(self.style.align);
        let mut runs = std::mem::take(&mut self.line);
        if runs.is_empty() {
            // An empty line still has the height of the current style.
            runs.push(Run {
                text: String::new(),
                bold: false,
                underline: false,
                width: 1,
                height: self.style.height,
            });
        }
        self.items.push(Item::Line { align, runs });
        self.line_cols = 0;
    }
}

/// `GS v 0 m xL xH yL yH d...`: a raster image, skipped.
fn gs_v_raster(b: &[u8]) -> Step {
    if b.len() < 8 {
        return Step::Need;
    }
    let x = usize::from(b[4]) | (usize::from(b[5]) << 8);
    let y = usize::from(b[6]) | (usize::from(b[7]) << 8);
    let total = 8 + x * y;
    if total > 70_000 {
        // Larger than we buffer: skip the header and let the data print as junk bytes.
        return Step::Took(8);
    }
    if b.len() < total {
        Step::Need
    } else {
        Step::Took(total)
    }
}

fn decode_cp1252(c: u8) -> char {
    const C1: [char; 32] = [
        '€', '?', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '?', 'Ž', '?', //
        '?', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '?', 'ž', 'Ÿ',
    ];
    match c {
        0x80..=0x9f => C1[usize::from(c - 0x80)],
        _ => char::from(c),
    }
}

/// The answer byte to a status query for a printer in the given state.
pub fn status_byte(kind: StatusKind, paper_out: bool, cover_open: bool) -> u8 {
    const FIXED: u8 = 0x12;
    match kind {
        StatusKind::Printer if paper_out || cover_open => FIXED | 0x08,
        StatusKind::Offline if cover_open => FIXED | 0x04,
        StatusKind::Offline if paper_out => FIXED | 0x20,
        StatusKind::Paper if paper_out => FIXED | 0x6c,
        _ => FIXED,
    }
}

#[cfg(test)]
#[path = "decoder_tests.rs"]
mod tests;
