//! Devices: barcode scanners, ESC/POS printers and their durable queue, the printer emulator.
//!
//! Parsing and encoding (barcodes, ESC/POS, firmware frames) are pure functions over text and
//! bytes; the scanner sources, printer transports and the queue worker are thin tokio adapters
//! around them. Nothing here panics on bytes from a device or the network.

pub mod barcode;
pub mod escpos;
pub mod print_queue;
pub mod printer;
pub mod printer_sim;
pub mod scanner;
