//! Stateless address-validation cookies.
//!
//! A server must not open a session (allocate state, send more than it received) for a
//! HELLO whose source address may be forged. It answers such a HELLO with a [`Cookie`] and
//! keeps nothing; the client repeats its HELLO with the cookie, and the server opens the
//! session only if the cookie verifies. Only a client that receives at the address can echo
//! the cookie, so the address is proven (RFC 9000 §8.1.2, Retry tokens; DTLS 1.2's
//! HelloVerifyRequest, RFC 6347 §4.2.1).
//!
//! A cookie is [`COOKIE_LEN`] = 24 bytes:
//!
//! ```text
//! +-----------------------------+--------------------------------------------+
//! | minted_at_ms (8, BE u64)    | HMAC-SHA256(key, input), first 16 bytes     |
//! +-----------------------------+--------------------------------------------+
//! input = "realmq/1 cookie" ‖ minted_at_ms (8) ‖ client_nonce (8) ‖ address
//! address = 4 ‖ IPv4 (4) ‖ port (2)   or   6 ‖ IPv6 (16) ‖ port (2)
//! ```
//!
//! The timestamp travels in the clear (the server needs it to judge freshness, and the tag
//! covers it); it is on the server's own clock (for example milliseconds since the server
//! started), which reveals nothing more than the server's uptime. A 128-bit tag leaves a
//! blind forger a 2⁻¹²⁸ chance per try. Tags are compared in constant time
//! (`hmac`'s `verify_truncated_left`).
//!
//! The key is 32 random bytes the server draws at start. [`CookieKeys`] rotates it cheaply:
//! cookies minted under the previous key stay valid until they expire.

use std::net::SocketAddr;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Length of a cookie, in bytes: an 8-byte timestamp and a 16-byte tag.
pub const COOKIE_LEN: usize = 24;

/// Length of a cookie key, in bytes.
pub const COOKIE_KEY_LEN: usize = 32;

/// How far ahead of `now_ms` a cookie's timestamp may be and still verify: a little slack
/// for servers whose threads read the clock at slightly different moments.
pub const MAX_FUTURE_SKEW_MS: u64 = 1_000;

/// Length of the cookie's timestamp.
const TIMESTAMP_LEN: usize = 8;
/// Length of the cookie's (truncated) tag.
const TAG_LEN: usize = COOKIE_LEN - TIMESTAMP_LEN;
/// Domain separation: this key's MACs are cookies of this protocol version, nothing else.
const LABEL: &[u8] = b"realmq/1 cookie";

/// Why a cookie was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum CookieError {
    /// Not [`COOKIE_LEN`] bytes long.
    #[error("cookie of {len} bytes, expected {COOKIE_LEN}")]
    WrongLength {
        /// The length received.
        len: usize,
    },
    /// The tag does not verify: forged, altered, minted for another address or nonce, or
    /// under a key the server no longer holds.
    #[error("cookie tag does not verify")]
    BadTag,
    /// Genuine, but older than the lifetime.
    #[error("cookie expired: minted {age_ms} ms ago, lifetime {lifetime_ms} ms")]
    Expired {
        /// How long ago it was minted.
        age_ms: u64,
        /// The lifetime it was checked against.
        lifetime_ms: u64,
    },
    /// Genuine, but minted more than [`MAX_FUTURE_SKEW_MS`] after `now_ms`.
    #[error("cookie minted {ahead_ms} ms in the future")]
    FromFuture {
        /// How far after `now_ms` it claims to be minted.
        ahead_ms: u64,
    },
}

/// An address-validation cookie, as sent to the client and echoed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cookie([u8; COOKIE_LEN]);

impl Cookie {
    /// The cookie's bytes, to put on the wire.
    pub fn as_bytes(&self) -> &[u8; COOKIE_LEN] {
        &self.0
    }

    /// When it was minted, on the minting server's clock (milliseconds).
    pub fn minted_at_ms(&self) -> u64 {
        let mut ts = [0u8; TIMESTAMP_LEN];
        ts.copy_from_slice(&self.0[..TIMESTAMP_LEN]);
        u64::from_be_bytes(ts)
    }
}

impl AsRef<[u8]> for Cookie {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The secret that mints and verifies cookies. `Debug` does not print it.
#[derive(Clone)]
pub struct CookieKey {
    /// HMAC-SHA256 with the key already absorbed: cloned for each cookie.
    mac: Hmac<Sha256>,
}

impl core::fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CookieKey").finish_non_exhaustive()
    }
}

impl CookieKey {
    /// A key from 32 secret bytes, which the caller draws from a CSPRNG.
    pub fn new(secret: &[u8; COOKIE_KEY_LEN]) -> Self {
        Self {
            mac: Hmac::new_from_slice(secret).expect("HMAC takes keys of any length"),
        }
    }

    /// The MAC over everything a cookie vouches for, ready to finalize or verify.
    fn mac(&self, peer: SocketAddr, client_nonce: u64, minted_at_ms: u64) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(LABEL);
        mac.update(&minted_at_ms.to_be_bytes());
        mac.update(&client_nonce.to_be_bytes());
        match peer {
            SocketAddr::V4(a) => {
                mac.update(&[4]);
                mac.update(&a.ip().octets());
            }
            SocketAddr::V6(a) => {
                mac.update(&[6]);
                mac.update(&a.ip().octets());
            }
        }
        mac.update(&peer.port().to_be_bytes());
        mac
    }

    /// A cookie for a HELLO carrying `client_nonce` from `peer`, minted at `now_ms` on the
    /// server's clock.
    pub fn mint(&self, peer: SocketAddr, client_nonce: u64, now_ms: u64) -> Cookie {
        let tag = self.mac(peer, client_nonce, now_ms).finalize().into_bytes();
        let mut cookie = [0u8; COOKIE_LEN];
        cookie[..TIMESTAMP_LEN].copy_from_slice(&now_ms.to_be_bytes());
        cookie[TIMESTAMP_LEN..].copy_from_slice(&tag[..TAG_LEN]);
        Cookie(cookie)
    }

    /// Checks that `cookie` was minted by this key for `peer` and `client_nonce`, at most
    /// `lifetime_ms` before `now_ms` (and at most [`MAX_FUTURE_SKEW_MS`] after it).
    ///
    /// The tag is checked first, in constant time; the time only for a genuine cookie, so
    /// `Expired` and `FromFuture` mean a real client came back late (or the clock jumped).
    /// Never panics, whatever the bytes and times.
    pub fn verify(
        &self,
        peer: SocketAddr,
        client_nonce: u64,
        cookie: &[u8],
        now_ms: u64,
        lifetime_ms: u64,
    ) -> Result<(), CookieError> {
        let cookie = <&[u8; COOKIE_LEN]>::try_from(cookie)
            .map_err(|_| CookieError::WrongLength { len: cookie.len() })?;
        let cookie = Cookie(*cookie);
        let minted_at_ms = cookie.minted_at_ms();
        self.mac(peer, client_nonce, minted_at_ms)
            .verify_truncated_left(&cookie.0[TIMESTAMP_LEN..])
            .map_err(|_| CookieError::BadTag)?;
        if minted_at_ms > now_ms {
            let ahead_ms = minted_at_ms - now_ms;
            if ahead_ms > MAX_FUTURE_SKEW_MS {
                return Err(CookieError::FromFuture { ahead_ms });
            }
            return Ok(());
        }
        let age_ms = now_ms - minted_at_ms;
        if age_ms > lifetime_ms {
            return Err(CookieError::Expired {
                age_ms,
                lifetime_ms,
            });
        }
        Ok(())
    }
}

/// The current cookie key and the one before it: mints with the current, verifies with
/// either, so that rotating the key does not refuse the cookies already handed out.
///
/// Rotate at least every lifetime (then a cookie outlives at most one rotation); each
/// rotation forgets the key before the previous one.
#[derive(Debug, Clone)]
pub struct CookieKeys {
    current: CookieKey,
    previous: Option<CookieKey>,
}

impl CookieKeys {
    /// A ring holding the one key made of `secret`.
    pub fn new(secret: &[u8; COOKIE_KEY_LEN]) -> Self {
        Self {
            current: CookieKey::new(secret),
            previous: None,
        }
    }

    /// Makes `secret` the current key, and the current key the previous one.
    pub fn rotate(&mut self, secret: &[u8; COOKIE_KEY_LEN]) {
        let old = core::mem::replace(&mut self.current, CookieKey::new(secret));
        self.previous = Some(old);
    }

    /// [`CookieKey::mint`] with the current key.
    pub fn mint(&self, peer: SocketAddr, client_nonce: u64, now_ms: u64) -> Cookie {
        self.current.mint(peer, client_nonce, now_ms)
    }

    /// [`CookieKey::verify`] with the current key, then, if its tag does not verify, with
    /// the previous one.
    pub fn verify(
        &self,
        peer: SocketAddr,
        client_nonce: u64,
        cookie: &[u8],
        now_ms: u64,
        lifetime_ms: u64,
    ) -> Result<(), CookieError> {
        let current = self
            .current
            .verify(peer, client_nonce, cookie, now_ms, lifetime_ms);
        match (current, &self.previous) {
            (Err(CookieError::BadTag), Some(previous)) => {
                previous.verify(peer, client_nonce, cookie, now_ms, lifetime_ms)
            }
            (result, _) => result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    const SECRET: [u8; 32] = [0x5a; 32];
    const LIFETIME: u64 = 10_000;

    fn v4(last: u8, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)), port)
    }

    #[test]
    fn round_trip_v4_and_v6() {
        let key = CookieKey::new(&SECRET);
        let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 4433);
        for peer in [v4(1, 4433), v6] {
            let cookie = key.mint(peer, 42, 1_000);
            assert_eq!(cookie.minted_at_ms(), 1_000);
            assert_eq!(cookie.as_bytes().len(), COOKIE_LEN);
            assert_eq!(
                key.verify(peer, 42, cookie.as_ref(), 1_000, LIFETIME),
                Ok(())
            );
            assert_eq!(
                key.verify(peer, 42, cookie.as_ref(), 11_000, LIFETIME),
                Ok(())
            );
        }
    }

    #[test]
    fn bound_to_address_port_nonce_and_key() {
        let key = CookieKey::new(&SECRET);
        let peer = v4(1, 4433);
        let cookie = key.mint(peer, 42, 1_000);
        let check = |peer, nonce, key: &CookieKey| {
            key.verify(peer, nonce, cookie.as_ref(), 1_000, LIFETIME)
        };
        assert_eq!(check(v4(2, 4433), 42, &key), Err(CookieError::BadTag));
        assert_eq!(check(v4(1, 4434), 42, &key), Err(CookieError::BadTag));
        assert_eq!(check(peer, 43, &key), Err(CookieError::BadTag));
        assert_eq!(
            check(peer, 42, &CookieKey::new(&[0x5b; 32])),
            Err(CookieError::BadTag)
        );
        // The same address written as IPv4-mapped IPv6 is another address.
        let mapped = SocketAddr::new(
            IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped()),
            4433,
        );
        assert_eq!(check(mapped, 42, &key), Err(CookieError::BadTag));
        assert_eq!(check(peer, 42, &key), Ok(()));
    }

    #[test]
    fn a_rewritten_timestamp_fails() {
        let key = CookieKey::new(&SECRET);
        let peer = v4(1, 9);
        let mut bytes = *key.mint(peer, 7, 1_000).as_bytes();
        // An attacker refreshing an old cookie.
        bytes[..8].copy_from_slice(&50_000u64.to_be_bytes());
        assert_eq!(
            key.verify(peer, 7, &bytes, 50_000, LIFETIME),
            Err(CookieError::BadTag)
        );
    }

    #[test]
    fn every_flipped_bit_fails() {
        let key = CookieKey::new(&SECRET);
        let peer = v4(1, 9);
        let cookie = key.mint(peer, 7, 1_000);
        for bit in 0..COOKIE_LEN * 8 {
            let mut bytes = *cookie.as_bytes();
            bytes[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                key.verify(peer, 7, &bytes, 1_000, LIFETIME),
                Err(CookieError::BadTag),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn expiry_and_future() {
        let key = CookieKey::new(&SECRET);
        let peer = v4(1, 9);
        let cookie = key.mint(peer, 7, 5_000);
        let at = |now| key.verify(peer, 7, cookie.as_ref(), now, LIFETIME);
        assert_eq!(at(5_000 + LIFETIME), Ok(()));
        assert_eq!(
            at(5_001 + LIFETIME),
            Err(CookieError::Expired {
                age_ms: LIFETIME + 1,
                lifetime_ms: LIFETIME
            })
        );
        assert_eq!(at(5_000 - MAX_FUTURE_SKEW_MS), Ok(()));
        assert_eq!(
            at(4_999 - MAX_FUTURE_SKEW_MS),
            Err(CookieError::FromFuture {
                ahead_ms: MAX_FUTURE_SKEW_MS + 1
            })
        );
        assert_eq!(
            key.verify(peer, 7, cookie.as_ref(), 5_001, 0),
            Err(CookieError::Expired {
                age_ms: 1,
                lifetime_ms: 0
            })
        );
    }

    #[test]
    fn wrong_lengths() {
        let key = CookieKey::new(&SECRET);
        let cookie = key.mint(v4(1, 9), 7, 0);
        for len in [0, 1, COOKIE_LEN - 1] {
            assert_eq!(
                key.verify(v4(1, 9), 7, &cookie.as_bytes()[..len], 0, LIFETIME),
                Err(CookieError::WrongLength { len })
            );
        }
        let mut longer = cookie.as_bytes().to_vec();
        longer.push(0);
        assert_eq!(
            key.verify(v4(1, 9), 7, &longer, 0, LIFETIME),
            Err(CookieError::WrongLength {
                len: COOKIE_LEN + 1
            })
        );
    }

    #[test]
    fn rotation_keeps_the_previous_key_only() {
        let peer = v4(3, 1234);
        let mut keys = CookieKeys::new(&[1; 32]);
        let first = keys.mint(peer, 1, 0);
        keys.rotate(&[2; 32]);
        let second = keys.mint(peer, 1, 0);
        assert_ne!(first, second);
        assert_eq!(keys.verify(peer, 1, first.as_ref(), 0, LIFETIME), Ok(()));
        assert_eq!(keys.verify(peer, 1, second.as_ref(), 0, LIFETIME), Ok(()));
        // An old, genuine cookie under the previous key is still judged on its age.
        assert_eq!(
            keys.verify(peer, 1, first.as_ref(), LIFETIME + 1, LIFETIME),
            Err(CookieError::Expired {
                age_ms: LIFETIME + 1,
                lifetime_ms: LIFETIME
            })
        );
        keys.rotate(&[3; 32]);
        assert_eq!(
            keys.verify(peer, 1, first.as_ref(), 0, LIFETIME),
            Err(CookieError::BadTag)
        );
        assert_eq!(keys.verify(peer, 1, second.as_ref(), 0, LIFETIME), Ok(()));
    }

    #[test]
    fn debug_prints_no_secret() {
        let s = format!("{:?}", CookieKeys::new(&SECRET));
        assert!(!s.contains("90") && !s.contains("5a"), "{s}");
    }

    fn any_addr() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
            (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
        ]
    }

    proptest! {
        #[test]
        fn verify_never_panics(
            peer in any_addr(),
            nonce in any::<u64>(),
            bytes in prop::collection::vec(any::<u8>(), 0..40),
            now in any::<u64>(),
            lifetime in any::<u64>(),
        ) {
            let key = CookieKey::new(&SECRET);
            // Arbitrary bytes never verify (2^-128 per try).
            prop_assert!(key.verify(peer, nonce, &bytes, now, lifetime).is_err());
        }

        #[test]
        fn genuine_cookies_verify_at_any_time(
            peer in any_addr(),
            nonce in any::<u64>(),
            minted in any::<u64>(),
            age in 0u64..100_000,
        ) {
            let key = CookieKey::new(&SECRET);
            let cookie = key.mint(peer, nonce, minted);
            let now = minted.saturating_add(age);
            let expected = if now - minted > LIFETIME {
                Err(CookieError::Expired { age_ms: now - minted, lifetime_ms: LIFETIME })
            } else {
                Ok(())
            };
            prop_assert_eq!(key.verify(peer, nonce, cookie.as_ref(), now, LIFETIME), expected);
        }
    }
}
