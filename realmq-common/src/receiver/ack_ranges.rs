//! Choosing the ranges of an ACK frame that fits its datagram.
//!
//! An ACK normally lists every range of received IDs. With many gaps (a long lossy window)
//! the list may not fit; `realmq-proto` would then leave out the *oldest* ranges, and with
//! them the cumulative point the sender needs most to advance its window. Instead the
//! receiver picks the ranges itself: the newest ones (half the budget), then older ones from
//! a cursor that rotates down through the list from one ACK to the next, then the range ending
//! at the cumulative point. A range left out is not a denial (ACK ranges only ever
//! acknowledge, RFC 9000 §19.3), and the rotation reports every range within a few ACKs.
//!
//! The frame's size arithmetic is `realmq-proto`'s ([`ack_head_len`], [`ack_range_len`]):
//! the writer uses the same functions.

use core::ops::RangeInclusive;

use realmq_proto::{ack_head_len, ack_range_len};

/// The bytes one range adds after a range whose smallest ID is `prev_smallest`; a range the
/// writer would refuse never fits.
fn pair_cost(prev_smallest: u64, range: &RangeInclusive<u64>) -> usize {
    ack_range_len(prev_smallest, range).unwrap_or(usize::MAX)
}

/// Fills `out` with a subset of `ranges` (newest first) whose ACK frame fits `budget` bytes:
/// the newest range, more newest ones within half the budget, older ones from `cursor` down
/// (advancing it, wrapping to the top at the bottom), and the range starting at 0 (the
/// cumulative point) if there is one. Returns false if not even the newest and the
/// cumulative range fit (or the newest is one the writer refuses).
pub(super) fn select<I>(
    ranges: I,
    delay_us: u64,
    budget: usize,
    cursor: &mut u64,
    out: &mut Vec<RangeInclusive<u64>>,
) -> bool
where
    I: Iterator<Item = RangeInclusive<u64>> + Clone,
{
    out.clear();
    let mut iter = ranges.peekable();
    let Some(first) = iter.next() else {
        return false;
    };
    let Ok(fixed) = ack_head_len(&first, delay_us) else {
        return false;
    };
    // Room for the cumulative range's pair and the range count, at their largest.
    let reserve = 16 + 4;
    let Some(mut left) = budget.checked_sub(fixed + reserve) else {
        return false;
    };
    let mut prev = *first.start();
    out.push(first);
    let is_cumulative = |r: &RangeInclusive<u64>| *r.start() == 0;
    // Newest ranges, within half of what is left.
    let half = left / 2;
    let mut used = 0;
    while let Some(range) = iter.peek() {
        if is_cumulative(range) {
            break;
        }
        let cost = pair_cost(prev, range);
        if cost > half - used {
            break;
        }
        used += cost;
        prev = *range.start();
        out.push(iter.next().expect("peeked"));
    }
    left -= used;
    // Older ranges, from the cursor down.
    let mut reached_bottom = true;
    for range in iter.by_ref() {
        if is_cumulative(&range) {
            out.push(range);
            break;
        }
        if *range.end() >= *cursor {
            continue;
        }
        let cost = pair_cost(prev, &range);
        if cost > left {
            reached_bottom = false;
            *cursor = prev;
            // Skip to the cumulative range, if any.
            if let Some(cumulative) = iter.clone().find(|r| is_cumulative(r)) {
                out.push(cumulative);
            }
            break;
        }
        left -= cost;
        prev = *range.start();
        out.push(range);
    }
    if reached_bottom {
        *cursor = u64::MAX;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use realmq_proto::{Datagram, DatagramWriter, Frame, Header};

    /// Ranges `[10k, 10k + 1]` for k = n down to 1, then the cumulative range `[0, 5]`.
    fn many(n: u64) -> Vec<RangeInclusive<u64>> {
        let mut v: Vec<_> = (1..=n).rev().map(|k| 10 * k..=10 * k + 1).collect();
        v.push(0..=5);
        v
    }

    fn written_len(ranges: &[RangeInclusive<u64>]) -> usize {
        let mut buf = [0u8; 4096];
        let mut w = DatagramWriter::new(&mut buf, 4096, Header::session(1)).unwrap();
        let before = w.len();
        w.ack(ranges.iter().cloned(), 1234).unwrap();
        w.len() - before
    }

    #[test]
    fn a_partial_ack_keeps_newest_and_cumulative_and_rotates_the_rest() {
        let ranges = many(1000);
        let budget = 300;
        let mut cursor = u64::MAX;
        let mut out = Vec::new();
        let mut reported = std::collections::BTreeSet::new();
        for round in 0..40 {
            assert!(select(
                ranges.iter().cloned(),
                1234,
                budget,
                &mut cursor,
                &mut out
            ));
            assert!(written_len(&out) <= budget, "round {round}");
            assert_eq!(out.first(), ranges.first());
            assert_eq!(out.last(), Some(&(0..=5)));
            // Strictly descending, as the writer requires.
            let mut buf = [0u8; 4096];
            let mut w = DatagramWriter::new(&mut buf, 4096, Header::session(1)).unwrap();
            let summary = w.ack(out.iter().cloned(), 1234).unwrap();
            assert!(!summary.truncated);
            let len = w.finish();
            let d = Datagram::parse(&buf[..len]).unwrap();
            let Some(Frame::Ack(ack)) = d.frames().next() else {
                panic!()
            };
            reported.extend(ack.ranges().map(|r| *r.start()));
        }
        // Every range was reported at least once in 40 ACKs of ~70 ranges each.
        assert_eq!(reported.len(), ranges.len());
    }

    #[test]
    fn nothing_fits_in_a_tiny_budget() {
        let mut cursor = u64::MAX;
        let mut out = Vec::new();
        assert!(!select(many(10).into_iter(), 0, 10, &mut cursor, &mut out));
    }
}
