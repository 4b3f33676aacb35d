//! The two ways an ACK is taken — a run of first transmissions summed and marked in one
//! pass ([`Window::acknowledge_first_transmissions`]), or message by message — must leave
//! the sender in the same state. Two senders get the same random life (batches, datagrams,
//! ACKs of random parts in random order, losses, timeouts), one of them acknowledging
//! message by message only, and everything they show must agree after every step.

use std::time::{Duration, Instant};

use super::tests::{ack, written_messages};
use super::*;

/// Everything observable about a sender, and the reordering window it keeps inside.
fn observed(s: &Sender, now: Instant) -> String {
    let st = s.stats();
    format!(
        "sent {} resent {} acked {} acked_after_lost {} lost {} undeliverable {} rto {} \
         probes {} datagrams {} rtt_samples {} | in_flight {} {} unsent {} window {:?} \
         cwnd {:?} largest {:?} {:?} | rtt {:?} {:?} {:?} rto {:?} | timeout {:?} \
         pending {} ack_now {} reordering {} queued {}",
        st.sent,
        st.retransmitted,
        st.acked,
        st.acked_after_lost,
        st.lost,
        st.undeliverable,
        st.rto_fired,
        st.probes,
        st.datagrams,
        st.rtt_us.len(),
        s.in_flight(),
        s.in_flight_bytes(),
        s.unsent(),
        s.window_usage(),
        s.congestion_window(),
        s.largest_acked(),
        s.largest_sent(),
        s.rtt().smoothed(),
        s.rtt().min(),
        s.rtt().latest(),
        s.rto(),
        s.poll_timeout().map(|t| t.saturating_duration_since(now)),
        s.has_pending_data(),
        s.wants_ack_now(),
        s.reordering_window_mult,
        s.queued,
    )
}

#[test]
fn a_run_summed_in_one_pass_acknowledges_exactly_what_the_message_walk_does() {
    let mut rng = fastrand::Rng::with_seed(21);
    let t0 = Instant::now();
    // A window no larger than the first congestion window: at its cap from the start, so
    // the summed path is taken until a loss halves the window, and again once it regrows.
    let config = SenderConfig {
        max_datagram_size: 400,
        window_messages: 600,
        window_bytes: 40_000,
        ..SenderConfig::default()
    };
    let mut fast_acks = 0;
    // Many short lives, each starting at the cap: a loss halves the congestion window,
    // which then takes far longer than a life to grow back.
    for life in 0..300 {
        let mut summed = Sender::new(config.clone(), t0).unwrap();
        let mut walked = Sender::new(config.clone(), t0).unwrap();
        walked.per_message_acks = true;
        let mut now = t0;
        // Datagrams written and not yet arrived (their IDs), and the IDs the peer has.
        let mut on_the_wire: Vec<Vec<u64>> = Vec::new();
        let mut received = std::collections::BTreeSet::new();
        // Half the lives on a path that never reorders, whose reordering window stays put
        // unless an ACK is wrongly taken for a sign of reordering.
        let reordering = life % 2 == 0;
        for step in 0..rng.u32(20..300) {
            let step = (life, step);
            now += Duration::from_micros(rng.u64(0..400));
            match rng.u8(0..10) {
                0..=2 => {
                    let (len, count) = (rng.usize(0..60), rng.u64(1..40));
                    let body = |id: u64, p: &mut [u8]| p.fill(id as u8);
                    let a = summed.send_many(7, len, count, body);
                    let b = walked.send_many(7, len, count, body);
                    assert_eq!(a, b, "step {step:?}");
                }
                3..=5 => {
                    for _ in 0..rng.usize(1..6) {
                        let a = written_messages(&mut summed, now);
                        let b = written_messages(&mut walked, now);
                        assert_eq!(a, b, "step {step:?}");
                        if a.is_empty() {
                            break;
                        }
                        // One datagram in forty never arrives.
                        if rng.u8(0..40) != 0 {
                            on_the_wire.push(a.iter().map(|&(id, _, _)| id).collect());
                        }
                    }
                }
                6..=8 if !on_the_wire.is_empty() => {
                    // Some datagrams arrive, in the order written or, one time in four, in a
                    // random order (later ones acknowledged first), and the peer answers with the newest ranges of all
                    // it has received, as a receiver does.
                    let reorder = reordering && rng.u8(0..4) == 0;
                    for _ in 0..rng.usize(1..=on_the_wire.len()) {
                        let next = if reorder {
                            rng.usize(0..on_the_wire.len())
                        } else {
                            0
                        };
                        received.extend(on_the_wire.remove(next));
                    }
                    let mut ranges: Vec<std::ops::RangeInclusive<u64>> = Vec::new();
                    for &id in received.iter().rev() {
                        let full = ranges.len() == 16;
                        match ranges.last_mut() {
                            Some(r) if *r.start() == id + 1 => *r = id..=*r.end(),
                            _ if full => break,
                            _ => ranges.push(id..=id),
                        }
                    }
                    let (before, at_cap) = (summed.stats().acked, summed.congestion.at_cap());
                    let delay_us = rng.u64(0..500);
                    let a = ack(&mut summed, now, &ranges, delay_us);
                    let b = ack(&mut walked, now, &ranges, delay_us);
                    assert_eq!(a, b, "step {step:?}");
                    fast_acks += usize::from(at_cap && summed.stats().acked > before);
                }
                _ => {
                    for s in [&mut summed, &mut walked] {
                        if s.poll_timeout().is_some_and(|t| t <= now) {
                            s.handle_timeout(now);
                        }
                    }
                }
            }
            assert_eq!(
                observed(&summed, now),
                observed(&walked, now),
                "step {step:?}"
            );
            while let (Some(a), Some(b)) = (summed.poll_event(), walked.poll_event()) {
                assert_eq!(a, b, "step {step:?}");
            }
        }
    }
    // The summed path had its chances: ACKs that acknowledged something at the cap.
    assert!(
        fast_acks > 1_000,
        "only {fast_acks} ACKs at the cap acknowledged anything"
    );
}
