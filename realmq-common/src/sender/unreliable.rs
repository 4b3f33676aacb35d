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
//! At the horizon it waits for an ACK to move it. When everything up to the horizon was
//! lost, no ACK would ever move it (nothing is resent without QoS), so the sender writes the
//! *tail probe*: the newest message it wrote, once more, asking for an immediate ACK (RFC
//! 9002 §6.2.4's probe, one message). The receiver delivers it if its first copy was lost
//! and drops it as a duplicate otherwise: at most once either way. Its ACK names it, which
//! moves the horizon a whole window on. One probe per horizon, and another each time a
//! heartbeat interval passes without anything sent (the probe was lost too).

use super::store::State;
use super::Sender;

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

    /// Takes the largest ID an ACK names (capped at the largest written) into an
    /// unreliable sender's horizon.
    pub(super) fn on_unreliable_ack(&mut self, largest: u64) {
        self.largest_acked = Some(self.largest_acked.map_or(largest, |l| l.max(largest)));
    }

    /// Whether the horizon holds back messages waiting to be written (never with QoS).
    fn held_at_horizon(&self) -> bool {
        !self.config.reliable
            && self.queued == 0
            && self.next_unsent == self.new_ids_end()
            && self.next_unsent < self.window.next_id()
    }

    /// Whether the tail probe is due: held at a horizon not probed yet.
    pub(super) fn tail_probe_due(&self) -> bool {
        self.held_at_horizon() && self.probed_horizon != Some(self.next_unsent)
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
        self.probed_horizon = Some(self.next_unsent);
    }

    /// A heartbeat interval passed without anything sent: if the sender is still held at
    /// the horizon, its probe (or the probe's ACK) was lost, and another one is due.
    pub(super) fn on_quiet_interval(&mut self) {
        if self.held_at_horizon() {
            self.probed_horizon = None;
        }
    }
}
