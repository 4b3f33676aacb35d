//! The set of received message IDs, in bounded memory.
//!
//! A receiver must remember every ID it has delivered, to discard the copies that resends and
//! duplicating links bring. IDs arrive nearly in order, so the set is kept as:
//!
//! - a **cumulative point** `c`: every ID below `c` has been received, and `c` has not;
//! - a short sorted list of disjoint, non-adjacent **ranges** above `c` (the islands that
//!   arrived past a gap), at most `max_ranges` of them.
//!
//! When an insert would need one range more than that, it is **refused**: the ID is not
//! recorded, so the caller must neither deliver nor acknowledge it, and the sender resends it
//! later, when the gaps below have filled and ranges have merged. Refusing never loses a
//! message and never lets one be delivered twice; it trades a resend for bounded memory and
//! an ACK that always fits one datagram. (Dropping the oldest range instead would forget IDs
//! that were delivered, and their resends would be delivered again.)
//!
//! This is the receiver-side analogue of the "small inline range set" quinn-proto and
//! s2n-quic keep for ACK ranges.

use core::ops::RangeInclusive;

/// What [`RangeSet::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Insert {
    /// The ID was not in the set and now is.
    New,
    /// The ID was already in the set.
    Duplicate,
    /// The ID is not in the set and was not added: it would have needed a range beyond
    /// `max_ranges`. Treat the message as not received.
    Refused,
}

/// A set of `u64` IDs as a cumulative point plus at most `max_ranges` ranges above it.
///
/// Memory is `O(max_ranges)`, allocated when the set is created. Inserting is
/// `O(log max_ranges)` to find the place plus `O(max_ranges)` to shift when a range is created
/// or two merge; at the top of the set (the common case) it is `O(1)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSet {
    /// Every ID below this is in the set; this one is not.
    cumulative: u64,
    /// Ascending, disjoint, non-adjacent `(first, last)` pairs, all with `first > cumulative`.
    ranges: Vec<(u64, u64)>,
    max_ranges: usize,
}

impl RangeSet {
    /// An empty set that keeps at most `max_ranges` ranges above the cumulative point (at
    /// least 1 is kept whatever is asked).
    pub fn new(max_ranges: usize) -> Self {
        let max_ranges = max_ranges.max(1);
        Self {
            cumulative: 0,
            ranges: Vec::with_capacity(max_ranges),
            max_ranges,
        }
    }

    /// Every ID below this one is in the set, and this one is not.
    pub fn cumulative(&self) -> u64 {
        self.cumulative
    }

    /// How many ranges lie above the cumulative point.
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    /// The most ranges kept above the cumulative point.
    pub fn max_ranges(&self) -> usize {
        self.max_ranges
    }

    /// Whether no ID is in the set.
    pub fn is_empty(&self) -> bool {
        self.cumulative == 0 && self.ranges.is_empty()
    }

    /// The largest ID in the set.
    pub fn largest(&self) -> Option<u64> {
        match self.ranges.last() {
            Some(&(_, last)) => Some(last),
            None => self.cumulative.checked_sub(1),
        }
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: u64) -> bool {
        if id < self.cumulative {
            return true;
        }
        let i = self.ranges.partition_point(|&(_, last)| last < id);
        self.ranges.get(i).is_some_and(|&(first, _)| first <= id)
    }

    /// Adds `id`, telling whether it was new, a duplicate, or refused for lack of a range.
    /// `u64::MAX` is always refused (the set could not say that every ID below the next one
    /// is in it); message IDs stay below 2^62.
    pub fn insert(&mut self, id: u64) -> Insert {
        if id < self.cumulative {
            return Insert::Duplicate;
        }
        if id == u64::MAX {
            return Insert::Refused;
        }
        // Fast path: at or beyond the top, where nearly every ID lands.
        let i = match self.ranges.last() {
            Some(&(_, last)) if id > last => self.ranges.len(),
            _ => self.ranges.partition_point(|&(_, last)| last < id),
        };
        if self.ranges.get(i).is_some_and(|&(first, _)| first <= id) {
            return Insert::Duplicate;
        }
        let joins_below = if i == 0 {
            id == self.cumulative
        } else {
            self.ranges[i - 1].1 + 1 == id
        };
        let joins_above = self
            .ranges
            .get(i)
            .is_some_and(|&(first, _)| first == id + 1);
        match (joins_below, joins_above) {
            (true, true) if i == 0 => {
                self.cumulative = self.ranges[0].1 + 1;
                self.ranges.remove(0);
            }
            (true, true) => {
                self.ranges[i - 1].1 = self.ranges[i].1;
                self.ranges.remove(i);
            }
            (true, false) if i == 0 => self.cumulative = id + 1,
            (true, false) => self.ranges[i - 1].1 = id,
            (false, true) => self.ranges[i].0 = id,
            (false, false) => {
                if self.ranges.len() == self.max_ranges {
                    return Insert::Refused;
                }
                self.ranges.insert(i, (id, id));
            }
        }
        Insert::New
    }

    /// Gives up the oldest gaps, at most `count` of them and only those wholly below `id`:
    /// the cumulative point moves past each one and the range above it, as if the gap's IDs
    /// had arrived. For a sender that never resends, whose gaps never fill, this makes room
    /// for `id`. Returns how many IDs were given up.
    pub fn forget_gaps_below(&mut self, id: u64, count: usize) -> u64 {
        let gaps = self
            .ranges
            .partition_point(|&(_, last)| last < id)
            .min(count);
        let Some(&(_, last)) = gaps.checked_sub(1).and_then(|i| self.ranges.get(i)) else {
            return 0;
        };
        let held: u64 = self.ranges[..gaps].iter().map(|&(f, l)| l - f + 1).sum();
        let forgotten = last + 1 - self.cumulative - held;
        self.cumulative = last + 1;
        self.ranges.drain(..gaps);
        forgotten
    }

    /// Inserts `first..=last` when it directly follows the largest ID held (or starts the
    /// set at the cumulative point): the in-order case, one update whatever its length.
    /// Returns false, changing nothing, for any other range (insert those ID by ID).
    pub fn extend_newest(&mut self, first: u64, last: u64) -> bool {
        if last < first || last == u64::MAX {
            return false;
        }
        match self.ranges.last_mut() {
            Some(newest) if newest.1.checked_add(1) == Some(first) => newest.1 = last,
            None if first == self.cumulative => self.cumulative = last + 1,
            _ => return false,
        }
        true
    }

    /// The set as ranges, newest (highest) first, the last one ending just below the
    /// cumulative point: what an ACK frame lists. Consecutive ranges are separated by at least
    /// one missing ID. Empty if the set is.
    pub fn iter_newest_first(&self) -> impl Iterator<Item = RangeInclusive<u64>> + Clone + '_ {
        let cumulative = self.cumulative.checked_sub(1).map(|last| 0..=last);
        self.ranges
            .iter()
            .rev()
            .map(|&(first, last)| first..=last)
            .chain(cumulative)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn ranges_of(set: &RangeSet) -> Vec<RangeInclusive<u64>> {
        set.iter_newest_first().collect()
    }

    /// The oracle's ranges, newest first.
    fn oracle_ranges(oracle: &BTreeSet<u64>) -> Vec<RangeInclusive<u64>> {
        let mut out: Vec<RangeInclusive<u64>> = Vec::new();
        for &id in oracle.iter().rev() {
            match out.last_mut() {
                Some(r) if *r.start() == id + 1 => *r = id..=*r.end(),
                _ => out.push(id..=id),
            }
        }
        out
    }

    #[test]
    fn in_order_ids_collapse_to_the_cumulative_point() {
        let mut set = RangeSet::new(4);
        for id in 0..1000 {
            assert_eq!(set.insert(id), Insert::New);
        }
        assert_eq!(set.cumulative(), 1000);
        assert_eq!(set.range_count(), 0);
        assert_eq!(ranges_of(&set), [0..=999]);
        assert_eq!(set.insert(500), Insert::Duplicate);
        assert_eq!(set.largest(), Some(999));
    }

    #[test]
    fn gaps_make_ranges_that_merge_when_filled() {
        let mut set = RangeSet::new(4);
        for id in [0, 1, 5, 6, 3, 9] {
            assert_eq!(set.insert(id), Insert::New);
        }
        assert_eq!(ranges_of(&set), [9..=9, 5..=6, 3..=3, 0..=1]);
        assert_eq!(set.insert(4), Insert::New); // joins 3 and 5..=6
        assert_eq!(ranges_of(&set), [9..=9, 3..=6, 0..=1]);
        assert_eq!(set.insert(2), Insert::New); // joins the cumulative point and 3..=6
        assert_eq!(set.cumulative(), 7);
        assert_eq!(ranges_of(&set), [9..=9, 0..=6]);
        assert_eq!(set.insert(6), Insert::Duplicate);
        assert_eq!(set.insert(9), Insert::Duplicate);
        assert!(set.contains(9) && !set.contains(8) && !set.contains(10));
    }

    #[test]
    fn a_new_range_beyond_the_bound_is_refused_and_nothing_is_forgotten() {
        let mut set = RangeSet::new(2);
        assert_eq!(set.insert(2), Insert::New);
        assert_eq!(set.insert(4), Insert::New);
        assert_eq!(set.insert(6), Insert::Refused);
        assert!(!set.contains(6));
        // Extending an existing range or the cumulative point needs no new range.
        assert_eq!(set.insert(5), Insert::New);
        assert_eq!(set.insert(0), Insert::New);
        assert_eq!(ranges_of(&set), [4..=5, 2..=2, 0..=0]);
        assert_eq!(set.insert(6), Insert::New);
        assert_eq!(set.insert(1), Insert::New);
        assert_eq!(ranges_of(&set), [4..=6, 0..=2]);
        assert_eq!(set.insert(u64::MAX), Insert::Refused);
    }

    #[test]
    fn empty_set() {
        let set = RangeSet::new(0);
        assert!(set.is_empty());
        assert_eq!(set.largest(), None);
        assert_eq!(set.max_ranges(), 1);
        assert_eq!(set.iter_newest_first().count(), 0);
    }

    proptest! {
        /// With room for every range, the set is exactly a `BTreeSet`.
        #[test]
        fn matches_a_btreeset(ids in proptest::collection::vec(0u64..300, 0..400)) {
            let mut set = RangeSet::new(1000);
            let mut oracle = BTreeSet::new();
            for id in ids {
                let expected = if oracle.insert(id) { Insert::New } else { Insert::Duplicate };
                prop_assert_eq!(set.insert(id), expected);
            }
            prop_assert_eq!(ranges_of(&set), oracle_ranges(&oracle));
            prop_assert_eq!(set.largest(), oracle.last().copied());
            for id in 0..310 {
                prop_assert_eq!(set.contains(id), oracle.contains(&id));
            }
        }

        /// Runs appended with `extend_newest` among single inserts: the set is exactly a
        /// `BTreeSet`, and a run is taken exactly when it starts right above the largest ID.
        #[test]
        fn extending_the_newest_range_matches_a_btreeset(
            ops in proptest::collection::vec((0u64..300, 0u64..20, any::<bool>()), 0..200),
        ) {
            let mut set = RangeSet::new(1000);
            let mut oracle = BTreeSet::new();
            for (id, len, run) in ops {
                if run {
                    // Half the runs start right above the largest ID, the rest anywhere.
                    let next = oracle.last().map_or(0, |&l| l + 1);
                    let first = if id % 2 == 0 { next } else { id };
                    let last = first + len;
                    let follows = first == next;
                    prop_assert_eq!(set.extend_newest(first, last), follows);
                    if follows {
                        oracle.extend(first..=last);
                    }
                } else {
                    let expected = if oracle.insert(id) { Insert::New } else { Insert::Duplicate };
                    prop_assert_eq!(set.insert(id), expected);
                }
            }
            prop_assert_eq!(ranges_of(&set), oracle_ranges(&oracle));
            prop_assert_eq!(set.largest(), oracle.last().copied());
        }

        /// Forgetting gaps below an ID: the set is the oracle with those gaps filled, and the
        /// count returned is how many IDs were filled in.
        #[test]
        fn forgotten_gaps_read_as_received(
            ids in proptest::collection::vec(0u64..300, 0..200),
            below in 0u64..320,
            count in 0usize..8,
        ) {
            let mut set = RangeSet::new(1000);
            let mut oracle = BTreeSet::new();
            for id in ids {
                set.insert(id);
                oracle.insert(id);
            }
            let ranges: Vec<_> = oracle_ranges(&oracle).into_iter().rev().collect();
            // Ranges above the cumulative point, oldest first; the oldest `count` of them
            // that end below `below` are the ones whose gaps go.
            let above: Vec<_> = ranges
                .iter()
                .filter(|r| *r.start() > 0)
                .filter(|r| *r.end() < below)
                .take(count)
                .collect();
            let filled = above.last().map_or(0, |r| {
                (0..=*r.end()).filter(|id| !oracle.contains(id)).count() as u64
            });
            if let Some(r) = above.last() {
                oracle.extend(0..=*r.end());
            }
            prop_assert_eq!(set.forget_gaps_below(below, count), filled);
            prop_assert_eq!(ranges_of(&set), oracle_ranges(&oracle));
        }

        /// With few ranges, refusals happen, but the set still holds exactly the IDs it
        /// answered `New` for: nothing recorded is ever forgotten, nothing refused is kept.
        #[test]
        fn bounded_set_never_loses_what_it_accepted(
            ids in proptest::collection::vec(0u64..200, 0..400),
            max in 1usize..6,
        ) {
            let mut set = RangeSet::new(max);
            let mut oracle = BTreeSet::new();
            for id in ids {
                match set.insert(id) {
                    Insert::New => prop_assert!(oracle.insert(id)),
                    Insert::Duplicate => prop_assert!(oracle.contains(&id)),
                    Insert::Refused => {
                        prop_assert!(!oracle.contains(&id));
                        prop_assert_eq!(set.range_count(), max);
                    }
                }
                prop_assert!(set.range_count() <= max);
            }
            prop_assert_eq!(ranges_of(&set), oracle_ranges(&oracle));
        }
    }
}
