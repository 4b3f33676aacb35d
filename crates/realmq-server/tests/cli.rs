//! The server binary's command line: usage errors, runtime errors, and graceful shutdown.
//!
//! Everything binds 127.0.0.1 with port 0. End-to-end runs with the client live in
//! `crates/realmq-client/tests/e2e.rs`; having tests here also makes `cargo test
//! --workspace` build the `realmq-server` binary they use.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// A running server, killed on drop (so a failing test leaves nothing behind).
struct Server {
    child: Child,
    stdout: mpsc::Receiver<String>,
    /// stderr lines, then `None` at its end.
    stderr: mpsc::Receiver<Option<String>>,
    seen: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_realmq-server"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start realmq-server");
        let (out_tx, stdout) = mpsc::channel();
        let mut out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = out.read_to_string(&mut text);
            let _ = out_tx.send(text);
        });
        let (err_tx, stderr) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = err_tx.send(Some(line));
            }
            let _ = err_tx.send(None);
        });
        Self {
            child,
            stdout,
            stderr,
            seen: Vec::new(),
        }
    }

    /// Waits (bounded) for the `listening on ADDR` line; returns ADDR.
    fn address(&mut self) -> String {
        loop {
            let line = self
                .stderr
                .recv_timeout(WAIT)
                .expect("no `listening on` line from the server within 60 s")
                .unwrap_or_else(|| panic!("server ended early: {}", self.seen.join("\n")));
            self.seen.push(line.clone());
            if let Some(rest) = line.split("listening on ").nth(1) {
                return rest.split_whitespace().next().unwrap().to_string();
            }
        }
    }

    /// Waits (bounded) for the server to exit: its status, stdout and remaining stderr.
    fn finish(mut self) -> (ExitStatus, String, String) {
        let stdout = self
            .stdout
            .recv_timeout(WAIT)
            .expect("the server did not exit within 60 s");
        let status = self.child.wait().unwrap();
        while let Some(line) = self
            .stderr
            .recv_timeout(WAIT)
            .expect("stderr still open 60 s after exit")
        {
            self.seen.push(line);
        }
        (status, stdout, self.seen.join("\n"))
    }
}

fn error_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no `error:` line in stderr:\n{stderr}"))
}

#[test]
fn bad_flags_are_usage_errors() {
    for args in [
        &["--bind", "not-an-address"][..],
        &["--simulate-loss", "150"],
        &["--no-such-flag"],
    ] {
        let (status, _, stderr) = Server::start(args).finish();
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        assert!(error_line(&stderr).len() < 200, "{stderr}");
    }
}

#[test]
fn a_port_in_use_is_a_one_line_runtime_error() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (status, _, stderr) = Server::start(&["--bind", &addr]).finish();
    assert_eq!(status.code(), Some(1), "{stderr}");
    let line = error_line(&stderr);
    assert!(
        line.contains("cannot bind UDP") && line.contains(&addr),
        "{line}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
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
    let (status, _, stderr) = Server::start(&args).finish();
    std::fs::remove_file(&file).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        error_line(&stderr).contains("cannot create stats directory"),
        "{stderr}"
    );
}

#[test]
fn help_documents_every_flag() {
    let (status, stdout, _) = Server::start(&["--help"]).finish();
    assert!(status.success());
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
        let mut server =
            Server::start(&["--bind", "127.0.0.1:0", "--protocol", protocol, "--json"]);
        let addr = server.address();
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        let kill = Command::new("kill")
            .args(["-TERM", &server.child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let (status, stdout, stderr) = server.finish();
        assert!(status.success(), "{stderr}");
        let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(summary["received"], 0);
        assert_eq!(summary["protocol"], protocol);
    }
}
