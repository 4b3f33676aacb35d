//! One UDP sender thread: a connected non-blocking socket, its own `mio::Poll`, and one
//! sans-IO [`Client`] session.
//!
//! Each pass of the loop reads datagrams until `WouldBlock` (at most [`RECV_BUDGET`]), runs
//! the session's timers once their deadline has passed, offers new messages (as many as the
//! token bucket and the send window allow, at most [`send_batch`]), writes what the session
//! has to send, and waits in `poll` for the earliest of: the session's timer, the next
//! token, the end of `--duration`, the handshake deadline. A datagram that meets
//! `WouldBlock` is kept and the socket registered for WRITABLE; nothing new is written until
//! it has left.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use realmq_common::config::SenderConfig;
use realmq_common::endpoint::{Client, ClientConfig, ClientEvent, ClientState, SendError};
use realmq_common::io::entropy::random_u64;
use realmq_common::io::{
    local_pause, socket, ArrivalRecorder, DropSim, Outbox, RecvBatch, Shutdown,
};
use realmq_common::liveness::PauseWatch;
use realmq_common::payload_stamp::{StampedCopies, Stamper};
use realmq_common::stats::merge_latency;
use realmq_proto::{MAX_FOLLOWING_PREFIX, MIN_DATAGRAM_SIZE};

use crate::stall::{StallWatch, STALL_WARNING};
use crate::summary::{Progress, ThreadResult};
use crate::{random_payload, segments_per_send, WorkerConfig};

/// The token of the waker that interrupts `poll` on shutdown.
const WAKER: Token = Token(0);
const SOCKET: Token = Token(1);
/// Datagrams read per pass.
const RECV_BUDGET: usize = 256;
/// Bytes of messages offered per pass: well inside the client core's 1 MiB L2 cache, so
/// that what `send` stored is still there when `poll_transmit` copies it into datagrams.
const PASS_BYTES: usize = 256 * 1024;
/// Framing bytes per message in a DATA frame, at most for payloads under 16 KiB.
const MESSAGE_FRAMING: usize = 4;
/// Datagrams written per pass.
const SEND_BUDGET: usize = 512;
/// How often a loop with work left waits for events at all (for none, a zero timeout): a
/// wait and the pause check after it are two system calls, of seven in a pass at full speed.
const BUSY_WAIT_EVERY: Duration = Duration::from_millis(1);
/// Messages per receive call on a client thread (64 KiB of buffer each).
const CLIENT_RECV_MESSAGES: usize = 4;

/// Messages offered to the session per pass at full speed: about [`PASS_BYTES`] of messages,
/// rounded down to whole segmented sends of `segments` full datagrams, and at least
/// one such send. `max_payload` is the most one datagram carries as one message
/// ([`Client::max_payload`]): a datagram holds that one and, behind it, as many more as fit
/// with [`MESSAGE_FRAMING`] each (an estimate: a message's own framing is its worst case).
///
/// Fewer (256 64-byte messages, 12 datagrams a send) made several small sends a pass, each
/// with its system call, its wake-up of the server and the ACK its last datagram asks for,
/// and more passes, each with its receive attempt, `poll` and clock readings; more (1,024 of
/// 1,024 bytes) stored a pass's messages and then copied them into datagrams after they had
/// left the cache; a pass that ended in a part of a send (3,855 64-byte messages: four sends
/// of 44 datagrams and one of 8) made a fifth system call for a twentieth of the messages,
/// and cost the client a tenth more system time (`docs/BENCHMARKS.md`).
fn send_batch(size: usize, max_payload: usize, segments: usize) -> u64 {
    let per_datagram = 1 + max_payload.saturating_sub(size) / (size + MESSAGE_FRAMING);
    let per_send = per_datagram * segments;
    let sends = (PASS_BYTES / (per_send * (size + MESSAGE_FRAMING))).max(1);
    (sends * per_send) as u64
}

/// The session configuration for a worker. Its window stores what its message count needs
/// for `--size` messages (each behind at most [`MAX_FOLLOWING_PREFIX`] bytes of framing),
/// twice over, from 64 KiB up to the default 8 MiB: the storage is a ring the writes walk
/// through whole before wrapping, and 8 MiB of it for at most 8,192 64-byte messages (about
/// 550 KiB) meant every message was written to memory the caches had long let go; with the
/// window sized to the messages the client's user time fell by about a seventh
/// (`docs/BENCHMARKS.md`).
pub(crate) fn client_config(config: &WorkerConfig, datagram_size: usize) -> ClientConfig {
    let defaults = SenderConfig::default();
    let needed = (config.size + MAX_FOLLOWING_PREFIX)
        .saturating_mul(defaults.window_messages)
        .saturating_mul(2);
    ClientConfig {
        sender: SenderConfig {
            reliable: config.reliable,
            max_datagram_size: datagram_size,
            window_bytes: needed.clamp(64 * 1024, defaults.window_bytes),
            ..defaults
        },
        handshake_timeout: config.connect_timeout,
        liveness: config.liveness.tuning.clone(),
        ..ClientConfig::default()
    }
}

/// The largest `--size` the session layer takes over UDP in datagrams of `datagram_size`
/// bytes (one message per datagram). With `authenticated` (a pre-shared key), each
/// datagram's tag takes room too.
pub fn max_payload(datagram_size: usize, authenticated: bool) -> usize {
    let mut config = ClientConfig::default();
    config.sender.max_datagram_size = datagram_size;
    Client::max_payload(&config, authenticated)
}

struct Worker<'a> {
    config: &'a WorkerConfig,
    socket: UdpSocket,
    poll: Poll,
    client: Client,
    loss: DropSim,
    /// Room for one segmented send: `segments` datagrams of `datagram_size`.
    tx: Vec<u8>,
    /// The session's datagram size: every full DATA datagram has exactly this length.
    datagram_size: usize,
    /// Datagrams per segmented send ([`segments_per_send`]).
    segments: usize,
    /// The largest message one of those datagrams carries ([`Client::max_payload`]).
    max_payload: usize,
    outbox: Outbox,
    /// Receive buffers: ACKs by `recvmmsg`, GRO batches split.
    batch: RecvBatch,
    /// Set when the handshake completed.
    session_id: Option<u32>,
    /// ICMP port-unreachable answers to HELLOs before any session: the server is not there.
    refused_before_session: u32,
    /// Receive errors by kind, each logged once (ICMP unreachable, prohibited...).
    socket_errors: SocketErrors,
    /// Messages still to send under `--messages` (`None` in `--duration` mode).
    remaining: Option<u64>,
    /// When `--duration` ends, once the first session is established.
    send_until: Option<Instant>,
    /// Messages of a lost session that were never acknowledged, to send again first in the
    /// next session.
    owed: u64,
    /// What the sessions that ended before the current one did.
    earlier: Earlier,
    /// Whether the session's acknowledgements stopped (`stall.rs`).
    stall: StallWatch,
    /// `--record-arrivals`.
    arrivals: Option<ArrivalRecorder>,
    result: ThreadResult,
}

/// Counts carried over from sessions lost to a server that went away.
#[derive(Debug, Default, Clone, Copy)]
struct Earlier {
    sessions: u32,
    sent: u64,
    acked: u64,
    retransmitted: u64,
    undeliverable: u64,
    /// Messages handed to a new session again because the lost one never acknowledged them.
    resent: u64,
}

/// Transient socket errors (ICMP host/port unreachable, administratively prohibited...):
/// counted, and each kind logged once. Never fatal to an established session.
#[derive(Debug, Default)]
struct SocketErrors {
    seen: Vec<io::ErrorKind>,
    count: u64,
}

impl SocketErrors {
    fn record(&mut self, thread: u32, e: &io::Error) {
        self.count += 1;
        if !self.seen.contains(&e.kind()) {
            self.seen.push(e.kind());
            log::warn!("thread {thread}: the UDP socket reported `{e}` (counted, not fatal)");
        }
    }
}

/// The session's datagram size: `--datagram-size` (by default one Ethernet MTU's UDP
/// payload, [`realmq_proto::DEFAULT_MAX_DATAGRAM`]), or less where the kernel knows the path
/// to the server to be narrower ([`socket::datagram_size`]: a VPN, PPPoE, a tunnel); and the
/// largest message one such datagram carries ([`Client::max_payload`]). Fails, saying why,
/// when that leaves too little room for the handshake or for one `--size` message.
fn datagram_size(socket: &UdpSocket, config: &WorkerConfig) -> anyhow::Result<(usize, usize)> {
    let preferred = config.datagram_size;
    let size = socket::datagram_size(socket, preferred);
    if size < preferred && config.index == 0 {
        log::info!(
            "the path MTU to {} leaves {size}-byte UDP datagrams: sending those (asked for \
             {preferred})",
            config.server
        );
    }
    if size < MIN_DATAGRAM_SIZE {
        bail!(
            "the path MTU to {} leaves {size}-byte UDP datagrams: RealMQ needs at least \
             {MIN_DATAGRAM_SIZE}",
            config.server
        );
    }
    let max = Client::max_payload(&client_config(config, size), config.psk.is_some());
    if config.size > max {
        bail!(
            "--size {} does not fit in one datagram to {}: its path MTU leaves {size}-byte UDP \
             datagrams, which carry at most {max} bytes of message",
            config.size,
            config.server
        );
    }
    Ok((size, max))
}

/// How long the first Ctrl-C (or SIGTERM) waits for the messages in flight to be
/// acknowledged before the session ends without them: on a working path they are within
/// milliseconds; on one that stopped carrying them (a narrower MTU somewhere, a firewall) the
/// wait never ended, and a `timeout` without `-k` never stopped the client.
const DRAIN_AFTER_INTERRUPT: Duration = Duration::from_secs(10);

/// HELLOs answered by ICMP port unreachable before the client gives up: two, so one stale
/// ICMP from a previous server on the port cannot end a run (about 0.2 s: the second HELLO
/// goes 200 ms after the first).
const REFUSALS_BEFORE_FAILING: u32 = 2;

/// Runs one sender thread's session to its end: handshake, messages, close.
pub(crate) fn send_session(
    config: &WorkerConfig,
    progress: &Progress,
    shutdown: &Shutdown,
) -> anyhow::Result<ThreadResult> {
    let poll = Poll::new().context("cannot create an event loop")?;
    let waker = Waker::new(poll.registry(), WAKER).context("cannot create a waker")?;
    shutdown.add_waker(Arc::new(waker));
    let socket = socket::connect_udp(config.server, config.socket_buffer)
        .with_context(|| format!("cannot open a UDP socket to {}", config.server))?;
    let outbox = Outbox::new(&socket).context("cannot set up the UDP socket")?;
    let (datagram_size, max_payload) = datagram_size(&socket, config)?;
    // Both clocks read together: the session epoch's wall time is that of `now`.
    let (now, unix_now_us) = (Instant::now(), config.unix_now_us());
    let nonce = random_u64().context("cannot draw a nonce from the OS")?;
    let mut client = Client::new(
        client_config(config, datagram_size),
        now,
        unix_now_us,
        nonce,
    )
    .context("invalid session configuration")?;
    if let Some(psk) = &config.psk {
        client = client.with_psk(psk.clone());
    }
    let segments = segments_per_send(datagram_size);
    let mut worker = Worker {
        config,
        socket,
        poll,
        client,
        loss: DropSim::new(config.simulate_loss, config.loss_seed),
        tx: vec![0; segments * datagram_size],
        outbox,
        batch: RecvBatch::new(CLIENT_RECV_MESSAGES),
        datagram_size,
        segments,
        max_payload,
        session_id: None,
        refused_before_session: 0,
        socket_errors: SocketErrors::default(),
        remaining: config.quota,
        send_until: None,
        owed: 0,
        earlier: Earlier::default(),
        stall: StallWatch::default(),
        arrivals: (config.liveness.record_arrivals.as_ref())
            .map(|path| ArrivalRecorder::new(path, Instant::now())),
        result: ThreadResult::default(),
    };
    worker
        .poll
        .registry()
        .register(&mut worker.socket, SOCKET, Interest::READABLE)
        .context("cannot register the UDP socket")?;
    worker.drive(progress, shutdown)?;
    while worker.reconnect(shutdown)? {
        worker.drive(progress, shutdown)?;
    }
    if worker.refused_before_session >= REFUSALS_BEFORE_FAILING {
        bail!(
            "cannot connect to {} over UDP: is realmq-server running there (with --protocol udp)?: {}",
            config.server,
            io::Error::from(io::ErrorKind::ConnectionRefused)
        );
    }
    if worker.session_id.is_none() && worker.result.unreachable {
        if worker.earlier.sessions > 0 {
            bail!(
                "the server at {} went silent mid-run ({} session(s) lost) and a new session got \
                 no answer within {:?}",
                config.server,
                worker.earlier.sessions,
                config.connect_timeout
            );
        }
        bail!(
            "no answer from {} within {:?}: is realmq-server running there (with --protocol udp)?",
            config.server,
            config.connect_timeout
        );
    }
    if let Some(arrivals) = worker.arrivals.take() {
        arrivals
            .finish()
            .context("--record-arrivals: the trace is incomplete")?;
    }
    merge_latency(&mut worker.result.rtt, worker.client.rtt_histogram());
    let stats = worker.client.stats();
    let earlier = worker.earlier;
    let r = &mut worker.result;
    // Messages resent after a reconnect count once in `sent`.
    r.sent = earlier.sent + stats.sent - earlier.resent;
    r.retransmitted = earlier.retransmitted + stats.retransmitted;
    r.undeliverable = earlier.undeliverable + stats.undeliverable;
    r.datagrams_sent = worker.outbox.stats().datagrams_sent;
    r.simulated_drops = worker.loss.dropped();
    r.socket_errors = worker.socket_errors.count;
    r.acked = earlier.acked + stats.acked;
    r.reconnects = earlier.sessions;
    r.resent_after_reconnect = earlier.resent;
    // Every BYE lost (the server may have exited meanwhile, as `--exit-after-sessions` does):
    // when the session acknowledged everything it sent, its ACKs confirmed every message.
    if worker.config.reliable && r.server_received.is_none() && stats.acked == stats.sent {
        r.server_received = Some(stats.acked);
        r.counted_from_acks = true;
    }
    // What lost sessions' servers confirmed is what they acknowledged.
    r.server_received = r.server_received.map(|n| n + earlier.acked);
    r.clock_offset = worker.client.clock_offset().or(r.clock_offset);
    Ok(worker.result)
}

impl Worker<'_> {
    /// The event loop, until the session has closed.
    fn drive(&mut self, progress: &Progress, shutdown: &Shutdown) -> anyhow::Result<()> {
        let start = Instant::now();
        let mut pacer = crate::pacing::TokenBucket::new(self.config.rate, start);
        // Every payload of 16 bytes or more carries its session and ID (payload_stamp), so
        // the server can tell a message delivered under another ID.
        let payload = random_payload(self.config.size, self.config.index);
        let stamper = Stamper::new(&payload);
        let mut events = Events::with_capacity(16);
        let mut window_full = false;
        let mut pauses = PauseWatch::default();
        // After Ctrl-C: when the wait for what is in flight ends regardless.
        let mut drain_until = None;
        let mut next_wait = start;

        while !self.client.is_closed() {
            let now = Instant::now();
            let established = self.client.is_established();
            let out_of_messages = self.budget(now) == 0;
            // Ctrl-C also ends a handshake still in progress (`finish` is a no-op once
            // finishing).
            if (established && out_of_messages) || shutdown.is_triggered() {
                self.client.finish(now);
            }
            if shutdown.is_triggered() {
                let until = *drain_until.get_or_insert(now + DRAIN_AFTER_INTERRUPT);
                if now >= until {
                    self.abandon_after_interrupt();
                    break;
                }
            }

            if self.receive()? > 0 {
                window_full = false;
            }
            let now = Instant::now();
            if self.client.poll_timeout().is_some_and(|t| now >= t) {
                self.client.handle_timeout(now);
            }
            let mut offered_all = true;
            // A ping run keeps one message in flight: it offers the next only once the
            // session has nothing unacknowledged.
            let idle = !self.config.ping || self.client.in_flight() == 0;
            // `--on-off`: whether this is a pause, and when the phase ends.
            let phase = self.config.pause_at(now.saturating_duration_since(start));
            let paused = phase.is_some_and(|(paused, _)| paused);
            if self.client.is_established() && !window_full && idle && !paused {
                let batch = if self.config.ping {
                    1
                } else {
                    send_batch(self.config.size, self.max_payload, self.segments)
                };
                let granted = pacer.take(now, self.budget(now).min(batch));
                let session_id = self.client.session_id();
                // Each message is the shared payload with its own stamp, written in place.
                let fill = StampedCopies {
                    stamper: &stamper,
                    payload: &payload,
                    session_id,
                };
                let used = match self.client.send_many(now, payload.len(), granted, fill) {
                    Ok(used) => used,
                    Err(SendError::Backpressure) => 0,
                    Err(e) => bail!("cannot send: {e}"),
                };
                window_full = used < granted;
                pacer.give_back(granted - used);
                if used > 0 {
                    let before = self.client.stats().sent - used;
                    if self.result.on_sent(now, before, self.config.warmup) {
                        self.client.reset_rtt_histogram();
                    }
                    // Owed resends go first, then the quota.
                    let from_owed = used.min(self.owed);
                    self.owed -= from_owed;
                    if let Some(r) = &mut self.remaining {
                        *r -= used - from_owed;
                    }
                }
                offered_all = used < batch;
            }
            let sent_all = self.transmit(now)?;
            // Without QoS writing is what makes room in the window (with QoS an ACK does,
            // handled in `receive`): offer again once there is some.
            if window_full && self.client.can_send(payload.len()) {
                window_full = false;
            }
            self.handle_events(now);
            progress.publish(self.client.stats().sent, self.client.stats().acked);
            self.warn_if_stalled(now);
            let more_work = !offered_all || !sent_all;
            if self.client.is_closed() {
                break;
            }
            // At full speed the socket is read and written on every pass anyway: the wait (a
            // system call) and the pause check after it (another: the thread's CPU clock) are
            // made once every `BUSY_WAIT_EVERY`, often enough to see a pause of
            // `PauseWatch::MIN_PAUSE`, instead of on every pass.
            if more_work && now < next_wait {
                continue;
            }
            next_wait = now + BUSY_WAIT_EVERY;

            // Wait for the earliest of the session's timer, a token, the end of --duration.
            let wants_to_send =
                self.client.is_established() && !window_full && self.budget(now) > 0 && !paused;
            let next_token = if wants_to_send {
                pacer.next_token_at(now)
            } else {
                None
            };
            let phase_end = phase.map(|(_, left)| now + left);
            let deadline = [
                self.client.poll_timeout(),
                next_token,
                self.send_until,
                phase_end,
                drain_until,
            ]
            .into_iter()
            .flatten()
            .min();
            let timeout = if more_work {
                Some(Duration::ZERO)
            } else {
                deadline.map(|t| t.saturating_duration_since(Instant::now()))
            };
            pauses.expect(timeout);
            match self.poll.poll(&mut events, timeout) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => r.context("poll failed")?,
            }
            // Time this thread did not run is not the server's silence (docs/THRESHOLD.md,
            // "Local pauses").
            if let Some((since, woke)) = local_pause(&mut pauses) {
                self.client.handle_local_pause(since, woke);
                if let Some(arrivals) = &mut self.arrivals {
                    arrivals.record_pause(since, woke);
                }
            }
            // Readiness is a hint: the socket is read and written on every pass anyway, and
            // a WAKER event (Ctrl-C) only needs the loop to come round to the flag check.
        }
        Ok(())
    }

    /// Says once per session when nothing has been acknowledged for [`STALL_WARNING`] with
    /// messages in flight while the server still answers.
    fn warn_if_stalled(&mut self, now: Instant) {
        let acked = self.client.stats().acked;
        // A server gone silent would have closed the session within about a second (its
        // failure detector): five seconds in, it still answers.
        if self.stall.check(now, acked, self.client.in_flight()) {
            log::warn!(
                "thread {}: nothing acknowledged for {} s with {} message(s) in flight, while \
                 the server still answers: the path may drop {}-byte datagrams (an MTU below \
                 {} beyond the first hop, or a firewall); the messages are resent until given \
                 up (docs/RELIABILITY.md, \"Narrow paths\")",
                self.config.index,
                STALL_WARNING.as_secs(),
                self.client.in_flight(),
                self.datagram_size,
                self.datagram_size + 28,
            );
        }
    }

    /// Ctrl-C came [`DRAIN_AFTER_INTERRUPT`] ago and messages are still unacknowledged:
    /// ends the session without them, and says so.
    fn abandon_after_interrupt(&mut self) {
        let s = self.client.stats();
        log::warn!(
            "thread {}: {} message(s) still unacknowledged {} s after the interrupt: ending the \
             session without them",
            self.config.index,
            s.sent - s.acked - s.undeliverable,
            DRAIN_AFTER_INTERRUPT.as_secs()
        );
        self.client.abandon();
        self.handle_events(Instant::now());
    }

    /// Reads datagrams into the session, each with its own arrival time (the RTT samples
    /// come from it). Returns how many.
    fn receive(&mut self) -> anyhow::Result<usize> {
        let mut count = 0;
        while count < RECV_BUDGET {
            let now = Instant::now();
            let Worker {
                socket,
                outbox,
                batch,
                client,
                arrivals,
                session_id,
                ..
            } = self;
            let result = batch.recv(outbox.state(), socket, |_, _, bytes| {
                // The trace ends where liveness stops mattering: once stopping, the server
                // has closed its side and only answers STOP.
                if let (Some(arrivals), Some(id)) = (arrivals.as_mut(), *session_id) {
                    if matches!(
                        client.state(),
                        ClientState::Established | ClientState::Finishing
                    ) {
                        arrivals.record(id, now);
                    }
                }
                client.handle_datagram(now, bytes);
            });
            match result {
                // A call that did not fill the batch emptied the socket: another would only
                // say `WouldBlock` (at full speed one system call of the seven in a pass).
                Ok(n) if !batch.filled() => {
                    count += n;
                    break;
                }
                Ok(n) => count += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // An ICMP port unreachable for a HELLO: nothing listens there, as a TCP
                // connect would have been refused. Once a session exists it is transient
                // (the server may be restarting), like every other socket error here.
                Err(e)
                    if e.kind() == io::ErrorKind::ConnectionRefused
                        && self.session_id.is_none()
                        && self.earlier.sessions == 0 =>
                {
                    self.refused_before_session += 1;
                    if self.refused_before_session >= REFUSALS_BEFORE_FAILING {
                        self.client.finish(Instant::now());
                        break;
                    }
                }
                Err(e) => {
                    self.socket_errors.record(self.config.index, &e);
                    break;
                }
            }
        }
        Ok(count)
    }

    /// Writes the parked send, then new datagrams, at most [`SEND_BUDGET`]. A run of
    /// equal-sized datagrams goes to the kernel in one segmented send (UDP GSO) of up to the
    /// socket's segment limit: the first datagram of a batch sets the segment size and the
    /// next ones are written into segment-sized room, so none can be longer; a shorter one
    /// ends the batch (the last segment of a GSO send may be short). The session pads a
    /// burst's nearly full DATA datagrams to the full size, so small messages batch too.
    /// Returns false if the budget ran out.
    fn transmit(&mut self, now: Instant) -> anyhow::Result<bool> {
        let mut done = true;
        if self.outbox.flush(&self.socket) {
            done = false;
            let full = self.datagram_size;
            let max_segments = self.outbox.max_segments().clamp(1, self.segments);
            let mut budget = SEND_BUDGET;
            while budget > 0 {
                // New messages stored as whole datagrams leave from where they lie: one
                // segmented send, no copy into `tx` (not with --simulate-loss, which drops
                // datagrams one by one).
                if !self.loss.drops_any() {
                    let max = max_segments.min(budget);
                    if let Some(burst) = self.client.poll_prebuilt(now, max) {
                        budget -= burst.count;
                        let segment = (burst.count > 1).then_some(burst.segment);
                        let to = self.config.server;
                        if !self
                            .outbox
                            .send(&self.socket, to, None, burst.bytes, segment)
                        {
                            done = true; // blocked: WRITABLE is registered below
                            break;
                        }
                        continue;
                    }
                }
                // One batch: datagrams written back to back into `tx`.
                let (mut len, mut segments, mut segment, mut ended) = (0, 0, full, false);
                while segments < max_segments && budget > 0 {
                    let room = &mut self.tx[len..len + segment];
                    let Some(n) = self.client.poll_transmit(now, room) else {
                        ended = true;
                        break;
                    };
                    budget -= 1;
                    if self.loss.drop_next() {
                        continue;
                    }
                    len += n;
                    segments += 1;
                    if segments == 1 && n >= MIN_DATAGRAM_SIZE {
                        segment = n; // the batch's segment size
                    } else if n < segment || segments == 1 {
                        break; // a shorter datagram ends the batch (a tiny first goes alone)
                    }
                }
                if segments > 0 {
                    let segment = (segments > 1).then_some(segment);
                    let to = self.config.server;
                    if !self
                        .outbox
                        .send(&self.socket, to, None, &self.tx[..len], segment)
                    {
                        done = true; // blocked: WRITABLE is registered below
                        break;
                    }
                }
                if ended {
                    done = true;
                    break;
                }
            }
        }
        self.outbox
            .sync_interest(self.poll.registry(), &mut self.socket, SOCKET)
            .context("cannot register the UDP socket")?;
        Ok(done)
    }

    /// Messages the thread may still send at `now`: owed resends, plus the quota or, in
    /// `--duration` mode, any number until the time is up.
    fn budget(&self, now: Instant) -> u64 {
        let time_up = self.send_until.is_some_and(|t| now >= t);
        let quota = if time_up {
            0
        } else {
            self.remaining.unwrap_or(u64::MAX)
        };
        self.owed.saturating_add(quota)
    }

    /// After the server became unreachable mid-run (a crash, a restart), opens a new session
    /// and owes it every message the lost one never acknowledged. Returns whether it did;
    /// the handshake retries with backoff for up to `--reconnect-timeout`.
    fn reconnect(&mut self, shutdown: &Shutdown) -> anyhow::Result<bool> {
        let lost_mid_run = self.result.unreachable && self.session_id.is_some();
        if !lost_mid_run || self.config.reconnect_timeout.is_zero() || shutdown.is_triggered() {
            return Ok(false);
        }
        let s = self.client.stats();
        // What the lost session still held: written and not acknowledged, or never written
        // (`sent` counts messages accepted, so both are subtracted from it once sent again).
        // Without QoS nothing written is held, so what the server did not get is loss, as it
        // would have been without the reconnect; what the plausibility window held back
        // unwritten moves over.
        let unacked = (self.client.in_flight() + self.client.unsent()) as u64;
        merge_latency(&mut self.result.rtt, self.client.rtt_histogram());
        self.result.clock_offset = self.client.clock_offset().or(self.result.clock_offset);
        let e = &mut self.earlier;
        e.sessions += 1;
        e.sent += s.sent;
        e.acked += s.acked;
        e.retransmitted += s.retransmitted;
        e.undeliverable += s.undeliverable;
        e.resent += unacked;
        self.owed += unacked;
        log::warn!(
            "thread {}: the server went away; reconnecting (attempt {}, {unacked} messages to send again)",
            self.config.index,
            e.sessions
        );
        let mut config = client_config(self.config, self.datagram_size);
        config.handshake_timeout = self.config.reconnect_timeout;
        let nonce = random_u64().context("cannot draw a nonce from the OS")?;
        let mut client = Client::new(config, Instant::now(), self.config.unix_now_us(), nonce)
            .context("invalid session configuration")?;
        if let Some(psk) = &self.config.psk {
            client = client.with_psk(psk.clone());
        }
        self.client = client;
        self.stall = StallWatch::default();
        self.session_id = None;
        self.result.unreachable = false;
        self.result.server_received = None;
        self.result.drained = None;
        Ok(true)
    }

    fn handle_events(&mut self, now: Instant) {
        while let Some(event) = self.client.poll_event() {
            match event {
                ClientEvent::Established { session_id } => {
                    log::debug!("thread {}: session {session_id} open", self.config.index);
                    self.session_id = Some(session_id);
                    if let Some(arrivals) = &mut self.arrivals {
                        arrivals.open(session_id);
                    }
                    if let Some(d) = self.config.duration {
                        self.send_until.get_or_insert(now + d);
                    }
                }
                ClientEvent::Undeliverable { id } => {
                    log::debug!("thread {}: message {id} undeliverable", self.config.index);
                }
                ClientEvent::PeerUnreachable => self.result.unreachable = true,
                ClientEvent::ProtocolViolation => self.result.protocol_violation = true,
                ClientEvent::Closed { server_received } => {
                    self.result.server_received = server_received;
                    // Without QoS the server's count is the only confirmation of delivery.
                    if !self.config.reliable && server_received.is_some() {
                        self.result.drained = Some(now);
                    }
                }
            }
        }
        // With QoS, delivery is confirmed when the last message is acknowledged (or given
        // up): the session then stops.
        if self.config.reliable
            && self.result.drained.is_none()
            && matches!(
                self.client.state(),
                ClientState::Stopping | ClientState::Closed
            )
        {
            self.result.drained = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use realmq_proto::DEFAULT_MAX_DATAGRAM;

    #[test]
    fn a_pass_offers_whole_segmented_sends_of_about_a_quarter_mebibyte() {
        let max = max_payload(DEFAULT_MAX_DATAGRAM, false);
        let segments = segments_per_send(DEFAULT_MAX_DATAGRAM);
        assert_eq!(segments, 44);
        // 21 64-byte messages a datagram (as the session bench finds), 44 datagrams a send:
        // four sends.
        assert_eq!(send_batch(64, max, segments), 4 * 44 * 21);
        // One 1,024-byte message a datagram: five sends.
        assert_eq!(send_batch(1024, max, segments), 5 * 44);
        // The largest messages, one a datagram: four sends.
        assert_eq!(send_batch(max, max, segments), 4 * 44);
        // Datagrams so large that a send holds one of them: four sends.
        assert_eq!(segments_per_send(60_004), 1);
        assert_eq!(send_batch(60_000, 60_000, 1), 4);
        // Jumbo datagrams (8972 bytes, seven a send): eight 1,024-byte messages in each.
        let jumbo = max_payload(8972, false);
        assert_eq!(segments_per_send(8972), 7);
        assert_eq!(send_batch(1024, jumbo, 7), 4 * 7 * 8);
    }

    #[test]
    fn the_documented_size_limit_is_the_session_layers() {
        // `--size` help and docs/USAGE.md quote this number.
        assert_eq!(max_payload(DEFAULT_MAX_DATAGRAM, false), 1441);
        assert_eq!(max_payload(DEFAULT_MAX_DATAGRAM, true), 1417);
    }

    #[test]
    fn the_window_stores_its_message_count_at_any_size_and_no_more_than_the_default() {
        for size in [0, 1, 16, 64, 255, 256, 1024, 1400] {
            let config = WorkerConfig {
                size,
                ..WorkerConfig::new(0, "127.0.0.1:9".parse().unwrap())
            };
            let sender = client_config(&config, DEFAULT_MAX_DATAGRAM).sender;
            let defaults = SenderConfig::default();
            // The message count binds before the bytes do, framing and a skipped tail
            // included, unless the default storage is the bound.
            let worst = sender.window_messages * (size + MAX_FOLLOWING_PREFIX) + size;
            assert!(
                sender.window_bytes >= worst.min(defaults.window_bytes),
                "{size}-byte messages: {} bytes of storage",
                sender.window_bytes
            );
            assert!(sender.window_bytes <= defaults.window_bytes);
            assert!(sender.validate().is_ok(), "{size}-byte messages");
        }
        let small = WorkerConfig {
            size: 64,
            ..WorkerConfig::new(0, "127.0.0.1:9".parse().unwrap())
        };
        let window = client_config(&small, DEFAULT_MAX_DATAGRAM)
            .sender
            .window_bytes;
        assert!(window < 2 << 20, "{window} bytes for 64-byte messages");
    }

    #[test]
    fn no_qos_turns_the_sender_unreliable() {
        let config = WorkerConfig {
            quota: Some(1),
            size: 1,
            reliable: false,
            connect_timeout: Duration::from_millis(750),
            socket_buffer: 0,
            ..WorkerConfig::new(0, "127.0.0.1:9".parse().unwrap())
        };
        let c = client_config(&config, DEFAULT_MAX_DATAGRAM);
        assert!(!c.sender.reliable);
        assert_eq!(c.handshake_timeout, Duration::from_millis(750));
    }
}
