//! Typed errors for decoding and encoding.
//!
//! A malformed datagram is expected, not exceptional: decoders return one of these and the
//! caller counts the datagram as malformed, drops it and keeps serving.

use thiserror::Error;

/// Why a datagram could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The datagram ended inside a field.
    #[error("datagram truncated")]
    Truncated,
    /// The first two bytes are not RealMQ's magic.
    #[error("bad magic {0:#06x}")]
    BadMagic(u16),
    /// The version byte names a version this build does not speak.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// The header names a packet kind this version does not define.
    #[error("unknown packet kind {0}")]
    UnknownPacketKind(u8),
    /// A frame type in the reserved range below the extension range.
    #[error("unknown frame type {0:#04x}")]
    UnknownFrameType(u8),
    /// A frame that may not appear in this kind of packet (say, DATA in a handshake).
    #[error("frame type {frame_type:#04x} not allowed in a {kind} packet")]
    FrameNotAllowed {
        /// The frame type byte.
        frame_type: u8,
        /// The packet kind's name.
        kind: &'static str,
    },
    /// A length field points past the end of the datagram.
    #[error("length {length} exceeds the {remaining} bytes left in the datagram")]
    LengthBeyondDatagram {
        /// The declared length.
        length: u64,
        /// Bytes actually left.
        remaining: usize,
    },
    /// A decoded value does not fit its field (an ID past 2^62 - 1, a timestamp overflow...).
    #[error("value of field `{0}` overflows its range")]
    VarintOverflow(&'static str),
    /// An ACK frame declares more ranges than the datagram could hold.
    #[error("ACK declares {count} ranges, more than the datagram can hold")]
    TooManyRanges {
        /// The declared number of ranges.
        count: u64,
    },
    /// An ACK range reaches below ID 0.
    #[error("ACK range reaches below message ID 0")]
    AckRangeUnderflow,
    /// A DATA frame declares no messages, or more than the datagram could hold.
    #[error("DATA frame declares {count} messages, which the datagram cannot hold")]
    BadMessageCount {
        /// The declared number of messages.
        count: u64,
    },
    /// A HELLO token longer than [`crate::MAX_TOKEN_LEN`].
    #[error("token of {0} bytes is longer than allowed")]
    TokenTooLong(u64),
}

/// Why a frame could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// The frame does not fit in what is left of the datagram.
    #[error("frame needs {needed} bytes, only {remaining} left in the datagram")]
    BufferFull {
        /// Bytes the frame needs.
        needed: usize,
        /// Bytes left.
        remaining: usize,
    },
    /// A value above 2^62 - 1, the largest variable-length integer.
    #[error("value {0} does not fit a variable-length integer")]
    VarintOverflow(u64),
    /// A message ID above [`crate::MAX_MESSAGE_ID`].
    #[error("message ID {0} is above the 62-bit limit")]
    IdOutOfRange(u64),
    /// Message IDs within a DATA frame must strictly increase.
    #[error("message ID {id} does not follow {previous}")]
    IdNotIncreasing {
        /// The previous ID in the frame.
        previous: u64,
        /// The ID that was pushed.
        id: u64,
    },
    /// An encoded run must start right after the frame's last message, in ID and with its
    /// first prefix computed against that message's timestamp.
    #[error("an encoded run starting at {id} does not continue the frame at {previous}")]
    RunNotContinuing {
        /// The last ID in the frame.
        previous: u64,
        /// The run's first ID.
        id: u64,
    },
    /// A stored run to begin a DATA frame with holds no message, more than a frame can, or
    /// fewer bytes than its first payload.
    #[error("a stored run of {count} messages in {len} bytes cannot begin a DATA frame")]
    BadRun {
        /// Messages the run claimed.
        count: u64,
        /// Its bytes.
        len: usize,
    },
    /// ACK ranges must be given newest first, disjoint and not adjacent.
    #[error("ACK ranges are not strictly descending and separated")]
    BadAckRanges,
    /// A HELLO token longer than [`crate::MAX_TOKEN_LEN`].
    #[error("token of {0} bytes is longer than allowed")]
    TokenTooLong(usize),
    /// The maximum datagram size is smaller than [`crate::MIN_DATAGRAM_SIZE`].
    #[error("maximum datagram size {0} is below the minimum")]
    DatagramSizeTooSmall(usize),
}
