//! Nothing is allocated per message on the sans-IO hot path (issue 9, item 2).
//!
//! A counting global allocator wraps `System`. Counting is per thread (a thread-local flag
//! says whether the current thread is being measured), so the test harness's own threads and
//! the other tests of this file, which run in parallel, do not disturb the figure.
//!
//! Each test runs a [`Client`] and a [`Server`] in one thread, in simulated time (an
//! `Instant` advanced by hand, so the run is deterministic), with every datagram going
//! straight from one to the other: `send` → client `poll_transmit` → server
//! `handle_datagram`, whose deliver callback does what the server binary does per message
//! (check the payload stamp, record the one-way latency in an HDR histogram) → server
//! `poll_transmit` (the ACKs) → client `handle_datagram` (ACK processing, RTT samples, loss
//! detection), plus both sides' timers. After a warm-up of [`WARM_UP`] messages (the windows,
//! the queues and the histograms exist by then), it counts the allocations over
//! [`MEASURED`] messages, then over twice as many: both counts must be zero.
//!
//! Run: `cargo test -p realmq-common --test allocations`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use realmq_common::endpoint::{
    Client, ClientConfig, SendError, Server, ServerConfig, ServerSecrets,
};
use realmq_common::payload_stamp::{check_stamp, write_stamp, StampCheck};
use realmq_common::security::Psk;
use realmq_common::stats::{latency_histogram, one_way_latency_us, record_latency_us};

/// Wraps the system allocator and counts the allocations (`alloc`, `alloc_zeroed` and
/// `realloc`) of threads that are being measured.
struct CountingAllocator;

thread_local! {
    /// Whether this thread's allocations are counted, and how many were. Both are
    /// `const`-initialised and without a destructor, so touching them never allocates.
    /// Counting per thread keeps the harness's threads and the other tests of this file,
    /// which run in parallel, out of the figure.
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note_allocation() {
    if MEASURING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to `System`; counting touches only `const`
// thread-locals without destructors, which never allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
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

/// Allocations made by this thread while `f` runs.
fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    MEASURING.with(|m| m.set(true));
    f();
    MEASURING.with(|m| m.set(false));
    ALLOCATIONS.with(Cell::get) - before
}

/// Messages sent and acknowledged before counting starts.
const WARM_UP: u64 = 20_000;
/// Messages in the first measured stretch; the second has twice as many.
const MEASURED: u64 = 100_000;
/// Payload bytes, as in the load test's 64-byte scenarios.
const SIZE: usize = 64;
/// Simulated time from one pass of the loop to the next.
const STEP: Duration = Duration::from_micros(20);
/// The client's Unix time at its epoch, µs.
const EPOCH_UNIX_US: u64 = 1_700_000_000_000_000;
/// The client's address as the server sees it.
const CLIENT: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1)),
    40_000,
);

/// What to do to the datagrams on the way.
#[derive(Debug, Clone, Copy)]
struct Impairment {
    /// Drop every `n`-th client datagram (0: none).
    drop_up_every: u64,
    /// Drop every `n`-th server datagram (0: none).
    drop_down_every: u64,
}

const CLEAN: Impairment = Impairment {
    drop_up_every: 0,
    drop_down_every: 0,
};

/// A client and a server joined back to back, in simulated time.
struct Pair {
    /// The client's epoch: Unix time [`EPOCH_UNIX_US`] by its clock.
    epoch: Instant,
    now: Instant,
    client: Client,
    server: Server,
    impairment: Impairment,
    up: Vec<u8>,
    down: Vec<u8>,
    payload: Vec<u8>,
    /// Messages accepted by `send`.
    sent: u64,
    /// Datagrams each way so far (for the deterministic drops).
    datagrams_up: u64,
    datagrams_down: u64,
    /// What the server's deliver callback does per message, as the server binary does.
    latency: Histogram<u64>,
    delivered: u64,
    corrupt: u64,
    /// Messages a `send_many` call offers (1: `send`, one by one).
    batch: u64,
    /// Datagrams the client wrote where it stored them (`poll_prebuilt`).
    prebuilt: u64,
}

impl Pair {
    fn new(impairment: Impairment, psk: Option<&Psk>) -> Self {
        let now = Instant::now();
        let mut server =
            Server::new(ServerConfig::default(), ServerSecrets::from_test_seed(9)).unwrap();
        let mut client = Client::new(ClientConfig::default(), now, EPOCH_UNIX_US, 7).unwrap();
        if let Some(psk) = psk {
            server = server.with_psk(psk.clone());
            client = client.with_psk(psk.clone());
        }
        Self {
            epoch: now,
            now,
            client,
            server,
            impairment,
            up: vec![0; 1472],
            down: vec![0; 1472],
            payload: vec![b'x'; SIZE],
            sent: 0,
            datagrams_up: 0,
            datagrams_down: 0,
            latency: latency_histogram(),
            delivered: 0,
            corrupt: 0,
            batch: 1,
            prebuilt: 0,
        }
    }

    /// Sends `n` more messages, as fast as the window allows, and runs until every one is
    /// acknowledged.
    fn run(&mut self, n: u64) {
        let target = self.sent + n;
        // Bounded: 20 µs per pass, so this is 100 s of simulated time at most.
        for _ in 0..5_000_000 {
            while self.sent < target && self.client.is_established() {
                let session_id = self.client.session_id();
                let result = if self.batch == 1 {
                    let id = self.client.next_message_id().expect("established");
                    write_stamp(&mut self.payload, session_id, id);
                    self.client.send(self.now, &self.payload).map(|_| 1)
                } else {
                    // Written in place, as the load client does.
                    let want = self.batch.min(target - self.sent);
                    let fill = |id: u64, payload: &mut [u8]| {
                        payload.fill(b'x');
                        write_stamp(payload, session_id, id);
                    };
                    self.client.send_many(self.now, SIZE, want, fill)
                };
                match result {
                    Ok(n) => self.sent += n,
                    Err(SendError::Backpressure) => break,
                    Err(e) => panic!("send: {e}"),
                }
            }
            self.exchange();
            if self.client.stats().acked == target {
                return;
            }
            self.advance();
        }
        panic!("{} of {target} acknowledged", self.client.stats().acked);
    }

    /// Every datagram the client has goes to the server, then every one the server has (its
    /// ACKs) back to the client.
    fn exchange(&mut self) {
        let now = self.now;
        while let Some(len) = self.next_up(now) {
            self.datagrams_up += 1;
            if dropped(self.datagrams_up, self.impairment.drop_up_every) {
                continue;
            }
            let (latency, delivered, corrupt) =
                (&mut self.latency, &mut self.delivered, &mut self.corrupt);
            // The server binary reads the wall clock once per datagram; here the simulated
            // clock stands in for it.
            let now_unix_us = EPOCH_UNIX_US + (now - self.epoch).as_micros() as u64;
            self.server
                .handle_datagram(now, CLIENT, None, &self.up[..len], |d| {
                    if check_stamp(d.payload, d.session_id, d.id) != StampCheck::Intact {
                        *corrupt += 1;
                    }
                    record_latency_us(latency, one_way_latency_us(now_unix_us, d.sent_unix_us));
                    *delivered += 1;
                });
        }
        while let Some(t) = self.server.poll_transmit(now, &mut self.down) {
            assert_eq!(t.destination, CLIENT);
            self.datagrams_down += 1;
            if dropped(self.datagrams_down, self.impairment.drop_down_every) {
                continue;
            }
            self.client.handle_datagram(now, &self.down[..t.len]);
        }
        while let Some(e) = self.client.poll_event() {
            assert!(
                matches!(e, realmq_common::endpoint::ClientEvent::Established { .. }),
                "{e:?}"
            );
        }
        while self.server.poll_event().is_some() {}
    }

    /// The client's next datagram, in `up`: one it stored whole, if it has one (copied
    /// here), else the one `poll_transmit` writes.
    fn next_up(&mut self, now: Instant) -> Option<usize> {
        if let Some(burst) = self.client.poll_prebuilt(now, 1) {
            let len = burst.bytes.len();
            self.up[..len].copy_from_slice(burst.bytes);
            self.prebuilt += 1;
            return Some(len);
        }
        self.client.poll_transmit(now, &mut self.up)
    }

    /// One step of simulated time; the timers that fell due run.
    fn advance(&mut self) {
        self.now += STEP;
        if self.client.poll_timeout().is_some_and(|t| t <= self.now) {
            self.client.handle_timeout(self.now);
        }
        if self.server.poll_timeout().is_some_and(|t| t <= self.now) {
            self.server.handle_timeout(self.now);
        }
    }
}

fn dropped(count: u64, every: u64) -> bool {
    count.checked_rem(every) == Some(0)
}

/// Warms up, then counts allocations over [`MEASURED`] and `2 × MEASURED` messages.
fn measure(pair: &mut Pair) -> (u64, u64) {
    pair.run(WARM_UP);
    let short = allocations_during(|| pair.run(MEASURED));
    let long = allocations_during(|| pair.run(2 * MEASURED));
    let total = WARM_UP + 3 * MEASURED;
    assert_eq!(pair.delivered, total, "every message delivered once");
    assert_eq!(pair.corrupt, 0);
    assert_eq!(pair.server.stats().received, total);
    assert_eq!(pair.latency.len(), total);
    (short, long)
}

#[test]
fn the_counter_sees_allocations() {
    // The check of the check: a zero below means nothing allocated, not a blind counter.
    let n = allocations_during(|| {
        let mut v = vec![1u64]; // an `alloc` of one element
        v.push(2); // full: a `realloc`
        std::hint::black_box(&v);
    });
    assert_eq!(n, 2);
    // Setting up a pair allocates at least its three buffers and its histograms.
    let n = allocations_during(|| {
        std::hint::black_box(Pair::new(CLEAN, None));
    });
    assert!(n >= 5, "{n}");
}

#[test]
fn the_hot_path_allocates_nothing_per_message() {
    let mut pair = Pair::new(CLEAN, None);
    let (short, long) = measure(&mut pair);
    assert_eq!(
        (short, long),
        (0, 0),
        "allocations over {MEASURED} and {} messages",
        2 * MEASURED
    );
}

#[test]
fn authenticated_sessions_allocate_nothing_per_message() {
    let psk = Psk::from_bytes(&[0x01; 32]).unwrap();
    let mut pair = Pair::new(CLEAN, Some(&psk));
    let (short, long) = measure(&mut pair);
    assert_eq!(
        (short, long),
        (0, 0),
        "allocations over {MEASURED} and {} messages",
        2 * MEASURED
    );
}

#[test]
fn loss_and_resends_allocate_nothing_per_message() {
    // Deterministic loss both ways: resends, ACKs with gaps, loss detection.
    let mut pair = Pair::new(
        Impairment {
            drop_up_every: 50,
            drop_down_every: 7,
        },
        None,
    );
    let (short, long) = measure(&mut pair);
    assert!(
        pair.client.stats().retransmitted > 0,
        "the drops cause resends"
    );
    assert_eq!(
        (short, long),
        (0, 0),
        "allocations over {MEASURED} and {} messages",
        2 * MEASURED
    );
}

#[test]
fn batches_sent_where_they_are_stored_allocate_nothing_per_message() {
    // `send_many` stores batches as whole datagrams, written where they lie.
    for impairment in [
        CLEAN,
        Impairment {
            drop_up_every: 50,
            drop_down_every: 7,
        },
    ] {
        let mut pair = Pair::new(impairment, None);
        pair.batch = 500;
        let (short, long) = measure(&mut pair);
        assert!(
            pair.prebuilt > 1_000,
            "{} datagrams as stored",
            pair.prebuilt
        );
        assert_eq!(
            (short, long),
            (0, 0),
            "{impairment:?}: allocations over {MEASURED} and {} messages",
            2 * MEASURED
        );
    }
}
