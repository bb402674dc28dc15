//! The pure domain: data types, merge rules and the replica. No I/O, no tokio, no SQLite, and
//! no clock reads: time comes in as `now_ms` arguments, randomness as bytes.
//!
//! Everything outside `domain` is an adapter that feeds ops in and executes the effects that
//! come out. Property tests in `tests.rs` prove convergence and the stock invariant.

pub mod cart;
pub mod catalog;
pub mod conflict;
pub mod contact;
pub mod count;
pub mod customer;
pub mod digest;
pub mod erasure;
pub mod error;
pub mod fiscal;
pub mod history;
pub mod hlc;
pub mod ids;
pub mod inventory;
pub mod motion;
pub mod op;
pub mod order;
pub mod pickup;
pub mod reaction;
pub mod replica;
pub mod returns;
pub mod ship_to_store;
pub mod state;
pub mod till;
pub mod validate;
pub mod version;

#[cfg(test)]
mod conflict_tests;
#[cfg(test)]
mod erasure_tests;
#[cfg(test)]
mod history_tests;
#[cfg(test)]
mod motion_tests;
#[cfg(test)]
mod order_history_tests;
#[cfg(test)]
mod ship_to_store_tests;
#[cfg(test)]
mod shrinkage_tests;
#[cfg(test)]
mod tests;

pub use digest::Digest;
pub use error::DomainError;
pub use hlc::Hlc;
pub use ids::{
    ActorId, CustomerId, Ean13, IdError, MotionId, OrderId, ReturnId, SaleId, Sku, StoreId,
};
pub use op::{Op, OpId, Payload};
pub use replica::{Applied, Replica};
pub use state::{Effect, State};
