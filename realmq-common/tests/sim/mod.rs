//! A deterministic network simulation: one [`Sender`] and one [`Receiver`] joined by a
//! seeded, lossy, reordering, duplicating link, driven by simulated time.
//!
//! Time is a virtual `Instant`: one `Instant::now()` at the start is the origin, and the loop
//! jumps from deadline to deadline (the earliest of the two link queues and the two
//! endpoints' `poll_timeout`). Every datagram is built with `DatagramWriter` and read with
//! `Datagram::parse`, so the wire format is in the loop. The same seed gives the same run,
//! event for event: the run's trace is hashed as it goes.

use std::cmp::Reverse;
use std::collections::hash_map::DefaultHasher;
use std::collections::BinaryHeap;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use realmq_common::config::{ReceiverConfig, SenderConfig};
use realmq_common::receiver::{Receiver, ReceiverEvent};
use realmq_common::sender::{SendError, Sender, SenderEvent};
use realmq_proto::{Datagram, DatagramWriter, Flags, Frame, Header};

/// One direction of the link.
#[derive(Debug, Clone, Copy)]
pub struct LinkConfig {
    /// Probability that a datagram is dropped.
    pub loss: f64,
    /// Probability that a datagram is delivered twice (the copy with its own delay).
    pub duplicate: f64,
    /// One-way propagation delay.
    pub delay: Duration,
    /// Extra queueing delay, uniform in `[0, jitter)`, drawn per datagram. The link stays
    /// first-in first-out: a datagram never arrives before one that entered earlier (as in a
    /// queue), so jitter alone does not reorder.
    pub jitter: Duration,
    /// Probability that a datagram leaves the queue order and is delayed by a further
    /// uniform `[0, reorder_delay)`, letting later ones overtake it.
    pub reorder: f64,
    /// The most such a datagram is held back.
    pub reorder_delay: Duration,
    /// Time to put one datagram on the wire: the link carries at most one datagram per
    /// `serialization`, queueing the rest (no queue limit).
    pub serialization: Duration,
}

impl LinkConfig {
    /// A LAN-like link: 1 ms one way plus up to 0.5 ms of jitter, 10 µs per datagram
    /// (~1.2 Gbit/s of full datagrams), 1 % of datagrams reordered by up to 1 ms, 1 %
    /// duplicated, and the given loss.
    pub fn lan(loss: f64) -> Self {
        Self {
            loss,
            duplicate: 0.01,
            delay: Duration::from_millis(1),
            jitter: Duration::from_micros(500),
            reorder: 0.01,
            reorder_delay: Duration::from_millis(1),
            serialization: Duration::from_micros(10),
        }
    }

    /// The round trip without queueing, mean jitter included.
    pub fn mean_rtt(&self, back: &LinkConfig) -> Duration {
        self.delay + self.jitter / 2 + back.delay + back.jitter / 2
    }
}

/// A datagram on its way.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    arrival: Instant,
    /// Tie-breaker: the order datagrams entered the link.
    seq: u64,
    bytes: Vec<u8>,
}

/// One direction of the link: a seeded RNG and a queue ordered by arrival time.
pub struct Link {
    config: LinkConfig,
    rng: fastrand::Rng,
    queue: BinaryHeap<Reverse<InFlight>>,
    /// When the wire is free for the next datagram.
    free_at: Instant,
    /// The latest in-order arrival so far: jitter never takes a datagram before it.
    fifo_arrival: Instant,
    seq: u64,
    /// Datagrams offered, dropped, duplicated.
    pub offered: u64,
    pub dropped: u64,
    pub duplicated: u64,
    /// While true, everything offered is dropped (a peer gone silent).
    pub cut: bool,
}

impl Link {
    pub fn new(config: LinkConfig, seed: u64, origin: Instant) -> Self {
        Self {
            config,
            rng: fastrand::Rng::with_seed(seed),
            queue: BinaryHeap::new(),
            free_at: origin,
            fifo_arrival: origin,
            seq: 0,
            offered: 0,
            dropped: 0,
            duplicated: 0,
            cut: false,
        }
    }

    /// Offers a datagram at `now`.
    pub fn send(&mut self, now: Instant, bytes: &[u8]) {
        self.offered += 1;
        let departs = self.free_at.max(now) + self.config.serialization;
        self.free_at = departs;
        if self.cut || self.rng.f64() < self.config.loss {
            self.dropped += 1;
            return;
        }
        let copies = if self.rng.f64() < self.config.duplicate {
            self.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let jitter = self.config.jitter.mul_f64(self.rng.f64());
            let mut arrival = (departs + self.config.delay + jitter).max(self.fifo_arrival);
            if self.rng.f64() < self.config.reorder {
                arrival += self.config.reorder_delay.mul_f64(self.rng.f64());
            } else {
                self.fifo_arrival = arrival;
            }
            self.seq += 1;
            self.queue.push(Reverse(InFlight {
                arrival,
                seq: self.seq,
                bytes: bytes.to_vec(),
            }));
        }
    }

    /// When the next datagram arrives.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse(d)| d.arrival)
    }

    /// The next datagram that has arrived by `now`.
    pub fn pop_arrived(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.next_arrival()? <= now {
            self.queue.pop().map(|Reverse(d)| d.bytes)
        } else {
            None
        }
    }
}

/// What the application does.
#[derive(Debug, Clone, Copy)]
pub enum Workload {
    /// Send `messages` as fast as back-pressure allows, then stop.
    Bulk,
    /// Send bursts of `burst` messages separated by idle gaps drawn uniformly in
    /// `[0, max_gap)` (heartbeats happen in the long gaps), until `messages` are sent.
    Bursty { burst: u64, max_gap: Duration },
}

/// One simulation's set-up.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub messages: u64,
    pub payload_len: usize,
    pub workload: Workload,
    pub forward: LinkConfig,
    pub backward: LinkConfig,
    pub sender: SenderConfig,
    pub receiver: ReceiverConfig,
    /// The run fails if it takes more loop steps than this.
    pub max_steps: u64,
    /// The run fails if it takes longer than this in simulated time.
    pub max_time: Duration,
    /// At this simulated time the receiver dies: it stops sending, receiving and handling
    /// timers (a crashed process).
    pub receiver_dies_at: Option<Duration>,
    /// At this simulated time the sender dies likewise.
    pub sender_dies_at: Option<Duration>,
    /// Stop once the sender reports the peer unreachable or the receiver reports it dead.
    pub stop_on_death: bool,
}

impl SimConfig {
    /// Bulk transfer of `messages` 32-byte messages over [`LinkConfig::lan`] with `loss` in
    /// both directions, default engine settings.
    pub fn bulk(seed: u64, messages: u64, loss: f64) -> Self {
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
            stop_on_death: false,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Distinct messages delivered to the receiving application.
    pub delivered: u64,
    /// Deliveries of a message already delivered (must be 0).
    pub duplicates_delivered: u64,
    /// Messages whose payload did not match their ID (must be 0).
    pub corrupted: u64,
    /// IDs reported undeliverable by the sender.
    pub undeliverable: Vec<u64>,
    /// Undeliverable IDs that had in fact been delivered.
    pub undeliverable_but_delivered: u64,
    /// Whether every message was delivered or reported undeliverable.
    pub all_accounted: bool,
    /// Simulated time from start to the last event.
    pub elapsed: Duration,
    pub steps: u64,
    pub max_in_flight: usize,
    pub max_in_flight_bytes: usize,
    pub max_window: (usize, usize),
    /// Sender counters.
    pub sent: u64,
    pub retransmitted: u64,
    pub rto_fired: u64,
    pub acked_after_lost: u64,
    pub rtt_samples: u64,
    pub srtt: Duration,
    /// Receiver counters.
    pub received: u64,
    pub duplicates_seen: u64,
    pub out_of_order: u64,
    pub refused: u64,
    pub acks_sent: u64,
    pub acks_partial: u64,
    pub heartbeats: u64,
    /// Datagrams each way.
    pub datagrams_forward: u64,
    pub datagrams_backward: u64,
    /// Liveness: when (since the origin) each side declared the other gone, and how often
    /// each side's φ crossed the threshold (counted on rising edges, sampled every step).
    pub sender_declared_unreachable: Option<Duration>,
    pub receiver_declared_dead: Option<Duration>,
    pub sender_suspicions: u64,
    pub receiver_suspicions: u64,
    /// The detectors' state at the moment the peer went silent: last arrival (since the
    /// origin), mean and standard deviation of the intervals.
    pub sender_detector_at_silence: Option<(Duration, Duration, Duration)>,
    pub receiver_detector_at_silence: Option<(Duration, Duration, Duration)>,
    /// Hash of every datagram (time, direction, bytes) and event: the run's fingerprint.
    pub trace: u64,
}

/// Byte `i` of message `id`'s payload: bytes derived from the ID, so a message delivered
/// under the wrong ID is caught.
fn payload_byte(id: u64, i: usize) -> u8 {
    (id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> ((i % 8) * 8)) as u8 ^ i as u8
}

/// The payload of message `id`.
fn payload(id: u64, len: usize, out: &mut Vec<u8>) {
    out.clear();
    out.extend((0..len).map(|i| payload_byte(id, i)));
}

fn payload_matches(id: u64, len: usize, bytes: &[u8]) -> bool {
    bytes.len() == len
        && bytes
            .iter()
            .enumerate()
            .all(|(i, &b)| b == payload_byte(id, i))
}

/// Runs one simulation to completion (every message acknowledged or given up) or to a
/// declared death when `stop_on_death`; panics if it exceeds its step or time budget.
pub fn run(config: &SimConfig) -> Outcome {
    let origin = Instant::now();
    let mut now = origin;
    let mut forward = Link::new(config.forward, config.seed, origin);
    let mut backward = Link::new(config.backward, config.seed ^ 0x5eed_5eed, origin);
    let mut app_rng = fastrand::Rng::with_seed(config.seed.wrapping_add(1));
    let mut sender = Sender::new(config.sender.clone(), origin).expect("sender config");
    let mut receiver = Receiver::new(config.receiver.clone(), origin).expect("receiver config");
    let n = config.messages;
    let mut delivered_map = vec![false; n as usize];
    let mut trace = DefaultHasher::new();
    let mut out = Outcome {
        delivered: 0,
        duplicates_delivered: 0,
        corrupted: 0,
        undeliverable: Vec::new(),
        undeliverable_but_delivered: 0,
        all_accounted: false,
        elapsed: Duration::ZERO,
        steps: 0,
        max_in_flight: 0,
        max_in_flight_bytes: 0,
        max_window: (0, 0),
        sent: 0,
        retransmitted: 0,
        rto_fired: 0,
        acked_after_lost: 0,
        rtt_samples: 0,
        srtt: Duration::ZERO,
        received: 0,
        duplicates_seen: 0,
        out_of_order: 0,
        refused: 0,
        acks_sent: 0,
        acks_partial: 0,
        heartbeats: 0,
        datagrams_forward: 0,
        datagrams_backward: 0,
        sender_declared_unreachable: None,
        receiver_declared_dead: None,
        sender_suspicions: 0,
        receiver_suspicions: 0,
        sender_detector_at_silence: None,
        receiver_detector_at_silence: None,
        trace: 0,
    };
    let mut next_msg = 0u64;
    let mut stuck = 0u32;
    let mut burst_left = 0u64;
    let mut next_burst = origin;
    let mut scratch = Vec::new();
    let mut buf = vec![0u8; 65_536];
    let (mut sender_suspected, mut receiver_suspected) = (false, false);
    let max_in_flight = config.sender.window_messages;
    let max_in_flight_bytes = config.sender.window_bytes;
    let receiver_dies_at = config.receiver_dies_at.map(|d| origin + d);
    let sender_dies_at = config.sender_dies_at.map(|d| origin + d);

    loop {
        out.steps += 1;
        assert!(
            out.steps <= config.max_steps,
            "step budget exceeded: {out:?}"
        );
        assert!(
            now - origin <= config.max_time,
            "time budget exceeded at {:?}",
            now - origin
        );

        // Deaths: a dead endpoint is frozen, and the link towards it drops everything.
        let receiver_alive = receiver_dies_at.is_none_or(|t| now < t);
        let sender_alive = sender_dies_at.is_none_or(|t| now < t);
        if !receiver_alive && !forward.cut {
            forward.cut = true;
            let d = sender.liveness().detector();
            out.sender_detector_at_silence = d
                .last_heartbeat()
                .map(|last| (last - origin, d.mean(), d.std_deviation()));
        }
        if !sender_alive && !backward.cut {
            backward.cut = true;
            let d = receiver.liveness().detector();
            out.receiver_detector_at_silence = d
                .last_heartbeat()
                .map(|last| (last - origin, d.mean(), d.std_deviation()));
        }

        // The application sends.
        if sender_alive {
            loop {
                if next_msg == n {
                    break;
                }
                if let Workload::Bursty { burst, max_gap } = config.workload {
                    if burst_left == 0 {
                        if now < next_burst {
                            break;
                        }
                        burst_left = burst;
                        next_burst = now + max_gap.mul_f64(app_rng.f64());
                    }
                }
                payload(next_msg, config.payload_len, &mut scratch);
                match sender.send(now, (now - origin).as_micros() as u64, &scratch) {
                    Ok(id) => {
                        assert_eq!(id, next_msg);
                        next_msg += 1;
                        burst_left = burst_left.saturating_sub(1);
                    }
                    Err(SendError::Backpressure) => break,
                    Err(e) => panic!("send failed: {e}"),
                }
            }
        }

        // The sender transmits.
        let max = config.sender.max_datagram_size;
        while sender_alive && sender.has_pending_data() {
            let flags = if sender.wants_ack_now() {
                Flags::ACK_NOW
            } else {
                Flags::NONE
            };
            let header = Header {
                flags,
                ..Header::session(1)
            };
            let mut w = DatagramWriter::new(&mut buf, max, header).unwrap();
            if sender.write_data(now, &mut w) == 0 {
                break;
            }
            let len = w.finish();
            record(&mut trace, now - origin, 0, &buf[..len]);
            forward.send(now, &buf[..len]);
        }
        if sender.heartbeat_due(now) && sender_alive {
            let mut w = DatagramWriter::new(&mut buf, max, Header::session(1)).unwrap();
            assert!(sender.write_heartbeat(now, &mut w));
            let len = w.finish();
            record(&mut trace, now - origin, 0, &buf[..len]);
            forward.send(now, &buf[..len]);
        }

        // The receiver acknowledges.
        if receiver_alive && receiver.ack_due(now) {
            let max = config.receiver.max_datagram_size;
            let mut w = DatagramWriter::new(&mut buf, max, Header::session(1)).unwrap();
            if receiver.write_ack(now, &mut w) {
                let len = w.finish();
                record(&mut trace, now - origin, 1, &buf[..len]);
                backward.send(now, &buf[..len]);
            }
        }

        // Invariants, every step.
        assert!(sender.in_flight() <= max_in_flight);
        assert!(sender.in_flight_bytes() <= max_in_flight_bytes);
        let window = sender.window_usage();
        assert!(window.0 <= max_in_flight && window.1 <= max_in_flight_bytes);
        out.max_in_flight = out.max_in_flight.max(sender.in_flight());
        out.max_in_flight_bytes = out.max_in_flight_bytes.max(sender.in_flight_bytes());
        out.max_window = (
            out.max_window.0.max(window.0),
            out.max_window.1.max(window.1),
        );

        // Liveness bookkeeping.
        let s = sender.liveness().is_suspected(now);
        if s && !sender_suspected {
            out.sender_suspicions += 1;
        }
        sender_suspected = s;
        let r = receiver.liveness().is_suspected(now);
        if r && !receiver_suspected {
            out.receiver_suspicions += 1;
        }
        receiver_suspected = r;

        // Done?
        let finished = next_msg == n && sender.is_idle();
        let dead =
            out.sender_declared_unreachable.is_some() || out.receiver_declared_dead.is_some();
        if finished && !config.stop_on_death || config.stop_on_death && dead {
            break;
        }

        // Jump to the next deadline.
        let mut next = [
            forward.next_arrival(),
            backward.next_arrival(),
            sender.poll_timeout().filter(|_| sender_alive),
            receiver.poll_timeout().filter(|_| receiver_alive),
            receiver_dies_at.filter(|&t| t > now),
            sender_dies_at.filter(|&t| t > now),
        ]
        .into_iter()
        .flatten()
        .min()
        .expect("a live endpoint always has its liveness timer armed");
        let bursty = matches!(config.workload, Workload::Bursty { .. });
        if bursty && sender_alive && burst_left == 0 && next_msg < n && next_burst > now {
            next = next.min(next_burst);
        }
        if next <= now {
            stuck += 1;
            assert!(
                stuck < 1000,
                "time stuck at {:?}: links {:?} {:?}, sender {:?}, receiver {:?}, ack due {}, pending {}",
                now - origin,
                forward.next_arrival().map(|t| t - origin),
                backward.next_arrival().map(|t| t - origin),
                sender.poll_timeout().map(|t| t - origin),
                receiver.poll_timeout().map(|t| t - origin),
                receiver.ack_due(now),
                sender.has_pending_data(),
            );
        } else {
            stuck = 0;
        }
        now = now.max(next);

        // Arrivals (a dead endpoint receives nothing).
        let receiver_alive = receiver_dies_at.is_none_or(|t| now < t);
        let sender_alive = sender_dies_at.is_none_or(|t| now < t);
        while let Some(bytes) = forward.pop_arrived(now) {
            if !receiver_alive {
                continue;
            }
            record(&mut trace, now - origin, 2, &bytes);
            let datagram =
                Datagram::parse(&bytes, receiver.largest_received()).expect("valid DATA datagram");
            let ack_now = datagram.header.flags.contains(Flags::ACK_NOW);
            for frame in datagram.frames() {
                match frame {
                    Frame::Data(data) => {
                        receiver.handle_data(now, &data, ack_now, |m| {
                            if !payload_matches(m.id, config.payload_len, m.payload) {
                                out.corrupted += 1;
                                return;
                            }
                            let seen = &mut delivered_map[m.id as usize];
                            if *seen {
                                out.duplicates_delivered += 1;
                            } else {
                                *seen = true;
                                out.delivered += 1;
                            }
                        });
                    }
                    Frame::Heartbeat(_) => receiver.handle_heartbeat(now),
                    other => panic!("unexpected frame {other:?}"),
                }
            }
        }
        while let Some(bytes) = backward.pop_arrived(now) {
            if !sender_alive {
                continue;
            }
            record(&mut trace, now - origin, 3, &bytes);
            let datagram = Datagram::parse(&bytes, None).expect("valid ACK datagram");
            for frame in datagram.frames() {
                let Frame::Ack(ack) = frame else {
                    panic!("unexpected frame {frame:?}");
                };
                sender.handle_ack(now, &ack).expect("valid ACK");
            }
        }

        // Timers and events.
        if sender_alive {
            sender.handle_timeout(now);
        }
        if receiver_alive {
            receiver.handle_timeout(now);
        }
        while let Some(event) = sender.poll_event() {
            event.hash(&mut trace);
            match event {
                SenderEvent::Undeliverable { id } => out.undeliverable.push(id),
                SenderEvent::PeerUnreachable => {
                    out.sender_declared_unreachable.get_or_insert(now - origin);
                }
            }
        }
        while let Some(ReceiverEvent::PeerDead) = receiver.poll_event() {
            out.receiver_declared_dead.get_or_insert(now - origin);
            "dead".hash(&mut trace);
        }
    }

    out.elapsed = now - origin;
    out.undeliverable_but_delivered = out
        .undeliverable
        .iter()
        .filter(|&&id| delivered_map[id as usize])
        .count() as u64;
    out.all_accounted = {
        let mut accounted = delivered_map.clone();
        for &id in &out.undeliverable {
            accounted[id as usize] = true;
        }
        accounted.iter().all(|&b| b)
    };
    let s = sender.stats();
    out.sent = s.sent;
    out.retransmitted = s.retransmitted;
    out.rto_fired = s.rto_fired;
    out.acked_after_lost = s.acked_after_lost;
    out.rtt_samples = s.rtt_us.len();
    out.srtt = sender.rtt().smoothed();
    out.heartbeats = s.heartbeats;
    let r = receiver.stats();
    out.received = r.received;
    out.duplicates_seen = r.duplicates;
    out.out_of_order = r.out_of_order;
    out.refused = r.refused;
    out.acks_sent = r.acks_sent;
    out.acks_partial = r.acks_partial;
    out.datagrams_forward = forward.offered;
    out.datagrams_backward = backward.offered;
    out.trace = trace.finish();
    out
}

fn record(trace: &mut DefaultHasher, at: Duration, direction: u8, bytes: &[u8]) {
    at.hash(trace);
    direction.hash(trace);
    bytes.hash(trace);
}
