//! Tuning of the QoS engine: [`SenderConfig`], [`ReceiverConfig`] and the [`LivenessConfig`]
//! both share.
//!
//! Every struct has a documented `Default`, derives serde's `Serialize`/`Deserialize` (missing
//! fields take their default) and has a `validate()` that returns a typed error. Durations
//! serialise as serde's `{ secs, nanos }`.
//!
//! The defaults target loopback and LAN links (round trips well below a millisecond, bursts of
//! thousands of small messages); the table in `docs/QOS.md` lists them with their reasons.

use std::time::Duration;

use realmq_proto::{DEFAULT_MAX_DATAGRAM, HEADER_LEN, MAX_DATAGRAM_SIZE, MIN_DATAGRAM_SIZE};
use serde::{Deserialize, Serialize};

use crate::phi::{PhiConfig, PhiConfigError};

/// Worst-case bytes a DATA frame adds around its first message: type, an 8-byte first ID,
/// an 8-byte timestamp, the 2-byte count and a 4-byte payload length.
pub const DATA_FRAME_OVERHEAD: usize = 1 + 8 + 8 + 2 + 4;

/// The sending half of a session: window, loss detection, retransmission and heartbeats.
///
/// | field | default | why |
/// |---|---|---|
/// | `reliable` | `true` | `false` is fire and forget (the client's `--no-qos`) |
/// | `max_datagram_size` | 1472 | [`realmq_proto::DEFAULT_MAX_DATAGRAM`], one Ethernet MTU |
/// | `window_messages` | 8192 | messages stored between the oldest unacknowledged one and the newest |
/// | `window_bytes` | 8 MiB | message storage (payloads in their DATA framing), allocated once |
/// | `reordering_window_divisor` | 4 | RACK's reordering window `min_rtt / 4` (RFC 8985 §6.2) |
/// | `packet_threshold` | 3 | RFC 9002 §6.1.1 kPacketThreshold |
/// | `time_threshold` | 9/8 | RFC 9002 §6.1.2 kTimeThreshold |
/// | `timer_granularity` | 1 ms | RFC 9002 §6.1.2 kGranularity: floor of the loss delay |
/// | `initial_rtt` | 100 ms | RTT assumed before the first sample (RFC 9002 §6.2.2 uses 333 ms for the Internet; LANs are far faster) |
/// | `min_rto` / `max_rto` | 10 ms / 2 s | bounds of the retransmission timeout (see the field docs) |
/// | `peer_max_ack_delay` | 2 ms | the receiver's [`ReceiverConfig::max_ack_delay`] |
/// | `max_retries` | 30 | resends of one message before it is reported undeliverable: at 50 % loss a message fails 31 times in a row with probability 5·10⁻¹⁰ |
/// | `heartbeat_interval` | 100 ms | silence after which a HEARTBEAT is due |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SenderConfig {
    /// Whether messages are kept until acknowledged and resent when lost. With `false` every
    /// message is written once and its storage released at once: no ACK processing, no
    /// retransmission, nothing ever undeliverable (the client's `--no-qos` mode).
    pub reliable: bool,
    /// Largest datagram the sender writes, bounding the payload of one message.
    pub max_datagram_size: usize,
    /// Most messages in the window: from the oldest one not yet acknowledged (or given up) to
    /// the newest one accepted by `send`. `send` refuses more (back-pressure).
    pub window_messages: usize,
    /// Bytes of message storage. The window's messages must fit in it, each payload under
    /// 256 bytes with the 3 to 5 bytes of DATA framing it is stored in (more only for
    /// timestamps over an hour apart); it is allocated once when the sender is created and
    /// never grows.
    pub window_bytes: usize,
    /// RACK's reordering window as a fraction of the minimum RTT: a message is also lost
    /// once a datagram written at least `min_rtt / reordering_window_divisor` after it has
    /// been acknowledged (RFC 8985 §6.2, whose default is 4), however few transmissions
    /// later. On a LAN, whose RTT is far below the 1 ms `timer_granularity`, this repairs a
    /// loss at the next ACK instead of a millisecond later. 0 turns the rule off (RFC 9002
    /// §6.1 alone).
    pub reordering_window_divisor: u32,
    /// Packet reordering threshold K: a message is lost once a datagram sent K or more
    /// datagrams after it has been acknowledged (RFC 9002 §6.1.1).
    pub packet_threshold: u64,
    /// Time threshold factor: a message is lost once a later datagram was acknowledged and
    /// `time_threshold · max(smoothed RTT, latest RTT)` has passed since it was sent
    /// (RFC 9002 §6.1.2). At least 1.
    pub time_threshold: f64,
    /// Floor of the loss delay and of the RTT variance term (RFC 9002 §6.1.2 kGranularity).
    pub timer_granularity: Duration,
    /// RTT assumed before the first sample (RFC 9002 §6.2.2).
    pub initial_rtt: Duration,
    /// Smallest retransmission timeout. RFC 6298 §2.4 asks for 1 s on the Internet; on a LAN
    /// that would stall a tail loss for a thousand round trips, so the floor is lower. The
    /// timeout also includes `peer_max_ack_delay`, so it never fires merely because the
    /// receiver delayed its ACK.
    pub min_rto: Duration,
    /// Largest retransmission timeout, after exponential backoff. RFC 6298 §2.5 allows any
    /// maximum of at least 60 s; a lower one keeps recovery prompt after an outage, while a
    /// peer that is really gone is caught by the liveness detector.
    pub max_rto: Duration,
    /// The longest the peer delays an ACK (its [`ReceiverConfig::max_ack_delay`]). Part of the
    /// retransmission timeout (RFC 9002 §6.2.1) and the cap on a reported ACK delay (§5.3).
    pub peer_max_ack_delay: Duration,
    /// The peer's plausibility window (its [`ReceiverConfig::id_window`], from the WELCOME).
    /// An honest receiver never acknowledges an ID more than this beyond the largest sent:
    /// ACKs that do are protocol violations, and a run of them closes the session.
    pub peer_id_window: u64,
    /// How many times one message may be resent. A message lost again after that many resends
    /// is removed and reported as undeliverable.
    pub max_retries: u32,
    /// Silence after which a HEARTBEAT is due: when nothing was sent to the peer for this long.
    pub heartbeat_interval: Duration,
    /// When the peer counts as unreachable, judged from the arrival times of its ACKs.
    pub liveness: LivenessConfig,
}

impl Default for SenderConfig {
    fn default() -> Self {
        let heartbeat_interval = Self::DEFAULT_HEARTBEAT_INTERVAL;
        Self {
            reliable: true,
            max_datagram_size: DEFAULT_MAX_DATAGRAM,
            window_messages: 8192,
            window_bytes: 8 << 20,
            reordering_window_divisor: 4,
            packet_threshold: 3,
            time_threshold: 9.0 / 8.0,
            timer_granularity: Duration::from_millis(1),
            initial_rtt: Duration::from_millis(100),
            min_rto: Duration::from_millis(10),
            max_rto: Duration::from_secs(2),
            peer_max_ack_delay: ReceiverConfig::default().max_ack_delay,
            peer_id_window: ReceiverConfig::default().id_window,
            max_retries: 30,
            heartbeat_interval,
            liveness: LivenessConfig::for_heartbeat_interval(heartbeat_interval),
        }
    }
}

/// Why a [`SenderConfig`] was rejected.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum SenderConfigError {
    /// The maximum datagram size is outside what the wire format allows.
    #[error("max_datagram_size must be in {MIN_DATAGRAM_SIZE}..={MAX_DATAGRAM_SIZE}, got {0}")]
    DatagramSize(usize),
    /// The window holds no message.
    #[error("window_messages must be at least 1")]
    ZeroWindowMessages,
    /// The payload storage cannot hold even one largest message.
    #[error("window_bytes must be at least max_datagram_size ({min}), got {got}")]
    WindowBytesTooSmall {
        /// The smallest accepted value.
        min: usize,
        /// The configured value.
        got: usize,
    },
    /// The payload storage is larger than offsets can address (4 GiB).
    #[error("window_bytes must be below 4 GiB, got {0}")]
    WindowBytesTooLarge(usize),
    /// The packet threshold is zero.
    #[error("packet_threshold must be at least 1")]
    ZeroPacketThreshold,
    /// The time threshold is not a finite number of at least 1.
    #[error("time_threshold must be finite and at least 1, got {0}")]
    TimeThreshold(f64),
    /// A duration that must be positive is zero.
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    /// `min_rto` is above `max_rto`.
    #[error("min_rto ({min:?}) must not exceed max_rto ({max:?})")]
    RtoBounds {
        /// The configured minimum.
        min: Duration,
        /// The configured maximum.
        max: Duration,
    },
    /// The liveness settings are invalid.
    #[error("liveness: {0}")]
    Liveness(#[from] LivenessConfigError),
}

impl SenderConfig {
    /// Checks every field's range; see [`SenderConfigError`] for the rules.
    pub fn validate(&self) -> Result<(), SenderConfigError> {
        if !(MIN_DATAGRAM_SIZE..=MAX_DATAGRAM_SIZE).contains(&self.max_datagram_size) {
            return Err(SenderConfigError::DatagramSize(self.max_datagram_size));
        }
        if self.window_messages == 0 {
            return Err(SenderConfigError::ZeroWindowMessages);
        }
        if self.window_bytes < self.max_datagram_size {
            return Err(SenderConfigError::WindowBytesTooSmall {
                min: self.max_datagram_size,
                got: self.window_bytes,
            });
        }
        if u32::try_from(self.window_bytes).is_err() {
            return Err(SenderConfigError::WindowBytesTooLarge(self.window_bytes));
        }
        if self.packet_threshold == 0 {
            return Err(SenderConfigError::ZeroPacketThreshold);
        }
        if !(self.time_threshold.is_finite() && self.time_threshold >= 1.0) {
            return Err(SenderConfigError::TimeThreshold(self.time_threshold));
        }
        for (name, d) in [
            ("timer_granularity", self.timer_granularity),
            ("initial_rtt", self.initial_rtt),
            ("min_rto", self.min_rto),
            ("heartbeat_interval", self.heartbeat_interval),
        ] {
            if d.is_zero() {
                return Err(SenderConfigError::ZeroDuration(name));
            }
        }
        if self.min_rto > self.max_rto {
            return Err(SenderConfigError::RtoBounds {
                min: self.min_rto,
                max: self.max_rto,
            });
        }
        self.liveness.validate()?;
        Ok(())
    }

    /// The largest payload one message may carry: what fits in an otherwise empty datagram.
    pub fn max_payload(&self) -> usize {
        self.max_datagram_size
            .saturating_sub(HEADER_LEN + DATA_FRAME_OVERHEAD)
    }
}

/// The receiving half of a session: duplicate detection, ACK policy and liveness.
///
/// | field | default | why |
/// |---|---|---|
/// | `ack_every` | 32 | messages received before an ACK is due (see `docs/QOS.md` for the sweep) |
/// | `max_ack_delay` | 2 ms | longest an ACK is held back; RFC 9000 §18.2's default is 25 ms for the Internet |
/// | `max_ranges` | 1024 | gaps tracked above the cumulative point: 16 KiB, a tenth of the default window's worst case |
/// | `max_datagram_size` | 1472 | the ACK's budget |
/// | `id_window` | 16384 | plausibility: IDs beyond the largest received plus this are dropped; twice the default send window |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReceiverConfig {
    /// An ACK is due once this many new messages arrived since the last one (RFC 9000
    /// §13.2.2 acknowledges every second packet; RealMQ counts messages, many per datagram).
    pub ack_every: u32,
    /// The longest an ACK is held back after the first message it covers arrived (the
    /// delayed-ACK timer; RFC 9000 §13.2.1). Tell the sender: it is its
    /// [`SenderConfig::peer_max_ack_delay`].
    pub max_ack_delay: Duration,
    /// Most ranges of received IDs kept above the cumulative point (each costs 16 bytes,
    /// allocated up front). A message that would need one more is refused (not delivered,
    /// not acknowledged) and arrives again when resent; see [`crate::ranges::RangeSet`]. A
    /// window of `W` messages can leave at most `W / 2` gaps; too few ranges turn a lossy
    /// link into go-back-N, as the simulation showed with 64.
    pub max_ranges: usize,
    /// Largest datagram the receiver writes its ACKs into.
    pub max_datagram_size: usize,
    /// The plausibility window: a message whose ID is more than this above the largest ID
    /// received so far (or at least this, before any) is dropped and counted, never
    /// delivered or acknowledged. The server tells the client in its WELCOME, and the
    /// client's send window never exceeds it, so an honest sender's messages always fall
    /// inside; a forged or corrupted ID far ahead cannot enter the range set or the ACKs.
    pub id_window: u64,
    /// When the peer counts as dead, judged from the arrival times of its datagrams.
    pub liveness: LivenessConfig,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            ack_every: 32,
            max_ack_delay: Duration::from_millis(2),
            max_ranges: 1024,
            max_datagram_size: DEFAULT_MAX_DATAGRAM,
            id_window: 16_384,
            liveness: LivenessConfig::for_heartbeat_interval(
                SenderConfig::DEFAULT_HEARTBEAT_INTERVAL,
            ),
        }
    }
}

impl SenderConfig {
    /// The default [`SenderConfig::heartbeat_interval`].
    pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(100);
}

/// Why a [`ReceiverConfig`] was rejected.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum ReceiverConfigError {
    /// `ack_every` is zero.
    #[error("ack_every must be at least 1")]
    ZeroAckEvery,
    /// The maximum datagram size is outside what the wire format allows.
    #[error("max_datagram_size must be in {MIN_DATAGRAM_SIZE}..={MAX_DATAGRAM_SIZE}, got {0}")]
    DatagramSize(usize),
    /// `max_ranges` is zero or above [`ReceiverConfig::MAX_RANGES`].
    #[error("max_ranges must be in 1..={max}, got {got}", max = ReceiverConfig::MAX_RANGES)]
    Ranges {
        /// The configured value.
        got: usize,
    },
    /// The liveness settings are invalid.
    #[error("liveness: {0}")]
    Liveness(#[from] LivenessConfigError),
}

impl ReceiverConfig {
    /// Checks every field's range; see [`ReceiverConfigError`] for the rules.
    pub fn validate(&self) -> Result<(), ReceiverConfigError> {
        if self.ack_every == 0 {
            return Err(ReceiverConfigError::ZeroAckEvery);
        }
        if !(MIN_DATAGRAM_SIZE..=MAX_DATAGRAM_SIZE).contains(&self.max_datagram_size) {
            return Err(ReceiverConfigError::DatagramSize(self.max_datagram_size));
        }
        if !(1..=Self::MAX_RANGES).contains(&self.max_ranges) {
            return Err(ReceiverConfigError::Ranges {
                got: self.max_ranges,
            });
        }
        self.liveness.validate()?;
        Ok(())
    }

    /// The largest accepted [`max_ranges`](Self::max_ranges): 2^16 (1 MiB of ranges).
    pub const MAX_RANGES: usize = 1 << 16;
}

/// When a silent peer counts as suspected and then dead, from a φ accrual detector over the
/// arrival times of its datagrams (see [`crate::phi`] and [`crate::liveness`]).
///
/// The rule: the peer is *suspected* while φ ≥ `phi_threshold`, and *dead* once it has been
/// suspected without interruption for `grace_period`.
///
/// [`for_heartbeat_interval`](Self::for_heartbeat_interval) gives the defaults for a
/// heartbeat interval `h`; the threshold and the minimum standard deviation come from the
/// measured table [`RECOMMENDED_LIVENESS`] (`docs/THRESHOLD.md`).
///
/// | field | default | why |
/// |---|---|---|
/// | `phi_threshold` | from [`RECOMMENDED_LIVENESS`] (8 at 100 ms) | no mistake in any recorded trace, the fastest detection that allows |
/// | `grace_period` | 5·h | five missed heartbeats more before the session is freed |
/// | `max_sample_size` | 200 | Akka's window |
/// | `min_std_deviation` | from [`RECOMMENDED_LIVENESS`] (50 ms at 100 ms) | the floor that absorbs scheduling stalls and lost heartbeats |
/// | `acceptable_heartbeat_pause` | 0 | the grace period plays that role |
/// | `first_heartbeat_estimate` | h | the heartbeat interval |
/// | `min_sample_gap` | h/2 | arrivals are sampled at most about once per interval (`docs/THRESHOLD.md`) |
/// | `check_interval` | h/2 | how often a silent peer is re-examined |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LivenessConfig {
    /// φ at or above which the peer is suspected.
    pub phi_threshold: f64,
    /// How long the peer must stay suspected before it is declared dead.
    pub grace_period: Duration,
    /// Inter-arrival intervals kept by the detector.
    pub max_sample_size: usize,
    /// Floor of the standard deviation the detector uses.
    pub min_std_deviation: Duration,
    /// Silence tolerated on top of the mean interval.
    pub acceptable_heartbeat_pause: Duration,
    /// Interval assumed before any was measured.
    pub first_heartbeat_estimate: Duration,
    /// An arrival less than this after the last sampled one restarts the silence but adds no
    /// interval to the detector's window ([`PhiConfig::min_sample_gap`]).
    pub min_sample_gap: Duration,
    /// Period of the liveness check timer: how late a death may be noticed at most.
    pub check_interval: Duration,
}

impl Default for LivenessConfig {
    fn default() -> Self {
        Self::for_heartbeat_interval(SenderConfig::DEFAULT_HEARTBEAT_INTERVAL)
    }
}

/// Why a [`LivenessConfig`] was rejected.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum LivenessConfigError {
    /// The φ detector settings are invalid.
    #[error("{0}")]
    Phi(#[from] PhiConfigError),
    /// The check interval is zero.
    #[error("check_interval must be greater than zero")]
    ZeroCheckInterval,
}

/// One row of [`RECOMMENDED_LIVENESS`]: the settings measured best for a heartbeat interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecommendedLiveness {
    /// The heartbeat interval the traces were recorded with.
    pub heartbeat_interval: Duration,
    /// The recommended φ threshold.
    pub phi_threshold: f64,
    /// The recommended minimum standard deviation.
    pub min_std_deviation: Duration,
}

const fn recommended(interval_ms: u64, phi_threshold: f64, min_std_us: u64) -> RecommendedLiveness {
    RecommendedLiveness {
        heartbeat_interval: Duration::from_millis(interval_ms),
        phi_threshold,
        min_std_deviation: Duration::from_micros(min_std_us),
    }
}

/// The recommended threshold and minimum standard deviation for each measured heartbeat
/// interval, shortest first: the table of `docs/THRESHOLD.md` (a test keeps the two equal).
/// With these, replaying every recorded trace (loopback, 1 % and 5 % loss between network
/// namespaces, loopback with both cores busy) raised no false suspicion, with room for a
/// scheduling stall as long as the longest seen on top of each interval's longest silence,
/// and a silent peer is suspected within 10 heartbeat intervals plus 50 ms.
pub const RECOMMENDED_LIVENESS: &[RecommendedLiveness] = &[
    recommended(1, 8.0, 10_000),
    recommended(5, 5.0, 20_000),
    recommended(10, 16.0, 10_000),
    recommended(50, 5.0, 50_000),
    recommended(100, 8.0, 50_000),
    recommended(1000, 6.0, 500_000),
];

/// The recommended `(phi_threshold, min_std_deviation)` for heartbeat interval `h`: the row
/// of [`RECOMMENDED_LIVENESS`] for `h`, linear interpolation between the two rows around it,
/// the first row below the table, and above it the last row's threshold with the minimum
/// standard deviation scaled in proportion to `h`.
pub fn recommended_liveness(h: Duration) -> (f64, Duration) {
    let rows = RECOMMENDED_LIVENESS;
    let first = rows[0];
    let last = rows[rows.len() - 1];
    if h <= first.heartbeat_interval {
        return (first.phi_threshold, first.min_std_deviation);
    }
    if h >= last.heartbeat_interval {
        let scale = h.as_secs_f64() / last.heartbeat_interval.as_secs_f64();
        return (last.phi_threshold, last.min_std_deviation.mul_f64(scale));
    }
    let upper = rows
        .iter()
        .position(|r| r.heartbeat_interval >= h)
        .unwrap_or(rows.len() - 1);
    let (lo, hi) = (rows[upper - 1], rows[upper]);
    let span = (hi.heartbeat_interval - lo.heartbeat_interval).as_secs_f64();
    let f = (h - lo.heartbeat_interval).as_secs_f64() / span;
    let threshold = lo.phi_threshold + f * (hi.phi_threshold - lo.phi_threshold);
    let std = lo.min_std_deviation.as_secs_f64()
        + f * (hi.min_std_deviation.as_secs_f64() - lo.min_std_deviation.as_secs_f64());
    (threshold, Duration::from_secs_f64(std))
}

impl LivenessConfig {
    /// Defaults for a heartbeat interval `h`: threshold and minimum standard deviation from
    /// [`recommended_liveness`], first estimate `h`, sample gap and check interval `h/2`,
    /// grace period `5·h`, window 200.
    pub fn for_heartbeat_interval(h: Duration) -> Self {
        let (phi_threshold, min_std_deviation) = recommended_liveness(h);
        Self {
            phi_threshold,
            grace_period: h * 5,
            max_sample_size: 200,
            min_std_deviation,
            acceptable_heartbeat_pause: Duration::ZERO,
            first_heartbeat_estimate: h,
            min_sample_gap: h / 2,
            check_interval: h / 2,
        }
    }

    /// The φ detector's configuration.
    pub fn phi_config(&self) -> PhiConfig {
        PhiConfig {
            threshold: self.phi_threshold,
            max_sample_size: self.max_sample_size,
            min_std_deviation: self.min_std_deviation,
            acceptable_heartbeat_pause: self.acceptable_heartbeat_pause,
            first_heartbeat_estimate: self.first_heartbeat_estimate,
            min_sample_gap: self.min_sample_gap,
        }
    }

    /// Checks the φ settings ([`PhiConfig::validate`]) and a non-zero check interval.
    pub fn validate(&self) -> Result<(), LivenessConfigError> {
        self.phi_config().validate()?;
        if self.check_interval.is_zero() {
            return Err(LivenessConfigError::ZeroCheckInterval);
        }
        Ok(())
    }
}

/// What a user chose for liveness (the binaries' flags); every `None` takes the default of
/// [`LivenessConfig::for_heartbeat_interval`] for the heartbeat interval in force.
///
/// The interval in force is the server's own on the server (its
/// `ServerConfig::heartbeat_interval`, announced in the WELCOME). On the client it is the
/// server's announced interval, or [`heartbeat_interval`](Self::heartbeat_interval) if that
/// is shorter: a client may heartbeat more often than the server asks, never less.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LivenessTuning {
    /// The client's own heartbeat interval (ignored by the server, which announces its own).
    pub heartbeat_interval: Option<Duration>,
    /// [`LivenessConfig::phi_threshold`].
    pub phi_threshold: Option<f64>,
    /// [`LivenessConfig::min_std_deviation`].
    pub min_std_deviation: Option<Duration>,
    /// [`LivenessConfig::max_sample_size`].
    pub max_sample_size: Option<usize>,
    /// [`LivenessConfig::acceptable_heartbeat_pause`].
    pub acceptable_heartbeat_pause: Option<Duration>,
    /// [`LivenessConfig::grace_period`].
    pub grace_period: Option<Duration>,
    /// [`LivenessConfig::min_sample_gap`].
    pub min_sample_gap: Option<Duration>,
}

impl LivenessTuning {
    /// The configuration for heartbeat interval `h`: the defaults for `h`, overridden by
    /// what was given.
    pub fn resolve(&self, h: Duration) -> LivenessConfig {
        let d = LivenessConfig::for_heartbeat_interval(h);
        LivenessConfig {
            phi_threshold: self.phi_threshold.unwrap_or(d.phi_threshold),
            grace_period: self.grace_period.unwrap_or(d.grace_period),
            max_sample_size: self.max_sample_size.unwrap_or(d.max_sample_size),
            min_std_deviation: self.min_std_deviation.unwrap_or(d.min_std_deviation),
            acceptable_heartbeat_pause: self
                .acceptable_heartbeat_pause
                .unwrap_or(d.acceptable_heartbeat_pause),
            min_sample_gap: self.min_sample_gap.unwrap_or(d.min_sample_gap),
            ..d
        }
    }

    /// The interval a client heartbeats at when the server announced `announced`: the
    /// shorter of it and the client's own, if given.
    pub fn client_interval(&self, announced: Duration) -> Duration {
        self.heartbeat_interval
            .map_or(announced, |own| own.min(announced))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        SenderConfig::default().validate().unwrap();
        ReceiverConfig::default().validate().unwrap();
        LivenessConfig::default().validate().unwrap();
        assert_eq!(
            SenderConfig::default().heartbeat_interval,
            SenderConfig::DEFAULT_HEARTBEAT_INTERVAL
        );
        assert_eq!(
            SenderConfig::default().peer_max_ack_delay,
            ReceiverConfig::default().max_ack_delay
        );
    }

    #[test]
    fn bad_values_are_rejected_with_their_reason() {
        let sender = |f: fn(&mut SenderConfig)| {
            let mut c = SenderConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert_eq!(
            sender(|c| c.window_messages = 0),
            SenderConfigError::ZeroWindowMessages
        );
        assert_eq!(
            sender(|c| c.window_bytes = 100),
            SenderConfigError::WindowBytesTooSmall {
                min: 1472,
                got: 100
            }
        );
        assert_eq!(
            sender(|c| c.time_threshold = 0.5),
            SenderConfigError::TimeThreshold(0.5)
        );
        assert!(matches!(
            sender(|c| c.time_threshold = f64::NAN),
            SenderConfigError::TimeThreshold(_)
        ));
        assert_eq!(
            sender(|c| c.min_rto = Duration::from_secs(5)),
            SenderConfigError::RtoBounds {
                min: Duration::from_secs(5),
                max: Duration::from_secs(2)
            }
        );
        assert_eq!(
            sender(|c| c.max_datagram_size = 10),
            SenderConfigError::DatagramSize(10)
        );
        assert_eq!(
            sender(|c| c.liveness.check_interval = Duration::ZERO),
            SenderConfigError::Liveness(LivenessConfigError::ZeroCheckInterval)
        );

        let mut r = ReceiverConfig {
            max_ranges: 0,
            ..ReceiverConfig::default()
        };
        assert_eq!(r.validate(), Err(ReceiverConfigError::Ranges { got: 0 }));
        r.max_ranges = ReceiverConfig::MAX_RANGES;
        r.validate().unwrap();
    }

    #[test]
    fn the_recommended_table_is_sorted_and_interpolated() {
        let rows = RECOMMENDED_LIVENESS;
        assert!(rows
            .windows(2)
            .all(|w| w[0].heartbeat_interval < w[1].heartbeat_interval));
        for row in rows {
            let (threshold, std) = recommended_liveness(row.heartbeat_interval);
            assert_eq!((threshold, std), (row.phi_threshold, row.min_std_deviation));
            LivenessConfig::for_heartbeat_interval(row.heartbeat_interval)
                .validate()
                .unwrap();
        }
        // Between two rows: in between, both ways.
        let (a, b) = (rows[3], rows[4]);
        let mid = (a.heartbeat_interval + b.heartbeat_interval) / 2;
        let (_, std) = recommended_liveness(mid);
        let (lo, hi) = if a.min_std_deviation <= b.min_std_deviation {
            (a.min_std_deviation, b.min_std_deviation)
        } else {
            (b.min_std_deviation, a.min_std_deviation)
        };
        assert!(lo <= std && std <= hi, "{std:?}");
        // Beyond the table: the minimum standard deviation scales with the interval.
        let last = rows[rows.len() - 1];
        let (_, std) = recommended_liveness(last.heartbeat_interval * 3);
        assert_eq!(std, last.min_std_deviation * 3);
        assert_eq!(
            recommended_liveness(Duration::from_micros(10)).1,
            rows[0].min_std_deviation
        );
    }

    #[test]
    fn tuning_overrides_only_what_was_given() {
        let h = Duration::from_millis(10);
        assert_eq!(
            LivenessTuning::default().resolve(h),
            LivenessConfig::for_heartbeat_interval(h)
        );
        let tuning = LivenessTuning {
            phi_threshold: Some(3.0),
            min_std_deviation: Some(Duration::from_millis(7)),
            ..LivenessTuning::default()
        };
        let c = tuning.resolve(h);
        assert_eq!(
            (c.phi_threshold, c.min_std_deviation),
            (3.0, Duration::from_millis(7))
        );
        assert_eq!(c.grace_period, h * 5);
        // A client heartbeats at the shorter of its own interval and the server's.
        let own = LivenessTuning {
            heartbeat_interval: Some(Duration::from_millis(50)),
            ..LivenessTuning::default()
        };
        assert_eq!(
            own.client_interval(Duration::from_millis(100)),
            Duration::from_millis(50)
        );
        assert_eq!(
            own.client_interval(Duration::from_millis(20)),
            Duration::from_millis(20)
        );
        assert_eq!(
            LivenessTuning::default().client_interval(Duration::from_millis(20)),
            Duration::from_millis(20)
        );
    }
}
