//! Draws the medians table of `scripts/loadtest.sh --compare` as a grouped bar chart
//! (`docs/throughput.svg`): delivered messages per second for raw UDP, RealMQ with and
//! without QoS, and TCP, per scenario, with the QoS/raw and QoS/TCP ratios in the labels.
//!
//! ```sh
//! scripts/loadtest.sh --compare | cargo run --release -p realmq-client --example compare_chart -- docs/throughput.svg
//! ```

use std::io::Read;

use anyhow::{bail, Context};
use plotters::prelude::*;

/// One scenario's medians: raw, QoS, no QoS, TCP (messages per second).
struct Row {
    name: String,
    rates: [f64; 4],
}

const MODES: [(&str, RGBColor); 4] = [
    ("raw UDP (no protocol)", RGBColor(150, 150, 150)),
    ("RealMQ with QoS", RGBColor(31, 119, 180)),
    ("RealMQ without QoS", RGBColor(174, 199, 232)),
    ("TCP", RGBColor(255, 127, 14)),
];

fn parse(text: &str) -> anyhow::Result<Vec<Row>> {
    let start = text
        .find("medians of delivered/s")
        .context("no `medians of delivered/s` table in the input: run loadtest.sh --compare")?;
    let mut rows = Vec::new();
    for line in text[start..].lines().skip(3) {
        let cells: Vec<&str> = line.split_whitespace().collect();
        if cells.len() < 5 {
            break;
        }
        let rate = |s: &str| s.replace(',', "").parse::<f64>().unwrap_or(0.0);
        rows.push(Row {
            name: cells[0].to_string(),
            rates: [
                rate(cells[1]),
                rate(cells[2]),
                rate(cells[3]),
                rate(cells[4]),
            ],
        });
    }
    if rows.is_empty() {
        bail!("the medians table has no rows");
    }
    Ok(rows)
}

fn main() -> anyhow::Result<()> {
    let out = std::env::args()
        .nth(1)
        .context("usage: compare_chart OUTPUT.svg < loadtest-output")?;
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    let rows = parse(&text)?;
    let max = rows.iter().flat_map(|r| r.rates).fold(1.0, f64::max) / 1e6;
    let root = SVGBackend::new(&out, (960, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let groups = rows.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Delivered messages per second on loopback (medians, loadtest.sh --compare)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..groups, 0.0..max * 1.15)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc("million messages per second")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    for (m, (label, color)) in MODES.iter().enumerate() {
        let bars = rows.iter().enumerate().map(|(g, r)| {
            let x0 = g as f64 + 0.1 + 0.2 * m as f64;
            Rectangle::new([(x0, 0.0), (x0 + 0.18, r.rates[m] / 1e6)], color.filled())
        });
        chart
            .draw_series(bars)?
            .label(*label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    for (g, r) in rows.iter().enumerate() {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let text = format!(
            "{}: QoS/raw {:.2}, QoS/TCP {:.2}",
            r.name,
            ratio(r.rates[1], r.rates[0]),
            ratio(r.rates[1], r.rates[3])
        );
        chart.draw_series(std::iter::once(Text::new(
            text,
            (g as f64 + 0.05, -max * 0.05),
            ("sans-serif", 13),
        )))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    eprintln!("wrote {out}");
    Ok(())
}
