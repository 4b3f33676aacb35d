//! The UDP relay between the clients and the server: it holds datagrams back and keeps
//! copies for the attacker.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use realmq_proto::{Datagram, Frame, Header, PacketKind, MAX_DATAGRAM_SIZE};

use super::*;

/// What the relay does to client→server datagrams besides forwarding them. Server→client
/// datagrams are always forwarded at once.
#[derive(Debug, Clone)]
pub(crate) struct RelayConfig {
    /// Chance that a client datagram is held back.
    pub(crate) hold_probability: f64,
    /// How long a held datagram waits, in milliseconds, drawn uniformly.
    pub(crate) hold_ms: RangeInclusive<u64>,
    /// Seed of the hold decisions and delays.
    pub(crate) seed: u64,
    /// Keep copies of the clients' datagrams for an attacker (see [`Capture`]).
    pub(crate) capture: bool,
    /// Drop client session datagrams (not handshakes) longer than this: what a path that
    /// stopped carrying the larger datagrams does (a narrower MTU beyond the client's first
    /// hop, a firewall). A limit below any DATA datagram's length lets only HEARTBEATs and
    /// STOPs through. `None`: forward all.
    pub(crate) drop_longer_than: Option<usize>,
    /// Drop every BYE from the server: a client that ends its session hears no final count.
    pub(crate) drop_byes: bool,
}

/// Handshake datagrams kept for the attacker.
pub(crate) const CAPTURED_HANDSHAKES: usize = 16;
/// The latest session datagrams kept for the attacker.
pub(crate) const CAPTURED_SESSION: usize = 1024;
/// The relay notifies waiters of [`Shared::captured`] on every handshake datagram and
/// every this many session datagrams (a notification costs a system call).
pub(crate) const NOTIFY_EVERY: u64 = 64;
/// Most client addresses the relay serves.
pub(crate) const MAX_CLIENTS: usize = 16;

/// Copies of what the clients sent, bounded, for an attacker.
#[derive(Debug, Default)]
pub(crate) struct Capture {
    /// The first handshake datagrams (HELLOs, with and without cookie).
    pub(crate) handshakes: Vec<Vec<u8>>,
    /// The latest session datagrams.
    pub(crate) session: VecDeque<Vec<u8>>,
    /// Session datagrams seen in all.
    pub(crate) session_seen: u64,
    /// A clone of each upstream socket, in the order the clients appeared: what is sent on
    /// one reaches the server from that client's address, as the server sees it.
    pub(crate) upstreams: Vec<StdUdpSocket>,
}

/// What the relay thread shares with the attacker.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) capture: Mutex<Capture>,
    /// Notified when `capture` grew (see [`NOTIFY_EVERY`]).
    pub(crate) captured: Condvar,
}

/// What the relay did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RelayStats {
    /// Datagrams from the clients.
    pub(crate) from_clients: u64,
    /// Of those, held back.
    pub(crate) held: u64,
    /// Held datagrams sent on after their delay (the others were still held at the end).
    pub(crate) released: u64,
    /// Datagrams from the server to the clients.
    pub(crate) to_clients: u64,
    /// Datagrams the relay could not send on (socket buffer full, or the server had gone).
    pub(crate) send_failures: u64,
    /// Client session datagrams dropped for their length ([`RelayConfig::drop_longer_than`]).
    pub(crate) dropped_long: u64,
    /// Server BYEs dropped ([`RelayConfig::drop_byes`]).
    pub(crate) dropped_byes: u64,
    /// Client addresses seen, one upstream socket each.
    pub(crate) clients: usize,
}

/// A running relay; [`Relay::stop`] ends it.
pub(crate) struct Relay {
    /// Where clients send (the relay's front socket).
    pub(crate) addr: SocketAddr,
    pub(crate) shared: Arc<Shared>,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) waker: Arc<Waker>,
    pub(crate) thread: thread::JoinHandle<RelayStats>,
}

pub(crate) const FRONT: Token = Token(0);
pub(crate) const RELAY_WAKER: Token = Token(1);
/// Upstream socket `i` is registered as `Token(FIRST_UPSTREAM + i)`.
pub(crate) const FIRST_UPSTREAM: usize = 2;
/// Datagrams read from one socket per pass of the relay's loop.
pub(crate) const RELAY_BUDGET: usize = 256;

impl Relay {
    /// A relay to `server` on its own thread, on an ephemeral loopback port.
    pub(crate) fn start(server: SocketAddr, config: RelayConfig) -> Self {
        let poll = Poll::new().expect("relay: poll");
        let mut front = socket::bind_udp(LOOPBACK.parse().unwrap(), SOCKET_BUFFER).unwrap();
        let addr = front.local_addr().unwrap();
        poll.registry()
            .register(&mut front, FRONT, Interest::READABLE)
            .unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), RELAY_WAKER).unwrap());
        let shared = Arc::new(Shared::default());
        let stop = Arc::new(AtomicBool::new(false));
        let relay = RelayLoop {
            server,
            rng: fastrand::Rng::with_seed(config.seed),
            config,
            poll,
            front,
            upstreams: Vec::new(),
            by_client: HashMap::new(),
            held: BinaryHeap::new(),
            shared: Arc::clone(&shared),
            stop: Arc::clone(&stop),
            stats: RelayStats::default(),
            buf: vec![0; MAX_DATAGRAM_SIZE.max(1 << 16)],
        };
        let thread = thread::Builder::new()
            .name("relay".into())
            .spawn(move || relay.run())
            .unwrap();
        Self {
            addr,
            shared,
            stop,
            waker,
            thread,
        }
    }

    /// Stops the relay (datagrams still held are dropped) and returns what it did.
    pub(crate) fn stop(self) -> RelayStats {
        self.stop.store(true, Ordering::Relaxed);
        self.waker.wake().expect("wake the relay");
        self.thread.join().expect("the relay thread panicked")
    }
}

/// A held datagram: release time, arrival order (a tie-breaker), upstream index, bytes.
pub(crate) type Held = Reverse<(Instant, u64, usize, Vec<u8>)>;

/// The relay thread's state. One `mio::Poll` over the front socket, the upstream sockets and
/// a waker; each pass reads every socket until `WouldBlock` (at most [`RELAY_BUDGET`]
/// datagrams each), then releases the held datagrams that are due. A datagram that cannot
/// be sent is dropped and counted: the relay is the network, and the network may lose.
pub(crate) struct RelayLoop {
    pub(crate) server: SocketAddr,
    pub(crate) config: RelayConfig,
    pub(crate) rng: fastrand::Rng,
    pub(crate) poll: Poll,
    pub(crate) front: UdpSocket,
    /// (client address, upstream socket connected to the server).
    pub(crate) upstreams: Vec<(SocketAddr, UdpSocket)>,
    pub(crate) by_client: HashMap<SocketAddr, usize>,
    /// Held client datagrams, earliest release first.
    pub(crate) held: BinaryHeap<Held>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) stats: RelayStats,
    pub(crate) buf: Vec<u8>,
}

impl RelayLoop {
    pub(crate) fn run(mut self) -> RelayStats {
        let deadline = Instant::now() + THREAD_LIFETIME;
        let mut events = Events::with_capacity(64);
        let mut more = false;
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let next = self
                .held
                .peek()
                .map_or(deadline, |Reverse((at, ..))| (*at).min(deadline));
            let timeout = if more {
                Duration::ZERO
            } else {
                next.saturating_duration_since(now)
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                assert_eq!(e.kind(), io::ErrorKind::Interrupted, "relay poll: {e}");
            }
            // Readiness is a hint: every socket is read on every pass.
            more = self.forward_up();
            for i in 0..self.upstreams.len() {
                more |= self.forward_down(i);
            }
            self.release(Instant::now());
        }
        self.stats.clients = self.upstreams.len();
        self.stats
    }

    /// Reads client datagrams and forwards, holds and captures each. Returns whether the
    /// budget ran out before `WouldBlock`.
    pub(crate) fn forward_up(&mut self) -> bool {
        for _ in 0..RELAY_BUDGET {
            let (len, client) = match self.front.recv_from(&mut self.buf) {
                Ok(received) => received,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                // Interrupted, or an ICMP error for an earlier send to a client that left.
                Err(_) => continue,
            };
            self.stats.from_clients += 1;
            let i = self.upstream_for(client);
            let bytes = &self.buf[..len];
            if self.config.capture {
                capture(&self.shared, bytes);
            }
            let session = Header::parse(bytes).is_ok_and(|h| h.kind == PacketKind::Session);
            if session && self.config.drop_longer_than.is_some_and(|max| len > max) {
                self.stats.dropped_long += 1;
            } else if self.rng.f64() < self.config.hold_probability {
                let delay = Duration::from_millis(self.rng.u64(self.config.hold_ms.clone()));
                let at = Instant::now() + delay;
                self.held
                    .push(Reverse((at, self.stats.held, i, bytes.to_vec())));
                self.stats.held += 1;
            } else if self.upstreams[i].1.send(bytes).is_err() {
                self.stats.send_failures += 1;
            }
        }
        true
    }

    /// Reads what the server sent to client `i` and sends it on. Returns whether the budget
    /// ran out before `WouldBlock`.
    pub(crate) fn forward_down(&mut self, i: usize) -> bool {
        let (client, upstream) = &self.upstreams[i];
        for _ in 0..RELAY_BUDGET {
            let len = match upstream.recv(&mut self.buf) {
                Ok(len) => len,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                // Interrupted, or the server has gone (ICMP port unreachable).
                Err(_) => continue,
            };
            self.stats.to_clients += 1;
            if self.config.drop_byes && is_bye(&self.buf[..len]) {
                self.stats.dropped_byes += 1;
                continue;
            }
            if self.front.send_to(&self.buf[..len], *client).is_err() {
                self.stats.send_failures += 1;
            }
        }
        true
    }

    /// Sends on the held datagrams whose time has come.
    pub(crate) fn release(&mut self, now: Instant) {
        while self.held.peek().is_some_and(|Reverse((at, ..))| *at <= now) {
            let Some(Reverse((_, _, i, bytes))) = self.held.pop() else {
                break;
            };
            self.stats.released += 1;
            if self.upstreams[i].1.send(&bytes).is_err() {
                self.stats.send_failures += 1;
            }
        }
    }

    /// The upstream socket of `client`'s datagrams, opened at its first one.
    pub(crate) fn upstream_for(&mut self, client: SocketAddr) -> usize {
        if let Some(&i) = self.by_client.get(&client) {
            return i;
        }
        let i = self.upstreams.len();
        assert!(i < MAX_CLIENTS, "relay: more than {MAX_CLIENTS} clients");
        let std = StdUdpSocket::bind(LOOPBACK).expect("relay: bind an upstream socket");
        std.connect(self.server).unwrap();
        socket::set_buffers(&std, SOCKET_BUFFER);
        std.set_nonblocking(true).unwrap();
        let for_attacker = std.try_clone().unwrap();
        let mut upstream = UdpSocket::from_std(std);
        self.poll
            .registry()
            .register(&mut upstream, Token(FIRST_UPSTREAM + i), Interest::READABLE)
            .unwrap();
        self.upstreams.push((client, upstream));
        self.by_client.insert(client, i);
        lock(&self.shared.capture).upstreams.push(for_attacker);
        self.shared.captured.notify_all();
        i
    }
}

/// Keeps a copy of a client datagram (see [`Capture`]).
pub(crate) fn capture(shared: &Shared, bytes: &[u8]) {
    let Ok(header) = Header::parse(bytes) else {
        return;
    };
    let mut c = lock(&shared.capture);
    let notify = match header.kind {
        PacketKind::Handshake => {
            if c.handshakes.len() < CAPTURED_HANDSHAKES {
                c.handshakes.push(bytes.to_vec());
            }
            true
        }
        PacketKind::Session => {
            let mut copy = if c.session.len() == CAPTURED_SESSION {
                c.session.pop_front().unwrap_or_default()
            } else {
                Vec::new()
            };
            copy.clear();
            copy.extend_from_slice(bytes);
            c.session.push_back(copy);
            c.session_seen += 1;
            c.session_seen.is_multiple_of(NOTIFY_EVERY)
        }
    };
    drop(c);
    if notify {
        shared.captured.notify_all();
    }
}

/// Whether `bytes` is a HELLO echoing a cookie (the second HELLO of a handshake).
pub(crate) fn is_hello_with_cookie(bytes: &[u8]) -> bool {
    Datagram::parse(bytes).is_ok_and(|d| {
        d.frames()
            .any(|f| matches!(f, Frame::Hello(h) if !h.token.is_empty()))
    })
}

/// Whether `bytes` is a datagram carrying a BYE (the server's final count).
pub(crate) fn is_bye(bytes: &[u8]) -> bool {
    Datagram::parse(bytes).is_ok_and(|d| d.frames().any(|f| matches!(f, Frame::Bye(_))))
}

// ---------------------------------------------------------------------------------------
// The attacker
// ---------------------------------------------------------------------------------------
