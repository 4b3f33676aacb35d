//! The client's counters.

use serde::Serialize;

/// The client's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ClientStats {
    /// Messages accepted by [`Client::send`](super::Client::send).
    pub sent: u64,
    /// Messages the server acknowledged.
    pub acked: u64,
    /// Resends.
    pub retransmitted: u64,
    /// Messages given up after the maximum number of resends.
    pub undeliverable: u64,
    /// Datagrams written by [`Client::poll_transmit`](super::Client::poll_transmit).
    pub datagrams_sent: u64,
    /// Datagrams given to [`Client::handle_datagram`](super::Client::handle_datagram) that were not valid for this session
    /// (malformed, for another session, unauthenticated or replayed).
    pub datagrams_rejected: u64,
    /// RETRYs (address-validation cookies) the server answered a HELLO with.
    pub retries: u64,
    /// ACKs that named IDs never sent (that part ignored).
    pub acks_unsent: u64,
}
