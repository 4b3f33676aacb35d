//! Message IDs on the wire: sent in full, in as few bytes as they need.
//!
//! Message IDs are per-session sequence numbers below 2^62. The first ID of a DATA frame is
//! sent whole, big-endian, in the fewest bytes (1 to 8) that hold it; the frame's type byte
//! says how many. Later IDs of the frame are gaps from the previous one.
//!
//! Earlier versions truncated the first ID relative to what the receiver had seen (RFC 9000
//! §17.1 / Appendix A.3). QUIC can afford that because its packet numbers are never reused
//! and an AEAD rejects a wrong decode; RealMQ resends under the same ID and, without
//! `--psk`, has no AEAD, so a datagram delayed past the truncation horizon decoded to
//! another ID and delivered a message under it. Sending the ID whole costs one byte per
//! datagram between 2^16 and 2^24 and two up to 2^32 — about 0.05 to 0.1 byte per message
//! at 21 messages per datagram — and no delay or reordering can make it decode wrong.

use crate::varint;

/// The largest message ID: 2^62 - 1, the largest variable-length integer.
pub const MAX_MESSAGE_ID: u64 = varint::MAX;

/// Bytes (1 to 8) that hold `id` whole.
pub(crate) fn id_len(id: u64) -> usize {
    let bits = 64 - id.leading_zeros() as usize;
    bits.div_ceil(8).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn byte_boundaries() {
        assert_eq!(id_len(0), 1);
        assert_eq!(id_len(255), 1);
        assert_eq!(id_len(256), 2);
        assert_eq!(id_len(65_535), 2);
        assert_eq!(id_len(65_536), 3);
        assert_eq!(id_len(MAX_MESSAGE_ID), 8);
    }

    proptest! {
        #[test]
        fn the_id_fits_and_no_shorter_length_does(id in 0..=MAX_MESSAGE_ID) {
            let n = id_len(id);
            prop_assert!(n == 8 || id < 1u64 << (8 * n));
            prop_assert!(n == 1 || id >= 1u64 << (8 * (n - 1)));
        }
    }
}
