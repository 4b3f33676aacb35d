//! Measures how fast `realmq_common::security` seals and opens datagrams, mints and verifies
//! cookies, and derives session keys, on one core.
//!
//! `cargo run --release -p realmq-common --example seal_speed [DATAGRAMS]` prints `key: value`
//! lines. Datagrams are 1,400 bytes sealed (1,376 bytes + the 24-byte trailer), the size of a
//! full RealMQ datagram. The default is 1,000,000 datagrams per measurement.
//!
//! To compare Poly1305 backends, build into another target folder with
//! `RUSTFLAGS='--cfg poly1305_force_soft'` (the `poly1305` crate's switch off its AVX2
//! autodetection): on the 2-core development VM the portable backend was the faster one for
//! 1,400-byte datagrams (about 1.0 µs per seal against 1.7 µs).

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use realmq_common::security::{CookieKey, Psk, SessionKeys, TRAILER_LEN};

/// Sealed datagram size measured.
const SEALED_LEN: usize = 1_400;

/// Prints one rate line.
fn report(name: &str, count: u64, elapsed: Duration) {
    let per_s = count as f64 / elapsed.as_secs_f64();
    let ns = elapsed.as_nanos() as f64 / count as f64;
    println!("{name}: {per_s:.0} per s ({ns:.0} ns each, {count} in {elapsed:.2?})");
}

fn main() {
    let count: u64 = match std::env::args().nth(1) {
        Some(arg) => match arg.parse() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("usage: seal_speed [DATAGRAMS > 0]");
                std::process::exit(2);
            }
        },
        None => 1_000_000,
    };
    let body_len = SEALED_LEN - TRAILER_LEN;
    let psk = Psk::from_bytes(&[0xA5; 32]).expect("a 32-byte raw key is valid");
    let keys = SessionKeys::derive(&psk, 1, 2, 3);
    let mut buf = vec![0x5Au8; SEALED_LEN];

    // Seal alone.
    let (mut sealer, _) = keys.client_side();
    let start = Instant::now();
    for _ in 0..count {
        black_box(sealer.seal(black_box(&mut buf), body_len).expect("room"));
    }
    report("seal_1400B", count, start.elapsed());

    // Open alone: one sealed datagram opened under fresh openers would measure the replay
    // check only, so seal `count` datagrams up front (in chunks, to bound memory) and time
    // the opening only.
    let (mut sealer, _) = keys.client_side();
    let (_, mut opener) = keys.server_side();
    let chunk = 10_000.min(count) as usize;
    let mut sealed = vec![0u8; chunk * SEALED_LEN];
    let mut open_time = Duration::ZERO;
    let mut opened = 0u64;
    while opened < count {
        let n = chunk.min((count - opened) as usize);
        for d in sealed.chunks_exact_mut(SEALED_LEN).take(n) {
            sealer.seal(d, body_len).expect("room");
        }
        let start = Instant::now();
        for d in sealed.chunks_exact(SEALED_LEN).take(n) {
            black_box(opener.open(black_box(d)).expect("genuine"));
        }
        open_time += start.elapsed();
        opened += n as u64;
    }
    report("open_1400B", count, open_time);

    // Seal then open, as one sender and one receiver on one core.
    let (mut sealer, _) = keys.client_side();
    let (_, mut opener) = keys.server_side();
    let start = Instant::now();
    for _ in 0..count {
        let n = sealer.seal(&mut buf, body_len).expect("room");
        black_box(opener.open(black_box(&buf[..n])).expect("genuine"));
    }
    let elapsed = start.elapsed();
    report("seal_and_open_1400B", count, elapsed);
    let mbit = (count * SEALED_LEN as u64 * 8) as f64 / elapsed.as_secs_f64() / 1e6;
    println!("seal_and_open_goodput: {mbit:.0} Mbit/s of sealed datagrams");

    // A forged datagram costs the receiver one tag check.
    let mut forged = buf.clone();
    forged[0] ^= 1;
    let (_, mut opener) = keys.server_side();
    let start = Instant::now();
    for _ in 0..count {
        black_box(opener.open(black_box(&forged)).is_err());
    }
    report("reject_forged_1400B", count, start.elapsed());

    // Handshake work, per HELLO.
    let cookie_key = CookieKey::new(&[7; 32]);
    let peer: SocketAddr = "192.0.2.1:4433".parse().expect("literal address");
    let hellos = count / 4;
    let start = Instant::now();
    for nonce in 0..hellos {
        let cookie = cookie_key.mint(peer, nonce, 1_000);
        black_box(cookie_key.verify(peer, nonce, cookie.as_ref(), 2_000, 10_000)).expect("fresh");
    }
    report("cookie_mint_and_verify", hellos, start.elapsed());
    let start = Instant::now();
    for nonce in 0..hellos {
        black_box(SessionKeys::derive(&psk, nonce, 2, 3));
    }
    report("session_key_derivation", hellos, start.elapsed());
}
