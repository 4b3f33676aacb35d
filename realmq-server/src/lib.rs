//! `realmq-server` as a library: the serving loops the binary calls, so that tests can run
//! a server in-process on an ephemeral port.
//!
//! The binary (`main.rs`) parses flags, sets up logging and signals, binds, and calls
//! [`serve`]. Over UDP the loop (`serve_udp`) is the I/O shell around the sans-IO session
//! layer (`realmq_common::endpoint::Server`): it owns the socket, the clock, the one thread
//! and its `mio::Poll`; over TCP (`serve_tcp`) it reads the baseline's length-prefixed
//! frames. What is measured lives in `recorder`, `sink`, `plot` and [`ServerSummary`].
//! See `docs/USAGE.md`.

mod busy_poll;
pub mod cli;
mod plot;
mod raw;
mod recorder;
mod sessions;
mod sink;
mod summary;
mod tcp;
mod timeline;
mod udp;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use mio::{Poll, Token, Waker};
use realmq_common::io::entropy::random_bytes;
use realmq_common::io::{CpuTime, Shutdown};

use crate::busy_poll::BusyPoll;
use crate::tcp::serve_tcp;
use crate::udp::{serve_udp, UdpExtras};

pub use recorder::Counters;
pub use sessions::SessionReport;
pub use sink::{SinkConfig, StatsFormat};
pub use summary::{ServerSummary, UdpCounters};

/// The token of the waker that interrupts `poll` on shutdown.
pub(crate) const WAKER: Token = Token(0);

/// A bound socket or listener, ready to serve.
#[derive(Debug)]
pub enum Listener {
    /// RealMQ sessions over UDP.
    Udp(mio::net::UdpSocket),
    /// The TCP baseline.
    Tcp(mio::net::TcpListener),
    /// The raw UDP ceiling (`--protocol raw`).
    Raw(mio::net::UdpSocket),
}

/// How a server run behaves, besides where it listens.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Stop once this many sessions have ended (`None`: until shutdown).
    pub exit_after_sessions: Option<u64>,
    /// Per-message records and the latency plot (`None`: off).
    pub stats: Option<SinkConfig>,
    /// `--simulate-loss`, percent of outgoing datagrams dropped (UDP).
    pub simulate_loss: f64,
    /// Seed of `simulate_loss`.
    pub loss_seed: u64,
    /// Authenticate every session with this pre-shared key (UDP).
    pub psk: Option<realmq_common::security::Psk>,
    /// Latencies of the first deliveries (this long after the first) left out.
    pub warmup: std::time::Duration,
    /// The heartbeat interval announced to clients, the failure detector's settings and
    /// `--record-arrivals` (UDP).
    pub liveness: realmq_common::io::LivenessOptions,
    /// `--busy-poll`: keep polling this long after the last arrival before sleeping (zero:
    /// sleep at once).
    pub busy_poll: std::time::Duration,
}

/// When a serving loop stops: on shutdown, or after enough sessions.
#[derive(Debug)]
pub(crate) struct StopWhen {
    shutdown: Shutdown,
    exit_after_sessions: Option<u64>,
}

impl StopWhen {
    /// Ctrl-C or SIGTERM arrived.
    pub(crate) fn interrupted(&self) -> bool {
        self.shutdown.is_triggered()
    }

    /// `exit_after_sessions` sessions have ended.
    pub(crate) fn sessions_done(&self, counters: &Counters) -> bool {
        self.exit_after_sessions
            .is_some_and(|n| counters.sessions_ended >= n)
    }
}

/// The largest datagram the server writes (ACKs, RETRYs, WELCOMEs, BYEs): what every IPv6 path
/// carries (RFC 8200 §5: links of at least 1,280 bytes, less 48 of IPv6 and UDP headers), and
/// every IPv4 path of 1,260 bytes or more. The server cannot ask the kernel for each client's
/// path MTU (its socket is not connected), and its datagrams go out with the don't-fragment
/// bit: one over a client's path MTU is dropped on the way. An ACK of this size still holds
/// hundreds of ranges. (DATA datagrams are the client's, sized to its own path:
/// `realmq-client/src/udp.rs`, `datagram_size`.)
const ANSWER_DATAGRAM_SIZE: usize = 1_232;

/// Serves `listener` until `shutdown` triggers or enough sessions have ended; then writes
/// the stats files and plot (if asked) and returns the run's summary.
pub fn serve(
    listener: Listener,
    options: &ServeOptions,
    shutdown: &Shutdown,
) -> anyhow::Result<ServerSummary> {
    let poll = Poll::new().context("cannot create the event loop")?;
    let waker = Waker::new(poll.registry(), WAKER).context("cannot create a waker")?;
    shutdown.add_waker(Arc::new(waker));
    let stop = StopWhen {
        shutdown: shutdown.clone(),
        exit_after_sessions: options.exit_after_sessions,
    };
    let start = Instant::now();
    let cpu_start = CpuTime::of_thread();
    let sink = match &options.stats {
        Some(config) => Some(sink::StatsSink::create(config.clone(), start)?),
        None => None,
    };
    let mut recorder = recorder::Recorder::new(sink, start);
    recorder.set_warmup(options.warmup);
    // `--busy-poll`, the same for every protocol's loop.
    let busy_poll = BusyPoll::new(options.busy_poll);
    let (protocol, counters, udp) = match listener {
        Listener::Udp(socket) => {
            let loss = realmq_common::io::DropSim::new(options.simulate_loss, options.loss_seed);
            let secrets = realmq_common::endpoint::ServerSecrets {
                cookie_key: random_bytes().context("cannot draw a cookie key from the OS")?,
                rng_seed: random_bytes().context("cannot draw a seed from the OS")?,
            };
            let tuning = &options.liveness.tuning;
            let config = realmq_common::endpoint::ServerConfig {
                heartbeat_interval: tuning
                    .heartbeat_interval
                    .unwrap_or(realmq_common::io::LivenessArgs::DEFAULT_SERVER_INTERVAL),
                liveness: tuning.clone(),
                receiver: realmq_common::config::ReceiverConfig {
                    max_datagram_size: ANSWER_DATAGRAM_SIZE,
                    ..Default::default()
                },
                ..Default::default()
            };
            // The wall clock lets clients on other hosts estimate their clock offset in the
            // handshake, so one-way latencies are measured on this server's clock.
            let mut server = realmq_common::endpoint::Server::new(config, secrets)
                .context("invalid session configuration")?
                .with_wall_clock(Instant::now(), realmq_common::io::unix_now_us());
            let arrivals = (options.liveness.record_arrivals.as_ref())
                .map(|path| realmq_common::io::ArrivalRecorder::new(path, start));
            if let Some(psk) = &options.psk {
                server = server.with_psk(psk.clone());
            }
            let extras = UdpExtras {
                loss,
                arrivals,
                busy_poll,
            };
            let (counters, udp) = serve_udp(socket, poll, server, &stop, &mut recorder, extras)?;
            ("udp", counters, udp)
        }
        Listener::Tcp(listener) => {
            let counters = serve_tcp(listener, poll, &stop, &mut recorder, busy_poll)?;
            ("tcp", counters, UdpCounters::default())
        }
        Listener::Raw(socket) => {
            let (counters, udp) = raw::serve_raw(socket, poll, &stop, &mut recorder, busy_poll)?;
            ("raw", counters, udp)
        }
    };
    if stop.interrupted() {
        log::info!("interrupted: finishing");
    }
    let mut summary = ServerSummary::new(protocol, &counters, udp, &recorder);
    summary.cpu = CpuTime::summary_since(cpu_start, CpuTime::of_thread, counters.received);
    if let Some((records, files)) = recorder.finish_sink()? {
        log::info!("wrote {records} stats records in {files} file(s)");
    }
    if let Some(config) = &options.stats {
        write_plot(config.dir.join("latency.svg"), &recorder)?;
    }
    Ok(summary)
}

fn write_plot(path: PathBuf, recorder: &recorder::Recorder) -> anyhow::Result<()> {
    match plot::write_latency_svg(&path, recorder.histogram(), recorder.timeline())? {
        plot::PlotOutcome::Written => log::info!("wrote {}", path.display()),
        plot::PlotOutcome::NoMessages => {
            log::info!("no message received: {} says so", path.display())
        }
    }
    Ok(())
}
