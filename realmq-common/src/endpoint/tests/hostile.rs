//! What the network or an attacker can do to a session: late, replayed, forged and
//! flooded datagrams. Every test checks that the honest client still gets every message
//! delivered exactly once, under its own ID (payload stamps), and that the attack left no
//! state behind.

use super::*;
use crate::security::CookieKey;
use realmq_proto::{DatagramWriter, Frame, Header, Hello, Message};

const MS: Duration = Duration::from_millis(1);

/// A server and one client, handshake done by hand; returns the validated HELLO's bytes.
fn validated_pair(seed: u64) -> (Server, Client, Vec<u8>, Instant) {
    let now = Instant::now();
    let mut server =
        Server::new(ServerConfig::default(), ServerSecrets::from_test_seed(seed)).unwrap();
    let mut client = Client::new(ClientConfig::default(), now, 0, seed).unwrap();
    let hello = validated_hello(&mut server, &mut client, client_addr(1), now);
    (server, client, hello, now)
}

#[test]
fn a_first_hello_gets_a_stateless_retry_within_three_times_its_bytes() {
    let now = Instant::now();
    let mut server =
        Server::new(ServerConfig::default(), ServerSecrets::from_test_seed(3)).unwrap();
    let mut client = Client::new(ClientConfig::default(), now, 0, 3).unwrap();
    let mut buf = [0u8; 1472];
    let hello_len = client.poll_transmit(now, &mut buf).unwrap();
    server.handle_datagram(now, client_addr(1), None, &buf[..hello_len], |_| {});
    let retry = server.poll_transmit(now, &mut buf).unwrap();
    assert!(
        retry.len <= 3 * hello_len,
        "{} > 3 × {hello_len}",
        retry.len
    );
    let s = server.stats();
    assert_eq!((s.sessions_total, s.retries_sent), (0, 1));
    assert_eq!(server.poll_transmit(now, &mut buf), None);
}

#[test]
fn replayed_hellos_from_thousands_of_ports_open_nothing_and_draw_bounded_bytes() {
    let (mut server, _client, hello, now) = validated_pair(4);
    assert_eq!(server.stats().sessions_total, 1);
    let mut buf = [0u8; 1472];
    // The real client's WELCOME.
    assert!(server.poll_transmit(now, &mut buf).is_some());
    let (mut received, mut sent) = (0usize, 0usize);
    for port in 0..2_000u16 {
        let from = SocketAddr::from(([127, 0, 0, 2], 10_000 + port));
        server.handle_datagram(now, from, None, &hello, |_| {
            panic!("delivered from a replay")
        });
        received += hello.len();
        while let Some(t) = server.poll_transmit(now, &mut buf) {
            assert_eq!(t.destination, from);
            sent += t.len;
        }
    }
    let s = server.stats();
    assert_eq!(s.sessions_total, 1, "a replayed HELLO opened a session");
    assert_eq!(s.bad_cookies, 2_000);
    assert!(
        sent <= 3 * received,
        "{sent} bytes sent for {received} received"
    );
}

#[test]
fn a_replayed_hello_from_the_same_address_reopens_nothing_after_close() {
    let (mut server, mut client, hello, now) = validated_pair(5);
    // The client gets its WELCOME and speaks in the session (a heartbeat).
    let mut buf = [0u8; 1472];
    let welcome = server.poll_transmit(now, &mut buf).expect("a WELCOME");
    client.handle_datagram(now, &buf[..welcome.len]);
    assert!(client.is_established());
    let beat = now + Duration::from_millis(200);
    client.handle_timeout(beat);
    let len = client.poll_transmit(beat, &mut buf).expect("a heartbeat");
    server.handle_datagram(beat, client_addr(1), None, &buf[..len], |_| {});
    // The session ends (the client went silent and was evicted).
    let later = now + Duration::from_secs(3);
    server.handle_timeout(later);
    server.handle_timeout(later + Duration::from_millis(60));
    assert_eq!(server.stats().sessions_open, 0);
    server.handle_datagram(later, client_addr(1), None, &hello, |_| {});
    let s = server.stats();
    assert_eq!((s.sessions_total, s.hellos_replayed), (1, 1));
}

#[test]
fn a_datagram_with_many_hellos_is_malformed() {
    let now = Instant::now();
    let mut server =
        Server::new(ServerConfig::default(), ServerSecrets::from_test_seed(6)).unwrap();
    let mut buf = [0u8; 1472];
    let mut w = DatagramWriter::new(&mut buf, 1472, Header::handshake(0)).unwrap();
    for nonce in 0..50 {
        let hello = Hello {
            nonce,
            epoch_unix_us: 0,
            timestamp_us: 0,
            clock_offset_us: 0,
            clock_rtt_us: 0,
            token: &[],
        };
        w.hello(hello).unwrap();
    }
    let len = w.finish();
    server.handle_datagram(now, client_addr(1), None, &buf[..len], |_| {});
    assert_eq!(server.stats().malformed, 1);
    assert_eq!(
        server.poll_transmit(now, &mut buf),
        None,
        "answered a HELLO pile"
    );
}

/// A DATA datagram for `session` carrying one message with `id`.
fn forged_data(session: u32, id: u64) -> Vec<u8> {
    let mut buf = [0u8; 1472];
    let mut w = DatagramWriter::new(&mut buf, 1472, Header::session(session)).unwrap();
    w.data(Message {
        id,
        timestamp_us: 0,
        payload: b"forged payload, never delivered",
    })
    .unwrap();
    let len = w.finish();
    buf[..len].to_vec()
}

#[test]
fn a_forged_far_id_is_dropped_and_the_session_delivers_everything() {
    let mut net = Net::new(1, 0.0, 7);
    drive(&mut net, 1_000, false);
    let session = net.clients[0].session_id();
    for id in [1 << 40, MAX_FORGED, 1_000 + 20_000] {
        let forged = forged_data(session, id);
        net.server
            .handle_datagram(net.now, client_addr(0), None, &forged, |_| {
                panic!("delivered {id}")
            });
    }
    assert_eq!(net.server.stats().implausible, 3);
    send_all(&mut net, 50_000);
    assert_exactly_once(&net, 0, 51_000);
    assert!(!net.client_events[0].contains(&ClientEvent::PeerUnreachable));
    assert_eq!(net.clients[0].stats().acks_unsent, 0);
}

/// The largest message ID.
const MAX_FORGED: u64 = realmq_proto::MAX_MESSAGE_ID;

#[test]
fn held_back_datagrams_up_to_ten_seconds_never_deliver_a_message_twice_or_misplaced() {
    let link = LinkConfig::fixed(Duration::from_millis(1))
        .with_hold_back(0.005, Duration::from_millis(50)..Duration::from_secs(10));
    let mut net = Net::with_link(1, link, 8);
    send_all(&mut net, 200_000);
    assert_exactly_once(&net, 0, 200_000);
    assert_eq!(net.server.stats().implausible, 0);
}

#[test]
fn every_captured_datagram_replayed_delivers_nothing_twice() {
    let mut net = Net::new(1, 0.0, 9);
    // Record what the client sends in the first part of the run.
    drive(&mut net, 2_000, false);
    let session = net.clients[0].session_id();
    let mut captured = Vec::new();
    let mut buf = [0u8; 1472];
    for _ in 0..300 {
        let id = net.clients[0].next_message_id().unwrap();
        let mut payload = [b'r'; 32];
        write_stamp(&mut payload, session, id);
        if net.clients[0].send(net.now, &payload).is_err() {
            break;
        }
        while let Some(len) = net.clients[0].poll_transmit(net.now, &mut buf) {
            captured.push(buf[..len].to_vec());
            net.up.send_tagged(net.now, 0, &buf[..len]);
        }
    }
    send_all(&mut net, 10_000);
    let before = net.server.stats().received;
    for bytes in &captured {
        net.server
            .handle_datagram(net.now, client_addr(0), None, bytes, |d| {
                panic!("replay delivered {}", d.id)
            });
    }
    assert_eq!(net.server.stats().received, before);
    assert_eq!(net.corrupt, 0);
}

fn psk() -> Psk {
    Psk::from_bytes(b"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f").unwrap()
}

#[test]
fn psk_sessions_deliver_everything_over_a_lossy_link() {
    let link = LinkConfig {
        loss: 0.05,
        ..LinkConfig::fixed(ONE_WAY)
    };
    let mut net = Net::with_psk(2, link, 10, &psk());
    send_all(&mut net, 20_000);
    for i in 0..2 {
        assert_exactly_once(&net, i, 20_000);
    }
    assert_eq!(net.server.stats().unauthenticated, 0);
}

#[test]
fn psk_sessions_reject_forged_injected_and_replayed_datagrams() {
    let mut net = Net::with_psk(1, LinkConfig::fixed(ONE_WAY), 11, &psk());
    drive(&mut net, 1_000, false);
    let session = net.clients[0].session_id();
    // Injected: a well-formed DATA with a plausible ID but no tag.
    let next = net.clients[0].next_message_id().unwrap();
    let injected = forged_data(session, next);
    net.server
        .handle_datagram(net.now, client_addr(0), None, &injected, |_| {
            panic!("injected delivered")
        });
    // Replayed and bit-flipped: a real sealed datagram.
    let mut buf = [0u8; 1472];
    let mut payload = [b'p'; 64];
    write_stamp(&mut payload, session, next);
    net.clients[0].send(net.now, &payload).unwrap();
    let len = net.clients[0].poll_transmit(net.now, &mut buf).unwrap();
    let real = buf[..len].to_vec();
    let mut delivered = 0;
    let counts = &mut net.delivered[0];
    net.server
        .handle_datagram(net.now, client_addr(0), None, &real, |d| {
            delivered += 1;
            let id = d.id as usize;
            counts.resize(counts.len().max(id + 1), 0);
            counts[id] += 1;
        });
    net.server
        .handle_datagram(net.now, client_addr(0), None, &real, |_| {
            panic!("replay delivered")
        });
    let mut flipped = real.clone();
    flipped[20] ^= 0x40;
    net.server
        .handle_datagram(net.now, client_addr(0), None, &flipped, |_| {
            panic!("forgery delivered")
        });
    assert_eq!(delivered, 1);
    assert_eq!(net.server.stats().unauthenticated, 3);
    // A forged STOP does not end the session.
    let mut w = DatagramWriter::new(&mut buf, 1472, Header::session(session)).unwrap();
    w.stop(realmq_proto::Stop { sent: 0 }).unwrap();
    let len = w.finish();
    net.server
        .handle_datagram(net.now, client_addr(0), None, &buf[..len], |_| {});
    assert_eq!(net.server.stats().sessions_open, 1);
    send_all(&mut net, 5_000);
    assert_exactly_once(&net, 0, 1_000 + 1 + 5_000);
}

#[test]
fn a_client_with_another_key_never_establishes() {
    let now = Instant::now();
    let mut server = Server::new(ServerConfig::default(), ServerSecrets::from_test_seed(12))
        .unwrap()
        .with_psk(psk());
    let other = Psk::from_bytes(&[7u8; 32]).unwrap();
    let mut client = Client::new(ClientConfig::default(), now, 0, 12)
        .unwrap()
        .with_psk(other);
    validated_hello(&mut server, &mut client, client_addr(1), now);
    let mut buf = [0u8; 1472];
    let welcome = server.poll_transmit(now, &mut buf).expect("a WELCOME");
    client.handle_datagram(now, &buf[..welcome.len]);
    assert!(!client.is_established());
    assert_eq!(client.stats().datagrams_rejected, 1);
}

#[test]
fn a_client_without_a_key_never_takes_a_keyed_servers_welcome() {
    // Before the SEALED flag, a keyless client read the trailer of a sealed WELCOME as
    // frames and, for about 1 server seed in 250, took it for a valid WELCOME.
    let now = Instant::now();
    for seed in 0..1_000 {
        let mut server = Server::new(ServerConfig::default(), ServerSecrets::from_test_seed(seed))
            .unwrap()
            .with_psk(psk());
        let mut client = Client::new(ClientConfig::default(), now, 0, seed).unwrap();
        validated_hello(&mut server, &mut client, client_addr(1), now);
        let mut buf = [0u8; 1472];
        let welcome = server.poll_transmit(now, &mut buf).expect("a WELCOME");
        client.handle_datagram(now, &buf[..welcome.len]);
        assert!(!client.is_established(), "seed {seed}");
    }
}

#[test]
fn lost_welcomes_for_seconds_still_end_in_a_session() {
    // Found under 20 % loss between network namespaces: the server evicted a session whose
    // WELCOMEs were all lost before the client's next HELLO (retries backed off to 1 s
    // then), then refused that HELLO as a replay.
    let t0 = Instant::now();
    let mut server =
        Server::new(ServerConfig::default(), ServerSecrets::from_test_seed(13)).unwrap();
    let config = ClientConfig {
        handshake_timeout: Duration::from_secs(30),
        ..ClientConfig::default()
    };
    let mut client = Client::new(config, t0, 0, 13).unwrap();
    let from = client_addr(1);
    let mut buf = [0u8; 1472];
    let mut now = t0;
    let mut welcome = None;
    // Every datagram from the server is lost for 8 s, except the first RETRY.
    let mut retry_seen = false;
    while now < t0 + Duration::from_secs(8) {
        client.handle_timeout(now);
        while let Some(len) = client.poll_transmit(now, &mut buf) {
            server.handle_datagram(now, from, None, &buf[..len], |_| {});
        }
        server.handle_timeout(now);
        while let Some(t) = server.poll_transmit(now, &mut buf) {
            if !retry_seen {
                retry_seen = true;
                client.handle_datagram(now, &buf[..t.len]);
            } else {
                welcome = Some(buf[..t.len].to_vec());
            }
        }
        now += Duration::from_millis(10);
    }
    assert!(!client.is_established());
    let welcome = welcome.expect("the server kept answering the HELLOs");
    client.handle_datagram(now, &welcome);
    assert!(client.is_established(), "{:?}", server.stats());
    assert_eq!(server.stats().hellos_replayed, 0);
    assert_eq!(server.stats().sessions_open, 1);
}

#[test]
fn a_session_whose_client_is_still_handshaking_is_not_evicted() {
    // Found under 20 % loss each way between network namespaces: the WELCOME and the
    // client's next HELLOs were lost for over a second, the server evicted the session (its
    // failure detector saw a silent peer), opened a second one on the next HELLO, and a
    // server run with `--exit-after-sessions 1` counted the eviction and left mid-run.
    let t0 = Instant::now();
    let mut server =
        Server::new(ServerConfig::default(), ServerSecrets::from_test_seed(17)).unwrap();
    let mut client = Client::new(ClientConfig::default(), t0, 0, 17).unwrap();
    let from = client_addr(1);
    let mut buf = [0u8; 1472];
    let mut now = t0;
    let mut answers = Vec::new();
    // The handshake up to the cookie HELLO goes through; from then on both directions lose
    // everything for 3 s (the eviction of a silent session takes about one).
    let mut blackout_from = None;
    while now < t0 + Duration::from_secs(3) {
        client.handle_timeout(now);
        while let Some(len) = client.poll_transmit(now, &mut buf) {
            if blackout_from.is_none() {
                server.handle_datagram(now, from, None, &buf[..len], |_| {});
            }
        }
        server.handle_timeout(now);
        while let Some(t) = server.poll_transmit(now, &mut buf) {
            answers.push(buf[..t.len].to_vec());
        }
        if blackout_from.is_none() && server.stats().sessions_total == 1 {
            blackout_from = Some(now);
        }
        if blackout_from.is_none() {
            for answer in answers.drain(..) {
                client.handle_datagram(now, &answer);
            }
        }
        now += Duration::from_millis(10);
    }
    assert!(blackout_from.is_some(), "the session never opened");
    assert_eq!(server.stats().sessions_dead, 0, "evicted while handshaking");
    assert_eq!(server.stats().sessions_open, 1);
    // The path heals: the client's next HELLO finds the same session.
    let mut events = 0;
    while server.poll_event().is_some() {
        events += 1;
    }
    assert_eq!(events, 1, "only the opening");
    while !client.is_established() && now < t0 + Duration::from_secs(5) {
        step_lossless(&mut server, &mut client, from, now, &mut 0);
        now += Duration::from_millis(10);
    }
    assert!(client.is_established(), "{:?}", server.stats());
    assert_eq!(server.stats().sessions_total, 1);
    assert_eq!(server.stats().sessions_dead, 0);
    // Its failure detector did declare the silent client dead during the blackout; the
    // client now speaks, and the session must live on. (It was evicted at the next sweep:
    // the verdict stuck. Found by a seed scan at 20 % loss, 3 seeds in 300.)
    let mut delivered = 0;
    client.send(now, b"after the blackout").unwrap();
    let end = now + Duration::from_secs(2);
    while now < end {
        step_lossless(&mut server, &mut client, from, now, &mut delivered);
        now += Duration::from_millis(10);
    }
    assert_eq!(delivered, 1);
    assert_eq!(server.stats().sessions_dead, 0, "evicted after it spoke");
    assert_eq!(server.stats().sessions_open, 1);
}

/// One pass of both ends at `now` over a perfect path: timers, then everything each wants
/// to send delivered to the other. Adds the messages the server delivered to `delivered`.
fn step_lossless(
    server: &mut Server,
    client: &mut Client,
    from: SocketAddr,
    now: Instant,
    delivered: &mut u32,
) {
    let mut buf = [0u8; 1472];
    client.handle_timeout(now);
    while let Some(len) = client.poll_transmit(now, &mut buf) {
        server.handle_datagram(now, from, None, &buf[..len], |_| *delivered += 1);
    }
    server.handle_timeout(now);
    while let Some(t) = server.poll_transmit(now, &mut buf) {
        client.handle_datagram(now, &buf[..t.len]);
    }
}

/// [`validated_pair`] with the session open at both ends (over a perfect path, within a
/// bounded number of steps): the server, the client, its address and the time.
fn established_pair(seed: u64) -> (Server, Client, SocketAddr, Instant) {
    let (mut server, mut client, _, mut now) = validated_pair(seed);
    let from = client_addr(1);
    for _ in 0..100 {
        if client.is_established() {
            return (server, client, from, now);
        }
        step_lossless(&mut server, &mut client, from, now, &mut 0);
        now += MS;
    }
    panic!("the session did not open in 100 steps");
}

/// A first HELLO from `client` at `from` and `now`: the RETRY's nonce and cookie.
fn first_retry(
    server: &mut Server,
    client: &mut Client,
    from: SocketAddr,
    now: Instant,
) -> (u64, Vec<u8>) {
    let mut buf = [0u8; 1472];
    let len = client.poll_transmit(now, &mut buf).expect("a HELLO");
    server.handle_datagram(now, from, None, &buf[..len], |_| {});
    let t = server.poll_transmit(now, &mut buf).expect("a RETRY");
    client.handle_datagram(now, &buf[..t.len]);
    let datagram = realmq_proto::Datagram::parse(&buf[..t.len]).unwrap();
    let Some(Frame::Retry(retry)) = datagram.frames().next() else {
        panic!("not a RETRY");
    };
    (retry.nonce, retry.cookie.to_vec())
}

#[test]
fn the_cookie_key_rotates_every_lifetime_and_cookies_survive_one_rotation() {
    let t0 = Instant::now();
    let secrets = ServerSecrets::from_test_seed(8);
    let first_key = CookieKey::new(&secrets.cookie_key);
    let mut server = Server::new(ServerConfig::default(), secrets).unwrap();
    let lifetime = ServerConfig::default().cookie_lifetime;
    let client = |n: u64| Client::new(ClientConfig::default(), t0, 0, 100 + n).unwrap();
    let minted_by_first_key = |from: SocketAddr, (nonce, cookie): &(u64, Vec<u8>)| {
        let at = u64::from_be_bytes(cookie[..8].try_into().unwrap());
        first_key.mint(from, *nonce, at).as_bytes()[..] == cookie[..]
    };
    // Before the first rotation the server mints with the key it started with.
    let mut a = client(1);
    let early = first_retry(&mut server, &mut a, client_addr(1), t0);
    assert!(minted_by_first_key(client_addr(1), &early));
    // B gets its cookie just before the rotation and echoes it just after.
    let mut b = client(2);
    let before = first_retry(&mut server, &mut b, client_addr(2), t0 + lifetime - MS);
    assert!(minted_by_first_key(client_addr(2), &before));
    let mut c = client(3);
    let after = first_retry(&mut server, &mut c, client_addr(3), t0 + lifetime);
    assert!(
        !minted_by_first_key(client_addr(3), &after),
        "the key rotated"
    );
    let mut buf = [0u8; 1472];
    let len = b
        .poll_transmit(t0 + lifetime + MS, &mut buf)
        .expect("B's cookie HELLO");
    server.handle_datagram(
        t0 + lifetime + MS,
        client_addr(2),
        None,
        &buf[..len],
        |_| {},
    );
    assert_eq!(
        server.stats().sessions_total,
        1,
        "B's cookie verified by the previous key"
    );
    assert_eq!(server.stats().bad_cookies, 0);
}

#[test]
fn a_stopping_servers_final_ack_leaves_its_client_nothing_to_send_again() {
    // A server interrupted for a restart: every ACK it sent lately was lost, so its client
    // still holds what it delivered and would send all of it again to the next server (a
    // duplicate each). `acknowledge_all` says everything once more, owed or not.
    let (mut server, mut client, from, mut now) = established_pair(23);
    let mut delivered = 0;
    let mut buf = [0u8; 1472];
    for _ in 0..100 {
        client.send(now, b"delivered, its ACK lost").unwrap();
    }
    while let Some(len) = client.poll_transmit(now, &mut buf) {
        server.handle_datagram(now, from, None, &buf[..len], |_| delivered += 1);
    }
    assert_eq!(delivered, 100);
    // The delayed ACK falls due and is lost; nothing more is owed.
    now += 10 * MS;
    server.handle_timeout(now);
    let mut lost = 0;
    while server.poll_transmit(now, &mut buf).is_some() {
        lost += 1;
    }
    assert!(lost > 0, "an ACK was due");
    assert!(server.poll_transmit(now, &mut buf).is_none());
    assert_eq!(client.in_flight(), 100);

    server.acknowledge_all(now);
    let mut finals = 0;
    while let Some(t) = server.poll_transmit(now, &mut buf) {
        client.handle_datagram(now, &buf[..t.len]);
        finals += 1;
    }
    assert_eq!(finals, 1, "one ACK for the one session");
    assert_eq!(
        client.in_flight(),
        0,
        "nothing left to send to the next server"
    );
    assert_eq!(client.stats().acked, 100);
}

#[test]
fn an_abandoned_session_closes_at_once_with_its_messages_unacknowledged() {
    // A path that stopped carrying DATA: the load client gives up waiting some seconds after
    // Ctrl-C.
    let (_server, mut client, _, now) = established_pair(29);
    while client.poll_event().is_some() {}
    let mut buf = [0u8; 1472];
    for _ in 0..10 {
        client.send(now, b"never arrives").unwrap();
    }
    while client.poll_transmit(now, &mut buf).is_some() {}
    client.finish(now);
    assert!(!client.is_closed(), "finishing waits for the ACKs");
    client.abandon();
    assert!(client.is_closed());
    assert!(matches!(
        client.poll_event(),
        Some(ClientEvent::Closed {
            server_received: None
        })
    ));
    assert_eq!((client.stats().sent, client.stats().acked), (10, 0));
    // Nothing more to send: no STOP, no resend.
    assert!(client
        .poll_transmit(now + Duration::from_secs(1), &mut buf)
        .is_none());
}
