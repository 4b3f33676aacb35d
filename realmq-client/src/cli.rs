//! Command-line flags of `realmq-client`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use realmq_common::io::cli::{
    parse_bytes, parse_count, parse_rate, parse_seconds, parse_seconds_or_zero, CommonArgs,
};
use realmq_common::io::Protocol;
use realmq_proto::{DEFAULT_MAX_DATAGRAM, MAX_DATAGRAM_SIZE, MIN_DATAGRAM_SIZE};

use crate::{RunInfo, WorkerConfig};

/// Largest `--size` accepted. Over UDP the session layer caps it lower, at what one
/// datagram carries; the client says so before sending anything.
pub const MAX_SIZE: usize = 1 << 20;

/// Sends RealMQ messages to a realmq-server and reports throughput and round-trip times.
///
/// Every sender thread has its own socket and session. With QoS (the default) the client
/// ends only when every message is acknowledged or declared undeliverable, then closes its
/// sessions. Exit status: 0 on success, 1 if a message was undeliverable, the server could
/// not be reached or became unreachable, 2 for usage errors. Logs progress to stderr every
/// second (level set by RUST_LOG, default info).
#[derive(Debug, Parser)]
#[command(
    name = "realmq-client",
    version,
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    /// Server address, HOST:PORT (an IP or a name such as localhost).
    #[arg(long, default_value = "127.0.0.1:5555", value_name = "ADDR",
          value_parser = realmq_common::io::address::parse_address)]
    pub server: SocketAddr,

    /// Sender threads, each with its own socket and session (1-1024).
    #[arg(short, long, value_name = "N", default_value_t = 1, allow_negative_numbers = true,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: u32,

    /// Messages to send in total, split evenly across threads; suffixes K, M, G (x1000).
    /// Default 100000 unless --duration is given.
    #[arg(short = 'n', long, value_name = "N", conflicts_with = "duration",
          allow_negative_numbers = true, value_parser = parse_count)]
    pub messages: Option<u64>,

    /// Send for this many seconds (fractions allowed) instead of a number of messages.
    #[arg(short, long, value_name = "SECS", allow_negative_numbers = true,
          value_parser = parse_seconds)]
    pub duration: Option<Duration>,

    /// Payload bytes per message (1 to 1 MiB; suffixes K, M: x1024). From 16 bytes on, the
    /// first 16 carry the session, the message ID and a checksum the server verifies; the
    /// rest is random printable characters. Over UDP at most what one datagram carries (1441
    /// bytes with the default 1472-byte datagrams, 1417 with --psk-file).
    #[arg(short, long, value_name = "BYTES", default_value = "64",
          allow_negative_numbers = true, value_parser = parse_size)]
    pub size: u32,

    /// The largest UDP datagram to send, in bytes of UDP payload (300-65507). The default is
    /// one Ethernet MTU's (1500 less 28 bytes of IPv4 and UDP headers); jumbo frames take
    /// 8972, loopback up to 65507. Never more than the kernel's path MTU to the server
    /// allows. Larger datagrams carry more messages each, and larger messages (UDP and raw;
    /// TCP has its own segments).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_DATAGRAM as u32,
          allow_negative_numbers = true,
          value_parser = clap::value_parser!(u32)
              .range(MIN_DATAGRAM_SIZE as i64..=MAX_DATAGRAM_SIZE as i64))]
    pub datagram_size: u32,

    /// Messages per second in total, split across threads (suffixes K, M); 0 sends as fast
    /// as the send window (UDP) or the connection (TCP) allows.
    #[arg(short, long, value_name = "N", default_value = "0", allow_negative_numbers = true,
          value_parser = parse_rate)]
    pub rate: u64,

    /// Send without QoS: no acknowledgements wait, no resends. `acked` then is what the
    /// server reports it received when the session ends, and `lost` the difference.
    #[arg(long)]
    pub no_qos: bool,

    /// Give up on a server that does not answer the handshake (UDP) or the connection
    /// (TCP) within this many seconds.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_seconds)]
    pub connect_timeout: Duration,

    /// Latency mode, as ZeroMQ's local_lat/remote_lat and Aeron's Ping/Pong: one message in
    /// flight, the next sent once the previous is acknowledged (UDP, which asks the server
    /// for an immediate ACK) or answered (TCP); `rtt_us` then holds one round trip per
    /// message. Combine with --rate to ping at a fixed rate.
    #[arg(long, conflicts_with = "no_qos")]
    pub ping: bool,

    /// Open the session(s) and send no message for --duration seconds: only heartbeats flow
    /// (with --record-arrivals, this records a heartbeat trace; see docs/THRESHOLD.md).
    #[arg(long, requires = "duration", conflicts_with_all = ["ping", "rate"])]
    pub idle: bool,

    /// Bursty load: send for ON seconds, then pause for OFF seconds, over and over (e.g.
    /// `2,2`; UDP only). During a pause only heartbeats flow, so with --record-arrivals this
    /// records a trace with the load-to-idle transitions of docs/THRESHOLD.md.
    #[arg(long, value_name = "ON,OFF", value_parser = parse_on_off, conflicts_with_all = ["ping", "idle"])]
    pub on_off: Option<(Duration, Duration)>,

    /// When the server goes away mid-run (a crash, a restart: its failure detector says so),
    /// keep every unacknowledged message and try to open a new session for up to SECS
    /// seconds, with backoff, then send them again there. 0 gives up at once. UDP only.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_seconds_or_zero)]
    pub reconnect_timeout: Duration,

    /// Leave the first SECS seconds of sending out of the rates and round-trip times (as
    /// iperf3's --omit): connection start-up and the congestion window's first growth.
    /// Everything sent still counts for delivery and loss.
    #[arg(long, value_name = "SECS", default_value = "0", value_parser = parse_seconds_or_zero)]
    pub warmup: Duration,

    /// Log a progress line every SECS seconds (fractions allowed; 0 turns them off), and
    /// keep each interval's counts in the JSON summary (`intervals`).
    #[arg(short, long, value_name = "SECS", default_value = "1", value_parser = parse_seconds_or_zero)]
    pub interval: Duration,

    /// Flags both binaries take.
    #[command(flatten)]
    pub common: CommonArgs,

    /// A tool instead of a run.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The client's subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Replay recorded arrival traces (--record-arrivals) through the failure detector: per
    /// threshold φ, the mistakes (suspicions of a live peer) and the detection time. See
    /// docs/THRESHOLD.md.
    PhiSweep(crate::phi_sweep::SweepArgs),
}

/// `ON,OFF` in seconds, each above 0.
fn parse_on_off(s: &str) -> Result<(Duration, Duration), String> {
    let (on, off) = s
        .split_once(',')
        .ok_or_else(|| format!("`{s}`: give ON,OFF in seconds, e.g. 2,2"))?;
    Ok((parse_seconds(on.trim())?, parse_seconds(off.trim())?))
}

/// A payload size from 1 byte to [`MAX_SIZE`].
fn parse_size(s: &str) -> Result<u32, String> {
    match parse_bytes(s)? {
        0 => Err(format!("{s}: a message needs at least 1 byte")),
        n if n > MAX_SIZE => Err(format!("{s} bytes is more than the {MAX_SIZE} allowed")),
        n => Ok(n as u32),
    }
}

impl Args {
    /// Parses the command line and checks what clap cannot check alone (a `--size` that
    /// fits one datagram); on a usage error prints it and exits with status 2.
    pub fn parse_checked() -> Self {
        let args = Self::parse();
        if args.on_off.is_some() && args.common.protocol != Protocol::Udp {
            Self::command()
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    "--on-off works with --protocol udp only",
                )
                .exit();
        }
        let max = crate::max_payload(args.datagram_size as usize, args.common.psk_file.is_some());
        if args.common.protocol == Protocol::Udp && args.size as usize > max {
            let largest = crate::max_payload(MAX_DATAGRAM_SIZE, args.common.psk_file.is_some());
            let hint = if args.size as usize <= largest {
                " (a larger --datagram-size carries it where the path allows)"
            } else {
                ""
            };
            let message = format!(
                "--size {} does not fit in one {}-byte UDP datagram: at most {max} bytes{hint}",
                args.size, args.datagram_size
            );
            Self::command()
                .error(clap::error::ErrorKind::ValueValidation, message)
                .exit();
        }
        args
    }

    /// Messages thread `index` sends, or `None` in --duration mode.
    pub fn quota(&self, index: u32) -> Option<u64> {
        if self.duration.is_some() {
            return None;
        }
        let total = self.messages.unwrap_or(100_000);
        let threads = u64::from(self.threads);
        let extra = u64::from(u64::from(index) < total % threads);
        Some(total / threads + extra)
    }

    /// Messages per second for each thread (0: unlimited).
    pub fn rate_per_thread(&self) -> f64 {
        if let (true, Some(d)) = (self.idle, self.duration) {
            // Half a token over the whole run: the first message would be due after it.
            return 0.5 / d.as_secs_f64();
        }
        self.rate as f64 / f64::from(self.threads)
    }

    /// One [`WorkerConfig`] per thread.
    pub fn workers(&self) -> Vec<WorkerConfig> {
        (0..self.threads)
            .map(|index| WorkerConfig {
                index,
                server: self.server,
                quota: self.quota(index),
                duration: self.duration,
                rate: self.rate_per_thread(),
                size: self.size as usize,
                reliable: !self.no_qos,
                connect_timeout: self.connect_timeout,
                simulate_loss: self.common.simulate_loss,
                loss_seed: self.common.loss_seed.wrapping_add(u64::from(index)),
                socket_buffer: self.common.socket_buffer,
                psk: None,
                ping: self.ping,
                warmup: self.warmup,
                reconnect_timeout: self.reconnect_timeout,
                liveness: self.common.liveness_options(),
                clock_skew_us: 0,
                on_off: self.on_off,
                datagram_size: self.datagram_size as usize,
            })
            .collect()
    }

    /// The run as a whole, for the summary.
    pub fn run_info(&self) -> RunInfo {
        RunInfo {
            protocol: self.common.protocol.name(),
            qos: self.common.protocol == Protocol::Udp && !self.no_qos,
            threads: self.threads,
            size: self.size,
        }
    }

    /// How the run reports while it goes.
    pub fn reporting(&self) -> crate::Reporting {
        crate::Reporting {
            interval: (!self.interval.is_zero()).then_some(self.interval),
            qos: self.common.protocol == Protocol::Udp && !self.no_qos,
        }
    }

    /// One line saying what the run does.
    pub fn describe(&self) -> String {
        if self.common.protocol == Protocol::Tcp && self.common.simulate_loss > 0.0 {
            log::warn!("--simulate-loss applies to UDP only; TCP repairs loss itself");
        }
        format!(
            "{} thread(s) sending {}-byte messages to {} over {}{}",
            self.threads,
            self.size,
            self.server,
            self.common.protocol.name().to_uppercase(),
            if self.no_qos { " without QoS" } else { "" }
        )
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
    fn messages_split_evenly_with_the_remainder_first() {
        let a = Args::try_parse_from(["c", "--messages", "10", "--threads", "4"]).unwrap();
        let quotas: Vec<_> = (0..4).map(|i| a.quota(i).unwrap()).collect();
        assert_eq!(quotas, [3, 3, 2, 2]);
        let d = Args::try_parse_from(["c", "--duration", "1.5"]).unwrap();
        assert_eq!(d.quota(0), None);
        assert_eq!(d.duration, Some(Duration::from_millis(1500)));
        let default = Args::try_parse_from(["c"]).unwrap();
        assert_eq!(default.quota(0), Some(100_000));
        assert_eq!(default.size, 64);
        assert_eq!(default.server, "127.0.0.1:5555".parse().unwrap());
    }

    #[test]
    fn short_flags_and_suffixes() {
        let a =
            Args::try_parse_from(["c", "-n", "2M", "-t", "4", "-s", "1K", "-r", "50K"]).unwrap();
        assert_eq!(
            (a.messages, a.threads, a.size, a.rate),
            (Some(2_000_000), 4, 1024, 50_000)
        );
        let d = Args::try_parse_from(["c", "-d", "2.5"]).unwrap();
        assert_eq!(d.duration, Some(Duration::from_millis(2500)));
        let e = Args::try_parse_from(["c", "--messages", "-5"]).unwrap_err();
        assert!(e.to_string().contains("negative"), "{e}");
    }

    #[test]
    fn rejects_bad_values() {
        for bad in [
            &["c", "--server", "localhost"][..],
            &["c", "--server", "nowhere.invalid:5555"],
            &["c", "--threads", "0"],
            &["c", "--messages", "5", "--duration", "1"],
            &["c", "--size", "-1"],
            &["c", "--size", "0"],
            &["c", "--messages", "0"],
            &["c", "--messages", "-5"],
            &["c", "-n", "1.5"],
            &["c", "--rate", "-100"],
            &["c", "--simulate-loss", "abc"],
            &["c", "--duration", "0"],
            &["c", "--protocol", "sctp"],
        ] {
            assert!(Args::try_parse_from(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn on_off_takes_two_durations_and_pauses_in_the_second() {
        let a = Args::try_parse_from(["c", "--on-off", "2,0.5", "-d", "10"]).unwrap();
        assert_eq!(
            a.on_off,
            Some((Duration::from_secs(2), Duration::from_millis(500)))
        );
        for bad in ["2", "0,1", "1,x", "-1,1"] {
            assert!(
                Args::try_parse_from(["c", "--on-off", bad]).is_err(),
                "{bad}"
            );
        }
        let w = &a.workers()[0];
        let at = |ms| w.pause_at(Duration::from_millis(ms)).unwrap();
        assert_eq!(at(0), (false, Duration::from_secs(2)));
        assert_eq!(at(1_999), (false, Duration::from_millis(1)));
        assert_eq!(at(2_000), (true, Duration::from_millis(500)));
        assert_eq!(at(2_400), (true, Duration::from_millis(100)));
        assert_eq!(at(2_500), (false, Duration::from_secs(2)));
        assert_eq!(
            Args::try_parse_from(["c"]).unwrap().workers()[0].pause_at(Duration::ZERO),
            None
        );
    }
}
