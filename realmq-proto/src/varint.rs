//! QUIC variable-length integers (RFC 9000 §16).
//!
//! The two high bits of the first byte give the length (1, 2, 4 or 8 bytes); the rest is the
//! value, big-endian. Values up to 2^62 - 1 are representable.

use crate::error::{DecodeError, EncodeError};

/// The largest value a variable-length integer can hold: 2^62 - 1.
pub(crate) const MAX: u64 = (1 << 62) - 1;

/// Bytes needed to encode `value` in its shortest form, or `None` above `MAX` (2^62 − 1).
pub const fn encoded_len(value: u64) -> Option<usize> {
    if value < 1 << 6 {
        Some(1)
    } else if value < 1 << 14 {
        Some(2)
    } else if value < 1 << 30 {
        Some(4)
    } else if value <= MAX {
        Some(8)
    } else {
        None
    }
}

/// Like [`encoded_len`], with the overflow as an encoding error.
pub(crate) fn len_of(value: u64) -> Result<usize, EncodeError> {
    encoded_len(value).ok_or(EncodeError::VarintOverflow(value))
}

/// Writes `value` in exactly `len` bytes (1, 2, 4 or 8) at the start of `out`.
///
/// Longer-than-needed encodings are valid (RFC 9000 §16); RealMQ uses one to reserve a
/// fixed-width count it patches later. The caller guarantees that `value` fits `len` and
/// that `out` holds `len` bytes.
#[inline]
pub(crate) fn write_with_len(value: u64, len: usize, out: &mut [u8]) {
    // One fixed-width store per length: a copy of a run-time length is a `memcpy` call,
    // which cost more than the rest of an encoder's work on a sender's hot path.
    match len {
        1 => out[0] = value as u8,
        2 => out[..2].copy_from_slice(&(value as u16 | 0x4000).to_be_bytes()),
        4 => out[..4].copy_from_slice(&(value as u32 | 0x8000_0000).to_be_bytes()),
        _ => out[..8].copy_from_slice(&(value | 0xc000_0000_0000_0000).to_be_bytes()),
    }
}

/// Encodes `value` at the start of `out`, returning the bytes written.
pub(crate) fn encode(value: u64, out: &mut [u8]) -> Result<usize, EncodeError> {
    let len = encoded_len(value).ok_or(EncodeError::VarintOverflow(value))?;
    if out.len() < len {
        return Err(EncodeError::BufferFull {
            needed: len,
            remaining: out.len(),
        });
    }
    write_with_len(value, len, out);
    Ok(len)
}

/// Decodes a variable-length integer at the start of `bytes`: the value and its length.
pub(crate) fn decode(bytes: &[u8]) -> Result<(u64, usize), DecodeError> {
    let first = *bytes.first().ok_or(DecodeError::Truncated)?;
    // The common case of the DATA frame's per-message fields (an ID gap of 0, a timestamp
    // delta of 0, a payload under 64 bytes): one byte, no slicing or loop.
    if first < 0x40 {
        return Ok((u64::from(first), 1));
    }
    let len = 1usize << (first >> 6);
    let raw = bytes.get(..len).ok_or(DecodeError::Truncated)?;
    let mut value = u64::from(first & 0x3f);
    for &b in &raw[1..] {
        value = (value << 8) | u64::from(b);
    }
    Ok((value, len))
}

/// Maps a signed value onto an unsigned one so that small magnitudes stay small
/// (0, -1, 1, -2, ... become 0, 1, 2, 3, ...).
pub(crate) const fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// The inverse of [`zigzag`].
pub(crate) const fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The examples of RFC 9000 Appendix A.1.
    #[test]
    fn rfc9000_examples() {
        let cases: &[(&[u8], u64)] = &[
            (
                &[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c],
                151_288_809_941_952_652,
            ),
            (&[0x9d, 0x7f, 0x3e, 0x7d], 494_878_333),
            (&[0x7b, 0xbd], 15_293),
            (&[0x25], 37),
            (&[0x40, 0x25], 37),
        ];
        for (bytes, value) in cases {
            assert_eq!(decode(bytes), Ok((*value, bytes.len())));
        }
        let mut out = [0u8; 8];
        assert_eq!(encode(15_293, &mut out), Ok(2));
        assert_eq!(&out[..2], &[0x7b, 0xbd]);
    }

    #[test]
    fn limits() {
        let mut out = [0u8; 8];
        assert_eq!(encode(MAX, &mut out), Ok(8));
        assert_eq!(decode(&out), Ok((MAX, 8)));
        assert_eq!(
            encode(MAX + 1, &mut out),
            Err(EncodeError::VarintOverflow(MAX + 1))
        );
        assert_eq!(
            encode(64, &mut out[..1]),
            Err(EncodeError::BufferFull {
                needed: 2,
                remaining: 1
            })
        );
        assert_eq!(decode(&[]), Err(DecodeError::Truncated));
        assert_eq!(decode(&[0x80, 0, 0]), Err(DecodeError::Truncated));
    }

    proptest! {
        #[test]
        fn round_trip(value in 0..=MAX) {
            let mut out = [0u8; 8];
            let len = encode(value, &mut out).unwrap();
            prop_assert_eq!(Some(len), encoded_len(value));
            prop_assert_eq!(decode(&out[..len]), Ok((value, len)));
        }

        #[test]
        fn zigzag_round_trip(value: i64) {
            prop_assert_eq!(unzigzag(zigzag(value)), value);
        }

        #[test]
        fn decode_never_panics(bytes: Vec<u8>) {
            let _ = decode(&bytes);
        }
    }
}
