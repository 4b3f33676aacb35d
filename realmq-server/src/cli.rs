//! Command-line flags of `realmq-server`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use realmq_common::io::cli::{
    parse_duration_or_zero, parse_seconds, parse_seconds_or_zero, CommonArgs,
};

use crate::sink::{SinkConfig, StatsFormat};
use crate::ServeOptions;

/// Receives RealMQ messages and measures their one-way latency.
///
/// Serves one protocol per process: RealMQ sessions over UDP (with QoS: acknowledgements and
/// resends), or the plain TCP baseline to compare against. Logs progress to stderr every
/// second (level set by RUST_LOG, default info) and prints a summary on exit (Ctrl-C,
/// SIGTERM, or --exit-after-sessions). On Ctrl-C or SIGTERM it first acknowledges everything
/// it received, so that its clients send a restarted server only what it never delivered.
#[derive(Debug, Parser)]
#[command(name = "realmq-server", version)]
pub struct Args {
    /// Address to listen on, HOST:PORT (an IP or a name such as localhost). Port 0 picks a
    /// free port: the bound address is logged as `listening on ADDR` and written to
    /// --port-file.
    #[arg(long, default_value = "127.0.0.1:5555", value_name = "ADDR",
          value_parser = realmq_common::io::address::parse_address)]
    pub bind: SocketAddr,

    /// Exit after this many sessions have ended (closed by the client, or declared dead).
    /// Without it the server runs until Ctrl-C or SIGTERM.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub exit_after_sessions: Option<u64>,

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

    /// Leave the latencies of messages delivered in the first SECS seconds after the first
    /// one out of the summary (as iperf3's --omit); they are still counted.
    #[arg(long, value_name = "SECS", default_value = "0", value_parser = parse_seconds_or_zero)]
    pub warmup: Duration,

    /// Keep polling the socket(s) for this long after the last arrival before sleeping
    /// (e.g. 100us; at most 1s): each datagram or segment then finds the loop awake instead
    /// of waking it, which took most of a paced message's one-way latency on loopback, at
    /// the price of a core kept busy while traffic flows (Aeron's busy-spin idle strategy).
    /// 0 sleeps at once.
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = parse_busy_poll)]
    pub busy_poll: Duration,

    /// Flags both binaries take.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `--busy-poll`: a duration from 0 to a second.
fn parse_busy_poll(s: &str) -> Result<Duration, String> {
    let d = parse_duration_or_zero(s)?;
    if d > Duration::from_secs(1) {
        return Err(format!("{s} is out of range: give 0 to 1s"));
    }
    Ok(d)
}

impl Args {
    /// What [`crate::serve`] needs from the flags.
    pub fn serve_options(&self) -> ServeOptions {
        ServeOptions {
            exit_after_sessions: self.exit_after_sessions,
            stats: self.stats_dir.as_ref().map(|dir| SinkConfig {
                dir: dir.clone(),
                format: self.stats_format,
                save_interval: self.save_interval,
                rotate_after: self.rotate_after,
            }),
            simulate_loss: self.common.simulate_loss,
            loss_seed: self.common.loss_seed,
            psk: None,
            warmup: self.warmup,
            liveness: self.common.liveness_options(),
            busy_poll: self.busy_poll,
        }
    }
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
    fn busy_poll_takes_a_duration_up_to_a_second() {
        let a = Args::try_parse_from(["realmq-server", "--busy-poll", "100us"]).unwrap();
        assert_eq!(a.busy_poll, Duration::from_micros(100));
        assert_eq!(a.serve_options().busy_poll, Duration::from_micros(100));
        for bad in ["2s", "soon", "-1ms"] {
            assert!(
                Args::try_parse_from(["realmq-server", "--busy-poll", bad]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn defaults() {
        let a = Args::try_parse_from(["realmq-server"]).unwrap();
        assert_eq!(a.bind, "127.0.0.1:5555".parse().unwrap());
        assert_eq!(a.common.protocol, realmq_common::io::Protocol::Udp);
        assert_eq!(a.save_interval, Duration::from_secs(1));
        assert_eq!(a.rotate_after, 1_000_000);
        assert_eq!(a.common.simulate_loss, 0.0);
        assert!(a.exit_after_sessions.is_none());
        assert_eq!(a.busy_poll, Duration::ZERO);
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
