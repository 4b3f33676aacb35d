//! Congestion control: NewReno as RFC 9002 §7 describes it, counted in message bytes.
//!
//! Without it a sender with a large window blasts the whole window at a receiver whose socket
//! buffer is smaller, the kernel drops most of it, and every resend meets the same fate: on
//! loopback with Linux's default 208 KiB buffers, 1024-byte messages took 1.2 resends each and
//! some were given up. The congestion window limits the bytes in flight; it grows with
//! acknowledged bytes and halves on loss, so the sender settles at what the path (here: the
//! receiver's socket buffer) absorbs.
//!
//! Bytes in flight are the payloads plus [`MESSAGE_OVERHEAD`] of the messages written and
//! neither acknowledged nor declared lost.

use super::sent_time::SentTime;

/// Bytes counted per message on top of its payload: the DATA framing of one message
/// (ID gap, timestamp delta, length) and a share of the datagram header.
pub(super) const MESSAGE_OVERHEAD: usize = 8;

/// The smallest congestion window, in datagrams (see `Congestion::min_window`).
const MIN_WINDOW_DATAGRAMS: usize = 32;

/// The first congestion window, in datagrams: 128 (188 KiB at the default size). RFC 9002
/// §7.2 starts Internet paths at ten; on loopback a small first window made every session
/// start with several round trips of slow start, during which the messages waiting in the
/// send window raised the 99th-percentile latency of a 1,000,000-message run from 1.3 ms to
/// 15-22 ms (1024-byte messages). 128 brought it back to 1.3 ms, and a receiver with a
/// default 208 KiB socket buffer still lost nothing.
const INITIAL_WINDOW_DATAGRAMS: usize = 128;

/// The NewReno state: window, slow-start threshold, bytes in flight, recovery period.
#[derive(Debug, Clone)]
pub(super) struct Congestion {
    window: usize,
    ssthresh: usize,
    in_flight: usize,
    /// Start of the current recovery period: losses of messages sent before it belong to the
    /// same congestion event, and their acknowledgements do not grow the window (§7.3.2).
    recovery_start: Option<SentTime>,
    max_datagram: usize,
    /// The window never grows beyond this (the send window's bytes: more cannot be in flight).
    max_window: usize,
}

impl Congestion {
    /// A controller in slow start with a window of [`INITIAL_WINDOW_DATAGRAMS`].
    pub(super) fn new(max_datagram: usize, max_window: usize) -> Self {
        let initial = INITIAL_WINDOW_DATAGRAMS * max_datagram;
        let max_window = max_window.max(initial);
        Self {
            window: initial,
            ssthresh: usize::MAX,
            in_flight: 0,
            recovery_start: None,
            max_datagram,
            max_window,
        }
    }

    /// The smallest window. RFC 9002 §7.2's kMinimumWindow is two datagrams, for the
    /// Internet; RealMQ's links are loopback and LANs whose losses are mostly random drops
    /// (or, on loopback, a full socket buffer), and a window of two datagrams would turn 50 %
    /// random loss into a stall. Thirty-two datagrams (47 KiB at the default size) keep a
    /// sender well below a default 208 KiB socket buffer while leaving it room to repair.
    fn min_window(&self) -> usize {
        MIN_WINDOW_DATAGRAMS * self.max_datagram
    }

    /// The congestion window, bytes.
    pub(super) fn window(&self) -> usize {
        self.window
    }

    /// Bytes in flight.
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Whether `bytes` more may be written now. With nothing in flight anything may go, so a
    /// message larger than the window still leaves.
    pub(super) fn can_send(&self, bytes: usize) -> bool {
        self.in_flight == 0 || self.in_flight + bytes <= self.window
    }

    /// How many bytes may be written on top of `pending` ones not yet counted in flight:
    /// unlimited with nothing in flight, as in [`can_send`](Self::can_send).
    pub(super) fn headroom(&self, pending: usize) -> usize {
        if self.in_flight == 0 {
            usize::MAX
        } else {
            self.window.saturating_sub(self.in_flight + pending)
        }
    }

    /// `bytes` were written.
    pub(super) fn on_sent(&mut self, bytes: usize) {
        self.in_flight += bytes;
    }

    /// `bytes` sent at `sent_time` were acknowledged: they leave the flight and, outside a
    /// recovery period, grow the window (§7.3.1 slow start, §7.3.3 congestion avoidance).
    pub(super) fn on_acked(&mut self, bytes: usize, sent_time: SentTime) {
        self.in_flight = self.in_flight.saturating_sub(bytes);
        // At its cap the window stays where it is: no growth to work out (the division
        // below, once per message acknowledged, was 1.6 % of the load client's samples).
        if self.at_cap() || self.recovery_start.is_some_and(|start| sent_time <= start) {
            return;
        }
        let growth = if self.window < self.ssthresh {
            bytes
        } else {
            (self.max_datagram * bytes / self.window).max(1)
        };
        self.window = (self.window + growth).min(self.max_window);
    }

    /// Whether the window is at its cap, where an acknowledgement changes nothing but the
    /// bytes in flight.
    pub(super) fn at_cap(&self) -> bool {
        self.window >= self.max_window
    }

    /// `bytes` sent at any time were acknowledged while the window is at its cap
    /// ([`at_cap`](Self::at_cap)): what [`on_acked`](Self::on_acked) would do for each of
    /// them, at once.
    pub(super) fn on_acked_at_cap(&mut self, bytes: usize) {
        debug_assert!(bytes == 0 || self.at_cap());
        self.in_flight = self.in_flight.saturating_sub(bytes);
    }

    /// `bytes` were declared lost (or given up): they leave the flight.
    pub(super) fn on_lost(&mut self, bytes: usize) {
        self.in_flight = self.in_flight.saturating_sub(bytes);
    }

    /// A loss of a message sent at `sent_time` was detected at `now`. The first loss of a
    /// congestion event halves the window (§7.3.2, kLossReductionFactor 0.5); later losses of
    /// messages sent before the recovery began are part of the same event.
    pub(super) fn on_congestion_event(&mut self, now: SentTime, sent_time: SentTime) {
        if self.recovery_start.is_some_and(|start| sent_time <= start) {
            return;
        }
        self.recovery_start = Some(now);
        self.ssthresh = (self.window / 2).max(self.min_window());
        self.window = self.ssthresh;
    }

    /// Persistent congestion (§7.6): ACKs stopped for several timeouts in a row. The window
    /// falls to its minimum.
    pub(super) fn on_persistent_congestion(&mut self, now: SentTime) {
        self.recovery_start = Some(now);
        self.ssthresh = (self.window / 2).max(self.min_window());
        self.window = self.min_window();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MDS: usize = 1472;

    #[test]
    fn starts_with_the_rfc_initial_window_and_lets_one_big_message_out() {
        let c = Congestion::new(MDS, 8 << 20);
        assert_eq!(c.window(), 128 * MDS);
        assert!(c.can_send(100_000), "nothing in flight: anything may go");
    }

    #[test]
    fn the_window_bounds_the_flight() {
        let mut c = Congestion::new(MDS, 8 << 20);
        let w = c.window();
        c.on_sent(w - 720);
        assert!(c.can_send(720));
        assert!(!c.can_send(721));
        c.on_lost(w - 720);
        assert_eq!(c.in_flight(), 0);
    }

    #[test]
    fn slow_start_doubles_then_avoidance_adds_a_datagram_per_window() {
        let t0 = SentTime::default();
        let mut c = Congestion::new(MDS, 8 << 20);
        let w = c.window();
        c.on_sent(w);
        c.on_acked(w, t0);
        assert_eq!(
            c.window(),
            2 * w,
            "slow start: +1 byte per byte acknowledged"
        );

        c.on_congestion_event(t0.after(Duration::from_millis(1)), t0);
        assert_eq!(c.window(), w, "a loss halves the window");
        let w = c.window();
        c.on_sent(w);
        c.on_acked(w, t0.after(Duration::from_millis(2)));
        assert_eq!(
            c.window(),
            w + MDS,
            "avoidance: one datagram per window acknowledged"
        );
    }

    #[test]
    fn one_congestion_event_per_recovery_period() {
        let t0 = SentTime::default();
        let mut c = Congestion::new(MDS, 8 << 20);
        // Grow to four times the first window.
        let w = c.window();
        c.on_sent(3 * w);
        c.on_acked(3 * w, t0);
        assert_eq!(c.window(), 4 * w);
        let recovery = t0.after(Duration::from_millis(10));
        c.on_congestion_event(recovery, t0);
        assert_eq!(c.window(), 2 * w);
        // Another loss of a message sent before the recovery began: same event.
        c.on_congestion_event(
            recovery.after(Duration::from_millis(1)),
            t0.after(Duration::from_millis(5)),
        );
        assert_eq!(c.window(), 2 * w);
        // Acknowledgements of messages sent before the recovery do not grow the window.
        c.on_sent(1000);
        c.on_acked(1000, t0.after(Duration::from_millis(9)));
        assert_eq!(c.window(), 2 * w);
        // A loss of a message sent after it starts a new event.
        c.on_congestion_event(
            recovery.after(Duration::from_millis(20)),
            recovery.after(Duration::from_millis(1)),
        );
        assert_eq!(c.window(), w);
        // Every new event halves again, down to the minimum and no further.
        for i in 0..4 {
            let at = recovery.after(Duration::from_millis(40 + 20 * i));
            c.on_congestion_event(at, at.checked_before(Duration::from_millis(1)).unwrap());
        }
        assert_eq!(c.window(), 32 * MDS, "never below the minimum");
    }

    #[test]
    fn persistent_congestion_falls_to_the_minimum_and_the_window_is_capped() {
        let t0 = SentTime::default();
        let mut c = Congestion::new(MDS, 400_000);
        c.on_sent(400_000);
        c.on_acked(400_000, t0);
        assert_eq!(c.window(), 400_000, "capped at the send window's bytes");
        c.on_persistent_congestion(t0.after(Duration::from_millis(1)));
        assert_eq!(c.window(), 32 * MDS);
    }
}
