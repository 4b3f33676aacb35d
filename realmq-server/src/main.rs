//! `realmq-server`: receives RealMQ messages over UDP (or the TCP baseline) and measures
//! their one-way latency.
//!
//! The binary is the I/O shell around the sans-IO session layer
//! (`realmq_common::endpoint::Server`): it owns the socket, the clock, the one thread and
//! its `mio::Poll` loop ([`udp`], [`tcp`]), and what is measured ([`recorder`], [`sink`],
//! [`plot`], [`summary`]). See `docs/USAGE.md`.

mod cli;
mod plot;
mod recorder;
mod sink;
mod sockopt;
mod summary;
mod tcp;
mod udp;

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use mio::{Poll, Token, Waker};

use crate::cli::{Args, Protocol};
use crate::recorder::{Counters, Recorder};
use crate::sink::{SinkConfig, StatsSink};
use crate::summary::{ServerSummary, UdpCounters};

/// The token of the waker the Ctrl-C handler uses to interrupt `poll`.
pub(crate) const WAKER: Token = Token(0);

/// When the serving loop stops.
#[derive(Debug)]
pub(crate) struct Control {
    shutdown: Arc<AtomicBool>,
    exit_after_sessions: Option<u64>,
}

impl Control {
    /// Ctrl-C or SIGTERM arrived.
    pub fn interrupted(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }

    /// `--exit-after-sessions` sessions have ended.
    pub fn sessions_done(&self, counters: &Counters) -> bool {
        self.exit_after_sessions
            .is_some_and(|n| counters.sessions_ended >= n)
    }
}

fn main() -> ExitCode {
    // Usage errors: clap prints them and exits with status 2.
    let args = Args::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let poll = Poll::new().context("cannot create the event loop")?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER).context("cannot create a waker")?);
    let shutdown = Arc::new(AtomicBool::new(false));
    {
        let shutdown = Arc::clone(&shutdown);
        ctrlc::set_handler(move || {
            shutdown.store(true, Ordering::Relaxed);
            let _ = waker.wake();
        })
        .context("cannot install the Ctrl-C handler")?;
    }
    let control = Control {
        shutdown,
        exit_after_sessions: args.exit_after_sessions,
    };
    let start = Instant::now();
    let sink = match &args.stats_dir {
        Some(dir) => Some(StatsSink::create(
            SinkConfig {
                dir: dir.clone(),
                format: args.stats_format,
                save_interval: args.save_interval,
                rotate_after: args.rotate_after,
            },
            start,
        )?),
        None => None,
    };
    let mut recorder = Recorder::new(sink, start);

    let (protocol, counters, udp_counters) = match args.protocol {
        Protocol::Udp => {
            let socket = udp::bind(args.bind, args.socket_buffer)?;
            let addr = socket
                .local_addr()
                .context("cannot read the bound address")?;
            announce(addr, "udp", args.port_file.as_deref())?;
            let options = udp::UdpOptions {
                simulate_loss: args.simulate_loss,
                loss_seed: args.loss_seed,
            };
            let (counters, udp) = udp::run(socket, poll, &control, &mut recorder, options)?;
            ("udp", counters, udp)
        }
        Protocol::Tcp => {
            if args.simulate_loss > 0.0 {
                log::warn!("--simulate-loss applies to UDP only; TCP repairs loss itself");
            }
            let listener = mio::net::TcpListener::bind(args.bind)
                .with_context(|| format!("cannot listen on TCP {}", args.bind))?;
            let addr = listener
                .local_addr()
                .context("cannot read the bound address")?;
            announce(addr, "tcp", args.port_file.as_deref())?;
            let counters = tcp::run(listener, poll, &control, &mut recorder)?;
            ("tcp", counters, UdpCounters::default())
        }
    };
    if control.interrupted() {
        log::info!("interrupted: finishing");
    }

    let summary = ServerSummary::new(protocol, &counters, udp_counters, &recorder);
    let sink_result = recorder.finish_sink();
    let plot_result = match &args.stats_dir {
        Some(dir) => write_plot(dir, &recorder),
        None => Ok(()),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&summary).context("cannot encode the summary")?
        );
    } else {
        print!("{}", summary.to_text());
    }
    if let Some((records, files)) = sink_result? {
        log::info!("wrote {records} stats records in {files} file(s)");
    }
    plot_result
}

/// Tells scripts and tests where the server listens: a log line, and `--port-file`.
fn announce(addr: SocketAddr, protocol: &str, port_file: Option<&Path>) -> anyhow::Result<()> {
    if let Some(path) = port_file {
        // Write then rename, so a reader never sees a half-written file.
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, format!("{addr}\n"))
            .and_then(|()| fs::rename(&tmp, path))
            .with_context(|| format!("cannot write the port file {}", path.display()))?;
    }
    log::info!("listening on {addr} ({protocol})");
    Ok(())
}

fn write_plot(dir: &Path, recorder: &Recorder) -> anyhow::Result<()> {
    let path = dir.join("latency.svg");
    if plot::write_latency_svg(&path, recorder.histogram())? {
        log::info!("wrote {}", path.display());
    } else {
        log::info!("no message received: no latency plot");
    }
    Ok(())
}
