//! One report per session, as iperf3 prints per stream: messages, duration, rate, one-way
//! latency percentiles, loss and duplicates, logged when the session ends and kept for the
//! JSON summary.
//!
//! Memory is bounded by configuration: per-session latency histograms (2 significant
//! figures, 32-bit counts: about 12 KiB each) exist only for open sessions and for at most
//! [`MAX_TRACKED`] of them at once; at most [`MAX_REPORTS`] finished reports are kept (the
//! oldest are dropped and counted).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use hdrhistogram::Histogram;
use realmq_common::stats::{per_second, LatencySummary, LATENCY_HIGH_US, LATENCY_LOW_US};
use serde::Serialize;

/// Most sessions tracked with their own latency histogram at once.
pub(crate) const MAX_TRACKED: usize = 1024;
/// Most finished session reports kept for the summary.
pub(crate) const MAX_REPORTS: usize = 1024;

/// What one session did, reported when it ended.
#[derive(Debug, Clone, Serialize)]
pub struct SessionReport {
    /// The session id.
    pub session_id: u32,
    /// The client's address.
    pub peer: String,
    /// `bye` (the client closed it), `evicted` (the client fell silent) or `closed` (TCP).
    pub end: &'static str,
    /// Distinct messages delivered.
    pub received: u64,
    /// Copies dropped (`null` for TCP, which never delivers copies).
    pub duplicates: Option<u64>,
    /// What the client said it sent (its STOP), `null` when it did not say.
    pub client_sent: Option<u64>,
    /// `client_sent - received`, when known.
    pub lost: Option<u64>,
    /// `lost` in percent of `client_sent`, when known.
    pub loss_pct: Option<f64>,
    /// From the session's first delivered message to its last, in seconds.
    pub duration_s: f64,
    /// `received / duration_s`.
    pub msgs_per_s: f64,
    /// One-way latency, µs (`null` if the session was not tracked: more than
    /// `MAX_TRACKED`, 1,024, open at once).
    pub latency_us: Option<LatencySummary>,
    /// The client's clock minus the server's, µs, by which the session's send times were
    /// corrected (0: the client's estimate could not be told from zero); `null` when the
    /// client sent no estimate (TCP, raw).
    pub clock_offset_us: Option<i64>,
}

/// How a session ended, and what the session layer counted.
#[derive(Debug, Clone, Copy)]
pub struct SessionEnd {
    /// `bye`, `evicted` or `closed`.
    pub end: &'static str,
    /// Distinct messages delivered.
    pub received: u64,
    /// Copies dropped, if the transport can have them.
    pub duplicates: Option<u64>,
    /// The client's own count, if it gave one.
    pub client_sent: Option<u64>,
    /// The clock offset applied to the session's send times, if the client estimated one.
    pub clock_offset_us: Option<i64>,
}

#[derive(Debug)]
struct Open {
    first: Option<Instant>,
    last: Option<Instant>,
    histogram: Option<Histogram<u32>>,
}

/// Per-session measurements and the finished reports.
#[derive(Debug, Default)]
pub(crate) struct SessionBook {
    open: HashMap<u32, Open>,
    tracked: usize,
    /// The record of the previous message's session, taken out of `open` so the messages
    /// that follow it in the same datagram skip the map lookup.
    current: Option<(u32, Open)>,
    reports: VecDeque<SessionReport>,
    dropped_reports: u64,
}

impl SessionBook {
    /// Records `n` messages of `session_id` delivered at `now` with one-way `latency_us`.
    pub(crate) fn on_messages(&mut self, now: Instant, session_id: u32, latency_us: u64, n: u64) {
        if self
            .current
            .as_ref()
            .is_none_or(|(id, _)| *id != session_id)
        {
            self.check_out(session_id);
        }
        let Some((_, open)) = &mut self.current else {
            return;
        };
        open.first.get_or_insert(now);
        open.last = Some(now);
        if let Some(h) = &mut open.histogram {
            h.saturating_record_n(
                latency_us.min(LATENCY_HIGH_US),
                u32::try_from(n).unwrap_or(u32::MAX),
            );
        }
    }

    /// Makes `session_id`'s record the current one (creating it), putting the previous back.
    fn check_out(&mut self, session_id: u32) {
        if let Some((id, open)) = self.current.take() {
            self.open.insert(id, open);
        }
        let tracked = &mut self.tracked;
        let open = self.open.remove(&session_id).unwrap_or_else(|| {
            let histogram = (*tracked < MAX_TRACKED).then(|| {
                *tracked += 1;
                // Constant bounds valid for `new_with_bounds`.
                Histogram::new_with_bounds(LATENCY_LOW_US, LATENCY_HIGH_US, 2)
                    .expect("constant histogram bounds are valid")
            });
            Open {
                first: None,
                last: None,
                histogram,
            }
        });
        self.current = Some((session_id, open));
    }

    /// The session ended: builds, logs and keeps its report.
    pub(crate) fn on_close(&mut self, session_id: u32, peer: SocketAddr, end: SessionEnd) {
        let open = match self.current.take() {
            Some((id, open)) if id == session_id => Some(open),
            other => {
                self.current = other;
                self.open.remove(&session_id)
            }
        };
        if open.as_ref().is_some_and(|o| o.histogram.is_some()) {
            self.tracked -= 1;
        }
        let (duration, latency) = match &open {
            Some(o) => (
                match (o.first, o.last) {
                    (Some(a), Some(b)) => b.saturating_duration_since(a),
                    _ => Default::default(),
                },
                o.histogram.as_ref().map(LatencySummary::from_histogram),
            ),
            None => (Default::default(), None),
        };
        let lost = end.client_sent.map(|s| s.saturating_sub(end.received));
        let report = SessionReport {
            session_id,
            peer: peer.to_string(),
            end: end.end,
            received: end.received,
            duplicates: end.duplicates,
            client_sent: end.client_sent,
            lost,
            loss_pct: lost.zip(end.client_sent).map(|(l, s)| {
                if s == 0 {
                    0.0
                } else {
                    100.0 * l as f64 / s as f64
                }
            }),
            duration_s: duration.as_secs_f64(),
            msgs_per_s: per_second(end.received, duration),
            latency_us: latency,
            clock_offset_us: end.clock_offset_us,
        };
        log::info!("{}", one_line(&report));
        if self.reports.len() == MAX_REPORTS {
            self.reports.pop_front();
            self.dropped_reports += 1;
        }
        self.reports.push_back(report);
    }

    /// The finished reports, oldest first, and how many older ones were dropped.
    pub(crate) fn reports(&self) -> (Vec<SessionReport>, u64) {
        (self.reports.iter().cloned().collect(), self.dropped_reports)
    }
}

/// The report as one log line.
fn one_line(r: &SessionReport) -> String {
    let mut line = format!(
        "session {} ({}) {}: {} messages in {:.3} s ({:.0} msgs/s)",
        r.session_id, r.peer, r.end, r.received, r.duration_s, r.msgs_per_s
    );
    if let (Some(lost), Some(pct)) = (r.lost, r.loss_pct) {
        line += &format!(", lost {lost} ({pct:.2} %)");
    }
    if let Some(d) = r.duplicates {
        line += &format!(", {d} duplicates");
    }
    if let Some(l) = &r.latency_us {
        line += &format!(
            ", one-way µs p50 {} p99 {} p99.9 {} max {}",
            l.p50, l.p99, l.p999, l.max
        );
    }
    if let Some(offset) = r.clock_offset_us.filter(|&o| o != 0) {
        line += &format!(" (client clock {offset:+} µs off, corrected)");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_session_report_has_its_rate_loss_and_latency() {
        let t0 = Instant::now();
        let mut book = SessionBook::default();
        for i in 0..100u64 {
            book.on_messages(t0 + Duration::from_millis(10 * i), 7, 100 + i, 1);
        }
        book.on_messages(t0, 8, 5, 1);
        let end = SessionEnd {
            end: "bye",
            received: 100,
            duplicates: Some(3),
            client_sent: Some(104),
            clock_offset_us: Some(-5_000_123),
        };
        book.on_close(7, "127.0.0.1:9".parse().unwrap(), end);
        let (reports, dropped) = book.reports();
        assert_eq!((reports.len(), dropped), (1, 0));
        let r = &reports[0];
        assert_eq!((r.received, r.lost, r.duplicates), (100, Some(4), Some(3)));
        assert!((r.loss_pct.unwrap() - 3.846).abs() < 0.01);
        assert!((r.duration_s - 0.99).abs() < 1e-9);
        let l = r.latency_us.unwrap();
        assert_eq!((l.count, l.min), (100, 100));
        assert!(l.max >= 199 && l.max <= 201, "{}", l.max);
        assert_eq!(r.clock_offset_us, Some(-5_000_123));
        assert!(one_line(r).ends_with("(client clock -5000123 µs off, corrected)"));
        assert_eq!(book.tracked, 1, "session 8 is still open");
        book.on_close(8, "127.0.0.1:9".parse().unwrap(), end);
        assert_eq!(book.tracked, 0);
        assert_eq!(book.reports().0[1].latency_us.unwrap().count, 1);
    }

    #[test]
    fn reports_and_histograms_are_bounded() {
        let t0 = Instant::now();
        let mut book = SessionBook::default();
        for s in 0..(MAX_TRACKED as u32 + 10) {
            book.on_messages(t0, s, 1, 1);
        }
        assert_eq!(book.tracked, MAX_TRACKED);
        for s in 0..(MAX_REPORTS as u32 + 5) {
            let end = SessionEnd {
                end: "closed",
                received: 1,
                duplicates: None,
                client_sent: None,
                clock_offset_us: None,
            };
            book.on_close(s, "127.0.0.1:9".parse().unwrap(), end);
        }
        let (reports, dropped) = book.reports();
        assert_eq!((reports.len() as u64, dropped), (MAX_REPORTS as u64, 5));
        assert!(reports.iter().all(|r| r.lost.is_none()));
    }
}
