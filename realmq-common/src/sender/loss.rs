//! Loss detection (RFC 9002 §6.1 over transmission numbers), RTT samples, the
//! retransmission timeout (RFC 6298) and the retransmission queue.

use std::time::{Duration, Instant};

use super::congestion::MESSAGE_OVERHEAD;
use super::sent_time::SentTime;
use super::store::State;
use super::{Sender, SenderEvent, Timer};

impl Sender {
    /// Takes the RTT sample of an ACK whose largest ID, never resent, was acknowledged
    /// `sample` after it was sent, the receiver reporting `delay_us` since it arrived.
    ///
    /// RFC 9002 §5.3 subtracts the reported delay capped at the peer's maximum. But an ACK
    /// reporting more than twice that maximum is a late repeat: the prompt ACK was lost, and
    /// this one answers a probe or a timeout's resend, or the receiver was held up. All of its
    /// delay is the wait, none of it the path, so it is subtracted whole (`docs/QOS.md`, "RTT
    /// samples of late ACKs"). The histogram keeps the sample as measured.
    pub(super) fn on_rtt_sample(&mut self, sample: Duration, delay_us: u64) {
        let max_delay = self.config.peer_max_ack_delay;
        let reported = Duration::from_micros(delay_us);
        if reported > max_delay * 2 {
            // Never below the minimum RTT: a peer that overstates its delay cannot drag the
            // estimate under what the path has shown.
            let floor = self.rtt.min().unwrap_or_default();
            let path = sample.saturating_sub(reported).max(floor);
            self.take_rtt_sample(path, Duration::ZERO);
        } else {
            self.take_rtt_sample(sample, reported.min(max_delay));
        }
        let us = u64::try_from(sample.as_micros()).unwrap_or(u64::MAX).max(1);
        self.stats.rtt_us.saturating_record(us);
    }

    /// Declares lost every in-flight message sent in a transmission before the largest
    /// acknowledged one, if that was `packet_threshold` or more transmissions later
    /// (RFC 9002 §6.1.1), or written at least the reordering window after it (RFC 8985
    /// §6.2), or the loss delay has passed since it was sent (§6.1.2); arms the loss timer
    /// for the earliest message that is none of these yet.
    ///
    /// The reordering window matters on fast paths: with an RTT of tens of microseconds the
    /// time threshold is the 1 ms `timer_granularity`, so a loss found by neither of the
    /// other rules waited a millisecond to be repaired, where the next datagram's ACK —
    /// written later than the lost one by more than the window — proves it lost at once.
    /// Datagrams of one burst are written within microseconds and are judged by the other
    /// two rules only.
    pub(super) fn detect_lost(&mut self, now: Instant) {
        self.timers.stop(Timer::Loss);
        let Some(largest_tx) = self.largest_acked_tx else {
            return;
        };
        let delay = self
            .rtt
            .loss_delay(self.config.time_threshold, self.config.timer_granularity);
        let threshold = self.config.packet_threshold;
        // RFC 8985 §6.2 step 4: reo_wnd = min_rtt / 4 · reo_wnd_mult, at most the smoothed
        // RTT.
        let rack = match (self.largest_acked_sent, self.rtt.min()) {
            (Some(sent), Some(min)) if self.config.reordering_window_divisor > 0 => {
                let window = (min * self.reordering_window_mult
                    / self.config.reordering_window_divisor)
                    .min(self.rtt.smoothed());
                sent.checked_before(window)
            }
            _ => None,
        };
        let now_sent = SentTime::new(self.epoch, now);
        let mut loss_time: Option<SentTime> = None;
        let mut abandoned = false;
        // `unacked` is in ID order. A message never resent was first written no later than
        // any higher ID, so once one of those is at or past `largest_tx`, every later entry
        // is too: the scan stops there and touches only the messages below the largest
        // acknowledged transmission.
        for i in 0..self.unacked.len() {
            let id = self.unacked[i];
            let entry = self.window.entry(id);
            if entry.state != State::InFlight {
                continue;
            }
            if entry.tx >= largest_tx {
                if entry.retries == 0 {
                    break;
                }
                continue;
            }
            let deadline = entry.sent_time.after(delay);
            let reordering_ruled_out = rack.is_some_and(|latest| entry.sent_time <= latest);
            if entry.tx.saturating_add(threshold) <= largest_tx
                || reordering_ruled_out
                || deadline <= now_sent
            {
                self.congestion
                    .on_congestion_event(now_sent, entry.sent_time);
                abandoned |= self.declare_lost(id);
            } else {
                loss_time = Some(loss_time.map_or(deadline, |t| t.min(deadline)));
            }
        }
        if abandoned {
            self.forget_abandoned();
        }
        let loss_time = loss_time.map(|t| t.instant(self.epoch));
        self.timers.set_or_stop(Timer::Loss, loss_time);
    }

    /// The loss timer fired: some message's time threshold has passed.
    pub(super) fn on_loss_timeout(&mut self, now: Instant) {
        self.detect_lost(now);
        self.release_resolved();
        self.arm_rto();
    }

    /// The retransmission timeout fired: no ACK made progress for a whole RTO since the last
    /// DATA write. Declares lost every in-flight message whose last copy is at least one RTO
    /// old (and the oldest one in any case), and lets the next datagram go out whatever the
    /// congestion window says: it is the probe (RFC 9002 §7.5: probes are not blocked by
    /// congestion control).
    ///
    /// Declaring everything that old lost is safe because the congestion window paces the
    /// resends: a first timeout halves it, timeouts in a row drop it to its minimum
    /// (persistent congestion). Without the window, resending a whole window at every
    /// (possibly spurious) timeout doubled the queue each time, the collapse an earlier
    /// version of the simulation showed; without declaring them lost, a window whose every
    /// message was dropped (a receiver's full socket buffer) stayed "in flight", the
    /// congestion window stayed full, and only one datagram per timeout moved.
    ///
    /// The next datagram asks for an immediate ACK and the timeout doubles (RFC 6298 §5.5)
    /// until an acknowledgement makes progress.
    pub(super) fn on_rto(&mut self, now: Instant) {
        let expired = self.rto();
        self.stats.rto_fired += 1;
        // A first timeout may be spurious (ACKs stuck in a queue): it counts as one loss
        // event. Timeouts in a row mean the path is congested for good (RFC 9002 §7.6).
        let now_sent = SentTime::new(self.epoch, now);
        if self.rto_backoff == 0 {
            self.congestion.on_congestion_event(now_sent, now_sent);
        } else {
            self.congestion.on_persistent_congestion(now_sent);
        }
        self.rto_backoff = self.rto_backoff.saturating_add(1);
        self.rto_anchor = Some(now);
        self.ack_now = true;
        self.probe = true;
        let mut abandoned = false;
        let mut declared = 0usize;
        for i in 0..self.unacked.len() {
            let id = self.unacked[i];
            let entry = self.window.entry(id);
            if entry.state != State::InFlight {
                continue;
            }
            if declared == 0 || entry.sent_time.after(expired) <= now_sent {
                declared += 1;
                abandoned |= self.declare_lost(id);
            }
        }
        if abandoned {
            self.forget_abandoned();
        }
        log::debug!(
            "RTO #{} fired: {declared} messages queued, backoff now {}",
            self.stats.rto_fired,
            self.rto_backoff
        );
        self.release_resolved();
        self.arm_rto();
    }

    /// Arms the retransmission timeout one RTO (with backoff) after the last DATA write or
    /// timeout, while anything is unacknowledged.
    pub(super) fn arm_rto(&mut self) {
        let deadline = match self.rto_anchor {
            Some(anchor) if !self.unacked.is_empty() => Some(anchor + self.rto()),
            _ => None,
        };
        self.timers.set_or_stop(Timer::Rto, deadline);
        self.arm_pto(self.rto_anchor);
    }

    /// Queues `id` for a resend, or gives up on it if it was resent `max_retries` times
    /// already. Returns whether it was given up (the caller then removes it from `unacked`).
    pub(super) fn declare_lost(&mut self, id: u64) -> bool {
        self.stats.lost += 1;
        let max_retries = self.config.max_retries;
        let entry = self.window.entry_mut(id);
        // Callers pass in-flight messages only: they leave the flight either way.
        self.congestion.on_lost(entry.span.len() + MESSAGE_OVERHEAD);
        if entry.retries >= max_retries {
            entry.state = State::Abandoned;
            self.unacked_bytes -= entry.span.len();
            self.stats.undeliverable += 1;
            self.events.push_back(SenderEvent::Undeliverable { id });
            log::debug!("message {id} undeliverable after {max_retries} resends");
            return true;
        }
        self.enqueue_resend(id);
        false
    }

    /// Queues the in-flight message `id` for a resend, which must already have left the
    /// congestion window's flight.
    pub(super) fn enqueue_resend(&mut self, id: u64) {
        self.window.entry_mut(id).state = State::Queued;
        self.queued += 1;
        // Losses are found in ID order, so the queue almost always grows at its end. Only a
        // timeout or a probe can queue an ID below queued ones; that rare insert uses a
        // bisection (the queue is a `VecDeque`, not a slice, and short).
        match self.retransmit.back() {
            Some(&last) if last > id => {
                let at = self.retransmit.partition_point(|&q| q < id);
                self.retransmit.insert(at, id);
            }
            _ => self.retransmit.push_back(id),
        }
    }

    /// Removes given-up messages from `unacked`.
    pub(super) fn forget_abandoned(&mut self) {
        let window = &self.window;
        self.unacked
            .retain(|&id| window.entry(id).state != State::Abandoned);
    }
}
