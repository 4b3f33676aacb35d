//! One-way latency across hosts: a client whose clock is seconds off the server's estimates
//! the offset during the handshake (NTP-style, RFC 5905 §8), and the server's send times
//! come out on the server's own clock; equal clocks get no correction.

use super::*;

/// The server's wall clock when a simulation starts (November 2023), µs since the Unix epoch.
const SERVER_UNIX_US: u64 = 1_700_000_000_000_000;
const SECOND_US: i64 = 1_000_000;
const MS: Duration = Duration::from_millis(1);

/// One client whose wall clock reads the server's plus `skew_us`, over an `up` link (client
/// to server) and a `down` link: an asymmetric path biases every sample by half the
/// difference of the two delays, within the ±rtt/2 the estimate promises.
fn skewed_net(skew_us: i64, up: LinkConfig, down: LinkConfig, seed: u64) -> Net {
    let mut net = Net::with_link(1, up, seed);
    net.down = Link::new(down, seed ^ 0x5eed_5eed);
    let secrets = ServerSecrets::from_test_seed(seed);
    net.server = Server::new(ServerConfig::default(), secrets)
        .unwrap()
        .with_wall_clock(net.now, SERVER_UNIX_US);
    let client_unix_us = SERVER_UNIX_US.checked_add_signed(skew_us).unwrap();
    let config = ClientConfig {
        handshake_timeout: Duration::from_secs(30),
        ..ClientConfig::default()
    };
    net.clients[0] = Client::new(config, net.now, client_unix_us, seed).unwrap();
    net
}

/// The server's `clock_offset_us` for the session it opened.
fn applied_offset(net: &Net) -> Option<i64> {
    let opened = net.events.iter().find_map(|e| match e {
        ServerEvent::SessionOpened {
            clock_offset_us, ..
        } => Some(*clock_offset_us),
        _ => None,
    });
    opened.expect("a session was opened")
}

/// One exchange, then another at the same instant, so that the server sends what the
/// datagrams it just took in made due (its contract: drain `poll_transmit` after
/// `handle_datagram`), which [`Net::exchange`] leaves to its next call, after time moved on:
/// a RETRY's time must be the time it left.
fn step(net: &mut Net) {
    net.exchange();
    net.exchange();
}

/// Sends `n` stamped messages as the window allows, then finishes; returns the instant each
/// message (by ID) was sent.
fn send_recording(net: &mut Net, n: u64) -> Vec<Instant> {
    let mut payload = [b'c'; 64];
    let mut sent_at = Vec::new();
    for _ in 0..1_000_000 {
        let c = &mut net.clients[0];
        while (sent_at.len() as u64) < n && c.is_established() {
            let id = c.next_message_id().expect("established");
            write_stamp(&mut payload, c.session_id(), id);
            match c.send(net.now, &payload) {
                Ok(_) => sent_at.push(net.now),
                Err(SendError::Backpressure) => break,
                Err(e) => panic!("send: {e}"),
            }
        }
        if sent_at.len() as u64 == n && c.is_established() {
            c.finish(net.now);
        }
        step(net);
        if net.clients[0].is_closed() {
            return sent_at;
        }
        net.advance();
    }
    panic!("the client did not finish");
}

/// The largest distance, µs, between the send time the server reported for each message and
/// the true send time on the server's clock.
fn worst_send_time_error_us(net: &Net, start: Instant, sent_at: &[Instant]) -> u64 {
    assert_exactly_once(net, 0, sent_at.len() as u64);
    sent_at
        .iter()
        .zip(&net.sent_unix_us[0])
        .map(|(at, &reported)| {
            let truth = SERVER_UNIX_US + (*at - start).as_micros() as u64;
            reported.abs_diff(truth)
        })
        .max()
        .expect("messages were sent")
}

#[test]
fn a_client_clock_five_seconds_off_is_corrected_to_the_servers() {
    for skew_us in [5 * SECOND_US, -5 * SECOND_US] {
        // 1 ms up, 3 ms down: every sample is 1 ms above the truth ((down − up) / 2), the
        // round trip 4 ms.
        let up = LinkConfig::fixed(MS);
        let down = LinkConfig::fixed(3 * MS);
        let mut net = skewed_net(skew_us, up, down, 21);
        let start = net.now;
        let sent_at = send_recording(&mut net, 2_000);

        let estimate = net.clients[0].clock_offset().expect("an estimate");
        assert_eq!(estimate.rtt_us, 4_000, "{skew_us}");
        assert!(estimate.offset_us.abs_diff(skew_us) <= estimate.rtt_us / 2);
        let applied = applied_offset(&net).expect("the client sent its estimate");
        assert!(applied.abs_diff(skew_us) <= 2_000, "{skew_us}: {applied}");
        // Every send time on the server's clock, within the estimate's error: 1 ms, where
        // the client's clock alone would be 5 s off.
        let error = worst_send_time_error_us(&net, start, &sent_at);
        assert!(error <= 1_000, "{skew_us}: {error} µs");
        let closed = net.events.iter().find_map(|e| match e {
            ServerEvent::SessionClosed {
                clock_offset_us, ..
            } => Some(*clock_offset_us),
            _ => None,
        });
        assert_eq!(closed, Some(Some(applied)));
        // The first HELLO and the probes were each answered by a RETRY.
        assert_eq!(net.server.stats().retries_sent, u64::from(CLOCK_PROBES));
    }
}

#[test]
fn equal_clocks_get_no_correction() {
    let mut net = skewed_net(0, LinkConfig::fixed(MS), LinkConfig::fixed(3 * MS), 22);
    let start = net.now;
    let sent_at = send_recording(&mut net, 500);
    // The estimate is +1 ms (the asymmetric path), within its ±2 ms of zero: not applied.
    let estimate = net.clients[0].clock_offset().unwrap();
    assert_eq!((estimate.offset_us, estimate.rtt_us), (1_000, 4_000));
    assert_eq!(applied_offset(&net), Some(0));
    assert_eq!(worst_send_time_error_us(&net, start, &sent_at), 0);
}

#[test]
fn the_estimate_holds_over_a_lossy_jittery_link() {
    // 20 % loss, jitter, reordering and duplicates both ways: probes and answers are lost,
    // yet every handshake ends with an estimate within half its round trip of the truth.
    for seed in 0..20 {
        let skew_us = -3 * SECOND_US + 7;
        let link = LinkConfig::lan(0.2);
        let mut net = skewed_net(skew_us, link, link, 100 + seed);
        let start = net.now;
        let sent_at = send_recording(&mut net, 300);
        let estimate = net.clients[0].clock_offset().unwrap();
        assert!(
            estimate.offset_us.abs_diff(skew_us) <= estimate.rtt_us / 2,
            "seed {seed}: {estimate:?}"
        );
        let applied = applied_offset(&net).unwrap();
        // LAN: about 2 ms round trip, up to 5 ms with jitter and reordering.
        assert!(applied.abs_diff(skew_us) <= 2_500, "seed {seed}: {applied}");
        let error = worst_send_time_error_us(&net, start, &sent_at);
        assert!(error <= 2_500, "seed {seed}: {error} µs");
    }
}

#[test]
fn a_server_without_a_wall_clock_gets_no_probes_and_corrects_nothing() {
    // No wall clock, and one that reads 0 (before 1970: unusable).
    for unusable in [false, true] {
        let mut net = Net::new(1, 0.0, 23);
        if unusable {
            let secrets = ServerSecrets::from_test_seed(23);
            net.server = Server::new(ServerConfig::default(), secrets)
                .unwrap()
                .with_wall_clock(net.now, 0);
        }
        net.run_until(1_000, |n| n.clients[0].is_established());
        assert_eq!(net.server.stats().retries_sent, 1, "no probes");
        assert_eq!(net.clients[0].clock_offset(), None);
        assert_eq!(applied_offset(&net), None);
    }
}

#[test]
fn a_retry_carrying_the_servers_clock_stays_within_three_times_the_hello() {
    // The smallest HELLO (epoch 0: one-byte varints) against a full-size server time.
    let now = Instant::now();
    let mut server = Server::new(ServerConfig::default(), ServerSecrets::from_test_seed(24))
        .unwrap()
        .with_wall_clock(now, SERVER_UNIX_US);
    let mut client = Client::new(ClientConfig::default(), now, 0, 24).unwrap();
    let mut buf = [0u8; 1472];
    let hello_len = client.poll_transmit(now, &mut buf).unwrap();
    server.handle_datagram(now, client_addr(1), None, &buf[..hello_len], |_| {});
    let retry = server.poll_transmit(now, &mut buf).expect("a RETRY");
    assert!(
        retry.len <= 3 * hello_len,
        "{} > 3 × {hello_len}",
        retry.len
    );
    assert_eq!(server.stats().hellos_dropped, 0);
}
