//! Per-thread results, their aggregate, and the final summary (`--json` or text).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use realmq_common::endpoint::ClockOffset;
use realmq_common::io::TextReport;
use realmq_common::stats::{
    latency_histogram, megabytes_per_second, merge_latency, per_second, CpuSummary, LatencySummary,
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
    /// One slot per sender thread.
    pub fn for_threads(threads: usize) -> Arc<Vec<Progress>> {
        Arc::new((0..threads).map(|_| Progress::default()).collect())
    }

    /// The sums of `sent` and `acked` over all threads.
    pub fn total(all: &[Progress]) -> (u64, u64) {
        all.iter().fold((0, 0), |(s, a), p| {
            let (sent, acked) = p.load();
            (s + sent, a + acked)
        })
    }

    /// This thread's `sent` and `acked`.
    pub fn load(&self) -> (u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.acked.load(Ordering::Relaxed),
        )
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
    /// Messages acknowledged (UDP with QoS only).
    pub acked: u64,
    /// Resends (UDP).
    pub retransmitted: u64,
    /// Messages given up (UDP with QoS).
    pub undeliverable: u64,
    /// What the server said it received at the end (BYE, or the TCP count), if it said. With
    /// QoS, when every BYE was lost but every message was acknowledged, the acknowledged
    /// count (see `counted_from_acks`).
    pub server_received: Option<u64>,
    /// `server_received` is the count the server's ACKs confirmed, its BYE having been lost
    /// (UDP with QoS, every message acknowledged).
    pub counted_from_acks: bool,
    /// The server stopped answering during the session.
    pub unreachable: bool,
    /// The session was closed because the server's ACKs violated the protocol.
    pub protocol_violation: bool,
    /// New sessions opened after the server went away mid-run.
    pub reconnects: u32,
    /// Messages sent again in a new session because the lost one never acknowledged them
    /// (some may have been delivered twice: at-least-once across a server crash).
    pub resent_after_reconnect: u64,
    /// Datagrams written to the socket (UDP).
    pub datagrams_sent: u64,
    /// Datagrams dropped on purpose by `--simulate-loss`.
    pub simulated_drops: u64,
    /// Socket errors after the session opened (ICMP unreachable, a firewall's refusal):
    /// counted, never fatal.
    pub socket_errors: u64,
    /// When the first message was sent.
    pub first_send: Option<Instant>,
    /// When measurement began: the first send, or the end of `--warmup`.
    pub measure_from: Option<Instant>,
    /// Messages sent before `measure_from` (the warm-up's), left out of the rates.
    pub warmup_sent: u64,
    /// When the last message was sent.
    pub last_send: Option<Instant>,
    /// When the last message was acknowledged or given up (with QoS), or when the server's
    /// final count arrived (without QoS, and TCP): when delivery was last confirmed.
    pub drained: Option<Instant>,
    /// Round-trip times, µs (UDP with QoS).
    pub rtt: Histogram<u64>,
    /// The session's estimate of this client's clock minus the server's (UDP, when the
    /// server has a wall clock); after a reconnect, the latest session's.
    pub clock_offset: Option<ClockOffset>,
}

impl ThreadResult {
    /// Notes that messages went out at `now`, `before` of them having gone out earlier.
    /// Returns true when this ends a non-zero `warmup`: what was sent so far stays out of
    /// the rates, and the caller forgets its round-trip samples.
    pub(crate) fn on_sent(&mut self, now: Instant, before: u64, warmup: Duration) -> bool {
        let first = *self.first_send.get_or_insert(now);
        self.last_send = Some(now);
        if self.measure_from.is_some() || now < first + warmup {
            return false;
        }
        self.measure_from = Some(now);
        self.warmup_sent = before;
        !warmup.is_zero()
    }
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
            counted_from_acks: false,
            unreachable: false,
            protocol_violation: false,
            reconnects: 0,
            resent_after_reconnect: 0,
            datagrams_sent: 0,
            simulated_drops: 0,
            socket_errors: 0,
            first_send: None,
            measure_from: None,
            warmup_sent: 0,
            last_send: None,
            drained: None,
            rtt: latency_histogram(),
            clock_offset: None,
        }
    }
}

/// The client's final report. `--json` prints it as one object; `docs/USAGE.md` documents
/// every key. A value a mode cannot measure is `null`, never a misleading 0.
#[derive(Debug, Clone, Serialize)]
pub struct ClientSummary {
    /// `udp` or `tcp`.
    pub protocol: &'static str,
    /// Whether RealMQ's QoS (acknowledgements, resends) was on: true only for UDP without
    /// `--no-qos`.
    pub qos: bool,
    /// Sender threads.
    pub threads: u32,
    /// Payload bytes per message.
    pub size: u32,
    /// The run was stopped by Ctrl-C or SIGTERM before it had sent everything it meant to.
    pub interrupted: bool,
    /// Why the run failed, if it did (`null` on success).
    pub error: Option<String>,
    /// Messages sent.
    pub sent: u64,
    /// Messages the server confirmed it received: the sum of its final counts (BYE over
    /// UDP, the closing count over TCP). `null` if a session ended without one.
    pub delivered: Option<u64>,
    /// Messages acknowledged one by one (UDP with QoS; `null` otherwise).
    pub acked: Option<u64>,
    /// `sent - delivered` (`null` when `delivered` is).
    pub lost: Option<u64>,
    /// `lost` in percent of `sent`.
    pub loss_pct: Option<f64>,
    /// Resends (`null` for TCP, whose kernel resends unseen).
    pub retransmitted: Option<u64>,
    /// Messages given up after the maximum number of resends (UDP with QoS; `null`
    /// otherwise).
    pub undeliverable: Option<u64>,
    /// Whether the server stopped answering during a session.
    pub unreachable: bool,
    /// Whether a session was closed because the server's ACKs violated the protocol
    /// (acknowledged IDs far beyond anything sent).
    pub protocol_violation: bool,
    /// New sessions opened after the server went away mid-run (`--reconnect-timeout`).
    pub reconnects: u32,
    /// Messages handed to a new session again because the lost one never acknowledged them:
    /// the server that went away may have delivered some of them (at-least-once across a
    /// server crash, exactly-once within a session).
    pub resent_after_reconnect: u64,
    /// Seconds from the first message sent (or the end of `--warmup`) to the last one sent.
    pub send_duration_s: f64,
    /// Seconds from the first message sent (or the end of `--warmup`) to the last
    /// confirmation of delivery (the last acknowledgement with QoS, the server's final count
    /// without it and over TCP).
    pub duration_s: f64,
    /// Messages sent after the warm-up, per second of `send_duration_s`; `null` when
    /// that is zero (everything went in one batch, at one instant: no rate to tell).
    pub sent_per_s: Option<f64>,
    /// Messages delivered after the warm-up, per second of `duration_s` (`null` when
    /// `delivered` is).
    pub delivered_per_s: Option<f64>,
    /// Delivered payload megabytes (10^6 bytes) per second: `delivered * size / duration_s`.
    pub mb_per_s: Option<f64>,
    /// Round-trip time from send to acknowledgement, µs (UDP with QoS, and TCP with
    /// `--ping`; `null` otherwise).
    pub rtt_us: Option<LatencySummary>,
    /// Datagrams written to the sockets (`null` for TCP).
    pub datagrams_sent: Option<u64>,
    /// Datagrams dropped on purpose by `--simulate-loss` (`null` for TCP).
    pub simulated_drops: Option<u64>,
    /// Receive errors the sockets reported (ICMP unreachable, administratively prohibited),
    /// counted and logged once, never fatal (`null` for TCP).
    pub socket_errors: Option<u64>,
    /// This host's clock minus the server's, µs, as the handshake estimated it (NTP-style;
    /// the threads' estimate with the smallest round trip). The server corrects one-way
    /// latencies by it when it exceeds half `clock_rtt_us`. `null` for TCP and raw, or when
    /// the server has no wall clock.
    pub clock_offset_us: Option<i64>,
    /// The round trip of the exchange `clock_offset_us` came from, µs: the true offset lies
    /// within ±`clock_rtt_us / 2` of it. `null` with `clock_offset_us`.
    pub clock_rtt_us: Option<u64>,
    /// Progress per `--interval`, as iperf3's interval lines (empty with `--interval 0`).
    pub intervals: Vec<crate::IntervalReport>,
    /// The client process's CPU time over the run (all its threads), and per message sent;
    /// `null` where the system cannot tell.
    pub cpu: Option<CpuSummary>,
}

/// The run as a whole, for [`ClientSummary::new`].
#[derive(Debug, Clone, Copy)]
pub struct RunInfo {
    /// `udp` or `tcp`.
    pub protocol: &'static str,
    /// RealMQ's QoS on (UDP without `--no-qos`).
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
        let udp = run.protocol == "udp";
        let sent = sum(|r| r.sent);
        let mut rtt = latency_histogram();
        for r in results {
            merge_latency(&mut rtt, &r.rtt);
        }
        // Rates start where measurement does: the first send, or the end of --warmup.
        let first = results
            .iter()
            .filter_map(|r| r.measure_from.or(r.first_send))
            .min();
        let warmup_sent = sum(|r| r.warmup_sent);
        let span = |last: Option<Instant>| match (first, last) {
            (Some(a), Some(b)) => b.saturating_duration_since(a),
            _ => Duration::ZERO,
        };
        let send_duration = span(results.iter().filter_map(|r| r.last_send).max());
        let duration = span(results.iter().filter_map(|r| r.drained).max());
        let delivered = results
            .iter()
            .map(|r| r.server_received)
            .sum::<Option<u64>>();
        let lost = delivered.map(|d| sent.saturating_sub(d));
        let clock = results
            .iter()
            .filter_map(|r| r.clock_offset)
            .min_by_key(|c| c.rtt_us);
        Self {
            protocol: run.protocol,
            qos: run.qos,
            threads: run.threads,
            size: run.size,
            interrupted: false,
            error: None,
            sent,
            delivered,
            acked: run.qos.then(|| sum(|r| r.acked)),
            lost,
            loss_pct: lost.map(|l| percent(l, sent)),
            retransmitted: udp.then(|| sum(|r| r.retransmitted)),
            undeliverable: run.qos.then(|| sum(|r| r.undeliverable)),
            unreachable: results.iter().any(|r| r.unreachable),
            protocol_violation: results.iter().any(|r| r.protocol_violation),
            reconnects: results.iter().map(|r| r.reconnects).sum(),
            resent_after_reconnect: sum(|r| r.resent_after_reconnect),
            send_duration_s: send_duration.as_secs_f64(),
            duration_s: duration.as_secs_f64(),
            sent_per_s: (!send_duration.is_zero())
                .then(|| per_second(sent - warmup_sent, send_duration)),
            // The warm-up's messages are taken as delivered within it.
            delivered_per_s: delivered.map(|d| per_second(d.saturating_sub(warmup_sent), duration)),
            mb_per_s: delivered.map(|d| {
                let bytes = d.saturating_sub(warmup_sent) * u64::from(run.size);
                megabytes_per_second(bytes, duration)
            }),
            // With QoS, or whenever round trips were measured (TCP --ping).
            rtt_us: (run.qos || !rtt.is_empty()).then(|| LatencySummary::from_histogram(&rtt)),
            datagrams_sent: udp.then(|| sum(|r| r.datagrams_sent)),
            simulated_drops: udp.then(|| sum(|r| r.simulated_drops)),
            socket_errors: udp.then(|| sum(|r| r.socket_errors)),
            clock_offset_us: clock.map(|c| c.offset_us),
            clock_rtt_us: clock.map(|c| c.rtt_us),
            intervals: Vec::new(),
            cpu: None,
        }
    }

    /// What a run that failed before its threads reported can still say: the error, and
    /// what the threads had published by then (`sent`, `acked`: [`Progress::total`]).
    /// Everything else is unknown, so `null`: no count came from the server, and no rate
    /// can be told.
    pub fn failed(run: RunInfo, error: String, (sent, acked): (u64, u64)) -> Self {
        Self {
            error: Some(error),
            sent,
            delivered: None,
            acked: run.qos.then_some(acked),
            lost: None,
            loss_pct: None,
            retransmitted: None,
            undeliverable: None,
            sent_per_s: None,
            delivered_per_s: None,
            mb_per_s: None,
            rtt_us: None,
            datagrams_sent: None,
            simulated_drops: None,
            socket_errors: None,
            ..Self::new(run, &[])
        }
    }
}

/// `part` in percent of `whole` (0 when `whole` is 0).
fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// `Some(n)` as the number, `None` as "n/a".
fn or_na<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| v.to_string())
}

impl TextReport for ClientSummary {
    fn to_text(&self) -> String {
        let mode = match (self.protocol, self.qos) {
            ("tcp", _) => "TCP baseline",
            ("raw", _) => "raw UDP (no protocol)",
            (_, true) => "UDP with QoS",
            _ => "UDP without QoS",
        };
        let mut text = format!(
            "{mode}, {} thread(s), {}-byte messages{}\n",
            self.threads,
            self.size,
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        );
        text += &match self.sent_per_s {
            Some(rate) => format!(
                "sent {} in {:.3} s ({rate:.0} msgs/s)\n",
                self.sent, self.send_duration_s
            ),
            None if self.sent > 0 && self.error.is_none() => format!(
                "sent {} in one batch (at one instant: no send rate)\n",
                self.sent
            ),
            None => format!("sent {}\n", self.sent),
        };
        match (self.delivered, self.delivered_per_s) {
            (Some(d), Some(rate)) => {
                let mb_per_s = self.mb_per_s.unwrap_or(0.0);
                text += &format!(
                    "delivered {d} (confirmed by the server), lost {} ({:.3} %), {:.3} s: {rate:.0} msgs/s, {:.2} MB/s ({} of payload)\n",
                    or_na(self.lost),
                    self.loss_pct.unwrap_or(0.0),
                    self.duration_s,
                    mb_per_s,
                    bit_rate(mb_per_s),
                );
            }
            _ if self.error.is_some() => {
                text += "delivered: unknown (the run failed: see the error below)\n";
            }
            _ => text += "delivered: unknown (a session ended without the server's count)\n",
        }
        text += &format!(
            "acked {}, retransmitted {}, undeliverable {}\n",
            or_na(self.acked),
            or_na(self.retransmitted),
            or_na(self.undeliverable)
        );
        if let Some(r) = self.rtt_us.filter(|r| r.count > 0) {
            text += &format!(
                "round trip µs: p50 {} p90 {} p99 {} p99.9 {} max {}\n",
                r.p50, r.p90, r.p99, r.p999, r.max
            );
        }
        if let (Some(offset), Some(rtt)) = (self.clock_offset_us, self.clock_rtt_us) {
            text += &format!(
                "clock offset to the server: {:+.3} ms ± {:.3} ms (this host minus the server)\n",
                offset as f64 / 1e3,
                rtt as f64 / 2e3
            );
        }
        if let Some(cpu) = &self.cpu {
            text += &cpu.to_text();
            text += " (this process, all threads)\n";
        }
        if let Some(e) = &self.error {
            text += &format!("error: {e}\n");
        }
        text
    }
}

/// `mb_per_s` (10^6 bytes a second) in bits a second, in the unit iperf3 would print it:
/// Mbit/s below a gigabit, Gbit/s from there.
fn bit_rate(mb_per_s: f64) -> String {
    let mbit = mb_per_s * 8.0;
    if mbit < 1000.0 {
        format!("{mbit:.1} Mbit/s")
    } else {
        format!("{:.2} Gbit/s", mbit / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use realmq_common::stats::record_latency_us;

    /// A run of `threads` threads sending `size`-byte messages.
    fn run_info(protocol: &'static str, qos: bool, threads: u32, size: u32) -> RunInfo {
        RunInfo {
            protocol,
            qos,
            threads,
            size,
        }
    }

    fn two_threads(t0: Instant) -> [ThreadResult; 2] {
        let mut a = ThreadResult {
            sent: 600,
            acked: 600,
            server_received: Some(600),
            first_send: Some(t0),
            last_send: Some(t0 + Duration::from_millis(400)),
            drained: Some(t0 + Duration::from_millis(500)),
            ..ThreadResult::default()
        };
        record_latency_us(&mut a.rtt, 100);
        let mut b = ThreadResult {
            sent: 400,
            acked: 390,
            undeliverable: 10,
            server_received: Some(390),
            first_send: Some(t0 + Duration::from_millis(100)),
            last_send: Some(t0 + Duration::from_millis(500)),
            drained: Some(t0 + Duration::from_secs(1)),
            ..ThreadResult::default()
        };
        record_latency_us(&mut b.rtt, 300);
        [a, b]
    }

    #[test]
    fn bit_rates_are_in_the_unit_iperf3_would_use() {
        assert_eq!(bit_rate(0.0), "0.0 Mbit/s");
        assert_eq!(bit_rate(124.9), "999.2 Mbit/s");
        assert_eq!(bit_rate(125.0), "1.00 Gbit/s");
        assert_eq!(bit_rate(4451.64), "35.61 Gbit/s");
    }

    #[test]
    fn qos_runs_report_sent_and_delivered_rates_and_loss() {
        let t0 = Instant::now();
        let run = run_info("udp", true, 2, 1_000);
        let s = ClientSummary::new(run, &two_threads(t0));
        assert_eq!((s.sent, s.delivered, s.lost), (1_000, Some(990), Some(10)));
        assert_eq!((s.acked, s.undeliverable), (Some(990), Some(10)));
        assert_eq!(s.loss_pct, Some(1.0));
        assert_eq!((s.send_duration_s, s.duration_s), (0.5, 1.0));
        assert_eq!(
            (s.sent_per_s, s.delivered_per_s),
            (Some(2_000.0), Some(990.0))
        );
        assert_eq!(s.mb_per_s, Some(0.99));
        assert_eq!(s.rtt_us.unwrap().count, 2);
        let v = serde_json::to_value(&s).unwrap();
        for key in [
            "sent",
            "delivered",
            "acked",
            "lost",
            "loss_pct",
            "retransmitted",
            "undeliverable",
            "duration_s",
            "send_duration_s",
            "sent_per_s",
            "delivered_per_s",
            "mb_per_s",
            "interrupted",
            "error",
            "rtt_us",
            "clock_offset_us",
            "clock_rtt_us",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert!(s.to_text().contains("lost 10 (1.000 %)"), "{}", s.to_text());
        // 0.99 MB/s of payload is 7.92 Mbit/s.
        assert!(
            s.to_text().contains("0.99 MB/s (7.9 Mbit/s of payload)"),
            "{}",
            s.to_text()
        );
        assert!(v["clock_offset_us"].is_null() && v["clock_rtt_us"].is_null());
        assert!(!s.to_text().contains("clock offset"));
    }

    #[test]
    fn a_run_sent_in_one_batch_has_no_send_rate_and_a_failed_one_no_delivery() {
        let t0 = Instant::now();
        let run = run_info("udp", true, 1, 64);
        // Every message handed over at one instant: no time, so no rate (not 0 msgs/s).
        let one_batch = ThreadResult {
            sent: 1_000,
            acked: 1_000,
            server_received: Some(1_000),
            first_send: Some(t0),
            last_send: Some(t0),
            drained: Some(t0 + Duration::from_millis(1)),
            ..ThreadResult::default()
        };
        let s = ClientSummary::new(run, &[one_batch]);
        assert_eq!(s.sent_per_s, None);
        assert_eq!(s.delivered_per_s, Some(1_000_000.0));
        let text = s.to_text();
        assert!(text.contains("sent 1000 in one batch"), "{text}");
        assert!(!text.contains(" 0 msgs/s"), "{text}");
        // A run that failed knows what its threads published, and nothing of delivery.
        let s = ClientSummary::failed(run, "no server".into(), (700, 650));
        assert_eq!((s.sent, s.acked), (700, Some(650)));
        assert_eq!((s.delivered, s.lost, s.loss_pct), (None, None, None));
        assert_eq!(
            (s.sent_per_s, s.delivered_per_s, s.mb_per_s),
            (None, None, None)
        );
        let text = s.to_text();
        assert!(text.contains("sent 700\n"), "{text}");
        assert!(
            text.contains("delivered: unknown (the run failed"),
            "{text}"
        );
        assert!(!text.contains("confirmed by the server"), "{text}");
    }

    #[test]
    fn the_clock_offset_is_the_threads_estimate_with_the_smallest_round_trip() {
        let mut threads = two_threads(Instant::now());
        threads[0].clock_offset = Some(ClockOffset {
            offset_us: -5_001_000,
            rtt_us: 900,
        });
        threads[1].clock_offset = Some(ClockOffset {
            offset_us: -5_000_050,
            rtt_us: 300,
        });
        let run = run_info("udp", true, 2, 64);
        let s = ClientSummary::new(run, &threads);
        assert_eq!(
            (s.clock_offset_us, s.clock_rtt_us),
            (Some(-5_000_050), Some(300))
        );
        let text = s.to_text();
        assert!(
            text.contains("clock offset to the server: -5000.050 ms ± 0.150 ms"),
            "{text}"
        );
    }

    #[test]
    fn the_warm_up_ends_at_the_first_send_after_it() {
        let t0 = Instant::now();
        let warmup = Duration::from_millis(100);
        let mut r = ThreadResult::default();
        assert!(!r.on_sent(t0, 0, warmup));
        assert!(!r.on_sent(t0 + Duration::from_millis(50), 10, warmup));
        assert!(r.on_sent(t0 + Duration::from_millis(120), 20, warmup));
        assert!(!r.on_sent(t0 + Duration::from_millis(200), 30, warmup));
        assert_eq!(r.measure_from, Some(t0 + Duration::from_millis(120)));
        assert_eq!(
            (r.warmup_sent, r.last_send),
            (20, Some(t0 + Duration::from_millis(200)))
        );
        // Without a warm-up, measurement starts at the first send and nothing is reset.
        let mut r = ThreadResult::default();
        assert!(!r.on_sent(t0, 0, Duration::ZERO));
        assert_eq!((r.measure_from, r.warmup_sent), (Some(t0), 0));
    }

    #[test]
    fn the_warm_up_stays_out_of_the_rates_but_not_the_counts() {
        let t0 = Instant::now();
        let mut threads = two_threads(t0);
        // Thread a's first 100 ms (100 messages) were its warm-up.
        threads[0].measure_from = Some(t0 + Duration::from_millis(100));
        threads[0].warmup_sent = 100;
        threads[1].measure_from = threads[1].first_send;
        let run = run_info("udp", true, 2, 1_000);
        let s = ClientSummary::new(run, &threads);
        assert_eq!((s.sent, s.delivered), (1_000, Some(990)));
        assert!((s.send_duration_s - 0.4).abs() < 1e-9);
        let sent_per_s = s.sent_per_s.expect("sending took time");
        assert!((sent_per_s - 2_250.0).abs() < 1e-6, "{sent_per_s}");
        assert!((s.delivered_per_s.unwrap() - 890.0 / 0.9).abs() < 1e-6);
    }

    #[test]
    fn the_title_names_the_mode() {
        let t0 = Instant::now();
        for (protocol, qos, title) in [
            ("udp", true, "UDP with QoS"),
            ("udp", false, "UDP without QoS"),
            ("raw", false, "raw UDP (no protocol)"),
            ("tcp", false, "TCP baseline"),
        ] {
            let run = run_info(protocol, qos, 1, 64);
            let text = ClientSummary::new(run, &two_threads(t0)).to_text();
            assert!(text.starts_with(&format!("{title}, 1 thread(s)")), "{text}");
        }
    }

    #[test]
    fn what_a_mode_cannot_measure_is_null() {
        let t0 = Instant::now();
        let tcp = run_info("tcp", false, 2, 10);
        // A TCP run without --ping measures no round trip.
        let mut threads = two_threads(t0);
        threads.iter_mut().for_each(|t| t.rtt.reset());
        let s = ClientSummary::new(tcp, &threads);
        let v = serde_json::to_value(&s).unwrap();
        for key in [
            "acked",
            "retransmitted",
            "undeliverable",
            "rtt_us",
            "datagrams_sent",
        ] {
            assert!(v[key].is_null(), "{key} should be null for TCP");
        }
        assert_eq!(v["qos"], false);
        let mut unconfirmed = two_threads(t0);
        unconfirmed[1].server_received = None;
        let noqos = run_info("udp", false, 2, 10);
        let s = ClientSummary::new(noqos, &unconfirmed);
        assert_eq!((s.delivered, s.lost, s.delivered_per_s), (None, None, None));
        assert_eq!(s.retransmitted, Some(0));
        assert!(s.to_text().contains("delivered: unknown"));
    }
}
