//! Byte cursors: a checked reader over a received datagram and a bounded writer into a
//! caller's buffer. Neither allocates.

use crate::error::{DecodeError, EncodeError};
use crate::varint;

/// Reads fields from the front of a byte slice; every read is bounds-checked.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len()
    }

    /// What is left, without consuming it.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self.bytes.split_first().ok_or(DecodeError::Truncated)?;
        self.bytes = rest;
        Ok(b)
    }

    /// `len` bytes; a shortfall is [`DecodeError::Truncated`].
    pub(crate) fn fixed(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < len {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    /// A big-endian unsigned integer of `len` bytes (at most 8).
    pub(crate) fn uint(&mut self, len: usize) -> Result<u64, DecodeError> {
        Ok(self
            .fixed(len)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    pub(crate) fn varint(&mut self) -> Result<u64, DecodeError> {
        let (value, len) = varint::decode(self.bytes)?;
        self.bytes = &self.bytes[len..];
        Ok(value)
    }

    /// A length-prefixed field: `length` bytes, checked against what is left.
    pub(crate) fn bytes(&mut self, length: u64) -> Result<&'a [u8], DecodeError> {
        let remaining = self.bytes.len();
        match usize::try_from(length) {
            Ok(len) if len <= remaining => self.fixed(len),
            _ => Err(DecodeError::LengthBeyondDatagram { length, remaining }),
        }
    }
}

/// Writes fields into a caller's buffer, never past its end.
#[derive(Debug)]
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Fails unless `needed` more bytes fit.
    pub(crate) fn reserve(&self, needed: usize) -> Result<(), EncodeError> {
        if needed > self.remaining() {
            return Err(EncodeError::BufferFull {
                needed,
                remaining: self.remaining(),
            });
        }
        Ok(())
    }

    pub(crate) fn u8(&mut self, value: u8) -> Result<(), EncodeError> {
        self.slice(&[value])
    }

    #[inline(always)]
    pub(crate) fn slice(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.reserve(bytes.len())?;
        self.buf[self.pos..self.pos + bytes.len()].copy_from_slice(bytes);
        self.pos += bytes.len();
        Ok(())
    }

    /// The low `len` bytes of `value`, big-endian.
    pub(crate) fn uint(&mut self, value: u64, len: usize) -> Result<(), EncodeError> {
        self.slice(&value.to_be_bytes()[8 - len..])
    }

    pub(crate) fn varint(&mut self, value: u64) -> Result<(), EncodeError> {
        let len = varint::encode(value, &mut self.buf[self.pos..])?;
        self.pos += len;
        Ok(())
    }

    /// A varint of exactly `len` bytes at an earlier position `at` (patching a reserved field).
    pub(crate) fn patch_varint(&mut self, at: usize, value: u64, len: usize) {
        varint::write_with_len(value, len, &mut self.buf[at..at + len]);
    }

    /// ORs `bits` into the byte already written at `at`.
    pub(crate) fn or_byte(&mut self, at: usize, bits: u8) {
        self.buf[at] |= bits;
    }

    /// Forgets everything written after `len` bytes.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.pos = self.pos.min(len);
    }

    /// Fills `len` bytes with zeros.
    pub(crate) fn zeros(&mut self, len: usize) -> Result<(), EncodeError> {
        self.reserve(len)?;
        self.buf[self.pos..self.pos + len].fill(0);
        self.pos += len;
        Ok(())
    }
}
