//! Interpolation search over sorted `u64` keys, with a bisection guard.
//!
//! Interpolation search guesses where `target` sits from the values at the ends of the live
//! range, as one looks up a word in a dictionary: on keys spread roughly uniformly it needs
//! O(log log n) probes in expectation (Perl, Itai and Avni, "Interpolation search — a log log N
//! search", CACM 21(7), 1978). Alone it degrades to O(n) probes on skewed keys (e.g. `0, 1, 2, …,
//! u64::MAX`, or `2^i`). The guard used here follows the interpolation–binary idea of Santoro
//! and Sidney ("Interpolation-binary search", IPL 20(4), 1985): after an interpolation probe
//! that did not at least halve the live range, the next probe is a bisection. So every one or
//! two probes halve the range and the worst case is `2·⌊log2 n⌋ + 2` probes.
//!
//! Dense IDs want an offset-indexed ring rather than any search; this is for sorted but sparse
//! sets (the sender's in-flight IDs after losses and ACK ranges punch holes in them).
//!
//! **Probe**: one step of the search loop, i.e. one position chosen (by interpolation or as the
//! midpoint) and its key compared with the target. An interpolation step also compares the
//! target with the two keys that end the live range, which sit next to earlier probes and are
//! usually already in cache; when those two comparisons settle the answer, that step is the
//! probe. The counted variants report this number; the bench counts `slice::binary_search`'s
//! comparisons the same way.

use std::cmp::Ordering;

/// Finds `target` in the ascending `keys` by guarded interpolation search.
///
/// Same contract as [`slice::binary_search`]: `Ok(i)` with `keys[i] == target`, or `Err(i)`
/// where `target` could be inserted to keep `keys` sorted. If several keys equal `target`, any
/// one of their indices may be returned (as with `binary_search`, which one is unspecified);
/// `Err` indices are unique. If `keys` is not sorted the result is unspecified but the call
/// still never panics. At most `2·⌊log2 n⌋ + 2` probes.
pub fn interpolation_search(keys: &[u64], target: u64) -> Result<usize, usize> {
    interpolation_search_counted(keys, target).0
}

/// [`interpolation_search`], also returning the number of probes it made (see the module docs
/// for what a probe is). Zero for an empty slice.
pub fn interpolation_search_counted(keys: &[u64], target: u64) -> (Result<usize, usize>, u32) {
    // Invariant: keys[..lo] < target < keys[hi..]; the answer lies in lo..=hi.
    let (mut lo, mut hi) = (0, keys.len());
    let mut probes = 0;
    let mut bisect = false;
    while lo < hi {
        probes += 1;
        let len = hi - lo;
        let p = if bisect {
            lo + len / 2
        } else {
            let (a, b) = (keys[lo], keys[hi - 1]);
            if target <= a {
                lo
            } else if target >= b {
                hi - 1
            } else if len == 2 {
                // keys[lo] < target < keys[lo + 1].
                return (Err(lo + 1), probes);
            } else {
                // a < target < b and the inner slots are lo + 1 ..= hi - 2.
                interpolate(lo, hi - 1, a, b, target).clamp(lo + 1, hi - 2)
            }
        };
        match keys[p].cmp(&target) {
            Ordering::Equal => return (Ok(p), probes),
            Ordering::Less => lo = p + 1,
            Ordering::Greater => hi = p,
        }
        bisect = !bisect && 2 * (hi - lo) > len;
    }
    (Err(lo), probes)
}

/// Index of the first key `>= target` in the ascending `keys` (`keys.len()` if none), found by
/// the same guarded interpolation search: `keys.partition_point(|&k| k < target)`.
///
/// With duplicate keys this is the first of them, unlike [`interpolation_search`]'s `Ok`. At most
/// `2·⌊log2 n⌋ + 2` probes; never panics.
pub fn lower_bound(keys: &[u64], target: u64) -> usize {
    lower_bound_counted(keys, target).0
}

/// [`lower_bound`] with its probe count.
fn lower_bound_counted(keys: &[u64], target: u64) -> (usize, u32) {
    // Invariant: keys[..lo] < target <= keys[hi..]; the answer lies in lo..=hi.
    let (mut lo, mut hi) = (0, keys.len());
    let mut probes = 0;
    let mut bisect = false;
    while lo < hi {
        probes += 1;
        let len = hi - lo;
        let p = if bisect {
            lo + len / 2
        } else {
            let (a, b) = (keys[lo], keys[hi - 1]);
            if target <= a {
                return (lo, probes);
            } else if target > b {
                return (hi, probes);
            } else if len == 2 {
                // keys[lo] < target <= keys[lo + 1].
                return (lo + 1, probes);
            } else {
                // a < target <= b: the first key >= target is in lo + 1 ..= hi - 1.
                interpolate(lo, hi - 1, a, b, target).clamp(lo + 1, hi - 1)
            }
        };
        if keys[p] < target {
            lo = p + 1;
        } else {
            hi = p;
        }
        bisect = !bisect && 2 * (hi - lo) > len;
    }
    (lo, probes)
}

/// The index in `lo..=last` where `target` would sit if keys grew linearly from `a` at `lo` to
/// `b` at `last`, rounded down. Requires `a < target <= b` and `lo < last`.
///
/// `(target - a)·(last - lo)` fits in `u128` (a product of two values below 2⁶⁴), and the
/// quotient is at most `last - lo` because `target - a <= b - a`; no float, so no NaN. The
/// product is tried in `u64` first because a 128-bit division costs several times more.
#[inline]
fn interpolate(lo: usize, last: usize, a: u64, b: u64, target: u64) -> usize {
    let (rise, run, span) = (target - a, b - a, (last - lo) as u64);
    let offset = match rise.checked_mul(span) {
        Some(product) => product / run,
        None => (u128::from(rise) * u128::from(span) / u128::from(run)) as u64,
    };
    lo + offset as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The guard's bound: every one or two probes halve the live range.
    fn max_probes(n: usize) -> u32 {
        if n == 0 {
            0
        } else {
            2 * n.ilog2() + 2
        }
    }

    /// Checks every query against `binary_search` and `partition_point`, and the probe bound.
    fn check(keys: &[u64], target: u64) {
        let (found, probes) = interpolation_search_counted(keys, target);
        let expected = keys.binary_search(&target);
        match (found, expected) {
            (Ok(i), Ok(_)) => assert_eq!(keys[i], target),
            (Err(i), Err(j)) => assert_eq!(i, j, "target {target}"),
            _ => panic!("target {target}: got {found:?}, binary_search {expected:?}"),
        }
        assert!(
            probes <= max_probes(keys.len()),
            "target {target}: {probes} probes, n {}",
            keys.len()
        );
        let (first, probes) = lower_bound_counted(keys, target);
        assert_eq!(
            first,
            keys.partition_point(|&k| k < target),
            "target {target}"
        );
        assert!(
            probes <= max_probes(keys.len()),
            "lower_bound {target}: {probes} probes"
        );
    }

    /// Every key, every key ± 1, both ends of `u64` and a few pseudo-random values.
    fn check_all(keys: &[u64]) {
        let mut rng = fastrand::Rng::with_seed(7);
        let extra = [0, 1, u64::MAX - 1, u64::MAX]
            .into_iter()
            .chain((0..200).map(|_| rng.u64(..)));
        for &k in keys {
            for t in [k.wrapping_sub(1), k, k.wrapping_add(1)] {
                check(keys, t);
            }
        }
        for t in extra {
            check(keys, t);
        }
    }

    /// Exact `Ok` index agreement, for keys known to be distinct.
    fn check_distinct(keys: &[u64]) {
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        for (i, &k) in keys.iter().enumerate() {
            assert_eq!(interpolation_search(keys, k), Ok(i));
            assert_eq!(lower_bound(keys, k), i);
        }
        check_all(keys);
    }

    fn uniform(n: usize, seed: u64) -> Vec<u64> {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut keys: Vec<u64> = (0..n).map(|_| rng.u64(..)).collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    #[test]
    fn empty_and_single() {
        assert_eq!(interpolation_search_counted(&[], 5), (Err(0), 0));
        assert_eq!(lower_bound(&[], 5), 0);
        for t in [0, 4, 5, 6, u64::MAX] {
            check(&[5], t);
        }
        assert_eq!(interpolation_search(&[5], 5), Ok(0));
        check_all(&[0, u64::MAX]);
        check_all(&[u64::MAX]);
    }

    #[test]
    fn uniform_keys() {
        check_distinct(&uniform(10_000, 1));
        check_distinct(&(0..5_000).map(|i| i * 1_000_003).collect::<Vec<_>>());
        check_distinct(&(0..5_000).collect::<Vec<_>>());
    }

    #[test]
    fn clustered_keys() {
        let mut rng = fastrand::Rng::with_seed(2);
        let mut keys: Vec<u64> = (0..20)
            .flat_map(|_| {
                let start = rng.u64(..u64::MAX / 2);
                let step = rng.u64(1..4);
                (0..300).map(move |i| start + i * step)
            })
            .collect();
        keys.sort_unstable();
        keys.dedup();
        check_distinct(&keys);
    }

    #[test]
    fn exponential_keys() {
        check_distinct(&(0..64).map(|i| 1u64 << i).collect::<Vec<_>>());
        check_distinct(&(0..2_000u64).map(|i| i * i * i).collect::<Vec<_>>());
        // Geometric growth to ~2^62, plus i to keep the small ones distinct.
        let n = 5_000;
        let c = (62.0 * std::f64::consts::LN_2) / n as f64;
        check_distinct(
            &(0..n)
                .map(|i| (c * i as f64).exp() as u64 + i)
                .collect::<Vec<_>>(),
        );
    }

    #[test]
    fn adversarial_keys() {
        let mut dense_then_huge: Vec<u64> = (0..10_000).collect();
        dense_then_huge.push(u64::MAX);
        check_distinct(&dense_then_huge);
        let mut huge_then_dense: Vec<u64> = vec![0];
        huge_then_dense.extend(u64::MAX - 10_000..=u64::MAX);
        check_distinct(&huge_then_dense);
        check_all(&vec![42; 1_000]);
        check_all(&vec![u64::MAX; 100]);
        let mut runs: Vec<u64> = (0..2_000).map(|i| i / 100 * 1_000_000_007).collect();
        runs.push(u64::MAX);
        check_all(&runs);
    }

    #[test]
    fn probe_bound_is_met_and_uniform_is_cheap() {
        // On the skewed sets the bound 2·⌊log2 n⌋ + 2 (checked for every query in `check`) is
        // what keeps this from being O(n). Here: uniform keys take few probes on average.
        let keys = uniform(100_000, 3);
        let mut rng = fastrand::Rng::with_seed(4);
        let total: u32 = (0..1_000)
            .map(|_| interpolation_search_counted(&keys, keys[rng.usize(..keys.len())]).1)
            .sum();
        // log2(1e5) ≈ 17 for bisection; interpolation should be far below.
        assert!(
            total < 1_000 * 8,
            "mean probes {}",
            f64::from(total) / 1_000.0
        );

        // Skewed sets of 100 001 keys: every key and its neighbours within 2·16 + 2 = 34 probes.
        let n = 100_000;
        let mut dense_then_huge: Vec<u64> = (0..n).collect();
        dense_then_huge.push(u64::MAX);
        let c = (62.0 * std::f64::consts::LN_2) / n as f64;
        let geometric: Vec<u64> = (0..=n).map(|i| (c * i as f64).exp() as u64 + i).collect();
        let cubes: Vec<u64> = (0..=n).map(|i| i * i * i).collect();
        for keys in [&dense_then_huge, &geometric, &cubes] {
            assert_eq!(max_probes(keys.len()), 34);
            let worst = keys
                .iter()
                .flat_map(|&k| [k.wrapping_sub(1), k, k.wrapping_add(1)])
                .map(|t| {
                    interpolation_search_counted(keys, t)
                        .1
                        .max(lower_bound_counted(keys, t).1)
                })
                .max();
            assert!(worst <= Some(34), "{worst:?}");
        }
    }

    #[test]
    fn duplicates_lower_bound_is_first() {
        let keys = [1, 3, 3, 3, 3, 3, 7, 7, 9];
        assert_eq!(lower_bound(&keys, 3), 1);
        assert_eq!(lower_bound(&keys, 7), 6);
        assert_eq!(lower_bound(&keys, 4), 6);
        assert_eq!(lower_bound(&keys, 10), 9);
        assert!(matches!(interpolation_search(&keys, 3), Ok(1..=5)));
        assert_eq!(interpolation_search(&keys, 8), Err(8));
        check_all(&keys);
    }

    #[test]
    fn unsorted_input_does_not_panic() {
        let keys = [9, 1, u64::MAX, 0, 5, 5, 3];
        for t in [0, 2, 5, 9, u64::MAX] {
            let _ = interpolation_search_counted(&keys, t);
            let _ = lower_bound(&keys, t);
        }
    }

    proptest! {
        #[test]
        fn agrees_with_binary_search(
            mut keys in proptest::collection::vec(any::<u64>(), 0..300),
            targets in proptest::collection::vec(any::<u64>(), 0..20),
        ) {
            keys.sort_unstable();
            for t in targets.into_iter().chain(keys.clone()) {
                check(&keys, t);
            }
        }

        #[test]
        fn agrees_on_small_values_with_duplicates(
            mut keys in proptest::collection::vec(0u64..50, 0..300),
            targets in proptest::collection::vec(0u64..52, 0..20),
        ) {
            keys.sort_unstable();
            for t in targets {
                check(&keys, t);
            }
        }

        #[test]
        fn agrees_on_skewed_keys(
            mut keys in proptest::collection::vec(any::<u64>().prop_map(|x| x >> (x % 64)), 0..300),
            targets in proptest::collection::vec(any::<u64>().prop_map(|x| x >> (x % 64)), 0..20),
        ) {
            keys.sort_unstable();
            keys.dedup();
            for t in targets {
                check(&keys, t);
            }
            for (i, &k) in keys.iter().enumerate() {
                prop_assert_eq!(interpolation_search(&keys, k), Ok(i));
            }
        }
    }
}
