//! Fuzzes the datagram decoder: any bytes; it must return Ok or Err, and an accepted
//! datagram's frames must iterate to the end without panicking. The server's parse
//! (`parse_indexed`) must accept exactly the same datagrams and hand out the same messages,
//! and a DATA frame that says its IDs are consecutive (`consecutive_ids`, decoded by
//! arithmetic) must hold exactly those IDs.
//!
//! The input's first 8 bytes are skipped: they were the ID reference of protocol version 1,
//! which truncated IDs; version 2 sends IDs whole. They stay in the input format so that the
//! seeds and any corpus stay valid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use realmq_proto::{Datagram, Frame, MessageIndex};

fuzz_target!(|input: &[u8]| {
    let Some((_unused_reference, bytes)) = input.split_first_chunk::<8>() else {
        return;
    };
    let mut index = MessageIndex::default();
    let indexed = Datagram::parse_indexed(bytes, &mut index);
    let Ok(datagram) = Datagram::parse(bytes) else {
        assert!(indexed.is_err());
        return;
    };
    let indexed = indexed.expect("parse_indexed accepts what parse accepts");
    for (frame, same) in datagram.frames().zip(indexed.frames()) {
        match (frame, same) {
            (Frame::Ack(ack), _) => {
                let n = ack.ranges().count() as u64;
                assert_eq!(n, ack.range_count());
            }
            (Frame::Data(data), Frame::Data(same)) => {
                let mut previous = None;
                let mut n = 0;
                for (m, s) in data.messages().zip(same.messages()) {
                    assert_eq!(m, s);
                    assert!(previous.is_none_or(|p| m.id > p));
                    previous = Some(m.id);
                    n += 1;
                }
                assert_eq!(n, data.len());
                assert_eq!(same.messages().count() as u64, data.len());
                if let Some(ids) = data.consecutive_ids() {
                    let first = data.messages().next().expect("at least one message");
                    for (m, id) in data.messages().zip(ids.clone()) {
                        assert_eq!(m.id, id);
                        assert_eq!(m.timestamp_us, first.timestamp_us);
                        assert_eq!(m.payload.len(), first.payload.len());
                    }
                    assert_eq!(ids.count() as u64, data.len());
                }
            }
            _ => {}
        }
    }
});
