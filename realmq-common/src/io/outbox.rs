//! Writing datagrams to a non-blocking UDP socket without ever dropping one for a full
//! socket: a datagram that meets `WouldBlock` is parked, the socket is registered for
//! WRITABLE, and the loop takes nothing new from its session until the parked datagram has
//! left. The bound is therefore one datagram.

use std::io;
use std::net::SocketAddr;

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use serde::Serialize;

/// What the outbox did with the datagrams handed to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SendStats {
    /// Datagrams the socket accepted.
    pub datagrams_sent: u64,
    /// Times the socket would block and a datagram waited for WRITABLE.
    pub send_blocked: u64,
    /// Datagrams the socket refused with an error (ICMP unreachable from an earlier one,
    /// ENOBUFS, EPERM from a firewall): lost like any datagram, repaired by the QoS.
    pub send_errors: u64,
}

/// At most one datagram waiting for the socket, and the socket's WRITABLE registration.
/// The parked datagram's buffer is reused, so a blocked socket costs no allocation after
/// the first.
#[derive(Debug, Default)]
pub struct Outbox {
    /// `Some(destination)` while a datagram is parked in `buf`.
    parked: Option<Option<SocketAddr>>,
    buf: Vec<u8>,
    writable_registered: bool,
    stats: SendStats,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a datagram waits: the caller must not offer a new one until
    /// [`flush`](Self::flush) returns true.
    pub fn is_blocked(&self) -> bool {
        self.parked.is_some()
    }

    /// The counters so far.
    pub fn stats(&self) -> SendStats {
        self.stats
    }

    /// Sends `bytes` to `to` (or, with `None`, on the connected socket). Returns false if the
    /// socket would block: the datagram is parked and the caller stops sending until
    /// [`flush`](Self::flush) succeeds. Must not be called while
    /// [`is_blocked`](Self::is_blocked).
    pub fn send(&mut self, socket: &UdpSocket, to: Option<SocketAddr>, bytes: &[u8]) -> bool {
        debug_assert!(self.parked.is_none(), "send while a datagram is parked");
        if attempt(socket, to, bytes, &mut self.stats) {
            return true;
        }
        self.stats.send_blocked += 1;
        self.buf.clear();
        self.buf.extend_from_slice(bytes);
        self.parked = Some(to);
        false
    }

    /// Sends the parked datagram, if any. Returns whether the outbox is now empty.
    pub fn flush(&mut self, socket: &UdpSocket) -> bool {
        let Some(to) = self.parked else {
            return true;
        };
        if attempt(socket, to, &self.buf, &mut self.stats) {
            self.parked = None;
        }
        self.parked.is_none()
    }

    /// Registers `socket` for WRITABLE while a datagram is parked and for READABLE only
    /// otherwise (one `reregister` call per change).
    pub fn sync_interest(
        &mut self,
        registry: &Registry,
        socket: &mut UdpSocket,
        token: Token,
    ) -> io::Result<()> {
        let want = self.parked.is_some();
        if want != self.writable_registered {
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            registry.reregister(socket, token, interest)?;
            self.writable_registered = want;
        }
        Ok(())
    }
}

/// One attempt at the socket: true unless it would block. Other errors lose the datagram
/// (counted): the QoS repairs it.
fn attempt(
    socket: &UdpSocket,
    to: Option<SocketAddr>,
    bytes: &[u8],
    stats: &mut SendStats,
) -> bool {
    loop {
        let result = match to {
            Some(addr) => socket.send_to(bytes, addr),
            None => socket.send(bytes),
        };
        match result {
            Ok(_) => {
                stats.datagrams_sent += 1;
                return true;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) => {
                log::debug!("send to {to:?}: {e}");
                stats.send_errors += 1;
                return true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_an_address_and_on_a_connected_socket() {
        let a = super::super::socket::bind_udp("127.0.0.1:0".parse().unwrap(), 0).unwrap();
        let b_addr = a.local_addr().unwrap();
        let c = super::super::socket::connect_udp(b_addr, 0).unwrap();
        let mut out = Outbox::new();
        assert!(out.send(&c, None, b"one"));
        assert!(out.send(&a, Some(c.local_addr().unwrap()), b"two"));
        assert!(!out.is_blocked());
        assert!(out.flush(&a));
        assert_eq!(out.stats().datagrams_sent, 2);
    }
}
