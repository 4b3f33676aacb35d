//! Writing datagrams to a non-blocking UDP socket, one `sendmsg` for many with UDP GSO
//! (`UDP_SEGMENT`) where the kernel has it, through `quinn-udp` (which falls back to one
//! datagram per call where it does not), and without ever dropping one for a full socket: a
//! send that meets `WouldBlock` is parked, the socket is registered for WRITABLE, and the loop
//! takes nothing new from its session until the parked send has left. The bound is one send
//! (at most [`Outbox::max_segments`] datagrams).

use std::io;
use std::net::{IpAddr, SocketAddr};

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use quinn_udp::{Transmit, UdpSockRef, UdpSocketState};
use serde::Serialize;

/// What the outbox did with the datagrams handed to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SendStats {
    /// Datagrams the socket accepted.
    pub datagrams_sent: u64,
    /// `sendmsg` calls that carried them (fewer than datagrams with GSO).
    pub send_calls: u64,
    /// Times the socket would block and a send waited for WRITABLE.
    pub send_blocked: u64,
    /// Sends the socket refused with an error (ICMP unreachable from an earlier one,
    /// ENOBUFS, EPERM from a firewall), in datagrams; each is tried once more at once, and
    /// one refused twice is lost like any datagram, repaired by the QoS.
    pub send_errors: u64,
}

/// Where a send goes: destination, source address and segment size.
#[derive(Debug, Clone, Copy)]
struct Route {
    to: SocketAddr,
    src_ip: Option<IpAddr>,
    segment_size: Option<usize>,
}

/// The socket's send state (GSO support), at most one parked send, and the socket's WRITABLE
/// registration. The parked send's buffer is reused: a blocked socket costs no allocation
/// after the first.
#[derive(Debug)]
pub struct Outbox {
    state: UdpSocketState,
    /// `Some(where)` while a send is parked in `buf`.
    parked: Option<Route>,
    buf: Vec<u8>,
    writable_registered: bool,
    stats: SendStats,
}

impl Outbox {
    /// An empty outbox for `socket` (probes the socket for GSO and sets its options).
    pub fn new(socket: &UdpSocket) -> io::Result<Self> {
        Ok(Self {
            state: UdpSocketState::new(UdpSockRef::from(socket))?,
            parked: None,
            buf: Vec::new(),
            writable_registered: false,
            stats: SendStats::default(),
        })
    }

    /// The socket's send and receive state, for [`super::batch_recv::RecvBatch`].
    pub fn state(&self) -> &UdpSocketState {
        &self.state
    }

    /// How many equal-sized datagrams one [`send`](Self::send) may carry (1 without GSO).
    pub fn max_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    /// Whether a send waits: the caller must not offer a new one until
    /// [`flush`](Self::flush) returns true.
    pub fn is_blocked(&self) -> bool {
        self.parked.is_some()
    }

    /// The counters so far.
    pub fn stats(&self) -> SendStats {
        self.stats
    }

    /// Sends `bytes` to `to`: one datagram, or with `segment_size` several datagrams of that
    /// size back to back (the last may be shorter), at most [`max_segments`](Self::max_segments).
    /// `src_ip` chooses the local address they leave from (a socket bound to a wildcard
    /// address answers from the address the peer reached); `None` lets the kernel choose.
    /// Returns false if the socket would block: the send is parked and the caller stops
    /// sending until [`flush`](Self::flush) succeeds. Must not be called while
    /// [`is_blocked`](Self::is_blocked).
    pub fn send(
        &mut self,
        socket: &UdpSocket,
        to: SocketAddr,
        src_ip: Option<IpAddr>,
        bytes: &[u8],
        segment_size: Option<usize>,
    ) -> bool {
        debug_assert!(self.parked.is_none(), "send while a datagram is parked");
        let route = Route {
            to,
            src_ip,
            segment_size,
        };
        if attempt(&self.state, socket, route, bytes, &mut self.stats) {
            return true;
        }
        self.stats.send_blocked += 1;
        self.buf.clear();
        self.buf.extend_from_slice(bytes);
        self.parked = Some(route);
        false
    }

    /// Sends the parked send, if any. Returns whether the outbox is now empty.
    pub fn flush(&mut self, socket: &UdpSocket) -> bool {
        let Some(route) = self.parked else {
            return true;
        };
        if attempt(&self.state, socket, route, &self.buf, &mut self.stats) {
            self.parked = None;
        }
        self.parked.is_none()
    }

    /// Registers `socket` for WRITABLE while a send is parked and for READABLE only
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

/// One attempt at the socket: true unless it would block. Other errors lose the datagrams
/// (counted): the QoS repairs them.
fn attempt(
    state: &UdpSocketState,
    socket: &UdpSocket,
    route: Route,
    bytes: &[u8],
    stats: &mut SendStats,
) -> bool {
    let Route {
        to,
        src_ip,
        segment_size,
    } = route;
    let transmit = Transmit {
        destination: to,
        ecn: None,
        contents: bytes,
        segment_size,
        src_ip,
    };
    let datagrams = segment_size.map_or(1, |s| bytes.len().div_ceil(s.max(1))) as u64;
    // A refused send is tried once more at once: the error usually concerns one datagram
    // (a firewall's random drop answering EPERM) or an earlier one (a pending ICMP error
    // reported by this call), and a second try is far cheaper than the loss detection
    // that would otherwise repair it a round trip or more later.
    let mut tries_left = 2;
    loop {
        match state.try_send(UdpSockRef::from(socket), &transmit) {
            Ok(()) => {
                stats.datagrams_sent += datagrams;
                stats.send_calls += 1;
                return true;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) => {
                log::debug!("send to {to}: {e}");
                stats.send_errors += datagrams;
                tries_left -= 1;
                if tries_left == 0 {
                    return true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::socket::{bind_udp, connect_udp};

    #[test]
    fn sends_single_and_segmented_datagrams() {
        let server = bind_udp("127.0.0.1:0".parse().unwrap(), 0).unwrap();
        let to = server.local_addr().unwrap();
        let client = connect_udp(to, 0).unwrap();
        let mut out = Outbox::new(&client).unwrap();
        assert!(out.max_segments() >= 1);
        assert!(out.send(&client, to, None, b"one", None));
        // Three datagrams of 4 bytes and a last one of 2, in one call where GSO exists.
        let segments = out.max_segments().min(4);
        let bytes = vec![7u8; 4 * (segments - 1) + 2];
        assert!(out.send(&client, to, None, &bytes, (segments > 1).then_some(4)));
        assert!(!out.is_blocked());
        assert!(out.flush(&client));
        assert_eq!(out.stats().datagrams_sent, 1 + segments as u64);
        assert_eq!(out.stats().send_calls, 2, "one call each, segmented or not");
        // What arrives: "one", then the segments one by one.
        let std_server = std::net::UdpSocket::from(server);
        std_server.set_nonblocking(false).unwrap();
        std_server
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = std_server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"one");
        let mut lens = Vec::new();
        for _ in 0..segments {
            lens.push(std_server.recv_from(&mut buf).unwrap().0);
        }
        assert_eq!(lens.iter().sum::<usize>(), bytes.len(), "{lens:?}");
    }
}
