//! Creating the UDP sockets both binaries use, with the options the standard library does
//! not offer (through `socket2`).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use mio::net::UdpSocket;

/// Kernel buffer sizes a socket actually got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferSizes {
    /// SO_RCVBUF as the kernel reports it.
    pub receive: usize,
    /// SO_SNDBUF as the kernel reports it.
    pub send: usize,
}

/// Asks the kernel for `bytes` of receive and send buffer on `socket` (SO_RCVBUF and
/// SO_SNDBUF); 0 leaves the defaults. Best effort: the kernel caps the request (on Linux at
/// `net.core.rmem_max` / `wmem_max`) and a refusal is only logged. Returns what was granted,
/// when the kernel says.
pub fn set_buffers(socket: &std::net::UdpSocket, bytes: usize) -> Option<BufferSizes> {
    let sock = socket2::SockRef::from(socket);
    if bytes > 0 {
        if let Err(e) = sock.set_recv_buffer_size(bytes) {
            log::warn!("cannot set the socket receive buffer to {bytes} bytes: {e}");
        }
        if let Err(e) = sock.set_send_buffer_size(bytes) {
            log::warn!("cannot set the socket send buffer to {bytes} bytes: {e}");
        }
    }
    let granted = BufferSizes {
        receive: sock.recv_buffer_size().ok()?,
        send: sock.send_buffer_size().ok()?,
    };
    log::debug!("socket buffers: {granted:?}");
    if bytes > 0 && (granted.receive < bytes || granted.send < bytes) {
        warn_capped_once(bytes, granted);
    }
    Some(granted)
}

/// Says once per process that the kernel capped the buffers, and how to raise the cap: with
/// the stock Linux limit (208 KiB) fast runs overflow the receive buffer and slow down.
fn warn_capped_once(asked: usize, granted: BufferSizes) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    log::warn!(
        "the kernel granted socket buffers of {} KiB (receive) and {} KiB (send), less than \
         the {} KiB asked (--socket-buffer); fast runs may drop datagrams in the kernel and \
         resend. To raise the limit: sysctl -w net.core.rmem_max={asked} net.core.wmem_max={asked}",
        granted.receive / 1024,
        granted.send / 1024,
        asked / 1024,
    );
}

/// A non-blocking UDP socket bound to `addr`, with kernel buffers of `buffer_bytes`
/// (0: the OS default).
pub fn bind_udp(addr: SocketAddr, buffer_bytes: usize) -> io::Result<UdpSocket> {
    let socket = std::net::UdpSocket::bind(addr)?;
    set_buffers(&socket, buffer_bytes);
    socket.set_nonblocking(true)?;
    Ok(UdpSocket::from_std(socket))
}

/// A non-blocking UDP socket on an ephemeral port, connected to `server` (so the kernel
/// filters other sources and reports ICMP errors for it), with kernel buffers of
/// `buffer_bytes` (0: the OS default).
pub fn connect_udp(server: SocketAddr, buffer_bytes: usize) -> io::Result<UdpSocket> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = std::net::UdpSocket::bind(local)?;
    socket.connect(server)?;
    set_buffers(&socket, buffer_bytes);
    socket.set_nonblocking(true)?;
    Ok(UdpSocket::from_std(socket))
}

/// Bytes of IPv4 and UDP header in front of a UDP payload (no IP options).
const IPV4_UDP_HEADERS: usize = 20 + 8;

/// The datagram size for `socket`, connected: `preferred`, or less where the path to its
/// peer is narrower ([`max_udp_payload`]).
pub fn datagram_size(socket: &UdpSocket, preferred: usize) -> usize {
    max_udp_payload(socket).map_or(preferred, |limit| limit.min(preferred))
}

/// The largest UDP payload `socket`, connected over IPv4, can send unfragmented: the
/// kernel's path MTU for its destination (`IP_MTU`: the route's, which is the interface's
/// unless the kernel learned a smaller one) less the IPv4 and UDP headers. `None` where the
/// kernel does not say (IPv6, other systems): the caller keeps its default.
///
/// The sockets send with the don't-fragment bit (quinn-udp asks for it), so a datagram over
/// the path MTU is not fragmented but dropped — on Linux before it leaves, with a `sendmsg`
/// error quinn-udp only logs. A client behind a smaller MTU (PPPoE 1492, WireGuard 1420,
/// tunnels of 1280) then had every full DATA datagram vanish and delivered nothing.
pub fn max_udp_payload(socket: &UdpSocket) -> Option<usize> {
    if !socket.peer_addr().ok()?.is_ipv4() {
        return None;
    }
    path_mtu_v4(socket).map(|mtu| mtu.saturating_sub(IPV4_UDP_HEADERS))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn path_mtu_v4(socket: &UdpSocket) -> Option<usize> {
    let mtu = nix::sys::socket::getsockopt(socket, nix::sys::socket::sockopt::IpMtu).ok()?;
    usize::try_from(mtu).ok()
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn path_mtu_v4(_socket: &UdpSocket) -> Option<usize> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connected_socket_reaches_a_bound_one() {
        let server = bind_udp("127.0.0.1:0".parse().unwrap(), 0).unwrap();
        let addr = server.local_addr().unwrap();
        assert_ne!(addr.port(), 0);
        let client = connect_udp(addr, 1 << 16).unwrap();
        assert_eq!(client.peer_addr().unwrap(), addr);
        let granted = set_buffers(&std::net::UdpSocket::bind("127.0.0.1:0").unwrap(), 0);
        assert!(granted.is_some_and(|g| g.receive > 0 && g.send > 0));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_path_limit_of_a_loopback_socket_is_the_loopback_mtu_less_the_headers() {
        let server = bind_udp("127.0.0.1:0".parse().unwrap(), 0).unwrap();
        let client = connect_udp(server.local_addr().unwrap(), 0).unwrap();
        // The interface's MTU (65,536 by default), capped at the largest IPv4 packet.
        let mtu: usize = std::fs::read_to_string("/sys/class/net/lo/mtu")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(max_udp_payload(&client), Some(mtu.min(65_535) - 28));
        assert_eq!(datagram_size(&client, 1472), 1472);
        assert_eq!(datagram_size(&client, 1 << 20), mtu.min(65_535) - 28);
        // A socket that is not connected has no path.
        assert_eq!(max_udp_payload(&server), None);
    }
}
