//! The server binary's command line: usage errors, runtime errors, and graceful shutdown.
//!
//! Everything binds 127.0.0.1 with port 0. End-to-end runs with the client live in
//! `realmq-client/tests/e2e.rs`; having tests here also makes `cargo test
//! --workspace` build the `realmq-server` binary they use.

#[path = "../../realmq-client/tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::Command;

use support::Proc;

fn server(args: &[&str]) -> Proc {
    Proc::start(
        "server",
        PathBuf::from(env!("CARGO_BIN_EXE_realmq-server")),
        args,
    )
}

#[test]
fn bad_flags_are_usage_errors() {
    for args in [
        &["--bind", "not-an-address"][..],
        &["--simulate-loss", "150"],
        &["--no-such-flag"],
    ] {
        let out = server(args).finish();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(out.error_line().len() < 200, "{}", out.stderr);
    }
}

#[test]
fn a_port_in_use_is_a_one_line_runtime_error() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = server(&["--bind", &addr]).finish();
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let line = out.error_line();
    assert!(
        line.contains("cannot bind UDP") && line.contains(&addr),
        "{line}"
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

#[test]
fn a_missing_key_file_is_named_with_the_systems_reason() {
    let missing = std::env::temp_dir().join(format!("realmq-no-key-{}", std::process::id()));
    let out = server(&[
        "--bind",
        "127.0.0.1:0",
        "--psk-file",
        missing.to_str().unwrap(),
    ])
    .finish();
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let line = out.error_line();
    assert!(
        line.contains("cannot read the key file")
            && line.contains(missing.to_str().unwrap())
            && line.contains("No such file or directory"),
        "{line}"
    );
}

#[test]
fn an_unwritable_stats_dir_is_reported() {
    let file = std::env::temp_dir().join(format!("realmq-not-a-dir-{}", std::process::id()));
    std::fs::write(&file, b"x").unwrap();
    let dir = file.join("stats");
    let args = [
        "--bind",
        "127.0.0.1:0",
        "--stats-dir",
        dir.to_str().unwrap(),
    ];
    let out = server(&args).finish();
    std::fs::remove_file(&file).unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.error_line().contains("cannot create stats directory"),
        "{}",
        out.stderr
    );
}

#[test]
fn help_documents_every_flag() {
    let out = server(&["--help"]).finish();
    assert!(out.status.success());
    let stdout = out.stdout;
    for flag in [
        "--bind",
        "--protocol",
        "--exit-after-sessions",
        "--json",
        "--port-file",
        "--stats-dir",
        "--stats-format",
        "--save-interval",
        "--rotate-after",
        "--simulate-loss",
        "--loss-seed",
        "--socket-buffer",
        "[default: 127.0.0.1:5555]",
    ] {
        assert!(stdout.contains(flag), "{flag} missing from --help");
    }
}

#[cfg(unix)]
#[test]
fn sigterm_ends_the_run_with_a_summary() {
    for protocol in ["udp", "tcp"] {
        let mut server = server(&["--bind", "127.0.0.1:0", "--protocol", protocol, "--json"]);
        let addr = server.wait_for_address();
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        let kill = Command::new("kill")
            .args(["-TERM", &server.child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let out = server.finish();
        assert!(out.status.success(), "{}", out.stderr);
        let summary = out.json();
        assert_eq!(summary["received"], 0);
        assert_eq!(summary["protocol"], protocol);
    }
}
