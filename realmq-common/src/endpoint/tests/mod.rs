//! Client and server joined by simulated links (the crate's [`Link`] model): every datagram
//! crosses the real wire format, time is simulated, loss is seeded.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::payload_stamp::{check_stamp, write_stamp, StampCheck, StampChecker};
use crate::security::Psk;
use crate::sim::{Arrival, Link, LinkConfig};

mod clock;
mod hostile;

const ONE_WAY: Duration = Duration::from_micros(50);

fn client_addr(n: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 40_000 + n))
}

/// The client index behind an address made by [`client_addr`].
fn client_index(addr: SocketAddr) -> usize {
    usize::from(addr.port() - 40_000)
}

/// One server, several clients, two links: every client to the server (tagged with the
/// sending client's index) and the server to every client (tagged with the destination's).
struct Net {
    now: Instant,
    server: Server,
    clients: Vec<Client>,
    /// Clients (by index) and server that stopped taking part (crashed).
    silent_clients: Vec<bool>,
    server_silent: bool,
    up: Link<usize>,
    down: Link<usize>,
    /// Per client, how often each message ID was delivered.
    delivered: Vec<Vec<u32>>,
    /// Per client, the send time (`Delivery::sent_unix_us`) of each message ID delivered.
    sent_unix_us: Vec<Vec<u64>>,
    /// Delivered messages whose payload stamp did not match their session and ID.
    corrupt: u64,
    /// Checks the delivered runs' stamps, as the server binary does.
    checker: StampChecker,
    /// Messages delivered in runs of more than one.
    in_runs: u64,
    /// Datagrams the clients sent from where they stored them (`Client::poll_prebuilt`).
    prebuilt: u64,
    events: Vec<ServerEvent>,
    client_events: Vec<Vec<ClientEvent>>,
}

impl Net {
    /// `clients` clients and a server over links with a fixed one-way delay, each datagram
    /// lost with probability `loss`.
    fn new(clients: usize, loss: f64, seed: u64) -> Self {
        Self::with_link(
            clients,
            LinkConfig {
                loss,
                ..LinkConfig::fixed(ONE_WAY)
            },
            seed,
        )
    }

    /// `clients` clients and a server over links with `link`'s impairments both ways.
    fn with_link(clients: usize, link: LinkConfig, seed: u64) -> Self {
        Self::build(clients, link, seed, None)
    }

    /// Like [`Net::with_link`], every session authenticated with `psk`.
    fn with_psk(clients: usize, link: LinkConfig, seed: u64, psk: &Psk) -> Self {
        Self::build(clients, link, seed, Some(psk))
    }

    fn build(clients: usize, link: LinkConfig, seed: u64, psk: Option<&Psk>) -> Self {
        let now = Instant::now();
        let mut server =
            Server::new(ServerConfig::default(), ServerSecrets::from_test_seed(seed)).unwrap();
        if let Some(psk) = psk {
            server = server.with_psk(psk.clone());
        }
        let clients = (0..clients)
            .map(|i| {
                let c = Client::new(ClientConfig::default(), now, 1_000_000, seed + i as u64);
                let c = c.unwrap();
                match psk {
                    Some(psk) => c.with_psk(psk.clone()),
                    None => c,
                }
            })
            .collect::<Vec<_>>();
        let n = clients.len();
        Self {
            now,
            server,
            clients,
            silent_clients: vec![false; n],
            server_silent: false,
            up: Link::new(link, seed),
            down: Link::new(link, seed ^ 0x5eed_5eed),
            delivered: vec![Vec::new(); n],
            sent_unix_us: vec![Vec::new(); n],
            corrupt: 0,
            checker: StampChecker::new(),
            in_runs: 0,
            prebuilt: 0,
            events: Vec::new(),
            client_events: vec![Vec::new(); n],
        }
    }

    /// Moves every datagram both sides want to send onto the links, delivers what arrived
    /// and collects events.
    fn exchange(&mut self) {
        self.transmit();
        while let Some(arrival) = self.up.pop_arrived(self.now) {
            self.deliver_to_server(arrival);
        }
        while let Some(Arrival { tag: to, bytes, .. }) = self.down.pop_arrived(self.now) {
            if !self.silent_clients[to] {
                self.clients[to].handle_datagram(self.now, &bytes);
            }
        }
        for (i, c) in self.clients.iter_mut().enumerate() {
            while let Some(e) = c.poll_event() {
                self.client_events[i].push(e);
            }
        }
    }

    /// Every live endpoint's datagrams onto the links; the server's events.
    fn transmit(&mut self) {
        let mut buf = [0u8; 1472];
        for (i, client) in self.clients.iter_mut().enumerate() {
            if self.silent_clients[i] {
                continue;
            }
            // As the client binary sends: datagrams stored whole where there are some (a
            // few at a time, to interleave with the rest), the others one by one.
            loop {
                if let Some(burst) = client.poll_prebuilt(self.now, 3) {
                    self.prebuilt += burst.count as u64;
                    for datagram in burst.datagrams() {
                        self.up.send_tagged(self.now, i, datagram);
                    }
                    continue;
                }
                let Some(len) = client.poll_transmit(self.now, &mut buf) else {
                    break;
                };
                self.up.send_tagged(self.now, i, &buf[..len]);
            }
        }
        if self.server_silent {
            return;
        }
        while let Some(t) = self.server.poll_transmit(self.now, &mut buf) {
            let to = client_index(t.destination);
            self.down.send_tagged(self.now, to, &buf[..t.len]);
        }
        while let Some(e) = self.server.poll_event() {
            self.events.push(e);
        }
    }

    /// A datagram from client `from` reaches the server, unless it is silent.
    fn deliver_to_server(
        &mut self,
        Arrival {
            tag: from, bytes, ..
        }: Arrival<usize>,
    ) {
        if self.server_silent {
            return;
        }
        let delivered = &mut self.delivered[from];
        let sent_unix_us = &mut self.sent_unix_us[from];
        let (corrupt, checker, in_runs) = (&mut self.corrupt, &mut self.checker, &mut self.in_runs);
        // As the server binary takes them: in runs, each run's stamps checked in one loop
        // (and each message's again on its own, to compare).
        self.server
            .handle_datagram_runs(self.now, client_addr(from as u16), None, &bytes, |run| {
                let found = checker.check_run(&run.messages, run.session_id);
                if run.messages.len() > 1 {
                    *in_runs += run.messages.len() as u64;
                }
                let mut corrupt_each = 0;
                for d in run.deliveries() {
                    if check_stamp(d.payload, d.session_id, d.id) != StampCheck::Intact {
                        corrupt_each += 1;
                    }
                    let id = d.id as usize;
                    if delivered.len() <= id {
                        delivered.resize(id + 1, 0);
                        sent_unix_us.resize(id + 1, 0);
                    }
                    delivered[id] += 1;
                    sent_unix_us[id] = d.sent_unix_us;
                }
                assert_eq!(
                    found.corrupt, corrupt_each,
                    "the run's check and each message's"
                );
                *corrupt += corrupt_each;
            });
    }

    /// Advances simulated time to the next deadline or arrival, and fires due timers.
    fn advance(&mut self) {
        let mut next = earliest(self.up.next_arrival(), self.down.next_arrival());
        for (i, c) in self.clients.iter().enumerate() {
            if !self.silent_clients[i] {
                next = earliest(next, c.poll_timeout());
            }
        }
        if !self.server_silent {
            next = earliest(next, self.server.poll_timeout());
        }
        let next = next.unwrap_or(self.now + Duration::from_millis(10));
        self.now = self.now.max(next);
        for (i, c) in self.clients.iter_mut().enumerate() {
            if !self.silent_clients[i] && c.poll_timeout().is_some_and(|t| t <= self.now) {
                c.handle_timeout(self.now);
            }
        }
        if !self.server_silent && self.server.poll_timeout().is_some_and(|t| t <= self.now) {
            self.server.handle_timeout(self.now);
        }
    }

    /// Runs until `done` or the step bound; returns the steps taken.
    fn run_until(&mut self, max_steps: usize, mut done: impl FnMut(&Net) -> bool) -> usize {
        for step in 0..max_steps {
            self.exchange();
            if done(self) {
                return step;
            }
            self.advance();
        }
        panic!("not done after {max_steps} steps");
    }
}

/// Drives clients that send `per_client` messages each, as fast as the windows allow. With
/// `finish`, they then finish and this returns when every client is closed; without, it
/// returns when everything sent is acknowledged.
fn drive(net: &mut Net, per_client: u64, finish: bool) {
    let mut payload = [b'x'; 64];
    let mut sent = vec![0u64; net.clients.len()];
    for step in 0..5_000_000u64 {
        for (i, c) in net.clients.iter_mut().enumerate() {
            if net.silent_clients[i] {
                continue;
            }
            while sent[i] < per_client && c.is_established() {
                // One by one (`send`) and in batches of several sizes (`send_many`, which
                // the session stores as whole datagrams), by turns.
                let batch = [1, 1, 5, 64, 300][(step % 5) as usize];
                let want = (per_client - sent[i]).min(batch);
                let session_id = c.session_id();
                let result = if batch == 1 {
                    let id = c.next_message_id().expect("established");
                    write_stamp(&mut payload, session_id, id);
                    c.send(net.now, &payload).map(|_| 1)
                } else {
                    let fill = |id: u64, p: &mut [u8]| {
                        p.fill(b'x');
                        write_stamp(p, session_id, id);
                    };
                    c.send_many(net.now, payload.len(), want, fill)
                };
                match result {
                    Ok(n) => sent[i] += n,
                    Err(SendError::Backpressure) => break,
                    Err(e) => panic!("send: {e}"),
                }
                if matches!(result, Ok(n) if n < want) {
                    break;
                }
            }
            if finish && sent[i] == per_client && c.is_established() {
                c.finish(net.now);
            }
        }
        net.exchange();
        let done = if finish {
            net.clients.iter().all(|c| c.is_closed())
        } else {
            net.clients.iter().all(|c| c.stats().acked == per_client)
        };
        if done {
            return;
        }
        net.advance();
    }
    panic!("clients did not finish");
}

fn send_all(net: &mut Net, per_client: u64) {
    drive(net, per_client, true);
}

fn assert_exactly_once(net: &Net, i: usize, n: u64) {
    assert_eq!(net.corrupt, 0, "a message was delivered under another ID");
    let d = &net.delivered[i];
    assert_eq!(d.len() as u64, n, "client {i}: highest ID delivered");
    assert!(
        d.iter().all(|&c| c == 1),
        "client {i}: a message delivered 0 or 2+ times"
    );
}

#[test]
fn every_message_arrives_once_over_a_clean_link() {
    let mut net = Net::new(2, 0.0, 1);
    send_all(&mut net, 20_000);
    for i in 0..2 {
        assert_exactly_once(&net, i, 20_000);
        let s = net.clients[i].stats();
        assert_eq!((s.sent, s.acked, s.undeliverable), (20_000, 20_000, 0));
        assert!(net.client_events[i].contains(&ClientEvent::Closed {
            server_received: Some(20_000)
        }));
    }
    let s = net.server.stats();
    assert_eq!(s.received, 40_000);
    assert_eq!((s.sessions_total, s.sessions_open), (2, 0));
    // Without loss, a sender's runs of equal messages reach the application as runs.
    assert!(net.in_runs >= 36_000, "{} of 40,000 in runs", net.in_runs);
    // Batches went out as they were stored, framed in place.
    assert!(
        net.prebuilt > 100,
        "{} datagrams sent as stored",
        net.prebuilt
    );
    let byes = net
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                ServerEvent::SessionClosed {
                    reason: CloseReason::Bye,
                    received: 20_000,
                    ..
                }
            )
        })
        .count();
    assert_eq!(byes, 2);
}

#[test]
fn every_message_arrives_once_despite_loss_both_ways() {
    let mut net = Net::new(1, 0.1, 7);
    send_all(&mut net, 20_000);
    assert_exactly_once(&net, 0, 20_000);
    let s = net.clients[0].stats();
    assert_eq!((s.sent, s.acked, s.undeliverable), (20_000, 20_000, 0));
    assert!(s.retransmitted > 0, "10% loss must cause resends");
    assert!(
        net.prebuilt > 100,
        "{} datagrams sent as stored",
        net.prebuilt
    );
    assert_eq!(net.server.stats().received, 20_000);
    assert_eq!(
        net.server.stats().sessions_total,
        1,
        "a repeated HELLO reuses its session"
    );
}

#[test]
fn a_crashed_client_is_evicted_by_the_failure_detector() {
    let mut net = Net::new(1, 0.0, 3);
    net.run_until(1000, |n| n.clients[0].is_established());
    let crashed_at = net.now;
    net.silent_clients[0] = true;
    net.run_until(100_000, |n| n.server.stats().sessions_open == 0);
    assert!(matches!(
        net.events.last(),
        Some(ServerEvent::SessionClosed {
            reason: CloseReason::PeerDead,
            ..
        })
    ));
    assert_eq!(net.server.stats().sessions_dead, 1);
    // Eviction follows silence by seconds, not by a fixed count of timer ticks.
    let took = net.now - crashed_at;
    assert!(took < Duration::from_secs(30), "evicted after {took:?}");
}

#[test]
fn an_idle_session_stays_alive_on_heartbeats() {
    let mut net = Net::new(1, 0.0, 4);
    net.run_until(1000, |n| n.clients[0].is_established());
    let start = net.now;
    net.run_until(1_000_000, |n| n.now - start >= Duration::from_secs(20));
    assert_eq!(net.server.stats().sessions_open, 1);
    assert!(!net.client_events[0].contains(&ClientEvent::PeerUnreachable));
    assert!(net.clients[0].is_established());
}

/// Both ends stop running for 10 s at once (the host paused), then run for 2 s more; with
/// `noticed`, each is told of its own pause as its event loop would tell it.
fn pause_the_host(noticed: bool) -> Net {
    let mut net = Net::new(1, 0.0, 9);
    net.run_until(1000, |n| n.clients[0].is_established());
    let since = net.now;
    net.now += Duration::from_secs(10);
    if noticed {
        net.server.handle_local_pause(since, net.now);
        net.clients[0].handle_local_pause(since, net.now);
    }
    let woke = net.now;
    net.run_until(1_000_000, |n| n.now - woke >= Duration::from_secs(2));
    net
}

#[test]
fn a_host_pause_is_not_taken_for_the_peers_silence() {
    let net = pause_the_host(true);
    assert_eq!(net.server.stats().sessions_dead, 0);
    assert_eq!(net.server.stats().sessions_open, 1);
    assert!(net.clients[0].is_established());
    assert!(!net.client_events[0].contains(&ClientEvent::PeerUnreachable));
    // Unnoticed, the same pause ends the session on both sides.
    let net = pause_the_host(false);
    assert_eq!(net.server.stats().sessions_dead, 1);
    assert!(net.client_events[0].contains(&ClientEvent::PeerUnreachable));
}

#[test]
fn a_vanished_server_is_reported_unreachable() {
    let mut net = Net::new(1, 0.0, 5);
    net.run_until(1000, |n| n.clients[0].is_established());
    net.server_silent = true;
    net.run_until(1_000_000, |n| n.clients[0].is_closed());
    assert!(net.client_events[0].contains(&ClientEvent::PeerUnreachable));
}

#[test]
fn a_lost_bye_is_not_an_unreachable_server() {
    // Everything is acknowledged and the client is stopping; the server answered STOP with a
    // BYE and closed, and every BYE is lost: the server's silence is expected now, so the
    // client ends at its stop timeout without the count, not with "unreachable".
    let mut net = Net::new(1, 0.0, 6);
    net.run_until(1000, |n| n.clients[0].is_established());
    net.clients[0].finish(net.now);
    net.run_until(1000, |n| n.clients[0].state() == ClientState::Stopping);
    net.server_silent = true;
    net.run_until(1_000_000, |n| n.clients[0].is_closed());
    assert!(!net.client_events[0].contains(&ClientEvent::PeerUnreachable));
    assert!(net.client_events[0].contains(&ClientEvent::Closed {
        server_received: None
    }));
}

#[test]
fn no_server_means_the_handshake_times_out() {
    let mut net = Net::new(1, 0.0, 6);
    let start = net.now;
    net.server_silent = true;
    net.run_until(100_000, |n| n.clients[0].is_closed());
    // The client gives up at its handshake timeout, not before and not much later.
    let timeout = ClientConfig::default().handshake_timeout;
    let took = net.now - start;
    assert!(
        took >= timeout && took <= timeout + Duration::from_secs(1),
        "{took:?}"
    );
    assert_eq!(
        net.client_events[0],
        [
            ClientEvent::PeerUnreachable,
            ClientEvent::Closed {
                server_received: None
            }
        ]
    );
}

#[test]
fn garbage_and_strangers_are_counted_and_ignored() {
    let now = Instant::now();
    let mut server =
        Server::new(ServerConfig::default(), ServerSecrets::from_test_seed(1)).unwrap();
    let from = client_addr(1);
    let mut delivered = 0;
    server.handle_datagram(now, from, None, b"GET / HTTP/1.1\r\n", |_| delivered += 1);
    server.handle_datagram(
        now,
        from,
        None,
        &[0x52, 0x4d, 0x03, 0x10, 0, 0, 0, 9, 0x06, 0x01],
        |_| delivered += 1,
    );
    let mut buf = [0u8; 1472];
    assert_eq!(
        server.poll_transmit(now, &mut buf),
        None,
        "nothing is sent to strangers"
    );
    let s = server.stats();
    assert_eq!((s.malformed, s.unknown_session, delivered), (1, 1, 0));
}

/// Plays HELLO → RETRY → HELLO with cookie between `client` and `server`; returns the
/// bytes of the validated HELLO.
fn validated_hello(
    server: &mut Server,
    client: &mut Client,
    from: SocketAddr,
    now: Instant,
) -> Vec<u8> {
    let mut buf = [0u8; 1472];
    let len = client.poll_transmit(now, &mut buf).expect("a HELLO");
    server.handle_datagram(now, from, None, &buf[..len], |_| {});
    let t = server.poll_transmit(now, &mut buf).expect("a RETRY");
    assert_eq!(t.destination, from);
    client.handle_datagram(now, &buf[..t.len]);
    assert_eq!(client.stats().retries, 1);
    let len = client
        .poll_transmit(now, &mut buf)
        .expect("a HELLO with the cookie");
    server.handle_datagram(now, from, None, &buf[..len], |_| {});
    buf[..len].to_vec()
}

#[test]
fn sessions_are_bounded() {
    let now = Instant::now();
    let config = ServerConfig {
        max_sessions: 2,
        ..ServerConfig::default()
    };
    let mut server = Server::new(config, ServerSecrets::from_test_seed(1)).unwrap();
    for n in 0..5u16 {
        let mut client = Client::new(ClientConfig::default(), now, 0, u64::from(n)).unwrap();
        validated_hello(&mut server, &mut client, client_addr(n), now);
    }
    let s = server.stats();
    assert_eq!((s.sessions_open, s.refused), (2, 3));
}

#[test]
fn a_session_that_goes_quiet_after_a_burst_stays_alive() {
    let mut net = Net::new(1, 0.0, 8);
    // A burst: many datagrams and ACKs, many arriving at the same simulated instant...
    drive(&mut net, 20_000, false);
    assert_eq!(net.clients[0].stats().acked, 20_000);
    // ...then twenty seconds of nothing but heartbeats.
    let start = net.now;
    net.run_until(1_000_000, |n| n.now - start >= Duration::from_secs(20));
    assert_eq!(net.server.stats().sessions_open, 1);
    assert!(!net.client_events[0].contains(&ClientEvent::PeerUnreachable));
    assert!(net.clients[0].is_established());
}

#[test]
fn every_message_arrives_once_despite_held_back_datagrams() {
    // 5 % of the datagrams each way arrive 50 to 700 ms late: after their resends, after
    // their ACKs' successors, some after the session ended.
    let ms = Duration::from_millis;
    let link = LinkConfig::fixed(ONE_WAY).with_hold_back(0.05, ms(50)..ms(700));
    let mut net = Net::with_link(2, link, 9);
    send_all(&mut net, 20_000);
    for i in 0..2 {
        assert_exactly_once(&net, i, 20_000);
        assert_eq!(net.clients[i].stats().undeliverable, 0);
    }
    assert!(net.up.stats().held_back > 0 && net.down.stats().held_back > 0);
    // The late ones that are still on their way reach a server that has closed the sessions.
    net.run_until(100_000, |n| {
        n.up.in_flight() == 0 && n.down.in_flight() == 0
    });
    for i in 0..2 {
        assert_exactly_once(&net, i, 20_000);
    }
    assert_eq!(net.server.stats().sessions_open, 0);
}

#[test]
fn no_session_dies_under_20_percent_loss_both_ways() {
    // 300 seeded runs of 2,000 messages: the handshake's answers are lost for seconds in
    // some, and neither end may give up on the other while both are alive (a scan like this
    // found the sticky death verdict of `a_session_whose_client_is_still_handshaking_...`).
    for seed in 0..300 {
        let mut net = Net::new(1, 0.2, seed);
        send_all(&mut net, 2000);
        assert_eq!(net.server.stats().sessions_dead, 0, "seed {seed}");
        assert!(
            !net.client_events[0].contains(&ClientEvent::PeerUnreachable),
            "seed {seed}"
        );
        assert_exactly_once(&net, 0, 2000);
    }
}

#[test]
fn at_any_loss_rate_a_message_is_delivered_at_most_once_and_giving_up_is_reported() {
    // Two clients, 3,000 messages each, 300 seeds per loss rate (each way), 5 % to 50 %.
    // Exactly once where the run completes; where the loss defeats the defaults (connect
    // timeout, failure detector, `max_retries` resends) an end gives up and says so, never
    // delivering twice or under another ID. The counts of each outcome go to stderr (`--nocapture`; docs/RELIABILITY.md).
    for loss in [0.05, 0.1, 0.2, 0.3, 0.4, 0.5] {
        let mut outcomes = [0u32; 5]; // clean, handshake, unreachable, evicted, undeliverable
        for seed in 0..300u64 {
            let mut net = Net::new(2, loss, seed);
            drive(&mut net, 3000, true);
            assert_eq!(net.corrupt, 0, "loss {loss} seed {seed}");
            for (i, counts) in net.delivered.iter().enumerate() {
                assert!(
                    counts.iter().all(|&c| c <= 1),
                    "loss {loss} seed {seed} client {i}"
                );
            }
            let s = net.server.stats();
            let any = |f: &dyn Fn(&ClientEvent) -> bool| net.client_events.iter().flatten().any(f);
            let established = |e: &Vec<ClientEvent>| {
                e.iter()
                    .any(|e| matches!(e, ClientEvent::Established { .. }))
            };
            let flags = [
                !net.client_events.iter().all(established),
                net.client_events
                    .iter()
                    .any(|e| established(e) && e.contains(&ClientEvent::PeerUnreachable)),
                s.sessions_dead > 0,
                any(&|e| matches!(e, ClientEvent::Undeliverable { .. })),
            ];
            for (k, &flag) in flags.iter().enumerate() {
                outcomes[k + 1] += u32::from(flag);
            }
            if !flags.contains(&true) {
                outcomes[0] += 1;
                for i in 0..2 {
                    assert_exactly_once(&net, i, 3000);
                }
            }
        }
        // Every run clean up to 40 % each way (before the handshake's repeats were capped at
        // 250 ms, 12 handshakes in 300 gave up at 40 %).
        if loss <= 0.4 {
            assert_eq!(outcomes[0], 300, "loss {loss}: {outcomes:?}");
        }
        // Heavy loss may defeat a handshake, which then says so; it never makes a client take
        // its live server for gone mid-session (`sender/reachability.rs`): at 40 % one run
        // in 300 did before the sender asked.
        assert_eq!(outcomes[2], 0, "loss {loss}: {outcomes:?}");
        eprintln!(
            "loss {loss}: {} of 300 clean; a handshake gave up {}, a client gave up on the \
             server after its handshake {}, the server evicted a live client {}, undeliverable {}",
            outcomes[0], outcomes[1], outcomes[2], outcomes[3], outcomes[4]
        );
    }
}

#[test]
fn long_paths_with_loss_deliver_everything_once_and_nobody_gives_up() {
    // Round trips of 50 ms to 600 ms (continents, a satellite hop), far above the LAN the
    // defaults were measured on (100 ms heartbeats, a 100 ms first RTT, HELLO repeats from
    // 200 ms), with up to 20 % loss each way: two clients of 3,000 messages, 20 seeds each.
    // Every run completes: handshake, every message once, no end takes the other for gone.
    for one_way_ms in [25u64, 50, 150, 300] {
        for loss in [0.0, 0.01, 0.05, 0.2] {
            for seed in 0..20u64 {
                let link = LinkConfig {
                    loss,
                    ..LinkConfig::fixed(Duration::from_millis(one_way_ms))
                };
                let mut net = Net::with_link(2, link, seed);
                send_all(&mut net, 3000);
                let case = format!("one way {one_way_ms} ms, loss {loss}, seed {seed}");
                for i in 0..2 {
                    assert_exactly_once(&net, i, 3000);
                    assert!(
                        !net.client_events[i].contains(&ClientEvent::PeerUnreachable),
                        "{case}: client {i} gave up on the server"
                    );
                }
                assert_eq!(net.server.stats().sessions_dead, 0, "{case}");
                assert!(
                    !net.client_events
                        .iter()
                        .flatten()
                        .any(|e| matches!(e, ClientEvent::Undeliverable { .. })),
                    "{case}"
                );
            }
        }
    }
}
