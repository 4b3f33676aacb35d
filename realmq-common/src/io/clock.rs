//! Clock readings `Instant` cannot give: a wall-clock timestamp the other host can compare
//! with its own clock, and the processor time the calling thread has used.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::time::{clock_gettime, ClockId};

/// Microseconds since the Unix epoch (0 if the clock reads before 1970).
pub fn unix_now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The processor time the calling thread has used (`CLOCK_THREAD_CPUTIME_ID`), or `None`
/// where that clock is missing. With `Instant` it tells a stalled event loop from a busy one
/// ([`PauseWatch`](crate::liveness::PauseWatch)).
pub fn thread_cpu_time() -> Option<Duration> {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .ok()
        .map(Duration::from)
}

/// After the event loop's wait: reads both clocks and asks `watch` whether this thread was
/// paused; returns the pause as `(since, now)`.
pub fn local_pause(watch: &mut crate::liveness::PauseWatch) -> Option<(Instant, Instant)> {
    let now = Instant::now();
    let since = watch.woke(now, thread_cpu_time()?)?;
    Some((since, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cpu_time_counts_work_not_sleep() {
        let start = thread_cpu_time().expect("a thread CPU clock");
        std::thread::sleep(Duration::from_millis(50));
        let slept = thread_cpu_time().unwrap() - start;
        let mut x = 0u64;
        let busy = std::time::Instant::now();
        while busy.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let worked = thread_cpu_time().unwrap() - start - slept;
        assert!(worked > slept, "busy {worked:?}, asleep {slept:?}");
    }

    #[test]
    fn reads_after_2020() {
        // 2020-01-01 in µs: a clock that reads 0 or garbage fails here.
        assert!(unix_now_us() > 1_577_836_800_000_000);
    }
}
