//! Guarded interpolation search vs `slice::binary_search` on sorted `u64` keys.
//!
//! For n in {1e3, 1e5, 1e6} and four key sets (uniform, clustered, exponential, adversarial),
//! each benchmark iteration looks up the same [`LOOKUPS`] targets, half present and half absent,
//! drawn with a seeded `fastrand`. Criterion measures time per iteration; divide by
//! [`LOOKUPS`] for time per lookup (the throughput line gives lookups per second). Criterion
//! does not count probes, so the setup of each case prints the mean probes per lookup of both
//! algorithms to stderr, with binary search's comparisons counted by [`binary_search_counted`].
//!
//! Run: `cargo bench -p realmq-common --bench search -- --noplot`. Kept short (10 samples,
//! 0.5 s warm-up, 1 s measurement per benchmark) so the whole run takes well under 3 minutes.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use realmq_common::search::{interpolation_search, interpolation_search_counted};

/// Targets looked up per benchmark iteration.
const LOOKUPS: usize = 1024;

/// Key set sizes.
const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];

/// The shapes of key sets measured.
#[derive(Debug, Clone, Copy)]
enum KeySet {
    /// Distinct uniformly random `u64`s: interpolation's best case.
    Uniform,
    /// 32 runs of nearby keys (steps of 1–16) at random places in the `u64` range.
    Clustered,
    /// Geometric growth `⌊e^(c·i)⌋ + i` up to about 2⁶²: most of the value range is taken by the
    /// last few keys, so interpolation aims far too low.
    Exponential,
    /// `0, 1, …, n - 2, u64::MAX`: one outlier makes every first interpolation land at the start.
    Adversarial,
}

impl KeySet {
    const ALL: [KeySet; 4] = [
        Self::Uniform,
        Self::Clustered,
        Self::Exponential,
        Self::Adversarial,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Uniform => "uniform",
            Self::Clustered => "clustered",
            Self::Exponential => "exponential",
            Self::Adversarial => "adversarial",
        }
    }

    /// `n` distinct ascending keys of this shape.
    fn keys(self, n: usize, rng: &mut fastrand::Rng) -> Vec<u64> {
        let mut keys = match self {
            Self::Uniform => {
                let mut keys = Vec::with_capacity(n);
                while keys.len() < n {
                    keys.extend((keys.len()..n).map(|_| rng.u64(..)));
                    keys.sort_unstable();
                    keys.dedup();
                }
                keys
            }
            Self::Clustered => {
                let clusters = 32;
                let per_cluster = n.div_ceil(clusters);
                let mut keys = Vec::with_capacity(clusters * per_cluster);
                for _ in 0..clusters {
                    let step = rng.u64(1..=16);
                    let start = rng.u64(..u64::MAX - 16 * per_cluster as u64);
                    keys.extend((0..per_cluster as u64).map(|i| start + i * step));
                }
                keys.sort_unstable();
                keys.dedup();
                keys
            }
            Self::Exponential => {
                let c = 62.0 * std::f64::consts::LN_2 / n as f64;
                (0..n as u64)
                    .map(|i| (c * i as f64).exp() as u64 + i)
                    .collect()
            }
            Self::Adversarial => (0..n as u64 - 1).chain([u64::MAX]).collect(),
        };
        keys.truncate(n);
        assert_eq!(keys.len(), n, "{} keys", self.name());
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "{} keys must be distinct",
            self.name()
        );
        keys
    }
}

/// [`LOOKUPS`] targets in random order: half are keys picked at random, half are absent
/// values drawn uniformly between the smallest and largest key.
fn targets(keys: &[u64], rng: &mut fastrand::Rng) -> Vec<u64> {
    let (first, last) = (keys[0], keys[keys.len() - 1]);
    let mut targets: Vec<u64> = (0..LOOKUPS / 2)
        .map(|_| keys[rng.usize(..keys.len())])
        .collect();
    while targets.len() < LOOKUPS {
        let t = rng.u64(first..=last);
        if keys.binary_search(&t).is_err() {
            targets.push(t);
        }
    }
    rng.shuffle(&mut targets);
    targets
}

/// `slice::binary_search`, also returning how many key comparisons it made: its probe count
/// (one comparison per halving plus a final one; it has no early exit on equality).
fn binary_search_counted(keys: &[u64], target: u64) -> (Result<usize, usize>, u32) {
    let mut probes = 0;
    let found = keys.binary_search_by(|k| {
        probes += 1;
        k.cmp(&target)
    });
    (found, probes)
}

/// Mean probes per lookup of both algorithms over `targets`, checking that they agree with
/// `binary_search` on the way.
fn mean_probes(keys: &[u64], targets: &[u64]) -> (f64, f64) {
    let (mut interpolation, mut binary) = (0u64, 0u64);
    for &t in targets {
        let expected = keys.binary_search(&t);
        let (found, probes) = interpolation_search_counted(keys, t);
        assert_eq!(found, expected, "interpolation_search disagrees on {t}");
        interpolation += u64::from(probes);
        binary += u64::from(binary_search_counted(keys, t).1);
    }
    let lookups = targets.len() as f64;
    (interpolation as f64 / lookups, binary as f64 / lookups)
}

/// Folds a search result into a checksum so the lookups cannot be optimised away.
fn fold(result: Result<usize, usize>) -> usize {
    match result {
        Ok(i) => i,
        Err(i) => !i,
    }
}

fn bench_search(c: &mut Criterion) {
    let mut rng = fastrand::Rng::with_seed(0x5EA4C4);
    for n in SIZES {
        for set in KeySet::ALL {
            let keys = set.keys(n, &mut rng);
            let targets = targets(&keys, &mut rng);
            let (interpolation, binary) = mean_probes(&keys, &targets);
            eprintln!(
                "probes/lookup {}/n={n}: interpolation {interpolation:.2}, binary {binary:.2}",
                set.name()
            );

            let mut group = c.benchmark_group(format!("search/{}/n={n}", set.name()));
            group.throughput(Throughput::Elements(LOOKUPS as u64));
            group.bench_function("interpolation", |b| {
                b.iter(|| {
                    let keys = black_box(keys.as_slice());
                    targets.iter().fold(0usize, |acc, &t| {
                        acc.wrapping_add(fold(interpolation_search(keys, black_box(t))))
                    })
                })
            });
            group.bench_function("binary", |b| {
                b.iter(|| {
                    let keys = black_box(keys.as_slice());
                    targets.iter().fold(0usize, |acc, &t| {
                        acc.wrapping_add(fold(keys.binary_search(black_box(&t))))
                    })
                })
            });
            group.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1));
    targets = bench_search
}
criterion_main!(benches);
