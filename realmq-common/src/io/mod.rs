//! What both binaries share and only binaries need: sockets, the clock, signals, the
//! command-line flags they have in common and the way they print a summary.
//!
//! This module exists only with the crate feature `io`, which the two binaries enable and
//! nothing else does. Without it realmq-common is sans-IO: no socket, clock, thread or
//! signal is named anywhere else in the crate.

pub mod address;
pub mod arrivals;
pub mod batch_recv;
pub mod cli;
pub mod clock;
pub mod drop_sim;
pub mod entropy;
pub mod outbox;
pub mod raw;
pub mod report;
pub mod shutdown;
pub mod socket;

pub use arrivals::ArrivalRecorder;
pub use batch_recv::RecvBatch;
pub use cli::{CommonArgs, LivenessArgs, LivenessOptions, Protocol};
pub use clock::{local_pause, thread_cpu_time, unix_now_us, CpuTime};
pub use drop_sim::DropSim;
pub use outbox::{Outbox, SendStats};
pub use report::{print_report, TextReport};
pub use shutdown::Shutdown;
