//! Unit tests of the sender: loss detection, timeout and backoff, Karn's rule, retries,
//! back-pressure and ID truncation under reordering.

use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use realmq_proto::{Datagram, DatagramWriter, Flags, Frame, Header};

use super::*;

pub(super) const MS: Duration = Duration::from_millis(1);

/// One message per datagram: 300-byte datagrams and 200-byte payloads; the RFC 9002
/// thresholds from the start (most tests here are about them).
fn one_per_datagram() -> SenderConfig {
    SenderConfig {
        max_datagram_size: 300,
        reordering_window_divisor: 0,
        ..SenderConfig::default()
    }
}

/// One message per datagram with the default loss detection (RACK's reordering window
/// too).
fn one_per_datagram_rack() -> SenderConfig {
    SenderConfig {
        reordering_window_divisor: SenderConfig::default().reordering_window_divisor,
        ..one_per_datagram()
    }
}

/// Writes one datagram and returns the IDs it carries, parsed back from the bytes.
pub(super) fn write(s: &mut Sender, now: Instant) -> Vec<u64> {
    written_messages(s, now)
        .into_iter()
        .map(|(id, _, _)| id)
        .collect()
}

/// Writes one datagram and returns the messages it carries, parsed back from the bytes: ID,
/// timestamp, payload.
pub(super) fn written_messages(s: &mut Sender, now: Instant) -> Vec<(u64, u64, Vec<u8>)> {
    let mut buf = [0u8; 2048];
    let max = s.config().max_datagram_size;
    let mut w = DatagramWriter::new(&mut buf, max, Header::session(1)).unwrap();
    if s.write_data(now, &mut w) == 0 {
        return Vec::new();
    }
    let len = w.finish();
    let datagram = Datagram::parse(&buf[..len]).unwrap();
    let mut messages = Vec::new();
    for frame in datagram.frames() {
        if let Frame::Data(data) = frame {
            messages.extend(
                data.messages()
                    .map(|m| (m.id, m.timestamp_us, m.payload.to_vec())),
            );
        }
    }
    messages
}

/// Feeds an ACK for `ranges` (newest first) with `delay_us` to the sender.
pub(super) fn ack(
    s: &mut Sender,
    now: Instant,
    ranges: &[RangeInclusive<u64>],
    delay_us: u64,
) -> Result<(), AckError> {
    let mut buf = [0u8; 2048];
    let mut w = DatagramWriter::new(&mut buf, 1472, Header::session(1)).unwrap();
    w.ack(ranges.iter().cloned(), delay_us).unwrap();
    let len = w.finish();
    let datagram = Datagram::parse(&buf[..len]).unwrap();
    let Some(Frame::Ack(frame)) = datagram.frames().next() else {
        panic!("no ACK frame");
    };
    s.handle_ack(now, &frame)
}

pub(super) fn send_n(s: &mut Sender, n: usize, len: usize) {
    for _ in 0..n {
        s.send(7, &vec![0xab; len]).unwrap();
    }
}

#[test]
fn packet_threshold_declares_messages_three_transmissions_back_lost() {
    let t0 = Instant::now();
    let mut s = Sender::new(one_per_datagram(), t0).unwrap();
    send_n(&mut s, 5, 200);
    for id in 0..5 {
        assert_eq!(write(&mut s, t0), [id]);
    }
    // Only the last transmission arrives.
    ack(&mut s, t0 + MS, &[4..=4], 0).unwrap();
    // tx 0 and 1 are 3 or more behind tx 4; 2 and 3 are not.
    assert_eq!(s.stats().lost, 2);
    assert!(s.has_pending_data());
    assert_eq!(write(&mut s, t0 + MS), [0]);
    assert_eq!(write(&mut s, t0 + MS), [1]);
    assert!(!s.has_pending_data());
    assert_eq!(s.stats().retransmitted, 2);
    assert_eq!(s.in_flight(), 4);
}

#[test]
fn time_threshold_arms_a_loss_timer() {
    let t0 = Instant::now();
    let us = Duration::from_micros(1);
    let mut s = Sender::new(one_per_datagram(), t0).unwrap();
    send_n(&mut s, 3, 200);
    write(&mut s, t0);
    write(&mut s, t0 + us * 500);
    write(&mut s, t0 + us * 1000);
    // An RTT of 10 ms measured on message 2; 0 and 1 are fewer than 3 transmissions back
    // and were sent less than 9/8 · 10 ms ago.
    ack(&mut s, t0 + MS * 11, &[2..=2], 0).unwrap();
    assert_eq!(s.stats().lost, 0);
    assert_eq!(s.rtt().latest(), MS * 10);
    let delay = s.rtt().loss_delay(9.0 / 8.0, MS);
    assert_eq!(delay, us * 11_250);
    let deadline = t0 + delay;
    assert_eq!(s.timers.get(Timer::Loss), Some(deadline));
    assert_eq!(s.poll_timeout(), Some(deadline));
    s.handle_timeout(deadline - us);
    assert_eq!(s.stats().lost, 0);
    s.handle_timeout(deadline);
    assert_eq!(s.stats().lost, 1);
    assert_eq!(s.timers.get(Timer::Loss), Some(deadline + us * 500));
    s.handle_timeout(deadline + us * 500);
    assert_eq!(s.stats().lost, 2);
    assert_eq!(s.timers.get(Timer::Loss), None);
    assert_eq!(write(&mut s, t0 + MS * 20), [0]);
    assert_eq!(write(&mut s, t0 + MS * 20), [1]);
}

#[test]
fn a_resend_is_judged_by_what_was_sent_after_it() {
    let t0 = Instant::now();
    let mut s = Sender::new(one_per_datagram(), t0).unwrap();
    send_n(&mut s, 4, 200);
    for _ in 0..4 {
        write(&mut s, t0);
    }
    // The timeout declares all four lost; message 0 (one fits a datagram) is resent first,
    // in transmission 4.
    let rto = s.rto();
    s.handle_timeout(t0 + rto);
    assert_eq!(s.stats().lost, 4);
    assert_eq!(write(&mut s, t0 + rto), [0]);
    // Now the first copies of 1..=3 are acknowledged (before their resends left). By ID, 0
    // is three below 3 and would be lost at once; by transmission, its resend came after
    // them and is not.
    ack(&mut s, t0 + rto + MS, &[1..=3], 0).unwrap();
    assert_eq!(s.stats().lost, 4);
    assert_eq!(s.stats().acked_after_lost, 3);
    assert!(!s.has_pending_data());
    assert_eq!(s.in_flight(), 1);
}

#[test]
fn rto_resends_the_oldest_asks_for_an_ack_and_backs_off() {
    let t0 = Instant::now();
    let mut s = Sender::new(SenderConfig::default(), t0).unwrap();
    send_n(&mut s, 3, 10);
    assert_eq!(write(&mut s, t0), [0, 1, 2]);
    // Before any sample: 100 ms + 4 · 50 ms + 2 ms peer ACK delay.
    let rto = MS * 302;
    assert_eq!(s.rto(), rto);
    assert_eq!(s.timers.get(Timer::Rto), Some(t0 + rto));
    s.handle_timeout(t0 + rto - Duration::from_micros(1));
    assert_eq!(s.stats().rto_fired, 0);
    s.handle_timeout(t0 + rto);
    assert_eq!(s.stats().rto_fired, 1);
    assert!(s.wants_ack_now());
    assert_eq!(s.rto(), rto * 2);
    // The oldest messages, all fitting one datagram, are resent; the flag clears.
    assert_eq!(write(&mut s, t0 + rto), [0, 1, 2]);
    assert!(!s.wants_ack_now());
    let t1 = t0 + rto;
    assert_eq!(s.timers.get(Timer::Rto), Some(t1 + rto * 2));
    s.handle_timeout(t1 + rto * 2);
    assert_eq!(s.stats().rto_fired, 2);
    assert_eq!(s.rto(), rto * 4);
    write(&mut s, t1 + rto * 2);
    // Progress resets the backoff (RFC 9002 §6.2.1) and, everything acked, disarms it.
    ack(&mut s, t1 + rto * 3, &[0..=2], 0).unwrap();
    assert_eq!(s.timers.get(Timer::Rto), None);
    assert!(s.is_idle());
    assert_eq!(s.rto_backoff, 0);
}

/// A default sender whose first two messages were acknowledged after a round trip of 100 µs
/// (its only RTT sample), then `more` messages of 10 bytes written at `t1`, 1 ms after the
/// first. Returns the sender, `t1` and the IDs written then.
fn after_a_100_us_round_trip(more: usize) -> (Sender, Instant, Vec<u64>) {
    let t0 = Instant::now();
    let mut s = Sender::new(SenderConfig::default(), t0).unwrap();
    send_n(&mut s, 2, 10);
    assert_eq!(write(&mut s, t0), [0, 1]);
    ack(&mut s, t0 + Duration::from_micros(100), &[0..=1], 0).unwrap();
    send_n(&mut s, more, 10);
    let t1 = t0 + MS;
    let written = write(&mut s, t1);
    (s, t1, written)
}

#[test]
fn a_lost_ack_is_asked_for_by_a_probe_before_the_timeout() {
    let (mut s, t1, written) = after_a_100_us_round_trip(3);
    assert_eq!(written, [2, 3, 4]);
    let us = Duration::from_micros(1);
    // A 100 µs path: 100 µs + max(4 · 50 µs, 1 ms) + 2 ms; the timeout's floor is 10 ms.
    let pto = us * 3100;
    assert_eq!(s.pto(), pto);
    assert_eq!(s.rto(), MS * 10);
    let window = s.congestion_window();
    // Their ACK is lost.
    assert_eq!(s.timers.get(Timer::Probe), Some(t1 + pto));
    s.handle_timeout(t1 + pto - us);
    assert!(!s.has_pending_data());
    let first = t1 + pto;
    s.handle_timeout(first);
    assert_eq!(s.stats().probes, 1);
    // The probe resends the oldest message in flight, whatever the congestion window says,
    // asking for an ACK at once; nothing is declared lost, and the window stays.
    assert!(s.wants_ack_now());
    assert_eq!(write(&mut s, first), [2]);
    assert_eq!((s.stats().lost, s.stats().retransmitted), (0, 1));
    assert_eq!(s.in_flight(), 3);
    assert_eq!(s.congestion_window(), window);
    // Unanswered, the next probe waits twice as long, still before the timeout, which the
    // probe's write restarted (10 ms); the one after would not be: the timeout takes over.
    let second = first + pto * 2;
    assert_eq!(s.timers.get(Timer::Probe), Some(second));
    s.handle_timeout(second);
    // The resend of 2 went unanswered for a probe timeout: it is declared lost (loss
    // detection cannot judge a resend), and the probe resends the oldest left in flight, 3.
    assert_eq!(write(&mut s, second), [2, 3]);
    assert_eq!(s.stats().lost, 1);
    assert_eq!(s.stats().probes, 2);
    assert_eq!(s.timers.get(Timer::Probe), None);
    assert_eq!(s.timers.get(Timer::Rto), Some(second + MS * 10));
    // The answer acknowledges everything: no timeout, backoff reset.
    ack(&mut s, second + us * 100, &[0..=4], 0).unwrap();
    assert!(s.is_idle());
    assert_eq!((s.stats().lost, s.stats().rto_fired), (1, 0));
    assert_eq!(s.pto_count, 0);
    assert_eq!(s.timers.get(Timer::Probe), None);
}

#[test]
fn a_probe_with_everything_outstanding_queued_is_a_heartbeat() {
    let (mut s, _, written) = after_a_100_us_round_trip(1);
    assert_eq!(written, [2]);
    // The first probe queues message 2; before it is written, the second finds nothing in
    // flight to resend and asks for a HEARTBEAT.
    let first = s.timers.get(Timer::Probe).unwrap();
    s.handle_timeout(first);
    assert!(!s.heartbeat_due(first));
    let second = s.timers.get(Timer::Probe).unwrap();
    s.handle_timeout(second);
    assert_eq!(s.stats().probes, 2);
    assert!(s.heartbeat_due(second));
    let mut buf = [0u8; 2048];
    let mut w = DatagramWriter::new(&mut buf, 1472, Header::session(1)).unwrap();
    assert!(s.write_heartbeat(second, &mut w));
    assert!(!s.heartbeat_due(second));
    assert_eq!(s.stats().lost, 0);
}

#[test]
fn without_the_timeout_floor_above_it_no_probe_timeout_is_armed() {
    // Before any RTT sample both are 302 ms (100 ms + 4 · 50 ms + 2 ms): only the
    // retransmission timeout runs.
    let t0 = Instant::now();
    let mut s = Sender::new(SenderConfig::default(), t0).unwrap();
    send_n(&mut s, 3, 10);
    write(&mut s, t0);
    assert_eq!(s.pto(), s.rto());
    assert_eq!(s.timers.get(Timer::Probe), None);
    assert!(s.timers.get(Timer::Rto).is_some());
}

#[test]
fn rto_backoff_stops_at_the_maximum() {
    let t0 = Instant::now();
    let mut s = Sender::new(
        SenderConfig {
            max_retries: 100,
            ..SenderConfig::default()
        },
        t0,
    )
    .unwrap();
    send_n(&mut s, 1, 10);
    write(&mut s, t0);
    let mut now = t0;
    for _ in 0..20 {
        now = s.timers.get(Timer::Rto).unwrap();
        s.handle_timeout(now);
        write(&mut s, now);
    }
    assert_eq!(s.rto(), s.config().max_rto);
    assert_eq!(s.timers.get(Timer::Rto), Some(now + s.config().max_rto));
}

#[test]
fn karn_only_never_resent_messages_give_rtt_samples() {
    let t0 = Instant::now();
    let mut s = Sender::new(one_per_datagram(), t0).unwrap();
    send_n(&mut s, 2, 200);
    write(&mut s, t0);
    write(&mut s, t0);
    let rto = s.rto();
    s.handle_timeout(t0 + rto);
    assert_eq!(write(&mut s, t0 + rto), [0]);
    // Message 0 was resent: acknowledging it (as the largest) gives no sample.
    ack(&mut s, t0 + rto + MS, &[0..=0], 0).unwrap();
    assert_eq!(s.rtt().samples(), 0);
    assert_eq!(s.stats().rtt_us.len(), 0);
    // Message 1 never was: 500 ms after it was sent, with 2 ms of ACK delay.
    ack(&mut s, t0 + MS * 500, &[0..=1], 2000).unwrap();
    assert_eq!(s.rtt().samples(), 1);
    assert_eq!(s.rtt().latest(), MS * 500);
    assert_eq!(s.stats().rtt_us.len(), 1);
    assert_eq!(
        s.stats().rtt_us.max(),
        s.stats().rtt_us.highest_equivalent(500_000)
    );
}

#[test]
fn retries_exhausted_make_a_message_undeliverable() {
    let t0 = Instant::now();
    let config = SenderConfig {
        max_retries: 2,
        ..SenderConfig::default()
    };
    let mut s = Sender::new(config, t0).unwrap();
    send_n(&mut s, 1, 10);
    write(&mut s, t0);
    let mut now = t0;
    let mut written = 1;
    while s.in_flight() > 0 {
        now = s.timers.get(Timer::Rto).unwrap();
        s.handle_timeout(now);
        written += write(&mut s, now).len();
        assert!(written <= 3);
    }
    assert_eq!(written, 3, "one send and two resends");
    let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
    // The backed-off timeouts are long enough for the silent peer to be declared unreachable.
    assert!(
        events.contains(&SenderEvent::Undeliverable { id: 0 }),
        "{events:?}"
    );
    assert_eq!(s.stats().undeliverable, 1);
    assert!(s.is_idle());
    assert_eq!(s.window_usage(), (0, 0));
    // A late ACK for it is harmless.
    ack(&mut s, now + MS, &[0..=0], 0).unwrap();
    assert_eq!(s.stats().acked, 0);
}

#[test]
fn back_pressure_at_the_message_and_byte_bounds() {
    let t0 = Instant::now();
    let config = SenderConfig {
        window_messages: 4,
        ..SenderConfig::default()
    };
    let mut s = Sender::new(config, t0).unwrap();
    send_n(&mut s, 4, 10);
    assert_eq!(s.send(0, b"x"), Err(EnqueueError::Backpressure));
    write(&mut s, t0);
    // Acknowledging the middle frees nothing: the window starts at the oldest unacked.
    ack(&mut s, t0 + MS, &[1..=3], 0).unwrap();
    assert_eq!(s.send(0, b"x"), Err(EnqueueError::Backpressure));
    ack(&mut s, t0 + MS, &[0..=3], 0).unwrap();
    assert_eq!(s.send(0, b"x"), Ok(4));

    let config = SenderConfig {
        window_bytes: 1472,
        ..SenderConfig::default()
    };
    let mut s = Sender::new(config, t0).unwrap();
    send_n(&mut s, 7, 200);
    assert_eq!(s.send(0, &[0; 200]), Err(EnqueueError::Backpressure));
    // Each is stored with its 4 bytes of DATA framing (ID gap, timestamp delta, length).
    assert_eq!(s.window_usage(), (7, 7 * 204));
    // Small messages still fit: 41 bytes and 3 of framing fill the 44 left.
    assert_eq!(s.send(0, &[0; 42]), Err(EnqueueError::Backpressure));
    assert_eq!(s.send(0, &[0; 41]), Ok(7));
    let max = s.config().max_payload();
    assert_eq!(
        s.send(0, &vec![0; max + 1]),
        Err(EnqueueError::TooLarge { len: max + 1, max })
    );
}

#[test]
fn repeated_ack_ranges_count_once() {
    let t0 = Instant::now();
    let mut s = Sender::new(SenderConfig::default(), t0).unwrap();
    send_n(&mut s, 10, 10);
    write(&mut s, t0);
    ack(&mut s, t0 + MS, &[8..=9, 4..=5], 0).unwrap();
    ack(&mut s, t0 + MS, &[8..=9, 4..=5], 0).unwrap();
    assert_eq!(s.stats().acked, 4);
    assert_eq!(s.in_flight(), 6);
    assert_eq!(s.in_flight_bytes(), 60);
    ack(&mut s, t0 + MS, &[0..=9], 0).unwrap();
    assert_eq!(s.stats().acked, 10);
    assert!(s.is_idle());
    assert_eq!(s.largest_acked(), Some(9));
}

#[test]
fn an_ack_naming_unsent_ids_costs_that_part_only() {
    let t0 = Instant::now();
    let mut s = Sender::new(SenderConfig::default(), t0).unwrap();
    assert_eq!(
        ack(&mut s, t0, &[0..=0], 0),
        Err(AckError::UnsentId {
            largest: 0,
            largest_sent: None
        })
    );
    send_n(&mut s, 3, 10);
    write(&mut s, t0);
    // IDs 3..=5 were never sent: reported, ignored; 0..=2 are acknowledged.
    assert!(ack(&mut s, t0, &[0..=5], 0).is_err());
    assert_eq!(s.stats().acked, 3);
    assert_eq!(s.stats().acks_unsent, 2);
    assert!(s.is_idle());
    assert_eq!(s.largest_acked(), Some(2));
    assert_eq!(s.poll_event(), None);
}

#[test]
fn a_run_of_acks_beyond_the_peer_window_is_a_protocol_violation() {
    let t0 = Instant::now();
    let mut s = Sender::new(SenderConfig::default(), t0).unwrap();
    send_n(&mut s, 3, 10);
    write(&mut s, t0);
    let far = 2 + s.config().peer_id_window + 1;
    for _ in 0..MAX_VIOLATING_ACKS - 1 {
        assert!(ack(&mut s, t0, &[far..=far], 0).is_err());
    }
    // An honest ACK in between resets the run.
    ack(&mut s, t0, &[0..=0], 0).unwrap();
    for _ in 0..MAX_VIOLATING_ACKS - 1 {
        assert!(ack(&mut s, t0, &[far..=far], 0).is_err());
    }
    assert_eq!(s.poll_event(), None);
    assert!(ack(&mut s, t0, &[far..=far], 0).is_err());
    assert_eq!(s.poll_event(), Some(SenderEvent::ProtocolViolation));
    // Within the window, a forged ID the receiver accepted is no violation.
    let mut s = Sender::new(SenderConfig::default(), t0).unwrap();
    send_n(&mut s, 3, 10);
    write(&mut s, t0);
    for _ in 0..100 {
        assert!(ack(&mut s, t0, &[10..=10, 0..=2], 0).is_err());
    }
    assert_eq!(s.poll_event(), None);
    assert_eq!(s.stats().acked, 3);
}

#[test]
fn heartbeat_is_due_after_an_idle_interval() {
    let t0 = Instant::now();
    let mut s = Sender::new(SenderConfig::default(), t0).unwrap();
    let h = s.config().heartbeat_interval;
    let mut buf = [0u8; 1500];
    let mut w = DatagramWriter::new(&mut buf, 1472, Header::session(1)).unwrap();
    assert!(!s.write_heartbeat(t0 + h / 2, &mut w));
    send_n(&mut s, 1, 10);
    write(&mut s, t0 + h / 2);
    assert!(!s.heartbeat_due(t0 + h));
    assert!(s.write_heartbeat(t0 + h / 2 + h, &mut w));
    let len = w.finish();
    let datagram = Datagram::parse(&buf[..len]).unwrap();
    assert_eq!(
        datagram.frames().next(),
        Some(Frame::Heartbeat(Heartbeat {
            timestamp_us: 150_000
        }))
    );
    assert_eq!(s.stats().heartbeats, 1);
    assert!(!s.heartbeat_due(t0 + h / 2 + h));
}

/// Runs `s`'s timers from `from` as a session layer would, writing every HEARTBEAT that falls
/// due (but none within `pace` of the one before: a slow event loop), until it reports the
/// peer unreachable or `limit` passes; `answered(k)` says whether
/// the peer answers the `k`-th HEARTBEAT (at once). Returns when it was reported, if it was,
/// how many HEARTBEATs were written, and whether the failure detector alone judged the peer
/// dead at any point.
fn run_heartbeats(
    s: &mut Sender,
    from: Instant,
    limit: Duration,
    pace: Duration,
    answered: impl Fn(u64) -> bool,
) -> (Option<Instant>, u64, bool) {
    let mut now = from;
    let mut detector_dead = false;
    let mut last_written: Option<Instant> = None;
    let mut buf = [0u8; 1500];
    while now < from + limit {
        if s.heartbeat_due(now) && last_written.is_none_or(|last| now >= last + pace) {
            last_written = Some(now);
            let mut w = DatagramWriter::new(&mut buf, 1472, Header::session(1)).unwrap();
            assert!(s.write_heartbeat(now, &mut w));
            if answered(s.stats().heartbeats) {
                s.handle_peer_activity(now);
            }
        }
        // Heartbeats written when due: the deadline never stays in place (the first may
        // have passed while the caller was not running the timers).
        // A HEARTBEAT held back by the pace leaves no deadline: the loop comes round anyway.
        let next = match s.poll_timeout() {
            Some(next) => next,
            None if !pace.is_zero() && s.heartbeat_due(now) => now + pace,
            None => panic!("no deadline while the peer is silent"),
        };
        assert!(
            next > now || now == from || s.heartbeat_due(now),
            "poll_timeout stuck at {next:?}"
        );
        now = next.max(now + Duration::from_micros(100));
        s.handle_timeout(now);
        detector_dead |= s.liveness().is_dead(now);
        if s.poll_event() == Some(SenderEvent::PeerUnreachable) {
            return (Some(now), s.stats().heartbeats, detector_dead);
        }
    }
    (None, s.stats().heartbeats, detector_dead)
}

/// A sender whose one message in flight was acknowledged every heartbeat interval for two
/// seconds, and when that was (the last ACK).
fn acked_for_two_seconds() -> (Sender, Instant) {
    let t0 = Instant::now();
    let mut s = Sender::new(SenderConfig::default(), t0).unwrap();
    let h = s.config().heartbeat_interval;
    send_n(&mut s, 1, 10);
    write(&mut s, t0);
    for i in 1..=20u32 {
        ack(&mut s, t0 + h * i, &[0..=0], 0).unwrap();
    }
    (s, t0 + h * 20)
}

#[test]
fn silence_after_acks_makes_the_peer_unreachable() {
    let (mut s, last) = acked_for_two_seconds();
    assert!(!s.peer_unreachable(last + s.config().heartbeat_interval));
    let (declared, heartbeats, _) = run_heartbeats(
        &mut s,
        last,
        Duration::from_secs(10),
        Duration::ZERO,
        |_| false,
    );
    let declared = declared.expect("declared unreachable within 10 s");
    assert!(s.peer_unreachable(declared));
    assert!(declared > last + s.config().liveness.grace_period);
    // Once suspected it asked every ask interval: enough asks within the grace period, so
    // the verdict came with the detector's (at most a check interval later), not after.
    assert!(
        heartbeats >= u64::from(reachability::ASKS_BEFORE_UNREACHABLE),
        "{heartbeats}"
    );
    let check = s.config().liveness.check_interval;
    assert!(!s.liveness().is_dead(declared - check));
}

#[test]
fn a_peer_that_answers_one_ask_in_four_is_never_unreachable() {
    // 50 % loss each way: three round trips in four fail. Silences longer than the failure
    // detector allows come often, but not forty unanswered asks in a row.
    let (mut s, last) = acked_for_two_seconds();
    let mut rng = fastrand::Rng::with_seed(4);
    let answers: Vec<bool> = (0..2_000).map(|_| rng.u8(0..4) == 0).collect();
    let (declared, heartbeats, detector_dead) =
        run_heartbeats(&mut s, last, Duration::from_secs(60), Duration::ZERO, |k| {
            answers[(k as usize) % answers.len()]
        });
    assert_eq!(declared, None, "after {heartbeats} heartbeats");
    // Asked every ask interval while suspected, it heard back before the detector gave up.
    assert!(!detector_dead);
}

#[test]
fn a_peer_silent_beyond_the_detectors_bound_but_answering_asks_is_not_unreachable() {
    // A peer that answers one ask in thirty, and an event loop that writes at most one
    // HEARTBEAT every 50 ms: between answers the detector judges the peer dead, but never
    // forty asks in a row went unanswered.
    let (mut s, last) = acked_for_two_seconds();
    let (declared, heartbeats, detector_dead) =
        run_heartbeats(&mut s, last, Duration::from_secs(30), MS * 50, |k| {
            k % 30 == 0
        });
    assert_eq!(declared, None, "after {heartbeats} heartbeats");
    assert!(detector_dead);
}

/// A datagram overtaken by many later ones still decodes to the right IDs: the sender sizes
/// the truncated first ID for a whole window of reordering.
#[test]
fn ids_survive_reordering_behind_later_datagrams() {
    let t0 = Instant::now();
    let mut s = Sender::new(SenderConfig::default(), t0).unwrap();
    send_n(&mut s, 1000, 8);
    // Write the first 1000, acknowledging as the congestion window fills.
    let mut written = 0;
    while written < 1000 {
        match write(&mut s, t0).last() {
            Some(&last) => written = last + 1,
            None => ack(&mut s, t0 + MS, &[0..=written - 1], 0).unwrap(),
        }
    }
    ack(&mut s, t0 + MS, &[0..=999], 0).unwrap();
    send_n(&mut s, 20, 8);
    let mut early = [0u8; 1500];
    let mut w = DatagramWriter::new(&mut early, 1472, Header::session(1)).unwrap();
    assert_eq!(s.write_data(t0, &mut w), 20);
    let early_len = w.finish();
    // 500 more messages overtake it.
    send_n(&mut s, 500, 8);
    let mut largest_received = Some(999);
    loop {
        let mut buf = [0u8; 1500];
        let mut w = DatagramWriter::new(&mut buf, 1472, Header::session(1)).unwrap();
        if s.write_data(t0, &mut w) == 0 {
            break;
        }
        let len = w.finish();
        let datagram = Datagram::parse(&buf[..len]).unwrap();
        for frame in datagram.frames() {
            if let Frame::Data(data) = frame {
                largest_received = largest_received.max(data.messages().map(|m| m.id).max());
            }
        }
    }
    assert_eq!(largest_received, Some(1519));
    let datagram = Datagram::parse(&early[..early_len]).unwrap();
    let Some(Frame::Data(data)) = datagram.frames().next() else {
        panic!()
    };
    assert_eq!(data.first_id(), 1000);
    assert!(!datagram.header.flags.contains(Flags::ACK_NOW));
}

#[test]
fn a_transmission_written_a_reordering_window_later_proves_a_loss_at_once() {
    let t0 = Instant::now();
    let us = Duration::from_micros(1);
    let mut s = Sender::new(one_per_datagram_rack(), t0).unwrap();
    send_n(&mut s, 4, 200);
    // 0 and 1 in one burst; 2 and 3 in the next, 200 µs later (a paced sender on a LAN).
    assert_eq!(write(&mut s, t0), [0]);
    assert_eq!(write(&mut s, t0), [1]);
    assert_eq!(write(&mut s, t0 + us * 200), [2]);
    assert_eq!(write(&mut s, t0 + us * 200), [3]);
    // 1 arrives, 0 does not: an RTT of 40 µs, and within its burst 0 may just be late.
    ack(&mut s, t0 + us * 40, &[1..=1], 0).unwrap();
    assert_eq!(s.stats().lost, 0);
    // 2 arrives: written 200 µs after 0, more than min_rtt / 4 = 10 µs, so 0 is lost now,
    // with one transmission between them and long before the 1 ms time threshold.
    ack(&mut s, t0 + us * 240, &[1..=2], 0).unwrap();
    assert_eq!(s.stats().lost, 1);
    assert_eq!(write(&mut s, t0 + us * 240), [0]);
}

#[test]
fn without_the_reordering_window_the_same_loss_waits_for_the_time_threshold() {
    let t0 = Instant::now();
    let us = Duration::from_micros(1);
    let mut s = Sender::new(one_per_datagram(), t0).unwrap();
    send_n(&mut s, 4, 200);
    write(&mut s, t0);
    write(&mut s, t0);
    write(&mut s, t0 + us * 200);
    write(&mut s, t0 + us * 200);
    ack(&mut s, t0 + us * 40, &[1..=1], 0).unwrap();
    ack(&mut s, t0 + us * 240, &[1..=2], 0).unwrap();
    assert_eq!(s.stats().lost, 0);
    // The time threshold's 1 ms floor (RFC 9002 kGranularity).
    assert_eq!(s.timers.get(Timer::Loss), Some(t0 + MS));
}

/// A sender with a 1 ms RTT sample that sends messages 1 and 2 at `t1` and `t1 + 1 ms`
/// (`t1` = 2 ms), whose ACK is lost: the timeout declares both lost, and its probe (one
/// datagram) resends message 1 while 2 waits in the queue, never resent. Returns the
/// sender, `t1` and when the timeout fired.
fn timed_out_with_one_message_waiting() -> (Sender, Instant, Instant) {
    let t0 = Instant::now();
    let mut s = Sender::new(one_per_datagram(), t0).unwrap();
    send_n(&mut s, 1, 200);
    write(&mut s, t0);
    ack(&mut s, t0 + MS, &[0..=0], 0).unwrap();
    assert_eq!(s.rtt().latest(), MS);
    let t1 = t0 + MS * 2;
    send_n(&mut s, 2, 200);
    assert_eq!(write(&mut s, t1), [1]);
    assert_eq!(write(&mut s, t1 + MS), [2]);
    let fire = s.timers.get(Timer::Rto).unwrap();
    assert!(fire - (t1 + MS) > MS * 4, "{:?}", fire - (t1 + MS));
    s.handle_timeout(fire);
    assert_eq!(write(&mut s, fire), [1]);
    (s, t1, fire)
}

#[test]
fn an_ack_answering_a_timeouts_probe_samples_the_path_not_the_wait() {
    let (mut s, t1, fire) = timed_out_with_one_message_waiting();
    // The probe's ACK comes back 1 ms later, naming 2 as its largest: 2 arrived at
    // t1 + 1.5 ms, the ACK left 0.5 ms before it arrives here.
    let now = fire + MS;
    let reported = (now - MS / 2) - (t1 + MS * 3 / 2);
    ack(&mut s, now, &[0..=2], reported.as_micros() as u64).unwrap();
    // Message 2 was sent long before: the path took 1 ms of it, the rest was the wait.
    assert_eq!(s.rtt().samples(), 2);
    assert_eq!(s.rtt().latest(), MS);
    assert!(s.rtt().smoothed() <= MS * 2, "{:?}", s.rtt().smoothed());
}

#[test]
fn a_late_repeat_of_a_lost_ack_samples_the_path_without_any_timeout() {
    // Found at 20 % loss both ways on loopback: ACKs whose prompt copy was lost came back
    // tens of milliseconds later, after no timeout (a probe, or the receiver's next ACK);
    // capped at the peer's maximum delay, their samples lifted the RTT estimate to tens of
    // milliseconds, the timeout with it, and the session crawled at 12 k msgs/s.
    let (mut s, t1, written) = after_a_100_us_round_trip(1);
    assert_eq!(written, [2]);
    let us = Duration::from_micros(1);
    // Message 2 arrived 50 µs after it was sent; this ACK of it left 30 ms later.
    let now = t1 + MS * 30 + us * 100;
    ack(&mut s, now, &[0..=2], 30_000 + 50).unwrap();
    assert_eq!(s.rtt().samples(), 2);
    // The path's 50 µs, kept at the minimum of 100 µs: not 28 ms.
    assert_eq!(s.rtt().latest(), us * 100);
    assert_eq!(s.rtt().smoothed(), us * 100);
    let histogram = &s.stats().rtt_us;
    assert!(
        histogram.equivalent(histogram.max(), 30_100),
        "the histogram keeps what was measured"
    );
}

#[test]
fn an_overstated_delay_cannot_drag_the_rtt_under_its_minimum() {
    let (mut s, _, fire) = timed_out_with_one_message_waiting();
    // The receiver claims it held message 2 for longer than it has existed.
    ack(&mut s, fire + MS, &[0..=2], 60_000_000).unwrap();
    assert_eq!(s.rtt().samples(), 2);
    assert_eq!(s.rtt().min(), Some(MS));
    assert_eq!(s.rtt().latest(), MS);
}

/// Messages are stored in their wire form (large ones bare) and new ones copied into
/// datagrams as runs: every message must come out with its own ID, timestamp and payload,
/// whatever the sizes and timestamp steps (one- to eight-byte varints), across the storage
/// ring's wrap-around and after resends in the same frame.
#[test]
fn stored_runs_come_out_as_the_messages_sent() {
    use std::collections::{BTreeMap, BTreeSet};

    let t0 = Instant::now();
    let config = SenderConfig {
        window_bytes: 3000,
        ..SenderConfig::default()
    };
    let mut s = Sender::new(config, t0).unwrap();
    let mut rng = fastrand::Rng::with_seed(11);
    let mut expected: BTreeMap<u64, (u64, Vec<u8>)> = BTreeMap::new();
    let mut delivered = BTreeSet::new();
    let mut now = t0;
    let mut timestamp = 1_000_000u64;
    // 300 rounds of sending with loss, then up to 20 without, to drain the window.
    for round in 0..320 {
        if round >= 300 && s.is_idle() {
            break;
        }
        now += MS;
        if round < 300 {
            loop {
                timestamp = match rng.u8(0..4) {
                    0 => timestamp,
                    1 => timestamp + rng.u64(1..30),
                    2 => timestamp.saturating_sub(rng.u64(0..5_000)),
                    _ => timestamp + rng.u64(0..3_000_000_000),
                };
                // Now and then one large enough to be stored bare, between runs.
                let len = if rng.u8(0..8) == 0 {
                    rng.usize(256..600)
                } else {
                    rng.usize(0..120)
                };
                let payload: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
                match s.send(timestamp, &payload) {
                    Ok(id) => expected.insert(id, (timestamp, payload)),
                    Err(EnqueueError::Backpressure) => break,
                    Err(e) => panic!("{e}"),
                };
            }
        }
        let mut written = Vec::new();
        loop {
            let messages = written_messages(&mut s, now);
            if messages.is_empty() {
                break;
            }
            for (id, timestamp_us, payload) in messages {
                assert_eq!(expected[&id], (timestamp_us, payload), "id {id}");
                written.push(id);
            }
        }
        // While sending, every seventh message's datagram is lost half the time: the rest is
        // acknowledged, so the sender resends those ahead of new messages in later frames.
        for &id in &written {
            if round >= 300 || id % 7 != 3 || rng.bool() {
                delivered.insert(id);
                ack(&mut s, now, &[id..=id], 0).unwrap();
            }
        }
        s.handle_timeout(now + Duration::from_secs(1));
    }
    assert!(s.stats().retransmitted > 0, "resends were written");
    assert!(expected.len() > 1_000, "the ring wrapped many times");
    assert!(s.is_idle(), "everything resolved in the end");
    // Each message was acknowledged or, lost too often, reported as given up.
    let mut given_up = BTreeSet::new();
    while let Some(event) = s.poll_event() {
        if let SenderEvent::Undeliverable { id } = event {
            given_up.insert(id);
        }
    }
    assert_eq!(s.stats().undeliverable, given_up.len() as u64);
    for id in expected.keys() {
        assert!(
            delivered.contains(id) != given_up.contains(id),
            "message {id}: delivered {}, given up {}",
            delivered.contains(id),
            given_up.contains(id)
        );
    }
}

/// A datagram ends only where the next new message would not fit: neither the room left nor
/// the congestion window would take it. Runs of small messages, large ones stored bare
/// between them and the storage ring's wrap-around all end frames where the writer must
/// look further than the run it began with.
#[test]
fn a_datagram_ends_only_where_the_next_message_does_not_fit() {
    use realmq_proto::FollowingPrefix;
    use std::collections::BTreeMap;

    use super::congestion::MESSAGE_OVERHEAD;

    let t0 = Instant::now();
    let config = SenderConfig {
        window_bytes: 5000,
        ..SenderConfig::default()
    };
    let max = config.max_datagram_size;
    let mut s = Sender::new(config, t0).unwrap();
    let mut rng = fastrand::Rng::with_seed(5);
    let mut stored: BTreeMap<u64, (u64, usize)> = BTreeMap::new();
    let mut timestamp = 1_000u64;
    let (mut datagrams, mut checked) = (0, 0);
    for round in 0..200 {
        let now = t0 + MS * round;
        loop {
            if rng.u8(0..3) == 0 {
                timestamp += rng.u64(0..100_000);
            }
            let len = match rng.u8(0..10) {
                0 => rng.usize(256..700),
                1..=3 => rng.usize(0..120),
                _ => 64,
            };
            match s.send(timestamp, &vec![7; len]) {
                Ok(id) => stored.insert(id, (timestamp, len)),
                Err(EnqueueError::Backpressure) => break,
                Err(e) => panic!("{e}"),
            };
        }
        loop {
            let mut buf = [0u8; 2048];
            let mut w = DatagramWriter::new(&mut buf, max, Header::session(1)).unwrap();
            let (window, in_flight) = s.congestion_window();
            if s.write_data(now, &mut w) == 0 {
                break;
            }
            datagrams += 1;
            let room = max - w.finish();
            let (_, in_flight_after) = s.congestion_window();
            let last = s.largest_sent().unwrap();
            let Some(&(next_ts, next_len)) = stored.get(&(last + 1)) else {
                continue;
            };
            let cost = FollowingPrefix::new(stored[&last].0, next_ts, next_len)
                .unwrap()
                .len()
                + next_len;
            let fits_window =
                in_flight == 0 || in_flight_after + next_len + MESSAGE_OVERHEAD <= window;
            assert!(
                cost > room || !fits_window,
                "datagram {datagrams} ended before message {} ({next_len} bytes) with {room} \
                 bytes left",
                last + 1
            );
            checked += 1;
        }
        let acked = s.largest_sent().unwrap();
        ack(&mut s, now, &[0..=acked], 0).unwrap();
    }
    assert!(
        checked > 500,
        "{checked} datagrams were followed by a message"
    );
}
