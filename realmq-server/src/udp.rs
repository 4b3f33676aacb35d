//! The UDP server: one thread, one `mio::Poll`, one non-blocking socket, and the sans-IO
//! [`Server`] that owns every session.
//!
//! Each pass of the loop:
//! 1. waits in `poll` until the earliest deadline (the session layer's timers, the stats
//!    flush, the progress line), or not at all when the previous pass left work;
//! 2. reads datagrams until `WouldBlock`, at most [`RECV_BUDGET`] of them, feeding each to
//!    the server (readiness is only a hint: the socket is read on every pass);
//! 3. runs the timers whose deadline has passed (`now >= deadline`);
//! 4. handles session events, then writes datagrams, at most [`SEND_BUDGET`] per pass. A
//!    datagram that meets `WouldBlock` is parked in the [`Outbox`], the socket is registered
//!    for WRITABLE, and no new datagram is taken from the server until it has left.

use std::io;
use std::time::{Duration, Instant};

use anyhow::Context;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Registry, Token};
use realmq_common::endpoint::{CloseReason, Server, ServerEvent};
use realmq_common::io::{local_pause, unix_now_us, ArrivalRecorder, DropSim, Outbox, RecvBatch};
use realmq_common::liveness::PauseWatch;
use realmq_proto::MAX_DATAGRAM_SIZE;

use crate::busy_poll::BusyPoll;
use crate::recorder::{Counters, Recorder};
use crate::sessions::SessionEnd;
use crate::summary::UdpCounters;
use crate::StopWhen;

const SOCKET: Token = Token(1);
/// Datagrams read per pass before timers and ACKs get their turn: 64 hold 1,344 messages of
/// 64 bytes, a sixth of a client's send window. The ACKs a pass owes go out only after it, so
/// a budget larger than the window (512 datagrams held 10,752 such messages, against a window
/// of 8,192) let a pass swallow the whole window before acknowledging any of it, and the
/// client waited a pass for every window: 64 gave one client thread 26 % more messages a
/// second and left two threads' rate as it was (`docs/BENCHMARKS.md`).
const RECV_BUDGET: usize = 64;
/// Datagrams written per pass.
const SEND_BUDGET: usize = 512;
/// After the last expected session ended, keep answering (a repeated STOP whose BYE was
/// lost) until the socket has been quiet this long...
const LINGER_QUIET: Duration = Duration::from_millis(500);
/// ... but no longer than this.
const LINGER_MAX: Duration = Duration::from_secs(3);

/// Copies of each session's final ACK sent when the server is interrupted, [`FINAL_ACK_GAP`]
/// apart: a lost copy costs nothing (each says all), and only a client that gets none
/// resends something this server delivered (with 30 % of the server's datagrams dropped, one
/// session in 37 on average).
const FINAL_ACK_COPIES: usize = 3;
/// Between two copies of the final ACKs: apart, a burst of loss takes fewer of them.
const FINAL_ACK_GAP: Duration = Duration::from_millis(5);
/// How long the final ACKs may wait for room in the socket's send buffer, in all.
const FINAL_ACKS_MAX: Duration = Duration::from_millis(200);

/// The loop's state besides the session layer.
struct Io {
    socket: UdpSocket,
    registry: Registry,
    outbox: Outbox,
    loss: DropSim,
    stats: UdpCounters,
    /// Receive buffers for `recvmmsg` and GRO batches.
    batch: RecvBatch,
    tx: Vec<u8>,
    /// `--record-arrivals`.
    arrivals: Option<ArrivalRecorder>,
}

/// What the UDP loop takes besides its socket and session layer.
pub(crate) struct UdpExtras {
    /// `--simulate-loss` on what it sends.
    pub(crate) loss: DropSim,
    /// `--record-arrivals`.
    pub(crate) arrivals: Option<ArrivalRecorder>,
    /// `--busy-poll`.
    pub(crate) busy_poll: BusyPoll,
}

/// Serves RealMQ sessions on `socket` until `stop` says so. Returns the final counters.
pub(crate) fn serve_udp(
    mut socket: UdpSocket,
    mut poll: Poll,
    mut server: Server,
    stop: &StopWhen,
    recorder: &mut Recorder,
    extras: UdpExtras,
) -> anyhow::Result<(Counters, UdpCounters)> {
    let UdpExtras {
        loss,
        arrivals,
        mut busy_poll,
    } = extras;
    poll.registry()
        .register(&mut socket, SOCKET, Interest::READABLE)
        .context("cannot register the UDP socket")?;
    let outbox = Outbox::new(&socket).context("cannot set up the UDP socket")?;
    let mut io = Io {
        socket,
        registry: poll
            .registry()
            .try_clone()
            .context("cannot clone the poll registry")?,
        outbox,
        loss,
        stats: UdpCounters::default(),
        batch: RecvBatch::default(),
        tx: vec![0; MAX_DATAGRAM_SIZE],
        arrivals,
    };
    let mut counters = Counters::default();
    let mut events = Events::with_capacity(64);
    let mut more_work = false;
    let mut pauses = PauseWatch::default();
    // Set once the session limit is reached: (when, last datagram seen).
    let mut lingering: Option<(Instant, Instant)> = None;

    loop {
        let now = Instant::now();
        if stop.interrupted() {
            // What was read was delivered: say so before going (a graceful restart then
            // delivers nothing twice). Nothing more is read.
            io.send_final_acks(&mut server, &mut poll);
            break;
        }
        if let Some((since, last_rx)) = lingering {
            if now >= since + LINGER_MAX || now >= last_rx + LINGER_QUIET {
                break;
            }
        } else if stop.sessions_done(&counters) {
            lingering = Some((now, now));
            continue;
        }
        let linger_end =
            lingering.map(|(since, last_rx)| (since + LINGER_MAX).min(last_rx + LINGER_QUIET));
        let deadline = [server.poll_timeout(), linger_end]
            .into_iter()
            .flatten()
            .fold(recorder.poll_timeout(), Instant::min);
        let timeout = if more_work {
            Duration::ZERO
        } else {
            busy_poll.timeout(now, deadline.saturating_duration_since(now))
        };
        pauses.expect(Some(timeout));
        let polled = poll.poll(&mut events, Some(timeout));
        // Time this process did not run (a stop ends the wait with EINTR) is not the
        // clients' silence (docs/THRESHOLD.md, "Local pauses").
        if let Some((since, woke)) = local_pause(&mut pauses) {
            server.handle_local_pause(since, woke);
            if let Some(arrivals) = &mut io.arrivals {
                arrivals.record_pause(since, woke);
            }
        }
        match polled {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => r.context("poll failed")?,
        }
        // Readiness is a hint: the socket is read and written below whatever the events
        // say (spurious wake-ups are harmless), and a WAKER event only needs the loop to
        // come round to the shutdown check above.

        let (received, recv_more) = io.receive(&mut server, recorder)?;
        let now = Instant::now();
        if received > 0 {
            busy_poll.on_activity(now);
            if let Some((_, last_rx)) = &mut lingering {
                *last_rx = now;
            }
        }
        if server.poll_timeout().is_some_and(|t| now >= t) {
            server.handle_timeout(now);
        }
        while let Some(event) = server.poll_event() {
            if let Some(arrivals) = &mut io.arrivals {
                arrivals.on_server_event(&event);
            }
            on_event(event, &mut counters, recorder);
        }
        let send_more = io.transmit(&mut server, now)?;
        more_work = recv_more || send_more;
        update(&mut counters, &server);
        recorder.handle_timeout(now, &counters);
    }
    io.drain_outbox(&mut poll);
    if let Some(arrivals) = io.arrivals.take() {
        match arrivals.finish() {
            Ok(sessions) => log::info!("recorded the arrivals of {sessions} session(s)"),
            Err(e) => log::error!("{e}"),
        }
    }
    update(&mut counters, &server);
    let stats = server.stats();
    io.stats.unknown_session = stats.unknown_session;
    io.stats.refused = stats.refused;
    io.stats.sessions_dead = stats.sessions_dead;
    io.stats.implausible = stats.implausible;
    io.stats.unauthenticated = stats.unauthenticated;
    io.stats.retries_sent = stats.retries_sent;
    io.stats.bad_cookies = stats.bad_cookies;
    io.stats.hellos_dropped = stats.hellos_dropped;
    io.stats.hellos_replayed = stats.hellos_replayed;
    io.stats.simulated_drops = io.loss.dropped();
    io.stats.send = io.outbox.stats();
    Ok((counters, io.stats))
}

fn update(counters: &mut Counters, server: &Server) {
    let s = server.stats();
    counters.received = s.received;
    counters.duplicates = s.duplicates;
    counters.malformed = s.malformed;
    counters.out_of_order = s.out_of_order;
    counters.sessions_total = s.sessions_total;
    counters.sessions_open = s.sessions_open;
}

fn on_event(event: ServerEvent, counters: &mut Counters, recorder: &mut Recorder) {
    match event {
        ServerEvent::SessionOpened {
            session_id,
            peer,
            clock_offset_us,
        } => match clock_offset_us {
            Some(offset) if offset != 0 => log::info!(
                "session {session_id} opened by {peer}; its clock is {:+.3} ms off ours: \
                 send times corrected",
                offset as f64 / 1e3
            ),
            _ => log::info!("session {session_id} opened by {peer}"),
        },
        ServerEvent::SessionClosed {
            session_id,
            peer,
            received,
            duplicates,
            client_sent,
            reason,
            clock_offset_us,
        } => {
            counters.sessions_ended += 1;
            let end = SessionEnd {
                end: match reason {
                    CloseReason::Bye => "bye",
                    CloseReason::PeerDead => "evicted",
                },
                received,
                duplicates: Some(duplicates),
                client_sent,
                clock_offset_us,
            };
            recorder.on_session_closed(session_id, peer, end);
        }
    }
}

impl Io {
    /// Reads up to [`RECV_BUDGET`] datagrams. Returns how many, and whether the budget ran
    /// out before `WouldBlock` (more may be waiting).
    fn receive(
        &mut self,
        server: &mut Server,
        recorder: &mut Recorder,
    ) -> anyhow::Result<(usize, bool)> {
        let mut count = 0;
        while count < RECV_BUDGET {
            // One reading of the clocks per system call: `recvmmsg` returns what already
            // waited, and GRO batches arrived together.
            let now = Instant::now();
            let now_unix = unix_now_us();
            let Io {
                socket,
                outbox,
                batch,
                arrivals,
                stats,
                ..
            } = self;
            let result = batch.recv(outbox.state(), socket, |from, local_ip, bytes| {
                server.handle_datagram_runs(now, from, local_ip, bytes, |d| {
                    let first = d.messages.first_id();
                    let ids = first..first + d.messages.len() as u64;
                    recorder.check_run(d.session_id, &d.messages);
                    recorder.on_messages(now, now_unix, d.session_id, ids, d.sent_unix_us);
                });
                if let Some(arrivals) = arrivals {
                    arrivals.record_datagram(bytes, now);
                }
            });
            recorder.flush();
            match result {
                Ok(n) => {
                    count += n;
                    stats.datagrams_received += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok((count, false)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if transient(&e) => {
                    stats.receive_errors += 1;
                    if stats.receive_errors == 1 {
                        log::warn!(
                            "the UDP socket reported `{e}` (counted in receive_errors, not fatal)"
                        );
                    }
                    continue;
                }
                Err(e) => return Err(e).context("cannot receive from the UDP socket"),
            }
        }
        Ok((count, true))
    }

    /// Sends the parked datagram, then new ones from the server, up to [`SEND_BUDGET`].
    /// Returns whether the budget ran out with the server possibly holding more.
    fn transmit(&mut self, server: &mut Server, now: Instant) -> anyhow::Result<bool> {
        let mut budget_left = true;
        if self.outbox.flush(&self.socket) {
            budget_left = false;
            for _ in 0..SEND_BUDGET {
                let Some(t) = server.poll_transmit(now, &mut self.tx) else {
                    budget_left = true;
                    break;
                };
                if self.loss.drop_next() {
                    continue;
                }
                if !self.outbox.send(
                    &self.socket,
                    t.destination,
                    t.src_ip,
                    &self.tx[..t.len],
                    None,
                ) {
                    budget_left = true; // blocked: wait for WRITABLE
                    break;
                }
            }
        }
        self.outbox
            .sync_interest(&self.registry, &mut self.socket, SOCKET)
            .context("cannot register the UDP socket")?;
        Ok(!budget_left)
    }

    /// At an interrupt: an ACK of everything each open session received, sent
    /// [`FINAL_ACK_COPIES`] times, waiting at most [`FINAL_ACKS_MAX`] in all for room in the
    /// socket's buffer. The clients then resend to the next server only what this one did
    /// not deliver.
    fn send_final_acks(&mut self, server: &mut Server, poll: &mut Poll) {
        let deadline = Instant::now() + FINAL_ACKS_MAX;
        let mut sent = 0u64;
        for copy in 0..FINAL_ACK_COPIES {
            if copy > 0 {
                // The process is about to exit: nothing else waits on this thread.
                std::thread::sleep(FINAL_ACK_GAP);
            }
            let now = Instant::now();
            server.acknowledge_all(now);
            while let Some(t) = server.poll_transmit(now, &mut self.tx) {
                if !self.wait_flushed(poll, deadline) {
                    log::warn!("final ACKs not all sent: the socket stayed full");
                    return;
                }
                if self.loss.drop_next() {
                    continue;
                }
                self.outbox.send(
                    &self.socket,
                    t.destination,
                    t.src_ip,
                    &self.tx[..t.len],
                    None,
                );
                sent += 1;
            }
        }
        log::info!("interrupted: {sent} final datagram(s) sent to the open sessions");
    }

    /// At exit: give a parked datagram (a last BYE, a final ACK) a bounded chance to leave.
    fn drain_outbox(&mut self, poll: &mut Poll) {
        let deadline = Instant::now() + Duration::from_millis(200);
        if !self.wait_flushed(poll, deadline) {
            log::warn!("a datagram was not sent at exit");
        }
    }

    /// Waits until no datagram is parked (sending it), or until `deadline`: whether it left.
    fn wait_flushed(&mut self, poll: &mut Poll, deadline: Instant) -> bool {
        let mut events = Events::with_capacity(8);
        while !self.outbox.flush(&self.socket) {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            if self
                .outbox
                .sync_interest(&self.registry, &mut self.socket, SOCKET)
                .is_err()
            {
                return false;
            }
            let _ = poll.poll(&mut events, Some(deadline - now));
        }
        true
    }
}

/// Errors a UDP socket reports for one datagram or one peer, not for itself.
/// These come from ICMP errors for earlier datagrams (port or host unreachable, a firewall's
/// administratively prohibited) and concern one peer: counted, never fatal.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::PermissionDenied
    )
}
