//! RealMQ's QoS engine and what both ends share.
//!
//! Everything here is sans-IO: state machines take bytes and time (`Instant`) in and give
//! bytes and events out. No sockets, threads, sleeps or clocks live in this crate, except
//! in the module `io`, which exists only with the feature `io` that the two binaries
//! enable: what both binaries share (sockets, the outbox, shutdown, common flags).

pub mod config;
pub mod endpoint;
#[cfg(feature = "io")]
pub mod io;
pub mod liveness;
pub mod payload_stamp;
pub mod phi;
pub mod ranges;
pub mod receiver;
pub mod rtt;
pub mod search;
pub mod security;
pub mod sender;
pub mod sim;
pub mod stats;
pub mod timer;
