//! The `sizes` example's figures meet the targets the protocol promises.

#[path = "../examples/sizes.rs"]
#[allow(dead_code)]
mod sizes;

#[test]
fn wire_sizes_meet_their_targets() {
    let s = sizes::measure();
    assert!(s.ack_contiguous <= 16, "{s:?}");
    assert!(s.ack_gappy as f64 / s.gaps as f64 <= 3.0, "{s:?}");
    assert!(s.batched_overhead <= 6.0, "{s:?}");
    assert!(s.single_overhead <= 24, "{s:?}");
    // And RealMQ's ACK is a small fraction of the original's text.
    assert!(s.ack_gappy * 100 < s.original_ack_gappy, "{s:?}");
}
