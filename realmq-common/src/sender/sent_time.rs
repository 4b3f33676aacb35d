//! Send times as the window's records keep them: nanoseconds since the sender's epoch, 8
//! bytes where an `Instant` takes 16. Every message's record is written when it is sent and
//! read when it is acknowledged; a record of 48 bytes instead of 56 is less to move.

use std::time::{Duration, Instant};

/// A time on the sender's clock: nanoseconds since its epoch (584 years of range).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct SentTime(u64);

impl SentTime {
    /// `t` on the clock that starts at `epoch`; a `t` before the epoch counts as the epoch
    /// (the sender is never given one).
    pub(super) fn new(epoch: Instant, t: Instant) -> Self {
        let nanos = t.saturating_duration_since(epoch).as_nanos();
        Self(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// The same time as an `Instant`.
    pub(super) fn instant(self, epoch: Instant) -> Instant {
        epoch + Duration::from_nanos(self.0)
    }

    /// The time `d` later (saturating at the end of the range).
    pub(super) fn after(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }

    /// The time `d` earlier, or `None` before the epoch.
    pub(super) fn checked_before(self, d: Duration) -> Option<Self> {
        self.0
            .checked_sub(u64::try_from(d.as_nanos()).ok()?)
            .map(Self)
    }

    /// How long after `earlier` this is (zero if it is not after).
    pub(super) fn since(self, earlier: Self) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_both_ways_and_orders_as_instants_do() {
        let epoch = Instant::now();
        let t = epoch + Duration::from_nanos(1_234_567);
        let s = SentTime::new(epoch, t);
        assert_eq!(s.instant(epoch), t);
        assert_eq!(SentTime::new(epoch, epoch), SentTime::default());
        assert!(SentTime::new(epoch, t + Duration::from_nanos(1)) > s);
        assert_eq!(
            s.after(Duration::from_micros(1)).since(s),
            Duration::from_micros(1)
        );
        assert_eq!(s.since(s.after(Duration::from_micros(1))), Duration::ZERO);
        assert_eq!(
            s.checked_before(Duration::from_nanos(1_234_567)),
            Some(SentTime::default())
        );
        assert_eq!(s.checked_before(Duration::from_nanos(1_234_568)), None);
    }
}
