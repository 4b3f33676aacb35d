//! Reading many datagrams per system call: `recvmmsg` and UDP GRO (`UDP_GRO`, several
//! datagrams from one sender coalesced into one buffer) where the kernel has them, through
//! `quinn-udp`, which falls back to one `recvmsg` per datagram where it does not. Buffers are
//! allocated once.

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};

use mio::net::UdpSocket;
use quinn_udp::{RecvMeta, UdpSockRef, UdpSocketState, BATCH_SIZE};

/// Bytes of one receive buffer: room for a GRO batch of 64 KiB.
const BUFFER_BYTES: usize = 64 * 1024;

/// Receive buffers for up to [`BATCH_SIZE`] messages of up to 64 KiB each (2 MiB on Linux
/// with the default). Every buffer holds a whole GRO batch, so nothing is ever truncated:
/// `quinn-udp` turns UDP_GRO on for every socket it sets up, and a plain `recv` on such a
/// socket would return several coalesced datagrams as one.
#[derive(Debug)]
pub struct RecvBatch {
    buffers: Vec<Vec<u8>>,
    metas: Vec<RecvMeta>,
    /// Whether the last [`recv`](Self::recv) filled every buffer.
    filled: bool,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new(BATCH_SIZE)
    }
}

impl RecvBatch {
    /// Buffers for `messages` messages per system call (1 to [`BATCH_SIZE`]), 64 KiB each.
    pub fn new(messages: usize) -> Self {
        let n = messages.clamp(1, BATCH_SIZE);
        Self {
            buffers: (0..n).map(|_| vec![0; BUFFER_BYTES]).collect(),
            metas: vec![RecvMeta::default(); n],
            filled: false,
        }
    }

    /// Reads what waits on `socket` (one system call) and calls
    /// `each(from, local_ip, datagram)` for every datagram, GRO batches split at their
    /// stride. `local_ip` is the address the datagram was sent to, where the platform tells
    /// (`IP_PKTINFO`/`IPV6_RECVPKTINFO`, which `quinn-udp` turns on): the one to answer from. Returns how many datagrams;
    /// `WouldBlock` and other errors are returned as they come.
    pub fn recv(
        &mut self,
        state: &UdpSocketState,
        socket: &UdpSocket,
        mut each: impl FnMut(SocketAddr, Option<IpAddr>, &[u8]),
    ) -> io::Result<usize> {
        let mut it = self.buffers.iter_mut();
        let mut slices: [IoSliceMut<'_>; BATCH_SIZE] = std::array::from_fn(|_| match it.next() {
            Some(buf) => IoSliceMut::new(buf),
            None => IoSliceMut::new(&mut []),
        });
        let n = self.metas.len();
        self.filled = false;
        let messages = state.recv(UdpSockRef::from(socket), &mut slices[..n], &mut self.metas)?;
        self.filled = messages == n;
        let mut datagrams = 0;
        for (meta, buf) in self.metas.iter().zip(&self.buffers).take(messages) {
            let stride = meta.stride.max(1);
            for datagram in buf[..meta.len].chunks(stride) {
                each(meta.addr, meta.dst_ip, datagram);
                datagrams += 1;
            }
        }
        Ok(datagrams)
    }

    /// Whether the last [`recv`](Self::recv) filled every buffer. One that did not found
    /// the socket's queue empty: with edge-triggered readiness (mio's) a caller may stop
    /// reading there instead of asking again for `WouldBlock`, since whatever arrives later
    /// raises a new event.
    pub fn filled(&self) -> bool {
        self.filled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::socket::{bind_udp, connect_udp};

    /// Sends `count` datagrams from their own sockets (GRO coalesces only one sender's) and
    /// reads once with a batch of `buffers`: how many it read and whether it filled the batch.
    fn read_once(count: usize, buffers: usize) -> (usize, bool) {
        let server = bind_udp("127.0.0.1:0".parse().unwrap(), 0).unwrap();
        let to = server.local_addr().unwrap();
        let state = UdpSocketState::new(UdpSockRef::from(&server)).unwrap();
        let senders: Vec<_> = (0..count).map(|_| connect_udp(to, 0).unwrap()).collect();
        for sender in &senders {
            assert_eq!(sender.send(b"hello").unwrap(), 5);
        }
        // Loopback queues a datagram before `send` returns; the wait covers a kernel that
        // is slower about it.
        let mut server = server;
        let mut poll = mio::Poll::new().unwrap();
        let token = mio::Token(0);
        poll.registry()
            .register(&mut server, token, mio::Interest::READABLE)
            .unwrap();
        let mut events = mio::Events::with_capacity(4);
        poll.poll(&mut events, Some(std::time::Duration::from_secs(10)))
            .unwrap();
        assert!(!events.is_empty(), "nothing arrived within 10 s");
        let mut batch = RecvBatch::new(buffers);
        let read = batch
            .recv(&state, &server, |_, _, d| assert_eq!(d, b"hello"))
            .unwrap();
        (read, batch.filled())
    }

    #[test]
    fn a_read_that_leaves_buffers_empty_says_the_batch_was_not_filled() {
        let (read, filled) = read_once(1, 4);
        assert_eq!((read, filled), (1, false));
        let (read, filled) = read_once(3, 2);
        assert_eq!((read, filled), (2, true), "two buffers, three waiting");
    }
}
