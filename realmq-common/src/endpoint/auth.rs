//! The per-session authentication state both endpoints keep with a pre-shared key: the
//! sealer for what they send and the opener (with its anti-replay window) for what they
//! receive. See `docs/SECURITY.md`.

use realmq_proto::header_field::KIND_FLAGS;
use realmq_proto::{Flags, Header};

use crate::security::{OpenError, Opener, SealError, Sealer, SessionKeys, TRAILER_LEN};

/// One side's keys for one session.
#[derive(Debug)]
pub(crate) struct SessionAuth {
    sealer: Sealer,
    opener: Opener,
}

impl SessionAuth {
    /// The client's side of `keys`.
    pub(crate) fn client(keys: &SessionKeys) -> Self {
        let (sealer, opener) = keys.client_side();
        Self { sealer, opener }
    }

    /// The server's side of `keys`.
    pub(crate) fn server(keys: &SessionKeys) -> Self {
        let (sealer, opener) = keys.server_side();
        Self { sealer, opener }
    }

    /// Marks `buf[..len]` as sealed in its header and appends the trailer (which covers the
    /// mark); returns the sealed length.
    pub(crate) fn seal(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SealError> {
        if len > KIND_FLAGS {
            buf[KIND_FLAGS] |= Flags::SEALED.bits();
        }
        self.sealer.seal(buf, len)
    }

    /// Checks `datagram`'s mark and trailer; returns the datagram without the trailer.
    pub(crate) fn open<'a>(&mut self, datagram: &'a [u8]) -> Result<&'a [u8], OpenError> {
        if !is_sealed(datagram) {
            return Err(OpenError::BadTag);
        }
        let len = self.opener.open(datagram)?;
        Ok(&datagram[..len])
    }
}

/// The room a datagram writer may use when `authenticated` datagrams carry a trailer.
pub(crate) fn writable_len(max_datagram_size: usize, authenticated: bool) -> usize {
    if authenticated {
        max_datagram_size - TRAILER_LEN
    } else {
        max_datagram_size
    }
}

/// The part of a received handshake datagram before its trailer, if it can have one.
pub(crate) fn without_trailer(datagram: &[u8]) -> Option<&[u8]> {
    datagram
        .len()
        .checked_sub(TRAILER_LEN)
        .map(|n| &datagram[..n])
}

/// Whether `datagram`'s header says it carries an authentication trailer.
pub(crate) fn is_sealed(datagram: &[u8]) -> bool {
    Header::parse(datagram).is_ok_and(|h| h.flags.contains(Flags::SEALED))
}
