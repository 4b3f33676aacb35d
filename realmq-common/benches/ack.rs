//! ACK processing at its worst: the sender takes one ACK frame describing 10,000 ranges
//! against a full window.
//!
//! The sender's window holds [`WINDOW`] = 20,000 messages (64 bytes each), all written and in
//! flight, in 953 datagrams of 21 (the congestion window was first grown by slow start,
//! so the whole window could go out). The ACK names every other message — IDs `base + 1`,
//! `base + 3`, … `base + 19,999` — so it holds 10,000 ranges of one ID each, newest first,
//! written with `DatagramWriter::ack` into a datagram large enough for all of them (about
//! 20 KB; a 1472-byte ACK carries at most about 700). `Sender::handle_ack` finds each range
//! in the in-flight list, frees the 10,000 messages, takes an RTT sample, and declares the
//! other 10,000 lost (all but the last few datagrams' are 3 or more transmissions behind the
//! largest acknowledged one), queueing them for resending.
//!
//! For scale, `ack/1_range` takes an ACK of the whole window as one range.
//!
//! Each measured iteration gets a freshly filled sender (built outside the timing); criterion
//! reports time per ACK frame, and the throughput line counts ranges.
//!
//! Run: `cargo bench -p realmq-common --bench ack -- --noplot`.

use std::hint::black_box;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use realmq_common::config::SenderConfig;
use realmq_common::sender::Sender;
use realmq_proto::{Datagram, DatagramWriter, Frame, Header, MAX_DATAGRAM_SIZE};

/// Messages in the full window.
const WINDOW: usize = 20_000;
/// Payload bytes.
const SIZE: usize = 64;
/// Ranges in the big ACK: every other message of the window.
const RANGES: usize = WINDOW / 2;

/// A sender whose window is full of in-flight messages, and the instant it was filled at.
/// Deterministic: every call builds the same state (same IDs, same transmissions).
fn full_sender(epoch: Instant) -> (Sender, Instant) {
    let config = SenderConfig {
        window_messages: WINDOW,
        // Room for the window's payloads, and the congestion window's cap.
        window_bytes: 2 << 20,
        ..SenderConfig::default()
    };
    let mut sender = Sender::new(config, epoch).expect("valid config");
    let payload = [b'x'; SIZE];
    let mut buf = [0u8; 1472];
    let mut now = epoch;
    // Slow start: fill, write what the congestion window allows, acknowledge it all, until
    // the congestion window takes the whole window.
    for round in 0.. {
        assert!(round < 20, "the congestion window does not grow");
        let refill = WINDOW - sender.window_usage().0;
        for _ in 0..refill {
            sender.send(0, &payload).expect("room after the last ACK");
        }
        // Until the congestion window is full (`write_data` then writes nothing).
        while sender.has_pending_data() {
            let mut w = DatagramWriter::new(&mut buf, 1472, Header::session(1)).unwrap();
            if sender.write_data(now, &mut w) == 0 {
                break;
            }
        }
        if sender.unsent() == 0 {
            break;
        }
        now += Duration::from_micros(100);
        let first = sender.next_id() - (WINDOW as u64);
        let largest = sender.largest_sent().expect("something was written");
        let ack = ack_datagram(std::iter::once(first..=largest));
        sender
            .handle_ack(now, &ack_frame(&ack))
            .expect("a valid ACK");
    }
    assert_eq!(
        sender.in_flight(),
        WINDOW,
        "the window is full and in flight"
    );
    (sender, now + Duration::from_micros(100))
}

/// A session datagram holding one ACK frame of `ranges` (newest first), all of them.
fn ack_datagram<I>(ranges: I) -> Vec<u8>
where
    I: Iterator<Item = RangeInclusive<u64>> + Clone,
{
    let mut buf = vec![0u8; MAX_DATAGRAM_SIZE];
    let mut w = DatagramWriter::new(&mut buf, MAX_DATAGRAM_SIZE, Header::session(1)).unwrap();
    let expected = ranges.clone().count();
    let summary = w.ack(ranges, 100).expect("the ACK fits");
    assert_eq!(summary.ranges, expected);
    assert!(!summary.truncated);
    let len = w.finish();
    buf.truncate(len);
    buf
}

/// The ACK frame of a datagram made by [`ack_datagram`].
fn ack_frame(datagram: &[u8]) -> realmq_proto::AckFrame<'_> {
    let parsed = Datagram::parse(datagram).expect("valid datagram");
    match parsed.frames().next() {
        Some(Frame::Ack(ack)) => ack,
        other => panic!("not an ACK: {other:?}"),
    }
}

fn bench_ack(c: &mut Criterion) {
    let epoch = Instant::now();
    let (mut sender, now) = full_sender(epoch);
    let base = sender.next_id() - WINDOW as u64;
    let top = base + WINDOW as u64 - 1;
    let every_other = ack_datagram((0..RANGES as u64).rev().map(|k| {
        let id = base + 2 * k + 1;
        id..=id
    }));
    let whole = ack_datagram(std::iter::once(base..=top));
    eprintln!(
        "ack: window of {WINDOW} messages from ID {base}; the {RANGES}-range ACK is {} bytes",
        every_other.len()
    );

    // Check what one ACK does before timing it.
    let frame = ack_frame(&every_other);
    assert_eq!(frame.range_count(), RANGES as u64);
    let (acked, lost) = (sender.stats().acked, sender.stats().lost);
    sender.handle_ack(now, &frame).expect("a valid ACK");
    assert_eq!(
        sender.stats().acked - acked,
        RANGES as u64,
        "every other one freed"
    );
    let lost = sender.stats().lost - lost;
    assert!(
        lost > RANGES as u64 - 100,
        "the gaps are declared lost: {lost}"
    );
    eprintln!("ack: the {RANGES}-range ACK frees {RANGES} messages and declares {lost} lost");

    let mut group = c.benchmark_group("ack");
    for (name, datagram, ranges) in [
        ("10000_ranges", &every_other, RANGES),
        ("1_range", &whole, 1),
    ] {
        let frame = ack_frame(datagram);
        group.throughput(Throughput::Elements(ranges as u64));
        group.bench_function(name, |b| {
            b.iter_batched(
                || full_sender(epoch).0,
                |mut sender| {
                    let result = sender.handle_ack(now, black_box(&frame));
                    (sender, result)
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_ack);
criterion_main!(benches);
