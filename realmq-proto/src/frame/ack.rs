//! ACK frames: which message IDs arrived, as ranges (RFC 9000 §19.3).
//!
//! ```text
//! type (0x02, or 0x03 when older ranges were left out)
//! largest acknowledged          varint
//! ACK delay, microseconds       varint
//! additional range count        varint
//! first range                   varint   IDs [largest - first range, largest]
//! then, per additional range:
//!   gap                         varint   missing IDs below the previous range, minus one
//!   range length                varint   IDs in this range, minus one
//! ```
//!
//! With `smallest` the lowest ID of the previous range, the next range ends at
//! `smallest - gap - 2` and starts `range length` below that, exactly as in QUIC.

use core::ops::RangeInclusive;

use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::frame::frame_type;
use crate::varint::len_of as vlen;

/// A decoded ACK frame. Its ranges were checked when it was parsed; iterate them with
/// [`AckFrame::ranges`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckFrame<'a> {
    largest: u64,
    delay_us: u64,
    truncated: bool,
    first_range: u64,
    additional: u64,
    /// The gap/length pairs, already validated.
    pairs: &'a [u8],
}

/// What [`crate::DatagramWriter::ack`] managed to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckSummary {
    /// How many ranges the frame holds.
    pub ranges: usize,
    /// Whether older ranges had to be left out.
    pub truncated: bool,
    /// The frame's size in bytes.
    pub bytes: usize,
}

impl<'a> AckFrame<'a> {
    /// The largest acknowledged message ID.
    pub fn largest(&self) -> u64 {
        self.largest
    }

    /// How long the receiver held the ACK back, in microseconds.
    pub fn delay_us(&self) -> u64 {
        self.delay_us
    }

    /// Whether the receiver left out older ranges that did not fit.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// The number of ranges, at least 1.
    pub fn range_count(&self) -> u64 {
        self.additional + 1
    }

    /// The acknowledged ranges, newest (highest) first.
    pub fn ranges(&self) -> AckRanges<'a> {
        AckRanges {
            next: Some(self.largest - self.first_range..=self.largest),
            reader: Reader::new(self.pairs),
        }
    }

    pub(crate) fn read(r: &mut Reader<'a>, truncated: bool) -> Result<Self, DecodeError> {
        let largest = r.varint()?;
        let delay_us = r.varint()?;
        let additional = r.varint()?;
        let first_range = r.varint()?;
        if first_range > largest {
            return Err(DecodeError::AckRangeUnderflow);
        }
        // Each additional range takes at least two bytes: bound the count before walking.
        if additional > (r.remaining() / 2) as u64 {
            return Err(DecodeError::TooManyRanges {
                count: additional + 1,
            });
        }
        let start = r.rest();
        let mut smallest = largest - first_range;
        for _ in 0..additional {
            let gap = r.varint()?;
            let len = r.varint()?;
            smallest = next_range(smallest, gap, len)
                .ok_or(DecodeError::AckRangeUnderflow)?
                .0;
        }
        let used = start.len() - r.remaining();
        Ok(Self {
            largest,
            delay_us,
            truncated,
            first_range,
            additional,
            pairs: &start[..used],
        })
    }
}

/// From the previous range's smallest ID and a gap/length pair: the next range's
/// `(smallest, largest)`, or `None` if it would reach below 0.
fn next_range(prev_smallest: u64, gap: u64, len: u64) -> Option<(u64, u64)> {
    let largest = prev_smallest.checked_sub(gap)?.checked_sub(2)?;
    Some((largest.checked_sub(len)?, largest))
}

/// Iterator over an ACK frame's ranges, newest first.
#[derive(Debug, Clone)]
pub struct AckRanges<'a> {
    next: Option<RangeInclusive<u64>>,
    reader: Reader<'a>,
}

impl Iterator for AckRanges<'_> {
    type Item = RangeInclusive<u64>;

    fn next(&mut self) -> Option<Self::Item> {
        let current = self.next.take()?;
        if !self.reader.is_empty() {
            // Validated at parse time; a failure here only ends the iteration.
            let gap = self.reader.varint().ok()?;
            let len = self.reader.varint().ok()?;
            let (lo, hi) = next_range(*current.start(), gap, len)?;
            self.next = Some(lo..=hi);
        }
        Some(current)
    }
}

/// The bytes of an ACK frame's head: its type, the largest acknowledged ID, `delay_us` and
/// the `first` range (newest). The rest of the frame is the range count
/// ([`varint_len`](crate::varint_len) of the number of additional ranges) and one
/// [`ack_range_len`] per additional range.
///
/// Fails as the writer would: [`EncodeError::BadAckRanges`] for an empty range,
/// [`EncodeError::VarintOverflow`] for a value of 2^62 or more.
pub fn ack_head_len(first: &RangeInclusive<u64>, delay_us: u64) -> Result<usize, EncodeError> {
    let (lo, largest) = (*first.start(), *first.end());
    if lo > largest {
        return Err(EncodeError::BadAckRanges);
    }
    Ok(1 + vlen(largest)? + vlen(delay_us)? + vlen(largest - lo)?)
}

/// The bytes one additional range (its gap/length pair) adds to an ACK frame after a range
/// whose smallest ID is `prev_smallest`.
///
/// Fails as the writer would: [`EncodeError::BadAckRanges`] unless `range` is non-empty and
/// ends at least two below `prev_smallest` (one missing ID between the ranges).
pub fn ack_range_len(
    prev_smallest: u64,
    range: &RangeInclusive<u64>,
) -> Result<usize, EncodeError> {
    let (gap, len) = pair_for(prev_smallest, range)?;
    Ok(vlen(gap)? + vlen(len)?)
}

/// The bytes of an ACK frame listing every one of `ranges` (newest first, disjoint, separated
/// by at least one missing ID) with `delay_us`: what [`crate::DatagramWriter::ack`] writes
/// when the frame fits, as its [`AckSummary::bytes`].
///
/// Fails as the writer would: [`EncodeError::BadAckRanges`] for no range or misordered ones,
/// [`EncodeError::VarintOverflow`] for a value of 2^62 or more.
pub fn ack_encoded_len<I>(ranges: I, delay_us: u64) -> Result<usize, EncodeError>
where
    I: IntoIterator<Item = RangeInclusive<u64>>,
{
    let mut iter = ranges.into_iter();
    let first = iter.next().ok_or(EncodeError::BadAckRanges)?;
    let mut size = ack_head_len(&first, delay_us)?;
    let mut smallest = *first.start();
    let mut additional = 0u64;
    for range in iter {
        size += ack_range_len(smallest, &range)?;
        smallest = *range.start();
        additional += 1;
    }
    Ok(size + vlen(additional)?)
}

/// The bytes for one additional range following a range whose smallest ID is `prev_smallest`.
fn pair_for(prev_smallest: u64, range: &RangeInclusive<u64>) -> Result<(u64, u64), EncodeError> {
    let (lo, hi) = (*range.start(), *range.end());
    if lo > hi || hi.checked_add(2).is_none_or(|h| h > prev_smallest) {
        return Err(EncodeError::BadAckRanges);
    }
    Ok((prev_smallest - hi - 2, hi - lo))
}

/// Writes an ACK frame holding as many of `ranges` (newest first, disjoint, separated by at
/// least one missing ID) as fit; the oldest are left out and the frame marked truncated.
pub(crate) fn write<I>(
    w: &mut Writer<'_>,
    ranges: I,
    delay_us: u64,
) -> Result<AckSummary, EncodeError>
where
    I: IntoIterator<Item = RangeInclusive<u64>>,
    I::IntoIter: Clone,
{
    let mut iter = ranges.into_iter();
    let first = iter.next().ok_or(EncodeError::BadAckRanges)?;
    let fixed = ack_head_len(&first, delay_us)?;
    let (first_lo, largest) = (*first.start(), *first.end());

    // First pass: how many additional ranges fit, validating them on the way.
    let budget = w.remaining();
    let mut fits = 0u64;
    let mut pairs_len = 0usize;
    let mut total = 0u64;
    let mut smallest = first_lo;
    for range in iter.clone() {
        let cost = ack_range_len(smallest, &range)?;
        smallest = *range.start();
        total += 1;
        if fixed + vlen(fits + 1)? + pairs_len + cost <= budget && fits + 1 == total {
            fits += 1;
            pairs_len += cost;
        }
    }
    let size = fixed + vlen(fits)? + pairs_len;
    w.reserve(size)?;
    let truncated = fits < total;

    w.u8(if truncated {
        frame_type::ACK_TRUNCATED
    } else {
        frame_type::ACK
    })?;
    w.varint(largest)?;
    w.varint(delay_us)?;
    w.varint(fits)?;
    w.varint(largest - first_lo)?;
    let mut smallest = first_lo;
    for range in iter.take(fits as usize) {
        let (gap, len) = pair_for(smallest, &range)?;
        smallest = *range.start();
        w.varint(gap)?;
        w.varint(len)?;
    }
    Ok(AckSummary {
        ranges: fits as usize + 1,
        truncated,
        bytes: size,
    })
}
