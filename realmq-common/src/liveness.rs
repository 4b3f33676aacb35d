//! Liveness: is the peer still there, and is a HEARTBEAT due?
//!
//! [`PeerLiveness`] wraps a [`PhiAccrualDetector`] fed with the arrival time of everything the
//! peer sends, and turns φ into two verdicts (see [`LivenessConfig`]):
//!
//! - **suspected** while `φ(now) ≥ threshold`;
//! - **dead** once suspected without interruption for the grace period, i.e.
//!   `φ(now - grace) ≥ threshold` with no arrival since `now - grace`. Between arrivals φ only
//!   grows with time (a guarantee of [`PhiAccrualDetector::phi`]), so φ at `now - grace` above
//!   the threshold means it has stayed above it ever since. No extra state is needed.
//!
//! [`HeartbeatSchedule`] says when a HEARTBEAT is due: after a heartbeat interval in which
//! nothing was sent to the peer. Both are sans-IO: time is an argument.

use std::time::{Duration, Instant};

use crate::config::LivenessConfig;
use crate::phi::PhiAccrualDetector;

/// The liveness verdict on a peer, from the arrival times of its datagrams.
///
/// Contract: call [`handle_arrival`](Self::handle_arrival) for every datagram from the peer;
/// ask [`is_suspected`](Self::is_suspected) / [`is_dead`](Self::is_dead) at any time. The
/// periodic re-examination of a silent peer is a timer: [`poll_timeout`](Self::poll_timeout)
/// gives the next check, [`handle_timeout`](Self::handle_timeout) performs it and returns true
/// the first time the peer is found dead.
#[derive(Debug, Clone)]
pub struct PeerLiveness {
    detector: PhiAccrualDetector,
    grace: Duration,
    check_interval: Duration,
    next_check: Instant,
    declared_dead: bool,
}

impl PeerLiveness {
    /// A verdict that starts at `now` as if the peer had just been heard from (a session
    /// starts with the peer's handshake), so a peer that never sends anything still dies.
    pub fn new(config: &LivenessConfig, now: Instant) -> Self {
        let mut detector = PhiAccrualDetector::new(config.phi_config());
        detector.heartbeat(now);
        Self {
            detector,
            grace: config.grace_period,
            check_interval: config.check_interval,
            next_check: now + config.check_interval,
            declared_dead: false,
        }
    }

    /// Records that something arrived from the peer at `now`. Several arrivals at the same
    /// instant (frames of one datagram, a batch read at once) count as one.
    pub fn handle_arrival(&mut self, now: Instant) {
        if self.detector.last_heartbeat() != Some(now) {
            self.detector.heartbeat(now);
        }
    }

    /// The current suspicion level.
    pub fn phi(&self, now: Instant) -> f64 {
        self.detector.phi(now)
    }

    /// Whether φ is at or above the threshold at `now`.
    pub fn is_suspected(&self, now: Instant) -> bool {
        !self.detector.is_available(now)
    }

    /// Whether the peer has been suspected without interruption for the grace period at `now`.
    pub fn is_dead(&self, now: Instant) -> bool {
        let Some(since) = now.checked_sub(self.grace) else {
            return false;
        };
        let last = self.detector.last_heartbeat().unwrap_or(since);
        since >= last && !self.detector.is_available(since)
    }

    /// When the next liveness check is due (`None` once the peer was declared dead).
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.declared_dead).then_some(self.next_check)
    }

    /// Performs the check if due: returns true exactly once, the first time the peer is found
    /// dead; otherwise schedules the next check one check interval later.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        if self.declared_dead || now < self.next_check {
            return false;
        }
        if self.is_dead(now) {
            self.declared_dead = true;
            return true;
        }
        self.next_check = now + self.check_interval;
        false
    }

    /// The detector, for its statistics.
    pub fn detector(&self) -> &PhiAccrualDetector {
        &self.detector
    }
}

/// When a HEARTBEAT is due: when nothing was sent to the peer for one heartbeat interval.
///
/// Contract: call [`on_sent`](Self::on_sent) for every datagram sent to the peer (the
/// [`Sender`](crate::sender::Sender) does it for what it writes); [`poll_timeout`] is when the
/// next heartbeat is due and [`is_due`](Self::is_due) tells whether it is now.
///
/// [`poll_timeout`]: Self::poll_timeout
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatSchedule {
    interval: Duration,
    last_sent: Instant,
}

impl HeartbeatSchedule {
    /// A schedule whose first heartbeat is due one interval after `now`.
    pub fn new(interval: Duration, now: Instant) -> Self {
        Self {
            interval,
            last_sent: now,
        }
    }

    /// Records that a datagram went to the peer at `now`.
    pub fn on_sent(&mut self, now: Instant) {
        self.last_sent = self.last_sent.max(now);
    }

    /// When the next heartbeat is due.
    pub fn poll_timeout(&self) -> Instant {
        self.last_sent + self.interval
    }

    /// Whether a heartbeat is due at `now`.
    pub fn is_due(&self, now: Instant) -> bool {
        now >= self.poll_timeout()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn heartbeat_is_due_after_an_idle_interval() {
        let t0 = Instant::now();
        let mut hb = HeartbeatSchedule::new(MS * 100, t0);
        assert!(!hb.is_due(t0 + MS * 99));
        assert!(hb.is_due(t0 + MS * 100));
        hb.on_sent(t0 + MS * 50);
        assert_eq!(hb.poll_timeout(), t0 + MS * 150);
        // An older send time does not move it back.
        hb.on_sent(t0 + MS * 10);
        assert_eq!(hb.poll_timeout(), t0 + MS * 150);
    }

    #[test]
    fn dead_means_suspected_for_the_whole_grace_period() {
        let t0 = Instant::now();
        let config = LivenessConfig::for_heartbeat_interval(MS * 100);
        let mut live = PeerLiveness::new(&config, t0);
        for i in 1..=50 {
            live.handle_arrival(t0 + MS * 100 * i);
        }
        let last = t0 + MS * 5000;
        // Find when suspicion starts, to the millisecond.
        let suspect_at = (0..10_000u32)
            .map(|ms| last + MS * ms)
            .find(|&t| live.is_suspected(t))
            .unwrap();
        assert!(suspect_at > last + MS * 100);
        assert!(!live.is_dead(suspect_at));
        assert!(!live.is_dead(suspect_at + config.grace_period - MS));
        assert!(live.is_dead(suspect_at + config.grace_period));
        // One arrival clears everything.
        live.handle_arrival(suspect_at + config.grace_period);
        assert!(!live.is_dead(suspect_at + config.grace_period + MS));
    }

    #[test]
    fn the_check_timer_reports_death_once() {
        let t0 = Instant::now();
        let config = LivenessConfig::for_heartbeat_interval(MS * 100);
        let mut live = PeerLiveness::new(&config, t0);
        let mut now = t0;
        let mut deaths = 0;
        while let Some(at) = live.poll_timeout() {
            now = at;
            if live.handle_timeout(now) {
                deaths += 1;
            }
            assert!(now < t0 + MS * 60_000, "never declared dead");
        }
        assert_eq!(deaths, 1);
        assert!(live.is_dead(now));
        // Declared within one check interval of becoming dead.
        assert!(!live.is_dead(now - config.check_interval));
    }
}
