//! Property tests: encode then decode is the identity for every frame and for whole
//! datagrams, and decoding arbitrary bytes never panics.

use core::ops::RangeInclusive;

use proptest::prelude::*;
use realmq_proto::{
    Bye, Datagram, DatagramWriter, Frame, Header, Heartbeat, Hello, Message, MessageIndex, Retry,
    Stop, Welcome, MAX_CLOCK_OFFSET_US, MAX_MESSAGE_ID, MAX_TOKEN_LEN,
};

const MAX_SIZE: usize = 65_507;

/// An owned description of a frame, to write and to compare with what is decoded.
#[derive(Debug, Clone, PartialEq)]
enum Spec {
    Heartbeat(u64),
    Stop(u64),
    Bye(u64),
    Ack {
        ranges: Vec<RangeInclusive<u64>>,
        delay: u64,
    },
    Data(Vec<(u64, u64, Vec<u8>)>),
}

fn varint() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..64, 0u64..16_384, 0u64..1 << 30, 0..=MAX_MESSAGE_ID]
}

/// Descending, disjoint, separated ranges, possibly near the 62-bit limit.
fn ack_ranges() -> impl Strategy<Value = Vec<RangeInclusive<u64>>> {
    (
        prop_oneof![0u64..1000, 0..=MAX_MESSAGE_ID, Just(MAX_MESSAGE_ID)],
        prop::collection::vec((0u64..300, 0u64..300), 0..40),
        0u64..100,
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

/// Strictly increasing message IDs from a base (possibly near the limit), with payloads.
fn messages() -> impl Strategy<Value = (u64, Vec<(u64, u64, Vec<u8>)>)> {
    (
        prop_oneof![
            0u64..1000,
            0..=MAX_MESSAGE_ID - (1 << 24),
            Just(MAX_MESSAGE_ID - (1 << 24))
        ],
        0..=varint::MAX_TS,
        prop::collection::vec(
            (
                0u64..1000,
                -5000i64..5000,
                prop::collection::vec(any::<u8>(), 0..80),
            ),
            1..20,
        ),
    )
        .prop_map(|(base, ts0, items)| {
            let mut id = base;
            let mut ts = ts0;
            let mut out = Vec::new();
            for (i, (gap, dts, payload)) in items.into_iter().enumerate() {
                if i > 0 {
                    id += gap + 1;
                    ts = ts.saturating_add_signed(dts).min(varint::MAX_TS);
                }
                out.push((id, ts, payload));
            }
            (base, out)
        })
}

mod varint {
    pub(crate) const MAX_TS: u64 = (1 << 62) - 1;
}

fn spec() -> impl Strategy<Value = Spec> {
    prop_oneof![
        varint().prop_map(Spec::Heartbeat),
        varint().prop_map(Spec::Stop),
        varint().prop_map(Spec::Bye),
        (ack_ranges(), varint()).prop_map(|(ranges, delay)| Spec::Ack { ranges, delay }),
        messages().prop_map(|(_, m)| Spec::Data(m)),
    ]
}

fn write_spec(w: &mut DatagramWriter<'_>, spec: &Spec) {
    match spec {
        Spec::Heartbeat(t) => w.heartbeat(Heartbeat { timestamp_us: *t }).unwrap(),
        Spec::Stop(n) => w.stop(Stop { sent: *n }).unwrap(),
        Spec::Bye(n) => w.bye(Bye { received: *n }).unwrap(),
        Spec::Ack { ranges, delay } => {
            let summary = w.ack(ranges.iter().cloned(), *delay).unwrap();
            assert!(!summary.truncated);
        }
        Spec::Data(messages) => {
            let mut d = w.data(msg(&messages[0])).unwrap();
            for m in &messages[1..] {
                d.push(msg(m)).unwrap();
            }
        }
    }
}

fn msg((id, ts, payload): &(u64, u64, Vec<u8>)) -> Message<'_> {
    Message {
        id: *id,
        timestamp_us: *ts,
        payload,
    }
}

fn decoded_spec(frame: Frame<'_>) -> Spec {
    match frame {
        Frame::Heartbeat(h) => Spec::Heartbeat(h.timestamp_us),
        Frame::Stop(s) => Spec::Stop(s.sent),
        Frame::Bye(b) => Spec::Bye(b.received),
        Frame::Ack(a) => Spec::Ack {
            ranges: a.ranges().collect(),
            delay: a.delay_us(),
        },
        Frame::Data(d) => Spec::Data(
            d.messages()
                .map(|m| (m.id, m.timestamp_us, m.payload.to_vec()))
                .collect(),
        ),
        other => panic!("unexpected frame {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn session_datagrams_round_trip(
        session_id: u32,
        specs in prop::collection::vec(spec(), 1..6),
    ) {
        let mut buf = vec![0u8; MAX_SIZE];
        let mut w = DatagramWriter::new(&mut buf, MAX_SIZE, Header::session(session_id)).unwrap();
        for s in &specs {
            write_spec(&mut w, s);
        }
        let len = w.finish();
        let datagram = Datagram::parse(&buf[..len]).unwrap();
        prop_assert_eq!(datagram.header, Header::session(session_id));
        let decoded: Vec<Spec> = datagram.frames().map(decoded_spec).collect();
        prop_assert_eq!(&decoded, &specs);
        // Decoded once into an index, the messages come out the same.
        let mut index = MessageIndex::default();
        let indexed = Datagram::parse_indexed(&buf[..len], &mut index).unwrap();
        let decoded: Vec<Spec> = indexed.frames().map(decoded_spec).collect();
        prop_assert_eq!(decoded, specs);
    }

    #[test]
    fn handshake_frames_round_trip(
        nonce: u64,
        epoch in varint(),
        timestamp in varint(),
        clock_offset_us in -MAX_CLOCK_OFFSET_US..=MAX_CLOCK_OFFSET_US,
        clock_rtt_us in varint(),
        token in prop::collection::vec(any::<u8>(), 0..=MAX_TOKEN_LEN),
        interval in varint(),
        server_nonce: u64,
        id_window in varint(),
        echo in varint(),
        server_unix_us in varint(),
        cookie in prop::collection::vec(any::<u8>(), 0..=MAX_TOKEN_LEN),
        pad in 0usize..400,
    ) {
        let mut buf = vec![0u8; 2400];
        let mut w = DatagramWriter::new(&mut buf, 2400, Header::handshake(0)).unwrap();
        let hello = Hello {
            nonce,
            epoch_unix_us: epoch,
            timestamp_us: timestamp,
            clock_offset_us,
            clock_rtt_us,
            token: &token,
        };
        w.hello(hello).unwrap();
        let welcome = Welcome {
            nonce,
            heartbeat_interval_us: interval,
            server_nonce,
            id_window,
            echo_timestamp_us: echo,
            server_unix_us,
        };
        w.welcome(welcome).unwrap();
        let retry = Retry { nonce, echo_timestamp_us: echo, server_unix_us, cookie: &cookie };
        w.retry(retry).unwrap();
        let before = w.len();
        w.pad_to(before + pad);
        let len = w.finish();
        prop_assert_eq!(len, before + pad);
        let datagram = Datagram::parse(&buf[..len]).unwrap();
        let frames: Vec<Frame<'_>> = datagram.frames().collect();
        prop_assert_eq!(frames[0], Frame::Hello(hello));
        prop_assert_eq!(frames[1], Frame::Welcome(welcome));
        prop_assert_eq!(frames[2], Frame::Retry(retry));
        if pad > 0 {
            prop_assert_eq!(frames[3], Frame::Padding { len: pad });
        }
        prop_assert_eq!(frames.len(), 3 + usize::from(pad > 0));
    }

    /// Whatever the bytes, parsing returns Ok or Err; frames of an accepted datagram can
    /// be walked to the end.
    #[test]
    fn decoding_arbitrary_bytes_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        session in any::<bool>(),
    ) {
        let mut bytes = bytes;
        // Give most inputs a valid header so the fuzzing reaches the frames.
        if bytes.len() >= 8 && session {
            bytes[..4].copy_from_slice(&[0x52, 0x4d, 0x03, 0x10]);
        }
        if let Ok(d) = Datagram::parse(&bytes) {
            for frame in d.frames() {
                match frame {
                    Frame::Ack(a) => { let _ = a.ranges().count(); }
                    Frame::Data(m) => { let _ = m.messages().count(); }
                    _ => {}
                }
            }
        }
        let mut index = MessageIndex::default();
        let accepted = Datagram::parse(&bytes).is_ok();
        let indexed = Datagram::parse_indexed(&bytes, &mut index);
        prop_assert_eq!(indexed.is_ok(), accepted);
        if let Ok(d) = indexed {
            for frame in d.frames() {
                if let Frame::Data(m) = frame {
                    prop_assert_eq!(m.messages().count() as u64, m.len());
                }
            }
        }
    }

    /// An ACK cut short by the datagram size keeps a prefix (the newest) of the ranges.
    #[test]
    fn truncated_ack_is_a_newest_prefix(ranges in ack_ranges(), max in 300usize..400, fill in 0usize..250) {
        let mut buf = vec![0u8; max];
        let mut w = DatagramWriter::new(&mut buf, max, Header::session(1)).unwrap();
        w.pad_to(8 + fill);
        let Ok(summary) = w.ack(ranges.iter().cloned(), 0) else {
            // Not even the first range fits: nothing was written.
            prop_assert_eq!(w.len(), 8 + fill);
            return Ok(());
        };
        let len = w.finish();
        prop_assert!(len <= max);
        let datagram = Datagram::parse(&buf[..len]).unwrap();
        let ack = datagram.frames().find_map(|f| match f { Frame::Ack(a) => Some(a), _ => None }).unwrap();
        let decoded: Vec<_> = ack.ranges().collect();
        prop_assert_eq!(decoded.len(), summary.ranges);
        prop_assert_eq!(&decoded[..], &ranges[..decoded.len()]);
        prop_assert_eq!(ack.is_truncated(), decoded.len() < ranges.len());
    }
}
