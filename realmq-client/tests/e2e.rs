//! End to end: the real `realmq-server` and `realmq-client` binaries over loopback.
//!
//! Every server binds 127.0.0.1 port 0 and the test reads the bound address from its
//! `listening on ADDR` log line, so tests never race for ports. Every child process is
//! killed when its guard drops (also when an assertion fails), and every wait is bounded.
//!
//! The server binary is expected next to the client's; `cargo test --workspace` builds it.

mod support;

use std::path::PathBuf;

use realmq_common::payload_stamp::STAMP_LEN;
use serde_json::Value;

use support::Proc;

fn client_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_realmq-client"))
}

fn server_bin() -> PathBuf {
    let path =
        client_bin().with_file_name(format!("realmq-server{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p realmq-server` or run `cargo test --workspace`",
        path.display()
    );
    path
}

impl Proc {
    /// A server on an ephemeral loopback port; returns it and its address.
    fn server(args: &[&str]) -> (Self, String) {
        let mut all = vec!["--bind", "127.0.0.1:0", "--json"];
        all.extend_from_slice(args);
        let mut server = Self::start("server", server_bin(), &all);
        let addr = server.wait_for_address();
        (server, addr)
    }

    fn client(addr: &str, args: &[&str]) -> Self {
        let mut all = vec!["--server", addr, "--json"];
        all.extend_from_slice(args);
        Self::start("client", client_bin(), &all)
    }
}

/// Runs one server session set and one client; returns both outputs, checking exit 0.
fn serve_and_send(server_args: &[&str], client_args: &[&str]) -> (Value, Value) {
    let (server, addr) = Proc::server(server_args);
    let client = Proc::client(&addr, client_args).finish();
    assert!(
        client.status.success(),
        "client failed ({}):\n{}",
        client.status,
        client.stderr
    );
    let server = server.finish();
    assert!(server.status.success(), "server failed:\n{}", server.stderr);
    let (client, server) = (client.json(), server.json());
    assert_payloads_intact(&client, &server);
    (client, server)
}

/// No delivered payload was corrupt, and over UDP every payload of [`STAMP_LEN`] bytes or
/// more was checked: the load client stamps each with its session, ID and CRC-32, and the
/// server checks each delivery against them (`realmq_common::payload_stamp`). The TCP
/// baseline sends no stamps.
fn assert_payloads_intact(client: &Value, server: &Value) {
    assert_eq!(server["corrupt"], 0, "server: {server}");
    let received = server["received"].as_u64().expect("received");
    let stamped = server["stamped"].as_u64().expect("stamped");
    let size = client["size"].as_u64().expect("size");
    if server["protocol"] == "udp" && size >= STAMP_LEN as u64 {
        assert_eq!(stamped, received, "server: {server}");
    } else {
        assert!(stamped <= received, "server: {server}");
    }
}

/// Every copy the server dropped as a duplicate was a resend: loopback duplicates nothing
/// itself, and a resend that crossed its acknowledgement (a slow, loaded host fires the
/// retransmission timer early) arrives twice but is delivered once (`received` counts
/// distinct messages). Asserting no duplicates at all made the test depend on the host's
/// timing: on a loaded afternoon, 5,000-byte messages saw 18-480 spurious resends in a
/// debug build.
fn assert_duplicates_are_resends(client: &Value, server: &Value) {
    let duplicates = server["duplicates"].as_u64().expect("duplicates");
    let resent = client["retransmitted"].as_u64().expect("retransmitted");
    assert!(duplicates <= resent, "client: {client}\nserver: {server}");
}

fn assert_all_delivered(client: &Value, server: &Value, messages: u64) {
    assert_eq!(client["sent"], messages, "client: {client}");
    assert_eq!(client["acked"], messages, "client: {client}");
    assert_eq!(client["delivered"], messages, "client: {client}");
    assert_eq!(client["lost"], 0, "client: {client}");
    assert_eq!(client["loss_pct"], 0.0, "client: {client}");
    assert_eq!(client["undeliverable"], 0, "client: {client}");
    assert_eq!(client["interrupted"], false, "client: {client}");
    assert!(client["error"].is_null(), "client: {client}");
    assert_eq!(server["received"], messages, "server: {server}");
    assert_eq!(server["sessions_open"], 0, "server: {server}");
    for key in ["p50", "p90", "p99", "p999", "max"] {
        assert!(client["rtt_us"][key].is_u64(), "rtt_us.{key}: {client}");
        assert!(
            server["latency_us"][key].is_u64(),
            "latency_us.{key}: {server}"
        );
    }
    for key in [
        "duration_s",
        "send_duration_s",
        "sent_per_s",
        "delivered_per_s",
        "mb_per_s",
    ] {
        assert!(client[key].is_number(), "{key}: {client}");
    }
    for key in [
        "duplicates",
        "malformed",
        "sessions_total",
        "duration_s",
        "msgs_per_s",
    ] {
        assert!(!server[key].is_null(), "{key}: {server}");
    }
    // What the run cost each end in processor time (Linux can tell both).
    if cfg!(target_os = "linux") {
        for (end, json) in [("client", client), ("server", server)] {
            let cpu = &json["cpu"];
            let (user, system) = (cpu["user_s"].as_f64(), cpu["system_s"].as_f64());
            let per = cpu["ns_per_message"].as_f64();
            assert!(
                user.zip(system).is_some_and(|(u, s)| u + s > 0.0) && per > Some(0.0),
                "{end} cpu: {cpu}"
            );
        }
    }
}

#[test]
fn qos_delivers_every_message_with_one_thread() {
    let (client, server) = serve_and_send(
        &["--exit-after-sessions", "1"],
        &["--messages", "20000", "--threads", "1"],
    );
    assert_all_delivered(&client, &server, 20_000);
    assert_duplicates_are_resends(&client, &server);
    assert_eq!(client["delivered"], 20_000);
}

/// Datagrams larger than the default (loopback carries up to 65,507 bytes): messages too
/// large for a 1472-byte datagram go, and many small ones share one.
#[test]
fn larger_datagrams_carry_larger_and_more_messages() {
    // In 1472-byte datagrams 20,000 messages of 64 bytes took at least 952.
    for (size, datagram, most_datagrams) in [("5000", "8972", 40_000), ("64", "65507", 200)] {
        let (client, server) = serve_and_send(
            &["--exit-after-sessions", "1"],
            &[
                "--messages",
                "20000",
                "--size",
                size,
                "--datagram-size",
                datagram,
            ],
        );
        assert_all_delivered(&client, &server, 20_000);
        assert_duplicates_are_resends(&client, &server);
        let datagrams = client["datagrams_sent"].as_u64().unwrap();
        assert!(
            datagrams <= most_datagrams,
            "{datagrams} datagrams of {datagram} bytes"
        );
    }
}

#[test]
fn qos_delivers_every_message_with_four_threads() {
    let (client, server) = serve_and_send(
        &["--exit-after-sessions", "4"],
        &["--messages", "40001", "--threads", "4", "--size", "200"],
    );
    assert_all_delivered(&client, &server, 40_001);
    assert_eq!(server["sessions_total"], 4);
}

#[test]
fn qos_repairs_ten_percent_loss_on_both_ends() {
    let (client, server) = serve_and_send(
        &[
            "--exit-after-sessions",
            "2",
            "--simulate-loss",
            "10",
            "--loss-seed",
            "3",
        ],
        &[
            "--messages",
            "20000",
            "--threads",
            "2",
            "--simulate-loss",
            "10",
            "--loss-seed",
            "5",
        ],
    );
    // Exactly once: every message delivered, duplicates dropped by the server.
    assert_all_delivered(&client, &server, 20_000);
    assert!(client["retransmitted"].as_u64().unwrap() > 0, "{client}");
    assert!(client["simulated_drops"].as_u64().unwrap() > 0, "{client}");
    assert!(
        server["udp"]["simulated_drops"].as_u64().unwrap() > 0,
        "{server}"
    );
}

#[test]
fn no_qos_completes_and_reports_what_arrived() {
    let (client, server) = serve_and_send(
        &["--exit-after-sessions", "1"],
        &["--messages", "20000", "--no-qos"],
    );
    assert_eq!(client["sent"], 20_000);
    assert_eq!(client["qos"], false);
    assert_eq!(client["retransmitted"], 0);
    // Without QoS nothing is acknowledged: `delivered` is the server's own count, and
    // `lost` the rest; the rates say which is which.
    assert!(client["acked"].is_null(), "client: {client}");
    assert!(client["rtt_us"].is_null(), "client: {client}");
    assert_eq!(client["delivered"], server["received"]);
    let lost = 20_000 - server["received"].as_u64().unwrap();
    assert_eq!(client["lost"], lost);
}

#[test]
fn no_qos_survives_steady_loss_on_both_ends() {
    // 30 % of the client's DATA and of the server's ACKs dropped: the server's record of
    // gaps (1,024 ranges) fills within milliseconds, and before `NO_RESEND` every later
    // message that opened a gap was refused, the ACKs stopped and the session died.
    let (client, server) = serve_and_send(
        &[
            "--exit-after-sessions",
            "1",
            "--simulate-loss",
            "30",
            "--loss-seed",
            "3",
        ],
        &[
            "--messages",
            "200000",
            "--no-qos",
            "--rate",
            "0",
            "--simulate-loss",
            "30",
            "--loss-seed",
            "5",
        ],
    );
    assert_eq!(client["sent"], 200_000);
    assert_eq!(client["reconnects"], 0, "client: {client}");
    assert_eq!(client["delivered"], server["received"]);
    // What the client's simulated loss took is lost; nothing else is.
    let lost = client["lost"].as_u64().unwrap();
    let dropped = client["simulated_drops"].as_u64().unwrap();
    assert!(lost > 0 && dropped > 0, "client: {client}");
    assert_eq!(server["malformed"], 0);
}

#[test]
fn tcp_baseline_completes() {
    let (client, server) = serve_and_send(
        &["--exit-after-sessions", "2", "--protocol", "tcp"],
        &[
            "--messages",
            "20000",
            "--threads",
            "2",
            "--protocol",
            "tcp",
            "--size",
            "1024",
        ],
    );
    assert_eq!(client["sent"], 20_000);
    assert_eq!(client["delivered"], 20_000);
    assert_eq!(
        client["qos"], false,
        "RealMQ's QoS is not what makes TCP reliable"
    );
    for key in ["acked", "retransmitted", "undeliverable", "rtt_us"] {
        assert!(client[key].is_null(), "{key}: {client}");
    }
    assert_eq!(server["received"], 20_000);
    assert_eq!(server["protocol"], "tcp");
    assert_eq!(server["sessions_ended"], 2);
}

#[test]
fn duration_and_rate_mode_delivers_what_it_sent() {
    let (client, server) = serve_and_send(
        &["--exit-after-sessions", "1"],
        &["--duration", "0.3", "--rate", "5000"],
    );
    let sent = client["sent"].as_u64().unwrap();
    assert!(sent > 0, "{client}");
    assert_all_delivered(&client, &server, sent);
}

#[test]
fn stats_dir_gets_rotated_records_and_a_plot() {
    let dir = std::env::temp_dir().join(format!("realmq-e2e-stats-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_arg = dir.to_str().unwrap();
    let (_, server) = serve_and_send(
        &[
            "--exit-after-sessions",
            "1",
            "--stats-dir",
            dir_arg,
            "--rotate-after",
            "3000",
        ],
        &["--messages", "10000"],
    );
    assert_eq!(server["received"], 10_000);
    let mut records = 0;
    for i in 0..4 {
        let text = std::fs::read_to_string(dir.join(format!("stats-{i:06}.csv"))).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("id,num,diff"));
        records += lines.count();
    }
    assert_eq!(records, 10_000);
    assert!(!dir.join("stats-000004.csv").exists());
    let svg = std::fs::read_to_string(dir.join("latency.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("p99.9 = "));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_flags_give_a_usage_error() {
    for args in [
        &["--threads", "0"][..],
        &["--server", "nowhere"],
        &["--messages", "10", "--duration", "1"],
        &["--size", "5000"],
        &["--datagram-size", "299"],
        &["--datagram-size", "65508"],
        &["--size", "9000", "--datagram-size", "8972"],
    ] {
        let out = Proc::start("client", client_bin(), args).finish();
        assert_eq!(out.status.code(), Some(2), "{args:?}:\n{}", out.stderr);
        assert!(out.error_line().len() < 200, "{}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
    // A --size a larger datagram would carry names the flag that does it.
    let out = Proc::start("client", client_bin(), &["--size", "5000"]).finish();
    assert!(
        out.error_line().contains("--datagram-size"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_silent_server_is_reported_as_unreachable() {
    // A socket that never answers: the handshake must time out with a clear message.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let out = Proc::client(&addr, &["--messages", "10", "--connect-timeout", "0.5"]).finish();
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let line = out.error_line();
    assert!(
        line.contains("no answer from") && line.contains(&addr),
        "{line}"
    );
}

#[test]
fn a_missing_tcp_server_is_reported() {
    // A socket bound but not listening holds the port (a closed listener's port could be
    // taken by a concurrent test) and refuses connections.
    let held = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    held.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    let addr = held.local_addr().unwrap().as_socket().unwrap().to_string();
    let out = Proc::client(&addr, &["--protocol", "tcp", "--connect-timeout", "1"]).finish();
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.error_line().contains("cannot connect to"),
        "{}",
        out.stderr
    );
    // Nothing reached a server: the summary must not claim a confirmed delivery.
    let json = out.json();
    assert!(json["delivered"].is_null(), "{}", out.stdout);
}

#[test]
fn failures_print_one_json_object_with_the_error() {
    // Nothing listens on this port: the kernel refuses, as it would a TCP connect.
    let addr = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().to_string()
    };
    let out = Proc::client(&addr, &["--messages", "10", "--connect-timeout", "30"]).finish();
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let json = out.json();
    let error = json["error"].as_str().expect("an error key");
    assert!(
        error.contains("cannot connect to") && error.contains(&addr),
        "{error}"
    );
    assert_eq!(json["sent"], 0);
    // No count came from a server: delivery, loss and the rates are unknown, not 0.
    for key in [
        "delivered",
        "lost",
        "loss_pct",
        "sent_per_s",
        "delivered_per_s",
    ] {
        assert!(json[key].is_null(), "{key}: {}", json[key]);
    }
}

#[cfg(unix)]
#[test]
fn an_interrupted_run_says_so() {
    let (server, addr) = Proc::server(&["--exit-after-sessions", "1"]);
    // Paced so that it is still sending when the signal comes.
    let mut client = Proc::client(&addr, &["--duration", "30", "--rate", "2000"]);
    client.wait_for_stderr("msgs/s");
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &client.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = client.finish();
    assert!(out.status.success(), "{}", out.stderr);
    let json = out.json();
    assert_eq!(json["interrupted"], true, "{json}");
    let sent = json["sent"].as_u64().unwrap();
    assert!(sent > 0 && sent < 60_000, "{json}");
    assert_eq!(
        json["delivered"], sent,
        "what was sent is still delivered: {json}"
    );
    let intervals = json["intervals"].as_array().unwrap();
    assert!(!intervals.is_empty(), "{json}");
    drop(server);
}

#[cfg(unix)]
#[test]
fn a_crashed_client_is_evicted_and_reported() {
    let (server, addr) = Proc::server(&["--exit-after-sessions", "1"]);
    // A client that is still sending when it is killed: no STOP, no BYE, just silence.
    let mut client = Proc::client(&addr, &["--duration", "30", "--rate", "2000"]);
    client.wait_for_stderr("msgs/s");
    let kill = std::process::Command::new("kill")
        .args(["-KILL", &client.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    drop(client);
    // The failure detector ends the session; --exit-after-sessions 1 then ends the server.
    let out = server.finish();
    assert!(out.status.success(), "{}", out.stderr);
    let json = out.json();
    assert_eq!(json["udp"]["sessions_dead"], 1, "{json}");
    assert_eq!(json["sessions_open"], 0, "{json}");
    let report = &json["sessions"][0];
    assert_eq!(report["end"], "evicted", "{json}");
    assert!(report["received"].as_u64().unwrap() > 0, "{json}");
    assert!(
        report["client_sent"].is_null(),
        "a crashed client said nothing: {json}"
    );
}

/// Every key of `value`, nested ones included.
fn keys(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                keys(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

#[test]
fn every_json_key_is_documented_in_usage_md() {
    let usage = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/USAGE.md"),
    )
    .unwrap();
    let (client, server) = serve_and_send(
        &["--exit-after-sessions", "1"],
        &["--messages", "2000", "--interval", "0.001"],
    );
    let mut all = Vec::new();
    keys(&client, &mut all);
    keys(&server, &mut all);
    all.sort();
    all.dedup();
    let missing: Vec<&String> = all
        .iter()
        .filter(|k| !usage.contains(&format!("\"{k}\"")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/USAGE.md does not document {missing:?}"
    );
}

#[test]
fn every_flag_of_both_binaries_is_documented_in_usage_md() {
    let usage = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/USAGE.md"),
    )
    .unwrap();
    let mut missing = Vec::new();
    for bin in [client_bin(), server_bin()] {
        let out = std::process::Command::new(&bin)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success());
        let help = String::from_utf8(out.stdout).unwrap();
        for word in help.split(|c: char| c.is_whitespace() || c == ',' || c == '=') {
            let flag = word.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
            let is_flag = flag.starts_with("--")
                && flag.len() > 3
                && flag[2..]
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '-');
            if is_flag && flag != "--help" && flag != "--version" && !usage.contains(flag) {
                missing.push(format!("{} {flag}", bin.display()));
            }
        }
    }
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "docs/USAGE.md does not document {missing:?}"
    );
}
