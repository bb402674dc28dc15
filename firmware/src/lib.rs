//! Counter bridge firmware: reads a UART barcode scanner, frames each scan with a sequence
//! number and CRC for the store node, and drives a status LED, a buzzer and the cash drawer.
//!
//! `no_std` and allocation-free, generic over embedded-hal 1.0 (`OutputPin`, `DelayNs`) and
//! embedded-io 0.7 (`Read`, `Write`), so it runs on an RP2040 or STM32 and in host tests
//! alike. The frame codec in [`frame`] is shared with the node (`storenode::devices`).
#![no_std]

pub mod bridge;
pub mod frame;

pub use bridge::{CounterBridge, Error, ScanOutcome};
pub use frame::{crc16_ccitt_false, encode_frame, Frame, FrameDecoder, FrameError};
