//! [`Sim`]: a sender and a receiver, two links and simulated time.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use realmq_common::liveness::PeerLiveness;
use realmq_common::receiver::{Receiver, ReceiverEvent};
use realmq_common::sender::{Sender, SenderEvent};
use realmq_common::sim::Link;
use realmq_proto::{Datagram, DatagramWriter, Flags, Frame, Header};

use super::app::App;
use super::{DetectorSnapshot, Outcome, PeerView, SimConfig};

/// The session ID every datagram carries.
const SESSION: u32 = 1;

/// Trace tags: which way a datagram went, and whether it was sent or received.
#[derive(Hash)]
enum Trace {
    DataSent,
    AckSent,
    DataReceived,
    AckReceived,
}

/// A [`Sender`] and a [`Receiver`] joined by a forward and a backward [`Link`], in simulated
/// time (quinn-proto's test `Pair`, for the QoS engine).
///
/// A step is: jump `now` to the next deadline (earliest link arrival, either side's
/// `poll_timeout`, a scheduled death, the application's next burst); deliver what arrived;
/// fire due timers and collect events; then let the application send and both sides
/// transmit at the new `now`. Invariants (window bounds) are checked every step.
///
/// Drive it with [`drive`](Self::drive) (to completion), [`run_until`](Self::run_until) (to
/// any condition) or [`step`](Self::step); read it with the per-side helpers
/// ([`sender`](Self::sender), [`receiver`](Self::receiver)) and [`outcome`](Self::outcome).
pub(crate) struct Sim {
    config: SimConfig,
    origin: Instant,
    now: Instant,
    sender: Sender,
    receiver: Receiver,
    /// Sender to receiver.
    forward: Link,
    /// Receiver to sender.
    backward: Link,
    app: App,
    sender_dies_at: Option<Instant>,
    receiver_dies_at: Option<Instant>,
    sender_view: Watch,
    receiver_view: Watch,
    undeliverable: Vec<u64>,
    steps: u64,
    /// Consecutive steps that found no later deadline.
    stuck: u32,
    max_in_flight: (usize, usize),
    trace: DefaultHasher,
    buf: Vec<u8>,
}

/// One side's view of its peer, with the state needed to count rising edges.
#[derive(Default)]
struct Watch {
    view: PeerView,
    suspected: bool,
}

impl Watch {
    /// Samples the suspicion level: counts a rising edge of φ ≥ threshold.
    fn sample(&mut self, liveness: &PeerLiveness, now: Instant) {
        let suspected = liveness.is_suspected(now);
        if suspected && !self.suspected {
            self.view.suspicions += 1;
        }
        self.suspected = suspected;
    }

    /// Records the detector's state at the moment the peer died.
    fn peer_died(&mut self, liveness: &PeerLiveness, origin: Instant) {
        let d = liveness.detector();
        self.view.at_peer_death = d.last_heartbeat().map(|last| DetectorSnapshot {
            last_arrival: last - origin,
            mean: d.mean(),
            std_deviation: d.std_deviation(),
        });
    }

    fn declared_gone(&mut self, since_origin: Duration) {
        self.view.declared_gone.get_or_insert(since_origin);
    }
}

impl Sim {
    /// Both sides and both links, fresh; `now` is the origin.
    pub(crate) fn new(config: SimConfig) -> Self {
        let origin = Instant::now();
        Self {
            sender: Sender::new(config.sender.clone(), origin).expect("sender config"),
            receiver: Receiver::new(config.receiver.clone(), origin).expect("receiver config"),
            forward: Link::new(config.forward, config.seed),
            backward: Link::new(config.backward, config.seed ^ 0x5eed_5eed),
            app: App::new(&config, origin),
            sender_dies_at: config.sender_dies_at.map(|d| origin + d),
            receiver_dies_at: config.receiver_dies_at.map(|d| origin + d),
            sender_view: Watch::default(),
            receiver_view: Watch::default(),
            undeliverable: Vec::new(),
            steps: 0,
            stuck: 0,
            max_in_flight: (0, 0),
            trace: DefaultHasher::new(),
            buf: vec![0u8; 65_536],
            config,
            origin,
            now: origin,
        }
    }

    /// Simulated time since the origin.
    pub(crate) fn elapsed(&self) -> Duration {
        self.now - self.origin
    }

    /// The sending side.
    pub(crate) fn sender(&self) -> &Sender {
        &self.sender
    }

    /// The receiving side.
    pub(crate) fn receiver(&self) -> &Receiver {
        &self.receiver
    }

    /// Whether the sender has not died (yet).
    pub(crate) fn sender_alive(&self) -> bool {
        self.sender_dies_at.is_none_or(|t| self.now < t)
    }

    /// Whether the receiver has not died (yet).
    pub(crate) fn receiver_alive(&self) -> bool {
        self.receiver_dies_at.is_none_or(|t| self.now < t)
    }

    /// Whether the application has sent everything and the sender has nothing left in
    /// flight (every message acknowledged or given up).
    pub(crate) fn is_finished(&self) -> bool {
        self.app.all_sent() && self.sender.is_idle()
    }

    /// Whether either side has declared the other gone.
    pub(crate) fn peer_declared_gone(&self) -> bool {
        self.sender_view.view.declared_gone.is_some()
            || self.receiver_view.view.declared_gone.is_some()
    }

    /// Whether no datagram is in flight either way.
    pub(crate) fn links_empty(&self) -> bool {
        self.forward.in_flight() == 0 && self.backward.in_flight() == 0
    }

    /// Runs until [`is_finished`](Self::is_finished).
    pub(crate) fn drive(&mut self) {
        self.run_until(Self::is_finished);
    }

    /// Lets both sides act at `now`, then steps until `done` holds after a step. Panics if
    /// the run exceeds its step or time budget, or time stops advancing.
    pub(crate) fn run_until(&mut self, mut done: impl FnMut(&Self) -> bool) {
        self.transmit();
        while !done(self) {
            self.step();
        }
    }

    /// One step: jump to the next deadline, take arrivals, fire timers, collect events, then
    /// let both sides transmit.
    pub(crate) fn step(&mut self) {
        self.advance();
        self.transmit();
    }

    /// What the run did so far.
    pub(crate) fn outcome(&self) -> Outcome {
        Outcome {
            deliveries: self.app.deliveries(),
            undeliverable: self.undeliverable.clone(),
            all_accounted: self.app.all_accounted(&self.undeliverable),
            elapsed: self.elapsed(),
            steps: self.steps,
            max_in_flight: self.max_in_flight,
            sender: self.sender.stats().clone(),
            receiver: *self.receiver.stats(),
            sender_view: self.sender_view.view,
            receiver_view: self.receiver_view.view,
            forward: *self.forward.stats(),
            backward: *self.backward.stats(),
            trace: self.trace.clone().finish(),
        }
    }

    /// Everything both sides do at `now`: deaths take effect, the application sends, the
    /// sender writes DATA and HEARTBEAT, the receiver writes an ACK; then the invariants.
    fn transmit(&mut self) {
        self.steps += 1;
        assert!(
            self.steps <= self.config.max_steps,
            "step budget exceeded at {:?}",
            self.elapsed()
        );
        assert!(
            self.elapsed() <= self.config.max_time,
            "time budget exceeded at {:?}",
            self.elapsed()
        );
        self.bury_the_dead();
        if self.sender_alive() {
            self.app.offer(self.now, self.origin, &mut self.sender);
            self.send_data();
            self.send_heartbeat();
        }
        if self.receiver_alive() {
            self.send_ack();
        }
        self.check_invariants();
        self.sender_view.sample(self.sender.liveness(), self.now);
        self.receiver_view
            .sample(self.receiver.liveness(), self.now);
    }

    /// A dead side is frozen and the link towards it drops everything; its peer's detector
    /// state is recorded at that moment.
    fn bury_the_dead(&mut self) {
        if !self.receiver_alive() && !self.forward.is_cut() {
            self.forward.set_cut(true);
            self.sender_view
                .peer_died(self.sender.liveness(), self.origin);
        }
        if !self.sender_alive() && !self.backward.is_cut() {
            self.backward.set_cut(true);
            self.receiver_view
                .peer_died(self.receiver.liveness(), self.origin);
        }
    }

    /// Puts one datagram from `buf[..len]` on a link, tracing it.
    fn put_on(&mut self, forward: bool, len: usize) {
        let (link, tag) = if forward {
            (&mut self.forward, Trace::DataSent)
        } else {
            (&mut self.backward, Trace::AckSent)
        };
        record(
            &mut self.trace,
            self.now - self.origin,
            tag,
            &self.buf[..len],
        );
        link.send(self.now, &self.buf[..len]);
    }

    /// The sender fills DATA datagrams while it has something to send.
    fn send_data(&mut self) {
        let max = self.config.sender.max_datagram_size;
        while self.sender.has_pending_data() {
            let flags = if self.sender.wants_ack_now() {
                Flags::ACK_NOW
            } else {
                Flags::NONE
            };
            let header = Header {
                flags,
                ..Header::session(SESSION)
            };
            let mut w = DatagramWriter::new(&mut self.buf, max, header).expect("writer");
            if self.sender.write_data(self.now, &mut w) == 0 {
                break;
            }
            let len = w.finish();
            self.put_on(true, len);
        }
    }

    /// The sender writes a HEARTBEAT when one is due.
    fn send_heartbeat(&mut self) {
        if !self.sender.heartbeat_due(self.now) {
            return;
        }
        let max = self.config.sender.max_datagram_size;
        let mut w =
            DatagramWriter::new(&mut self.buf, max, Header::session(SESSION)).expect("writer");
        assert!(self.sender.write_heartbeat(self.now, &mut w));
        let len = w.finish();
        self.put_on(true, len);
    }

    /// The receiver writes an ACK when one is due.
    fn send_ack(&mut self) {
        if !self.receiver.ack_due(self.now) {
            return;
        }
        let max = self.config.receiver.max_datagram_size;
        let mut w =
            DatagramWriter::new(&mut self.buf, max, Header::session(SESSION)).expect("writer");
        if self.receiver.write_ack(self.now, &mut w) {
            let len = w.finish();
            self.put_on(false, len);
        }
    }

    /// The window bounds hold at every step.
    fn check_invariants(&mut self) {
        let (max_messages, max_bytes) = (
            self.config.sender.window_messages,
            self.config.sender.window_bytes,
        );
        let (in_flight, in_flight_bytes) = (self.sender.in_flight(), self.sender.in_flight_bytes());
        assert!(in_flight <= max_messages, "{in_flight} messages in flight");
        assert!(
            in_flight_bytes <= max_bytes,
            "{in_flight_bytes} bytes in flight"
        );
        let (window, window_bytes) = self.sender.window_usage();
        assert!(window <= max_messages && window_bytes <= max_bytes);
        self.max_in_flight = (
            self.max_in_flight.0.max(in_flight),
            self.max_in_flight.1.max(in_flight_bytes),
        );
    }

    /// The earliest deadline: link arrivals, live sides' timers, scheduled deaths, the
    /// application's next burst.
    fn next_deadline(&self) -> Instant {
        let now = self.now;
        let sender_alive = self.sender_alive();
        let app = self.app.wakeup(now).filter(|_| sender_alive);
        [
            self.forward.next_arrival(),
            self.backward.next_arrival(),
            self.sender.poll_timeout().filter(|_| sender_alive),
            self.receiver
                .poll_timeout()
                .filter(|_| self.receiver_alive()),
            self.receiver_dies_at.filter(|&t| t > now),
            self.sender_dies_at.filter(|&t| t > now),
            app,
        ]
        .into_iter()
        .flatten()
        .min()
        .expect("a live endpoint always has its liveness timer armed")
    }

    /// Jumps to the next deadline and handles everything due by then.
    fn advance(&mut self) {
        let next = self.next_deadline();
        if next <= self.now {
            self.stuck += 1;
            assert!(self.stuck < 1000, "time stuck: {}", self.describe());
        } else {
            self.stuck = 0;
        }
        self.now = self.now.max(next);
        self.receive_data();
        self.receive_acks();
        self.fire_timers();
    }

    /// The state that decides the next deadline, for a failure message.
    fn describe(&self) -> String {
        let since = |t: Option<Instant>| t.map(|t| t - self.origin);
        format!(
            "at {:?}: links {:?} {:?}, sender {:?}, receiver {:?}, ack due {}, pending {}",
            self.elapsed(),
            since(self.forward.next_arrival()),
            since(self.backward.next_arrival()),
            since(self.sender.poll_timeout()),
            since(self.receiver.poll_timeout()),
            self.receiver.ack_due(self.now),
            self.sender.has_pending_data(),
        )
    }

    /// Datagrams that reached the receiver (a dead one receives nothing).
    fn receive_data(&mut self) {
        let now = self.now;
        let alive = self.receiver_alive();
        while let Some(arrival) = self.forward.pop_arrived(now) {
            if !alive {
                continue;
            }
            let bytes = arrival.bytes;
            record(
                &mut self.trace,
                now - self.origin,
                Trace::DataReceived,
                &bytes,
            );
            let datagram = Datagram::parse(&bytes).expect("valid DATA datagram");
            let flags = datagram.header.flags;
            for frame in datagram.frames() {
                match frame {
                    Frame::Data(data) => {
                        let app = &mut self.app;
                        self.receiver
                            .handle_data(now, &data, flags, |m| app.on_delivery(m.id, m.payload));
                    }
                    Frame::Heartbeat(_) => self.receiver.handle_heartbeat(now),
                    other => panic!("unexpected frame {other:?}"),
                }
            }
        }
    }

    /// ACKs that reached the sender (a dead one receives nothing).
    fn receive_acks(&mut self) {
        let now = self.now;
        let alive = self.sender_alive();
        while let Some(arrival) = self.backward.pop_arrived(now) {
            if !alive {
                continue;
            }
            record(
                &mut self.trace,
                now - self.origin,
                Trace::AckReceived,
                &arrival.bytes,
            );
            let datagram = Datagram::parse(&arrival.bytes).expect("valid ACK datagram");
            for frame in datagram.frames() {
                let Frame::Ack(ack) = frame else {
                    panic!("unexpected frame {frame:?}");
                };
                self.sender.handle_ack(now, &ack).expect("valid ACK");
            }
        }
    }

    /// Live sides handle their timers; their events are traced and recorded.
    fn fire_timers(&mut self) {
        let now = self.now;
        let since_origin = now - self.origin;
        if self.sender_alive() {
            self.sender.handle_timeout(now);
        }
        if self.receiver_alive() {
            self.receiver.handle_timeout(now);
        }
        while let Some(event) = self.sender.poll_event() {
            event.hash(&mut self.trace);
            match event {
                SenderEvent::Undeliverable { id } => self.undeliverable.push(id),
                SenderEvent::PeerUnreachable => self.sender_view.declared_gone(since_origin),
                SenderEvent::ProtocolViolation => {
                    panic!("an honest receiver violated the protocol")
                }
            }
        }
        while let Some(ReceiverEvent::PeerDead) = self.receiver.poll_event() {
            self.receiver_view.declared_gone(since_origin);
            "dead".hash(&mut self.trace);
        }
    }
}

/// Adds one datagram to the run's fingerprint.
fn record(trace: &mut DefaultHasher, at: Duration, what: Trace, bytes: &[u8]) {
    at.hash(trace);
    what.hash(trace);
    bytes.hash(trace);
}
