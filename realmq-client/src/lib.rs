//! `realmq-client` as a library: the load generator the binary calls, so that tests can run
//! it in-process against a server on an ephemeral port.
//!
//! [`run_workers`] starts one sender thread per `--threads`; each owns its socket, its clock
//! readings and, over UDP, one sans-IO session (`realmq_common::endpoint::Client`) driven by
//! its own `mio::Poll` loop (`udp`); over TCP a blocking stream (`tcp`). Threads share
//! nothing on the hot path: they publish progress through relaxed atomics and hand their
//! results back when they end. [`ClientSummary`] aggregates them. See `docs/USAGE.md`.

pub mod cli;
mod pacing;
pub mod phi_sweep;
mod raw;
mod stall;
mod summary;
mod tcp;
mod udp;
pub mod verdict;

use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::Context;
use realmq_common::io::{Protocol, Shutdown};

pub use summary::{ClientSummary, Progress, RunInfo, ThreadResult};
pub use udp::max_payload;

/// Most datagrams in one segmented send (UDP GSO): 44 full 1472-byte datagrams stay under
/// the 65,507 bytes one send may carry.
pub(crate) const MAX_SEGMENTS: usize = 44;

/// Datagrams of `datagram_size` bytes one segmented send carries: at most
/// [`MAX_SEGMENTS`], and together at most [`realmq_proto::MAX_DATAGRAM_SIZE`] bytes (the
/// kernel refuses a larger send), so 7 of 8972-byte jumbo datagrams and 1 of the largest.
pub(crate) fn segments_per_send(datagram_size: usize) -> usize {
    (realmq_proto::MAX_DATAGRAM_SIZE / datagram_size.max(1)).clamp(1, MAX_SEGMENTS)
}

/// What one sender thread is to do.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Thread number, from 0.
    pub index: u32,
    /// Server address.
    pub server: SocketAddr,
    /// Messages to send, or `None` to send for `duration`.
    pub quota: Option<u64>,
    /// How long to send, in --duration mode.
    pub duration: Option<Duration>,
    /// Messages per second (0: unlimited).
    pub rate: f64,
    /// Payload bytes.
    pub size: usize,
    /// QoS on.
    pub reliable: bool,
    /// Handshake (UDP) or connect (TCP) timeout.
    pub connect_timeout: Duration,
    /// `--simulate-loss`, percent.
    pub simulate_loss: f64,
    /// This thread's loss seed.
    pub loss_seed: u64,
    /// SO_RCVBUF/SO_SNDBUF request (0: default).
    pub socket_buffer: usize,
    /// Authenticate the session with this pre-shared key (UDP).
    pub psk: Option<realmq_common::security::Psk>,
    /// Latency mode: one message in flight, the next sent once the previous is
    /// acknowledged (UDP) or answered (TCP); every round trip is an RTT sample.
    pub ping: bool,
    /// Sending time left out of rates and round-trip times at the start (`--warmup`).
    pub warmup: Duration,
    /// How long to keep trying to open a new session when the server goes away mid-run
    /// (UDP; zero: never reconnect).
    pub reconnect_timeout: Duration,
    /// The client's heartbeat interval, failure detector settings and `--record-arrivals`
    /// (UDP).
    pub liveness: realmq_common::io::LivenessOptions,
    /// Microseconds added to this client's wall clock (0 normally): simulates a host whose
    /// clock is off, for tests of the clock-offset correction. It moves every send stamp
    /// (UDP, TCP, raw); only RealMQ's UDP sessions estimate and correct it.
    pub clock_skew_us: i64,
    /// Bursty load (`--on-off`): send for the first duration, pause for the second, over
    /// and over (UDP); `None` sends without pauses.
    pub on_off: Option<(std::time::Duration, std::time::Duration)>,
    /// The largest UDP datagram to send, in bytes of UDP payload (`--datagram-size`; UDP and
    /// raw): less where the path's MTU is smaller.
    pub datagram_size: usize,
}

impl WorkerConfig {
    /// Thread `index` sending 100,000 messages of 64 bytes to `server` with QoS, as fast as
    /// it can, a 10 s connect timeout, 1 MiB socket buffers and nothing else set: the base
    /// that tests and library users adjust with struct-update syntax.
    pub fn new(index: u32, server: std::net::SocketAddr) -> Self {
        Self {
            index,
            server,
            quota: Some(100_000),
            duration: None,
            rate: 0.0,
            size: 64,
            reliable: true,
            connect_timeout: std::time::Duration::from_secs(10),
            simulate_loss: 0.0,
            loss_seed: u64::from(index),
            socket_buffer: 1 << 20,
            psk: None,
            ping: false,
            warmup: std::time::Duration::ZERO,
            reconnect_timeout: std::time::Duration::ZERO,
            liveness: Default::default(),
            clock_skew_us: 0,
            on_off: None,
            datagram_size: realmq_proto::DEFAULT_MAX_DATAGRAM,
        }
    }

    /// This client's wall clock: the system's, plus `clock_skew_us`, µs since the Unix epoch.
    pub(crate) fn unix_now_us(&self) -> u64 {
        realmq_common::io::unix_now_us().saturating_add_signed(self.clock_skew_us)
    }

    /// With `--on-off`: whether `elapsed` (since the thread began sending) falls in a pause,
    /// and when the current phase ends.
    pub(crate) fn pause_at(
        &self,
        elapsed: std::time::Duration,
    ) -> Option<(bool, std::time::Duration)> {
        let (on, off) = self.on_off?;
        let cycle = (on + off).as_nanos();
        let phase = std::time::Duration::from_nanos((elapsed.as_nanos() % cycle) as u64);
        Some(if phase < on {
            (false, on - phase)
        } else {
            (true, on + off - phase)
        })
    }
}

/// `len` random printable characters, made once per thread and sent in every message.
pub(crate) fn random_payload(len: usize, thread: u32) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(u64::from(thread) ^ 0x5245_414c_4d51);
    (0..len).map(|_| rng.alphanumeric() as u8).collect()
}

/// Every thread's outcome, in thread order.
pub type WorkerResults = Vec<(u32, anyhow::Result<ThreadResult>)>;

/// Most interval reports kept; later intervals are logged but not kept (counted).
pub const MAX_INTERVALS: usize = 10_000;

/// Progress over one reporting interval, as iperf3's interval lines.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct IntervalReport {
    /// Seconds since the sender threads started, at the interval's start.
    pub start_s: f64,
    /// Seconds since the sender threads started, at its end.
    pub end_s: f64,
    /// Messages sent in the interval.
    pub sent: u64,
    /// `sent` per second of the interval.
    pub sent_per_s: f64,
    /// Messages acknowledged in the interval (`null` without QoS).
    pub acked: Option<u64>,
}

/// How a run reports while it goes.
#[derive(Debug, Clone, Copy)]
pub struct Reporting {
    /// Log a progress line, and keep an [`IntervalReport`], this often (`None`: never).
    pub interval: Option<Duration>,
    /// Whether acknowledgements are counted (QoS): otherwise progress shows sends only.
    pub qos: bool,
}

impl Default for Reporting {
    fn default() -> Self {
        Self {
            interval: Some(Duration::from_secs(1)),
            qos: true,
        }
    }
}

/// What [`run_workers`] hands back: every thread's outcome and the interval reports.
#[derive(Debug)]
pub struct RunOutcome {
    /// Every thread's outcome, in thread order.
    pub results: WorkerResults,
    /// The interval reports, oldest first (at most [`MAX_INTERVALS`]).
    pub intervals: Vec<IntervalReport>,
    /// What each thread had published when it ended (index, sent, acknowledged), in
    /// thread order: all that is known of a thread that failed.
    pub published: Vec<(u32, u64, u64)>,
}

/// Runs one sender thread per entry of `workers` over `protocol` until each has finished
/// (or `shutdown` triggers and what is in flight has drained), logging a progress line
/// once a second. One thread failing stops the others.
pub fn run_workers(
    protocol: Protocol,
    workers: Vec<WorkerConfig>,
    shutdown: &Shutdown,
) -> anyhow::Result<WorkerResults> {
    let progress = Progress::for_threads(workers.len());
    let outcome =
        run_workers_reporting(protocol, workers, shutdown, &progress, Reporting::default())?;
    Ok(outcome.results)
}

/// [`run_workers`] with the threads' live counters in `progress` (one per worker, which
/// the caller can read at any time, e.g. from a signal handler) and a reporting interval.
pub fn run_workers_reporting(
    protocol: Protocol,
    workers: Vec<WorkerConfig>,
    shutdown: &Shutdown,
    progress: &Arc<Vec<Progress>>,
    reporting: Reporting,
) -> anyhow::Result<RunOutcome> {
    let threads = workers.len();
    anyhow::ensure!(progress.len() == threads, "one progress slot per worker");
    let (done_tx, done_rx) = mpsc::channel();
    let mut handles = Vec::new();
    let indices: Vec<u32> = workers.iter().map(|w| w.index).collect();
    for (slot, config) in workers.into_iter().enumerate() {
        let (progress, shutdown, done_tx) =
            (Arc::clone(progress), shutdown.clone(), done_tx.clone());
        let handle = std::thread::Builder::new()
            .name(format!("sender-{}", config.index))
            .spawn(move || {
                let mine = &progress[slot];
                let result = match protocol {
                    Protocol::Udp => udp::send_session(&config, mine, &shutdown),
                    Protocol::Tcp => tcp::send_connection(&config, mine, &shutdown),
                    Protocol::Raw => raw::send_raw(&config, mine, &shutdown),
                };
                if result.is_err() {
                    // One thread failing (no server) stops the others.
                    shutdown.trigger();
                }
                let _ = done_tx.send((config.index, result));
            })
            .context("cannot start a sender thread")?;
        handles.push(handle);
    }
    drop(done_tx);
    let (mut results, intervals) = collect(threads, &done_rx, progress, reporting);
    for handle in handles {
        if handle.join().is_err() {
            anyhow::bail!("a sender thread panicked");
        }
    }
    results.sort_by_key(|(index, _)| *index);
    let published = (indices.into_iter().zip(progress.iter()))
        .map(|(index, p)| {
            let (sent, acked) = p.load();
            (index, sent, acked)
        })
        .collect();
    Ok(RunOutcome {
        results,
        intervals,
        published,
    })
}

/// Waits for every thread's result, logging progress once per interval.
fn collect(
    threads: usize,
    done: &mpsc::Receiver<(u32, anyhow::Result<ThreadResult>)>,
    progress: &[Progress],
    reporting: Reporting,
) -> (WorkerResults, Vec<IntervalReport>) {
    let mut results = Vec::with_capacity(threads);
    let mut intervals = Vec::new();
    let start = Instant::now();
    // Without an interval, wake only to collect results.
    let tick = reporting.interval.unwrap_or(Duration::from_secs(3600));
    let mut next_tick = start + tick;
    let (mut last_sent, mut last_acked, mut last_at) = (0u64, 0u64, start);
    while results.len() < threads {
        match done.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
            Ok(r) => results.push(r),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                next_tick = now + tick;
                if reporting.interval.is_none() {
                    continue;
                }
                let (sent, acked) = Progress::total(progress);
                let report = IntervalReport {
                    start_s: (last_at - start).as_secs_f64(),
                    end_s: (now - start).as_secs_f64(),
                    sent: sent - last_sent,
                    sent_per_s: realmq_common::stats::per_second(sent - last_sent, now - last_at),
                    acked: reporting.qos.then(|| acked - last_acked),
                };
                match report.acked {
                    Some(a) => log::info!(
                        "{:6.2}-{:6.2} s  sent {:>10} ({:>11.0} msgs/s)  acked {a:>10}  total sent {sent}, acked {acked}",
                        report.start_s, report.end_s, report.sent, report.sent_per_s
                    ),
                    None => log::info!(
                        "{:6.2}-{:6.2} s  sent {:>10} ({:>11.0} msgs/s)  total sent {sent} (no QoS: delivery is confirmed at the end)",
                        report.start_s, report.end_s, report.sent, report.sent_per_s
                    ),
                }
                if intervals.len() < MAX_INTERVALS {
                    intervals.push(report);
                }
                (last_sent, last_acked, last_at) = (sent, acked, now);
            }
            // Every sender has ended (a panicking thread sends nothing; join reports it).
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    (results, intervals)
}
