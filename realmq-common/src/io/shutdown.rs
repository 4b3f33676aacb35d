//! Graceful shutdown: a flag that Ctrl-C/SIGTERM sets and every event loop checks, plus the
//! `mio::Waker`s that interrupt those loops' `poll` so they see it at once.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use mio::Waker;

/// A cloneable shutdown handle. [`trigger`](Self::trigger) counts requests and wakes every
/// registered loop; loops poll [`is_triggered`](Self::is_triggered) once per pass.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    requests: AtomicU32,
    wakers: Mutex<Vec<Arc<Waker>>>,
}

impl Shutdown {
    /// A handle nothing has triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every loop to stop; returns how many times shutdown has now been requested (a
    /// binary may exit at once on the second).
    pub fn trigger(&self) -> u32 {
        let n = self.inner.requests.fetch_add(1, Ordering::SeqCst) + 1;
        for waker in self.wakers().iter() {
            // A failed wake only delays the loop until its next deadline.
            let _ = waker.wake();
        }
        n
    }

    /// Whether shutdown has been requested.
    pub fn is_triggered(&self) -> bool {
        self.inner.requests.load(Ordering::Relaxed) > 0
    }

    /// Registers a loop's waker. A loop registers before its first pass, and checks
    /// [`is_triggered`](Self::is_triggered) at the top of every pass, so a trigger that
    /// raced the registration is still seen.
    pub fn add_waker(&self, waker: Arc<Waker>) {
        self.wakers().push(waker);
    }

    fn wakers(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Waker>>> {
        // A panic while holding this lock cannot leave the Vec inconsistent.
        self.inner
            .wakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll, Token};
    use std::time::Duration;

    #[test]
    fn trigger_counts_and_wakes_a_registered_poll() {
        let mut poll = Poll::new().unwrap();
        let shutdown = Shutdown::new();
        shutdown.add_waker(Arc::new(Waker::new(poll.registry(), Token(7)).unwrap()));
        assert!(!shutdown.is_triggered());
        let clone = shutdown.clone();
        assert_eq!(clone.trigger(), 1);
        assert!(shutdown.is_triggered());
        let mut events = Events::with_capacity(4);
        // Bounded: the wake is already pending, so this returns at once.
        poll.poll(&mut events, Some(Duration::from_secs(10)))
            .unwrap();
        assert!(events.iter().any(|e| e.token() == Token(7)));
        assert_eq!(shutdown.trigger(), 2);
    }
}
