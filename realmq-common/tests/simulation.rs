//! The deterministic network simulation: the QoS engine's proof (issue 3 §6).
//!
//! Print the loss table of `docs/QOS.md` with
//! `cargo test -p realmq-common --test simulation sim_table -- --nocapture`.

mod sim;

use std::time::Duration;

use realmq_common::config::LivenessConfig;
use realmq_common::phi::PhiConfig;
use sim::{run, LinkConfig, Outcome, SimConfig, Workload};

const MESSAGES: u64 = 100_000;

/// The checks every loss run must pass. `expect_all_delivered`: no message may be given up.
fn check_delivery(config: &SimConfig, out: &Outcome, expect_all_delivered: bool) {
    let n = config.messages;
    assert_eq!(out.corrupted, 0, "a message arrived under the wrong ID");
    assert_eq!(out.duplicates_delivered, 0, "a message was delivered twice");
    assert!(
        out.all_accounted,
        "a message was neither delivered nor reported"
    );
    assert_eq!(out.received, out.delivered);
    if expect_all_delivered {
        assert_eq!(out.undeliverable, Vec::<u64>::new());
        assert_eq!(out.delivered, n);
    }
    assert!(out.max_in_flight <= config.sender.window_messages);
    assert!(out.max_in_flight_bytes <= config.sender.window_bytes);
    assert_eq!(out.sent, n);
}

/// Loss in both directions (DATA and ACK datagrams) on [`LinkConfig::lan`].
/// Every message is delivered exactly once at every loss rate. At 50 % a message needs
/// about two transmissions on average but a few need many, so that run allows 40 resends
/// per message (0.5^41 ≈ 5·10⁻¹³ per message) and asserts that none is given up; the
/// others run with the default of 10.
#[test]
fn sim_table() {
    let rows = [0.0, 0.01, 0.05, 0.20, 0.50];
    let mut table = String::new();
    table.push_str(
        "| loss each way | resends / message | RTOs | time (simulated) | time / RTT | duplicates seen by receiver | duplicates delivered | refused (range set full) | undeliverable |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for (i, &loss) in rows.iter().enumerate() {
        let mut config = SimConfig::bulk(100 + i as u64, MESSAGES, loss);
        if loss >= 0.5 {
            config.sender.max_retries = 40;
        }
        let out = run(&config);
        check_delivery(&config, &out, true);
        // A bounded run: simulated time and steps both far below their budgets.
        assert!(out.elapsed < Duration::from_secs(60), "{:?}", out.elapsed);
        let rtt = config.forward.mean_rtt(&config.backward);
        table.push_str(&format!(
            "| {:.0} % | {:.3} | {} | {:.1} ms | {:.0} | {} | {} | {} | {} |\n",
            loss * 100.0,
            out.retransmitted as f64 / MESSAGES as f64,
            out.rto_fired,
            out.elapsed.as_secs_f64() * 1e3,
            out.elapsed.as_secs_f64() / rtt.as_secs_f64(),
            out.duplicates_seen,
            out.duplicates_delivered,
            out.refused,
            out.undeliverable.len(),
        ));
    }
    println!(
        "\n{MESSAGES} messages of 32 bytes per row, bulk (as fast as the window allows), link: \
         1 ms + up to 0.5 ms jitter one way, 10 µs per datagram, 1 % reordered by up to 1 ms, 1 % duplicated; mean RTT 2.5 ms\n"
    );
    println!("{table}");
}

/// The same seed gives the same run, datagram for datagram; another seed does not.
#[test]
fn same_seed_same_run() {
    let config = SimConfig::bulk(7, 20_000, 0.05);
    let a = run(&config);
    let b = run(&config);
    assert_eq!(a.trace, b.trace);
    assert_eq!(a.steps, b.steps);
    assert_eq!(a.elapsed, b.elapsed);
    assert_eq!(a.retransmitted, b.retransmitted);
    let c = run(&SimConfig::bulk(8, 20_000, 0.05));
    assert_ne!(a.trace, c.trace);
}

/// A link that reorders deeply (half the datagrams held back by up to 20 ms against 10 µs
/// per datagram: hundreds may overtake one another) and loses 5 %: still exactly once, and
/// no ID decoded wrongly.
#[test]
fn deep_reordering() {
    let mut config = SimConfig::bulk(11, 50_000, 0.05);
    for link in [&mut config.forward, &mut config.backward] {
        link.reorder = 0.5;
        link.reorder_delay = Duration::from_millis(20);
    }
    let out = run(&config);
    check_delivery(&config, &out, true);
    assert!(
        out.out_of_order > 1000,
        "the link did reorder: {}",
        out.out_of_order
    );
}

/// φ's crossing point: the `y` (in standard deviations past the mean) where
/// `log10(1 + e^z) = threshold` with `z = y·(1.5976 + 0.070566·y²)`, the logistic
/// approximation of the normal CDF the detector uses (Bowling et al., JIEM 2009). `z` grows
/// monotonically in `y`, so bisection finds it.
fn phi_crossing(threshold: f64) -> f64 {
    let target = (10f64.powf(threshold) - 1.0).ln();
    let (mut lo, mut hi) = (-10.0f64, 100.0f64);
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if mid * (1.5976 + 0.070566 * mid * mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// When a detector whose window has mean `mean` and deviation `std` at its last arrival
/// first finds the peer dead, measured from that arrival: the silence at which φ reaches
/// the threshold, plus the grace period.
fn expected_death(liveness: &LivenessConfig, mean: Duration, std: Duration) -> Duration {
    let phi: PhiConfig = liveness.phi_config();
    let std = std.max(phi.min_std_deviation);
    let crossing = mean + phi.acceptable_heartbeat_pause + std.mul_f64(phi_crossing(phi.threshold));
    crossing + liveness.grace_period
}

/// Checks that a declared death fell in `[expected, expected + check_interval]` after the
/// last arrival (1 ms of slack for the detector's µs rounding).
fn check_death_bound(
    liveness: &LivenessConfig,
    declared: Duration,
    at_silence: (Duration, Duration, Duration),
) -> Duration {
    let (last, mean, std) = at_silence;
    let expected = expected_death(liveness, mean, std);
    let after_last = declared - last;
    let slack = Duration::from_millis(1);
    assert!(
        after_last + slack >= expected && after_last <= expected + liveness.check_interval + slack,
        "declared {after_last:?} after the last arrival, expected {expected:?} + up to {:?}",
        liveness.check_interval
    );
    after_last
}

/// Bursty traffic with idle gaps (so heartbeats flow) over a 5 %-loss LAN link.
fn bursty(seed: u64, loss: f64, jitter: Duration) -> SimConfig {
    let mut config = SimConfig::bulk(seed, u64::MAX / 2, loss);
    config.messages = 200_000;
    config.workload = Workload::Bursty {
        burst: 200,
        max_gap: Duration::from_millis(400),
    };
    for link in [&mut config.forward, &mut config.backward] {
        *link = LinkConfig {
            jitter,
            ..LinkConfig::lan(loss)
        };
    }
    config
}

#[test]
fn a_silent_receiver_is_declared_unreachable_within_the_phi_bound() {
    let mut config = bursty(21, 0.05, Duration::from_micros(500));
    config.receiver_dies_at = Some(Duration::from_secs(20));
    config.stop_on_death = true;
    let out = run(&config);
    let declared = out.sender_declared_unreachable.expect("the sender noticed");
    let after = check_death_bound(
        &config.sender.liveness,
        declared,
        out.sender_detector_at_silence.expect("ACKs arrived before"),
    );
    eprintln!("receiver silent: declared unreachable {after:?} after the last ACK");
    assert!(declared >= Duration::from_secs(20));
}

#[test]
fn a_silent_sender_is_declared_dead_within_the_phi_bound() {
    let mut config = bursty(22, 0.05, Duration::from_micros(500));
    config.sender_dies_at = Some(Duration::from_secs(20));
    config.stop_on_death = true;
    let out = run(&config);
    let declared = out.receiver_declared_dead.expect("the receiver noticed");
    let after = check_death_bound(
        &config.receiver.liveness,
        declared,
        out.receiver_detector_at_silence
            .expect("datagrams arrived before"),
    );
    eprintln!("sender silent: declared dead {after:?} after the last datagram");
    assert!(declared >= Duration::from_secs(20));
}

/// A minute of bursty traffic over a link with 20 ms of jitter and 5 % loss each way:
/// neither side is ever declared dead, and φ crosses the threshold at most a few times.
#[test]
fn a_healthy_peer_on_a_jittery_link_is_not_declared_dead() {
    let mut config = bursty(23, 0.05, Duration::from_millis(20));
    config.messages = 60_000;
    let out = run(&config);
    check_delivery(&config, &out, true);
    eprintln!(
        "jittery link: {:?} simulated, {} heartbeats, suspicions: sender {}, receiver {}",
        out.elapsed, out.heartbeats, out.sender_suspicions, out.receiver_suspicions
    );
    assert!(out.elapsed > Duration::from_secs(60), "{:?}", out.elapsed);
    assert!(out.heartbeats > 100);
    assert_eq!(out.sender_declared_unreachable, None);
    assert_eq!(out.receiver_declared_dead, None);
    assert!(out.sender_suspicions <= 2 && out.receiver_suspicions <= 2);
}

/// The ACK policy sweep behind the defaults (`ack_every` 32, `max_ack_delay` 2 ms): 1000-byte
/// messages (one per datagram, where the count matters) over the LAN link at 5 % and 20 %
/// loss. Prints ACKs per message and completion time; every setting must still deliver exactly
/// once.
#[test]
fn ack_policy_sweep() {
    println!("\n| loss | ack_every | max_ack_delay | ACKs / message | resends / message | time |");
    println!("|---|---|---|---|---|---|");
    for ack_every in [4, 32, 128] {
        for delay_ms in [1, 5] {
            for loss in [0.05, 0.2] {
                let mut config = SimConfig::bulk(31, 30_000, loss);
                config.payload_len = 1000;
                config.receiver.ack_every = ack_every;
                config.receiver.max_ack_delay = Duration::from_millis(delay_ms);
                config.sender.peer_max_ack_delay = config.receiver.max_ack_delay;
                let out = run(&config);
                check_delivery(&config, &out, true);
                println!(
                    "| {loss} | {ack_every} | {delay_ms} ms | {:.3} | {:.3} | {:.0} ms |",
                    out.acks_sent as f64 / config.messages as f64,
                    out.retransmitted as f64 / config.messages as f64,
                    out.elapsed.as_secs_f64() * 1e3
                );
            }
        }
    }
}
