//! The store's own ops as its commits reported them, newest last: an up-batch of ops the
//! store just committed is published from here instead of being read back from SQLite
//! (`StoreAction::ReadOutbox`), which saves the hop to the blocking pool and the read on the
//! replicate path. It only ever holds committed ops (commit events come after the commit),
//! contiguous in seq; anything else (a lagging subscriber, an erasure that rewrote earlier ops
//! in the log, a gap) empties it, and the outbox is then read from the log as before.

use crate::domain::{ActorId, Op, Payload};
use std::collections::VecDeque;

/// Own committed ops after the ack, contiguous in seq, at most `cap`.
#[derive(Debug)]
pub(super) struct Recent {
    ops: VecDeque<Op>,
    cap: usize,
}

impl Recent {
    pub(super) fn new(cap: usize) -> Recent {
        Recent {
            ops: VecDeque::new(),
            cap,
        }
    }

    /// Ops were committed (any actor's): keep `me`'s, in seq order.
    pub(super) fn committed(&mut self, me: &ActorId, ops: &[Op]) {
        if ops
            .iter()
            .any(|op| matches!(op.payload, Payload::CustomerErase { .. }))
        {
            // The erasure rewrote earlier ops in the log: only the log has their stored form.
            self.ops.clear();
            return;
        }
        for op in ops.iter().filter(|op| &op.actor == me) {
            match self.ops.back().map(|last| last.seq) {
                Some(last) if op.seq <= last => continue,
                Some(last) if op.seq != last + 1 => self.ops.clear(),
                _ => {}
            }
            self.ops.push_back(op.clone());
            if self.ops.len() > self.cap {
                self.ops.pop_front();
            }
        }
    }

    /// Commits may have been missed: nothing here can be trusted to be contiguous.
    pub(super) fn clear(&mut self) {
        self.ops.clear();
    }

    /// HQ holds everything up to `seq`: those are never published again.
    pub(super) fn acked(&mut self, seq: u64) {
        while self.ops.front().is_some_and(|op| op.seq <= seq) {
            self.ops.pop_front();
        }
    }

    /// The ops after `after`, at most `limit`, if the next one (`after + 1`) is held.
    pub(super) fn after(&self, after: u64, limit: usize) -> Option<Vec<Op>> {
        let first = self.ops.front()?.seq;
        if after + 1 < first || self.ops.back()?.seq <= after {
            return None;
        }
        let skip = (after + 1 - first) as usize;
        Some(self.ops.iter().skip(skip).take(limit).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CustomerId, Hlc, Sku, StoreId};

    /// `n` own ops of store `s1`, seqs 1..=n (only actors and seqs matter here).
    fn own(n: u64) -> (ActorId, Vec<Op>) {
        let me = StoreId::parse("s1").unwrap().actor();
        let ops = (1..=n)
            .map(|seq| Op {
                actor: me.clone(),
                seq,
                hlc: Hlc::ZERO,
                payload: Payload::CartSet {
                    customer: CustomerId::parse("c-1").unwrap(),
                    sku: Sku::parse("SKU-1").unwrap(),
                    qty: 1,
                },
            })
            .collect();
        (me, ops)
    }

    #[test]
    fn ops_after_the_ack_are_served_only_when_the_next_one_is_held() {
        let (me, ops) = own(5);
        let mut recent = Recent::new(3);
        recent.committed(&me, &ops[..2]);
        assert_eq!(recent.after(0, 10).unwrap(), ops[..2].to_vec());
        recent.committed(&me, &ops[2..]);
        // Capped at 3: seqs 3..=5 are held, so a read after 1 must go to the log.
        assert_eq!(recent.after(1, 10), None);
        assert_eq!(recent.after(2, 2).unwrap(), ops[2..4].to_vec());
        assert_eq!(recent.after(5, 10), None, "nothing after the last");
        recent.acked(4);
        assert_eq!(recent.after(4, 10).unwrap(), ops[4..].to_vec());
    }

    #[test]
    fn a_gap_or_an_erasure_empties_it() {
        let (me, ops) = own(4);
        let mut recent = Recent::new(10);
        recent.committed(&me, &ops[..1]);
        recent.committed(&me, &ops[2..3]);
        assert_eq!(recent.after(0, 10), None, "seq 1 went with the gap");
        assert_eq!(recent.after(2, 10).unwrap(), ops[2..3].to_vec());
        let mut erase = ops[3].clone();
        erase.payload = Payload::CustomerErase {
            customer: CustomerId::parse("c-1").unwrap(),
        };
        recent.committed(&me, &[erase]);
        assert_eq!(recent.after(2, 10), None);
    }
}
