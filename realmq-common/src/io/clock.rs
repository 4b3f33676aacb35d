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

/// Processor time used (`getrusage`), split into user and system time: what iperf3 reports
/// as its CPU utilisation, for the summaries' CPU line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTime {
    /// Time running the process's own code.
    pub user: Duration,
    /// Time in the kernel on its behalf (system calls: the sockets' sends and receives).
    pub system: Duration,
}

impl CpuTime {
    /// The process's time so far, or `None` where `getrusage` fails.
    pub fn of_process() -> Option<Self> {
        Self::of(nix::sys::resource::UsageWho::RUSAGE_SELF)
    }

    /// The calling thread's time so far (a server's one event-loop thread, whether alone in
    /// its process or beside a test's clients), or `None` where the system cannot tell
    /// (`RUSAGE_THREAD` is Linux's).
    pub fn of_thread() -> Option<Self> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        return Self::of(nix::sys::resource::UsageWho::RUSAGE_THREAD);
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        return None;
    }

    fn of(who: nix::sys::resource::UsageWho) -> Option<Self> {
        let usage = nix::sys::resource::getrusage(who).ok()?;
        let duration = |t: nix::sys::time::TimeVal| {
            let micros = u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000
                + u64::try_from(t.tv_usec()).unwrap_or(0);
            Duration::from_micros(micros)
        };
        Some(Self {
            user: duration(usage.user_time()),
            system: duration(usage.system_time()),
        })
    }

    /// The time used since `earlier`, a reading of the same process.
    pub fn since(self, earlier: Self) -> Self {
        Self {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }

    /// The time `read` (a process's or a thread's) has used since `start`, its reading at a
    /// run's start, spent on `messages` messages: a summary's CPU line, or `None` where
    /// either reading failed.
    pub fn summary_since(
        start: Option<Self>,
        read: fn() -> Option<Self>,
        messages: u64,
    ) -> Option<crate::stats::CpuSummary> {
        let used = read()?.since(start?);
        Some(crate::stats::CpuSummary::new(
            used.user,
            used.system,
            messages,
        ))
    }
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
    fn process_cpu_time_grows_with_work() {
        let start = CpuTime::of_process().expect("getrusage");
        // Spin until the process has used 30 ms, bounded by the wall clock.
        let spin_start = Instant::now();
        let mut spun = CpuTime::default();
        while spun.user + spun.system < Duration::from_millis(30)
            && spin_start.elapsed() < Duration::from_secs(10)
        {
            std::hint::black_box((0..1000u64).sum::<u64>());
            spun = CpuTime::of_process().unwrap().since(start);
        }
        assert!(
            spun.user + spun.system >= Duration::from_millis(30),
            "{spun:?}"
        );
        assert_eq!(
            start.since(CpuTime::of_process().unwrap()),
            CpuTime::default()
        );
        // A summary needs both readings; with them, the time since the start.
        assert_eq!(CpuTime::summary_since(None, CpuTime::of_process, 1), None);
        let summary = CpuTime::summary_since(Some(start), CpuTime::of_process, 1_000).unwrap();
        assert!(summary.user_s + summary.system_s >= 0.030, "{summary:?}");
        assert!(summary.ns_per_message.unwrap() >= 30_000.0, "{summary:?}");
    }

    #[test]
    fn a_threads_cpu_time_is_its_own() {
        let Some(start) = CpuTime::of_thread() else {
            return; // not Linux: nothing to check
        };
        // Another thread's work is not this one's.
        std::thread::spawn(|| {
            let (t0, wall) = (CpuTime::of_thread().unwrap(), Instant::now());
            let mut n = 0u64;
            while CpuTime::of_thread().unwrap().since(t0).user < Duration::from_millis(50)
                && wall.elapsed() < Duration::from_secs(10)
            {
                n = std::hint::black_box(n + 1);
            }
        })
        .join()
        .unwrap();
        let used = CpuTime::of_thread().unwrap().since(start);
        assert!(
            used.user + used.system < Duration::from_millis(50),
            "{used:?}"
        );
    }

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
