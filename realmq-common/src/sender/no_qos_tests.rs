//! The sender without QoS (`reliable: false`): each message written once, nothing kept,
//! and no new ID beyond what the peer accepts as plausible.

use std::time::Instant;

use super::tests::{ack, send_n, write, MS};
use super::*;

#[test]
fn unreliable_mode_sends_once_and_keeps_nothing() {
    let t0 = Instant::now();
    let config = SenderConfig {
        reliable: false,
        ..SenderConfig::default()
    };
    let mut s = Sender::new(config, t0).unwrap();
    send_n(&mut s, 100, 10);
    let ids = write(&mut s, t0);
    assert_eq!(ids, (0..100).collect::<Vec<_>>());
    assert!(s.is_idle());
    assert_eq!(s.window_usage(), (0, 0));
    assert_eq!(s.in_flight(), 0);
    assert_eq!(s.timers.get(Timer::Loss), None);
    assert_eq!(s.timers.get(Timer::Rto), None);
    ack(&mut s, t0 + MS, &[0..=50], 0).unwrap();
    assert_eq!(s.stats().acked, 0);
    assert_eq!(s.stats().sent, 100);
}

#[test]
fn without_qos_no_id_goes_beyond_the_peers_plausibility_window() {
    let t0 = Instant::now();
    let config = SenderConfig {
        reliable: false,
        peer_id_window: 10,
        ..SenderConfig::default()
    };
    let mut s = Sender::new(config, t0).unwrap();
    send_n(&mut s, 40, 10);
    // Before any ACK the peer takes IDs below its window: 0..10.
    assert_eq!(write(&mut s, t0), (0..10).collect::<Vec<_>>());
    assert!(!s.has_pending_data(), "the rest waits for an ACK");
    assert!(write(&mut s, t0).is_empty());
    // The peer received up to 4: IDs up to 4 + 10 are plausible to it.
    ack(&mut s, t0 + MS, &[0..=4], 0).unwrap();
    assert!(s.has_pending_data());
    assert_eq!(write(&mut s, t0 + MS), (10..15).collect::<Vec<_>>());
    // An ACK naming IDs never sent moves the horizon only as far as the largest sent.
    ack(&mut s, t0 + MS, &[0..=1_000], 0).unwrap();
    assert_eq!(write(&mut s, t0 + MS), (15..25).collect::<Vec<_>>());
    assert_eq!(s.stats().sent, 25);
    assert_eq!(s.stats().acked, 0, "nothing is acknowledged without QoS");
}
