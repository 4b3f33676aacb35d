//! The receiving half of a session: duplicate detection, delivery, the ACK policy and the
//! liveness verdict on the peer.
//!
//! See [`Receiver`] for the contract and `docs/QOS.md` for the design.

mod ack_ranges;
#[cfg(test)]
mod run_tests;

use core::ops::RangeInclusive;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use realmq_proto::{DataFrame, DatagramWriter, Flags, Message, MessageRun};

use crate::config::{ReceiverConfig, ReceiverConfigError};
use crate::liveness::PeerLiveness;
use crate::ranges::{Insert, RangeSet};
use crate::timer::{earliest, TimerKind, TimerTable};

/// Something the session should know, from [`Receiver::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReceiverEvent {
    /// The peer went silent: it has been suspected (φ ≥ threshold) for the whole grace period.
    /// The session can be freed. Reported once.
    PeerDead,
}

/// Counters, for the binaries' reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    /// Distinct messages received and delivered.
    pub received: u64,
    /// Copies of messages already received, discarded.
    pub duplicates: u64,
    /// Distinct messages that arrived after a higher ID had (a resend, or reordering).
    pub out_of_order: u64,
    /// Messages refused because the range set was full: neither delivered nor acknowledged;
    /// the sender resends them.
    pub refused: u64,
    /// IDs given up without having arrived: the oldest gaps of a sender that never resends
    /// (`Flags::NO_RESEND`), forgotten when the range set was full.
    pub forgotten: u64,
    /// Messages dropped because their ID lay beyond the plausibility window
    /// ([`ReceiverConfig::id_window`]): forged, corrupted, or from a misbehaving sender.
    pub implausible: u64,
    /// HEARTBEAT frames received.
    pub heartbeats: u64,
    /// ACK frames written.
    pub acks_sent: u64,
    /// ACK frames that could not list every range and carried a chosen subset (newest,
    /// rotating older ones, cumulative point).
    pub acks_partial: u64,
}

/// The receiver's timers (timers are data: an enum and a table of deadlines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// The pending ACK's deadline. Once it fires the ACK stays due (see
    /// [`Receiver::ack_due`]) but the timer is stopped, out of `poll_timeout` (so a caller that
    /// cannot write the ACK yet does not spin), until the ACK is written.
    Ack,
}

impl TimerKind for Timer {
    const ALL: &'static [Self] = &[Timer::Ack];

    fn index(self) -> usize {
        self as usize
    }
}

/// The receiving half of one session.
///
/// # Contract (sans-IO)
///
/// Time is always an argument; nothing here reads a clock, touches a socket or sleeps.
///
/// - **Inputs** (`handle_*`): parse each datagram with
///   `Datagram::parse(bytes)`, then pass its DATA frames to
///   [`handle_data`](Self::handle_data) (with the header's `ACK_NOW` flag), its HEARTBEAT
///   frames to [`handle_heartbeat`](Self::handle_heartbeat), and report any other datagram
///   from the peer with [`handle_peer_activity`](Self::handle_peer_activity).
///   Call [`handle_timeout`](Self::handle_timeout) once `now` reaches
///   [`poll_timeout`](Self::poll_timeout).
/// - **Outputs** (`poll_*`/`write_*`): when [`ack_due`](Self::ack_due), put
///   [`write_ack`](Self::write_ack) into a datagram to the peer (it may also go along with
///   other frames at any time an ACK is [`ack_pending`](Self::ack_pending));
///   [`poll_timeout`](Self::poll_timeout) is the next deadline (delayed ACK, liveness check);
///   [`poll_event`](Self::poll_event) reports a dead peer.
///
/// # ACK policy
///
/// Every new message makes an ACK pending. It is due at once (RFC 9000 §13.2.1) when the
/// datagram carried `ACK_NOW`, on a HEARTBEAT, when a message fills or opens a gap (arrives
/// below the largest ID or more than one above it), on a duplicate (the sender resent, so it
/// missed an ACK), and once [`ReceiverConfig::ack_every`] new messages are waiting; otherwise
/// [`ReceiverConfig::max_ack_delay`] after the first unacknowledged arrival.
///
/// Messages are delivered in arrival order, each at most once; with the sender's retries,
/// exactly once.
#[derive(Debug)]
pub struct Receiver {
    config: ReceiverConfig,
    received: RangeSet,
    largest_received: Option<u64>,
    /// When the largest ID of `received` arrived: the reference of the ACK delay.
    largest_arrival: Option<Instant>,
    /// Whether an ACK is owed at all, and how many new messages it would cover.
    ack_pending: bool,
    unacked_messages: u32,
    /// When the pending ACK is due (`now` when due at once); it stays set after the timer
    /// fired, until the ACK is written.
    ack_deadline: Option<Instant>,
    /// Armed with `ack_deadline` until it fires.
    timers: TimerTable<Timer, 1>,
    liveness: PeerLiveness,
    events: VecDeque<ReceiverEvent>,
    stats: ReceiverStats,
    /// Ranges of a partial ACK, allocated once.
    ack_scratch: Vec<RangeInclusive<u64>>,
    /// Where the rotation through older ranges of partial ACKs resumes.
    ack_cursor: u64,
    /// Whether the session's first DATA datagram said its sender never resends
    /// (`Flags::NO_RESEND`); `None` before it. Gaps are given up only for such a sender, so a
    /// lone datagram with the flag cannot make a resending sender's gaps read as received.
    no_resend: Option<bool>,
}

impl Receiver {
    /// A receiver for a session that starts at `now` (the liveness clock starts then: a peer
    /// that never sends anything dies like one that stopped).
    pub fn new(config: ReceiverConfig, now: Instant) -> Result<Self, ReceiverConfigError> {
        config.validate()?;
        Ok(Self {
            received: RangeSet::new(config.max_ranges),
            ack_scratch: Vec::with_capacity(config.max_ranges + 1),
            ack_cursor: u64::MAX,
            no_resend: None,
            largest_received: None,
            largest_arrival: None,
            ack_pending: false,
            unacked_messages: 0,
            ack_deadline: None,
            timers: TimerTable::new(),
            liveness: PeerLiveness::new(&config.liveness, now),
            events: VecDeque::new(),
            stats: ReceiverStats::default(),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ReceiverConfig {
        &self.config
    }

    /// The largest message ID seen in any DATA frame: the reference for
    /// `Datagram::parse`.
    pub fn largest_received(&self) -> Option<u64> {
        self.largest_received
    }

    /// Every ID below this one was received.
    pub fn cumulative(&self) -> u64 {
        self.received.cumulative()
    }

    /// The set of received IDs.
    pub fn received(&self) -> &RangeSet {
        &self.received
    }

    /// Takes a DATA frame that arrived at `now` in a datagram whose header carried `flags`
    /// (`ACK_NOW`: acknowledge at once; `NO_RESEND`: the sender never resends, so its oldest
    /// gaps may be given up when the range set is full, if the session's first DATA datagram
    /// said so too). Calls `deliver` for each message not received before, in frame order,
    /// and returns how many it delivered.
    pub fn handle_data<'a>(
        &mut self,
        now: Instant,
        frame: &DataFrame<'a>,
        flags: Flags,
        mut deliver: impl FnMut(Message<'a>),
    ) -> usize {
        self.handle_data_runs(now, frame, flags, |run| {
            run.messages().for_each(&mut deliver)
        })
    }

    /// As [`handle_data`](Self::handle_data), with the messages delivered as runs: a frame
    /// of messages all new and in order, alike in timestamp and length (a sender's run of
    /// equal messages, without loss the common case), as one [`MessageRun`]; any other
    /// message as a run of one. A consumer that does the same for every message (the
    /// server's stamp check and latency count) can then do it in one loop per run.
    pub fn handle_data_runs<'a>(
        &mut self,
        now: Instant,
        frame: &DataFrame<'a>,
        flags: Flags,
        mut deliver: impl FnMut(MessageRun<'a>),
    ) -> usize {
        self.note_data_datagram(now, flags);
        if let Some(delivered) = self.handle_in_order_run(now, frame, flags, &mut deliver) {
            return delivered;
        }
        self.handle_each(now, frame, flags, |m| deliver(MessageRun::single(m)))
    }

    /// What any DATA datagram tells, whatever its messages: the peer is alive, and the
    /// session's first one whether its sender resends.
    fn note_data_datagram(&mut self, now: Instant, flags: Flags) {
        self.liveness.handle_arrival(now);
        self.no_resend
            .get_or_insert(flags.contains(Flags::NO_RESEND));
    }

    /// Takes a DATA frame's messages one by one: the general path of
    /// [`handle_data`](Self::handle_data).
    fn handle_each<'a>(
        &mut self,
        now: Instant,
        frame: &DataFrame<'a>,
        flags: Flags,
        mut deliver: impl FnMut(Message<'a>),
    ) -> usize {
        let mut delivered = 0;
        let mut urgent = flags.contains(Flags::ACK_NOW);
        for (index, message) in frame.messages().enumerate() {
            let id = message.id;
            let previous = self.largest_received;
            let limit = previous.map_or(self.config.id_window, |l| {
                l.saturating_add(self.config.id_window).saturating_add(1)
            });
            if id >= limit {
                // IDs only grow within a frame: the rest are beyond too.
                self.stats.implausible += frame.len() - index as u64;
                log::debug!("dropped message {id}: beyond the plausibility window ({limit})");
                break;
            }
            self.largest_received = Some(previous.map_or(id, |l| l.max(id)));
            let mut inserted = self.received.insert(id);
            let no_resend = flags.contains(Flags::NO_RESEND) && self.no_resend == Some(true);
            if inserted == Insert::Refused && no_resend {
                // The sender never resends: its gaps will never fill, and refusing new
                // messages would refuse them for good (and stop the ACKs). Give up the
                // oldest half of the gaps below this ID at once, so this happens rarely.
                let gaps = (self.config.max_ranges / 2).max(1);
                self.stats.forgotten += self.received.forget_gaps_below(id, gaps);
                inserted = self.received.insert(id);
            }
            match inserted {
                Insert::New => {
                    self.stats.received += 1;
                    delivered += 1;
                    self.unacked_messages = self.unacked_messages.saturating_add(1);
                    self.ack_pending = true;
                    let expected = previous.map_or(0, |l| l + 1);
                    if id < expected {
                        self.stats.out_of_order += 1;
                        urgent = true;
                    } else if id > expected {
                        urgent = true;
                    }
                    if self.received.largest() == Some(id) {
                        self.largest_arrival = Some(now);
                    }
                    deliver(message);
                }
                Insert::Duplicate => {
                    self.stats.duplicates += 1;
                    self.ack_pending = true;
                    urgent = true;
                }
                Insert::Refused => {
                    self.stats.refused += 1;
                    log::trace!("refused message {id}: range set full");
                }
            }
        }
        if self.unacked_messages >= self.config.ack_every {
            urgent = true;
        }
        self.schedule_ack(now, urgent);
        delivered
    }

    /// A frame of consecutive IDs starting right above the largest received (a sender's run
    /// of equal messages, without loss the common case) in one step: every message is new, in
    /// order and, one above the largest before it, plausible. Does what the message-by-message
    /// path would do, and returns how many it delivered; `None`, having done nothing, for any
    /// other frame.
    fn handle_in_order_run<'a>(
        &mut self,
        now: Instant,
        frame: &DataFrame<'a>,
        flags: Flags,
        deliver: &mut impl FnMut(MessageRun<'a>),
    ) -> Option<usize> {
        let ids = frame.consecutive_ids()?;
        let (first, last) = (*ids.start(), *ids.end());
        let expected = self.largest_received.map_or(0, |l| l + 1);
        // With a plausibility window of 0 nothing is plausible: leave that to the general path.
        if first != expected || self.config.id_window == 0 {
            return None;
        }
        let run = frame.as_run()?;
        // Fails when the range set's newest ID lies below the largest received (a message
        // above it was refused).
        if !self.received.extend_newest(first, last) {
            return None;
        }
        let count = frame.len();
        self.largest_received = Some(last);
        self.largest_arrival = Some(now);
        self.stats.received += count;
        let count_u32 = u32::try_from(count).unwrap_or(u32::MAX);
        self.unacked_messages = self.unacked_messages.saturating_add(count_u32);
        self.ack_pending = true;
        deliver(run);
        let urgent =
            flags.contains(Flags::ACK_NOW) || self.unacked_messages >= self.config.ack_every;
        self.schedule_ack(now, urgent);
        // At most `MAX_MESSAGES_PER_FRAME`.
        Some(count as usize)
    }

    /// Takes a HEARTBEAT that arrived at `now`: an ACK is due at once.
    pub fn handle_heartbeat(&mut self, now: Instant) {
        self.liveness.handle_arrival(now);
        self.stats.heartbeats += 1;
        // An ACK needs at least one range: before any message arrived, the session layer
        // answers the heartbeat itself (the server echoes a HEARTBEAT).
        self.request_ack(now);
    }

    /// Makes an ACK of everything received due at once, even if the last one already said
    /// it all: the final word of a server that is shutting down (`Server::acknowledge_all`).
    /// Nothing happens before any message arrived (an ACK needs a range).
    pub fn request_ack(&mut self, now: Instant) {
        if !self.received.is_empty() {
            self.ack_pending = true;
            self.schedule_ack(now, true);
        }
    }

    /// Records that some other datagram from the peer (STOP, say) arrived at `now`.
    pub fn handle_peer_activity(&mut self, now: Instant) {
        self.liveness.handle_arrival(now);
    }

    /// This process could not run from `since` to `now`: see
    /// [`PeerLiveness::handle_local_pause`].
    pub fn handle_local_pause(&mut self, since: Instant, now: Instant) {
        self.liveness.handle_local_pause(since, now);
    }

    /// Whether an ACK would acknowledge something not yet acknowledged (or answer a
    /// heartbeat).
    pub fn ack_pending(&self) -> bool {
        self.ack_pending
    }

    /// Whether the pending ACK is due at `now` under the ACK policy.
    pub fn ack_due(&self, now: Instant) -> bool {
        self.ack_pending && self.ack_deadline.is_some_and(|t| t <= now)
    }

    /// Writes an ACK listing every received range (newest first) if one is due, with the
    /// delay since the largest ID arrived. Returns whether it wrote one; false also when it
    /// did not fit (the ACK stays due) or nothing was received yet (an ACK needs a range).
    pub fn write_ack(&mut self, now: Instant, w: &mut DatagramWriter<'_>) -> bool {
        if !self.ack_due(now) {
            return false;
        }
        self.write_ack_now(now, w)
    }

    /// Writes an ACK if one is pending, due or not (to go along with other frames).
    pub fn write_ack_now(&mut self, now: Instant, w: &mut DatagramWriter<'_>) -> bool {
        if !self.ack_pending || self.received.is_empty() {
            return false;
        }
        let delay = self
            .largest_arrival
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        let delay_us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        let full = realmq_proto::ack_encoded_len(self.received.iter_newest_first(), delay_us);
        let written = if full.is_ok_and(|full| full <= w.remaining()) {
            w.ack(self.received.iter_newest_first(), delay_us)
        } else {
            if !ack_ranges::select(
                self.received.iter_newest_first(),
                delay_us,
                w.remaining(),
                &mut self.ack_cursor,
                &mut self.ack_scratch,
            ) {
                log::debug!("no room for an ACK");
                return false;
            }
            self.stats.acks_partial += 1;
            w.ack(self.ack_scratch.iter().cloned(), delay_us)
        };
        match written {
            Ok(summary) => {
                debug_assert!(!summary.truncated);
                self.stats.acks_sent += 1;
                self.ack_pending = false;
                self.unacked_messages = 0;
                self.ack_deadline = None;
                self.timers.stop(Timer::Ack);
                true
            }
            Err(e) => {
                log::debug!("ACK did not fit: {e}");
                false
            }
        }
    }

    /// Handles the timers due at `now`: the liveness check, and the ACK deadline (the ACK
    /// stays due, see [`ack_due`](Self::ack_due), and the deadline leaves `poll_timeout`).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.ack_pending && self.timers.is_expired(Timer::Ack, now) {
            self.timers.stop(Timer::Ack);
        }
        if self.liveness.handle_timeout(now) {
            self.events.push_back(ReceiverEvent::PeerDead);
        }
    }

    /// The earliest deadline: the pending ACK's (which may be in the past: write it, or call
    /// `handle_timeout`) and the liveness check.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let ack = self.timers.get(Timer::Ack).filter(|_| self.ack_pending);
        earliest(ack, self.liveness.poll_timeout())
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ReceiverEvent> {
        self.events.pop_front()
    }

    /// Whether the peer is dead at `now`: silent for its suspicion and the grace period since
    /// its last datagram. Not a sticky verdict: a datagram after a `PeerDead` event (a server
    /// keeps a session whose client is still handshaking) brings the peer back.
    pub fn is_dead(&self, now: Instant) -> bool {
        self.liveness.is_dead(now)
    }

    /// The liveness verdict on the peer (suspicion level, detector statistics).
    pub fn liveness(&self) -> &PeerLiveness {
        &self.liveness
    }

    /// Counters.
    pub fn stats(&self) -> &ReceiverStats {
        &self.stats
    }

    /// Arms the ACK deadline: at once if `urgent`, else `max_ack_delay` after the first
    /// arrival it covers.
    fn schedule_ack(&mut self, now: Instant, urgent: bool) {
        if !self.ack_pending {
            return;
        }
        let deadline = if urgent {
            now
        } else {
            now + self.config.max_ack_delay
        };
        // A deadline whose timer fired already: the ACK is due and stays out of
        // `poll_timeout` until written, whatever deadline it gets now.
        let fired = self.ack_deadline.is_some() && self.timers.get(Timer::Ack).is_none();
        let deadline = self.ack_deadline.map_or(deadline, |t| t.min(deadline));
        self.ack_deadline = Some(deadline);
        if !fired {
            self.timers.set(Timer::Ack, deadline);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use realmq_proto::{Datagram, Flags, Frame, Header};

    const MS: Duration = Duration::from_millis(1);

    /// Hands `f` a parsed DATA frame holding `ids` (payload: the ID's bytes, timestamp 0).
    pub(super) fn with_frame<R>(ids: &[u64], f: impl FnOnce(&DataFrame<'_>) -> R) -> R {
        let mut buf = [0u8; 1500];
        let mut w = DatagramWriter::new(&mut buf, 1472, Header::session(1)).unwrap();
        let payloads: Vec<[u8; 8]> = ids.iter().map(|id| id.to_le_bytes()).collect();
        let msg = |i: usize| Message {
            id: ids[i],
            timestamp_us: 0,
            payload: &payloads[i],
        };
        let mut dw = w.data(msg(0)).unwrap();
        for i in 1..ids.len() {
            dw.push(msg(i)).unwrap();
        }
        let len = w.finish();
        let datagram = Datagram::parse(&buf[..len]).unwrap();
        let Some(Frame::Data(frame)) = datagram.frames().next() else {
            panic!("no DATA frame");
        };
        f(&frame)
    }

    /// A parsed DATA frame holding `ids` (payload: the ID's bytes), fed to `rx` at `now`.
    fn feed(rx: &mut Receiver, now: Instant, ids: &[u64], ack_now: bool) -> Vec<u64> {
        let flags = if ack_now { Flags::ACK_NOW } else { Flags::NONE };
        let mut out = Vec::new();
        with_frame(ids, |data| {
            rx.handle_data(now, data, flags, |m| {
                assert_eq!(m.payload, m.id.to_le_bytes());
                out.push(m.id);
            })
        });
        out
    }

    /// Writes the due ACK and returns its ranges.
    fn ack(rx: &mut Receiver, now: Instant) -> Option<Vec<(u64, u64)>> {
        let mut buf = [0u8; 1500];
        let mut w = DatagramWriter::new(&mut buf, 1472, Header::session(1)).unwrap();
        if !rx.write_ack(now, &mut w) {
            return None;
        }
        let len = w.finish();
        let datagram = Datagram::parse(&buf[..len]).unwrap();
        let Some(Frame::Ack(frame)) = datagram.frames().next() else {
            panic!("no ACK frame");
        };
        Some(frame.ranges().map(|r| (*r.start(), *r.end())).collect())
    }

    fn receiver(now: Instant) -> Receiver {
        Receiver::new(ReceiverConfig::default(), now).unwrap()
    }

    #[test]
    fn ids_beyond_the_plausibility_window_are_dropped_not_acknowledged() {
        let t0 = Instant::now();
        let mut rx = receiver(t0);
        let w = rx.config().id_window;
        // Before anything arrived, IDs 0..w are plausible.
        assert!(feed(&mut rx, t0, &[w], false).is_empty());
        assert_eq!(rx.stats().implausible, 1);
        assert_eq!(rx.largest_received(), None);
        assert_eq!(feed(&mut rx, t0, &[w - 1], false), [w - 1]);
        // A forged 2^40 in the same frame as honest IDs: the honest ones before it pass.
        assert_eq!(feed(&mut rx, t0, &[w, 1 << 40, (1 << 40) + 1], false), [w]);
        assert_eq!(rx.stats().implausible, 3);
        assert_eq!(rx.largest_received(), Some(w));
        // The ACK never names what was dropped.
        let ranges = ack(&mut rx, t0 + MS * 10).unwrap();
        assert!(ranges.iter().all(|&(_, hi)| hi <= w), "{ranges:?}");
        // The window moves with the largest received.
        assert_eq!(feed(&mut rx, t0, &[2 * w], false), [2 * w]);
    }

    #[test]
    fn delivers_each_message_once_and_counts_duplicates() {
        let t0 = Instant::now();
        let mut rx = receiver(t0);
        assert_eq!(feed(&mut rx, t0, &[0, 1, 2], false), [0, 1, 2]);
        assert_eq!(feed(&mut rx, t0, &[1, 2, 3], false), [3]);
        assert_eq!(feed(&mut rx, t0, &[0], false), Vec::<u64>::new());
        let stats = rx.stats();
        assert_eq!(
            (stats.received, stats.duplicates, stats.out_of_order),
            (4, 3, 0)
        );
    }

    #[test]
    fn in_order_data_waits_for_the_delayed_ack_timer() {
        let t0 = Instant::now();
        let mut rx = receiver(t0);
        feed(&mut rx, t0, &[0, 1, 2], false);
        assert!(rx.ack_pending());
        assert!(!rx.ack_due(t0));
        let delay = rx.config().max_ack_delay;
        assert_eq!(rx.poll_timeout(), Some(t0 + delay));
        // A later arrival does not push the deadline back.
        feed(&mut rx, t0 + MS / 2, &[3], false);
        assert_eq!(rx.poll_timeout(), Some(t0 + delay));
        assert_eq!(ack(&mut rx, t0 + delay - MS / 4), None);
        assert_eq!(ack(&mut rx, t0 + delay), Some(vec![(0, 3)]));
        assert!(!rx.ack_pending());
        assert_eq!(ack(&mut rx, t0 + delay), None);
    }

    #[test]
    fn a_fired_ack_timer_leaves_poll_timeout_but_the_ack_stays_due() {
        let t0 = Instant::now();
        let mut rx = receiver(t0);
        let liveness = rx.liveness().poll_timeout();
        feed(&mut rx, t0, &[0], false);
        let delay = rx.config().max_ack_delay;
        assert_eq!(rx.poll_timeout(), Some(t0 + delay));
        rx.handle_timeout(t0 + delay);
        // The caller could not write the ACK: no deadline in the past to spin on.
        assert!(rx.ack_due(t0 + delay));
        assert_eq!(rx.poll_timeout(), liveness);
        // A later arrival does not bring the deadline back.
        feed(&mut rx, t0 + delay + MS, &[1], false);
        assert!(rx.ack_due(t0 + delay + MS));
        assert_eq!(rx.poll_timeout(), liveness);
        // Once written, the next ACK gets a timer again.
        assert_eq!(ack(&mut rx, t0 + delay + MS), Some(vec![(0, 1)]));
        assert_eq!(rx.poll_timeout(), liveness);
        feed(&mut rx, t0 + delay * 2, &[2], false);
        assert_eq!(rx.poll_timeout(), Some(t0 + delay * 3));
    }

    #[test]
    fn ack_every_n_messages() {
        let t0 = Instant::now();
        let mut rx = receiver(t0);
        let n = u64::from(rx.config().ack_every);
        let ids: Vec<u64> = (0..n - 1).collect();
        feed(&mut rx, t0, &ids, false);
        assert!(!rx.ack_due(t0));
        feed(&mut rx, t0, &[n - 1], false);
        assert!(rx.ack_due(t0));
    }

    #[test]
    fn gaps_reordering_duplicates_flags_and_heartbeats_ask_for_an_immediate_ack() {
        let t0 = Instant::now();
        let mut rx = receiver(t0);
        feed(&mut rx, t0, &[0], false);
        assert!(!rx.ack_due(t0));
        // A gap opens: 1 is missing.
        feed(&mut rx, t0, &[2], false);
        assert_eq!(ack(&mut rx, t0), Some(vec![(2, 2), (0, 0)]));
        // The gap fills: out of order.
        feed(&mut rx, t0, &[1], false);
        assert_eq!(rx.stats().out_of_order, 1);
        assert_eq!(ack(&mut rx, t0), Some(vec![(0, 2)]));
        // A duplicate.
        feed(&mut rx, t0, &[1], false);
        assert_eq!(ack(&mut rx, t0), Some(vec![(0, 2)]));
        // The flag.
        feed(&mut rx, t0, &[3], true);
        assert!(rx.ack_due(t0));
        assert!(ack(&mut rx, t0).is_some());
        // A heartbeat.
        rx.handle_heartbeat(t0 + MS);
        assert_eq!(ack(&mut rx, t0 + MS), Some(vec![(0, 3)]));
    }

    #[test]
    fn ack_delay_counts_from_the_largest_arrival() {
        let t0 = Instant::now();
        let mut rx = receiver(t0);
        feed(&mut rx, t0, &[0, 1], false);
        let mut buf = [0u8; 1500];
        let mut w = DatagramWriter::new(&mut buf, 1472, Header::session(1)).unwrap();
        assert!(rx.write_ack(t0 + MS * 2, &mut w));
        let len = w.finish();
        let datagram = Datagram::parse(&buf[..len]).unwrap();
        let Some(Frame::Ack(frame)) = datagram.frames().next() else {
            panic!()
        };
        assert_eq!(frame.delay_us(), 2000);
        assert!(!datagram.header.flags.contains(Flags::ACK_NOW));
    }

    #[test]
    fn nothing_received_means_no_ack_even_after_a_heartbeat() {
        let t0 = Instant::now();
        let mut rx = receiver(t0);
        rx.handle_heartbeat(t0);
        assert!(!rx.ack_due(t0));
        assert_eq!(ack(&mut rx, t0), None);
        assert_eq!(rx.poll_timeout(), rx.liveness().poll_timeout());
    }

    #[test]
    fn refused_messages_are_neither_delivered_nor_acknowledged() {
        let t0 = Instant::now();
        let config = ReceiverConfig {
            max_ranges: 2,
            ..ReceiverConfig::default()
        };
        let mut rx = Receiver::new(config, t0).unwrap();
        assert_eq!(feed(&mut rx, t0, &[2, 4, 6], false), [2, 4]);
        assert_eq!(rx.stats().refused, 1);
        assert_eq!(ack(&mut rx, t0), Some(vec![(4, 4), (2, 2)]));
        // Once the gaps fill, the resend is accepted.
        assert_eq!(feed(&mut rx, t0, &[0, 1, 3, 5, 6], false), [0, 1, 3, 5, 6]);
        assert_eq!(rx.cumulative(), 7);
    }

    #[test]
    fn a_silent_peer_is_declared_dead_once() {
        let t0 = Instant::now();
        let mut rx = receiver(t0);
        feed(&mut rx, t0, &[0], false);
        let mut now = t0;
        let mut dead = 0;
        for _ in 0..1000 {
            let Some(at) = rx.poll_timeout() else { break };
            now = now.max(at);
            let _ = ack(&mut rx, now);
            rx.handle_timeout(now);
            while let Some(ReceiverEvent::PeerDead) = rx.poll_event() {
                dead += 1;
            }
        }
        assert_eq!(dead, 1);
        assert!(rx.is_dead(now));
        assert!(now - t0 < Duration::from_secs(5));
    }
}
