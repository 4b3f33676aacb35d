//! `DataWriter::push_run` and `DatagramWriter::data_run`: a run copied in its stored form
//! makes the same bytes as the same messages pushed one by one, and a run that does not
//! continue the frame, does not fit or is malformed is refused and writes nothing.

mod support;

use proptest::prelude::*;
use realmq_proto::{
    data_head_len, DatagramWriter, EncodeError, EncodedRun, FollowingPrefix, Header, Message,
    StoredRun, DEFAULT_MAX_DATAGRAM, HEADER_LEN,
};

/// A datagram written by `f`, as bytes.
fn write(f: impl FnOnce(&mut DatagramWriter<'_>)) -> Vec<u8> {
    let mut buf = [0u8; DEFAULT_MAX_DATAGRAM];
    let mut w = DatagramWriter::new(&mut buf, DEFAULT_MAX_DATAGRAM, Header::session(9)).unwrap();
    f(&mut w);
    let len = w.finish();
    buf[..len].to_vec()
}

use support::stored;

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

    /// A frame begun with a stored run (the first message's payload, then the others in
    /// their stored form) is the frame of the same messages pushed one by one; its head is
    /// `data_head_len` long, and messages pushed after the run continue the frame.
    #[test]
    fn a_frame_begun_with_a_stored_run_is_the_frame_pushed_one_by_one(
        first_id in prop_oneof![0u64..1 << 40, Just((1u64 << 62) - 40)],
        first_ts in prop_oneof![0u64..1 << 40, Just((1u64 << 62) - 1)],
        first_len in prop_oneof![0usize..70, 200usize..300],
        steps in prop::collection::vec((-70_000i64..70_000, 0usize..70), 0..12),
        then in proptest::option::of(0usize..70),
    ) {
        let mut timestamps = vec![first_ts];
        let mut ts = first_ts;
        for &(step, _) in &steps {
            ts = ts.saturating_add_signed(step).min((1 << 62) - 1);
            timestamps.push(ts);
        }
        let lens: Vec<usize> =
            std::iter::once(first_len).chain(steps.iter().map(|&(_, len)| len)).collect();
        let payloads: Vec<Vec<u8>> =
            lens.iter().enumerate().map(|(i, &len)| vec![i as u8; len]).collect();
        let count = timestamps.len() as u64;
        let last_ts = *timestamps.last().unwrap();
        // Pushed after the run, if any: one more message, in the run's timestamp.
        let extra = then.map(|len| vec![0xee; len]);
        let message = |i: usize| Message {
            id: first_id + i as u64,
            timestamp_us: timestamps[i],
            payload: &payloads[i],
        };

        let one_by_one = write(|w| {
            let mut d = w.data(message(0)).unwrap();
            for i in 1..timestamps.len() {
                d.push(message(i)).unwrap();
            }
            if let Some(payload) = &extra {
                d.push(Message { id: first_id + count, timestamp_us: last_ts, payload }).unwrap();
            }
        });
        // Stored as a sender stores them: the first against whatever came before it.
        let before = first_ts.saturating_sub(5);
        let bytes = stored(&timestamps, &lens, before);
        let first_prefix = FollowingPrefix::new(before, first_ts, first_len).unwrap().len();
        let head = data_head_len(first_id, first_ts, first_len).unwrap();
        let as_run = write(|w| {
            let mut d = w
                .data_run(StoredRun {
                    first_id,
                    first_timestamp_us: first_ts,
                    first_len,
                    bytes: &bytes[first_prefix..],
                    count,
                    last_timestamp_us: last_ts,
                })
                .unwrap();
            assert_eq!(d.count(), count);
            assert_eq!(d.last(), (first_id + count - 1, last_ts));
            if let Some(payload) = &extra {
                d.push(Message { id: first_id + count, timestamp_us: last_ts, payload }).unwrap();
            }
        });
        prop_assert_eq!(&one_by_one, &as_run);
        if extra.is_none() {
            prop_assert_eq!(as_run.len(), HEADER_LEN + head + bytes.len() - first_prefix);
        }
    }
}

/// What `data_run` with `run` gives in a datagram that first holds a `filler`-byte message,
/// having checked that a refusal wrote nothing.
fn data_run_after(filler: usize, run: StoredRun<'_>) -> Result<(), EncodeError> {
    let filler = vec![1u8; filler];
    let first = Message {
        id: 1,
        timestamp_us: 0,
        payload: &filler,
    };
    let alone = write(|w| {
        w.data(first).unwrap();
    });
    let mut result = Ok(());
    let written = write(|w| {
        w.data(first).unwrap();
        result = w.data_run(run).map(|_| ());
    });
    if result.is_err() {
        assert_eq!(written, alone, "a refused run wrote nothing");
    }
    result
}

#[test]
fn a_stored_run_that_is_malformed_or_does_not_fit_is_refused_and_writes_nothing() {
    let bytes = stored(&[7, 7], &[60, 60], 0);
    let prefix = FollowingPrefix::new(0, 7, 60).unwrap().len();
    let run = StoredRun {
        first_id: 100,
        first_timestamp_us: 7,
        first_len: 60,
        bytes: &bytes[prefix..],
        count: 2,
        last_timestamp_us: 7,
    };
    assert_eq!(data_run_after(10, run), Ok(()));
    assert!(matches!(
        data_run_after(1400, run),
        Err(EncodeError::BufferFull { .. })
    ));
    for bad in [
        StoredRun { count: 0, ..run },
        StoredRun {
            count: (1 << 14) as u64,
            ..run
        },
        StoredRun {
            first_len: 200,
            ..run
        },
    ] {
        assert!(matches!(
            data_run_after(10, bad),
            Err(EncodeError::BadRun { .. })
        ));
    }
    assert_eq!(
        data_run_after(
            10,
            StoredRun {
                first_id: (1 << 62) - 1,
                ..run
            }
        ),
        Err(EncodeError::IdOutOfRange(1 << 62))
    );
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
