//! storenode: the in-store node of a retail chain. See docs/ARCHITECTURE.md.
//!
//! Modules, lowest layer first; a module only uses the ones listed above it (`app` wires the
//! rest together, `bench` measures them). Invariants: docs/ARCHITECTURE.md.

/// Pure domain: ops, merge rules, the replica, and the reaction rules (no I/O, no clock).
pub mod domain;

/// Store ed25519 keys: signing up-batches, verifying them at HQ.
pub mod signing;

/// SQLite persistence: the op log, the single writer, migrations, imports.
pub mod store;

/// Rate limits and security headers shared by the terminal's and HQ's HTTP servers.
pub mod http_security;

/// JSON request bodies of the terminal and HQ as typed structs, errors naming the field.
pub mod http_body;

/// The one error answer (`ApiError`) of the terminal's and HQ's APIs.
pub mod http_error;

/// `/metrics` of the store and HQ in the OpenMetrics text format (`prometheus-client`).
pub mod exposition;

/// Sync over MQTT: wire format, the sans-IO protocol, and the daemons that carry it out.
pub mod sync;

/// Barcode scanners, ESC/POS printers, the durable print queue, the printer emulator.
pub mod devices;

/// Strict TOML configuration of a store node and of HQ (`check-config`).
pub mod config;

/// VERI*FACTU invoices: the store's gapless series, the AEAT queue, the HQ chain check.
pub mod fiscal;

/// The associate terminal: JSON API, web pages, sessions, live updates.
pub mod terminal;

/// The HQ hub's HTTP API for the online shop, the dashboard, the ready webhook.
pub mod hq;

/// Offline maintenance commands: migrate, import, digest.
pub mod cli;

/// The binary's roles as library functions: `hq`, `run`, `demo`.
pub mod app;

/// The crash-loop test's op stream (`storenode soak`).
pub mod soak;

/// `storenode bench` scenarios, each beside a baseline measured in the same run (feature
/// `bench`, not in the shipped binary).
#[cfg(feature = "bench")]
pub mod bench;
