//! `--busy-poll`: how long a serving loop keeps polling its sockets after the last thing
//! that arrived before it lets `poll` sleep.
//!
//! A loop that sleeps as soon as its socket is empty is woken by the kernel for the next
//! datagram: on this machine that wake-up was most of a paced message's one-way latency on
//! loopback (p50 35–41 µs sleeping, 5–6 µs polling, `docs/BENCHMARKS.md`), and the sender's
//! system call pays for it. Polling on for a while, as Aeron's busy-spin and back-off idle
//! strategies do, trades a core kept busy while traffic flows for that wake-up. Off (zero)
//! by default: the loop then sleeps at once, as it always did.

use std::time::{Duration, Instant};

/// The busy-poll window and when the loop last had work.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BusyPoll {
    window: Duration,
    last_activity: Option<Instant>,
}

impl BusyPoll {
    /// Keeps polling for `window` after each arrival (zero: never).
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            window,
            last_activity: None,
        }
    }

    /// Something arrived at `now`.
    pub(crate) fn on_activity(&mut self, now: Instant) {
        if !self.window.is_zero() {
            self.last_activity = Some(now);
        }
    }

    /// How long `poll` may sleep at `now` when the loop's own deadlines allow `sleep`: zero
    /// within the window after the last arrival, `sleep` otherwise.
    pub(crate) fn timeout(&self, now: Instant, sleep: Duration) -> Duration {
        match self.last_activity {
            Some(last) if now < last + self.window => Duration::ZERO,
            _ => sleep,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);

    #[test]
    fn polls_within_the_window_after_an_arrival_and_sleeps_otherwise() {
        let t0 = Instant::now();
        let sleep = Duration::from_millis(5);
        let mut b = BusyPoll::new(100 * US);
        // Nothing arrived yet: sleep.
        assert_eq!(b.timeout(t0, sleep), sleep);
        b.on_activity(t0);
        assert_eq!(b.timeout(t0, sleep), Duration::ZERO);
        assert_eq!(b.timeout(t0 + 99 * US, sleep), Duration::ZERO);
        assert_eq!(b.timeout(t0 + 100 * US, sleep), sleep);
        // A later arrival opens a new window.
        b.on_activity(t0 + 150 * US);
        assert_eq!(b.timeout(t0 + 200 * US, sleep), Duration::ZERO);
    }

    #[test]
    fn off_never_polls() {
        let t0 = Instant::now();
        let mut b = BusyPoll::new(Duration::ZERO);
        b.on_activity(t0);
        assert_eq!(b.timeout(t0, US), US);
    }
}
