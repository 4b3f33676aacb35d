//! Fuzzes the session layer end to end: one [`Server`] and one or two [`Client`]s of
//! `realmq-common`, joined by a network the fuzzer controls.
//!
//! The input is a [`Script`]: a setup (server secrets and wall clock, which pre-shared key each end
//! holds, client nonces and clocks) and up to [`MAX_OPS`] operations. The operations let the honest
//! endpoints talk through their real datagrams (`poll_transmit` → `handle_datagram`), so that
//! inputs reach established sessions, DATA, ACKs, STOP and BYE, and let the fuzzer play the network
//! and an attacker: drop, duplicate, reorder, redirect, mutate (bit flips, overwrites, truncation,
//! appended bytes) and replay captured datagrams, inject arbitrary bytes into the server from any
//! of a few source addresses (clients' addresses included) or into a client, send messages,
//! `finish`, and move simulated time (running the timers that `poll_timeout` reports due).
//!
//! Invariants, checked as they happen and after every operation:
//!
//! 1. nothing panics;
//! 2. the server delivers each `(session id, message id)` at most once;
//! 3. a message delivered from an *authentic* datagram (the exact bytes an honest client
//!    wrote, arriving from that client's address) is one that client sent under that ID,
//!    with that payload;
//! 4. with a pre-shared key on the server, *every* delivery is in the session of an honest
//!    client holding that key, and is a message it sent under that ID, with that payload;
//!    without a key, forged messages may be delivered (invariant 2 still holds for them);
//! 5. the server's `received` counter equals the deliveries seen, and a closed session's
//!    `received` equals the deliveries seen in it; with a key, a client's BYE reports
//!    exactly the deliveries of its session;
//! 6. a client never counts more messages acknowledged than sent (`acked <= sent`), and,
//!    with the server's key, never more than the server delivered in its session;
//! 7. `sessions_open <= max_sessions`;
//! 8. no busy loop: after `handle_timeout(now)` and draining `poll_transmit(now)`, no
//!    endpoint's `poll_timeout()` is still at or before `now`.
#![no_main]

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use realmq_common::endpoint::{
    Client, ClientConfig, ClientEvent, Delivery, Server, ServerConfig, ServerEvent, ServerSecrets,
};
use realmq_common::security::Psk;

/// Most operations one input runs, so that one input runs fast.
const MAX_OPS: usize = 2_000;
/// Most datagrams in flight each way; beyond it the oldest is lost.
const MAX_IN_FLIGHT: usize = 256;
/// How many of the last datagrams seen on the wire can be replayed.
const MAX_HISTORY: usize = 64;
/// Room for any datagram the endpoints write (their default maximum is 1472 bytes).
const BUF_LEN: usize = 2048;
/// Most rounds of one [`Op::Flush`].
const MAX_FLUSH_ROUNDS: u8 = 8;
/// Most messages one [`Op::Send`] sends.
const MAX_BURST: u8 = 16;
/// Payload lengths range over `0..MAX_PAYLOAD_LEN`, past what a datagram carries (`TooLarge`).
const MAX_PAYLOAD_LEN: u16 = 1_600;
/// The longest [`Op::AdvanceToDeadline`] jump: a forged WELCOME can announce a heartbeat
/// interval of centuries, and simulated time should stay in the range of real runs.
const MAX_JUMP: Duration = Duration::from_secs(3_600);
/// The largest `epoch_unix_us` the clients get: the largest varint, 2^62 − 1 (a HELLO cannot
/// carry more). Larger values make a client spin: see `fuzz/RESULTS.md`, finding 1.
const MAX_EPOCH_UNIX_US: u64 = (1 << 62) - 1;
/// How often the timers run at one instant before a still-due deadline counts as a busy loop.
const MAX_TIMER_PASSES: usize = 4;

/// One of two pre-shared keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
enum Key {
    A,
    B,
}

impl Key {
    /// The key, as a raw key file would give it.
    fn psk(self) -> Psk {
        // A control byte makes `Psk::from_bytes` take the content as a raw key.
        let bytes: &[u8] = match self {
            Key::A => b"\x01realmq fuzz key A, 32 bytes long",
            Key::B => b"\x01realmq fuzz key B, 32 bytes long",
        };
        Psk::from_bytes(bytes).expect("a valid test key")
    }
}

/// How one client starts.
#[derive(Debug, Arbitrary)]
struct ClientSetup {
    key: Option<Key>,
    nonce: u64,
    epoch_unix_us: u64,
    /// Without QoS (`--no-qos`): nothing resent, datagrams marked `NO_RESEND`.
    unreliable: bool,
}

/// The endpoints before the first operation.
#[derive(Debug, Arbitrary)]
struct Setup {
    /// Seed of the server's test secrets (cookie key, session ids).
    seed: u64,
    server_key: Option<Key>,
    /// The server's wall clock at the start, µs (0: none, and the clients do not probe it).
    server_unix_us: u64,
    first: ClientSetup,
    second: Option<ClientSetup>,
}

/// The whole input.
#[derive(Debug, Arbitrary)]
struct Script {
    setup: Setup,
    ops: Vec<Op>,
}

/// Where an injected, redirected or replayed datagram goes.
#[derive(Debug, Clone, Copy, Arbitrary)]
enum Target {
    /// To the server, from [`address`]`(from)`: a client's address or another one.
    Server { from: u8 },
    /// To a client (index modulo the number of clients).
    Client { client: u8 },
}

/// A change to a datagram's bytes.
#[derive(Debug, Clone, Arbitrary)]
enum Mutation {
    FlipBit { at: u16, bit: u8 },
    SetByte { at: u16, value: u8 },
    Truncate { len: u16 },
    Append { bytes: Vec<u8> },
}

/// What the network does to one datagram in flight.
#[derive(Debug, Clone, Arbitrary)]
enum Fate {
    Deliver,
    Drop,
    /// Delivers a copy and leaves the datagram in flight.
    Duplicate,
    /// Moves it to the back of its queue.
    Postpone,
    Mutate(Mutation),
    Redirect(Target),
}

/// One step of the script.
#[derive(Debug, Clone, Arbitrary)]
enum Op {
    /// Every endpoint writes what it has to send onto the network.
    Transmit,
    /// Rounds of: transmit, then deliver everything in flight in order.
    Flush { rounds: u8 },
    /// One datagram in flight (chosen by index) meets its fate.
    Deliver {
        to_server: bool,
        index: u8,
        fate: Fate,
    },
    /// A datagram seen on the wire earlier is sent again, possibly changed, anywhere.
    Replay {
        index: u8,
        target: Target,
        mutation: Option<Mutation>,
    },
    /// Arbitrary bytes reach the server or a client.
    Inject { target: Target, bytes: Vec<u8> },
    /// A client sends `count` messages (modulo [`MAX_BURST`]) of `len` bytes.
    Send { client: u8, count: u8, len: u16 },
    /// A client finishes its session.
    Finish { client: u8 },
    /// Time moves on by microseconds; due timers run.
    AdvanceMicros { micros: u16 },
    /// Time moves on by milliseconds; due timers run.
    AdvanceMillis { millis: u16 },
    /// Time jumps to the earliest deadline; due timers run.
    AdvanceToDeadline,
}

/// A datagram in flight, or remembered on the wire for replays.
#[derive(Debug, Clone)]
struct Packet {
    bytes: Vec<u8>,
    /// Upstream: the client that wrote it. Downstream: the client it is addressed to.
    client: usize,
    to_server: bool,
}

/// An honest client and what the checks need to know about it.
struct Honest {
    client: Client,
    key: Option<Key>,
    addr: SocketAddr,
    /// Every message accepted by `send`: ID → (sequence number, length), from which
    /// [`honest_payload`] rebuilds the payload.
    sent: HashMap<u64, (u32, u16)>,
    next_seq: u32,
}

impl Honest {
    /// The session this client holds, if established.
    fn session(&self) -> Option<u32> {
        Some(self.client.session_id()).filter(|&id| id != 0)
    }
}

/// The payload of client `client`'s `seq`-th message: distinct per client and message.
fn honest_payload(client: usize, seq: u32, len: u16) -> Vec<u8> {
    let [a, b, c, d] = seq.to_le_bytes();
    let stamp = [client as u8, a, b, c, d];
    (0..usize::from(len))
        .map(|i| stamp[i % stamp.len()] ^ (i as u8))
        .collect()
}

/// Source addresses: the first two are the clients' (index 0 and 1), the rest belong to no
/// honest endpoint (the first shares client 0's IP).
fn address(n: u8) -> SocketAddr {
    const ADDRESSES: [&str; 6] = [
        "192.0.2.1:4000",
        "192.0.2.2:4000",
        "192.0.2.1:4001",
        "198.51.100.7:9000",
        "[2001:db8::1]:4000",
        "0.0.0.0:0",
    ];
    ADDRESSES[usize::from(n) % ADDRESSES.len()]
        .parse()
        .expect("a valid address")
}

/// What the oracle has seen the server deliver.
#[derive(Default)]
struct Deliveries {
    /// Every `(session id, message id)` delivered.
    seen: HashSet<(u32, u64)>,
    /// Deliveries per session id.
    per_session: HashMap<u32, u64>,
    /// All deliveries.
    total: u64,
}

/// The server, the clients, the network between them, and the checks.
struct World {
    now: Instant,
    server: Server,
    server_key: Option<Key>,
    clients: Vec<Honest>,
    up: VecDeque<Packet>,
    down: VecDeque<Packet>,
    history: VecDeque<Packet>,
    delivered: Deliveries,
    buf: Vec<u8>,
}

impl World {
    /// The endpoints of `setup` at an arbitrary instant, nothing in flight.
    fn new(setup: &Setup) -> Self {
        let now = Instant::now();
        let secrets = ServerSecrets::from_test_seed(setup.seed);
        let server = Server::new(ServerConfig::default(), secrets).expect("default config");
        let mut server = server.with_wall_clock(now, setup.server_unix_us);
        if let Some(key) = setup.server_key {
            server = server.with_psk(key.psk());
        }
        let clients = std::iter::once(&setup.first)
            .chain(setup.second.as_ref())
            .enumerate()
            .map(|(i, s)| {
                let epoch_unix_us = s.epoch_unix_us & MAX_EPOCH_UNIX_US;
                let mut config = ClientConfig::default();
                config.sender.reliable = !s.unreliable;
                let client =
                    Client::new(config, now, epoch_unix_us, s.nonce).expect("default config");
                Honest {
                    client: match s.key {
                        Some(key) => client.with_psk(key.psk()),
                        None => client,
                    },
                    key: s.key,
                    addr: address(i as u8),
                    sent: HashMap::new(),
                    next_seq: 0,
                }
            })
            .collect();
        Self {
            now,
            server,
            server_key: setup.server_key,
            clients,
            up: VecDeque::new(),
            down: VecDeque::new(),
            history: VecDeque::new(),
            delivered: Deliveries::default(),
            buf: vec![0; BUF_LEN],
        }
    }

    /// A client chosen by the fuzzer: `n` modulo the number of clients.
    fn client_index(&self, n: u8) -> usize {
        usize::from(n) % self.clients.len()
    }

    /// Runs one operation, then drains the events and checks the counters.
    fn run(&mut self, op: Op) {
        match op {
            Op::Transmit => self.transmit(),
            Op::Flush { rounds } => self.flush(rounds % MAX_FLUSH_ROUNDS + 1),
            Op::Deliver {
                to_server,
                index,
                fate,
            } => self.deliver_one(to_server, index, fate),
            Op::Replay {
                index,
                target,
                mutation,
            } => self.replay(index, target, mutation),
            Op::Inject { target, bytes } => self.send_to(target, &bytes, None),
            Op::Send { client, count, len } => {
                let c = self.client_index(client);
                self.send(c, count % MAX_BURST + 1, len % MAX_PAYLOAD_LEN);
            }
            Op::Finish { client } => {
                let c = self.client_index(client);
                self.clients[c].client.finish(self.now);
            }
            Op::AdvanceMicros { micros } => {
                self.advance(Duration::from_micros(micros.into()));
            }
            Op::AdvanceMillis { millis } => {
                self.advance(Duration::from_millis(millis.into()));
            }
            Op::AdvanceToDeadline => {
                let next = self.next_deadline();
                let step = next.map_or(Duration::from_millis(10), |t| {
                    t.saturating_duration_since(self.now)
                });
                self.advance(step.min(MAX_JUMP));
            }
        }
        self.drain_events();
        self.check_counters();
    }

    /// Every endpoint's outgoing datagrams onto the network (the server's to addresses of
    /// no honest client are lost).
    fn transmit(&mut self) {
        for c in 0..self.clients.len() {
            while let Some(len) = self.clients[c]
                .client
                .poll_transmit(self.now, &mut self.buf)
            {
                let bytes = self.buf[..len].to_vec();
                self.put_in_flight(Packet {
                    bytes,
                    client: c,
                    to_server: true,
                });
            }
        }
        while let Some(t) = self.server.poll_transmit(self.now, &mut self.buf) {
            let bytes = self.buf[..t.len].to_vec();
            match self.clients.iter().position(|c| c.addr == t.destination) {
                Some(client) => self.put_in_flight(Packet {
                    bytes,
                    client,
                    to_server: false,
                }),
                None => self.remember(Packet {
                    bytes,
                    client: 0,
                    to_server: false,
                }),
            }
        }
    }

    /// Puts `packet` on the network (and in the history), losing the oldest beyond
    /// [`MAX_IN_FLIGHT`].
    fn put_in_flight(&mut self, packet: Packet) {
        self.remember(packet.clone());
        let queue = if packet.to_server {
            &mut self.up
        } else {
            &mut self.down
        };
        if queue.len() >= MAX_IN_FLIGHT {
            queue.pop_front();
        }
        queue.push_back(packet);
    }

    /// Keeps `packet` for replays, forgetting the oldest beyond [`MAX_HISTORY`].
    fn remember(&mut self, packet: Packet) {
        if self.history.len() >= MAX_HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(packet);
    }

    /// A lossless, in-order network for a few rounds: how inputs reach deep states.
    fn flush(&mut self, rounds: u8) {
        for _ in 0..rounds {
            self.transmit();
            if self.up.is_empty() && self.down.is_empty() {
                return;
            }
            while let Some(p) = self.up.pop_front() {
                self.arrive(&p);
            }
            while let Some(p) = self.down.pop_front() {
                self.arrive(&p);
            }
        }
    }

    /// A datagram in flight arrives where it was going, unchanged.
    fn arrive(&mut self, p: &Packet) {
        if p.to_server {
            let from = self.clients[p.client].addr;
            self.server_receives(from, &p.bytes, Some(p.client));
        } else {
            self.clients[p.client]
                .client
                .handle_datagram(self.now, &p.bytes);
        }
    }

    /// The datagram at `index` (modulo the queue's length) in one direction meets `fate`.
    fn deliver_one(&mut self, to_server: bool, index: u8, fate: Fate) {
        let queue = if to_server {
            &mut self.up
        } else {
            &mut self.down
        };
        if queue.is_empty() {
            return;
        }
        let i = usize::from(index) % queue.len();
        let p = match fate {
            Fate::Duplicate => queue[i].clone(),
            _ => queue.remove(i).expect("index in range"),
        };
        match fate {
            Fate::Deliver | Fate::Duplicate => self.arrive(&p),
            Fate::Drop => {}
            Fate::Postpone => self.put_in_flight(p),
            Fate::Mutate(m) => {
                let bytes = mutate(p.bytes, &m);
                let target = match p.to_server {
                    true => Target::Server {
                        from: p.client as u8,
                    },
                    false => Target::Client {
                        client: p.client as u8,
                    },
                };
                self.send_to(target, &bytes, None);
            }
            Fate::Redirect(target) => {
                let origin = p.to_server.then_some(p.client);
                self.send_to(target, &p.bytes, origin);
            }
        }
    }

    /// A datagram from the history reaches `target`, changed by `mutation` if any.
    fn replay(&mut self, index: u8, target: Target, mutation: Option<Mutation>) {
        if self.history.is_empty() {
            return;
        }
        let p = self.history[usize::from(index) % self.history.len()].clone();
        match mutation {
            Some(m) => self.send_to(target, &mutate(p.bytes, &m), None),
            None => self.send_to(target, &p.bytes, p.to_server.then_some(p.client)),
        }
    }

    /// `bytes` reach `target`; `origin` is the honest client that wrote them unchanged.
    fn send_to(&mut self, target: Target, bytes: &[u8], origin: Option<usize>) {
        match target {
            Target::Server { from } => self.server_receives(address(from), bytes, origin),
            Target::Client { client } => {
                let c = self.client_index(client);
                self.clients[c].client.handle_datagram(self.now, bytes);
            }
        }
    }

    /// The server takes in `bytes` from `from`; every delivery is checked as it happens.
    fn server_receives(&mut self, from: SocketAddr, bytes: &[u8], origin: Option<usize>) {
        let clients = &self.clients;
        let authentic = origin.filter(|&c| clients[c].addr == from);
        let server_key = self.server_key;
        let delivered = &mut self.delivered;
        self.server
            .handle_datagram(self.now, from, None, bytes, |d| {
                check_delivery(&d, authentic, server_key, clients, delivered)
            });
    }

    /// Client `c` sends up to `count` messages of `len` bytes, remembering each under the ID
    /// `send` returned; stops at the first refusal.
    fn send(&mut self, c: usize, count: u8, len: u16) {
        let honest = &mut self.clients[c];
        for _ in 0..count {
            let seq = honest.next_seq;
            let expected_id = honest.client.next_message_id();
            let payload = honest_payload(c, seq, len);
            let Ok(id) = honest.client.send(self.now, &payload) else {
                return;
            };
            assert_eq!(
                Some(id),
                expected_id,
                "send returned another ID than announced"
            );
            let previous = honest.sent.insert(id, (seq, len));
            assert!(previous.is_none(), "client {c} reused message ID {id}");
            honest.next_seq += 1;
        }
    }

    /// The earliest `poll_timeout()` of all endpoints.
    fn next_deadline(&self) -> Option<Instant> {
        self.clients
            .iter()
            .filter_map(|c| c.client.poll_timeout())
            .chain(self.server.poll_timeout())
            .min()
    }

    /// Moves time on by `step`, then runs every due timer and writes what they made due.
    fn advance(&mut self, step: Duration) {
        self.now += step;
        let now = self.now;
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        for _ in 0..MAX_TIMER_PASSES {
            let mut ran = false;
            for c in &mut self.clients {
                if due(c.client.poll_timeout()) {
                    c.client.handle_timeout(now);
                    ran = true;
                }
            }
            if due(self.server.poll_timeout()) {
                self.server.handle_timeout(now);
                ran = true;
            }
            if !ran {
                return;
            }
            self.transmit();
        }
        for (i, c) in self.clients.iter().enumerate() {
            assert!(
                !due(c.client.poll_timeout()),
                "busy loop: client {i} ({:?}) still due at {:?} after handle_timeout \
                 and poll_transmit",
                c.client.state(),
                c.client.poll_timeout().map(|t| now - t),
            );
        }
        assert!(
            !due(self.server.poll_timeout()),
            "busy loop: the server is still due after handle_timeout and poll_transmit"
        );
    }

    /// Drains and checks every event.
    fn drain_events(&mut self) {
        while let Some(event) = self.server.poll_event() {
            if let ServerEvent::SessionClosed {
                session_id,
                received,
                ..
            } = event
            {
                let seen = self.delivered.in_session(session_id);
                assert_eq!(received, seen, "session {session_id} closed: {event:?}");
            }
        }
        for (i, c) in self.clients.iter_mut().enumerate() {
            while let Some(event) = c.client.poll_event() {
                match event {
                    ClientEvent::Established { session_id } => {
                        assert_eq!(session_id, c.client.session_id(), "client {i}: {event:?}");
                    }
                    ClientEvent::Closed {
                        server_received: Some(n),
                    } if c.key.is_some() && c.key == self.server_key => {
                        let session = c.session().expect("closed by BYE, so established");
                        let seen = self.delivered.in_session(session);
                        assert_eq!(n, seen, "client {i}: the server's BYE: {event:?}");
                    }
                    _ => {}
                }
            }
        }
    }

    /// The counters' invariants.
    fn check_counters(&self) {
        let s = self.server.stats();
        assert!(s.sessions_open <= ServerConfig::default().max_sessions as u64);
        assert_eq!(s.received, self.delivered.total, "server stats: {s:?}");
        for (i, c) in self.clients.iter().enumerate() {
            let stats = c.client.stats();
            assert!(stats.acked <= stats.sent, "client {i}: {stats:?}");
            assert_eq!(stats.sent, c.sent.len() as u64, "client {i}: {stats:?}");
            if c.key.is_some() && c.key == self.server_key {
                let seen = c.session().map_or(0, |s| self.delivered.in_session(s));
                assert!(
                    stats.acked <= seen,
                    "client {i}: {} acknowledged, {seen} delivered",
                    stats.acked
                );
            }
        }
    }
}

impl Deliveries {
    /// Deliveries seen in session `session_id`.
    fn in_session(&self, session_id: u32) -> u64 {
        self.per_session.get(&session_id).copied().unwrap_or(0)
    }
}

/// Checks one delivery (invariants 2 to 4) and records it.
fn check_delivery(
    d: &Delivery<'_>,
    authentic: Option<usize>,
    server_key: Option<Key>,
    clients: &[Honest],
    delivered: &mut Deliveries,
) {
    assert!(
        delivered.seen.insert((d.session_id, d.id)),
        "message {} of session {} delivered twice",
        d.id,
        d.session_id
    );
    *delivered.per_session.entry(d.session_id).or_default() += 1;
    delivered.total += 1;
    let owner = match (server_key, authentic) {
        (Some(key), _) => {
            let owner = clients
                .iter()
                .position(|c| c.session() == Some(d.session_id) && c.key == Some(key));
            Some(owner.unwrap_or_else(|| {
                panic!("with a PSK, session {} belongs to no client", d.session_id)
            }))
        }
        (None, Some(c)) => Some(c),
        // Without a key, forged messages are delivered like honest ones.
        (None, None) => None,
    };
    let Some(c) = owner else {
        return;
    };
    let honest = &clients[c];
    assert_eq!(
        Some(d.session_id),
        honest.session(),
        "client {c}'s datagram"
    );
    let Some(&(seq, len)) = honest.sent.get(&d.id) else {
        panic!("client {c} never sent message {}", d.id);
    };
    assert!(
        d.payload == honest_payload(c, seq, len),
        "message {} of client {c}: payload differs from what was sent",
        d.id
    );
}

/// `bytes` changed by `m`.
fn mutate(mut bytes: Vec<u8>, m: &Mutation) -> Vec<u8> {
    match m {
        Mutation::FlipBit { at, bit } => {
            if !bytes.is_empty() {
                let i = usize::from(*at) % bytes.len();
                bytes[i] ^= 1 << (bit % 8);
            }
        }
        Mutation::SetByte { at, value } => {
            if !bytes.is_empty() {
                let i = usize::from(*at) % bytes.len();
                bytes[i] = *value;
            }
        }
        Mutation::Truncate { len } => bytes.truncate(usize::from(*len) % (bytes.len() + 1)),
        Mutation::Append { bytes: extra } => bytes.extend_from_slice(extra),
    }
    bytes
}

fuzz_target!(|script: Script| {
    let mut world = World::new(&script.setup);
    for op in script.ops.into_iter().take(MAX_OPS) {
        world.run(op);
    }
});
