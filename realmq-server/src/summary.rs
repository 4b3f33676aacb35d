//! The final summary of a server run: one JSON object (`--json`) or a few readable lines.

use realmq_common::io::{SendStats, TextReport};
use realmq_common::stats::{per_second, CpuSummary, LatencySummary};
use serde::Serialize;

use crate::recorder::{Counters, Recorder};
use crate::sessions::SessionReport;

/// How the UDP loop fared with its socket and sessions (all zero for TCP).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UdpCounters {
    /// Datagrams received from the socket (valid or not).
    pub datagrams_received: u64,
    /// ICMP-derived receive errors (a peer's port or host unreachable, a firewall's
    /// refusal): counted, never fatal.
    pub receive_errors: u64,
    /// What the socket did with the datagrams written to it (flattened: `datagrams_sent`,
    /// `send_blocked`, `send_errors`).
    #[serde(flatten)]
    pub send: SendStats,
    /// Datagrams dropped on purpose by `--simulate-loss`.
    pub simulated_drops: u64,
    /// Well-formed datagrams for no open session (late resends after a session ended).
    pub unknown_session: u64,
    /// Handshakes refused because too many sessions were open.
    pub refused: u64,
    /// Sessions evicted because the client fell silent.
    pub sessions_dead: u64,
    /// Messages dropped because their ID lay beyond the session's plausibility window
    /// (forged or corrupted IDs).
    pub implausible: u64,
    /// Session datagrams whose authentication tag failed or that were replays (`--psk-file`).
    pub unauthenticated: u64,
    /// HELLOs answered with an address-validation RETRY.
    pub retries_sent: u64,
    /// HELLOs whose cookie was wrong, expired, or minted for another address.
    pub bad_cookies: u64,
    /// HELLOs dropped unanswered (RETRY queue full, or anti-amplification limit).
    pub hellos_dropped: u64,
    /// Validated HELLOs of a session that had already ended (replays).
    pub hellos_replayed: u64,
}

/// Everything the server reports at exit. `--json` prints it as one object.
#[derive(Debug, Clone, Serialize)]
pub struct ServerSummary {
    /// `udp` or `tcp`.
    pub protocol: &'static str,
    /// Messages, duplicates, malformed input and sessions (flattened into the top level).
    #[serde(flatten)]
    pub counters: Counters,
    /// Seconds from the first to the last delivered message.
    pub duration_s: f64,
    /// `received / duration_s`.
    pub msgs_per_s: f64,
    /// One-way latency, µs.
    pub latency_us: LatencySummary,
    /// UDP socket and session-layer counters.
    pub udp: UdpCounters,
    /// One report per finished session, oldest first (at most 1024; see `sessions_omitted`).
    pub sessions: Vec<SessionReport>,
    /// Reports of older sessions left out of `sessions`.
    pub sessions_omitted: u64,
    /// The serving thread's CPU time over the run, and per message received; `null` where
    /// the system cannot tell.
    pub cpu: Option<CpuSummary>,
}

impl ServerSummary {
    /// Puts the summary of a run together.
    pub fn new(
        protocol: &'static str,
        counters: &Counters,
        udp: UdpCounters,
        recorder: &Recorder,
    ) -> Self {
        let duration = recorder.active_duration();
        let mut counters = *counters;
        let (sessions, sessions_omitted) = recorder.session_reports();
        (counters.stamped, counters.corrupt) = recorder.stamp_counts();
        Self {
            protocol,
            counters,
            duration_s: duration.as_secs_f64(),
            msgs_per_s: per_second(counters.received, duration),
            latency_us: LatencySummary::from_histogram(recorder.histogram()),
            udp,
            sessions,
            sessions_omitted,
            cpu: None,
        }
    }
}

impl TextReport for ServerSummary {
    fn to_text(&self) -> String {
        let l = &self.latency_us;
        let c = &self.counters;
        let mut text = format!(
            "protocol {}: {} messages received in {:.3} s ({:.0} msgs/s, first to last message)\n\
             duplicates {}, malformed {}, out of order {}, corrupt {} of {} checked\n\
             sessions: {} total, {} ended, {} still open\n\
             one-way latency µs: p50 {} p90 {} p99 {} p99.9 {} max {} (mean {:.1}, min {}, stddev {:.1})\n",
            self.protocol,
            c.received,
            self.duration_s,
            self.msgs_per_s,
            c.duplicates,
            c.malformed,
            c.out_of_order,
            c.corrupt,
            c.stamped,
            c.sessions_total,
            c.sessions_ended,
            c.sessions_open,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            l.mean,
            l.min,
            l.stddev
        );
        if let Some(cpu) = &self.cpu {
            text += &cpu.to_text();
            text += " (the serving thread)\n";
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn json_has_the_documented_keys() {
        let t0 = Instant::now();
        let mut recorder = Recorder::new(None, t0);
        recorder.on_message(t0, 150, 1, 0, 100);
        recorder.on_message(t0 + Duration::from_millis(500), 200, 1, 1, 100);
        recorder.flush();
        let counters = Counters {
            received: 2,
            sessions_total: 1,
            sessions_ended: 1,
            ..Counters::default()
        };
        let s = ServerSummary::new("udp", &counters, UdpCounters::default(), &recorder);
        let v = serde_json::to_value(&s).unwrap();
        for key in [
            "received",
            "duplicates",
            "malformed",
            "sessions_total",
            "sessions_open",
            "duration_s",
            "msgs_per_s",
        ] {
            assert!(v.get(key).is_some(), "{key} missing in {v}");
        }
        for key in ["p50", "p90", "p99", "p999", "max"] {
            assert!(
                v["latency_us"].get(key).is_some(),
                "latency_us.{key} missing"
            );
        }
        assert_eq!(v["msgs_per_s"], 4.0);
        assert_eq!(v["latency_us"]["max"], 100);
        assert!(s.to_text().contains("2 messages received"));
    }
}
