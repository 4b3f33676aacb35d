//! Replaying a recorded arrival trace through the detector: Hayashibara et al.'s two
//! experiments (2004, §5), the mistake rate and the detection time against the threshold φ.
//!
//! A trace is the arrival times of a live peer's datagrams, in microseconds
//! ([`parse_trace`]; `--record-arrivals` writes them). The detector is fed every arrival, as
//! the session layer feeds it. Before each arrival, for each threshold, the silence at which
//! φ would have reached it ([`PhiAccrualDetector::silence_until`]) is compared with the gap
//! that actually came: a longer gap is a **mistake** — the peer was suspected, and the
//! arrival that ended the gap proves it was alive — which lasted from the suspicion to that
//! arrival. After the last arrival the peer is taken to have crashed: the **detection time**
//! is the silence at which φ reaches the threshold then.
//!
//! A trace may also hold the recording process's own pauses (`# pause SINCE UNTIL` lines,
//! see [`parse_trace`]): the part of a pause that falls in a gap is taken off that gap (and
//! off the interval it adds to the window), as
//! [`PeerLiveness::handle_local_pause`](crate::liveness::PeerLiveness::handle_local_pause)
//! takes it off the silence in a live session.
//!
//! The window's statistics do not depend on the threshold (every interval is recorded, see
//! [`PhiAccrualDetector`]), so one pass over the trace answers every threshold. Pure: the
//! caller supplies the `Instant` the trace's zero maps to.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::{PhiAccrualDetector, PhiConfig};

/// Why a trace could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    /// A line does not start with a whole number of microseconds.
    #[error("line {line}: not a whole number of microseconds")]
    NotANumber {
        /// The line, from 1.
        line: usize,
    },
    /// A line's time is earlier than the previous line's.
    #[error("line {line}: earlier than the line before; arrivals must be in order")]
    Decreasing {
        /// The line, from 1.
        line: usize,
    },
    /// Fewer than two arrivals: no interval to learn from.
    #[error("the trace holds {0} arrival(s); at least 2 are needed")]
    TooShort(usize),
    /// A `# pause` line is not two whole numbers of microseconds, in order, each at or after
    /// the previous pause's end.
    #[error("line {line}: a pause must be `# pause SINCE UNTIL`, SINCE ≤ UNTIL, in order")]
    BadPause {
        /// The line, from 1.
        line: usize,
    },
}

/// A recorded trace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    /// Arrival times of the peer's datagrams, in µs, non-decreasing.
    pub arrivals: Vec<u64>,
    /// The recording process's own pauses, `(since, until)` in µs, in order and not
    /// overlapping: time it could not run, which is not the peer's silence.
    pub pauses: Vec<(u64, u64)>,
}

impl From<Vec<u64>> for Trace {
    /// A trace of arrivals without pauses.
    fn from(arrivals: Vec<u64>) -> Self {
        Self {
            arrivals,
            pauses: Vec::new(),
        }
    }
}

/// Reads a trace: one arrival per line, the first field (separated by white space or a comma)
/// a whole number of microseconds, non-decreasing. Empty lines and lines starting with `#`
/// are skipped, except `# pause SINCE UNTIL`, a pause of the recording process
/// (`--record-arrivals` writes them); further fields on a line are ignored.
pub fn parse_trace(text: &str) -> Result<Trace, TraceError> {
    let mut arrivals = Vec::new();
    let mut pauses: Vec<(u64, u64)> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let t = line.trim();
        if let Some(pause) = t.strip_prefix("# pause ") {
            let mut fields = pause.split_whitespace().map(str::parse::<u64>);
            let (Some(Ok(since)), Some(Ok(until))) = (fields.next(), fields.next()) else {
                return Err(TraceError::BadPause { line: line_no });
            };
            if since > until || pauses.last().is_some_and(|&(_, end)| since < end) {
                return Err(TraceError::BadPause { line: line_no });
            }
            pauses.push((since, until));
            continue;
        }
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let field = t
            .split(|c: char| c.is_whitespace() || c == ',')
            .next()
            .unwrap_or(t);
        let micros: u64 = field
            .parse()
            .map_err(|_| TraceError::NotANumber { line: line_no })?;
        if arrivals.last().is_some_and(|&last| micros < last) {
            return Err(TraceError::Decreasing { line: line_no });
        }
        arrivals.push(micros);
    }
    if arrivals.len() < 2 {
        return Err(TraceError::TooShort(arrivals.len()));
    }
    Ok(Trace { arrivals, pauses })
}

/// What one threshold did on the replayed traces.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SweepRow {
    /// The threshold φ.
    pub threshold: f64,
    /// Suspicions raised while the peer was alive (a later arrival proves it).
    pub mistakes: u64,
    /// `mistakes` per minute of trace.
    pub mistakes_per_min: f64,
    /// Mean duration of a mistake, from the suspicion to the arrival that ended it, in ms
    /// (0 without mistakes).
    pub mistake_duration_ms: f64,
    /// From the last arrival (where the peer stops) to the suspicion, in ms; the longest over
    /// the traces.
    pub detection_ms: f64,
}

/// Replays each trace through a fresh detector with `config` (its own threshold is not used)
/// and reports, for each of `thresholds` in order, the mistakes summed over the traces and
/// the worst detection time. A gap is judged without the recording process's pauses in it.
/// `origin` is the `Instant` a trace's 0 maps to. Traces with fewer than two arrivals are
/// skipped.
pub fn sweep(
    traces: &[Trace],
    config: PhiConfig,
    thresholds: &[f64],
    origin: Instant,
) -> Vec<SweepRow> {
    let n = thresholds.len();
    let mut mistakes = vec![0u64; n];
    let mut mistake_us = vec![0u128; n];
    let mut detection_us = vec![0u64; n];
    let mut total_us: u128 = 0;
    for trace in traces.iter().filter(|t| t.arrivals.len() >= 2) {
        let arrivals = &trace.arrivals;
        total_us += u128::from(arrivals[arrivals.len() - 1] - arrivals[0]);
        let mut detector = PhiAccrualDetector::new(config);
        let at = |micros: u64| origin + Duration::from_micros(micros);
        detector.heartbeat(at(arrivals[0]));
        let mut pauses = trace.pauses.as_slice();
        for pair in arrivals.windows(2) {
            let paused = paused_within(&mut pauses, pair[0], pair[1]);
            let gap = pair[1] - pair[0] - paused;
            for (k, &threshold) in thresholds.iter().enumerate() {
                let silence = micros_of(detector.silence_until(threshold));
                if gap > silence {
                    mistakes[k] += 1;
                    mistake_us[k] += u128::from(gap - silence);
                }
            }
            detector.heartbeat_after_pause(at(pair[1]), Duration::from_micros(paused));
        }
        for (k, &threshold) in thresholds.iter().enumerate() {
            detection_us[k] = detection_us[k].max(micros_of(detector.silence_until(threshold)));
        }
    }
    let minutes = total_us as f64 / 60e6;
    (0..n)
        .map(|k| SweepRow {
            threshold: thresholds[k],
            mistakes: mistakes[k],
            mistakes_per_min: if minutes > 0.0 {
                mistakes[k] as f64 / minutes
            } else {
                0.0
            },
            mistake_duration_ms: if mistakes[k] > 0 {
                mistake_us[k] as f64 / mistakes[k] as f64 / 1e3
            } else {
                0.0
            },
            detection_ms: detection_us[k] as f64 / 1e3,
        })
        .collect()
}

/// The time in `(from, to]` during which the recording process was paused, as
/// `PeerLiveness` counts it: each pause that ends in it, from its start or `from`, whichever
/// is later. Moves `pauses` past those that end by `to`.
fn paused_within(pauses: &mut &[(u64, u64)], from: u64, to: u64) -> u64 {
    let mut paused = 0;
    while let Some((&(since, until), rest)) = pauses.split_first() {
        if until > to {
            break;
        }
        if until > from {
            paused += until - since.max(from);
        }
        *pauses = rest;
    }
    paused
}

fn micros_of(d: Option<Duration>) -> u64 {
    d.map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1000;

    /// `count` arrivals `interval_ms` apart from 0, in µs.
    fn regular(count: u64, interval_ms: u64) -> Vec<u64> {
        (0..count).map(|i| i * interval_ms * MS).collect()
    }

    fn config(min_std_ms: u64, gap_ms: u64) -> PhiConfig {
        PhiConfig {
            min_std_deviation: Duration::from_millis(min_std_ms),
            first_heartbeat_estimate: Duration::from_millis(100),
            min_sample_gap: Duration::from_millis(gap_ms),
            ..PhiConfig::default()
        }
    }

    // φ = 1.642828 is reached 2 standard deviations past the mean, φ = 2.909475 at 3
    // (the hand-computed values of the detector's tests).
    const TWO_STD: f64 = 1.642_828;
    const THREE_STD: f64 = 2.909_475;

    #[test]
    fn a_regular_trace_has_no_mistake_and_a_known_detection_time() {
        let trace = Trace::from(regular(1001, 100));
        let rows = sweep(
            &[trace],
            config(10, 0),
            &[TWO_STD, THREE_STD],
            Instant::now(),
        );
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].mistakes, rows[1].mistakes), (0, 0));
        assert_eq!(rows[0].mistakes_per_min, 0.0);
        // Mean 100 ms, std 0 floored at 10 ms: 120 ms and 130 ms.
        assert!((rows[0].detection_ms - 120.0).abs() < 0.01, "{rows:?}");
        assert!((rows[1].detection_ms - 130.0).abs() < 0.01, "{rows:?}");
    }

    #[test]
    fn one_missing_heartbeat_is_one_mistake_of_known_length() {
        // 1000 arrivals 100 ms apart, but the 500th is missing: one 200 ms gap in 99.9 s.
        let trace = gappy();
        let rows = sweep(&[trace], config(10, 0), &[TWO_STD, 100.0], Instant::now());
        assert_eq!(rows[0].mistakes, 1);
        // Suspected at 120 ms, proved wrong at 200 ms.
        assert!(
            (rows[0].mistake_duration_ms - 80.0).abs() < 0.01,
            "{rows:?}"
        );
        assert!(
            (rows[0].mistakes_per_min - 60.0 / 99.9).abs() < 1e-6,
            "{rows:?}"
        );
        // φ = 100 is about 7 standard deviations further: no mistake there.
        assert_eq!(rows[1].mistakes, 0);
        assert!(rows[1].detection_ms > rows[0].detection_ms);
    }

    #[test]
    fn traces_add_up_their_mistakes_and_keep_the_worst_detection() {
        let clean = Trace::from(regular(1000, 100));
        let both = sweep(&[gappy(), clean], config(10, 0), &[TWO_STD], Instant::now());
        let one = sweep(&[gappy()], config(10, 0), &[TWO_STD], Instant::now());
        assert_eq!(both[0].mistakes, 1);
        assert!((both[0].mistakes_per_min * 2.0 - one[0].mistakes_per_min).abs() < 1e-3);
    }

    #[test]
    fn sampling_once_per_interval_survives_the_end_of_a_burst() {
        // A second of traffic (one arrival per ms), then heartbeats every 100 ms: with every
        // arrival sampled, the window holds 1 ms intervals and the first heartbeat gap is a
        // mistake, and so are the next ones until 100 ms intervals dominate the window;
        // sampled at most every 50 ms, none is.
        let mut trace: Vec<u64> = (0..1000).map(|i| i * MS).collect();
        trace.extend((1..=100).map(|i| 999 * MS + i * 100 * MS));
        let trace = Trace::from(trace);
        let every = sweep(
            std::slice::from_ref(&trace),
            config(10, 0),
            &[THREE_STD],
            Instant::now(),
        );
        let sampled = sweep(&[trace], config(10, 50), &[THREE_STD], Instant::now());
        assert!(every[0].mistakes >= 1, "{every:?}");
        assert_eq!(sampled[0].mistakes, 0, "{sampled:?}");
    }

    /// 1000 arrivals 100 ms apart, but the 500th is missing: one 200 ms gap in 99.9 s.
    fn gappy() -> Trace {
        Trace::from(
            regular(1000, 100)
                .into_iter()
                .filter(|&t| t != 500 * 100 * MS)
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn a_gap_the_recorder_slept_through_is_no_mistake() {
        // The 200 ms gap, but the recording process itself was paused for 150 ms of it
        // (from 10 ms before the gap began, which does not count): 60 ms of silence remain.
        let mut trace = gappy();
        trace.pauses = vec![(20 * MS, 30 * MS), (49_890 * MS, 50_040 * MS)];
        let rows = sweep(&[trace], config(10, 0), &[TWO_STD], Instant::now());
        assert_eq!(rows[0].mistakes, 0, "{rows:?}");
        // A pause that ends after the gap's arrival belongs to the next gap.
        let mut late = gappy();
        late.pauses = vec![(49_950 * MS, 50_150 * MS)];
        let rows = sweep(&[late], config(10, 0), &[TWO_STD], Instant::now());
        assert_eq!(rows[0].mistakes, 1, "{rows:?}");
    }

    proptest::proptest! {
        /// Hostile trace files: an error or a trace, never a panic, and what parses obeys
        /// the format's rules.
        #[test]
        fn any_text_parses_or_is_refused(
            lines in proptest::collection::vec(
                "(# pause [0-9]{1,21} [0-9]{1,21}|# pause .{0,12}|[0-9]{1,21}( .{0,6})?|.{0,12})",
                0..40,
            )
        ) {
            if let Ok(trace) = parse_trace(&lines.join("\n")) {
                proptest::prop_assert!(trace.arrivals.len() >= 2);
                proptest::prop_assert!(trace.arrivals.windows(2).all(|w| w[0] <= w[1]));
                proptest::prop_assert!(trace.pauses.iter().all(|&(a, b)| a <= b));
                proptest::prop_assert!(trace.pauses.windows(2).all(|w| w[0].1 <= w[1].0));
                let _ = sweep(&[trace], config(10, 0), &[1.0, 16.0], Instant::now());
            }
        }
    }

    #[test]
    fn traces_parse_with_comments_pauses_and_extra_fields() {
        assert_eq!(
            parse_trace("# a trace\n10\n\n20 7\n# pause 21 25\n30,x\n"),
            Ok(Trace {
                arrivals: vec![10, 20, 30],
                pauses: vec![(21, 25)],
            })
        );
        for bad in ["# pause 5", "# pause 9 5", "# pause 1 5\n# pause 4 6"] {
            let text = format!("1\n2\n{bad}\n");
            let line = 2 + bad.lines().count();
            assert_eq!(
                parse_trace(&text),
                Err(TraceError::BadPause { line }),
                "{bad}"
            );
        }
        assert_eq!(
            parse_trace("10\nten\n"),
            Err(TraceError::NotANumber { line: 2 })
        );
        assert_eq!(
            parse_trace("10\n5\n"),
            Err(TraceError::Decreasing { line: 2 })
        );
        assert_eq!(parse_trace("10\n"), Err(TraceError::TooShort(1)));
        assert_eq!(
            parse_trace("-3\n4\n"),
            Err(TraceError::NotANumber { line: 1 })
        );
    }
}
