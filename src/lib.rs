//! storenode: the in-store node of a retail chain. See docs/ARCHITECTURE.md.

pub mod cli;
pub mod devices;
pub mod domain;
pub mod signing;
pub mod soak;
pub mod store;
pub mod sync;
