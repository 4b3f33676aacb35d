//! Round-trip time estimation and the retransmission timeout.
//!
//! The estimator follows RFC 9002 §5 (which refines RFC 6298 §2 with a minimum RTT and the
//! peer's ACK delay); the timeout follows RFC 6298 §2 with RFC 9002 §6.2.1's `max_ack_delay`
//! term and RFC 6298 §5.5's exponential backoff. Karn's rule (RFC 6298 §3: never sample a
//! retransmitted message) is the caller's job: only it knows what was resent.

use std::time::Duration;

/// Smoothed RTT, RTT variance, minimum and latest RTT (RFC 9002 §5).
///
/// Contract: feed each RTT sample with [`on_sample`](Self::on_sample); read the estimates and
/// [`rto`](Self::rto) whenever a timer is armed. Pure arithmetic: no clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RttEstimator {
    /// RFC 9002 `smoothed_rtt`, the initial RTT until the first sample.
    smoothed: Duration,
    /// RFC 9002 `rttvar`, half the initial RTT until the first sample.
    var: Duration,
    /// RFC 9002 `min_rtt`, `None` until the first sample.
    min: Option<Duration>,
    /// RFC 9002 `latest_rtt`, the initial RTT until the first sample.
    latest: Duration,
    samples: u64,
}

impl RttEstimator {
    /// An estimator that assumes `initial_rtt` until the first sample (RFC 9002 §5.3:
    /// `smoothed_rtt = initial_rtt`, `rttvar = initial_rtt / 2`).
    pub fn new(initial_rtt: Duration) -> Self {
        Self {
            smoothed: initial_rtt,
            var: initial_rtt / 2,
            min: None,
            latest: initial_rtt,
            samples: 0,
        }
    }

    /// Takes one RTT sample: `latest` is the time from sending a message to receiving the ACK
    /// that first acknowledged it, `ack_delay` the delay the peer reported, already capped by
    /// the caller at the peer's maximum ACK delay (RFC 9002 §5.3).
    ///
    /// ```text
    /// min_rtt      = min(min_rtt, latest_rtt)
    /// adjusted_rtt = latest_rtt - ack_delay   if latest_rtt >= min_rtt + ack_delay, else latest_rtt
    /// first sample:  smoothed_rtt = latest_rtt,  rttvar = latest_rtt / 2
    /// afterwards:    rttvar       = 3/4 rttvar + 1/4 |smoothed_rtt - adjusted_rtt|
    ///                smoothed_rtt = 7/8 smoothed_rtt + 1/8 adjusted_rtt
    /// ```
    pub fn on_sample(&mut self, latest: Duration, ack_delay: Duration) {
        self.latest = latest;
        self.samples += 1;
        let Some(min) = self.min else {
            self.min = Some(latest);
            self.smoothed = latest;
            self.var = latest / 2;
            return;
        };
        let min = min.min(latest);
        self.min = Some(min);
        // Subtracting the ACK delay must not take the sample below the minimum RTT.
        let adjusted = if latest >= min + ack_delay {
            latest - ack_delay
        } else {
            latest
        };
        let var_sample = self.smoothed.abs_diff(adjusted);
        self.var = (self.var * 3 + var_sample) / 4;
        self.smoothed = (self.smoothed * 7 + adjusted) / 8;
    }

    /// The smoothed RTT.
    pub fn smoothed(&self) -> Duration {
        self.smoothed
    }

    /// The RTT variance.
    pub fn var(&self) -> Duration {
        self.var
    }

    /// The smallest RTT sampled, `None` before the first sample.
    pub fn min(&self) -> Option<Duration> {
        self.min
    }

    /// The most recent sample (the initial RTT before the first).
    pub fn latest(&self) -> Duration {
        self.latest
    }

    /// How many samples were taken.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// The loss delay of RFC 9002 §6.1.2:
    /// `max(time_threshold · max(smoothed_rtt, latest_rtt), granularity)`.
    pub fn loss_delay(&self, time_threshold: f64, granularity: Duration) -> Duration {
        self.smoothed
            .max(self.latest)
            .mul_f64(time_threshold)
            .max(granularity)
    }

    /// The retransmission timeout after `backoff` consecutive timeouts:
    ///
    /// ```text
    /// base = clamp(smoothed_rtt + max(4·rttvar, granularity) + max_ack_delay, min_rto, max_rto)
    /// rto  = min(base · 2^backoff, max_rto)
    /// ```
    ///
    /// RFC 6298 §2.2–2.4 for the base (`G` is the granularity), RFC 9002 §6.2.1 for the
    /// peer's `max_ack_delay`, RFC 6298 §5.5 for the doubling and §2.5 for the maximum.
    pub fn rto(&self, bounds: RtoBounds, backoff: u32) -> Duration {
        let base = (self.smoothed + (self.var * 4).max(bounds.granularity) + bounds.max_ack_delay)
            .clamp(bounds.min, bounds.max);
        // 2^backoff saturates long before 32 doublings matter.
        let factor = 1u32.checked_shl(backoff.min(31)).unwrap_or(u32::MAX);
        base.checked_mul(factor)
            .unwrap_or(bounds.max)
            .min(bounds.max)
    }
}

/// The fixed terms of [`RttEstimator::rto`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtoBounds {
    /// Smallest timeout.
    pub min: Duration,
    /// Largest timeout, backoff included.
    pub max: Duration,
    /// Clock granularity, the floor of the variance term.
    pub granularity: Duration,
    /// The peer's maximum ACK delay.
    pub max_ack_delay: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn bounds() -> RtoBounds {
        RtoBounds {
            min: MS,
            max: MS * 60_000,
            granularity: MS,
            max_ack_delay: Duration::ZERO,
        }
    }

    #[test]
    fn initial_values_follow_rfc9002() {
        let rtt = RttEstimator::new(MS * 100);
        assert_eq!(rtt.smoothed(), MS * 100);
        assert_eq!(rtt.var(), MS * 50);
        assert_eq!(rtt.min(), None);
        // 100 + 4·50 = 300 ms.
        assert_eq!(rtt.rto(bounds(), 0), MS * 300);
    }

    #[test]
    fn first_sample_replaces_the_initial_guess() {
        let mut rtt = RttEstimator::new(MS * 100);
        rtt.on_sample(MS * 10, Duration::ZERO);
        assert_eq!(rtt.smoothed(), MS * 10);
        assert_eq!(rtt.var(), MS * 5);
        assert_eq!(rtt.min(), Some(MS * 10));
        assert_eq!(rtt.samples(), 1);
    }

    #[test]
    fn ewma_weights_are_one_eighth_and_one_quarter() {
        let mut rtt = RttEstimator::new(MS * 100);
        rtt.on_sample(MS * 80, Duration::ZERO);
        rtt.on_sample(MS * 160, Duration::ZERO);
        // var = 3/4·40 + 1/4·|80 - 160| = 50; smoothed = 7/8·80 + 1/8·160 = 90.
        assert_eq!(rtt.var(), MS * 50);
        assert_eq!(rtt.smoothed(), MS * 90);
        assert_eq!(rtt.min(), Some(MS * 80));
        assert_eq!(rtt.latest(), MS * 160);
    }

    #[test]
    fn ack_delay_is_subtracted_but_never_below_min_rtt() {
        let mut rtt = RttEstimator::new(MS * 100);
        rtt.on_sample(MS * 10, Duration::ZERO);
        // 18 - 8 = 10 >= min: subtracted, the sample counts as 10 ms.
        rtt.on_sample(MS * 18, MS * 8);
        assert_eq!(rtt.smoothed(), MS * 10);
        // 12 - 8 = 4 < min 10: not subtracted, the sample counts as 12 ms.
        rtt.on_sample(MS * 12, MS * 8);
        assert_eq!(rtt.smoothed(), (MS * 70 + MS * 12) / 8);
    }

    #[test]
    fn rto_backs_off_exponentially_up_to_the_maximum() {
        let mut rtt = RttEstimator::new(MS * 100);
        rtt.on_sample(MS * 10, Duration::ZERO);
        let b = RtoBounds {
            max: MS * 1000,
            max_ack_delay: MS * 2,
            ..bounds()
        };
        // 10 + 4·5 + 2 = 32 ms.
        assert_eq!(rtt.rto(b, 0), MS * 32);
        assert_eq!(rtt.rto(b, 1), MS * 64);
        assert_eq!(rtt.rto(b, 4), MS * 512);
        assert_eq!(rtt.rto(b, 5), MS * 1000);
        assert_eq!(rtt.rto(b, 200), MS * 1000);
    }

    #[test]
    fn rto_respects_the_minimum_and_granularity() {
        let mut rtt = RttEstimator::new(MS);
        rtt.on_sample(Duration::from_micros(100), Duration::ZERO);
        let b = RtoBounds {
            min: MS * 10,
            ..bounds()
        };
        assert_eq!(rtt.rto(b, 0), MS * 10);
        // Without the floor: 0.1 ms + max(4·0.05, 1) ms granularity.
        assert_eq!(
            rtt.rto(
                RtoBounds {
                    min: Duration::ZERO,
                    ..bounds()
                },
                0
            ),
            Duration::from_micros(1100)
        );
    }

    #[test]
    fn loss_delay_is_nine_eighths_of_the_larger_rtt_with_a_floor() {
        let mut rtt = RttEstimator::new(MS * 100);
        rtt.on_sample(MS * 8, Duration::ZERO);
        assert_eq!(rtt.loss_delay(9.0 / 8.0, MS), MS * 9);
        rtt.on_sample(MS * 16, Duration::ZERO);
        // latest 16 > smoothed 9: 18 ms.
        assert_eq!(rtt.loss_delay(9.0 / 8.0, MS), MS * 18);
        let mut tiny = RttEstimator::new(MS);
        tiny.on_sample(Duration::from_micros(50), Duration::ZERO);
        assert_eq!(tiny.loss_delay(9.0 / 8.0, MS), MS);
    }
}
