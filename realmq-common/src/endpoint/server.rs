//! The server side: every session of a server process, routed by session id.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use realmq_proto::{
    Bye, Datagram, DatagramWriter, Flags, Frame, Header, Heartbeat, Hello, PacketKind, Welcome,
};
use serde::{Deserialize, Serialize};

use super::earliest;
use crate::config::{LivenessConfig, ReceiverConfig, ReceiverConfigError};
use crate::receiver::Receiver;

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
    /// How long a session that ended with BYE is remembered, to answer a repeated STOP.
    pub closed_linger: Duration,
    /// How often silent sessions are checked for eviction.
    pub sweep_interval: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            receiver: ReceiverConfig::default(),
            max_sessions: 4096,
            heartbeat_interval: crate::config::SenderConfig::DEFAULT_HEARTBEAT_INTERVAL,
            closed_linger: Duration::from_secs(5),
            sweep_interval: Duration::from_millis(50),
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
}

/// One message delivered, once, to the server's application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery<'a> {
    /// The session it came in.
    pub session_id: u32,
    /// Its ID within the session.
    pub id: u64,
    /// When the client first sent it: Unix time in microseconds, by the client's clock.
    pub sent_unix_us: u64,
    /// Its payload.
    pub payload: &'a [u8],
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
    },
    /// A session ended.
    SessionClosed {
        /// The session's id.
        session_id: u32,
        /// The client's address.
        peer: SocketAddr,
        /// Distinct messages received in the session.
        received: u64,
        /// Why it ended.
        reason: CloseReason,
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
    /// Datagrams rejected by the decoder.
    pub malformed: u64,
    /// Well-formed datagrams for no known session, or from the wrong address.
    pub unknown_session: u64,
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
    nonce: u64,
    epoch_unix_us: u64,
    receiver: Receiver,
    /// Queued in `Server::dirty`.
    dirty: bool,
    /// A HEARTBEAT arrived before any message: answer with a HEARTBEAT, as there is nothing
    /// to acknowledge yet.
    echo_heartbeat: bool,
}

/// A session that ended with BYE, remembered for a while to answer repeated STOPs.
#[derive(Debug, Clone, Copy)]
struct Closed {
    peer: SocketAddr,
    received: u64,
    until: Instant,
}

/// Every session of one server.
///
/// Contract (sans-IO): feed every received datagram to
/// [`handle_datagram`](Self::handle_datagram) and call [`handle_timeout`](Self::handle_timeout)
/// once the instant from [`poll_timeout`](Self::poll_timeout) has passed; after either, drain
/// [`poll_transmit`](Self::poll_transmit) and [`poll_event`](Self::poll_event).
///
/// Memory is bounded by configuration: at most `max_sessions` sessions, each with a receiver
/// of bounded size, and queues no longer than the number of sessions.
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    rng: fastrand::Rng,
    sessions: HashMap<u32, Session>,
    /// `(peer, nonce)` of each open session's HELLO, so a repeated HELLO gets the same session.
    hellos: HashMap<(SocketAddr, u64), u32>,
    closed: HashMap<u32, Closed>,
    /// WELCOMEs to send: `(session id)`.
    welcomes: VecDeque<u32>,
    /// BYEs to send: `(peer, session id, received)`.
    byes: VecDeque<(SocketAddr, u32, u64)>,
    /// Sessions that may owe an ACK.
    dirty: VecDeque<u32>,
    events: VecDeque<ServerEvent>,
    stats: ServerStats,
    next_sweep: Option<Instant>,
}

impl Server {
    /// A server with no sessions; `seed` seeds the session-id generator. Each session's
    /// failure detector is tuned to the heartbeat interval the server announces.
    ///
    /// Fails if the receiver configuration is invalid.
    pub fn new(mut config: ServerConfig, seed: u64) -> Result<Self, ReceiverConfigError> {
        config.receiver.liveness =
            LivenessConfig::for_heartbeat_interval(config.heartbeat_interval);
        config.receiver.validate()?;
        Ok(Self {
            config,
            rng: fastrand::Rng::with_seed(seed),
            sessions: HashMap::new(),
            hellos: HashMap::new(),
            closed: HashMap::new(),
            welcomes: VecDeque::new(),
            byes: VecDeque::new(),
            dirty: VecDeque::new(),
            events: VecDeque::new(),
            stats: ServerStats::default(),
            next_sweep: None,
        })
    }

    /// The counters.
    pub fn stats(&self) -> ServerStats {
        ServerStats {
            sessions_open: self.sessions.len() as u64,
            ..self.stats
        }
    }

    /// Takes in one datagram from `from`; `deliver` is called once for every message
    /// delivered for the first time.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
        mut deliver: impl FnMut(Delivery<'_>),
    ) {
        self.next_sweep
            .get_or_insert(now + self.config.sweep_interval);
        let Ok(header) = Header::parse(bytes) else {
            self.stats.malformed += 1;
            return;
        };
        match header.kind {
            PacketKind::Handshake => match Datagram::parse(bytes) {
                Ok(datagram) => {
                    for frame in datagram.frames() {
                        if let Frame::Hello(hello) = frame {
                            self.on_hello(now, from, hello);
                        }
                    }
                }
                Err(_) => self.stats.malformed += 1,
            },
            PacketKind::Session => {
                self.on_session(now, from, header.session_id, bytes, &mut deliver)
            }
        }
    }

    fn on_hello(&mut self, now: Instant, from: SocketAddr, hello: Hello<'_>) {
        if let Some(&id) = self.hellos.get(&(from, hello.nonce)) {
            // The WELCOME was lost: repeat it for the same session.
            self.welcomes.push_back(id);
            return;
        }
        if self.sessions.len() >= self.config.max_sessions {
            self.stats.refused += 1;
            return;
        }
        let id = loop {
            let id = self.rng.u32(1..);
            if !self.sessions.contains_key(&id) && !self.closed.contains_key(&id) {
                break id;
            }
        };
        // The configuration was validated in `Server::new`, so this cannot fail; refuse the
        // HELLO rather than panic if it ever did.
        let Ok(receiver) = Receiver::new(self.config.receiver.clone(), now) else {
            self.stats.refused += 1;
            return;
        };
        self.sessions.insert(
            id,
            Session {
                peer: from,
                nonce: hello.nonce,
                epoch_unix_us: hello.epoch_unix_us,
                receiver,
                dirty: false,
                echo_heartbeat: false,
            },
        );
        self.hellos.insert((from, hello.nonce), id);
        self.welcomes.push_back(id);
        self.stats.sessions_total += 1;
        self.events.push_back(ServerEvent::SessionOpened {
            session_id: id,
            peer: from,
        });
    }

    fn on_session(
        &mut self,
        now: Instant,
        from: SocketAddr,
        id: u32,
        bytes: &[u8],
        deliver: &mut impl FnMut(Delivery<'_>),
    ) {
        let Some(session) = self.sessions.get_mut(&id) else {
            self.on_closed_session(from, id, bytes);
            return;
        };
        if session.peer != from {
            self.stats.unknown_session += 1;
            return;
        }
        let datagram = match Datagram::parse(bytes) {
            Ok(d) => d,
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        let ack_now = datagram.header.flags.contains(Flags::ACK_NOW);
        let before = *session.receiver.stats();
        let epoch = session.epoch_unix_us;
        let mut stop = None;
        for frame in datagram.frames() {
            match frame {
                Frame::Data(data) => {
                    session.receiver.handle_data(now, &data, ack_now, |m| {
                        deliver(Delivery {
                            session_id: id,
                            id: m.id,
                            sent_unix_us: epoch.saturating_add(m.timestamp_us),
                            payload: m.payload,
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
        if stop.is_some() {
            self.end_session(now, id, CloseReason::Bye);
        } else if !session.dirty && (session.echo_heartbeat || session.receiver.ack_due(now)) {
            session.dirty = true;
            self.dirty.push_back(id);
        }
    }

    /// A datagram for a session that is not open: answer a repeated STOP of a session that
    /// just ended, count the rest.
    fn on_closed_session(&mut self, from: SocketAddr, id: u32, bytes: &[u8]) {
        let Some(closed) = self.closed.get(&id).copied() else {
            self.stats.unknown_session += 1;
            return;
        };
        if closed.peer != from {
            self.stats.unknown_session += 1;
            return;
        }
        let Ok(datagram) = Datagram::parse(bytes) else {
            self.stats.malformed += 1;
            return;
        };
        if datagram.frames().any(|f| matches!(f, Frame::Stop(_))) {
            self.byes.push_back((from, id, closed.received));
        }
    }

    fn end_session(&mut self, now: Instant, id: u32, reason: CloseReason) {
        let Some(session) = self.sessions.remove(&id) else {
            return;
        };
        self.hellos.remove(&(session.peer, session.nonce));
        let received = session.receiver.stats().received;
        match reason {
            CloseReason::Bye => {
                self.byes.push_back((session.peer, id, received));
                self.closed.insert(
                    id,
                    Closed {
                        peer: session.peer,
                        received,
                        until: now + self.config.closed_linger,
                    },
                );
            }
            CloseReason::PeerDead => self.stats.sessions_dead += 1,
        }
        self.events.push_back(ServerEvent::SessionClosed {
            session_id: id,
            peer: session.peer,
            received,
            reason,
        });
    }

    /// Writes the next datagram to send into `buf`; `None` when there is nothing to send.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let max = self.config.receiver.max_datagram_size;
        while let Some(id) = self.welcomes.pop_front() {
            let Some(session) = self.sessions.get(&id) else {
                continue;
            };
            let mut w = DatagramWriter::new(buf, max, Header::handshake(id)).ok()?;
            w.welcome(Welcome {
                nonce: session.nonce,
                heartbeat_interval_us: self.config.heartbeat_interval.as_micros() as u64,
                server_nonce: 0,
                id_window: realmq_proto::MAX_MESSAGE_ID,
            })
            .ok()?;
            return Some(Transmit {
                destination: session.peer,
                len: w.finish(),
            });
        }
        if let Some((peer, id, received)) = self.byes.pop_front() {
            let mut w = DatagramWriter::new(buf, max, Header::session(id)).ok()?;
            w.bye(Bye { received }).ok()?;
            return Some(Transmit {
                destination: peer,
                len: w.finish(),
            });
        }
        while let Some(id) = self.dirty.pop_front() {
            let Some(session) = self.sessions.get_mut(&id) else {
                continue;
            };
            session.dirty = false;
            let mut w = DatagramWriter::new(&mut *buf, max, Header::session(id)).ok()?;
            let acked = session.receiver.write_ack(now, &mut w);
            if std::mem::take(&mut session.echo_heartbeat) && !acked {
                let _ = w.heartbeat(Heartbeat { timestamp_us: 0 });
            }
            if !w.is_empty() {
                let len = w.finish();
                return Some(Transmit {
                    destination: session.peer,
                    len,
                });
            }
        }
        None
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        // A scan over the open sessions: cheap for the thousands a server holds, and called
        // once per pass of the event loop, not per datagram.
        self.sessions.values().fold(self.next_sweep, |t, s| {
            earliest(t, s.receiver.poll_timeout())
        })
    }

    /// Runs the timers due at `now`: delayed ACKs, and eviction of silent sessions.
    pub fn handle_timeout(&mut self, now: Instant) {
        for (&id, session) in &mut self.sessions {
            session.receiver.handle_timeout(now);
            if !session.dirty && session.receiver.ack_due(now) {
                session.dirty = true;
                self.dirty.push_back(id);
            }
        }
        if self.next_sweep.is_some_and(|t| t <= now) {
            self.next_sweep = Some(now + self.config.sweep_interval);
            let dead: Vec<u32> = self
                .sessions
                .iter()
                .filter(|(_, s)| s.receiver.is_dead(now))
                .map(|(&id, _)| id)
                .collect();
            for id in dead {
                self.end_session(now, id, CloseReason::PeerDead);
            }
            self.closed.retain(|_, c| c.until > now);
        }
    }

    /// The next thing that happened, if any.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }
}
