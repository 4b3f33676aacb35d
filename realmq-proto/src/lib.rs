//! RealMQ's wire format: bytes in, frames out, and back. Pure code: no sockets, clocks or
//! threads, and no allocation.
//!
//! A datagram is an 8-byte [`Header`] followed by [`Frame`]s. Message IDs are 62-bit
//! per-session sequence numbers, sent whole in as few bytes as they need; ACKs describe
//! any set of received IDs as gap/length ranges. `docs/PROTOCOL.md` gives the byte-level layout.
//!
//! ```
//! use realmq_proto::{Datagram, DatagramWriter, Frame, Header, Message};
//!
//! let mut buf = [0u8; 1472];
//! let mut w = DatagramWriter::new(&mut buf, 1472, Header::session(7)).unwrap();
//! let mut data = w.data(Message { id: 0, timestamp_us: 10, payload: b"hello" }).unwrap();
//! data.push(Message { id: 1, timestamp_us: 12, payload: b"world" }).unwrap();
//! let len = w.finish();
//!
//! let datagram = Datagram::parse(&buf[..len]).unwrap();
//! let Some(Frame::Data(frame)) = datagram.frames().next() else { panic!() };
//! let ids: Vec<u64> = frame.messages().map(|m| m.id).collect();
//! assert_eq!(ids, [0, 1]);
//! ```

mod codec;
mod datagram;
mod error;
mod frame;
mod header;
mod id;
mod varint;

pub use datagram::{
    Datagram, DatagramWriter, Frames, DEFAULT_MAX_DATAGRAM, MAX_DATAGRAM_SIZE, MIN_DATAGRAM_SIZE,
};
pub use error::{DecodeError, EncodeError};
pub use frame::{
    ack::{ack_encoded_len, ack_head_len, ack_range_len},
    data_head_len, frame_stored_run, frame_type, AckFrame, AckRanges, AckSummary, Bye, DataFrame,
    DataHead, DataWriter, EncodedRun, FollowingPrefix, Frame, Heartbeat, Hello, IndexedMessage,
    Message, MessageIndex, MessageRun, Messages, Retry, Stop, StoredRun, Welcome,
    MAX_CLOCK_OFFSET_US, MAX_FOLLOWING_PREFIX, MAX_INDEXED_MESSAGES, MAX_MESSAGES_PER_FRAME,
    MAX_TOKEN_LEN,
};
pub use header::{field as header_field, Flags, Header, PacketKind, HEADER_LEN, MAGIC, VERSION};
pub use id::MAX_MESSAGE_ID;
pub use varint::encoded_len as varint_len;
