//! Fuzzes the datagram decoder: any bytes, any ID reference; it must return Ok or Err,
//! and an accepted datagram's frames must iterate to the end without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use realmq_proto::{Datagram, Frame};

fuzz_target!(|input: &[u8]| {
    // The first 8 bytes choose the reference ID (a u64 with its top bit as "None").
    let (reference, bytes) = match input.split_first_chunk::<8>() {
        Some((head, rest)) => (u64::from_be_bytes(*head), rest),
        None => return,
    };
    let largest_received = (reference >> 63 == 0).then_some(reference);
    if let Ok(datagram) = Datagram::parse(bytes) {
        for frame in datagram.frames() {
            match frame {
                Frame::Ack(ack) => {
                    let n = ack.ranges().count() as u64;
                    assert_eq!(n, ack.range_count());
                }
                Frame::Data(data) => {
                    let mut previous = None;
                    let mut n = 0;
                    for m in data.messages() {
                        assert!(previous.is_none_or(|p| m.id > p));
                        previous = Some(m.id);
                        n += 1;
                    }
                    assert_eq!(n, data.len());
                }
                _ => {}
            }
        }
    }
});
