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
mod summary;
mod tcp;
mod udp;

use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::Context;
use realmq_common::io::{Protocol, Shutdown};

pub use summary::{ClientSummary, Progress, RunInfo, ThreadResult};
pub use udp::max_payload;

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
}

/// `len` random printable characters, made once per thread and sent in every message.
pub(crate) fn random_payload(len: usize, thread: u32) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(u64::from(thread) ^ 0x5245_414c_4d51);
    (0..len).map(|_| rng.alphanumeric() as u8).collect()
}

/// Every thread's outcome, in thread order.
pub type WorkerResults = Vec<(u32, anyhow::Result<ThreadResult>)>;

/// Runs one sender thread per entry of `workers` over `protocol` until each has finished
/// (or `shutdown` triggers and what is in flight has drained), logging a progress line
/// once a second. One thread failing stops the others.
pub fn run_workers(
    protocol: Protocol,
    workers: Vec<WorkerConfig>,
    shutdown: &Shutdown,
) -> anyhow::Result<WorkerResults> {
    let threads = workers.len();
    let progress: Arc<Vec<Progress>> =
        Arc::new((0..threads).map(|_| Progress::default()).collect());
    let (done_tx, done_rx) = mpsc::channel();
    let mut handles = Vec::new();
    for (slot, config) in workers.into_iter().enumerate() {
        let (progress, shutdown, done_tx) =
            (Arc::clone(&progress), shutdown.clone(), done_tx.clone());
        let handle = std::thread::Builder::new()
            .name(format!("sender-{}", config.index))
            .spawn(move || {
                let mine = &progress[slot];
                let result = match protocol {
                    Protocol::Udp => udp::send_session(&config, mine, &shutdown),
                    Protocol::Tcp => tcp::send_connection(&config, mine, &shutdown),
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
    let mut results = collect(threads, &done_rx, &progress);
    for handle in handles {
        if handle.join().is_err() {
            anyhow::bail!("a sender thread panicked");
        }
    }
    results.sort_by_key(|(index, _)| *index);
    Ok(results)
}

/// Waits for every thread's result, logging progress once a second.
fn collect(
    threads: usize,
    done: &mpsc::Receiver<(u32, anyhow::Result<ThreadResult>)>,
    progress: &[Progress],
) -> WorkerResults {
    let mut results = Vec::with_capacity(threads);
    let mut next_tick = Instant::now() + Duration::from_secs(1);
    let (mut last_sent, mut last_at) = (0u64, Instant::now());
    while results.len() < threads {
        match done.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
            Ok(r) => results.push(r),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                let (sent, acked) = Progress::total(progress);
                let rate = realmq_common::stats::per_second(sent - last_sent, now - last_at);
                log::info!("{rate:.0} msgs/s, {sent} sent, {acked} acked");
                (last_sent, last_at) = (sent, now);
                next_tick = now + Duration::from_secs(1);
            }
            // Every sender has ended (a panicking thread sends nothing; join reports it).
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    results
}
