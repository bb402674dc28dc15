//! The store's uplink as the terminal shows it: online or since when offline, and how many
//! ops wait in the outbox, and the way to HQ for customer searches. The terminal depends only
//! on this trait: `app` implements it for the sync engine; `FixedLink` serves tests and nodes
//! without sync.

use crate::domain::CustomerId;
use crate::store::Node;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

/// A snapshot of the store's link to the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkStatus {
    pub online: bool,
    /// When the link last changed state (ms since the epoch), if known.
    pub since_ms: Option<u64>,
    /// Ops waiting for HQ's acknowledgement.
    pub outbox: u64,
    /// Last time HQ acknowledged our ops or sent us some, if ever.
    pub last_sync_ms: Option<u64>,
}

/// How a counter search for an exact identifier reached HQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// HQ could not be asked (offline, or no sync engine).
    LocalOnly,
    /// HQ answered; these customers are now held locally.
    Hq(Vec<CustomerId>),
    /// HQ did not answer, or its customers did not arrive, in time; those that did arrive.
    HqTimeout(Vec<CustomerId>),
}

/// What `fetch_customers` returns (boxed: the trait is used as `dyn`).
pub type FetchFuture<'a> = Pin<Box<dyn Future<Output = Fetched> + Send + 'a>>;

/// Where the terminal reads the link status from, and asks HQ for customers.
pub trait LinkStatusSource: Send + Sync + 'static {
    fn link(&self) -> LinkStatus;

    /// Fetch the customers matching `query` (an exact identifier:
    /// `domain::customer::exact_identifier`) from HQ into `node`, waiting at most `within`.
    /// Without a way to HQ: `LocalOnly`.
    fn fetch_customers<'a>(
        &'a self,
        node: &'a Node,
        query: &'a str,
        within: Duration,
    ) -> FetchFuture<'a> {
        let _ = (node, query, within);
        Box::pin(std::future::ready(Fetched::LocalOnly))
    }
}

/// A link status set by hand (tests, nodes without sync).
#[derive(Debug, Default)]
pub struct FixedLink(Mutex<LinkStatus>);

impl FixedLink {
    pub fn new(status: LinkStatus) -> FixedLink {
        FixedLink(Mutex::new(status))
    }
    pub fn set(&self, status: LinkStatus) {
        match self.0.lock() {
            Ok(mut s) => *s = status,
            Err(p) => *p.into_inner() = status,
        }
    }
}

impl LinkStatusSource for FixedLink {
    fn link(&self) -> LinkStatus {
        match self.0.lock() {
            Ok(s) => *s,
            Err(p) => *p.into_inner(),
        }
    }
}
