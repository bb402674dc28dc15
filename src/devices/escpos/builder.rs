//! A small ESC/POS command builder for Epson TM-T20/T88-class printers.
//!
//! Each method appends the bytes of one command; [`EscPos::finish`] returns the job. Text goes
//! through the CP858 encoder, so accents and the euro sign print once [`EscPos::init`] selected
//! the code page. Command bytes are named constants; values are clamped to the printer's
//! documented ranges rather than trusted.

use super::cp858;

/// ESC: starts most commands.
pub const ESC: u8 = 0x1b;
/// GS: starts graphics, cut and barcode commands.
pub const GS: u8 = 0x1d;
/// DLE: starts real-time commands (status query).
pub const DLE: u8 = 0x10;
/// EOT: second byte of the real-time status query.
pub const EOT: u8 = 0x04;
/// Line feed: prints the line buffer.
pub const LF: u8 = 0x0a;
/// Largest QR payload we send (the printer's symbol storage holds far more; receipts do not
/// need it).
pub const QR_DATA_LEN_MAX: usize = 700;
/// Longest drawer pulse, in milliseconds: solenoids overheat if held; ESC p counts in 2 ms.
pub const DRAWER_PULSE_MS_MAX: u16 = 500;

/// Horizontal alignment (`ESC a n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Flush left.
    Left = 0,
    /// Centred.
    Center = 1,
    /// Flush right.
    Right = 2,
}

/// QR error correction level (`GS ( k` function 169).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrEcc {
    /// About 7 % recoverable.
    L = 48,
    /// About 15 % recoverable.
    M = 49,
    /// About 25 % recoverable.
    Q = 50,
    /// About 30 % recoverable.
    H = 51,
}

/// Which real-time status `DLE EOT n` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    /// n = 1: printer status (online, drawer sensor).
    Printer = 1,
    /// n = 2: offline cause (cover open, feed button).
    Offline = 2,
    /// n = 3: error cause (cutter, unrecoverable).
    Error = 3,
    /// n = 4: roll paper sensor (near end, end).
    Paper = 4,
}

/// What one status byte says, decoded per the Epson ESC/POS reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrinterStatus {
    /// Printer is offline (n = 1, bit 3).
    pub offline: bool,
    /// Drawer kick-out connector pin 3 is high (n = 1, bit 2).
    pub drawer_open: bool,
    /// Cover is open (n = 2, bit 2).
    pub cover_open: bool,
    /// Paper is running out (n = 4, bits 2-3).
    pub paper_near_end: bool,
    /// No paper (n = 4, bits 5-6).
    pub paper_out: bool,
    /// An error occurred (n = 3, bits 3, 5 or 6).
    pub error: bool,
}

impl PrinterStatus {
    /// Merges the answer byte to a `DLE EOT kind` query into this status. Bytes that lack the
    /// fixed pattern (bit 4 set, bits 0, 1 and 7 clear) are ignored and reported as `false`.
    pub fn absorb(&mut self, kind: StatusKind, byte: u8) -> bool {
        if byte & 0b1001_0011 != 0b0001_0010 {
            return false;
        }
        match kind {
            StatusKind::Printer => {
                self.offline = byte & 0x08 != 0;
                self.drawer_open = byte & 0x04 != 0;
            }
            StatusKind::Offline => self.cover_open = byte & 0x04 != 0,
            StatusKind::Error => self.error = byte & 0x68 != 0,
            StatusKind::Paper => {
                self.paper_near_end = byte & 0x0c != 0;
                self.paper_out = byte & 0x60 != 0;
            }
        }
        true
    }
}

/// Accumulates ESC/POS commands for one job.
#[derive(Debug, Default, Clone)]
pub struct EscPos {
    buf: Vec<u8>,
}

impl EscPos {
    /// An empty job.
    pub fn new() -> EscPos {
        EscPos::default()
    }

    /// `ESC @` (reset) then `ESC t 19` (CP858): the start of every job we print.
    pub fn init(&mut self) -> &mut Self {
        self.buf.extend_from_slice(&[ESC, b'@']);
        self.code_page(cp858::ESC_T_CP858)
    }

    /// `ESC t n`: selects a character code table.
    pub fn code_page(&mut self, n: u8) -> &mut Self {
        self.buf.extend_from_slice(&[ESC, b't', n]);
        self
    }

    /// Text in CP858, without a line feed.
    pub fn text(&mut self, s: &str) -> &mut Self {
        self.buf.extend_from_slice(&cp858::encode(s));
        self
    }

    /// Text and a line feed.
    pub fn line(&mut self, s: &str) -> &mut Self {
        self.text(s);
        self.buf.push(LF);
        self
    }

    /// `ESC d n`: prints and feeds n lines.
    pub fn feed(&mut self, lines: u8) -> &mut Self {
        self.buf.extend_from_slice(&[ESC, b'd', lines]);
        self
    }

    /// `ESC E n`: emphasised (bold) on or off.
    pub fn bold(&mut self, on: bool) -> &mut Self {
        self.buf.extend_from_slice(&[ESC, b'E', u8::from(on)]);
        self
    }

    /// `ESC - n`: underline on or off.
    pub fn underline(&mut self, on: bool) -> &mut Self {
        self.buf.extend_from_slice(&[ESC, b'-', u8::from(on)]);
        self
    }

    /// `GS ! n`: character width and height multipliers, each clamped to 1..=8.
    pub fn size(&mut self, width: u8, height: u8) -> &mut Self {
        let w = width.clamp(1, 8) - 1;
        let h = height.clamp(1, 8) - 1;
        self.buf.extend_from_slice(&[GS, b'!', (w << 4) | h]);
        self
    }

    /// `ESC a n`: alignment of the following lines.
    pub fn align(&mut self, align: Align) -> &mut Self {
        self.buf.extend_from_slice(&[ESC, b'a', align as u8]);
        self
    }

    /// A QR code (model 2) through `GS ( k`: select model, module size (clamped 1..=16),
    /// error correction, store the data, print. Data longer than [`QR_DATA_LEN_MAX`] is cut.
    pub fn qr(&mut self, data: &str, module_dots: u8, ecc: QrEcc) -> &mut Self {
        let data = &data.as_bytes()[..data.len().min(QR_DATA_LEN_MAX)];
        self.gs_k(&[49, 65, 50, 0]);
        self.gs_k(&[49, 67, module_dots.clamp(1, 16)]);
        self.gs_k(&[49, 69, ecc as u8]);
        let mut store = vec![49, 80, 48];
        store.extend_from_slice(data);
        self.gs_k(&store);
        self.gs_k(&[49, 81, 48])
    }

    fn gs_k(&mut self, body: &[u8]) -> &mut Self {
        // body.len() <= QR_DATA_LEN_MAX + 3, which fits in u16.
        let len = body.len() as u16;
        self.buf
            .extend_from_slice(&[GS, b'(', b'k', (len & 0xff) as u8, (len >> 8) as u8]);
        self.buf.extend_from_slice(body);
        self
    }

    /// `GS V 66 n`: feeds n dot lines past the cutter, then a partial cut.
    pub fn cut(&mut self) -> &mut Self {
        self.buf.extend_from_slice(&[GS, b'V', 66, 3]);
        self
    }

    /// `ESC p m t1 t2`: pulses drawer pin 2 (m = 0) for `on_ms`, then waits `off_ms`; both
    /// are clamped to [`DRAWER_PULSE_MS_MAX`] and sent in 2 ms units.
    pub fn drawer_kick(&mut self, on_ms: u16, off_ms: u16) -> &mut Self {
        let units = |ms: u16| (ms.min(DRAWER_PULSE_MS_MAX) / 2).max(1) as u8;
        self.buf
            .extend_from_slice(&[ESC, b'p', 0, units(on_ms), units(off_ms)]);
        self
    }

    /// The job's bytes.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// `DLE EOT n`: the real-time status query; the printer answers one byte at once.
pub fn status_query(kind: StatusKind) -> [u8; 3] {
    [DLE, EOT, kind as u8]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_selects_cp858_and_text_is_encoded() {
        let bytes = EscPos::new().init().line("Año 5 €").finish();
        assert_eq!(
            bytes,
            [&[ESC, b'@', ESC, b't', 19][..], b"A\xa4o 5 \xd5\n"].concat()
        );
    }

    #[test]
    fn qr_uses_gs_k_model_2() {
        let bytes = EscPos::new().qr("AB", 6, QrEcc::M).finish();
        assert_eq!(&bytes[..9], &[GS, b'(', b'k', 4, 0, 49, 65, 50, 0]);
        let store = [GS, b'(', b'k', 5, 0, 49, 80, 48, b'A', b'B'];
        assert!(bytes.windows(store.len()).any(|w| w == store));
        assert!(bytes.ends_with(&[GS, b'(', b'k', 3, 0, 49, 81, 48]));
    }

    #[test]
    fn drawer_pulse_is_bounded() {
        let bytes = EscPos::new().drawer_kick(60_000, 100).finish();
        assert_eq!(bytes, [ESC, b'p', 0, 250, 50]);
    }

    #[test]
    fn status_bytes_decode_paper_out_and_cover_open() {
        let mut status = PrinterStatus::default();
        assert!(status.absorb(StatusKind::Paper, 0x72));
        assert!(status.absorb(StatusKind::Offline, 0x16));
        assert!(status.paper_out && status.cover_open && !status.offline);
        assert!(!status.absorb(StatusKind::Printer, 0xff));
        assert_eq!(status_query(StatusKind::Paper), [DLE, EOT, 4]);
    }
}
