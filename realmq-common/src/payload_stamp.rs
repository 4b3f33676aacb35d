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

use realmq_proto::MessageRun;

use crate::sender::FillPayload;

/// Bytes the stamp occupies at the start of a payload; shorter payloads carry none.
pub const STAMP_LEN: usize = 16;

/// The longest body [`Stamper::fill`] copies in fixed-size pieces ([`copy_ends`]); longer
/// ones go through `memcpy`.
const PIECES_UP_TO: usize = 128;

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

    /// Writes `payload` (whose body this stamper was made from) into `message`, of the same
    /// length, stamped for `(session_id, id)`: what [`stamp`](Self::stamp) after a copy gives,
    /// without copying the bytes the stamp overwrites. A body of up to 128 bytes goes in two
    /// fixed-size pieces the compiler writes in place (`copy_ends`), not through a `memcpy`
    /// call per message (with 64-byte messages, copying in pieces took the load client's
    /// user time down by a sixth). A longer one goes through `memcpy`, whose wide copies
    /// beat the pieces there (they were a tenth of the client's samples with 1,024-byte
    /// messages; `docs/BENCHMARKS.md`).
    ///
    /// # Panics
    ///
    /// If `message` and `payload` differ in length.
    #[inline(always)]
    pub fn fill(&self, message: &mut [u8], payload: &[u8], session_id: u32, id: u64) {
        if payload.len() < STAMP_LEN {
            message.copy_from_slice(payload);
            return;
        }
        let (to, from) = (&mut message[STAMP_LEN..], &payload[STAMP_LEN..]);
        if from.len() > PIECES_UP_TO {
            to.copy_from_slice(from);
            self.stamp(message, session_id, id);
            return;
        }
        assert_eq!(to.len(), from.len(), "message and payload lengths differ");
        match from.len() {
            0..16 => to.copy_from_slice(from),
            16..=32 => copy_ends::<16>(to, from),
            33..=64 => copy_ends::<32>(to, from),
            _ => copy_ends::<64>(to, from),
        }
        self.stamp(message, session_id, id);
    }

    /// Writes slot `k` of `slots` (slots of `stride` bytes back to back) as `prefix`, then
    /// `payload` (whose body this stamper was made from) stamped for `(session_id,
    /// first_id + k)`, as [`fill`](Self::fill) would behind the prefix one by one. The
    /// body's length is looked at once, not per message: for a body of 16 to 128 bytes the
    /// loop holds its first and last pieces in registers and writes each message as a few
    /// fixed-size stores: with 64-byte messages, `send_many` went from 68 to 37 instructions
    /// a message in the load client, whose per-message branches on the length and reloads of
    /// the body had been 51 of them (callgrind, `docs/BENCHMARKS.md`). The prefix goes in
    /// the same loop: written by a loop of its own first, each slot was stored to twice,
    /// in two passes over memory the first one found cold.
    ///
    /// # Panics
    ///
    /// If a slot is not `prefix` and `payload` long, or `slots` is not a whole number of
    /// slots.
    #[inline(always)]
    pub fn fill_slots(
        &self,
        slots: &mut [u8],
        stride: usize,
        prefix: &[u8],
        payload: &[u8],
        (session_id, first_id): (u32, u64),
    ) {
        let at = prefix.len();
        assert!(
            stride.checked_sub(at) == Some(payload.len()) && slots.len().is_multiple_of(stride),
            "slots do not fit the payload"
        );
        match payload.len().saturating_sub(STAMP_LEN) {
            16..=32 => self
                .fill_slots_in_pieces::<16>(slots, stride, prefix, payload, session_id, first_id),
            33..=64 => self
                .fill_slots_in_pieces::<32>(slots, stride, prefix, payload, session_id, first_id),
            65..=PIECES_UP_TO => self
                .fill_slots_in_pieces::<64>(slots, stride, prefix, payload, session_id, first_id),
            // Empty slots (no prefix, no payload) make an empty `slots`: nothing to write.
            _ => {
                for (id, slot) in (first_id..).zip(slots.chunks_exact_mut(stride.max(1))) {
                    slot[..at].copy_from_slice(prefix);
                    self.fill(&mut slot[at..], payload, session_id, id);
                }
            }
        }
    }

    /// [`fill_slots`](Self::fill_slots) for a body of `K` to `2 * K` bytes: its first and
    /// last `K` bytes, and the stamp's first eight bytes (the checksum and the session),
    /// are read once. (Calling [`stamp`](Self::stamp) per message instead cost the load
    /// client 2.6 instructions a message more of 123.) A prefix of up to 8 bytes goes in as
    /// one 8-byte store, whose bytes past it the stamp then overwrites.
    #[inline(always)]
    fn fill_slots_in_pieces<const K: usize>(
        &self,
        slots: &mut [u8],
        stride: usize,
        prefix: &[u8],
        payload: &[u8],
        session_id: u32,
        first_id: u64,
    ) {
        let at = prefix.len();
        let body = &payload[STAMP_LEN..];
        let n = body.len();
        let head: [u8; K] = body[..K].try_into().expect("at least K bytes");
        let tail: [u8; K] = body[n - K..].try_into().expect("at least K bytes");
        let mut front = [0u8; 8];
        front[..4].copy_from_slice(&self.body_crc.to_le_bytes());
        front[4..].copy_from_slice(&session_id.to_le_bytes());
        // The slot holds at least the 16-byte stamp behind the prefix: 8 bytes always fit.
        let word = (at <= 8).then(|| {
            let mut word = [0u8; 8];
            word[..at].copy_from_slice(prefix);
            word
        });
        for (id, slot) in (first_id..).zip(slots.chunks_exact_mut(stride)) {
            match word {
                Some(word) => slot[..8].copy_from_slice(&word),
                None => slot[..at].copy_from_slice(prefix),
            }
            let message = &mut slot[at..];
            message[..8].copy_from_slice(&front);
            message[8..STAMP_LEN].copy_from_slice(&id.to_le_bytes());
            let body = &mut message[STAMP_LEN..];
            body[..K].copy_from_slice(&head);
            body[n - K..].copy_from_slice(&tail);
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

/// The payloads of one session's batch: copies of one payload, each stamped with its own
/// ID ([`Stamper::fill`]), for [`Sender::send_many`](crate::sender::Sender::send_many). Its
/// [`FillPayload::fill`] is inlined into the window's storing loop.
#[derive(Debug, Clone, Copy)]
pub struct StampedCopies<'a> {
    /// The stamper made from `payload`.
    pub stamper: &'a Stamper,
    /// The payload every message copies.
    pub payload: &'a [u8],
    /// The session the stamps name.
    pub session_id: u32,
}

impl FillPayload for StampedCopies<'_> {
    #[inline(always)]
    fn fill(&mut self, id: u64, message: &mut [u8]) {
        self.stamper
            .fill(message, self.payload, self.session_id, id);
    }

    #[inline(always)]
    fn fill_slots(&mut self, first_id: u64, slots: &mut [u8], stride: usize, prefix: &[u8]) {
        self.stamper.fill_slots(
            slots,
            stride,
            prefix,
            self.payload,
            (self.session_id, first_id),
        );
    }
}

/// Copies `from` into `to` (of the same length, from `K` to `2 * K` bytes) as its first and
/// its last `K` bytes, which overlap unless the length is `2 * K`: two fixed-size copies the
/// compiler writes in place, where a loop of 16-byte pieces was turned back into a `memcpy`
/// call, and a slice of the remainder was one even when empty (a tenth of the load client's
/// instructions with 64-byte messages; `docs/BENCHMARKS.md`).
fn copy_ends<const K: usize>(to: &mut [u8], from: &[u8]) {
    let n = from.len();
    debug_assert!((K..=2 * K).contains(&n) && to.len() == n);
    let head: [u8; K] = from[..K].try_into().expect("at least K bytes");
    let tail: [u8; K] = from[n - K..].try_into().expect("at least K bytes");
    to[..K].copy_from_slice(&head);
    to[n - K..].copy_from_slice(&tail);
}

/// Writes the stamp for `(session_id, id)` into `payload`, whose bytes from [`STAMP_LEN`] on
/// are the message body. Does nothing to a payload shorter than [`STAMP_LEN`].
pub fn write_stamp(payload: &mut [u8], session_id: u32, id: u64) {
    if payload.len() < STAMP_LEN {
        return;
    }
    payload[4..8].copy_from_slice(&session_id.to_le_bytes());
    payload[8..16].copy_from_slice(&id.to_le_bytes());
    let crc = crc32fast::hash(&payload[STAMP_LEN..]);
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
    verdict(payload, Some((session_id, id)), crc32fast::hash)
}

/// Checks only that `payload`'s body is intact (its checksum matches), not which session or
/// ID it names: for the load test's modes without IDs (`--protocol raw`), where a lost
/// datagram shifts every later message's place.
pub fn check_integrity(payload: &[u8]) -> StampCheck {
    verdict(payload, None, crc32fast::hash)
}

/// What checking a run of payloads found ([`StampChecker::check_run`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCheck {
    /// Payloads that carried a stamp and were checked (none in a run shorter than
    /// [`STAMP_LEN`]).
    pub checked: u64,
    /// How many of those were corrupt.
    pub corrupt: u64,
    /// The ID of the first corrupt one.
    pub first_corrupt: Option<u64>,
}

impl RunCheck {
    /// Counts message `id`'s verdict.
    fn count(&mut self, id: u64, check: StampCheck) {
        match check {
            StampCheck::Unstamped => {}
            StampCheck::Intact => self.checked += 1,
            StampCheck::Corrupt => {
                self.checked += 1;
                self.corrupt += 1;
                self.first_corrupt.get_or_insert(id);
            }
        }
    }
}

/// Checks stamps as [`check_stamp`] and [`check_integrity`] do, for a receiver whose
/// messages mostly share their body (a load client's do, per thread): it remembers the last
/// body it hashed and that body's checksum, and a payload whose body is byte for byte the
/// same is checked against that checksum without hashing it again. The verdicts are
/// exactly those of the free functions; comparing 48 bytes costs a fraction of hashing
/// them, which was 28 % of the server's time with 64-byte messages (`docs/BENCHMARKS.md`).
///
/// The remembered body grows to the largest body checked, at most the largest payload.
#[derive(Debug, Default, Clone)]
pub struct StampChecker {
    /// The last body hashed.
    body: Vec<u8>,
    /// Its checksum; `None` before any body was hashed.
    crc: Option<u32>,
}

impl StampChecker {
    /// A checker that remembers nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// As [`check_stamp`].
    pub fn check(&mut self, payload: &[u8], session_id: u32, id: u64) -> StampCheck {
        verdict(payload, Some((session_id, id)), |body| self.checksum(body))
    }

    /// Checks every message of `run`, delivered in session `session_id`, and returns what
    /// [`check`](Self::check) one by one would have found. With the body remembered from
    /// before, each payload is compared whole with what it should be (its stamp from the
    /// run's first ID on, the remembered body) in a few fixed-size words, with the
    /// remembered body's words held in registers across the run; only a payload that
    /// differs takes the exact check of [`check`](Self::check) (another body with its own
    /// checksum is intact, and is then remembered).
    pub fn check_run(&mut self, run: &MessageRun<'_>, session_id: u32) -> RunCheck {
        self.check_run_as(run, Some(session_id))
    }

    /// As [`check_run`](Self::check_run), checking only that each body is intact, as
    /// [`check_integrity`](Self::check_integrity) does (the run's IDs are only what its
    /// messages are counted by).
    pub fn check_run_integrity(&mut self, run: &MessageRun<'_>) -> RunCheck {
        self.check_run_as(run, None)
    }

    /// [`check_run`](Self::check_run) with the session to compare the stamps' identity
    /// with, or none to compare only their checksums.
    fn check_run_as(&mut self, run: &MessageRun<'_>, session_id: Option<u32>) -> RunCheck {
        let mut found = RunCheck::default();
        let Some(body_len) = run.payload_len().checked_sub(STAMP_LEN) else {
            return found;
        };
        let mut from = 0;
        if self.crc.is_none() || self.body.len() != body_len {
            // Remember this run's body (or find the first payload corrupt) first.
            self.check_each(run, session_id, 0..1, &mut found);
            from = 1;
        }
        // The identity or its absence is fixed per loop, as is the body's length class.
        let f = &mut found;
        match (body_len, session_id) {
            (16..=32, Some(id)) => self.check_run_in_pieces::<16, true>(run, id, from, f),
            (33..=64, Some(id)) => self.check_run_in_pieces::<32, true>(run, id, from, f),
            (65..=PIECES_UP_TO, Some(id)) => self.check_run_in_pieces::<64, true>(run, id, from, f),
            (16..=32, None) => self.check_run_in_pieces::<16, false>(run, 0, from, f),
            (33..=64, None) => self.check_run_in_pieces::<32, false>(run, 0, from, f),
            (65..=PIECES_UP_TO, None) => self.check_run_in_pieces::<64, false>(run, 0, from, f),
            _ => self.check_each(run, session_id, from..run.len(), f),
        }
        found
    }

    /// Checks messages `which` of `run` one by one.
    fn check_each(
        &mut self,
        run: &MessageRun<'_>,
        session_id: Option<u32>,
        which: std::ops::Range<usize>,
        found: &mut RunCheck,
    ) {
        for message in run.messages().skip(which.start).take(which.len()) {
            let check = self.check_one(message.payload, session_id, message.id);
            found.count(message.id, check);
        }
    }

    /// Checks one payload as message `id` of `session_id`, or its integrity alone.
    fn check_one(&mut self, payload: &[u8], session_id: Option<u32>, id: u64) -> StampCheck {
        match session_id {
            Some(session_id) => self.check(payload, session_id, id),
            None => self.check_integrity(payload),
        }
    }

    /// Checks the messages of `run` from `from` on, whose bodies of `K` to `2 * K` bytes are
    /// compared with the remembered one's as their first and last `K` bytes; with
    /// `IDENTITY`, each stamp's session and ID too (`session_id`, the run's IDs).
    #[inline(always)]
    fn check_run_in_pieces<const K: usize, const IDENTITY: bool>(
        &mut self,
        run: &MessageRun<'_>,
        session_id: u32,
        from: usize,
        found: &mut RunCheck,
    ) {
        let identity = IDENTITY.then_some(session_id);
        let (len, stride) = (run.payload_len(), run.stride());
        let body_len = len - STAMP_LEN;
        let Some(crc) = self.crc.filter(|_| self.body.len() == body_len) else {
            // No body of this length remembered (the first payload named another session or
            // ID, so its body was never hashed): one by one.
            return self.check_each(run, identity, from..run.len(), found);
        };
        // The remembered body's first and last K bytes, K / 16 words each.
        let (mut head, mut tail) = ([0u128; 4], [0u128; 4]);
        for w in 0..K / 16 {
            head[w] = word(&self.body, 16 * w);
            tail[w] = word(&self.body, body_len - K + 16 * w);
        }
        // The stamp of message k is this plus k in its ID field (bytes 8..16).
        let first_stamp =
            u128::from(crc) | u128::from(session_id) << 32 | u128::from(run.first_id()) << 64;
        let mut intact = 0;
        let slots = run.slots().chunks(stride.max(1)).enumerate().skip(from);
        for (k, slot) in slots {
            let payload = &slot[..len];
            let body = &payload[STAMP_LEN..];
            let mut diff = if IDENTITY {
                word(payload, 0) ^ first_stamp.wrapping_add((k as u128) << 64)
            } else {
                // Only the checksum, bytes 0..4.
                u128::from(u32::from_le_bytes(payload[..4].try_into().expect("4 bytes")) ^ crc)
            };
            for w in 0..K / 16 {
                diff |= word(body, 16 * w) ^ head[w];
                diff |= word(body, body_len - K + 16 * w) ^ tail[w];
            }
            if diff == 0 {
                intact += 1;
            } else {
                let id = run.first_id() + k as u64;
                found.count(id, self.check_one(payload, identity, id));
            }
        }
        found.checked += intact;
    }

    /// As [`check_integrity`].
    pub fn check_integrity(&mut self, payload: &[u8]) -> StampCheck {
        verdict(payload, None, |body| self.checksum(body))
    }

    /// The CRC-32 of `body`: remembered if it is the last body hashed, else computed and
    /// remembered.
    ///
    /// The comparison is inlined into the caller's loop and the hashing is not: as a call
    /// per message the whole function spent a third of its 46 instructions saving
    /// registers and choosing its path (callgrind, `docs/BENCHMARKS.md`).
    #[inline(always)]
    fn checksum(&mut self, body: &[u8]) -> u32 {
        match self.crc {
            Some(crc) if same_bytes(&self.body, body) => crc,
            _ => self.remember(body),
        }
    }

    /// Hashes `body` and remembers it and its checksum.
    #[cold]
    #[inline(never)]
    fn remember(&mut self, body: &[u8]) -> u32 {
        let crc = crc32fast::hash(body);
        self.body.clear();
        self.body.extend_from_slice(body);
        self.crc = Some(crc);
        crc
    }
}

/// Whether `a` and `b` are equal, without an early exit: `==` on slices calls `memcmp`,
/// which was 13 % of the server's time on 48-byte bodies. Up to [`PIECES_UP_TO`] bytes they
/// are compared as their first and last pieces ([`same_ends`]), longer ones eight bytes at a
/// time.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    match a.len() {
        16..=32 => same_ends::<16>(a, b),
        33..=64 => same_ends::<32>(a, b),
        65..=PIECES_UP_TO => same_ends::<64>(a, b),
        _ => same_words(a, b),
    }
}

/// Whether `a` and `b` (of one length, from `K` to `2 * K` bytes) are equal, compared as
/// their first and last `K` bytes in 16-byte words: fixed-size loads the compiler unrolls,
/// where the eight-byte walk over a 48-byte body was its own loop with a call around it (a
/// sixth of the server's instructions with 64-byte messages; `docs/BENCHMARKS.md`).
fn same_ends<const K: usize>(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    debug_assert!((K..=2 * K).contains(&n) && b.len() == n);
    let mut diff = 0;
    for at in (0..K).step_by(16) {
        diff |= word(a, at) ^ word(b, at);
        diff |= word(a, n - K + at) ^ word(b, n - K + at);
    }
    diff == 0
}

/// The 16 bytes of `s` from `at` on, as one word (little-endian: a stamp's fields are).
#[inline(always)]
fn word(s: &[u8], at: usize) -> u128 {
    u128::from_le_bytes(s[at..at + 16].try_into().expect("16 bytes"))
}

/// Whether `a` and `b`, of one length, are equal, compared eight bytes at a time without an
/// early exit.
fn same_words(a: &[u8], b: &[u8]) -> bool {
    let word = |w: &[u8]| u64::from_ne_bytes(w.try_into().expect("chunks of 8"));
    let (words_a, words_b) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail = words_a
        .remainder()
        .iter()
        .zip(words_b.remainder())
        .fold(0, |diff, (x, y)| diff | (x ^ y));
    let diff = words_a
        .zip(words_b)
        .fold(0, |diff, (x, y)| diff | (word(x) ^ word(y)));
    diff == 0 && tail == 0
}

/// The verdict on `payload`: its stamp's checksum against `checksum` of its body and, when
/// given, its identity against `identity` (session, ID).
fn verdict(
    payload: &[u8],
    identity: Option<(u32, u64)>,
    checksum: impl FnOnce(&[u8]) -> u32,
) -> StampCheck {
    if payload.len() < STAMP_LEN {
        return StampCheck::Unstamped;
    }
    let named = identity.is_none_or(|(session_id, id)| {
        payload[4..8] == session_id.to_le_bytes() && payload[8..16] == id.to_le_bytes()
    });
    if named && payload[0..4] == checksum(&payload[STAMP_LEN..]).to_le_bytes() {
        StampCheck::Intact
    } else {
        StampCheck::Corrupt
    }
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

    /// A run of `count` stamped copies of `body` (session 9, IDs from `first_id`) with
    /// `gap` bytes between payloads; at `(k, at, xor)` payload k's byte `at` (mod its length)
    /// is changed, and payload `other` carries another body, stamped to match.
    fn run_bytes(
        body: &[u8],
        (first_id, count, gap): (u64, usize, usize),
        changes: &[(usize, usize, u8)],
        other: Option<usize>,
    ) -> Vec<u8> {
        let len = STAMP_LEN + body.len();
        let mut bytes = vec![0x5a; count * (len + gap)];
        for (k, slot) in bytes.chunks_exact_mut(len + gap).enumerate() {
            let payload = &mut slot[..len];
            payload[STAMP_LEN..].copy_from_slice(body);
            if other == Some(k) && !body.is_empty() {
                payload[len - 1] ^= 0x80;
            }
            write_stamp(payload, 9, first_id + k as u64);
        }
        for &(k, at, xor) in changes {
            if k < count && len > 0 {
                bytes[k * (len + gap) + at % len] ^= xor;
            }
        }
        bytes
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// A run checked whole finds what checking its messages one by one finds (with
        /// their identity, or for integrity alone), whatever
        /// the checker remembered before (nothing, this body, another), with corrupt bytes
        /// anywhere in a payload (stamp or body), another valid body among them, any body
        /// length around the piece sizes' edges, and gaps of framing between payloads.
        #[test]
        fn a_run_checked_whole_finds_what_checking_each_message_finds(
            body_len in prop_oneof![0usize..4, 14usize..20, 30usize..36, 46usize..50,
                62usize..68, 110usize..116, 126usize..130, Just(300)],
            count in 1usize..30,
            gap in 0usize..4,
            first_id in prop_oneof![Just(0u64), 1u64..1 << 62],
            changes in prop::collection::vec((0usize..30, 0usize..400, 1u8..=255), 0..3),
            other in prop::option::of(0usize..30),
            before in 0u8..3,
            integrity in any::<bool>(),
        ) {
            // Checked under session 9, or for integrity alone (raw's server).
            let one = |c: &mut StampChecker, p: &[u8], id: u64| {
                if integrity { c.check_integrity(p) } else { c.check(p, 9, id) }
            };
            let whole_run = |c: &mut StampChecker, run: &MessageRun<'_>| {
                if integrity { c.check_run_integrity(run) } else { c.check_run(run, 9) }
            };
            let body: Vec<u8> = (0..body_len).map(|i| (i * 13 + 1) as u8).collect();
            let len = STAMP_LEN + body_len;
            let bytes = run_bytes(&body, (first_id, count, gap), &changes, other);
            let run = MessageRun::new(first_id, 0, count, (len, len + gap), &bytes).unwrap();
            let mut whole = StampChecker::new();
            match before {
                0 => {}
                1 => { whole.check(&run_bytes(&body, (5, 1, 0), &[], None), 9, 5); }
                _ => { whole.check(&vec![3; len + 8], 9, 5); }
            }
            let mut each = whole.clone();
            let mut expected = RunCheck::default();
            for m in run.messages() {
                expected.count(m.id, one(&mut each, m.payload, m.id));
            }
            prop_assert_eq!(whole_run(&mut whole, &run), expected);
            // And the next run, from what each remembered: the same again.
            let intact = run_bytes(&body, (first_id, count, gap), &[], None);
            let next = MessageRun::new(first_id, 0, count, (len, len + gap), &intact).unwrap();
            let mut expected = RunCheck::default();
            for m in next.messages() {
                expected.count(m.id, one(&mut each, m.payload, m.id));
            }
            prop_assert_eq!(whole_run(&mut whole, &next), expected);
            prop_assert_eq!(expected.corrupt, 0);
            prop_assert_eq!(expected.checked, if len >= STAMP_LEN { count as u64 } else { 0 });
        }
    }

    #[test]
    fn a_corrupt_message_in_a_run_is_found_and_named() {
        let body = [7u8; 48];
        let bytes = run_bytes(&body, (100, 10, 3), &[(4, 30, 1), (7, 9, 2)], None);
        let run = MessageRun::new(100, 0, 10, (64, 67), &bytes).unwrap();
        let found = StampChecker::new().check_run(&run, 9);
        assert_eq!(
            found,
            RunCheck {
                checked: 10,
                corrupt: 2,
                first_corrupt: Some(104)
            }
        );
        // Delivered into another session, every one is.
        assert_eq!(StampChecker::new().check_run(&run, 8).corrupt, 10);
        // For integrity alone, only the changed body is (message 107's change is in its ID).
        let found = StampChecker::new().check_run_integrity(&run);
        assert_eq!((found.corrupt, found.first_corrupt), (1, Some(104)));
    }

    #[test]
    fn fill_writes_what_a_copy_and_a_stamp_write() {
        // Every length the pieces handle (each tail size, with and without whole pieces),
        // and two that go through `memcpy`.
        for len in (0..=STAMP_LEN + PIECES_UP_TO + 17).chain([1024, 1031]) {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let stamper = Stamper::new(&payload);
            let mut copied = payload.clone();
            stamper.stamp(&mut copied, 5, 77);
            let mut filled = vec![0xee; len];
            stamper.fill(&mut filled, &payload, 5, 77);
            assert_eq!(filled, copied, "{len} bytes");
        }
    }

    #[test]
    fn fill_slots_writes_what_fill_writes_slot_by_slot() {
        // The same lengths, behind prefixes of 0 to 17 bytes (one 8-byte store up to 8), for
        // no slot, one and several, over slots holding other bytes.
        for len in (0..=STAMP_LEN + PIECES_UP_TO + 17).chain([1024, 1031]) {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let stamper = Stamper::new(&payload);
            for at in [0, 1, 2, 3, 7, 8, 9, 17] {
                let prefix: Vec<u8> = (0..at).map(|i| 0x51 + i as u8).collect();
                let stride = at + len;
                for count in [0, 1, 5] {
                    let mut expected = vec![0xaa; count * stride];
                    for (k, slot) in expected.chunks_exact_mut(stride.max(1)).enumerate() {
                        slot[..at].copy_from_slice(&prefix);
                        stamper.fill(&mut slot[at..], &payload, 9, 1000 + k as u64);
                    }
                    let mut slots = vec![0xee; count * stride];
                    stamper.fill_slots(&mut slots, stride, &prefix, &payload, (9, 1000));
                    assert_eq!(slots, expected, "{len} bytes behind {at}, {count} slots");
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "slots do not fit")]
    fn fill_slots_refuses_slots_of_another_length() {
        let payload = [3u8; 40];
        let mut slots = [0u8; 2 * 43];
        Stamper::new(&payload).fill_slots(&mut slots, 43, &[0; 2], &payload, (1, 1));
    }

    #[test]
    fn same_bytes_is_slice_equality() {
        // Every length through each path, equal, and with each byte changed in turn.
        for len in 0..=PIECES_UP_TO + 20 {
            let a: Vec<u8> = (0..len).map(|i| (i * 13 + 1) as u8).collect();
            assert!(same_bytes(&a, &a.clone()), "{len} bytes");
            for at in 0..len {
                let mut b = a.clone();
                b[at] ^= 0x40;
                assert!(!same_bytes(&a, &b), "{len} bytes, byte {at} changed");
            }
            let longer = [a.as_slice(), &[0]].concat();
            assert!(!same_bytes(&a, &longer), "{len} and {} bytes", len + 1);
        }
    }

    #[test]
    #[should_panic(expected = "lengths differ")]
    fn fill_refuses_a_message_of_another_length() {
        let payload = [3u8; 40];
        Stamper::new(&payload).fill(&mut [0u8; 41], &payload, 1, 1);
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

    #[test]
    fn a_checker_hashes_a_changed_body_again() {
        let mut checker = StampChecker::new();
        let mut a = vec![7u8; 64];
        write_stamp(&mut a, 1, 5);
        assert_eq!(checker.check(&a, 1, 5), StampCheck::Intact);
        // Same length, same stamp, one body byte changed: the remembered checksum must not
        // be taken for it.
        let mut b = a.clone();
        b[63] ^= 0x80;
        assert_eq!(checker.check(&b, 1, 5), StampCheck::Corrupt);
        assert_eq!(checker.check_integrity(&b), StampCheck::Corrupt);
        assert_eq!(checker.check(&a, 1, 5), StampCheck::Intact);
        // A shorter body that is a prefix of the remembered one.
        let mut c = a[..40].to_vec();
        write_stamp(&mut c, 1, 6);
        assert_eq!(checker.check(&c, 1, 6), StampCheck::Intact);
        c[39] ^= 1;
        assert_eq!(checker.check(&c, 1, 6), StampCheck::Corrupt);
    }

    proptest! {
        /// A checker's verdicts are the free functions', over payloads that share bodies,
        /// change a byte, or name another identity.
        #[test]
        fn a_checker_agrees_with_the_free_functions(
            steps in proptest::collection::vec(
                (0..3usize, STAMP_LEN - 2..80usize, any::<u8>(), 0..4u8, any::<prop::sample::Index>()),
                1..60,
            ),
        ) {
            let mut checker = StampChecker::new();
            let bodies: Vec<Vec<u8>> = (0..3u8).map(|b| vec![b; 80]).collect();
            for (body, len, session, mutation, at) in steps {
                let mut p = bodies[body][..len].to_vec();
                write_stamp(&mut p, u32::from(session), 9);
                match mutation {
                    0 => {}
                    1 => { let i = at.index(p.len()); p[i] ^= 1; }
                    _ => {}
                }
                let id = if mutation == 2 { 10 } else { 9 };
                prop_assert_eq!(checker.check(&p, u32::from(session), id), check_stamp(&p, u32::from(session), id));
                prop_assert_eq!(checker.check_integrity(&p), check_integrity(&p));
            }
        }

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
