//! Fuzzes the datagram decoder: any bytes; it must return Ok or Err, and an accepted
//! datagram's frames must iterate to the end without panicking.
//!
//! The input's first 8 bytes are skipped: they were the ID reference of protocol version 1,
//! which truncated IDs; version 2 sends IDs whole. They stay in the input format so that the
//! seeds and any corpus stay valid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use realmq_proto::{Datagram, Frame};

fuzz_target!(|input: &[u8]| {
    let Some((_unused_reference, bytes)) = input.split_first_chunk::<8>() else {
        return;
    };
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
