//! `realmq-client`: sends RealMQ messages (or the TCP baseline) from N threads and reports
//! throughput, round-trip times and delivery.
//!
//! Each sender thread owns its socket, its clock readings and, over UDP, one sans-IO
//! session (`realmq_common::endpoint::Client`) driven by its own `mio::Poll` loop
//! ([`udp`]); over TCP a blocking stream ([`tcp`]). Threads share nothing on the hot path:
//! they publish progress through relaxed atomics and hand their results back when they
//! end. See `docs/USAGE.md`.

mod cli;
mod pacing;
mod sockopt;
mod summary;
mod tcp;
mod udp;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::{CommandFactory, Parser};
use mio::{Poll, Token, Waker};

use crate::cli::{Args, Protocol};
use crate::summary::{ClientSummary, Progress, RunInfo, ThreadResult};

/// The token of the waker that interrupts a sender thread's `poll` on Ctrl-C.
pub(crate) const WAKER: Token = Token(0);

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
}

/// µs since the Unix epoch.
pub(crate) fn unix_now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// `len` random printable characters, made once per thread and sent in every message.
pub(crate) fn random_payload(len: usize, thread: u32) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(u64::from(thread) ^ 0x5245_414c_4d51);
    (0..len).map(|_| rng.alphanumeric() as u8).collect()
}

fn main() -> ExitCode {
    // Usage errors: clap prints them and exits with status 2.
    let args = Args::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    if args.protocol == Protocol::Udp && args.size as usize > udp::max_payload() {
        Args::command()
            .error(
                clap::error::ErrorKind::ValueValidation,
                format!(
                    "--size {} does not fit in one UDP datagram: at most {} bytes",
                    args.size,
                    udp::max_payload()
                ),
            )
            .exit();
    }
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let shutdown = Arc::new(AtomicBool::new(false));
    let mut polls = Vec::new();
    let mut wakers = Vec::new();
    for _ in 0..args.threads {
        let poll = Poll::new().context("cannot create an event loop")?;
        wakers.push(Waker::new(poll.registry(), WAKER).context("cannot create a waker")?);
        polls.push(poll);
    }
    {
        let shutdown = Arc::clone(&shutdown);
        // The first Ctrl-C/SIGTERM stops sending and waits for what is in flight; a second
        // one exits at once (ctrlc runs this on its own thread, so printing is safe).
        ctrlc::set_handler(move || {
            if shutdown.swap(true, Ordering::Relaxed) {
                eprintln!("error: interrupted twice: exiting without waiting for acknowledgements");
                std::process::exit(130);
            }
            for waker in &wakers {
                let _ = waker.wake();
            }
        })
        .context("cannot install the Ctrl-C handler")?;
    }
    let progress: Arc<Vec<Progress>> =
        Arc::new((0..args.threads).map(|_| Progress::default()).collect());
    let (done_tx, done_rx) = mpsc::channel();
    let mut handles = Vec::new();
    for (index, poll) in (0..args.threads).zip(polls) {
        let config = WorkerConfig {
            index,
            server: args.server,
            quota: args.quota(index),
            duration: args.duration,
            rate: args.rate_per_thread(),
            size: args.size as usize,
            reliable: !args.no_qos,
            connect_timeout: args.connect_timeout,
            simulate_loss: args.simulate_loss,
            loss_seed: args.loss_seed.wrapping_add(u64::from(index)),
            socket_buffer: args.socket_buffer,
        };
        let protocol = args.protocol;
        let (progress, shutdown, done_tx) = (
            Arc::clone(&progress),
            Arc::clone(&shutdown),
            done_tx.clone(),
        );
        let handle = std::thread::Builder::new()
            .name(format!("sender-{index}"))
            .spawn(move || {
                let mine = &progress[index as usize];
                let result = match protocol {
                    Protocol::Udp => udp::run(&config, poll, mine, &shutdown),
                    Protocol::Tcp => tcp::run(&config, mine, &shutdown),
                };
                if result.is_err() {
                    // One thread failing (no server) stops the others.
                    shutdown.store(true, Ordering::Relaxed);
                }
                let _ = done_tx.send((index, result));
            })
            .context("cannot start a sender thread")?;
        handles.push(handle);
    }
    drop(done_tx);
    if args.protocol == Protocol::Tcp && args.simulate_loss > 0.0 {
        log::warn!("--simulate-loss applies to UDP only; TCP repairs loss itself");
    }
    log::info!(
        "{} thread(s) sending {}-byte messages to {} over {}{}",
        args.threads,
        args.size,
        args.server,
        if args.protocol == Protocol::Udp {
            "UDP"
        } else {
            "TCP"
        },
        if args.no_qos { " without QoS" } else { "" }
    );

    let results = collect(args.threads as usize, &done_rx, &progress);
    for handle in handles {
        if handle.join().is_err() {
            bail!("a sender thread panicked");
        }
    }
    let mut ok = Vec::new();
    let mut first_error = None;
    for (index, result) in results {
        match result {
            Ok(r) => ok.push(r),
            Err(e) => {
                log::debug!("thread {index}: {e:#}");
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    report(args, &ok)
}

/// Waits for every thread's result, logging progress once a second.
fn collect(
    threads: usize,
    done: &mpsc::Receiver<(u32, anyhow::Result<ThreadResult>)>,
    progress: &[Progress],
) -> Vec<(u32, anyhow::Result<ThreadResult>)> {
    let mut results = Vec::with_capacity(threads);
    let mut next_tick = Instant::now() + Duration::from_secs(1);
    let (mut last_sent, mut last_at) = (0u64, Instant::now());
    while results.len() < threads {
        match done.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
            Ok(r) => results.push(r),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                let sent: u64 = progress
                    .iter()
                    .map(|p| p.sent.load(Ordering::Relaxed))
                    .sum();
                let acked: u64 = progress
                    .iter()
                    .map(|p| p.acked.load(Ordering::Relaxed))
                    .sum();
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

/// Prints the summary and decides the exit status.
fn report(args: &Args, results: &[ThreadResult]) -> anyhow::Result<ExitCode> {
    let run = RunInfo {
        protocol: match args.protocol {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
        },
        qos: args.protocol == Protocol::Tcp || !args.no_qos,
        threads: args.threads,
        size: args.size,
    };
    let summary = ClientSummary::new(run, results);
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&summary).context("cannot encode the summary")?
        );
    } else {
        print!("{}", summary.to_text());
    }
    let missing_bye = results
        .iter()
        .filter(|r| r.server_received.is_none())
        .count();
    if missing_bye > 0 && !summary.unreachable {
        log::warn!("{missing_bye} session(s) ended without the server's final count (BYE)");
    }
    if summary.unreachable {
        eprintln!("error: the server became unreachable during the run");
        return Ok(ExitCode::from(1));
    }
    if summary.undeliverable > 0 {
        eprintln!(
            "error: {} of {} messages were undeliverable",
            summary.undeliverable, summary.sent
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
