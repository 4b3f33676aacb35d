//! The in-order run path of `Receiver::handle_data` against the message-by-message path:
//! fed the same frames, two receivers must deliver the same messages and end in the same
//! state, whatever the frames hold (runs in order, gaps, duplicates, old IDs, IDs beyond
//! the plausibility window, a full range set). And the full range set of a sender that
//! never resends (`Flags::NO_RESEND`): its gaps are given up, another sender's never.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use realmq_proto::{DatagramWriter, Flags, Header};

use super::tests::with_frame;
use super::*;

/// One frame: its first ID relative to the largest received so far, its message count, and
/// whether its IDs skip (a gap of one after every message) instead of following one by one.
type FrameSpec = (i64, u64, bool);

/// The IDs of the frame `spec` describes, given the largest ID received so far.
fn frame_ids(spec: FrameSpec, largest: Option<u64>) -> Vec<u64> {
    let (offset, count, skip) = spec;
    let next = largest.map_or(0, |l| l + 1);
    let first = next.saturating_add_signed(offset);
    let step = if skip { 2 } else { 1 };
    (0..count).map(|i| first + i * step).collect()
}

/// Everything a caller can observe of a receiver.
fn observed(r: &Receiver, now: Instant) -> impl PartialEq + std::fmt::Debug {
    (
        *r.stats(),
        r.largest_received(),
        r.received().iter_newest_first().collect::<Vec<_>>(),
        r.ack_pending(),
        r.ack_due(now),
        r.poll_timeout(),
        r.largest_arrival,
        r.unacked_messages,
    )
}

fn frames() -> impl Strategy<Value = Vec<FrameSpec>> {
    prop::collection::vec(
        (
            prop_oneof![Just(0i64), -40i64..40, Just(30i64)],
            1u64..30,
            prop::bool::weighted(0.2),
        ),
        1..40,
    )
}

proptest! {
    #[test]
    fn the_run_path_does_what_the_message_path_does(
        frames in frames(),
        max_ranges in prop_oneof![Just(2usize), Just(64)],
        id_window in prop_oneof![Just(1u64), Just(25), Just(16_384)],
        ack_every in prop_oneof![Just(2u32), Just(10), Just(1_000)],
        no_resend: bool,
    ) {
        let t0 = Instant::now();
        let config = ReceiverConfig {
            max_ranges,
            id_window,
            ack_every,
            ..ReceiverConfig::default()
        };
        let mut fast = Receiver::new(config.clone(), t0).unwrap();
        let mut general = Receiver::new(config, t0).unwrap();
        for (i, spec) in frames.into_iter().enumerate() {
            let now = t0 + Duration::from_micros(100 * i as u64);
            let ids = frame_ids(spec, general.largest_received());
            let ack_now = if i % 7 == 3 { Flags::ACK_NOW } else { Flags::NONE };
            let flags = if no_resend { ack_now.with(Flags::NO_RESEND) } else { ack_now };
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let (n, m) = with_frame(&ids, |frame| {
                let n = fast.handle_data(now, frame, flags, |m| a.push(m.id));
                general.note_data_datagram(now, flags);
                (n, general.handle_each(now, frame, flags, |m| b.push(m.id)))
            });
            prop_assert_eq!((n, &a), (m, &b));
            prop_assert_eq!(observed(&fast, now), observed(&general, now));
            // An ACK now and then, as a session would write it.
            if i % 5 == 4 {
                let mut out = [0u8; 1500];
                let mut w = DatagramWriter::new(&mut out, 1472, Header::session(1)).unwrap();
                let wrote = fast.write_ack(now, &mut w);
                let mut w = DatagramWriter::new(&mut out, 1472, Header::session(1)).unwrap();
                prop_assert_eq!(wrote, general.write_ack(now, &mut w));
            }
        }
    }
}

#[test]
fn gaps_are_given_up_only_for_a_session_that_began_without_resends() {
    let t0 = Instant::now();
    let config = ReceiverConfig {
        max_ranges: 2,
        ..ReceiverConfig::default()
    };
    for first in [Flags::NO_RESEND, Flags::NONE] {
        let mut r = Receiver::new(config.clone(), t0).unwrap();
        // Two gaps (1 and 3) fill the range set; a third (5) would not fit.
        with_frame(&[0, 2, 4], |f| {
            r.handle_data(t0, f, first, |_| {});
        });
        let mut delivered = Vec::new();
        with_frame(&[6], |f| {
            r.handle_data(t0, f, Flags::NO_RESEND, |m| delivered.push(m.id));
        });
        if first == Flags::NO_RESEND {
            // The oldest gap (1) given up: 6 fits.
            assert_eq!(delivered, [6]);
            assert_eq!(r.stats().forgotten, 1);
            assert_eq!(r.cumulative(), 3);
        } else {
            // A resending sender's gaps stay, whatever a later datagram says.
            assert!(delivered.is_empty());
            assert_eq!(r.stats().refused, 1);
            assert_eq!(r.stats().forgotten, 0);
        }
    }
}
