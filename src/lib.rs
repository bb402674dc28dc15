//! storenode: the in-store node of a retail chain. See docs/ARCHITECTURE.md.

pub mod app;
pub mod bench;
pub mod cli;
pub mod config;
pub mod devices;
pub mod domain;
pub mod fiscal;
pub mod hq;
pub mod http_security;
pub mod signing;
pub mod soak;
pub mod store;
pub mod sync;
pub mod terminal;
