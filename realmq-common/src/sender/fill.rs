//! [`FillPayload`]: what writes the payloads of a batch stored in place
//! ([`Sender::send_many`](super::Sender::send_many)).

/// Writes message payloads in place: a stretch of them at a time
/// ([`fill_slots`](Self::fill_slots)), by default one [`fill`](Self::fill) call per message.
/// Any `FnMut(id, payload)` closure is one; a type of its own whose `fill` is
/// `#[inline(always)]` is inlined into the window's storing loop, which a closure called
/// there was not (the load client: 173 instructions a message instead of 192), and one that
/// overrides `fill_slots` sets up once what every message shares (173 → 143; callgrind,
/// `docs/BENCHMARKS.md`).
///
/// A closure passed straight to `send_many` needs its payload parameter's type written out,
/// as `|id, payload: &mut [u8]| …`: Rust infers closure signatures from `Fn` bounds only.
pub trait FillPayload {
    /// Writes message `id`'s payload: all of `payload`, which holds whatever bytes were
    /// there before.
    fn fill(&mut self, id: u64, payload: &mut [u8]);

    /// Writes consecutive messages from `first_id` on, stored back to back in `slots`:
    /// message `first_id + k`'s slot is `slots[k * stride..(k + 1) * stride]`, `prefix`
    /// (its framing, the same for all) and then its payload. `slots` holds a whole number of
    /// slots. By default the prefix and one [`fill`](Self::fill) a message; a type that can
    /// set up once what every message shares overrides it, and writes the prefix in the
    /// same loop.
    #[inline(always)]
    fn fill_slots(&mut self, first_id: u64, slots: &mut [u8], stride: usize, prefix: &[u8]) {
        // Empty slots (no prefix, no payload) make an empty `slots`: nothing to write.
        for (id, slot) in (first_id..).zip(slots.chunks_exact_mut(stride.max(1))) {
            let (head, payload) = slot.split_at_mut(prefix.len());
            head.copy_from_slice(prefix);
            self.fill(id, payload);
        }
    }
}

impl<F: FnMut(u64, &mut [u8])> FillPayload for F {
    #[inline]
    fn fill(&mut self, id: u64, payload: &mut [u8]) {
        self(id, payload);
    }
}
