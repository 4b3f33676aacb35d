//! A deterministic network simulation: one [`Sender`] and one [`Receiver`] joined by two
//! seeded [`Link`]s (the library's link model, `realmq_common::sim`), driven by simulated
//! time. [`Sim`] is the harness, shaped like quinn-proto's test `Pair`.
//!
//! Time is a virtual `Instant`: one `Instant::now()` at the start is the origin, and the
//! harness jumps from deadline to deadline (the earliest of the two link queues, the two
//! endpoints' `poll_timeout` and the application's next burst). Every datagram is built
//! with `DatagramWriter` and read with `Datagram::parse`, so the wire format is in the loop.
//! The same seed gives the same run, event for event: the run's trace is hashed as it goes.
//!
//! [`Sender`]: realmq_common::sender::Sender
//! [`Receiver`]: realmq_common::receiver::Receiver
//! [`Link`]: realmq_common::sim::Link

mod app;
mod driver;

use std::time::Duration;

use realmq_common::config::{ReceiverConfig, SenderConfig};
use realmq_common::receiver::ReceiverStats;
use realmq_common::sender::SenderStats;
use realmq_common::sim::LinkStats;

pub(crate) use app::Deliveries;
pub(crate) use driver::Sim;
pub(crate) use realmq_common::sim::LinkConfig;

/// What the application does.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Workload {
    /// Send `messages` as fast as back-pressure allows, then stop.
    Bulk,
    /// Send bursts of `burst` messages separated by idle gaps drawn uniformly in
    /// `[0, max_gap)` (heartbeats happen in the long gaps), until `messages` are sent.
    Bursty { burst: u64, max_gap: Duration },
}

/// One simulation's set-up.
#[derive(Debug, Clone)]
pub(crate) struct SimConfig {
    /// Seeds both links and the workload.
    pub(crate) seed: u64,
    /// Messages the application sends, IDs 0 to `messages - 1`.
    pub(crate) messages: u64,
    pub(crate) payload_len: usize,
    pub(crate) workload: Workload,
    /// Sender to receiver (DATA, HEARTBEAT).
    pub(crate) forward: LinkConfig,
    /// Receiver to sender (ACK).
    pub(crate) backward: LinkConfig,
    pub(crate) sender: SenderConfig,
    pub(crate) receiver: ReceiverConfig,
    /// The run fails if it takes more steps than this.
    pub(crate) max_steps: u64,
    /// The run fails if it takes longer than this in simulated time.
    pub(crate) max_time: Duration,
    /// At this simulated time the receiver dies: it stops sending, receiving and handling
    /// timers (a crashed process), and the link towards it drops everything.
    pub(crate) receiver_dies_at: Option<Duration>,
    /// At this simulated time the sender dies likewise.
    pub(crate) sender_dies_at: Option<Duration>,
}

impl SimConfig {
    /// Bulk transfer of `messages` 32-byte messages over [`LinkConfig::lan`] with `loss` in
    /// both directions, default engine settings.
    pub(crate) fn bulk(seed: u64, messages: u64, loss: f64) -> Self {
        Self {
            seed,
            messages,
            payload_len: 32,
            workload: Workload::Bulk,
            forward: LinkConfig::lan(loss),
            backward: LinkConfig::lan(loss),
            sender: SenderConfig::default(),
            receiver: ReceiverConfig::default(),
            max_steps: 20_000_000,
            max_time: Duration::from_secs(600),
            receiver_dies_at: None,
            sender_dies_at: None,
        }
    }
}

/// A liveness detector's state at one moment, times since the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DetectorSnapshot {
    /// The last arrival it recorded.
    pub(crate) last_arrival: Duration,
    /// Mean of the inter-arrival times in its window.
    pub(crate) mean: Duration,
    /// Their standard deviation.
    pub(crate) std_deviation: Duration,
}

/// One side's view of its peer's liveness over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PeerView {
    /// When (since the origin) this side declared the peer gone (sender: `PeerUnreachable`,
    /// receiver: `PeerDead`).
    pub(crate) declared_gone: Option<Duration>,
    /// How often φ crossed the threshold (rising edges, sampled every step).
    pub(crate) suspicions: u64,
    /// This side's detector when the peer died.
    pub(crate) at_peer_death: Option<DetectorSnapshot>,
}

/// What a run did.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// What the receiving application saw.
    pub(crate) deliveries: Deliveries,
    /// IDs reported undeliverable by the sender.
    pub(crate) undeliverable: Vec<u64>,
    /// Whether every message was delivered or reported undeliverable.
    pub(crate) all_accounted: bool,
    /// Simulated time from start to the last step.
    pub(crate) elapsed: Duration,
    pub(crate) steps: u64,
    /// The most messages and payload bytes in flight at any step.
    pub(crate) max_in_flight: (usize, usize),
    pub(crate) sender: SenderStats,
    pub(crate) receiver: ReceiverStats,
    /// The sender's view of the receiver and the receiver's of the sender.
    pub(crate) sender_view: PeerView,
    pub(crate) receiver_view: PeerView,
    /// Sender to receiver, and back.
    pub(crate) forward: LinkStats,
    pub(crate) backward: LinkStats,
    /// Hash of every datagram (time, direction, bytes) and event: the run's fingerprint.
    pub(crate) trace: u64,
}

/// Runs one simulation until every message is acknowledged or given up (see
/// [`Sim::drive`]); panics if it exceeds its step or time budget.
pub(crate) fn simulate(config: &SimConfig) -> Outcome {
    let mut sim = Sim::new(config.clone());
    sim.drive();
    sim.outcome()
}
