//! storenode: the in-store node of a retail chain. See docs/ARCHITECTURE.md.

pub mod app;
pub mod config;
pub mod domain;
pub mod hq;
