//! Frames: the units a datagram carries after its header.
//!
//! Every frame starts with a one-byte type:
//!
//! | type        | frame                          | allowed in        |
//! |-------------|--------------------------------|-------------------|
//! | `0x00`      | PADDING (a run of zero bytes)  | handshake, session|
//! | `0x01`      | HEARTBEAT                      | session           |
//! | `0x02`      | ACK                            | session           |
//! | `0x03`      | ACK, truncated (older ranges left out) | session   |
//! | `0x04`      | HELLO                          | handshake         |
//! | `0x05`      | WELCOME                        | handshake         |
//! | `0x06`      | STOP                           | session           |
//! | `0x07`      | BYE                            | session           |
//! | `0x08–0x0f` | DATA (low 3 bits: first-ID length − 1) | session   |
//! | `0x10`      | RETRY                          | handshake         |
//! | `0x11–0x3f` | reserved: a decode error       | —                 |
//! | `0x40–0xff` | extension: type, varint length, body; skipped if unknown | both |
//!
//! The rule for unknown types: a frame below `0x40` carries no length, so an unknown one
//! makes the rest of the datagram unreadable and the datagram is rejected with
//! [`DecodeError::UnknownFrameType`]. Frames from `0x40` up always carry a length, so a later
//! version can add them and older receivers skip them ([`Frame::Extension`]).

pub(crate) mod ack;
mod control;
mod data;
mod message_run;

pub use ack::{AckFrame, AckRanges, AckSummary};
pub use control::{
    Bye, Heartbeat, Hello, Retry, Stop, Welcome, MAX_CLOCK_OFFSET_US, MAX_TOKEN_LEN,
};
pub use data::{
    data_head_len, frame_stored_run, DataFrame, DataHead, DataWriter, EncodedRun, FollowingPrefix,
    IndexedMessage, Message, MessageIndex, Messages, StoredRun, MAX_FOLLOWING_PREFIX,
    MAX_INDEXED_MESSAGES, MAX_MESSAGES_PER_FRAME,
};
pub use message_run::MessageRun;

use crate::codec::Reader;
use crate::error::DecodeError;
use crate::header::PacketKind;

/// Frame type bytes.
pub mod frame_type {
    /// PADDING.
    pub const PADDING: u8 = 0x00;
    /// HEARTBEAT.
    pub const HEARTBEAT: u8 = 0x01;
    /// ACK with every range it describes.
    pub const ACK: u8 = 0x02;
    /// ACK whose oldest ranges did not fit and were left out.
    pub const ACK_TRUNCATED: u8 = 0x03;
    /// HELLO.
    pub const HELLO: u8 = 0x04;
    /// WELCOME.
    pub const WELCOME: u8 = 0x05;
    /// STOP.
    pub const STOP: u8 = 0x06;
    /// BYE.
    pub const BYE: u8 = 0x07;
    /// DATA; the low three bits hold the first ID's length in bytes minus one.
    pub const DATA: u8 = 0x08;
    /// RETRY.
    pub const RETRY: u8 = 0x10;
    /// The first extension type: from here on, frames carry a length.
    pub const EXTENSION_MIN: u8 = 0x40;
}

/// One decoded frame, borrowing from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Zero bytes that fill a datagram; `len` of them.
    Padding {
        /// How many padding bytes.
        len: usize,
    },
    /// Liveness signal; asks for an ACK.
    Heartbeat(Heartbeat),
    /// Which message IDs the peer has received.
    Ack(AckFrame<'a>),
    /// A client asks for a session.
    Hello(Hello<'a>),
    /// The server grants a session.
    Welcome(Welcome),
    /// The server asks the client to prove its address with a cookie.
    Retry(Retry<'a>),
    /// The client has sent everything.
    Stop(Stop),
    /// The server confirms the end of the session.
    Bye(Bye),
    /// One or more messages.
    Data(DataFrame<'a>),
    /// A frame type from the extension range that this version does not know.
    Extension {
        /// Its type byte.
        frame_type: u8,
        /// Its body.
        body: &'a [u8],
    },
}

impl<'a> Frame<'a> {
    /// Reads one frame, checking it is allowed in `kind`.
    pub(crate) fn read(r: &mut Reader<'a>, kind: PacketKind) -> Result<Self, DecodeError> {
        Self::read_with(r, kind, None)
    }

    /// [`Frame::read`], appending a DATA frame's messages to `index` (see
    /// [`DataFrame::read_with`]).
    pub(crate) fn read_with(
        r: &mut Reader<'a>,
        kind: PacketKind,
        index: Option<&mut Vec<IndexedMessage>>,
    ) -> Result<Self, DecodeError> {
        use frame_type as t;
        let ty = r.u8()?;
        let allowed = match ty {
            t::PADDING => true,
            t::HELLO | t::WELCOME | t::RETRY => kind == PacketKind::Handshake,
            t::EXTENSION_MIN..=u8::MAX => true,
            _ => kind == PacketKind::Session,
        };
        if !allowed && ty <= t::RETRY {
            return Err(DecodeError::FrameNotAllowed {
                frame_type: ty,
                kind: kind.name(),
            });
        }
        Ok(match ty {
            t::PADDING => {
                let zeros = leading_zeros(r.rest());
                r.fixed(zeros)?;
                Frame::Padding { len: zeros + 1 }
            }
            t::HEARTBEAT => Frame::Heartbeat(Heartbeat::read(r)?),
            t::ACK | t::ACK_TRUNCATED => Frame::Ack(AckFrame::read(r, ty == t::ACK_TRUNCATED)?),
            t::HELLO => Frame::Hello(Hello::read(r)?),
            t::WELCOME => Frame::Welcome(Welcome::read(r)?),
            t::RETRY => Frame::Retry(Retry::read(r)?),
            t::STOP => Frame::Stop(Stop::read(r)?),
            t::BYE => Frame::Bye(Bye::read(r)?),
            0x08..=0x0f => Frame::Data(DataFrame::read_with(r, usize::from(ty & 0x07) + 1, index)?),
            t::EXTENSION_MIN..=u8::MAX => {
                let length = r.varint()?;
                Frame::Extension {
                    frame_type: ty,
                    body: r.bytes(length)?,
                }
            }
            _ => return Err(DecodeError::UnknownFrameType(ty)),
        })
    }
}

/// Reads a PADDING frame if one is next (allowed in every packet kind): returns its length,
/// or `None`, reading nothing, if the next frame is another. The datagram parser and its
/// frame iterator take PADDING here before calling [`Frame::read_with`]: as a call of its
/// own, PADDING cost the server about 140 instructions a datagram, two calls (validation,
/// then iteration) of a function that moves a whole `Frame` (`docs/BENCHMARKS.md`).
#[inline]
pub(crate) fn read_padding(r: &mut Reader<'_>) -> Option<usize> {
    let rest = r.rest();
    if rest.first() != Some(&frame_type::PADDING) {
        return None;
    }
    let len = 1 + leading_zeros(&rest[1..]);
    // Cannot fail: `len` bytes of `rest` were just counted.
    r.fixed(len).ok()?;
    Some(len)
}

/// How many bytes at the start of `bytes` are zero: PADDING's length, found eight bytes at a
/// time (the client pads nearly every DATA datagram by up to 63 bytes, and the server's byte
/// by byte walk over them was a fifth of its frame parsing).
fn leading_zeros(bytes: &[u8]) -> usize {
    let words = bytes.chunks_exact(8);
    let tail = words.remainder();
    let mut zeros = 0;
    for word in words {
        let word = u64::from_le_bytes(word.try_into().expect("chunks of 8"));
        if word != 0 {
            // Little-endian: the first nonzero byte holds the lowest set bit.
            return zeros + word.trailing_zeros() as usize / 8;
        }
        zeros += 8;
    }
    zeros + tail.iter().take_while(|&&b| b == 0).count()
}

#[cfg(test)]
mod padding_tests {
    use super::leading_zeros;

    #[test]
    fn leading_zeros_counts_what_a_byte_walk_counts() {
        // Every length up to a few words, with the first nonzero byte anywhere (or none).
        for len in 0..40 {
            for first_nonzero in 0..=len {
                for value in [1u8, 0x80, 0xff] {
                    let mut bytes = vec![0u8; len];
                    if first_nonzero < len {
                        bytes[first_nonzero] = value;
                        // Whatever follows must not matter.
                        for b in &mut bytes[first_nonzero + 1..] {
                            *b = 0x5a;
                        }
                    }
                    let walked = bytes.iter().take_while(|&&b| b == 0).count();
                    assert_eq!(leading_zeros(&bytes), walked, "{bytes:?}");
                }
            }
        }
    }
}
