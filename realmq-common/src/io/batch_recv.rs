//! Reading many datagrams per system call: `recvmmsg` and UDP GRO (`UDP_GRO`, several
//! datagrams from one sender coalesced into one buffer) where the kernel has them, through
//! `quinn-udp`, which falls back to one `recvmsg` per datagram where it does not. Buffers are
//! allocated once.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;

use mio::net::UdpSocket;
use quinn_udp::{RecvMeta, UdpSockRef, UdpSocketState, BATCH_SIZE};

/// Bytes of one receive buffer: room for a GRO batch of 64 KiB.
const BUFFER_BYTES: usize = 64 * 1024;

/// Receive buffers for [`BATCH_SIZE`] messages of up to 64 KiB each (2 MiB on Linux).
#[derive(Debug)]
pub struct RecvBatch {
    buffers: Vec<Vec<u8>>,
    metas: Vec<RecvMeta>,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self {
            buffers: (0..BATCH_SIZE).map(|_| vec![0; BUFFER_BYTES]).collect(),
            metas: vec![RecvMeta::default(); BATCH_SIZE],
        }
    }
}

impl RecvBatch {
    /// Reads what waits on `socket` (one system call) and calls `each(from, datagram)` for
    /// every datagram, GRO batches split at their stride. Returns how many datagrams;
    /// `WouldBlock` and other errors are returned as they come.
    pub fn recv(
        &mut self,
        state: &UdpSocketState,
        socket: &UdpSocket,
        mut each: impl FnMut(SocketAddr, &[u8]),
    ) -> io::Result<usize> {
        let mut slices: [IoSliceMut<'_>; BATCH_SIZE] = {
            let mut it = self.buffers.iter_mut();
            std::array::from_fn(|_| IoSliceMut::new(it.next().expect("BATCH_SIZE buffers")))
        };
        let messages = state.recv(UdpSockRef::from(socket), &mut slices, &mut self.metas)?;
        let mut datagrams = 0;
        for (meta, buf) in self.metas.iter().zip(&self.buffers).take(messages) {
            let stride = meta.stride.max(1);
            for datagram in buf[..meta.len].chunks(stride) {
                each(meta.addr, datagram);
                datagrams += 1;
            }
        }
        Ok(datagrams)
    }
}
