//! Command-line flags of `realmq-server`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use realmq_common::args::{parse_percent, parse_seconds};

/// Receives RealMQ messages and measures their one-way latency.
///
/// Serves one protocol per process: RealMQ sessions over UDP (with QoS: acknowledgements and
/// resends), or the plain TCP baseline to compare against. Logs progress to stderr every
/// second (level set by RUST_LOG, default info) and prints a summary on exit (Ctrl-C,
/// SIGTERM, or --exit-after-sessions).
#[derive(Debug, Parser)]
#[command(name = "realmq-server", version)]
pub struct Args {
    /// Address to listen on, IP:PORT. Port 0 picks a free port: the bound address is logged as
    /// `listening on ADDR` and written to --port-file.
    #[arg(long, default_value = "127.0.0.1:5555", value_name = "ADDR")]
    pub bind: SocketAddr,

    /// Transport: `udp` (RealMQ sessions with QoS) or `tcp` (baseline: length-prefixed
    /// messages over one TCP connection per client thread).
    #[arg(long, value_enum, default_value_t = Protocol::Udp)]
    pub protocol: Protocol,

    /// Exit after this many sessions have ended (closed by the client, or declared dead).
    /// Without it the server runs until Ctrl-C or SIGTERM.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub exit_after_sessions: Option<u64>,

    /// Print the final summary as one JSON object on stdout (logs stay on stderr).
    /// `duration_s` and `msgs_per_s` cover the first to the last delivered message.
    #[arg(long)]
    pub json: bool,

    /// Write the bound address (`IP:PORT`, one line) to this file once listening, for
    /// scripts and tests that bind port 0.
    #[arg(long, value_name = "PATH")]
    pub port_file: Option<PathBuf>,

    /// Stream one record per delivered message into numbered files in this directory
    /// (created if missing), and write `latency.svg` there on exit. Off by default.
    #[arg(long, value_name = "DIR")]
    pub stats_dir: Option<PathBuf>,

    /// Record format in --stats-dir: `csv` (`id,num,diff`: message ID, running number,
    /// latency in ms) or `json` (one object per line with the session too).
    #[arg(long, value_enum, default_value_t = StatsFormat::Csv)]
    pub stats_format: StatsFormat,

    /// Flush buffered stats records to disk at least this often, in seconds.
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = parse_seconds)]
    pub save_interval: Duration,

    /// Start a new numbered stats file after this many records.
    #[arg(long, value_name = "N", default_value_t = 1_000_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub rotate_after: u64,

    /// Testing aid: drop this percentage (0-100) of outgoing datagrams (ACKs, handshakes)
    /// at random before they reach the socket, to exercise the client's loss recovery.
    #[arg(long, value_name = "PCT", default_value_t = 0.0, value_parser = parse_percent)]
    pub simulate_loss: f64,

    /// Seed of --simulate-loss, so that a lossy run can be repeated.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub loss_seed: u64,

    /// Kernel receive and send buffer size requested for the UDP socket, in bytes
    /// (SO_RCVBUF/SO_SNDBUF; the kernel may cap it, on Linux at net.core.rmem_max). 0 keeps
    /// the OS default, which bursts from fast clients overflow.
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20)]
    pub socket_buffer: usize,
}

/// The transport a server or client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// RealMQ over UDP, with QoS.
    Udp,
    /// The TCP baseline.
    Tcp,
}

/// Record format of the stats files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatsFormat {
    /// `id,num,diff` lines with a header line per file.
    Csv,
    /// JSON lines: `{"session":S,"id":I,"num":N,"latency_us":L}`.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_are_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn defaults() {
        let a = Args::try_parse_from(["realmq-server"]).unwrap();
        assert_eq!(a.bind, "127.0.0.1:5555".parse().unwrap());
        assert_eq!(a.protocol, Protocol::Udp);
        assert_eq!(a.save_interval, Duration::from_secs(1));
        assert_eq!(a.rotate_after, 1_000_000);
        assert_eq!(a.simulate_loss, 0.0);
        assert!(a.exit_after_sessions.is_none());
    }

    #[test]
    fn rejects_bad_values() {
        for bad in [
            &["realmq-server", "--bind", "nowhere"][..],
            &["realmq-server", "--simulate-loss", "101"],
            &["realmq-server", "--save-interval", "0"],
            &["realmq-server", "--rotate-after", "0"],
            &["realmq-server", "--exit-after-sessions", "0"],
            &["realmq-server", "--protocol", "quic"],
        ] {
            assert!(Args::try_parse_from(bad).is_err(), "{bad:?} accepted");
        }
    }
}
