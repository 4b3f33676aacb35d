//! Writing DATA frames: resends first, then new messages, a run of those in one copy.

use std::time::Instant;

use realmq_proto::{DatagramWriter, EncodedRun, Message, MAX_MESSAGES_PER_FRAME};

use super::congestion::MESSAGE_OVERHEAD;
use super::sent_time::SentTime;
use super::store::State;
use super::Sender;

impl Sender {
    /// Writes one DATA frame into `w`: queued resends first (ascending IDs, original
    /// timestamps), then new messages, as many as fit. Returns how many messages it wrote; 0
    /// if there was nothing to send or the first message did not fit (start a fresh datagram).
    pub fn write_data(&mut self, now: Instant, w: &mut DatagramWriter<'_>) -> usize {
        self.queue_tail_probe();
        let tx = self.next_tx;
        if self.last_write_time.0 != now {
            self.last_write_time = (now, SentTime::new(self.epoch, now));
        }
        let sent_at = self.last_write_time.1;
        let reliable = self.config.reliable;
        // Bytes this datagram puts in flight; the congestion window bounds them, except in a
        // timeout's probe.
        let limited = reliable && !self.probe;
        // With no resend queued (resends go first), the frame begins with a run of new
        // messages, head and all in one copy: the common case. Begun with its first message
        // alone, and the run pushed after it, a datagram of 21 messages cost the load client
        // 12 % more instructions (`docs/BENCHMARKS.md`).
        let fresh = if self.retransmit.is_empty() && self.next_unsent < self.new_ids_end() {
            let first = self.next_unsent;
            let max_count = MAX_MESSAGES_PER_FRAME.min(self.new_ids_end() - first);
            let budget = self.flight_budget(limited, 0);
            self.window
                .frame_run(first, w.remaining(), budget, max_count)
        } else {
            None
        };
        let (mut writer, mut flight, mut resends, mut news, mut new_bytes, mut full);
        if let Some(run) = fresh {
            let (first, count, added) = (run.stored.first_id, run.stored.count, run.flight);
            // Ended by a limit, the run left nothing that fits.
            full = run.limited;
            let Ok(frame) = w.data_run(run.stored) else {
                return 0;
            };
            writer = frame;
            self.mark_run(first, count, tx, sent_at);
            (flight, resends, news) = (added, 0, count as usize);
            new_bytes = added - count as usize * MESSAGE_OVERHEAD;
        } else {
            let Some((id, resend)) = self.next_to_write(0, 0) else {
                return 0;
            };
            let (timestamp_us, payload) = self.window.message(id);
            let cost = payload.len() + MESSAGE_OVERHEAD;
            if limited && !self.congestion.can_send(cost) {
                return 0;
            }
            let message = Message {
                id,
                timestamp_us,
                payload,
            };
            let Ok(frame) = w.data(message) else {
                return 0;
            };
            writer = frame;
            self.window.mark_written(id, tx, sent_at, resend, reliable);
            flight = cost;
            (resends, news) = (usize::from(resend), usize::from(!resend));
            // Payload bytes of the new messages.
            new_bytes = if resend { 0 } else { cost - MESSAGE_OVERHEAD };
            full = false;
        }
        while !full {
            let Some((id, resend)) = self.next_to_write(resends, news) else {
                break;
            };
            // New messages that continue the frame go in as one run of their stored form.
            let (last_id, last_timestamp_us) = writer.last();
            if !resend && id == last_id + 1 {
                let budget = self.flight_budget(limited, flight);
                let max_count =
                    (MAX_MESSAGES_PER_FRAME - writer.count()).min(self.new_ids_end() - id);
                let run = self.window.run(id, writer.room(), budget, max_count);
                let (count, added, run_limited) = (run.count, run.flight, run.limited);
                let encoded = EncodedRun {
                    bytes: run.bytes,
                    count,
                    first_id: id,
                    previous_timestamp_us: last_timestamp_us,
                    last_timestamp_us: run.last_timestamp_us,
                };
                if count > 0 {
                    if writer.push_run(encoded).is_err() {
                        break;
                    }
                    self.mark_run(id, count, tx, sent_at);
                    flight += added;
                    news += count as usize;
                    new_bytes += added - count as usize * MESSAGE_OVERHEAD;
                    // A run ended by a limit leaves nothing that fits (resends came first): no
                    // second look for the next message, whose empty run cost the datagram
                    // about 120 instructions.
                    full = run_limited;
                    continue;
                }
                if run_limited {
                    break;
                }
                // Stored bare, the next message is pushed alone (below) if it fits.
            }
            let (timestamp_us, payload) = self.window.message(id);
            let cost = payload.len() + MESSAGE_OVERHEAD;
            if limited && !self.congestion.can_send(flight + cost) {
                break;
            }
            let message = Message {
                id,
                timestamp_us,
                payload,
            };
            if writer.push(message).is_err() {
                break;
            }
            self.window.mark_written(id, tx, sent_at, resend, reliable);
            flight += cost;
            if resend {
                resends += 1;
            } else {
                news += 1;
                new_bytes += cost - MESSAGE_OVERHEAD;
            }
        }
        // Book-keeping outside the writer's borrow.
        self.finish_write(now, resends, news, new_bytes, flight);
        resends + news
    }

    /// The book-keeping of a DATA datagram just written, datagram `next_tx`: `resends`
    /// resends from the front of the queue and `news` new messages of `new_bytes` payload
    /// bytes, `flight` bytes in flight in all. Always inlined: a call cost the general path
    /// (1,024-byte messages) 7 % more instructions, as its callers' inlining changed.
    #[inline(always)]
    pub(super) fn finish_write(
        &mut self,
        now: Instant,
        resends: usize,
        news: usize,
        new_bytes: usize,
        flight: usize,
    ) {
        let tx = self.next_tx;
        let reliable = self.config.reliable;
        if resends > 0 {
            self.retransmit.drain(..resends);
            self.queued -= resends;
        }
        if reliable {
            self.stats.retransmitted += resends as u64;
        } else {
            self.stats.tail_probes += resends as u64;
            self.arm_probe_timeout(now);
        }
        let first_new = self.next_unsent;
        self.next_unsent += news as u64;
        if reliable {
            self.unacked.extend(first_new..self.next_unsent);
            self.unacked_bytes += new_bytes;
        }
        if news > 0 {
            self.largest_sent = Some(self.next_unsent - 1);
        }
        self.stats.sent += news as u64;
        self.stats.datagrams += 1;
        self.next_tx += 1;
        self.ack_now = false;
        self.probe = false;
        if reliable {
            self.congestion.on_sent(flight);
            self.rearm_after_write(now);
        } else {
            self.on_datagram_sent(now);
            // Everything written is released, except the newest message: the tail probe
            // (`unreliable.rs`).
            self.window
                .advance_below(self.next_unsent.saturating_sub(1));
        }
        log::trace!("tx {tx}: {resends} resent, {news} new");
    }

    /// Bytes a datagram holding `flight` bytes may still put in flight: what the congestion
    /// window leaves when it is `limited`, anything otherwise.
    fn flight_budget(&self, limited: bool, flight: usize) -> usize {
        if limited {
            self.congestion.headroom(flight)
        } else {
            usize::MAX
        }
    }

    /// Records the first transmission of the `count` new messages from `first` in datagram
    /// `tx`: in flight with QoS; without, released but for the newest.
    pub(super) fn mark_run(&mut self, first: u64, count: u64, tx: u64, sent_at: SentTime) {
        if self.config.reliable {
            self.window
                .mark_run_written(first, count, tx, sent_at, true);
        } else {
            self.window.mark_run_released(first, count, tx, sent_at);
        }
    }

    /// What a reliable DATA datagram written at `now` does to the timers: the heartbeat
    /// and the asks count from it, and the RTO and the probe timeout are re-armed from it.
    /// A burst writes many datagrams at one `now`; when the previous one did this at the
    /// same `now` and nothing else has changed the sender since (every other method clears
    /// `armed_by_write_at`), doing it again gives the same deadlines and is skipped: it was
    /// about 300 instructions a datagram of 21 messages (the `Instant` arithmetic of three
    /// timers), a tenth of the load client's (`docs/BENCHMARKS.md`). Debug builds do it
    /// anyway and check that nothing moved.
    #[inline(always)]
    fn rearm_after_write(&mut self, now: Instant) {
        self.rto_anchor = Some(now);
        if self.armed_by_write_at == Some(now) {
            if cfg!(debug_assertions) {
                let (timers, heartbeat_due) = (self.timers, self.heartbeat.poll_timeout());
                self.on_datagram_sent(now);
                self.arm_rto();
                debug_assert_eq!(
                    (timers, heartbeat_due),
                    (self.timers, self.heartbeat.poll_timeout()),
                    "a write at the same `now` moved a timer"
                );
            }
            return;
        }
        self.on_datagram_sent(now);
        self.arm_rto();
        self.armed_by_write_at = Some(now);
    }

    /// The next message for a DATA frame that already holds `resends` resends and `news` new
    /// messages: the next queued resend (dropping queue entries acknowledged meanwhile), else
    /// the next unsent message. `true` marks a resend.
    fn next_to_write(&mut self, resends: usize, news: usize) -> Option<(u64, bool)> {
        while let Some(&id) = self.retransmit.get(resends) {
            if self
                .window
                .get(id)
                .is_some_and(|e| e.state == State::Queued)
            {
                return Some((id, true));
            }
            self.retransmit.remove(resends);
        }
        let id = self.next_unsent + news as u64;
        (id < self.new_ids_end()).then_some((id, false))
    }
}
