//! Nothing is allocated per message in the binaries' own loops (issue 9, item 2), measured
//! in-process: the server's loop ([`realmq_server::serve`]) on a thread, bound to 127.0.0.1
//! port 0, and one client sender thread ([`realmq_client::run_workers_reporting`]) against it,
//! over real loopback sockets.
//!
//! Those threads are spawned by the libraries, so allocations cannot be told apart by thread:
//! a counting global allocator counts every allocation of the process while a stretch is
//! being measured. The stretches are set by the client's published progress (messages
//! acknowledged): after a warm-up of [`WARM_UP`] messages, one stretch of at least
//! [`MEASURED`] messages and one of at least twice as many. Besides the two loops, the
//! process holds only this test's thread, which spins on the progress counters (allocating
//! nothing), the result collector, parked in a channel receive, and the test harness, parked
//! until the test ends. Both stretches must count zero allocations: the server's receive,
//! session, delivery (payload check, latency histogram, per-session histogram, timeline) and
//! ACK path, and the client's send, transmit and ACK path.
//!
//! The client's once-a-second interval report is turned off (`Reporting::interval: None`):
//! it keeps a report per second in a growing `Vec`, which is per second, not per message.
//!
//! Run: `cargo test -p realmq-client --test allocations`. With `REALMQ_ALLOC_TRACE=1` every
//! allocation counted is printed with its backtrace, to find where it comes from.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use realmq_client::{run_workers_reporting, Progress, Reporting, WorkerConfig};
use realmq_common::io::{socket, Protocol, Shutdown};
use realmq_server::{serve, Listener, ServeOptions};

/// Wraps the system allocator; counts allocations (`alloc`, `alloc_zeroed`, `realloc`) of
/// every thread while [`ARMED`].
struct CountingAllocator;

static ARMED: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Print a backtrace of every allocation counted (`REALMQ_ALLOC_TRACE=1`).
static TRACE: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Set while this thread prints a trace, whose own allocations are not counted.
    /// `const`-initialised and without a destructor: reading it never allocates.
    static TRACING: Cell<bool> = const { Cell::new(false) };
}

fn note_allocation(size: usize) {
    if !ARMED.load(Ordering::Relaxed) || TRACING.try_with(Cell::get).unwrap_or(true) {
        return;
    }
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    if TRACE.load(Ordering::Relaxed) {
        TRACING.with(|t| t.set(true));
        eprintln!(
            "allocation of {size} bytes:\n{}",
            std::backtrace::Backtrace::force_capture()
        );
        TRACING.with(|t| t.set(false));
    }
}

// SAFETY: every call is forwarded unchanged to `System`; counting touches atomics and a
// `const` thread-local without a destructor, which never allocate (tracing allocates, with
// counting turned off on its thread).
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Messages acknowledged before counting starts.
const WARM_UP: u64 = 20_000;
/// Messages in the first measured stretch; the second has twice as many.
const MEASURED: u64 = 100_000;
/// The most messages the client sends: a bound on the run, far beyond what the test needs.
/// Once both stretches are measured the test stops the client (as Ctrl-C does): it drains
/// what is in flight and closes the session.
const QUOTA: u64 = 10_000_000;

fn worker(server: std::net::SocketAddr) -> WorkerConfig {
    WorkerConfig {
        quota: Some(QUOTA),
        ..WorkerConfig::new(0, server)
    }
}

/// Messages acknowledged so far, and whether the client run is over.
struct Watch {
    progress: Arc<Vec<Progress>>,
    finished: Arc<AtomicBool>,
}

impl Watch {
    fn acked(&self) -> u64 {
        Progress::total(&self.progress).1
    }

    /// Spins until `target` messages are acknowledged; returns how many are, which is less
    /// only if the run ended first. Bounded by the run: the client thread ends, by its quota
    /// or its own timeouts, and sets `finished`.
    fn wait_for(&self, target: u64) -> u64 {
        loop {
            let acked = self.acked();
            if acked >= target || self.finished.load(Ordering::Acquire) {
                return acked;
            }
            thread::yield_now();
        }
    }

    /// Counts the process's allocations while at least `messages` more are acknowledged;
    /// returns the count and how many messages the stretch really covered.
    fn count_over(&self, messages: u64) -> (u64, u64) {
        let from = self.acked();
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        ARMED.store(true, Ordering::SeqCst);
        let to = self.wait_for(from + messages);
        ARMED.store(false, Ordering::SeqCst);
        let count = ALLOCATIONS.load(Ordering::Relaxed) - before;
        assert!(to >= from + messages, "the run ended at {to} acknowledged");
        (count, to - from)
    }
}

#[test]
fn the_binaries_loops_allocate_nothing_per_message() {
    TRACE.store(
        std::env::var_os("REALMQ_ALLOC_TRACE").is_some_and(|v| v == "1"),
        Ordering::Relaxed,
    );
    // The check of the check: armed, the counter sees an allocation of this thread.
    ARMED.store(true, Ordering::SeqCst);
    std::hint::black_box(vec![0u8; 64]);
    ARMED.store(false, Ordering::SeqCst);
    assert!(ALLOCATIONS.swap(0, Ordering::Relaxed) >= 1);

    let listener =
        Listener::Udp(socket::bind_udp("127.0.0.1:0".parse().unwrap(), 1 << 20).unwrap());
    let Listener::Udp(udp) = &listener else {
        unreachable!()
    };
    let addr = udp.local_addr().unwrap();
    let options = ServeOptions {
        exit_after_sessions: Some(1),
        ..ServeOptions::default()
    };
    let server = thread::spawn(move || serve(listener, &options, &Shutdown::new()));

    let watch = Watch {
        progress: Progress::for_threads(1),
        finished: Arc::new(AtomicBool::new(false)),
    };
    let stop_client = Shutdown::new();
    let client = {
        let (progress, finished) = (Arc::clone(&watch.progress), Arc::clone(&watch.finished));
        let stop = stop_client.clone();
        thread::spawn(move || {
            let reporting = Reporting {
                interval: None,
                qos: true,
            };
            let outcome = run_workers_reporting(
                Protocol::Udp,
                vec![worker(addr)],
                &stop,
                &progress,
                reporting,
            );
            finished.store(true, Ordering::Release);
            outcome
        })
    };

    let warm = watch.wait_for(WARM_UP);
    assert!(warm >= WARM_UP, "the run ended at {warm} acknowledged");
    let (short, short_messages) = watch.count_over(MEASURED);
    let (long, long_messages) = watch.count_over(2 * MEASURED);
    stop_client.trigger();

    let outcome = client.join().expect("client thread").expect("client run");
    let result = outcome
        .results
        .into_iter()
        .next()
        .unwrap()
        .1
        .expect("client");
    let server = server.join().expect("server thread").expect("server run");
    assert!(result.sent >= WARM_UP + 3 * MEASURED && result.sent < QUOTA);
    assert_eq!(result.acked, result.sent, "every message acknowledged");
    assert_eq!(
        server.counters.received, result.sent,
        "every message delivered once"
    );
    assert_eq!(server.counters.corrupt, 0);
    eprintln!(
        "allocations: {short} over {short_messages} messages, {long} over {long_messages} messages"
    );
    assert_eq!(
        (short, long),
        (0, 0),
        "allocations over {short_messages} and {long_messages} messages \
         (REALMQ_ALLOC_TRACE=1 prints where)"
    );
}
