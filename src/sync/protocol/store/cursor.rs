//! Where a store's down stream stands: the lease epoch that numbers it and the last index of
//! that numbering applied, persisted as one `u64` under the old `down_idx` key
//! (`KEY_DOWN_IDX`). Packed as `epoch << IDX_BITS | idx`, the value only rises as the store
//! moves on (a higher epoch, or a higher index in the same one), so the background cursor
//! writes that keep the larger of two values (`persist::raise_u64`) stay right, and a file
//! written before epochs existed reads as epoch 0 at the same index.

/// Bits of the packed value that hold the index (about 10^12 entries per epoch).
pub const IDX_BITS: u32 = 40;
/// Largest index one epoch can number.
pub const IDX_MAX: u64 = (1 << IDX_BITS) - 1;
/// Largest epoch: the packed value stays below 2^63, as SQLite's integers must.
pub const EPOCH_MAX: u64 = (1 << (63 - IDX_BITS)) - 1;

/// The store's position in HQ's down stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct DownCursor {
    pub epoch: u64,
    pub idx: u64,
}

impl DownCursor {
    /// The persisted form; `epoch <= EPOCH_MAX` and `idx <= IDX_MAX` (checked on receipt).
    pub fn pack(self) -> u64 {
        debug_assert!(self.epoch <= EPOCH_MAX && self.idx <= IDX_MAX);
        (self.epoch.min(EPOCH_MAX) << IDX_BITS) | self.idx.min(IDX_MAX)
    }

    pub fn unpack(packed: u64) -> DownCursor {
        DownCursor {
            epoch: (packed >> IDX_BITS) & EPOCH_MAX,
            idx: packed & IDX_MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_cursor_written_before_epochs_reads_as_epoch_zero_at_the_same_index() {
        assert_eq!(
            DownCursor::unpack(1_234),
            DownCursor {
                epoch: 0,
                idx: 1_234
            }
        );
    }

    proptest! {
        #[test]
        fn packing_round_trips_and_keeps_the_order(
            a in (0..=EPOCH_MAX, 0..=IDX_MAX),
            b in (0..=EPOCH_MAX, 0..=IDX_MAX),
        ) {
            let (a, b) = (
                DownCursor { epoch: a.0, idx: a.1 },
                DownCursor { epoch: b.0, idx: b.1 },
            );
            prop_assert_eq!(DownCursor::unpack(a.pack()), a);
            prop_assert!(a.pack() < (1 << 63));
            prop_assert_eq!(a.cmp(&b), a.pack().cmp(&b.pack()));
        }
    }
}
