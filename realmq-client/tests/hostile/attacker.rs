//! The attacker: floods the server with replays, forgeries, random bytes and HELLOs from
//! thousands of source ports.

use std::io;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

use super::relay::*;
use super::*;

/// How the attacker floods.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FloodConfig {
    /// The real client's sender threads: the flood starts once each has shown up at the
    /// relay.
    pub(crate) client_threads: usize,
    /// Whether the sessions carry authentication tags. Only then are forgeries (bit flips,
    /// random bytes) also sent from the clients' own addresses: without a tag, a bit flipped
    /// in a payload from the right address is indistinguishable from the client's own data.
    pub(crate) authenticated: bool,
    pub(crate) seed: u64,
}

/// Session datagrams captured before the flood starts.
pub(crate) const FLOOD_AFTER: u64 = 256;
/// Datagrams of the mixed part of the flood, sent as [`MIX`] prescribes.
pub(crate) const MIXED: usize = 45_000;
/// What the mixed part sends, in turn.
pub(crate) const MIX: [Forgery; 9] = [
    Forgery::Replay,
    Forgery::Replay,
    Forgery::Replay,
    Forgery::Replay,
    Forgery::ViaClient,
    Forgery::ViaClient,
    Forgery::Truncated,
    Forgery::BitFlipped,
    Forgery::Random,
];
/// Datagrams sent per burst of the mixed part...
pub(crate) const BURST: usize = 64;
/// ... one burst per this long, reading answers in between (about 64,000 datagrams/s).
pub(crate) const BURST_EVERY: Duration = Duration::from_millis(1);
/// Source ports the captured HELLOs are replayed from...
pub(crate) const HELLO_PORTS: usize = 2_000;
/// ... this many sockets at a time (file descriptors stay bounded).
pub(crate) const PORTS_AT_ONCE: usize = 100;
/// Captured handshake datagrams replayed from each port.
pub(crate) const HELLOS_PER_PORT: usize = 4;
/// After a wave of HELLOs, answers are read until none came for this long...
pub(crate) const QUIET: Duration = Duration::from_millis(20);
/// ... but no longer than this.
pub(crate) const WAVE_MAX: Duration = Duration::from_millis(500);
/// How long the attacker waits for the clients to show up at the relay.
pub(crate) const CAPTURE_WAIT: Duration = Duration::from_secs(20);

/// One kind of hostile datagram of the mixed part.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Forgery {
    /// A captured session datagram, from the attacker's address.
    Replay,
    /// A captured datagram (or, with `authenticated`, any forgery) through the upstream
    /// socket of a client: from that client's address.
    ViaClient,
    /// A prefix of a captured datagram.
    Truncated,
    /// A captured datagram with one to three bits flipped.
    BitFlipped,
    /// Random bytes; half of them behind a well-formed session header.
    Random,
}

/// Datagrams and bytes.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Traffic {
    pub(crate) datagrams: u64,
    pub(crate) bytes: u64,
}

impl Traffic {
    pub(crate) fn add(&mut self, len: usize) {
        self.datagrams += 1;
        self.bytes += len as u64;
    }
}

/// What the attacker did and what came back.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FloodReport {
    /// When the flood began and ended (`None`: the clients never showed up).
    pub(crate) began: Option<Instant>,
    pub(crate) ended: Option<Instant>,
    /// Sent from the attacker's own sockets straight to the server: the mixed part...
    pub(crate) direct: Traffic,
    /// ... and the replayed HELLOs.
    pub(crate) hellos: Traffic,
    /// Source ports the HELLOs came from.
    pub(crate) hello_ports: usize,
    /// Sent through the relay's upstream sockets (the clients' addresses).
    pub(crate) via_clients: Traffic,
    /// What the server sent to the attacker's socket of the mixed part...
    pub(crate) answers: Traffic,
    /// ... and to the HELLO ports.
    pub(crate) hello_answers: Traffic,
    /// Resident memory of the process when the flood began and ended.
    pub(crate) rss_before: u64,
    pub(crate) rss_after: u64,
    /// Whether every part of the flood was sent (not cut short by the stop flag).
    pub(crate) completed: bool,
}

/// The attacker's socket of the mixed part, and what it needs to read answers.
pub(crate) struct Attacker<'a> {
    pub(crate) server: SocketAddr,
    pub(crate) config: FloodConfig,
    pub(crate) rng: fastrand::Rng,
    pub(crate) poll: Poll,
    pub(crate) events: Events,
    pub(crate) socket: UdpSocket,
    pub(crate) buf: Vec<u8>,
    pub(crate) report: FloodReport,
    pub(crate) stop: &'a AtomicBool,
    pub(crate) deadline: Instant,
}

/// Waits for the clients at the relay, then floods `server`; stops early if `stop` is set or
/// at its own deadline. Returns what it did.
pub(crate) fn flood(
    server: SocketAddr,
    shared: &Shared,
    config: FloodConfig,
    stop: &AtomicBool,
) -> FloodReport {
    let deadline = Instant::now() + THREAD_LIFETIME;
    let poll = Poll::new().expect("attacker: poll");
    let mut socket = socket::bind_udp(LOOPBACK.parse().unwrap(), SOCKET_BUFFER).unwrap();
    poll.registry()
        .register(&mut socket, Token(0), Interest::READABLE)
        .unwrap();
    let mut attacker = Attacker {
        server,
        config,
        rng: fastrand::Rng::with_seed(config.seed),
        poll,
        events: Events::with_capacity(256),
        socket,
        buf: vec![0; 1 << 16],
        report: FloodReport::default(),
        stop,
        deadline,
    };
    let Some((handshakes, session, upstreams)) = wait_for_clients(shared, &config, stop) else {
        return attacker.report;
    };
    attacker.report.began = Some(Instant::now());
    attacker.report.rss_before = rss_bytes();
    let completed =
        attacker.mixed(&session, &upstreams) && attacker.hellos(&handshakes, &upstreams);
    attacker.report.completed = completed;
    attacker.report.rss_after = rss_bytes();
    attacker.report.ended = Some(Instant::now());
    attacker.report
}

/// What the attacker took from the capture: handshake datagrams, session datagrams and the
/// clients' upstream sockets.
pub(crate) type Captured = (Vec<Vec<u8>>, Vec<Vec<u8>>, Vec<StdUdpSocket>);

/// Waits (bounded) until every client thread has shown up at the relay, a HELLO with a
/// cookie was seen and [`FLOOD_AFTER`] session datagrams; returns copies of the capture.
pub(crate) fn wait_for_clients(
    shared: &Shared,
    config: &FloodConfig,
    stop: &AtomicBool,
) -> Option<Captured> {
    let give_up = Instant::now() + CAPTURE_WAIT;
    let mut c = lock(&shared.capture);
    loop {
        let ready = c.upstreams.len() >= config.client_threads
            && c.session_seen >= FLOOD_AFTER
            && c.handshakes.iter().any(|h| is_hello_with_cookie(h));
        if ready {
            break;
        }
        let now = Instant::now();
        if now >= give_up || stop.load(Ordering::Relaxed) {
            return None;
        }
        // Bounded wait; the stop flag is only checked this often.
        let wait = (give_up - now).min(Duration::from_millis(100));
        c = shared
            .captured
            .wait_timeout(c, wait)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    let upstreams = c.upstreams.iter().map(|s| s.try_clone().unwrap()).collect();
    Some((
        c.handshakes.clone(),
        c.session.iter().cloned().collect(),
        upstreams,
    ))
}

impl Attacker<'_> {
    pub(crate) fn over(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || Instant::now() >= self.deadline
    }

    /// The mixed part: [`MIXED`] datagrams in bursts of [`BURST`], as [`MIX`] says. Returns
    /// whether it was all sent.
    pub(crate) fn mixed(&mut self, session: &[Vec<u8>], upstreams: &[StdUdpSocket]) -> bool {
        let mut next_burst = Instant::now();
        for n in 0..MIXED {
            if n % BURST == 0 {
                self.answers_until(next_burst);
                next_burst += BURST_EVERY;
                if self.over() {
                    return false;
                }
            }
            let original = &session[self.rng.usize(..session.len())];
            match MIX[n % MIX.len()] {
                Forgery::Replay => self.send_direct(original),
                Forgery::Truncated => {
                    let len = self.rng.usize(..original.len());
                    self.send_direct(&original[..len]);
                }
                Forgery::BitFlipped => {
                    let forged = self.bit_flipped(original);
                    self.send_direct(&forged);
                }
                Forgery::Random => {
                    let forged = self.random(original);
                    self.send_direct(&forged);
                }
                Forgery::ViaClient => {
                    let upstream = &upstreams[self.rng.usize(..upstreams.len())];
                    let forged = self.via_client(original, n / MIX.len());
                    if upstream.send(&forged).is_ok() {
                        self.report.via_clients.add(forged.len());
                    }
                }
            }
        }
        self.answers_until(next_burst);
        true
    }

    /// What goes through a client's address: exact replays and truncated copies, which an
    /// honest decoder must tell from the client's own; with tags, every kind of forgery.
    pub(crate) fn via_client(&mut self, original: &[u8], turn: usize) -> Vec<u8> {
        let kinds = if self.config.authenticated { 4 } else { 2 };
        match turn % kinds {
            0 => original.to_vec(),
            1 => original[..self.rng.usize(..original.len())].to_vec(),
            2 => self.bit_flipped(original),
            _ => self.random(original),
        }
    }

    pub(crate) fn bit_flipped(&mut self, original: &[u8]) -> Vec<u8> {
        let mut forged = original.to_vec();
        for _ in 0..self.rng.usize(1..=3) {
            let bit = self.rng.usize(..forged.len() * 8);
            forged[bit / 8] ^= 1 << (bit % 8);
        }
        forged
    }

    /// Random bytes of random length; every other one starts with `original`'s header (a
    /// real session id), so that it reaches the session lookup.
    pub(crate) fn random(&mut self, original: &[u8]) -> Vec<u8> {
        let len = self.rng.usize(1..=realmq_proto::DEFAULT_MAX_DATAGRAM);
        let mut forged: Vec<u8> = (0..len).map(|_| self.rng.u8(..)).collect();
        if self.rng.bool() {
            let header = realmq_proto::HEADER_LEN.min(len).min(original.len());
            forged[..header].copy_from_slice(&original[..header]);
        }
        forged
    }

    pub(crate) fn send_direct(&mut self, bytes: &[u8]) {
        if self.socket.send_to(bytes, self.server).is_ok() {
            self.report.direct.add(bytes.len());
        }
    }

    /// Reads the server's answers to the attacker's socket until `until`.
    pub(crate) fn answers_until(&mut self, until: Instant) {
        loop {
            self.read_answers();
            let now = Instant::now();
            if now >= until {
                return;
            }
            let _ = self.poll.poll(&mut self.events, Some(until - now));
        }
    }

    /// Reads what is waiting on the mixed part's socket; returns how many datagrams.
    pub(crate) fn read_answers(&mut self) -> u64 {
        self.read_from(0, &[])
    }

    /// Reads what is waiting on socket `index` (0: the mixed part's; `i + 1`: HELLO port `i`
    /// of `ports`); returns how many datagrams.
    pub(crate) fn read_from(&mut self, index: usize, ports: &[UdpSocket]) -> u64 {
        let socket = match index {
            0 => &self.socket,
            i => &ports[i - 1],
        };
        let mut count = 0;
        for _ in 0..RELAY_BUDGET {
            match socket.recv_from(&mut self.buf) {
                Ok((len, _)) => {
                    match index {
                        0 => self.report.answers.add(len),
                        _ => self.report.hello_answers.add(len),
                    }
                    count += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => continue,
            }
        }
        count
    }

    /// The captured HELLOs from [`HELLO_PORTS`] source ports, [`PORTS_AT_ONCE`] at a time,
    /// reading each wave's answers; with each wave, the same HELLOs once more from each
    /// client's own address. Returns whether it was all sent.
    pub(crate) fn hellos(&mut self, handshakes: &[Vec<u8>], upstreams: &[StdUdpSocket]) -> bool {
        // The HELLOs with a cookie first (each client's first handshake datagrams are
        // cookie-less: its first HELLO and its clock probes), then cookie-less ones.
        let (with_cookie, without): (Vec<&Vec<u8>>, _) =
            handshakes.iter().partition(|h| is_hello_with_cookie(h));
        let hellos: Vec<&Vec<u8>> = (with_cookie.into_iter().take(HELLOS_PER_PORT / 2))
            .chain(without)
            .take(HELLOS_PER_PORT)
            .collect();
        for _ in 0..HELLO_PORTS / PORTS_AT_ONCE {
            if self.over() {
                return false;
            }
            let mut ports: Vec<UdpSocket> = (0..PORTS_AT_ONCE)
                .map(|_| UdpSocket::bind(LOOPBACK.parse().unwrap()).unwrap())
                .collect();
            for (i, port) in ports.iter_mut().enumerate() {
                self.poll
                    .registry()
                    .register(port, Token(1 + i), Interest::READABLE)
                    .unwrap();
                for hello in &hellos {
                    if port.send_to(hello, self.server).is_ok() {
                        self.report.hellos.add(hello.len());
                    }
                }
            }
            for (upstream, hello) in upstreams
                .iter()
                .flat_map(|u| hellos.iter().map(move |h| (u, h)))
            {
                if upstream.send(hello).is_ok() {
                    self.report.via_clients.add(hello.len());
                }
            }
            self.report.hello_ports += PORTS_AT_ONCE;
            self.wave_answers(&ports);
            for port in &mut ports {
                self.poll.registry().deregister(port).unwrap();
            }
        }
        true
    }

    /// Reads a wave's answers until none came for [`QUIET`], at most [`WAVE_MAX`].
    pub(crate) fn wave_answers(&mut self, ports: &[UdpSocket]) {
        let give_up = Instant::now() + WAVE_MAX;
        let mut last_answer = Instant::now();
        loop {
            let mut got = self.read_answers();
            for i in 0..ports.len() {
                got += self.read_from(i + 1, ports);
            }
            let now = Instant::now();
            if got > 0 {
                last_answer = now;
            }
            let quiet_until = last_answer + QUIET;
            if now >= give_up || now >= quiet_until {
                return;
            }
            let _ = self
                .poll
                .poll(&mut self.events, Some(quiet_until.min(give_up) - now));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Running a server, a relay, a client and maybe an attacker
// ---------------------------------------------------------------------------------------

/// A thread whose result is awaited at most [`THREAD_LIFETIME`]; past that its `Shutdown` is
/// triggered, and it is awaited as long again.
pub(crate) struct Bounded<T> {
    pub(crate) name: &'static str,
    pub(crate) result: mpsc::Receiver<T>,
    pub(crate) handle: thread::JoinHandle<()>,
    pub(crate) shutdown: Shutdown,
}

impl<T: Send + 'static> Bounded<T> {
    pub(crate) fn spawn(
        name: &'static str,
        shutdown: Shutdown,
        f: impl FnOnce(Shutdown) -> T + Send + 'static,
    ) -> Self {
        let (tx, result) = mpsc::channel();
        let for_thread = shutdown.clone();
        let handle = thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let _ = tx.send(f(for_thread));
            })
            .unwrap();
        Self {
            name,
            result,
            handle,
            shutdown,
        }
    }

    pub(crate) fn wait(self) -> T {
        let result = match self.result.recv_timeout(THREAD_LIFETIME) {
            Ok(r) => r,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.shutdown.trigger();
                self.result
                    .recv_timeout(THREAD_LIFETIME)
                    .unwrap_or_else(|_| panic!("{} still running after shutdown", self.name))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // It panicked: fail with its panic.
                std::panic::resume_unwind(self.handle.join().unwrap_err())
            }
        };
        self.handle.join().unwrap();
        result
    }
}
