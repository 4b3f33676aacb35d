//! Tests of the latency plots.
use super::*;
use realmq_common::stats::{latency_histogram, record_latency_us};
use std::time::Instant;

fn temp_svg(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "realmq-plot-{name}-{}-{}.svg",
        std::process::id(),
        fastrand::u64(..)
    ))
}

#[test]
fn percentile_axis_labels_read_as_nines() {
    let labels: Vec<String> = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5]
        .into_iter()
        .map(percentile_label)
        .collect();
    assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]);
    assert!((x_of_quantile(0.99) - 100.0).abs() < 1e-9);
    assert!((x_of_quantile(0.999) - 1e3).abs() < 1e-6);
    assert_eq!(PercentileAxis::for_count(10).top, 100.0);
    assert_eq!(PercentileAxis::for_count(2_000_000).top, 1e7);
    assert_eq!(PercentileAxis::for_count(600_000).top, 1e6);
}

#[test]
fn percentile_curve_runs_from_min_to_max() {
    let mut h = latency_histogram();
    for us in 1..=10_000 {
        record_latency_us(&mut h, us);
    }
    let curve = percentile_curve(&h);
    assert!(curve
        .windows(2)
        .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
    assert_eq!(curve[0], (1.0, 1.0));
    assert_eq!(*curve.last().unwrap(), (10_000.0, h.max() as f64));
    // At x = 100 (p99) the curve reads the 99th percentile, to 0.1 %.
    let (_, at_p99) = curve
        .iter()
        .copied()
        .min_by(|a, b| (a.0 - 100.0).abs().total_cmp(&(b.0 - 100.0).abs()))
        .unwrap();
    assert!((at_p99 - 9_900.0).abs() < 30.0, "{at_p99}");
}

#[test]
fn one_unit_for_the_latency_axis() {
    let small = LatencyAxis::covering(12, 9_999);
    assert_eq!(small.unit, Unit::Micros);
    assert!(small.lo < 12.0 && small.hi > 9_999.0);
    let large = LatencyAxis::covering(12, 10_000);
    assert_eq!(large.unit, Unit::Millis);
    assert!(large.lo < 0.012 && large.hi > 10.0);
    assert_eq!(large.description(), "one-way latency, ms (log scale)");
    assert_eq!(Unit::Millis.format(12_345.0), "12.3 ms");
    assert_eq!(Unit::Micros.format(412.0), "412 µs");
    assert_eq!(Unit::Millis.format(31.0), "0.031 ms");
    // A zero latency still has a place on the log axis, and the label says where.
    let zero = LatencyAxis::covering(0, 300);
    assert_eq!(zero.y(0.0), zero.lo);
    assert_eq!(zero.fraction(0.0), 0.0);
    assert!((zero.fraction(1e9) - 1.0).abs() < 1e-12);
    assert_eq!(
        zero.description(),
        "one-way latency, µs (log scale, 0 at the bottom)"
    );
}

/// Renders a few hard cases as SVG in `REALMQ_PLOT_DIR`, to look at; checks only that
/// they are written.
#[test]
fn awkward_runs_are_plotted() {
    let t0 = Instant::now();
    let cases: [(&str, &[u64]); 4] = [
        ("one-message", &[250]),
        ("hundred-and-fifty", &[40; 150]),
        ("zeros", &[0, 0, 0, 1, 1, 2, 3, 17, 150, 4_000]),
        ("flat", &[1_000; 5_000]),
    ];
    for (name, latencies) in cases {
        let mut h = latency_histogram();
        let mut t = Timeline::default();
        for (i, &us) in latencies.iter().enumerate() {
            record_latency_us(&mut h, us);
            t.record(t0 + Duration::from_micros(i as u64 * 997), us, 1);
        }
        let path = temp_svg(name);
        assert_eq!(
            write_latency_svg(&path, &h, &t).unwrap(),
            PlotOutcome::Written
        );
        if let Ok(dir) = std::env::var("REALMQ_PLOT_DIR") {
            std::fs::copy(&path, Path::new(&dir).join(format!("latency-{name}.svg"))).unwrap();
        }
        std::fs::remove_file(&path).unwrap();
    }
}

#[test]
fn ticks_are_round_distinct_and_enough() {
    for (lo, hi) in [
        (0.6, 70_000.0),
        (30.0, 2_500.0),
        (40.0, 75.0),
        (80.0, 125.0),
        (1.2, 2.6),
        (0.004, 0.2),
    ] {
        let (ticks, light) = round_ticks(lo, hi);
        assert!(ticks.len() >= 4, "{lo}..{hi}: {ticks:?}");
        assert!(ticks.iter().all(|t| lo <= *t && *t <= hi));
        let labels: Vec<String> = ticks.iter().map(|t| tick_label(*t)).collect();
        let mut unique = labels.clone();
        unique.dedup();
        assert_eq!(labels, unique, "{lo}..{hi}");
        assert!(light.len() >= ticks.len());
    }
    assert_eq!(
        round_ticks(30.0, 2_500.0).0,
        [50.0, 100.0, 200.0, 500.0, 1_000.0, 2_000.0]
    );
    assert_eq!(round_ticks(40.0, 75.0).0, [40.0, 50.0, 60.0, 70.0]);
    assert_eq!(round_number(0.0025, 1), "0.003");
    assert_eq!(round_number(0.0025, 2), "0.0025");
    assert_eq!(round_number(1_500.0, 3), "1500");
    assert_eq!(round_number(12.0, 3), "12");
}

#[test]
fn time_ticks_are_round() {
    let t = TimeAxis::covering(Duration::from_millis(1_300));
    assert_eq!(t.unit(), "ms");
    let labels: Vec<String> = t.ticks().into_iter().map(|x| t.label(x)).collect();
    assert_eq!(labels, ["0", "200", "400", "600", "800", "1000", "1200"]);
    let t = TimeAxis::covering(Duration::from_secs(37));
    assert_eq!(t.unit(), "s");
    let labels: Vec<String> = t.ticks().into_iter().map(|x| t.label(x)).collect();
    assert_eq!(labels, ["0", "5", "10", "15", "20", "25", "30", "35"]);
    // Half-second steps keep their digit: no `0, 0.5, 1, 1, 2, 2`.
    let t = TimeAxis::covering(Duration::from_millis(3_600));
    let labels: Vec<String> = t.ticks().into_iter().map(|x| t.label(x)).collect();
    assert_eq!(labels, ["0", "0.5", "1", "1.5", "2", "2.5", "3", "3.5"]);
    assert_eq!(thousands(2_000_000), "2,000,000");
    assert_eq!(thousands(999), "999");
    assert_eq!(human_duration(Duration::from_millis(1_280)), "1.28 s");
    assert_eq!(human_duration(Duration::from_millis(10)), "10 ms");
}

#[test]
fn runs_split_at_gaps() {
    let w = Duration::from_millis(10);
    let b = |ms: u64| BucketSummary {
        start: Duration::from_millis(ms),
        count: 1,
        p50: 1.0,
        p99: 1.0,
        max: 1,
    };
    let buckets = [b(0), b(10), b(20), b(50), b(70), b(80)];
    let lengths: Vec<usize> = runs(&buckets, w).iter().map(|r| r.len()).collect();
    assert_eq!(lengths, [3, 1, 2]);
    assert!(runs(&[], w).is_empty());
}

/// A synthetic run: 30 s, latency ~100–400 µs with a 12 ms stall at 20 s.
fn synthetic_run() -> (Histogram<u64>, Timeline) {
    let mut h = latency_histogram();
    let mut t = Timeline::default();
    let t0 = Instant::now();
    let mut rng = fastrand::Rng::with_seed(3);
    for i in 0..300_000u64 {
        let at = Duration::from_micros(i * 100);
        let mut us = 100 + rng.u64(0..50) + rng.u64(0..50) * rng.u64(0..6);
        if (20_000_000..20_050_000).contains(&at.as_micros()) {
            us += 12_000;
        }
        record_latency_us(&mut h, us);
        t.record(t0 + at, us, 1);
    }
    (h, t)
}

#[test]
fn writes_both_panels_with_their_labels() {
    let (h, t) = synthetic_run();
    let path = temp_svg("synthetic");
    assert_eq!(
        write_latency_svg(&path, &h, &t).unwrap(),
        PlotOutcome::Written
    );
    let svg = std::fs::read_to_string(&path).unwrap();
    if let Ok(dir) = std::env::var("REALMQ_PLOT_DIR") {
        // For looking at: `REALMQ_PLOT_DIR=/tmp cargo test -p realmq-server plot`.
        std::fs::copy(&path, Path::new(&dir).join("latency-synthetic.svg")).unwrap();
    }
    std::fs::remove_file(&path).unwrap();
    let texts = svg_texts(&svg);
    // The percentile ticks, exactly.
    for tick in ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"] {
        assert!(texts.iter().any(|t| t == tick), "tick {tick} missing");
    }
    // 12.4 ms max: one unit, ms, for the whole latency axis.
    for label in [
        "RealMQ one-way latency: 300,000 messages over 30 s",
        "p50 = 0.",
        "p99 = 0.",
        "p99.9 = 12.",
        "max = 12.",
        "one-way latency, ms (log scale)",
        "Over time, per 160 ms bucket",
        "max (exact)",
        "p99 (estimated ±6.25 %)",
        "p50 (estimated ±6.25 %)",
        "time since the first message, s",
    ] {
        assert!(
            texts.iter().any(|t| t.starts_with(label)),
            "{label} missing"
        );
    }
    assert!(!texts.iter().any(|t| t.contains("µs")), "{texts:?}");
}

/// The contents of the SVG's `<text>` elements, trimmed.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_owned())
        })
        .collect()
}

#[test]
fn no_message_gives_a_plot_that_says_so() {
    let path = temp_svg("empty");
    let outcome = write_latency_svg(&path, &latency_histogram(), &Timeline::default()).unwrap();
    assert_eq!(outcome, PlotOutcome::NoMessages);
    let svg = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        svg_texts(&svg),
        ["RealMQ one-way latency: no message received, nothing to plot"]
    );
}
