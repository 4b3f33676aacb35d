//! `Sender::write_prebuilt` (batches stored as whole datagrams, written where they lie)
//! against a sender that writes everything with `write_data`: the same messages in the same
//! order, whatever mix of batches, single messages, ACKs and either way of writing.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use realmq_proto::{Datagram, Flags, Frame, Header};

use super::tests::{ack, written_messages};
use super::*;

/// Payload of message `id`, `len` bytes that differ from one ID to the next.
fn payload(id: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (id as u8).wrapping_mul(31) ^ i as u8)
        .collect()
}

/// Messages as a receiver decodes them: ID, timestamp, payload.
type Decoded = Vec<(u64, u64, Vec<u8>)>;

/// The messages of a datagram, and whether it asked for an ACK at once.
fn parse(datagram: &[u8]) -> (Decoded, bool) {
    let parsed = Datagram::parse(datagram).expect("a valid datagram");
    let mut messages = Vec::new();
    for frame in parsed.frames() {
        match frame {
            Frame::Data(data) => messages.extend(
                data.messages()
                    .map(|m| (m.id, m.timestamp_us, m.payload.to_vec())),
            ),
            Frame::Padding { .. } => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
    let ack_now = parsed.header.flags.contains(Flags::ACK_NOW);
    (messages, ack_now)
}

/// A step of the test: what the application or the network does next.
#[derive(Debug, Clone)]
enum Step {
    /// `send_many` of `count` messages of `len` bytes, at the next timestamp.
    Batch { count: u64, len: usize },
    /// `send` of one message of `len` bytes.
    One { len: usize },
    /// Writes up to `max` datagrams with `write_prebuilt`, the rest with `write_data`.
    Write { max: usize },
    /// Writes one datagram with `write_data` only.
    WriteGeneral,
    /// Acknowledges everything written so far.
    AckAll,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (1u64..400, 1usize..1400).prop_map(|(count, len)| Step::Batch { count, len }),
        1 => (1usize..300).prop_map(|len| Step::One { len }),
        4 => (1usize..6).prop_map(|max| Step::Write { max }),
        1 => Just(Step::WriteGeneral),
        2 => Just(Step::AckAll),
    ]
}

/// Writes what `s` has with `write_prebuilt` (up to `max` datagrams) and checks the shape of
/// what it gives; returns the messages and how many datagrams.
fn write_stored(s: &mut Sender, now: Instant, max: usize) -> Option<(Decoded, usize)> {
    let datagram_size = s.config().max_datagram_size;
    let burst = s.write_prebuilt(now, Header::session(1), max)?;
    assert!(burst.count >= 1 && burst.count <= max);
    assert!(burst.segment <= datagram_size);
    let datagrams: Vec<&[u8]> = burst.datagrams().collect();
    assert_eq!(datagrams.len(), burst.count, "segment-sized datagrams");
    let last = burst.count - 1;
    let mut messages = Vec::new();
    for (i, d) in datagrams.iter().enumerate() {
        assert!(i == last || d.len() == burst.segment);
        let (m, ack_now) = parse(d);
        assert!(!m.is_empty());
        assert!(i == last || !ack_now, "only the last asks for an ACK");
        messages.extend(m);
    }
    Some((messages, burst.count))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn stored_datagrams_carry_each_message_once_in_order(
        steps in prop::collection::vec(step(), 1..60),
        datagram_size in prop::sample::select(vec![300usize, 1472, 9000]),
    ) {
        let t0 = Instant::now();
        let config = SenderConfig {
            window_messages: 2_000,
            max_datagram_size: datagram_size,
            ..SenderConfig::default()
        };
        let mut s = Sender::new(config, t0).unwrap();
        s.store_datagrams(64);
        // What was accepted, as a receiver must decode it.
        let mut expected = Vec::new();
        let mut written = Vec::new();
        let mut now = t0;
        let mut timestamp_us = 0;
        let ack_all = |s: &mut Sender, now| {
            if let Some(largest) = s.largest_sent {
                ack(s, now, &[0..=largest], 0).unwrap();
            }
        };
        for step in steps {
            now += Duration::from_micros(100);
            match step {
                Step::Batch { count, len } => {
                    timestamp_us += 100;
                    let first = s.window.next_id();
                    let fill = |id: u64, p: &mut [u8]| p.copy_from_slice(&payload(id, len));
                    let n = s.send_many(timestamp_us, len, count, fill).unwrap_or(0);
                    expected.extend((first..first + n).map(|id| (id, timestamp_us, payload(id, len))));
                }
                Step::One { len } => {
                    timestamp_us += 1;
                    let id = s.window.next_id();
                    if s.send(timestamp_us, &payload(id, len)).is_ok() {
                        expected.push((id, timestamp_us, payload(id, len)));
                    }
                }
                Step::Write { max } => match write_stored(&mut s, now, max) {
                    Some((m, _)) => written.extend(m),
                    None => written.extend(written_messages(&mut s, now)),
                },
                Step::WriteGeneral => written.extend(written_messages(&mut s, now)),
                Step::AckAll => ack_all(&mut s, now),
            }
        }
        // Then everything left is written, acknowledged as it goes.
        for _ in 0..100_000 {
            now += Duration::from_micros(100);
            let m = match write_stored(&mut s, now, 4) {
                Some((m, _)) => m,
                None => written_messages(&mut s, now),
            };
            if m.is_empty() {
                if written.len() == expected.len() {
                    break;
                }
                ack_all(&mut s, now);
            }
            written.extend(m);
        }
        // Each accepted message once, in ID order, with its timestamp and payload.
        prop_assert_eq!(written.len(), expected.len());
        prop_assert_eq!(&written, &expected);
        prop_assert_eq!(s.stats().sent, expected.len() as u64);
    }
}

#[test]
fn a_batch_goes_out_as_full_datagrams_with_an_ack_asked_at_the_end() {
    let t0 = Instant::now();
    let mut s = Sender::new(SenderConfig::default(), t0).unwrap();
    s.store_datagrams(64);
    let fill = |id: u64, p: &mut [u8]| p.copy_from_slice(&payload(id, 64));
    assert_eq!(s.send_many(7, 64, 100, fill), Ok(100));
    let burst = s.write_prebuilt(t0, Header::session(1), 64).unwrap();
    // 64-byte messages: 21 to a 1,472-byte datagram, the last 16 in a shorter one.
    assert_eq!((burst.count, burst.segment), (5, 1472));
    assert_eq!(
        burst.bytes.len(),
        4 * 1472 + burst.datagrams().last().unwrap().len()
    );
    let parsed: Vec<_> = burst.datagrams().map(parse).collect();
    let counts: Vec<usize> = parsed.iter().map(|(m, _)| m.len()).collect();
    assert_eq!(counts, [21, 21, 21, 21, 16]);
    let asks: Vec<bool> = parsed.iter().map(|&(_, ack_now)| ack_now).collect();
    assert_eq!(asks, [false, false, false, false, true]);
    assert_eq!(s.stats().sent, 100);
    assert_eq!(
        s.write_prebuilt(t0, Header::session(1), 64)
            .map(|b| b.count),
        None
    );
}

#[test]
fn without_qos_or_with_a_resend_queued_nothing_is_written_in_place() {
    let t0 = Instant::now();
    let fill = |id: u64, p: &mut [u8]| p.copy_from_slice(&payload(id, 64));
    let mut unreliable = Sender::new(
        SenderConfig {
            reliable: false,
            ..SenderConfig::default()
        },
        t0,
    )
    .unwrap();
    unreliable.store_datagrams(64);
    unreliable.send_many(1, 64, 50, fill).unwrap();
    assert!(unreliable
        .write_prebuilt(t0, Header::session(1), 8)
        .is_none());
    assert_eq!(written_messages(&mut unreliable, t0).len(), 21);

    let mut s = Sender::new(SenderConfig::default(), t0).unwrap();
    s.store_datagrams(64);
    s.send_many(1, 64, 105, fill).unwrap();
    assert_eq!(
        s.write_prebuilt(t0, Header::session(1), 5).map(|b| b.count),
        Some(5)
    );
    s.send_many(2, 64, 21, fill).unwrap();
    // Message 3, in the first datagram, is lost: the ACK names all the others, four
    // datagrams later, past the packet threshold.
    ack(&mut s, t0, &[4..=104, 0..=2], 0).unwrap();
    assert!(s.queued > 0, "a resend queued");
    assert!(s.write_prebuilt(t0, Header::session(1), 1).is_none());
    let resent = written_messages(&mut s, t0);
    assert_eq!(
        resent.first().map(|m| m.0),
        Some(3),
        "the resend goes first"
    );
}
