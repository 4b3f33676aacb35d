//! The φ accrual failure detector.
//!
//! Hayashibara, Défago, Yared and Katayama, "The φ Accrual Failure Detector", SRDS 2004. Instead
//! of a yes/no verdict the detector outputs a suspicion level
//!
//! ```text
//! φ(t) = -log10(1 - F(t - t_last))
//! ```
//!
//! where `F` is the CDF of the inter-arrival times of the peer's heartbeats, modelled as a normal
//! distribution whose mean and standard deviation come from a sliding window of recent intervals.
//! φ = 1 means a 10 % chance that suspecting the peer now is a mistake, φ = 2 a 1 % chance, and so
//! on. The caller compares φ with a threshold. This follows the shape Akka
//! (`PhiAccrualFailureDetector`) and Cassandra give it: a minimum standard deviation, an
//! acceptable heartbeat pause added to the mean, and a window seeded from a first-heartbeat
//! estimate.
//!
//! Sans-IO: the detector never reads a clock. Arrival times come in as arguments of
//! [`PhiAccrualDetector::heartbeat`] and the time of the question as the argument of
//! [`PhiAccrualDetector::phi`].

use std::time::{Duration, Instant};

/// Largest value [`phi_for`] and [`PhiAccrualDetector::phi`] return.
///
/// With the logistic approximation φ grows like the cube of the number of standard deviations
/// past the mean; 10⁶ is reached about 320 standard deviations past it. Capping keeps φ finite
/// (no `inf` for a peer that has been silent for days) while staying far above any useful
/// threshold (Akka and Cassandra use 8–16).
pub const PHI_MAX: f64 = 1e6;

/// Largest accepted [`PhiConfig::max_sample_size`].
///
/// Together with the 2⁴⁰ µs cap on one recorded interval it keeps the window's exact integer
/// sums (of the samples and of their squares) inside `u128`.
pub const MAX_SAMPLE_SIZE: usize = 1 << 16;

/// One recorded interval is capped at 2⁴⁰ µs (about 12.7 days).
const MAX_INTERVAL_MICROS: u64 = 1 << 40;

/// Smallest standard deviation [`phi_for`] works with, in milliseconds (1 µs, the resolution of
/// the window). A smaller `std_ms`, including zero or a negative one, is raised to it.
const STD_FLOOR_MS: f64 = 1e-3;

/// Inputs of [`phi_for`] above this many milliseconds (about 31 700 years) are clamped to it, so
/// every intermediate value stays finite.
const MS_LIMIT: f64 = 1e15;

/// Tuning of a [`PhiAccrualDetector`]. `Default` gives Akka's defaults except for the
/// acceptable pause, which is zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhiConfig {
    /// φ at or above which the peer is considered unavailable. Default 8.0.
    pub threshold: f64,
    /// Number of inter-arrival intervals kept in the sliding window. Default 200.
    pub max_sample_size: usize,
    /// Lower bound on the standard deviation used in φ, so that a perfectly regular sender does
    /// not make the detector hair-triggered. Default 100 ms.
    pub min_std_deviation: Duration,
    /// Extra silence tolerated on top of the mean interval (added to the mean), e.g. for GC
    /// pauses or a burst of loss. Default 0.
    pub acceptable_heartbeat_pause: Duration,
    /// Expected interval before any has been measured: the window is seeded with it on the
    /// first heartbeat. Default 1 s.
    pub first_heartbeat_estimate: Duration,
    /// Sampling: an arrival less than this after the last *sampled* one proves the peer alive
    /// (φ restarts from it) but adds no interval to the window. Zero (the default) samples
    /// every arrival; RealMQ uses half the heartbeat interval, so that a burst of traffic
    /// cannot fill the window with microsecond intervals (see `docs/THRESHOLD.md`).
    pub min_sample_gap: Duration,
}

impl Default for PhiConfig {
    fn default() -> Self {
        Self {
            threshold: 8.0,
            max_sample_size: 200,
            min_std_deviation: Duration::from_millis(100),
            acceptable_heartbeat_pause: Duration::ZERO,
            first_heartbeat_estimate: Duration::from_secs(1),
            min_sample_gap: Duration::ZERO,
        }
    }
}

/// Why a [`PhiConfig`] was rejected by [`PhiConfig::validate`].
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum PhiConfigError {
    /// The threshold is not a finite number in `(0, PHI_MAX]`.
    #[error("phi threshold must be in (0, {PHI_MAX}], got {0}")]
    Threshold(f64),
    /// The window size is zero or larger than [`MAX_SAMPLE_SIZE`].
    #[error("max_sample_size must be in 1..={MAX_SAMPLE_SIZE}, got {0}")]
    SampleSize(usize),
    /// The minimum standard deviation is zero.
    #[error("min_std_deviation must be greater than zero")]
    ZeroMinStdDeviation,
    /// The first-heartbeat estimate is zero.
    #[error("first_heartbeat_estimate must be greater than zero")]
    ZeroFirstHeartbeatEstimate,
}

impl PhiConfig {
    /// Checks the ranges: threshold finite in `(0, PHI_MAX]`, `max_sample_size` in
    /// `1..=MAX_SAMPLE_SIZE`, non-zero minimum standard deviation and first-heartbeat estimate.
    /// Any pause is acceptable.
    pub fn validate(&self) -> Result<(), PhiConfigError> {
        if !(self.threshold > 0.0 && self.threshold <= PHI_MAX) {
            return Err(PhiConfigError::Threshold(self.threshold));
        }
        if !(1..=MAX_SAMPLE_SIZE).contains(&self.max_sample_size) {
            return Err(PhiConfigError::SampleSize(self.max_sample_size));
        }
        if self.min_std_deviation.is_zero() {
            return Err(PhiConfigError::ZeroMinStdDeviation);
        }
        if self.first_heartbeat_estimate.is_zero() {
            return Err(PhiConfigError::ZeroFirstHeartbeatEstimate);
        }
        Ok(())
    }
}

/// φ for a silence of `elapsed_ms` when intervals are normal with mean `mean_ms` and standard
/// deviation `std_ms` (all in milliseconds).
///
/// Uses the logistic approximation of the normal CDF that Akka's detector uses, from Bowling,
/// Khasawneh, Kaewkuekool and Cho, "A logistic approximation to the cumulative normal
/// distribution", JIEM 2(1), 2009: with `y = (elapsed - mean) / std`,
/// `F(y) ≈ 1 / (1 + e^(-z))` where `z = y·(1.5976 + 0.070566·y²)`. Hence
/// `φ = -log10(1 - F) = log10(1 + e^z)`, which is what Akka's two branches
/// (`-log10(e/(1+e))` above the mean, `-log10(1 - 1/(1+e))` below it, with `e = e^(-z)`) compute.
/// Here it is evaluated as a stable softplus, `ln(1 + e^z) = max(z, 0) + ln(1 + e^(-|z|))`, so
/// neither `e^z` nor `e^(-z)` can overflow to `inf` or leave `0/0`.
///
/// Guarantees, for any inputs:
/// - never NaN, always in `[0, PHI_MAX]`;
/// - non-decreasing in `elapsed_ms` (for fixed mean and std);
/// - a NaN argument gives `PHI_MAX`: garbage in is treated as maximal suspicion, not as health;
/// - negative times are treated as 0, times above 10¹⁵ ms as 10¹⁵ ms, and a standard deviation
///   below 1 µs (including zero) as 1 µs.
pub fn phi_for(elapsed_ms: f64, mean_ms: f64, std_ms: f64) -> f64 {
    if elapsed_ms.is_nan() || mean_ms.is_nan() || std_ms.is_nan() {
        return PHI_MAX;
    }
    let elapsed = elapsed_ms.clamp(0.0, MS_LIMIT);
    let mean = mean_ms.clamp(0.0, MS_LIMIT);
    let std = std_ms.clamp(STD_FLOOR_MS, MS_LIMIT);
    // |y| ≤ 1e18 and |z| ≤ ~1e53: all finite.
    let y = (elapsed - mean) / std;
    let z = y * (1.5976 + 0.070566 * y * y);
    let softplus = z.max(0.0) + (-z.abs()).exp().ln_1p();
    (softplus / std::f64::consts::LN_10).clamp(0.0, PHI_MAX)
}

/// The silence, in milliseconds, at which [`phi_for`] reaches `threshold`: the inverse of
/// `phi_for` in `elapsed_ms`, so `phi_for(silence_for_phi(t, m, s), m, s) ≈ t`.
///
/// From `φ = log10(1 + e^z)`: `z = ln(10^φ - 1)`, computed as `φ·ln 10 + ln(1 - 10^-φ)` so
/// that large thresholds do not overflow; then the one real root of the cubic
/// `0.070566·y³ + 1.5976·y = z` (Cardano, since both coefficients are positive), polished by
/// two Newton steps; and `elapsed = mean + y·std`. Inputs are clamped as in `phi_for`; the
/// result is at least 0 (a threshold below φ(0) is reached at once) and NaN-free: a NaN or
/// non-positive threshold gives 0.
pub fn silence_for_phi(threshold: f64, mean_ms: f64, std_ms: f64) -> f64 {
    if threshold.is_nan() || threshold <= 0.0 || mean_ms.is_nan() || std_ms.is_nan() {
        return 0.0;
    }
    let threshold = threshold.min(PHI_MAX);
    let mean = mean_ms.clamp(0.0, MS_LIMIT);
    let std = std_ms.clamp(STD_FLOOR_MS, MS_LIMIT);
    let ln10 = std::f64::consts::LN_10;
    let z = threshold * ln10 + (-(-threshold * ln10).exp()).ln_1p();
    let (a, b) = (0.070566, 1.5976);
    // y³ + p·y + q = 0 with p = b/a > 0, q = -z/a.
    let (p, q) = (b / a, -z / a);
    let root = (q * q / 4.0 + p * p * p / 27.0).sqrt();
    let mut y = (-q / 2.0 + root).cbrt() + (-q / 2.0 - root).cbrt();
    for _ in 0..2 {
        y -= (a * y * y * y + b * y - z) / (3.0 * a * y * y + b);
    }
    (mean + y * std).clamp(0.0, MS_LIMIT)
}

/// Sliding window of inter-arrival intervals with running sums, so a heartbeat costs O(1).
///
/// Intervals are stored as integer microseconds and the sums as `u128`. Integer sums are exact:
/// adding a sample and later subtracting the same sample leaves no residue, so the statistics do
/// not drift however long the detector runs (running `f64` sums would, and `E[x²] - E[x]²` on
/// drifted sums can even go negative). Bounds: a sample is at most 2⁴⁰ µs and the window at
/// most 2¹⁶ samples, so `sum ≤ 2⁵⁶`, `sum_sq ≤ 2⁹⁶` and `n·sum_sq ≤ 2¹¹²`: no overflow.
#[derive(Debug, Clone)]
struct IntervalWindow {
    /// Ring storage, allocated once with the window's capacity.
    samples: Box<[u64]>,
    /// Index of the oldest sample.
    head: usize,
    /// Number of live samples.
    len: usize,
    /// Sum of the live samples (µs).
    sum: u128,
    /// Sum of the squares of the live samples (µs²).
    sum_sq: u128,
}

impl IntervalWindow {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            samples: vec![0; capacity.clamp(1, MAX_SAMPLE_SIZE)].into_boxed_slice(),
            head: 0,
            len: 0,
            sum: 0,
            sum_sq: 0,
        }
    }

    fn push(&mut self, micros: u64) {
        let micros = micros.min(MAX_INTERVAL_MICROS);
        let capacity = self.samples.len();
        if self.len == capacity {
            let oldest = u128::from(self.samples[self.head]);
            self.sum -= oldest;
            self.sum_sq -= oldest * oldest;
            self.samples[self.head] = micros;
            self.head = (self.head + 1) % capacity;
        } else {
            self.samples[(self.head + self.len) % capacity] = micros;
            self.len += 1;
        }
        let micros = u128::from(micros);
        self.sum += micros;
        self.sum_sq += micros * micros;
    }

    fn mean_micros(&self) -> f64 {
        if self.len == 0 {
            return 0.0;
        }
        self.sum as f64 / self.len as f64
    }

    /// Population standard deviation, as Akka computes it.
    fn std_micros(&self) -> f64 {
        if self.len == 0 {
            return 0.0;
        }
        let n = self.len as u128;
        // n·Σx² - (Σx)² is exact and ≥ 0 (Cauchy–Schwarz); one rounding when converting.
        let scaled_variance = n * self.sum_sq - self.sum * self.sum;
        (scaled_variance as f64).sqrt() / self.len as f64
    }
}

/// A φ accrual failure detector for one peer.
///
/// Contract (sans-IO): feed every heartbeat arrival with [`heartbeat(now)`](Self::heartbeat);
/// ask [`phi(now)`](Self::phi) or [`is_available(now)`](Self::is_available) whenever a decision
/// is due. The detector has no timers of its own and never reads a clock. All calls are O(1).
///
/// Statistics: the last [`PhiConfig::max_sample_size`] inter-arrival intervals, seeded on the
/// first heartbeat with two synthetic samples `estimate ± estimate/4` (as Akka does), so φ is
/// meaningful from the first heartbeat on: mean `first_heartbeat_estimate`, standard deviation
/// a quarter of it. The seeds leave the window like any sample once enough real intervals came.
///
/// Every interval is recorded, including the long one that ends an outage (Akka skips intervals
/// that end while the peer is suspected; that would freeze the window forever if a peer lowers
/// its heartbeat rate for good).
#[derive(Debug, Clone)]
pub struct PhiAccrualDetector {
    config: PhiConfig,
    window: IntervalWindow,
    /// The last sampled arrival: where the next interval starts.
    last_sample: Option<Instant>,
    /// The latest arrival, sampled or not: where the silence starts.
    last_heartbeat: Option<Instant>,
}

impl Default for PhiAccrualDetector {
    fn default() -> Self {
        Self::new(PhiConfig::default())
    }
}

impl PhiAccrualDetector {
    /// A detector with no heartbeat yet. The window is allocated here, once.
    ///
    /// Does not validate `config` (see [`try_new`](Self::try_new)) but never panics on a bad one:
    /// a window size outside `1..=MAX_SAMPLE_SIZE` is clamped into it, a zero minimum standard
    /// deviation acts as 1 µs, and a threshold that is NaN makes
    /// [`is_available`](Self::is_available) always false.
    pub fn new(config: PhiConfig) -> Self {
        Self {
            window: IntervalWindow::with_capacity(config.max_sample_size),
            config,
            last_sample: None,
            last_heartbeat: None,
        }
    }

    /// Like [`new`](Self::new), after [`PhiConfig::validate`].
    pub fn try_new(config: PhiConfig) -> Result<Self, PhiConfigError> {
        config.validate()?;
        Ok(Self::new(config))
    }

    /// The configuration this detector was built with.
    pub fn config(&self) -> &PhiConfig {
        &self.config
    }

    /// Records a heartbeat that arrived at `now`.
    ///
    /// The first heartbeat seeds the window (see the type's docs); later ones add the interval
    /// since the previous *sampled* heartbeat, capped at about 12.7 days, unless it is shorter
    /// than [`PhiConfig::min_sample_gap`] (then the arrival only restarts the silence). A
    /// `now` equal to the previous arrival records a zero interval (with a zero gap); a `now`
    /// earlier than it is ignored entirely (it is not recorded and does not move
    /// [`last_heartbeat`](Self::last_heartbeat)).
    pub fn heartbeat(&mut self, now: Instant) {
        self.heartbeat_after_pause(now, Duration::ZERO);
    }

    /// Like [`heartbeat`](Self::heartbeat), for an arrival that ends a silence of which the
    /// observer itself was paused for `paused`: that time is not part of the interval sampled
    /// (a stall of the whole host must not teach the window that the peer is slow).
    pub fn heartbeat_after_pause(&mut self, now: Instant, paused: Duration) {
        match (self.last_sample, self.last_heartbeat) {
            (None, _) | (_, None) => {
                let mean =
                    duration_micros(self.config.first_heartbeat_estimate).min(MAX_INTERVAL_MICROS);
                let std = mean / 4;
                self.window.push(mean - std);
                self.window.push(mean + std);
                self.last_sample = Some(now);
            }
            (Some(_), Some(last)) if now < last => {
                log::debug!(
                    "phi: ignoring heartbeat {:?} before the last one",
                    last - now
                );
                return;
            }
            (Some(sample), Some(_)) => {
                let interval = (now - sample).saturating_sub(paused);
                if interval >= self.config.min_sample_gap {
                    self.window.push(duration_micros(interval));
                    self.last_sample = Some(now);
                }
            }
        }
        self.last_heartbeat = Some(now);
    }

    /// The suspicion level at `now`: 0.0 before any heartbeat, otherwise
    /// [`phi_for`]`(now - last, mean + acceptable_pause, max(std, min_std))` in milliseconds.
    ///
    /// Never NaN, in `[0, PHI_MAX]`, non-decreasing in `now` between heartbeats. A `now` before
    /// the last heartbeat counts as no silence at all.
    pub fn phi(&self, now: Instant) -> f64 {
        let Some(last) = self.last_heartbeat else {
            return 0.0;
        };
        let elapsed_ms = now.saturating_duration_since(last).as_secs_f64() * 1e3;
        phi_for(elapsed_ms, self.mean_ms(), self.std_ms())
    }

    /// The silence after the last heartbeat at which φ reaches `threshold` if nothing else
    /// arrives ([`silence_for_phi`] with this detector's statistics); `None` before the first
    /// heartbeat. Rounded up to the microsecond.
    pub fn silence_until(&self, threshold: f64) -> Option<Duration> {
        self.last_heartbeat?;
        let ms = silence_for_phi(threshold, self.mean_ms(), self.std_ms());
        Some(Duration::from_micros((ms * 1e3).ceil() as u64))
    }

    /// When φ reaches the configured threshold if nothing else arrives: the last heartbeat
    /// plus [`silence_until`](Self::silence_until)`(threshold)`. `None` before the first
    /// heartbeat.
    pub fn suspicion_time(&self) -> Option<Instant> {
        let last = self.last_heartbeat?;
        let silence = self.silence_until(self.config.threshold)?;
        Some(last.checked_add(silence).unwrap_or(last))
    }

    /// Mean interval plus the acceptable pause, in milliseconds.
    fn mean_ms(&self) -> f64 {
        self.window.mean_micros() / 1e3 + self.config.acceptable_heartbeat_pause.as_secs_f64() * 1e3
    }

    /// Standard deviation with the configured floor, in milliseconds.
    fn std_ms(&self) -> f64 {
        (self.window.std_micros() / 1e3).max(self.config.min_std_deviation.as_secs_f64() * 1e3)
    }

    /// Whether the peer is considered up at `now`: `phi(now) < threshold`. True before the
    /// first heartbeat (φ is 0 then).
    pub fn is_available(&self, now: Instant) -> bool {
        self.phi(now) < self.config.threshold
    }

    /// Arrival time of the latest heartbeat, sampled or not, if any: the silence that φ
    /// judges starts there.
    pub fn last_heartbeat(&self) -> Option<Instant> {
        self.last_heartbeat
    }

    /// Mean of the intervals in the window (truncated to the microsecond), without the
    /// acceptable pause. Zero before the first heartbeat.
    pub fn mean(&self) -> Duration {
        Duration::from_micros(self.window.mean_micros() as u64)
    }

    /// Population standard deviation of the intervals in the window, before the
    /// [`PhiConfig::min_std_deviation`] floor is applied. Zero before the first heartbeat.
    pub fn std_deviation(&self) -> Duration {
        // Finite and ≥ 0; `as` saturates.
        Duration::from_nanos((self.window.std_micros() * 1e3).round() as u64)
    }

    /// Number of intervals in the window, counting the two seeds while they are still in it:
    /// 0 before the first heartbeat, then 2, growing by one per heartbeat up to
    /// `max_sample_size`.
    pub fn sample_count(&self) -> usize {
        self.window.len
    }
}

/// A duration as whole microseconds, saturating at `u64::MAX`.
fn duration_micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

pub mod replay;

#[cfg(test)]
mod tests;
