//! Where an op's time goes between nodes: the sync engines stamp one author's ops at each hop
//! they carry them through (seen in a commit, published, received, ingested, routed), so a
//! benchmark can split store -> HQ -> store latency into hops and show which one holds the
//! tail. Only when a probe is configured (`StoreSyncConfig::probe`, `HqSyncConfig::probe`,
//! benchmarks); without one each hop costs a branch. The first stamp of a seq at a hop wins,
//! so a resend never moves it.

use crate::domain::{ActorId, Op, StoreId};
use crate::sync::wire::{self, Message};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A point an op passes on its way from its author to HQ and on to another store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    /// The author's engine took the commit event carrying the op.
    StoreSeen,
    /// The author's engine handed the up-batch holding it to the MQTT client.
    StorePublished,
    /// HQ's engine took the up-batch from its link.
    HqReceived,
    /// HQ's engine handed the op to its writer (`Node::ingest`).
    HqIngestStart,
    /// HQ's writer committed it and answered the engine.
    HqIngestDone,
    /// HQ's engine read the op back from the log to route it.
    HqRouteRead,
    /// HQ's routing write (the op appended to down-logs) committed.
    HqRouted,
    /// HQ's engine read the op from a store's down-log and queued its publish.
    HqDownRead,
    /// The receiving store's engine took the down-batch from its link.
    StoreReceived,
    /// The receiving store's engine handed the op to its writer.
    StoreIngestStart,
    /// The receiving store's writer committed it.
    StoreIngestDone,
}

/// Every hop, in path order.
pub const HOPS: [Hop; 11] = [
    Hop::StoreSeen,
    Hop::StorePublished,
    Hop::HqReceived,
    Hop::HqIngestStart,
    Hop::HqIngestDone,
    Hop::HqRouteRead,
    Hop::HqRouted,
    Hop::HqDownRead,
    Hop::StoreReceived,
    Hop::StoreIngestStart,
    Hop::StoreIngestDone,
];

/// How many of `HOPS` lead from the author to HQ's commit (through `Hop::HqIngestDone`).
const TO_HQ_LEN: usize = 5;

/// The leg from the author to HQ's commit, in path order (the first hops of `HOPS`).
pub const TO_HQ: &[Hop] = HOPS.split_at(TO_HQ_LEN).0;

/// The leg from HQ's commit on to another store, in path order (the rest of `HOPS`).
pub const TO_STORE: &[Hop] = HOPS.split_at(TO_HQ_LEN).1;

impl Hop {
    /// Name in reports (`snake_case`).
    pub fn name(self) -> &'static str {
        match self {
            Hop::StoreSeen => "store_seen",
            Hop::StorePublished => "store_published",
            Hop::HqReceived => "hq_received",
            Hop::HqIngestStart => "hq_ingest_start",
            Hop::HqIngestDone => "hq_ingest_done",
            Hop::HqRouteRead => "hq_route_read",
            Hop::HqRouted => "hq_routed",
            Hop::HqDownRead => "hq_down_read",
            Hop::StoreReceived => "store_received",
            Hop::StoreIngestStart => "store_ingest_start",
            Hop::StoreIngestDone => "store_ingest_done",
        }
    }

    fn index(self) -> usize {
        HOPS.iter().position(|h| *h == self).unwrap_or(0)
    }
}

/// Work an engine waited on, summed (count, total time): what a catch-up spends its time in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// HQ reading a store's down-log.
    HqReadDown,
    /// HQ's `Node::ingest` of up-batches.
    HqIngest,
    /// HQ reading ops to route.
    HqRouteRead,
    /// HQ's routing write (runs beside the engine).
    HqRouteWrite,
    /// A store's `Node::ingest` of down-batches.
    StoreIngest,
}

/// Every busy kind, in report order.
pub const BUSY: [Busy; 5] = [
    Busy::HqReadDown,
    Busy::HqIngest,
    Busy::HqRouteRead,
    Busy::HqRouteWrite,
    Busy::StoreIngest,
];

impl Busy {
    pub fn name(self) -> &'static str {
        match self {
            Busy::HqReadDown => "hq_read_down",
            Busy::HqIngest => "hq_ingest",
            Busy::HqRouteRead => "hq_route_read",
            Busy::HqRouteWrite => "hq_route_write",
            Busy::StoreIngest => "store_ingest",
        }
    }

    fn index(self) -> usize {
        BUSY.iter().position(|b| *b == self).unwrap_or(0)
    }
}

/// Stamps of one author's ops at every hop, and the engines' busy time.
#[derive(Debug)]
pub struct Probe {
    /// Whose ops are stamped; `None`: none, busy time only.
    author: Option<ActorId>,
    marks: Mutex<Vec<HashMap<u64, Instant>>>,
    busy: Mutex<Vec<(u64, Duration)>>,
}

impl Probe {
    /// Stamp the ops of `author` only.
    pub fn new(author: ActorId) -> Probe {
        Probe {
            author: Some(author),
            ..Probe::busy_only()
        }
    }

    /// Record the engines' busy time only: stamping every op at every hop costs the engines
    /// CPU (a tenth of their samples in a catch-up) that a run measuring throughput would
    /// count against us.
    pub fn busy_only() -> Probe {
        Probe {
            author: None,
            marks: Mutex::new(vec![HashMap::new(); HOPS.len()]),
            busy: Mutex::new(vec![(0, Duration::ZERO); BUSY.len()]),
        }
    }

    /// Whether this probe stamps ops at hops: callers skip what they would compute only to
    /// stamp (decoding a payload again, copying a batch) when it does not.
    pub fn marks_hops(&self) -> bool {
        self.author.is_some()
    }

    /// `ops` (any author's; others are skipped) passed `hop` now.
    pub fn mark<'a>(&self, hop: Hop, ops: impl IntoIterator<Item = &'a Op>) {
        let Some(author) = &self.author else {
            return;
        };
        self.mark_seqs(
            hop,
            ops.into_iter()
                .filter(|op| op.actor == *author)
                .map(|op| op.seq),
        );
    }

    /// Seqs of `actor` passed `hop` now (skipped unless `actor` is the author).
    pub fn mark_range(&self, hop: Hop, actor: &ActorId, seqs: std::ops::RangeInclusive<u64>) {
        if self.author.as_ref() == Some(actor) {
            self.mark_seqs(hop, seqs);
        }
    }

    fn mark_seqs(&self, hop: Hop, seqs: impl Iterator<Item = u64>) {
        let now = Instant::now();
        let mut marks = self.marks.lock().unwrap_or_else(|p| p.into_inner());
        let at = &mut marks[hop.index()];
        for seq in seqs {
            at.entry(seq).or_insert(now);
        }
    }

    /// When each seq passed `hop`.
    pub fn at(&self, hop: Hop) -> HashMap<u64, Instant> {
        let marks = self.marks.lock().unwrap_or_else(|p| p.into_inner());
        marks[hop.index()].clone()
    }

    /// An engine spent `took` on `what`.
    pub fn busy(&self, what: Busy, took: Duration) {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        let slot = &mut busy[what.index()];
        slot.0 += 1;
        slot.1 += took;
    }

    /// How many times, and how long in all, engines spent on `what`.
    pub fn busy_total(&self, what: Busy) -> (u64, Duration) {
        let busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        busy[what.index()]
    }
}

/// The ops a sync payload carries (an up-batch, or a down-batch for `down_for`), for
/// stamping; empty for anything else or anything malformed (the engine refuses and counts
/// those).
pub fn ops_carried(payload: &[u8], down_for: Option<&StoreId>) -> Vec<Op> {
    match wire::decode(payload) {
        Ok(Message::Up(batch)) => batch.ops,
        Ok(Message::SignedUp(signed)) => wire::open_signed_up(&signed)
            .map(|b| b.ops)
            .unwrap_or_default(),
        Ok(msg) => match down_for.and_then(|store| wire::down_batch(&msg, store, None)) {
            Some(Ok(batch)) => batch.ops,
            _ => Vec::new(),
        },
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Hlc, Payload};

    fn op(actor: &ActorId, seq: u64) -> Op {
        Op {
            actor: actor.clone(),
            seq,
            hlc: Hlc::ZERO,
            payload: Payload::CustomerFollow {
                customer: crate::domain::CustomerId::parse("c-1").unwrap(),
                store: StoreId::parse("s1").unwrap(),
            },
        }
    }

    #[test]
    fn the_two_legs_meet_at_hqs_commit_and_cover_every_hop() {
        assert_eq!(TO_HQ.first(), Some(&Hop::StoreSeen));
        assert_eq!(TO_HQ.last(), Some(&Hop::HqIngestDone));
        assert_eq!(TO_STORE.first(), Some(&Hop::HqRouteRead));
        assert_eq!(TO_STORE.last(), Some(&Hop::StoreIngestDone));
        assert_eq!([TO_HQ, TO_STORE].concat(), HOPS);
    }

    #[test]
    fn only_the_authors_ops_are_stamped_and_the_first_stamp_stays() {
        let me = StoreId::parse("s1").unwrap().actor();
        let probe = Probe::new(me.clone());
        probe.mark(Hop::StoreSeen, &[op(&me, 1), op(&ActorId::hq(), 2)]);
        let first = probe.at(Hop::StoreSeen)[&1];
        probe.mark(Hop::StoreSeen, &[op(&me, 1)]);
        probe.mark_range(Hop::StorePublished, &ActorId::hq(), 1..=3);
        let seen = probe.at(Hop::StoreSeen);
        assert_eq!(seen.len(), 1, "hq's op is not the author's");
        assert_eq!(seen[&1], first, "a resend does not move the stamp");
        assert!(probe.at(Hop::StorePublished).is_empty());
        probe.busy(Busy::StoreIngest, Duration::from_millis(3));
        probe.busy(Busy::StoreIngest, Duration::from_millis(4));
        assert_eq!(
            probe.busy_total(Busy::StoreIngest),
            (2, Duration::from_millis(7))
        );
    }
}
