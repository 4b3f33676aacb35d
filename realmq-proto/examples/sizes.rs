//! Measures RealMQ's wire sizes against the original C RealMQ's text encoding.
//!
//! `cargo run --release -p realmq-proto --example sizes` prints `key: value` lines; the
//! first five keys are fixed (docs/PROTOCOL.md quotes them), notes follow.

use core::ops::RangeInclusive;

use realmq_proto::{DatagramWriter, Header, Message, DEFAULT_MAX_DATAGRAM};

const MESSAGES: u64 = 10_000;
const PAYLOAD: [u8; 64] = [b'x'; 64];

/// The original acknowledged with decimal IDs joined by `|`, cut into pieces of at most
/// 1024 bytes (an ID never split across pieces).
fn original_ack_bytes(ids: impl Iterator<Item = u64>) -> usize {
    let mut total = 0;
    let mut piece = 0;
    for id in ids {
        let len = id.to_string().len();
        let with_sep = if piece == 0 { len } else { len + 1 };
        if piece + with_sep > 1024 {
            total += piece;
            piece = len;
        } else {
            piece += with_sep;
        }
    }
    total + piece
}

/// A whole datagram (header included) holding one ACK frame for `ranges`.
fn ack_datagram_len(ranges: &[RangeInclusive<u64>]) -> (usize, bool) {
    let mut buf = [0u8; DEFAULT_MAX_DATAGRAM];
    let mut w = DatagramWriter::new(&mut buf, DEFAULT_MAX_DATAGRAM, Header::session(0x1234_5678))
        .expect("default size is valid");
    let summary = w.ack(ranges.iter().cloned(), 25).expect("ACK fits");
    (w.finish(), summary.truncated)
}

/// Received ranges, newest first, of IDs `0..n` without those in `missing` (sorted).
fn ranges_without(n: u64, missing: &[u64]) -> Vec<RangeInclusive<u64>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    for &m in missing {
        if m > start {
            ranges.push(start..=m - 1);
        }
        start = m + 1;
    }
    if start < n {
        ranges.push(start..=n - 1);
    }
    ranges.reverse();
    ranges
}

/// A datagram filled with 64-byte messages, as the sender batches them mid-session:
/// consecutive IDs, one microsecond apart. Returns (datagram length, message count).
fn batched(first_id: u64, first_ts: u64) -> (usize, u64) {
    let mut buf = [0u8; DEFAULT_MAX_DATAGRAM];
    let mut w = DatagramWriter::new(&mut buf, DEFAULT_MAX_DATAGRAM, Header::session(0x1234_5678))
        .expect("default size is valid");
    let message = |i: u64| Message {
        id: first_id + i,
        timestamp_us: first_ts + i,
        payload: &PAYLOAD,
    };
    let mut data = w.data(message(0)).expect("one message fits");
    let mut i = 1;
    while data.push(message(i)).is_ok() {
        i += 1;
    }
    (w.finish(), i)
}

/// Every figure the example prints.
#[derive(Debug)]
pub(crate) struct Sizes {
    /// The original's text ACK of 10,000 IDs.
    pub original_ack: usize,
    /// RealMQ's ACK datagram for 10,000 contiguous IDs.
    pub ack_contiguous: usize,
    /// RealMQ's ACK datagram for 10,000 IDs with 1% missing.
    pub ack_gappy: usize,
    /// Gap ranges in that ACK.
    pub gaps: usize,
    /// IDs missing.
    pub missing: usize,
    /// The original's text ACK of the IDs present.
    pub original_ack_gappy: usize,
    /// Framing bytes per 64-byte message in a full datagram.
    pub batched_overhead: f64,
    /// Messages in that datagram.
    pub batched_count: u64,
    /// A datagram with one 64-byte message, minus 64.
    pub single_overhead: usize,
}

/// Computes every figure.
pub(crate) fn measure() -> Sizes {
    let original_ack = original_ack_bytes(0..MESSAGES);
    let (ack_contiguous, _) = ack_datagram_len(&[0..=MESSAGES - 1]);

    // 1% of 10,000 IDs missing, chosen by a seeded generator.
    let mut rng = fastrand::Rng::with_seed(2004);
    let mut missing: Vec<u64> = Vec::new();
    while missing.len() < (MESSAGES / 100) as usize {
        let id = rng.u64(0..MESSAGES);
        if !missing.contains(&id) {
            missing.push(id);
        }
    }
    missing.sort_unstable();
    let ranges = ranges_without(MESSAGES, &missing);
    let (ack_gappy, truncated) = ack_datagram_len(&ranges);
    assert!(!truncated, "the 1% ACK fits one datagram");
    let original_ack_gappy =
        original_ack_bytes((0..MESSAGES).filter(|id| missing.binary_search(id).is_err()));

    // Mid-session: ID 100,000, five seconds into the session.
    let (len, batched_count) = batched(100_000, 5_000_000);
    let batched_overhead =
        (len - batched_count as usize * PAYLOAD.len()) as f64 / batched_count as f64;

    let mut buf = [0u8; DEFAULT_MAX_DATAGRAM];
    let mut w = DatagramWriter::new(&mut buf, DEFAULT_MAX_DATAGRAM, Header::session(0x1234_5678))
        .expect("default size is valid");
    let one = Message {
        id: 100_000,
        timestamp_us: 5_000_000,
        payload: &PAYLOAD,
    };
    w.data(one).expect("one message fits");
    let single_overhead = w.finish() - PAYLOAD.len();

    Sizes {
        original_ack,
        ack_contiguous,
        ack_gappy,
        gaps: ranges.len() - 1,
        missing: missing.len(),
        original_ack_gappy,
        batched_overhead,
        batched_count,
        single_overhead,
    }
}

fn main() {
    let s = measure();
    println!("original_ack_10000_bytes: {}", s.original_ack);
    println!("ack_10000_contiguous_bytes: {}", s.ack_contiguous);
    println!(
        "ack_10000_1pct_gaps_bytes_per_gap: {:.2}",
        s.ack_gappy as f64 / s.gaps as f64
    );
    println!("batched_overhead_bytes_per_msg: {:.2}", s.batched_overhead);
    println!("single_msg_overhead_bytes: {}", s.single_overhead);
    // Notes for comparison.
    let original_msg = format!("{}|{}|", 100_000, 1_764_133_200_000_000u64).len();
    println!("original_single_msg_header_bytes: {original_msg}");
    println!("ack_10000_1pct_gaps_total_bytes: {}", s.ack_gappy);
    println!("ack_10000_1pct_gaps_gap_ranges: {}", s.gaps);
    println!("ack_10000_1pct_gaps_missing_ids: {}", s.missing);
    println!(
        "original_ack_10000_1pct_gaps_bytes: {}",
        s.original_ack_gappy
    );
    println!("batched_messages_per_datagram: {}", s.batched_count);
}
