//! `Sender::send_many` against `send`, one message at a time.

use std::time::Instant;

use super::tests::written_messages;
use super::*;

/// Payload of message `id`: 40 bytes that differ from one ID to the next.
fn payload(id: u64) -> Vec<u8> {
    (0..40u8).map(|i| (id as u8).wrapping_mul(31) ^ i).collect()
}

#[test]
fn send_many_stores_what_send_would() {
    let t0 = Instant::now();
    let config = SenderConfig {
        window_messages: 50,
        ..SenderConfig::default()
    };
    let mut one = Sender::new(config.clone(), t0).unwrap();
    let mut many = Sender::new(config, t0).unwrap();
    // Two batches with different timestamps: the second's first message counts its
    // timestamp from the first batch's last, the others from their predecessor.
    for (timestamp_us, ids) in [(5, 0..30u64), (9, 30..50)] {
        for id in ids.clone() {
            assert_eq!(one.send(timestamp_us, &payload(id)), Ok(id));
        }
        let accepted = many.send_many(timestamp_us, 40, ids.end - ids.start, |id, p: &mut [u8]| {
            p.copy_from_slice(&payload(id));
        });
        assert_eq!(accepted, Ok(ids.end - ids.start));
    }
    assert_eq!(
        many.send_many(9, 40, 3, |_, _: &mut [u8]| panic!("the window is full")),
        Err(EnqueueError::Backpressure)
    );
    let mut written = 0;
    loop {
        let expected = written_messages(&mut one, t0);
        assert_eq!(written_messages(&mut many, t0), expected);
        if expected.is_empty() {
            break;
        }
        written += expected.len();
    }
    assert_eq!(written, 50);
}

#[test]
fn send_many_takes_what_fits_and_checks_the_size() {
    let t0 = Instant::now();
    let config = SenderConfig {
        window_messages: 4,
        ..SenderConfig::default()
    };
    let mut s = Sender::new(config, t0).unwrap();
    let mut filled = Vec::new();
    assert_eq!(
        s.send_many(0, 8, 10, |id, _: &mut [u8]| filled.push(id)),
        Ok(4)
    );
    assert_eq!(filled, [0, 1, 2, 3]);
    assert_eq!(s.stats().sent, 0, "accepted, not yet written");
    let max = s.config().max_payload();
    assert_eq!(
        s.send_many(0, max + 1, 1, |_, _: &mut [u8]| {}),
        Err(EnqueueError::TooLarge { len: max + 1, max })
    );
}
