//! The application at both ends: the workload that feeds the sender, and the checker that
//! counts every delivery against a bitmap.

use std::time::Instant;

use realmq_common::sender::{EnqueueError, Sender};

use super::{SimConfig, Workload};

/// Byte `i` of message `id`'s payload: bytes derived from the ID, so a message delivered
/// under the wrong ID is caught.
fn payload_byte(id: u64, i: usize) -> u8 {
    (id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> ((i % 8) * 8)) as u8 ^ i as u8
}

/// What the receiving application saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Deliveries {
    /// Distinct messages delivered.
    pub(crate) delivered: u64,
    /// Deliveries of a message already delivered (must be 0).
    pub(crate) duplicates: u64,
    /// Messages whose payload did not match their ID (must be 0).
    pub(crate) corrupted: u64,
}

/// The sending application (a [`Workload`]) and the receiving one (a bitmap of delivered
/// IDs).
pub(crate) struct App {
    workload: Workload,
    messages: u64,
    payload_len: usize,
    rng: fastrand::Rng,
    /// The ID of the next message to send; also how many were sent.
    next_id: u64,
    /// Messages left in the current burst.
    burst_left: u64,
    /// When the next burst may start.
    next_burst: Instant,
    scratch: Vec<u8>,
    delivered: Vec<bool>,
    deliveries: Deliveries,
}

impl App {
    pub(crate) fn new(config: &SimConfig, origin: Instant) -> Self {
        Self {
            workload: config.workload,
            messages: config.messages,
            payload_len: config.payload_len,
            rng: fastrand::Rng::with_seed(config.seed.wrapping_add(1)),
            next_id: 0,
            burst_left: 0,
            next_burst: origin,
            scratch: Vec::with_capacity(config.payload_len),
            delivered: vec![false; config.messages as usize],
            deliveries: Deliveries::default(),
        }
    }

    /// Whether every message has been handed to the sender.
    pub(crate) fn all_sent(&self) -> bool {
        self.next_id == self.messages
    }

    /// Hands the sender as many messages as the workload and back-pressure allow at `now`.
    /// Each carries its send time since `origin` as its timestamp.
    pub(crate) fn offer(&mut self, now: Instant, origin: Instant, sender: &mut Sender) {
        while !self.all_sent() {
            if let Workload::Bursty { burst, max_gap } = self.workload {
                if self.burst_left == 0 {
                    if now < self.next_burst {
                        break;
                    }
                    self.burst_left = burst;
                    self.next_burst = now + max_gap.mul_f64(self.rng.f64());
                }
            }
            let id = self.next_id;
            self.scratch.clear();
            self.scratch
                .extend((0..self.payload_len).map(|i| payload_byte(id, i)));
            match sender.send((now - origin).as_micros() as u64, &self.scratch) {
                Ok(sent) => {
                    assert_eq!(sent, id, "IDs are consecutive from 0");
                    self.next_id += 1;
                    self.burst_left = self.burst_left.saturating_sub(1);
                }
                Err(EnqueueError::Backpressure) => break,
                Err(e) => panic!("send failed: {e}"),
            }
        }
    }

    /// When the application wants to send next although nothing else happens: the start of
    /// the next burst, while it waits for one.
    pub(crate) fn wakeup(&self, now: Instant) -> Option<Instant> {
        let waiting = matches!(self.workload, Workload::Bursty { .. })
            && self.burst_left == 0
            && !self.all_sent()
            && self.next_burst > now;
        waiting.then_some(self.next_burst)
    }

    /// Checks and counts one delivered message.
    pub(crate) fn on_delivery(&mut self, id: u64, payload: &[u8]) {
        let intact = payload.len() == self.payload_len
            && payload
                .iter()
                .enumerate()
                .all(|(i, &b)| b == payload_byte(id, i));
        if !intact {
            self.deliveries.corrupted += 1;
            return;
        }
        let seen = &mut self.delivered[id as usize];
        if *seen {
            self.deliveries.duplicates += 1;
        } else {
            *seen = true;
            self.deliveries.delivered += 1;
        }
    }

    /// What was delivered so far.
    pub(crate) fn deliveries(&self) -> Deliveries {
        self.deliveries
    }

    /// Whether every message was delivered or is in `undeliverable`.
    pub(crate) fn all_accounted(&self, undeliverable: &[u64]) -> bool {
        let mut accounted = self.delivered.clone();
        for &id in undeliverable {
            accounted[id as usize] = true;
        }
        accounted.iter().all(|&b| b)
    }
}
