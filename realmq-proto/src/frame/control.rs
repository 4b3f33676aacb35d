//! The small control frames: HEARTBEAT, HELLO, WELCOME, STOP and BYE.

use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::frame::frame_type;

/// The longest token a HELLO may carry (room for a future address-validation cookie).
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

/// HELLO (`0x04`, handshake only): `nonce` (8 bytes), `epoch_unix_us` (varint), token
/// length (varint, at most [`MAX_TOKEN_LEN`]) and token bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello<'a> {
    /// A random value the WELCOME echoes, matching answer to request.
    pub nonce: u64,
    /// The client's session epoch as Unix time in microseconds; DATA and HEARTBEAT
    /// timestamps count from it.
    pub epoch_unix_us: u64,
    /// Opaque token (empty in version 1).
    pub token: &'a [u8],
}

impl<'a> Hello<'a> {
    pub(crate) fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let nonce = r.uint(8)?;
        let epoch_unix_us = r.varint()?;
        let token_len = r.varint()?;
        if token_len > MAX_TOKEN_LEN as u64 {
            return Err(DecodeError::TokenTooLong(token_len));
        }
        Ok(Self {
            nonce,
            epoch_unix_us,
            token: r.bytes(token_len)?,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        if self.token.len() > MAX_TOKEN_LEN {
            return Err(EncodeError::TokenTooLong(self.token.len()));
        }
        w.u8(frame_type::HELLO)?;
        w.uint(self.nonce, 8)?;
        w.varint(self.epoch_unix_us)?;
        w.varint(self.token.len() as u64)?;
        w.slice(self.token)
    }
}

/// WELCOME (`0x05`, handshake only): `nonce` (8 bytes, echoed from the HELLO) and
/// `heartbeat_interval_us` (varint). The header carries the new session id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Welcome {
    /// The HELLO's nonce.
    pub nonce: u64,
    /// How often the client should send a HEARTBEAT when it has nothing else to send.
    pub heartbeat_interval_us: u64,
}

impl Welcome {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            nonce: r.uint(8)?,
            heartbeat_interval_us: r.varint()?,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u8(frame_type::WELCOME)?;
        w.uint(self.nonce, 8)?;
        w.varint(self.heartbeat_interval_us)
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
