//! The probe timeout (RFC 9002 §6.2): with QoS, a lost ACK costs a probe, not a timeout.
//!
//! The retransmission timeout (`loss.rs`) is at least `min_rto` (10 ms): on loopback, two
//! hundred round trips. When the sender has written all the window allows and the ACK that
//! would open it is lost, nothing else brings one: the receiver acknowledges what arrives,
//! and nothing more arrives. Before this timer, every such lost ACK cost the sender a
//! timeout, which also declared the whole window lost, resent it, and collapsed the
//! congestion window; with a fifth of the ACKs lost the load client's rate fell tenfold
//! (`docs/QOS.md`, "Probe timeout").
//!
//! The probe timeout is RFC 9002's PTO: `smoothed_rtt + max(4·rttvar, granularity) +
//! max_ack_delay`, doubling while probes go unanswered, counted from the last DATA datagram
//! or the last probe. It is armed only while it falls before the retransmission timeout (on
//! a fast path, where `min_rto` is above it). When it fires, the oldest message in flight is
//! resent, in a datagram that asks for an immediate ACK and goes out whatever the congestion
//! window says (§6.2.4's probe; TCP's tail loss probe, RFC 8985 §7, resends too). Nothing else
//! is declared lost and the congestion window stays. The ACK that answers either repairs a
//! lost ACK (the window opens, and loss detection sees what really is missing) or a lost
//! message (the oldest, which held the window), or makes no progress, and then the probe
//! timeout backs off until the retransmission timeout fires as before. With nothing in flight
//! left to resend (everything outstanding is queued already) the probe is a HEARTBEAT, which
//! the receiver also answers at once.
//!
//! A probe timeout also declares lost every *resend* in flight written at least one (not
//! backed-off) probe timeout before. Loss detection cannot judge a resend: only never-resent
//! messages advance the largest acknowledged transmission (Karn). Once the send window is
//! held by its oldest unacknowledged message, only resends go out, so a lost resend stalled
//! the window until a probe found it, one probe per lost resend; under 20 % loss of DATA on a
//! fast path that was most of the run (`docs/QOS.md`, "Probe timeout").

use std::time::{Duration, Instant};

use crate::rtt::RtoBounds;

use super::congestion::MESSAGE_OVERHEAD;
use super::sent_time::SentTime;
use super::store::State;
use super::{Sender, Timer};

/// The probe timeout's bounds: the retransmission timeout's without its `min_rto` floor.
pub(super) fn pto_bounds(rto_bounds: RtoBounds) -> RtoBounds {
    RtoBounds {
        min: Duration::ZERO,
        ..rto_bounds
    }
}

impl Sender {
    /// The probe timeout with its backoff: the retransmission timeout's formula without its
    /// `min_rto` floor.
    pub(super) fn pto(&self) -> Duration {
        self.pto_backed_off(self.pto_count)
    }

    /// The probe timeout doubled `backoff` times (at most `max_rto`).
    pub(super) fn pto_backed_off(&self, backoff: u32) -> Duration {
        let pto = if backoff == 0 {
            self.pto_base
        } else {
            self.rtt.rto(pto_bounds(self.rto_bounds), backoff)
        };
        debug_assert_eq!(pto, self.rtt.rto(pto_bounds(self.rto_bounds), backoff));
        pto
    }

    /// Arms the probe timeout one PTO after `from` or the last probe, whichever is later, if
    /// that comes before the retransmission timeout and anything is in flight; stops it
    /// otherwise. Only with QoS.
    pub(super) fn arm_pto(&mut self, from: Option<Instant>) {
        // A probe restarts the count, as a DATA datagram does.
        let from = from.max(self.last_probe);
        let rto = self.timers.get(Timer::Rto);
        let deadline = from
            .filter(|_| self.config.reliable && !self.unacked.is_empty())
            .map(|from| from + self.pto())
            .filter(|&pto| rto.is_some_and(|rto| pto < rto));
        self.timers.set_or_stop(Timer::Probe, deadline);
    }

    /// The probe timeout fired: the next datagram is a probe (see the module's comment), and
    /// the next timeout backs off.
    pub(super) fn on_pto(&mut self, now: Instant) {
        self.stats.probes += 1;
        self.last_probe = Some(now);
        self.pto_count = self.pto_count.saturating_add(1);
        self.declare_stale_resends_lost(now);
        let oldest = (self.unacked.as_slice().iter().copied())
            .find(|&id| self.window.entry(id).state == State::InFlight);
        match oldest {
            Some(id) => {
                let len = self.window.entry(id).span.len();
                // It leaves the flight; the resend brings it back.
                self.congestion.on_lost(len + MESSAGE_OVERHEAD);
                self.enqueue_resend(id);
                self.probe = true;
                self.ack_now = true;
            }
            _ => self.probe_heartbeat = true,
        }
        self.arm_pto(None);
    }

    /// Declares lost every resend in flight written at least a probe timeout ago: loss
    /// detection cannot judge a resend (only never-resent messages advance the largest
    /// acknowledged transmission), and one that has not been answered within a probe timeout
    /// is taken as lost, as RFC 9002 §6.1.2's time threshold takes any packet.
    fn declare_stale_resends_lost(&mut self, now: Instant) {
        let now_sent = SentTime::new(self.epoch, now);
        let pto = self.pto_backed_off(0);
        let mut abandoned = false;
        for i in 0..self.unacked.len() {
            let id = self.unacked[i];
            let entry = self.window.entry(id);
            if entry.state != State::InFlight || entry.retries == 0 {
                continue;
            }
            if entry.sent_time.after(pto) <= now_sent {
                self.congestion
                    .on_congestion_event(now_sent, entry.sent_time);
                abandoned |= self.declare_lost(id);
            }
        }
        if abandoned {
            self.forget_abandoned();
        }
    }
}
