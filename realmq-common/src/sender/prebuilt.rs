//! Writing new messages as the datagrams they were stored as (`store/slots.rs`): framed
//! where they lie in the window and handed out as one slice, instead of copied into the
//! caller's buffer by [`Sender::write_data`].

use std::time::Instant;

use realmq_proto::{Flags, Header};

use super::congestion::MESSAGE_OVERHEAD;
use super::sent_time::SentTime;
use super::Sender;

/// Datagrams written in place by [`Sender::write_prebuilt`]: `count` datagrams back to back
/// in `bytes`, every one `segment` bytes long but the last, which may be shorter: a
/// segmented send (UDP GSO) as it is, or `count` sends of `segment` bytes.
#[derive(Debug)]
pub struct Prebuilt<'a> {
    /// The datagrams.
    pub bytes: &'a [u8],
    /// Every datagram's length but the last one's (at most this).
    pub segment: usize,
    /// How many datagrams.
    pub count: usize,
}

impl Prebuilt<'_> {
    /// The datagrams one by one.
    pub fn datagrams(&self) -> std::slice::Chunks<'_, u8> {
        self.bytes.chunks(self.segment.max(1))
    }
}

impl Sender {
    /// Stores batches of messages (`send_many`) as whole datagrams of at most the
    /// configured size, sessions headed by a plain [`Header`] (no trailer after the
    /// datagram), so that [`write_prebuilt`](Self::write_prebuilt) can send them where they
    /// lie; datagrams left with fewer than `pad_slack` bytes free are padded to the full
    /// size. Call before the first message; with QoS only (without, nothing is stored whole).
    pub fn store_datagrams(&mut self, pad_slack: usize) {
        if self.config.reliable {
            self.window
                .store_datagrams(self.config.max_datagram_size, pad_slack);
        }
    }

    /// Writes up to `max` datagrams of new messages where they were stored whole, each headed
    /// by `header` (its flags as the sender wants them: `ACK_NOW` where
    /// [`wants_ack_now`](Self::wants_ack_now) or when the last leaves nothing pending), and
    /// returns them: the same datagrams as [`write_data`](Self::write_data) would write one
    /// by one, with their PADDING in front of the DATA frame, and marked written. `None` when
    /// the next thing to write is not such a datagram (a resend, a probe, messages the
    /// congestion window does not take whole, or messages not stored so): write that with
    /// `write_data`. The datagrams stop at the first one of another length.
    ///
    /// Never inlined: called once for a burst of datagrams, it costs a call there, and
    /// inlined into the caller's loop it crowded out the inlining of `write_data`'s (the
    /// general path, 1,024-byte messages and no QoS, did 4 to 7 % more instructions).
    #[inline(never)]
    pub fn write_prebuilt(
        &mut self,
        now: Instant,
        header: Header,
        max: usize,
    ) -> Option<Prebuilt<'_>> {
        if !self.retransmit.is_empty() || self.probe || !self.config.reliable {
            return None;
        }
        if self.last_write_time.0 != now {
            self.last_write_time = (now, SentTime::new(self.epoch, now));
        }
        let sent_at = self.last_write_time.1;
        let mut burst: Option<(usize, usize, usize)> = None; // start, end, segment
        let mut count = 0;
        let mut last_start = 0;
        while count < max {
            let Some(slot) = self.window.next_slot() else {
                break;
            };
            debug_assert_eq!(slot.first_id(), self.next_unsent, "the next to write");
            if let Some((_, end, segment)) = burst {
                // Back to back, and not longer than the first; the one before it full length.
                if slot.start() != end || slot.len() > segment || end - last_start != segment {
                    break;
                }
            }
            let news = slot.count() as usize;
            let payload_bytes = slot.payload_bytes();
            let flight = payload_bytes + news * MESSAGE_OVERHEAD;
            if !self.congestion.can_send(flight) {
                break;
            }
            let mut header = header;
            if self.ack_now {
                header.flags = header.flags.with(Flags::ACK_NOW);
            }
            self.window.frame_slot(&slot, header);
            let tx = self.next_tx;
            self.mark_run(slot.first_id(), slot.count(), tx, sent_at);
            self.finish_write(now, 0, news, payload_bytes, flight);
            last_start = slot.start();
            burst = Some(match burst {
                None => (slot.start(), slot.end(), slot.len()),
                Some((start, _, segment)) => (start, slot.end(), segment),
            });
            count += 1;
        }
        let (start, end, segment) = burst?;
        // The last datagram of a burst asks for an ACK at once, as `write_data`'s caller does.
        if !self.has_pending_data() {
            self.window.add_slot_flags(last_start, Flags::ACK_NOW);
        }
        Some(Prebuilt {
            bytes: self.window.framed(start..end),
            segment,
            count,
        })
    }
}
