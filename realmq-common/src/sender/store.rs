//! The sender's window: records of the written messages in an offset-indexed ring, the
//! messages not yet written as stretches, and every message in a byte ring in its wire form.
//!
//! Message IDs are dense and consecutive, so a written message's record sits at `id - base`
//! in a `VecDeque` (the layout of quinn-proto's `sent_packets`, without the map): lookup is
//! an index, the window advances by popping the front. Messages are copied into one
//! `Box<[u8]>` allocated when the sender is created and used as a FIFO byte ring, so `send`
//! never allocates: the rings have their full capacity from the start.
//!
//! Each message is stored as a DATA frame would carry it right after the message before it
//! (its [`FollowingPrefix`], then the payload), directly behind that message unless the ring
//! wrapped. A run of new messages is then one slice of the ring, copied into a datagram in one
//! piece ([`Window::run`]) instead of being encoded message by message.
//!
//! A message gets its record when it is first written, not when it is stored: until then it
//! belongs to a [`Stretch`] of messages stored alike (a batch from `send_many` is one), which
//! is all [`Window::run`] needs. Writing a record at store time and the transmission into it
//! at send time was two passes over 48 bytes a message, the second often after the first had
//! left the L1 cache: with 64-byte messages the load client now does 5 % fewer instructions
//! and, in callgrind's cache model, 13 % fewer L1 write misses. A batch of messages stored
//! bare (256 bytes and more) is one stretch too: as a stretch a message, queued and taken
//! off again, they had cost 9 % more instructions with 1,024 bytes (`docs/BENCHMARKS.md`).
//!
//! With QoS, not even then: a datagram's new messages become one [`WrittenRun`]
//! (`written.rs`), and get records only when one of them must change alone. The records
//! before the runs are indexed at `id - base`; a run is found by its first ID.

use std::collections::VecDeque;

use realmq_proto::{data_head_len, FollowingPrefix, StoredRun, MAX_FOLLOWING_PREFIX};

use super::congestion::MESSAGE_OVERHEAD;
use super::fill::FillPayload;
use super::sent_time::SentTime;
use slots::Slots;
use written::{WrittenRun, WrittenRuns};

mod slots;
mod written;

/// Where a message lives in the [`ByteRing`]: its encoded prefix, then its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    /// Where the stored form starts (the prefix, or the payload of one stored bare).
    offset: u32,
    /// The payload's length.
    len: u32,
    /// The ring's count of bytes ever taken, right after this message was stored (wrapping;
    /// see [`ByteRing::release_through`]): what it holds — prefix, payload and any tail it
    /// skipped to wrap — is the difference from the message before it.
    end_mark: u32,
    /// The prefix's length: 0 for a message stored bare.
    prefix: u8,
}

impl Span {
    /// The payload's length.
    pub(super) fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the message is stored in its wire form (with its prefix), so it can join a
    /// run.
    pub(super) fn has_prefix(&self) -> bool {
        self.prefix > 0
    }

    /// Where the stored form (prefix and payload) starts and ends in the ring.
    fn encoded(&self) -> std::ops::Range<usize> {
        let start = self.offset as usize;
        start..start + self.stride()
    }

    /// The stored form's length: prefix and payload.
    fn stride(&self) -> usize {
        usize::from(self.prefix) + self.len as usize
    }

    /// The span of a message stored alike `k` places behind this one.
    fn after(self, k: usize) -> Self {
        // Cannot truncate: the distance is inside the ring, below 2^32.
        let step = (k * self.stride()) as u32;
        Self {
            offset: self.offset + step,
            end_mark: self.end_mark.wrapping_add(step),
            ..self
        }
    }
}

/// Payloads of at least this many bytes are stored bare, without their prefix: one this large
/// fills most of a datagram alone, so it gains nothing from runs, and stored behind a
/// prefix it cost the client a fifth of its rate with 1,024-byte messages
/// (`docs/BENCHMARKS.md`): the copy into the datagram read it a few bytes into a cache
/// line. Batches stored as datagrams (`slots.rs`) are never copied, and keep their prefixes
/// at any size.
const BARE_FROM: usize = 256;

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
    /// Bytes ever consumed, skipped tails included, wrapping at 2^32 (the capacity is below
    /// it, so the difference of two marks of live strings is exact).
    taken: u32,
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
            taken: 0,
        }
    }

    /// Bytes consumed by live strings.
    pub(super) fn used(&self) -> usize {
        self.used
    }

    /// Its size in bytes.
    fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Bytes `range` of the buffer, live strings' bytes.
    fn bytes(&self, range: std::ops::Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// The whole buffer, to write into live strings in place (`slots.rs`).
    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// Stores a message: `prefix_len` bytes, then `payload_len` bytes of payload, back to
    /// back, both filled by `write(prefix, payload)`. Returns `None` if there is no
    /// contiguous room for both.
    pub(super) fn push(
        &mut self,
        prefix_len: usize,
        payload_len: usize,
        write: impl FnOnce(&mut [u8], &mut [u8]),
    ) -> Option<Span> {
        let cap = self.buf.len();
        let len = prefix_len + payload_len;
        self.restart_if_empty();
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
        let (prefix, body) = self.buf[offset..offset + len].split_at_mut(prefix_len);
        write(prefix, body);
        self.take(offset, len, consumed);
        // The casts cannot truncate: everything is below the capacity, itself below 2^32,
        // and a prefix is at most `MAX_FOLLOWING_PREFIX` bytes.
        Some(Span {
            offset: offset as u32,
            len: payload_len as u32,
            end_mark: self.taken,
            prefix: prefix_len as u8,
        })
    }

    /// Reserves up to `max` strings of `stride` bytes each, back to back in the contiguous
    /// room at the tail (never wrapping): returns where they start, the mark before them
    /// (string `k`'s end mark is this plus `(k + 1) · stride`) and the room for as many as
    /// fit, to be filled by the caller, or `None` if not one fits there.
    fn push_stretch(&mut self, stride: usize, max: usize) -> Option<(usize, u32, &mut [u8])> {
        self.restart_if_empty();
        let room = if self.tail > self.head || self.used == 0 {
            self.buf.len() - self.tail
        } else {
            self.head - self.tail
        };
        let count = max.min(room / stride.max(1));
        if count == 0 {
            return None;
        }
        let (offset, len, mark) = (self.tail, count * stride, self.taken);
        self.take(offset, len, len);
        Some((offset, mark, &mut self.buf[offset..offset + len]))
    }

    /// An empty ring starts again at 0, where its longest contiguous room is.
    fn restart_if_empty(&mut self) {
        if self.used == 0 {
            self.head = 0;
            self.tail = 0;
        }
    }

    /// Records `len` bytes written at `offset`, which consumed `consumed` bytes of the ring
    /// (`len` plus any tail skipped to wrap): the tail moves behind them.
    fn take(&mut self, offset: usize, len: usize, consumed: usize) {
        self.used += consumed;
        // The cast cannot truncate: `consumed` is at most the capacity.
        self.taken = self.taken.wrapping_add(consumed as u32);
        // `offset + len <= cap`: a comparison, not a division (this runs per message).
        self.tail = if offset + len == self.buf.len() {
            0
        } else {
            offset + len
        };
    }

    /// The payload of a live span.
    pub(super) fn get(&self, span: Span) -> &[u8] {
        &self.buf[span.encoded()][usize::from(span.prefix)..]
    }

    /// `len` bytes from `first`'s stored form on.
    fn stored_from(&self, first: Span, len: usize) -> &[u8] {
        let start = first.offset as usize;
        &self.buf[start..start + len]
    }

    /// Releases the oldest live spans up to and including the one whose
    /// [`Span::end_mark`] is `end_mark`: each span's consumption starts where the one before
    /// it ended, so what they consumed is what was taken up to that mark, less what was
    /// taken after it, found without a pass over them.
    pub(super) fn release_through(&mut self, end_mark: u32) {
        let after = self.taken.wrapping_sub(end_mark) as usize;
        debug_assert!(after <= self.used);
        self.release(self.used - after);
    }

    /// Releases the oldest live spans, which together consumed `consumed` bytes: the head
    /// just moves that far.
    fn release(&mut self, consumed: usize) {
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
        self.restart_if_empty();
    }
}

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
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
    /// Whether the written message still needs the window (its payload, its ID's place).
    pub(super) fn is_live(self) -> bool {
        matches!(self, State::InFlight | State::Queued)
    }
}

/// A written message's record.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    pub(super) span: Span,
    pub(super) timestamp_us: u64,
    /// When the latest transmission was written.
    pub(super) sent_time: SentTime,
    /// The sender-internal datagram number of the latest transmission (see `Sender`).
    pub(super) tx: u64,
    /// How many times it was resent.
    pub(super) retries: u32,
    pub(super) state: State,
}

impl Entry {
    /// The record of a message stored at `span` and stamped `timestamp_us`, first written in
    /// datagram `tx` at `sent_time`, in `state`.
    pub(super) fn first_write(
        span: Span,
        timestamp_us: u64,
        (tx, sent_time): (u64, SentTime),
        state: State,
    ) -> Self {
        Self {
            span,
            timestamp_us,
            sent_time,
            tx,
            retries: 0,
            state,
        }
    }

    /// Records a resend in datagram `tx` at `now`.
    pub(super) fn mark_resent(&mut self, tx: u64, now: SentTime, reliable: bool) {
        self.tx = tx;
        self.sent_time = now;
        self.retries += 1;
        self.state = State::after_writing(reliable);
    }
}

impl State {
    /// A message's state once written: in flight, or released without QoS.
    fn after_writing(reliable: bool) -> Self {
        if reliable {
            State::InFlight
        } else {
            State::Released
        }
    }
}

/// Messages stored and not yet written, alike and back to back: the same payload length
/// behind the same prefix, and the same timestamp (a batch of `send_many`; a message stored
/// alone is a stretch of one).
#[derive(Debug, Clone, Copy)]
struct Stretch {
    /// The first one's span; message `k`'s is [`Span::after`]`(k)`.
    first: Span,
    /// How many, at least one.
    count: usize,
    timestamp_us: u64,
}

/// The window: records of written messages from `base` up, the written runs after them,
/// the stretches of unsent messages after those, and their payloads.
#[derive(Debug)]
pub(super) struct Window {
    entries: VecDeque<Entry>,
    /// ID of `entries[0]`.
    base: u64,
    /// The messages after those with records, written once and described by runs
    /// (`written.rs`): a reliable sender's messages stored in their wire form. Without QoS,
    /// and stored bare, a message gets its record when written (`take_written`).
    written: WrittenRuns,
    /// The messages after the written ones, in ID order.
    unsent: VecDeque<Stretch>,
    /// How many messages `unsent` holds.
    unsent_len: usize,
    ring: ByteRing,
    max_messages: usize,
    /// The timestamp of the last message pushed: the next one's prefix counts from it.
    last_timestamp_us: u64,
    /// The datagrams stored whole, if batches are stored so (`slots.rs`).
    slots: Option<Slots>,
}

/// What a run of records written once and still in flight adds up to
/// ([`Window::acknowledge_first_transmissions`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct FirstTransmissions {
    /// Their payload bytes.
    pub(super) payload_bytes: usize,
    /// The lowest transmission number among them.
    pub(super) lowest_tx: u64,
    /// The highest transmission number among them, and when it was written.
    pub(super) highest: (u64, SentTime),
}

/// A run of new messages found by [`Window::frame_run`], to begin a DATA frame with.
#[derive(Debug)]
pub(super) struct FrameRun<'a> {
    /// The messages, as the frame takes them.
    pub(super) stored: StoredRun<'a>,
    /// What they add to the bytes in flight.
    pub(super) flight: usize,
    /// Whether a limit ended the run (see [`Run::limited`]).
    pub(super) limited: bool,
}

/// A run of new messages found by [`Window::run`]: consecutive IDs, stored back to back.
#[derive(Debug)]
pub(super) struct Run<'a> {
    /// Their stored forms, back to back.
    pub(super) bytes: &'a [u8],
    /// How many.
    pub(super) count: u64,
    /// The last one's timestamp.
    pub(super) last_timestamp_us: u64,
    /// What they add to the bytes in flight (payloads plus the per-message allowance).
    pub(super) flight: usize,
    /// Whether a limit ended it (the room, the flight budget, the count) rather than the
    /// next message lying elsewhere in the ring or stored bare: a run from the message after
    /// it would then be empty.
    pub(super) limited: bool,
}

impl Window {
    pub(super) fn new(max_messages: usize, max_bytes: usize) -> Self {
        Self {
            entries: VecDeque::with_capacity(max_messages),
            base: 0,
            written: WrittenRuns::with_capacity(max_messages),
            unsent: VecDeque::with_capacity(max_messages),
            unsent_len: 0,
            ring: ByteRing::new(max_bytes),
            max_messages,
            last_timestamp_us: 0,
            slots: None,
        }
    }

    /// The ID the next accepted message gets.
    pub(super) fn next_id(&self) -> u64 {
        self.unsent_start() + self.unsent_len as u64
    }

    /// The ID of the first message never written (the next ID if there is none).
    fn unsent_start(&self) -> u64 {
        self.written_start() + self.written.len() as u64
    }

    /// The ID of the first message in a written run: the first without a record.
    fn written_start(&self) -> u64 {
        self.base + self.entries.len() as u64
    }

    /// Messages in the window, resolved ones not yet popped included.
    pub(super) fn len(&self) -> usize {
        self.entries.len() + self.written.len() + self.unsent_len
    }

    /// Bytes of the payload ring in use.
    pub(super) fn bytes_used(&self) -> usize {
        self.ring.used()
    }

    /// Appends a message, or `None` if the window is full in messages or bytes.
    /// `timestamp_us` is at most `MAX_MESSAGE_ID` (the sender clamps it).
    pub(super) fn push(&mut self, timestamp_us: u64, payload: &[u8]) -> Option<u64> {
        let prefix = self.prefix_after_last(timestamp_us, payload.len());
        self.push_with(
            timestamp_us,
            payload.len(),
            prefix,
            &mut |_, body: &mut [u8]| body.copy_from_slice(payload),
        )
    }

    /// Appends up to `count` messages of `len` bytes, all stamped `timestamp_us`, each
    /// written in place by `fill(id, payload)`. Returns how many fitted.
    pub(super) fn push_many(
        &mut self,
        timestamp_us: u64,
        len: usize,
        count: u64,
        mut fill: impl FillPayload,
    ) -> u64 {
        if self.stores_datagrams() {
            if let Some(pushed) = self.push_datagrams(timestamp_us, len, count, &mut fill) {
                return pushed;
            }
        }
        // The first message's prefix counts from the last one pushed, every later one's from
        // its predecessor in the batch: the same timestamp, so the same prefix for all.
        let mut prefix = self.prefix_after_last(timestamp_us, len);
        let mut pushed = 0;
        while pushed < count {
            // After the first, messages all take the same bytes (in their wire form, or bare):
            // as many as fit before the ring's end are stored in one stretch.
            if (pushed > 0 && prefix.is_some()) || len >= BARE_FROM {
                let stretch =
                    self.push_stretch(timestamp_us, len, prefix, count - pushed, &mut fill);
                pushed += stretch;
                if stretch > 0 {
                    continue;
                }
            }
            // One at a time: the first of messages in their wire form, or the one that wraps.
            if self
                .push_with(timestamp_us, len, prefix, &mut fill)
                .is_none()
            {
                return pushed;
            }
            if pushed == 0 {
                prefix = self.prefix_after_last(timestamp_us, len);
            }
            pushed += 1;
        }
        count
    }

    /// Stores up to `max` messages of `len` bytes stamped `timestamp_us`, each behind
    /// `prefix`, back to back in the ring's contiguous room (no wrap), with exactly the
    /// records and bytes [`push_with`](Self::push_with) would give them one by one, but the
    /// ring's and the window's bookkeeping done once. Returns how many (0: none fits before
    /// the ring's end, or the window is full).
    fn push_stretch(
        &mut self,
        timestamp_us: u64,
        len: usize,
        prefix: Option<FollowingPrefix>,
        max: u64,
        fill: &mut impl FillPayload,
    ) -> u64 {
        let free = self.max_messages.saturating_sub(self.len());
        let max = usize::try_from(max).unwrap_or(usize::MAX).min(free);
        let prefix_len = prefix.map_or(0, |p| p.len());
        let stride = prefix_len + len;
        // A prefix, or a payload of at least `BARE_FROM` bytes (`push_many`).
        debug_assert!(stride > 0);
        let first_id = self.next_id();
        let Some((offset, mark, room)) = self.ring.push_stretch(stride, max) else {
            return 0;
        };
        let count = room.len() / stride;
        // Every message's prefix is the same: encoded once, written with its payload.
        let mut encoded = [0u8; MAX_FOLLOWING_PREFIX];
        if let Some(prefix) = prefix {
            prefix.write(&mut encoded);
        }
        fill.fill_slots(first_id, room, stride, &encoded[..prefix_len]);
        // The casts cannot truncate, as in `ByteRing::push`.
        let first = Span {
            offset: offset as u32,
            len: len as u32,
            end_mark: mark.wrapping_add(stride as u32),
            prefix: prefix_len as u8,
        };
        self.push_unsent(Stretch {
            first,
            count,
            timestamp_us,
        });
        self.last_timestamp_us = timestamp_us;
        count as u64
    }

    /// The prefix a message of `len` bytes stamped `timestamp_us` is stored behind if it
    /// comes next: `None` stores it bare. Large payloads are stored bare (see `BARE_FROM`),
    /// and so would be one whose prefix cannot be encoded (the sender clamps timestamps, so
    /// none is): neither joins a run.
    fn prefix_after_last(&self, timestamp_us: u64, len: usize) -> Option<FollowingPrefix> {
        (len < BARE_FROM)
            .then(|| FollowingPrefix::new(self.last_timestamp_us, timestamp_us, len))
            .and_then(Result::ok)
    }

    /// Appends a message of `len` bytes behind `prefix` (`None`: bare), its payload written
    /// by `fill(id, payload)`.
    fn push_with(
        &mut self,
        timestamp_us: u64,
        len: usize,
        prefix: Option<FollowingPrefix>,
        fill: &mut impl FillPayload,
    ) -> Option<u64> {
        if self.len() >= self.max_messages {
            return None;
        }
        let id = self.next_id();
        let prefix_len = prefix.map_or(0, |p| p.len());
        let span = self.ring.push(prefix_len, len, |head, body| {
            if let Some(prefix) = prefix {
                prefix.write(head);
            }
            fill.fill(id, body);
        })?;
        self.last_timestamp_us = timestamp_us;
        self.push_unsent(Stretch {
            first: span,
            count: 1,
            timestamp_us,
        });
        Some(id)
    }

    /// Appends a stretch of messages just stored.
    fn push_unsent(&mut self, stretch: Stretch) {
        self.unsent_len += stretch.count;
        // Never allocates: every stretch holds a message, and the window at most
        // `max_messages`, which the deque has room for.
        self.unsent.push_back(stretch);
    }

    /// The longest run of unsent messages from `first` on, the first message never written,
    /// that lie back to back in the ring, whose stored forms fit in `room` bytes, that add
    /// at most `flight_budget` bytes in flight and that are at most `max_count`. The caller
    /// knows `first`'s predecessor is the last message of its frame, so the run's stored
    /// prefixes are valid there. Stretches are taken whole, by arithmetic.
    #[inline(always)]
    pub(super) fn run(
        &self,
        first: u64,
        room: usize,
        flight_budget: usize,
        max_count: u64,
    ) -> Run<'_> {
        debug_assert_eq!(first, self.unsent_start(), "runs start at the first unsent");
        let limit = usize::try_from(max_count).map_or(self.unsent_len, |m| m.min(self.unsent_len));
        let (mut count, mut bytes, mut flight) = (0, 0, 0);
        let mut last_timestamp_us = 0;
        let mut limited = true;
        // Where the next message of the run must start: right behind the one before.
        let mut previous_end = self.unsent.front().map_or(0, |s| s.first.offset as usize);
        // By index: the run mostly ends in the first stretch, and the deque's iterator cost
        // more to set up than that stretch to take.
        for i in 0..self.unsent.len() {
            let stretch = &self.unsent[i];
            if count == limit {
                break;
            }
            let span = stretch.first;
            if span.offset as usize != previous_end || !span.has_prefix() {
                limited = false;
                break;
            }
            let (stride, cost) = (span.stride(), span.len() + MESSAGE_OVERHEAD);
            if bytes + stride > room || flight + cost > flight_budget {
                break;
            }
            // As many of the stretch as the limits take: each adds `stride` bytes and
            // `cost` in flight.
            let taken = stretch
                .count
                .min(limit - count)
                .min((room - bytes) / stride)
                .min((flight_budget - flight) / cost);
            count += taken;
            bytes += taken * stride;
            flight += taken * cost;
            previous_end = span.offset as usize + taken * stride;
            last_timestamp_us = stretch.timestamp_us;
            if taken < stretch.count {
                break;
            }
        }
        Run {
            bytes: match self.unsent.front() {
                Some(front) if count > 0 => self.ring.stored_from(front.first, bytes),
                _ => &[],
            },
            count: count as u64,
            last_timestamp_us,
            flight,
            limited,
        }
    }

    /// The longest run from `first`, the first message never written, that begins a DATA
    /// frame in `room` bytes (the frame's head included), with [`run`](Self::run)'s other
    /// limits: the first message's payload and the others' stored forms, in one piece of the
    /// ring; a message stored bare goes alone. `None` if not even the first message fits.
    pub(super) fn frame_run(
        &self,
        first: u64,
        room: usize,
        flight_budget: usize,
        max_count: u64,
    ) -> Option<FrameRun<'_>> {
        let front = self.unsent.front()?;
        let (span, timestamp_us) = (front.first, front.timestamp_us);
        let head = data_head_len(first, timestamp_us, span.len()).ok()?;
        let (bytes, count, last_timestamp_us, flight, limited) = if span.has_prefix() {
            // The run counts the first message's stored prefix; the frame writes its head
            // instead.
            let prefix = usize::from(span.prefix);
            let room = (room + prefix).checked_sub(head)?;
            let run = self.run(first, room, flight_budget, max_count);
            let bytes = run.bytes.get(prefix..).unwrap_or_default();
            (
                bytes,
                run.count,
                run.last_timestamp_us,
                run.flight,
                run.limited,
            )
        } else {
            // Stored bare (a large message), it goes alone: no run follows it.
            let cost = span.len() + MESSAGE_OVERHEAD;
            let left = room.checked_sub(head + span.len())?;
            let fits = cost <= flight_budget && max_count > 0;
            // The next message, as large and behind a prefix of 3 bytes at least, does not
            // fit: the frame is full.
            let full = front.count > 1 && left < span.len() + 3;
            (
                self.ring.get(span),
                u64::from(fits),
                timestamp_us,
                cost,
                full,
            )
        };
        (count > 0).then_some(FrameRun {
            stored: StoredRun {
                first_id: first,
                first_timestamp_us: timestamp_us,
                first_len: span.len(),
                bytes,
                count,
                last_timestamp_us,
            },
            flight,
            limited,
        })
    }

    /// Records the first transmission without QoS of the `count` messages from `first` on,
    /// the first never written, in datagram `tx` at `now`. The sender keeps only the newest
    /// message written (for the tail probe, `unreliable.rs`): when nothing written before is
    /// live, the messages before the newest are released at once rather than given records
    /// that the same write pops.
    pub(super) fn mark_run_released(&mut self, first: u64, count: u64, tx: u64, now: SentTime) {
        debug_assert_eq!(first, self.unsent_start(), "written in ID order");
        let mut left = usize::try_from(count).expect("at most the unsent messages");
        while left > 0 {
            let front = self.unsent.front().expect("at most the unsent messages");
            let taken = left.min(front.count);
            if taken > 1 && self.nothing_live() {
                self.take_released(taken, tx, now);
            } else {
                self.take_written(taken, tx, now, State::Released);
            }
            left -= taken;
        }
    }

    /// Records the first transmission of the `count` messages from `first` on, the first
    /// never written, in datagram `tx` at `now`: they get their records.
    pub(super) fn mark_run_written(
        &mut self,
        first: u64,
        count: u64,
        tx: u64,
        now: SentTime,
        reliable: bool,
    ) {
        debug_assert_eq!(first, self.unsent_start(), "written in ID order");
        let state = State::after_writing(reliable);
        let mut left = usize::try_from(count).expect("at most the unsent messages");
        while left > 0 {
            let front = self.unsent.front().expect("at most the unsent messages");
            let taken = left.min(front.count);
            self.take_written(taken, tx, now, state);
            left -= taken;
        }
    }

    /// Takes the first `taken` messages (at most the first stretch's) off the unsent ones:
    /// returns the first one's span and their timestamp.
    #[inline(always)]
    fn take_unsent(&mut self, taken: usize) -> (Span, u64) {
        let stretch = self.unsent.front_mut().expect("an unsent message");
        debug_assert!(taken <= stretch.count);
        let taken_from = (stretch.first, stretch.timestamp_us);
        if taken == stretch.count {
            self.unsent.pop_front();
        } else {
            stretch.first = stretch.first.after(taken);
            stretch.count -= taken;
        }
        self.unsent_len -= taken;
        taken_from
    }

    /// Takes the first `taken` unsent messages (at most the first stretch's), written in
    /// datagram `tx` at `now`: in flight and stored in their wire form, they join the written
    /// runs; otherwise they get their records. Messages stored bare (256 bytes and more) fill
    /// a datagram alone or nearly, so their runs would hold one each: that way the load
    /// client did 1,247 instructions a 1,024-byte message, as records 1,188 (callgrind,
    /// `docs/BENCHMARKS.md`). Without QoS (`Released`) nothing needs a run.
    #[inline(always)]
    fn take_written(&mut self, taken: usize, tx: u64, now: SentTime, state: State) {
        let (first, timestamp_us) = self.take_unsent(taken);
        if state == State::InFlight && first.has_prefix() {
            self.written.push(WrittenRun {
                first_id: self.unsent_start(),
                first,
                count: taken,
                timestamp_us,
                tx,
                sent_time: now,
                state,
            });
            return;
        }
        // Records come before runs: those before these get theirs first (none, unless the
        // sender mixes message sizes across `BARE_FROM`).
        if self.written.len() > 0 {
            self.make_records_through(self.unsent_start());
        }
        let record = |span| Entry::first_write(span, timestamp_us, (tx, now), state);
        // One alone (a bare message fills its datagram) is pushed, not extended with: the
        // deque's `extend` is a call of 50 instructions.
        if taken == 1 {
            self.entries.push_back(record(first));
        } else {
            self.entries
                .extend((0..taken).map(|k| record(first.after(k))));
        }
    }

    /// Whether no written message is in flight or queued: no runs, and no live record.
    fn nothing_live(&self) -> bool {
        self.written.len() == 0 && self.entries.iter().all(|e| !e.state.is_live())
    }

    /// Takes the first `taken` unsent messages (at most the first stretch's, two at least),
    /// written without QoS in datagram `tx` at `now`, when nothing written before them is
    /// live: the records before them and all but the last of them are released, and only
    /// the last gets a record. Made and popped in the same write, a record a message had
    /// cost the client without QoS 30 % more instructions than now (`docs/BENCHMARKS.md`).
    fn take_released(&mut self, taken: usize, tx: u64, now: SentTime) {
        let (first, timestamp_us) = self.take_unsent(taken);
        self.pop(self.entries.len());
        let released = taken - 1;
        self.ring
            .release_through(first.after(released - 1).end_mark);
        self.base += released as u64;
        self.entries.push_back(Entry::first_write(
            first.after(released),
            timestamp_us,
            (tx, now),
            State::Released,
        ));
    }

    /// Records a transmission of `id` in datagram `tx` at `now`: a resend of a written
    /// message, or the first transmission of the first unsent one.
    #[inline]
    pub(super) fn mark_written(
        &mut self,
        id: u64,
        tx: u64,
        now: SentTime,
        resend: bool,
        reliable: bool,
    ) {
        if resend {
            self.entry_mut(id).mark_resent(tx, now, reliable);
        } else {
            debug_assert_eq!(id, self.unsent_start(), "written in ID order");
            self.take_written(1, tx, now, State::after_writing(reliable));
        }
    }

    /// The timestamp and payload of `id`: a written message, or the first unsent one.
    pub(super) fn message(&self, id: u64) -> (u64, &[u8]) {
        if id < self.unsent_start() {
            let entry = self.entry(id);
            return (entry.timestamp_us, self.ring.get(entry.span));
        }
        debug_assert_eq!(id, self.unsent_start(), "only the first unsent is read");
        let front = self.unsent.front().expect("an unsent message");
        (front.timestamp_us, self.ring.get(front.first))
    }

    /// The record of `id`, if it is a written message in the window (made from its run if
    /// it has none yet).
    pub(super) fn get(&self, id: u64) -> Option<Entry> {
        let index = usize::try_from(id.checked_sub(self.base)?).ok()?;
        match self.entries.get(index) {
            Some(entry) => Some(*entry),
            None => self.written.record(id),
        }
    }

    /// The record of `id`, if it is a written message in the window, to change.
    pub(super) fn get_mut(&mut self, id: u64) -> Option<&mut Entry> {
        self.make_records_through(id);
        let index = usize::try_from(id.checked_sub(self.base)?).ok()?;
        self.entries.get_mut(index)
    }

    /// The record of `id`, which must be a written message in the window.
    pub(super) fn entry(&self, id: u64) -> Entry {
        self.get(id).expect("a written message in the window")
    }

    /// The record of `id`, which must be a written message in the window, to change.
    pub(super) fn entry_mut(&mut self, id: u64) -> &mut Entry {
        self.get_mut(id).expect("a written message in the window")
    }

    /// The records of `count` messages from `first` on, which must all be in the window.
    pub(super) fn entries_mut(
        &mut self,
        first: u64,
        count: usize,
    ) -> impl Iterator<Item = &mut Entry> {
        if count > 0 {
            self.make_records_through(first + count as u64 - 1);
        }
        let start = (first - self.base) as usize;
        self.entries.range_mut(start..start + count)
    }

    /// Gives the messages of the written runs up to the one holding `id` their records.
    pub(super) fn make_records_through(&mut self, id: u64) {
        while self.written.front().is_some_and(|run| run.first_id <= id) {
            let run = self.written.pop_front().expect("a front run");
            // Never allocates: records and runs together hold at most the window's messages.
            self.entries.extend((0..run.count).map(|k| run.record(k)));
        }
    }

    /// Acknowledges `count` records from `first` on (all in the window) if every one is of a
    /// message written once and still in flight (`InFlight`, never resent), and returns what
    /// they add up to; otherwise leaves them as they were and returns `None`. One pass: each
    /// record is marked as it is summed, and those marked before one that fails are put back
    /// in flight, which they were (a read-only pass and then a marking one cost the load
    /// client 5.5 instructions a message more, of 173: callgrind, `docs/BENCHMARKS.md`).
    pub(super) fn acknowledge_first_transmissions(
        &mut self,
        first: u64,
        count: usize,
    ) -> Option<FirstTransmissions> {
        if count == 0 {
            return None;
        }
        if first >= self.written_start() {
            // Whole runs: acknowledged as runs, without records.
            if let Some(sum) = self.written.acknowledge(first, count) {
                return Some(sum);
            }
        }
        self.make_records_through(first + count as u64 - 1);
        let start = (first - self.base) as usize;
        // The records as up to two plain slices, each walked by a tight loop (the deque's
        // own iterator over a range kept both halves' ends live in every step).
        let (front, back) = self.entries.as_mut_slices();
        let (front, back): (&mut [Entry], &mut [Entry]) = if start < front.len() {
            let in_front = count.min(front.len() - start);
            (
                &mut front[start..start + in_front],
                &mut back[..count - in_front],
            )
        } else {
            let at = start - front.len();
            (&mut back[at..at + count], &mut [])
        };
        let head = front.first()?;
        let mut sum = FirstTransmissions {
            payload_bytes: 0,
            lowest_tx: head.tx,
            highest: (head.tx, head.sent_time),
        };
        let mut marked = acknowledge_in_flight(front, &mut sum);
        if marked == front.len() {
            marked += acknowledge_in_flight(back, &mut sum);
        }
        if marked < count {
            for entry in front.iter_mut().chain(back.iter_mut()).take(marked) {
                entry.state = State::InFlight;
            }
            return None;
        }
        Some(sum)
    }

    /// Pops resolved messages off the front, releasing their payloads. Returns how many.
    #[cfg(test)]
    pub(super) fn advance(&mut self) -> usize {
        self.advance_below(self.next_id())
    }

    /// Pops resolved messages with IDs below `end` off the front, releasing their payloads.
    /// Returns how many.
    pub(super) fn advance_below(&mut self, end: u64) -> usize {
        if let Some(last) = end.checked_sub(1) {
            self.make_records_through(last);
        }
        let below = usize::try_from(end.saturating_sub(self.base)).unwrap_or(usize::MAX);
        let popped = (self.entries.iter().take(below))
            .take_while(|e| !e.state.is_live())
            .count();
        self.pop(popped);
        popped
    }

    /// Pops the messages with IDs below `end`, which the caller knows are all resolved (the
    /// sender: everything below the oldest ID in flight), off the front, releasing their
    /// payloads — without a pass over their records, or over their runs' messages.
    pub(super) fn release_below(&mut self, end: u64) {
        let popped = usize::try_from(end.saturating_sub(self.base))
            .unwrap_or(usize::MAX)
            .min(self.entries.len());
        debug_assert!(
            self.entries.iter().take(popped).all(|e| !e.state.is_live()),
            "a live message below {end}"
        );
        self.pop(popped);
        if self.entries.is_empty() {
            if let Some((released, end_mark)) = self.written.release_below(end) {
                self.ring.release_through(end_mark);
                self.base += released as u64;
            }
        }
    }

    /// Pops the `count` oldest records and releases their bytes.
    fn pop(&mut self, count: usize) {
        if count == 0 {
            return;
        }
        self.ring
            .release_through(self.entries[count - 1].span.end_mark);
        // Records are `Copy`: draining the front just moves the start.
        self.entries.drain(..count);
        self.base += count as u64;
    }

    /// Gives every written message its record (tests look at records).
    #[cfg(test)]
    fn make_all_records(&mut self) {
        self.make_records_through(u64::MAX);
    }
}

/// Marks `records` acknowledged, in order, while each is a first transmission in flight,
/// and adds them to `sum` (payload bytes, lowest transmission, the first record of the
/// highest). Returns how many it marked: `records.len()` unless one was not.
///
/// Messages are first written in ID order, each datagram at a higher transmission number
/// than the one before, all its messages at one time: in ID order, records never resent have
/// transmission numbers that never fall, and records of one number one time. So the lowest
/// and highest of a run of them are its first and last record's, and the loop only checks,
/// marks and sums (it had compared every record's number both ways: 16 instructions a
/// record, now 11; `docs/BENCHMARKS.md`).
fn acknowledge_in_flight(records: &mut [Entry], sum: &mut FirstTransmissions) -> usize {
    let mut bytes = sum.payload_bytes;
    let mut marked = records.len();
    for (k, entry) in records.iter_mut().enumerate() {
        if entry.state != State::InFlight || entry.retries != 0 {
            marked = k;
            break;
        }
        entry.state = State::Acked;
        bytes += entry.span.len();
    }
    let marked_records = &records[..marked];
    debug_assert!(
        marked_records.windows(2).all(|w| w[0].tx <= w[1].tx
            && (w[0].tx != w[1].tx || w[0].sent_time == w[1].sent_time)),
        "first transmissions out of order"
    );
    if let (Some(first), Some(last)) = (marked_records.first(), marked_records.last()) {
        sum.lowest_tx = sum.lowest_tx.min(first.tx);
        if last.tx > sum.highest.0 {
            sum.highest = (last.tx, last.sent_time);
        }
    }
    sum.payload_bytes = bytes;
    marked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_takes_48_bytes() {
        // Written when a message is sent and read when it is acknowledged: its size is
        // memory traffic per message (`sent_time.rs`).
        assert_eq!(std::mem::size_of::<Entry>(), 48);
    }

    /// Stores `prefix` and `payload`.
    fn push(ring: &mut ByteRing, prefix: &[u8], payload: &[u8]) -> Option<Span> {
        ring.push(prefix.len(), payload.len(), |head, body| {
            head.copy_from_slice(prefix);
            body.copy_from_slice(payload);
        })
    }

    /// Every message's span and timestamp, written or not, in ID order.
    fn spans(w: &Window) -> Vec<(Span, u64)> {
        let written = (w.base..w.unsent_start()).map(|id| {
            let e = w.entry(id);
            (e.span, e.timestamp_us)
        });
        let unsent = w
            .unsent
            .iter()
            .flat_map(|s| (0..s.count).map(move |k| (s.first.after(k), s.timestamp_us)));
        written.chain(unsent).collect()
    }

    /// Every message's span and timestamp, and its stored form, of a window.
    fn contents(w: &Window) -> Vec<(Span, u64, Vec<u8>)> {
        spans(w)
            .into_iter()
            .map(|(span, timestamp_us)| (span, timestamp_us, w.ring.buf[span.encoded()].to_vec()))
            .collect()
    }

    /// Writes the first `count` unsent messages (at most all of them) in one datagram.
    fn write(w: &mut Window, count: usize) {
        let count = count.min(w.unsent_len) as u64;
        w.mark_run_written(w.unsent_start(), count, 1, SentTime::default(), true);
    }

    /// Acknowledges the `count` oldest messages (at most all of them), writing those that
    /// were not, and pops them.
    fn release(w: &mut Window, count: usize) {
        write(w, count.saturating_sub(written(w)));
        w.make_all_records();
        for e in w.entries.iter_mut().take(count) {
            e.state = State::Acked;
        }
        w.advance();
    }

    /// How many messages were written: those with records and those in written runs.
    fn written(w: &Window) -> usize {
        (w.unsent_start() - w.base) as usize
    }

    /// Without QoS, writing runs by `mark_run_released` leaves the window as giving every
    /// message its record and then popping all but the newest (what the sender did before)
    /// leaves it: the same messages, spans, stored bytes and ring use, across the ring's
    /// wrap, bare messages and a newest message held live (a tail probe queued).
    #[test]
    fn released_runs_leave_the_window_as_records_popped_after_writing() {
        let mut rng = fastrand::Rng::with_seed(8);
        let (mut released, mut recorded) = (Window::new(300, 6_000), Window::new(300, 6_000));
        let mut timestamp_us = 0;
        let mut shortcuts = 0;
        for round in 0..3_000u64 {
            if rng.bool() {
                timestamp_us += rng.u64(0..3);
                let len = if rng.u8(0..5) == 0 {
                    rng.usize(256..400)
                } else {
                    rng.usize(0..60)
                };
                let count = rng.u64(0..20);
                for w in [&mut released, &mut recorded] {
                    w.push_many(timestamp_us, len, count, |id, p: &mut [u8]| {
                        p.fill(id as u8)
                    });
                }
            }
            // Now and then the newest written message is queued for a tail probe: live.
            if rng.u8(0..10) == 0 && written(&recorded) > 0 {
                for w in [&mut released, &mut recorded] {
                    let newest = w.unsent_start() - 1;
                    w.make_all_records();
                    w.entry_mut(newest).state = State::Queued;
                }
            } else if rng.u8(0..10) == 0 {
                for w in [&mut released, &mut recorded] {
                    w.make_all_records();
                    for e in w.entries.iter_mut() {
                        e.state = State::Released;
                    }
                }
            }
            let count = rng.usize(0..=recorded.unsent_len.min(40)) as u64;
            let (first, sent) = (recorded.unsent_start(), SentTime::default());
            let before = released.entries.len();
            released.mark_run_released(first, count, round, sent);
            shortcuts += usize::from(released.entries.len() < before + count as usize);
            recorded.mark_run_written(first, count, round, sent, false);
            for w in [&mut released, &mut recorded] {
                let end = w.unsent_start().saturating_sub(1);
                w.advance_below(end);
            }
            assert_eq!(released.base, recorded.base, "round {round}");
            assert_eq!(contents(&released), contents(&recorded), "round {round}");
            assert_eq!(
                released.bytes_used(),
                recorded.bytes_used(),
                "round {round}"
            );
            let records = |w: &Window| -> Vec<_> {
                (w.entries.iter())
                    .map(|e| {
                        (
                            e.span,
                            e.timestamp_us,
                            e.tx,
                            e.sent_time,
                            e.state,
                            e.retries,
                        )
                    })
                    .collect()
            };
            assert_eq!(records(&released), records(&recorded), "round {round}");
        }
        assert!(
            shortcuts > 500,
            "{shortcuts} writes released messages at once"
        );
    }

    #[test]
    fn records_are_made_when_messages_are_written_and_describe_what_was_stored() {
        // Stretches split by runs written from them: each record made at writing must be
        // the span and timestamp the message was stored with, and the state, transmission
        // and time of that writing; the rest stay unsent.
        let mut rng = fastrand::Rng::with_seed(3);
        let mut w = Window::new(500, 40_000);
        let mut timestamp_us = 0;
        for round in 0..2_000u64 {
            if rng.bool() {
                timestamp_us += rng.u64(0..2);
                let (len, count) = (rng.usize(0..50), rng.u64(0..30));
                w.push_many(timestamp_us, len, count, |id, p: &mut [u8]| {
                    p.fill(id as u8)
                });
            }
            let before = spans(&w);
            let before_written = written(&w);
            let count = rng.usize(0..=w.unsent_len.min(40));
            let (tx, sent) = (
                round,
                SentTime::default().after(std::time::Duration::from_micros(round)),
            );
            w.mark_run_written(w.unsent_start(), count as u64, tx, sent, round % 3 != 0);
            assert_eq!(spans(&w), before, "round {round}: spans changed by writing");
            assert_eq!(written(&w), before_written + count);
            let new = w.base + before_written as u64..w.unsent_start();
            for e in new.map(|id| w.entry(id)) {
                assert_eq!((e.tx, e.sent_time, e.retries), (tx, sent, 0));
                assert_eq!(e.state, State::after_writing(round % 3 != 0));
            }
            assert_eq!(w.len(), before.len());
            assert_eq!(
                w.unsent.iter().map(|s| s.count).sum::<usize>(),
                w.unsent_len
            );
            if rng.u8(0..4) == 0 {
                let count = rng.usize(0..=written(&w));
                release(&mut w, count);
            }
        }
    }

    #[test]
    fn push_many_stores_exactly_what_pushing_one_by_one_does_across_wraps() {
        // A small ring and window, batches of random sizes and timestamps, the front
        // released at random: the stretch path must leave records and bytes identical to
        // the message-by-message path, wraps and refusals included.
        let mut rng = fastrand::Rng::with_seed(9);
        let (mut many, mut one) = (Window::new(24, 1_500), Window::new(24, 1_500));
        let mut timestamp_us = 0;
        for _ in 0..5_000 {
            if rng.u8(0..3) == 0 {
                let count = rng.usize(0..=many.len());
                release(&mut many, count);
                release(&mut one, count);
            } else {
                timestamp_us += rng.u64(0..3);
                // Short messages in their wire form, and some stored bare.
                let len = [rng.usize(0..40), BARE_FROM + rng.usize(0..40)]
                    [usize::from(rng.u8(0..4) == 0)];
                let count = rng.u64(0..12);
                let body = |id: u64, p: &mut [u8]| p.fill(id as u8);
                let accepted = many.push_many(timestamp_us, len, count, body);
                let mut singly = 0;
                while singly < count {
                    let id = one.next_id();
                    let payload = vec![id as u8; len];
                    if one.push(timestamp_us, &payload).is_none() {
                        break;
                    }
                    singly += 1;
                }
                assert_eq!(accepted, singly);
            }
            assert_eq!(contents(&many), contents(&one));
            assert_eq!(many.bytes_used(), one.bytes_used());
        }
    }

    /// [`Window::run`] message by message. Returns the run's count, bytes and flight, and
    /// whether a limit ended it.
    fn run_walked(
        w: &Window,
        room: usize,
        flight_budget: usize,
        max_count: u64,
    ) -> (u64, Vec<u8>, usize, bool) {
        let unsent = &spans(w)[written(w)..];
        let (mut bytes, mut flight, mut count) = (0, 0, 0);
        let first_offset = unsent.first().map_or(0, |(span, _)| span.offset as usize);
        let mut previous_end = first_offset;
        // Whether a limit ended the walk, not a message that cannot continue it.
        let mut limited = true;
        for (span, _) in unsent.iter().take(max_count as usize) {
            let encoded = span.encoded();
            let cost = span.len() + MESSAGE_OVERHEAD;
            if encoded.start != previous_end || !span.has_prefix() {
                limited = false;
                break;
            }
            if bytes + encoded.len() > room || flight + cost > flight_budget {
                break;
            }
            bytes += encoded.len();
            flight += cost;
            previous_end = encoded.end;
            count += 1;
        }
        let stored = w.ring.buf[first_offset..first_offset + bytes].to_vec();
        (count, stored, flight, limited)
    }

    #[test]
    fn a_run_takes_stretches_whole_and_is_what_a_walk_record_by_record_finds() {
        // Batches and single messages of random sizes (some stored bare), the front
        // released at random so the ring wraps, and runs asked for from every unsent
        // message with random room, flight budget and count.
        let mut rng = fastrand::Rng::with_seed(11);
        let mut w = Window::new(200, 4_000);
        let mut timestamp_us = 0;
        let mut runs = 0;
        for _ in 0..5_000 {
            match rng.u8(0..4) {
                0 => {
                    let count = rng.usize(0..=w.len());
                    release(&mut w, count);
                }
                1 => {
                    timestamp_us += rng.u64(0..2);
                    let len = [rng.usize(0..40), BARE_FROM + rng.usize(0..40)][rng.usize(0..2)];
                    let _ = w.push(timestamp_us, &vec![9; len]);
                }
                _ => {
                    timestamp_us += rng.u64(0..2);
                    let (len, count) = (rng.usize(0..70), rng.u64(0..60));
                    w.push_many(timestamp_us, len, count, |id, p: &mut [u8]| {
                        p.fill(id as u8)
                    });
                }
            }
            // Some of the unsent messages written, in runs as `write_data` takes them.
            if rng.u8(0..4) == 0 {
                let count = rng.usize(0..=w.unsent_len);
                write(&mut w, count);
            }
            if w.unsent_len == 0 {
                continue;
            }
            let first = w.unsent_start();
            let (room, budget) = (rng.usize(0..3_000), rng.usize(0..3_000));
            let max_count = [rng.u64(0..80), u64::MAX][rng.usize(0..2)];
            let run = w.run(first, room, budget, max_count);
            let (count, stored, flight, limited) = run_walked(&w, room, budget, max_count);
            assert_eq!(run.count, count);
            assert_eq!(run.bytes, &stored[..]);
            assert_eq!(run.flight, flight);
            assert_eq!(run.limited, limited);
            let unsent = &spans(&w)[written(&w)..];
            if limited {
                // Nothing continues a run that a limit ended.
                let next = unsent.get(count as usize).map(|(span, _)| span);
                if let Some(span) = next.filter(|_| count < max_count) {
                    let cost = span.len() + MESSAGE_OVERHEAD;
                    assert!(
                        stored.len() + span.stride() > room || flight + cost > budget,
                        "a run from {first} ended by a limit, but the message after it fits"
                    );
                }
            }
            if count > 0 {
                assert_eq!(run.last_timestamp_us, unsent[count as usize - 1].1);
                runs += usize::from(count > 1);
            }
        }
        assert!(runs > 1_000, "only {runs} runs of two or more messages");
    }

    #[test]
    fn byte_ring_wraps_and_counts_the_skipped_tail() {
        let mut ring = ByteRing::new(10);
        let a = push(&mut ring, b"", b"aaaa").unwrap();
        let b = push(&mut ring, b"", b"bbbb").unwrap();
        // 2 bytes left at the end, none at the start: 3 bytes do not fit.
        assert_eq!(push(&mut ring, b"", b"ccc"), None);
        ring.release_through(a.end_mark);
        // Now 4 free at the start: "ccc" skips the 2-byte tail.
        let c = push(&mut ring, b"", b"ccc").unwrap();
        assert_eq!(ring.used(), 4 + 2 + 3);
        assert_eq!(ring.get(b), b"bbbb");
        assert_eq!(ring.get(c), b"ccc");
        // Wrapped: only [3, 4) is free.
        assert_eq!(push(&mut ring, b"", b"dd"), None);
        let d = push(&mut ring, b"", b"d").unwrap();
        assert_eq!(ring.used(), 10);
        ring.release_through(b.end_mark);
        // c and d at once.
        ring.release_through(d.end_mark);
        assert_eq!(ring.used(), 0);
        let e = push(&mut ring, b"", b"eeeeeeeeee").unwrap();
        assert_eq!(ring.get(e), b"eeeeeeeeee");
    }

    #[test]
    fn byte_ring_matches_a_model_under_random_use() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut ring = ByteRing::new(64);
        let mut live: VecDeque<(Span, Vec<u8>)> = VecDeque::new();
        // The end mark of the newest span released.
        let mut released = 0u32;
        for round in 0..20_000u32 {
            if rng.bool() && !live.is_empty() {
                // Release the oldest one to three spans.
                let count = rng.usize(1..=3).min(live.len());
                let newest = live.drain(..count).next_back().unwrap().0;
                ring.release_through(newest.end_mark);
                released = newest.end_mark;
            } else {
                let len = rng.usize(0..20);
                let data: Vec<u8> = (0..len).map(|i| (round as usize + i) as u8).collect();
                // A prefix of up to 3 bytes ahead of the payload: stored, never returned.
                let (prefix, payload) = data.split_at(len.min(rng.usize(0..4)));
                if let Some(span) = push(&mut ring, prefix, payload) {
                    live.push_back((span, payload.to_vec()));
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
            // Each span holds its stored form, plus the tail it skipped when it starts the
            // ring again; all of them together are what the ring counts as used.
            let mut before = released;
            for (span, _) in &live {
                let held = span.end_mark.wrapping_sub(before) as usize;
                let stored = span.encoded().len();
                assert!(held == stored || (span.offset == 0 && held > stored));
                before = span.end_mark;
            }
            assert_eq!(ring.used(), before.wrapping_sub(released) as usize);
            assert!(ring.used() <= 64);
        }
    }

    #[test]
    fn a_run_is_summed_and_acknowledged_only_when_every_record_is_a_first_transmission_in_flight() {
        // Records in every state, resent or not, with transmission numbers as the sender
        // writes them (rising in ID order, several records to a number, one time to a
        // number; a resent record's anything): the one-pass summary must give what a walk
        // in ID order gives, or nothing when any record is not a first transmission in
        // flight.
        let mut rng = fastrand::Rng::with_seed(5);
        let states = [
            State::InFlight,
            State::Queued,
            State::Acked,
            State::Abandoned,
            State::Released,
        ];
        let mut w = Window::new(64, 4096);
        // 40 records that wrap around the end of the deque's buffer, so that runs lie in
        // one part of it or across both.
        for _ in 0..50 {
            w.push(0, &vec![1; rng.usize(0..30)]).unwrap();
        }
        write(&mut w, 50);
        release(&mut w, 45);
        for _ in 0..35 {
            w.push(0, &vec![1; rng.usize(0..30)]).unwrap();
        }
        write(&mut w, 40);
        w.make_all_records();
        let base = w.base;
        let (front, back) = w.entries.as_slices();
        assert!(
            !front.is_empty() && !back.is_empty(),
            "the records do not wrap"
        );
        for _ in 0..5_000 {
            let mut tx = rng.u64(0..6);
            let time_of = |tx: u64| SentTime::default().after(std::time::Duration::from_micros(tx));
            for e in w.entries.iter_mut() {
                let odd = rng.u8(0..8) == 0;
                e.state = if odd {
                    states[rng.usize(0..states.len())]
                } else {
                    State::InFlight
                };
                e.retries = u32::from(rng.u8(0..10) == 0);
                tx += u64::from(rng.u8(0..3) == 0);
                e.tx = tx;
                e.sent_time = time_of(tx);
                if e.retries > 0 {
                    // Resent later, in some other datagram.
                    e.tx = rng.u64(0..100);
                    e.sent_time = time_of(e.tx);
                }
            }
            let at = rng.usize(0..40);
            let count = rng.usize(1..=(40 - at));
            let records: Vec<Entry> = w.entries.range(at..at + count).copied().collect();
            let expected = records
                .iter()
                .all(|e| e.state == State::InFlight && e.retries == 0)
                .then(|| {
                    let mut highest = records[0];
                    for e in &records {
                        if e.tx > highest.tx {
                            highest = *e;
                        }
                    }
                    (
                        records.iter().map(|e| e.span.len()).sum::<usize>(),
                        records.iter().map(|e| e.tx).min().unwrap(),
                        (highest.tx, highest.sent_time),
                    )
                });
            let states_before: Vec<State> = w.entries.iter().map(|e| e.state).collect();
            let got = w
                .acknowledge_first_transmissions(base + at as u64, count)
                .map(|s| (s.payload_bytes, s.lowest_tx, s.highest));
            assert_eq!(got, expected);
            // Acknowledged all, or left all as they were; nothing outside the run touched.
            let range = at..at + count;
            for (k, (e, before)) in w.entries.iter().zip(&states_before).enumerate() {
                let want = if expected.is_some() && range.contains(&k) {
                    State::Acked
                } else {
                    *before
                };
                assert_eq!(e.state, want, "record {k}, run {range:?}");
            }
        }
    }
}
