//! Notices when a session's acknowledgements stop while messages are in flight and the server
//! still answers: the sign of a path that drops the larger datagrams (a narrower MTU beyond the
//! first hop, which the kernel's `IP_MTU` does not show, or a firewall). Nothing else would
//! say so: the messages are resent until given up, 30 resends later, and the run looks hung.

use std::time::{Duration, Instant};

/// How long acknowledgements may stop, with messages in flight, before the warning. Under 50 %
/// loss each way they still advance several times a second.
pub(crate) const STALL_WARNING: Duration = Duration::from_secs(5);

/// Watches one session's acknowledged count.
#[derive(Debug, Default)]
pub(crate) struct StallWatch {
    acked: u64,
    /// Since when `acked` has not moved with messages in flight.
    since: Option<Instant>,
    warned: bool,
}

impl StallWatch {
    /// Takes the session's acknowledged count and its messages in flight at `now`; true once,
    /// the first time nothing was acknowledged for [`STALL_WARNING`] with messages in flight.
    pub(crate) fn check(&mut self, now: Instant, acked: u64, in_flight: usize) -> bool {
        if in_flight == 0 || acked != self.acked {
            // Progress now, or nothing to wait for: the count starts again.
            self.acked = acked;
            self.since = (in_flight > 0).then_some(now);
            return false;
        }
        let since = *self.since.get_or_insert(now);
        if self.warned || now < since + STALL_WARNING {
            return false;
        }
        self.warned = true;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn warns_once_after_five_seconds_without_progress_in_flight() {
        let t0 = Instant::now();
        let mut w = StallWatch::default();
        assert!(!w.check(t0, 10, 3));
        assert!(!w.check(t0 + 4 * S, 10, 3));
        assert!(w.check(t0 + 5 * S, 10, 3));
        assert!(!w.check(t0 + 9 * S, 10, 3), "once");
    }

    #[test]
    fn progress_or_an_empty_flight_restarts_the_count() {
        let t0 = Instant::now();
        let mut w = StallWatch::default();
        assert!(!w.check(t0, 10, 3));
        assert!(!w.check(t0 + 4 * S, 11, 3), "an ACK");
        assert!(!w.check(t0 + 8 * S, 11, 3), "4 s since it");
        assert!(
            !w.check(t0 + 8 * S, 11, 0),
            "nothing in flight: idle, not stalled"
        );
        assert!(!w.check(t0 + 12 * S, 11, 3));
        assert!(w.check(t0 + 17 * S, 11, 3));
    }
}
