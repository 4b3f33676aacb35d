//! Running the real binaries from tests: a child process killed on drop, its output read
//! by helper threads, every wait bounded. Shared by the client's end-to-end tests and the
//! server's command-line tests (which include this file by path).
#![allow(dead_code)] // each test crate uses its own part

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// The longest any process may take.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// A child process, killed on drop, whose stdout and stderr are read by helper threads.
pub(crate) struct Proc {
    name: &'static str,
    /// The process.
    pub child: Child,
    stdout: mpsc::Receiver<String>,
    /// stderr lines, then `None` at its end.
    stderr: mpsc::Receiver<Option<String>>,
    seen: Vec<String>,
}

/// What a finished process left.
pub(crate) struct Output {
    /// Exit status.
    pub status: ExitStatus,
    /// All of stdout.
    pub stdout: String,
    /// All of stderr.
    pub stderr: String,
}

impl Output {
    /// stdout parsed as the one JSON object the binaries print with `--json`.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON object ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// The `error: ...` line.
    pub(crate) fn error_line(&self) -> &str {
        self.stderr
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_else(|| panic!("no `error:` line in stderr:\n{}", self.stderr))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    pub(crate) fn start(name: &'static str, bin: PathBuf, args: &[&str]) -> Self {
        let mut child = Command::new(&bin)
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
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
            name,
            child,
            stdout,
            stderr,
            seen: Vec::new(),
        }
    }

    /// Waits (bounded) for the server's `listening on ADDR` log line; returns ADDR.
    pub(crate) fn wait_for_address(&mut self) -> String {
        let line = self.wait_for_stderr("listening on ");
        let rest = line.split("listening on ").nth(1).unwrap();
        rest.split_whitespace().next().unwrap().to_string()
    }

    /// Waits (bounded) for a stderr line containing `needle`; returns it.
    pub(crate) fn wait_for_stderr(&mut self, needle: &str) -> String {
        loop {
            let line = self
                .stderr
                .recv_timeout(WAIT)
                .unwrap_or_else(|_| panic!("no `{needle}` line within {WAIT:?}"))
                .unwrap_or_else(|| panic!("{} ended early:\n{}", self.name, self.seen.join("\n")));
            self.seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Waits (bounded) for the process to exit.
    pub(crate) fn finish(mut self) -> Output {
        let stdout = self.stdout.recv_timeout(WAIT).unwrap_or_else(|_| {
            panic!(
                "{} still running after {WAIT:?}; stderr so far:\n{}",
                self.name,
                {
                    let more: Vec<String> = self.stderr.try_iter().flatten().collect();
                    [self.seen.join("\n"), more.join("\n")].join("\n")
                }
            )
        });
        let status = self.child.wait().unwrap();
        while let Ok(Some(line)) = self.stderr.recv_timeout(WAIT) {
            self.seen.push(line);
        }
        Output {
            status,
            stdout,
            stderr: self.seen.join("\n"),
        }
    }
}
