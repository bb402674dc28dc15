//! Hybrid logical clock: wall-clock milliseconds plus a counter, so timestamps follow real time
//! when clocks agree and stay causally ordered when they do not.
//!
//! The clock never reads time itself: callers pass `now_ms`. A timestamp issued after observing
//! a remote one is always greater than it, even if the local wall clock lags behind.

use serde::{Deserialize, Serialize};

/// A point in hybrid logical time. Ordered by wall time, then counter.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Hlc {
    wall_ms: u64,
    counter: u32,
}

impl Hlc {
    pub const ZERO: Hlc = Hlc {
        wall_ms: 0,
        counter: 0,
    };

    pub fn new(wall_ms: u64, counter: u32) -> Hlc {
        Hlc { wall_ms, counter }
    }
    pub fn wall_ms(&self) -> u64 {
        self.wall_ms
    }
    pub fn counter(&self) -> u32 {
        self.counter
    }

    /// The next timestamp for a local event at wall time `now_ms`.
    pub fn tick(&mut self, now_ms: u64) -> Hlc {
        if now_ms > self.wall_ms {
            self.wall_ms = now_ms;
            self.counter = 0;
        } else {
            self.counter = self.counter.saturating_add(1);
        }
        *self
    }

    /// Merge a timestamp seen on a remote operation so later local ticks exceed it.
    pub fn observe(&mut self, remote: Hlc) {
        if remote > *self {
            *self = remote;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_strictly_increasing_even_when_the_wall_clock_goes_back() {
        let mut clock = Hlc::ZERO;
        let a = clock.tick(1_000);
        let b = clock.tick(900);
        let c = clock.tick(1_000);
        assert!(a < b && b < c);
    }

    #[test]
    fn a_tick_after_observing_a_remote_timestamp_exceeds_it() {
        let mut clock = Hlc::ZERO;
        clock.tick(10);
        let remote = Hlc::new(5_000, 7);
        clock.observe(remote);
        assert!(clock.tick(20) > remote);
    }
}
