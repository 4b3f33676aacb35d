//! One TCP baseline sender thread: a blocking `TcpStream` writing length-prefixed frames.
//!
//! Framing (see the server's `tcp` module and `docs/USAGE.md`): per message, `len: u32`
//! (8 + payload length), `sent_unix_us: u64`, the payload, all little-endian. Messages are
//! written in batches (as many as the token bucket allows, at most [`SEND_BATCH`]) and each
//! batch is flushed at once, with Nagle's algorithm off. At the end the client half-closes
//! and reads the server's `received: u64`.

use std::io::{self, BufWriter, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::Context;
use realmq_common::io::Shutdown;
use realmq_common::payload_stamp::Stamper;

use crate::pacing::TokenBucket;
use crate::summary::{Progress, ThreadResult};
use crate::{random_payload, WorkerConfig};

/// Messages written per flush.
const SEND_BATCH: u64 = 256;
/// How long a write or the final count may take before the server counts as gone.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// The top bit of a frame's length: the server answers this frame at once (`--ping`).
const PING_BIT: u32 = 1 << 31;

/// Appends one frame to `out`; with `ping`, the server answers it at once.
pub(crate) fn write_frame(
    out: &mut impl Write,
    sent_unix_us: u64,
    payload: &[u8],
    ping: bool,
) -> io::Result<()> {
    let mut len = (8 + payload.len()) as u32;
    if ping {
        len |= PING_BIT;
    }
    out.write_all(&len.to_le_bytes())?;
    out.write_all(&sent_unix_us.to_le_bytes())?;
    out.write_all(payload)
}

/// Runs one TCP sender thread to the end of its connection.
pub(crate) fn send_connection(
    config: &WorkerConfig,
    progress: &Progress,
    shutdown: &Shutdown,
) -> anyhow::Result<ThreadResult> {
    let server = config.server;
    let stream = TcpStream::connect_timeout(&server, config.connect_timeout).with_context(|| {
        format!("cannot connect to {server} over TCP: is realmq-server running there (with --protocol tcp)?")
    })?;
    stream.set_nodelay(true).context("cannot set TCP_NODELAY")?;
    stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .context("cannot set a write timeout")?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .context("cannot set a read timeout")?;
    let mut payload = random_payload(config.size, config.index);
    let stamper = Stamper::new(&payload);
    let mut out = BufWriter::with_capacity(256 * 1024, &stream);
    let mut result = ThreadResult::default();
    let start = Instant::now();
    let mut pacer = TokenBucket::new(config.rate, start);
    let send_until = config.duration.map(|d| start + d);
    let mut remaining = config.quota;
    let lost_server = |e: io::Error| {
        // A socket timeout reads as EAGAIN ("Resource temporarily unavailable"): say what
        // it means.
        let what = if matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) {
            format!("the connection to {server} made no progress for {IO_TIMEOUT:?}")
        } else {
            format!("the connection to {server} failed")
        };
        anyhow::Error::new(e).context(what)
    };

    loop {
        let now = Instant::now();
        if remaining == Some(0) || send_until.is_some_and(|t| now >= t) || shutdown.is_triggered() {
            break;
        }
        // A ping run has one message in flight: send one, wait for its answer.
        let batch = if config.ping { 1 } else { SEND_BATCH };
        let granted = pacer.take(now, remaining.unwrap_or(u64::MAX).min(batch));
        if granted == 0 {
            // Rate-limited: wait for the next token (not per message: the bucket pays out
            // whatever accrued while waiting, up to its burst).
            if let Some(t) = pacer.next_token_at(now) {
                std::thread::sleep(t.saturating_duration_since(now));
            }
            continue;
        }
        let stamp = config.unix_now_us();
        for k in 0..granted {
            // Stamped as the other modes' payloads are (session 0: TCP has none on the
            // wire), so the server checks every one.
            stamper.stamp(&mut payload, 0, result.sent + k);
            write_frame(&mut out, stamp, &payload, config.ping).map_err(lost_server)?;
        }
        out.flush().map_err(lost_server)?;
        if config.ping {
            let mut answer = [0u8; 8];
            (&stream).read_exact(&mut answer).map_err(lost_server)?;
            let rtt = now.elapsed().as_micros() as u64;
            realmq_common::stats::record_latency_us(&mut result.rtt, rtt.max(1));
        }
        if result.on_sent(now, result.sent, config.warmup) {
            result.rtt.reset();
        }
        result.sent += granted;
        if let Some(r) = &mut remaining {
            *r -= granted;
        }
        progress.publish(result.sent, 0);
    }
    out.flush().map_err(lost_server)?;
    drop(out);
    stream
        .shutdown(std::net::Shutdown::Write)
        .map_err(lost_server)?;
    let mut count = [0u8; 8];
    (&stream)
        .read_exact(&mut count)
        .map_err(lost_server)
        .context("no message count from the server at the end")?;
    // The server has read everything: the TCP equivalent of the last acknowledgement.
    result.drained = Some(Instant::now());
    let received = u64::from_le_bytes(count);
    result.server_received = Some(received);
    progress.publish(result.sent, received);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_bytes() {
        let mut out = Vec::new();
        write_frame(&mut out, 42, b"!", false).unwrap();
        assert_eq!(out, [9, 0, 0, 0, 0x2a, 0, 0, 0, 0, 0, 0, 0, b'!']);
        out.clear();
        write_frame(&mut out, 42, b"!", true).unwrap();
        assert_eq!(&out[..4], [9, 0, 0, 0x80]);
    }
}
