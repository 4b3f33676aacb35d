//! The TCP baseline: the same measurement over plain TCP, to compare RealMQ against.
//!
//! # Framing
//!
//! One TCP connection per client thread is one session. The client sends messages as
//! length-prefixed frames, all integers little-endian:
//!
//! ```text
//! len: u32           bytes that follow in this frame: 8 + payload length (8 ..= 1 MiB + 8);
//!                    the top bit (PING_BIT) set asks for an immediate 8-byte answer: the
//!                    count of frames read so far (the `--ping` latency mode)
//! sent_unix_us: u64  the client's wall clock when it wrote the frame, µs since the Unix epoch
//! payload: [u8]      len - 8 bytes
//! ```
//!
//! When done, the client half-closes its side (shutdown of writes). The server answers with
//! `received: u64`, the number of frames it read on the connection, and closes: that is the
//! client's `acked`. A frame with a length out of range is malformed; the connection
//! cannot be resynchronised and is closed without an answer.
//!
//! Messages have no IDs on the wire: a message's ID is its position on its connection.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::Instant;

use anyhow::Context;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use realmq_common::io::unix_now_us;

use crate::busy_poll::BusyPoll;
use crate::recorder::{Counters, Recorder};
use crate::sessions::SessionEnd;
use crate::{StopWhen, WAKER};

/// Bytes of the length prefix.
pub(crate) const LEN_BYTES: usize = 4;
/// Bytes of the timestamp that starts every frame body.
pub(crate) const TIMESTAMP_BYTES: usize = 8;
/// Largest payload a frame may carry.
pub(crate) const MAX_PAYLOAD: usize = 1 << 20;

const LISTENER: Token = Token(1);
/// Connection `i` is registered as `Token(FIRST_CONN + i)`.
const FIRST_CONN: usize = 2;
/// Bytes read from one connection per loop pass, so that one busy client cannot starve
/// the others or the timers.
const READ_BUDGET: usize = 1 << 20;
/// Connections accepted per loop pass.
const ACCEPT_BUDGET: usize = 64;
const INITIAL_BUFFER: usize = 64 * 1024;

/// The top bit of a frame's length: answer this frame at once with the running count.
pub(crate) const PING_BIT: u32 = 1 << 31;

/// Why a frame could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadLength(pub u32);

/// Reads complete frames from the front of `bytes`, calling `on_frame(sent_unix_us, ping, payload)`
/// for each. Returns how many bytes were consumed; an incomplete frame at the end is left.
pub(crate) fn parse_frames(
    bytes: &[u8],
    mut on_frame: impl FnMut(u64, bool, &[u8]),
) -> Result<usize, BadLength> {
    let mut pos = 0;
    while let Some(prefix) = bytes.get(pos..pos + LEN_BYTES) {
        let raw = u32::from_le_bytes(prefix.try_into().expect("4 bytes"));
        let (len, ping) = (raw & !PING_BIT, raw & PING_BIT != 0);
        if (len as usize) < TIMESTAMP_BYTES || len as usize > TIMESTAMP_BYTES + MAX_PAYLOAD {
            return Err(BadLength(len));
        }
        let end = pos + LEN_BYTES + len as usize;
        let Some(body) = bytes.get(pos + LEN_BYTES..end) else {
            break;
        };
        let (stamp, payload) = body.split_at(TIMESTAMP_BYTES);
        on_frame(
            u64::from_le_bytes(stamp.try_into().expect("8 bytes")),
            ping,
            payload,
        );
        pos = end;
    }
    Ok(pos)
}

/// One accepted connection.
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    session_id: u32,
    peer: std::net::SocketAddr,
    buf: Vec<u8>,
    filled: usize,
    received: u64,
    /// The answer to the client's half-close, and how much of it is written.
    reply: Option<([u8; 8], usize)>,
    /// Answers to ping frames not yet written (a client in `--ping` mode waits for each,
    /// so this holds at most one unless the client misbehaves; bounded below).
    echo: Vec<u8>,
}

/// Most bytes of ping answers held for a connection; a client that sends pings without
/// reading the answers is closed.
const MAX_ECHO: usize = 64 * 1024;

/// What servicing a connection left it in.
#[derive(Debug, PartialEq, Eq)]
enum Status {
    Open,
    /// More bytes may be waiting: service again in the next pass.
    Busy,
    Done,
}

/// Serves TCP baseline clients on `listener` until `stop` says so. Returns the final
/// counters.
pub(crate) fn serve_tcp(
    mut listener: TcpListener,
    mut poll: Poll,
    stop: &StopWhen,
    recorder: &mut Recorder,
    mut busy_poll: BusyPoll,
) -> anyhow::Result<Counters> {
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .context("cannot register the TCP listener")?;
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut ready: Vec<usize> = Vec::new();
    let mut counters = Counters::default();
    let mut events = Events::with_capacity(256);
    let mut accept_pending = true;
    let mut next_session: u32 = 1;

    while !stop.interrupted() && !stop.sessions_done(&counters) {
        let now = Instant::now();
        let timeout = if accept_pending || !ready.is_empty() {
            std::time::Duration::ZERO
        } else {
            busy_poll.timeout(now, recorder.poll_timeout().saturating_duration_since(now))
        };
        match poll.poll(&mut events, Some(timeout)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => r.context("poll failed")?,
        }
        // A wake-up for Ctrl-C is not an arrival.
        if events.iter().any(|e| e.token() != WAKER) {
            busy_poll.on_activity(Instant::now());
        }
        for event in events.iter() {
            match event.token() {
                WAKER => {}
                LISTENER => accept_pending = true,
                Token(t) => ready.push(t - FIRST_CONN),
            }
        }
        if accept_pending {
            accept_pending = accept(
                &listener,
                &poll,
                &mut conns,
                &mut next_session,
                &mut counters,
            )?;
        }
        ready.sort_unstable();
        ready.dedup();
        let mut again = Vec::new();
        for idx in ready.drain(..) {
            let Some(conn) = conns.get_mut(idx).and_then(Option::as_mut) else {
                continue; // an event for a connection closed earlier in this pass
            };
            match service(conn, idx, &poll, recorder, &mut counters) {
                Status::Open => {}
                Status::Busy => again.push(idx),
                Status::Done => {
                    let mut conn = conns[idx].take().expect("serviced connection exists");
                    let _ = poll.registry().deregister(&mut conn.stream);
                    counters.sessions_open -= 1;
                    counters.sessions_ended += 1;
                    let end = SessionEnd {
                        end: "closed",
                        received: conn.received,
                        duplicates: None,
                        client_sent: None,
                        clock_offset_us: None,
                    };
                    recorder.on_session_closed(conn.session_id, conn.peer, end);
                }
            }
        }
        ready = again;
        recorder.handle_timeout(Instant::now(), &counters);
    }
    Ok(counters)
}

/// Accepts waiting connections. Returns whether more may be waiting.
fn accept(
    listener: &TcpListener,
    poll: &Poll,
    conns: &mut Vec<Option<Conn>>,
    next_session: &mut u32,
    counters: &mut Counters,
) -> anyhow::Result<bool> {
    for _ in 0..ACCEPT_BUDGET {
        let (mut stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // Per-connection failures (the peer reset before accept, fd limits) are
                // not the listener's end: log and keep serving.
                log::warn!("accept failed: {e}");
                return Ok(false);
            }
        };
        let idx = conns.iter().position(Option::is_none).unwrap_or_else(|| {
            conns.push(None);
            conns.len() - 1
        });
        poll.registry()
            .register(&mut stream, Token(FIRST_CONN + idx), Interest::READABLE)
            .context("cannot register a TCP connection")?;
        let session_id = *next_session;
        *next_session = next_session.wrapping_add(1);
        log::info!("session {session_id} opened by {peer}");
        counters.sessions_total += 1;
        counters.sessions_open += 1;
        conns[idx] = Some(Conn {
            stream,
            session_id,
            peer,
            buf: vec![0; INITIAL_BUFFER],
            filled: 0,
            received: 0,
            reply: None,
            echo: Vec::new(),
        });
    }
    Ok(true)
}

/// Reads what the connection has (up to the budget), or writes the reply.
fn service(
    conn: &mut Conn,
    idx: usize,
    poll: &Poll,
    recorder: &mut Recorder,
    counters: &mut Counters,
) -> Status {
    if conn.reply.is_some() {
        return write_reply(conn);
    }
    if !conn.echo.is_empty() {
        if let status @ Status::Done = write_echo(conn, idx, poll) {
            return status;
        }
    }
    let mut budget = READ_BUDGET;
    while budget > 0 {
        if conn.filled == conn.buf.len() {
            // Only a frame longer than the buffer gets here: grow to hold it.
            let len = conn.buf.len();
            conn.buf
                .resize((len * 2).min(LEN_BYTES + TIMESTAMP_BYTES + MAX_PAYLOAD), 0);
        }
        let n = match conn.stream.read(&mut conn.buf[conn.filled..]) {
            Ok(0) => return start_reply(conn, idx, poll),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Status::Open,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::warn!("session {}: {e}", conn.session_id);
                return Status::Done;
            }
        };
        budget = budget.saturating_sub(n);
        conn.filled += n;
        let now = Instant::now();
        let now_unix = unix_now_us();
        let (session, received, echo) = (conn.session_id, &mut conn.received, &mut conn.echo);
        let parsed = parse_frames(&conn.buf[..conn.filled], |sent, ping, payload| {
            // The client stamps its n-th message with session 0 and ID n (TCP keeps the
            // order and loses nothing).
            recorder.check_payload(0, *received, payload);
            recorder.on_message(now, now_unix, session, *received, sent);
            *received += 1;
            counters.received += 1;
            if ping {
                echo.extend_from_slice(&received.to_le_bytes());
            }
        });
        recorder.flush();
        match parsed {
            Ok(used) => {
                conn.buf.copy_within(used..conn.filled, 0);
                conn.filled -= used;
            }
            Err(BadLength(len)) => {
                log::warn!("session {session}: malformed frame length {len}, closing");
                counters.malformed += 1;
                return Status::Done;
            }
        }
        if !conn.echo.is_empty() {
            return write_echo(conn, idx, poll);
        }
    }
    Status::Busy
}

/// Writes the ping answers; while some wait for the socket, the connection listens for
/// WRITABLE too.
fn write_echo(conn: &mut Conn, idx: usize, poll: &Poll) -> Status {
    let mut written = 0;
    while written < conn.echo.len() {
        match conn.stream.write(&conn.echo[written..]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => {
                log::warn!("session {}: cannot answer a ping: {e}", conn.session_id);
                return Status::Done;
            }
        }
    }
    conn.echo.drain(..written);
    if conn.echo.len() > MAX_ECHO {
        log::warn!("session {}: pings not read, closing", conn.session_id);
        return Status::Done;
    }
    let interest = if conn.echo.is_empty() {
        Interest::READABLE
    } else {
        Interest::READABLE | Interest::WRITABLE
    };
    let token = Token(FIRST_CONN + idx);
    if let Err(e) = poll
        .registry()
        .reregister(&mut conn.stream, token, interest)
    {
        log::warn!("session {}: {e}", conn.session_id);
        return Status::Done;
    }
    // More frames may be waiting behind the ping.
    Status::Busy
}

/// The client is done sending: answer with the count of frames read.
fn start_reply(conn: &mut Conn, idx: usize, poll: &Poll) -> Status {
    if conn.filled > 0 {
        log::warn!(
            "session {}: {} bytes of an incomplete frame at end of stream",
            conn.session_id,
            conn.filled
        );
    }
    conn.reply = Some((conn.received.to_le_bytes(), 0));
    if let Err(e) = poll.registry().reregister(
        &mut conn.stream,
        Token(FIRST_CONN + idx),
        Interest::WRITABLE,
    ) {
        log::warn!("session {}: {e}", conn.session_id);
        return Status::Done;
    }
    write_reply(conn)
}

fn write_reply(conn: &mut Conn) -> Status {
    let Some((bytes, written)) = &mut conn.reply else {
        return Status::Open;
    };
    while *written < bytes.len() {
        match conn.stream.write(&bytes[*written..]) {
            Ok(n) => *written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Status::Open,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                log::warn!("session {}: cannot send the count: {e}", conn.session_id);
                return Status::Done;
            }
        }
    }
    let _ = conn.stream.shutdown(Shutdown::Write);
    Status::Done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(sent: u64, payload: &[u8]) -> Vec<u8> {
        let mut f = ((TIMESTAMP_BYTES + payload.len()) as u32)
            .to_le_bytes()
            .to_vec();
        f.extend_from_slice(&sent.to_le_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn parses_whole_frames_and_leaves_the_rest() {
        let mut bytes = frame(10, b"abc");
        bytes.extend(frame(20, b""));
        let partial = frame(30, b"xyz");
        bytes.extend_from_slice(&partial[..6]);
        let mut seen = Vec::new();
        let used = parse_frames(&bytes, |t, _, _| seen.push(t)).unwrap();
        assert_eq!(seen, [10, 20]);
        assert_eq!(used, 15 + 12);
    }

    #[test]
    fn literal_bytes() {
        let bytes = [9, 0, 0, 0, 0x2a, 0, 0, 0, 0, 0, 0, 0, b'!'];
        let mut seen = Vec::new();
        assert_eq!(parse_frames(&bytes, |t, _, _| seen.push(t)), Ok(13));
        assert_eq!(seen, [42]);
    }

    #[test]
    fn rejects_lengths_out_of_range() {
        assert_eq!(parse_frames(&[7, 0, 0, 0], |_, _, _| {}), Err(BadLength(7)));
        let too_long = ((TIMESTAMP_BYTES + MAX_PAYLOAD + 1) as u32).to_le_bytes();
        assert!(parse_frames(&too_long, |_, _, _| {}).is_err());
        assert_eq!(parse_frames(&[9, 0], |_, _, _| {}), Ok(0));
    }
}
