//! DATA frames whose messages follow one another with one framing (a sender's run of equal
//! messages) are decoded by arithmetic instead of message by message: the messages that
//! come out must be exactly those of the general decoder, whether the frame is uniform, stops
//! being uniform at any message, or encodes a length field wider than it needs; and a
//! uniform frame (or one of a single message) taken as a `MessageRun` hands out the same.

use proptest::prelude::*;
use realmq_proto::{Datagram, DatagramWriter, Frame, Header, Message, MessageIndex};

/// One message: ID, timestamp, payload.
type Owned = (u64, u64, Vec<u8>);

/// The messages of every DATA frame of `bytes`, decoded plainly and through an index, and
/// each frame's `consecutive_ids`; the two decodings, and the frame's run if it is one, must
/// agree.
fn decode(bytes: &[u8]) -> (Vec<Owned>, Vec<Option<(u64, u64)>>) {
    let plain = Datagram::parse(bytes).unwrap();
    let mut index = MessageIndex::default();
    let indexed = Datagram::parse_indexed(bytes, &mut index).unwrap();
    let mut out = (Vec::new(), Vec::new());
    for (a, b) in plain.frames().zip(indexed.frames()) {
        let (Frame::Data(a), Frame::Data(b)) = (a, b) else {
            panic!("not DATA");
        };
        let owned = |m: Message<'_>| (m.id, m.timestamp_us, m.payload.to_vec());
        let messages: Vec<Owned> = a.messages().map(owned).collect();
        assert_eq!(messages, b.messages().map(owned).collect::<Vec<_>>());
        assert_eq!(a.consecutive_ids(), b.consecutive_ids());
        // As one run: the same messages, whenever the frame is uniform or holds one.
        assert_eq!(a.as_run(), b.as_run());
        match a.as_run() {
            Some(run) => {
                assert_eq!(run.messages().map(owned).collect::<Vec<_>>(), messages);
                assert_eq!(run.len(), messages.len());
            }
            None => assert!(a.consecutive_ids().is_none() && messages.len() > 1),
        }
        assert_eq!(
            a.as_run().is_some(),
            a.consecutive_ids().is_some() || messages.len() == 1
        );
        out.0.extend(messages);
        out.1
            .push(a.consecutive_ids().map(|r| (*r.start(), *r.end())));
    }
    out
}

/// Writes `messages` as one DATA frame.
fn write(messages: &[Owned]) -> Vec<u8> {
    let mut buf = vec![0u8; 65_507];
    let mut w = DatagramWriter::new(&mut buf, 65_507, Header::session(1)).unwrap();
    let mut d = w.data(msg(&messages[0])).unwrap();
    for m in &messages[1..] {
        d.push(msg(m)).unwrap();
    }
    let len = w.finish();
    buf.truncate(len);
    buf
}

fn msg((id, ts, payload): &Owned) -> Message<'_> {
    Message {
        id: *id,
        timestamp_us: *ts,
        payload,
    }
}

/// Whether `messages` have consecutive IDs, one timestamp and one payload length.
fn is_uniform(messages: &[Owned]) -> bool {
    messages
        .windows(2)
        .all(|w| w[1].0 == w[0].0 + 1 && w[1].1 == w[0].1 && w[1].2.len() == w[0].2.len())
}

/// A run of equal-length messages with, at chosen positions, a change: an ID gap, another
/// timestamp or another length. Lengths straddle the 1- to 2-byte length-field boundary (63).
fn runs() -> impl Strategy<Value = Vec<Owned>> {
    (
        0u64..1 << 40,
        0u64..1 << 40,
        prop_oneof![0usize..4, 60usize..68, Just(300)],
        1usize..40,
        prop::collection::vec((0usize..40, 0u8..3), 0..3),
    )
        .prop_map(|(first_id, ts, len, count, changes)| {
            let (mut id, mut ts, mut len) = (first_id, ts, len);
            (0..count)
                .map(|i| {
                    for &(at, what) in &changes {
                        if at == i && i > 0 {
                            match what {
                                0 => id += 5,
                                1 => ts += 7,
                                _ => len += 1,
                            }
                        }
                    }
                    let m = (id, ts, vec![i as u8; len]);
                    id += 1;
                    m
                })
                .collect()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn uniform_or_not_every_message_comes_out_as_written(messages in runs()) {
        let (decoded, ids) = decode(&write(&messages));
        prop_assert_eq!(&decoded, &messages);
        let expected = is_uniform(&messages)
            .then(|| (messages[0].0, messages[messages.len() - 1].0));
        prop_assert_eq!(ids, vec![expected]);
    }
}

#[test]
fn a_wider_length_field_than_needed_is_not_uniform_but_decodes() {
    // Three 2-byte payloads, ID 7 on, timestamp 0; the third one's length is the 2-byte
    // varint form of 2 (valid, RFC 9000 §16): the frame is not uniform.
    let head = write(&[(7, 0, vec![0xaa; 2])]);
    let header_len = head.len() - (1 + 1 + 1 + 2 + 1 + 2);
    let mut bytes = head[..header_len].to_vec();
    bytes.extend([0x08, 7, 0, 0x40, 3]); // DATA, 1-byte ID 7, timestamp 0, count 3
    bytes.extend([2, 0xaa, 0xaa]);
    bytes.extend([0, 0, 2, 0xbb, 0xbb]);
    bytes.extend([0, 0, 0x40, 2, 0xcc, 0xcc]);
    let (decoded, ids) = decode(&bytes);
    let expected = vec![
        (7, 0, vec![0xaa; 2]),
        (8, 0, vec![0xbb; 2]),
        (9, 0, vec![0xcc; 2]),
    ];
    assert_eq!(decoded, expected);
    assert_eq!(ids, vec![None]);
    // The same frame with a 1-byte length field is uniform.
    let uniform = write(&expected);
    assert_eq!(decode(&uniform), (expected, vec![Some((7, 9))]));
}
