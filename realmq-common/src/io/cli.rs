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
}

impl Protocol {
    /// `udp` or `tcp`, as the flag spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
        }
    }
}

/// Flags both binaries share.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Transport: `udp` (RealMQ sessions with QoS) or `tcp` (the baseline: length-prefixed
    /// messages over one TCP connection per client thread). Both ends must agree.
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
}

impl CommonArgs {
    /// The pre-shared key of `--psk-file`, if given.
    pub fn psk(&self) -> Result<Option<crate::security::Psk>, PskFileError> {
        let Some(path) = &self.psk_file else {
            return Ok(None);
        };
        let bytes = std::fs::read(path).map_err(|e| PskFileError::Read {
            path: path.clone(),
            kind: e.kind(),
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
    #[error("cannot read the key file {}: {}", path.display(), std::io::Error::from(*kind))]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        kind: std::io::ErrorKind,
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

/// A positive number of seconds, fractions allowed (`0.5`), at most a day.
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(format!("{s} is out of range: give 0 < SECS <= 86400"));
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
    fn percent() {
        assert_eq!(parse_percent("10"), Ok(10.0));
        assert_eq!(parse_percent("0"), Ok(0.0));
        assert!(parse_percent("100.5").is_err());
        assert!(parse_percent("NaN").is_err());
        assert!(parse_percent("ten").is_err());
    }
}
