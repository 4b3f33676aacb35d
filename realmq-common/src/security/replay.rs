//! The anti-replay sliding window: which datagram counters a receiver has already accepted.
//!
//! The idea is IPsec's (RFC 4303 §3.4.3), laid out as RFC 6479 does: the highest counter
//! accepted so far plus a bitmap of the counters just below it. A counter is
//!
//! - **new** when it is above the highest, or inside the window and its bit is clear;
//! - **replayed** when it is inside the window and its bit is set;
//! - **too old** when it is [`REPLAY_WINDOW`] or more below the highest: the window no longer
//!   remembers it, so it is refused whether or not it was seen.
//!
//! The bitmap is a ring of 64-bit words indexed by `counter / 64`, with one word more than the
//! window needs (RFC 6479 §2): when the highest counter moves up, the words it passes over are
//! cleared whole, so the work per call is `O(1)` amortised (at most one pass over the fixed
//! array on a jump of a whole window) and nothing is allocated after construction.
//!
//! # Why 4096
//!
//! The load generator sends hundreds of thousands of datagrams per second, and a busy host
//! (receive queues spread over cores, a shaping `netem` link, a switch reordering a burst)
//! can deliver a few thousand of them out of order. A counter that falls out of the window
//! is refused as [`ReplayError::TooOld`] although it is genuine; that costs no message (the
//! QoS layer resends it under a new counter) but costs a resend, so the window should be
//! wider than any reordering we expect: 4096 datagrams are about 8 ms of traffic at
//! 500,000 datagrams per second, 20 times IPsec's usual 64..1024. The cost is 520 bytes per
//! receiving direction (65 words) and still `O(1)` per datagram.

/// How many counters at and below the highest accepted one the window remembers: a counter
/// `REPLAY_WINDOW` or more below the highest is refused as [`ReplayError::TooOld`].
pub const REPLAY_WINDOW: u64 = 4096;

/// Bits per bitmap word.
const WORD_BITS: u64 = u64::BITS as u64;

/// Words in the ring: the window's worth plus one, so that the word holding the highest
/// counter (only partly inside the window) never shares its slot with a word still inside
/// the window (RFC 6479 §2).
const WORDS: usize = (REPLAY_WINDOW / WORD_BITS) as usize + 1;

/// Why [`ReplayWindow::check`] refused a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ReplayError {
    /// The counter is inside the window and was already accepted.
    #[error("counter already accepted (replayed datagram)")]
    Replayed,
    /// The counter is [`REPLAY_WINDOW`] or more below the highest accepted one.
    #[error("counter is {REPLAY_WINDOW} or more below the highest accepted one")]
    TooOld,
}

/// The set of accepted counters, as the highest one plus a bitmap of the [`REPLAY_WINDOW`]
/// counters below it (RFC 4303 §3.4.3, RFC 6479).
///
/// Use it in two steps, so that a forged datagram cannot move the window: [`check`] a
/// counter before the (more expensive) authentication, and [`mark`] it only once the datagram
/// has proven genuine.
///
/// [`check`]: ReplayWindow::check
/// [`mark`]: ReplayWindow::mark
#[derive(Clone, PartialEq, Eq)]
pub struct ReplayWindow {
    /// The highest counter marked so far, if any.
    highest: Option<u64>,
    /// Bit `c % 64` of word `(c / 64) % WORDS` tells whether counter `c` was marked, for every
    /// counter whose word is within `WORDS - 1` words of the highest's.
    bits: [u64; WORDS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self {
            highest: None,
            bits: [0; WORDS],
        }
    }
}

impl core::fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("highest", &self.highest)
            .finish_non_exhaustive()
    }
}

/// The ring slot and the bit mask of a counter.
fn position(counter: u64) -> (usize, u64) {
    // The remainder is below WORDS, so it fits a usize.
    let slot = ((counter / WORD_BITS) % WORDS as u64) as usize;
    (slot, 1 << (counter % WORD_BITS))
}

impl ReplayWindow {
    /// The highest counter marked so far, or `None` before the first.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// Whether `counter` would be accepted now. Changes nothing.
    pub fn check(&self, counter: u64) -> Result<(), ReplayError> {
        let Some(highest) = self.highest else {
            return Ok(());
        };
        if counter > highest {
            return Ok(());
        }
        if highest - counter >= REPLAY_WINDOW {
            return Err(ReplayError::TooOld);
        }
        let (slot, mask) = position(counter);
        if self.bits[slot] & mask != 0 {
            Err(ReplayError::Replayed)
        } else {
            Ok(())
        }
    }

    /// Records `counter` as accepted; call it after [`check`](Self::check) passed and the
    /// datagram authenticated. Marking a counter that `check` would refuse changes nothing
    /// (a too-old counter is not remembered; a replayed one already is).
    pub fn mark(&mut self, counter: u64) {
        match self.highest {
            Some(highest) if counter <= highest => {
                if highest - counter >= REPLAY_WINDOW {
                    return;
                }
            }
            Some(highest) => {
                // Slide up: the words strictly above the old highest's, up to the new
                // highest's, hold nothing accepted yet. Clear them (at most the whole ring).
                let old_word = highest / WORD_BITS;
                let new_word = counter / WORD_BITS;
                if new_word - old_word >= WORDS as u64 {
                    self.bits = [0; WORDS];
                } else {
                    for word in old_word + 1..=new_word {
                        self.bits[(word % WORDS as u64) as usize] = 0;
                    }
                }
                self.highest = Some(counter);
            }
            None => self.highest = Some(counter),
        }
        let (slot, mask) = position(counter);
        self.bits[slot] |= mask;
    }

    /// [`check`](Self::check), then [`mark`](Self::mark) if it passed: for a receiver that
    /// has already authenticated the datagram.
    pub fn check_and_mark(&mut self, counter: u64) -> Result<(), ReplayError> {
        self.check(counter)?;
        self.mark(counter);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn fresh_window_accepts_anything_once() {
        let mut w = ReplayWindow::default();
        assert_eq!(w.highest(), None);
        assert_eq!(w.check_and_mark(7), Ok(()));
        assert_eq!(w.check_and_mark(7), Err(ReplayError::Replayed));
        assert_eq!(w.check_and_mark(3), Ok(()));
        assert_eq!(w.check_and_mark(3), Err(ReplayError::Replayed));
        assert_eq!(w.check_and_mark(0), Ok(()));
        assert_eq!(w.highest(), Some(7));
    }

    #[test]
    fn window_edges() {
        let mut w = ReplayWindow::default();
        let top = 10_000;
        w.mark(top);
        // The oldest counter still remembered, and the first one forgotten.
        assert_eq!(w.check(top - (REPLAY_WINDOW - 1)), Ok(()));
        assert_eq!(w.check(top - REPLAY_WINDOW), Err(ReplayError::TooOld));
        w.mark(top - (REPLAY_WINDOW - 1));
        assert_eq!(
            w.check(top - (REPLAY_WINDOW - 1)),
            Err(ReplayError::Replayed)
        );
        // Marking a too-old counter is ignored.
        w.mark(top - REPLAY_WINDOW);
        assert_eq!(w.check(top - REPLAY_WINDOW), Err(ReplayError::TooOld));
        // One step up pushes the oldest one out.
        w.mark(top + 1);
        assert_eq!(w.check(top - (REPLAY_WINDOW - 1)), Err(ReplayError::TooOld));
    }

    #[test]
    fn every_counter_of_a_reordered_burst_is_accepted_once() {
        let mut w = ReplayWindow::default();
        // Blocks of 4000 sent in order, delivered in reverse within each block.
        for block in 0..20u64 {
            for i in (0..4000u64).rev() {
                assert_eq!(w.check_and_mark(block * 4000 + i), Ok(()));
            }
        }
        for c in 80_000 - 4000..80_000 {
            assert_eq!(w.check(c), Err(ReplayError::Replayed));
        }
    }

    #[test]
    fn in_order_the_oldest_remembered_counter_stays_remembered() {
        // At every position of the highest counter within its word, the counter at the left
        // edge of the window must still read as seen: this is what the ring's spare word is for.
        let mut w = ReplayWindow::default();
        for top in 0..3 * REPLAY_WINDOW {
            assert_eq!(w.check_and_mark(top), Ok(()));
            if let Some(edge) = top.checked_sub(REPLAY_WINDOW - 1) {
                assert_eq!(w.check(edge), Err(ReplayError::Replayed), "top {top}");
                if edge > 0 {
                    assert_eq!(w.check(edge - 1), Err(ReplayError::TooOld), "top {top}");
                }
            }
        }
    }

    #[test]
    fn a_jump_forgets_everything_below_the_new_window() {
        let mut w = ReplayWindow::default();
        for c in 0..100 {
            w.mark(c);
        }
        w.mark(1_000_000);
        for c in 1_000_000 - (REPLAY_WINDOW - 1)..1_000_000 {
            assert_eq!(w.check(c), Ok(()), "{c}");
        }
        assert_eq!(w.check(99), Err(ReplayError::TooOld));
    }

    #[test]
    fn the_top_of_the_counter_space() {
        let mut w = ReplayWindow::default();
        w.mark(u64::MAX - 1);
        assert_eq!(w.check_and_mark(u64::MAX), Ok(()));
        assert_eq!(w.check(u64::MAX), Err(ReplayError::Replayed));
        assert_eq!(w.check(u64::MAX - 1), Err(ReplayError::Replayed));
        assert_eq!(w.check(u64::MAX - 2), Ok(()));
        assert_eq!(w.check(0), Err(ReplayError::TooOld));
    }

    /// The oracle: every accepted counter in a `BTreeSet`, with the same window rule.
    #[derive(Default)]
    struct Oracle {
        seen: BTreeSet<u64>,
    }

    impl Oracle {
        fn check(&self, counter: u64) -> Result<(), ReplayError> {
            match self.seen.last() {
                None => Ok(()),
                Some(&highest) if counter > highest => Ok(()),
                Some(&highest) if highest - counter >= REPLAY_WINDOW => Err(ReplayError::TooOld),
                Some(_) if self.seen.contains(&counter) => Err(ReplayError::Replayed),
                Some(_) => Ok(()),
            }
        }
    }

    /// Where the next counter comes from, relative to the oracle's highest.
    #[derive(Debug, Clone)]
    enum Step {
        /// Near the highest: reordering, duplicates, the window's edge.
        Near(i64),
        /// Forward by up to a few windows.
        Jump(u64),
        /// Anywhere, the edges of the counter space included.
        Anywhere(u64),
        /// A counter tried before (a replay, or a retry of one refused), at any age.
        Again(prop::sample::Index),
    }

    fn step() -> impl Strategy<Value = (Step, bool)> {
        let step = prop_oneof![
            8 => (-(REPLAY_WINDOW as i64) - 200..200i64).prop_map(Step::Near),
            2 => (0..3 * REPLAY_WINDOW).prop_map(Step::Jump),
            1 => prop_oneof![any::<u64>(), Just(u64::MAX), Just(0)].prop_map(Step::Anywhere),
            8 => any::<prop::sample::Index>().prop_map(Step::Again),
        ];
        // The flag: whether the datagram authenticates (only then is a new counter marked).
        (step, prop::bool::weighted(0.9))
    }

    proptest! {
        /// Same decisions as the `BTreeSet` oracle, over any sequence of counters, with some
        /// counters checked but not marked (datagrams whose tag fails).
        #[test]
        fn matches_a_btreeset_oracle(steps in prop::collection::vec(step(), 1..2000)) {
            let mut window = ReplayWindow::default();
            let mut oracle = Oracle::default();
            let mut tried = Vec::new();
            for (step, genuine) in steps {
                let base = oracle.seen.last().copied().unwrap_or(0);
                let counter = match step {
                    Step::Near(d) => base.saturating_add_signed(d),
                    Step::Jump(d) => base.saturating_add(d),
                    Step::Anywhere(c) => c,
                    Step::Again(_) if tried.is_empty() => base,
                    Step::Again(i) => *i.get(&tried),
                };
                tried.push(counter);
                let decision = window.check(counter);
                prop_assert_eq!(decision, oracle.check(counter), "counter {}", counter);
                if decision.is_ok() && genuine {
                    window.mark(counter);
                    oracle.seen.insert(counter);
                }
                prop_assert_eq!(window.highest(), oracle.seen.last().copied());
            }
        }
    }
}
