//! The network and an attacker against a running client, in one process: the server's loop
//! ([`realmq_server::serve`]) and the client's sender threads ([`realmq_client::run_workers`])
//! talk through a UDP relay on 127.0.0.1 that can hold client datagrams back (their
//! originals arrive after the resends) and keeps copies of them for an attacker thread. The
//! attacker floods the server's own address with replays, truncated and bit-flipped copies,
//! random bytes, and the clients' recorded HELLOs from thousands of source ports, and
//! injects replays through the relay's upstream sockets, which are the clients' addresses as
//! the server sees them.
//!
//! Every test checks exactly-once delivery under the payload stamps (`corrupt == 0`,
//! `stamped == received == sent == acked`) and what the attack should have drawn from the
//! server (no session, bounded answers, bounded memory).
//!
//! House rules: only 127.0.0.1 and ephemeral ports; no sleep stands in for synchronisation
//! and nothing asserts on timing; every loop is bounded in count and time; every thread
//! stops by itself (a stop flag plus its own deadline, [`THREAD_LIFETIME`]). The tests take
//! turns ([`one_at_a_time`]): the flood tests measure the resident memory of the whole
//! process, which another test's sessions (an 8 MiB send window each) would blur. Run in
//! turns the file takes about 10 s on a 2-core machine.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use realmq_client::verdict::judge;
use realmq_client::{run_workers, ClientSummary, RunInfo, RunOutcome, ThreadResult, WorkerConfig};
use realmq_common::io::{socket, Protocol, Shutdown};
use realmq_common::security::Psk;
use realmq_server::{serve, Listener, ServeOptions, ServerSummary};

/// Where every socket of these tests binds: loopback, an ephemeral port.
const LOOPBACK: &str = "127.0.0.1:0";
/// Kernel buffers asked for the server's and the relay's sockets (Linux caps the request at
/// `net.core.rmem_max`).
const SOCKET_BUFFER: usize = 4 << 20;
/// The longest any thread of a test runs, and the longest a test waits for one.
const THREAD_LIFETIME: Duration = Duration::from_secs(60);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking thread fails its test anyway; the data stays readable for the report.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The tests of this file run one at a time (see the module docs); the guard is the turn.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    lock(&TURN)
}

/// Resident memory of this process, in bytes (`VmRSS` of `/proc/self/status`, which is
/// `/proc/self/statm`'s resident pages already multiplied by the page size).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/self/status");
    kib * 1024
}

// ---------------------------------------------------------------------------------------
// The relay: clients → front socket → one upstream socket per client address → server,
// and back the same way.
// ---------------------------------------------------------------------------------------

mod attacker;
mod relay;

use attacker::*;
use relay::*;

/// One run: the client's threads, through the relay, to a server expecting that many
/// sessions; an attacker if `flood`.
struct Setup {
    threads: u32,
    messages_per_thread: u64,
    size: usize,
    /// Messages per second per thread (0: as fast as the window allows).
    rate: f64,
    relay: RelayConfig,
    psk: Option<Psk>,
    flood: Option<FloodConfig>,
}

struct Outcome {
    client: ClientSummary,
    per_thread: Vec<ThreadResult>,
    server: ServerSummary,
    relay: RelayStats,
    flood: FloodReport,
    elapsed: Duration,
}

fn run(setup: Setup) -> Outcome {
    let start = Instant::now();
    let socket = socket::bind_udp(LOOPBACK.parse().unwrap(), SOCKET_BUFFER).unwrap();
    let server_addr = socket.local_addr().unwrap();
    let listener = Listener::Udp(socket);
    let options = ServeOptions {
        exit_after_sessions: Some(u64::from(setup.threads)),
        psk: setup.psk.clone(),
        ..ServeOptions::default()
    };
    let server = Bounded::spawn("server", Shutdown::new(), move |shutdown| {
        serve(listener, &options, &shutdown)
    });
    let relay = Relay::start(server_addr, setup.relay.clone());

    let attacker_stop = Arc::new(AtomicBool::new(false));
    let attacker = setup.flood.map(|config| {
        let (shared, stop) = (Arc::clone(&relay.shared), Arc::clone(&attacker_stop));
        thread::Builder::new()
            .name("attacker".into())
            .spawn(move || flood(server_addr, &shared, config, &stop))
            .unwrap()
    });

    let workers: Vec<WorkerConfig> = (0..setup.threads)
        .map(|index| WorkerConfig {
            quota: Some(setup.messages_per_thread),
            rate: setup.rate,
            size: setup.size,
            loss_seed: 0,
            psk: setup.psk.clone(),
            ..WorkerConfig::new(index, relay.addr)
        })
        .collect();
    let client = Bounded::spawn("client", Shutdown::new(), move |shutdown| {
        run_workers(Protocol::Udp, workers, &shutdown)
    });
    let results = client.wait().expect("client run");
    attacker_stop.store(true, Ordering::Relaxed);
    let flood = attacker.map_or_else(FloodReport::default, |a| {
        a.join().expect("the attacker thread panicked")
    });
    let per_thread: Vec<ThreadResult> = results
        .into_iter()
        .map(|(i, r)| r.unwrap_or_else(|e| panic!("client thread {i}: {e:#}")))
        .collect();
    let info = RunInfo {
        protocol: "udp",
        qos: true,
        threads: setup.threads,
        size: setup.size as u32,
    };
    let client = ClientSummary::new(info, &per_thread);
    let server = server.wait().expect("server run");
    let relay = relay.stop();
    Outcome {
        client,
        per_thread,
        server,
        relay,
        flood,
        elapsed: start.elapsed(),
    }
}

/// Every message was sent, acknowledged and delivered once, under its own session and ID,
/// and every session was the real client's.
fn assert_exactly_once(o: &Outcome, threads: u32, messages: u64) {
    let (c, s) = (&o.client, &o.server.counters);
    assert_eq!(c.sent, messages, "client: {c:?}");
    assert_eq!(c.acked, Some(messages), "client: {c:?}");
    assert_eq!(c.undeliverable, Some(0), "client: {c:?}");
    assert!(!c.unreachable && !c.protocol_violation, "client: {c:?}");
    assert_eq!(c.delivered, Some(messages), "client: {c:?}");
    assert_eq!(s.received, messages, "server: {:?}", o.server);
    assert_eq!(s.corrupt, 0, "server: {:?}", o.server);
    assert_eq!(s.stamped, messages, "server: {:?}", o.server);
    assert_eq!(
        s.sessions_total,
        u64::from(threads),
        "server: {:?}",
        o.server
    );
    assert_eq!(
        s.sessions_ended,
        u64::from(threads),
        "server: {:?}",
        o.server
    );
    assert_eq!(o.relay.clients, threads as usize, "relay: {:?}", o.relay);
}

// ---------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------

#[test]
fn late_datagrams_never_break_exactly_once() {
    let _turn = one_at_a_time();
    let (threads, per_thread) = (2, 100_000);
    let o = run(Setup {
        threads,
        messages_per_thread: per_thread,
        size: 32,
        // As fast as the window allows, the run lasts ~0.2 s: shorter than most holds, so
        // the originals would arrive after the sessions closed (where they are dropped
        // unseen). Paced, it lasts ~1 s and most late originals meet their session.
        rate: 100_000.0,
        relay: RelayConfig {
            hold_probability: 0.005,
            hold_ms: 50..=700,
            seed: 7,
            capture: false,
            drop_longer_than: None,
            drop_byes: false,
        },
        psk: None,
        flood: None,
    });
    eprintln!(
        "late datagrams: {:.2} s; relay {:?}; client retransmitted {:?}; server duplicates {}, out of order {}; udp {:?}",
        o.elapsed.as_secs_f64(),
        o.relay,
        o.client.retransmitted,
        o.server.counters.duplicates,
        o.server.counters.out_of_order,
        o.server.udp
    );
    assert_exactly_once(&o, threads, u64::from(threads) * per_thread);
    assert!(o.relay.held > 0, "nothing was held back: {:?}", o.relay);
    assert!(o.relay.released > 0, "nothing was released: {:?}", o.relay);
    // The late originals of resent messages arrived, and were dropped as duplicates.
    assert!(o.client.retransmitted > Some(0), "client: {:?}", o.client);
    assert!(
        o.server.counters.duplicates > 0,
        "server: {:?}",
        o.server.counters
    );
}

/// The flood test's client: two threads of 100,000 messages at 15,000 per second each, so
/// that the flood (about a second) falls within the sending (about 6.7 s). With 50,000 one
/// CI run on a loaded machine saw the flood begin more than 2 s into a 3.3 s run and end
/// after a thread had drained.
fn flooded(psk: Option<Psk>, seed: u64) -> (Outcome, u32, u64) {
    let (threads, per_thread) = (2, 100_000);
    let o = run(Setup {
        threads,
        messages_per_thread: per_thread,
        size: 64,
        rate: 15_000.0,
        relay: RelayConfig {
            hold_probability: 0.0,
            hold_ms: 0..=0,
            seed,
            capture: true,
            drop_longer_than: None,
            drop_byes: false,
        },
        flood: Some(FloodConfig {
            client_threads: threads as usize,
            authenticated: psk.is_some(),
            seed,
        }),
        psk,
    });
    let f = &o.flood;
    eprintln!(
        "flood: {:.2} s; flood lasted {:?}; direct {:?}, HELLOs {:?} from {} ports, via clients {:?}, \
         answers {:?} and to HELLO ports {:?}; RSS {} -> {} KiB; server udp {:?}; counters {:?}",
        o.elapsed.as_secs_f64(),
        f.ended.zip(f.began).map(|(e, b)| e - b),
        f.direct,
        f.hellos,
        f.hello_ports,
        f.via_clients,
        f.answers,
        f.hello_answers,
        f.rss_before / 1024,
        f.rss_after / 1024,
        o.server.udp,
        o.server.counters
    );
    (o, threads, u64::from(threads) * per_thread)
}

/// What every flood must show, with or without tags.
fn assert_flood_contained(o: &Outcome) {
    let f = &o.flood;
    let (Some(began), Some(ended)) = (f.began, f.ended) else {
        panic!("the flood never began: {f:?}");
    };
    // The flood fell within the sending: it began once sessions were established and
    // ended before any thread had its last message acknowledged.
    for (i, t) in o.per_thread.iter().enumerate() {
        assert!(t.first_send.is_some_and(|s| s < began), "thread {i}");
        assert!(
            t.drained.is_some_and(|d| ended < d),
            "thread {i} drained before the flood ended: make the run longer"
        );
    }
    assert!(f.completed, "the flood was cut short: {f:?}");
    assert_eq!(f.hello_ports, HELLO_PORTS, "{f:?}");
    assert!(f.hellos.datagrams >= 2 * HELLO_PORTS as u64, "{f:?}");
    assert!(f.via_clients.datagrams > 0, "{f:?}");
    let udp = &o.server.udp;
    // Replayed HELLOs with a cookie minted for a client's address, from other addresses.
    assert!(udp.bad_cookies > 0, "{udp:?}");
    // HELLOs were answered with stateless RETRYs, beyond the CLOCK_PROBES per real client
    // (its first HELLO and its clock probes).
    let honest = u64::from(realmq_common::endpoint::CLOCK_PROBES) * o.per_thread.len() as u64;
    assert!(udp.retries_sent > honest, "{udp:?}");
    // Replays from the wrong address, and junk.
    assert!(udp.unknown_session > 0, "{udp:?}");
    assert!(o.server.counters.malformed > 0, "{:?}", o.server.counters);
    // The server answered the attacker's own sockets, but with at most three times the
    // bytes they sent it (RFC 9000 §8.1): the HELLO ports, and all of them together. The
    // answers counted are a lower bound (any later than the attacker's last read are
    // missed), so only the upper limit is sure; that some came shows the measurement was
    // live.
    assert!(f.hello_answers.bytes > 0, "{f:?}");
    assert!(f.hello_answers.bytes <= 3 * f.hellos.bytes, "{f:?}");
    let (sent, answered) = (
        f.direct.bytes + f.hellos.bytes,
        f.answers.bytes + f.hello_answers.bytes,
    );
    assert!(answered <= 3 * sent, "{f:?}");
    // A coarse check: the flood left no unbounded state anywhere in this process (server,
    // client, relay). Resident memory moves for many reasons, hence the generous bound.
    let growth = f.rss_after.saturating_sub(f.rss_before);
    assert!(
        growth < 64 << 20,
        "RSS grew by {growth} bytes during the flood"
    );
}

#[test]
fn a_flood_of_hostile_datagrams_leaves_the_real_client_exactly_once() {
    let _turn = one_at_a_time();
    let (o, threads, messages) = flooded(None, 11);
    assert_exactly_once(&o, threads, messages);
    assert_flood_contained(&o);
    // Exact replays through the clients' own addresses were dropped as duplicates.
    assert!(o.server.counters.duplicates > 0, "{:?}", o.server.counters);
}

#[test]
fn psk_sessions_reject_every_forged_datagram() {
    let _turn = one_at_a_time();
    let psk = Psk::from_bytes(b"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
        .unwrap();
    let (o, threads, messages) = flooded(Some(psk), 13);
    assert_exactly_once(&o, threads, messages);
    assert_flood_contained(&o);
    // Replays, truncated, bit-flipped and random datagrams from the clients' own
    // addresses: none carried a fresh valid tag.
    assert!(o.server.udp.unauthenticated > 0, "{:?}", o.server.udp);
}

#[test]
fn a_path_that_drops_full_datagrams_ends_a_run_soon_after_ctrl_c() {
    // A path that stopped carrying DATA (a narrower MTU beyond the client's first hop, which
    // the kernel's IP_MTU does not show, or a firewall): the relay drops every client session
    // datagram over 60 bytes, so the handshake and the HEARTBEATs pass, the session stays
    // open, and no message arrives. The client's first Ctrl-C used to wait for their
    // acknowledgements until they were given up (with the timeout backing off, far longer
    // than a user waits); now it waits a bounded time, then ends the session without them
    // and the run fails saying so.
    let _turn = one_at_a_time();
    let socket = socket::bind_udp(LOOPBACK.parse().unwrap(), SOCKET_BUFFER).unwrap();
    let server_addr = socket.local_addr().unwrap();
    let server = Bounded::spawn("server", Shutdown::new(), move |shutdown| {
        serve(Listener::Udp(socket), &ServeOptions::default(), &shutdown)
    });
    let relay = Relay::start(
        server_addr,
        RelayConfig {
            hold_probability: 0.0,
            hold_ms: 0..=0,
            seed: 11,
            capture: true,
            drop_longer_than: Some(60),
            drop_byes: false,
        },
    );
    let worker = WorkerConfig {
        quota: Some(100_000),
        ..WorkerConfig::new(0, relay.addr)
    };
    let client = Bounded::spawn("client", Shutdown::new(), move |shutdown| {
        run_workers(Protocol::Udp, vec![worker], &shutdown)
    });
    // The session is open and sending: session datagrams reach the relay.
    let give_up = Instant::now() + THREAD_LIFETIME;
    let mut c = lock(&relay.shared.capture);
    while c.session_seen < NOTIFY_EVERY && Instant::now() < give_up {
        c = relay
            .shared
            .captured
            .wait_timeout(c, Duration::from_millis(100))
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    assert!(c.session_seen >= NOTIFY_EVERY, "the session never sent");
    drop(c);

    client.shutdown.trigger(); // Ctrl-C
    let results = client.wait().expect("the run ends after the interrupt");
    let r = results[0]
        .1
        .as_ref()
        .expect("the thread ends without an error");
    assert!(
        r.sent > 0 && r.acked < r.sent,
        "sent {}, acked {}",
        r.sent,
        r.acked
    );
    let info = RunInfo {
        protocol: "udp",
        qos: true,
        threads: 1,
        size: 64,
    };
    let outcome = RunOutcome {
        results,
        intervals: Vec::new(),
        published: Vec::new(),
    };
    let error = judge(info, outcome, true).error.unwrap_or_default();
    assert!(error.contains("were never acknowledged"), "{error}");
    server.shutdown.trigger();
    server.wait().expect("server run");
    let relay = relay.stop();
    assert!(relay.dropped_long > 0, "{relay:?}");
}

#[test]
fn a_run_whose_byes_are_all_lost_counts_its_delivery_from_the_acks() {
    // The server's final count (BYE) never reaches the client: with heavy loss towards the
    // client, against a server that exits once its sessions ended (`--exit-after-sessions`,
    // as the load-test scripts run it), every BYE can be lost. Every message was
    // acknowledged, and those ACKs are the server's confirmation: the run reports them
    // delivered, not "unknown".
    let _turn = one_at_a_time();
    let messages = 20_000;
    let o = run(Setup {
        threads: 1,
        messages_per_thread: messages,
        size: 64,
        rate: 0.0,
        relay: RelayConfig {
            hold_probability: 0.0,
            hold_ms: 0..=0,
            seed: 13,
            capture: false,
            drop_longer_than: None,
            drop_byes: true,
        },
        psk: None,
        flood: None,
    });
    assert!(o.relay.dropped_byes > 0, "relay: {:?}", o.relay);
    assert!(o.per_thread[0].counted_from_acks, "{:?}", o.per_thread[0]);
    assert_exactly_once(&o, 1, messages);
    assert_eq!(o.client.lost, Some(0), "client: {:?}", o.client);
}
