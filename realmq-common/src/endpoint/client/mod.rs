//! The client side of a session: handshake, sending through the QoS sender, STOP and BYE.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use realmq_proto::{
    Datagram, DatagramWriter, Flags, Frame, Header, Hello, PacketKind, Retry, Stop, Welcome,
    MAX_FOLLOWING_PREFIX, MAX_TOKEN_LEN,
};
use serde::{Deserialize, Serialize};

use super::auth::{is_sealed, without_trailer, writable_len, SessionAuth};
use super::clock::{ClockOffset, ClockProbe};
use crate::config::{LivenessTuning, SenderConfig, SenderConfigError};
use crate::security::{Psk, SessionKeys, TRAILER_LEN};
use crate::sender::{EnqueueError, FillPayload, Prebuilt, Sender, SenderEvent};
use crate::timer::{earliest, TimerKind, TimerTable};

/// Tuning of a [`Client`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientConfig {
    /// The QoS sender: window, loss detection, retransmission, heartbeats, liveness.
    pub sender: SenderConfig,
    /// First wait before a HELLO is repeated, while the server has not answered; it doubles
    /// on every repeat, up to 250 ms. Once a RETRY has measured the round trip, repeats start
    /// from three round trips instead (at least 10 ms, at most this).
    pub handshake_retry: Duration,
    /// How long to keep trying to open a session before the server counts as unreachable.
    pub handshake_timeout: Duration,
    /// How long to repeat STOP while waiting for the server's BYE.
    pub stop_timeout: Duration,
    /// The client's own heartbeat interval and failure detector settings; what is not given
    /// follows the interval announced in the WELCOME ([`LivenessTuning::resolve`]).
    pub liveness: LivenessTuning,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            sender: SenderConfig::default(),
            handshake_retry: Duration::from_millis(200),
            handshake_timeout: Duration::from_secs(5),
            stop_timeout: Duration::from_secs(5),
            liveness: LivenessTuning::default(),
        }
    }
}

/// Where a [`Client`] is in its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// Sending HELLO, waiting for WELCOME.
    Handshaking,
    /// Open: messages may be sent.
    Established,
    /// [`Client::finish`] was called: the sender drains what is in flight.
    Finishing,
    /// Everything was acknowledged or given up: sending STOP, waiting for BYE.
    Stopping,
    /// Over, by BYE, by timeout or because the server is unreachable.
    Closed,
}

/// What happened, reported by [`Client::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientEvent {
    /// The server granted the session.
    Established {
        /// The session id the server assigned.
        session_id: u32,
    },
    /// A message was resent the maximum number of times and given up.
    Undeliverable {
        /// Its ID.
        id: u64,
    },
    /// The server stopped answering: no WELCOME in time, or its ACKs stopped arriving long
    /// enough for the failure detector to suspect it. The session is closed.
    PeerUnreachable,
    /// The server kept acknowledging messages far beyond anything sent, which an honest
    /// server never does. The session is closed.
    ProtocolViolation,
    /// The session is over.
    Closed {
        /// Distinct messages the server said it received (its BYE), or `None` if no BYE came.
        server_received: Option<u64>,
    },
}

/// Why [`Client::send`] or [`Client::send_many`] refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The window is full: wait for ACKs (poll and handle datagrams), then try again.
    #[error("send window full")]
    Backpressure,
    /// The handshake has not completed yet.
    #[error("session not established yet")]
    NotEstablished,
    /// [`Client::finish`] was called, or the session is closed.
    #[error("session is finishing or closed")]
    Finishing,
    /// The session used up its 2^62 message IDs.
    #[error("message IDs exhausted")]
    IdsExhausted,
    /// The payload is larger than one datagram can carry.
    #[error("payload of {len} bytes exceeds the {max} a datagram carries")]
    TooLarge {
        /// The payload's length.
        len: usize,
        /// The largest payload accepted.
        max: usize,
    },
}

impl From<EnqueueError> for SendError {
    fn from(e: EnqueueError) -> Self {
        match e {
            EnqueueError::Backpressure => SendError::Backpressure,
            EnqueueError::TooLarge { len, max } => SendError::TooLarge { len, max },
            EnqueueError::IdsExhausted => SendError::IdsExhausted,
        }
    }
}

/// A DATA datagram with less room left is padded to full size ([`Client::poll_transmit`]).
const PAD_SLACK: usize = 64;

/// The longest wait between two HELLOs (or two STOPs): the repeats double up to it. At 50 %
/// loss each way three exchanges in four fail; with 500 ms a client made 11 tries in its
/// 5 s connect timeout and one handshake in five gave up (simulation, 300 seeds), with 250
/// ms it makes 21 (`docs/RELIABILITY.md`, "Across loss rates"). It also stays below the
/// half second of silence after which a server run with `--exit-after-sessions` stops
/// answering repeated STOPs.
const MAX_CONTROL_INTERVAL: Duration = Duration::from_millis(250);

/// The shortest wait before a HELLO or STOP is repeated once the path's round trip is known:
/// well above the scheduling jitter of a busy host, so a slow answer is not taken for a lost
/// one at every exchange.
const MIN_ANSWERED_INTERVAL: Duration = Duration::from_millis(10);

/// The wait before repeating a HELLO or STOP once the server has answered across a round trip
/// of `rtt`: three round trips (RFC 9002 §6.2.1's probe timeout without ACK delay, the
/// variance taken as half the sample, as §5.3 does for a first one), at least
/// [`MIN_ANSWERED_INTERVAL`] and at most `first` (the wait before any answer).
fn answered_interval(rtt: Option<Duration>, first: Duration) -> Duration {
    rtt.map_or(first, |rtt| {
        (rtt * 3).clamp(MIN_ANSWERED_INTERVAL, first.max(MIN_ANSWERED_INTERVAL))
    })
}

/// The client's own timers, for the handshake and the STOP exchange (the sender has its own
/// once the session is established).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// The next HELLO (while handshaking) or STOP (while stopping) is due.
    Control,
    /// Handshaking or stopping gives up. Stopped while the session is established.
    GiveUp,
}

impl TimerKind for Timer {
    const ALL: &'static [Self] = &[Timer::Control, Timer::GiveUp];

    fn index(self) -> usize {
        self as usize
    }
}

/// One session from the client's side.
///
/// Contract (sans-IO): feed every datagram from the server to
/// [`handle_datagram`](Self::handle_datagram) and call [`handle_timeout`](Self::handle_timeout)
/// once the instant from [`poll_timeout`](Self::poll_timeout) has passed; after either, and
/// after [`send`](Self::send), drain [`poll_transmit`](Self::poll_transmit) and
/// [`poll_event`](Self::poll_event) until they return `None`.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    state: ClientState,
    /// `Instant` of the session epoch; message timestamps count from it.
    epoch: Instant,
    last_stamp: Option<(Instant, u64)>, // the last `now` given to `send`, as a timestamp
    epoch_unix_us: u64,
    nonce: u64,
    session_id: u32,
    /// The QoS sender, created when the WELCOME arrives (with the server's heartbeat interval).
    sender: Option<Sender>,
    /// Round-trip times, empty until the session is established.
    no_rtt: hdrhistogram::Histogram<u64>,
    /// The HELLO/STOP repetition and the give-up deadline; stopped while established.
    timers: TimerTable<Timer, 2>,
    /// The wait before the next HELLO or STOP repeat; it doubles on every repeat.
    control_interval: Duration,
    events: VecDeque<ClientEvent>,
    stats: ClientStats,
    /// The server's address-validation cookie, echoed in every later HELLO.
    cookie: Vec<u8>,
    /// With a pre-shared key: the key, then (once established) the session's keys.
    psk: Option<Psk>,
    auth: Option<SessionAuth>,
    /// The clock-offset probing of the handshake and its best sample.
    clock: ClockProbe,
}

impl Client {
    /// A client that will open a session at `now`. `epoch_unix_us` is the wall-clock time of
    /// `now` in microseconds since the Unix epoch (the server computes one-way latency from
    /// it; values beyond the wire's 2^62 − 1 are clamped to it); `nonce` should be random, to
    /// match the WELCOME to this HELLO.
    ///
    /// The handshake estimates this clock's offset to the server's ([`ClockOffset`]): when
    /// the server has a wall clock, the first RETRY is followed by cookie-less probe HELLOs
    /// until [`CLOCK_PROBES`](super::CLOCK_PROBES) RETRYs came, then the HELLO with the
    /// cookie carries the best estimate, by which the server corrects send times.
    ///
    /// Fails if `config.sender` is invalid.
    pub fn new(
        config: ClientConfig,
        now: Instant,
        epoch_unix_us: u64,
        nonce: u64,
    ) -> Result<Self, SenderConfigError> {
        config.sender.validate()?;
        let mut timers = TimerTable::new();
        timers.set(Timer::Control, now);
        timers.set(Timer::GiveUp, now + config.handshake_timeout);
        Ok(Self {
            control_interval: config.handshake_retry,
            timers,
            config,
            state: ClientState::Handshaking,
            epoch: now,
            last_stamp: None,
            epoch_unix_us: epoch_unix_us.min(realmq_proto::MAX_MESSAGE_ID),
            nonce,
            session_id: 0,
            sender: None,
            no_rtt: crate::stats::latency_histogram(),
            events: VecDeque::new(),
            stats: ClientStats::default(),
            cookie: Vec::new(),
            psk: None,
            auth: None,
            clock: ClockProbe::default(),
        })
    }

    /// Authenticates the session with keys derived from `psk` (the server must use the same
    /// key): every datagram after the handshake is sealed, and the server's are checked.
    pub fn with_psk(mut self, psk: Psk) -> Self {
        self.psk = Some(psk);
        self
    }

    /// Messages sent and neither acknowledged nor given up yet (0 before the session).
    pub fn in_flight(&self) -> usize {
        self.sender.as_ref().map_or(0, Sender::in_flight)
    }

    /// Messages accepted by [`send`](Self::send) and not yet written.
    pub fn unsent(&self) -> usize {
        self.sender.as_ref().map_or(0, Sender::unsent)
    }

    /// The ID the next message accepted by [`send`](Self::send) will get, once established.
    pub fn next_message_id(&self) -> Option<u64> {
        self.sender.as_ref().map(Sender::next_id)
    }

    /// The largest payload [`send`](Self::send) accepts with `config` (and a pre-shared key,
    /// whose tag takes room in every datagram).
    pub fn max_payload(config: &ClientConfig, authenticated: bool) -> usize {
        let trailer = if authenticated { TRAILER_LEN } else { 0 };
        config.sender.max_payload().saturating_sub(trailer)
    }

    /// Where the session is.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// Whether messages can be sent.
    pub fn is_established(&self) -> bool {
        self.state == ClientState::Established
    }

    /// Whether the session is over.
    pub fn is_closed(&self) -> bool {
        self.state == ClientState::Closed
    }

    /// The session id, once established (0 before).
    pub fn session_id(&self) -> u32 {
        self.session_id
    }

    /// The best estimate of this client's clock minus the server's so far: the handshake
    /// exchange (RETRYs and the WELCOME) with the smallest round trip. `None` before any
    /// answer, or when the server has no wall clock.
    pub fn clock_offset(&self) -> Option<ClockOffset> {
        self.clock.best()
    }

    /// Whether the window has room for a message of `len` bytes now: its payload and the
    /// most framing it is stored with. (`send` may still refuse it when the storage's free
    /// bytes are split by the wrap-around.)
    pub fn can_send(&self, len: usize) -> bool {
        self.is_established()
            && self.sender.as_ref().is_some_and(|s| {
                let (messages, bytes) = s.window_usage();
                messages < s.config().window_messages
                    && bytes + len + MAX_FOLLOWING_PREFIX <= s.config().window_bytes
            })
    }

    /// Queues a message; it goes out with the next [`poll_transmit`](Self::poll_transmit).
    /// Returns its ID. The payload is copied into the sender's window.
    pub fn send(&mut self, now: Instant, payload: &[u8]) -> Result<u64, SendError> {
        let (sender, timestamp_us) = self.sender_for(now)?;
        let id = sender
            .send(timestamp_us, payload)
            .map_err(SendError::from)?;
        self.stats.sent += 1;
        Ok(id)
    }

    /// Queues up to `count` messages of `len` bytes, each written in place into the sender's
    /// window by `fill` (a closure `fill(id, payload)`, or a [`FillPayload`] of its own):
    /// `send` for a batch, without a copy of each payload to make first. Returns how many
    /// were queued: fewer than `count` when the window filled ([`SendError::Backpressure`]
    /// when none was).
    pub fn send_many(
        &mut self,
        now: Instant,
        len: usize,
        count: u64,
        fill: impl FillPayload,
    ) -> Result<u64, SendError> {
        let (sender, timestamp_us) = self.sender_for(now)?;
        let accepted = sender
            .send_many(timestamp_us, len, count, fill)
            .map_err(SendError::from)?;
        self.stats.sent += accepted;
        Ok(accepted)
    }

    /// The sender, if messages may be sent now, and the timestamp of messages sent `now`.
    fn sender_for(&mut self, now: Instant) -> Result<(&mut Sender, u64), SendError> {
        match self.state {
            ClientState::Handshaking => return Err(SendError::NotEstablished),
            ClientState::Established => {}
            _ => return Err(SendError::Finishing),
        }
        // Batches of messages share one clock reading: convert it once.
        let timestamp_us = match self.last_stamp {
            Some((at, us)) if at == now => us,
            _ => self.last_stamp.insert((now, self.timestamp_us(now))).1,
        };
        let sender = self.sender.as_mut().ok_or(SendError::NotEstablished)?;
        Ok((sender, timestamp_us))
    }

    /// No more messages: once everything sent is acknowledged or given up, the client sends
    /// STOP and closes on the server's BYE.
    pub fn finish(&mut self, now: Instant) {
        match self.state {
            ClientState::Established => {
                self.state = ClientState::Finishing;
                self.maybe_stop(now);
            }
            ClientState::Handshaking => self.close(None),
            _ => {}
        }
    }

    /// Ends the session at once, whatever is still unacknowledged: no STOP, no wait for the
    /// server's BYE (the server evicts the silent session). For a caller that will wait no
    /// longer — the load client some seconds after Ctrl-C, when the path stopped carrying
    /// its messages. What was not acknowledged stays counted as not acknowledged.
    pub fn abandon(&mut self) {
        self.close(None);
    }

    /// Takes in one datagram received from the server.
    pub fn handle_datagram(&mut self, now: Instant, bytes: &[u8]) {
        let Ok(header) = Header::parse(bytes) else {
            self.stats.datagrams_rejected += 1;
            return;
        };
        let ok = match (header.kind, self.state) {
            (PacketKind::Handshake, ClientState::Handshaking) => self.on_handshake(now, bytes),
            (PacketKind::Session, ClientState::Established)
            | (PacketKind::Session, ClientState::Finishing)
            | (PacketKind::Session, ClientState::Stopping)
                if header.session_id == self.session_id =>
            {
                self.on_session(now, bytes)
            }
            _ => false,
        };
        if !ok {
            self.stats.datagrams_rejected += 1;
        }
        self.drain_sender_events();
        self.maybe_stop(now);
    }

    fn on_handshake(&mut self, now: Instant, bytes: &[u8]) -> bool {
        // With a key, a WELCOME carries a trailer; a RETRY never does.
        if let Ok(datagram) = Datagram::parse(bytes) {
            for frame in datagram.frames() {
                match frame {
                    Frame::Retry(retry) if retry.nonce == self.nonce => {
                        return self.on_retry(now, retry);
                    }
                    Frame::Welcome(w)
                        if w.nonce == self.nonce && self.psk.is_none() && !is_sealed(bytes) =>
                    {
                        return self.on_welcome(now, datagram.header.session_id, w);
                    }
                    _ => {}
                }
            }
        }
        let Some(psk) = &self.psk else {
            if is_sealed(bytes) {
                warn_key_mismatch(
                    "the server authenticates its sessions: give this client the same --psk-file",
                );
            }
            return false;
        };
        if !is_sealed(bytes) {
            warn_key_mismatch(
                "the server does not authenticate its sessions: it was started without --psk-file",
            );
            return false;
        }
        let Some(Ok(datagram)) = without_trailer(bytes).map(Datagram::parse) else {
            return false;
        };
        let session_id = datagram.header.session_id;
        let Some(welcome) = datagram.frames().find_map(|f| match f {
            Frame::Welcome(w) if w.nonce == self.nonce => Some(w),
            _ => None,
        }) else {
            return false;
        };
        let keys = SessionKeys::derive(psk, self.nonce, welcome.server_nonce, session_id);
        let mut auth = SessionAuth::client(&keys);
        if auth.open(bytes).is_err() {
            // Not sealed with our key: a forgery, or a server without the same --psk-file.
            return false;
        }
        self.auth = Some(auth);
        self.on_welcome(now, session_id, welcome)
    }

    /// A RETRY for our HELLO: keep its cookie and its clock sample, and send the next HELLO
    /// at once: a probe, or the HELLO with the cookie.
    fn on_retry(&mut self, now: Instant, retry: Retry<'_>) -> bool {
        if retry.cookie.is_empty() || retry.cookie.len() > MAX_TOKEN_LEN {
            return false;
        }
        self.cookie.clear();
        self.cookie.extend_from_slice(retry.cookie);
        self.stats.retries += 1;
        let now_us = self.timestamp_us(now);
        let (echo, server) = (retry.echo_timestamp_us, retry.server_unix_us);
        self.clock
            .on_answer(self.epoch_unix_us, echo, server, now_us, true);
        // An answer: the path works, and its round trip says how long the next answer should
        // take, so a lost one is repeated after a few round trips rather than the first wait.
        let rtt = self
            .clock
            .round_trip_us(echo, now_us)
            .map(Duration::from_micros);
        self.control_interval = answered_interval(rtt, self.config.handshake_retry);
        self.timers.set(Timer::Control, now);
        true
    }

    fn on_welcome(&mut self, now: Instant, session_id: u32, welcome: Welcome) -> bool {
        let now_us = self.timestamp_us(now);
        let (echo, server) = (welcome.echo_timestamp_us, welcome.server_unix_us);
        self.clock
            .on_answer(self.epoch_unix_us, echo, server, now_us, false);
        // Heartbeat as often as the server's failure detector expects, if that is valid;
        // never more in flight than the server's plausibility window admits.
        let mut base = self.config.sender.clone();
        let window = usize::try_from(welcome.id_window).unwrap_or(usize::MAX);
        base.window_messages = base.window_messages.min(window).max(1);
        base.peer_id_window = welcome.id_window;
        if self.psk.is_some() {
            base.max_datagram_size = writable_len(base.max_datagram_size, true);
        }
        let mut config = base.clone();
        let interval = (self.config.liveness)
            .client_interval(Duration::from_micros(welcome.heartbeat_interval_us));
        config.heartbeat_interval = interval;
        config.liveness = self.config.liveness.resolve(interval);
        let sender = Sender::new(config, self.epoch).or_else(|_| Sender::new(base, self.epoch));
        let Ok(mut sender) = sender else {
            return false;
        };
        // Unauthenticated datagrams end with their last message (no trailer to seal in):
        // batches are stored as the datagrams that carry them (`poll_prebuilt`).
        if self.psk.is_none() {
            sender.store_datagrams(PAD_SLACK);
        }
        sender.handle_peer_activity(now);
        self.sender = Some(sender);
        self.session_id = session_id;
        self.state = ClientState::Established;
        self.timers.stop(Timer::Control);
        self.timers.stop(Timer::GiveUp);
        self.events.push_back(ClientEvent::Established {
            session_id: self.session_id,
        });
        true
    }

    fn on_session(&mut self, now: Instant, bytes: &[u8]) -> bool {
        let bytes = match &mut self.auth {
            Some(auth) => match auth.open(bytes) {
                Ok(inner) => inner,
                Err(_) => return false,
            },
            None => bytes,
        };
        let (Ok(datagram), Some(sender)) = (Datagram::parse(bytes), self.sender.as_mut()) else {
            return false;
        };
        for frame in datagram.frames() {
            match frame {
                // The part of an ACK naming IDs never sent is ignored (and counted).
                Frame::Ack(ack) => {
                    if sender.handle_ack(now, &ack).is_err() {
                        self.stats.acks_unsent += 1;
                    }
                }
                Frame::Bye(bye) => {
                    self.close(Some(bye.received));
                    return true;
                }
                _ => sender.handle_peer_activity(now),
            }
        }
        true
    }

    /// Writes the next datagram to send into `buf`; `None` when there is nothing to send.
    /// Datagrams of a burst carrying DATA come out at the full configured size (the few
    /// bytes left over are PADDING), so the caller can batch them with UDP GSO.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let max = self.config.sender.max_datagram_size;
        let len = match self.state {
            ClientState::Closed => return None,
            ClientState::Handshaking => {
                if !self.timers.is_expired(Timer::Control, now) {
                    return None;
                }
                // Re-armed first: a HELLO that cannot be written must not leave a timer due
                // (the caller would spin).
                self.schedule_control(now);
                let probe = self.clock.next_hello_is_probe(!self.cookie.is_empty());
                let timestamp_us = self.timestamp_us(now);
                let estimate = self.clock.best();
                let mut w = DatagramWriter::new(buf, max, Header::handshake(0)).ok()?;
                w.hello(Hello {
                    nonce: self.nonce,
                    epoch_unix_us: self.epoch_unix_us,
                    timestamp_us,
                    clock_offset_us: estimate.map_or(0, |e| e.offset_us),
                    clock_rtt_us: estimate.map_or(0, |e| e.rtt_us),
                    token: if probe { &[] } else { &self.cookie },
                })
                .ok()?;
                self.clock.on_hello_sent(timestamp_us, probe);
                w.finish()
            }
            _ => {
                let session_id = self.session_id;
                let sent = self.stats.sent;
                let stop_due = self.state == ClientState::Stopping
                    && self.timers.is_expired(Timer::Control, now);
                let sender = self.sender.as_mut()?;
                let mut header = Header::session(session_id);
                if sender.wants_ack_now() {
                    header.flags = Flags::ACK_NOW;
                }
                if !sender.config().reliable {
                    header.flags = header.flags.with(Flags::NO_RESEND);
                }
                // A caller's smaller buffer (a segment of a GSO batch) bounds the datagram,
                // trailer included.
                let room = writable_len(max.min(buf.len()), self.auth.is_some());
                let mut w = DatagramWriter::new(&mut *buf, room, header).ok()?;
                let data = sender.write_data(now, &mut w);
                // The last datagram of a burst asks for an ACK at once, so a round trip at low
                // load does not wait for the receiver's delayed-ACK timer (the idea of QUIC's
                // ACK-frequency extension, draft-ietf-quic-ack-frequency, IMMEDIATE_ACK).
                if data > 0 && !sender.has_pending_data() {
                    w.add_flags(Flags::ACK_NOW);
                }
                // A nearly full DATA datagram is padded to the full size, so that a burst is
                // a run of equal-sized datagrams the binary can hand to the kernel in one
                // segmented send (UDP GSO). At most PAD_SLACK bytes of PADDING.
                if data > 0 && w.remaining() < PAD_SLACK {
                    w.pad_to(usize::MAX);
                }
                let stop = stop_due && w.stop(Stop { sent }).is_ok();
                if w.is_empty() && sender.heartbeat_due(now) {
                    sender.write_heartbeat(now, &mut w);
                }
                if w.is_empty() {
                    return None;
                }
                if data == 0 {
                    sender.handle_datagram_sent(now);
                }
                if stop {
                    self.schedule_control(now);
                }
                let len = w.finish();
                match &mut self.auth {
                    Some(auth) => auth.seal(buf, len).ok()?,
                    None => len,
                }
            }
        };
        self.stats.datagrams_sent += 1;
        Some(len)
    }

    /// Writes up to `max` datagrams of new messages where the session stored them, back to
    /// back, and returns them (see [`Prebuilt`]), if the next thing to send is such a run
    /// (new messages sent with `send_many`, the congestion window open, nothing to resend,
    /// no control frame due); `None` otherwise: then [`poll_transmit`](Self::poll_transmit)
    /// writes what is next. The datagrams are the ones `poll_transmit` would write one by
    /// one, with their PADDING in front of the DATA frame, and count as sent: a caller that
    /// cannot send them at once must keep them (a copy) until it can.
    pub fn poll_prebuilt(&mut self, now: Instant, max: usize) -> Option<Prebuilt<'_>> {
        if self.state != ClientState::Established || self.auth.is_some() {
            return None;
        }
        let header = Header::session(self.session_id);
        let prebuilt = self.sender.as_mut()?.write_prebuilt(now, header, max)?;
        self.stats.datagrams_sent += prebuilt.count as u64;
        Some(prebuilt)
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to be called (or
    /// [`poll_transmit`](Self::poll_transmit), for a heartbeat or control frame that is due).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            ClientState::Closed => None,
            _ => earliest(
                self.timers.next_deadline(),
                self.sender.as_ref().and_then(Sender::poll_timeout),
            ),
        }
    }

    /// This process could not run from `since` to `now` ([`PauseWatch`]): that time is not
    /// held against the server.
    ///
    /// [`PauseWatch`]: crate::liveness::PauseWatch
    pub fn handle_local_pause(&mut self, since: Instant, now: Instant) {
        if let Some(sender) = self.sender.as_mut() {
            sender.handle_local_pause(since, now);
        }
    }

    /// Runs the timers that are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            ClientState::Closed => return,
            ClientState::Handshaking if self.timers.is_expired(Timer::GiveUp, now) => {
                self.events.push_back(ClientEvent::PeerUnreachable);
                self.close(None);
                return;
            }
            ClientState::Stopping if self.timers.is_expired(Timer::GiveUp, now) => {
                self.close(None);
                return;
            }
            ClientState::Handshaking => return,
            _ => {}
        }
        if let Some(sender) = self.sender.as_mut() {
            sender.handle_timeout(now);
        }
        self.drain_sender_events();
        self.maybe_stop(now);
    }

    /// The next thing that happened, if any.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// The counters.
    pub fn stats(&self) -> ClientStats {
        match &self.sender {
            Some(sender) => {
                let s = sender.stats();
                ClientStats {
                    acked: s.acked,
                    retransmitted: s.retransmitted,
                    undeliverable: s.undeliverable,
                    ..self.stats
                }
            }
            None => self.stats,
        }
    }

    /// Forgets the round-trip times measured so far (the end of a warm-up period).
    pub fn reset_rtt_histogram(&mut self) {
        if let Some(sender) = &mut self.sender {
            sender.reset_rtt_samples();
        }
    }

    /// Round-trip times of acknowledged messages, in microseconds.
    pub fn rtt_histogram(&self) -> &hdrhistogram::Histogram<u64> {
        self.sender
            .as_ref()
            .map_or(&self.no_rtt, |s| &s.stats().rtt_us)
    }

    fn timestamp_us(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_micros() as u64
    }

    fn schedule_control(&mut self, now: Instant) {
        self.timers.set(Timer::Control, now + self.control_interval);
        self.control_interval = (self.control_interval * 2).min(MAX_CONTROL_INTERVAL);
    }

    /// Moves from finishing to stopping once the sender has nothing left in flight.
    fn maybe_stop(&mut self, now: Instant) {
        if self.state == ClientState::Finishing && self.sender.as_ref().is_none_or(Sender::is_idle)
        {
            self.state = ClientState::Stopping;
            self.timers.set(Timer::Control, now);
            let rtt = self.sender.as_ref().map(|s| s.rtt().smoothed());
            self.control_interval = answered_interval(rtt, self.config.handshake_retry);
            self.timers
                .set(Timer::GiveUp, now + self.config.stop_timeout);
        }
    }

    fn drain_sender_events(&mut self) {
        while let Some(event) = self.sender.as_mut().and_then(Sender::poll_event) {
            match event {
                SenderEvent::Undeliverable { id } => {
                    self.events.push_back(ClientEvent::Undeliverable { id })
                }
                // Stopping, everything is acknowledged and the server closes on our STOP:
                // its silence is expected, and the stop timeout decides.
                SenderEvent::PeerUnreachable if self.state == ClientState::Stopping => {}
                SenderEvent::PeerUnreachable => {
                    self.events.push_back(ClientEvent::PeerUnreachable);
                    self.close(None);
                }
                SenderEvent::ProtocolViolation => {
                    self.events.push_back(ClientEvent::ProtocolViolation);
                    self.close(None);
                }
            }
        }
    }

    fn close(&mut self, server_received: Option<u64>) {
        if self.state != ClientState::Closed {
            self.state = ClientState::Closed;
            self.events
                .push_back(ClientEvent::Closed { server_received });
        }
    }
}

/// Says once per process why handshakes fail when the two ends disagree on the key.
fn warn_key_mismatch(why: &str) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        log::warn!("{why}");
    }
}

mod stats;
pub use stats::ClientStats;

#[cfg(test)]
mod tests;
