//! A seeded coin that drops outgoing datagrams before they reach the socket: the binaries'
//! `--simulate-loss` testing aid, in the spirit of Aeron's debug loss generators. (Loss
//! *detection*, the QoS side, is `sender::loss`; this only makes loss happen.)

/// Decides, datagram by datagram, whether to drop it. Deterministic for a given seed.
#[derive(Debug, Clone)]
pub struct DropSim {
    probability: f64,
    rng: fastrand::Rng,
    dropped: u64,
}

impl DropSim {
    /// Drops `percent` (0..=100) of the datagrams, drawing from a generator seeded with
    /// `seed`.
    pub fn new(percent: f64, seed: u64) -> Self {
        Self {
            probability: (percent / 100.0).clamp(0.0, 1.0),
            rng: fastrand::Rng::with_seed(seed),
            dropped: 0,
        }
    }

    /// Whether the next datagram is to be dropped (and counts it if so).
    pub fn drop_next(&mut self) -> bool {
        if self.probability == 0.0 {
            return false;
        }
        let drop = self.rng.f64() < self.probability;
        self.dropped += u64::from(drop);
        drop
    }

    /// Whether it drops any datagram at all.
    pub fn drops_any(&self) -> bool {
        self.probability > 0.0
    }

    /// Datagrams dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_about_the_asked_share_and_repeats_with_the_seed() {
        let mut a = DropSim::new(10.0, 7);
        let mut b = DropSim::new(10.0, 7);
        let pattern_a: Vec<bool> = (0..10_000).map(|_| a.drop_next()).collect();
        let pattern_b: Vec<bool> = (0..10_000).map(|_| b.drop_next()).collect();
        assert_eq!(pattern_a, pattern_b);
        assert!((800..1_200).contains(&a.dropped()), "{}", a.dropped());
    }

    #[test]
    fn zero_and_hundred_percent_are_exact() {
        let mut none = DropSim::new(0.0, 1);
        let mut all = DropSim::new(100.0, 1);
        assert!((0..1_000).all(|_| !none.drop_next() && all.drop_next()));
    }
}
