//! One direction of a simulated network path: a seeded RNG, a configuration of impairments
//! and a queue of datagrams ordered by arrival time.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::ops::Range;
use std::time::{Duration, Instant};

/// The impairments of one direction of a [`Link`].
///
/// Each datagram offered at `now` is, in this order: put on the wire once the wire is free
/// (`serialization` per datagram); dropped with probability `loss`; duplicated with
/// probability `duplicate`; then each copy is delayed by `delay` plus a uniform share of
/// `jitter`, never arriving before a copy that entered earlier (first-in first-out), unless
/// it leaves the queue order: `reorder` (an extra `[0, reorder_delay)`) and `hold_back` (an
/// extra `[hold_back_min, hold_back_max)`) let later datagrams overtake it.
///
/// `hold_back` draws from the RNG only when it is above 0, so a configuration without it
/// replays, datagram for datagram, the runs its seed gave before the impairment existed.
#[derive(Debug, Clone, Copy, PartialEq)]
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
    /// The most a reordered datagram is held back.
    pub reorder_delay: Duration,
    /// Probability that a datagram is held back far longer than reordering would: by a
    /// further uniform `[hold_back_min, hold_back_max)` (a datagram stuck in a buffer, a
    /// route flap), so that it may arrive after its sender gave up on it, or after the session
    /// ended. Like a reordered one it leaves the queue order. Set with
    /// [`with_hold_back`](Self::with_hold_back).
    pub hold_back: f64,
    /// The least extra delay of a held-back datagram.
    pub hold_back_min: Duration,
    /// The bound (exclusive) of the extra delay of a held-back datagram.
    pub hold_back_max: Duration,
    /// Time to put one datagram on the wire: the link carries at most one datagram per
    /// `serialization`, queueing the rest (no queue limit). Zero: no rate limit.
    pub serialization: Duration,
}

impl LinkConfig {
    /// A perfect link: every datagram arrives once, in order, exactly `delay` after it was
    /// offered.
    pub fn fixed(delay: Duration) -> Self {
        Self {
            loss: 0.0,
            duplicate: 0.0,
            delay,
            jitter: Duration::ZERO,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
            hold_back: 0.0,
            hold_back_min: Duration::ZERO,
            hold_back_max: Duration::ZERO,
            serialization: Duration::ZERO,
        }
    }

    /// A LAN-like link: 1 ms one way plus up to 0.5 ms of jitter, 10 µs per datagram
    /// (~1.2 Gbit/s of full datagrams), 1 % of datagrams reordered by up to 1 ms, 1 %
    /// duplicated, and the given loss.
    pub fn lan(loss: f64) -> Self {
        Self {
            loss,
            duplicate: 0.01,
            jitter: Duration::from_micros(500),
            reorder: 0.01,
            reorder_delay: Duration::from_millis(1),
            serialization: Duration::from_micros(10),
            ..Self::fixed(Duration::from_millis(1))
        }
    }

    /// This link with a share `share` of the datagrams held back by an extra delay drawn
    /// uniformly from `extra` (say 50 ms..700 ms, or up to 10 s).
    ///
    /// # Panics
    ///
    /// If `share` is not a probability or `extra` is empty.
    pub fn with_hold_back(self, share: f64, extra: Range<Duration>) -> Self {
        assert!(
            (0.0..=1.0).contains(&share),
            "share {share} is not in [0, 1]"
        );
        assert!(extra.start < extra.end, "empty hold-back range {extra:?}");
        Self {
            hold_back: share,
            hold_back_min: extra.start,
            hold_back_max: extra.end,
            ..self
        }
    }

    /// The round trip over this link and `back` without queueing, mean jitter included.
    pub fn mean_rtt(&self, back: &LinkConfig) -> Duration {
        self.delay + self.jitter / 2 + back.delay + back.jitter / 2
    }
}

/// What a [`Link`] did with the datagrams offered to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Datagrams offered.
    pub offered: u64,
    /// Datagrams dropped (lost, or offered while the link was cut).
    pub dropped: u64,
    /// Datagrams delivered twice.
    pub duplicated: u64,
    /// Copies that left the queue order by `reorder`.
    pub reordered: u64,
    /// Copies held back by `hold_back`.
    pub held_back: u64,
    /// Copies taken out with [`Link::pop_arrived`].
    pub arrived: u64,
}

/// A datagram that has arrived, from [`Link::pop_arrived`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival<T> {
    /// When it arrived (at or before the `now` it was popped at).
    pub at: Instant,
    /// The tag it was sent with: where it came from or goes to, when several endpoints share
    /// the link.
    pub tag: T,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// A datagram on its way.
#[derive(Debug)]
struct InFlight<T> {
    arrival: Instant,
    /// Tie-breaker: the order copies entered the link.
    seq: u64,
    tag: T,
    bytes: Vec<u8>,
}

impl<T> InFlight<T> {
    fn key(&self) -> (Instant, u64) {
        (self.arrival, self.seq)
    }
}

impl<T> PartialEq for InFlight<T> {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl<T> Eq for InFlight<T> {}

impl<T> PartialOrd for InFlight<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for InFlight<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// One direction of a simulated network path, sans-IO.
///
/// # Contract
///
/// - **Inputs**: [`send`](Self::send) (or [`send_tagged`](Self::send_tagged)) a datagram at
///   `now`; [`set_cut`](Self::set_cut) to drop everything (a peer gone, a cable pulled).
/// - **Outputs**: [`next_arrival`](Self::next_arrival) is the instant to jump simulated
///   time to; [`pop_arrived`](Self::pop_arrived) gives the datagrams that arrived by `now`,
///   in arrival order (ties in the order they entered).
///
/// `T` is a tag carried with each datagram, for links shared by several endpoints (the
/// client index, say); `()` when there is one endpoint at each end.
///
/// Deterministic: the same configuration, seed and calls give the same arrivals.
#[derive(Debug)]
pub struct Link<T = ()> {
    config: LinkConfig,
    rng: fastrand::Rng,
    queue: BinaryHeap<Reverse<InFlight<T>>>,
    /// When the wire is free for the next datagram.
    free_at: Option<Instant>,
    /// The latest in-order arrival so far: jitter never takes a datagram before it.
    fifo_arrival: Option<Instant>,
    seq: u64,
    cut: bool,
    stats: LinkStats,
}

impl<T: Clone> Link<T> {
    /// An empty link with `config`, drawing its randomness from `seed`.
    pub fn new(config: LinkConfig, seed: u64) -> Self {
        Self {
            config,
            rng: fastrand::Rng::with_seed(seed),
            queue: BinaryHeap::new(),
            free_at: None,
            fifo_arrival: None,
            seq: 0,
            cut: false,
            stats: LinkStats::default(),
        }
    }

    /// The impairments.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Changes the impairments for datagrams offered from now on (those in flight keep their
    /// arrival times).
    pub fn set_config(&mut self, config: LinkConfig) {
        self.config = config;
    }

    /// While `cut`, every datagram offered is dropped (those in flight still arrive).
    pub fn set_cut(&mut self, cut: bool) {
        self.cut = cut;
    }

    /// Whether the link is cut.
    pub fn is_cut(&self) -> bool {
        self.cut
    }

    /// What the link did so far.
    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    /// Copies in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Offers a datagram tagged `tag` at `now`.
    pub fn send_tagged(&mut self, now: Instant, tag: T, bytes: &[u8]) {
        self.stats.offered += 1;
        let departs = self.free_at.map_or(now, |free| free.max(now)) + self.config.serialization;
        self.free_at = Some(departs);
        if self.cut || self.rng.f64() < self.config.loss {
            self.stats.dropped += 1;
            return;
        }
        let copies = if self.rng.f64() < self.config.duplicate {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let arrival = self.on_copy(departs);
            self.seq += 1;
            self.queue.push(Reverse(InFlight {
                arrival,
                seq: self.seq,
                tag: tag.clone(),
                bytes: bytes.to_vec(),
            }));
        }
    }

    /// The arrival time of one copy that leaves the wire at `departs`.
    fn on_copy(&mut self, departs: Instant) -> Instant {
        let config = self.config;
        let jitter = config.jitter.mul_f64(self.rng.f64());
        let in_order = departs + config.delay + jitter;
        let in_order = self
            .fifo_arrival
            .map_or(in_order, |fifo| in_order.max(fifo));
        let mut detour = None;
        if self.rng.f64() < config.reorder {
            self.stats.reordered += 1;
            detour = Some(config.reorder_delay.mul_f64(self.rng.f64()));
        }
        if config.hold_back > 0.0 && self.rng.f64() < config.hold_back {
            self.stats.held_back += 1;
            let span = config.hold_back_max.saturating_sub(config.hold_back_min);
            let extra = config.hold_back_min + span.mul_f64(self.rng.f64());
            detour = Some(detour.unwrap_or_default() + extra);
        }
        match detour {
            Some(extra) => in_order + extra,
            None => {
                self.fifo_arrival = Some(in_order);
                in_order
            }
        }
    }

    /// When the next datagram arrives, if any is in flight.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse(d)| d.arrival)
    }

    /// The next datagram that has arrived by `now`.
    pub fn pop_arrived(&mut self, now: Instant) -> Option<Arrival<T>> {
        if self.next_arrival()? > now {
            return None;
        }
        let Reverse(d) = self.queue.pop()?;
        self.stats.arrived += 1;
        Some(Arrival {
            at: d.arrival,
            tag: d.tag,
            bytes: d.bytes,
        })
    }
}

impl Link<()> {
    /// Offers a datagram at `now` (a link with one endpoint at each end).
    pub fn send(&mut self, now: Instant, bytes: &[u8]) {
        self.send_tagged(now, (), bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn drain<T: Clone>(link: &mut Link<T>, until: Instant) -> Vec<Arrival<T>> {
        std::iter::from_fn(|| link.pop_arrived(until)).collect()
    }

    #[test]
    fn a_fixed_link_delivers_everything_in_order_after_the_delay() {
        let t0 = Instant::now();
        let mut link = Link::new(LinkConfig::fixed(5 * MS), 1);
        for i in 0..10u8 {
            link.send_tagged(t0 + MS * u32::from(i), i, &[i]);
        }
        assert_eq!(link.next_arrival(), Some(t0 + 5 * MS));
        assert!(link.pop_arrived(t0 + 4 * MS).is_none());
        let got = drain(&mut link, t0 + Duration::from_secs(1));
        let tags: Vec<u8> = got.iter().map(|a| a.tag).collect();
        assert_eq!(tags, (0..10).collect::<Vec<_>>());
        assert!(got
            .iter()
            .all(|a| a.at == t0 + MS * u32::from(a.tag) + 5 * MS && a.bytes == [a.tag]));
        assert_eq!(link.stats().arrived, 10);
    }

    #[test]
    fn serialization_spaces_datagrams_out() {
        let t0 = Instant::now();
        let config = LinkConfig {
            serialization: MS,
            ..LinkConfig::fixed(Duration::ZERO)
        };
        let mut link = Link::new(config, 1);
        for _ in 0..3 {
            link.send(t0, b"x");
        }
        let times: Vec<Instant> = drain(&mut link, t0 + MS * 10)
            .iter()
            .map(|a| a.at)
            .collect();
        assert_eq!(times, [t0 + MS, t0 + MS * 2, t0 + MS * 3]);
    }

    #[test]
    fn jitter_alone_keeps_the_order() {
        let t0 = Instant::now();
        let config = LinkConfig {
            jitter: 10 * MS,
            ..LinkConfig::fixed(MS)
        };
        let mut link = Link::new(config, 3);
        for i in 0..1000u32 {
            link.send_tagged(t0 + Duration::from_micros(u64::from(i)), i, b"");
        }
        let tags: Vec<u32> = drain(&mut link, t0 + MS * 100)
            .iter()
            .map(|a| a.tag)
            .collect();
        assert_eq!(tags, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn loss_and_duplication_follow_their_probabilities() {
        let t0 = Instant::now();
        let config = LinkConfig {
            loss: 0.2,
            duplicate: 0.1,
            ..LinkConfig::fixed(MS)
        };
        let mut link = Link::new(config, 4);
        for _ in 0..10_000 {
            link.send(t0, b"x");
        }
        let s = *link.stats();
        assert!((1800..2200).contains(&s.dropped), "{s:?}");
        assert!((700..900).contains(&s.duplicated), "{s:?}");
        let arrived = drain(&mut link, t0 + MS).len() as u64;
        assert_eq!(arrived, s.offered - s.dropped + s.duplicated);
    }

    #[test]
    fn held_back_datagrams_arrive_late_within_their_range() {
        let t0 = Instant::now();
        let config = LinkConfig::fixed(MS).with_hold_back(0.1, 50 * MS..700 * MS);
        let mut link = Link::new(config, 5);
        for i in 0..2000u32 {
            link.send_tagged(t0, i, b"");
        }
        let got = drain(&mut link, t0 + Duration::from_secs(1));
        assert_eq!(got.len(), 2000);
        let late: Vec<&Arrival<u32>> = got.iter().filter(|a| a.at > t0 + MS).collect();
        assert_eq!(late.len() as u64, link.stats().held_back);
        assert!((150..250).contains(&late.len()), "{}", late.len());
        assert!(late
            .iter()
            .all(|a| a.at >= t0 + 51 * MS && a.at < t0 + 701 * MS));
        // Everything else kept its order and overtook the held-back ones.
        let on_time: Vec<u32> = got.iter().take(2000 - late.len()).map(|a| a.tag).collect();
        assert!(on_time.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_cut_link_drops_what_is_offered_and_delivers_what_is_in_flight() {
        let t0 = Instant::now();
        let mut link = Link::new(LinkConfig::fixed(MS), 6);
        link.send(t0, b"a");
        link.set_cut(true);
        link.send(t0, b"b");
        assert_eq!(link.stats().dropped, 1);
        let got = drain(&mut link, t0 + MS);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].bytes, b"a");
    }

    #[test]
    fn the_same_seed_gives_the_same_arrivals() {
        let t0 = Instant::now();
        let config = LinkConfig::lan(0.1).with_hold_back(0.05, 10 * MS..50 * MS);
        let run = |seed| {
            let mut link = Link::new(config, seed);
            for i in 0..500u32 {
                link.send_tagged(t0 + Duration::from_micros(u64::from(i) * 7), i, b"");
            }
            drain(&mut link, t0 + Duration::from_secs(1))
                .into_iter()
                .map(|a| (a.at, a.tag))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }
}
