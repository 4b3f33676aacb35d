//! Datagram authentication: a trailer that proves who sent a datagram and that it is new.
//!
//! A sealed datagram is the plain datagram followed by a [`TRAILER_LEN`]-byte trailer:
//!
//! ```text
//! +----------------------+---------------------+------------------+
//! | datagram (len bytes) | counter (8, BE u64) | tag (16 bytes)   |
//! +----------------------+---------------------+------------------+
//! |<------- associated data (authenticated) --->|
//! ```
//!
//! The tag is ChaCha20-Poly1305's (RFC 8439 §2.8) over an **empty plaintext** with
//! everything before the tag as associated data, under the direction's key and the nonce
//! `0x00000000 ‖ counter` (RFC 8439 §2.8 takes a 96-bit nonce; the counter is unique per key
//! because each direction of each session has its own key and its sender counts from 0 and
//! never wraps). Nothing is encrypted: the datagram stays readable, and is authenticated
//! byte for byte, header and counter included.
//!
//! A [`Sealer`] (the sending side of one direction) appends trailers; an [`Opener`] (the
//! receiving side) checks them and refuses what it already accepted with a
//! [`ReplayWindow`].

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};

use super::replay::{ReplayError, ReplayWindow};

/// Length of a direction key, in bytes (a ChaCha20-Poly1305 key).
pub const KEY_LEN: usize = 32;

/// Length of the trailer's counter, in bytes.
pub const COUNTER_LEN: usize = 8;

/// Length of the trailer's tag, in bytes (a Poly1305 tag).
pub const TAG_LEN: usize = 16;

/// Bytes [`Sealer::seal`] appends to a datagram: the counter, then the tag. The session layer
/// reserves this much room in every datagram it builds.
pub const TRAILER_LEN: usize = COUNTER_LEN + TAG_LEN;

/// Why [`Sealer::seal`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SealError {
    /// The buffer cannot hold the datagram plus the trailer (or `len` exceeds the buffer).
    #[error(
        "no room for the {TRAILER_LEN}-byte trailer after {len} bytes in a {capacity}-byte buffer"
    )]
    NoRoom {
        /// The datagram's length, as given.
        len: usize,
        /// The buffer's length.
        capacity: usize,
    },
    /// Every counter of this key was used: sealing more would reuse a nonce. The session
    /// must end (or be rekeyed).
    #[error("send counter exhausted: the session must be rekeyed")]
    CounterExhausted,
}

/// Why [`Opener::open`] refused a datagram. Each is a datagram to count and drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum OpenError {
    /// Shorter than a trailer: cannot have been sealed.
    #[error("datagram of {len} bytes is shorter than the {TRAILER_LEN}-byte trailer")]
    TooShort {
        /// The datagram's length.
        len: usize,
    },
    /// Its counter was already accepted: a replay (or a duplicate from the network).
    #[error("counter already accepted (replayed datagram)")]
    Replayed,
    /// Its counter is too far below the highest accepted to tell: refused.
    #[error("counter is left of the anti-replay window")]
    TooOld,
    /// The tag does not verify: forged, altered, or sealed with another key.
    #[error("authentication tag does not verify")]
    BadTag,
}

impl From<ReplayError> for OpenError {
    fn from(e: ReplayError) -> Self {
        match e {
            ReplayError::Replayed => OpenError::Replayed,
            ReplayError::TooOld => OpenError::TooOld,
        }
    }
}

/// The 96-bit AEAD nonce of a counter: four zero bytes, then the counter big-endian.
fn nonce(counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::from(n)
}

/// The sending side of one direction: appends a trailer to each datagram, with counters
/// 0, 1, 2, … in order.
///
/// Deliberately not `Clone`: two sealers with one key would reuse counters, and so nonces.
pub struct Sealer {
    aead: ChaCha20Poly1305,
    /// The counter the next datagram gets.
    next: u64,
}

impl core::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The key is never printed.
        f.debug_struct("Sealer")
            .field("next_counter", &self.next)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// A sealer for the direction whose key is `key`, starting at counter 0.
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        Self {
            aead: ChaCha20Poly1305::new(Key::from_slice(key)),
            next: 0,
        }
    }

    /// A sealer starting at `next` (tests of counter exhaustion).
    #[cfg(test)]
    pub(crate) fn with_counter(key: &[u8; KEY_LEN], next: u64) -> Self {
        Self {
            next,
            ..Self::new(key)
        }
    }

    /// The counter the next sealed datagram gets (= how many were sealed).
    pub fn next_counter(&self) -> u64 {
        self.next
    }

    /// Appends the trailer to the `len`-byte datagram at the start of `buf`, and returns the
    /// sealed length `len + TRAILER_LEN`.
    ///
    /// Fails, leaving `buf` and the counter alone, if `buf` has no room for the trailer or the
    /// counters are used up (after 2⁶⁴ − 1 datagrams).
    pub fn seal(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SealError> {
        let sealed_len = len
            .checked_add(TRAILER_LEN)
            .filter(|&end| end <= buf.len())
            .ok_or(SealError::NoRoom {
                len,
                capacity: buf.len(),
            })?;
        // u64::MAX is never used, so `next` never wraps to a used value.
        if self.next == u64::MAX {
            return Err(SealError::CounterExhausted);
        }
        let counter = self.next;
        let (aad, tag_out) = buf[..sealed_len].split_at_mut(len + COUNTER_LEN);
        aad[len..].copy_from_slice(&counter.to_be_bytes());
        let tag = self
            .aead
            .encrypt_in_place_detached(&nonce(counter), aad, &mut [])
            .expect("an empty plaintext is within ChaCha20-Poly1305's limits");
        tag_out.copy_from_slice(&tag);
        self.next += 1;
        Ok(sealed_len)
    }
}

/// The receiving side of one direction: checks trailers and refuses replays.
///
/// [`open`](Self::open) checks the counter against the anti-replay window first (cheap, and
/// a replay is refused before any cryptography), then the tag, and records the counter as
/// seen only once the tag verifies: a forged datagram cannot move the window.
pub struct Opener {
    aead: ChaCha20Poly1305,
    window: ReplayWindow,
}

impl core::fmt::Debug for Opener {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The key is never printed.
        f.debug_struct("Opener")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl Opener {
    /// An opener for the direction whose key is `key`, having accepted nothing yet.
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        Self {
            aead: ChaCha20Poly1305::new(Key::from_slice(key)),
            window: ReplayWindow::default(),
        }
    }

    /// The anti-replay window (its highest accepted counter, for statistics).
    pub fn window(&self) -> &ReplayWindow {
        &self.window
    }

    /// Checks a sealed datagram and returns the length of the datagram without its trailer:
    /// `&datagram[..n]` is then authentic and new. Never panics, whatever the bytes.
    pub fn open(&mut self, datagram: &[u8]) -> Result<usize, OpenError> {
        let len = datagram.len();
        let Some(body_len) = len.checked_sub(TRAILER_LEN) else {
            return Err(OpenError::TooShort { len });
        };
        let (aad, tag) = datagram.split_at(body_len + COUNTER_LEN);
        let mut counter = [0u8; COUNTER_LEN];
        counter.copy_from_slice(&aad[body_len..]);
        let counter = u64::from_be_bytes(counter);
        self.window.check(counter)?;
        self.aead
            .decrypt_in_place_detached(&nonce(counter), aad, &mut [], Tag::from_slice(tag))
            .map_err(|_| OpenError::BadTag)?;
        self.window.mark(counter);
        Ok(body_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::replay::REPLAY_WINDOW;
    use proptest::prelude::*;

    const C2S: [u8; KEY_LEN] = [0x11; KEY_LEN];
    const S2C: [u8; KEY_LEN] = [0x22; KEY_LEN];

    /// `body` sealed by `sealer`, as a fresh vector.
    fn sealed(sealer: &mut Sealer, body: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; body.len() + TRAILER_LEN];
        buf[..body.len()].copy_from_slice(body);
        let n = sealer.seal(&mut buf, body.len()).unwrap();
        assert_eq!(n, buf.len());
        buf
    }

    #[test]
    fn round_trip() {
        let mut sealer = Sealer::new(&C2S);
        let mut opener = Opener::new(&C2S);
        for i in 0..100u64 {
            let body = vec![i as u8; (i as usize) * 13];
            let d = sealed(&mut sealer, &body);
            assert_eq!(d[body.len()..body.len() + 8], i.to_be_bytes());
            assert_eq!(opener.open(&d), Ok(body.len()));
            assert_eq!(&d[..body.len()], &body[..]);
        }
        assert_eq!(sealer.next_counter(), 100);
        assert_eq!(opener.window().highest(), Some(99));
    }

    #[test]
    fn seal_in_a_larger_buffer() {
        let mut sealer = Sealer::new(&C2S);
        let mut buf = [0xAAu8; 1500];
        let n = sealer.seal(&mut buf, 100).unwrap();
        assert_eq!(n, 100 + TRAILER_LEN);
        assert_eq!(buf[n], 0xAA, "nothing written past the trailer");
        assert_eq!(Opener::new(&C2S).open(&buf[..n]), Ok(100));
    }

    #[test]
    fn seal_without_room_fails_and_changes_nothing() {
        let mut sealer = Sealer::new(&C2S);
        let mut buf = [7u8; 40];
        assert_eq!(
            sealer.seal(&mut buf, 17),
            Err(SealError::NoRoom {
                len: 17,
                capacity: 40
            })
        );
        assert_eq!(
            sealer.seal(&mut buf, usize::MAX),
            Err(SealError::NoRoom {
                len: usize::MAX,
                capacity: 40
            })
        );
        assert_eq!(buf, [7u8; 40]);
        assert_eq!(sealer.next_counter(), 0);
        assert_eq!(sealer.seal(&mut buf, 16), Ok(40));
    }

    #[test]
    fn counter_exhaustion() {
        let mut sealer = Sealer::with_counter(&C2S, u64::MAX - 1);
        let mut buf = [0u8; 64];
        assert_eq!(sealer.seal(&mut buf, 10), Ok(10 + TRAILER_LEN));
        let mut opener = Opener::new(&C2S);
        assert_eq!(opener.open(&buf[..10 + TRAILER_LEN]), Ok(10));
        assert_eq!(sealer.seal(&mut buf, 10), Err(SealError::CounterExhausted));
        assert_eq!(sealer.seal(&mut buf, 10), Err(SealError::CounterExhausted));
    }

    #[test]
    fn every_flipped_bit_fails() {
        let mut sealer = Sealer::new(&C2S);
        let d = sealed(&mut sealer, b"header+frames: a short datagram");
        for bit in 0..d.len() * 8 {
            let mut opener = Opener::new(&C2S);
            let mut forged = d.clone();
            forged[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(opener.open(&forged), Err(OpenError::BadTag), "bit {bit}");
            // The forgery did not move the window: the genuine one still opens.
            assert_eq!(opener.window().highest(), None);
            assert_eq!(opener.open(&d), Ok(d.len() - TRAILER_LEN));
        }
    }

    #[test]
    fn truncated_or_extended_datagrams_fail() {
        let mut sealer = Sealer::new(&C2S);
        let d = sealed(&mut sealer, b"0123456789");
        let mut opener = Opener::new(&C2S);
        for cut in 0..d.len() {
            let r = opener.open(&d[..cut]);
            assert!(r.is_err(), "cut {cut}");
            if cut < TRAILER_LEN {
                assert_eq!(r, Err(OpenError::TooShort { len: cut }));
            }
        }
        let mut longer = d.clone();
        longer.push(0);
        assert!(opener.open(&longer).is_err());
        assert_eq!(opener.open(&d), Ok(10));
    }

    #[test]
    fn a_replay_fails_and_reordering_does_not() {
        let mut sealer = Sealer::new(&C2S);
        let ds: Vec<_> = (0..10u8).map(|i| sealed(&mut sealer, &[i; 50])).collect();
        let mut opener = Opener::new(&C2S);
        for i in [3, 0, 9, 1, 2, 8, 4, 7, 5, 6] {
            assert_eq!(opener.open(&ds[i]), Ok(50), "{i}");
        }
        for d in &ds {
            assert_eq!(opener.open(d), Err(OpenError::Replayed));
        }
    }

    #[test]
    fn a_datagram_left_of_the_window_fails() {
        let mut sealer = Sealer::new(&C2S);
        let old = sealed(&mut sealer, b"old");
        let mut opener = Opener::new(&C2S);
        let mut last = Vec::new();
        for _ in 0..REPLAY_WINDOW {
            last = sealed(&mut sealer, b"x");
        }
        assert_eq!(opener.open(&last), Ok(1));
        assert_eq!(opener.open(&old), Err(OpenError::TooOld));
    }

    #[test]
    fn the_other_directions_key_fails() {
        let mut client = Sealer::new(&C2S);
        let mut server = Sealer::new(&S2C);
        let from_client = sealed(&mut client, b"PUBLISH");
        let from_server = sealed(&mut server, b"ACK");
        // Reflected back to its sender, a datagram does not open.
        assert_eq!(Opener::new(&S2C).open(&from_client), Err(OpenError::BadTag));
        assert_eq!(Opener::new(&C2S).open(&from_server), Err(OpenError::BadTag));
        assert_eq!(Opener::new(&C2S).open(&from_client), Ok(7));
        assert_eq!(Opener::new(&S2C).open(&from_server), Ok(3));
    }

    #[test]
    fn a_counter_rewritten_by_an_attacker_fails() {
        let mut sealer = Sealer::new(&C2S);
        let d = sealed(&mut sealer, b"payload");
        let mut opener = Opener::new(&C2S);
        assert_eq!(opener.open(&d), Ok(7));
        // Same datagram, new counter, to dodge the replay window: the tag no longer fits.
        let mut forged = d.clone();
        forged[7..15].copy_from_slice(&5u64.to_be_bytes());
        assert_eq!(opener.open(&forged), Err(OpenError::BadTag));
    }

    #[test]
    fn debug_does_not_print_keys() {
        let s = format!("{:?} {:?}", Sealer::new(&C2S), Opener::new(&C2S));
        assert!(!s.contains("17") && !s.contains("0x11"), "{s}");
    }

    proptest! {
        #[test]
        fn open_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let mut opener = Opener::new(&C2S);
            prop_assert!(opener.open(&bytes).is_err());
        }

        #[test]
        fn round_trip_any_body(body in prop::collection::vec(any::<u8>(), 0..1500), k in any::<[u8; 32]>()) {
            let mut sealer = Sealer::new(&k);
            let d = sealed(&mut sealer, &body);
            prop_assert_eq!(Opener::new(&k).open(&d), Ok(body.len()));
        }
    }
}
