//! Pure domain: no I/O, no tokio, no SQLite, no clock reads.
pub mod pickup;
