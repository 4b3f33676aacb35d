//! One test per frame type, from literal bytes, plus the error cases.

use realmq_proto::{
    frame_type, Bye, Datagram, DatagramWriter, DecodeError, EncodeError, Frame, Header, Heartbeat,
    Hello, Message, Retry, Stop, Welcome, DEFAULT_MAX_DATAGRAM, MAX_CLOCK_OFFSET_US,
};

const SESSION: [u8; 8] = [0x52, 0x4d, 0x03, 0x10, 0, 0, 0, 9];
const HANDSHAKE: [u8; 8] = [0x52, 0x4d, 0x03, 0x00, 0, 0, 0, 0];

fn with_header(header: [u8; 8], body: &[u8]) -> Vec<u8> {
    let mut v = header.to_vec();
    v.extend_from_slice(body);
    v
}

fn only_frame(bytes: &[u8]) -> Frame<'_> {
    let d = Datagram::parse(bytes).expect("valid datagram");
    let frames: Vec<_> = d.frames().collect();
    assert_eq!(frames.len(), 1, "{frames:?}");
    frames.into_iter().next().unwrap()
}

fn write(header: Header, f: impl FnOnce(&mut DatagramWriter<'_>)) -> Vec<u8> {
    let mut buf = [0u8; DEFAULT_MAX_DATAGRAM];
    let mut w = DatagramWriter::new(&mut buf, DEFAULT_MAX_DATAGRAM, header).unwrap();
    f(&mut w);
    let len = w.finish();
    buf[..len].to_vec()
}

#[test]
fn heartbeat() {
    let bytes = with_header(SESSION, &[0x01, 0x44, 0xd2]);
    assert_eq!(
        only_frame(&bytes),
        Frame::Heartbeat(Heartbeat { timestamp_us: 1234 })
    );
    let written = write(Header::session(9), |w| {
        w.heartbeat(Heartbeat { timestamp_us: 1234 }).unwrap()
    });
    assert_eq!(written, bytes);
}

#[test]
fn hello_and_welcome() {
    let mut body = vec![0x04];
    body.extend_from_slice(&7u64.to_be_bytes());
    body.extend_from_slice(&[0x05]); // epoch 5
    body.extend_from_slice(&[0x41, 0x2c]); // sent 300 µs into the session
    body.extend_from_slice(&[0x4f, 0x9f]); // clock offset zigzag 3999: -2000 µs
    body.extend_from_slice(&[0x40, 0x96]); // from an exchange of 150 µs round trip
    body.extend_from_slice(&[0x02, 0xaa, 0xbb]); // token "aa bb"
    let bytes = with_header(HANDSHAKE, &body);
    let hello = Hello {
        nonce: 7,
        epoch_unix_us: 5,
        timestamp_us: 300,
        clock_offset_us: -2000,
        clock_rtt_us: 150,
        token: &[0xaa, 0xbb],
    };
    assert_eq!(only_frame(&bytes), Frame::Hello(hello));
    assert_eq!(
        write(Header::handshake(0), |w| w.hello(hello).unwrap()),
        bytes
    );

    let mut body = vec![0x05];
    body.extend_from_slice(&7u64.to_be_bytes());
    body.extend_from_slice(&[0x43, 0xe8]); // 1000 µs
    body.extend_from_slice(&9u64.to_be_bytes()); // server nonce
    body.extend_from_slice(&[0x60, 0x00]); // id window 8192
    body.extend_from_slice(&[0x41, 0x2c]); // echo of the HELLO's 300 µs
    body.extend_from_slice(&[0x80, 0x0f, 0x42, 0x40]); // server clock 1,000,000 µs
    let bytes = with_header(HANDSHAKE, &body);
    let welcome = Welcome {
        nonce: 7,
        heartbeat_interval_us: 1000,
        server_nonce: 9,
        id_window: 8192,
        echo_timestamp_us: 300,
        server_unix_us: 1_000_000,
    };
    assert_eq!(only_frame(&bytes), Frame::Welcome(welcome));
    assert_eq!(
        write(Header::handshake(0), |w| w.welcome(welcome).unwrap()),
        bytes
    );

    let mut body = vec![0x10];
    body.extend_from_slice(&7u64.to_be_bytes());
    body.extend_from_slice(&[0x41, 0x2c]); // echo of the HELLO's 300 µs
    body.extend_from_slice(&[0x00]); // the server has no wall clock
    body.extend_from_slice(&[0x03, 0xc1, 0xc2, 0xc3]); // a 3-byte cookie
    let bytes = with_header(HANDSHAKE, &body);
    let retry = Retry {
        nonce: 7,
        echo_timestamp_us: 300,
        server_unix_us: 0,
        cookie: &[0xc1, 0xc2, 0xc3],
    };
    assert_eq!(only_frame(&bytes), Frame::Retry(retry));
    assert_eq!(
        write(Header::handshake(0), |w| w.retry(retry).unwrap()),
        bytes
    );
    // RETRY belongs to the handshake only.
    assert!(Datagram::parse(&with_header(SESSION, &body)).is_err());
}

#[test]
fn a_clock_offset_beyond_the_varint_is_refused_not_truncated() {
    let hello = |clock_offset_us| Hello {
        nonce: 1,
        epoch_unix_us: 0,
        timestamp_us: 0,
        clock_offset_us,
        clock_rtt_us: 1,
        token: &[],
    };
    let mut buf = [0u8; DEFAULT_MAX_DATAGRAM];
    for ok in [MAX_CLOCK_OFFSET_US, -MAX_CLOCK_OFFSET_US] {
        let mut w =
            DatagramWriter::new(&mut buf, DEFAULT_MAX_DATAGRAM, Header::handshake(0)).unwrap();
        w.hello(hello(ok)).unwrap();
        let len = w.finish();
        assert_eq!(only_frame(&buf[..len]), Frame::Hello(hello(ok)));
    }
    for too_far in [MAX_CLOCK_OFFSET_US + 1, i64::MIN, i64::MAX] {
        let mut w =
            DatagramWriter::new(&mut buf, DEFAULT_MAX_DATAGRAM, Header::handshake(0)).unwrap();
        assert!(matches!(
            w.hello(hello(too_far)),
            Err(EncodeError::VarintOverflow(_))
        ));
        assert!(w.is_empty(), "a refused frame leaves nothing behind");
    }
}

#[test]
fn data_ids_are_sent_whole() {
    // First ID 0x01_0000 (65,536) in 3 bytes: type 0x08 | (3 - 1).
    let body = [0x0a, 0x01, 0x00, 0x00, 0x05, 0x40, 0x01, 0x01, b'x'];
    let bytes = with_header(SESSION, &body);
    let d = Datagram::parse(&bytes).unwrap();
    let Some(Frame::Data(data)) = d.frames().next() else {
        panic!("no DATA frame")
    };
    assert_eq!(data.first_id(), 65_536);
}

#[test]
fn stop_and_bye() {
    let bytes = with_header(SESSION, &[0x06, 0x80, 0x00, 0x27, 0x10, 0x07, 0x05]);
    let d = Datagram::parse(&bytes).unwrap();
    let frames: Vec<_> = d.frames().collect();
    assert_eq!(
        frames,
        [
            Frame::Stop(Stop { sent: 10_000 }),
            Frame::Bye(Bye { received: 5 })
        ]
    );
}

#[test]
fn padding_runs_to_the_next_nonzero_byte() {
    let bytes = with_header(SESSION, &[0x00, 0x00, 0x00, 0x06, 0x01]);
    let d = Datagram::parse(&bytes).unwrap();
    let frames: Vec<_> = d.frames().collect();
    assert_eq!(
        frames,
        [Frame::Padding { len: 3 }, Frame::Stop(Stop { sent: 1 })]
    );
}

#[test]
fn ack_with_gaps() {
    // Largest 100, delay 25, 2 more ranges; first range 4 → 96..=100;
    // gap 1, len 2 → 91..=93; gap 0, len 0 → 89..=89.
    let bytes = with_header(
        SESSION,
        &[0x02, 0x40, 0x64, 0x19, 0x02, 0x04, 0x01, 0x02, 0x00, 0x00],
    );
    let Frame::Ack(ack) = only_frame(&bytes) else {
        panic!("not an ACK")
    };
    assert_eq!(ack.largest(), 100);
    assert_eq!(ack.delay_us(), 25);
    assert!(!ack.is_truncated());
    assert_eq!(
        ack.ranges().collect::<Vec<_>>(),
        [96..=100, 91..=93, 89..=89]
    );

    let written = write(Header::session(9), |w| {
        w.ack([96..=100, 91..=93, 89..=89], 25).unwrap();
    });
    assert_eq!(written, bytes);
}

#[test]
fn ack_errors() {
    // First range below zero.
    let bytes = with_header(SESSION, &[0x02, 0x05, 0x00, 0x00, 0x06]);
    assert_eq!(Datagram::parse(&bytes), Err(DecodeError::AckRangeUnderflow));
    // A later range below zero.
    let bytes = with_header(SESSION, &[0x02, 0x05, 0x00, 0x01, 0x00, 0x04, 0x00]);
    assert_eq!(Datagram::parse(&bytes), Err(DecodeError::AckRangeUnderflow));
    // A range count the datagram cannot hold.
    let bytes = with_header(SESSION, &[0x02, 0x05, 0x00, 0x3f, 0x00, 0x00, 0x00]);
    assert_eq!(
        Datagram::parse(&bytes),
        Err(DecodeError::TooManyRanges { count: 64 })
    );
    // Ranges that overlap or touch cannot be encoded.
    let mut buf = [0u8; 400];
    let mut w = DatagramWriter::new(&mut buf, 400, Header::session(1)).unwrap();
    assert_eq!(w.ack([5..=9, 3..=4], 0), Err(EncodeError::BadAckRanges));
    assert_eq!(w.ack([5..=9, 7..=8], 0), Err(EncodeError::BadAckRanges));
    assert!(w.is_empty(), "a failed ACK writes nothing");
}

#[test]
fn ack_that_does_not_fit_keeps_the_newest_ranges() {
    let ranges: Vec<_> = (0..1000u64).rev().map(|i| i * 10..=i * 10 + 5).collect();
    let bytes = write(Header::session(1), |w| {
        let summary = w.ack(ranges.iter().cloned(), 0).unwrap();
        assert!(summary.truncated);
        assert!(summary.ranges < 1000);
    });
    assert!(bytes.len() <= DEFAULT_MAX_DATAGRAM);
    assert_eq!(bytes[8], frame_type::ACK_TRUNCATED);
    let Frame::Ack(ack) = only_frame(&bytes) else {
        panic!("not an ACK")
    };
    assert!(ack.is_truncated());
    let decoded: Vec<_> = ack.ranges().collect();
    assert_eq!(decoded[..], ranges[..decoded.len()]);
}

#[test]
fn data_frame_with_two_messages() {
    // DATA, 1-byte first ID 5, base timestamp 1000 µs, count 2 (2-byte form);
    // message 5: "hi"; message 7 (gap 1), timestamp +3 (zigzag 6): "yo!".
    let body = [
        0x08, 0x05, 0x43, 0xe8, 0x40, 0x02, 0x02, b'h', b'i', 0x01, 0x06, 0x03, b'y', b'o', b'!',
    ];
    let bytes = with_header(SESSION, &body);
    let Frame::Data(data) = only_frame(&bytes) else {
        panic!("not DATA")
    };
    assert_eq!(data.len(), 2);
    let messages: Vec<_> = data.messages().collect();
    assert_eq!(
        messages,
        [
            Message {
                id: 5,
                timestamp_us: 1000,
                payload: b"hi"
            },
            Message {
                id: 7,
                timestamp_us: 1003,
                payload: b"yo!"
            },
        ]
    );
    let written = write(Header::session(9), |w| {
        let mut d = w.data(messages[0]).unwrap();
        d.push(messages[1]).unwrap();
    });
    assert_eq!(written, bytes);
}

#[test]
fn data_errors() {
    // Count 0.
    let bytes = with_header(SESSION, &[0x08, 0x00, 0x00, 0x00]);
    assert_eq!(
        Datagram::parse(&bytes),
        Err(DecodeError::BadMessageCount { count: 0 })
    );
    // A payload longer than the datagram.
    let bytes = with_header(SESSION, &[0x08, 0x00, 0x00, 0x01, 0x05, b'a']);
    assert_eq!(
        Datagram::parse(&bytes),
        Err(DecodeError::LengthBeyondDatagram {
            length: 5,
            remaining: 1
        })
    );
    // An ID gap that runs past 2^62 - 1.
    let bytes = with_header(
        SESSION,
        &[
            0x08, 0x00, 0x00, 0x02, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00,
            0x00,
        ],
    );
    assert_eq!(
        Datagram::parse(&bytes),
        Err(DecodeError::VarintOverflow("message id"))
    );
    // IDs must increase within a frame; a failed push writes nothing.
    let mut buf = [0u8; 400];
    let mut w = DatagramWriter::new(&mut buf, 400, Header::session(1)).unwrap();
    let first = Message {
        id: 3,
        timestamp_us: 0,
        payload: b"",
    };
    let mut d = w.data(first).unwrap();
    assert_eq!(
        d.push(first),
        Err(EncodeError::IdNotIncreasing { previous: 3, id: 3 })
    );
    assert_eq!(d.count(), 1);
}

#[test]
fn data_in_a_handshake_packet_is_refused() {
    let bytes = with_header(HANDSHAKE, &[0x08, 0x00, 0x00, 0x01, 0x00]);
    assert_eq!(
        Datagram::parse(&bytes),
        Err(DecodeError::FrameNotAllowed {
            frame_type: 0x08,
            kind: "handshake"
        })
    );
    let bytes = with_header(SESSION, &[0x04]);
    assert_eq!(
        Datagram::parse(&bytes),
        Err(DecodeError::FrameNotAllowed {
            frame_type: 0x04,
            kind: "session"
        })
    );
}

#[test]
fn unknown_frame_types() {
    let bytes = with_header(SESSION, &[0x20]);
    assert_eq!(
        Datagram::parse(&bytes),
        Err(DecodeError::UnknownFrameType(0x20))
    );
    // Extension frames carry a length and are handed up to be skipped.
    let bytes = with_header(SESSION, &[0x41, 0x02, 0xde, 0xad, 0x01, 0x00]);
    let d = Datagram::parse(&bytes).unwrap();
    let frames: Vec<_> = d.frames().collect();
    assert_eq!(
        frames,
        [
            Frame::Extension {
                frame_type: 0x41,
                body: &[0xde, 0xad]
            },
            Frame::Heartbeat(Heartbeat { timestamp_us: 0 })
        ]
    );
}

#[test]
fn writer_respects_the_maximum_size() {
    let mut buf = [0u8; 2000];
    assert_eq!(
        DatagramWriter::new(&mut buf, 100, Header::session(1)).err(),
        Some(EncodeError::DatagramSizeTooSmall(100))
    );
    let mut w = DatagramWriter::new(&mut buf, 300, Header::session(1)).unwrap();
    let payload = [b'x'; 100];
    let mut d = w
        .data(Message {
            id: 0,
            timestamp_us: 0,
            payload: &payload,
        })
        .unwrap();
    d.push(Message {
        id: 1,
        timestamp_us: 0,
        payload: &payload,
    })
    .unwrap();
    let full = d.push(Message {
        id: 2,
        timestamp_us: 0,
        payload: &payload,
    });
    assert!(
        matches!(full, Err(EncodeError::BufferFull { .. })),
        "{full:?}"
    );
    assert_eq!(d.count(), 2);
    assert!(w.finish() <= 300);
}
