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
//! Neither reads a clock, touches a socket or spawns a thread: the binaries do that.

mod auth;
mod client;
mod server;

pub use client::{Client, ClientConfig, ClientEvent, ClientState, ClientStats, SendError};
pub use server::{
    CloseReason, Delivery, Server, ServerConfig, ServerEvent, ServerSecrets, ServerStats, Transmit,
};

pub(crate) use crate::timer::earliest;

#[cfg(test)]
mod tests;
