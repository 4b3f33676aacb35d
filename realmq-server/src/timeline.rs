//! One-way latency over the time of a run, in a fixed amount of memory.
//!
//! A [`Timeline`] splits the time since the first delivered message into a fixed number of
//! equally wide buckets (256 by default, 10 ms wide at first). When a message arrives past
//! the last bucket, adjacent buckets are merged pairwise — buckets 0 and 1 become bucket 0,
//! 2 and 3 become 1, … — and the width doubles, until the message fits. Memory is therefore
//! set by the bucket count alone, never by the length of the run, and every bucket always
//! covers `[i × width, (i + 1) × width)` since the first message.
//!
//! Each bucket keeps its exact message count, minimum and maximum, and counters of
//! log-spaced latency classes (eight per octave, 191 in all for 0 µs–60 s: a
//! [`LatencyClasses`]), from which the median and the 99th percentile are estimated to
//! within ±6.25 % (see [`LatencyClasses::quantile`]). A bucket is 1,552 bytes, the default
//! timeline 388 KiB, allocated once when the timeline is created. After the first merge,
//! between half and all of the buckets hold the run: 128 to 256 points across a plot.
//!
//! [`Timeline::record`] is on the per-message path: O(1) amortised (a merge is O(buckets)
//! and happens at most once per doubling of the run length), and it never allocates.
//! Time is an argument: the timeline reads no clock.

use std::time::{Duration, Instant};

use realmq_common::stats::LATENCY_HIGH_US;

/// Sub-classes per octave, as a power of two: 2³ = 8 classes per doubling of latency.
const SUB_BITS: u32 = 3;
/// Sub-classes per octave.
const SUB: u64 = 1 << SUB_BITS;
/// Number of latency classes: enough for every value up to [`LATENCY_HIGH_US`].
pub(crate) const CLASSES: usize = class_of(LATENCY_HIGH_US) + 1;
/// Largest relative error of a class's representative value (see [`LatencyClasses`]).
pub(crate) const CLASS_ERROR: f64 = 1.0 / (2 * SUB) as f64;

/// The class of a latency in µs (values above [`LATENCY_HIGH_US`] count as that).
///
/// Values below 8 µs have a class each; above, the octave `[2^e, 2^(e+1))` is split into 8
/// classes of equal width `2^(e-3)`, the layout of an HdrHistogram with 3 sub-bucket bits
/// (Gil Tene, HdrHistogram, "bucket and sub-bucket" indexing). Two instructions: a
/// leading-zero count and a shift.
const fn class_of(us: u64) -> usize {
    let v = if us < LATENCY_HIGH_US {
        us
    } else {
        LATENCY_HIGH_US
    };
    if v < SUB {
        return v as usize;
    }
    let shift = 63 - v.leading_zeros() - SUB_BITS;
    let sub = (v >> shift) - SUB;
    (SUB + shift as u64 * SUB + sub) as usize
}

/// The latencies of class `c`: `low..high` µs (`high` exclusive).
fn class_range(c: usize) -> (u64, u64) {
    let c = c as u64;
    if c < SUB {
        return (c, c + 1);
    }
    let shift = (c - SUB) / SUB;
    let sub = (c - SUB) % SUB;
    ((SUB + sub) << shift, (SUB + sub + 1) << shift)
}

/// Counts of latencies per log-spaced class: a histogram small enough to keep one per time
/// bucket.
///
/// A class spans at most an eighth of its lower bound, so its midpoint is within
/// [`CLASS_ERROR`] (6.25 %) of any latency in it; below 8 µs classes are exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LatencyClasses {
    counts: [u64; CLASSES],
    total: u64,
    min: u64,
    max: u64,
}

impl Default for LatencyClasses {
    fn default() -> Self {
        Self {
            counts: [0; CLASSES],
            total: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

impl LatencyClasses {
    /// Counts one latency (µs).
    fn record(&mut self, us: u64, n: u64) {
        self.counts[class_of(us)] += n;
        self.total += n;
        self.min = self.min.min(us);
        self.max = self.max.max(us);
    }

    /// Adds `other`'s counts to these.
    fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Messages counted.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// The largest latency counted (exact), 0 when empty.
    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    /// An estimate of the latency (µs) at quantile `q` (0 ≤ q ≤ 1), `None` when empty.
    ///
    /// Nearest rank: the class holding the `⌈q × total⌉`-th smallest latency, reported as
    /// its midpoint clamped to the exact minimum and maximum — within [`CLASS_ERROR`] of the
    /// true order statistic. The first and last ranks are the exact minimum and maximum.
    pub(crate) fn quantile(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).clamp(1, self.total);
        if rank == 1 {
            return Some(self.min as f64);
        }
        if rank == self.total {
            return Some(self.max as f64);
        }
        let mut below = 0;
        for (c, &n) in self.counts.iter().enumerate() {
            below += n;
            if below >= rank {
                let (low, high) = class_range(c);
                let mid = (low + high - 1) as f64 / 2.0;
                return Some(mid.clamp(self.min as f64, self.max as f64));
            }
        }
        Some(self.max as f64)
    }
}

/// One time bucket of a [`Timeline`], summarised for a plot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BucketSummary {
    /// Start of the bucket, since the first message.
    pub(crate) start: Duration,
    /// Messages delivered in the bucket.
    pub(crate) count: u64,
    /// Estimated median latency, µs.
    pub(crate) p50: f64,
    /// Estimated 99th percentile latency, µs.
    pub(crate) p99: f64,
    /// Exact maximum latency, µs.
    pub(crate) max: u64,
}

/// Latency per time bucket since the first message, in a fixed number of buckets whose
/// width doubles as the run outgrows them (see the module docs).
///
/// Input: [`Timeline::record`]. Output: [`Timeline::width`], [`Timeline::summaries`].
#[derive(Debug, Clone)]
pub(crate) struct Timeline {
    buckets: Box<[LatencyClasses]>,
    /// Bucket width in ns.
    width_ns: u64,
    /// The first message's arrival.
    start: Option<Instant>,
    /// The latest message's arrival, ns after the first.
    last_ns: u64,
    /// The previous message's arrival and its offset in ns: messages read in one batch share
    /// one `now`, and the `Instant` arithmetic is skipped for them.
    previous: Option<(Instant, u64)>,
}

impl Default for Timeline {
    /// 256 buckets, 10 ms wide to start with.
    fn default() -> Self {
        Self::new(256, Duration::from_millis(10))
    }
}

impl Timeline {
    /// A timeline of `buckets` buckets (rounded up to an even number, at least 2) of width
    /// `initial_width` (at least 1 ns). Allocates all its memory now.
    pub(crate) fn new(buckets: usize, initial_width: Duration) -> Self {
        let n = buckets.max(2).next_multiple_of(2);
        Self {
            buckets: vec![LatencyClasses::default(); n].into_boxed_slice(),
            width_ns: (initial_width.as_nanos().min(u64::MAX as u128) as u64).max(1),
            start: None,
            last_ns: 0,
            previous: None,
        }
    }

    /// Records `n` messages delivered at `now` with one-way latency `latency_us`. A message
    /// before the first one (a clock that went back) counts in the first bucket.
    pub(crate) fn record(&mut self, now: Instant, latency_us: u64, n: u64) {
        let since_ns = match self.previous {
            Some((at, ns)) if at == now => ns,
            _ => {
                let start = *self.start.get_or_insert(now);
                let ns = now
                    .saturating_duration_since(start)
                    .as_nanos()
                    .min(u64::MAX as u128) as u64;
                self.previous = Some((now, ns));
                ns
            }
        };
        let mut i = since_ns / self.width_ns;
        while i >= self.buckets.len() as u64 {
            self.halve();
            i = since_ns / self.width_ns;
        }
        self.buckets[i as usize].record(latency_us, n);
        self.last_ns = self.last_ns.max(since_ns);
    }

    /// Merges buckets pairwise (2i and 2i + 1 into i) and doubles the width.
    fn halve(&mut self) {
        let half = self.buckets.len() / 2;
        for i in 0..half {
            let (low, high) = self.buckets.split_at_mut(2 * i + 1);
            let mut merged = std::mem::take(&mut low[2 * i]);
            merged.merge(&high[0]);
            high[0] = LatencyClasses::default();
            self.buckets[i] = merged;
        }
        for b in &mut self.buckets[half..] {
            *b = LatencyClasses::default();
        }
        self.width_ns = self.width_ns.saturating_mul(2);
    }

    /// One past the last bucket that holds a message.
    fn used(&self) -> usize {
        match self.start {
            Some(_) => (self.last_ns / self.width_ns) as usize + 1,
            None => 0,
        }
    }

    /// The width of every bucket now.
    pub(crate) fn width(&self) -> Duration {
        Duration::from_nanos(self.width_ns)
    }

    /// Time covered: from the first message to the end of the last bucket that holds one.
    pub(crate) fn span(&self) -> Duration {
        Duration::from_nanos(self.width_ns.saturating_mul(self.used() as u64))
    }

    /// Time from the first message to the last.
    pub(crate) fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.last_ns)
    }

    /// Messages recorded.
    #[cfg(test)]
    pub(crate) fn total(&self) -> u64 {
        self.buckets[..self.used()]
            .iter()
            .map(LatencyClasses::total)
            .sum()
    }

    /// The buckets that hold messages, oldest first.
    pub(crate) fn summaries(&self) -> impl Iterator<Item = BucketSummary> + '_ {
        self.buckets[..self.used()]
            .iter()
            .enumerate()
            .filter(|(_, b)| b.total() > 0)
            .map(|(i, b)| BucketSummary {
                start: Duration::from_nanos(self.width_ns.saturating_mul(i as u64)),
                count: b.total(),
                p50: b.quantile(0.50).unwrap_or(0.0),
                p99: b.quantile(0.99).unwrap_or(0.0),
                max: b.max(),
            })
    }

    /// The bucket's counters, for tests.
    #[cfg(test)]
    fn bucket(&self, i: usize) -> &LatencyClasses {
        &self.buckets[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_tile_the_latency_range() {
        assert_eq!(CLASSES, 191);
        let mut next = 0;
        for c in 0..CLASSES {
            let (low, high) = class_range(c);
            assert_eq!(
                low,
                next,
                "class {c} starts where {} ends",
                c.wrapping_sub(1)
            );
            assert!(high > low);
            assert_eq!(class_of(low), c);
            assert_eq!(class_of(high - 1), c);
            // The width bound behind CLASS_ERROR.
            assert!(
                low < SUB || (high - low) * SUB <= low,
                "class {c}: {low}..{high}"
            );
            next = high;
        }
        assert!(next > LATENCY_HIGH_US);
        assert_eq!(class_of(u64::MAX), CLASSES - 1);
    }

    #[test]
    fn quantiles_are_within_the_class_error() {
        // Against the exact order statistic of a sorted oracle.
        let mut rng = fastrand::Rng::with_seed(7);
        let mut values: Vec<u64> = (0..5_000).map(|_| rng.u64(1..2_000_000)).collect();
        let mut classes = LatencyClasses::default();
        for &v in &values {
            classes.record(v, 1);
        }
        values.sort_unstable();
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0] {
            let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
            let exact = values[rank - 1] as f64;
            let estimate = classes.quantile(q).unwrap();
            assert!(
                (estimate - exact).abs() <= CLASS_ERROR * exact,
                "q = {q}: {estimate} vs {exact}"
            );
        }
        assert_eq!(classes.quantile(1.0), Some(*values.last().unwrap() as f64));
        assert_eq!(classes.quantile(0.0), Some(values[0] as f64));
        assert_eq!(classes.max(), *values.last().unwrap());
        assert_eq!(classes.total(), 5_000);
        assert_eq!(LatencyClasses::default().quantile(0.5), None);
    }

    #[test]
    fn small_latencies_are_exact() {
        let mut classes = LatencyClasses::default();
        for v in [0, 1, 1, 2, 3, 3, 3] {
            classes.record(v, 1);
        }
        assert_eq!(classes.quantile(0.0), Some(0.0));
        assert_eq!(classes.quantile(0.5), Some(2.0));
        assert_eq!(classes.quantile(1.0), Some(3.0));
    }

    #[test]
    fn merging_keeps_counts_and_time_coverage() {
        // Differential: messages at known times against an oracle that buckets them at
        // the final width.
        let t0 = Instant::now();
        let mut t = Timeline::new(8, Duration::from_millis(10));
        let mut sent = Vec::new();
        let mut rng = fastrand::Rng::with_seed(1);
        let mut at = Duration::ZERO;
        for _ in 0..2_000 {
            let latency = rng.u64(0..100_000);
            t.record(t0 + at, latency, 1);
            sent.push((at, latency));
            at += Duration::from_micros(rng.u64(0..2_000));
        }
        // 2000 × ~1 ms ≈ 2 s in 8 buckets: 10 ms doubled 5 times is 320 ms × 8 = 2.56 s.
        assert_eq!(t.width(), Duration::from_millis(320));
        assert_eq!(t.total(), 2_000);
        let last = sent.last().unwrap().0;
        assert_eq!(t.elapsed(), last);
        assert!(t.span() > last && t.span() - last <= t.width());
        let w = t.width();
        for i in 0..8 {
            let in_bucket: Vec<u64> = sent
                .iter()
                .filter(|(at, _)| (at.as_nanos() / w.as_nanos()) as usize == i)
                .map(|&(_, l)| l)
                .collect();
            let b = t.bucket(i);
            assert_eq!(b.total(), in_bucket.len() as u64, "bucket {i}");
            assert_eq!(b.max(), in_bucket.iter().copied().max().unwrap_or(0));
            let mut oracle = LatencyClasses::default();
            in_bucket.iter().for_each(|&l| oracle.record(l, 1));
            assert_eq!(b, &oracle, "bucket {i}");
        }
        let summaries: Vec<_> = t.summaries().collect();
        assert_eq!(summaries.iter().map(|s| s.count).sum::<u64>(), 2_000);
        assert!(summaries.windows(2).all(|w| w[0].start < w[1].start));
    }

    #[test]
    fn a_late_message_merges_as_often_as_needed() {
        let t0 = Instant::now();
        let mut t = Timeline::new(4, Duration::from_secs(1));
        t.record(t0, 5, 1);
        t.record(t0 + Duration::from_millis(1_500), 6, 1);
        t.record(t0 + Duration::from_secs(100), 7, 1);
        // 4 × 32 s = 128 s is the first coverage past 100 s.
        assert_eq!(t.width(), Duration::from_secs(32));
        assert_eq!(t.bucket(0).total(), 2);
        assert_eq!(t.bucket(3).total(), 1);
        assert_eq!(t.span(), Duration::from_secs(128));
        // A clock that went back lands in the first bucket.
        t.record(t0 - Duration::from_secs(1), 8, 1);
        assert_eq!(t.bucket(0).total(), 3);
        assert_eq!(t.summaries().count(), 2);
    }

    #[test]
    fn the_default_timeline_is_small() {
        let t = Timeline::default();
        assert_eq!(t.buckets.len(), 256);
        let bytes = t.buckets.len() * std::mem::size_of::<LatencyClasses>();
        assert_eq!(bytes, 388 * 1024);
        assert_eq!(t.total(), 0);
        assert_eq!(t.span(), Duration::ZERO);
    }
}
