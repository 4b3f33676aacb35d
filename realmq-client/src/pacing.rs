//! `--rate`: a token bucket per sender thread, driven by the thread's loop clock.
//!
//! Tokens accrue at `rate` per second of elapsed loop time, up to a small burst, and one
//! token pays for one message. The loop asks how many messages it may send now
//! ([`TokenBucket::take`]) and, when the bucket is empty, when the next token arrives
//! ([`TokenBucket::next_token_at`]) to wait for it in `poll`. Nothing sleeps per message,
//! and a late wake-up does not lose rate: the elapsed time still pays out (up to the burst).

use std::time::{Duration, Instant};

/// Longest stretch of rate that accumulates while the loop is busy elsewhere.
const BURST_TIME: Duration = Duration::from_millis(10);

/// A token bucket; rate 0 means unlimited.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket paying `rate` tokens per second (0: unlimited), empty at `now`: the first
    /// message goes `1 / rate` after the start, like every later one. The burst is 10 ms of
    /// rate but at least two tokens, so that a wake-up a little late keeps the fraction it
    /// earned (with a one-token cap, `--rate 100` sent 95 per second).
    pub(crate) fn new(rate: f64, now: Instant) -> Self {
        let burst = (rate * BURST_TIME.as_secs_f64()).max(2.0);
        Self {
            rate,
            burst,
            tokens: 0.0,
            last: now,
        }
    }

    /// Takes up to `max` whole tokens at `now`; returns how many.
    pub(crate) fn take(&mut self, now: Instant, max: u64) -> u64 {
        if self.rate == 0.0 {
            return max;
        }
        self.refill(now);
        let n = (self.tokens.floor() as u64).min(max);
        self.tokens -= n as f64;
        n
    }

    /// Returns `n` tokens taken but not used.
    pub(crate) fn give_back(&mut self, n: u64) {
        if self.rate > 0.0 {
            self.tokens = (self.tokens + n as f64).min(self.burst.max(n as f64));
        }
    }

    /// When at least one token is available; `None` when unlimited.
    pub(crate) fn next_token_at(&self, now: Instant) -> Option<Instant> {
        if self.rate == 0.0 {
            return None;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        let missing = 1.0 - (self.tokens + elapsed * self.rate);
        if missing <= 0.0 {
            return Some(now);
        }
        Some(now + Duration::from_secs_f64(missing / self.rate))
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_always_pays_in_full() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(0.0, t0);
        assert_eq!(b.take(t0, 256), 256);
        assert_eq!(b.next_token_at(t0), None);
    }

    #[test]
    fn pays_the_rate_over_simulated_time() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1_000.0, t0);
        // Empty to start with, then 1 per ms; walk 1 s in 0.5 ms steps.
        let mut sent = b.take(t0, 100);
        for step in 1..=2_000u64 {
            sent += b.take(t0 + Duration::from_micros(step * 500), 100);
        }
        assert_eq!(sent, 1_000);
    }

    #[test]
    fn a_late_wake_up_pays_out_at_most_the_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100_000.0, t0);
        assert_eq!(b.take(t0, u64::MAX), 0);
        // 1 s late: 100k tokens earned, capped at 10 ms worth.
        assert_eq!(b.take(t0 + Duration::from_secs(1), u64::MAX), 1_000);
    }

    #[test]
    fn tells_when_the_next_token_comes() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100.0, t0);
        assert_eq!(b.take(t0, 10), 0);
        let next = b.next_token_at(t0).unwrap();
        assert_eq!(next - t0, Duration::from_millis(10));
        assert_eq!(b.take(next, 10), 1);
        b.give_back(1);
        assert_eq!(b.next_token_at(next), Some(next));
    }

    #[test]
    fn late_wake_ups_keep_the_rate_at_low_rates() {
        // --rate 100, a loop that always wakes 0.6 ms after the token is due: over 10 s of
        // simulated time it still pays 100 per second.
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100.0, t0);
        let mut now = t0;
        let mut sent = 0;
        while now < t0 + Duration::from_secs(10) {
            now = b.next_token_at(now).unwrap() + Duration::from_micros(600);
            sent += b.take(now, 10);
        }
        assert!((999..=1_001).contains(&sent), "{sent}");
    }
}
