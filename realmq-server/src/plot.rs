//! `latency.svg`: the one-way latency distribution of a run, drawn with plotters.
//!
//! Two panels over the same logarithmic latency axis: on top a histogram (messages per
//! bin, bins of equal width on the log axis) whose legend gives mean, min, max, standard
//! deviation and p95; below, the cumulative distribution (percentage of messages at or
//! under a latency) with p50, p99 and p99.9 in its legend.

use std::path::Path;

use anyhow::{anyhow, Context};
use hdrhistogram::Histogram;
use plotters::coord::combinators::{LogCoord, WithKeyPoints};
use plotters::coord::Shift;
use plotters::prelude::*;
use realmq_common::stats::LatencySummary;

/// Histogram bins across the latency range.
const BINS: usize = 60;
/// Picture size in pixels.
const SIZE: (u32, u32) = (1100, 900);

/// Writes the latency plot of `histogram` (µs) to `path`. Does nothing and returns
/// `Ok(false)` for an empty histogram.
pub(crate) fn write_latency_svg(path: &Path, histogram: &Histogram<u64>) -> anyhow::Result<bool> {
    if histogram.is_empty() {
        return Ok(false);
    }
    let summary = LatencySummary::from_histogram(histogram);
    let axis = LogAxis::covering(summary.min, summary.max);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    draw(&root, histogram, &summary, &axis).map_err(|e| anyhow!("{e}"))?;
    root.present()
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(true)
}

/// The x range of both panels, in µs, and the histogram bins on it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LogAxis {
    lo: f64,
    hi: f64,
}

impl LogAxis {
    /// A range a little wider than `min..=max` (and at least a factor 4 wide), never
    /// below 1 µs since the axis is logarithmic.
    fn covering(min: u64, max: u64) -> Self {
        let lo = (min.max(1) as f64) / 1.2;
        let hi = ((max.max(1) as f64) * 1.2).max(lo * 4.0);
        Self {
            lo: lo.max(0.5),
            hi,
        }
    }

    /// Axis labels: 1, 2 and 5 times the powers of ten inside the range (only the powers
    /// of ten when that would be too many).
    fn key_points(&self) -> Vec<f64> {
        let mut points = Vec::new();
        let mut decade = 10f64.powi(self.lo.log10().floor() as i32);
        while decade <= self.hi {
            for m in [1.0, 2.0, 5.0] {
                let x = m * decade;
                if self.lo <= x && x <= self.hi {
                    points.push(x);
                }
            }
            decade *= 10.0;
        }
        if points.len() > 12 {
            points.retain(|x| (x.log10().fract()).abs() < 1e-9);
        }
        points
    }

    /// Lower and upper edge of bin `i`.
    fn bin_edges(&self, i: usize) -> (f64, f64) {
        let ratio = (self.hi / self.lo).powf(1.0 / BINS as f64);
        (
            self.lo * ratio.powi(i as i32),
            self.lo * ratio.powi(i as i32 + 1),
        )
    }

    /// The plotters coordinate: logarithmic, labelled at [`LogAxis::key_points`].
    fn coord(&self) -> WithKeyPoints<LogCoord<f64>> {
        (self.lo..self.hi)
            .log_scale()
            .with_key_points(self.key_points())
    }

    /// The bin of a latency; values outside the range go to the first or last bin.
    fn bin_of(&self, us: u64) -> usize {
        let x = (us as f64).max(self.lo);
        let pos = (x / self.lo).ln() / (self.hi / self.lo).ln() * BINS as f64;
        (pos as usize).min(BINS - 1)
    }
}

/// Message counts per bin.
fn bin_counts(histogram: &Histogram<u64>, axis: &LogAxis) -> Vec<u64> {
    let mut counts = vec![0u64; BINS];
    for v in histogram.iter_recorded() {
        counts[axis.bin_of(v.value_iterated_to())] += v.count_at_value();
    }
    counts
}

/// Points of the cumulative distribution: (latency µs, % of messages at or below).
fn cdf_points(histogram: &Histogram<u64>, axis: &LogAxis) -> Vec<(f64, f64)> {
    let total = histogram.len() as f64;
    let mut points = vec![(axis.lo, 0.0)];
    let mut below = 0u64;
    for v in histogram.iter_recorded() {
        let x = (v.value_iterated_to() as f64).max(axis.lo);
        points.push((x, 100.0 * below as f64 / total));
        below += v.count_at_value();
        points.push((x, 100.0 * below as f64 / total));
    }
    points.push((axis.hi, 100.0));
    points
}

/// Formats µs for a legend: `850 µs`, `12.3 ms`, `1.50 s`.
fn human_us(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.1} ms", us / 1_000.0)
    } else {
        format!("{:.2} s", us / 1_000_000.0)
    }
}

type DrawResult =
    Result<(), DrawingAreaErrorKind<<SVGBackend<'static> as DrawingBackend>::ErrorType>>;

fn draw(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    histogram: &Histogram<u64>,
    s: &LatencySummary,
    axis: &LogAxis,
) -> DrawResult {
    root.fill(&WHITE)?;
    let root = root.titled(
        &format!("RealMQ one-way latency ({} messages)", s.count),
        ("sans-serif", 26),
    )?;
    let (top, bottom) = root.split_vertically(SIZE.1 / 2);
    draw_histogram(&top, histogram, s, axis)?;
    draw_cdf(&bottom, histogram, s, axis)
}

fn vertical_line(
    x: f64,
    y_max: f64,
    style: ShapeStyle,
) -> LineSeries<SVGBackend<'static>, (f64, f64)> {
    LineSeries::new([(x, 0.0), (x, y_max)], style)
}

fn draw_histogram(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    histogram: &Histogram<u64>,
    s: &LatencySummary,
    axis: &LogAxis,
) -> DrawResult {
    let counts = bin_counts(histogram, axis);
    let y_max = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.15;
    let mut chart = ChartBuilder::on(area)
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(85)
        .build_cartesian_2d(axis.coord(), 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("one-way latency, µs (log scale)")
        .y_desc("messages per bin")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .x_label_formatter(&|x| human_us(*x))
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .draw()?;
    let bar = BLUE.mix(0.55).filled();
    chart
        .draw_series(
            counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(i, c)| {
                    let (a, b) = axis.bin_edges(i);
                    Rectangle::new([(a, 0.0), (b, *c as f64)], bar)
                }),
        )?
        .label("messages per bin")
        .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], bar));
    let mean_style = RED.stroke_width(2);
    chart
        .draw_series(vertical_line(s.mean.max(axis.lo), y_max, mean_style))?
        .label(format!("mean = {}", human_us(s.mean)))
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], mean_style));
    let p95_style = GREEN.mix(0.8).stroke_width(2);
    chart
        .draw_series(vertical_line((s.p95 as f64).max(axis.lo), y_max, p95_style))?
        .label(format!("p95 = {}", human_us(s.p95 as f64)))
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], p95_style));
    // Numbers without a mark of their own: legend entries with no drawn points.
    for text in [
        format!("min = {}", human_us(s.min as f64)),
        format!("max = {}", human_us(s.max as f64)),
        format!("std dev = {}", human_us(s.stddev)),
    ] {
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), u32>>())?
            .label(text)
            .legend(|(x, y)| Circle::new((x + 8, y), 0, TRANSPARENT));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
}

fn draw_cdf(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    histogram: &Histogram<u64>,
    s: &LatencySummary,
    axis: &LogAxis,
) -> DrawResult {
    let mut chart = ChartBuilder::on(area)
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(85)
        .build_cartesian_2d(axis.coord(), 0.0..100.0)?;
    chart
        .configure_mesh()
        .x_desc("one-way latency, µs (log scale)")
        .y_desc("messages at or below, %")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .x_label_formatter(&|x| human_us(*x))
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .draw()?;
    let line = BLUE.stroke_width(2);
    chart
        .draw_series(LineSeries::new(cdf_points(histogram, axis), line))?
        .label("cumulative distribution")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], line));
    for (name, value, color) in [
        ("p50", s.p50, GREEN.mix(0.8)),
        ("p99", s.p99, MAGENTA.mix(0.8)),
        ("p99.9", s.p999, RED.mix(0.8)),
    ] {
        let style = color.stroke_width(1);
        chart
            .draw_series(vertical_line((value as f64).max(axis.lo), 100.0, style))?
            .label(format!("{name} = {}", human_us(value as f64)))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
}

#[cfg(test)]
mod tests {
    use super::*;
    use realmq_common::stats::{latency_histogram, record_latency_us};

    #[test]
    fn bins_cover_the_range_in_order() {
        let axis = LogAxis::covering(10, 100_000);
        assert_eq!(axis.bin_of(0), 0);
        assert_eq!(axis.bin_of(8), 0);
        assert_eq!(axis.bin_of(120_000), BINS - 1);
        assert!(axis.bin_of(100_000) > BINS - 3);
        assert_eq!(axis.bin_of(u64::MAX), BINS - 1);
        let (a, _) = axis.bin_edges(0);
        let (_, b) = axis.bin_edges(BINS - 1);
        assert!((a - axis.lo).abs() < 1e-9 && (b - axis.hi).abs() / axis.hi < 1e-9);
        let mid = axis.bin_of(1_050);
        let (a, b) = axis.bin_edges(mid);
        assert!(a <= 1_050.0 && 1_050.0 < b, "{a}..{b}");
    }

    #[test]
    fn labels_are_round_numbers_inside_the_range() {
        let axis = LogAxis {
            lo: 30.0,
            hi: 2_500.0,
        };
        assert_eq!(
            axis.key_points(),
            [50.0, 100.0, 200.0, 500.0, 1_000.0, 2_000.0]
        );
        let wide = LogAxis { lo: 1.0, hi: 60e6 };
        assert_eq!(wide.key_points().len(), 8);
        assert_eq!(human_us(2_000.0), "2.0 ms");
    }

    #[test]
    fn a_single_value_still_gets_a_wide_axis() {
        let axis = LogAxis::covering(50, 50);
        assert!(axis.hi / axis.lo >= 4.0);
    }

    #[test]
    fn cdf_ends_at_100_percent() {
        let mut h = latency_histogram();
        for us in [5, 5, 10, 400] {
            record_latency_us(&mut h, us);
        }
        let axis = LogAxis::covering(5, 400);
        let points = cdf_points(&h, &axis);
        assert!(points
            .windows(2)
            .all(|w| w[0].1 <= w[1].1 && w[0].0 <= w[1].0));
        assert_eq!(points.last().unwrap().1, 100.0);
        assert_eq!(bin_counts(&h, &axis).iter().sum::<u64>(), 4);
    }

    #[test]
    fn writes_an_svg_with_the_legend_numbers() {
        let mut h = latency_histogram();
        for i in 0..10_000u64 {
            record_latency_us(&mut h, 20 + (i * i) % 5_000);
        }
        let path = std::env::temp_dir().join(format!(
            "realmq-plot-{}-{}.svg",
            std::process::id(),
            fastrand::u64(..)
        ));
        assert!(write_latency_svg(&path, &h).unwrap());
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        for needle in [
            "<svg",
            "mean = ",
            "min = ",
            "max = ",
            "std dev = ",
            "p95 = ",
            "p99.9 = ",
        ] {
            assert!(svg.contains(needle), "{needle} missing");
        }
    }

    #[test]
    fn empty_histograms_are_not_plotted() {
        let path = std::env::temp_dir().join("realmq-plot-never-written.svg");
        assert!(!write_latency_svg(&path, &latency_histogram()).unwrap());
        assert!(!path.exists());
    }
}
