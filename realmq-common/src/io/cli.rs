//! The command-line flags both binaries take (flattened into each one's own `Args`), and
//! parsers for their values shaped for clap's `value_parser` (an error is a one-line
//! message for the user).

use std::time::Duration;

use clap::{Args, ValueEnum};

/// The transport a server or client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// RealMQ sessions over UDP, with QoS (acknowledgements and resends).
    Udp,
    /// The baseline: length-prefixed messages over one TCP connection per client thread.
    Tcp,
    /// The ceiling: the same messages over UDP with the same batching and system calls, and
    /// no protocol at all (no sessions, IDs, acknowledgements or resends; what is lost is
    /// lost). For benchmarks.
    Raw,
}

impl Protocol {
    /// `udp` or `tcp`, as the flag spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Raw => "raw",
        }
    }
}

/// Flags both binaries share.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Transport: `udp` (RealMQ sessions, with QoS unless the client says `--no-qos`), `tcp`
    /// (the baseline: length-prefixed messages over one TCP connection per client thread) or
    /// `raw` (the ceiling: UDP with no protocol). Both ends must agree.
    #[arg(long, value_enum, default_value_t = Protocol::Udp)]
    pub protocol: Protocol,

    /// Print the final summary as one JSON object on stdout (logs stay on stderr).
    #[arg(long)]
    pub json: bool,

    /// Testing aid: drop this percentage (0-100) of outgoing datagrams at random before
    /// they reach the socket, to exercise the peer's loss recovery. UDP only.
    #[arg(long, value_name = "PCT", default_value_t = 0.0, value_parser = parse_percent)]
    pub simulate_loss: f64,

    /// Seed of --simulate-loss, so that a lossy run can be repeated (client thread i uses
    /// seed + i).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub loss_seed: u64,

    /// Kernel receive and send buffer size requested for each UDP socket, in bytes
    /// (SO_RCVBUF/SO_SNDBUF; the kernel may cap it, on Linux at net.core.rmem_max). 0 keeps
    /// the OS default, which bursts from a fast sender overflow.
    #[arg(long, value_name = "BYTES", default_value = "4M", value_parser = parse_bytes)]
    pub socket_buffer: usize,

    /// Authenticate every datagram after the handshake with keys derived from the
    /// pre-shared key in this file (hex, at least 16 bytes, e.g. from `openssl rand -hex
    /// 32`; or raw bytes). Both ends must use the same key. UDP only. See docs/SECURITY.md.
    #[arg(long, value_name = "PATH")]
    pub psk_file: Option<std::path::PathBuf>,

    /// The heartbeat interval and the failure detector's settings.
    #[command(flatten)]
    pub liveness: LivenessArgs,

    /// Write the arrival time of every datagram the peer sends in a session (what the
    /// failure detector sees) to `FILE.<session id>`, one file per session: one integer per
    /// line, microseconds since the process started recording (monotonic clock). Replay it
    /// with `realmq-client phi-sweep --trace`. UDP only; at most 256 sessions are recorded.
    #[arg(long, value_name = "FILE")]
    pub record_arrivals: Option<std::path::PathBuf>,
}

/// The heartbeat interval and the φ accrual failure detector's settings (see
/// `docs/THRESHOLD.md`). Every detector setting left out takes the value recommended for the
/// heartbeat interval ([`crate::config::RECOMMENDED_LIVENESS`]).
#[derive(Debug, Clone, Default, Args)]
pub struct LivenessArgs {
    /// How often an idle peer sends a HEARTBEAT (`250us`, `10ms`, `1s`; a bare number is
    /// milliseconds). Server: announced to clients in the WELCOME [default: 100ms]. Client:
    /// heartbeat at most this long apart, or as the server asks if that is more often
    /// [default: as the server asks].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub heartbeat_interval: Option<Duration>,

    /// φ at or above which the peer is suspected [default: recommended for the heartbeat
    /// interval: 6 at 100ms].
    #[arg(long, value_name = "PHI", value_parser = parse_phi)]
    pub phi_threshold: Option<f64>,

    /// Floor of the standard deviation of the inter-arrival times that φ assumes [default:
    /// recommended for the heartbeat interval: 50ms at 100ms].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub min_std_deviation: Option<Duration>,

    /// Inter-arrival intervals the detector keeps (1-65536) [default: 200].
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=crate::phi::MAX_SAMPLE_SIZE as i64))]
    pub phi_window: Option<u32>,

    /// Silence tolerated on top of the mean interval before φ starts to grow [default: 0].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_or_zero)]
    pub acceptable_pause: Option<Duration>,

    /// Arrivals closer than this to the last sampled one restart the silence but add no
    /// interval to the detector's window (0 samples every arrival) [default: half the
    /// heartbeat interval].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_or_zero)]
    pub sample_gap: Option<Duration>,

    /// How long the peer stays suspected before it is declared dead and its session ends
    /// [default: 5 heartbeat intervals].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_or_zero)]
    pub grace_period: Option<Duration>,
}

impl LivenessArgs {
    /// The default heartbeat interval a server announces.
    pub const DEFAULT_SERVER_INTERVAL: Duration =
        crate::config::SenderConfig::DEFAULT_HEARTBEAT_INTERVAL;

    /// The settings as a [`LivenessTuning`](crate::config::LivenessTuning): what was not
    /// given stays `None`.
    pub fn tuning(&self) -> crate::config::LivenessTuning {
        crate::config::LivenessTuning {
            heartbeat_interval: self.heartbeat_interval,
            phi_threshold: self.phi_threshold,
            min_std_deviation: self.min_std_deviation,
            max_sample_size: self.phi_window.map(|n| n as usize),
            acceptable_heartbeat_pause: self.acceptable_pause,
            grace_period: self.grace_period,
            min_sample_gap: self.sample_gap,
        }
    }

    /// The heartbeat interval a server announces: `--heartbeat-interval` or 100 ms.
    pub fn server_interval(&self) -> Duration {
        self.heartbeat_interval
            .unwrap_or(Self::DEFAULT_SERVER_INTERVAL)
    }
}

/// What the session layer of either binary needs from the liveness flags.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LivenessOptions {
    /// The detector settings given on the command line.
    pub tuning: crate::config::LivenessTuning,
    /// `--record-arrivals`: the path the per-session files are named after.
    pub record_arrivals: Option<std::path::PathBuf>,
}

impl CommonArgs {
    /// The liveness flags, for the session layer.
    pub fn liveness_options(&self) -> LivenessOptions {
        LivenessOptions {
            tuning: self.liveness.tuning(),
            record_arrivals: self.record_arrivals.clone(),
        }
    }

    /// The pre-shared key of `--psk-file`, if given.
    pub fn psk(&self) -> Result<Option<crate::security::Psk>, PskFileError> {
        let Some(path) = &self.psk_file else {
            return Ok(None);
        };
        let bytes = std::fs::read(path).map_err(|e| PskFileError::Read {
            path: path.clone(),
            kind: e.kind(),
            os_error: e.raw_os_error(),
        })?;
        crate::security::Psk::from_bytes(&bytes)
            .map(Some)
            .map_err(|e| PskFileError::Invalid {
                path: path.clone(),
                error: e,
            })
    }
}

/// Why `--psk-file` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PskFileError {
    /// The file could not be read.
    #[error("cannot read the key file {}: {}", path.display(), describe(*kind, *os_error))]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        kind: std::io::ErrorKind,
        /// The operating system's error number, if it gave one: its text ("No such file or
        /// directory") says more than the kind's ("entity not found").
        os_error: Option<i32>,
    },
    /// The file holds no usable key.
    #[error("the key file {} holds no usable key: {error}", path.display())]
    Invalid {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with the key.
        error: crate::security::PskError,
    },
}

/// The text of an I/O error: the operating system's when its number is known.
fn describe(kind: std::io::ErrorKind, os_error: Option<i32>) -> std::io::Error {
    os_error.map_or_else(|| kind.into(), std::io::Error::from_raw_os_error)
}

/// A positive number of seconds, fractions allowed (`0.5`), at most a day; or a duration
/// with its unit, as the duration flags take them (`500ms`, `1.5s`), so that a unit never
/// surprises: a bare number here is seconds.
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    match parse_seconds_or_zero(s)? {
        d if d.is_zero() => Err(format!("{s} is out of range: give 0 < SECS <= 86400")),
        d => Ok(d),
    }
}

/// `0` (off) or a positive number of seconds, at most a day, as [`parse_seconds`] takes them
/// (`0.5`, `500ms`; `0s` is off too).
pub fn parse_seconds_or_zero(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.ends_with(|c: char| c.is_ascii_alphabetic()) {
        return parse_duration_or_zero(t)
            .map_err(|_| format!("`{s}` is not a number of seconds (or a duration: 500ms, 1.5s)"));
    }
    let secs: f64 = t
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("{s} is out of range: give 0 to 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Splits `12K` into (12.0, multiplier) with SI (`k`/`K` 10^3, `M` 10^6, `G` 10^9) or, for
/// sizes, binary (`K` 2^10, `M` 2^20, `G` 2^30) multipliers; `Ki`/`Mi`/`Gi` are binary too.
fn split_suffix(s: &str, binary: bool) -> (&str, f64) {
    let table: [(&str, f64); 6] = if binary {
        [
            ("Gi", 1073741824.0),
            ("Mi", 1048576.0),
            ("Ki", 1024.0),
            ("G", 1073741824.0),
            ("M", 1048576.0),
            ("K", 1024.0),
        ]
    } else {
        [
            ("Gi", 1073741824.0),
            ("Mi", 1048576.0),
            ("Ki", 1024.0),
            ("G", 1e9),
            ("M", 1e6),
            ("K", 1e3),
        ]
    };
    let t = s.trim();
    for (suffix, mult) in table {
        for form in [suffix.to_string(), suffix.to_lowercase()] {
            if let Some(number) = t.strip_suffix(form.as_str()) {
                if !number.is_empty() {
                    return (number, mult);
                }
            }
        }
    }
    (t, 1.0)
}

/// A whole number with an optional suffix; `what` names it in errors.
fn whole_number(s: &str, binary: bool, what: &str) -> Result<u64, String> {
    let (number, mult) = split_suffix(s, binary);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a number of {what} (suffixes: K, M, G)"))?;
    let total = value * mult;
    if !total.is_finite() || total < 0.0 {
        return Err(format!("{s} is negative: give a positive number of {what}"));
    }
    if total.fract() != 0.0 || total > u64::MAX as f64 {
        return Err(format!("{s} is not a whole number of {what}"));
    }
    Ok(total as u64)
}

/// A count of messages, at least 1: `200000`, `200K`, `10M` (SI: K = 1,000).
pub fn parse_count(s: &str) -> Result<u64, String> {
    match whole_number(s, false, "messages")? {
        0 => Err(format!("{s}: give at least 1 message")),
        n => Ok(n),
    }
}

/// Messages per second, 0 for unlimited: `50000`, `50K`, `1M` (SI).
pub fn parse_rate(s: &str) -> Result<u64, String> {
    whole_number(s, false, "messages per second")
}

/// A number of bytes, 0 allowed: `4194304`, `4M`, `64K` (binary: K = 1,024).
pub fn parse_bytes(s: &str) -> Result<usize, String> {
    let n = whole_number(s, true, "bytes")?;
    usize::try_from(n).map_err(|_| format!("{s} bytes is too large"))
}

/// A duration: a number with a unit, `us`, `ms` or `s` (`250us`, `10ms`, `1.5s`), or a bare
/// number of milliseconds; positive, at most a day, at least a microsecond.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    match parse_duration_or_zero(s)? {
        d if d.is_zero() => Err(format!("{s}: give a duration greater than zero")),
        d => Ok(d),
    }
}

/// Like [`parse_duration`], zero allowed.
pub fn parse_duration_or_zero(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else {
        (t, 1e-3)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 250us, 10ms, 1.5s)"))?;
    let secs = value * scale;
    if !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("{s} is out of range: give 0 to 1 day"));
    }
    let d = Duration::from_secs_f64(secs);
    if !d.is_zero() && d < Duration::from_micros(1) {
        return Err(format!("{s} is below a microsecond"));
    }
    Ok(d)
}

/// A φ threshold: a number in (0, 10⁶].
pub fn parse_phi(s: &str) -> Result<f64, String> {
    let phi: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if !(phi > 0.0 && phi <= crate::phi::PHI_MAX) {
        return Err(format!("{s} is out of range: give 0 < PHI <= 1000000"));
    }
    Ok(phi)
}

/// A percentage from 0 to 100.
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let pct: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a percentage"))?;
    if !(0.0..=100.0).contains(&pct) {
        return Err(format!("{s} is out of range: give 0 <= PCT <= 100"));
    }
    Ok(pct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("NaN").is_err());
        assert!(parse_seconds("90000").is_err());
        assert!(parse_seconds("soon").unwrap_err().contains("soon"));
        // With a unit it means what the unit says; a bare number stays seconds.
        assert_eq!(parse_seconds("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_seconds("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_seconds(" 2 "), Ok(Duration::from_secs(2)));
        assert!(parse_seconds("0ms").is_err());
        assert!(parse_seconds("2d").unwrap_err().contains("2d"));
        assert!(parse_seconds("inf").is_err());
        assert_eq!(parse_seconds_or_zero("0"), Ok(Duration::ZERO));
        assert_eq!(parse_seconds_or_zero("0s"), Ok(Duration::ZERO));
        assert!(parse_seconds_or_zero("-0.5").is_err());
    }

    #[test]
    fn counts_rates_and_sizes_take_suffixes() {
        assert_eq!(parse_count("200000"), Ok(200_000));
        assert_eq!(parse_count("200K"), Ok(200_000));
        assert_eq!(parse_count("10M"), Ok(10_000_000));
        assert_eq!(parse_count("1.5k"), Ok(1_500));
        assert!(parse_count("0").unwrap_err().contains("at least 1"));
        assert!(parse_count("-5").unwrap_err().contains("negative"));
        assert!(parse_count("2.5").is_err());
        assert!(parse_count("lots").is_err());
        assert_eq!(parse_rate("0"), Ok(0));
        assert_eq!(parse_rate("50K"), Ok(50_000));
        assert_eq!(parse_bytes("64K"), Ok(65_536));
        assert_eq!(parse_bytes("4M"), Ok(4 << 20));
        assert_eq!(parse_bytes("4Mi"), Ok(4 << 20));
        assert_eq!(parse_bytes("0"), Ok(0));
        assert!(parse_bytes("-1").is_err());
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("10ms"), Ok(Duration::from_millis(10)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_millis(5)));
        assert!(parse_duration("0").is_err());
        assert_eq!(parse_duration_or_zero("0"), Ok(Duration::ZERO));
        assert!(parse_duration("-1ms").is_err());
        assert!(parse_duration("2d").is_err());
        assert!(parse_duration("0.1us").is_err());
        assert!(parse_duration("NaN").is_err());
        assert_eq!(parse_phi("8"), Ok(8.0));
        assert!(parse_phi("0").is_err());
        assert!(parse_phi("NaN").is_err());
    }

    #[test]
    fn liveness_flags_left_out_stay_unset() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            common: CommonArgs,
        }
        let none = Cli::try_parse_from(["x"]).unwrap().common;
        assert_eq!(none.liveness_options(), LivenessOptions::default());
        assert_eq!(none.liveness.server_interval(), Duration::from_millis(100));
        let some = Cli::try_parse_from([
            "x",
            "--heartbeat-interval",
            "10ms",
            "--phi-threshold",
            "3",
            "--phi-window",
            "50",
            "--sample-gap",
            "0",
            "--record-arrivals",
            "/tmp/a",
        ])
        .unwrap()
        .common;
        let options = some.liveness_options();
        let t = &options.tuning;
        assert_eq!(t.heartbeat_interval, Some(Duration::from_millis(10)));
        assert_eq!(t.phi_threshold, Some(3.0));
        assert_eq!(t.max_sample_size, Some(50));
        assert_eq!(t.min_sample_gap, Some(Duration::ZERO));
        assert_eq!(t.min_std_deviation, None);
        assert_eq!(options.record_arrivals, Some("/tmp/a".into()));
        assert!(Cli::try_parse_from(["x", "--phi-window", "0"]).is_err());
    }

    #[test]
    fn percent() {
        assert_eq!(parse_percent("10"), Ok(10.0));
        assert_eq!(parse_percent("0"), Ok(0.0));
        assert!(parse_percent("100.5").is_err());
        assert!(parse_percent("NaN").is_err());
        assert!(parse_percent("ten").is_err());
    }
}
