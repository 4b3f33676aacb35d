//! The sending half of a session: window, loss detection, retransmission, heartbeats and the
//! liveness verdict on the peer.
//!
//! See [`Sender`] for the contract and `docs/QOS.md` for the design.

#[cfg(test)]
mod ack_paths_tests;
mod congestion;
mod errors;
mod fill;
mod loss;
mod prebuilt;
#[cfg(test)]
mod prebuilt_tests;
mod probe;
mod reachability;
#[cfg(test)]
mod send_many_tests;
mod sent_time;
mod store;
#[cfg(test)]
mod tests;
mod unacked;
mod unreliable;
#[cfg(test)]
mod unreliable_tests;
mod write;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use realmq_proto::{AckFrame, DatagramWriter, Heartbeat, MAX_MESSAGE_ID};

use crate::config::{SenderConfig, SenderConfigError};
use crate::liveness::{HeartbeatSchedule, PeerLiveness};
use crate::rtt::{RtoBounds, RttEstimator};
use crate::search::lower_bound;
use crate::timer::{earliest, TimerKind, TimerTable};
use congestion::{Congestion, MESSAGE_OVERHEAD};
use reachability::Asks;
use sent_time::SentTime;
use store::{Entry, State, Window};
use unacked::Unacked;

pub use errors::{AckError, EnqueueError, SenderEvent, MAX_VIOLATING_ACKS};
pub use fill::FillPayload;
pub use prebuilt::Prebuilt;

/// Counters and the RTT distribution, for the binaries' reports.
#[derive(Debug, Clone)]
pub struct SenderStats {
    /// Messages written for the first time.
    pub sent: u64,
    /// Resends (a message resent twice counts twice).
    pub retransmitted: u64,
    /// Messages acknowledged.
    pub acked: u64,
    /// Messages acknowledged after they had been declared lost (spurious loss).
    pub acked_after_lost: u64,
    /// Declarations of loss: packet threshold, time threshold or timeout.
    pub lost: u64,
    /// Messages given up on ([`SenderEvent::Undeliverable`]).
    pub undeliverable: u64,
    /// Retransmission timeouts that fired.
    pub rto_fired: u64,
    /// Probe timeouts that fired (RFC 9002 §6.2, `sender/probe.rs`): each sent a probe
    /// asking for an immediate ACK, declaring nothing lost.
    pub probes: u64,
    /// Tail probes written without QoS: the newest written message again, when the peer's
    /// plausibility window held new ones back (`docs/QOS.md`, "Unreliable mode").
    pub tail_probes: u64,
    /// DATA datagrams written.
    pub datagrams: u64,
    /// HEARTBEAT frames written.
    pub heartbeats: u64,
    /// ACK frames processed.
    pub acks_received: u64,
    /// ACK frames that named IDs never sent (that part ignored).
    pub acks_unsent: u64,
    /// RTT samples in microseconds (1 µs to 60 s, 3 significant digits), after ACK delay
    /// adjustment is *not* applied: the raw send-to-ACK time of never-resent messages.
    pub rtt_us: Histogram<u64>,
}

impl Default for SenderStats {
    fn default() -> Self {
        Self {
            sent: 0,
            retransmitted: 0,
            acked: 0,
            acked_after_lost: 0,
            lost: 0,
            undeliverable: 0,
            rto_fired: 0,
            probes: 0,
            tail_probes: 0,
            datagrams: 0,
            heartbeats: 0,
            acks_received: 0,
            acks_unsent: 0,
            rtt_us: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid fixed bounds"),
        }
    }
}

/// The sender's timers (timers are data: an enum and a table of deadlines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// The earliest time-threshold loss deadline (RFC 9002 §6.1.2).
    Loss,
    /// The retransmission timeout (RFC 6298); without QoS, the tail probe's timeout
    /// (`unreliable.rs`).
    Rto,
    /// The probe timeout (RFC 9002 §6.2): before the retransmission timeout, when a lost
    /// ACK left the sender waiting (`probe.rs`). Only with QoS.
    Probe,
    /// The next HEARTBEAT: one heartbeat interval after the last datagram to the peer (one
    /// ask interval while the peer is suspected: `reachability.rs`). Once it fires the
    /// heartbeat stays due (see [`Sender::heartbeat_due`]) but the timer is stopped, out of
    /// `poll_timeout`, until something is sent.
    Heartbeat,
}

impl TimerKind for Timer {
    const ALL: &'static [Self] = &[Timer::Loss, Timer::Rto, Timer::Probe, Timer::Heartbeat];

    fn index(self) -> usize {
        self as usize
    }
}

/// The largest reordering window, in units of `min_rtt / reordering_window_divisor`: with
/// the default divisor, one minimum RTT (and never more than the smoothed RTT).
const MAX_REORDERING_WINDOW_MULT: u32 = 4;

/// The sending half of one session: assigns message IDs, stores payloads until they are
/// acknowledged, detects losses and resends, and judges whether the peer is still there.
///
/// # Contract (sans-IO)
///
/// Time is always an argument; nothing here reads a clock, touches a socket or sleeps.
///
/// - **Inputs** (`handle_*`): [`send`](Self::send) a message;
///   [`handle_ack`](Self::handle_ack) for every ACK frame from the peer;
///   [`handle_timeout`](Self::handle_timeout) once `now` reaches
///   [`poll_timeout`](Self::poll_timeout); [`handle_datagram_sent`](Self::handle_datagram_sent)
///   for datagrams to the peer written by someone else (STOP, say).
/// - **Outputs** (`poll_*`/`write_*`): [`write_data`](Self::write_data) fills a datagram with
///   one DATA frame, [`write_heartbeat`](Self::write_heartbeat) adds a HEARTBEAT when one is
///   due, [`poll_timeout`](Self::poll_timeout) is the next deadline,
///   [`poll_event`](Self::poll_event) reports undeliverable messages and an unreachable peer.
///   Start every datagram with `Header::session(id)` carrying `Flags::ACK_NOW` when
///   [`wants_ack_now`](Self::wants_ack_now), and `Flags::NO_RESEND` without QoS.
/// - **Internal reactions** (`on_*`): ACK processing, loss detection and the timeout.
///
/// A session's send loop: `send` until [`EnqueueError::Backpressure`]; while
/// [`has_pending_data`](Self::has_pending_data), build a datagram and `write_data` (stop when
/// it returns 0); `write_heartbeat` into an empty datagram when due; sleep until
/// `poll_timeout`.
///
/// # How it works
///
/// Messages get consecutive IDs from 0. Each written datagram gets a sender-internal
/// *transmission number* (never on the wire), and every message remembers the number and
/// time of its latest transmission. ACKs name message IDs; from them the sender knows the
/// largest transmission number acknowledged, and a message is declared lost when a
/// transmission `packet_threshold` numbers later was acknowledged, or one later was and
/// `time_threshold · RTT` has passed since it was written (RFC 9002 §6.1 with the
/// transmission number as packet number), or one written at least a reordering window
/// (`min_rtt / reordering_window_divisor`) after it was acknowledged (RACK, RFC 8985 §6.2). A resend keeps its ID but gets a new transmission
/// number, so it is judged against what was sent after *it*, as RACK does for TCP
/// (RFC 8985 §6.2); judging it by ID would declare it lost again at once. Only messages never
/// resent advance the largest acknowledged transmission: for a resent one it is unknown
/// which copy arrived (Karn's ambiguity). When no ACK comes for a probe timeout (RFC 9002
/// §6.2, `probe.rs`), the oldest message in flight is resent with a request for an immediate
/// ACK, nothing declared lost; when ACKs stop altogether the retransmission timeout resends
/// the oldest messages and asks for an immediate ACK. See `docs/QOS.md`.
#[derive(Debug)]
pub struct Sender {
    config: SenderConfig,
    rto_bounds: RtoBounds,
    window: Window,
    /// The lowest ID never written.
    next_unsent: u64,
    /// IDs written and neither acknowledged nor given up (states `InFlight` and `Queued`),
    /// ascending. New IDs are appended; ACK ranges remove runs found by search.
    unacked: Unacked,
    /// Payload bytes of the `unacked` messages.
    unacked_bytes: usize,
    /// IDs declared lost, ascending, to be resent before new messages. May hold IDs acked
    /// since (skipped when met); `queued` counts the live ones.
    retransmit: VecDeque<u64>,
    queued: usize,
    /// Transmission number of the next datagram.
    next_tx: u64,
    largest_sent: Option<u64>,
    largest_acked: Option<u64>,
    largest_acked_tx: Option<u64>,
    /// When the transmission `largest_acked_tx` was written (RACK's `xmit_ts`).
    largest_acked_sent: Option<SentTime>,
    /// RACK's `reo_wnd_mult` (RFC 8985 §6.2): the reordering window in units of
    /// `min_rtt / reordering_window_divisor`, grown each time the path is seen to reorder.
    reordering_window_mult: u32,
    rtt: RttEstimator,
    /// The retransmission timeout without backoff, worked out whenever the RTT estimate
    /// changes rather than each time a datagram arms the timer (that `Duration` arithmetic was
    /// 2 % of the load client's time with one 1,024-byte message a datagram).
    rto_base: Duration,
    /// The probe timeout without backoff (`probe.rs`), worked out with `rto_base`: it is
    /// re-armed with every DATA datagram, and its formula was 4 % of the load client's time
    /// with 1,024-byte messages.
    pto_base: Duration,
    /// NewReno: bounds the bytes in flight (RFC 9002 §7).
    congestion: Congestion,
    /// A retransmission timeout fired: the next DATA datagram is its probe and ignores the
    /// congestion window.
    probe: bool,
    /// Consecutive timeouts without progress: the RTO's backoff exponent.
    rto_backoff: u32,
    /// Consecutive probe timeouts without progress: the PTO's backoff exponent.
    pto_count: u32,
    /// A probe timeout fired with nothing in flight left to resend: the next datagram is a
    /// HEARTBEAT.
    probe_heartbeat: bool,
    /// When the probe timeout last fired: the next one counts from here or from the last
    /// DATA datagram, whichever is later.
    last_probe: Option<Instant>,
    /// What the RTO counts from: the last DATA write, or the last timeout.
    rto_anchor: Option<Instant>,
    timers: TimerTable<Timer, 4>,
    /// The `now` of the last reliable DATA write that re-armed the timers, while nothing
    /// else has touched the sender since: a write at the same `now` would arm them to the
    /// same deadlines, and skips it (`write.rs`). Every other method that changes the
    /// sender clears it.
    armed_by_write_at: Option<Instant>,
    ack_now: bool,
    heartbeat: HeartbeatSchedule,
    liveness: PeerLiveness,
    /// The datagrams the peer left unanswered: the second condition of its being
    /// unreachable (`reachability.rs`).
    asks: Asks,
    /// The peer was suspected at the last liveness check and has not been heard from since:
    /// HEARTBEATs are due every ask interval.
    suspected: bool,
    /// [`SenderEvent::PeerUnreachable`] was raised, and the peer has not been heard from
    /// since.
    unreachable_reported: bool,
    /// ACKs in a row that named IDs beyond the peer's plausibility window.
    violating_acks: u32,
    /// Without QoS: the probe timeout fired while held at the horizon (`unreliable.rs`).
    probe_due: bool,
    /// Tests only: acknowledge message by message, never by
    /// [`Window::acknowledge_first_transmissions`] (`ack_paths_tests.rs` compares the two).
    #[cfg(test)]
    per_message_acks: bool,
    epoch: Instant,
    /// The last `now` a DATA datagram was written at, on the sender's clock: a burst's
    /// datagrams share one, and converting it cost an `Instant` subtraction each.
    last_write_time: (Instant, SentTime),
    events: VecDeque<SenderEvent>,
    stats: SenderStats,
}

impl Sender {
    /// A sender for a session whose epoch (time zero of heartbeat timestamps, and the start of
    /// the liveness clock) is `epoch`. Allocates the whole window now.
    pub fn new(config: SenderConfig, epoch: Instant) -> Result<Self, SenderConfigError> {
        config.validate()?;
        let heartbeat = HeartbeatSchedule::new(config.heartbeat_interval, epoch);
        let mut timers = TimerTable::new();
        timers.set(Timer::Heartbeat, heartbeat.poll_timeout());
        let rto_bounds = RtoBounds {
            min: config.min_rto,
            max: config.max_rto,
            granularity: config.timer_granularity,
            max_ack_delay: config.peer_max_ack_delay,
        };
        Ok(Self {
            rto_bounds,
            window: Window::new(config.window_messages, config.window_bytes),
            next_unsent: 0,
            unacked: Unacked::with_capacity(config.window_messages),
            unacked_bytes: 0,
            retransmit: VecDeque::with_capacity(config.window_messages),
            queued: 0,
            next_tx: 0,
            largest_sent: None,
            largest_acked: None,
            largest_acked_tx: None,
            largest_acked_sent: None,
            reordering_window_mult: 1,
            rtt: RttEstimator::new(config.initial_rtt),
            rto_base: RttEstimator::new(config.initial_rtt).rto(rto_bounds, 0),
            pto_base: RttEstimator::new(config.initial_rtt).rto(probe::pto_bounds(rto_bounds), 0),
            congestion: Congestion::new(config.max_datagram_size, config.window_bytes),
            probe: false,
            rto_backoff: 0,
            pto_count: 0,
            probe_heartbeat: false,
            last_probe: None,
            rto_anchor: None,
            timers,
            armed_by_write_at: None,
            ack_now: false,
            heartbeat,
            liveness: PeerLiveness::new(&config.liveness, epoch),
            asks: Asks::new(&config.liveness),
            suspected: false,
            unreachable_reported: false,
            violating_acks: 0,
            probe_due: false,
            #[cfg(test)]
            per_message_acks: false,
            epoch,
            last_write_time: (epoch, SentTime::default()),
            events: VecDeque::new(),
            stats: SenderStats::default(),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SenderConfig {
        &self.config
    }

    /// Accepts a message: copies `payload` into the window and returns its ID. `timestamp_us`
    /// (at most `MAX_MESSAGE_ID`; larger ones are clamped) travels with it unchanged,
    /// resends included. Refuses with
    /// [`EnqueueError::Backpressure`] when the window is full; never allocates.
    pub fn send(&mut self, timestamp_us: u64, payload: &[u8]) -> Result<u64, EnqueueError> {
        self.armed_by_write_at = None;
        let timestamp_us = self.admit(timestamp_us, payload.len())?;
        self.window
            .push(timestamp_us, payload)
            .ok_or(EnqueueError::Backpressure)
    }

    /// Accepts up to `count` messages of `len` bytes, all stamped `timestamp_us`, as `send`
    /// would one by one, with the checks and the framing worked out once: each payload is
    /// written into the window in place by `fill` ([`FillPayload`]), which must write all of
    /// it (the slice holds whatever bytes were there before). Returns how many were
    /// accepted, fewer than `count` when the window filled (and
    /// [`EnqueueError::Backpressure`] when it took none).
    pub fn send_many(
        &mut self,
        timestamp_us: u64,
        len: usize,
        count: u64,
        fill: impl FillPayload,
    ) -> Result<u64, EnqueueError> {
        self.armed_by_write_at = None;
        let timestamp_us = self.admit(timestamp_us, len)?;
        let ids_left = MAX_MESSAGE_ID + 1 - self.window.next_id();
        match self
            .window
            .push_many(timestamp_us, len, count.min(ids_left), fill)
        {
            0 if count > 0 => Err(EnqueueError::Backpressure),
            accepted => Ok(accepted),
        }
    }

    /// Checks that a message of `len` bytes may be sent, and returns `timestamp_us` clamped
    /// to what a varint holds (2^62 − 1 µs: 146,000 years after the session's epoch).
    fn admit(&self, timestamp_us: u64, len: usize) -> Result<u64, EnqueueError> {
        let max = self.config.max_payload();
        if len > max {
            return Err(EnqueueError::TooLarge { len, max });
        }
        if self.window.next_id() > MAX_MESSAGE_ID {
            return Err(EnqueueError::IdsExhausted);
        }
        Ok(timestamp_us.min(MAX_MESSAGE_ID))
    }

    /// Whether the next datagram should carry `Flags::ACK_NOW`: after a retransmission
    /// timeout, so the probe's ACK is not delayed. Cleared by a `write_data` that wrote.
    pub fn wants_ack_now(&self) -> bool {
        self.ack_now
    }

    /// Whether `write_data` has something to write: resends or new messages.
    /// False also while the congestion window is full: ACKs must make room first.
    pub fn has_pending_data(&self) -> bool {
        let pending =
            self.queued > 0 || self.next_unsent < self.new_ids_end() || self.tail_probe_due();
        pending && (!self.config.reliable || self.probe || self.congestion.can_send(1))
    }

    /// Whether a HEARTBEAT is due: nothing was sent to the peer for a heartbeat interval (for
    /// an ask interval while the peer is suspected), or the probe timeout fired with nothing
    /// in flight left to resend.
    pub fn heartbeat_due(&self, now: Instant) -> bool {
        self.probe_heartbeat || self.heartbeat.is_due(now) || self.ask_due(now)
    }

    /// Whether the peer is suspected and nothing was sent to it for an ask interval.
    fn ask_due(&self, now: Instant) -> bool {
        self.suspected && now >= self.asks.next_due(self.heartbeat.last_sent())
    }

    /// Writes a HEARTBEAT (timestamp: µs since the epoch) if one is due and fits; returns
    /// whether it did.
    pub fn write_heartbeat(&mut self, now: Instant, w: &mut DatagramWriter<'_>) -> bool {
        self.armed_by_write_at = None;
        if !self.heartbeat_due(now) {
            return false;
        }
        let timestamp_us = u64::try_from(now.saturating_duration_since(self.epoch).as_micros())
            .unwrap_or(u64::MAX)
            .min(MAX_MESSAGE_ID);
        if w.heartbeat(Heartbeat { timestamp_us }).is_err() {
            return false;
        }
        self.on_datagram_sent(now);
        self.stats.heartbeats += 1;
        self.probe_heartbeat = false;
        true
    }

    /// Records that some other datagram (STOP, say) went to the peer at `now`: it postpones
    /// the next heartbeat.
    pub fn handle_datagram_sent(&mut self, now: Instant) {
        self.armed_by_write_at = None;
        self.on_datagram_sent(now);
    }

    /// Anything sent postpones the next heartbeat (and re-arms its timer if it had fired),
    /// and may count as an ask.
    fn on_datagram_sent(&mut self, now: Instant) {
        self.heartbeat.on_sent(now);
        self.asks.on_sent(now);
        self.arm_heartbeat(now);
    }

    /// Arms the heartbeat timer: one heartbeat interval after the last datagram, or one ask
    /// interval while the peer is suspected. A deadline already passed stops it instead: the
    /// HEARTBEAT is due, and stays out of `poll_timeout` until written.
    fn arm_heartbeat(&mut self, now: Instant) {
        let mut deadline = self.heartbeat.poll_timeout();
        if self.suspected {
            deadline = deadline.min(self.asks.next_due(self.heartbeat.last_sent()));
        }
        self.timers
            .set_or_stop(Timer::Heartbeat, Some(deadline).filter(|&d| d > now));
    }

    /// Something arrived from the peer: it answered.
    fn on_peer_heard(&mut self, now: Instant) {
        self.liveness.handle_arrival(now);
        self.asks.on_answer();
        self.unreachable_reported = false;
        if std::mem::take(&mut self.suspected) {
            self.arm_heartbeat(now);
        }
    }

    /// Records that some other datagram from the peer (WELCOME, BYE…) arrived at `now`: it
    /// feeds the liveness detector like an ACK.
    pub fn handle_peer_activity(&mut self, now: Instant) {
        self.armed_by_write_at = None;
        self.on_peer_heard(now);
    }

    /// This process could not run from `since` to `now`: see
    /// [`PeerLiveness::handle_local_pause`].
    pub fn handle_local_pause(&mut self, since: Instant, now: Instant) {
        self.armed_by_write_at = None;
        self.liveness.handle_local_pause(since, now);
    }

    /// Processes an ACK frame that arrived at `now`: marks the acknowledged messages, takes
    /// an RTT sample, detects losses, re-arms the timers and feeds the liveness detector.
    ///
    /// A bad range costs the range, not the session: the part of an ACK naming IDs never
    /// sent is ignored (and reported as `Err`, counted in `acks_unsent`), the rest is
    /// processed. Only a run of [`MAX_VIOLATING_ACKS`] ACKs naming IDs beyond anything an
    /// honest peer could have accepted raises [`SenderEvent::ProtocolViolation`].
    pub fn handle_ack(&mut self, now: Instant, frame: &AckFrame<'_>) -> Result<(), AckError> {
        self.armed_by_write_at = None;
        let largest = frame.largest();
        self.on_peer_heard(now);
        self.stats.acks_received += 1;
        let unsent = self.config.reliable && self.largest_sent.is_none_or(|sent| largest > sent);
        if unsent {
            self.stats.acks_unsent += 1;
            let horizon = self.largest_sent.map_or(self.config.peer_id_window, |s| {
                s.saturating_add(self.config.peer_id_window)
            });
            if largest > horizon {
                self.violating_acks += 1;
                if self.violating_acks == MAX_VIOLATING_ACKS {
                    self.events.push_back(SenderEvent::ProtocolViolation);
                }
            } else {
                self.violating_acks = 0;
            }
        } else {
            self.violating_acks = 0;
        }
        if let Some(sent) = self.largest_sent {
            if self.config.reliable {
                self.on_ack_received(now, frame, largest.min(sent));
            } else {
                self.on_unreliable_ack(now, frame, largest.min(sent));
            }
        }
        if unsent {
            return Err(AckError::UnsentId {
                largest,
                largest_sent: self.largest_sent,
            });
        }
        Ok(())
    }

    /// Handles every timer whose deadline is at or before `now`: loss detection, the
    /// retransmission timeout, the liveness check. A heartbeat that fell due stays due
    /// ([`heartbeat_due`](Self::heartbeat_due)) and leaves `poll_timeout` until one is
    /// written (or anything else is sent).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.armed_by_write_at = None;
        // In table order, each checked after the previous one was handled: the loss timeout
        // re-arms the RTO.
        for &timer in Timer::ALL {
            if !self.timers.is_expired(timer, now) {
                continue;
            }
            self.timers.stop(timer);
            match timer {
                Timer::Loss => self.on_loss_timeout(now),
                Timer::Rto if self.config.reliable => self.on_rto(now),
                Timer::Rto => self.on_probe_timeout(),
                Timer::Probe => self.on_pto(now),
                // Stays due until written; only its deadline leaves `poll_timeout`.
                Timer::Heartbeat => {}
            }
        }
        // The detector's first "dead" is only half the verdict: the asks must have gone
        // unanswered too (`reachability.rs`), which later checks see.
        self.liveness.handle_timeout(now);
        if !self.unreachable_reported && self.peer_unreachable(now) {
            self.unreachable_reported = true;
            self.events.push_back(SenderEvent::PeerUnreachable);
        }
        // Phi only grows between arrivals: suspicion starts here and ends with an arrival.
        if !self.suspected && self.liveness.is_suspected(now) {
            self.suspected = true;
            self.arm_heartbeat(now);
        }
    }

    /// The earliest deadline: loss timer, retransmission timeout, next heartbeat (until it
    /// has fired), liveness check.
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(self.timers.next_deadline(), self.liveness.poll_timeout())
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<SenderEvent> {
        self.events.pop_front()
    }

    /// Whether the peer is unreachable at `now`: silent for its suspicion and the grace
    /// period, with enough datagrams left unanswered meanwhile (see
    /// [`SenderEvent::PeerUnreachable`] and `reachability.rs`). Not sticky: a datagram from
    /// the peer brings it back, as in the receiver.
    pub fn peer_unreachable(&self, now: Instant) -> bool {
        self.asks.enough_unanswered() && self.liveness.is_dead(now)
    }

    /// The liveness verdict on the peer (suspicion level, detector statistics).
    pub fn liveness(&self) -> &PeerLiveness {
        &self.liveness
    }

    /// Counters and the RTT histogram.
    pub fn stats(&self) -> &SenderStats {
        &self.stats
    }

    /// The RTT estimator.
    pub fn rtt(&self) -> &RttEstimator {
        &self.rtt
    }

    /// The congestion window and the bytes in flight it bounds (payloads plus a per-message
    /// allowance for framing).
    pub fn congestion_window(&self) -> (usize, usize) {
        (self.congestion.window(), self.congestion.in_flight())
    }

    /// The current retransmission timeout, backoff included.
    pub fn rto(&self) -> Duration {
        let rto = if self.rto_backoff == 0 {
            self.rto_base
        } else {
            self.rtt.rto(self.rto_bounds, self.rto_backoff)
        };
        debug_assert_eq!(rto, self.rtt.rto(self.rto_bounds, self.rto_backoff));
        rto
    }

    /// Feeds an RTT sample to the estimator (RFC 9002 §5.3) and works out the timeout anew.
    pub(super) fn take_rtt_sample(&mut self, latest: Duration, ack_delay: Duration) {
        self.rtt.on_sample(latest, ack_delay);
        self.rto_base = self.rtt.rto(self.rto_bounds, 0);
        self.pto_base = self.rtt.rto(probe::pto_bounds(self.rto_bounds), 0);
    }

    /// Messages written and neither acknowledged nor given up (those queued for a resend
    /// included). At most [`SenderConfig::window_messages`].
    pub fn in_flight(&self) -> usize {
        self.unacked.len()
    }

    /// Payload bytes of the [`in_flight`](Self::in_flight) messages. At most
    /// [`SenderConfig::window_bytes`].
    pub fn in_flight_bytes(&self) -> usize {
        self.unacked_bytes
    }

    /// Messages accepted by `send` and not yet written.
    pub fn unsent(&self) -> usize {
        (self.window.next_id() - self.next_unsent) as usize
    }

    /// Messages the window holds (from the oldest unresolved one to the newest), and the
    /// payload storage bytes they use (wrap-around slack included): what back-pressure
    /// compares with the configured bounds.
    pub fn window_usage(&self) -> (usize, usize) {
        (self.window.len(), self.window.bytes_used())
    }

    /// Whether nothing is in flight, queued or unsent.
    pub fn is_idle(&self) -> bool {
        self.unacked.is_empty() && self.next_unsent == self.window.next_id()
    }

    /// The largest ID the peer has acknowledged.
    pub fn largest_acked(&self) -> Option<u64> {
        self.largest_acked
    }

    /// The largest ID written so far.
    pub fn largest_sent(&self) -> Option<u64> {
        self.largest_sent
    }

    /// Forgets the RTT samples taken so far (the end of a warm-up period).
    pub fn reset_rtt_samples(&mut self) {
        self.armed_by_write_at = None;
        self.stats.rtt_us.reset();
    }

    /// The ID the next accepted message will get; also how many messages were accepted.
    pub fn next_id(&self) -> u64 {
        self.window.next_id()
    }

    /// Pops the records of resolved messages off the window's front: with QoS every message
    /// below the oldest one in flight or queued (below the first unsent when there is none)
    /// is acknowledged or given up, so their number is known without reading them.
    fn release_resolved(&mut self) {
        // Without QoS nothing is in flight, and the newest message written stays for the
        // tail probe: that mode releases as it writes (`write.rs`).
        debug_assert!(self.config.reliable);
        let oldest_live = (self.unacked.as_slice().first().copied()).unwrap_or(self.next_unsent);
        self.window.release_below(oldest_live);
    }

    /// Whether acknowledgements must be taken message by message (tests compare both ways).
    fn per_message_acks(&self) -> bool {
        #[cfg(test)]
        return self.per_message_acks;
        #[cfg(not(test))]
        false
    }

    /// Marks the acknowledged messages and reacts: RTT sample, loss detection, timers.
    /// `largest` is the frame's largest acknowledged ID, capped at the largest sent.
    fn on_ack_received(&mut self, now: Instant, frame: &AckFrame<'_>, largest: u64) {
        self.largest_acked = Some(self.largest_acked.map_or(largest, |l| l.max(largest)));
        let mut newly_acked = 0u64;
        let mut largest_tx = None;
        let mut rtt_sample = None;
        let now_sent = SentTime::new(self.epoch, now);
        // Ranges come newest first; each one's IDs form a run of `unacked`, found by search
        // in the part below the previous range. `unacked` is sorted and, after losses, sparse
        // but roughly uniform: interpolation search finds a run in O(log log n) probes, and
        // ranges already acknowledged (an ACK repeats every range) cost just the search.
        let mut upper = self.unacked.len();
        let mut reordered = false;
        // The lowest index of `unacked` an acknowledged run starts at: everything acknowledged
        // is removed in one compaction pass from there after the loop (removing each run as
        // it was found shifted the tail once per range: quadratic in the range count).
        let mut lowest = upper;
        // And the end of the highest acknowledged run: past it nothing changed.
        let mut highest_end = 0;
        for range in frame.ranges() {
            let unacked = self.unacked.as_slice();
            let end = lower_bound(&unacked[..upper], range.end().saturating_add(1));
            let start = lower_bound(&unacked[..end], *range.start());
            upper = start;
            if start == end {
                continue;
            }
            highest_end = highest_end.max(end);
            // What acknowledging one message does to the sender's state.
            let largest_acked_tx = self.largest_acked_tx;
            // At its cap the congestion window only takes acknowledged bytes out of flight:
            // those are summed and taken out once, after the loop.
            let at_cap = self.congestion.at_cap();
            let summed = at_cap && !self.per_message_acks();
            let mut capped_flight = 0;
            let mut ack = |id: u64, entry: &mut Entry| {
                // The path reorders (RFC 8985 §6.2 step 2): a message never resent arrived
                // after one written later had been acknowledged.
                reordered |= entry.retries == 0
                    && largest_acked_tx.is_some_and(|largest| entry.tx < largest);
                if entry.state == State::Queued {
                    self.queued -= 1;
                    self.stats.acked_after_lost += 1;
                } else if at_cap {
                    capped_flight += entry.span.len() + MESSAGE_OVERHEAD;
                } else {
                    self.congestion
                        .on_acked(entry.span.len() + MESSAGE_OVERHEAD, entry.sent_time);
                }
                entry.state = State::Acked;
                self.unacked_bytes -= entry.span.len();
                newly_acked += 1;
                if id == largest && entry.retries == 0 {
                    let sample = now_sent.since(entry.sent_time);
                    rtt_sample = Some(sample);
                }
                // Karn's ambiguity applies to loss detection too: for a resent message we
                // cannot tell which copy arrived, so only never-resent messages tell how far
                // the transmissions got. (RFC 8985 §6.2 step 2 guesses from the minimum RTT;
                // under queueing, when the RTT is far above its minimum, that guess takes a
                // late original for its resend and declares everything in the queue lost —
                // the simulation with 1000-byte messages showed the collapse.)
                if entry.retries == 0 && largest_tx.is_none_or(|(tx, _)| entry.tx > tx) {
                    largest_tx = Some((entry.tx, entry.sent_time));
                }
            };
            let run = &self.unacked.as_slice()[start..end];
            let (first, last) = (run[0], run[run.len() - 1]);
            let consecutive = last - first == (run.len() - 1) as u64;
            // The common case, without loss and at the window's cap: consecutive IDs, each
            // written once and still in flight. What acknowledging them does is then the
            // same for all, worked out in the pass that marks their records (the
            // per-message closure below was a tenth of the load client's samples). A lone
            // message is left to the closure: summing it costs more than walking it (an ACK of
            // 10,000 single-ID ranges took a sixth longer that way, `benches/ack.rs`).
            let summary = (consecutive && summed && run.len() > 1)
                .then(|| {
                    self.window
                        .acknowledge_first_transmissions(first, run.len())
                })
                .flatten();
            if let Some(summary) = summary {
                let count = run.len();
                reordered |= largest_acked_tx.is_some_and(|largest| summary.lowest_tx < largest);
                capped_flight += summary.payload_bytes + count * MESSAGE_OVERHEAD;
                self.unacked_bytes -= summary.payload_bytes;
                newly_acked += count as u64;
                if (first..=last).contains(&largest) {
                    rtt_sample = Some(now_sent.since(self.window.entry(largest).sent_time));
                }
                let (tx, sent) = summary.highest;
                if largest_tx.is_none_or(|(largest, _)| tx > largest) {
                    largest_tx = Some((tx, sent));
                }
            } else if consecutive {
                // Consecutive IDs (always, without loss): their records are one run of the
                // window, walked without an index computation per message.
                for (id, entry) in (first..).zip(self.window.entries_mut(first, run.len())) {
                    ack(id, entry);
                }
            } else {
                for &id in run {
                    ack(id, self.window.entry_mut(id));
                }
            }
            self.congestion.on_acked_at_cap(capped_flight);
            lowest = start;
        }
        if reordered && self.reordering_window_mult < MAX_REORDERING_WINDOW_MULT {
            self.reordering_window_mult += 1;
            log::debug!(
                "the path reorders: reordering window now {}/{} of the minimum RTT",
                self.reordering_window_mult,
                self.config.reordering_window_divisor
            );
        }
        if newly_acked == 0 {
            return;
        }
        // Every ID between the lowest and the highest run was acknowledged when the runs lay
        // back to back (as they do without loss): then nothing needs checking.
        let window = &self.window;
        let all_acked = newly_acked as usize == highest_end - lowest;
        self.unacked
            .remove_acked(lowest..highest_end, all_acked, |id| {
                window.entry(id).state == State::Acked
            });
        self.stats.acked += newly_acked;
        if let Some(sample) = rtt_sample {
            self.on_rtt_sample(sample, frame.delay_us());
        }
        if let Some((tx, sent)) = largest_tx {
            if self.largest_acked_tx.is_none_or(|largest| tx > largest) {
                self.largest_acked_tx = Some(tx);
                self.largest_acked_sent = Some(sent);
            }
        }
        // RFC 9002 §6.2.1: an acknowledgment that makes progress resets the backoff. (Karn's
        // RFC 6298 §5.7 keeps it until a never-resent message is acknowledged; in a window
        // stalled on stragglers that never happens, and the timeout climbs to its maximum.
        // A spurious timeout is cheap here — it resends stragglers and one datagram, see
        // `on_rto` — so the faster recovery wins.)
        self.rto_backoff = 0;
        self.pto_count = 0;
        self.detect_lost(now);
        self.release_resolved();
        self.arm_rto();
    }
}
