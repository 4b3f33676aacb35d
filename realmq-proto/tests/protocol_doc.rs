//! docs/PROTOCOL.md's worked examples are decoded here, so the document cannot drift from
//! the code.

use realmq_proto::{Datagram, Flags, Frame, Hello, Message, PacketKind};

const DOC: &str = include_str!("../../docs/PROTOCOL.md");

/// The hex block after the `<!-- worked-example -->` marker.
fn worked_example() -> Vec<u8> {
    hex_after("<!-- worked-example -->")
}

/// The hex block after `marker`.
fn hex_after(marker: &str) -> Vec<u8> {
    let after = DOC
        .split(marker)
        .nth(1)
        .unwrap_or_else(|| panic!("{marker} in PROTOCOL.md"));
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

#[test]
fn the_documented_hello_decodes_as_documented() {
    let bytes = hex_after("<!-- worked-example-hello -->");
    let datagram = Datagram::parse(&bytes).expect("valid");
    assert_eq!(datagram.header.kind, PacketKind::Handshake);
    assert_eq!(datagram.header.session_id, 0);
    let frames: Vec<_> = datagram.frames().collect();
    let cookie: Vec<u8> = (0xc0..=0xd7).collect();
    assert_eq!(
        frames,
        [Frame::Hello(Hello {
            nonce: 0x0102_0304_0506_0708,
            epoch_unix_us: 1_764_133_200_000_000,
            timestamp_us: 2_500,
            clock_offset_us: -5_000_120,
            clock_rtt_us: 240,
            token: &cookie,
        })]
    );
}
