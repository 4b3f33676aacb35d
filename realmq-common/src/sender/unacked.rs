//! The IDs written and not yet resolved, ascending: a `Vec` with a moving front.
//!
//! ACKs mostly acknowledge the oldest IDs. Removing them from the front of a plain `Vec`
//! shifted every ID still in flight, up to the whole window, once per ACK; here the front
//! moves instead, and the IDs are moved down only when the end of the allocation is reached
//! (each ID at most once per pass through it). The allocation is made once, for the window.

use std::ops::{Index, Range};

/// Ascending message IDs: those in flight or queued for a resend.
#[derive(Debug)]
pub(super) struct Unacked {
    /// The IDs are `ids[front..]`.
    ids: Vec<u64>,
    front: usize,
}

impl Unacked {
    /// Room for `capacity` IDs, allocated now; never more are held at once.
    pub(super) fn with_capacity(capacity: usize) -> Self {
        Self {
            ids: Vec::with_capacity(capacity),
            front: 0,
        }
    }

    /// The IDs.
    pub(super) fn as_slice(&self) -> &[u64] {
        &self.ids[self.front..]
    }

    pub(super) fn len(&self) -> usize {
        self.ids.len() - self.front
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `ids`, all above the last one. Together with those held they must fit the
    /// capacity (the window guarantees it), so this never allocates.
    pub(super) fn extend(&mut self, ids: Range<u64>) {
        let added = (ids.end - ids.start) as usize;
        if self.ids.len() + added > self.ids.capacity() {
            self.compact();
        }
        debug_assert!(self.ids.len() + added <= self.ids.capacity());
        self.ids.extend(ids);
    }

    /// Keeps only the IDs `keep` approves.
    pub(super) fn retain(&mut self, keep: impl FnMut(&u64) -> bool) {
        self.compact();
        self.ids.retain(keep);
    }

    /// Moves the IDs down to the start of the allocation.
    fn compact(&mut self) {
        self.ids.drain(..self.front);
        self.front = 0;
    }

    /// Removes the acknowledged IDs among positions `span` (of [`as_slice`](Self::as_slice)).
    /// `all_acked` says that every one of them is (the common case: nothing to check);
    /// otherwise `acked` tells. The shorter side of what stays is moved: an acknowledged
    /// oldest run just moves the front.
    pub(super) fn remove_acked(
        &mut self,
        span: Range<usize>,
        all_acked: bool,
        mut acked: impl FnMut(u64) -> bool,
    ) {
        let ids = &mut self.ids[self.front..];
        let mut kept = span.start;
        if !all_acked {
            for i in span.clone() {
                let id = ids[i];
                if !acked(id) {
                    ids[kept] = id;
                    kept += 1;
                }
            }
        }
        let gap = span.end - kept;
        let len = ids.len();
        if kept <= len - span.end {
            // Fewer IDs below the gap than above it: move those up.
            ids.copy_within(0..kept, gap);
            self.front += gap;
        } else {
            ids.copy_within(span.end..len, kept);
            self.ids.truncate(self.front + len - gap);
        }
    }
}

impl Index<usize> for Unacked {
    type Output = u64;

    fn index(&self, i: usize) -> &u64 {
        &self.as_slice()[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_vec_under_random_use_and_never_reallocates() {
        let mut rng = fastrand::Rng::with_seed(3);
        let capacity = 64;
        let mut ids = Unacked::with_capacity(capacity);
        let allocation = ids.ids.as_ptr();
        let mut model: Vec<u64> = Vec::new();
        let mut next = 0u64;
        for _ in 0..20_000 {
            match rng.u8(0..3) {
                0 => {
                    let n = rng.u64(0..=(capacity - model.len()) as u64);
                    ids.extend(next..next + n);
                    model.extend(next..next + n);
                    next += n;
                }
                1 if !model.is_empty() => {
                    let start = rng.usize(0..model.len());
                    let end = rng.usize(start..=model.len());
                    let acked: Vec<bool> = (0..model.len()).map(|_| rng.bool()).collect();
                    let all = rng.bool();
                    let is_acked = |id: u64| {
                        let i = model.iter().position(|&m| m == id).unwrap();
                        all || acked[i]
                    };
                    let expected: Vec<u64> = model
                        .iter()
                        .enumerate()
                        .filter(|&(i, &id)| !(start..end).contains(&i) || !is_acked(id))
                        .map(|(_, &id)| id)
                        .collect();
                    ids.remove_acked(start..end, all, is_acked);
                    model = expected;
                }
                _ => {
                    let odd = rng.bool();
                    ids.retain(|id| id % 2 == u64::from(odd));
                    model.retain(|id| id % 2 == u64::from(odd));
                }
            }
            assert_eq!(ids.as_slice(), &model[..]);
            assert_eq!(ids.len(), model.len());
            assert_eq!(ids.ids.as_ptr(), allocation, "reallocated");
        }
    }
}
