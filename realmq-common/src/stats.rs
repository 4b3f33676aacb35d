//! Statistics helpers both binaries share: latency histograms and their summaries.
//!
//! Pure code: no I/O and no clocks. Latencies are recorded in microseconds into an
//! [`hdrhistogram::Histogram`] with fixed bounds ([`LATENCY_LOW_US`]..=[`LATENCY_HIGH_US`],
//! [`LATENCY_SIGFIG`] significant figures), so histograms from different threads or
//! processes can always be merged with [`Histogram::add`].
//!
//! ```
//! use realmq_common::stats::{latency_histogram, record_latency_us, LatencySummary};
//!
//! let mut h = latency_histogram();
//! for us in [100, 200, 300] {
//!     record_latency_us(&mut h, us);
//! }
//! let s = LatencySummary::from_histogram(&h);
//! assert_eq!(s.min, 100);
//! assert_eq!(s.count, 3);
//! ```

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Smallest latency the histograms resolve, in µs (smaller values, including 0, are still
/// counted, in the lowest bucket).
pub const LATENCY_LOW_US: u64 = 1;
/// Largest latency the histograms hold, in µs (60 s); larger values are clamped to it.
pub const LATENCY_HIGH_US: u64 = 60_000_000;
/// Significant decimal figures kept: values are exact to within 0.1 %.
pub const LATENCY_SIGFIG: u8 = 3;

/// A new, empty latency histogram in µs with the fixed bounds of this module.
pub fn latency_histogram() -> Histogram<u64> {
    // The bounds are constants that satisfy every precondition of `new_with_bounds`
    // (low >= 1, high >= 2 * low, sigfig <= 5), so this cannot fail.
    Histogram::new_with_bounds(LATENCY_LOW_US, LATENCY_HIGH_US, LATENCY_SIGFIG)
        .expect("constant histogram bounds are valid")
}

/// Records one latency in µs, clamping values above [`LATENCY_HIGH_US`] to it.
pub fn record_latency_us(histogram: &mut Histogram<u64>, us: u64) {
    histogram.saturating_record(us.min(LATENCY_HIGH_US));
}

/// Records `n` latencies of `us` microseconds at once, clamped like [`record_latency_us`].
pub fn record_latency_us_n(histogram: &mut Histogram<u64>, us: u64, n: u64) {
    histogram.saturating_record_n(us.min(LATENCY_HIGH_US), n);
}

/// Adds every value of `from` into `into`, clamping values above [`LATENCY_HIGH_US`].
///
/// Unlike [`Histogram::add`] this cannot fail, whatever bounds `from` was created with
/// (for example a histogram the session layer sized itself).
pub fn merge_latency(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    for v in from.iter_recorded() {
        into.saturating_record_n(
            v.value_iterated_to().min(LATENCY_HIGH_US),
            v.count_at_value(),
        );
    }
}

/// One-way latency in µs of a message stamped `sent_unix_us` and received at `now_unix_us`
/// (both µs since the Unix epoch, read from the same clock). A negative difference (the
/// stamp and the reading raced) counts as 0.
pub fn one_way_latency_us(now_unix_us: u64, sent_unix_us: u64) -> u64 {
    now_unix_us.saturating_sub(sent_unix_us)
}

/// A latency distribution in a few numbers, all in µs (the unit of the histogram).
///
/// Percentiles are the histogram's values at those quantiles: exact to
/// [`LATENCY_SIGFIG`] significant figures. An empty histogram gives all zeros.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Number of recorded values.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest value.
    pub max: u64,
    /// Smallest value.
    pub min: u64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Population standard deviation.
    pub stddev: f64,
}

impl LatencySummary {
    /// Summarises `histogram` (µs), whatever its counter width.
    pub fn from_histogram<C: hdrhistogram::Counter>(histogram: &Histogram<C>) -> Self {
        if histogram.is_empty() {
            return Self {
                count: 0,
                p50: 0,
                p90: 0,
                p95: 0,
                p99: 0,
                p999: 0,
                max: 0,
                min: 0,
                mean: 0.0,
                stddev: 0.0,
            };
        }
        Self {
            count: histogram.len(),
            p50: histogram.value_at_quantile(0.50),
            p90: histogram.value_at_quantile(0.90),
            p95: histogram.value_at_quantile(0.95),
            p99: histogram.value_at_quantile(0.99),
            p999: histogram.value_at_quantile(0.999),
            max: histogram.max(),
            min: histogram.min(),
            mean: histogram.mean(),
            stddev: histogram.stdev(),
        }
    }
}

/// What a run cost in processor time, as iperf3 reports its CPU use: user and system seconds,
/// and their sum per message. It tells which end works how hard, and how the work splits
/// between the program and the kernel's socket calls. (A client sending at full speed never
/// sleeps, so its time a message is about the inverse of its rate.)
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CpuSummary {
    /// Seconds running the process's own code.
    pub user_s: f64,
    /// Seconds in the kernel on its behalf (the sockets' system calls).
    pub system_s: f64,
    /// `(user + system) / messages` in nanoseconds; `null` without messages.
    pub ns_per_message: Option<f64>,
}

impl CpuSummary {
    /// `user` and `system` spent on `messages` messages.
    pub fn new(user: Duration, system: Duration, messages: u64) -> Self {
        let total = user + system;
        Self {
            user_s: user.as_secs_f64(),
            system_s: system.as_secs_f64(),
            ns_per_message: (messages > 0).then(|| total.as_nanos() as f64 / messages as f64),
        }
    }

    /// A line for a text summary: `CPU: user 0.230 s, system 0.300 s, 26.5 ns a message`.
    pub fn to_text(&self) -> String {
        let per = self
            .ns_per_message
            .map_or_else(String::new, |ns| format!(", {ns:.1} ns a message"));
        format!(
            "CPU: user {:.3} s, system {:.3} s{per}",
            self.user_s, self.system_s
        )
    }
}

/// `count / elapsed` in events per second; 0 when nothing elapsed.
pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        count as f64 / secs
    } else {
        0.0
    }
}

/// `bytes / elapsed` in MB/s (10^6 bytes per second); 0 when nothing elapsed.
pub fn megabytes_per_second(bytes: u64, elapsed: Duration) -> f64 {
    per_second(bytes, elapsed) / 1e6
}

#[cfg(test)]
mod cpu_tests {
    use super::*;

    #[test]
    fn cpu_per_message_is_both_times_over_the_messages() {
        let ms = Duration::from_millis;
        let c = CpuSummary::new(ms(230), ms(300), 20_000_000);
        assert_eq!((c.user_s, c.system_s), (0.23, 0.3));
        assert!((c.ns_per_message.unwrap() - 26.5).abs() < 1e-9);
        assert_eq!(
            c.to_text(),
            "CPU: user 0.230 s, system 0.300 s, 26.5 ns a message"
        );
        let none = CpuSummary::new(ms(5), ms(1), 0);
        assert_eq!(none.ns_per_message, None);
        assert_eq!(none.to_text(), "CPU: user 0.005 s, system 0.001 s");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_histogram_summarises_to_zeros() {
        let s = LatencySummary::from_histogram(&latency_histogram());
        assert_eq!(s.count, 0);
        assert_eq!((s.p50, s.p999, s.max, s.min), (0, 0, 0, 0));
        assert_eq!(s.mean, 0.0);
    }

    #[test]
    fn percentiles_of_a_uniform_ramp() {
        let mut h = latency_histogram();
        for us in 1..=1000 {
            record_latency_us(&mut h, us);
        }
        let s = LatencySummary::from_histogram(&h);
        assert_eq!(s.count, 1000);
        assert_eq!(s.min, 1);
        assert_eq!(s.max, 1000);
        assert_eq!(s.p50, 500);
        assert_eq!(s.p90, 900);
        assert_eq!(s.p95, 950);
        assert_eq!(s.p99, 990);
        assert_eq!(s.p999, 999);
        assert!((s.mean - 500.5).abs() < 0.5, "mean {}", s.mean);
        // Population stddev of 1..=1000 is about 288.7.
        assert!((s.stddev - 288.7).abs() < 1.0, "stddev {}", s.stddev);
    }

    #[test]
    fn out_of_range_values_are_clamped_not_lost() {
        let mut h = latency_histogram();
        record_latency_us(&mut h, 0);
        record_latency_us(&mut h, u64::MAX);
        assert_eq!(h.len(), 2);
        assert!(h.max() >= LATENCY_HIGH_US);
        assert_eq!(h.min(), 0);
    }

    #[test]
    fn histograms_from_threads_merge() {
        let mut a = latency_histogram();
        let mut b = latency_histogram();
        record_latency_us(&mut a, 10);
        record_latency_us(&mut b, 30_000_000);
        a.add(&b).unwrap();
        let s = LatencySummary::from_histogram(&a);
        assert_eq!(s.count, 2);
        assert_eq!(s.min, 10);
        assert!(s.max.abs_diff(30_000_000) <= 30_000_000 / 1000);
    }

    #[test]
    fn merging_clamps_values_from_wider_histograms() {
        let mut wide = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        wide.record_n(50, 3).unwrap();
        wide.record(1_000_000_000).unwrap();
        let mut into = latency_histogram();
        merge_latency(&mut into, &wide);
        assert_eq!(into.len(), 4);
        assert_eq!(into.value_at_quantile(0.5), 50);
        assert!(into.max() >= LATENCY_HIGH_US && into.max() < 2 * LATENCY_HIGH_US);
    }

    #[test]
    fn one_way_latency_never_underflows() {
        assert_eq!(one_way_latency_us(1_000, 400), 600);
        assert_eq!(one_way_latency_us(400, 1_000), 0);
    }

    #[test]
    fn rates() {
        assert_eq!(per_second(10, Duration::ZERO), 0.0);
        assert_eq!(per_second(10, Duration::from_millis(500)), 20.0);
        assert_eq!(megabytes_per_second(2_000_000, Duration::from_secs(2)), 1.0);
    }
}
