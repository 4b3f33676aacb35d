//! Socket options the standard library does not offer, in one small module.

use std::net::UdpSocket;

/// Asks the kernel for `bytes` of receive and send buffer on `socket` (SO_RCVBUF and
/// SO_SNDBUF); 0 leaves the defaults. Best effort: the kernel caps the request (on Linux at
/// `net.core.rmem_max` / `wmem_max`) and a refusal is only logged.
pub fn set_buffers(socket: &UdpSocket, bytes: usize) {
    if bytes == 0 {
        return;
    }
    let sock = socket2::SockRef::from(socket);
    if let Err(e) = sock.set_recv_buffer_size(bytes) {
        log::warn!("cannot set the socket receive buffer to {bytes} bytes: {e}");
    }
    if let Err(e) = sock.set_send_buffer_size(bytes) {
        log::warn!("cannot set the socket send buffer to {bytes} bytes: {e}");
    }
    log::debug!(
        "socket buffers: receive {:?}, send {:?} bytes",
        sock.recv_buffer_size(),
        sock.send_buffer_size()
    );
}
