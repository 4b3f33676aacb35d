//! The wire format's cost per datagram: encoding a full DATA datagram and decoding it.
//!
//! The datagram is what the load test sends at full speed: 1472 bytes at most (the default
//! maximum), one DATA frame of [`MESSAGES`] consecutive 64-byte messages, the most that fit
//! (the setup checks that one more does not), timestamps a microsecond or two apart.
//!
//! - `codec/encode`: `DatagramWriter::new`, `data` with the first message, `push` for the
//!   other 20, `finish`; into a reused buffer.
//! - `codec/decode_walk`: `Datagram::parse` (which validates every frame), then walking the
//!   frames and every message (ID, timestamp, payload), as a receiver does.
//!
//! Criterion reports time per datagram; the throughput line counts messages (divide by
//! [`MESSAGES`] for time per message).
//!
//! Run: `cargo bench -p realmq-proto --bench codec -- --noplot`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use realmq_proto::{Datagram, DatagramWriter, Frame, Header, Message, DEFAULT_MAX_DATAGRAM};

/// Messages in a full datagram of 64-byte messages.
const MESSAGES: usize = 21;
/// Payload bytes per message.
const SIZE: usize = 64;
/// The first message's ID: a session well under way (3-byte IDs on the wire).
const FIRST_ID: u64 = 1_000_000;
/// The first message's timestamp, µs since the session epoch (about 2.5 s in).
const FIRST_TIMESTAMP_US: u64 = 2_500_000;

/// The datagram's messages, borrowing from `payloads`.
fn messages(payloads: &[[u8; SIZE]]) -> Vec<Message<'_>> {
    payloads
        .iter()
        .enumerate()
        .map(|(i, payload)| Message {
            id: FIRST_ID + i as u64,
            timestamp_us: FIRST_TIMESTAMP_US + i as u64 / 2,
            payload,
        })
        .collect()
}

/// Writes `messages` as one DATA datagram into `buf`; returns its length.
fn encode(buf: &mut [u8], messages: &[Message<'_>]) -> usize {
    let mut w = DatagramWriter::new(buf, DEFAULT_MAX_DATAGRAM, Header::session(0x5EED))
        .expect("valid size");
    let mut data = w.data(messages[0]).expect("the first message fits");
    for &m in &messages[1..] {
        data.push(m).expect("21 messages fit");
    }
    w.finish()
}

/// How many of `messages` one DATA datagram holds.
fn how_many_fit(buf: &mut [u8], messages: &[Message<'_>]) -> usize {
    let mut w = DatagramWriter::new(buf, DEFAULT_MAX_DATAGRAM, Header::session(0x5EED))
        .expect("valid size");
    let mut data = w.data(messages[0]).expect("the first message fits");
    for &m in &messages[1..] {
        if data.push(m).is_err() {
            break;
        }
    }
    data.count() as usize
}

/// Parses and walks a datagram; returns a checksum of what it saw.
fn decode_walk(bytes: &[u8]) -> u64 {
    let datagram = Datagram::parse(bytes).expect("valid datagram");
    let mut sum = u64::from(datagram.header.session_id);
    for frame in datagram.frames() {
        if let Frame::Data(data) = frame {
            for m in data.messages() {
                sum = sum
                    .wrapping_add(m.id)
                    .wrapping_add(m.timestamp_us)
                    .wrapping_add(m.payload.len() as u64);
            }
        }
    }
    sum
}

fn bench_codec(c: &mut Criterion) {
    let mut rng = fastrand::Rng::with_seed(0xC0DEC);
    let payloads: Vec<[u8; SIZE]> = (0..=MESSAGES)
        .map(|_| std::array::from_fn(|_| rng.alphanumeric() as u8))
        .collect();
    let all = messages(&payloads);
    let messages = &all[..MESSAGES];

    // The datagram is full: a 22nd message does not fit.
    let mut buf = vec![0u8; DEFAULT_MAX_DATAGRAM];
    assert_eq!(how_many_fit(&mut buf, &all), MESSAGES);
    let len = encode(&mut buf, messages);
    let bytes = buf[..len].to_vec();
    eprintln!("codec: a datagram of {MESSAGES} × {SIZE}-byte messages is {len} bytes");
    let expected: u64 = 0x5EED
        + messages
            .iter()
            .map(|m| m.id + m.timestamp_us + SIZE as u64)
            .sum::<u64>();
    assert_eq!(decode_walk(&bytes), expected, "the walk sees every message");

    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Elements(MESSAGES as u64));
    group.bench_function("encode", |b| {
        b.iter(|| encode(black_box(&mut buf), black_box(messages)))
    });
    group.bench_function("decode_walk", |b| b.iter(|| decode_walk(black_box(&bytes))));
    group.finish();
}

criterion_group!(benches, bench_codec);
criterion_main!(benches);
