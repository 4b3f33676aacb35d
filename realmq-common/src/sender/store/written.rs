//! [`WrittenRuns`]: messages written once and still without records of their own.
//!
//! A datagram's new messages stored in their wire form (the window's small ones) are
//! consecutive, stored alike back to back, and share their transmission number, send time
//! and timestamp: one [`WrittenRun`] describes them all, and every record [`Entry`] would
//! hold follows from it by arithmetic. Acknowledged together, as they are without loss, a
//! run is marked and summed whole; only when one of its messages must change alone (lost,
//! resent, acknowledged apart from the rest) does the window give the run's messages their
//! records ([`Window::make_records_through`]). A 48-byte record made for each message when
//! it was written and read back when it was acknowledged had been a sixth of the load
//! client's instructions with 64-byte messages (`docs/BENCHMARKS.md`).
//!
//! [`Window::make_records_through`]: super::Window::make_records_through

use std::collections::VecDeque;

use super::{Entry, FirstTransmissions, Span, State};
use crate::sender::sent_time::SentTime;

/// Consecutive messages first written in one datagram, stored alike back to back: message
/// `first_id + k` is stored at [`Span::after`]`(k)` of `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::sender) struct WrittenRun {
    pub(super) first_id: u64,
    pub(super) first: Span,
    /// How many, at least one.
    pub(super) count: usize,
    pub(super) timestamp_us: u64,
    /// The datagram's transmission number and when it was written.
    pub(super) tx: u64,
    pub(super) sent_time: SentTime,
    /// In flight, or acknowledged (all of them, by one ACK range).
    pub(super) state: State,
}

impl WrittenRun {
    /// The ID after the last one.
    fn end_id(&self) -> u64 {
        self.first_id + self.count as u64
    }

    /// The record of the run's message `k`.
    pub(super) fn record(&self, k: usize) -> Entry {
        Entry::first_write(
            self.first.after(k),
            self.timestamp_us,
            (self.tx, self.sent_time),
            self.state,
        )
    }

    /// Whether `next`, written right after this run, continues it: the same datagram and
    /// timestamp, stored right behind its last message, and still in flight with it.
    fn continues_with(&self, next: &WrittenRun) -> bool {
        // The transmission first: runs of different datagrams, the common miss, stop there.
        self.tx == next.tx
            && (self.sent_time, self.timestamp_us) == (next.sent_time, next.timestamp_us)
            && self.state == State::InFlight
            && next.state == State::InFlight
            && self.first.after(self.count) == next.first
    }
}

/// The written runs of a window, in ID order, their IDs consecutive.
#[derive(Debug)]
pub(in crate::sender) struct WrittenRuns {
    runs: VecDeque<WrittenRun>,
    /// How many messages they hold.
    len: usize,
}

impl WrittenRuns {
    /// Room for `capacity` runs, allocated now: a window of that many messages never needs
    /// more (each run holds one at least).
    pub(super) fn with_capacity(capacity: usize) -> Self {
        Self {
            runs: VecDeque::with_capacity(capacity),
            len: 0,
        }
    }

    /// How many messages the runs hold.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The oldest run.
    pub(super) fn front(&self) -> Option<&WrittenRun> {
        self.runs.front()
    }

    /// Appends `run`, whose first ID follows the last run's; it joins that run when it
    /// continues it.
    pub(super) fn push(&mut self, run: WrittenRun) {
        debug_assert!(self
            .runs
            .back()
            .is_none_or(|last| last.end_id() == run.first_id));
        self.len += run.count;
        if let Some(last) = self.runs.back_mut() {
            if last.continues_with(&run) {
                last.count += run.count;
                return;
            }
        }
        // Never allocates: the window holds at most `capacity` messages.
        self.runs.push_back(run);
    }

    /// Removes and returns the oldest run.
    pub(super) fn pop_front(&mut self) -> Option<WrittenRun> {
        let run = self.runs.pop_front()?;
        self.len -= run.count;
        Some(run)
    }

    /// The index of the run holding `id`, if one does.
    fn index_of(&self, id: u64) -> Option<usize> {
        let front = self.runs.front()?;
        if id < front.first_id {
            return None;
        }
        // The oldest run is where ACKs and loss detection look most.
        if id < front.end_id() {
            return Some(0);
        }
        let index = self.runs.partition_point(|run| run.end_id() <= id);
        (index < self.runs.len()).then_some(index)
    }

    /// The record of `id`, if a run holds it.
    pub(super) fn record(&self, id: u64) -> Option<Entry> {
        let run = &self.runs[self.index_of(id)?];
        Some(run.record((id - run.first_id) as usize))
    }

    /// Acknowledges the `count` messages from `first` on if they are whole runs, all in
    /// flight, and returns what they add up to; otherwise changes nothing and returns `None`
    /// (the window then takes them record by record).
    pub(super) fn acknowledge(&mut self, first: u64, count: usize) -> Option<FirstTransmissions> {
        let start = self.index_of(first)?;
        let end = first + count as u64;
        let head = &self.runs[start];
        if head.first_id != first {
            return None;
        }
        let mut sum = FirstTransmissions {
            payload_bytes: 0,
            lowest_tx: head.tx,
            highest: (head.tx, head.sent_time),
        };
        let mut last = start;
        loop {
            let run = self.runs.get(last)?;
            if run.state != State::InFlight || run.end_id() > end {
                return None;
            }
            sum.payload_bytes += run.count * run.first.len();
            // Runs are first transmissions in ID order: their numbers never fall.
            if run.tx > sum.highest.0 {
                sum.highest = (run.tx, run.sent_time);
            }
            if run.end_id() == end {
                break;
            }
            last += 1;
        }
        for run in self.runs.range_mut(start..=last) {
            run.state = State::Acked;
        }
        Some(sum)
    }

    /// Releases the runs below `end`, all acknowledged. Returns how many messages they
    /// held, and the ring mark of the last one (`None` if there were none). `end` is where a
    /// run starts, or past the last: a run is acknowledged whole or gets records first, so
    /// the sender's oldest live message never lies inside one.
    pub(super) fn release_below(&mut self, end: u64) -> Option<(usize, u32)> {
        let front = self.runs.front()?.first_id;
        if end <= front {
            return None;
        }
        // Found by bisection and dropped at once, not walked run by run.
        let whole = self.runs.partition_point(|run| run.end_id() <= end);
        debug_assert!(
            self.runs
                .range(..whole)
                .all(|run| run.state == State::Acked),
            "a live message below {end}"
        );
        debug_assert!(
            self.runs.get(whole).is_none_or(|run| run.first_id >= end),
            "{end} lies inside a run"
        );
        let last = *self.runs.get(whole.checked_sub(1)?)?;
        let released = (last.end_id() - front) as usize;
        self.runs.drain(..whole);
        self.len -= released;
        Some((released, last.record(last.count - 1).span.end_mark))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{SentTime, State, Window};

    /// A record's fields, to compare.
    type Fields = (super::Span, u64, SentTime, u64, u32, State);

    fn fields(e: super::Entry) -> Fields {
        (
            e.span,
            e.timestamp_us,
            e.sent_time,
            e.tx,
            e.retries,
            e.state,
        )
    }

    #[test]
    fn runs_give_every_message_the_record_one_of_its_own_would_hold() {
        // A reliable window under random use, against a model holding one record a message:
        // batches stored; messages written as `write_data` writes them (a datagram's first
        // one, then runs of it, at one transmission number); ranges acknowledged, aligned
        // with runs or not, over messages in any state; single records changed (lost,
        // resent) as loss detection does; the resolved front released. Every written
        // message's record, from a run or made, must be the model's, and every summary the
        // one the model's records add up to.
        let mut rng = fastrand::Rng::with_seed(21);
        let mut w = Window::new(96, 6_000);
        let mut model: Vec<Fields> = Vec::new(); // from `w.base`
        let (mut tx, mut timestamp_us) = (0u64, 0u64);
        let (mut summed, mut refused, mut by_runs, mut released_runs) = (0, 0, 0, 0);
        for round in 0..20_000 {
            // Clean stretches, as without loss: whole datagrams acknowledged from the oldest
            // live one on, nothing changed alone; and lossy ones, with everything.
            let clean = round / 1_000 % 2 == 1;
            match rng.u8(0..10) {
                0..=2 => {
                    timestamp_us += rng.u64(0..2);
                    let (len, count) = (rng.usize(1..40), rng.u64(0..30));
                    w.push_many(timestamp_us, len, count, |id, p: &mut [u8]| {
                        p.fill(id as u8)
                    });
                }
                3..=5 if w.unsent_len > 0 => {
                    // One datagram: its first message, then up to two runs.
                    tx += 1;
                    let sent = SentTime::default().after(Duration::from_micros(tx));
                    let first = w.unsent_start();
                    w.mark_written(first, tx, sent, false, true);
                    for _ in 0..rng.usize(0..3) {
                        let count = rng.usize(0..=w.unsent_len.min(25));
                        w.mark_run_written(w.unsent_start(), count as u64, tx, sent, true);
                    }
                    for id in first..w.unsent_start() {
                        let e = w.entry(id);
                        assert_eq!((e.tx, e.sent_time, e.retries), (tx, sent, 0));
                        assert_eq!(e.state, State::InFlight);
                        model.push(fields(e));
                    }
                }
                6 | 7 if !model.is_empty() => {
                    let (mut at, mut count) = (rng.usize(0..model.len()), 0);
                    if clean {
                        at = model.iter().position(|r| r.5.is_live()).unwrap_or(at);
                    }
                    if clean || rng.bool() {
                        // Whole datagrams, as ACK ranges without loss are.
                        while at > 0 && model[at - 1].3 == model[at].3 {
                            at -= 1;
                        }
                        let mut end = at + 1;
                        for _ in 0..rng.usize(1..4) {
                            while end < model.len() && model[end].3 == model[end - 1].3 {
                                end += 1;
                            }
                            end = (end + 1).min(model.len());
                        }
                        count = end - 1 - at;
                    }
                    if count == 0 {
                        count = rng.usize(1..=(model.len() - at).min(60));
                    }
                    let records = &model[at..at + count];
                    let with_records = w.entries.len();
                    let expected = records
                        .iter()
                        .all(|r| r.5 == State::InFlight && r.4 == 0)
                        .then(|| {
                            let highest = records.iter().max_by_key(|r| r.3).unwrap();
                            (
                                records.iter().map(|r| r.0.len()).sum::<usize>(),
                                records.iter().map(|r| r.3).min().unwrap(),
                                (highest.3, highest.2),
                            )
                        });
                    let got = w
                        .acknowledge_first_transmissions(w.base + at as u64, count)
                        .map(|s| (s.payload_bytes, s.lowest_tx, s.highest));
                    assert_eq!(got, expected, "round {round}");
                    if got.is_some() {
                        summed += 1;
                        if at >= with_records && w.entries.len() == with_records {
                            by_runs += 1;
                        }
                        for r in &mut model[at..at + count] {
                            r.5 = State::Acked;
                        }
                    } else {
                        refused += 1;
                    }
                }
                8 if !model.is_empty() && !clean && rng.u8(0..4) == 0 => {
                    // Lost, resent, acknowledged alone or given up, as one record.
                    let at = rng.usize(0..model.len());
                    let e = w.entry_mut(w.base + at as u64);
                    match rng.u8(0..4) {
                        0 => e.state = State::Queued,
                        1 => e.mark_resent(tx, SentTime::default(), true),
                        2 => e.state = State::Acked,
                        _ => e.state = State::Abandoned,
                    }
                    model[at] = fields(*e);
                }
                _ => {
                    // The resolved front goes, as the sender releases it; sometimes the
                    // oldest live message is resolved alone first (or the front would stall).
                    if let Some(at) = model.iter().position(|r| r.5.is_live()) {
                        // In a clean stretch only what has a record (the lossy stretch's
                        // leftovers): runs there are acknowledged as ACK ranges take them.
                        if (!clean && rng.bool()) || (clean && at < w.entries.len()) {
                            let e = w.entry_mut(w.base + at as u64);
                            e.state = State::Acked;
                            model[at] = fields(*e);
                        }
                    }
                    let resolved = model.iter().take_while(|r| !r.5.is_live()).count();
                    let end = w.base + resolved as u64;
                    let before = w.base;
                    if w.entries.is_empty() && w.written.front().is_some_and(|r| r.first_id < end) {
                        released_runs += 1;
                    }
                    w.release_below(end);
                    model.drain(..(w.base - before) as usize);
                    assert_eq!(w.base, end, "round {round}");
                }
            }
            assert_eq!(w.unsent_start() - w.base, model.len() as u64);
            for (id, want) in (w.base..).zip(&model) {
                assert_eq!(fields(w.entry(id)), *want, "round {round}, message {id}");
            }
        }
        // Both outcomes were exercised, and runs were acknowledged as runs, no record made.
        assert!(
            summed > 500 && refused > 500 && by_runs > 100 && released_runs > 20,
            "{summed} summed ({by_runs} as runs), {refused} refused, runs released {released_runs} times"
        );
    }
}
