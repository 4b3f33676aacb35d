//! The pre-shared key and the per-session, per-direction keys derived from it.
//!
//! Both ends of an authenticated session hold the same [`Psk`]. After the handshake each
//! knows the client's nonce, the server's nonce and the session id, and derives with
//! HKDF-SHA256 (RFC 5869):
//!
//! ```text
//! PRK     = HKDF-Extract(salt = "realmq/1 psk", IKM = PSK)
//! context = client_nonce (8, BE) ‖ server_nonce (8, BE) ‖ session_id (4, BE)
//! key_c2s = HKDF-Expand(PRK, info = "realmq/1 c2s" ‖ context, 32)
//! key_s2c = HKDF-Expand(PRK, info = "realmq/1 s2c" ‖ context, 32)
//! ```
//!
//! The salt is a fixed, public domain-separation label (RFC 5869 §3.1 allows a non-secret
//! salt; a constant one keeps attacker-chosen values out of the extraction step). The
//! context goes in `info`, where RFC 5869 §3.2 binds keys to their use: a new nonce on either
//! side gives fresh keys, so counters restart at 0 without ever reusing a nonce under a key,
//! and the two directions' keys differ, so a datagram reflected back to its sender fails.
//! Both labels are 12 bytes, so the `info` strings cannot be confused with each other.

use hkdf::Hkdf;
use sha2::Sha256;

use super::seal::{Opener, Sealer, KEY_LEN};

/// The fewest bytes a [`Psk`] may have: 128 bits.
pub const MIN_PSK_LEN: usize = 16;

/// HKDF-Extract's salt: a public label naming the protocol version.
const SALT: &[u8] = b"realmq/1 psk";
/// HKDF-Expand's label for the client-to-server key.
const LABEL_C2S: &[u8; 12] = b"realmq/1 c2s";
/// HKDF-Expand's label for the server-to-client key.
const LABEL_S2C: &[u8; 12] = b"realmq/1 s2c";

/// Why [`Psk::from_bytes`] refused a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum PskError {
    /// The key (after hex decoding, for a text key) is shorter than [`MIN_PSK_LEN`].
    #[error("pre-shared key has {len} bytes; at least {MIN_PSK_LEN} are needed")]
    TooShort {
        /// The key's length in bytes.
        len: usize,
    },
    /// A text key holds something other than hex digits and whitespace.
    #[error("pre-shared key text has a character that is not a hex digit at byte {offset}")]
    NotHex {
        /// Where, in the input.
        offset: usize,
    },
    /// A text key has an odd number of hex digits.
    #[error("pre-shared key text has an odd number ({digits}) of hex digits")]
    OddDigits {
        /// How many hex digits it has.
        digits: usize,
    },
}

/// A pre-shared key: the secret both ends of an authenticated session hold.
///
/// `Debug` prints its length only.
#[derive(Clone)]
pub struct Psk {
    bytes: Box<[u8]>,
}

impl core::fmt::Debug for Psk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Psk")
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

/// The value of one ASCII hex digit.
fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

impl Psk {
    /// A key from the content of a key file, in one of two forms:
    ///
    /// - **text**: when every byte is printable ASCII or ASCII whitespace, the content is hex
    ///   (either case), whitespace anywhere ignored, so `openssl rand -hex 32` and the
    ///   wrapped lines of `xxd -p` both work; anything else in it is an error;
    /// - **raw**: otherwise (some byte is a control character or not ASCII, as in
    ///   `head -c 32 /dev/urandom`), the bytes as they are.
    ///
    /// A random raw key of 16 bytes or more is all printable ASCII with a probability below
    /// 10⁻⁸, and keys meant as text must be hex: a passphrase is refused rather than used
    /// with its trailing newline. Either way the key must have at least [`MIN_PSK_LEN`]
    /// bytes.
    pub fn from_bytes(content: &[u8]) -> Result<Self, PskError> {
        let is_text = content
            .iter()
            .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
        let bytes: Box<[u8]> = if is_text {
            let mut digits = Vec::with_capacity(content.len());
            for (offset, &b) in content.iter().enumerate() {
                if b.is_ascii_whitespace() {
                    continue;
                }
                digits.push(hex_value(b).ok_or(PskError::NotHex { offset })?);
            }
            if digits.len() % 2 != 0 {
                return Err(PskError::OddDigits {
                    digits: digits.len(),
                });
            }
            digits
                .chunks_exact(2)
                .map(|pair| pair[0] << 4 | pair[1])
                .collect()
        } else {
            content.into()
        };
        if bytes.len() < MIN_PSK_LEN {
            return Err(PskError::TooShort { len: bytes.len() });
        }
        Ok(Self { bytes })
    }

    /// How many bytes the key has (at least [`MIN_PSK_LEN`]).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always `false`: a key has at least [`MIN_PSK_LEN`] bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// The two keys of one authenticated session, one per direction.
///
/// `Debug` prints no key.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    client_to_server: [u8; KEY_LEN],
    server_to_client: [u8; KEY_LEN],
}

impl core::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SessionKeys").finish_non_exhaustive()
    }
}

impl SessionKeys {
    /// Derives the session's keys from the pre-shared key, both ends' nonces and the session
    /// id, with HKDF-SHA256 (RFC 5869) as the module documentation shows.
    pub fn derive(psk: &Psk, client_nonce: u64, server_nonce: u64, session_id: u32) -> Self {
        let hkdf = Hkdf::<Sha256>::new(Some(SALT), &psk.bytes);
        let mut context = [0u8; 20];
        context[..8].copy_from_slice(&client_nonce.to_be_bytes());
        context[8..16].copy_from_slice(&server_nonce.to_be_bytes());
        context[16..].copy_from_slice(&session_id.to_be_bytes());
        let expand = |label: &[u8; 12]| {
            let mut key = [0u8; KEY_LEN];
            hkdf.expand_multi_info(&[label, &context], &mut key)
                .expect("32 bytes are within HKDF-SHA256's 8160-byte limit");
            key
        };
        Self {
            client_to_server: expand(LABEL_C2S),
            server_to_client: expand(LABEL_S2C),
        }
    }

    /// The key of the client-to-server direction.
    pub fn client_to_server(&self) -> &[u8; KEY_LEN] {
        &self.client_to_server
    }

    /// The key of the server-to-client direction.
    pub fn server_to_client(&self) -> &[u8; KEY_LEN] {
        &self.server_to_client
    }

    /// What the client needs: a sealer for what it sends, an opener for what it receives.
    pub fn client_side(&self) -> (Sealer, Opener) {
        (
            Sealer::new(&self.client_to_server),
            Opener::new(&self.server_to_client),
        )
    }

    /// What the server needs: a sealer for what it sends, an opener for what it receives.
    pub fn server_side(&self) -> (Sealer, Opener) {
        (
            Sealer::new(&self.server_to_client),
            Opener::new(&self.client_to_server),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::seal::{OpenError, TRAILER_LEN};
    use proptest::prelude::*;

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn raw() -> Vec<u8> {
        (0u8..32).collect()
    }

    #[test]
    fn text_and_raw_forms_give_the_same_key() {
        let from_raw = Psk::from_bytes(&raw()).unwrap();
        let from_hex = Psk::from_bytes(HEX.as_bytes()).unwrap();
        let wrapped = format!("  {}\n{}\r\n", &HEX[..30], HEX[30..].to_uppercase());
        let from_wrapped = Psk::from_bytes(wrapped.as_bytes()).unwrap();
        assert_eq!(from_raw.len(), 32);
        let keys = |psk: &Psk| SessionKeys::derive(psk, 1, 2, 3);
        assert_eq!(keys(&from_raw), keys(&from_hex));
        assert_eq!(keys(&from_raw), keys(&from_wrapped));
    }

    #[test]
    fn bad_keys_are_refused() {
        assert_eq!(
            Psk::from_bytes(b"").unwrap_err(),
            PskError::TooShort { len: 0 }
        );
        assert_eq!(
            Psk::from_bytes(b"00112233445566778899aabbccddee\n").unwrap_err(),
            PskError::TooShort { len: 15 }
        );
        assert_eq!(
            Psk::from_bytes(b"my secret passphrase\n").unwrap_err(),
            PskError::NotHex { offset: 0 }
        );
        assert_eq!(
            Psk::from_bytes(b"00112233445566778899aabbccddeeff0\n").unwrap_err(),
            PskError::OddDigits { digits: 33 }
        );
        assert_eq!(
            Psk::from_bytes(&[0xff; 15]).unwrap_err(),
            PskError::TooShort { len: 15 }
        );
        assert!(Psk::from_bytes(&[0xff; 16]).is_ok());
    }

    #[test]
    fn debug_prints_no_secret() {
        let psk = Psk::from_bytes(&[0xab; 32]).unwrap();
        let keys = SessionKeys::derive(&psk, 1, 2, 3);
        let s = format!("{psk:?} {keys:?}");
        assert!(!s.contains("171") && !s.contains("ab"), "{s}");
    }

    #[test]
    fn every_input_changes_the_keys() {
        let psk = Psk::from_bytes(&raw()).unwrap();
        let other = Psk::from_bytes(&[0x99; 32]).unwrap();
        let base = SessionKeys::derive(&psk, 1, 2, 3);
        assert_ne!(base.client_to_server(), base.server_to_client());
        for changed in [
            SessionKeys::derive(&other, 1, 2, 3),
            SessionKeys::derive(&psk, 9, 2, 3),
            SessionKeys::derive(&psk, 1, 9, 3),
            SessionKeys::derive(&psk, 1, 2, 9),
            // Swapping the nonces is a different session too.
            SessionKeys::derive(&psk, 2, 1, 3),
        ] {
            assert_ne!(changed.client_to_server(), base.client_to_server());
            assert_ne!(changed.server_to_client(), base.server_to_client());
        }
    }

    /// A known answer, so that a change of labels or layout cannot pass unnoticed: the same
    /// derivation written out with the `hmac` crate (RFC 5869 §2.2, §2.3).
    #[test]
    fn matches_rfc5869_written_out() {
        use hmac::{Hmac, Mac};
        let hmac = |key: &[u8], parts: &[&[u8]]| {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
            for p in parts {
                mac.update(p);
            }
            mac.finalize().into_bytes()
        };
        let psk = Psk::from_bytes(&raw()).unwrap();
        let prk = hmac(b"realmq/1 psk", &[&raw()]);
        let mut context = Vec::new();
        context.extend_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        context.extend_from_slice(&0x1112_1314_1516_1718u64.to_be_bytes());
        context.extend_from_slice(&0x2122_2324u32.to_be_bytes());
        // One block of output: T(1) = HMAC(PRK, info ‖ 0x01).
        let c2s = hmac(&prk, &[b"realmq/1 c2s", &context, &[1]]);
        let s2c = hmac(&prk, &[b"realmq/1 s2c", &context, &[1]]);
        let keys = SessionKeys::derive(
            &psk,
            0x0102_0304_0506_0708,
            0x1112_1314_1516_1718,
            0x2122_2324,
        );
        assert_eq!(keys.client_to_server()[..], c2s[..]);
        assert_eq!(keys.server_to_client()[..], s2c[..]);
    }

    #[test]
    fn both_sides_talk_and_a_reflection_fails() {
        let psk = Psk::from_bytes(HEX.as_bytes()).unwrap();
        let keys = SessionKeys::derive(&psk, 11, 22, 33);
        let (mut client_tx, mut client_rx) = keys.client_side();
        let (mut server_tx, mut server_rx) = keys.server_side();
        let mut from_client = [0u8; 64];
        from_client[..5].copy_from_slice(b"hello");
        let c = client_tx.seal(&mut from_client, 5).unwrap();
        let mut from_server = [0u8; 64];
        let s = server_tx.seal(&mut from_server, 3).unwrap();
        assert_eq!(s, 3 + TRAILER_LEN);
        // Reflected back to their senders, both fail.
        assert_eq!(client_rx.open(&from_client[..c]), Err(OpenError::BadTag));
        assert_eq!(server_rx.open(&from_server[..s]), Err(OpenError::BadTag));
        assert_eq!(server_rx.open(&from_client[..c]), Ok(5));
        assert_eq!(client_rx.open(&from_server[..s]), Ok(3));
    }

    proptest! {
        #[test]
        fn from_bytes_never_panics(content in prop::collection::vec(any::<u8>(), 0..100)) {
            if let Ok(psk) = Psk::from_bytes(&content) {
                prop_assert!(psk.len() >= MIN_PSK_LEN);
            }
        }

        #[test]
        fn hex_text_round_trips(key in prop::collection::vec(any::<u8>(), MIN_PSK_LEN..64)) {
            let text: String = key.iter().map(|b| format!("{b:02x}")).collect();
            let a = Psk::from_bytes(text.as_bytes()).unwrap();
            prop_assert_eq!(&a.bytes[..], &key[..]);
        }
    }
}
