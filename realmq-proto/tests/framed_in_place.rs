//! `frame_stored_run`: messages framed where a sender stored them make a datagram that
//! parses to the same messages as the one `DatagramWriter::data_run` copies them into, and a
//! frame that does not fit in front of them is refused.

mod support;

use proptest::prelude::*;
use realmq_proto::{
    data_head_len, frame_stored_run, DataHead, Datagram, DatagramWriter, EncodeError,
    FollowingPrefix, Frame, Header, StoredRun, HEADER_LEN,
};

/// `count` messages of `len` bytes, all stamped `ts` but the first (stamped `first_ts`, its
/// prefix counted from `before`), as a sender stores them ([`stored`]). Returns the bytes and
/// the first prefix's length.
fn batch(first_ts: u64, ts: u64, before: u64, len: usize, count: usize) -> (Vec<u8>, usize) {
    let mut timestamps = vec![ts; count];
    timestamps[0] = first_ts;
    let first_prefix = FollowingPrefix::new(before, first_ts, len).unwrap().len();
    (stored(&timestamps, &vec![len; count], before), first_prefix)
}

/// The messages of a datagram's DATA frames, as `(id, timestamp, payload)`; any frame but
/// PADDING and DATA fails the test.
fn messages(datagram: &[u8]) -> Vec<(u64, u64, Vec<u8>)> {
    let parsed = Datagram::parse(datagram).expect("a valid datagram");
    let mut out = Vec::new();
    for frame in parsed.frames() {
        match frame {
            Frame::Data(data) => out.extend(
                data.messages()
                    .map(|m| (m.id, m.timestamp_us, m.payload.to_vec())),
            ),
            Frame::Padding { .. } => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
    out
}

use support::stored;

proptest! {
    #[test]
    fn framed_in_place_parses_as_the_copied_frame(
        first_id in 0u64..1 << 40,
        ts in 0u64..1 << 40,
        first_step in -70_000i64..70_000,
        len in 1usize..300,
        count in 1usize..20,
        pad in 0usize..40,
    ) {
        let first_ts = ts.saturating_add_signed(first_step);
        let before = ts.saturating_sub(5);
        let (bytes, first_prefix) = batch(first_ts, ts, before, len, count);
        let head = DataHead { first_id, first_timestamp_us: first_ts, first_len: len, count: count as u64 };
        let head_len = data_head_len(first_id, first_ts, len).unwrap();
        // Room in front of the first prefix: the header and the head, less the prefix bytes
        // the head writes over, and `pad` bytes more.
        let front = HEADER_LEN + head_len + pad - first_prefix;
        let mut buf = vec![0xAAu8; front + bytes.len() + 3];
        buf[front..front + bytes.len()].copy_from_slice(&bytes);
        let header = Header::session(77);
        frame_stored_run(&mut buf, 0, (front, first_prefix), header, &head).unwrap();
        let in_place = &buf[..front + bytes.len()];
        // The bytes after the run are untouched.
        prop_assert_eq!(&buf[front + bytes.len()..], &[0xAA; 3]);
        prop_assert_eq!(Datagram::parse(in_place).unwrap().header, header);

        let mut copy = vec![0u8; 70_000];
        let mut w = DatagramWriter::new(&mut copy, 70_000, header).unwrap();
        w.data_run(StoredRun {
            first_id,
            first_timestamp_us: first_ts,
            first_len: len,
            bytes: &bytes[first_prefix..],
            count: count as u64,
            last_timestamp_us: if count > 1 { ts } else { first_ts },
        })
        .unwrap();
        let n = w.finish();
        prop_assert_eq!(n + pad, in_place.len());
        prop_assert_eq!(messages(in_place), messages(&copy[..n]));
        prop_assert_eq!(messages(in_place).len(), count);
    }

    #[test]
    fn too_little_room_in_front_is_refused_and_writes_nothing(
        first_id in 0u64..1 << 40,
        len in 1usize..100,
        short in 1usize..10,
    ) {
        let (bytes, first_prefix) = batch(1_000, 1_000, 990, len, 3);
        let head = DataHead { first_id, first_timestamp_us: 1_000, first_len: len, count: 3 };
        let head_len = data_head_len(first_id, 1_000, len).unwrap();
        let exact = HEADER_LEN + head_len - first_prefix;
        let front = exact.saturating_sub(short);
        let mut buf = vec![0u8; front + bytes.len()];
        buf[front..].copy_from_slice(&bytes);
        let before = buf.clone();
        let result = frame_stored_run(&mut buf, 0, (front, first_prefix), Header::session(1), &head);
        prop_assert!(
            matches!(result, Err(EncodeError::BufferFull { .. })),
            "{:?}", result
        );
        prop_assert_eq!(buf, before);
    }
}

#[test]
fn a_bad_head_is_refused() {
    let (bytes, first_prefix) = batch(5, 5, 5, 10, 2);
    let mut buf = vec![0u8; 64 + bytes.len()];
    buf[64..].copy_from_slice(&bytes);
    let head = |count, first_id| DataHead {
        first_id,
        first_timestamp_us: 5,
        first_len: 10,
        count,
    };
    let header = Header::session(1);
    for bad in [head(0, 1), head(1 << 14, 1), head(2, (1 << 62) - 1)] {
        assert!(matches!(
            frame_stored_run(&mut buf, 0, (64, first_prefix), header, &bad),
            Err(EncodeError::BadRun { .. })
        ));
    }
    assert!(frame_stored_run(&mut buf, 0, (64, first_prefix), header, &head(2, 1)).is_ok());
}
