//! The ACK frame's size functions agree with the writer: what `ack_encoded_len` predicts is
//! what `DatagramWriter::ack` writes, byte for byte, and both refuse the same input.

use core::ops::RangeInclusive;

use proptest::prelude::*;
use realmq_proto::{
    ack_encoded_len, ack_head_len, ack_range_len, varint_len, DatagramWriter, EncodeError, Header,
    MAX_MESSAGE_ID,
};

const MAX_SIZE: usize = 65_507;

/// The bytes `DatagramWriter::ack` writes for `ranges` (all of them: the buffer is large),
/// checked against the size it reports.
fn written_len(ranges: &[RangeInclusive<u64>], delay_us: u64) -> Result<usize, EncodeError> {
    let mut buf = vec![0u8; MAX_SIZE];
    let mut w = DatagramWriter::new(&mut buf, MAX_SIZE, Header::session(1)).unwrap();
    let before = w.len();
    let summary = w.ack(ranges.iter().cloned(), delay_us)?;
    assert!(!summary.truncated, "the test buffer holds every range");
    assert_eq!(summary.bytes, w.len() - before);
    Ok(summary.bytes)
}

/// Ranges `[10k, 10k + 1]` for k = n down to 1, then the cumulative range `[0, 5]`.
fn many(n: u64) -> Vec<RangeInclusive<u64>> {
    let mut v: Vec<_> = (1..=n).rev().map(|k| 10 * k..=10 * k + 1).collect();
    v.push(0..=5);
    v
}

#[test]
fn encoded_len_matches_the_writer() {
    for n in [0, 1, 5, 63, 64, 100, 300] {
        let ranges = many(n);
        for delay_us in [0, 1234, 1 << 30] {
            assert_eq!(
                ack_encoded_len(ranges.iter().cloned(), delay_us),
                written_len(&ranges, delay_us),
                "{n} ranges, delay {delay_us}"
            );
        }
    }
}

#[test]
fn encoded_len_is_the_head_the_count_and_the_pairs() {
    // Largest 100, delay 25, first range 96..=100: type, 2-byte largest, delay, first range.
    assert_eq!(ack_head_len(&(96..=100), 25), Ok(1 + 2 + 1 + 1));
    // 91..=93 after 96: gap 1, length 2; 89..=89 after 91: gap 0, length 0.
    assert_eq!(ack_range_len(96, &(91..=93)), Ok(2));
    assert_eq!(ack_range_len(91, &(89..=89)), Ok(2));
    // A gap of 64 missing IDs takes a 2-byte varint.
    assert_eq!(ack_range_len(1000, &(900..=934)), Ok(3));
    let ranges = [96..=100, 91..=93, 89..=89];
    let count = varint_len(2).unwrap();
    assert_eq!(ack_encoded_len(ranges.clone(), 25), Ok(5 + count + 2 + 2));
    assert_eq!(
        ack_encoded_len(ranges.clone(), 25),
        written_len(&ranges, 25)
    );
}

#[test]
fn the_size_functions_refuse_what_the_writer_refuses() {
    let none: [RangeInclusive<u64>; 0] = [];
    assert_eq!(ack_encoded_len(none, 0), Err(EncodeError::BadAckRanges));
    #[allow(clippy::reversed_empty_ranges)]
    let empty = 9..=5;
    assert_eq!(ack_head_len(&empty, 0), Err(EncodeError::BadAckRanges));
    for bad in [[5..=9, 3..=4], [5..=9, 7..=8]] {
        assert_eq!(ack_range_len(5, &bad[1]), Err(EncodeError::BadAckRanges));
        assert_eq!(ack_encoded_len(bad.clone(), 0), written_len(&bad, 0));
    }
    let too_large = MAX_MESSAGE_ID + 1;
    assert_eq!(
        ack_encoded_len([0..=5], too_large),
        Err(EncodeError::VarintOverflow(too_large))
    );
    assert_eq!(
        ack_encoded_len([0..=5], too_large),
        written_len(&[0..=5], too_large)
    );
}

/// Descending, disjoint, separated ranges with gaps and lengths across varint sizes, possibly
/// near the 62-bit limit.
fn ack_ranges() -> impl Strategy<Value = Vec<RangeInclusive<u64>>> {
    let step = prop_oneof![0u64..64, 0u64..20_000, 0u64..1 << 31];
    (
        prop_oneof![0u64..1000, 0..=MAX_MESSAGE_ID, Just(MAX_MESSAGE_ID)],
        prop::collection::vec((step.clone(), step), 0..200),
        0u64..100_000,
    )
        .prop_map(|(largest, steps, first)| {
            let first_lo = largest.saturating_sub(first);
            let mut ranges = vec![first_lo..=largest];
            let mut smallest = first_lo;
            for (gap, len) in steps {
                let Some(hi) = smallest.checked_sub(gap + 2) else {
                    break;
                };
                let lo = hi.saturating_sub(len);
                ranges.push(lo..=hi);
                smallest = lo;
            }
            ranges
        })
}

proptest! {
    #[test]
    fn encoded_len_matches_the_writer_for_any_ranges(
        ranges in ack_ranges(),
        delay_us in prop_oneof![0u64..64, 0..=MAX_MESSAGE_ID],
    ) {
        let predicted = ack_encoded_len(ranges.iter().cloned(), delay_us).unwrap();
        let written = written_len(&ranges, delay_us).unwrap();
        prop_assert_eq!(predicted, written);
    }
}
