//! Tests of the phi accrual detector: hand-computed values and properties.

use super::*;
use proptest::prelude::*;
use std::f64::consts::LOG10_2;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() < 1e-5
}

/// A detector that has seen `count + 1` heartbeats spaced `interval` apart from `t0`;
/// returns it with the time of the last heartbeat.
fn regular(
    config: PhiConfig,
    t0: Instant,
    interval: Duration,
    count: u32,
) -> (PhiAccrualDetector, Instant) {
    let mut d = PhiAccrualDetector::new(config);
    let mut t = t0;
    d.heartbeat(t);
    for _ in 0..count {
        t += interval;
        d.heartbeat(t);
    }
    (d, t)
}

#[test]
fn hand_computed_values() {
    // mean 1000 ms, std 100 ms, so y = (elapsed - 1000) / 100 and
    // z = y·(1.5976 + 0.070566·y²), φ = log10(1 + e^z):
    //   elapsed 1000: y = 0, z = 0,                       φ = log10 2        = 0.301030
    //   elapsed 1100: y = 1, z = 1.668166, e^z = 5.30243,  φ = log10 6.30243  = 0.799508
    //   elapsed 1200: y = 2, z = 2·1.879864 = 3.759728,
    //                 e^z = 42.93675,                      φ = log10 43.93675 = 1.642828
    //   elapsed 1300: y = 3, z = 3·2.232694 = 6.698082,
    //                 e^z = 810.8491,                      φ = log10 811.8491 = 2.909475
    //   elapsed  800: y = -2, z = -3.759728,
    //                 e^z = 0.0232901,                     φ = log10 1.023290 = 0.009999
    // (The exact normal tail at 2σ gives -log10(0.02275) = 1.643, at 3σ 2.87.)
    assert!(close(phi_for(1000.0, 1000.0, 100.0), LOG10_2));
    assert!(close(phi_for(1100.0, 1000.0, 100.0), 0.799_508));
    assert!(close(phi_for(1200.0, 1000.0, 100.0), 1.642_828));
    assert!(close(phi_for(1300.0, 1000.0, 100.0), 2.909_475));
    assert!(close(phi_for(800.0, 1000.0, 100.0), 0.009_999));
}

#[test]
fn degenerate_inputs_stay_in_range() {
    assert_eq!(phi_for(f64::NAN, 1000.0, 100.0), PHI_MAX);
    assert_eq!(phi_for(1000.0, f64::NAN, 100.0), PHI_MAX);
    assert_eq!(phi_for(1000.0, 1000.0, f64::NAN), PHI_MAX);
    assert_eq!(phi_for(f64::INFINITY, 1000.0, 100.0), PHI_MAX);
    assert_eq!(phi_for(1e12, 1000.0, 100.0), PHI_MAX);
    assert_eq!(
        phi_for(f64::NEG_INFINITY, 1000.0, 100.0),
        phi_for(0.0, 1000.0, 100.0)
    );
    assert!(phi_for(0.0, 1000.0, 100.0) < 1e-30);
    // Zero std: a step from ~0 to the cap around the mean.
    assert!(close(phi_for(1000.0, 1000.0, 0.0), LOG10_2));
    assert_eq!(phi_for(1001.0, 1000.0, 0.0), PHI_MAX);
    assert_eq!(phi_for(999.0, 1000.0, 0.0), 0.0);
    assert_eq!(phi_for(5.0, f64::INFINITY, 1.0), 0.0);
    // Infinities are clamped to 1e15 ms, so this is y ≈ -1.
    assert!(close(phi_for(5.0, f64::INFINITY, f64::INFINITY), 0.075_033));
    assert!(close(phi_for(f64::INFINITY, f64::INFINITY, 1.0), LOG10_2));
}

#[test]
fn before_any_heartbeat() {
    let t0 = Instant::now();
    let d = PhiAccrualDetector::default();
    assert_eq!(d.phi(t0 + Duration::from_secs(3600)), 0.0);
    assert!(d.is_available(t0));
    assert_eq!(d.last_heartbeat(), None);
    assert_eq!(d.sample_count(), 0);
    assert_eq!(d.mean(), Duration::ZERO);
    assert_eq!(d.std_deviation(), Duration::ZERO);
}

#[test]
fn first_heartbeat_seeds_from_the_estimate() {
    let t0 = Instant::now();
    let mut d = PhiAccrualDetector::default();
    d.heartbeat(t0);
    assert_eq!(d.last_heartbeat(), Some(t0));
    assert_eq!(d.sample_count(), 2);
    assert_eq!(d.mean(), ms(1000));
    assert_eq!(d.std_deviation(), ms(250));
    // std 250 ms is above the 100 ms floor: at 1 s φ = log10 2, at 1.5 s y = 2.
    assert!(close(d.phi(t0 + ms(1000)), LOG10_2));
    assert!(close(d.phi(t0 + ms(1500)), 1.642_828));

    let config = PhiConfig {
        first_heartbeat_estimate: ms(400),
        ..PhiConfig::default()
    };
    let mut d = PhiAccrualDetector::new(config);
    d.heartbeat(t0);
    assert_eq!((d.mean(), d.std_deviation()), (ms(400), ms(100)));
    assert!(close(d.phi(t0 + ms(600)), 1.642_828));
}

#[test]
fn seeds_leave_the_window() {
    let config = PhiConfig {
        max_sample_size: 10,
        ..PhiConfig::default()
    };
    let (d, _) = regular(config, Instant::now(), ms(200), 10);
    assert_eq!(d.sample_count(), 10);
    assert_eq!(d.mean(), ms(200));
    assert_eq!(d.std_deviation(), Duration::ZERO);
}

#[test]
fn phi_grows_with_silence() {
    let (d, last) = regular(PhiConfig::default(), Instant::now(), ms(1000), 50);
    assert!(d.is_available(last));
    let phis: Vec<f64> = [0, 500, 1000, 1100, 1200, 1500, 2000, 5000, 60_000]
        .iter()
        .map(|&m| d.phi(last + ms(m)))
        .collect();
    assert!(phis.windows(2).all(|w| w[0] <= w[1]), "{phis:?}");
    assert!(phis[1..7].windows(2).all(|w| w[0] < w[1]), "{phis:?}");
    // Intervals are exactly regular: std 0 is floored at 100 ms, so 1100 ms is y = 1.
    assert!(close(d.phi(last + ms(1100)), 0.799_508));
    assert!(d.is_available(last + ms(1300)));
    assert!(!d.is_available(last + ms(2000)));
    assert_eq!(d.phi(last + ms(60_000)), PHI_MAX);
}

#[test]
fn acceptable_pause_is_added_to_the_mean() {
    let config = PhiConfig {
        acceptable_heartbeat_pause: ms(500),
        ..PhiConfig::default()
    };
    let (d, last) = regular(config, Instant::now(), ms(1000), 50);
    assert_eq!(d.mean(), ms(1000));
    assert!(close(d.phi(last + ms(1500)), LOG10_2));
    assert!(close(d.phi(last + ms(1700)), 1.642_828));
}

#[test]
fn jitter_lowers_phi_beyond_the_mean() {
    let t0 = Instant::now();
    let (steady, steady_last) = regular(PhiConfig::default(), t0, ms(1000), 200);
    let mut jittery = PhiAccrualDetector::default();
    let mut t = t0;
    jittery.heartbeat(t);
    for i in 0..200 {
        t += if i % 2 == 0 { ms(700) } else { ms(1300) };
        jittery.heartbeat(t);
    }
    assert_eq!(jittery.mean(), ms(1000));
    assert_eq!(jittery.std_deviation(), ms(300));
    for silence in [1200, 1500, 2000, 3000] {
        let (a, b) = (
            steady.phi(steady_last + ms(silence)),
            jittery.phi(t + ms(silence)),
        );
        assert!(b < a, "silence {silence} ms: jittery {b} vs steady {a}");
    }
    // y = 1 for the jittery one at mean + 300 ms.
    assert!(close(jittery.phi(t + ms(1300)), 0.799_508));
}

#[test]
fn window_forgets_old_samples() {
    let t0 = Instant::now();
    let (mut d, mut t) = regular(PhiConfig::default(), t0, ms(100), 200);
    assert_eq!(d.mean(), ms(100));
    for i in 1..=200 {
        t += ms(1000);
        d.heartbeat(t);
        if i == 100 {
            // Half and half: (100·100 + 100·1000) / 200 = 550 ms, population std 450 ms.
            assert_eq!((d.mean(), d.std_deviation()), (ms(550), ms(450)));
        }
    }
    assert_eq!(d.sample_count(), 200);
    assert_eq!(d.mean(), ms(1000));
    assert_eq!(d.std_deviation(), Duration::ZERO);
    assert!(close(d.phi(t + ms(1000)), LOG10_2));
}

#[test]
fn earlier_now_is_ignored() {
    let t0 = Instant::now();
    let (mut d, last) = regular(PhiConfig::default(), t0, ms(1000), 5);
    let (count, mean) = (d.sample_count(), d.mean());
    d.heartbeat(last - ms(300));
    assert_eq!(d.last_heartbeat(), Some(last));
    assert_eq!((d.sample_count(), d.mean()), (count, mean));
    // Asking about a time before the last heartbeat means no silence.
    assert_eq!(d.phi(t0), d.phi(last));
    // The same instant again is a zero interval.
    d.heartbeat(last);
    assert_eq!(d.sample_count(), count + 1);
    assert!(d.mean() < mean);
}

#[test]
fn validate_rejects_bad_configs() {
    use PhiConfigError::*;
    let ok = PhiConfig::default();
    assert_eq!(ok.validate(), Ok(()));
    assert!(PhiAccrualDetector::try_new(ok).is_ok());
    let with = |change: fn(&mut PhiConfig)| {
        let mut config = ok;
        change(&mut config);
        config
    };
    let too_big = MAX_SAMPLE_SIZE + 1;
    let cases = [
        (with(|c| c.threshold = 0.0), Threshold(0.0)),
        (with(|c| c.threshold = -1.0), Threshold(-1.0)),
        (with(|c| c.threshold = 2e6), Threshold(2e6)),
        (with(|c| c.max_sample_size = 0), SampleSize(0)),
        (
            with(|c| c.max_sample_size = MAX_SAMPLE_SIZE + 1),
            SampleSize(too_big),
        ),
        (
            with(|c| c.min_std_deviation = Duration::ZERO),
            ZeroMinStdDeviation,
        ),
        (
            with(|c| c.first_heartbeat_estimate = Duration::ZERO),
            ZeroFirstHeartbeatEstimate,
        ),
    ];
    for (config, error) in cases {
        assert_eq!(config.validate(), Err(error));
        assert_eq!(PhiAccrualDetector::try_new(config).err(), Some(error));
    }
    let nan = with(|c| c.threshold = f64::NAN);
    assert!(matches!(nan.validate(), Err(Threshold(t)) if t.is_nan()));
}

#[test]
fn unvalidated_configs_do_not_panic() {
    let t0 = Instant::now();
    let config = PhiConfig {
        threshold: f64::NAN,
        max_sample_size: 0,
        min_std_deviation: Duration::ZERO,
        acceptable_heartbeat_pause: Duration::MAX,
        first_heartbeat_estimate: Duration::MAX,
        min_sample_gap: Duration::ZERO,
    };
    let (d, last) = regular(config, t0, ms(10), 3);
    assert_eq!(d.sample_count(), 1);
    assert_eq!(d.mean(), ms(10));
    assert!(!d.is_available(last));
    assert!(d.phi(last + Duration::from_secs(1 << 40)).is_finite());
}

#[test]
fn silence_for_phi_inverts_hand_computed_values() {
    // The hand-computed values above, backwards: φ 1.642828 is reached 2 std past the mean.
    assert!((silence_for_phi(1.642_828, 1000.0, 100.0) - 1200.0).abs() < 1e-3);
    assert!((silence_for_phi(2.909_475, 1000.0, 100.0) - 1300.0).abs() < 1e-3);
    assert!((silence_for_phi(LOG10_2, 1000.0, 100.0) - 1000.0).abs() < 1e-6);
    // A threshold below φ(0) is reached at once; nonsense gives 0, never NaN.
    assert_eq!(silence_for_phi(0.1, 0.0, 100.0), 0.0);
    assert_eq!(silence_for_phi(f64::NAN, 1000.0, 100.0), 0.0);
    assert_eq!(silence_for_phi(-1.0, 1000.0, 100.0), 0.0);
    assert!(silence_for_phi(PHI_MAX, 1000.0, 100.0).is_finite());
}

#[test]
fn suspicion_time_is_where_phi_crosses_the_threshold() {
    let t0 = Instant::now();
    let d = PhiAccrualDetector::default();
    assert_eq!((d.suspicion_time(), d.silence_until(8.0)), (None, None));
    let (d, last) = regular(PhiConfig::default(), t0, ms(1000), 50);
    let at = d.suspicion_time().unwrap();
    assert!(at > last + ms(1000));
    assert!(!d.is_available(at));
    assert!(d.is_available(at - Duration::from_micros(2)));
    assert_eq!(at - last, d.silence_until(8.0).unwrap());
}

#[test]
fn arrivals_closer_than_the_sample_gap_restart_the_silence_only() {
    let t0 = Instant::now();
    let config = PhiConfig {
        min_sample_gap: ms(100),
        max_sample_size: 10,
        first_heartbeat_estimate: ms(100),
        ..PhiConfig::default()
    };
    let mut d = PhiAccrualDetector::new(config);
    d.heartbeat(t0);
    // A burst: one arrival a millisecond for a second. Only those 100 ms after the last
    // sample become intervals.
    for i in 1..=1000 {
        d.heartbeat(t0 + ms(i));
    }
    assert_eq!(d.sample_count(), 10);
    assert_eq!((d.mean(), d.std_deviation()), (ms(100), Duration::ZERO));
    // The silence counts from the latest arrival, not from the latest sample.
    assert_eq!(d.last_heartbeat(), Some(t0 + ms(1000)));
    assert!(close(d.phi(t0 + ms(1100)), LOG10_2));
    // Without the gap the same burst leaves 1 ms intervals.
    let mut every = PhiAccrualDetector::new(PhiConfig {
        min_sample_gap: Duration::ZERO,
        ..config
    });
    for i in 0..=1000 {
        every.heartbeat(t0 + ms(i));
    }
    assert_eq!(every.mean(), ms(1));
}

proptest! {
    #[test]
    fn silence_for_phi_inverts_phi_for(
        threshold in 0.5..50.0f64, m in 0.0..10_000.0f64, s in 0.01..5_000.0f64,
    ) {
        let silence = silence_for_phi(threshold, m, s);
        prop_assert!(silence >= m);
        let phi = phi_for(silence, m, s);
        prop_assert!((phi - threshold).abs() < 1e-6 * threshold.max(1.0), "{phi} vs {threshold}");
    }

    #[test]
    fn phi_for_is_finite_and_in_range(
        e in any::<f64>(), m in any::<f64>(), s in any::<f64>()
    ) {
        let phi = phi_for(e, m, s);
        prop_assert!(!phi.is_nan());
        prop_assert!((0.0..=PHI_MAX).contains(&phi), "{phi}");
    }

    #[test]
    fn phi_for_is_monotone_in_elapsed(
        a in any::<f64>().prop_filter("not NaN", |x| !x.is_nan()),
        b in any::<f64>().prop_filter("not NaN", |x| !x.is_nan()),
        m in any::<f64>(),
        s in any::<f64>(),
    ) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(phi_for(lo, m, s) <= phi_for(hi, m, s));
    }

    #[test]
    fn phi_for_is_monotone_in_realistic_elapsed(
        a in 0.0..100_000.0f64, b in 0.0..100_000.0f64,
        m in 0.0..10_000.0f64, s in 0.0..5_000.0f64,
    ) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(phi_for(lo, m, s) <= phi_for(hi, m, s));
    }

    #[test]
    fn more_jitter_lowers_phi_past_the_mean(
        m in 0.0..10_000.0f64, past in 0.0..10_000.0f64,
        s1 in 0.001..5_000.0f64, s2 in 0.001..5_000.0f64,
    ) {
        let (narrow, wide) = if s1 <= s2 { (s1, s2) } else { (s2, s1) };
        prop_assert!(phi_for(m + past, m, wide) <= phi_for(m + past, m, narrow));
    }

    #[test]
    fn detector_phi_is_sane_for_any_arrivals(
        steps in proptest::collection::vec(-5_000i64..20_000, 0..300),
        queries in proptest::collection::vec(0u64..1_000_000, 1..20),
        max_sample_size in 1usize..50,
    ) {
        let t0 = Instant::now() + Duration::from_secs(10_000);
        let config = PhiConfig { max_sample_size, ..PhiConfig::default() };
        let mut d = PhiAccrualDetector::new(config);
        let mut t = t0;
        for step in steps {
            t = if step < 0 { t - ms(step.unsigned_abs()) } else { t + ms(step as u64) };
            d.heartbeat(t);
            prop_assert!(d.sample_count() <= max_sample_size.max(2));
        }
        let last = d.last_heartbeat().unwrap_or(t0);
        let mut queries = queries;
        queries.sort_unstable();
        let mut previous = 0.0;
        for q in queries {
            let phi = d.phi(last + ms(q));
            prop_assert!(!phi.is_nan() && (0.0..=PHI_MAX).contains(&phi));
            prop_assert!(phi >= previous);
            previous = phi;
        }
    }
}
