//! storenode: the in-store node of a retail chain. See docs/ARCHITECTURE.md.

pub mod domain;
pub mod terminal;
