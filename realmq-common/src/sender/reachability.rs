//! When the peer counts as unreachable: the failure detector's verdict on its silence,
//! confirmed by datagrams it left unanswered.
//!
//! The φ accrual detector judges silence by time alone. Under heavy loss both ways a live
//! peer's answers can stop for longer than the detector allows: at 50 % loss each way three
//! round trips in four fail, and a client that took its server for gone opened a new session
//! and sent again what the old one had delivered without acknowledging it (a duplicate; seen
//! in one of five full-speed runs of `netns-loadtest.sh --loss 50`, and in one of 300
//! simulated runs at 40 % each way). So the verdict needs a second condition, one a live
//! peer fails only with vanishing probability: at least [`ASKS_BEFORE_UNREACHABLE`]
//! datagrams sent since the peer was last heard from, spaced so that each gets an answer of
//! its own. The receiver acknowledges every datagram within its
//! ACK delay (a HEARTBEAT at once), so each such datagram is an independent chance to hear
//! from a live peer: with a fraction `q` of round trips failing, a live peer is taken for
//! gone with probability `q^40` (10⁻⁵ at 50 % loss each way, 2·10⁻⁸ at 40 %).
//!
//! While the peer is suspected, a HEARTBEAT is due one ask interval after the last datagram
//! (instead of one heartbeat interval), so the asks are made within the detector's grace
//! period and a peer that is really gone is declared so no later than before.

use std::time::{Duration, Instant};

use crate::config::LivenessConfig;

/// Datagrams, each at least an ask interval after the previous one counted, that must go
/// unanswered before the peer counts as unreachable.
pub(super) const ASKS_BEFORE_UNREACHABLE: u32 = 40;

/// The shortest ask interval: a tiny grace period does not turn the asks into a flood.
const MIN_ASK_INTERVAL: Duration = Duration::from_millis(1);

/// The datagrams sent since the peer was last heard from that count as asks.
#[derive(Debug, Clone)]
pub(super) struct Asks {
    /// The spacing of counted asks: the grace period over twice
    /// [`ASKS_BEFORE_UNREACHABLE`], so they all fit in its first half (4 ms with the
    /// default 500 ms grace period, well above a LAN's delayed-ACK time).
    interval: Duration,
    /// Asks since the last arrival.
    unanswered: u32,
    /// When the last one counted was sent.
    last_counted: Option<Instant>,
}

impl Asks {
    pub(super) fn new(liveness: &LivenessConfig) -> Self {
        Self {
            interval: (liveness.grace_period / (2 * ASKS_BEFORE_UNREACHABLE)).max(MIN_ASK_INTERVAL),
            unanswered: 0,
            last_counted: None,
        }
    }

    /// A datagram went to the peer at `now`.
    pub(super) fn on_sent(&mut self, now: Instant) {
        if self
            .last_counted
            .is_none_or(|last| now >= last + self.interval)
        {
            self.unanswered = self.unanswered.saturating_add(1);
            self.last_counted = Some(now);
        }
    }

    /// The peer was heard from.
    pub(super) fn on_answer(&mut self) {
        self.unanswered = 0;
    }

    /// Whether enough asks went unanswered for the peer to count as unreachable.
    pub(super) fn enough_unanswered(&self) -> bool {
        self.unanswered >= ASKS_BEFORE_UNREACHABLE
    }

    /// When the next ask is due while the peer is suspected: one interval after the last
    /// datagram to the peer (`HeartbeatSchedule::last_sent`, which keeps that time).
    pub(super) fn next_due(&self, last_sent: Instant) -> Instant {
        last_sent + self.interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn only_spaced_datagrams_count_and_an_answer_resets_the_count() {
        let t0 = Instant::now();
        let config = LivenessConfig::default();
        let mut asks = Asks::new(&config);
        assert_eq!(asks.interval, config.grace_period / 80);
        // A burst is one ask.
        for i in 0..100 {
            asks.on_sent(t0 + Duration::from_micros(i));
        }
        assert_eq!(asks.unanswered, 1);
        assert_eq!(asks.next_due(t0), t0 + asks.interval);
        let mut now = t0;
        for _ in 1..ASKS_BEFORE_UNREACHABLE {
            now += asks.interval;
            assert!(!asks.enough_unanswered());
            asks.on_sent(now);
        }
        assert!(asks.enough_unanswered());
        asks.on_answer();
        assert!(!asks.enough_unanswered());
        assert_eq!(asks.unanswered, 0);
    }

    #[test]
    fn the_asks_fit_in_half_the_grace_period_and_never_come_faster_than_a_millisecond() {
        let mut config = LivenessConfig::default();
        let asks = Asks::new(&config);
        assert!(asks.interval * ASKS_BEFORE_UNREACHABLE <= config.grace_period / 2);
        config.grace_period = MS * 10;
        assert_eq!(Asks::new(&config).interval, MIN_ASK_INTERVAL);
    }
}
