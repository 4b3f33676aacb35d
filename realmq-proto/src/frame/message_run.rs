//! A run of messages as a receiver hands them on: consecutive IDs, one timestamp, payloads
//! of one length a fixed stride apart in the datagram. A sender's run of equal messages
//! arrives as one (see `DataFrame::as_run`), and a consumer that does the same work for
//! each message (checking a stamp, counting a latency) can do it in one tight loop instead
//! of a call per message.

use super::data::Message;

/// Messages with consecutive IDs from [`first_id`](Self::first_id), sent at one timestamp,
/// whose payloads all hold [`payload_len`](Self::payload_len) bytes and start
/// [`stride`](Self::stride) bytes apart in [`slots`](Self::slots). Holds at least one
/// message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageRun<'a> {
    first_id: u64,
    timestamp_us: u64,
    count: usize,
    payload_len: usize,
    stride: usize,
    /// From the first payload's first byte to the last payload's last.
    slots: &'a [u8],
}

impl<'a> MessageRun<'a> {
    /// A run of one message.
    pub fn single(message: Message<'a>) -> Self {
        Self {
            first_id: message.id,
            timestamp_us: message.timestamp_us,
            count: 1,
            payload_len: message.payload.len(),
            stride: message.payload.len(),
            slots: message.payload,
        }
    }

    /// A run of `count` (at least 1) messages whose payloads of `payload_len` bytes start
    /// `stride` bytes apart from the start of `bytes`; `None` if `bytes` is too short for
    /// them or the shape is impossible. The slots are `bytes` cut to the last payload's end.
    pub fn new(
        first_id: u64,
        timestamp_us: u64,
        count: usize,
        (payload_len, stride): (usize, usize),
        bytes: &'a [u8],
    ) -> Option<Self> {
        if count == 0 || stride < payload_len {
            return None;
        }
        let end = (count - 1).checked_mul(stride)?.checked_add(payload_len)?;
        Some(Self {
            first_id,
            timestamp_us,
            count,
            payload_len,
            stride,
            slots: bytes.get(..end)?,
        })
    }

    /// The first message's ID; the others follow it one by one.
    pub fn first_id(&self) -> u64 {
        self.first_id
    }

    /// The sender's timestamp of every message of the run.
    pub fn timestamp_us(&self) -> u64 {
        self.timestamp_us
    }

    /// How many messages (at least 1).
    pub fn len(&self) -> usize {
        self.count
    }

    /// Always false: a run holds at least one message.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Bytes of each payload.
    pub fn payload_len(&self) -> usize {
        self.payload_len
    }

    /// Bytes from one payload's start to the next one's (the payload and the framing of the
    /// message after it).
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// The bytes from the first payload's start to the last one's end: payload `k` is
    /// `slots[k * stride..][..payload_len]`.
    pub fn slots(&self) -> &'a [u8] {
        self.slots
    }

    /// The messages, in ID order.
    pub fn messages(&self) -> impl Iterator<Item = Message<'a>> + 'a {
        let Self {
            first_id,
            timestamp_us,
            count,
            payload_len: len,
            stride,
            slots,
        } = *self;
        (0..count).map(move |k| Message {
            id: first_id + k as u64,
            timestamp_us,
            // Within `slots`: `new` checked the last payload's end.
            payload: &slots[k * stride..k * stride + len],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_hands_out_its_payloads_at_their_stride() {
        let bytes = b"aaXXbbXXccXXdd";
        let run = MessageRun::new(7, 100, 3, (2, 4), bytes).expect("fits");
        let messages: Vec<_> = run.messages().map(|m| (m.id, m.payload)).collect();
        assert_eq!(messages, [(7, &b"aa"[..]), (8, b"bb"), (9, b"cc")]);
        assert_eq!(run.slots(), b"aaXXbbXXcc");
        assert!(run.messages().all(|m| m.timestamp_us == 100));
    }

    #[test]
    fn a_run_that_does_not_fit_its_bytes_is_refused() {
        assert_eq!(MessageRun::new(0, 0, 4, (2, 4), b"aaXXbbXXcc"), None);
        assert_eq!(MessageRun::new(0, 0, 0, (2, 4), b"aaXX"), None);
        assert_eq!(MessageRun::new(0, 0, 2, (5, 4), b"aaaaaaaaaa"), None);
        assert_eq!(
            MessageRun::new(0, 0, usize::MAX, (1, usize::MAX), b"a"),
            None
        );
    }

    #[test]
    fn a_single_message_is_a_run_of_one_even_when_empty() {
        let run = MessageRun::single(Message {
            id: 3,
            timestamp_us: 9,
            payload: &[],
        });
        let messages: Vec<_> = run.messages().collect();
        assert_eq!(
            messages,
            [Message {
                id: 3,
                timestamp_us: 9,
                payload: &[]
            }]
        );
    }
}
