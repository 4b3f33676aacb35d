//! The deterministic network simulation: the QoS engine's proof (issue 3 §6).
//!
//! Print the loss table of `docs/QOS.md` with
//! `cargo test -p realmq-common --test simulation sim_table -- --nocapture`. `sim_table` and
//! `ack_policy_sweep` fail when the tables printed in `docs/QOS.md` differ from what they
//! compute: the runs are deterministic, so the document is kept exact.

mod sim;

use std::time::Duration;

use realmq_common::config::LivenessConfig;
use realmq_common::phi::PhiConfig;
use sim::{simulate, DetectorSnapshot, LinkConfig, Outcome, Sim, SimConfig, Workload};

const MESSAGES: u64 = 100_000;

/// `docs/QOS.md`, whose simulation tables these tests compute.
const QOS_MD: &str = include_str!("../../docs/QOS.md");

/// Checks that the Markdown table in `docs/QOS.md` whose header row is `computed`'s first
/// line equals `computed`, line for line: the simulation is deterministic, so the document
/// cannot drift from the code. On a change, paste the printed table into the document.
fn check_doc_table(computed: &str) {
    let header = computed.lines().next().expect("a header row");
    let start = QOS_MD
        .find(header)
        .unwrap_or_else(|| panic!("docs/QOS.md has no table with the header {header:?}"));
    let in_doc: Vec<&str> = QOS_MD[start..]
        .lines()
        .map(str::trim_end)
        .take_while(|line| line.starts_with('|'))
        .collect();
    let computed: Vec<&str> = computed.lines().map(str::trim_end).collect();
    assert!(
        in_doc == computed,
        "docs/QOS.md is out of date: its table\n{}\nshould read\n{}\n",
        in_doc.join("\n"),
        computed.join("\n")
    );
}

/// The checks every loss run must pass. `expect_all_delivered`: no message may be given up.
fn check_delivery(config: &SimConfig, out: &Outcome, expect_all_delivered: bool) {
    let n = config.messages;
    let d = out.deliveries;
    assert_eq!(d.corrupted, 0, "a message arrived under the wrong ID");
    assert_eq!(d.duplicates, 0, "a message was delivered twice");
    assert!(
        out.all_accounted,
        "a message was neither delivered nor reported"
    );
    assert_eq!(out.receiver.received, d.delivered);
    if expect_all_delivered {
        assert_eq!(out.undeliverable, Vec::<u64>::new());
        assert_eq!(d.delivered, n);
    }
    assert!(out.max_in_flight.0 <= config.sender.window_messages);
    assert!(out.max_in_flight.1 <= config.sender.window_bytes);
    assert_eq!(out.sender.sent, n);
}

/// The bounds one row of the loss table must meet, stated in `docs/QOS.md`: every message
/// delivered exactly once (`check_delivery`), none refused; resends per message within
/// `[0.8, 1.5] · loss / (1 − loss)` plus 0.02 on top for the reordered datagrams (each
/// transmission is lost with probability `loss`, so a message needs `1 / (1 − loss)` on
/// average); at most one timeout per 20,000 messages below 50 % loss (a loss at the very end
/// of the run, with nothing sent after it, waits for the timeout: 12 seeds at 20 % loss
/// gave 0 to 3) and one per 1000 messages at 50 %; at most
/// 150 round trips below 50 % and 1000 at 50 %; the receiver sees at most one duplicate per
/// 20 messages.
fn check_loss_row(config: &SimConfig, out: &Outcome, loss: f64) {
    check_delivery(config, out, true);
    let n = config.messages as f64;
    assert_eq!(out.receiver.refused, 0, "the range set filled up");
    let resends = out.sender.retransmitted as f64 / n;
    let expected = loss / (1.0 - loss);
    assert!(
        resends >= 0.8 * expected && resends <= 1.5 * expected + 0.02,
        "{resends} resends per message at {loss} loss (expected about {expected})"
    );
    let (max_rtos, max_rtts) = if loss < 0.5 {
        (config.messages / 20_000, 150.0)
    } else {
        (config.messages / 1000, 1000.0)
    };
    assert!(
        out.sender.rto_fired <= max_rtos,
        "{} RTOs",
        out.sender.rto_fired
    );
    let rtts = out.elapsed.as_secs_f64() / config.forward.mean_rtt(&config.backward).as_secs_f64();
    assert!(rtts <= max_rtts, "took {rtts} RTTs");
    assert!(out.receiver.duplicates <= config.messages / 20);
}

/// Loss in both directions (DATA and ACK datagrams) on [`LinkConfig::lan`].
/// Every message is delivered exactly once at every loss rate. At 50 % a message needs
/// about two transmissions on average but a few need many, so that run allows 40 resends
/// per message (0.5^41 ≈ 5·10⁻¹³ per message) and asserts that none is given up; the
/// others run with the default of 10. Each row is checked against its bounds
/// ([`check_loss_row`]), and the table against the one in `docs/QOS.md`.
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
        let out = simulate(&config);
        check_loss_row(&config, &out, loss);
        let rtt = config.forward.mean_rtt(&config.backward);
        table.push_str(&format!(
            "| {:.0} % | {:.3} | {} | {:.1} ms | {:.0} | {} | {} | {} | {} |\n",
            loss * 100.0,
            out.sender.retransmitted as f64 / MESSAGES as f64,
            out.sender.rto_fired,
            out.elapsed.as_secs_f64() * 1e3,
            out.elapsed.as_secs_f64() / rtt.as_secs_f64(),
            out.receiver.duplicates,
            out.deliveries.duplicates,
            out.receiver.refused,
            out.undeliverable.len(),
        ));
    }
    println!(
        "\n{MESSAGES} messages of 32 bytes per row, bulk (as fast as the window allows), link: \
         1 ms + up to 0.5 ms jitter one way, 10 µs per datagram, 1 % reordered by up to 1 ms, 1 % duplicated; mean RTT 2.5 ms\n"
    );
    println!("{table}");
    check_doc_table(&table);
}

/// The same seed gives the same run, datagram for datagram; another seed does not.
#[test]
fn same_seed_same_run() {
    let config = SimConfig::bulk(7, 20_000, 0.05);
    let a = simulate(&config);
    let b = simulate(&config);
    assert_eq!(a.trace, b.trace);
    assert_eq!(a.steps, b.steps);
    assert_eq!(a.elapsed, b.elapsed);
    assert_eq!(a.sender.retransmitted, b.sender.retransmitted);
    let c = simulate(&SimConfig::bulk(8, 20_000, 0.05));
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
    let out = simulate(&config);
    check_delivery(&config, &out, true);
    assert!(
        out.receiver.out_of_order > 1000,
        "the link did reorder: {}",
        out.receiver.out_of_order
    );
}

/// Datagrams held back far beyond the RTO (1 % of them each way, by 50–700 ms, and in a
/// second run by up to 10 s) arrive after their resends, some after the sender has finished:
/// the receiver counts them as duplicates and delivers nothing twice. 1000-byte messages, one
/// per datagram, so that each held-back datagram holds back one message.
#[test]
fn held_back_datagrams_are_never_delivered_twice() {
    let ms = Duration::from_millis;
    for (seed, extra) in [(41, ms(50)..ms(700)), (42, ms(50)..ms(10_000))] {
        let mut config = SimConfig::bulk(seed, 10_000, 0.01);
        config.payload_len = 1000;
        for link in [&mut config.forward, &mut config.backward] {
            *link = link.with_hold_back(0.01, extra.clone());
        }
        let mut sim = Sim::new(config.clone());
        sim.drive();
        let finished = sim.elapsed();
        // Let the last held-back datagrams arrive.
        sim.run_until(Sim::links_empty);
        let out = sim.outcome();
        check_delivery(&config, &out, true);
        assert!(sim.sender().is_idle());
        assert_eq!(sim.receiver().cumulative(), config.messages);
        assert!(out.forward.held_back > 50 && out.backward.held_back > 0);
        assert!(
            out.receiver.duplicates > 0,
            "late originals arrive as duplicates"
        );
        assert!(
            sim.elapsed() > finished,
            "some arrived after the sender finished"
        );
    }
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
    at_silence: DetectorSnapshot,
) -> Duration {
    let expected = expected_death(liveness, at_silence.mean, at_silence.std_deviation);
    let after_last = declared - at_silence.last_arrival;
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
    let mut sim = Sim::new(config.clone());
    sim.run_until(Sim::peer_declared_gone);
    let out = sim.outcome();
    assert_eq!(
        out.receiver_view.declared_gone, None,
        "the dead do not judge"
    );
    let declared = out.sender_view.declared_gone.expect("the sender noticed");
    let after = check_death_bound(
        &config.sender.liveness,
        declared,
        out.sender_view.at_peer_death.expect("ACKs arrived before"),
    );
    eprintln!("receiver silent: declared unreachable {after:?} after the last ACK");
    assert!(declared >= Duration::from_secs(20));
}

#[test]
fn a_silent_sender_is_declared_dead_within_the_phi_bound() {
    let mut config = bursty(22, 0.05, Duration::from_micros(500));
    config.sender_dies_at = Some(Duration::from_secs(20));
    let mut sim = Sim::new(config.clone());
    sim.run_until(Sim::peer_declared_gone);
    let out = sim.outcome();
    assert_eq!(out.sender_view.declared_gone, None, "the dead do not judge");
    let declared = out
        .receiver_view
        .declared_gone
        .expect("the receiver noticed");
    let after = check_death_bound(
        &config.receiver.liveness,
        declared,
        out.receiver_view
            .at_peer_death
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
    let out = simulate(&config);
    check_delivery(&config, &out, true);
    eprintln!(
        "jittery link: {:?} simulated, {} heartbeats, suspicions: sender {}, receiver {}",
        out.elapsed,
        out.sender.heartbeats,
        out.sender_view.suspicions,
        out.receiver_view.suspicions
    );
    assert!(out.elapsed > Duration::from_secs(60), "{:?}", out.elapsed);
    assert!(out.sender.heartbeats > 100);
    assert_eq!(out.sender_view.declared_gone, None);
    assert_eq!(out.receiver_view.declared_gone, None);
    assert!(out.sender_view.suspicions <= 2 && out.receiver_view.suspicions <= 2);
}

/// The ACK policy sweep behind the defaults (`ack_every` 32, `max_ack_delay` 2 ms): 1000-byte
/// messages (one per datagram, where the count matters) over the LAN link at 5 % and 20 %
/// loss. Prints ACKs per message and completion time; every setting must still deliver exactly
/// once, and the table must equal the one in `docs/QOS.md`.
#[test]
fn ack_policy_sweep() {
    let mut table = String::from(
        "| loss | ack_every | max_ack_delay | ACKs / message | resends / message | time |\n\
         |---|---|---|---|---|---|\n",
    );
    for ack_every in [4, 32, 128] {
        for delay_ms in [1, 5] {
            for loss in [0.05, 0.2] {
                let mut config = SimConfig::bulk(31, 30_000, loss);
                config.payload_len = 1000;
                config.receiver.ack_every = ack_every;
                config.receiver.max_ack_delay = Duration::from_millis(delay_ms);
                config.sender.peer_max_ack_delay = config.receiver.max_ack_delay;
                let out = simulate(&config);
                check_delivery(&config, &out, true);
                table.push_str(&format!(
                    "| {loss} | {ack_every} | {delay_ms} ms | {:.3} | {:.3} | {:.0} ms |\n",
                    out.receiver.acks_sent as f64 / config.messages as f64,
                    out.sender.retransmitted as f64 / config.messages as f64,
                    out.elapsed.as_secs_f64() * 1e3
                ));
            }
        }
    }
    println!("\n{table}");
    check_doc_table(&table);
}

/// A lost ACK costs a probe, not a timeout (`sender/probe.rs`). A loopback-like link (25 µs
/// each way) loses a fifth of the ACKs, and the receiver acknowledges once per 2,048 messages
/// or its delay timer, as the server does once per receive pass: the ACK that would open a
/// full window is then often the only one. Without the probe timeout, 7 of these 20 runs
/// waited for the 10 ms retransmission timeout, which declared everything in flight lost:
/// 24,813 resends in all, of messages that had all arrived. With it, none did: 12 probes, 15
/// resends.
#[test]
fn a_lost_ack_costs_a_probe_not_a_timeout() {
    let outcomes = fast_path_runs(20, 0.0, 0.2);
    let sum = |f: fn(&Outcome) -> u64| outcomes.iter().map(f).sum::<u64>();
    let rtos = sum(|o| o.sender.rto_fired);
    let resends = sum(|o| o.sender.retransmitted);
    let probes = sum(|o| o.sender.probes);
    assert!(rtos <= 2, "{rtos} retransmission timeouts");
    assert!(resends <= 8192, "{resends} spurious resends");
    assert!(probes > 0, "no probe timeout fired");
}

/// Bulk transfers of 100,000 messages of 64 bytes, seeds 1 to `seeds`, over a loopback-like
/// link (25 µs each way, 0.5 µs per datagram) losing `data_loss` of the DATA datagrams and
/// `ack_loss` of the ACKs, with a receiver that acknowledges once per 2,048 messages or its
/// delay timer, as the server does once per receive pass. Each run is checked by
/// [`check_delivery`].
fn fast_path_runs(seeds: u64, data_loss: f64, ack_loss: f64) -> Vec<Outcome> {
    let mut link = LinkConfig::fixed(Duration::from_micros(25));
    link.serialization = Duration::from_nanos(500);
    (1..=seeds)
        .map(|seed| {
            let mut config = SimConfig {
                forward: LinkConfig {
                    loss: data_loss,
                    ..link
                },
                backward: LinkConfig {
                    loss: ack_loss,
                    ..link
                },
                payload_len: 64,
                ..SimConfig::bulk(seed, 100_000, data_loss)
            };
            config.receiver.ack_every = 2048;
            let out = simulate(&config);
            check_delivery(&config, &out, true);
            out
        })
        .collect()
}

/// A lost resend costs a probe, not a stalled window (`sender/probe.rs`). The same fast link
/// loses a fifth of the DATA datagrams. Once the send window is held by its oldest
/// unacknowledged message only resends go out, and loss detection cannot judge a resend
/// (Karn), so a lost one waited for a probe timeout, one probe per lost resend: over these
/// 12 runs 186 probes and 7 retransmission timeouts, 856 ms of simulated time in all. Since a
/// probe declares lost every resend unanswered for a probe timeout: 44 probes, no timeout,
/// 292 ms.
#[test]
fn a_lost_resend_costs_a_probe_not_a_stalled_window() {
    let outcomes = fast_path_runs(12, 0.2, 0.0);
    let rtos: u64 = outcomes.iter().map(|o| o.sender.rto_fired).sum();
    let probes: u64 = outcomes.iter().map(|o| o.sender.probes).sum();
    assert_eq!(rtos, 0, "retransmission timeouts");
    assert!(probes <= 90, "{probes} probes");
}
