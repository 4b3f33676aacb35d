//! Per-thread results, their aggregate, and the final summary (`--json` or text).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use realmq_common::io::TextReport;
use realmq_common::stats::{
    latency_histogram, megabytes_per_second, merge_latency, per_second, LatencySummary,
};
use serde::Serialize;

/// Counters a sender thread publishes for the progress line (relaxed atomics: each is
/// written by one thread and only read for display).
#[derive(Debug, Default)]
pub struct Progress {
    /// Messages sent so far.
    pub sent: AtomicU64,
    /// Messages acknowledged so far.
    pub acked: AtomicU64,
}

impl Progress {
    /// The sums of `sent` and `acked` over all threads.
    pub fn total(all: &[Progress]) -> (u64, u64) {
        all.iter().fold((0, 0), |(s, a), p| {
            (
                s + p.sent.load(Ordering::Relaxed),
                a + p.acked.load(Ordering::Relaxed),
            )
        })
    }

    /// Publishes the thread's counters.
    pub fn publish(&self, sent: u64, acked: u64) {
        self.sent.store(sent, Ordering::Relaxed);
        self.acked.store(acked, Ordering::Relaxed);
    }
}

/// What one sender thread did.
#[derive(Debug, Clone)]
pub struct ThreadResult {
    /// Messages handed to the session (UDP) or written to the connection (TCP).
    pub sent: u64,
    /// Messages acknowledged (QoS), or, without QoS, what the server reported received.
    pub acked: u64,
    /// Resends.
    pub retransmitted: u64,
    /// Messages given up.
    pub undeliverable: u64,
    /// What the server said it received at the end (BYE, or the TCP count), if it said.
    pub server_received: Option<u64>,
    /// The server stopped answering during the session.
    pub unreachable: bool,
    /// The session was closed because the server's ACKs violated the protocol.
    pub protocol_violation: bool,
    /// Datagrams written to the socket (UDP).
    pub datagrams_sent: u64,
    /// Datagrams dropped on purpose by `--simulate-loss`.
    pub simulated_drops: u64,
    /// When the first message was sent.
    pub first_send: Option<Instant>,
    /// When the last message was acknowledged or given up (without QoS: sent).
    pub drained: Option<Instant>,
    /// Round-trip times, µs (UDP with QoS).
    pub rtt: Histogram<u64>,
}

impl Default for ThreadResult {
    /// A result with nothing done yet.
    fn default() -> Self {
        Self {
            sent: 0,
            acked: 0,
            retransmitted: 0,
            undeliverable: 0,
            server_received: None,
            unreachable: false,
            protocol_violation: false,
            datagrams_sent: 0,
            simulated_drops: 0,
            first_send: None,
            drained: None,
            rtt: latency_histogram(),
        }
    }
}

/// The client's final report. `--json` prints it as one object.
#[derive(Debug, Clone, Serialize)]
pub struct ClientSummary {
    /// `udp` or `tcp`.
    pub protocol: &'static str,
    /// Whether QoS was on (always true for TCP, which repairs loss itself).
    pub qos: bool,
    /// Sender threads.
    pub threads: u32,
    /// Payload bytes per message.
    pub size: u32,
    /// Messages sent.
    pub sent: u64,
    /// Messages acknowledged; without QoS (and for TCP) what the server reported received.
    pub acked: u64,
    /// Resends.
    pub retransmitted: u64,
    /// Messages given up after the maximum number of resends.
    pub undeliverable: u64,
    /// `sent - acked`: with QoS the undeliverable ones, without it those that never arrived.
    pub lost: u64,
    /// Sum of the counts the server reported at the end of each session (`null` if a
    /// session ended without one).
    pub server_received: Option<u64>,
    /// Whether the server stopped answering during a session.
    pub unreachable: bool,
    /// Whether a session was closed because the server's ACKs violated the protocol
    /// (acknowledged IDs far beyond anything sent).
    pub protocol_violation: bool,
    /// Seconds from the first message sent to the last acknowledged (without QoS: sent).
    pub duration_s: f64,
    /// `sent / duration_s`.
    pub msgs_per_s: f64,
    /// Payload megabytes (10^6 bytes) per second: `sent * size / duration_s`.
    pub mb_per_s: f64,
    /// Round-trip time from send to acknowledgement, µs (empty without QoS and for TCP).
    pub rtt_us: LatencySummary,
    /// Datagrams written to the sockets.
    pub datagrams_sent: u64,
    /// Datagrams dropped on purpose by `--simulate-loss`.
    pub simulated_drops: u64,
}

/// The run as a whole, for [`ClientSummary::new`].
#[derive(Debug, Clone, Copy)]
pub struct RunInfo {
    /// `udp` or `tcp`.
    pub protocol: &'static str,
    /// QoS on.
    pub qos: bool,
    /// Sender threads.
    pub threads: u32,
    /// Payload bytes.
    pub size: u32,
}

impl ClientSummary {
    /// Aggregates the threads' results.
    pub fn new(run: RunInfo, results: &[ThreadResult]) -> Self {
        let sum = |f: fn(&ThreadResult) -> u64| results.iter().map(f).sum::<u64>();
        let sent = sum(|r| r.sent);
        let acked = sum(|r| r.acked);
        let mut rtt = latency_histogram();
        for r in results {
            merge_latency(&mut rtt, &r.rtt);
        }
        let first = results.iter().filter_map(|r| r.first_send).min();
        let last = results.iter().filter_map(|r| r.drained).max();
        let duration = match (first, last) {
            (Some(a), Some(b)) => b.saturating_duration_since(a),
            _ => Duration::ZERO,
        };
        let server_received = results
            .iter()
            .map(|r| r.server_received)
            .sum::<Option<u64>>();
        Self {
            protocol: run.protocol,
            qos: run.qos,
            threads: run.threads,
            size: run.size,
            sent,
            acked,
            retransmitted: sum(|r| r.retransmitted),
            undeliverable: sum(|r| r.undeliverable),
            lost: sent.saturating_sub(acked),
            server_received,
            unreachable: results.iter().any(|r| r.unreachable),
            protocol_violation: results.iter().any(|r| r.protocol_violation),
            duration_s: duration.as_secs_f64(),
            msgs_per_s: per_second(sent, duration),
            mb_per_s: megabytes_per_second(sent * u64::from(run.size), duration),
            rtt_us: LatencySummary::from_histogram(&rtt),
            datagrams_sent: sum(|r| r.datagrams_sent),
            simulated_drops: sum(|r| r.simulated_drops),
        }
    }
}

impl TextReport for ClientSummary {
    fn to_text(&self) -> String {
        let r = &self.rtt_us;
        let received = self
            .server_received
            .map_or("unknown".to_string(), |n| n.to_string());
        let mut text = format!(
            "protocol {}{}, {} thread(s), {}-byte messages\n\
             sent {}, acked {}, retransmitted {}, undeliverable {}, lost {}, server received {}\n\
             {:.3} s: {:.0} msgs/s, {:.2} MB/s (first send to last ack)\n",
            self.protocol,
            if self.qos { "" } else { " without QoS" },
            self.threads,
            self.size,
            self.sent,
            self.acked,
            self.retransmitted,
            self.undeliverable,
            self.lost,
            received,
            self.duration_s,
            self.msgs_per_s,
            self.mb_per_s,
        );
        if r.count > 0 {
            text += &format!(
                "round trip µs: p50 {} p90 {} p99 {} p99.9 {} max {}\n",
                r.p50, r.p90, r.p99, r.p999, r.max
            );
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use realmq_common::stats::record_latency_us;

    #[test]
    fn aggregates_threads() {
        let t0 = Instant::now();
        let mut a = ThreadResult {
            sent: 600,
            acked: 600,
            server_received: Some(600),
            first_send: Some(t0),
            drained: Some(t0 + Duration::from_millis(500)),
            ..ThreadResult::default()
        };
        record_latency_us(&mut a.rtt, 100);
        let mut b = ThreadResult {
            sent: 400,
            acked: 390,
            undeliverable: 10,
            first_send: Some(t0 + Duration::from_millis(100)),
            drained: Some(t0 + Duration::from_secs(1)),
            ..ThreadResult::default()
        };
        record_latency_us(&mut b.rtt, 300);
        let run = RunInfo {
            protocol: "udp",
            qos: true,
            threads: 2,
            size: 1_000,
        };
        let s = ClientSummary::new(run, &[a, b]);
        assert_eq!(
            (s.sent, s.acked, s.undeliverable, s.lost),
            (1_000, 990, 10, 10)
        );
        assert_eq!(s.server_received, None);
        assert_eq!(s.duration_s, 1.0);
        assert_eq!(s.msgs_per_s, 1_000.0);
        assert_eq!(s.mb_per_s, 1.0);
        assert_eq!(s.rtt_us.count, 2);
        let v = serde_json::to_value(&s).unwrap();
        for key in [
            "sent",
            "acked",
            "retransmitted",
            "undeliverable",
            "duration_s",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        for key in ["msgs_per_s", "mb_per_s", "lost"] {
            assert!(v.get(key).is_some(), "{key}");
        }
        for key in ["p50", "p90", "p99", "p999", "max"] {
            assert!(v["rtt_us"].get(key).is_some(), "rtt_us.{key}");
        }
        assert!(s.to_text().contains("undeliverable 10"));
    }
}
