//! The 8-byte datagram header.
//!
//! ```text
//!  0       1       2       3       4       5       6       7
//! +-------+-------+-------+-------+-------+-------+-------+-------+
//! |  magic 'R' 'M' |version| kind  | flags|       session id (BE)     |
//! +-------+-------+-------+---+---+-------+-------+-------+-------+
//!                          hi nib lo nib
//! ```

use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, EncodeError};

/// The first two bytes of every RealMQ datagram: ASCII "RM".
pub const MAGIC: u16 = 0x524d;
/// The protocol version this build speaks. Version 2 sends message IDs whole, adds RETRY
/// and extends WELCOME; version 3 adds the clock-offset fields to HELLO, RETRY and WELCOME.
/// An older peer's datagrams are rejected as malformed ([`DecodeError::UnsupportedVersion`]).
pub const VERSION: u8 = 3;
/// Bytes in the header.
pub const HEADER_LEN: usize = 8;

/// Byte ranges of the header fields, for readers of the layout.
pub mod field {
    use core::ops::Range;
    /// Magic, big-endian.
    pub const MAGIC: Range<usize> = 0..2;
    /// Version byte.
    pub const VERSION: usize = 2;
    /// Packet kind (high nibble) and flags (low nibble).
    pub const KIND_FLAGS: usize = 3;
    /// Session id, big-endian.
    pub const SESSION_ID: Range<usize> = 4..8;
}

/// What a datagram belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// Session set-up: HELLO (client to server, session id 0) and WELCOME (server to client,
    /// carrying the new session id). Only HELLO, WELCOME and PADDING frames are allowed.
    Handshake,
    /// Everything within an established session: DATA, ACK, HEARTBEAT, STOP, BYE, PADDING.
    Session,
}

impl PacketKind {
    const fn code(self) -> u8 {
        match self {
            Self::Handshake => 0,
            Self::Session => 1,
        }
    }

    /// The kind's name, for errors and logs.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Handshake => "handshake",
            Self::Session => "session",
        }
    }
}

/// The header's four flag bits. Bits this version does not define are ignored on receipt
/// and sent as zero, so later versions may give them meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u8);

impl Flags {
    /// No flags.
    pub const NONE: Self = Self(0);
    /// The sender asks for an ACK without delay (tail of a burst, a probe).
    pub const ACK_NOW: Self = Self(0x1);
    /// The datagram ends with an authentication trailer (a session with a pre-shared key),
    /// so a receiver without the key can tell "wrong configuration" from garbage.
    pub const SEALED: Self = Self(0x2);
    /// The sender never resends what it wrote (RealMQ without QoS), so a gap below newer
    /// IDs will never fill: a receiver short of room for gaps may give up the oldest ones.
    pub const NO_RESEND: Self = Self(0x4);
    /// Every flag this version knows; other bits are ignored on receipt.
    const KNOWN: u8 = 0x7;

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of two flag sets.
    pub const fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// The raw bits.
    pub const fn bits(self) -> u8 {
        self.0
    }
}

/// A decoded datagram header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Handshake or session traffic.
    pub kind: PacketKind,
    /// Flag bits (only the defined ones are kept).
    pub flags: Flags,
    /// The session this datagram belongs to; 0 in a HELLO.
    pub session_id: u32,
}

impl Header {
    /// A session header with no flags.
    pub const fn session(session_id: u32) -> Self {
        Self {
            kind: PacketKind::Session,
            flags: Flags::NONE,
            session_id,
        }
    }

    /// A handshake header with no flags.
    pub const fn handshake(session_id: u32) -> Self {
        Self {
            kind: PacketKind::Handshake,
            flags: Flags::NONE,
            session_id,
        }
    }

    /// Decodes the header at the start of `bytes`, checking magic, version and kind.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::read(&mut Reader::new(bytes))
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let magic = r.uint(2)? as u16;
        if magic != MAGIC {
            return Err(DecodeError::BadMagic(magic));
        }
        let version = r.u8()?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let kind_flags = r.u8()?;
        let kind = match kind_flags >> 4 {
            0 => PacketKind::Handshake,
            1 => PacketKind::Session,
            other => return Err(DecodeError::UnknownPacketKind(other)),
        };
        let flags = Flags(kind_flags & Flags::KNOWN);
        let session_id = r.uint(4)? as u32;
        Ok(Self {
            kind,
            flags,
            session_id,
        })
    }

    /// The header's bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[field::MAGIC].copy_from_slice(&MAGIC.to_be_bytes());
        out[field::VERSION] = VERSION;
        out[field::KIND_FLAGS] = self.kind.code() << 4 | self.flags.0;
        out[field::SESSION_ID].copy_from_slice(&self.session_id.to_be_bytes());
        out
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.uint(u64::from(MAGIC), 2)?;
        w.u8(VERSION)?;
        w.u8(self.kind.code() << 4 | self.flags.0)?;
        w.uint(u64::from(self.session_id), 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_from_literal_bytes() {
        let bytes = [0x52, 0x4d, 0x03, 0x11, 0x00, 0x00, 0x01, 0x02];
        let header = Header::parse(&bytes).unwrap();
        assert_eq!(header.kind, PacketKind::Session);
        assert!(header.flags.contains(Flags::ACK_NOW));
        assert_eq!(header.session_id, 0x0102);

        let mut out = [0u8; HEADER_LEN];
        let mut w = Writer::new(&mut out);
        header.write(&mut w).unwrap();
        assert_eq!(out, bytes);
        assert_eq!(header.to_bytes(), bytes);
        assert_eq!(&out[field::MAGIC], b"RM");
    }

    #[test]
    fn rejects_what_it_does_not_speak() {
        assert_eq!(Header::parse(&[0x52]), Err(DecodeError::Truncated));
        assert_eq!(
            Header::parse(&[0x00, 0x4d, 1, 0x10, 0, 0, 0, 0]),
            Err(DecodeError::BadMagic(0x004d))
        );
        // Versions 1 and 2: their HELLO and WELCOME have other layouts.
        for old in [1, 2] {
            assert_eq!(
                Header::parse(&[0x52, 0x4d, old, 0x10, 0, 0, 0, 0]),
                Err(DecodeError::UnsupportedVersion(old))
            );
        }
        assert_eq!(
            Header::parse(&[0x52, 0x4d, 3, 0x20, 0, 0, 0, 0]),
            Err(DecodeError::UnknownPacketKind(2))
        );
        assert_eq!(
            Header::parse(&[0x52, 0x4d, 3, 0x10, 0, 0, 0]),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn unknown_flag_bits_are_ignored() {
        let header = Header::parse(&[0x52, 0x4d, 3, 0x18, 0, 0, 0, 7]).unwrap();
        assert_eq!(header.flags, Flags::NONE);
        let header = Header::parse(&[0x52, 0x4d, 3, 0x1f, 0, 0, 0, 7]).unwrap();
        let all = Flags::ACK_NOW.with(Flags::SEALED).with(Flags::NO_RESEND);
        assert_eq!(header.flags, all);
    }
}
