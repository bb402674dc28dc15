//! The store's uplink as the terminal shows it: online or since when offline, and how many
//! ops wait in the outbox. The sync module provides the real source; `FixedLink` serves tests
//! and nodes without sync.

use std::sync::Mutex;

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

/// Where the terminal reads the link status from.
pub trait LinkStatusSource: Send + Sync + 'static {
    fn link(&self) -> LinkStatus;

    /// Where customer searches ask HQ (`crate::sync::lookup`); `None`: this store's replica only.
    fn hq_lookups(&self) -> Option<std::sync::Arc<crate::sync::lookup::StoreLookups>> {
        None
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

/// The real uplink: the store's sync engine.
impl LinkStatusSource for crate::sync::StoreSyncHandle {
    fn link(&self) -> LinkStatus {
        let s = self.status();
        LinkStatus {
            online: s.online,
            since_ms: Some(s.since_ms).filter(|ms| *ms > 0),
            outbox: s.outbox,
            last_sync_ms: s.last_sync_ms,
        }
    }

    fn hq_lookups(&self) -> Option<std::sync::Arc<crate::sync::lookup::StoreLookups>> {
        Some(self.lookups())
    }
}
