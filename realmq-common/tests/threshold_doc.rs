//! docs/THRESHOLD.md's table of recommended settings is the one the binaries use:
//! `RECOMMENDED_LIVENESS`, row for row.

use std::path::Path;
use std::time::Duration;

use realmq_common::config::RECOMMENDED_LIVENESS;

#[test]
fn the_recommended_table_in_the_doc_is_the_one_in_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/THRESHOLD.md");
    let doc = std::fs::read_to_string(path).expect("docs/THRESHOLD.md");
    let section = doc
        .split("## Recommended settings")
        .nth(1)
        .expect("a `## Recommended settings` section");
    // Rows of the first table: `| interval | threshold | min std (ms) | ... |`.
    let rows: Vec<(u64, f64, f64)> = section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            Some((
                cells.get(1)?.parse().ok()?,
                cells.get(2)?.parse().ok()?,
                cells.get(3)?.parse().ok()?,
            ))
        })
        .collect();
    assert_eq!(rows.len(), RECOMMENDED_LIVENESS.len(), "{rows:?}");
    for (row, code) in rows.iter().zip(RECOMMENDED_LIVENESS) {
        assert_eq!(Duration::from_millis(row.0), code.heartbeat_interval);
        assert_eq!(row.1, code.phi_threshold, "interval {} ms", row.0);
        assert_eq!(
            Duration::from_secs_f64(row.2 / 1e3),
            code.min_std_deviation,
            "interval {} ms",
            row.0
        );
    }
}
