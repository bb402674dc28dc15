//! The counter bridge: a UART barcode scanner in, framed scans out to the store node, with a
//! status LED, a buzzer and the cash drawer solenoid.
//!
//! [`CounterBridge::poll`] reads whatever the scanner sent, and for every line ended by CR or
//! LF writes one frame to the host link and plays the good-scan pattern; an over-long line is
//! dropped with the bad-scan pattern. The drawer is pulsed for a bounded time and its pin is
//! driven low again even if the delay or another pin fails.

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use embedded_io::{Read, Write};

use crate::frame::{encode_frame, FRAME_LEN_MAX, PAYLOAD_LEN_MAX};

/// Good scan: one short beep, LED on meanwhile.
pub const GOOD_BEEP_MS: u32 = 60;
/// Bad scan: this many beeps...
pub const BAD_BEEP_COUNT: u8 = 3;
/// ...each this long...
pub const BAD_BEEP_MS: u32 = 120;
/// ...separated by this much silence.
pub const BAD_BEEP_GAP_MS: u32 = 80;
/// Default drawer solenoid pulse: enough to release the latch of common 24 V drawers.
pub const DRAWER_PULSE_MS_DEFAULT: u32 = 100;
/// Longest drawer pulse we ever drive: longer pulses overheat the solenoid.
pub const DRAWER_PULSE_MS_MAX: u32 = 200;
/// Bytes read from the UART per call.
const UART_CHUNK_BYTES: usize = 32;

/// A failure on one of the bridge's buses, generic over their error types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<U, H, P> {
    /// Reading the scanner UART failed.
    Uart(U),
    /// Writing to the host link failed.
    Host(H),
    /// Driving the LED, buzzer or drawer pin failed.
    Pin(P),
}

/// What one completed scan line turned into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanOutcome {
    /// Framed and sent with this sequence number.
    Sent {
        /// Frame sequence number.
        seq: u8,
        /// Payload bytes.
        len: usize,
    },
    /// Longer than a frame can carry: dropped, bad-scan pattern played.
    TooLong,
}

/// The bridge, owning its buses (embedded-hal style: `new` takes them, `release` returns them).
pub struct CounterBridge<U, H, L, B, D, T> {
    uart: U,
    host: H,
    led: L,
    buzzer: B,
    drawer: D,
    delay: T,
    line: [u8; PAYLOAD_LEN_MAX],
    line_len: usize,
    overflow: bool,
    seq: u8,
}

impl<U, H, L, B, D, T, P> CounterBridge<U, H, L, B, D, T>
where
    U: Read,
    H: Write,
    L: OutputPin<Error = P>,
    B: OutputPin<Error = P>,
    D: OutputPin<Error = P>,
    T: DelayNs,
{
    /// Takes the scanner UART, the host link, the three output pins and a delay.
    pub fn new(uart: U, host: H, led: L, buzzer: B, drawer: D, delay: T) -> Self {
        CounterBridge {
            uart,
            host,
            led,
            buzzer,
            drawer,
            delay,
            line: [0; PAYLOAD_LEN_MAX],
            line_len: 0,
            overflow: false,
            seq: 0,
        }
    }

    /// Gives the buses back.
    pub fn release(self) -> (U, H, L, B, D, T) {
        (
            self.uart,
            self.host,
            self.led,
            self.buzzer,
            self.drawer,
            self.delay,
        )
    }

    /// Reads one chunk from the scanner and handles every line it completes, in order.
    /// Returns how many lines were handled (0 if the chunk ended mid-line).
    #[allow(clippy::type_complexity)] // reason: the embedded-hal driver error convention
    pub fn poll(
        &mut self,
        mut on_outcome: impl FnMut(ScanOutcome),
    ) -> Result<usize, Error<U::Error, H::Error, P>> {
        let mut chunk = [0u8; UART_CHUNK_BYTES];
        let n = self.uart.read(&mut chunk).map_err(Error::Uart)?;
        let mut handled = 0;
        for &byte in &chunk[..n] {
            if let Some(outcome) = self.accept(byte)? {
                on_outcome(outcome);
                handled += 1;
            }
        }
        Ok(handled)
    }

    #[allow(clippy::type_complexity)] // reason: the embedded-hal driver error convention
    fn accept(&mut self, byte: u8) -> Result<Option<ScanOutcome>, Error<U::Error, H::Error, P>> {
        if byte != b'\r' && byte != b'\n' {
            if self.line_len == PAYLOAD_LEN_MAX {
                self.overflow = true;
            } else {
                self.line[self.line_len] = byte;
                self.line_len += 1;
            }
            return Ok(None);
        }
        let (len, overflow) = (self.line_len, self.overflow);
        self.line_len = 0;
        self.overflow = false;
        if overflow {
            self.bad_scan().map_err(Error::Pin)?;
            return Ok(Some(ScanOutcome::TooLong));
        }
        if len == 0 {
            // The LF of a CR LF pair, or a blank line.
            return Ok(None);
        }
        let seq = self.seq;
        let mut frame = [0u8; FRAME_LEN_MAX];
        // len <= PAYLOAD_LEN_MAX and the buffer is FRAME_LEN_MAX: encoding cannot fail.
        let Ok(n) = encode_frame(seq, &self.line[..len], &mut frame) else {
            return Ok(None);
        };
        self.host.write_all(&frame[..n]).map_err(Error::Host)?;
        self.host.flush().map_err(Error::Host)?;
        self.seq = self.seq.wrapping_add(1);
        self.good_scan().map_err(Error::Pin)?;
        Ok(Some(ScanOutcome::Sent { seq, len }))
    }

    /// LED on, one short beep, LED off.
    pub fn good_scan(&mut self) -> Result<(), P> {
        self.led.set_high()?;
        self.buzzer.set_high()?;
        self.delay.delay_ms(GOOD_BEEP_MS);
        self.buzzer.set_low()?;
        self.led.set_low()
    }

    /// Three long beeps with the LED off.
    pub fn bad_scan(&mut self) -> Result<(), P> {
        self.led.set_low()?;
        for i in 0..BAD_BEEP_COUNT {
            self.buzzer.set_high()?;
            self.delay.delay_ms(BAD_BEEP_MS);
            self.buzzer.set_low()?;
            if i + 1 < BAD_BEEP_COUNT {
                self.delay.delay_ms(BAD_BEEP_GAP_MS);
            }
        }
        Ok(())
    }

    /// Pulses the drawer solenoid for `ms`, clamped to [`DRAWER_PULSE_MS_MAX`]. Returns the
    /// pulse actually driven. The pin is set low again even if setting it high failed.
    pub fn kick_drawer(&mut self, ms: u32) -> Result<u32, P> {
        let pulse = ms.min(DRAWER_PULSE_MS_MAX);
        let high = self.drawer.set_high();
        if high.is_ok() {
            self.delay.delay_ms(pulse);
        }
        let low = self.drawer.set_low();
        high?;
        low?;
        Ok(pulse)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::frame::FrameDecoder;
    use embedded_hal_mock::eh1::delay::{CheckedDelay, NoopDelay, Transaction as Delay};
    use embedded_hal_mock::eh1::digital::{Mock as Pin, State, Transaction as PinTx};
    use std::vec::Vec;

    /// Host link that records what the bridge sent.
    #[derive(Default)]
    struct HostLink(Vec<u8>);

    impl embedded_io::ErrorType for HostLink {
        type Error = core::convert::Infallible;
    }

    impl Write for HostLink {
        fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    fn good_pattern(scans: usize) -> (Vec<PinTx>, Vec<PinTx>) {
        let led: Vec<PinTx> = (0..scans)
            .flat_map(|_| [PinTx::set(State::High), PinTx::set(State::Low)])
            .collect();
        (led.clone(), led)
    }

    #[test]
    fn each_scan_line_becomes_one_frame_with_a_good_beep() {
        let uart: &[u8] = b"8412345678905\r\n96385074\r";
        let (led_tx, buz_tx) = good_pattern(2);
        let (led, buzzer, drawer) = (Pin::new(&led_tx), Pin::new(&buz_tx), Pin::new(&[]));
        let delay =
            CheckedDelay::new(&[Delay::delay_ms(GOOD_BEEP_MS), Delay::delay_ms(GOOD_BEEP_MS)]);
        let mut bridge = CounterBridge::new(uart, HostLink::default(), led, buzzer, drawer, delay);
        let mut outcomes = Vec::new();
        while bridge.poll(|o| outcomes.push(o)).unwrap() > 0 || outcomes.len() < 2 {}
        assert_eq!(
            outcomes,
            [
                ScanOutcome::Sent { seq: 0, len: 13 },
                ScanOutcome::Sent { seq: 1, len: 8 }
            ]
        );
        let (_, host, mut led, mut buzzer, mut drawer, mut delay) = bridge.release();
        let mut decoder = FrameDecoder::new();
        let mut payloads = Vec::new();
        for b in host.0 {
            decoder.push(b);
            while let Some(f) = decoder.next_frame() {
                payloads.push((f.seq(), f.payload().to_vec()));
            }
        }
        assert_eq!(
            payloads,
            [(0, b"8412345678905".to_vec()), (1, b"96385074".to_vec())]
        );
        led.done();
        buzzer.done();
        drawer.done();
        delay.done();
    }

    #[test]
    fn an_over_long_line_is_dropped_with_the_bad_pattern() {
        let mut input = std::vec![b'9'; PAYLOAD_LEN_MAX + 10];
        input.push(b'\n');
        let uart: &[u8] = &input;
        let led = Pin::new(&[PinTx::set(State::Low)]);
        let buz_tx: Vec<PinTx> = (0..BAD_BEEP_COUNT)
            .flat_map(|_| [PinTx::set(State::High), PinTx::set(State::Low)])
            .collect();
        let buzzer = Pin::new(&buz_tx);
        let mut bridge = CounterBridge::new(
            uart,
            HostLink::default(),
            led,
            buzzer,
            Pin::new(&[]),
            NoopDelay::new(),
        );
        let mut outcomes = Vec::new();
        for _ in 0..10 {
            bridge.poll(|o| outcomes.push(o)).unwrap();
        }
        assert_eq!(outcomes, [ScanOutcome::TooLong]);
        let (_, host, mut led, mut buzzer, mut drawer, _) = bridge.release();
        assert!(host.0.is_empty());
        led.done();
        buzzer.done();
        drawer.done();
    }

    #[test]
    fn drawer_pulse_is_clamped_to_the_safe_maximum() {
        let uart: &[u8] = b"";
        let drawer = Pin::new(&[PinTx::set(State::High), PinTx::set(State::Low)]);
        let delay = CheckedDelay::new(&[Delay::delay_ms(DRAWER_PULSE_MS_MAX)]);
        let mut bridge = CounterBridge::new(
            uart,
            HostLink::default(),
            Pin::new(&[]),
            Pin::new(&[]),
            drawer,
            delay,
        );
        assert_eq!(bridge.kick_drawer(10_000), Ok(DRAWER_PULSE_MS_MAX));
        let (_, _, mut led, mut buzzer, mut drawer, mut delay) = bridge.release();
        led.done();
        buzzer.done();
        drawer.done();
        delay.done();
    }
}
