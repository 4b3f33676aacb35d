//! `DataWriter::push_run`: a run copied in its stored form makes the same bytes as the same
//! messages pushed one by one, and a run that does not continue the frame is refused.

use proptest::prelude::*;
use realmq_proto::{
    DatagramWriter, EncodeError, EncodedRun, FollowingPrefix, Header, Message,
    DEFAULT_MAX_DATAGRAM, MAX_FOLLOWING_PREFIX,
};

/// A datagram written by `f`, as bytes.
fn write(f: impl FnOnce(&mut DatagramWriter<'_>)) -> Vec<u8> {
    let mut buf = [0u8; DEFAULT_MAX_DATAGRAM];
    let mut w = DatagramWriter::new(&mut buf, DEFAULT_MAX_DATAGRAM, Header::session(9)).unwrap();
    f(&mut w);
    let len = w.finish();
    buf[..len].to_vec()
}

/// Messages `first_id..` with `timestamps` and payloads of `lens` bytes, stored as a sender
/// would store them: each its prefix against the one before, then its payload.
fn stored(timestamps: &[u64], lens: &[usize], before: u64) -> Vec<u8> {
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

proptest! {
    #[test]
    fn a_run_writes_what_pushing_one_by_one_writes(
        first_id in 0u64..1 << 40,
        first_ts in 0u64..1 << 40,
        steps in prop::collection::vec((-70_000i64..70_000, 0usize..70), 1..12),
    ) {
        let mut timestamps = Vec::new();
        let mut ts = first_ts;
        for &(step, _) in &steps {
            ts = ts.saturating_add_signed(step);
            timestamps.push(ts);
        }
        let lens: Vec<usize> = steps.iter().map(|&(_, len)| len).collect();
        let first = Message { id: first_id, timestamp_us: first_ts, payload: b"head" };
        let payloads: Vec<Vec<u8>> =
            lens.iter().enumerate().map(|(i, &len)| vec![i as u8; len]).collect();

        let one_by_one = write(|w| {
            let mut d = w.data(first).unwrap();
            for (i, ts) in timestamps.iter().enumerate() {
                d.push(Message {
                    id: first_id + 1 + i as u64,
                    timestamp_us: *ts,
                    payload: &payloads[i],
                })
                .unwrap();
            }
        });
        let bytes = stored(&timestamps, &lens, first_ts);
        let as_run = write(|w| {
            let mut d = w.data(first).unwrap();
            d.push_run(EncodedRun {
                bytes: &bytes,
                count: timestamps.len() as u64,
                first_id: first_id + 1,
                previous_timestamp_us: first_ts,
                last_timestamp_us: *timestamps.last().unwrap(),
            })
            .unwrap();
            assert_eq!(d.count(), 1 + timestamps.len() as u64);
            assert_eq!(d.last(), (first_id + timestamps.len() as u64, *timestamps.last().unwrap()));
        });
        prop_assert_eq!(one_by_one, as_run);
    }
}

/// Pushes `run` after `first` and returns the error it was refused with and the room there
/// was, having checked that the refusal wrote nothing: the datagram equals one holding
/// `first` alone.
fn refused(first: Message<'_>, run: EncodedRun<'_>) -> (EncodeError, usize) {
    let alone = write(|w| {
        w.data(first).unwrap();
    });
    let (mut error, mut room) = (None, 0);
    let with_run = write(|w| {
        let mut d = w.data(first).unwrap();
        room = d.room();
        error = d.push_run(run).err();
        assert_eq!(d.room(), room);
    });
    assert_eq!(with_run, alone);
    (error.expect("the run was refused"), room)
}

#[test]
fn a_run_that_does_not_continue_the_frame_is_refused_and_writes_nothing() {
    let first = Message {
        id: 10,
        timestamp_us: 100,
        payload: b"x",
    };
    let bytes = stored(&[100], &[3], 100);
    for (first_id, previous_ts) in [(12, 100), (10, 100), (11, 99)] {
        let run = EncodedRun {
            bytes: &bytes,
            count: 1,
            first_id,
            previous_timestamp_us: previous_ts,
            last_timestamp_us: 100,
        };
        assert_eq!(
            refused(first, run).0,
            EncodeError::RunNotContinuing {
                previous: 10,
                id: first_id
            }
        );
    }
}

#[test]
fn a_run_that_does_not_fit_is_refused_and_writes_nothing() {
    let first = Message {
        id: 0,
        timestamp_us: 0,
        payload: &[7; 1400],
    };
    let bytes = stored(&[0], &[100], 0);
    let run = EncodedRun {
        bytes: &bytes,
        count: 1,
        first_id: 1,
        previous_timestamp_us: 0,
        last_timestamp_us: 0,
    };
    let (error, room) = refused(first, run);
    assert!(room < bytes.len());
    assert!(matches!(error, EncodeError::BufferFull { .. }));
}
