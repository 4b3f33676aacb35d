//! The sender without QoS (`reliable: false`): each message written once and released, no
//! new ID past the peer's plausibility window, and the tail probe that moves that window.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::time::Instant;

use realmq_proto::{Datagram, DatagramWriter, Flags, Frame, Header};

use super::tests::{ack, send_n, write, MS};
use super::*;
use crate::config::ReceiverConfig;
use crate::receiver::Receiver;

fn unreliable(peer_id_window: u64) -> SenderConfig {
    SenderConfig {
        reliable: false,
        peer_id_window,
        ..SenderConfig::default()
    }
}

#[test]
fn unreliable_mode_sends_once_and_keeps_only_the_newest() {
    let t0 = Instant::now();
    let mut s = Sender::new(unreliable(SenderConfig::default().peer_id_window), t0).unwrap();
    send_n(&mut s, 100, 10);
    let ids = write(&mut s, t0);
    assert_eq!(ids, (0..100).collect::<Vec<_>>());
    assert!(s.is_idle());
    // The newest message written stays, for a tail probe; the rest is released.
    assert_eq!(s.window_usage().0, 1);
    assert_eq!(s.in_flight(), 0);
    assert_eq!(s.timers.get(Timer::Loss), None);
    ack(&mut s, t0 + MS, &[0..=50], 0).unwrap();
    assert_eq!(s.stats().acked, 0);
    assert_eq!(s.stats().sent, 100);
    // Not held at the horizon: the probe timeout passes without a probe.
    s.handle_timeout(t0 + s.rto());
    assert!(!s.has_pending_data());
    assert_eq!(s.stats().tail_probes, 0);
}

#[test]
fn without_qos_no_id_goes_beyond_the_peers_plausibility_window() {
    let t0 = Instant::now();
    let mut s = Sender::new(unreliable(10), t0).unwrap();
    send_n(&mut s, 40, 10);
    // Before any ACK the peer takes IDs below its window: 0..10.
    assert_eq!(write(&mut s, t0), (0..10).collect::<Vec<_>>());
    assert!(!s.has_pending_data(), "the rest waits for an ACK");
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

#[test]
fn held_at_the_horizon_the_sender_probes_with_its_newest_message() {
    let t0 = Instant::now();
    let mut s = Sender::new(unreliable(10), t0).unwrap();
    send_n(&mut s, 40, 10);
    assert_eq!(write(&mut s, t0), (0..10).collect::<Vec<_>>());
    // Held at the horizon (10), the sender waits for ACKs for a probe timeout...
    let timeout = s.rto();
    s.handle_timeout(t0 + timeout - MS);
    assert!(!s.has_pending_data());
    // ...then probes with the newest written message, asking for an ACK at once. Without
    // it, if all of 0..10 or their ACKs were lost, no ACK would ever come.
    s.handle_timeout(t0 + timeout);
    assert!(s.has_pending_data());
    assert_eq!(write(&mut s, t0 + timeout), vec![9]);
    assert!(!s.wants_ack_now(), "cleared by the write that carried it");
    assert_eq!(s.stats().tail_probes, 1);
    assert_eq!(s.stats().retransmitted, 0, "a probe is not a QoS resend");
    assert!(!s.has_pending_data());
    // Its ACK moves the horizon a window past it.
    ack(&mut s, t0 + timeout + MS, &[9..=9], 0).unwrap();
    assert_eq!(
        write(&mut s, t0 + timeout + MS),
        (10..20).collect::<Vec<_>>()
    );
    assert_eq!(s.stats().sent, 20);
}

#[test]
fn an_unanswered_probe_is_written_again_after_a_backed_off_timeout() {
    let t0 = Instant::now();
    let mut s = Sender::new(unreliable(10), t0).unwrap();
    send_n(&mut s, 40, 10);
    write(&mut s, t0);
    // The ACK of everything written, naming the newest message: an RTT sample of 2 ms,
    // and the horizon at 20.
    ack(&mut s, t0 + 2 * MS, &[0..=9], 0).unwrap();
    assert_eq!(s.rtt().smoothed(), 2 * MS);
    let written = t0 + 2 * MS;
    assert_eq!(write(&mut s, written), (10..20).collect::<Vec<_>>());
    // The probe timeout: 2 ms + 4 · 1 ms + 2 ms, below the retransmission timeout's 10 ms
    // floor.
    let timeout = s.pto_backed_off(0);
    assert_eq!(timeout, 8 * MS);
    assert!(timeout < s.rto());
    s.handle_timeout(written + timeout);
    let probed = written + timeout;
    assert_eq!(write(&mut s, probed), vec![19]);
    // Unanswered, the next one waits twice as long.
    assert_eq!(s.pto_backed_off(s.rto_backoff), 2 * timeout);
    s.handle_timeout(probed + 2 * timeout - MS);
    assert!(!s.has_pending_data());
    s.handle_timeout(probed + 2 * timeout);
    assert_eq!(write(&mut s, probed + 2 * timeout), vec![19]);
    assert_eq!(s.stats().tail_probes, 2);
    // The horizon moving resets the backoff.
    ack(&mut s, probed + 2 * timeout + MS, &[19..=19], 0).unwrap();
    assert_eq!(s.rto_backoff, 0);
}

/// What crossed a path that lost every datagram for a while.
struct BurstRun {
    sender: Sender,
    receiver: Receiver,
    /// How many times each ID was delivered.
    delivered: HashMap<u64, u32>,
    /// IDs carried by a datagram that arrived.
    arrived: HashSet<u64>,
    /// IDs carried by a datagram the path lost.
    dropped: HashSet<u64>,
}

/// An unreliable sender given `per_ms` messages a millisecond, and a receiver, over a path
/// that loses every datagram written in the milliseconds `lost`; ACKs always arrive.
fn run_through_a_loss_burst(
    messages: usize,
    per_ms: usize,
    id_window: u64,
    lost: Range<u32>,
) -> BurstRun {
    let receiver_config = ReceiverConfig {
        id_window,
        ..ReceiverConfig::default()
    };
    run_unreliable(messages, per_ms, receiver_config, |ms| lost.contains(&ms))
}

/// An unreliable sender given `per_ms` messages a millisecond, and a receiver configured
/// by `receiver_config`, over a path that loses the DATA datagrams for which `lose(ms)`
/// says so; ACKs always arrive.
fn run_unreliable(
    messages: usize,
    per_ms: usize,
    receiver_config: ReceiverConfig,
    mut lose: impl FnMut(u32) -> bool,
) -> BurstRun {
    let t0 = Instant::now();
    let mut sender = Sender::new(unreliable(receiver_config.id_window), t0).unwrap();
    let mut receiver = Receiver::new(receiver_config, t0).unwrap();
    let (mut delivered, mut arrived, mut dropped) =
        (HashMap::new(), HashSet::new(), HashSet::new());
    let mut accepted = 0;
    // Bounded: each step is a millisecond, and a lost probe costs a heartbeat interval.
    for ms in 1..10_000 {
        let due = messages.min(per_ms * ms as usize);
        while accepted < due && sender.send(0, &[0xab; 10]).is_ok() {
            accepted += 1;
        }
        if accepted == messages && sender.is_idle() {
            break;
        }
        let now = t0 + ms * MS;
        sender.handle_timeout(now);
        receiver.handle_timeout(now);
        while sender.has_pending_data() {
            let mut buf = [0u8; 2048];
            let max = sender.config().max_datagram_size;
            let mut w = DatagramWriter::new(&mut buf, max, Header::session(1)).unwrap();
            let ack_now = sender.wants_ack_now();
            if sender.write_data(now, &mut w) == 0 {
                break;
            }
            let len = w.finish();
            let datagram = Datagram::parse(&buf[..len]).unwrap();
            for frame in datagram.frames() {
                let Frame::Data(data) = frame else { continue };
                let ids = data.messages().map(|m| m.id);
                if lose(ms) {
                    dropped.extend(ids);
                    continue;
                }
                arrived.extend(ids);
                let flags = if ack_now { Flags::ACK_NOW } else { Flags::NONE };
                receiver.handle_data(now, &data, flags.with(Flags::NO_RESEND), |m| {
                    *delivered.entry(m.id).or_insert(0) += 1;
                });
            }
        }
        let mut buf = [0u8; 2048];
        let mut w = DatagramWriter::new(&mut buf, 1472, Header::session(1)).unwrap();
        if receiver.write_ack(now, &mut w) {
            let len = w.finish();
            let datagram = Datagram::parse(&buf[..len]).unwrap();
            if let Some(Frame::Ack(frame)) = datagram.frames().next() {
                sender.handle_ack(now, &frame).unwrap();
            }
        }
    }
    BurstRun {
        sender,
        receiver,
        delivered,
        arrived,
        dropped,
    }
}

#[test]
fn a_loss_burst_longer_than_the_peers_window_does_not_stop_the_session() {
    // 200 messages a millisecond against a window of 100 IDs, and everything written in the
    // third to the twentieth millisecond lost: without the horizon, 3,600 IDs in a row
    // would be lost and every later one dropped as implausible.
    let run = run_through_a_loss_burst(10_000, 200, 100, 3..20);
    assert!(run.sender.is_idle(), "the sender finished");
    assert_eq!(run.sender.stats().sent, 10_000);
    // Held at the horizon during the burst, the sender lost at most a window of IDs...
    let only_dropped = run.dropped.difference(&run.arrived).count();
    assert!(only_dropped <= 100, "{only_dropped}");
    // ...and probed until the path came back.
    assert!(run.sender.stats().tail_probes >= 1);
    // Every message that got through was delivered, once; none was refused as implausible.
    assert_eq!(run.receiver.stats().implausible, 0);
    assert!(run.delivered.values().all(|&n| n == 1), "at most once");
    assert_eq!(run.delivered.len(), run.arrived.len());
    assert_eq!(run.arrived.len() + only_dropped, 10_000);
}

#[test]
fn under_steady_loss_the_receiver_gives_up_gaps_instead_of_refusing_messages() {
    // 30 % of the datagrams lost, and room for 8 gaps: without `NO_RESEND` the range set
    // fills within a few milliseconds, every later message that opens a gap is refused for
    // good, and no ACK moves the horizon again.
    let mut rng = fastrand::Rng::with_seed(11);
    let receiver_config = ReceiverConfig {
        max_ranges: 8,
        ..ReceiverConfig::default()
    };
    let run = run_unreliable(20_000, 200, receiver_config, |_| rng.f64() < 0.3);
    assert!(run.sender.is_idle(), "the sender finished");
    assert_eq!(run.sender.stats().sent, 20_000);
    assert_eq!(run.receiver.stats().refused, 0);
    assert!(run.receiver.stats().forgotten > 0);
    // Every message that got through was delivered, once.
    assert!(run.delivered.values().all(|&n| n == 1), "at most once");
    assert_eq!(run.delivered.len(), run.arrived.len());
    let only_dropped = run.dropped.difference(&run.arrived).count();
    assert_eq!(run.arrived.len() + only_dropped, 20_000);
}
