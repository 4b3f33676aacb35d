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
//! **Local pauses.** The silence φ judges is the peer's silence as this process could have
//! seen it: time during which this process itself could not run (the host descheduled it,
//! or it was stopped) is not held against the peer. [`PauseWatch`] notices such pauses from
//! the event loop's wake-ups (time the thread neither ran on the processor nor meant to
//! wait) and
//! [`PeerLiveness::handle_local_pause`] takes the part of a pause that falls in the current
//! silence off it (and off the interval the next arrival adds to the window), as Cassandra's
//! detector ignores its own long pauses. A dead peer is still detected: after the same
//! silence, counted in time this process was running.
//!
//! [`HeartbeatSchedule`] says when a HEARTBEAT is due: after a heartbeat interval in which
//! nothing was sent to the peer. All are sans-IO: time is an argument.

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
    /// The part of the silence since the last arrival during which this process was paused
    /// ([`handle_local_pause`](Self::handle_local_pause)): not the peer's silence.
    paused: Duration,
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
            paused: Duration::ZERO,
        }
    }

    /// Records that something arrived from the peer at `now`. Several arrivals at the same
    /// instant (frames of one datagram, a batch read at once) count as one. A peer declared
    /// dead comes back (its checks resume): the verdict was on its silence, and it spoke.
    pub fn handle_arrival(&mut self, now: Instant) {
        if self.declared_dead {
            self.declared_dead = false;
            self.next_check = now + self.check_interval;
        }
        if self.detector.last_heartbeat() != Some(now) {
            self.detector.heartbeat_after_pause(now, self.paused);
        }
        if self.detector.last_heartbeat() == Some(now) {
            self.paused = Duration::ZERO;
        }
    }

    /// Records that this process could not run from `since` to `now` (see [`PauseWatch`]):
    /// the part of that time after the last arrival is taken off the peer's silence.
    pub fn handle_local_pause(&mut self, since: Instant, now: Instant) {
        if let Some(last) = self.detector.last_heartbeat() {
            self.paused += now.saturating_duration_since(since.max(last));
        }
    }

    /// `now` on the peer's clock of silence: `now` less the local pauses since the last
    /// arrival, so that φ at the result judges only the time this process was running.
    fn observed(&self, now: Instant) -> Instant {
        now.checked_sub(self.paused).unwrap_or(now)
    }

    /// The current suspicion level.
    pub fn phi(&self, now: Instant) -> f64 {
        self.detector.phi(self.observed(now))
    }

    /// Whether φ is at or above the threshold at `now`.
    pub fn is_suspected(&self, now: Instant) -> bool {
        !self.detector.is_available(self.observed(now))
    }

    /// Whether the peer has been suspected without interruption for the grace period at `now`
    /// (both counted without this process's own pauses).
    pub fn is_dead(&self, now: Instant) -> bool {
        let Some(since) = self.observed(now).checked_sub(self.grace) else {
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

/// Notices this process's own pauses from its event loop: time it did not run although it
/// meant to (the host descheduled it, a CPU hog took its core, SIGSTOP).
///
/// The loop says how long it is about to wait ([`expect`](Self::expect)) and, on waking,
/// the time and the processor time its thread has used so far ([`woke`](Self::woke)). Of the
/// time since the previous wake-up, what the thread neither spent on the processor nor meant
/// to wait is a pause, if it is [`MIN_PAUSE`](Self::MIN_PAUSE) or more: a stall inside a pass
/// of the loop as well as a late wake-up, while a pass that is merely long (busy) is none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PauseWatch {
    /// The previous wake-up and the thread's processor time then.
    last: Option<(Instant, Duration)>,
    /// The wait the loop asked for since (`None`: a wait without limit, or none announced).
    wait: Option<Duration>,
}

impl PauseWatch {
    /// Less than this is the loop's ordinary slack (poll timeouts are whole milliseconds,
    /// rounded up), not a pause.
    pub const MIN_PAUSE: Duration = Duration::from_millis(2);

    /// The loop is about to wait for at most `timeout` (`None`: without limit, which hides
    /// any pause until the next wake-up).
    pub fn expect(&mut self, timeout: Option<Duration>) {
        self.wait = timeout;
    }

    /// The loop woke at `now`, its thread having used `cpu` of processor time so far: returns
    /// when the pause it found began (it ended at `now`), if any.
    pub fn woke(&mut self, now: Instant, cpu: Duration) -> Option<Instant> {
        let previous = self.last.replace((now, cpu));
        let wait = self.wait.take()?;
        let (then, cpu_then) = previous?;
        let off_cpu = now
            .saturating_duration_since(then)
            .saturating_sub(cpu.saturating_sub(cpu_then));
        let pause = off_cpu.saturating_sub(wait);
        (pause >= Self::MIN_PAUSE).then(|| now - pause)
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

    /// When the last datagram went to the peer (the schedule's start before any).
    pub fn last_sent(&self) -> Instant {
        self.last_sent
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
        let (mut live, config, last) = steady_peer();
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

    /// A peer heard 50 times, 100 ms apart, at the defaults for that interval; with the
    /// configuration and the last arrival's time.
    fn steady_peer() -> (PeerLiveness, LivenessConfig, Instant) {
        let t0 = Instant::now();
        let config = LivenessConfig::for_heartbeat_interval(MS * 100);
        let mut live = PeerLiveness::new(&config, t0);
        for i in 1..=50 {
            live.handle_arrival(t0 + MS * 100 * i);
        }
        (live, config, t0 + MS * 5000)
    }

    #[test]
    fn a_local_pause_is_not_the_peers_silence() {
        let (mut live, _, last) = steady_peer();
        // This process did not run for 10 s from 50 ms after the last arrival: on waking it
        // holds 50 ms of silence against the peer, not 10 s.
        let woke = last + MS * 10_050;
        assert!(live.is_dead(woke));
        let phi_at_pause = live.phi(last + MS * 50);
        live.handle_local_pause(last + MS * 50, woke);
        assert!(!live.is_suspected(woke));
        assert!((live.phi(woke) - phi_at_pause).abs() < 1e-9);
        // The next heartbeat adds a 100 ms interval to the window, not a 10 s one.
        live.handle_arrival(woke + MS * 50);
        assert_eq!(live.detector().mean(), MS * 100);
        // A pause that began before the last arrival counts only from it.
        let (mut other, _, last) = steady_peer();
        other.handle_local_pause(last - MS * 50, last + MS * 10_000);
        assert!(!other.is_suspected(last + MS * 10_000));
        assert!((other.phi(last + MS * 10_000) - other.phi(last)).abs() < 1e-9);
        // The next arrival starts a silence with nothing taken off.
        other.handle_arrival(last + MS * 10_100);
        assert!(other.is_dead(last + MS * 20_000));
    }

    #[test]
    fn a_dead_peer_is_detected_however_often_this_process_pauses() {
        let (mut live, _, last) = steady_peer();
        let unpaused = (1..)
            .map(|ms| last + MS * ms)
            .find(|&t| live.is_dead(t))
            .unwrap();
        // Every 10 ms this process stops for 10 ms: death comes after the same running time,
        // i.e. twice as late.
        let mut now = last;
        let dead_at = loop {
            live.handle_local_pause(now, now + MS * 10);
            now += MS * 20;
            if live.is_dead(now) {
                break now;
            }
            assert!(now < last + MS * 60_000, "never declared dead");
        };
        let running = (unpaused - last).as_millis() as i64;
        assert!(((dead_at - last).as_millis() as i64 - 2 * running).abs() <= 20);
    }

    #[test]
    fn the_pause_watch_finds_time_the_loop_did_not_run() {
        let t0 = Instant::now();
        let cpu0 = Duration::from_secs(3);
        let mut watch = PauseWatch::default();
        assert_eq!(
            watch.woke(t0, cpu0),
            None,
            "the first wake-up has nothing to compare"
        );
        // Waited the 10 ms it asked for, then a 1 ms pass: no pause.
        watch.expect(Some(MS * 10));
        assert_eq!(watch.woke(t0 + MS * 11, cpu0 + MS), None);
        // Asked for 10 ms, woke 150 ms later having run 1 ms: a 139 ms pause.
        let now = t0 + MS * 161;
        watch.expect(Some(MS * 10));
        assert_eq!(watch.woke(now, cpu0 + MS * 2), Some(now - MS * 139));
        // A pass stalled for 60 ms, then no wait at all.
        let later = now + MS * 65;
        watch.expect(Some(Duration::ZERO));
        assert_eq!(watch.woke(later, cpu0 + MS * 7), Some(later - MS * 60));
        // A busy pass of 80 ms on the processor is no pause.
        let busy = later + MS * 80;
        watch.expect(Some(Duration::ZERO));
        assert_eq!(watch.woke(busy, cpu0 + MS * 87), None);
        // Slack below the minimum is none either; a wait without limit hides everything.
        watch.expect(Some(Duration::ZERO));
        assert_eq!(watch.woke(busy + MS, cpu0 + MS * 87), None);
        watch.expect(None);
        assert_eq!(watch.woke(busy + MS * 900, cpu0 + MS * 87), None);
    }

    #[test]
    fn a_dead_peer_that_speaks_again_is_alive_and_can_die_again() {
        let t0 = Instant::now();
        let config = LivenessConfig::for_heartbeat_interval(MS * 100);
        let mut live = PeerLiveness::new(&config, t0);
        let mut now = t0;
        while !live.handle_timeout(now) {
            now = live.poll_timeout().unwrap();
        }
        assert_eq!(live.poll_timeout(), None);
        live.handle_arrival(now + MS);
        assert!(!live.is_dead(now + MS));
        assert_eq!(live.poll_timeout(), Some(now + MS + config.check_interval));
        let mut deaths = 0;
        while let Some(at) = live.poll_timeout() {
            deaths += usize::from(live.handle_timeout(at));
        }
        assert_eq!(deaths, 1);
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
