//! One raw sender thread (`--protocol raw`): the same messages with the same batching (UDP
//! GSO, up to 44 datagrams per `sendmsg`) and pacing as RealMQ, and no protocol at all — no
//! handshake, IDs, acknowledgements or resends. At the end it sends END until the server
//! answers with its count. The ceiling RealMQ is compared against in
//! `scripts/loadtest.sh --compare`.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use mio::{Events, Interest, Poll, Token, Waker};
use realmq_common::io::raw::{messages_per_datagram, write_data, RawDatagram};
use realmq_common::io::{socket, Outbox, Shutdown};
use realmq_common::payload_stamp::Stamper;

use crate::pacing::TokenBucket;
use crate::summary::{Progress, ThreadResult};
use crate::{random_payload, segments_per_send, WorkerConfig};

const WAKER: Token = Token(0);
const SOCKET: Token = Token(1);
/// How often END is repeated while no COUNT came back.
const END_EVERY: Duration = Duration::from_millis(100);

/// Runs one raw sender thread to its end.
pub(crate) fn send_raw(
    config: &WorkerConfig,
    progress: &Progress,
    shutdown: &Shutdown,
) -> anyhow::Result<ThreadResult> {
    let mut poll = Poll::new().context("cannot create an event loop")?;
    shutdown.add_waker(Arc::new(
        Waker::new(poll.registry(), WAKER).context("cannot create a waker")?,
    ));
    let mut socket = socket::connect_udp(config.server, config.socket_buffer)
        .with_context(|| format!("cannot open a UDP socket to {}", config.server))?;
    poll.registry()
        .register(&mut socket, SOCKET, Interest::READABLE | Interest::WRITABLE)
        .context("cannot register the UDP socket")?;
    let mut outbox = Outbox::new(&socket).context("cannot set up the UDP socket")?;
    // As RealMQ's sessions do, no larger than the path to the server carries.
    let datagram_size = socket::datagram_size(&socket, config.datagram_size);
    let per_datagram = messages_per_datagram(config.size, datagram_size);
    let full = realmq_common::io::raw::DATA_HEADER
        + per_datagram * (config.size + realmq_common::io::raw::MESSAGE_OVERHEAD);
    let segments = outbox.max_segments().clamp(1, segments_per_send(full));
    let mut tx = vec![0u8; segments * full];
    let payload = random_payload(config.size, config.index);
    let stamper = Stamper::new(&payload);
    let mut result = ThreadResult::default();
    let start = Instant::now();
    let mut pacer = TokenBucket::new(config.rate, start);
    let send_until = config.duration.map(|d| start + d);
    let mut remaining = config.quota;
    let mut events = Events::with_capacity(8);
    loop {
        let now = Instant::now();
        let time_up = send_until.is_some_and(|t| now >= t);
        if remaining == Some(0) || time_up || shutdown.is_triggered() {
            break;
        }
        if !outbox.flush(&socket) {
            wait(&mut poll, &mut events, Some(Duration::from_millis(10)))?;
            continue;
        }
        let want = remaining
            .unwrap_or(u64::MAX)
            .min((segments * per_datagram) as u64);
        let granted = pacer.take(now, want);
        if granted == 0 {
            let next = pacer
                .next_token_at(now)
                .map(|t| t.saturating_duration_since(now));
            wait(&mut poll, &mut events, next)?;
            continue;
        }
        let stamp = config.unix_now_us();
        let (whole, rest) = (
            granted as usize / per_datagram,
            granted as usize % per_datagram,
        );
        let mut len = 0;
        let mut next_id = result.sent;
        for _ in 0..whole {
            len += write_data(
                &mut tx[len..],
                per_datagram,
                stamp,
                &stamper,
                &payload,
                next_id,
            );
            next_id += per_datagram as u64;
        }
        if whole > 0 {
            let segment = (whole > 1).then_some(full);
            outbox.send(&socket, config.server, None, &tx[..len], segment);
        }
        if rest > 0 && outbox.flush(&socket) {
            let len = write_data(&mut tx, rest, stamp, &stamper, &payload, next_id);
            outbox.send(&socket, config.server, None, &tx[..len], None);
        }
        result.on_sent(now, result.sent, config.warmup);
        result.sent += granted;
        if let Some(r) = &mut remaining {
            *r -= granted;
        }
        progress.publish(result.sent, 0);
    }
    while !outbox.flush(&socket) {
        wait(&mut poll, &mut events, Some(Duration::from_millis(10)))?;
    }
    let received = finish(config, &socket, &mut poll, &mut events, result.sent)?;
    result.drained = Some(Instant::now());
    result.server_received = Some(received);
    result.datagrams_sent = outbox.stats().datagrams_sent;
    Ok(result)
}

/// Sends END until the server's COUNT comes back; returns the count.
fn finish(
    config: &WorkerConfig,
    socket: &mio::net::UdpSocket,
    poll: &mut Poll,
    events: &mut Events,
    sent: u64,
) -> anyhow::Result<u64> {
    let give_up = Instant::now() + config.connect_timeout;
    let mut end = [0u8; 11];
    let len = RawDatagram::End { sent }.write_control(&mut end);
    let mut rx = [0u8; 64];
    while Instant::now() < give_up {
        // Refused (nothing listens) or lost: the next END asks again.
        let _ = socket.send(&end[..len]);
        let deadline = Instant::now() + END_EVERY;
        while Instant::now() < deadline {
            match socket.recv(&mut rx) {
                Ok(n) => {
                    if let Some(RawDatagram::Count { received }) = RawDatagram::parse(&rx[..n]) {
                        return Ok(received);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    wait(
                        poll,
                        events,
                        Some(deadline.saturating_duration_since(Instant::now())),
                    )?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => wait(poll, events, Some(Duration::from_millis(10)))?,
            }
        }
    }
    bail!(
        "no count from {} within {:?}: is realmq-server running there with --protocol raw?",
        config.server,
        config.connect_timeout
    )
}

fn wait(poll: &mut Poll, events: &mut Events, timeout: Option<Duration>) -> anyhow::Result<()> {
    match poll.poll(events, timeout) {
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
        r => r.context("poll failed"),
    }
}
