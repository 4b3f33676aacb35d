//! The server side: every session of a server process, routed by session id.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use realmq_proto::{
    Bye, Datagram, DatagramWriter, Frame, Header, Heartbeat, MessageIndex, MessageRun, PacketKind,
};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::auth::{is_sealed, writable_len, SessionAuth};
use super::clock::WallClock;

mod handshake;
mod secrets;
use super::earliest;
use crate::config::{LivenessTuning, ReceiverConfig, ReceiverConfigError};
use crate::receiver::Receiver;
use crate::security::{Cookie, CookieKeys, Psk};
pub use secrets::ServerSecrets;

/// Tuning of a [`Server`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    /// Each session's receiver: ACK policy, range memory, liveness.
    pub receiver: ReceiverConfig,
    /// Most sessions open at once; HELLOs beyond it are not answered.
    pub max_sessions: usize,
    /// How often clients are told to send a HEARTBEAT when idle (in WELCOME).
    pub heartbeat_interval: Duration,
    /// The failure detector's settings; what is not given follows `heartbeat_interval`
    /// ([`LivenessTuning::resolve`]), and replaces `receiver.liveness`.
    pub liveness: LivenessTuning,
    /// How long a session that ended with BYE is remembered, to answer a repeated STOP.
    pub closed_linger: Duration,
    /// How often silent sessions are checked for eviction.
    pub sweep_interval: Duration,
    /// How long an address-validation cookie stays valid after the RETRY that carried it.
    pub cookie_lifetime: Duration,
    /// Most RETRYs queued for sending at once; HELLOs beyond it are dropped (and counted):
    /// the client repeats its HELLO.
    pub max_pending_retries: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            receiver: ReceiverConfig::default(),
            max_sessions: 4096,
            heartbeat_interval: crate::config::SenderConfig::DEFAULT_HEARTBEAT_INTERVAL,
            liveness: LivenessTuning::default(),
            closed_linger: Duration::from_secs(5),
            sweep_interval: Duration::from_millis(50),
            cookie_lifetime: Duration::from_secs(10),
            max_pending_retries: 1024,
        }
    }
}

/// A datagram for the binary to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub destination: SocketAddr,
    /// Its length at the start of the buffer given to [`Server::poll_transmit`].
    pub len: usize,
    /// The local address to send it from: the one the peer's datagrams reached (a server
    /// bound to a wildcard address must answer from it, or the peer drops the answer), when
    /// the binary reported it to [`Server::handle_datagram`].
    pub src_ip: Option<IpAddr>,
}

/// One message delivered, once, to the server's application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery<'a> {
    /// The session it came in.
    pub session_id: u32,
    /// Its ID within the session.
    pub id: u64,
    /// When the client first sent it: Unix time in microseconds, on the server's clock when
    /// the client's clock offset is known and can be told from zero (the client's stamp
    /// minus the offset, see [`ClockOffset::correction_us`](super::ClockOffset::correction_us)),
    /// else on the client's clock.
    pub sent_unix_us: u64,
    /// Its payload.
    pub payload: &'a [u8],
}

/// Messages delivered, once, to the server's application as one run: consecutive IDs sent
/// at one time, payloads of one length (see [`MessageRun`]). A sender's run of equal
/// messages arrives as one; any other message as a run of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveredRun<'a> {
    /// The session they came in.
    pub session_id: u32,
    /// When the client first sent them, as [`Delivery::sent_unix_us`].
    pub sent_unix_us: u64,
    /// The messages.
    pub messages: MessageRun<'a>,
}

impl<'a> DeliveredRun<'a> {
    /// The run's messages one by one.
    pub fn deliveries(&self) -> impl Iterator<Item = Delivery<'a>> + 'a {
        let (session_id, sent_unix_us) = (self.session_id, self.sent_unix_us);
        self.messages.messages().map(move |m| Delivery {
            session_id,
            id: m.id,
            sent_unix_us,
            payload: m.payload,
        })
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CloseReason {
    /// The client sent STOP and was answered with BYE.
    Bye,
    /// The client fell silent and the failure detector evicted the session.
    PeerDead,
}

/// What happened, reported by [`Server::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerEvent {
    /// A client opened a session.
    SessionOpened {
        /// The new session's id.
        session_id: u32,
        /// The client's address.
        peer: SocketAddr,
        /// The client's clock minus the server's, µs, by which the session's send times are
        /// corrected: 0 when the client's estimate cannot be told from zero, `None` when the
        /// client sent no estimate (or this server has no wall clock to compare with).
        clock_offset_us: Option<i64>,
    },
    /// A session ended.
    SessionClosed {
        /// The session's id.
        session_id: u32,
        /// The client's address.
        peer: SocketAddr,
        /// Distinct messages received in the session.
        received: u64,
        /// Copies of delivered messages dropped in the session.
        duplicates: u64,
        /// How many messages the client said it sent (its STOP), if it said.
        client_sent: Option<u64>,
        /// Why it ended.
        reason: CloseReason,
        /// The clock offset applied to the session's send times, as in
        /// [`ServerEvent::SessionOpened`].
        clock_offset_us: Option<i64>,
    },
}

/// The server's counters, over all sessions ever opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ServerStats {
    /// Distinct messages delivered.
    pub received: u64,
    /// Copies of already delivered messages, discarded.
    pub duplicates: u64,
    /// Messages that arrived after a higher ID of their session.
    pub out_of_order: u64,
    /// Messages dropped because their ID lay beyond the session's plausibility window.
    pub implausible: u64,
    /// Datagrams rejected by the decoder (including handshake datagrams with more than one
    /// HELLO).
    pub malformed: u64,
    /// Well-formed datagrams for no known session, or from the wrong address.
    pub unknown_session: u64,
    /// Session datagrams whose authentication tag failed, or that were replayed (with a
    /// pre-shared key only).
    pub unauthenticated: u64,
    /// HELLOs without a valid cookie, answered with a RETRY.
    pub retries_sent: u64,
    /// HELLOs whose cookie was present but wrong, expired, or for another address.
    pub bad_cookies: u64,
    /// HELLOs dropped unanswered: the RETRY queue was full, or the answer would have
    /// exceeded three times the bytes received (RFC 9000 §8.1 anti-amplification).
    pub hellos_dropped: u64,
    /// Validated HELLOs repeating one whose session already ended (replays).
    pub hellos_replayed: u64,
    /// HELLOs refused because `max_sessions` were open.
    pub refused: u64,
    /// Sessions ever opened.
    pub sessions_total: u64,
    /// Sessions open now.
    pub sessions_open: u64,
    /// Sessions evicted by the failure detector.
    pub sessions_dead: u64,
}

#[derive(Debug)]
struct Session {
    peer: SocketAddr,
    /// The local address the client's datagrams reached, if known: answers leave from it.
    local_ip: Option<IpAddr>,
    nonce: u64,
    server_nonce: u64,
    /// The client's session epoch on the server's clock: the HELLO's `epoch_unix_us` minus
    /// `clock_offset_us`. Send times are this plus the messages' timestamps.
    epoch_unix_us: u64,
    /// The clock correction applied to `epoch_unix_us` (`None`: the client sent no estimate).
    clock_offset_us: Option<i64>,
    /// The `timestamp_us` of the latest validated HELLO, echoed in the WELCOME.
    hello_timestamp_us: u64,
    receiver: Receiver,
    auth: Option<SessionAuth>,
    /// Queued in `Server::dirty`.
    dirty: bool,
    /// Queued in `Server::welcomes`.
    welcome_queued: bool,
    /// A HEARTBEAT arrived before any message: answer with a HEARTBEAT, as there is nothing
    /// to acknowledge yet.
    echo_heartbeat: bool,
    /// The count in the client's STOP.
    client_sent: Option<u64>,
    /// Whether a session datagram from the client arrived (it had its WELCOME).
    spoke: bool,
    /// When it opened: not evicted before `cookie_lifetime` while the client has not spoken.
    opened: Instant,
}

/// A session that ended, remembered for a while: to answer a repeated STOP (if it ended
/// with BYE), and to recognise a replayed HELLO of it while its cookie could still be valid.
#[derive(Debug)]
struct Closed {
    peer: SocketAddr,
    local_ip: Option<IpAddr>,
    nonce: u64,
    /// `Some(received)` if it ended with BYE.
    bye: Option<u64>,
    /// Whether the client ever sent anything in the session (it had its WELCOME).
    spoke: bool,
    auth: Option<SessionAuth>,
    until: Instant,
}

/// A RETRY to send: where, for which HELLO, the cookie, and how many bytes the HELLO had.
#[derive(Debug, Clone, Copy)]
struct PendingRetry {
    peer: SocketAddr,
    local_ip: Option<IpAddr>,
    nonce: u64,
    /// The HELLO's `timestamp_us`, to echo.
    echo_timestamp_us: u64,
    cookie: Cookie,
    received_len: usize,
}

/// Every session of one server.
///
/// Contract (sans-IO): feed every received datagram to
/// [`handle_datagram`](Self::handle_datagram) and call [`handle_timeout`](Self::handle_timeout)
/// once the instant from [`poll_timeout`](Self::poll_timeout) has passed; after either, drain
/// [`poll_transmit`](Self::poll_transmit) and [`poll_event`](Self::poll_event).
///
/// A session opens only through an address-validated handshake: a HELLO without a valid
/// cookie is answered with a stateless RETRY (no per-client state, at most three times the
/// bytes received), and only a HELLO echoing a fresh cookie minted for its address and
/// nonce opens a session (RFC 9000 §8.1).
///
/// Memory is bounded by configuration: at most `max_sessions` open sessions (each with a
/// receiver of bounded size) and `max_sessions` remembered closed ones; at most
/// `max_pending_retries` RETRYs and one WELCOME per open session queued; BYEs queued at most
/// one per remembered session per pass of the caller's loop.
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    rng: ChaCha20Rng,
    /// Cookie keys, rotated every cookie lifetime (`rotate_cookie_key`).
    cookie_keys: CookieKeys,
    next_key_rotation: Option<Instant>,
    psk: Option<Psk>,
    /// The wall clock the handshake's answers carry (`server_unix_us`), if given.
    wall_clock: Option<WallClock>,
    /// The cookie clock's origin: the first `now` seen.
    epoch: Option<Instant>,
    /// The open sessions by ID. The IDs are the server's own random draws, so the table
    /// hashes them with FxHash (`rustc-hash`) rather than SipHash: no peer chooses a key
    /// that is stored, and a lookup with a chosen one probes as any other. SipHash was about
    /// 100 instructions a datagram, five a 64-byte message (`docs/BENCHMARKS.md`).
    sessions: FxHashMap<u32, Session>,
    /// `(peer, nonce)` of each open or remembered session's HELLO: keys a peer chooses,
    /// hashed with SipHash's random keys.
    hellos: HashMap<(SocketAddr, u64), u32>,
    /// Closed sessions remembered, by their IDs (server-drawn, as `sessions`).
    closed: FxHashMap<u32, Closed>,
    /// Remembered closed sessions, oldest first, to forget the oldest beyond the bound.
    closed_order: VecDeque<u32>,
    retries: VecDeque<PendingRetry>,
    /// WELCOMEs to send: session ids.
    welcomes: VecDeque<u32>,
    /// BYEs to send: session ids of remembered sessions.
    byes: VecDeque<u32>,
    /// Sessions that may owe an ACK.
    dirty: VecDeque<u32>,
    events: VecDeque<ServerEvent>,
    stats: ServerStats,
    next_sweep: Option<Instant>,
    /// One datagram's messages, decoded once by the parse for the receiver's walk.
    index: MessageIndex,
}

impl Server {
    /// A server with no sessions. Each session's failure detector is tuned to the heartbeat
    /// interval the server announces.
    ///
    /// Fails if the receiver configuration is invalid.
    pub fn new(
        mut config: ServerConfig,
        secrets: ServerSecrets,
    ) -> Result<Self, ReceiverConfigError> {
        config.receiver.liveness = config.liveness.resolve(config.heartbeat_interval);
        config.receiver.validate()?;
        Ok(Self {
            config,
            rng: ChaCha20Rng::from_seed(secrets.rng_seed),
            cookie_keys: CookieKeys::new(&secrets.cookie_key),
            next_key_rotation: None,
            psk: None,
            wall_clock: None,
            epoch: None,
            sessions: FxHashMap::default(),
            hellos: HashMap::new(),
            closed: FxHashMap::default(),
            closed_order: VecDeque::new(),
            retries: VecDeque::new(),
            welcomes: VecDeque::new(),
            byes: VecDeque::new(),
            dirty: VecDeque::new(),
            events: VecDeque::new(),
            stats: ServerStats::default(),
            next_sweep: None,
            index: MessageIndex::default(),
        })
    }

    /// Authenticates every session with keys derived from `psk`: datagrams without a valid
    /// tag are dropped and counted as `unauthenticated`. Clients must use the same key.
    pub fn with_psk(mut self, psk: Psk) -> Self {
        self.psk = Some(psk);
        self
    }

    /// Gives the server a wall clock: `unix_us` is the time of `now` in µs since the Unix
    /// epoch, and any later `now` follows from it. RETRYs and WELCOMEs then carry the
    /// server's time, from which clients estimate their clock offset and the server corrects
    /// the send times of their messages (one-way latency across hosts). Without it (or with
    /// `unix_us` = 0, a clock that reads before 1970) they carry 0, clients send no estimate,
    /// and send times stay on the clients' clocks.
    pub fn with_wall_clock(mut self, now: Instant, unix_us: u64) -> Self {
        self.wall_clock = (unix_us > 0).then(|| WallClock::new(now, unix_us));
        self
    }

    /// The counters.
    pub fn stats(&self) -> ServerStats {
        ServerStats {
            sessions_open: self.sessions.len() as u64,
            ..self.stats
        }
    }

    /// Takes in one datagram from `from`, received on the local address `local_ip` if the
    /// binary knows it (`IP_PKTINFO`); `deliver` is called once for every message delivered
    /// for the first time.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        local_ip: Option<IpAddr>,
        bytes: &[u8],
        mut deliver: impl FnMut(Delivery<'_>),
    ) {
        self.handle_datagram_runs(now, from, local_ip, bytes, |run| {
            run.deliveries().for_each(&mut deliver)
        });
    }

    /// As [`handle_datagram`](Self::handle_datagram), with the messages delivered as runs
    /// ([`DeliveredRun`]): what the server binary takes, checking and counting a run's
    /// messages in one loop.
    pub fn handle_datagram_runs(
        &mut self,
        now: Instant,
        from: SocketAddr,
        local_ip: Option<IpAddr>,
        bytes: &[u8],
        mut deliver: impl FnMut(DeliveredRun<'_>),
    ) {
        self.epoch.get_or_insert(now);
        self.next_sweep
            .get_or_insert(now + self.config.sweep_interval);
        let header = match Header::parse(bytes) {
            Ok(header) => header,
            Err(e) => {
                super::warn_other_version(e);
                self.stats.malformed += 1;
                return;
            }
        };
        match header.kind {
            PacketKind::Handshake => self.on_handshake(now, from, local_ip, bytes),
            PacketKind::Session => {
                self.on_session(now, from, header.session_id, bytes, &mut deliver)
            }
        }
    }

    fn on_session(
        &mut self,
        now: Instant,
        from: SocketAddr,
        id: u32,
        bytes: &[u8],
        deliver: &mut impl FnMut(DeliveredRun<'_>),
    ) {
        let Some(session) = self.sessions.get_mut(&id) else {
            self.on_closed_session(from, id, bytes);
            return;
        };
        if session.peer != from {
            self.stats.unknown_session += 1;
            return;
        }
        let Some(bytes) = open_datagram(&mut session.auth, bytes, &mut self.stats) else {
            return;
        };
        let datagram = match Datagram::parse_indexed(bytes, &mut self.index) {
            Ok(d) => d,
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        session.spoke = true;
        let flags = datagram.header.flags;
        let before = *session.receiver.stats();
        let epoch = session.epoch_unix_us;
        let mut stop = None;
        for frame in datagram.frames() {
            match frame {
                Frame::Data(data) => {
                    session.receiver.handle_data_runs(now, &data, flags, |run| {
                        deliver(DeliveredRun {
                            session_id: id,
                            sent_unix_us: epoch.saturating_add(run.timestamp_us()),
                            messages: run,
                        })
                    });
                }
                Frame::Heartbeat(_) => {
                    session.receiver.handle_heartbeat(now);
                    session.echo_heartbeat |= session.receiver.largest_received().is_none();
                }
                Frame::Stop(s) => {
                    session.receiver.handle_peer_activity(now);
                    stop = Some(s.sent);
                }
                _ => session.receiver.handle_peer_activity(now),
            }
        }
        let after = *session.receiver.stats();
        self.stats.received += after.received - before.received;
        self.stats.duplicates += after.duplicates - before.duplicates;
        self.stats.out_of_order += after.out_of_order - before.out_of_order;
        self.stats.implausible += after.implausible - before.implausible;
        if let Some(sent) = stop {
            session.client_sent = Some(sent);
            self.end_session(now, id, CloseReason::Bye);
        } else if !session.dirty && (session.echo_heartbeat || session.receiver.ack_due(now)) {
            session.dirty = true;
            self.dirty.push_back(id);
        }
    }

    /// A datagram for a session that is not open: answer a repeated STOP of a session that
    /// ended with BYE, count the rest.
    fn on_closed_session(&mut self, from: SocketAddr, id: u32, bytes: &[u8]) {
        let Some(closed) = self.closed.get_mut(&id) else {
            self.stats.unknown_session += 1;
            return;
        };
        if closed.peer != from || closed.bye.is_none() {
            self.stats.unknown_session += 1;
            return;
        }
        let Some(bytes) = open_datagram(&mut closed.auth, bytes, &mut self.stats) else {
            return;
        };
        let Ok(datagram) = Datagram::parse(bytes) else {
            self.stats.malformed += 1;
            return;
        };
        if !datagram.frames().any(|f| matches!(f, Frame::Stop(_))) {
            // Late data or ACK-asking traffic for a session that has ended.
            self.stats.unknown_session += 1;
        } else if !self.byes.contains(&id) {
            // One BYE per remembered session waits at a time.
            self.byes.push_back(id);
        }
    }

    fn end_session(&mut self, now: Instant, id: u32, reason: CloseReason) {
        let Some(session) = self.sessions.remove(&id) else {
            return;
        };
        let received = session.receiver.stats().received;
        let bye = match reason {
            CloseReason::Bye => {
                self.byes.push_back(id);
                Some(received)
            }
            CloseReason::PeerDead => {
                self.stats.sessions_dead += 1;
                None
            }
        };
        // Remembered while a replay of its HELLO could carry a valid cookie, or a STOP
        // could be repeated.
        let keep = self.config.closed_linger.max(self.config.cookie_lifetime);
        self.remember_closed(
            id,
            Closed {
                peer: session.peer,
                local_ip: session.local_ip,
                nonce: session.nonce,
                bye,
                spoke: session.spoke,
                auth: session.auth,
                until: now + keep,
            },
        );
        self.events.push_back(ServerEvent::SessionClosed {
            session_id: id,
            peer: session.peer,
            received,
            duplicates: session.receiver.stats().duplicates,
            client_sent: session.client_sent,
            reason,
            clock_offset_us: session.clock_offset_us,
        });
    }

    /// Remembers a closed session, forgetting the oldest beyond `max_sessions`.
    fn remember_closed(&mut self, id: u32, closed: Closed) {
        while self.closed.len() >= self.config.max_sessions {
            let Some(oldest) = self.closed_order.pop_front() else {
                break;
            };
            self.forget_closed(oldest);
        }
        self.closed.insert(id, closed);
        self.closed_order.push_back(id);
    }

    fn forget_closed(&mut self, id: u32) {
        if let Some(c) = self.closed.remove(&id) {
            self.hellos.remove(&(c.peer, c.nonce));
        }
    }

    /// Writes the next datagram to send into `buf`; `None` when there is nothing to send.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        while let Some(retry) = self.retries.pop_front() {
            if let Some(t) = self.write_retry(now, retry, buf) {
                return Some(t);
            }
        }
        while let Some(id) = self.welcomes.pop_front() {
            if let Some(t) = self.write_welcome(now, id, buf) {
                return Some(t);
            }
        }
        while let Some(id) = self.byes.pop_front() {
            if let Some(t) = self.write_bye(id, buf) {
                return Some(t);
            }
        }
        while let Some(id) = self.dirty.pop_front() {
            if let Some(t) = self.write_ack(now, id, buf) {
                return Some(t);
            }
        }
        None
    }

    fn write_bye(&mut self, id: u32, buf: &mut [u8]) -> Option<Transmit> {
        let closed = self.closed.get_mut(&id)?;
        let received = closed.bye?;
        let max = self.config.receiver.max_datagram_size;
        let room = writable_len(max, closed.auth.is_some());
        let mut w = DatagramWriter::new(&mut *buf, room, Header::session(id)).ok()?;
        w.bye(Bye { received }).ok()?;
        let len = w.finish();
        seal_to(&mut closed.auth, buf, len, closed.peer, closed.local_ip)
    }

    fn write_ack(&mut self, now: Instant, id: u32, buf: &mut [u8]) -> Option<Transmit> {
        let session = self.sessions.get_mut(&id)?;
        session.dirty = false;
        let max = self.config.receiver.max_datagram_size;
        let room = writable_len(max, session.auth.is_some());
        let mut w = DatagramWriter::new(&mut *buf, room, Header::session(id)).ok()?;
        let acked = session.receiver.write_ack(now, &mut w);
        if std::mem::take(&mut session.echo_heartbeat) && !acked {
            let _ = w.heartbeat(Heartbeat { timestamp_us: 0 });
        }
        if w.is_empty() {
            return None;
        }
        let len = w.finish();
        seal_to(&mut session.auth, buf, len, session.peer, session.local_ip)
    }

    /// Queues, for every open session that received anything, an ACK of everything it
    /// received, due now whether or not one was owed: what a server that stops calls last,
    /// before it sends what [`poll_transmit`](Self::poll_transmit) gives and exits. Its
    /// clients then know exactly what was delivered, and resend only the rest to the server
    /// that replaces it: no message is delivered twice across a graceful restart (unless
    /// every copy of the final ACK is lost; `docs/RELIABILITY.md`, "Server restart").
    pub fn acknowledge_all(&mut self, now: Instant) {
        self.queue_due_acks(now, Receiver::request_ack);
    }

    /// Runs `each` on every open session's receiver, then queues the session for
    /// [`poll_transmit`](Self::poll_transmit) if its ACK is due (once).
    fn queue_due_acks(&mut self, now: Instant, each: impl Fn(&mut Receiver, Instant)) {
        for (&id, session) in &mut self.sessions {
            each(&mut session.receiver, now);
            if !session.dirty && session.receiver.ack_due(now) {
                session.dirty = true;
                self.dirty.push_back(id);
            }
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        // A scan over the open sessions: cheap for the thousands a server holds, and called
        // once per pass of the event loop, not per datagram.
        self.sessions.values().fold(self.next_sweep, |t, s| {
            earliest(t, s.receiver.poll_timeout())
        })
    }

    /// This process could not run from `since` to `now` ([`PauseWatch`]): that time is not
    /// held against any session's client.
    ///
    /// [`PauseWatch`]: crate::liveness::PauseWatch
    pub fn handle_local_pause(&mut self, since: Instant, now: Instant) {
        for session in self.sessions.values_mut() {
            session.receiver.handle_local_pause(since, now);
        }
    }

    /// Runs the timers due at `now`: delayed ACKs, and eviction of silent sessions.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.queue_due_acks(now, Receiver::handle_timeout);
        if self.next_sweep.is_some_and(|t| t <= now) {
            self.next_sweep = Some(now + self.config.sweep_interval);
            // A client that has not spoken yet may still be repeating its HELLO through a
            // lossy path (its HELLOs back off to a second apart): its session stays while
            // its cookie could be valid. Evicting it sooner ended a session the client went
            // on to use (docs/RELIABILITY.md, "a second session for one client").
            let handshake_grace = self.config.cookie_lifetime;
            let dead: Vec<u32> = self
                .sessions
                .iter()
                .filter(|(_, s)| {
                    s.receiver.is_dead(now) && (s.spoke || now >= s.opened + handshake_grace)
                })
                .map(|(&id, _)| id)
                .collect();
            for id in dead {
                self.end_session(now, id, CloseReason::PeerDead);
            }
            while let Some(&oldest) = self.closed_order.front() {
                if self.closed.get(&oldest).is_some_and(|c| c.until > now) {
                    break;
                }
                self.closed_order.pop_front();
                self.forget_closed(oldest);
            }
        }
    }

    /// The next thing that happened, if any.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }
}

/// A session datagram as the session layer may read it: without its trailer once its tag
/// checks out (with a key), as it is (without). `None`, counted as `unauthenticated`, for a
/// bad tag or replay, or a sealed datagram without a key here (logged once).
fn open_datagram<'a>(
    auth: &mut Option<SessionAuth>,
    bytes: &'a [u8],
    stats: &mut ServerStats,
) -> Option<&'a [u8]> {
    let opened = match auth {
        Some(auth) => auth.open(bytes).ok(),
        None if is_sealed(bytes) => {
            static WARNED: std::sync::atomic::AtomicBool =
                std::sync::atomic::AtomicBool::new(false);
            if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                log::warn!(
                    "a client authenticates its datagrams but this server has no --psk-file"
                );
            }
            None
        }
        None => Some(bytes),
    };
    if opened.is_none() {
        stats.unauthenticated += 1;
    }
    opened
}

/// `buf[..len]` to send to `destination` from `src_ip`, sealed if the session is
/// authenticated; `None` once its counter is exhausted (after 2^64 − 1 datagrams).
fn seal_to(
    auth: &mut Option<SessionAuth>,
    buf: &mut [u8],
    len: usize,
    destination: SocketAddr,
    src_ip: Option<IpAddr>,
) -> Option<Transmit> {
    let len = match auth {
        Some(auth) => auth.seal(buf, len).ok()?,
        None => len,
    };
    Some(Transmit {
        destination,
        len,
        src_ip,
    })
}
