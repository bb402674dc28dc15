//! storenode: the in-store node of a retail chain. See docs/ARCHITECTURE.md.

pub mod devices;
pub mod domain;
