//! The server's per-message path: `Server::handle_datagram` of a full DATA datagram,
//! delivering every message, then `Server::poll_transmit` writing the ACK it owes. Only the
//! server's part of each chunk is timed (`session/mod.rs` has the setup).
//!
//! Criterion reports time per datagram; the throughput line counts messages.
//!
//! Run: `cargo bench -p realmq-common --bench server_path -- --noplot`.

use criterion::{criterion_group, criterion_main, Criterion};

// Shared with the other end's bench, which uses the other `Side`.
#[allow(dead_code)]
mod session;

fn bench_server_path(c: &mut Criterion) {
    session::bench_side(c, "server_path", session::Side::Server);
}

criterion_group!(benches, bench_server_path);
criterion_main!(benches);
