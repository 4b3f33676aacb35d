//! The small control frames: HEARTBEAT, HELLO, RETRY, WELCOME, STOP and BYE.

use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::frame::frame_type;
use crate::varint;

/// The longest token a HELLO or RETRY may carry.
pub const MAX_TOKEN_LEN: usize = 255;

/// HEARTBEAT (`0x01`): `timestamp_us` (varint), the sender's clock in microseconds since its
/// session epoch. It feeds the peer's failure detector and asks for an ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// Sender's time, microseconds since its session epoch.
    pub timestamp_us: u64,
}

impl Heartbeat {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            timestamp_us: r.varint()?,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u8(frame_type::HEARTBEAT)?;
        w.varint(self.timestamp_us)
    }
}

/// The largest clock offset a HELLO can carry: 2^61 − 1 µs (about 73,000 years), so that its
/// zigzag encoding stays within a varint (2^62 − 1).
pub const MAX_CLOCK_OFFSET_US: i64 = (1 << 61) - 1;

/// HELLO (`0x04`, handshake only): `nonce` (8 bytes), `epoch_unix_us` (varint),
/// `timestamp_us` (varint), `clock_offset_us` (varint, zigzag), `clock_rtt_us` (varint),
/// token length (varint, at most [`MAX_TOKEN_LEN`]) and token bytes.
///
/// The clock fields carry the client's NTP-style estimate of its clock offset to the server
/// (RFC 5905 §8), from the RETRYs that answered its earlier HELLOs; `clock_rtt_us` = 0 means
/// no estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello<'a> {
    /// A random value the WELCOME echoes, matching answer to request.
    pub nonce: u64,
    /// The client's session epoch as Unix time in microseconds; DATA and HEARTBEAT
    /// timestamps count from it.
    pub epoch_unix_us: u64,
    /// The client's time when it sent this HELLO, µs since its session epoch; the RETRY or
    /// WELCOME answering it echoes it, so the client matches each answer to the exact HELLO
    /// that caused it.
    pub timestamp_us: u64,
    /// The client's estimate of its clock minus the server's, µs (within
    /// ±[`MAX_CLOCK_OFFSET_US`]); 0 without an estimate.
    pub clock_offset_us: i64,
    /// The round trip of the exchange the estimate came from, µs: the true offset lies
    /// within ±`clock_rtt_us / 2` of the estimate. 0 means no estimate.
    pub clock_rtt_us: u64,
    /// The address-validation cookie of the server's RETRY, echoed; empty in a first HELLO.
    pub token: &'a [u8],
}

impl<'a> Hello<'a> {
    pub(crate) fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let nonce = r.uint(8)?;
        let epoch_unix_us = r.varint()?;
        let timestamp_us = r.varint()?;
        let clock_offset_us = varint::unzigzag(r.varint()?);
        let clock_rtt_us = r.varint()?;
        let token_len = r.varint()?;
        if token_len > MAX_TOKEN_LEN as u64 {
            return Err(DecodeError::TokenTooLong(token_len));
        }
        Ok(Self {
            nonce,
            epoch_unix_us,
            timestamp_us,
            clock_offset_us,
            clock_rtt_us,
            token: r.bytes(token_len)?,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        if self.token.len() > MAX_TOKEN_LEN {
            return Err(EncodeError::TokenTooLong(self.token.len()));
        }
        // Beyond the bound, the zigzag value exceeds a varint: refused by `varint` below.
        let offset = varint::zigzag(self.clock_offset_us);
        w.u8(frame_type::HELLO)?;
        w.uint(self.nonce, 8)?;
        w.varint(self.epoch_unix_us)?;
        w.varint(self.timestamp_us)?;
        w.varint(offset)?;
        w.varint(self.clock_rtt_us)?;
        w.varint(self.token.len() as u64)?;
        w.slice(self.token)
    }
}

/// RETRY (`0x10`, handshake only, server to client): `nonce` (8 bytes, echoed from the
/// HELLO), `echo_timestamp_us` (varint), `server_unix_us` (varint), cookie length (varint, at
/// most [`MAX_TOKEN_LEN`]) and cookie bytes. The server keeps no state for it: the client
/// repeats its HELLO with the cookie as token, proving it receives at the address it sends
/// from (as QUIC's Retry, RFC 9000 §8.1.2). The two times give the client one sample of its
/// clock offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry<'a> {
    /// The HELLO's nonce.
    pub nonce: u64,
    /// The HELLO's `timestamp_us`, echoed.
    pub echo_timestamp_us: u64,
    /// The server's wall clock when it answered, µs since the Unix epoch; 0 if the server
    /// has no wall clock.
    pub server_unix_us: u64,
    /// The cookie to echo.
    pub cookie: &'a [u8],
}

impl<'a> Retry<'a> {
    pub(crate) fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let nonce = r.uint(8)?;
        let echo_timestamp_us = r.varint()?;
        let server_unix_us = r.varint()?;
        let len = r.varint()?;
        if len > MAX_TOKEN_LEN as u64 {
            return Err(DecodeError::TokenTooLong(len));
        }
        Ok(Self {
            nonce,
            echo_timestamp_us,
            server_unix_us,
            cookie: r.bytes(len)?,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        if self.cookie.len() > MAX_TOKEN_LEN {
            return Err(EncodeError::TokenTooLong(self.cookie.len()));
        }
        w.u8(frame_type::RETRY)?;
        w.uint(self.nonce, 8)?;
        w.varint(self.echo_timestamp_us)?;
        w.varint(self.server_unix_us)?;
        w.varint(self.cookie.len() as u64)?;
        w.slice(self.cookie)
    }
}

/// WELCOME (`0x05`, handshake only): `nonce` (8 bytes, echoed from the HELLO),
/// `heartbeat_interval_us` (varint), `server_nonce` (8 bytes), `id_window` (varint),
/// `echo_timestamp_us` (varint) and `server_unix_us` (varint). The header carries the new
/// session id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Welcome {
    /// The HELLO's nonce.
    pub nonce: u64,
    /// How often the client should send a HEARTBEAT when it has nothing else to send.
    pub heartbeat_interval_us: u64,
    /// The server's random contribution to the session keys (used with a pre-shared key).
    pub server_nonce: u64,
    /// The receiver's plausibility window: it accepts message IDs up to its largest received
    /// ID plus this many, and drops datagrams with IDs beyond. The client keeps its send
    /// window no larger, so its own messages always fall inside.
    pub id_window: u64,
    /// The `timestamp_us` of the HELLO this WELCOME answers, echoed.
    pub echo_timestamp_us: u64,
    /// The server's wall clock when it answered, µs since the Unix epoch; 0 if the server
    /// has no wall clock.
    pub server_unix_us: u64,
}

impl Welcome {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            nonce: r.uint(8)?,
            heartbeat_interval_us: r.varint()?,
            server_nonce: r.uint(8)?,
            id_window: r.varint()?,
            echo_timestamp_us: r.varint()?,
            server_unix_us: r.varint()?,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u8(frame_type::WELCOME)?;
        w.uint(self.nonce, 8)?;
        w.varint(self.heartbeat_interval_us)?;
        w.uint(self.server_nonce, 8)?;
        w.varint(self.id_window)?;
        w.varint(self.echo_timestamp_us)?;
        w.varint(self.server_unix_us)
    }
}

/// STOP (`0x06`): `sent` (varint), how many messages the client sent in the session. The
/// client repeats it until a BYE comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop {
    /// Messages the client sent in this session.
    pub sent: u64,
}

impl Stop {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self { sent: r.varint()? })
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u8(frame_type::STOP)?;
        w.varint(self.sent)
    }
}

/// BYE (`0x07`): `received` (varint), how many distinct messages the server received in
/// the session. It ends the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bye {
    /// Distinct messages the server received in this session.
    pub received: u64,
}

impl Bye {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            received: r.varint()?,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u8(frame_type::BYE)?;
        w.varint(self.received)
    }
}
