//! Whole datagrams: a validating parser and a bounded writer.

use core::ops::RangeInclusive;

use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::frame::{
    ack, read_padding, AckSummary, Bye, DataFrame, DataWriter, Frame, Heartbeat, Hello, Message,
    MessageIndex, Retry, Stop, StoredRun, Welcome,
};
use crate::header::{Flags, Header, PacketKind, HEADER_LEN};

/// The default largest datagram: 1472 bytes of UDP payload, what fits an Ethernet MTU of
/// 1500 after the IPv4 and UDP headers.
pub const DEFAULT_MAX_DATAGRAM: usize = 1472;
/// The smallest maximum datagram size a writer accepts: room for a header and a HELLO with
/// a full token.
pub const MIN_DATAGRAM_SIZE: usize = 300;
/// The largest UDP payload over IPv4.
pub const MAX_DATAGRAM_SIZE: usize = 65_507;

/// A datagram whose header and frames have all been checked.
///
/// [`Datagram::parse`] walks every frame once, so a datagram is accepted or rejected whole;
/// [`Datagram::frames`] then yields the frames without further errors. Nothing is copied
/// or allocated: frames borrow from the received bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// The decoded header.
    pub header: Header,
    frames: &'a [u8],
    /// The first DATA frame as `parse` found it, so that `frames` hands it out without
    /// walking its messages a second time (a datagram of small messages is nearly all one
    /// DATA frame): the frame, and the bytes left before and after it.
    first_data: Option<FoundData<'a>>,
}

/// A DATA frame `parse` validated, and where it lies (as bytes left to read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FoundData<'a> {
    left_before: usize,
    left_after: usize,
    frame: DataFrame<'a>,
}

impl<'a> Datagram<'a> {
    /// Decodes and validates a whole datagram.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let header = Header::read(&mut r)?;
        let frames = r.rest();
        let mut first_data = None;
        while !r.is_empty() {
            if read_padding(&mut r).is_some() {
                continue;
            }
            let left_before = r.remaining();
            if let Frame::Data(frame) = Frame::read(&mut r, header.kind)? {
                first_data.get_or_insert(FoundData {
                    left_before,
                    left_after: r.remaining(),
                    frame,
                });
            }
        }
        Ok(Self {
            header,
            frames,
            first_data,
        })
    }

    /// [`Datagram::parse`], keeping the messages of the first DATA frame in `index` as it
    /// decodes them, so that [`DataFrame::messages`] hands them out without decoding them a
    /// second time. The datagram is still validated whole before any frame is handed out.
    pub fn parse_indexed(
        bytes: &'a [u8],
        index: &'a mut MessageIndex,
    ) -> Result<Self, DecodeError> {
        index.entries.clear();
        let mut r = Reader::new(bytes);
        let header = Header::read(&mut r)?;
        let frames = r.rest();
        let mut first_data = None;
        while !r.is_empty() {
            if read_padding(&mut r).is_some() {
                continue;
            }
            let left_before = r.remaining();
            let sink = first_data.is_none().then_some(&mut index.entries);
            if let Frame::Data(frame) = Frame::read_with(&mut r, header.kind, sink)? {
                first_data.get_or_insert(FoundData {
                    left_before,
                    left_after: r.remaining(),
                    frame,
                });
            }
        }
        let index: &'a MessageIndex = index;
        if let Some(found) = &mut first_data {
            // All of the frame's messages, or none when they did not fit.
            if index.entries.len() as u64 == found.frame.len() {
                found.frame = found.frame.with_index(&index.entries);
            }
        }
        Ok(Self {
            header,
            frames,
            first_data,
        })
    }

    /// The frames, in order.
    pub fn frames(&self) -> Frames<'a> {
        Frames {
            reader: Reader::new(self.frames),
            kind: self.header.kind,
            first_data: self.first_data,
        }
    }
}

/// Iterator over a validated datagram's frames.
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    reader: Reader<'a>,
    kind: PacketKind,
    first_data: Option<FoundData<'a>>,
}

impl<'a> Iterator for Frames<'a> {
    type Item = Frame<'a>;

    fn next(&mut self) -> Option<Frame<'a>> {
        if self.reader.is_empty() {
            return None;
        }
        if let Some(len) = read_padding(&mut self.reader) {
            return Some(Frame::Padding { len });
        }
        if let Some(found) = self.first_data {
            if self.reader.remaining() == found.left_before {
                // Decoded by `parse` already: skip its bytes.
                self.reader
                    .fixed(found.left_before - found.left_after)
                    .ok()?;
                return Some(Frame::Data(found.frame));
            }
        }
        // Validated by `Datagram::parse`; a failure here only ends the iteration.
        Frame::read(&mut self.reader, self.kind).ok()
    }
}

/// Writes one datagram into a caller's buffer, never beyond the maximum datagram size.
///
/// The header is written on creation; frames follow in the order their methods are called.
/// A method that fails with [`EncodeError::BufferFull`] writes nothing, so the caller can
/// send what is there and continue in a new datagram.
#[derive(Debug)]
pub struct DatagramWriter<'a> {
    w: Writer<'a>,
}

impl<'a> DatagramWriter<'a> {
    /// Starts a datagram of at most `max_size` bytes (and at most `buf.len()`).
    pub fn new(buf: &'a mut [u8], max_size: usize, header: Header) -> Result<Self, EncodeError> {
        if max_size < MIN_DATAGRAM_SIZE {
            return Err(EncodeError::DatagramSizeTooSmall(max_size));
        }
        let limit = max_size.min(buf.len());
        let mut w = Writer::new(&mut buf[..limit]);
        header.write(&mut w)?;
        Ok(Self { w })
    }

    /// Bytes written so far, header included.
    pub fn len(&self) -> usize {
        self.w.len()
    }

    /// Whether no frame has been written yet.
    pub fn is_empty(&self) -> bool {
        self.w.len() == HEADER_LEN
    }

    /// Bytes left before the maximum datagram size.
    pub fn remaining(&self) -> usize {
        self.w.remaining()
    }

    /// Appends a HEARTBEAT frame.
    pub fn heartbeat(&mut self, frame: Heartbeat) -> Result<(), EncodeError> {
        self.atomically(|w| frame.write(w))
    }

    /// Appends a HELLO frame.
    pub fn hello(&mut self, frame: Hello<'_>) -> Result<(), EncodeError> {
        self.atomically(|w| frame.write(w))
    }

    /// Appends a RETRY frame.
    pub fn retry(&mut self, frame: Retry<'_>) -> Result<(), EncodeError> {
        self.atomically(|w| frame.write(w))
    }

    /// Appends a WELCOME frame.
    pub fn welcome(&mut self, frame: Welcome) -> Result<(), EncodeError> {
        self.atomically(|w| frame.write(w))
    }

    /// Appends a STOP frame.
    pub fn stop(&mut self, frame: Stop) -> Result<(), EncodeError> {
        self.atomically(|w| frame.write(w))
    }

    /// Appends a BYE frame.
    pub fn bye(&mut self, frame: Bye) -> Result<(), EncodeError> {
        self.atomically(|w| frame.write(w))
    }

    /// Pads the datagram with zero bytes (PADDING) up to `total` bytes, or to the maximum
    /// size if that is smaller. Does nothing if it is already that long.
    pub fn pad_to(&mut self, total: usize) {
        let pad = total.saturating_sub(self.len()).min(self.remaining());
        // Cannot fail: `pad` fits what is left.
        let _ = self.w.zeros(pad);
    }

    /// Appends an ACK frame for `ranges`: newest (highest) first, disjoint, and separated
    /// by at least one missing ID. As many ranges as fit are written, newest first; if
    /// older ones are left out, the frame is marked truncated.
    pub fn ack<I>(&mut self, ranges: I, delay_us: u64) -> Result<AckSummary, EncodeError>
    where
        I: IntoIterator<Item = RangeInclusive<u64>>,
        I::IntoIter: Clone,
    {
        ack::write(&mut self.w, ranges, delay_us)
    }

    /// Starts a DATA frame with its first message; push more onto the returned writer.
    pub fn data(&mut self, first: Message<'_>) -> Result<DataWriter<'_, 'a>, EncodeError> {
        DataWriter::begin(&mut self.w, first)
    }

    /// Starts a DATA frame with a run of consecutive messages in their stored form, in one
    /// copy; push more onto the returned writer. All or nothing.
    pub fn data_run(&mut self, run: StoredRun<'_>) -> Result<DataWriter<'_, 'a>, EncodeError> {
        DataWriter::begin_run(&mut self.w, run)
    }

    /// Sets `flags` in the header already written (e.g. `ACK_NOW`, once the sender knows the
    /// datagram ends a burst).
    pub fn add_flags(&mut self, flags: Flags) {
        // The header, written first, holds the kind and flags in its fourth byte.
        self.w
            .or_byte(crate::header::field::KIND_FLAGS, flags.bits());
    }

    /// The datagram's length in bytes.
    pub fn finish(self) -> usize {
        self.w.len()
    }

    /// Runs a frame writer that checks its room as it goes, undoing a partial frame.
    fn atomically(
        &mut self,
        write: impl FnOnce(&mut Writer<'a>) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        let mark = self.w.len();
        let result = write(&mut self.w);
        if result.is_err() {
            self.w.truncate(mark);
        }
        result
    }
}
