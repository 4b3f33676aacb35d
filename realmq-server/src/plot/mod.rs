//! `latency.svg`: the one-way latency of a run, drawn with plotters, in two panels.
//!
//! - **Latency by percentile**, HdrHistogram style: the x axis is the percentile on a
//!   logarithmic scale of `1 / (1 − p)` (ticks 0 %, 90 %, 99 %, 99.9 %, …), so the tail gets
//!   as much room as the body; the y axis is the latency. Drawn from the server's
//!   histogram (exact to 3 significant figures), with p50, p99, p99.9 and max marked.
//! - **Latency over time**: per time bucket since the first message (see
//!   [`crate::timeline`]), the bucket's p50 and p99 (estimated to ±6.25 %) and its exact
//!   max.
//!
//! Both panels share one logarithmic latency axis in one unit: µs when the largest latency
//! is below 10 ms, ms otherwise. The axis label names the unit.

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Context};
use hdrhistogram::Histogram;
use plotters::coord::combinators::{LogCoord, WithKeyPoints};
use plotters::coord::types::RangedCoordu64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use realmq_common::stats::LatencySummary;

use crate::timeline::{BucketSummary, Timeline, CLASS_ERROR};

/// Picture size in pixels.
const SIZE: (u32, u32) = (1100, 1000);
/// Points sampled along the percentile curve.
const CURVE_POINTS: usize = 600;
/// Fonts: tick labels, axis descriptions, legends and annotations.
const FONT: &str = "sans-serif";

/// What [`write_latency_svg`] drew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlotOutcome {
    /// The two panels.
    Written,
    /// No message was received: the file only says so (and no stale plot of an earlier
    /// run is left behind).
    NoMessages,
}

/// Writes the latency plot of `histogram` (µs) and `timeline` to `path`.
pub(crate) fn write_latency_svg(
    path: &Path,
    histogram: &Histogram<u64>,
    timeline: &Timeline,
) -> anyhow::Result<PlotOutcome> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    let outcome = if histogram.is_empty() {
        draw_empty(&root).map_err(|e| anyhow!("{e}"))?;
        PlotOutcome::NoMessages
    } else {
        draw(&root, histogram, timeline).map_err(|e| anyhow!("{e}"))?;
        PlotOutcome::Written
    };
    root.present()
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(outcome)
}

/// The unit of the latency axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Micros,
    Millis,
}

impl Unit {
    /// µs when the largest latency is below 10 ms, ms otherwise.
    fn for_max(max_us: u64) -> Self {
        if max_us < 10_000 {
            Self::Micros
        } else {
            Self::Millis
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Micros => "µs",
            Self::Millis => "ms",
        }
    }

    /// A latency in µs, in this unit.
    fn in_unit(self, us: f64) -> f64 {
        match self {
            Self::Micros => us,
            Self::Millis => us / 1_000.0,
        }
    }

    /// A latency in µs as a number and this unit: `412 µs`, `12.3 ms`.
    fn format(self, us: f64) -> String {
        format!("{} {}", round_number(self.in_unit(us), 3), self.name())
    }
}

/// `x` with at least `digits` significant digits (all digits left of the point are kept),
/// without trailing zeros: `0.0025`, `12.5`, `1500`.
fn round_number(x: f64, digits: i32) -> String {
    if x == 0.0 || !x.is_finite() {
        return "0".to_owned();
    }
    let decimals = (digits - 1 - x.abs().log10().floor() as i32).clamp(0, 9) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// A tick value as it reads: ticks are round, so every digit they have is shown (`1.5`,
/// not `2`; `0.005`, not `0.01`) and none they do not (`100`, not `100.0`).
fn tick_label(x: f64) -> String {
    round_number(x, 6)
}

/// Round ticks inside `lo..=hi` (0 < lo < hi), and lighter grid lines between them.
///
/// Over a wide range 1× or 1-2-5× each power of ten, whichever first gives four ticks, with
/// 1…9× as grid lines; over a narrow one (a log axis over less than a decade or so is
/// nearly linear) the largest of 1, 2 or 5 × a power of ten with at least four multiples
/// in the range, and its halves as grid lines.
fn round_ticks(lo: f64, hi: f64) -> (Vec<f64>, Vec<f64>) {
    let per_decade = |steps: &[f64]| {
        let mut points = Vec::new();
        let mut decade = 10f64.powi(lo.log10().floor() as i32);
        while decade <= hi {
            for m in steps {
                let x = rounded(m * decade);
                if lo <= x && x <= hi {
                    points.push(x);
                }
            }
            decade *= 10.0;
        }
        points
    };
    for steps in [&[1.0][..], &[1.0, 2.0, 5.0]] {
        let points = per_decade(steps);
        if points.len() >= 4 {
            let light = per_decade(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
            return (points, light);
        }
    }
    let multiples = |step: f64| -> Vec<f64> {
        let first = (lo / step).ceil() as i64;
        let last = (hi / step).floor() as i64;
        (first..=last).map(|k| rounded(k as f64 * step)).collect()
    };
    let mut decade = 10f64.powf((hi - lo).log10().floor());
    while decade > f64::MIN_POSITIVE {
        for m in [5.0, 2.0, 1.0] {
            let points = multiples(m * decade);
            if points.len() >= 4 {
                return (points, multiples(m * decade / 2.0));
            }
        }
        decade /= 10.0;
    }
    (vec![lo, hi], Vec::new())
}

/// `x` without the noise of binary fractions: `3 × 0.1` is `0.3`.
fn rounded(x: f64) -> f64 {
    (x * 1e9).round() / 1e9
}

/// The latency axis both panels share: logarithmic, in one [`Unit`].
#[derive(Debug, Clone, Copy, PartialEq)]
struct LatencyAxis {
    /// Bounds in the axis unit.
    lo: f64,
    hi: f64,
    unit: Unit,
    /// Some latency was 0 µs (drawn at the bottom).
    zero: bool,
}

impl LatencyAxis {
    /// An axis over `min..=max` µs with room below and, for the labels, above; at least
    /// a factor 2 wide and never below 0.5 µs (the scale is logarithmic, a 0 µs latency is
    /// drawn at the bottom).
    fn covering(min_us: u64, max_us: u64) -> Self {
        let unit = Unit::for_max(max_us);
        let a = (min_us.max(1) as f64).log10();
        let b = (max_us.max(1) as f64).log10();
        let span = (b - a).max(0.3);
        let lo = 10f64.powf(a - 0.06 * span).max(0.5);
        let hi = 10f64.powf(b + 0.14 * span);
        Self {
            lo: unit.in_unit(lo),
            hi: unit.in_unit(hi),
            unit,
            zero: min_us == 0,
        }
    }

    fn coord(&self) -> WithKeyPoints<LogCoord<f64>> {
        let (bold, light) = round_ticks(self.lo, self.hi);
        (self.lo..self.hi)
            .log_scale()
            .with_key_points(bold)
            .with_light_points(light)
    }

    /// A latency in µs as a y value, clamped into the axis.
    fn y(&self, us: f64) -> f64 {
        self.unit.in_unit(us).clamp(self.lo, self.hi)
    }

    /// Where a latency in µs sits on the axis: 0 at the bottom, 1 at the top.
    fn fraction(&self, us: f64) -> f64 {
        (self.y(us) / self.lo).ln() / (self.hi / self.lo).ln()
    }

    fn description(&self) -> String {
        let zero = if self.zero { ", 0 at the bottom" } else { "" };
        format!("one-way latency, {} (log scale{zero})", self.unit.name())
    }
}

/// The percentile axis: `1 / (1 − p)` from 1 (0 %) to a power of ten past the count.
#[derive(Debug, Clone, Copy, PartialEq)]
struct PercentileAxis {
    top: f64,
}

impl PercentileAxis {
    /// Up to the power of ten above 1.5 × `count` (the last message is at `count`), at
    /// least 100 (99 %).
    fn for_count(count: u64) -> Self {
        let decades = (count as f64 * 1.5).log10().ceil().max(2.0);
        Self {
            top: 10f64.powi(decades as i32),
        }
    }

    fn coord(&self) -> WithKeyPoints<LogCoord<f64>> {
        let mut bold = Vec::new();
        let mut x = 1.0;
        while x <= self.top * 1.0001 {
            bold.push(x);
            x *= 10.0;
        }
        (1.0..self.top).log_scale().with_key_points(bold)
    }
}

/// `1 / (1 − p)` of the percentile `p` (0 ≤ p < 1).
fn x_of_quantile(q: f64) -> f64 {
    1.0 / (1.0 - q)
}

/// The percentile label of an x value: 1 → `0%`, 10 → `90%`, 1000 → `99.9%`.
fn percentile_label(x: f64) -> String {
    let nines = x.log10().round() as i32;
    let decimals = (nines - 2).max(0) as usize;
    format!("{:.decimals$}%", 100.0 * (1.0 - 1.0 / x))
}

/// Points of the percentile curve: (`1 / (1 − p)`, latency µs) for `p` log-spaced from 0
/// to `1 − 1/count`, then the max at `count`.
fn percentile_curve(histogram: &Histogram<u64>) -> Vec<(f64, f64)> {
    let n = histogram.len() as f64;
    let mut points: Vec<(f64, f64)> = (0..CURVE_POINTS)
        .map(|i| {
            let x = n.powf(i as f64 / CURVE_POINTS as f64);
            let q = 1.0 - 1.0 / x;
            (x, histogram.value_at_quantile(q) as f64)
        })
        .collect();
    points.push((n.max(1.0), histogram.max() as f64));
    points
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration for a title: `10 ms`, `1.28 s`.
fn human_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 1.0 {
        format!("{} ms", round_number(secs * 1e3, 3))
    } else {
        format!("{} s", round_number(secs, 3))
    }
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult =
    Result<(), DrawingAreaErrorKind<<SVGBackend<'static> as DrawingBackend>::ErrorType>>;

fn draw_empty(root: &Area<'_>) -> DrawResult {
    root.fill(&WHITE)?;
    root.draw(&Text::new(
        "RealMQ one-way latency: no message received, nothing to plot",
        (SIZE.0 as i32 / 2, SIZE.1 as i32 / 2),
        TextStyle::from((FONT, 26).into_font()).pos(Pos::new(HPos::Center, VPos::Center)),
    ))
}

fn draw(root: &Area<'_>, histogram: &Histogram<u64>, timeline: &Timeline) -> DrawResult {
    let s = LatencySummary::from_histogram(histogram);
    let axis = LatencyAxis::covering(s.min, s.max);
    root.fill(&WHITE)?;
    let plural = if s.count == 1 { "" } else { "s" };
    let over = if timeline.elapsed() > Duration::ZERO {
        format!(" over {}", human_duration(timeline.elapsed()))
    } else {
        String::new()
    };
    let root = root.titled(
        &format!(
            "RealMQ one-way latency: {} message{plural}{over}",
            thousands(s.count)
        ),
        (FONT, 26),
    )?;
    let (top, bottom) = root.split_vertically((SIZE.1 - 40) / 2);
    draw_percentiles(&top, histogram, &s, &axis)?;
    draw_timeline(&bottom, timeline, &axis)
}

/// A row of legend entries (a line sample and its text) across the top of `area`.
fn legend_row(area: &Area<'_>, title: &str, entries: &[(String, ShapeStyle)]) -> DrawResult {
    let y = 14;
    let mut x = 20;
    let bold = TextStyle::from((FONT, 18).into_font().style(FontStyle::Bold))
        .pos(Pos::new(HPos::Left, VPos::Center));
    area.draw(&Text::new(title.to_owned(), (x, y), bold))?;
    x += 8 + 10 * title.chars().count() as i32;
    let text = TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (label, style) in entries {
        area.draw(&PathElement::new([(x, y), (x + 24, y)], *style))?;
        area.draw(&Text::new(label.clone(), (x + 30, y), text.clone()))?;
        x += 30 + 15 + 8 * label.chars().count() as i32;
    }
    Ok(())
}

fn draw_percentiles(
    area: &Area<'_>,
    histogram: &Histogram<u64>,
    s: &LatencySummary,
    axis: &LatencyAxis,
) -> DrawResult {
    let (header, body) = area.split_vertically(30);
    let line = BLUE.stroke_width(2);
    legend_row(
        &header,
        "By percentile",
        &[(
            "latency at or below which p % of messages arrived (exact to 0.1 %)".to_owned(),
            line,
        )],
    )?;
    let x_axis = PercentileAxis::for_count(s.count);
    let mut chart = ChartBuilder::on(&body)
        .margin_left(15)
        .margin_right(55)
        .margin_bottom(10)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(x_axis.coord(), axis.coord())?;
    chart
        .configure_mesh()
        .x_desc("percentile (log scale of 1 / (1 − p))")
        .y_desc(axis.description())
        .x_label_formatter(&|x| percentile_label(*x))
        .y_label_formatter(&|y| tick_label(*y))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .light_line_style(BLACK.mix(0.05))
        .bold_line_style(BLACK.mix(0.2))
        .draw()?;
    chart.draw_series(LineSeries::new(
        percentile_curve(histogram)
            .into_iter()
            .map(|(x, us)| (x, axis.y(us))),
        line,
    ))?;
    // The marks, with labels below and right of them (under the rising curve) unless that
    // is off the bottom of the plot, then above; the max's above and left (right when it
    // is near the left edge: few messages). On a white box, in case the curve passes
    // anyway.
    let n = s.count as f64;
    let mut marks = Vec::new();
    for (name, q, value) in [
        ("p50", 0.5, s.p50),
        ("p99", 0.99, s.p99),
        ("p99.9", 0.999, s.p999),
    ] {
        if x_of_quantile(q) <= n {
            marks.push((name, x_of_quantile(q), value, false));
        }
    }
    marks.push(("max", n.max(1.0), s.max, true));
    let font = TextStyle::from((FONT, 15).into_font());
    for (name, x, value, is_max) in marks {
        let label = format!("{name} = {}", axis.unit.format(value as f64));
        // Rendered text is about 7 px a character and 15 px high.
        let (w, h) = (7 * label.chars().count() as i32, 15);
        let left_half = x.ln() < 0.4 * x_axis.top.ln();
        let (offset, pos, corner) = if is_max && !left_half {
            (
                (-8, -6),
                Pos::new(HPos::Right, VPos::Bottom),
                (-8 - w, -6 - h),
            )
        } else if is_max || axis.fraction(value as f64) < 0.1 {
            ((8, -6), Pos::new(HPos::Left, VPos::Bottom), (8, -6 - h))
        } else {
            ((8, 6), Pos::new(HPos::Left, VPos::Top), (8, 6))
        };
        let pad = 3;
        let background = Rectangle::new(
            [
                (corner.0 - pad, corner.1 - pad),
                (corner.0 + w + pad, corner.1 + h + pad),
            ],
            WHITE.mix(0.85).filled(),
        );
        chart.draw_series(std::iter::once(
            EmptyElement::at((x, axis.y(value as f64)))
                + Circle::new((0, 0), 4, RED.filled())
                + background
                + Text::new(label, offset, font.pos(pos)),
        ))?;
    }
    Ok(())
}

/// Runs of adjacent buckets: a line joins the buckets of a run, not the gaps between runs.
fn runs(buckets: &[BucketSummary], width: Duration) -> Vec<&[BucketSummary]> {
    let mut runs = Vec::new();
    let mut from = 0;
    for i in 1..=buckets.len() {
        if i == buckets.len() || buckets[i].start != buckets[i - 1].start + width {
            runs.push(&buckets[from..i]);
            from = i;
        }
    }
    runs
}

/// The time axis: µs since the first message, labelled in seconds, or in ms for runs
/// under 2 s, at round ticks.
#[derive(Debug, Clone, Copy, PartialEq)]
struct TimeAxis {
    /// Span, µs.
    end: u64,
    /// µs per unit of the labels.
    per_unit: u64,
}

impl TimeAxis {
    fn covering(span: Duration) -> Self {
        let end = (span.as_micros().min(u64::MAX as u128) as u64).max(1_000);
        let per_unit = if end < 2_000_000 { 1_000 } else { 1_000_000 };
        Self { end, per_unit }
    }

    fn unit(&self) -> &'static str {
        if self.per_unit == 1_000 {
            "ms"
        } else {
            "s"
        }
    }

    fn x(&self, d: Duration) -> u64 {
        d.as_micros().min(u64::MAX as u128) as u64
    }

    fn label(&self, x: u64) -> String {
        tick_label(x as f64 / self.per_unit as f64)
    }

    /// Ticks every 1, 2 or 5 × a power of ten of the unit, 5 to 9 of them.
    fn ticks(&self) -> Vec<u64> {
        let raw = self.end as f64 / 8.0;
        let decade = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .into_iter()
            .map(|m| m * decade)
            .find(|&s| s >= raw)
            .unwrap_or(10.0 * decade)
            .max(1.0) as u64;
        (0..=self.end / step).map(|i| i * step).collect()
    }

    fn coord(&self) -> WithKeyPoints<RangedCoordu64> {
        (0..self.end).with_key_points(self.ticks())
    }
}

fn draw_timeline(area: &Area<'_>, timeline: &Timeline, axis: &LatencyAxis) -> DrawResult {
    let (header, body) = area.split_vertically(30);
    let width = timeline.width();
    let error = format!("±{} %", round_number(CLASS_ERROR * 100.0, 3));
    let series = [
        ("max (exact)".to_owned(), RED.mix(0.7).stroke_width(1)),
        (
            format!("p99 (estimated {error})"),
            RGBColor(230, 140, 0).stroke_width(2),
        ),
        (format!("p50 (estimated {error})"), BLUE.stroke_width(2)),
    ];
    legend_row(
        &header,
        &format!("Over time, per {} bucket", human_duration(width)),
        &series,
    )?;
    let time = TimeAxis::covering(timeline.span());
    let mut chart = ChartBuilder::on(&body)
        .margin_left(15)
        .margin_right(55)
        .margin_bottom(10)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(time.coord(), axis.coord())?;
    chart
        .configure_mesh()
        .x_desc(format!("time since the first message, {}", time.unit()))
        .y_desc(axis.description())
        .x_label_formatter(&|x| time.label(*x))
        .y_label_formatter(&|y| tick_label(*y))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .light_line_style(BLACK.mix(0.05))
        .bold_line_style(BLACK.mix(0.2))
        .draw()?;
    let buckets: Vec<BucketSummary> = timeline.summaries().collect();
    let runs = runs(&buckets, width);
    let value = [
        |b: &BucketSummary| b.max as f64,
        |b: &BucketSummary| b.p99,
        |b: &BucketSummary| b.p50,
    ];
    for ((_, style), value) in series.iter().zip(value) {
        for run in &runs {
            let points = run
                .iter()
                .map(|b| (time.x(b.start + width / 2), axis.y(value(b))));
            if run.len() == 1 {
                chart.draw_series(points.map(|p| Circle::new(p, 2, style.filled())))?;
            } else {
                chart.draw_series(LineSeries::new(points, *style))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
