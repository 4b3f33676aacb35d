//! DATA frames: one or many messages, with compact IDs and timestamps.
//!
//! ```text
//! type 0x08 | (n - 1)           the first ID is sent whole in n bytes (1..=8), the fewest
//!                               that hold it (see `id`)
//! first ID                      n bytes, big-endian
//! base timestamp, µs            varint: the first message's timestamp
//! message count                 varint (>= 1; RealMQ's writer always uses the 2-byte form)
//! first message:
//!   payload length              varint
//!   payload                     bytes
//! every further message:
//!   ID gap                      varint: ID - previous ID - 1 (IDs strictly increase)
//!   timestamp delta             varint: zigzag(timestamp - previous timestamp)
//!   payload length              varint
//!   payload                     bytes
//! ```
//!
//! A batch of consecutive 64-byte messages sent in the same microsecond costs
//! 1 + 1 + 2 = 4 bytes of framing per message.

use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::frame::frame_type;
use crate::header::{Header, HEADER_LEN};
use crate::id::{self, MAX_MESSAGE_ID};
use crate::varint::{self, len_of as vlen};

use super::message_run::MessageRun;

/// The most messages one DATA frame can hold: the largest 2-byte varint.
pub const MAX_MESSAGES_PER_FRAME: u64 = (1 << 14) - 1;
/// Bytes of the reserved message-count field.
const COUNT_LEN: usize = 2;

/// One message: its ID, its sender timestamp and its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// Per-session sequence number, below 2^62.
    pub id: u64,
    /// Sender's clock when the message was first sent, µs since its session epoch.
    pub timestamp_us: u64,
    /// The application's bytes.
    pub payload: &'a [u8],
}

/// A decoded DATA frame; its messages were checked when it was parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataFrame<'a> {
    first_id: u64,
    base_timestamp_us: u64,
    count: u64,
    /// The encoded messages, already validated.
    body: &'a [u8],
    /// The messages as the parse decoded them (`Datagram::parse_indexed`), if it kept them.
    indexed: Option<&'a [IndexedMessage]>,
    /// Set when every message follows the one before with the same framing (see
    /// [`Uniform`]): the messages are then found by arithmetic, neither indexed nor decoded
    /// again.
    uniform: Option<Uniform>,
}

/// The shape of a frame whose messages all follow the first one by one: consecutive IDs,
/// one timestamp, payloads of one length behind length fields of one width. Every message
/// after the first is then `00 00 <length> <payload>` (ID gap 0, timestamp delta 0), a
/// fixed stride apart: what a sender's run of equal messages looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Uniform {
    /// The payload length.
    len: u32,
    /// Bytes of each payload-length field.
    len_bytes: u32,
}

impl Uniform {
    /// Where message `index`'s payload starts in the frame's body.
    fn payload_start(self, index: u64) -> usize {
        // The first payload follows its length field; each later message adds the gap and
        // delta (2 bytes), its length field and its payload.
        let stride = 2 + self.len_bytes as usize + self.len as usize;
        self.len_bytes as usize + index as usize * stride
    }
}

/// The most messages one [`MessageIndex`] keeps: a DATA frame with more is walked again
/// instead (only datagrams far above the default size can hold that many).
pub const MAX_INDEXED_MESSAGES: usize = 4096;

/// One message as the parse decoded it: its ID, timestamp and where its payload lies in
/// its frame's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexedMessage {
    id: u64,
    timestamp_us: u64,
    start: u32,
    len: u32,
}

/// Room for the messages of one datagram, decoded once by [`crate::Datagram::parse_indexed`]
/// and handed out by [`DataFrame::messages`] without decoding them again. Allocated once,
/// for [`MAX_INDEXED_MESSAGES`]; reused for every datagram.
#[derive(Debug, Clone)]
pub struct MessageIndex {
    pub(crate) entries: Vec<IndexedMessage>,
}

impl Default for MessageIndex {
    fn default() -> Self {
        Self {
            entries: Vec::with_capacity(MAX_INDEXED_MESSAGES),
        }
    }
}

impl<'a> DataFrame<'a> {
    /// How many messages the frame holds (at least 1).
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Always false: a DATA frame holds at least one message.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The first message's ID, reconstructed in full.
    pub fn first_id(&self) -> u64 {
        self.first_id
    }

    /// The messages, in ID order.
    pub fn messages(&self) -> Messages<'a> {
        Messages {
            reader: Reader::new(self.body),
            previous: None,
            first_id: self.first_id,
            base_timestamp_us: self.base_timestamp_us,
            indexed: self.indexed,
            uniform: self.uniform.map(|shape| (shape, 0, self.count)),
            body: self.body,
        }
    }

    /// The frame's messages as one [`MessageRun`] when they follow one another one by one
    /// with one timestamp and one payload length (a sender's run of equal messages), or
    /// when there is only one; `None` for any other frame.
    pub fn as_run(&self) -> Option<MessageRun<'a>> {
        let count = usize::try_from(self.count).ok()?;
        match self.uniform {
            Some(shape) => {
                let start = shape.payload_start(0);
                let stride = shape.payload_start(1) - start;
                MessageRun::new(
                    self.first_id,
                    self.base_timestamp_us,
                    count,
                    (shape.len as usize, stride),
                    self.body.get(start..)?,
                )
            }
            None if count == 1 => self.messages().next().map(MessageRun::single),
            None => None,
        }
    }

    /// The IDs of a frame whose messages follow one another one by one, with one
    /// timestamp and one payload length (a sender's run of equal messages); `None` for any
    /// other frame, whatever its IDs.
    pub fn consecutive_ids(&self) -> Option<core::ops::RangeInclusive<u64>> {
        self.uniform
            .map(|_| self.first_id..=self.first_id + (self.count - 1))
    }

    /// This frame with the messages its parse decoded into an index.
    pub(crate) fn with_index(self, indexed: &'a [IndexedMessage]) -> Self {
        Self {
            indexed: Some(indexed),
            ..self
        }
    }

    /// Reads and validates a frame; with `index`, also appends its messages there when
    /// they all fit within [`MAX_INDEXED_MESSAGES`], or none of them (the caller compares
    /// the index's length before and after).
    pub(crate) fn read_with(
        r: &mut Reader<'a>,
        id_len: usize,
        mut index: Option<&mut Vec<IndexedMessage>>,
    ) -> Result<Self, DecodeError> {
        let first_id = r.uint(id_len)?;
        if first_id > MAX_MESSAGE_ID {
            return Err(DecodeError::VarintOverflow("message id"));
        }
        let base_timestamp_us = r.varint()?;
        let count = r.varint()?;
        // Every message takes at least one byte: bound the count before walking.
        if count == 0 || count > r.remaining() as u64 {
            return Err(DecodeError::BadMessageCount { count });
        }
        let start = r.rest();
        if index
            .as_ref()
            .is_some_and(|index| index.len() as u64 + count > MAX_INDEXED_MESSAGES as u64)
        {
            index = None;
        }
        let first = read_message(r, None, first_id, base_timestamp_us)?;
        // Within `start`, which is at most a datagram (< 4 GiB) long.
        let len_bytes = (start.len() - r.remaining() - first.payload.len()) as u32;
        let mut uniform = Some(Uniform {
            len: first.payload.len() as u32,
            len_bytes,
        });
        // A sender's run (every message after the first `00 00` and the first's length field)
        // is checked at its fixed stride and taken whole; anything else is walked.
        let run = uniform_tail(
            r.rest(),
            &start[..len_bytes as usize],
            first.payload.len(),
            count,
        )
        .filter(|_| first_id + (count - 1) <= MAX_MESSAGE_ID);
        let walk_from = match run {
            Some(tail) => {
                r.fixed(tail)?;
                count
            }
            None => 1,
        };
        let mut previous = (first.id, first.timestamp_us);
        for walked in walk_from..count {
            let before = r.remaining();
            let (message, follows) = match r.rest() {
                // ID gap 0 and timestamp delta 0, the common case, without the varint
                // decoder; the same checks as `read_message`.
                [0, 0, ..] => {
                    r.fixed(2)?;
                    let len = r.varint()?;
                    let payload = r.bytes(len)?;
                    let id = previous.0 + 1;
                    if id > MAX_MESSAGE_ID {
                        return Err(DecodeError::VarintOverflow("message id"));
                    }
                    let message = Message {
                        id,
                        timestamp_us: previous.1,
                        payload,
                    };
                    (message, true)
                }
                _ => (
                    read_message(r, Some(previous), first_id, base_timestamp_us)?,
                    false,
                ),
            };
            previous = (message.id, message.timestamp_us);
            if let Some(shape) = uniform {
                let len = message.payload.len();
                if follows
                    && shape.len as usize == len
                    && before - r.remaining() == 2 + shape.len_bytes as usize + len
                {
                    continue;
                }
                // Not uniform after all: index the messages walked so far.
                uniform = None;
                if let Some(index) = index.as_mut() {
                    index.extend((0..walked).map(|i| IndexedMessage {
                        id: first_id + i,
                        timestamp_us: base_timestamp_us,
                        start: shape.payload_start(i) as u32,
                        len: shape.len,
                    }));
                }
            }
            if let Some(index) = index.as_mut() {
                let at = start.len() - r.remaining() - message.payload.len();
                index.push(IndexedMessage {
                    id: message.id,
                    timestamp_us: message.timestamp_us,
                    start: at as u32,
                    len: message.payload.len() as u32,
                });
            }
        }
        let used = start.len() - r.remaining();
        Ok(Self {
            first_id,
            base_timestamp_us,
            count,
            body: &start[..used],
            indexed: None,
            uniform,
        })
    }
}

/// The bytes of the `count - 1` messages after a frame's first if each is `00 00` (ID gap 0,
/// timestamp delta 0), then `len_field` (the first message's length field, byte for byte),
/// then `len` payload bytes — a sender's run of equal messages, checked at a fixed stride
/// without decoding a varint. `None` if `rest` does not start with that many such messages.
/// (Equal bytes are equal fields: a varint's width is in its first byte.)
fn uniform_tail(rest: &[u8], len_field: &[u8], len: usize, count: u64) -> Option<usize> {
    let header = 2 + len_field.len();
    let stride = header + len;
    let tail = usize::try_from(count - 1).ok()?.checked_mul(stride)?;
    let messages = rest.get(..tail)?;
    if header <= 8 && stride >= 8 {
        // The header as the first bytes of a little-endian word, compared under a mask.
        let mut expected = [0u8; 8];
        expected[2..header].copy_from_slice(len_field);
        let mask = u64::MAX >> (8 * (8 - header));
        let expected = u64::from_le_bytes(expected) & mask;
        let word = |m: &[u8]| u64::from_le_bytes(m[..8].try_into().expect("stride >= 8"));
        let diff = messages
            .chunks_exact(stride)
            .fold(0, |diff, m| diff | ((word(m) & mask) ^ expected));
        (diff == 0).then_some(tail)
    } else {
        messages
            .chunks_exact(stride)
            .all(|m| m[..2] == [0, 0] && &m[2..header] == len_field)
            .then_some(tail)
    }
}

/// Reads one message given the previous one's `(id, timestamp)`.
fn read_message<'a>(
    r: &mut Reader<'a>,
    previous: Option<(u64, u64)>,
    first_id: u64,
    base_timestamp_us: u64,
) -> Result<Message<'a>, DecodeError> {
    let (id, timestamp_us) = match previous {
        None => (first_id, base_timestamp_us),
        Some((prev_id, prev_ts)) => {
            let gap = r.varint()?;
            let id = prev_id
                .checked_add(gap)
                .and_then(|v| v.checked_add(1))
                .filter(|&v| v <= MAX_MESSAGE_ID)
                .ok_or(DecodeError::VarintOverflow("message id"))?;
            let delta = varint::unzigzag(r.varint()?);
            let timestamp_us = prev_ts
                .checked_add_signed(delta)
                .filter(|&v| v <= varint::MAX)
                .ok_or(DecodeError::VarintOverflow("timestamp"))?;
            (id, timestamp_us)
        }
    };
    let len = r.varint()?;
    let payload = r.bytes(len)?;
    Ok(Message {
        id,
        timestamp_us,
        payload,
    })
}

/// Iterator over a DATA frame's messages.
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    reader: Reader<'a>,
    previous: Option<(u64, u64)>,
    first_id: u64,
    base_timestamp_us: u64,
    /// The messages decoded by the parse, handed out instead of decoding again.
    indexed: Option<&'a [IndexedMessage]>,
    /// A uniform frame's shape, the index of its next message and its message count: the
    /// messages are found by arithmetic.
    uniform: Option<(Uniform, u64, u64)>,
    body: &'a [u8],
}

impl<'a> Iterator for Messages<'a> {
    type Item = Message<'a>;

    #[inline]
    fn next(&mut self) -> Option<Message<'a>> {
        if let Some((shape, next, count)) = &mut self.uniform {
            if *next == *count {
                return None;
            }
            let start = shape.payload_start(*next);
            let payload = self.body.get(start..start + shape.len as usize)?;
            let id = self.first_id + *next;
            *next += 1;
            return Some(Message {
                id,
                timestamp_us: self.base_timestamp_us,
                payload,
            });
        }
        self.next_decoded()
    }
}

impl<'a> Messages<'a> {
    /// The next message of a frame that is not uniform: from the index, or decoded.
    #[inline(never)]
    fn next_decoded(&mut self) -> Option<Message<'a>> {
        if let Some(indexed) = &mut self.indexed {
            let (m, rest) = indexed.split_first()?;
            *indexed = rest;
            let start = m.start as usize;
            return Some(Message {
                id: m.id,
                timestamp_us: m.timestamp_us,
                payload: self.body.get(start..start + m.len as usize)?,
            });
        }
        if self.reader.is_empty() {
            return None;
        }
        // Validated at parse time; a failure here only ends the iteration.
        let message = read_message(
            &mut self.reader,
            self.previous,
            self.first_id,
            self.base_timestamp_us,
        )
        .ok()?;
        self.previous = Some((message.id, message.timestamp_us));
        Some(message)
    }
}

/// Appends messages to a DATA frame being written. Obtained from
/// [`crate::DatagramWriter::data`], which writes the first message.
///
/// Every `push` either writes the whole message or, on error, nothing: a caller fills a
/// datagram by pushing until [`EncodeError::BufferFull`].
#[derive(Debug)]
pub struct DataWriter<'w, 'b> {
    w: &'w mut Writer<'b>,
    count_at: usize,
    count: u64,
    previous_id: u64,
    previous_ts: u64,
}

impl<'w, 'b> DataWriter<'w, 'b> {
    /// Starts a frame with its first message.
    pub(crate) fn begin(w: &'w mut Writer<'b>, first: Message<'_>) -> Result<Self, EncodeError> {
        check_message(&first)?;
        let id_len = id::id_len(first.id);
        let payload_len = first.payload.len() as u64;
        let size = 1
            + id_len
            + vlen(first.timestamp_us)?
            + COUNT_LEN
            + vlen(payload_len)?
            + first.payload.len();
        w.reserve(size)?;
        w.u8(frame_type::DATA | (id_len as u8 - 1))?;
        w.uint(first.id, id_len)?;
        w.varint(first.timestamp_us)?;
        let count_at = w.len();
        w.zeros(COUNT_LEN)?;
        w.patch_varint(count_at, 1, COUNT_LEN);
        w.varint(payload_len)?;
        w.slice(first.payload)?;
        Ok(Self {
            w,
            count_at,
            count: 1,
            previous_id: first.id,
            previous_ts: first.timestamp_us,
        })
    }

    /// Starts a frame with a run of consecutive messages in their stored form, in one copy:
    /// the frame's head, then `run.bytes` (the first payload and the rest of the run). All
    /// or nothing. Gives the same bytes as [`begin`](Self::begin) with the first message and
    /// [`push_run`](Self::push_run) with the others.
    pub(crate) fn begin_run(
        w: &'w mut Writer<'b>,
        run: StoredRun<'_>,
    ) -> Result<Self, EncodeError> {
        let head_len = data_head_len(run.first_id, run.first_timestamp_us, run.first_len)?;
        if run.count == 0 || run.count > MAX_MESSAGES_PER_FRAME || run.first_len > run.bytes.len() {
            return Err(EncodeError::BadRun {
                count: run.count,
                len: run.bytes.len(),
            });
        }
        let last_id = run.first_id + (run.count - 1);
        if last_id > MAX_MESSAGE_ID {
            return Err(EncodeError::IdOutOfRange(last_id));
        }
        w.reserve(head_len + run.bytes.len())?;
        #[cfg(debug_assertions)]
        if run.count > 1 {
            debug_check_run(&EncodedRun {
                bytes: &run.bytes[run.first_len..],
                count: run.count - 1,
                first_id: run.first_id + 1,
                previous_timestamp_us: run.first_timestamp_us,
                last_timestamp_us: run.last_timestamp_us,
            });
        }
        // The head in one piece: a write per field, each checking its room, cost more than
        // the rest of a datagram's framing.
        let mut head = [0u8; MAX_DATA_HEAD];
        let count_at = w.len() + write_head(&mut head, &DataHead::of(&run), head_len)?;
        w.slice(&head[..head_len])?;
        w.slice(run.bytes)?;
        Ok(Self {
            w,
            count_at,
            count: run.count,
            previous_id: last_id,
            previous_ts: run.last_timestamp_us,
        })
    }

    /// Messages in the frame so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Bytes `message` would add to the frame.
    pub fn cost(&self, message: &Message<'_>) -> Result<usize, EncodeError> {
        let gap = self.gap(message)?;
        let delta = varint::zigzag(message.timestamp_us as i64 - self.previous_ts as i64);
        Ok(vlen(gap)? + vlen(delta)? + vlen(message.payload.len() as u64)? + message.payload.len())
    }

    fn gap(&self, message: &Message<'_>) -> Result<u64, EncodeError> {
        if message.id <= self.previous_id {
            return Err(EncodeError::IdNotIncreasing {
                previous: self.previous_id,
                id: message.id,
            });
        }
        Ok(message.id - self.previous_id - 1)
    }

    /// Appends a message whose ID is above the previous one's. On error nothing is written.
    pub fn push(&mut self, message: Message<'_>) -> Result<(), EncodeError> {
        check_message(&message)?;
        if self.count == MAX_MESSAGES_PER_FRAME {
            return Err(EncodeError::BufferFull {
                needed: 1,
                remaining: 0,
            });
        }
        let size = self.cost(&message)?;
        self.w.reserve(size)?;
        self.w.varint(self.gap(&message)?)?;
        self.w.varint(varint::zigzag(
            message.timestamp_us as i64 - self.previous_ts as i64,
        ))?;
        self.w.varint(message.payload.len() as u64)?;
        self.w.slice(message.payload)?;
        self.count += 1;
        self.w.patch_varint(self.count_at, self.count, COUNT_LEN);
        self.previous_id = message.id;
        self.previous_ts = message.timestamp_us;
        Ok(())
    }
}

impl DataWriter<'_, '_> {
    /// Bytes left in the datagram for further messages.
    pub fn room(&self) -> usize {
        self.w.remaining()
    }

    /// The ID and timestamp of the last message in the frame: what the next message's
    /// [`FollowingPrefix`] must have been computed against for [`push_run`](Self::push_run).
    pub fn last(&self) -> (u64, u64) {
        (self.previous_id, self.previous_ts)
    }

    /// Appends a run of messages already in their encoded form, in one copy. All or nothing.
    ///
    /// The run must continue the frame: its first ID is the last one's plus one and its first
    /// prefix was computed against the last message's timestamp (both checked). The bytes
    /// themselves are the caller's word — each message a [`FollowingPrefix`] and its payload,
    /// IDs consecutive — as with any sender: the receiver validates every frame it parses.
    /// Debug builds decode the run to check it.
    pub fn push_run(&mut self, run: EncodedRun<'_>) -> Result<(), EncodeError> {
        if run.first_id != self.previous_id + 1 || run.previous_timestamp_us != self.previous_ts {
            return Err(EncodeError::RunNotContinuing {
                previous: self.previous_id,
                id: run.first_id,
            });
        }
        if run.count == 0 {
            return Ok(());
        }
        if self.count + run.count > MAX_MESSAGES_PER_FRAME {
            return Err(EncodeError::BufferFull {
                needed: run.bytes.len(),
                remaining: 0,
            });
        }
        let last_id = run.first_id + (run.count - 1);
        if last_id > MAX_MESSAGE_ID {
            return Err(EncodeError::IdOutOfRange(last_id));
        }
        #[cfg(debug_assertions)]
        debug_check_run(&run);
        self.w.slice(run.bytes)?;
        self.count += run.count;
        self.w.patch_varint(self.count_at, self.count, COUNT_LEN);
        self.previous_id = last_id;
        self.previous_ts = run.last_timestamp_us;
        Ok(())
    }
}

/// Longest [`FollowingPrefix`]: an ID gap of 0 (1 byte), a timestamp delta and a payload
/// length (8 bytes each at most).
pub const MAX_FOLLOWING_PREFIX: usize = 1 + 8 + 8;

/// What precedes a payload in a DATA frame when the message directly follows, in ID and in
/// the frame, the message before it: ID gap 0, the zigzag timestamp delta, the payload length.
///
/// A sender that stores each message in this form, right behind the one before it, can copy
/// a run of consecutive messages into a frame in one piece ([`DataWriter::push_run`]) instead
/// of encoding them one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowingPrefix {
    delta: u64,
    payload_len: u64,
    delta_len: u8,
    payload_len_len: u8,
}

impl FollowingPrefix {
    /// The prefix of a `payload_len`-byte message stamped `timestamp_us`, following one
    /// stamped `previous_timestamp_us`.
    pub fn new(
        previous_timestamp_us: u64,
        timestamp_us: u64,
        payload_len: usize,
    ) -> Result<Self, EncodeError> {
        if timestamp_us > varint::MAX {
            return Err(EncodeError::VarintOverflow(timestamp_us));
        }
        let delta = varint::zigzag(timestamp_us as i64 - previous_timestamp_us as i64);
        let payload_len = payload_len as u64;
        Ok(Self {
            delta,
            payload_len,
            delta_len: vlen(delta)? as u8,
            payload_len_len: vlen(payload_len)? as u8,
        })
    }

    /// Its length in bytes: 3 to [`MAX_FOLLOWING_PREFIX`].
    #[allow(clippy::len_without_is_empty)] // never empty
    pub fn len(&self) -> usize {
        1 + usize::from(self.delta_len) + usize::from(self.payload_len_len)
    }

    /// Writes it at the start of `out`, which holds at least [`len`](Self::len) bytes.
    #[inline] // once per message stored: a call was 6 % of the load client's time
    pub fn write(&self, out: &mut [u8]) {
        let (delta_len, len_len) = (
            usize::from(self.delta_len),
            usize::from(self.payload_len_len),
        );
        out[0] = 0; // the ID gap
        varint::write_with_len(self.delta, delta_len, &mut out[1..]);
        varint::write_with_len(self.payload_len, len_len, &mut out[1 + delta_len..]);
    }
}

/// The longest head of a DATA frame before its first payload: the type byte, an 8-byte ID,
/// an 8-byte timestamp, the 2-byte count and an 8-byte payload length.
const MAX_DATA_HEAD: usize = 1 + 8 + 8 + COUNT_LEN + 8;

/// Bytes a DATA frame takes before its first payload, the first message being `first_id`,
/// stamped `first_timestamp_us`, of `first_len` bytes: what a frame begun with a
/// [`StoredRun`] adds to the run's bytes beyond the first message's stored prefix.
pub fn data_head_len(
    first_id: u64,
    first_timestamp_us: u64,
    first_len: usize,
) -> Result<usize, EncodeError> {
    check_message(&Message {
        id: first_id,
        timestamp_us: first_timestamp_us,
        payload: &[],
    })?;
    Ok(1 + id::id_len(first_id) + vlen(first_timestamp_us)? + COUNT_LEN + vlen(first_len as u64)?)
}

/// What the head of a DATA frame of consecutive messages says: the first message's ID,
/// timestamp and payload length, and how many messages follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataHead {
    /// The first message's ID; the others follow one by one.
    pub first_id: u64,
    /// The first message's timestamp, the frame's base.
    pub first_timestamp_us: u64,
    /// The first message's payload length.
    pub first_len: usize,
    /// How many messages the frame holds, at least one.
    pub count: u64,
}

impl DataHead {
    fn of(run: &StoredRun<'_>) -> Self {
        Self {
            first_id: run.first_id,
            first_timestamp_us: run.first_timestamp_us,
            first_len: run.first_len,
            count: run.count,
        }
    }
}

/// Writes the head of a DATA frame that begins as `run` says (`head_len` bytes, from
/// [`data_head_len`]) at the start of `out`; returns where its count field starts.
#[inline]
fn write_head(out: &mut [u8], run: &DataHead, head_len: usize) -> Result<usize, EncodeError> {
    let id_len = id::id_len(run.first_id);
    out[0] = frame_type::DATA | (id_len as u8 - 1);
    out[1..1 + id_len].copy_from_slice(&run.first_id.to_be_bytes()[8 - id_len..]);
    let mut at = 1 + id_len;
    let ts_len = vlen(run.first_timestamp_us)?;
    varint::write_with_len(run.first_timestamp_us, ts_len, &mut out[at..]);
    at += ts_len;
    let count_at = at;
    varint::write_with_len(run.count, COUNT_LEN, &mut out[at..]);
    at += COUNT_LEN;
    let first_len = run.first_len as u64;
    varint::write_with_len(first_len, vlen(first_len)?, &mut out[at..]);
    debug_assert_eq!(head_len, at + vlen(first_len)?);
    Ok(count_at)
}

/// Frames a run of messages in place: `buf[at..]` holds them as a sender stores them, each
/// behind its [`FollowingPrefix`] (the first one's, `first_prefix` bytes, included), and
/// this writes `buf[start..at + first_prefix]`: the datagram `header`, zero bytes (PADDING),
/// then the DATA frame's head as `run` says, which ends where the first prefix did (both end
/// with the first payload's length field). The datagram then runs from `start` to the end
/// of the run.
///
/// This is the datagram [`crate::DatagramWriter::data_run`] writes, with its PADDING moved
/// in front of the DATA frame, without copying the run: a sender that leaves room in front of
/// a datagram's worth of stored messages sends them from where they are stored.
/// `Err(BufferFull)` if the room in front of `at` is too small for the header and the head.
#[inline]
pub fn frame_stored_run(
    buf: &mut [u8],
    start: usize,
    (at, first_prefix): (usize, usize),
    header: Header,
    run: &DataHead,
) -> Result<(), EncodeError> {
    let head_len = data_head_len(run.first_id, run.first_timestamp_us, run.first_len)?;
    let first_len_len = vlen(run.first_len as u64)?;
    let last_id = run.first_id.checked_add(run.count.saturating_sub(1));
    if run.count == 0
        || run.count > MAX_MESSAGES_PER_FRAME
        || first_prefix < first_len_len
        || last_id.is_none_or(|id| id > MAX_MESSAGE_ID)
    {
        return Err(EncodeError::BadRun {
            count: run.count,
            len: buf.len(),
        });
    }
    // The head ends where the first prefix's length field ends.
    let head_end = at + first_prefix;
    let needed = HEADER_LEN + head_len;
    let head_start = head_end
        .checked_sub(head_len)
        .filter(|_| head_end <= buf.len());
    let Some(head_start) = head_start.filter(|&h| h >= start + HEADER_LEN && start <= at) else {
        return Err(EncodeError::BufferFull {
            needed,
            remaining: (at + first_prefix).saturating_sub(start),
        });
    };
    buf[start..start + HEADER_LEN].copy_from_slice(&header.to_bytes());
    buf[start + HEADER_LEN..head_start].fill(0);
    write_head(&mut buf[head_start..head_end], run, head_len)?;
    Ok(())
}

/// Consecutive messages stored in their wire form, to begin a DATA frame with
/// ([`crate::DatagramWriter::data_run`]): the first one's payload, then every further one's
/// [`FollowingPrefix`] and payload, back to back.
#[derive(Debug, Clone, Copy)]
pub struct StoredRun<'a> {
    /// The first message's ID; the others follow one by one.
    pub first_id: u64,
    /// The first message's timestamp, the frame's base.
    pub first_timestamp_us: u64,
    /// The first message's payload length: its payload is `bytes[..first_len]`.
    pub first_len: usize,
    /// The first payload, then the further messages in their following form.
    pub bytes: &'a [u8],
    /// How many messages, at least one.
    pub count: u64,
    /// The last message's timestamp.
    pub last_timestamp_us: u64,
}

/// Consecutive messages in their encoded form, for [`DataWriter::push_run`].
#[derive(Debug, Clone, Copy)]
pub struct EncodedRun<'a> {
    /// Each message's [`FollowingPrefix`] and payload, back to back.
    pub bytes: &'a [u8],
    /// How many messages `bytes` holds.
    pub count: u64,
    /// The first message's ID; the others follow one by one.
    pub first_id: u64,
    /// The timestamp the first message's prefix was computed against.
    pub previous_timestamp_us: u64,
    /// The last message's timestamp.
    pub last_timestamp_us: u64,
}

/// Decodes a run as a receiver would and checks it against its description.
#[cfg(debug_assertions)]
fn debug_check_run(run: &EncodedRun<'_>) {
    let mut r = Reader::new(run.bytes);
    let mut previous = (run.first_id - 1, run.previous_timestamp_us);
    for _ in 0..run.count {
        let m = read_message(&mut r, Some(previous), 0, 0).expect("a well-formed run");
        assert_eq!(m.id, previous.0 + 1, "consecutive IDs in a run");
        previous = (m.id, m.timestamp_us);
    }
    assert!(r.is_empty(), "the run holds exactly its count");
    assert_eq!(
        previous.1, run.last_timestamp_us,
        "the run's last timestamp"
    );
}

fn check_message(message: &Message<'_>) -> Result<(), EncodeError> {
    if message.id > MAX_MESSAGE_ID {
        return Err(EncodeError::IdOutOfRange(message.id));
    }
    if message.timestamp_us > varint::MAX {
        return Err(EncodeError::VarintOverflow(message.timestamp_us));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A DATA frame's fields after its type byte: a one-byte first ID, a one-byte base
    /// timestamp, the 2-byte count, then `count` messages of `len` bytes each behind a
    /// `width`-byte length field, every one after the first `00 00` (a sender's run).
    fn run_frame(first_id: u8, count: u64, len: usize, width: usize) -> Vec<u8> {
        let mut body = vec![first_id, 7];
        let mut field = [0u8; 8];
        varint::write_with_len(count, COUNT_LEN, &mut field);
        body.extend_from_slice(&field[..COUNT_LEN]);
        varint::write_with_len(len as u64, width, &mut field);
        for k in 0..count {
            if k > 0 {
                body.extend_from_slice(&[0, 0]);
            }
            body.extend_from_slice(&field[..width]);
            body.extend((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(k as u8)));
        }
        body
    }

    /// Reads `body` message by message, as the parse did before it recognised runs: the
    /// messages, and whether every one follows the first one by one with its framing.
    fn walked(body: &[u8]) -> Result<(Vec<Message<'_>>, bool), DecodeError> {
        let mut r = Reader::new(body);
        let first_id = r.uint(1)?;
        let base = r.varint()?;
        let count = r.varint()?;
        if count == 0 || count > r.remaining() as u64 {
            return Err(DecodeError::BadMessageCount { count });
        }
        let before = r.remaining();
        let first = read_message(&mut r, None, first_id, base)?;
        let first_size = before - r.remaining();
        let mut messages = vec![first];
        let mut uniform = true;
        for _ in 1..count {
            let at = r.rest();
            let before = r.remaining();
            let m = read_message(
                &mut r,
                messages.last().map(|p| (p.id, p.timestamp_us)),
                first_id,
                base,
            )?;
            uniform &= at[..2] == [0, 0]
                && m.payload.len() == first.payload.len()
                && before - r.remaining() == 2 + first_size;
            messages.push(m);
        }
        Ok((messages, uniform))
    }

    proptest! {
        /// A frame's messages, its errors and whether it is taken as a run are what reading
        /// it message by message gives, for runs as senders write them and for runs with
        /// any one byte changed (a gap, a delta, a length, a width, a payload byte).
        #[test]
        fn runs_are_recognised_exactly_when_their_messages_follow(
            count in 1u64..40,
            len in 0usize..70,
            width in 1usize..=4,
            change in proptest::option::of((any::<prop::sample::Index>(), any::<u8>())),
            cut in 0usize..3,
        ) {
            let width = if width == 3 { 8 } else { width };
            let mut body = run_frame(3, count, len, width);
            if let Some((at, byte)) = change {
                let at = 4 + at.index(body.len() - 4);
                body[at] = byte;
            }
            body.truncate(body.len() - cut.min(body.len() - 4));
            let mut r = Reader::new(&body);
            let parsed = DataFrame::read_with(&mut r, 1, None);
            match walked(&body) {
                Ok((messages, uniform)) => {
                    let frame = parsed.expect("the walk read it");
                    prop_assert_eq!(frame.messages().collect::<Vec<_>>(), messages);
                    prop_assert_eq!(frame.consecutive_ids().is_some(), uniform);
                    prop_assert_eq!(r.remaining(), body.len() - 4 - frame.body.len());
                }
                Err(e) => prop_assert_eq!(parsed.err(), Some(e)),
            }
        }
    }
}
