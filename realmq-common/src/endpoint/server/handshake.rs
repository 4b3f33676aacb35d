//! The server's half of the handshake: a HELLO without a valid cookie gets a stateless
//! RETRY (at most three times the bytes received: RFC 9000 §8.1); one echoing a fresh cookie
//! minted for its address and nonce opens a session, answered with a WELCOME.
//!
//! Both answers echo the HELLO's timestamp and carry the server's wall clock, if it has one,
//! so the client can estimate its clock offset; the session takes the estimate of the HELLO
//! that opens it and corrects its send times by it (see `endpoint/clock.rs`).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use rand_chacha::rand_core::RngCore;
use realmq_proto::{Datagram, DatagramWriter, Frame, Header, Hello, Retry, Welcome};

use super::{seal_to, PendingRetry, Server, ServerEvent, Session, Transmit};
use crate::endpoint::auth::{writable_len, SessionAuth};
use crate::endpoint::clock::{to_server_clock, ClockOffset};
use crate::receiver::Receiver;
use crate::security::{SessionKeys, COOKIE_KEY_LEN};

impl Server {
    /// A handshake datagram: exactly one HELLO (and padding) or it is malformed.
    pub(super) fn on_handshake(
        &mut self,
        now: Instant,
        from: SocketAddr,
        local_ip: Option<IpAddr>,
        bytes: &[u8],
    ) {
        let Ok(datagram) = Datagram::parse(bytes) else {
            self.stats.malformed += 1;
            return;
        };
        let mut hellos = datagram.frames().filter_map(|f| match f {
            Frame::Hello(hello) => Some(hello),
            _ => None,
        });
        match (hellos.next(), hellos.next()) {
            (Some(hello), None) => self.on_hello(now, (from, local_ip), hello, bytes.len()),
            // None (a stray WELCOME/RETRY) or several HELLOs in one datagram.
            _ => self.stats.malformed += 1,
        }
    }

    /// A HELLO from `path`: the client's address and the local address it reached.
    pub(super) fn on_hello(
        &mut self,
        now: Instant,
        path: (SocketAddr, Option<IpAddr>),
        hello: Hello<'_>,
        received_len: usize,
    ) {
        let from = path.0;
        self.rotate_cookie_key_if_due(now);
        let now_ms = self.cookie_clock_ms(now);
        if hello.token.is_empty() {
            self.queue_retry(path, &hello, now_ms, received_len);
            return;
        }
        let lifetime_ms = self.config.cookie_lifetime.as_millis() as u64;
        if self
            .cookie_keys
            .verify(from, hello.nonce, hello.token, now_ms, lifetime_ms)
            .is_err()
        {
            self.stats.bad_cookies += 1;
            self.queue_retry(path, &hello, now_ms, received_len);
            return;
        }
        if let Some(&id) = self.hellos.get(&(from, hello.nonce)) {
            match self.sessions.get_mut(&id) {
                // The WELCOME was lost: repeat it for the same session. The repeated HELLO
                // is the client's sign of life until it has the WELCOME: without it a
                // client whose WELCOMEs are lost (20 % loss) was evicted between two
                // HELLOs (its retries backed off to 1 s then) and then refused as a replay.
                // The WELCOME echoes the latest HELLO; the session keeps its first estimate.
                Some(session) => {
                    session.receiver.handle_peer_activity(now);
                    session.hello_timestamp_us = hello.timestamp_us;
                    if !std::mem::replace(&mut session.welcome_queued, true) {
                        self.welcomes.push_back(id);
                    }
                }
                // A session evicted before its client ever spoke in it: the client never got
                // a WELCOME and is still handshaking, not replaying. Open it anew.
                None if self
                    .closed
                    .get(&id)
                    .is_some_and(|c| c.bye.is_none() && !c.spoke) =>
                {
                    self.forget_closed(id);
                    self.open_session(now, path, hello);
                }
                None => self.stats.hellos_replayed += 1,
            }
            return;
        }
        self.open_session(now, path, hello);
    }

    /// Queues a stateless RETRY for `hello` carrying a fresh cookie, within the queue's bound.
    pub(super) fn queue_retry(
        &mut self,
        (peer, local_ip): (SocketAddr, Option<IpAddr>),
        hello: &Hello<'_>,
        now_ms: u64,
        received_len: usize,
    ) {
        if self.retries.len() >= self.config.max_pending_retries {
            self.stats.hellos_dropped += 1;
            return;
        }
        let cookie = self.cookie_keys.mint(peer, hello.nonce, now_ms);
        self.retries.push_back(PendingRetry {
            peer,
            local_ip,
            nonce: hello.nonce,
            echo_timestamp_us: hello.timestamp_us,
            cookie,
            received_len,
        });
    }

    pub(super) fn open_session(
        &mut self,
        now: Instant,
        (from, local_ip): (SocketAddr, Option<IpAddr>),
        hello: Hello<'_>,
    ) {
        if self.sessions.len() >= self.config.max_sessions {
            self.stats.refused += 1;
            return;
        }
        let id = loop {
            let id = self.rng.next_u32();
            if id != 0 && !self.sessions.contains_key(&id) && !self.closed.contains_key(&id) {
                break id;
            }
        };
        // The configuration was validated in `Server::new`, so this cannot fail; refuse the
        // HELLO rather than panic if it ever did.
        let Ok(receiver) = Receiver::new(self.config.receiver.clone(), now) else {
            self.stats.refused += 1;
            return;
        };
        let server_nonce = self.rng.next_u64();
        let auth = self.psk.as_ref().map(|psk| {
            SessionAuth::server(&SessionKeys::derive(psk, hello.nonce, server_nonce, id))
        });
        // Send times move to the server's clock when the client's offset is known and can
        // be told from zero (meaningful only if this server has a wall clock to compare).
        let clock_offset_us = ClockOffset::from_hello(hello.clock_offset_us, hello.clock_rtt_us)
            .filter(|_| self.wall_clock.is_some())
            .map(ClockOffset::correction_us);
        let epoch_unix_us = to_server_clock(hello.epoch_unix_us, clock_offset_us.unwrap_or(0));
        self.sessions.insert(
            id,
            Session {
                peer: from,
                local_ip,
                nonce: hello.nonce,
                server_nonce,
                epoch_unix_us,
                clock_offset_us,
                hello_timestamp_us: hello.timestamp_us,
                receiver,
                auth,
                dirty: false,
                welcome_queued: true,
                echo_heartbeat: false,
                client_sent: None,
                spoke: false,
                opened: now,
            },
        );
        self.hellos.insert((from, hello.nonce), id);
        self.welcomes.push_back(id);
        self.stats.sessions_total += 1;
        self.events.push_back(ServerEvent::SessionOpened {
            session_id: id,
            peer: from,
            clock_offset_us,
        });
    }

    /// Draws a new cookie key once per cookie lifetime, on the handshake's own traffic (no
    /// timer of its own). A cookie thus outlives at most one rotation, and the previous key
    /// still verifies it; a leaked key or a harvest of tags is worth two lifetimes at most.
    fn rotate_cookie_key_if_due(&mut self, now: Instant) {
        let lifetime = self.config.cookie_lifetime;
        let due = *self.next_key_rotation.get_or_insert(now + lifetime);
        if now >= due {
            let mut secret = [0u8; COOKIE_KEY_LEN];
            self.rng.fill_bytes(&mut secret);
            self.cookie_keys.rotate(&secret);
            self.next_key_rotation = Some(now + lifetime);
        }
    }

    /// Milliseconds on the cookie clock.
    pub(super) fn cookie_clock_ms(&self, now: Instant) -> u64 {
        self.epoch
            .map_or(0, |e| now.saturating_duration_since(e).as_millis() as u64)
    }

    /// The server's wall clock at `now` for the handshake's answers, 0 without one.
    fn server_unix_us(&self, now: Instant) -> u64 {
        self.wall_clock.map_or(0, |c| c.unix_us(now))
    }

    pub(super) fn write_retry(
        &mut self,
        now: Instant,
        retry: PendingRetry,
        buf: &mut [u8],
    ) -> Option<Transmit> {
        let max = self.config.receiver.max_datagram_size;
        let server_unix_us = self.server_unix_us(now);
        let mut w = DatagramWriter::new(buf, max, Header::handshake(0)).ok()?;
        w.retry(Retry {
            nonce: retry.nonce,
            echo_timestamp_us: retry.echo_timestamp_us,
            server_unix_us,
            cookie: retry.cookie.as_bytes(),
        })
        .ok()?;
        let len = w.finish();
        // RFC 9000 §8.1: to an address not yet validated, at most three times what it sent.
        if len > 3 * retry.received_len {
            self.stats.hellos_dropped += 1;
            return None;
        }
        self.stats.retries_sent += 1;
        Some(Transmit {
            destination: retry.peer,
            len,
            src_ip: retry.local_ip,
        })
    }

    pub(super) fn write_welcome(
        &mut self,
        now: Instant,
        id: u32,
        buf: &mut [u8],
    ) -> Option<Transmit> {
        let server_unix_us = self.server_unix_us(now);
        let session = self.sessions.get_mut(&id)?;
        session.welcome_queued = false;
        let max = self.config.receiver.max_datagram_size;
        let room = writable_len(max, session.auth.is_some());
        let mut w = DatagramWriter::new(&mut *buf, room, Header::handshake(id)).ok()?;
        w.welcome(Welcome {
            nonce: session.nonce,
            heartbeat_interval_us: self.config.heartbeat_interval.as_micros() as u64,
            server_nonce: session.server_nonce,
            id_window: self.config.receiver.id_window,
            echo_timestamp_us: session.hello_timestamp_us,
            server_unix_us,
        })
        .ok()?;
        let len = w.finish();
        seal_to(&mut session.auth, buf, len, session.peer, session.local_ip)
    }
}
