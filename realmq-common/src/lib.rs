//! RealMQ's QoS engine and what both ends share.
//!
//! Everything here is sans-IO: state machines take bytes and time (`Instant`) in and give
//! bytes and events out. No sockets, threads, sleeps or clocks live in this crate.

pub mod args;
pub mod config;
pub mod endpoint;
pub mod liveness;
pub mod loss;
pub mod phi;
pub mod ranges;
pub mod receiver;
pub mod rtt;
pub mod search;
pub mod sender;
pub mod stats;
