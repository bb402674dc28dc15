//! The sync protocol without I/O: the store's and HQ's sides as plain state machines, in the
//! shape of quinn-proto's `Connection`.
//!
//! Events go in as method calls (`handle_link`, `handle_message`, `handle_committed`,
//! `handle_tick`, and the results of actions the caller carried out); actions come out of
//! `poll(now_ms, &replica)` as data (publish, read, ingest, persist a cursor, submit a
//! reaction). Nothing here touches tokio, rumqttc or SQLite, and time is always an argument, so
//! the daemons (`store_sync`, `hq_sync`) and the simulation (`tests/sim`) run this same code.
//! Invariant: an ack is only produced after the caller reported the ingest it covers as done.

pub mod config;
pub mod hq;
pub mod store;

use super::metrics::SyncMetrics;

/// A message to publish at QoS 1. `carries` says what it holds, so a publish the transport
/// could not queue is handed back with `handle_deferred` and sent again later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
    pub carries: Carries,
}

/// What a [`Publish`] carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carries {
    /// The store's retained status.
    Status,
    /// An ack to the peer (HQ: to `store`).
    Ack {
        store: crate::domain::StoreId,
        due: AckDue,
    },
    /// `ops` entries of a stream after position `after` (a seq up, a down-log index down).
    Ops {
        store: crate::domain::StoreId,
        after: u64,
        ops: usize,
    },
    /// HQ's answer to a customer lookup.
    LookupReply,
}

/// Count a publish the transport accepted.
pub fn note_sent(metrics: &SyncMetrics, publish: &Publish) {
    SyncMetrics::add(&metrics.bytes_sent, publish.payload.len() as u64);
    match &publish.carries {
        Carries::Ack { .. } => SyncMetrics::add(&metrics.acks_sent, 1),
        Carries::Ops { ops, .. } => {
            SyncMetrics::add(&metrics.batches_sent, 1);
            SyncMetrics::add(&metrics.ops_sent, *ops as u64);
        }
        Carries::Status | Carries::LookupReply => {}
    }
}

/// What the next ack to a peer asks of it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AckDue {
    /// The peer should resend everything after this ack.
    pub resend: bool,
    /// The peer should answer with its own ack with `resend` set (hello on connect).
    pub reply: bool,
}

impl AckDue {
    /// The hello both sides send when a connection (re)starts.
    pub const HELLO: AckDue = AckDue {
        resend: true,
        reply: true,
    };
    /// Ask the peer to resend (a gap, or the answer to a hello).
    pub const RESEND: AckDue = AckDue {
        resend: true,
        reply: false,
    };

    /// Merge another due ack into this one (flags only ever add up).
    pub fn merge(slot: &mut Option<AckDue>, due: AckDue) {
        let s = slot.get_or_insert_with(AckDue::default);
        s.resend |= due.resend;
        s.reply |= due.reply;
    }
}

/// Minimum time between two gap requests to one peer.
pub const GAP_REQUEST_MS: u64 = 1_000;

/// Throttle of gap requests: a burst of out-of-order batches asks for one resend, not many.
#[derive(Debug, Clone, Copy, Default)]
pub struct GapTimer {
    requested_ms: Option<u64>,
}

impl GapTimer {
    /// Whether a resend may be asked for now (and remember that it was).
    pub fn request(&mut self, now_ms: u64) -> bool {
        let recent = self
            .requested_ms
            .is_some_and(|t| now_ms.saturating_sub(t) < GAP_REQUEST_MS);
        if !recent {
            self.requested_ms = Some(now_ms);
        }
        !recent
    }

    /// In-order data arrived: the next gap may be reported at once.
    pub fn clear(&mut self) {
        self.requested_ms = None;
    }
}

/// The sending half of one ordered stream: a store's outbox (positions are its seqs) or HQ's
/// down-log for one store (positions are down-log indexes). The peer acks the position it
/// holds durably; everything after it is published within a window and resent from the ack
/// when the peer asks (`resend`) or when no ack progress came for a while.
#[derive(Debug, Clone)]
pub struct Window {
    acked: u64,
    sent: u64,
    last_progress_ms: u64,
    /// A read of the next entries is out with the caller.
    reading: bool,
}

impl Window {
    pub fn new(acked: u64, now_ms: u64) -> Window {
        Window {
            acked,
            sent: acked,
            last_progress_ms: now_ms,
            reading: false,
        }
    }

    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// A new connection: whatever was sent on the old one may be lost.
    pub fn restart(&mut self, now_ms: u64) {
        self.sent = self.acked;
        self.last_progress_ms = now_ms;
    }

    /// The peer holds `value` durably. With `resend` it asks for everything after it (and
    /// may have gone back, e.g. restored from a backup). Whether the ack moved forward.
    pub fn on_ack(&mut self, value: u64, resend: bool, now_ms: u64) -> bool {
        let raised = value > self.acked;
        if raised || resend {
            self.acked = value;
            self.last_progress_ms = now_ms;
        }
        self.sent = self.sent.max(self.acked);
        if resend {
            self.sent = self.acked;
        }
        raised
    }

    /// Resend from the ack if nothing moved for `retransmit_ms`; whether it did.
    pub fn retransmit(&mut self, now_ms: u64, retransmit_ms: u64) -> bool {
        let due =
            self.sent > self.acked && now_ms.saturating_sub(self.last_progress_ms) > retransmit_ms;
        if due {
            self.restart(now_ms);
        }
        due
    }

    /// Where the next read starts, when entries up to `last` wait and the window
    /// (`inflight_max` entries sent and not acked) has room; marks the read as out.
    pub fn next_read(&mut self, last: u64, inflight_max: u64) -> Option<u64> {
        let room = self.sent.saturating_sub(self.acked) < inflight_max;
        if self.reading || self.sent >= last || !room {
            return None;
        }
        self.reading = true;
        Some(self.sent)
    }

    /// Entries the window still has room for (`inflight_max` sent and not acked at most).
    pub fn room(&self, inflight_max: u64) -> u64 {
        inflight_max.saturating_sub(self.sent.saturating_sub(self.acked))
    }

    /// The read came back (entries are then published with `sent`).
    pub fn read_done(&mut self) {
        self.reading = false;
    }

    /// Entries up to `upto` were handed to the transport.
    pub fn sent(&mut self, upto: u64) {
        self.sent = self.sent.max(upto);
    }

    /// A publish of the entries after `after` was not queued: send them again.
    pub fn deferred(&mut self, after: u64) {
        self.sent = self.sent.min(after.max(self.acked));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_resends_from_the_ack_after_silence_and_on_request() {
        let mut w = Window::new(3, 0);
        assert_eq!(w.next_read(10, 5), Some(3));
        assert_eq!(w.next_read(10, 5), None, "one read at a time");
        w.read_done();
        w.sent(8);
        assert_eq!(w.next_read(10, 5), None, "window full");
        assert!(!w.retransmit(1_000, 3_000));
        assert!(w.retransmit(3_001, 3_000));
        assert_eq!(w.next_read(10, 5), Some(3));
        w.read_done();
        w.sent(8);
        assert!(w.on_ack(6, false, 3_002));
        assert_eq!(w.next_read(10, 5), Some(8));
        w.read_done();
        assert!(!w.on_ack(2, true, 3_003), "a resend request may go back");
        assert_eq!(w.acked(), 2);
        assert_eq!(w.next_read(10, 5), Some(2));
    }

    #[test]
    fn a_deferred_publish_is_sent_again_but_never_below_the_ack() {
        let mut w = Window::new(4, 0);
        w.sent(9);
        w.deferred(6);
        assert_eq!(w.next_read(9, 100), Some(6));
        w.read_done();
        w.deferred(1);
        assert_eq!(w.next_read(9, 100), Some(4));
    }

    #[test]
    fn gap_requests_are_throttled() {
        let mut g = GapTimer::default();
        assert!(g.request(10));
        assert!(!g.request(500));
        assert!(g.request(1_011));
        g.clear();
        assert!(g.request(1_012));
    }
}
