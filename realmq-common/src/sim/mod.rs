//! Deterministic network simulation support: the seeded link model every simulation in this
//! repository uses.
//!
//! The engine-level simulation (`realmq-common/tests/sim/`: one [`Sender`] and one
//! [`Receiver`] in simulated time) and the session tests (`endpoint/tests.rs`: one
//! [`Server`] and several [`Client`]s) both put their datagrams on a [`Link`], so a link
//! impairment written once (loss, duplication, jitter, reordering, held-back datagrams,
//! serialization) is available to both.
//!
//! Sans-IO like the rest of the crate: no clock, socket or thread. Time is an argument
//! (`Instant`), randomness comes from a `fastrand::Rng` seeded by the caller, so one seed
//! gives one run, datagram for datagram. A simulation drives it as smoltcp's and s2n-quic's
//! simulations do: offer datagrams with [`Link::send`] (or [`Link::send_tagged`]), jump
//! simulated time to the earliest of [`Link::next_arrival`] and the endpoints'
//! `poll_timeout()`, then take what arrived with [`Link::pop_arrived`].
//!
//! [`Sender`]: crate::sender::Sender
//! [`Receiver`]: crate::receiver::Receiver
//! [`Server`]: crate::endpoint::Server
//! [`Client`]: crate::endpoint::Client

mod link;

pub use link::{Arrival, Link, LinkConfig, LinkStats};
