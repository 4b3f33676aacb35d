//! Without QoS (`reliable: false`): no new ID beyond the peer's plausibility window, and the
//! tail probe that moves that window when everything up to its edge was lost.
//!
//! The receiver drops a message whose ID lies more than its `id_window` beyond the largest
//! it received ([`SenderConfig::peer_id_window`](crate::config::SenderConfig)). With QoS the
//! send window keeps every ID inside it. Without, a sender that outruns its receiver can
//! lose more than that window in one burst (the receiver's socket buffer overflows), and
//! every later message would be dropped as implausible until the session died. So an
//! unreliable sender writes no new ID past the *horizon*: the largest ID the peer
//! acknowledged, plus one, plus its window.
//!
//! At the horizon it waits for an ACK to move it. When everything up to the horizon was lost,
//! or the last ACKs were, no ACK would ever move it (nothing is resent without QoS). So when
//! the sender is still held a *probe timeout* after its last DATA datagram (RFC 9002 §6.2's
//! PTO, as with QoS (`probe.rs`): the retransmission timeout's formula without its `min_rto`
//! floor, from the RTT of ACKs that name the newest message), it writes the *tail probe*: the
//! newest message it wrote, once more, asking for an immediate ACK (§6.2.4's probe, one
//! message). The receiver delivers it if its first copy was lost and drops it as a duplicate
//! otherwise: at most once either way. Its ACK names it, which moves the horizon a whole window
//! on. The timeout backs off while probes go unanswered and resets when the horizon moves.

use std::time::{Duration, Instant};

use realmq_proto::AckFrame;

use super::sent_time::SentTime;
use super::store::State;
use super::{Sender, Timer};

impl Sender {
    /// The end of the new IDs `write_data` may write now: the window's end and, without QoS,
    /// the horizon.
    pub(super) fn new_ids_end(&self) -> u64 {
        let end = self.window.next_id();
        if self.config.reliable {
            return end;
        }
        let window = self.config.peer_id_window;
        let horizon = self.largest_acked.map_or(window, |acked| {
            acked.saturating_add(1).saturating_add(window)
        });
        end.min(horizon)
    }

    /// Takes an ACK whose largest ID is `largest` (capped at the largest written) into an
    /// unreliable sender's horizon. An ACK naming the newest message, which the window keeps,
    /// also gives an RTT sample for the probe timeout, unless that message was a probe
    /// (Karn).
    pub(super) fn on_unreliable_ack(&mut self, now: Instant, frame: &AckFrame<'_>, largest: u64) {
        if self.largest_acked.is_none_or(|acked| largest > acked) {
            self.largest_acked = Some(largest);
            self.rto_backoff = 0;
        }
        let newest = self.next_unsent.checked_sub(1);
        if let Some(entry) = newest
            .filter(|&id| id == largest)
            .and_then(|id| self.window.get(id))
        {
            if entry.retries == 0 {
                let sample = SentTime::new(self.epoch, now).since(entry.sent_time);
                let delay = Duration::from_micros(frame.delay_us());
                self.take_rtt_sample(sample, delay.min(self.config.peer_max_ack_delay));
            }
        }
    }

    /// Whether the horizon holds back messages waiting to be written (never with QoS).
    fn held_at_horizon(&self) -> bool {
        !self.config.reliable
            && self.queued == 0
            && self.next_unsent == self.new_ids_end()
            && self.next_unsent < self.window.next_id()
    }

    /// Whether the tail probe is due: held at the horizon, and the probe timeout fired.
    pub(super) fn tail_probe_due(&self) -> bool {
        self.probe_due && self.held_at_horizon()
    }

    /// Queues the tail probe if it is due: the newest written message goes out again, in a
    /// datagram that asks for an immediate ACK.
    pub(super) fn queue_tail_probe(&mut self) {
        if !self.tail_probe_due() {
            return;
        }
        // Held at a horizon of at least 1 with nothing queued: something was written, and
        // an unreliable window keeps the newest written message (`write_data`).
        let Some(id) = self.next_unsent.checked_sub(1) else {
            return;
        };
        let Some(entry) = self.window.get_mut(id) else {
            return;
        };
        entry.state = State::Queued;
        self.retransmit.push_back(id);
        self.queued += 1;
        self.ack_now = true;
        self.probe_due = false;
    }

    /// Arms the probe timeout after a DATA datagram was written at `now`.
    pub(super) fn arm_probe_timeout(&mut self, now: Instant) {
        self.timers
            .set(Timer::Rto, now + self.pto_backed_off(self.rto_backoff));
    }

    /// The probe timeout fired: if the sender is still held at the horizon, a probe is due,
    /// and the next timeout backs off.
    pub(super) fn on_probe_timeout(&mut self) {
        if self.held_at_horizon() {
            self.probe_due = true;
            self.rto_backoff = self.rto_backoff.saturating_add(1);
        }
    }
}
