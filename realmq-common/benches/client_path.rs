//! The client's per-message path: `Client::send` of every message of a full DATA datagram,
//! `Client::poll_transmit` writing it, and `Client::handle_datagram` of the ACK it gets. Only
//! the client's part of each chunk is timed (`session/mod.rs` has the setup).
//!
//! Criterion reports time per datagram; the throughput line counts messages.
//!
//! Run: `cargo bench -p realmq-common --bench client_path -- --noplot`.

use criterion::{criterion_group, criterion_main, Criterion};

// Shared with the other end's bench, which uses the other `Side`.
#[allow(dead_code)]
mod session;

fn bench_client_path(c: &mut Criterion) {
    session::bench_side(c, "client_path", session::Side::Client);
}

criterion_group!(benches, bench_client_path);
criterion_main!(benches);
