//! Timers as data: a component names its timers with a small enum and keeps their deadlines
//! in a [`TimerTable`], one `Option<Instant>` per timer (`None`: stopped).
//!
//! A state machine then answers `poll_timeout` with [`TimerTable::next_deadline`] (joined to
//! its sub-components' deadlines with [`earliest`]) and, in `handle_timeout(now)`, handles
//! each timer that [`is_expired`](TimerTable::is_expired). A timer that fired and is not
//! re-armed is simply stopped: no "fired" flags beside the deadlines.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use realmq_common::timer::{TimerKind, TimerTable};
//!
//! #[derive(Debug, Clone, Copy, PartialEq, Eq)]
//! enum Timer {
//!     Retransmit,
//!     Idle,
//! }
//!
//! impl TimerKind for Timer {
//!     const ALL: &'static [Self] = &[Timer::Retransmit, Timer::Idle];
//!     fn index(self) -> usize {
//!         self as usize
//!     }
//! }
//!
//! let t0 = Instant::now();
//! let mut timers = TimerTable::<Timer, 2>::new();
//! timers.set(Timer::Idle, t0 + Duration::from_secs(30));
//! timers.set(Timer::Retransmit, t0 + Duration::from_millis(200));
//! assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_millis(200)));
//!
//! let now = t0 + Duration::from_millis(250);
//! for &timer in Timer::ALL {
//!     if timers.is_expired(timer, now) {
//!         timers.stop(timer); // ...and react, possibly re-arming it.
//!     }
//! }
//! assert_eq!(timers.get(Timer::Retransmit), None);
//! assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_secs(30)));
//! ```

use core::fmt;
use core::marker::PhantomData;
use std::time::Instant;

/// The timers of one component: a small `Copy` enum whose variants index a [`TimerTable`].
///
/// Implement it on a field-less enum with `index` returning `self as usize`, and `ALL` listing
/// the variants in declaration order.
pub trait TimerKind: Copy + Eq + fmt::Debug + 'static {
    /// Every timer, in index order: `ALL[t.index()] == t` for each `t`.
    const ALL: &'static [Self];

    /// The timer's slot in the table: its position in [`ALL`](Self::ALL).
    fn index(self) -> usize;
}

/// One optional deadline per timer of `T`; `N` is the number of timers (`T::ALL.len()`,
/// checked at compile time by [`new`](Self::new)).
///
/// Deadlines are plain data: setting, stopping and reading them has no side effect, and
/// whether a timer is expired is a comparison with the `now` the caller passes in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TimerTable<T, const N: usize> {
    deadlines: [Option<Instant>; N],
    kind: PhantomData<T>,
}

impl<T: TimerKind, const N: usize> TimerTable<T, N> {
    /// A table with every timer stopped.
    pub fn new() -> Self {
        const {
            assert!(
                N == T::ALL.len(),
                "a TimerTable needs exactly one slot per timer"
            )
        };
        Self {
            deadlines: [None; N],
            kind: PhantomData,
        }
    }

    /// Arms `timer` to expire at `deadline`, replacing any earlier or later deadline it had.
    pub fn set(&mut self, timer: T, deadline: Instant) {
        self.deadlines[timer.index()] = Some(deadline);
    }

    /// Arms `timer` at `deadline`, or stops it when `deadline` is `None`.
    pub fn set_or_stop(&mut self, timer: T, deadline: Option<Instant>) {
        self.deadlines[timer.index()] = deadline;
    }

    /// Stops `timer` (a no-op if it is stopped already).
    pub fn stop(&mut self, timer: T) {
        self.deadlines[timer.index()] = None;
    }

    /// When `timer` expires, or `None` while it is stopped.
    pub fn get(&self, timer: T) -> Option<Instant> {
        self.deadlines[timer.index()]
    }

    /// Whether `timer` is armed with a deadline at or before `now`. A stopped timer never is.
    ///
    /// Handle expired timers one at a time, asking again before each (as the module example
    /// does): reacting to one timer may re-arm or stop another, so a list of the expired
    /// timers taken beforehand could go stale.
    pub fn is_expired(&self, timer: T, now: Instant) -> bool {
        self.get(timer).is_some_and(|deadline| deadline <= now)
    }

    /// The earliest deadline of any armed timer, or `None` when all are stopped. It may be in
    /// the past: a timer stays armed until it is handled.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// The armed timers and their deadlines, in index order.
    pub fn iter(&self) -> impl Iterator<Item = (T, Instant)> + '_ {
        T::ALL
            .iter()
            .zip(self.deadlines)
            .filter_map(|(&timer, deadline)| Some((timer, deadline?)))
    }
}

impl<T: TimerKind, const N: usize> Default for TimerTable<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: TimerKind, const N: usize> fmt::Debug for TimerTable<T, N> {
    /// The armed timers only, as a map from timer to deadline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// The earlier of two optional deadlines, where `None` means "no deadline" and so loses to
/// any instant. (`Option`'s own ordering puts `None` first: `a.min(b)` would return `None`
/// whenever either side has no deadline.)
///
/// For joining a component's deadline with its sub-components' (`poll_timeout` of a sender
/// and of its liveness check, a session's and a pacer's in an event loop).
pub fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Timer {
        A,
        B,
        C,
    }

    impl TimerKind for Timer {
        const ALL: &'static [Self] = &[Timer::A, Timer::B, Timer::C];
        fn index(self) -> usize {
            self as usize
        }
    }

    type Table = TimerTable<Timer, 3>;

    #[test]
    fn a_new_table_has_every_timer_stopped() {
        let t0 = Instant::now();
        let table = Table::new();
        for &timer in Timer::ALL {
            assert_eq!(table.get(timer), None);
            assert!(!table.is_expired(timer, t0));
        }
        assert_eq!(table.next_deadline(), None);
        assert_eq!(table, Table::default());
    }

    #[test]
    fn set_arms_one_timer_and_replaces_its_deadline_either_way() {
        let t0 = Instant::now();
        let mut table = Table::new();
        table.set(Timer::B, t0 + MS * 5);
        assert_eq!(table.get(Timer::B), Some(t0 + MS * 5));
        assert_eq!(table.get(Timer::A), None);
        assert_eq!(table.get(Timer::C), None);
        table.set(Timer::B, t0 + MS * 9);
        assert_eq!(table.get(Timer::B), Some(t0 + MS * 9));
        table.set(Timer::B, t0 + MS);
        assert_eq!(table.get(Timer::B), Some(t0 + MS));
    }

    #[test]
    fn stop_disarms_one_timer_and_is_idempotent() {
        let t0 = Instant::now();
        let mut table = Table::new();
        table.set(Timer::A, t0);
        table.set(Timer::C, t0);
        table.stop(Timer::A);
        assert_eq!(table.get(Timer::A), None);
        assert_eq!(table.get(Timer::C), Some(t0));
        table.stop(Timer::A);
        assert_eq!(table.get(Timer::A), None);
        assert!(!table.is_expired(Timer::A, t0 + MS));
    }

    #[test]
    fn set_or_stop_follows_the_option() {
        let t0 = Instant::now();
        let mut table = Table::new();
        table.set_or_stop(Timer::C, Some(t0));
        assert_eq!(table.get(Timer::C), Some(t0));
        table.set_or_stop(Timer::C, None);
        assert_eq!(table.get(Timer::C), None);
    }

    #[test]
    fn a_timer_expires_at_its_deadline_not_before() {
        let t0 = Instant::now();
        let mut table = Table::new();
        table.set(Timer::A, t0 + MS);
        assert!(!table.is_expired(Timer::A, t0));
        assert!(!table.is_expired(Timer::A, t0 + MS - Duration::from_nanos(1)));
        assert!(table.is_expired(Timer::A, t0 + MS));
        assert!(table.is_expired(Timer::A, t0 + MS * 2));
        // Expiring changes nothing: the timer stays armed until handled.
        assert_eq!(table.get(Timer::A), Some(t0 + MS));
        assert!(!table.is_expired(Timer::B, t0 + MS * 2));
    }

    #[test]
    fn next_deadline_is_the_earliest_armed_timer() {
        let t0 = Instant::now();
        let mut table = Table::new();
        table.set(Timer::A, t0 + MS * 7);
        assert_eq!(table.next_deadline(), Some(t0 + MS * 7));
        table.set(Timer::C, t0 + MS * 3);
        table.set(Timer::B, t0 + MS * 5);
        assert_eq!(table.next_deadline(), Some(t0 + MS * 3));
        table.stop(Timer::C);
        assert_eq!(table.next_deadline(), Some(t0 + MS * 5));
        table.stop(Timer::B);
        table.stop(Timer::A);
        assert_eq!(table.next_deadline(), None);
    }

    #[test]
    fn iter_and_debug_list_the_armed_timers_in_index_order() {
        let t0 = Instant::now();
        let mut table = Table::new();
        table.set(Timer::C, t0);
        table.set(Timer::A, t0 + MS);
        let armed: Vec<_> = table.iter().collect();
        assert_eq!(armed, [(Timer::A, t0 + MS), (Timer::C, t0)]);
        let debug = format!("{table:?}");
        assert!(debug.starts_with("{A: "), "{debug}");
        assert!(!debug.contains('B'), "{debug}");
    }

    #[test]
    fn earliest_ignores_missing_deadlines() {
        let t0 = Instant::now();
        let t1 = t0 + MS;
        assert_eq!(earliest(None, None), None);
        assert_eq!(earliest(Some(t1), None), Some(t1));
        assert_eq!(earliest(None, Some(t1)), Some(t1));
        assert_eq!(earliest(Some(t1), Some(t0)), Some(t0));
        assert_eq!(earliest(Some(t0), Some(t1)), Some(t0));
    }
}
