//! A session between a real [`Client`] and a real [`Server`] in simulated time, for the
//! per-message benches of either end (`server_path`, `client_path`).
//!
//! The client opens the session (the whole handshake, RETRY and cookie included) and writes
//! the datagrams as the client binary does: 64-byte payloads written in place by
//! `Client::send_many` and stamped as the binary stamps them (`Stamper`: the body hashed
//! once), sent in bursts of one full datagram (21 messages with or without authentication),
//! so each datagram ends a burst, carries `ACK_NOW`, and the server writes an ACK after
//! every one. The server's deliver callback does what the server binary's does per message:
//! check the payload stamp (`StampChecker`, which hashes a body shared by consecutive
//! messages once) and record the one-way latency in an HDR histogram (the binary also feeds
//! its timeline and per-session histogram, which are private to it).
//!
//! The benches run in chunks of [`CHUNK`] datagrams: the client writes a chunk, the server
//! takes it in and answers it, and the client takes the ACKs, so its window never fills.
//! Each bench times one end's part of that. Time is simulated: each datagram arrives
//! [`GAP`] after the previous one.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use hdrhistogram::Histogram;
use realmq_common::endpoint::{Client, ClientConfig, Server, ServerConfig, ServerSecrets};
use realmq_common::payload_stamp::{StampChecker, StampedCopies, Stamper};
use realmq_common::security::Psk;
use realmq_common::stats::{latency_histogram, one_way_latency_us, record_latency_us_n};

/// Datagrams per untimed client turn: well inside the client's first congestion window.
const CHUNK: usize = 64;
/// Simulated time between two datagrams (about 4 M messages per second).
const GAP: Duration = Duration::from_micros(5);
/// Payload bytes.
const SIZE: usize = 64;
/// The client's Unix time at its epoch, µs.
const EPOCH_UNIX_US: u64 = 1_700_000_000_000_000;
const CLIENT: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1)),
    40_000,
);

/// Which end's part of each chunk a bench times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// `Client::send` of every message, `Client::poll_transmit` of every datagram,
    /// `Client::handle_datagram` of every ACK.
    Client,
    /// `Server::handle_datagram` of every datagram (delivering), `Server::poll_transmit` of
    /// every ACK.
    Server,
}

/// A server with one established session, its client, and the buffers of one chunk.
struct Bench {
    epoch: Instant,
    now: Instant,
    server: Server,
    client: Client,
    /// Messages that fill one datagram.
    per_datagram: usize,
    payload: Vec<u8>,
    stamper: Stamper,
    checker: StampChecker,
    datagrams: Vec<Vec<u8>>,
    lens: Vec<usize>,
    acks: Vec<Vec<u8>>,
    ack_lens: Vec<usize>,
    latency: Histogram<u64>,
    delivered: u64,
    corrupt: u64,
}

impl Bench {
    /// A session, established, and the number of messages that fill its datagrams found.
    fn new(psk: Option<&Psk>) -> Self {
        let epoch = Instant::now();
        let mut server =
            Server::new(ServerConfig::default(), ServerSecrets::from_test_seed(1)).unwrap();
        let mut client = Client::new(ClientConfig::default(), epoch, EPOCH_UNIX_US, 2).unwrap();
        if let Some(psk) = psk {
            server = server.with_psk(psk.clone());
            client = client.with_psk(psk.clone());
        }
        let mut bench = Self {
            epoch,
            now: epoch,
            server,
            client,
            per_datagram: 0,
            payload: vec![b'x'; SIZE],
            stamper: Stamper::new(&[b'x'; SIZE]),
            checker: StampChecker::new(),
            datagrams: vec![vec![0; 1472]; CHUNK],
            lens: vec![0; CHUNK],
            acks: vec![vec![0; 1472]; CHUNK],
            ack_lens: vec![0; CHUNK],
            latency: latency_histogram(),
            delivered: 0,
            corrupt: 0,
        };
        bench.handshake();
        bench.per_datagram = bench.messages_per_full_datagram();
        bench
    }

    /// HELLO, RETRY, HELLO with the cookie, WELCOME.
    fn handshake(&mut self) {
        let mut buf = [0u8; 1472];
        for _ in 0..4 {
            while let Some(len) = self.client.poll_transmit(self.now, &mut buf) {
                self.server
                    .handle_datagram(self.now, CLIENT, None, &buf[..len], |_| {});
            }
            while let Some(t) = self.server.poll_transmit(self.now, &mut buf) {
                self.client.handle_datagram(self.now, &buf[..t.len]);
            }
            if self.client.is_established() {
                return;
            }
        }
        panic!("no session");
    }

    /// Sends messages one at a time until a second datagram would be needed; returns how
    /// many one datagram held, after running that datagram through the server.
    fn messages_per_full_datagram(&mut self) -> usize {
        let mut fits = 0;
        for n in 1..100 {
            self.send(n);
            let mut count = 0;
            while self.client_transmit(0) {
                count += 1;
                self.server_take(0);
                self.client_take_ack(0);
            }
            if count > 1 {
                return fits;
            }
            fits = n;
        }
        panic!("a datagram holds 100 messages?");
    }

    /// Sends `n` messages at once, as the client binary does.
    fn send(&mut self, n: usize) {
        let (payload, stamper) = (&self.payload, self.stamper);
        let session_id = self.client.session_id();
        let sent = self
            .client
            .send_many(
                self.now,
                payload.len(),
                n as u64,
                StampedCopies {
                    stamper: &stamper,
                    payload,
                    session_id,
                },
            )
            .expect("room in the window");
        assert_eq!(sent, n as u64, "room in the window");
    }

    /// The client writes its next datagram into slot `k`; false if it had none.
    fn client_transmit(&mut self, k: usize) -> bool {
        match self.client.poll_transmit(self.now, &mut self.datagrams[k]) {
            Some(len) => {
                self.lens[k] = len;
                true
            }
            None => false,
        }
    }

    /// The server takes the datagram in slot `k` and writes the ACK it owes, if any, into
    /// slot `k` of the ACKs (length 0 if none).
    fn server_take(&mut self, k: usize) {
        let (latency, delivered, corrupt, checker) = (
            &mut self.latency,
            &mut self.delivered,
            &mut self.corrupt,
            &mut self.checker,
        );
        let now = self.now;
        // The server binary reads the wall clock once per datagram.
        let now_unix_us = EPOCH_UNIX_US + (now - self.epoch).as_micros() as u64 + 20;
        // As the server binary does: runs of messages, each run's stamps checked in one
        // loop and its latency recorded once.
        let datagram = &self.datagrams[k][..self.lens[k]];
        self.server
            .handle_datagram_runs(now, CLIENT, None, datagram, |run| {
                let count = run.messages.len() as u64;
                *corrupt += checker.check_run(&run.messages, run.session_id).corrupt;
                let us = one_way_latency_us(now_unix_us, run.sent_unix_us);
                record_latency_us_n(latency, us, count);
                *delivered += count;
            });
        self.ack_lens[k] = match self.server.poll_transmit(now, &mut self.acks[k]) {
            Some(t) => t.len,
            None => 0,
        };
    }

    /// The client takes the ACK in slot `k`, if there is one.
    fn client_take_ack(&mut self, k: usize) {
        if self.ack_lens[k] > 0 {
            self.client
                .handle_datagram(self.now, &self.acks[k][..self.ack_lens[k]]);
        }
    }

    /// Runs `datagrams` full datagrams through the session; returns the time `side` took.
    fn run(&mut self, datagrams: u64, side: Side) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = datagrams;
        let mut arrivals = [self.now; CHUNK];
        while left > 0 {
            let n = (left as usize).min(CHUNK);
            let start = Instant::now();
            for (k, at) in arrivals.iter_mut().enumerate().take(n) {
                self.now += GAP;
                *at = self.now;
                self.send(self.per_datagram);
                assert!(self.client_transmit(black_box(k)), "a datagram");
            }
            let client_sending = start.elapsed();
            let start = Instant::now();
            for (k, &at) in arrivals.iter().enumerate().take(n) {
                self.now = at;
                self.server_take(black_box(k));
            }
            let server = start.elapsed();
            for k in 0..n {
                assert!(
                    self.ack_lens[k] > 0,
                    "the datagram carried ACK_NOW: an ACK is due"
                );
            }
            let start = Instant::now();
            for k in 0..n {
                self.client_take_ack(black_box(k));
            }
            total += match side {
                Side::Client => client_sending + start.elapsed(),
                Side::Server => server,
            };
            left -= n as u64;
        }
        total
    }

    /// Runs 1,000 datagrams and checks the setup: every datagram delivers `per_datagram`
    /// messages, all intact, and each is answered by an ACK the client accepts.
    fn check(&mut self) {
        let before = (self.delivered, self.client.stats().acked);
        self.run(1_000, Side::Server);
        let per = self.per_datagram as u64;
        assert_eq!(self.delivered - before.0, 1_000 * per);
        assert_eq!(self.client.stats().acked - before.1, 1_000 * per);
        assert_eq!(self.corrupt, 0);
        assert_eq!(self.client.stats().datagrams_rejected, 0);
    }

    /// Payloads delivered that were not their message's own.
    fn corrupt(&self) -> u64 {
        self.corrupt
    }
}

/// The bench group `group` timing `side`, plain and with authenticated sessions.
pub(crate) fn bench_side(c: &mut Criterion, group: &str, side: Side) {
    let psk = Psk::from_bytes(&[0x01; 32]).unwrap();
    for (name, psk) in [("plain", None), ("authenticated", Some(&psk))] {
        let mut bench = Bench::new(psk);
        bench.check();
        let per = bench.per_datagram;
        eprintln!("{group}/{name}: {per} messages per datagram");
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Elements(per as u64));
        g.bench_function(format!("{name}/{per}_messages"), |b| {
            b.iter_custom(|iters| bench.run(iters, side))
        });
        g.finish();
        assert_eq!(bench.corrupt(), 0);
    }
}
