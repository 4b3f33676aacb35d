//! A self-describing payload for load tests: the load client writes its session id and the
//! message's ID into the first bytes of every payload of [`STAMP_LEN`] bytes or more, with a
//! CRC-32 of the rest (the body), and the server checks each delivered message against the
//! session and ID it was delivered under. A message delivered under another ID, into another
//! session, or with any byte changed counts as corrupt.
//!
//! ```text
//! 0..4    CRC-32 (IEEE) of bytes 16.. (the body), little-endian
//! 4..8    session id, little-endian
//! 8..16   message id, little-endian
//! 16..    the body: the rest of the payload, unchanged
//! ```
//!
//! The identity bytes are not in the checksum: they are compared whole with the session and
//! ID the message was delivered under, so a changed one is found anyway (except by
//! [`check_integrity`], which has no identity to compare). A sender whose messages share one
//! body computes its checksum once ([`Stamper`]): the load client does, and hashing every
//! payload was a fifth of its time; hashing the 12 identity bytes with `crc32fast`'s
//! byte-wise path was a sixth of the server's.

/// Bytes the stamp occupies at the start of a payload; shorter payloads carry none.
pub const STAMP_LEN: usize = 16;

/// Stamps payloads that share one body (their bytes from [`STAMP_LEN`] on): the body's
/// checksum is computed once; a stamp writes the identity and that checksum.
#[derive(Debug, Clone, Copy)]
pub struct Stamper {
    body_crc: u32,
}

impl Stamper {
    /// A stamper for payloads whose body is `payload`'s (from [`STAMP_LEN`] on).
    pub fn new(payload: &[u8]) -> Self {
        Self {
            body_crc: crc32fast::hash(payload.get(STAMP_LEN..).unwrap_or_default()),
        }
    }

    /// Writes the stamp for `(session_id, id)` into `payload`, which must have the body
    /// this stamper was made from (its stamp would fail the check otherwise). Does nothing
    /// to a payload shorter than [`STAMP_LEN`].
    pub fn stamp(&self, payload: &mut [u8], session_id: u32, id: u64) {
        if payload.len() < STAMP_LEN {
            return;
        }
        payload[0..4].copy_from_slice(&self.body_crc.to_le_bytes());
        payload[4..8].copy_from_slice(&session_id.to_le_bytes());
        payload[8..16].copy_from_slice(&id.to_le_bytes());
    }
}

/// Writes the stamp for `(session_id, id)` into `payload`, whose bytes from [`STAMP_LEN`] on
/// are the message body. Does nothing to a payload shorter than [`STAMP_LEN`].
pub fn write_stamp(payload: &mut [u8], session_id: u32, id: u64) {
    if payload.len() < STAMP_LEN {
        return;
    }
    payload[4..8].copy_from_slice(&session_id.to_le_bytes());
    payload[8..16].copy_from_slice(&id.to_le_bytes());
    let crc = checksum(payload);
    payload[0..4].copy_from_slice(&crc.to_le_bytes());
}

/// What checking a delivered payload found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StampCheck {
    /// Shorter than [`STAMP_LEN`]: nothing to check.
    Unstamped,
    /// The stamp names this session and ID and the checksum matches.
    Intact,
    /// Anything else: another session, another ID, or a changed byte.
    Corrupt,
}

/// Checks `payload`, delivered as message `id` of session `session_id`.
pub fn check_stamp(payload: &[u8], session_id: u32, id: u64) -> StampCheck {
    if payload.len() < STAMP_LEN {
        return StampCheck::Unstamped;
    }
    let field = |range: std::ops::Range<usize>| &payload[range];
    let intact = field(4..8) == session_id.to_le_bytes()
        && field(8..16) == id.to_le_bytes()
        && field(0..4) == checksum(payload).to_le_bytes();
    if intact {
        StampCheck::Intact
    } else {
        StampCheck::Corrupt
    }
}

/// Checks only that `payload`'s body is intact (its checksum matches), not which session or
/// ID it names: for the load test's modes without IDs (`--protocol raw`), where a lost
/// datagram shifts every later message's place.
pub fn check_integrity(payload: &[u8]) -> StampCheck {
    if payload.len() < STAMP_LEN {
        StampCheck::Unstamped
    } else if payload[0..4] == checksum(payload).to_le_bytes() {
        StampCheck::Intact
    } else {
        StampCheck::Corrupt
    }
}

/// CRC-32 of the body (the bytes after the stamp).
fn checksum(payload: &[u8]) -> u32 {
    crc32fast::hash(&payload[STAMP_LEN..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_stamped_payload_checks_intact_under_its_own_identity_only() {
        let mut p = vec![7u8; 64];
        write_stamp(&mut p, 9, 1_000);
        assert_eq!(check_stamp(&p, 9, 1_000), StampCheck::Intact);
        assert_eq!(check_stamp(&p, 9, 1_000 + 65_536), StampCheck::Corrupt);
        assert_eq!(check_stamp(&p, 10, 1_000), StampCheck::Corrupt);
    }

    #[test]
    fn the_integrity_check_ignores_the_identity_but_not_a_changed_byte() {
        let mut p = vec![7u8; 64];
        write_stamp(&mut p, 9, 1_000);
        assert_eq!(check_integrity(&p), StampCheck::Intact);
        p[40] ^= 1;
        assert_eq!(check_integrity(&p), StampCheck::Corrupt);
        assert_eq!(check_integrity(&p[..STAMP_LEN - 1]), StampCheck::Unstamped);
    }

    #[test]
    fn a_stamper_writes_the_same_stamp_as_write_stamp() {
        let mut a = (0..64u8).collect::<Vec<_>>();
        let mut b = a.clone();
        let stamper = Stamper::new(&a);
        for id in [0, 1, 77, u64::MAX] {
            write_stamp(&mut a, 3, id);
            stamper.stamp(&mut b, 3, id);
            assert_eq!(a, b);
            assert_eq!(check_stamp(&b, 3, id), StampCheck::Intact);
        }
        let mut short = vec![1u8; STAMP_LEN - 1];
        Stamper::new(&short).stamp(&mut short, 1, 1);
        assert_eq!(short, vec![1u8; STAMP_LEN - 1]);
    }

    #[test]
    fn short_payloads_are_unstamped() {
        let mut p = vec![1u8; STAMP_LEN - 1];
        write_stamp(&mut p, 1, 1);
        assert_eq!(p, vec![1u8; STAMP_LEN - 1]);
        assert_eq!(check_stamp(&p, 1, 1), StampCheck::Unstamped);
        let mut exact = vec![0u8; STAMP_LEN];
        write_stamp(&mut exact, 1, 2);
        assert_eq!(check_stamp(&exact, 1, 2), StampCheck::Intact);
    }

    proptest! {
        #[test]
        fn any_flipped_bit_is_corrupt(
            body in proptest::collection::vec(any::<u8>(), STAMP_LEN..200),
            session in any::<u32>(),
            id in any::<u64>(),
            bit in any::<prop::sample::Index>(),
        ) {
            let mut p = body;
            write_stamp(&mut p, session, id);
            prop_assert_eq!(check_stamp(&p, session, id), StampCheck::Intact);
            let bit = bit.index(p.len() * 8);
            p[bit / 8] ^= 1 << (bit % 8);
            prop_assert_eq!(check_stamp(&p, session, id), StampCheck::Corrupt);
        }
    }
}
