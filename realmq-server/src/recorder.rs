//! What the server measures per delivered message, whatever the transport: the latency
//! histogram, the first and last delivery times, the stats files, and the progress line.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use realmq_common::stats::{
    latency_histogram, one_way_latency_us, per_second, record_latency_us_n,
};

use realmq_common::payload_stamp::{RunCheck, StampCheck, StampChecker};
use realmq_proto::MessageRun;

use crate::sessions::{SessionBook, SessionEnd, SessionReport};
use crate::sink::StatsSink;
use crate::timeline::Timeline;
use std::net::SocketAddr;

/// Counters both transports keep, for progress lines and the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Unique messages delivered.
    pub received: u64,
    /// Copies of already delivered messages (UDP: resends that crossed an ACK).
    pub duplicates: u64,
    /// Datagrams (UDP) or frames (TCP) that failed to parse.
    pub malformed: u64,
    /// Messages delivered after a higher ID of their session.
    pub out_of_order: u64,
    /// Sessions ever opened.
    pub sessions_total: u64,
    /// Sessions open now.
    pub sessions_open: u64,
    /// Sessions that ended (closed by the client or declared dead).
    pub sessions_ended: u64,
    /// Delivered payloads that carried the load client's stamp (session, ID, CRC-32; see
    /// `realmq_common::payload_stamp`) and were checked.
    pub stamped: u64,
    /// Stamped payloads that did not match the session and ID they were delivered under,
    /// or whose checksum failed. Expected 0.
    pub corrupt: u64,
}

/// Latency histogram, delivery times and stats files of one server run.
#[derive(Debug)]
pub struct Recorder {
    histogram: Histogram<u64>,
    timeline: Timeline,
    sink: Option<StatsSink>,
    sink_error: Option<anyhow::Error>,
    first: Option<Instant>,
    last: Option<Instant>,
    progress: Progress,
    /// Checks payload stamps, hashing a body shared by consecutive messages once.
    checker: StampChecker,
    stamped: u64,
    corrupt: u64,
    sessions: SessionBook,
    warmup: Duration,
    /// Deliveries not yet in the histograms: a run of messages alike in what is recorded
    /// (the messages of one datagram usually are). Recorded by [`Recorder::flush`].
    run: Option<Run>,
}

/// Consecutive deliveries with the same clock reading, session, latency and warm-up status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    now: Instant,
    session_id: u32,
    latency_us: u64,
    /// Past the warm-up: into the histograms (the timeline takes every message).
    counted: bool,
    messages: u64,
}

impl Recorder {
    /// A recorder writing per-message records to `sink`, if any.
    pub fn new(sink: Option<StatsSink>, now: Instant) -> Self {
        Self {
            histogram: latency_histogram(),
            timeline: Timeline::default(),
            sink,
            sink_error: None,
            first: None,
            last: None,
            progress: Progress::new(now),
            checker: StampChecker::new(),
            stamped: 0,
            corrupt: 0,
            sessions: SessionBook::default(),
            warmup: Duration::ZERO,
            run: None,
        }
    }

    /// Checks a delivered payload's stamp against the session and ID it was delivered
    /// under (see `realmq_common::payload_stamp`). Inlined into the serving loops, as
    /// [`on_message`](Self::on_message) is; a corrupt payload is counted out of line.
    #[inline(always)]
    pub fn check_payload(&mut self, session_id: u32, id: u64, payload: &[u8]) {
        let check = self.checker.check(payload, session_id, id);
        self.count_check(session_id, id, check);
    }

    /// Checks a payload of a mode without IDs (raw): intact or not, whatever it names.
    #[inline(always)]
    pub fn check_integrity(&mut self, payload: &[u8]) {
        let check = self.checker.check_integrity(payload);
        self.count_check(0, self.stamped, check);
    }

    /// Checks the payloads of a run of messages delivered in session `session_id`, as
    /// [`check_payload`](Self::check_payload) would one by one, in one loop
    /// (`StampChecker::check_run`).
    #[inline(always)]
    pub fn check_run(&mut self, session_id: u32, run: &MessageRun<'_>) {
        let found = self.checker.check_run(run, session_id);
        self.count_run(session_id, found);
    }

    /// Checks the payloads of a run of a mode without IDs (raw) for integrity, as
    /// [`check_integrity`](Self::check_integrity) would one by one, in one loop.
    #[inline(always)]
    pub fn check_run_integrity(&mut self, run: &MessageRun<'_>) {
        let found = self.checker.check_run_integrity(run);
        self.count_run(0, found);
    }

    #[inline(always)]
    fn count_run(&mut self, session_id: u32, found: RunCheck) {
        self.stamped += found.checked;
        if let Some(id) = found.first_corrupt {
            self.count_corrupt(session_id, id, found.corrupt);
        }
    }

    #[inline(always)]
    fn count_check(&mut self, session_id: u32, id: u64, check: StampCheck) {
        match check {
            StampCheck::Unstamped => {}
            StampCheck::Intact => self.stamped += 1,
            StampCheck::Corrupt => {
                self.stamped += 1;
                self.count_corrupt(session_id, id, 1);
            }
        }
    }

    /// Counts `corrupt` corrupt payloads, the first of them message `id`'s (already counted
    /// as stamped).
    #[cold]
    #[inline(never)]
    fn count_corrupt(&mut self, session_id: u32, id: u64, corrupt: u64) {
        if self.corrupt == 0 {
            log::error!(
                "session {session_id}: message {id} delivered with a payload that is not its own"
            );
        }
        self.corrupt += corrupt;
    }

    /// Payloads checked, and how many of them were corrupt.
    pub fn stamp_counts(&self) -> (u64, u64) {
        (self.stamped, self.corrupt)
    }

    /// Records one delivered message: `now` is the loop's clock, `now_unix_us` the wall
    /// clock read for the datagram (or read) that carried it. The histograms see it at the
    /// next [`flush`](Self::flush) (messages alike are recorded together: one histogram
    /// update per run instead of three per message).
    ///
    /// A message that continues the pending run (same clock reading, session and latency)
    /// only counts it: that check is all that is inlined into the serving loops; starting a
    /// run is out of line. Called through the UDP loop's closures, the whole function was a
    /// call per message whose register saves were half its instructions (callgrind,
    /// `docs/BENCHMARKS.md`).
    #[inline(always)]
    pub fn on_message(
        &mut self,
        now: Instant,
        now_unix_us: u64,
        session_id: u32,
        id: u64,
        sent_unix_us: u64,
    ) {
        self.on_messages(now, now_unix_us, session_id, id..id + 1, sent_unix_us);
    }

    /// Records the messages `ids`, delivered together, sent at `sent_unix_us`: as
    /// [`on_message`](Self::on_message) for each, with one look at the pending run.
    #[inline(always)]
    pub fn on_messages(
        &mut self,
        now: Instant,
        now_unix_us: u64,
        session_id: u32,
        ids: std::ops::Range<u64>,
        sent_unix_us: u64,
    ) {
        let latency_us = one_way_latency_us(now_unix_us, sent_unix_us);
        let count = ids.end - ids.start;
        match &mut self.run {
            // The same `now` as the run's start: the warm-up verdict and `last` are the
            // run's too.
            Some(run)
                if run.now == now
                    && run.session_id == session_id
                    && run.latency_us == latency_us =>
            {
                run.messages += count;
            }
            _ => self.start_run(now, session_id, latency_us, count),
        }
        if self.sink.is_some() {
            for id in ids {
                self.record_in_sink(session_id, id, latency_us);
            }
        }
    }

    /// Flushes the pending run and starts one with these `messages`.
    #[inline(never)]
    fn start_run(&mut self, now: Instant, session_id: u32, latency_us: u64, messages: u64) {
        let first = *self.first.get_or_insert(now);
        // `--warmup`: the first deliveries are counted but left out of the latencies.
        // (Compared only when a warm-up is set: `Instant` arithmetic per message showed up at
        // 4 % of the server's time in a profile.)
        let counted = self.warmup.is_zero() || now.saturating_duration_since(first) >= self.warmup;
        self.last = Some(now);
        self.flush();
        self.run = Some(Run {
            now,
            session_id,
            latency_us,
            counted,
            messages,
        });
    }

    /// Writes one message's record to the stats files.
    #[inline(never)]
    fn record_in_sink(&mut self, session_id: u32, id: u64, latency_us: u64) {
        if let Some(sink) = &mut self.sink {
            if let Err(e) = sink.record(session_id, id, latency_us) {
                self.disable_sink(e);
            }
        }
    }

    /// Puts the pending run of deliveries into the histograms. The serving loops call it
    /// after every read; the readers below and the summary see flushed state.
    pub fn flush(&mut self) {
        let Some(run) = self.run.take() else {
            return;
        };
        if run.counted {
            record_latency_us_n(&mut self.histogram, run.latency_us, run.messages);
            self.sessions
                .on_messages(run.now, run.session_id, run.latency_us, run.messages);
        }
        self.timeline.record(run.now, run.latency_us, run.messages);
    }

    /// The next instant [`Recorder::handle_timeout`] has work: a flush or a progress line.
    pub fn poll_timeout(&self) -> Instant {
        let progress = self.progress.next;
        self.sink
            .as_ref()
            .map_or(progress, |s| s.poll_timeout().min(progress))
    }

    /// Flushes the stats files and logs the progress line when they are due.
    pub fn handle_timeout(&mut self, now: Instant, counters: &Counters) {
        self.flush();
        if let Some(sink) = &mut self.sink {
            if let Err(e) = sink.handle_timeout(now) {
                self.disable_sink(e);
            }
        }
        if let Some(rate) = self.progress.handle_timeout(now, counters.received) {
            log::info!(
                "{rate:.0} msgs/s, {} received, {} open sessions, {} duplicates, {} malformed",
                counters.received,
                counters.sessions_open,
                counters.duplicates,
                counters.malformed
            );
        }
    }

    /// Leaves the latencies of messages delivered in the first `warmup` after the first one
    /// out of the histograms (they are still counted).
    pub(crate) fn set_warmup(&mut self, warmup: Duration) {
        self.warmup = warmup;
    }

    /// A session ended: its report is logged and kept.
    pub fn on_session_closed(&mut self, session_id: u32, peer: SocketAddr, end: SessionEnd) {
        self.flush();
        self.sessions.on_close(session_id, peer, end);
    }

    /// The finished sessions' reports, oldest first, and how many older ones were dropped.
    pub fn session_reports(&self) -> (Vec<SessionReport>, u64) {
        self.sessions.reports()
    }

    /// The latency histogram (µs).
    pub fn histogram(&self) -> &Histogram<u64> {
        debug_assert!(self.run.is_none(), "read before flush");
        &self.histogram
    }

    /// Latency per time bucket since the first message.
    pub(crate) fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// Time from the first to the last delivered message (zero before two deliveries).
    pub fn active_duration(&self) -> Duration {
        match (self.first, self.last) {
            (Some(first), Some(last)) => last - first,
            _ => Duration::ZERO,
        }
    }

    /// Flushes and closes the stats files. Returns (records, files) written, `None` without
    /// a stats dir, or the first write error of the run.
    pub fn finish_sink(&mut self) -> anyhow::Result<Option<(u64, u32)>> {
        if let Some(e) = self.sink_error.take() {
            return Err(e);
        }
        self.sink.take().map(StatsSink::finish).transpose()
    }

    fn disable_sink(&mut self, e: anyhow::Error) {
        log::error!("{e:#}; no more stats records are written");
        self.sink = None;
        self.sink_error.get_or_insert(e);
    }
}

/// Once-a-second progress: the message rate since the last line.
#[derive(Debug)]
struct Progress {
    next: Instant,
    last_at: Instant,
    last_count: u64,
}

impl Progress {
    const EVERY: Duration = Duration::from_secs(1);

    fn new(now: Instant) -> Self {
        Self {
            next: now + Self::EVERY,
            last_at: now,
            last_count: 0,
        }
    }

    /// The rate since the previous line, if a line is due.
    fn handle_timeout(&mut self, now: Instant, count: u64) -> Option<f64> {
        if now < self.next {
            return None;
        }
        let rate = per_second(count - self.last_count, now - self.last_at);
        self.next = now + Self::EVERY;
        self.last_at = now;
        self.last_count = count;
        Some(rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reports_the_rate_once_per_second() {
        let t0 = Instant::now();
        let mut p = Progress::new(t0);
        assert_eq!(p.handle_timeout(t0 + Duration::from_millis(999), 500), None);
        assert_eq!(
            p.handle_timeout(t0 + Duration::from_secs(1), 1_000),
            Some(1_000.0)
        );
        assert_eq!(p.next, t0 + Duration::from_secs(2));
        assert_eq!(
            p.handle_timeout(t0 + Duration::from_secs(3), 5_000),
            Some(2_000.0)
        );
    }

    #[test]
    fn duration_spans_first_to_last_message() {
        let t0 = Instant::now();
        let mut r = Recorder::new(None, t0);
        assert_eq!(r.active_duration(), Duration::ZERO);
        r.on_message(t0 + Duration::from_secs(5), 1_100, 1, 0, 1_000);
        r.on_message(t0 + Duration::from_secs(7), 2_300, 1, 1, 2_000);
        r.flush();
        assert_eq!(r.active_duration(), Duration::from_secs(2));
        assert_eq!(r.histogram().len(), 2);
        assert_eq!(r.histogram().max(), 300);
        assert!(r.finish_sink().unwrap().is_none());
    }

    #[test]
    fn a_run_of_alike_messages_is_recorded_whole_and_a_change_starts_another() {
        let t0 = Instant::now();
        let mut r = Recorder::new(None, t0);
        for id in 0..21 {
            r.on_message(t0, 1_050, 4, id, 1_000); // one datagram: 50 µs each
        }
        r.on_message(t0, 1_050, 5, 0, 1_000); // another session, alike otherwise
        r.on_message(t0, 1_070, 5, 1, 1_000); // another latency
        r.flush();
        let h = r.histogram();
        assert_eq!(h.len(), 23);
        assert_eq!(h.count_at(50), 22);
        assert_eq!(h.count_at(70), 1);
        assert_eq!(r.timeline().total(), 23);
        r.on_session_closed(
            4,
            "127.0.0.1:1".parse().unwrap(),
            crate::sessions::SessionEnd {
                end: "bye",
                received: 21,
                duplicates: Some(0),
                client_sent: Some(21),
                clock_offset_us: None,
            },
        );
        let (reports, _) = r.session_reports();
        // Session 5's first message did not join session 4's run.
        assert_eq!(reports[0].latency_us.as_ref().map(|l| l.count), Some(21));
    }

    #[test]
    fn messages_recorded_together_count_as_each_one_would() {
        let t0 = Instant::now();
        let (mut whole, mut each) = (Recorder::new(None, t0), Recorder::new(None, t0));
        let batches = [
            (1_050, 4, 0..21),
            (1_050, 4, 21..30),
            (1_070, 5, 0..3),
            (1_070, 5, 3..4),
        ];
        for (now_unix_us, session, ids) in batches {
            whole.on_messages(t0, now_unix_us, session, ids.clone(), 1_000);
            for id in ids {
                each.on_message(t0, now_unix_us, session, id, 1_000);
            }
        }
        whole.flush();
        each.flush();
        assert_eq!(whole.histogram(), each.histogram());
        assert_eq!(whole.histogram().count_at(50), 30);
        assert_eq!(whole.timeline().total(), 34);
    }

    #[test]
    fn a_run_with_corrupt_payloads_counts_them_all() {
        let t0 = Instant::now();
        let mut r = Recorder::new(None, t0);
        let mut bytes = Vec::new();
        for id in 10..15 {
            let mut p = vec![3u8; 64];
            realmq_common::payload_stamp::write_stamp(&mut p, 7, id);
            bytes.extend(p);
        }
        bytes[64 + 40] ^= 1; // message 11's body
        bytes[3 * 64 + 9] ^= 1; // message 13's ID
        let run = MessageRun::new(10, 0, 5, (64, 64), &bytes).unwrap();
        r.check_run(7, &run);
        assert_eq!(r.stamp_counts(), (5, 2));
    }
}
