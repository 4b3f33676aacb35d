//! Compact message IDs: truncation relative to what the peer has acknowledged.
//!
//! Message IDs are per-session sequence numbers below 2^62. The first ID of a DATA frame is
//! sent in only as many low-order bytes (1 to 8) as the receiver needs to reconstruct it, the
//! technique of RFC 9000 §17.1 with the decoding algorithm of its Appendix A.3.
//!
//! QUIC packet numbers only grow; RealMQ message IDs are resent under the same ID, so a
//! resent ID may lie *below* the largest acknowledged one. The sender therefore sizes the
//! truncation to cover every value the receiver's reference could take: the receiver decodes
//! relative to `largest_received + 1`, which lies between the sender's `largest_acked + 1`
//! and `largest_sent + 1`. With `span` the distance from the ID to the farther of those two,
//! the sender picks the fewest bytes `n` with `2^(8n) > 4 * span` — RFC 9000's factor of two
//! for the half-window, and two more for datagrams reordered behind later ones.

use crate::varint;

/// The largest message ID: 2^62 - 1, the largest variable-length integer.
pub const MAX_MESSAGE_ID: u64 = varint::MAX;

/// What the sender knows when it truncates an ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IdEncodeContext {
    /// The largest ID the peer has acknowledged, if any.
    pub largest_acked: Option<u64>,
    /// The largest ID ever sent in this session, counting the ones being encoded now.
    pub largest_sent: u64,
}

/// Bytes (1 to 8) needed to send `id` truncated under `ctx`.
pub fn truncated_len(id: u64, ctx: IdEncodeContext) -> usize {
    let low = ctx.largest_acked.map_or(0, |a| a + 1);
    let high = ctx.largest_sent.max(id) + 1;
    let span = u128::from(id.abs_diff(low).max(id.abs_diff(high)));
    let needed = span * 4;
    (1..8).find(|&n| 1u128 << (8 * n) > needed).unwrap_or(8)
}

/// The low `len` bytes of `id`.
pub fn truncate(id: u64, len: usize) -> u64 {
    if len >= 8 {
        id
    } else {
        id & ((1u64 << (8 * len)) - 1)
    }
}

/// Reconstructs a full ID from its low `len` bytes and the receiver's largest received ID
/// (RFC 9000 Appendix A.3). The result may exceed [`MAX_MESSAGE_ID`] only on hostile input;
/// callers check.
pub fn expand(truncated: u64, len: usize, largest_received: Option<u64>) -> u64 {
    if len >= 8 {
        return truncated;
    }
    let expected = u128::from(largest_received.map_or(0, |l| l + 1));
    let window = 1u128 << (8 * len);
    let half = window / 2;
    let candidate = (expected & !(window - 1)) | u128::from(truncated);
    let limit = 1u128 << 62;
    let chosen = if candidate + half <= expected && candidate + window < limit {
        candidate + window
    } else if candidate > expected + half && candidate >= window {
        candidate - window
    } else {
        candidate
    };
    // `chosen` < 2^62 + 2^56, so it always fits a u64.
    chosen as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 9000 Appendix A.3's example: largest 0xa82f30ea, truncated 0x9b32 in 2 bytes.
    #[test]
    fn rfc9000_example() {
        assert_eq!(expand(0x9b32, 2, Some(0xa82f_30ea)), 0xa82f_9b32);
    }

    #[test]
    fn first_ids_take_one_byte() {
        let ctx = IdEncodeContext {
            largest_acked: None,
            largest_sent: 0,
        };
        assert_eq!(truncated_len(0, ctx), 1);
        assert_eq!(expand(truncate(0, 1), 1, None), 0);
    }

    #[test]
    fn ids_near_the_limit() {
        let ctx = IdEncodeContext {
            largest_acked: Some(MAX_MESSAGE_ID - 10),
            largest_sent: MAX_MESSAGE_ID,
        };
        let len = truncated_len(MAX_MESSAGE_ID, ctx);
        assert_eq!(len, 1);
        assert_eq!(
            expand(truncate(MAX_MESSAGE_ID, len), len, Some(MAX_MESSAGE_ID - 1)),
            MAX_MESSAGE_ID
        );
    }

    proptest! {
        /// Whatever the receiver's largest received ID between the sender's largest acked and
        /// largest sent, the ID comes back whole — for new IDs and resent ones alike.
        #[test]
        fn round_trip(
            acked in proptest::option::of(0..MAX_MESSAGE_ID),
            ahead in 0u64..1 << 40,
            id_frac in 0.0f64..=1.0,
            received_frac in 0.0f64..=1.0,
            received_nothing: bool,
        ) {
            let low = acked.unwrap_or(0);
            let largest_sent = low.saturating_add(ahead).min(MAX_MESSAGE_ID);
            // Resends may carry any ID up to the largest sent, even below the largest acked.
            let id = (largest_sent as f64 * id_frac) as u64;
            // The receiver has at least what it acknowledged and at most what was sent.
            let received = low + ((largest_sent - low) as f64 * received_frac) as u64;
            let largest_received = if acked.is_none() && received_nothing { None } else { Some(received) };
            let ctx = IdEncodeContext { largest_acked: acked, largest_sent };
            let len = truncated_len(id, ctx);
            prop_assert_eq!(expand(truncate(id, len), len, largest_received), id);
        }

        #[test]
        fn expand_never_panics(t: u64, len in 1usize..=8, largest in proptest::option::of(0..=MAX_MESSAGE_ID)) {
            let _ = expand(truncate(t, len), len, largest);
        }
    }
}
