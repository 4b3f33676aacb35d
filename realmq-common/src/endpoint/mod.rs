//! The session layer: a [`Client`] (one session, one socket) and a [`Server`] (every session
//! of a server process), built on the QoS engine's [`crate::sender::Sender`] and
//! [`crate::receiver::Receiver`].
//!
//! Both are sans-IO state machines with one contract, as quinn-proto's `Connection`:
//!
//! * inputs: `handle_datagram(now, ..)` for every datagram received and `handle_timeout(now)`
//!   once `now` has reached the instant `poll_timeout()` returned;
//! * outputs: `poll_transmit(now, buf)` until it returns `None` (datagrams to send),
//!   `poll_event()` until `None` (what happened), and `poll_timeout()` (when to call back).
//!
//! Neither reads a clock, touches a socket or spawns a thread: the binaries do that. The
//! wall-clock times the handshake exchanges to estimate the client's clock offset (see
//! [`ClockOffset`]) are given too: the client's with its session epoch, the server's with
//! [`Server::with_wall_clock`].

mod auth;
mod client;
mod clock;
mod server;

pub use client::{Client, ClientConfig, ClientEvent, ClientState, ClientStats, SendError};
pub use clock::{ClockOffset, CLOCK_PROBES};
pub use server::{
    CloseReason, DeliveredRun, Delivery, Server, ServerConfig, ServerEvent, ServerSecrets,
    ServerStats, Transmit,
};

pub(crate) use crate::timer::earliest;

/// Says once per process that a peer speaks another protocol version: its datagrams are
/// dropped (counted as malformed or rejected) and never answered, which would otherwise look
/// like a peer that does not answer.
fn warn_other_version(e: realmq_proto::DecodeError) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if let realmq_proto::DecodeError::UnsupportedVersion(v) = e {
        if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            log::warn!(
                "a peer speaks RealMQ protocol version {v}, this build version {}: its \
                 datagrams are dropped (run the same RealMQ release on both ends)",
                realmq_proto::VERSION
            );
        }
    }
}

#[cfg(test)]
mod tests;
