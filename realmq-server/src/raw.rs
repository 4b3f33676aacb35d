//! The raw mode's server (`--protocol raw`): the ceiling to compare RealMQ against. It reads
//! with the same `recvmmsg`/GRO batches as the RealMQ loop, counts and time-stamps every
//! message, and answers a client's END with its count — no sessions, IDs, ACKs or resends.
//! A "session" here is a client address that sent END (bounded: at most
//! [`MAX_CLIENTS`] addresses tracked).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::Context;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use realmq_common::io::raw::{payload_run, payloads, RawDatagram};
use realmq_common::io::{unix_now_us, Outbox, RecvBatch};

use crate::busy_poll::BusyPoll;
use crate::recorder::{Counters, Recorder};
use crate::summary::UdpCounters;
use crate::StopWhen;

const SOCKET: Token = Token(1);
/// Client addresses tracked at once.
const MAX_CLIENTS: usize = 4096;
/// Datagrams read per pass before the timers get their turn.
const RECV_BUDGET: usize = 4096;

/// Serves raw clients on `socket` until `stop` says so.
pub(crate) fn serve_raw(
    mut socket: UdpSocket,
    mut poll: Poll,
    stop: &StopWhen,
    recorder: &mut Recorder,
    mut busy_poll: BusyPoll,
) -> anyhow::Result<(Counters, UdpCounters)> {
    poll.registry()
        .register(&mut socket, SOCKET, Interest::READABLE)
        .context("cannot register the UDP socket")?;
    let mut outbox = Outbox::new(&socket).context("cannot set up the UDP socket")?;
    let mut batch = RecvBatch::default();
    let mut events = Events::with_capacity(64);
    let mut counters = Counters::default();
    let mut udp = UdpCounters::default();
    let mut per_client: HashMap<SocketAddr, u64> = HashMap::new();
    // Clients that sent END, with the count they were told (a repeated END, whose answer
    // was lost, gets the same); bounded like `per_client`.
    let mut finished: HashMap<SocketAddr, u64> = HashMap::new();
    let mut answers: Vec<(SocketAddr, Option<IpAddr>, u64)> = Vec::new();
    let mut more = false;
    while !stop.interrupted() && !stop.sessions_done(&counters) {
        let now = Instant::now();
        let timeout = if more {
            Duration::ZERO
        } else {
            busy_poll.timeout(now, recorder.poll_timeout().saturating_duration_since(now))
        };
        match poll.poll(&mut events, Some(timeout)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => r.context("poll failed")?,
        }
        let mut read = 0;
        while read < RECV_BUDGET {
            let now = Instant::now();
            let now_unix = unix_now_us();
            let result = batch.recv(outbox.state(), &socket, |from, local_ip, bytes| {
                udp.datagrams_received += 1;
                match RawDatagram::parse(bytes) {
                    Some(RawDatagram::Data {
                        count,
                        sent_unix_us,
                    }) => {
                        let seen = per_client.len();
                        let n = match per_client.get_mut(&from) {
                            Some(n) => n,
                            None if seen < MAX_CLIENTS => per_client.entry(from).or_insert(0),
                            None => return,
                        };
                        // Payloads of one length (a load client's) are checked and
                        // counted as one run, as the UDP loop does a sender's run.
                        if let Some(run) = payload_run(bytes, *n) {
                            let ids = *n..*n + run.len() as u64;
                            recorder.check_run_integrity(&run);
                            recorder.on_messages(now, now_unix, 0, ids, sent_unix_us);
                            *n += run.len() as u64;
                        } else {
                            for payload in payloads(bytes) {
                                recorder.check_integrity(payload);
                                recorder.on_message(now, now_unix, 0, *n, sent_unix_us);
                                *n += 1;
                            }
                        }
                        counters.received += u64::from(count);
                    }
                    Some(RawDatagram::End { .. }) => {
                        if let Some(received) = per_client.remove(&from) {
                            if finished.len() >= MAX_CLIENTS {
                                finished.clear();
                            }
                            finished.insert(from, received);
                            counters.sessions_ended += 1;
                            counters.sessions_total += 1;
                            log::info!("raw client {from} done: {received} messages received");
                        }
                        answers.push((from, local_ip, finished.get(&from).copied().unwrap_or(0)));
                    }
                    _ => counters.malformed += 1,
                }
            });
            recorder.flush();
            match result {
                Ok(n) => read += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    udp.receive_errors += 1;
                    log::debug!("raw receive: {e}");
                    break;
                }
            }
        }
        more = read >= RECV_BUDGET;
        if read > 0 {
            busy_poll.on_activity(Instant::now());
        }
        for (to, local_ip, received) in answers.drain(..) {
            let mut buf = [0u8; 11];
            let len = RawDatagram::Count { received }.write_control(&mut buf);
            // Best effort: a lost answer is asked for again by the client's next END.
            let _ = outbox.flush(&socket) && outbox.send(&socket, to, local_ip, &buf[..len], None);
        }
        recorder.handle_timeout(Instant::now(), &counters);
    }
    udp.send = outbox.stats();
    Ok((counters, udp))
}
