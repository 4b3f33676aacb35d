//! The raw mode's datagrams (`--protocol raw`): the same messages, batching and system calls
//! as RealMQ, but no protocol — no sessions, IDs, acknowledgements or resends. It is the
//! ceiling a protocol over UDP can reach on a machine, measured by the same binaries.
//!
//! ```text
//! DATA   'R' 'W' 0x00  count u16 BE  sent_unix_us u64 BE  count × (len u16 BE, payload)
//! END    'R' 'W' 0x01  sent u64 BE                        the client is done (repeated)
//! COUNT  'R' 'W' 0x02  received u64 BE                    the server's answer to END
//! ```

use realmq_proto::MessageRun;

/// Bytes of a DATA datagram's header.
pub const DATA_HEADER: usize = 2 + 1 + 2 + 8;
/// Bytes each message adds besides its payload.
pub const MESSAGE_OVERHEAD: usize = 2;

/// What a raw datagram says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawDatagram {
    /// `count` messages sent at `sent_unix_us`.
    Data {
        /// Messages in the datagram.
        count: u16,
        /// The sender's wall clock.
        sent_unix_us: u64,
    },
    /// The client sent `sent` messages and is done.
    End {
        /// Messages the client sent.
        sent: u64,
    },
    /// The server received `received` messages from this client.
    Count {
        /// Messages the server received.
        received: u64,
    },
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

impl RawDatagram {
    /// Parses a datagram; `None` for anything else (the count of a DATA datagram is checked
    /// against its messages).
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        if bytes.get(..2)? != b"RW" {
            return None;
        }
        match *bytes.get(2)? {
            0 => {
                let count = u16::from_be_bytes(bytes.get(3..5)?.try_into().ok()?);
                let sent_unix_us = u64_at(bytes, 5)?;
                let mut at = DATA_HEADER;
                for _ in 0..count {
                    let len = u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?);
                    at += MESSAGE_OVERHEAD + usize::from(len);
                }
                (at == bytes.len()).then_some(Self::Data {
                    count,
                    sent_unix_us,
                })
            }
            1 => Some(Self::End {
                sent: u64_at(bytes, 3)?,
            }),
            2 => Some(Self::Count {
                received: u64_at(bytes, 3)?,
            }),
            _ => None,
        }
    }

    /// Writes an END or COUNT datagram into `buf`; returns its length.
    pub fn write_control(self, buf: &mut [u8; 11]) -> usize {
        let (kind, value) = match self {
            Self::End { sent } => (1, sent),
            Self::Count { received } => (2, received),
            Self::Data { .. } => (0, 0),
        };
        buf[..2].copy_from_slice(b"RW");
        buf[2] = kind;
        buf[3..11].copy_from_slice(&value.to_be_bytes());
        11
    }
}

/// How many messages of `size` bytes fill a DATA datagram of at most `max` bytes.
pub fn messages_per_datagram(size: usize, max: usize) -> usize {
    (max.saturating_sub(DATA_HEADER) / (size + MESSAGE_OVERHEAD)).clamp(1, usize::from(u16::MAX))
}

/// Writes a DATA datagram of `count` copies of `payload` stamped `sent_unix_us` into `buf`,
/// each with its own payload stamp (`stamper`, made from `payload`: session 0, IDs from
/// `first_id` up — the same per-message work as the load test's other modes); returns its
/// length.
pub fn write_data(
    buf: &mut [u8],
    count: usize,
    sent_unix_us: u64,
    stamper: &crate::payload_stamp::Stamper,
    payload: &[u8],
    first_id: u64,
) -> usize {
    buf[..2].copy_from_slice(b"RW");
    buf[2] = 0;
    buf[3..5].copy_from_slice(&(count as u16).to_be_bytes());
    buf[5..13].copy_from_slice(&sent_unix_us.to_be_bytes());
    let stride = MESSAGE_OVERHEAD + payload.len();
    let end = DATA_HEADER + count * stride;
    let length = (payload.len() as u16).to_be_bytes();
    stamper.fill_slots(
        &mut buf[DATA_HEADER..end],
        stride,
        &length,
        payload,
        (0, first_id),
    );
    end
}

/// The payloads of a DATA datagram that [`RawDatagram::parse`] accepted, in order.
pub fn payloads(datagram: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = DATA_HEADER;
    std::iter::from_fn(move || {
        let len = usize::from(u16::from_be_bytes(
            datagram.get(at..at + 2)?.try_into().ok()?,
        ));
        let payload = datagram.get(at + 2..at + 2 + len)?;
        at += MESSAGE_OVERHEAD + len;
        Some(payload)
    })
}

/// The payloads of a DATA datagram that [`RawDatagram::parse`] accepted as one run counted
/// from `first_id`, when they are all of one length (a load client's are); `None` otherwise.
pub fn payload_run(datagram: &[u8], first_id: u64) -> Option<MessageRun<'_>> {
    let count = usize::from(u16::from_be_bytes(datagram.get(3..5)?.try_into().ok()?));
    let slots = datagram.get(DATA_HEADER..)?;
    let len_field: [u8; 2] = slots.get(..2)?.try_into().ok()?;
    let stride = MESSAGE_OVERHEAD + usize::from(u16::from_be_bytes(len_field));
    let alike = slots
        .chunks(stride)
        .take(count)
        .all(|m| m.starts_with(&len_field));
    let run = MessageRun::new(
        first_id,
        0,
        count,
        (stride - MESSAGE_OVERHEAD, stride),
        slots.get(MESSAGE_OVERHEAD..)?,
    )?;
    alike.then_some(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_end_and_count_round_trip_and_garbage_is_refused() {
        let mut buf = [0u8; 1472];
        let n = messages_per_datagram(64, 1472);
        assert_eq!(n, 22, "(1472 - 13) / 66");
        let payload = [7u8; 64];
        let stamper = crate::payload_stamp::Stamper::new(&payload);
        let len = write_data(&mut buf, n, 42, &stamper, &payload, 1000);
        let stamped: Vec<_> = payloads(&buf[..len])
            .map(crate::payload_stamp::check_integrity)
            .collect();
        assert_eq!(stamped.len(), n);
        assert!(stamped
            .iter()
            .all(|&c| c == crate::payload_stamp::StampCheck::Intact));
        assert_eq!(
            crate::payload_stamp::check_stamp(&buf[DATA_HEADER + 2..DATA_HEADER + 66], 0, 1000),
            crate::payload_stamp::StampCheck::Intact
        );
        assert_eq!(
            RawDatagram::parse(&buf[..len]),
            Some(RawDatagram::Data {
                count: 22,
                sent_unix_us: 42
            })
        );
        assert_eq!(RawDatagram::parse(&buf[..len - 1]), None);
        let mut c = [0u8; 11];
        let len = RawDatagram::End { sent: 9 }.write_control(&mut c);
        assert_eq!(
            RawDatagram::parse(&c[..len]),
            Some(RawDatagram::End { sent: 9 })
        );
        assert_eq!(RawDatagram::parse(b"RM\x02"), None);
        assert_eq!(RawDatagram::parse(b""), None);
    }

    #[test]
    fn a_datagram_of_equal_payloads_is_one_run_and_any_other_is_not() {
        let mut buf = [0u8; 1472];
        let payload = [7u8; 64];
        let stamper = crate::payload_stamp::Stamper::new(&payload);
        let len = write_data(&mut buf, 22, 42, &stamper, &payload, 1000);
        let run = payload_run(&buf[..len], 5).expect("one run");
        let from_run: Vec<_> = run.messages().map(|m| (m.id, m.payload)).collect();
        let each: Vec<_> = (5..).zip(payloads(&buf[..len])).collect();
        assert_eq!(from_run, each);
        // Two payloads of 3 and 2 bytes: parsed, not a run.
        let mut mixed = b"RW\x00\x00\x02".to_vec();
        mixed.extend(42u64.to_be_bytes());
        mixed.extend([0, 3, 1, 2, 3, 0, 2, 4, 5]);
        assert!(RawDatagram::parse(&mixed).is_some());
        assert_eq!(payloads(&mixed).count(), 2);
        assert_eq!(payload_run(&mixed, 0), None);
    }
}
