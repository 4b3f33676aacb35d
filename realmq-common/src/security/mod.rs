//! Security against an attacker on the path: address validation and datagram authentication.
//!
//! RealMQ promises each message exactly once. Over plain UDP an attacker can break that
//! promise without breaking any sequence logic: spoof a HELLO from a victim's address (the
//! server opens sessions and sends to the victim), inject a datagram with a guessed session
//! id, or replay a captured one. This module gives the session layer two defences, each
//! sans-IO like the rest of the crate: keys, nonces, random bytes and time are arguments, and
//! the binaries draw the randomness from the OS CSPRNG.
//!
//! # Address validation ([`cookie`](CookieKey))
//!
//! A HELLO from an address not yet validated is answered with a stateless [`Cookie`]: an
//! HMAC-SHA256 tag (truncated to 16 bytes) over the client's address (IP and port), its
//! nonce and a timestamp, under a key only the server knows. Only a HELLO that echoes a
//! valid, fresh cookie opens a session, so opening one proves the client receives at its
//! address. This is RFC 9000 §8.1 (QUIC address validation, Retry tokens §8.1.2), in the
//! family of DTLS's HelloVerifyRequest (RFC 6347 §4.2.1) and TCP SYN cookies (RFC 4987
//! §3.6). [`CookieKeys`] rotates the key without refusing cookies already handed out.
//!
//! # Authenticated sessions ([`Psk`], [`SessionKeys`], [`Sealer`], [`Opener`])
//!
//! Opt in with a pre-shared key ([`Psk`], loaded by the caller from a file). After the
//! handshake, both ends derive one key per direction from the PSK, both nonces and the
//! session id with HKDF-SHA256 (RFC 5869), labels `realmq/1 c2s` and `realmq/1 s2c`.
//! Every later datagram carries a [`TRAILER_LEN`]-byte trailer: a 64-bit counter and a
//! ChaCha20-Poly1305 tag (RFC 8439) over the whole datagram with an empty plaintext. The
//! receiver's [`Opener`] refuses, each with its own [`OpenError`] to count:
//!
//! - forged, altered or injected datagrams, and datagrams sealed for the other direction
//!   (reflections): [`OpenError::BadTag`];
//! - replays: [`OpenError::Replayed`], by an anti-replay window ([`ReplayWindow`], RFC 4303
//!   §3.4.3 laid out as RFC 6479) of [`REPLAY_WINDOW`] = 4096 counters, wide enough for the
//!   reordering of a loaded link; older counters: [`OpenError::TooOld`].
//!
//! The window is checked before the tag (a replay costs no cryptography) and moved only
//! after the tag verifies (a forgery cannot move it). Datagrams are authenticated, not
//! encrypted.
//!
//! No cryptography is written here: HMAC, SHA-256, HKDF and ChaCha20-Poly1305 come from the
//! RustCrypto crates `hmac`, `sha2`, `hkdf` and `chacha20poly1305`, and tags are compared
//! in constant time by them.

mod cookie;
mod keys;
mod replay;
mod seal;

pub use cookie::{
    Cookie, CookieError, CookieKey, CookieKeys, COOKIE_KEY_LEN, COOKIE_LEN, MAX_FUTURE_SKEW_MS,
};
pub use keys::{Psk, PskError, SessionKeys, MIN_PSK_LEN};
pub use replay::{ReplayError, ReplayWindow, REPLAY_WINDOW};
pub use seal::{OpenError, Opener, SealError, Sealer, COUNTER_LEN, KEY_LEN, TAG_LEN, TRAILER_LEN};
