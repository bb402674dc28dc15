//! ESC/POS printing: a command builder, the CP858 code page and the printed documents.
//!
//! Everything here is pure: documents become bytes, status bytes become [`PrinterStatus`].
//! Transports and the durable queue live in `devices::printer` and `devices::print_queue`.

pub mod builder;
pub mod cp858;
pub mod document;

pub use builder::{status_query, Align, EscPos, PrinterStatus, QrEcc, StatusKind};
pub use document::{
    format_cents, format_vat, BagLabel, InvoiceBlock, PickLine, PickList, PickupMark, Receipt,
    ReceiptLine, StoreHeader, Tender, VatRow, COLUMNS_80MM,
};
