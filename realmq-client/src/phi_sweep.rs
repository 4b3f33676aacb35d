//! `realmq-client phi-sweep`: replays recorded arrival traces through the φ accrual
//! detector for a list of thresholds (Hayashibara et al. 2004, experiments 1 and 2) and
//! prints, per threshold, the mistakes and the detection time; `--svg` draws the two curves.
//!
//! The replay itself is pure and lives in `realmq_common::phi::replay`; this module reads
//! the files, prints and plots.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use plotters::prelude::*;
use realmq_common::io::LivenessArgs;
use realmq_common::phi::replay::{parse_trace, sweep, SweepRow};
use serde::{Deserialize, Serialize};

/// Flags of `phi-sweep`.
#[derive(Debug, Clone, clap::Args)]
pub struct SweepArgs {
    /// A trace: one arrival per line, in microseconds, and `# pause SINCE UNTIL` lines for
    /// the recording process's own pauses (`--record-arrivals` writes them);
    /// `-` reads standard input (e.g. `zcat trace.txt.gz | realmq-client phi-sweep --trace
    /// -`). Give it several times to add up the traces' mistakes (the detection time is the
    /// worst of them).
    #[arg(long, value_name = "FILE", required_unless_present = "plot")]
    pub trace: Vec<PathBuf>,

    /// The thresholds φ to try, comma-separated.
    #[arg(long, value_name = "LIST", value_delimiter = ',',
          default_value = "0.5,1,2,3,4,5,6,8,10,12,16",
          value_parser = realmq_common::io::cli::parse_phi)]
    pub thresholds: Vec<f64>,

    /// Print a JSON array, one object per threshold (`threshold`, `mistakes`,
    /// `mistakes_per_min`, `mistake_duration_ms`, `detection_ms`, and the settings used).
    #[arg(long)]
    pub json: bool,

    /// Draw mistakes per minute and detection time against the threshold, one line per
    /// sweep (this one, if traces are given, and each --plot file), as an SVG.
    #[arg(long, value_name = "PATH")]
    pub svg: Option<PathBuf>,

    /// The JSON output of an earlier sweep to draw in --svg (repeatable).
    #[arg(long, value_name = "JSON", requires = "svg")]
    pub plot: Vec<PathBuf>,

    /// The detector's settings, as the binaries take them; --heartbeat-interval (default
    /// 100ms) picks the recommended threshold-independent ones.
    #[command(flatten)]
    pub liveness: LivenessArgs,
}

/// One threshold's result with the settings it was measured with: a line of `--json`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    /// The threshold φ.
    pub threshold: f64,
    /// Suspicions raised while the peer was alive.
    pub mistakes: u64,
    /// `mistakes` per minute of trace.
    pub mistakes_per_min: f64,
    /// Mean duration of a mistake, ms.
    pub mistake_duration_ms: f64,
    /// From the last arrival to the suspicion, ms (worst trace).
    pub detection_ms: f64,
    /// The heartbeat interval the settings were derived from, ms.
    pub heartbeat_interval_ms: f64,
    /// The minimum standard deviation used, ms.
    pub min_std_deviation_ms: f64,
    /// The sample gap used, ms.
    pub sample_gap_ms: f64,
}

/// Runs the subcommand: replays, prints (text or JSON on stdout) and plots.
pub fn run(args: &SweepArgs) -> anyhow::Result<()> {
    let mut series = Vec::new();
    if !args.trace.is_empty() {
        let reports = sweep_files(args)?;
        let mut out = std::io::stdout().lock();
        if args.json {
            serde_json::to_writer(&mut out, &reports)?;
            println!();
        } else {
            print_table(&reports);
        }
        series.push(reports);
    }
    for path in &args.plot {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let reports: Vec<SweepReport> = serde_json::from_str(&text)
            .with_context(|| format!("{} is not the JSON of a sweep", path.display()))?;
        series.push(reports);
    }
    if let Some(svg) = &args.svg {
        write_svg(svg, &series).with_context(|| format!("cannot draw {}", svg.display()))?;
        log::info!("wrote {}", svg.display());
    }
    Ok(())
}

/// [`run`], with an error printed as one line on stderr and turned into exit status 1.
pub fn run_to_exit(args: &SweepArgs) -> std::process::ExitCode {
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

/// Reads and replays every `--trace`.
fn sweep_files(args: &SweepArgs) -> anyhow::Result<Vec<SweepReport>> {
    let interval = args.liveness.server_interval();
    let config = args.liveness.tuning().resolve(interval);
    let mut traces = Vec::new();
    for path in &args.trace {
        let text = read_text(path)?;
        let trace = parse_trace(&text).with_context(|| format!("trace {}", path.display()))?;
        traces.push(trace);
    }
    let (pauses, paused_us) = traces
        .iter()
        .flat_map(|t| &t.pauses)
        .fold((0, 0), |(n, us), p| (n + 1, us + (p.1 - p.0)));
    if pauses > 0 {
        log::info!(
            "the traces record {pauses} pause(s) of the recording process, {:.1} ms in all: \
             not counted as the peer's silence",
            paused_us as f64 / 1e3
        );
    }
    let rows = sweep(
        &traces,
        config.phi_config(),
        &args.thresholds,
        Instant::now(),
    );
    Ok(rows
        .into_iter()
        .map(|row| {
            report(
                row,
                interval,
                config.min_std_deviation,
                config.min_sample_gap,
            )
        })
        .collect())
}

fn report(row: SweepRow, interval: Duration, std: Duration, gap: Duration) -> SweepReport {
    SweepReport {
        threshold: row.threshold,
        mistakes: row.mistakes,
        mistakes_per_min: row.mistakes_per_min,
        mistake_duration_ms: row.mistake_duration_ms,
        detection_ms: row.detection_ms,
        heartbeat_interval_ms: interval.as_secs_f64() * 1e3,
        min_std_deviation_ms: std.as_secs_f64() * 1e3,
        sample_gap_ms: gap.as_secs_f64() * 1e3,
    }
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the trace from standard input")?;
    } else {
        text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the trace {}", path.display()))?;
    }
    Ok(text)
}

fn print_table(reports: &[SweepReport]) {
    if let Some(first) = reports.first() {
        println!(
            "heartbeat interval {} ms, min std deviation {} ms, sample gap {} ms",
            first.heartbeat_interval_ms, first.min_std_deviation_ms, first.sample_gap_ms
        );
    }
    println!(
        "{:>9} {:>9} {:>12} {:>14} {:>13}",
        "threshold", "mistakes", "mistakes/min", "mistake (ms)", "detection (ms)"
    );
    for r in reports {
        println!(
            "{:>9} {:>9} {:>12.3} {:>14.1} {:>13.1}",
            r.threshold, r.mistakes, r.mistakes_per_min, r.mistake_duration_ms, r.detection_ms
        );
    }
}

/// Mistake rates of zero are drawn at this value on the log scale.
const ZERO_RATE: f64 = 1e-3;

/// The paper's two curves, one line per series: mistakes per minute (log scale; zero drawn
/// at 10⁻³) and detection time (log scale) against the threshold.
fn write_svg(path: &Path, series: &[Vec<SweepReport>]) -> anyhow::Result<()> {
    let points = series.iter().flatten();
    let max_phi = points.clone().map(|r| r.threshold).fold(1.0, f64::max);
    let max_rate = points
        .clone()
        .map(|r| r.mistakes_per_min)
        .fold(1.0, f64::max);
    let (min_det, max_det) = points
        .map(|r| r.detection_ms)
        .fold((f64::MAX, 1.0f64), |a, d| {
            (a.0.min(d.max(0.01)), a.1.max(d))
        });
    let root = SVGBackend::new(path, (960, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_error)?;
    let (left, right) = root.split_horizontally(480);
    let colors = [&RED, &BLUE, &GREEN, &MAGENTA, &CYAN, &BLACK];
    let label = |s: &[SweepReport]| {
        s.first()
            .map_or(String::new(), |r| format!("{} ms", r.heartbeat_interval_ms))
    };

    let mut chart = ChartBuilder::on(&left)
        .caption("Exp. 1: mistakes per minute", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..max_phi, (ZERO_RATE..max_rate * 2.0).log_scale())
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .x_desc("threshold φ")
        .y_desc("mistakes / min (0 at 1e-3)")
        .draw()
        .map_err(draw_error)?;
    for (i, s) in series.iter().enumerate() {
        let color = colors[i % colors.len()];
        let line = s
            .iter()
            .map(|r| (r.threshold, r.mistakes_per_min.max(ZERO_RATE)));
        chart
            .draw_series(LineSeries::new(line, color))
            .map_err(draw_error)?
            .label(label(s))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(draw_error)?;

    let mut chart = ChartBuilder::on(&right)
        .caption("Exp. 2: detection time", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..max_phi, (min_det * 0.8..max_det * 1.25).log_scale())
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .x_desc("threshold φ")
        .y_desc("detection time (ms)")
        .draw()
        .map_err(draw_error)?;
    for (i, s) in series.iter().enumerate() {
        let color = colors[i % colors.len()];
        let line = s.iter().map(|r| (r.threshold, r.detection_ms.max(0.01)));
        chart
            .draw_series(LineSeries::new(line, color))
            .map_err(draw_error)?
            .label(label(s))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(draw_error)?;
    root.present().map_err(draw_error)?;
    Ok(())
}

fn draw_error<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sweep: SweepArgs,
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("realmq-sweep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn a_trace_file_is_swept_and_plotted() {
        // Heartbeats every 10 ms for 100 s, one missing.
        let trace: String = (0..10_000u64)
            .filter(|&i| i != 5000)
            .map(|i| format!("{}\n", i * 10_000))
            .collect();
        let path = temp("trace.txt");
        std::fs::write(&path, trace).unwrap();
        let cli = Cli::try_parse_from([
            "x",
            "--trace",
            path.to_str().unwrap(),
            "--thresholds",
            "1,16",
            "--heartbeat-interval",
            "10ms",
            "--min-std-deviation",
            "2ms",
        ])
        .unwrap();
        let reports = sweep_files(&cli.sweep).unwrap();
        assert_eq!(reports.len(), 2);
        assert_eq!((reports[0].threshold, reports[1].threshold), (1.0, 16.0));
        // φ = 1 is reached about 1.3 std (2.6 ms) past the 10 ms mean: the 20 ms gap is a
        // mistake; φ = 16 needs about 7 std (14 ms past the mean), so it is not.
        assert_eq!((reports[0].mistakes, reports[1].mistakes), (1, 0));
        assert!(reports[0].detection_ms < reports[1].detection_ms);
        assert_eq!(reports[0].heartbeat_interval_ms, 10.0);
        assert_eq!(reports[0].min_std_deviation_ms, 2.0);

        let json = temp("sweep.json");
        std::fs::write(&json, serde_json::to_string(&reports).unwrap()).unwrap();
        let svg = temp("sweep.svg");
        let series = vec![reports.clone(), reports];
        write_svg(&svg, &series).unwrap();
        let drawn = std::fs::read_to_string(&svg).unwrap();
        assert!(
            drawn.contains("<svg") && drawn.contains("10 ms"),
            "{drawn:.200}"
        );
    }

    #[test]
    fn bad_traces_and_lists_are_refused() {
        let path = temp("bad.txt");
        std::fs::write(&path, "10\nabc\n").unwrap();
        let cli = Cli::try_parse_from(["x", "--trace", path.to_str().unwrap()]).unwrap();
        let e = sweep_files(&cli.sweep).unwrap_err();
        assert!(format!("{e:#}").contains("line 2"), "{e:#}");
        assert!(Cli::try_parse_from(["x", "--trace", "t", "--thresholds", "1,x"]).is_err());
        assert!(Cli::try_parse_from(["x"]).is_err());
    }
}
