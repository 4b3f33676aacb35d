//! One-way latency across hosts: the client's NTP-style estimate of its clock offset to the
//! server, measured during the handshake, and the rule by which the server applies it.
//!
//! Every HELLO carries the client's time (`timestamp_us`, since its session epoch); the RETRY
//! or WELCOME answering it echoes that time and adds the server's wall clock
//! (`server_unix_us`). With t0 the client's wall time when the echoed HELLO left, t3 its wall
//! time when the answer arrived and s the server's time in between, one exchange gives
//! (RFC 5905 §8, with the server's receive and transmit times t1 = t2 = s):
//!
//! ```text
//! rtt    = t3 − t0
//! offset = (t0 + t3) / 2 − s        client clock minus server clock
//! ```
//!
//! The server answered somewhere within [t0, t3] on the client's clock, so the true offset
//! lies within ±rtt/2 of the estimate whatever the path's asymmetry; the exchange with the
//! smallest round trip is the tightest (NTP's clock filter keeps the minimum-delay sample for
//! the same reason, RFC 5905 §10). The echo matches each answer to the exact HELLO that
//! caused it, so a repeated HELLO makes no ambiguous sample (Karn's problem does not arise).
//!
//! The client sends [`CLOCK_PROBES`] cookie-less HELLOs' worth of exchanges (each answered by
//! a stateless RETRY), then the cookie HELLO with its best estimate. The server corrects
//! every send time of the session by it, unless the estimate cannot be told from zero
//! (`|offset| ≤ rtt/2`, as on one host): see [`ClockOffset::correction_us`].

use std::time::Instant;

use realmq_proto::{MAX_CLOCK_OFFSET_US, MAX_MESSAGE_ID};

/// Answered HELLOs (RETRYs) a client collects clock samples from before it sends the HELLO
/// with its cookie and its estimate.
pub const CLOCK_PROBES: u32 = 3;

/// HELLO timestamps a client remembers to match echoes against: more than a handshake sends
/// over the default 5 s timeout (probes, and 11 repeats backing off to 0.5 s). An echo of an
/// older one gives no sample.
const REMEMBERED_HELLOS: usize = 16;

/// An estimate of the client's clock minus the server's, from one request/answer exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockOffset {
    /// Client clock minus server clock, µs (within ±[`MAX_CLOCK_OFFSET_US`]).
    pub offset_us: i64,
    /// The round trip of the exchange, µs: the true offset lies within ±`rtt_us / 2` of
    /// `offset_us`. Never 0 in an estimate (0 on the wire means "no estimate").
    pub rtt_us: u64,
}

impl ClockOffset {
    /// The estimate of one exchange (RFC 5905 §8): a request sent at `t0_unix_us` and its
    /// answer received at `t3_unix_us` on the client's clock, answered at `server_unix_us`
    /// on the server's. `None` when the server has no wall clock (`server_unix_us` = 0) or the
    /// answer would have come before the request.
    pub fn from_exchange(t0_unix_us: u64, server_unix_us: u64, t3_unix_us: u64) -> Option<Self> {
        if server_unix_us == 0 || t3_unix_us < t0_unix_us {
            return None;
        }
        let (t0, t3, s) = (
            i128::from(t0_unix_us),
            i128::from(t3_unix_us),
            i128::from(server_unix_us),
        );
        let max = i128::from(MAX_CLOCK_OFFSET_US);
        let offset = ((t0 + t3) / 2 - s).clamp(-max, max);
        Some(Self {
            // Clamped to ±MAX_CLOCK_OFFSET_US just above.
            offset_us: offset as i64,
            // At least 1 µs, so that it reads as an estimate on the wire; at most a varint.
            rtt_us: (t3_unix_us - t0_unix_us).clamp(1, MAX_MESSAGE_ID),
        })
    }

    /// The estimate a HELLO carries, if any (`clock_rtt_us` = 0 means none).
    pub fn from_hello(offset_us: i64, rtt_us: u64) -> Option<Self> {
        (rtt_us > 0).then_some(Self { offset_us, rtt_us })
    }

    /// The offset to correct send times by: `offset_us`, or 0 when it cannot be told from
    /// zero because the true offset may be 0 (`|offset_us| ≤ rtt_us / 2`, as for two ends on
    /// one host), so that equal clocks get no correction noise.
    pub fn correction_us(self) -> i64 {
        if self.offset_us.unsigned_abs() <= self.rtt_us / 2 {
            0
        } else {
            self.offset_us
        }
    }
}

/// `unix_us` (a time on the client's clock) on the server's clock, with `correction_us` the
/// client's clock minus the server's: saturating at 0 and `u64::MAX`.
pub(crate) fn to_server_clock(unix_us: u64, correction_us: i64) -> u64 {
    if correction_us >= 0 {
        unix_us.saturating_sub(correction_us.unsigned_abs())
    } else {
        unix_us.saturating_add(correction_us.unsigned_abs())
    }
}

/// A wall-clock reference for a state machine that works in `Instant`s: the Unix time of one
/// instant, from which any other instant's Unix time follows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WallClock {
    at: Instant,
    unix_us: u64,
}

impl WallClock {
    /// `unix_us` is the wall-clock time of `at`, in µs since the Unix epoch.
    pub(crate) fn new(at: Instant, unix_us: u64) -> Self {
        Self { at, unix_us }
    }

    /// The wall-clock time of `now`, µs since the Unix epoch (at least 1: 0 means "no
    /// clock" on the wire).
    pub(crate) fn unix_us(&self, now: Instant) -> u64 {
        let unix = match now.checked_duration_since(self.at) {
            Some(after) => self.unix_us.saturating_add(after.as_micros() as u64),
            None => (self.unix_us).saturating_sub((self.at - now).as_micros() as u64),
        };
        unix.clamp(1, MAX_MESSAGE_ID)
    }
}

/// The client's side of the estimate: which HELLOs it sent, whether it still probes, and the
/// best sample so far.
#[derive(Debug, Clone)]
pub(crate) struct ClockProbe {
    /// Timestamps of the last HELLOs sent (µs since the session epoch), a ring: an echo must
    /// name one of them to count.
    sent: [Option<u64>; REMEMBERED_HELLOS],
    next_slot: usize,
    /// RETRYs received for this client's HELLOs.
    answers: u32,
    /// Cleared when the server has no wall clock or a probe went unanswered.
    probing: bool,
    /// The last HELLO sent was a probe, and no RETRY came since.
    probe_unanswered: bool,
    /// The sample with the smallest round trip.
    best: Option<ClockOffset>,
}

impl Default for ClockProbe {
    fn default() -> Self {
        Self {
            sent: [None; REMEMBERED_HELLOS],
            next_slot: 0,
            answers: 0,
            probing: true,
            probe_unanswered: false,
            best: None,
        }
    }
}

impl ClockProbe {
    /// Whether the next HELLO should be a cookie-less probe: the client holds a cookie, the
    /// server has a wall clock, fewer than [`CLOCK_PROBES`] RETRYs came, and the previous
    /// probe was answered. A probe left unanswered until the repeat timer fired ends the
    /// probing, so a lost probe costs the handshake at most one repeat interval.
    pub(crate) fn next_hello_is_probe(&mut self, has_cookie: bool) -> bool {
        if self.probe_unanswered {
            self.probing = false;
        }
        has_cookie && self.probing && self.answers < CLOCK_PROBES
    }

    /// A HELLO stamped `timestamp_us` (since the session epoch) left.
    pub(crate) fn on_hello_sent(&mut self, timestamp_us: u64, probe: bool) {
        self.sent[self.next_slot] = Some(timestamp_us);
        self.next_slot = (self.next_slot + 1) % REMEMBERED_HELLOS;
        self.probe_unanswered = probe;
    }

    /// A RETRY (`retry`) or WELCOME answered the HELLO stamped `echo_timestamp_us`, at
    /// `server_unix_us` on the server's clock; it arrived at `now_us` (since the session
    /// epoch, whose Unix time is `epoch_unix_us`). Keeps the sample if it is the best yet.
    pub(crate) fn on_answer(
        &mut self,
        epoch_unix_us: u64,
        echo_timestamp_us: u64,
        server_unix_us: u64,
        now_us: u64,
        retry: bool,
    ) {
        if retry {
            self.answers += 1;
            self.probe_unanswered = false;
            if server_unix_us == 0 {
                self.probing = false;
            }
        }
        if !self.sent.contains(&Some(echo_timestamp_us)) {
            return;
        }
        let t0 = epoch_unix_us.saturating_add(echo_timestamp_us);
        let t3 = epoch_unix_us.saturating_add(now_us);
        let Some(sample) = ClockOffset::from_exchange(t0, server_unix_us, t3) else {
            return;
        };
        if self.best.is_none_or(|b| sample.rtt_us < b.rtt_us) {
            self.best = Some(sample);
        }
    }

    /// The round trip of an answer echoing `echo_timestamp_us` that arrived at `now_us`
    /// (both since the session epoch), if the echo names a HELLO this client sent: it holds
    /// whether or not the server has a wall clock.
    pub(crate) fn round_trip_us(&self, echo_timestamp_us: u64, now_us: u64) -> Option<u64> {
        self.sent
            .contains(&Some(echo_timestamp_us))
            .then(|| now_us.checked_sub(echo_timestamp_us))
            .flatten()
    }

    /// The best estimate so far (smallest round trip), if any.
    pub(crate) fn best(&self) -> Option<ClockOffset> {
        self.best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_exchange_gives_the_midpoint_offset_within_half_its_round_trip() {
        // Client 5 s ahead; 100 µs out, 300 µs back (asymmetric).
        let true_offset = 5_000_000i64;
        let t0 = 1_700_000_000_000_000u64;
        let s = t0 + 100 - true_offset as u64;
        let t3 = t0 + 400;
        let c = ClockOffset::from_exchange(t0, s, t3).unwrap();
        assert_eq!(c.rtt_us, 400);
        assert_eq!(c.offset_us, true_offset + 100);
        assert!((c.offset_us - true_offset).unsigned_abs() <= c.rtt_us / 2);
        // The server has no clock, or the answer predates the request.
        assert_eq!(ClockOffset::from_exchange(t0, 0, t3), None);
        assert_eq!(ClockOffset::from_exchange(t3, s, t0), None);
        // Extreme values saturate instead of overflowing.
        let far = ClockOffset::from_exchange(u64::MAX - 1, 1, u64::MAX).unwrap();
        assert_eq!(far.offset_us, MAX_CLOCK_OFFSET_US);
        let zero_rtt = ClockOffset::from_exchange(t0, t0, t0).unwrap();
        assert_eq!((zero_rtt.offset_us, zero_rtt.rtt_us), (0, 1));
    }

    #[test]
    fn an_offset_within_half_the_round_trip_is_not_corrected() {
        let c = |offset_us, rtt_us| ClockOffset { offset_us, rtt_us }.correction_us();
        assert_eq!(c(50, 100), 0);
        assert_eq!(c(-50, 100), 0);
        assert_eq!(c(51, 100), 51);
        assert_eq!(c(-5_000_000, 300), -5_000_000);
        assert_eq!(c(i64::MIN, 10), i64::MIN);
        assert_eq!(ClockOffset::from_hello(7, 0), None);
        assert_eq!(to_server_clock(1_000, 300), 700);
        assert_eq!(to_server_clock(1_000, -300), 1_300);
        assert_eq!(to_server_clock(100, i64::MAX), 0);
        assert_eq!(to_server_clock(u64::MAX, i64::MIN), u64::MAX);
    }

    #[test]
    fn the_probe_keeps_the_smallest_round_trip_and_ignores_unknown_echoes() {
        let epoch = 1_000_000_000u64;
        let mut p = ClockProbe::default();
        assert!(
            !p.next_hello_is_probe(false),
            "no cookie yet: a first HELLO"
        );
        p.on_hello_sent(0, false);
        p.on_answer(epoch, 0, 2_000_000_000, 900, true);
        assert_eq!(p.best().unwrap().rtt_us, 900);
        assert!(p.next_hello_is_probe(true));
        p.on_hello_sent(1_000, true);
        p.on_answer(epoch, 1_000, 2_000_001_000, 1_200, true);
        assert_eq!(p.best().unwrap().rtt_us, 200);
        // An echo of a time no HELLO carried is no sample (but still an answer).
        p.on_answer(epoch, 1_199, 2_000_001_000, 1_200, true);
        assert_eq!(p.best().unwrap().rtt_us, 200);
        assert!(!p.next_hello_is_probe(true), "three RETRYs came");
        let best = p.best().unwrap();
        assert_eq!(best.offset_us, (epoch as i64 + 1_100) - 2_000_001_000);
    }

    #[test]
    fn probing_stops_for_a_server_without_a_clock_or_an_unanswered_probe() {
        let mut p = ClockProbe::default();
        p.on_hello_sent(0, false);
        p.on_answer(1, 0, 0, 10, true);
        assert!(!p.next_hello_is_probe(true));
        assert_eq!(p.best(), None);

        let mut p = ClockProbe::default();
        p.on_hello_sent(0, false);
        p.on_answer(1, 0, 5, 10, true);
        assert!(p.next_hello_is_probe(true));
        p.on_hello_sent(10, true);
        // The repeat timer fires before any RETRY: the repeat carries the cookie.
        assert!(!p.next_hello_is_probe(true));
    }

    #[test]
    fn the_wall_clock_follows_the_instant() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let clock = WallClock::new(t0, 5_000_000);
        assert_eq!(clock.unix_us(t0), 5_000_000);
        assert_eq!(clock.unix_us(t0 + Duration::from_millis(3)), 5_003_000);
        assert_eq!(clock.unix_us(t0 - Duration::from_secs(1)), 4_000_000);
        assert_eq!(clock.unix_us(t0 - Duration::from_secs(9)), 1, "never 0");
    }
}
