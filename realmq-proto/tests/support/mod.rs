//! What several integration tests share.

use realmq_proto::{FollowingPrefix, MAX_FOLLOWING_PREFIX};

/// Messages `first_id..` with `timestamps` and payloads of `lens` bytes, stored as a sender
/// would store them: each its prefix against the one before, then its payload.
pub(crate) fn stored(timestamps: &[u64], lens: &[usize], before: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut previous = before;
    for (i, (&ts, &len)) in timestamps.iter().zip(lens).enumerate() {
        let prefix = FollowingPrefix::new(previous, ts, len).unwrap();
        let mut encoded = [0u8; MAX_FOLLOWING_PREFIX];
        prefix.write(&mut encoded);
        bytes.extend_from_slice(&encoded[..prefix.len()]);
        bytes.extend(std::iter::repeat_n(i as u8, len));
        previous = ts;
    }
    bytes
}
