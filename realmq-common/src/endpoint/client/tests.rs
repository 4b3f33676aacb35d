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
    // 0, then waits of 200, 400, 800 ms, then 1 s each, up to the 5 s timeout.
    let expected: Vec<Duration> = [0, 200, 600, 1400, 2400, 3400, 4400]
        .into_iter()
        .map(|ms| MS * ms)
        .collect();
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
