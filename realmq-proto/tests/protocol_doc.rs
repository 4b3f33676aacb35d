//! docs/PROTOCOL.md's worked example is decoded here, so the document cannot drift from
//! the code.

use realmq_proto::{Datagram, Flags, Frame, Message, PacketKind};

const DOC: &str = include_str!("../../docs/PROTOCOL.md");

/// The hex block after the `<!-- worked-example -->` marker.
fn worked_example() -> Vec<u8> {
    let after = DOC
        .split("<!-- worked-example -->")
        .nth(1)
        .expect("marker in PROTOCOL.md");
    let block = after
        .split("```hex")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("hex block after the marker");
    block
        .split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).expect("hex byte"))
        .collect()
}

#[test]
fn the_documented_datagram_decodes_as_documented() {
    let bytes = worked_example();
    let datagram = Datagram::parse(&bytes).expect("valid");
    assert_eq!(datagram.header.kind, PacketKind::Session);
    assert!(datagram.header.flags.contains(Flags::ACK_NOW));
    assert_eq!(datagram.header.session_id, 42);

    let frames: Vec<_> = datagram.frames().collect();
    assert_eq!(frames.len(), 2);
    let Frame::Ack(ack) = frames[0] else {
        panic!("first frame is not an ACK: {:?}", frames[0])
    };
    assert_eq!(ack.largest(), 1003);
    assert_eq!(ack.delay_us(), 40);
    assert_eq!(ack.ranges().collect::<Vec<_>>(), [1000..=1003, 990..=997]);

    let Frame::Data(data) = frames[1] else {
        panic!("second frame is not DATA: {:?}", frames[1])
    };
    assert_eq!(
        data.messages().collect::<Vec<_>>(),
        [
            Message {
                id: 1300,
                timestamp_us: 2_000_000,
                payload: b"hi"
            },
            Message {
                id: 1301,
                timestamp_us: 2_000_007,
                payload: b"ok!"
            },
        ]
    );
}
