//! The sender's window: per-message records in an offset-indexed ring, payloads in a byte ring.
//!
//! Message IDs are dense and consecutive, so a message's record sits at `id - base` in a
//! `VecDeque` (the layout of quinn-proto's `sent_packets`, without the map): lookup is an
//! index, the window advances by popping the front. Payload bytes are copied into one
//! `Box<[u8]>` allocated when the sender is created and used as a FIFO byte ring, so `send`
//! never allocates: both rings have their full capacity from the start.

use std::collections::VecDeque;
use std::time::Instant;

/// Where a payload lives in the [`ByteRing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    offset: u32,
    len: u32,
    /// Bytes of the ring this payload holds: its length plus the tail it skipped to wrap.
    consumed: u32,
}

impl Span {
    pub(super) fn len(&self) -> usize {
        self.len as usize
    }
}

/// A FIFO of byte strings in a fixed buffer. Strings are stored contiguously: one that does
/// not fit before the end of the buffer skips the tail and starts at 0, and that tail counts
/// as used until the string is released. Release happens in allocation order.
#[derive(Debug)]
pub(super) struct ByteRing {
    buf: Box<[u8]>,
    /// Start of the oldest live string's consumption.
    head: usize,
    /// Where the next string would start if it fits before the end.
    tail: usize,
    /// Bytes consumed by live strings, skipped tails included.
    used: usize,
}

impl ByteRing {
    /// A ring of `capacity` bytes (at most `u32::MAX`), allocated now.
    pub(super) fn new(capacity: usize) -> Self {
        assert!(u32::try_from(capacity).is_ok(), "validated by SenderConfig");
        Self {
            buf: vec![0; capacity].into_boxed_slice(),
            head: 0,
            tail: 0,
            used: 0,
        }
    }

    /// Bytes consumed by live strings.
    pub(super) fn used(&self) -> usize {
        self.used
    }

    /// Copies `data` in, or returns `None` if there is no contiguous room for it.
    pub(super) fn push(&mut self, data: &[u8]) -> Option<Span> {
        let cap = self.buf.len();
        let len = data.len();
        if self.used == 0 {
            self.head = 0;
            self.tail = 0;
        }
        let (offset, consumed) = if self.tail > self.head || self.used == 0 {
            // Live bytes are [head, tail): room at the end, then at the start.
            if len <= cap - self.tail {
                (self.tail, len)
            } else if len <= self.head {
                (0, cap - self.tail + len)
            } else {
                return None;
            }
        } else if len <= self.head - self.tail {
            // Wrapped: the only room is [tail, head).
            (self.tail, len)
        } else {
            return None;
        };
        self.buf[offset..offset + len].copy_from_slice(data);
        self.used += consumed;
        // `offset + len <= cap`: a comparison, not a division (this runs per message).
        self.tail = if offset + len == cap { 0 } else { offset + len };
        // The casts cannot truncate: everything is below the capacity, itself below 2^32.
        Some(Span {
            offset: offset as u32,
            len: len as u32,
            consumed: consumed as u32,
        })
    }

    /// The bytes of a live span.
    pub(super) fn get(&self, span: Span) -> &[u8] {
        let start = span.offset as usize;
        &self.buf[start..start + span.len as usize]
    }

    /// Releases the oldest live span.
    pub(super) fn pop(&mut self, span: Span) {
        let consumed = span.consumed as usize;
        debug_assert!(consumed <= self.used);
        self.used -= consumed;
        // `head < cap` and `consumed <= cap`: at most one wrap, without a division (an
        // integer division here was 8 % of the load client's time).
        let head = self.head + consumed;
        self.head = if head >= self.buf.len() {
            head - self.buf.len()
        } else {
            head
        };
        if self.used == 0 {
            self.head = 0;
            self.tail = 0;
        }
    }
}

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// Accepted by `send`, never written.
    Unsent,
    /// Written, waiting for an ACK.
    InFlight,
    /// Declared lost, waiting in the retransmission queue.
    Queued,
    /// Acknowledged by the peer.
    Acked,
    /// Given up on after too many resends, reported as undeliverable.
    Abandoned,
    /// Written once without QoS; nothing is kept.
    Released,
}

impl State {
    /// Whether the message still needs the window (its payload, its ID's place).
    pub(super) fn is_live(self) -> bool {
        matches!(self, State::Unsent | State::InFlight | State::Queued)
    }
}

/// One message's record.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    pub(super) span: Span,
    pub(super) timestamp_us: u64,
    /// When the latest transmission was written.
    pub(super) sent_time: Instant,
    /// The sender-internal datagram number of the latest transmission (see `Sender`).
    pub(super) tx: u64,
    /// How many times it was resent.
    pub(super) retries: u32,
    pub(super) state: State,
}

impl Entry {
    /// Records a transmission in datagram `tx` at `now`.
    pub(super) fn mark_written(&mut self, tx: u64, now: Instant, resend: bool, reliable: bool) {
        self.tx = tx;
        self.sent_time = now;
        if resend {
            self.retries += 1;
        }
        self.state = if reliable {
            State::InFlight
        } else {
            State::Released
        };
    }
}

/// The window: records of the messages from `base` up, and their payloads.
#[derive(Debug)]
pub(super) struct Window {
    entries: VecDeque<Entry>,
    /// ID of `entries[0]`.
    base: u64,
    ring: ByteRing,
    max_messages: usize,
}

impl Window {
    pub(super) fn new(max_messages: usize, max_bytes: usize) -> Self {
        Self {
            entries: VecDeque::with_capacity(max_messages),
            base: 0,
            ring: ByteRing::new(max_bytes),
            max_messages,
        }
    }

    /// The ID the next accepted message gets.
    pub(super) fn next_id(&self) -> u64 {
        self.base + self.entries.len() as u64
    }

    /// Messages in the window, resolved ones not yet popped included.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Bytes of the payload ring in use.
    pub(super) fn bytes_used(&self) -> usize {
        self.ring.used()
    }

    /// Appends a message, or `None` if the window is full in messages or bytes.
    pub(super) fn push(&mut self, now: Instant, timestamp_us: u64, payload: &[u8]) -> Option<u64> {
        if self.entries.len() >= self.max_messages {
            return None;
        }
        let span = self.ring.push(payload)?;
        let id = self.next_id();
        self.entries.push_back(Entry {
            span,
            timestamp_us,
            sent_time: now,
            tx: 0,
            retries: 0,
            state: State::Unsent,
        });
        Some(id)
    }

    /// The record of `id`, if it is in the window.
    pub(super) fn get(&self, id: u64) -> Option<&Entry> {
        let index = usize::try_from(id.checked_sub(self.base)?).ok()?;
        self.entries.get(index)
    }

    /// The record of `id`, which must be in the window.
    pub(super) fn entry(&self, id: u64) -> &Entry {
        &self.entries[(id - self.base) as usize]
    }

    /// The record of `id`, which must be in the window.
    pub(super) fn entry_mut(&mut self, id: u64) -> &mut Entry {
        &mut self.entries[(id - self.base) as usize]
    }

    /// A record and its payload at once.
    pub(super) fn entry_and_payload(&mut self, id: u64) -> (&mut Entry, &[u8]) {
        let index = (id - self.base) as usize;
        let payload = self.ring.get(self.entries[index].span);
        (&mut self.entries[index], payload)
    }

    /// Pops resolved messages off the front, releasing their payloads. Returns how many.
    pub(super) fn advance(&mut self) -> usize {
        let mut popped = 0;
        while let Some(front) = self.entries.front() {
            if front.state.is_live() {
                break;
            }
            self.ring.pop(front.span);
            self.entries.pop_front();
            self.base += 1;
            popped += 1;
        }
        popped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ring_wraps_and_counts_the_skipped_tail() {
        let mut ring = ByteRing::new(10);
        let a = ring.push(b"aaaa").unwrap();
        let b = ring.push(b"bbbb").unwrap();
        // 2 bytes left at the end, none at the start: 3 bytes do not fit.
        assert_eq!(ring.push(b"ccc"), None);
        ring.pop(a);
        // Now 4 free at the start: "ccc" skips the 2-byte tail.
        let c = ring.push(b"ccc").unwrap();
        assert_eq!(ring.used(), 4 + 2 + 3);
        assert_eq!(ring.get(b), b"bbbb");
        assert_eq!(ring.get(c), b"ccc");
        // Wrapped: only [3, 4) is free.
        assert_eq!(ring.push(b"dd"), None);
        let d = ring.push(b"d").unwrap();
        assert_eq!(ring.used(), 10);
        ring.pop(b);
        ring.pop(c);
        ring.pop(d);
        assert_eq!(ring.used(), 0);
        let e = ring.push(b"eeeeeeeeee").unwrap();
        assert_eq!(ring.get(e), b"eeeeeeeeee");
    }

    #[test]
    fn byte_ring_matches_a_model_under_random_use() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut ring = ByteRing::new(64);
        let mut live: VecDeque<(Span, Vec<u8>)> = VecDeque::new();
        for round in 0..20_000u32 {
            if rng.bool() && !live.is_empty() {
                let (span, _) = live.pop_front().unwrap();
                ring.pop(span);
            } else {
                let len = rng.usize(0..20);
                let data: Vec<u8> = (0..len).map(|i| (round as usize + i) as u8).collect();
                if let Some(span) = ring.push(&data) {
                    live.push_back((span, data));
                } else {
                    // Free bytes lie in at most two runs, so a refusal means fewer than
                    // 2·len bytes are free.
                    assert!(
                        ring.used() + 2 * len > 64,
                        "refused {len} at {}",
                        ring.used()
                    );
                }
            }
            for (span, data) in &live {
                assert_eq!(ring.get(*span), &data[..]);
            }
            let consumed: usize = live.iter().map(|(s, _)| s.consumed as usize).sum();
            assert_eq!(ring.used(), consumed);
            assert!(ring.used() <= 64);
        }
    }
}
