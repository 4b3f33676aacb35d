//! Datagrams stored whole: a reliable sender's batch of messages laid out in the ring
//! as the datagrams that will carry them, each datagram's messages behind room for its
//! header and DATA head, one datagram right behind the other. Written for the first time,
//! such a datagram is framed where it lies ([`realmq_proto::frame_stored_run`]) and a run of
//! them goes to the socket as one slice, one segmented send (UDP GSO), without the copy of
//! every message into a separate datagram buffer that the general path makes
//! (`docs/BENCHMARKS.md`). The layout of Aeron's term buffers, where a publication writes
//! each message framed and the sender sends a range of the buffer.
//!
//! The messages in a slot are ordinary unsent messages to the rest of the window: stretches
//! whose stored forms lie back to back, every one behind its [`FollowingPrefix`]. A slot's
//! room in front only breaks a run where a datagram would end anyway. If the general path
//! writes any of a slot's messages (resends went first, the congestion window had room for
//! only part of it), the slot is passed over and its messages go the general way.

use std::collections::VecDeque;

use realmq_proto::{
    data_head_len, frame_stored_run, DataHead, FollowingPrefix, Header, HEADER_LEN,
    MAX_FOLLOWING_PREFIX, MAX_MESSAGES_PER_FRAME,
};

use super::{Span, Stretch, Window};
use crate::sender::fill::FillPayload;

/// One stored datagram: where it lies in the ring and what its DATA frame holds. Offsets
/// and lengths are below the ring's size, itself below 2^32; a frame holds fewer than 2^14
/// messages, and a payload fits a datagram: 32 bytes a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::sender) struct Slot {
    /// The first message's ID; the others follow one by one.
    first_id: u64,
    /// Their timestamp.
    timestamp_us: u64,
    /// Where the datagram starts in the ring: its room in front of the messages.
    start: u32,
    /// The datagram's length, from `start` to the end of the last message.
    len: u32,
    /// How many messages.
    count: u16,
    /// Their payload length.
    payload_len: u16,
    /// The first prefix's length.
    first_prefix: u8,
    /// Where the first message's stored form (its prefix) starts, from `start`.
    front: u16,
}

impl Slot {
    /// The first message's ID.
    pub(in crate::sender) fn first_id(&self) -> u64 {
        self.first_id
    }

    /// How many messages.
    pub(in crate::sender) fn count(&self) -> u64 {
        u64::from(self.count)
    }

    /// Their payload bytes.
    pub(in crate::sender) fn payload_bytes(&self) -> usize {
        usize::from(self.count) * usize::from(self.payload_len)
    }

    /// Where the datagram starts in the ring.
    pub(in crate::sender) fn start(&self) -> usize {
        self.start as usize
    }

    /// The datagram's length.
    pub(in crate::sender) fn len(&self) -> usize {
        self.len as usize
    }

    /// Where the datagram ends in the ring.
    pub(in crate::sender) fn end(&self) -> usize {
        self.start() + self.len()
    }

    /// Where the first message's stored form starts in the ring.
    fn first_at(&self) -> usize {
        self.start() + usize::from(self.front)
    }
}

/// The stored datagrams not yet written, oldest first, and their shape.
#[derive(Debug)]
pub(super) struct Slots {
    /// A datagram's size at most.
    datagram: usize,
    /// A datagram left with fewer bytes free than this is padded to `datagram` bytes, so a
    /// burst is a run of equal datagrams (GSO's segments).
    pad_slack: usize,
    queue: VecDeque<Slot>,
}

impl Slots {
    /// Room for `max_messages` slots (each holds at least one message), allocated now.
    pub(super) fn new(datagram: usize, pad_slack: usize, max_messages: usize) -> Self {
        Self {
            datagram,
            pad_slack,
            queue: VecDeque::with_capacity(max_messages),
        }
    }
}

impl Window {
    /// Stores datagrams whole from now on: batches of `datagram`-byte datagrams (at most),
    /// each padded to that size when fewer than `pad_slack` bytes would be left. Does nothing
    /// unless the ring holds at least two such datagrams (it must always have room for one).
    pub(in crate::sender) fn store_datagrams(&mut self, datagram: usize, pad_slack: usize) {
        if self.ring.capacity() >= 2 * datagram {
            self.slots = Some(Slots::new(datagram, pad_slack, self.max_messages));
        }
    }

    /// Whether batches are stored as datagrams ([`store_datagrams`](Self::store_datagrams)).
    pub(super) fn stores_datagrams(&self) -> bool {
        self.slots.is_some()
    }

    /// Stores up to `count` messages of `len` bytes stamped `timestamp_us` as datagrams
    /// (see the module): as many as fill one, then the next, each its messages' stretch (two
    /// when the first message's prefix differs, counted from the batch before). Returns how
    /// many fitted; `None` if a datagram cannot hold even one such message (the caller
    /// stores them the general way).
    pub(super) fn push_datagrams(
        &mut self,
        timestamp_us: u64,
        len: usize,
        count: u64,
        fill: &mut impl FillPayload,
    ) -> Option<u64> {
        // The queue holds unsent messages' slots only, so never more than the window's
        // messages, whichever way the caller writes.
        let slots = self.drop_written_slots()?;
        let (datagram, pad_slack) = (slots.datagram, slots.pad_slack);
        let follow = FollowingPrefix::new(timestamp_us, timestamp_us, len).ok()?;
        let stride = follow.len() + len;
        let mut encoded = [0u8; MAX_FOLLOWING_PREFIX];
        follow.write(&mut encoded);
        let mut pushed = 0;
        while pushed < count {
            let free = self.max_messages.saturating_sub(self.len()) as u64;
            if free == 0 {
                break;
            }
            let first_id = self.next_id();
            // None of these fails for a message the sender admitted (its payload fits a
            // datagram, its ID and timestamp are in range); if one did, what is stored
            // stays, and the rest goes the general way. Large payloads are stored behind
            // their prefix too (`BARE_FROM` is for copies, and these are not copied).
            let first = FollowingPrefix::new(self.last_timestamp_us, timestamp_us, len).ok();
            let shape = first.and_then(|first| {
                let head = data_head_len(first_id, timestamp_us, len).ok()?;
                // Header, head and the first payload, then `stride` bytes a message.
                let room = datagram.checked_sub(HEADER_LEN + head + len)?;
                Some((first, head, room))
            });
            let Some((first, head, room)) = shape else {
                return (pushed > 0).then_some(pushed);
            };
            let m = (1 + (room / stride) as u64)
                .min(count - pushed)
                .min(free)
                .min(MAX_MESSAGES_PER_FRAME);
            let rest = m as usize - 1;
            let unpadded = HEADER_LEN + head + len + rest * stride;
            let pad = match datagram - unpadded {
                left if left < pad_slack => left,
                _ => 0,
            };
            // The head ends where the first prefix does (both end with the length field).
            let front = HEADER_LEN + head + pad - first.len();
            let slot_len = front + first.len() + len + rest * stride;
            let first_prefix = first.len();
            let stored = self.ring.push(0, slot_len, |_, slot| {
                // The room in front is written when the datagram is framed (`frame_slot`).
                let messages = &mut slot[front..];
                let (first_message, others) = messages.split_at_mut(first_prefix + len);
                first.write(first_message);
                fill.fill(first_id, &mut first_message[first_prefix..]);
                fill.fill_slots(first_id + 1, others, stride, &encoded[..follow.len()]);
            });
            let Some(stored) = stored else {
                break;
            };
            self.push_slot_stretches(stored, front, (first, follow), len, m, timestamp_us);
            // The casts cannot truncate (see `Slot`).
            let slot = Slot {
                first_id,
                timestamp_us,
                start: stored.offset,
                len: slot_len as u32,
                count: m as u16,
                payload_len: len as u16,
                first_prefix: first_prefix as u8,
                front: front as u16,
            };
            // Never allocates: a slot holds a message, the window at most `max_messages`.
            if let Some(slots) = self.slots.as_mut() {
                slots.queue.push_back(slot);
            }
            self.last_timestamp_us = timestamp_us;
            pushed += m;
        }
        Some(pushed)
    }

    /// The unsent stretches of a slot stored at `stored` (the whole slot as one string of
    /// the ring), its messages `front` bytes in: the first behind `prefixes.0`, the `m - 1`
    /// others behind `prefixes.1`; one stretch if the two prefixes are the same.
    fn push_slot_stretches(
        &mut self,
        stored: Span,
        front: usize,
        (first, follow): (FollowingPrefix, FollowingPrefix),
        len: usize,
        m: u64,
        timestamp_us: u64,
    ) {
        let first_stride = first.len() + len;
        let stride = follow.len() + len;
        let rest = m as usize - 1;
        // The slot ends with its last message: the ring's mark after the slot is its end
        // mark; the first message's is that less the others. The casts cannot truncate: all
        // of it is inside the ring, below 2^32.
        let first_span = Span {
            offset: stored.offset + front as u32,
            len: len as u32,
            end_mark: stored.end_mark.wrapping_sub((rest * stride) as u32),
            prefix: first.len() as u8,
        };
        if first == follow {
            self.push_unsent(Stretch {
                first: first_span,
                count: m as usize,
                timestamp_us,
            });
            return;
        }
        self.push_unsent(Stretch {
            first: first_span,
            count: 1,
            timestamp_us,
        });
        if rest > 0 {
            self.push_unsent(Stretch {
                first: Span {
                    offset: first_span.offset + first_stride as u32,
                    len: len as u32,
                    end_mark: first_span.end_mark.wrapping_add(stride as u32),
                    prefix: follow.len() as u8,
                },
                count: rest,
                timestamp_us,
            });
        }
    }

    /// The oldest stored datagram if its messages are the next to be written and none of them
    /// has been: slots the general path wrote from are passed over (and dropped).
    pub(in crate::sender) fn next_slot(&mut self) -> Option<Slot> {
        let unsent_start = self.unsent_start();
        let front_at = self.unsent.front().map(|s| s.first.offset as usize);
        let unsent_len = self.unsent_len as u64;
        let slot = *self.drop_written_slots()?.queue.front()?;
        let whole = slot.first_id == unsent_start
            && front_at == Some(slot.first_at())
            && unsent_len >= slot.count();
        whole.then_some(slot)
    }

    /// Drops the slots the general path wrote any message of (they start below the first
    /// unsent message) and returns the rest, if batches are stored as datagrams.
    fn drop_written_slots(&mut self) -> Option<&mut Slots> {
        let unsent_start = self.unsent_start();
        let slots = self.slots.as_mut()?;
        while slots
            .queue
            .front()
            .is_some_and(|s| s.first_id < unsent_start)
        {
            slots.queue.pop_front();
        }
        Some(slots)
    }

    /// Frames `slot`, the one [`next_slot`](Self::next_slot) returned, where it lies, with
    /// `header`, and takes it off the stored datagrams. The caller then marks its messages
    /// written.
    pub(in crate::sender) fn frame_slot(&mut self, slot: &Slot, header: Header) {
        let head = DataHead {
            first_id: slot.first_id,
            first_timestamp_us: slot.timestamp_us,
            first_len: usize::from(slot.payload_len),
            count: slot.count(),
        };
        let framed = frame_stored_run(
            self.ring.bytes_mut(),
            slot.start(),
            (slot.first_at(), usize::from(slot.first_prefix)),
            header,
            &head,
        );
        debug_assert!(framed.is_ok(), "a slot has room for its frame: {framed:?}");
        if let Some(slots) = self.slots.as_mut() {
            let popped = slots.queue.pop_front();
            debug_assert_eq!(popped.as_ref(), Some(slot));
        }
    }

    /// Sets `flags` in the header of the framed datagram that starts at `start`.
    pub(in crate::sender) fn add_slot_flags(&mut self, start: usize, flags: realmq_proto::Flags) {
        self.ring.bytes_mut()[start + realmq_proto::header_field::KIND_FLAGS] |= flags.bits();
    }

    /// The ring's bytes `range`: framed datagrams, back to back.
    pub(in crate::sender) fn framed(&self, range: std::ops::Range<usize>) -> &[u8] {
        self.ring.bytes(range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_takes_32_bytes() {
        // The queue has room for a slot a message of the window, allocated up front.
        assert_eq!(std::mem::size_of::<Slot>(), 32);
    }
}
