//! Unit tests of the client endpoint's timers and handshake.
use super::*;

const MS: Duration = Duration::from_millis(1);

#[test]
fn an_epoch_beyond_the_wire_limit_still_sends_hello_and_never_spins() {
    // Found by the endpoints fuzz target: a HELLO that could not be encoded left the
    // control timer due, and poll_timeout returned `now` forever.
    let t0 = Instant::now();
    let mut client = Client::new(ClientConfig::default(), t0, 1 << 62, 1).unwrap();
    let mut buf = [0u8; 1500];
    client.handle_timeout(t0);
    assert!(
        client.poll_transmit(t0, &mut buf).is_some(),
        "a HELLO is sent"
    );
    assert!(client.poll_timeout().is_some_and(|t| t > t0));
}

#[test]
fn an_unanswered_handshake_repeats_hello_with_backoff_then_gives_up() {
    let t0 = Instant::now();
    let config = ClientConfig::default();
    let mut client = Client::new(config.clone(), t0, 0, 42).unwrap();
    let mut buf = [0u8; 1500];
    let mut hellos = Vec::new();
    let mut now = t0;
    while let Some(at) = client.poll_timeout() {
        assert!(at >= now, "poll_timeout went back to {at:?}");
        now = at;
        // Nothing is due before the deadline.
        if now > t0 {
            assert_eq!(client.poll_transmit(now - MS / 2, &mut buf), None);
        }
        client.handle_timeout(now);
        while client.poll_transmit(now, &mut buf).is_some() {
            hellos.push(now - t0);
        }
    }
    // 0, then a wait of 200 ms, then 250 ms each (the doubling capped), up to the 5 s
    // timeout: 21 HELLOs.
    let expected: Vec<Duration> = [0, 200]
        .into_iter()
        .chain((450..5000).step_by(250))
        .map(|ms| MS * ms)
        .collect();
    assert_eq!(expected.len(), 21);
    assert_eq!(hellos, expected);
    assert_eq!(now, t0 + config.handshake_timeout);
    assert!(client.is_closed());
    assert_eq!(client.poll_event(), Some(ClientEvent::PeerUnreachable));
    assert_eq!(
        client.poll_event(),
        Some(ClientEvent::Closed {
            server_received: None
        })
    );
}

#[test]
fn an_answered_exchange_is_repeated_after_three_round_trips_within_bounds() {
    let first = ClientConfig::default().handshake_retry;
    // Before any answer: the first wait.
    assert_eq!(answered_interval(None, first), first);
    assert_eq!(answered_interval(Some(MS * 20), first), MS * 60);
    // A loopback round trip: not below the floor, well above a busy host's jitter.
    let loopback = Duration::from_micros(40);
    assert_eq!(
        answered_interval(Some(loopback), first),
        MIN_ANSWERED_INTERVAL
    );
    // A slow path: never longer than before the answer.
    assert_eq!(answered_interval(Some(MS * 150), first), first);
    // A first wait configured below the floor is kept as the bound.
    assert_eq!(answered_interval(Some(MS * 150), MS), MIN_ANSWERED_INTERVAL);
}

/// The HELLO in `bytes`: (has a token, its estimate as (offset, rtt)).
fn hello_of(bytes: &[u8]) -> (bool, (i64, u64)) {
    let datagram = Datagram::parse(bytes).unwrap();
    let Some(Frame::Hello(h)) = datagram.frames().next() else {
        panic!("not a HELLO")
    };
    (!h.token.is_empty(), (h.clock_offset_us, h.clock_rtt_us))
}

#[test]
fn a_server_with_a_clock_is_probed_then_gets_the_cookie_and_the_best_estimate() {
    use crate::endpoint::{Server, ServerConfig, ServerSecrets, CLOCK_PROBES};
    let t0 = Instant::now();
    let server_unix_us = 1_700_000_000_000_000;
    let mut server = Server::new(ServerConfig::default(), ServerSecrets::from_test_seed(1))
        .unwrap()
        .with_wall_clock(t0, server_unix_us);
    // The client's clock is 2 s behind the server's.
    let mut client =
        Client::new(ClientConfig::default(), t0, server_unix_us - 2_000_000, 9).unwrap();
    let from = "127.0.0.1:4000".parse().unwrap();
    let mut buf = [0u8; 1500];
    let mut now = t0;
    let mut hellos = Vec::new();
    // The round trips take 1 ms (RETRY), 3 ms and 2 ms (probes' RETRYs), 5 ms (WELCOME).
    for rtt_ms in [1, 3, 2, 5] {
        let len = client.poll_transmit(now, &mut buf).expect("a HELLO");
        hellos.push(hello_of(&buf[..len]));
        now += MS * rtt_ms / 2;
        server.handle_datagram(now, from, None, &buf[..len], |_| {});
        let t = server.poll_transmit(now, &mut buf).expect("an answer");
        now += MS * rtt_ms / 2;
        client.handle_datagram(now, &buf[..t.len]);
        if !client.is_established() {
            assert_eq!(
                client.poll_timeout(),
                Some(now),
                "the next HELLO goes at once"
            );
        }
    }
    assert!(client.is_established());
    assert_eq!(client.stats().retries, u64::from(CLOCK_PROBES));
    // Two cookie-less probes after the first HELLO, then the cookie with the estimate of the
    // smallest round trip so far (1 ms: ±500 µs).
    let tokens: Vec<bool> = hellos.iter().map(|h| h.0).collect();
    assert_eq!(tokens, [false, false, false, true]);
    assert_eq!(hellos[0].1, (0, 0), "no estimate before any answer");
    assert_eq!(hellos[3].1, (-2_000_000, 1_000));
    let best = client.clock_offset().unwrap();
    assert_eq!((best.offset_us, best.rtt_us), (-2_000_000, 1_000));
}

#[test]
fn an_unanswered_probe_ends_the_probing_at_the_first_repeat() {
    use crate::endpoint::{Server, ServerConfig, ServerSecrets};
    let t0 = Instant::now();
    let mut server = Server::new(ServerConfig::default(), ServerSecrets::from_test_seed(2))
        .unwrap()
        .with_wall_clock(t0, 1_700_000_000_000_000);
    let mut client = Client::new(ClientConfig::default(), t0, 1_700_000_000_000_000, 3).unwrap();
    let from = "127.0.0.1:4000".parse().unwrap();
    let mut buf = [0u8; 1500];
    let len = client.poll_transmit(t0, &mut buf).unwrap();
    server.handle_datagram(t0, from, None, &buf[..len], |_| {});
    let t = server.poll_transmit(t0, &mut buf).unwrap();
    // The RETRY arrives after a round trip of 20 ms.
    let answered = t0 + MS * 20;
    client.handle_datagram(answered, &buf[..t.len]);
    let len = client.poll_transmit(answered, &mut buf).unwrap();
    assert!(!hello_of(&buf[..len]).0, "a probe");
    // The probe is lost; the repeat, three round trips later, carries the cookie.
    let repeat = client.poll_timeout().unwrap();
    assert_eq!(repeat, answered + MS * 60);
    client.handle_timeout(repeat);
    let len = client.poll_transmit(repeat, &mut buf).unwrap();
    assert!(hello_of(&buf[..len]).0, "the cookie HELLO");
}
