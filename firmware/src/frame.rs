//! Scan frames on the link between the counter bridge and the store node.
//!
//! Wire format: `[STX, seq, len, payload[len], crc_hi, crc_lo]`: the `[seq, len, bytes, crc16]`
//! frame behind a start byte, where the CRC is CRC-16/CCITT-FALSE over `seq`, `len` and the
//! payload, big-endian, and `len` is at most [`PAYLOAD_LEN_MAX`]. The decoder is incremental
//! and resynchronises after garbage by sliding to the next STX whose frame has a matching CRC
//! (junk passes both checks about once in 16 million tries, and a false frame still has to be
//! a valid barcode to do anything).

/// Longest scan payload carried in one frame, in bytes.
pub const PAYLOAD_LEN_MAX: usize = 96;
/// Start of every frame (ASCII STX).
pub const STX: u8 = 0x02;
/// Bytes around the payload: STX, seq, len and two CRC bytes.
pub const FRAME_OVERHEAD: usize = 5;
/// Longest frame on the wire.
pub const FRAME_LEN_MAX: usize = PAYLOAD_LEN_MAX + FRAME_OVERHEAD;

/// Why a frame could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The payload is longer than [`PAYLOAD_LEN_MAX`].
    PayloadTooLong(usize),
    /// The output buffer is shorter than the frame.
    BufferTooSmall {
        /// Bytes the frame needs.
        needed: usize,
    },
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FrameError::PayloadTooLong(n) => {
                write!(
                    f,
                    "frame payload has {n} bytes, at most {PAYLOAD_LEN_MAX} allowed"
                )
            }
            FrameError::BufferTooSmall { needed } => {
                write!(f, "frame buffer too small, {needed} bytes needed")
            }
        }
    }
}

impl core::error::Error for FrameError {}

/// CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR.
pub fn crc16_ccitt_false(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xffff;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Writes the frame for `payload` into `out`; returns the frame length.
pub fn encode_frame(seq: u8, payload: &[u8], out: &mut [u8]) -> Result<usize, FrameError> {
    if payload.len() > PAYLOAD_LEN_MAX {
        return Err(FrameError::PayloadTooLong(payload.len()));
    }
    let total = payload.len() + FRAME_OVERHEAD;
    if out.len() < total {
        return Err(FrameError::BufferTooSmall { needed: total });
    }
    out[0] = STX;
    out[1] = seq;
    // len <= PAYLOAD_LEN_MAX < 256.
    out[2] = payload.len() as u8;
    out[3..3 + payload.len()].copy_from_slice(payload);
    let crc = crc16_ccitt_false(&out[1..3 + payload.len()]);
    out[total - 2..total].copy_from_slice(&crc.to_be_bytes());
    Ok(total)
}

/// A decoded frame.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    seq: u8,
    len: u8,
    data: [u8; PAYLOAD_LEN_MAX],
}

impl Frame {
    /// Sequence number (wraps at 256): a gap means frames were lost, a repeat a resend.
    pub fn seq(&self) -> u8 {
        self.seq
    }

    /// The scan bytes.
    pub fn payload(&self) -> &[u8] {
        &self.data[..usize::from(self.len)]
    }
}

impl core::fmt::Debug for Frame {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Frame")
            .field("seq", &self.seq)
            .field("payload", &self.payload())
            .finish()
    }
}

/// Incremental frame decoder: `push` bytes as they arrive, then drain `next_frame`.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    buf: [u8; FRAME_LEN_MAX],
    len: usize,
    dropped: u32,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new()
    }
}

impl FrameDecoder {
    /// An empty decoder.
    pub const fn new() -> FrameDecoder {
        FrameDecoder {
            buf: [0; FRAME_LEN_MAX],
            len: 0,
            dropped: 0,
        }
    }

    /// Bytes skipped as garbage so far (saturating): a link-quality figure.
    pub fn dropped_bytes(&self) -> u32 {
        self.dropped
    }

    /// Adds one byte. Call [`FrameDecoder::next_frame`] until `None` after each push.
    pub fn push(&mut self, byte: u8) {
        if self.len == FRAME_LEN_MAX {
            // Cannot happen while next_frame is drained after each push; stay total anyway.
            self.shift(1);
        }
        self.buf[self.len] = byte;
        self.len += 1;
    }

    /// The next complete frame with a valid CRC, if the buffered bytes hold one.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if self.len == 0 {
                return None;
            }
            if self.buf[0] != STX {
                self.shift(1);
                continue;
            }
            if self.len < 3 {
                return None;
            }
            let payload_len = usize::from(self.buf[2]);
            if payload_len > PAYLOAD_LEN_MAX {
                self.shift(1);
                continue;
            }
            let total = payload_len + FRAME_OVERHEAD;
            if self.len < total {
                // Maybe a false start whose length field points past the data: if a later
                // STX already begins a complete valid frame, skip to it instead of stalling.
                match (1..self.len).find(|&i| self.valid_frame_at(i).is_some()) {
                    Some(i) => {
                        self.shift(i);
                        continue;
                    }
                    None => return None,
                }
            }
            if self.valid_frame_at(0).is_none() {
                self.shift(1);
                continue;
            }
            let mut data = [0; PAYLOAD_LEN_MAX];
            data[..payload_len].copy_from_slice(&self.buf[3..3 + payload_len]);
            let frame = Frame {
                seq: self.buf[1],
                len: self.buf[2],
                data,
            };
            self.consume(total);
            return Some(frame);
        }
    }

    /// The frame length if a complete frame with a matching CRC starts at `at`.
    fn valid_frame_at(&self, at: usize) -> Option<usize> {
        let b = self.buf.get(at..self.len)?;
        if b.len() < 3 || b[0] != STX {
            return None;
        }
        let payload_len = usize::from(b[2]);
        let total = payload_len + FRAME_OVERHEAD;
        if payload_len > PAYLOAD_LEN_MAX || b.len() < total {
            return None;
        }
        let crc = crc16_ccitt_false(&b[1..3 + payload_len]);
        (crc == u16::from_be_bytes([b[total - 2], b[total - 1]])).then_some(total)
    }

    fn shift(&mut self, n: usize) {
        self.dropped = self.dropped.saturating_add(n as u32);
        self.consume(n);
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn decode_all(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut d = FrameDecoder::new();
        let mut frames = Vec::new();
        for &b in bytes {
            d.push(b);
            while let Some(f) = d.next_frame() {
                frames.push((f.seq(), f.payload().to_vec()));
            }
        }
        frames
    }

    fn frame(seq: u8, payload: &[u8]) -> Vec<u8> {
        let mut buf = [0u8; FRAME_LEN_MAX];
        let n = encode_frame(seq, payload, &mut buf).unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc16_ccitt_false(b"123456789"), 0x29b1);
    }

    #[test]
    fn frames_round_trip_and_resync_after_garbage() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&[0xff, STX, 0x00, 0x42, 0x99, STX]);
        wire.extend(frame(1, b"8412345678905"));
        wire.extend_from_slice(&[0x07, STX, 0x60]);
        wire.extend(frame(2, b"PU1:ord-1:K7Q2MZ:00"));
        let frames = decode_all(&wire);
        assert_eq!(
            frames,
            [
                (1, b"8412345678905".to_vec()),
                (2, b"PU1:ord-1:K7Q2MZ:00".to_vec())
            ]
        );
    }

    #[test]
    fn corrupted_frame_is_dropped_and_the_next_one_survives() {
        let mut bad = frame(5, b"96385074");
        bad[5] ^= 0x01;
        let mut wire = bad;
        wire.extend(frame(6, b"96385074"));
        assert_eq!(decode_all(&wire), [(6, b"96385074".to_vec())]);
    }

    #[test]
    fn oversized_payload_is_refused() {
        let mut buf = [0u8; 200];
        assert_eq!(
            encode_frame(0, &[0; PAYLOAD_LEN_MAX + 1], &mut buf),
            Err(FrameError::PayloadTooLong(PAYLOAD_LEN_MAX + 1))
        );
        assert_eq!(
            encode_frame(0, b"abc", &mut buf[..5]),
            Err(FrameError::BufferTooSmall { needed: 8 })
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..1000)) {
            let _ = decode_all(&bytes);
        }

        #[test]
        fn frames_survive_any_garbage_prefix(
            junk in proptest::collection::vec(any::<u8>().prop_filter("no stx", |b| *b != STX), 0..50),
            seq in any::<u8>(),
            payload in proptest::collection::vec(any::<u8>(), 0..PAYLOAD_LEN_MAX),
        ) {
            let mut wire = junk;
            wire.extend(frame(seq, &payload));
            let frames = decode_all(&wire);
            prop_assert_eq!(frames.last(), Some(&(seq, payload)));
        }
    }
}
