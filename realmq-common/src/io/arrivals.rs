//! `--record-arrivals`: the arrival time of every datagram the peer sends in a session, one
//! file per session, for replaying through the failure detector
//! (`realmq-client phi-sweep`, [`crate::phi::replay`]).
//!
//! Format: the file `FILE.<session id>` holds one integer per line, the arrival time in
//! microseconds since the recorder was created (a monotonic clock; only differences matter).
//! Lines `# pause SINCE UNTIL` (microseconds on the same clock) record this process's own
//! pauses ([`PauseWatch`](crate::liveness::PauseWatch)), in every open session's file: the
//! replay does not count them as the peer's silence, as the live detector does not.
//! Memory is bounded: one 8 KiB buffered writer per open session, at most
//! [`MAX_RECORDED_SESSIONS`] files; a session's file is flushed and closed when it ends.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::endpoint::ServerEvent;

/// Most sessions one process records (each holds a file open while its session lasts).
pub const MAX_RECORDED_SESSIONS: usize = 256;

/// Why a trace file could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot write the arrival trace {}: {}", path.display(), std::io::Error::from(*kind))]
pub struct ArrivalsError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub kind: std::io::ErrorKind,
}

/// Writes per-session arrival traces.
///
/// Contract: [`open`](Self::open) a session when it starts, [`record`](Self::record) each
/// arrival (ignored for sessions not open), [`close`](Self::close) it when it ends,
/// [`finish`](Self::finish) at exit. Recording never fails the caller's loop: the first write
/// error is logged, recording stops, and `finish` returns the error.
#[derive(Debug)]
pub struct ArrivalRecorder {
    base: PathBuf,
    origin: Instant,
    files: HashMap<u32, BufWriter<File>>,
    opened: usize,
    error: Option<ArrivalsError>,
}

impl ArrivalRecorder {
    /// A recorder writing `base.<session id>` files, with times counted from `origin`.
    pub fn new(base: impl Into<PathBuf>, origin: Instant) -> Self {
        Self {
            base: base.into(),
            origin,
            files: HashMap::new(),
            opened: 0,
            error: None,
        }
    }

    /// The file of `session`: the base path with `.<session id>` appended.
    pub fn path_for(base: &Path, session: u32) -> PathBuf {
        let mut name = base.as_os_str().to_owned();
        name.push(format!(".{session}"));
        PathBuf::from(name)
    }

    /// Starts recording `session` (creates or truncates its file). Beyond
    /// [`MAX_RECORDED_SESSIONS`] sessions, or after an error, does nothing.
    pub fn open(&mut self, session: u32) {
        if self.error.is_some() || self.files.contains_key(&session) {
            return;
        }
        if self.opened >= MAX_RECORDED_SESSIONS {
            if self.opened == MAX_RECORDED_SESSIONS {
                log::warn!("--record-arrivals: {MAX_RECORDED_SESSIONS} sessions recorded, no more");
                self.opened += 1;
            }
            return;
        }
        let path = Self::path_for(&self.base, session);
        match File::create(&path) {
            Ok(file) => {
                self.opened += 1;
                self.files.insert(session, BufWriter::new(file));
            }
            Err(e) => self.fail(path, e.kind()),
        }
    }

    /// Records an arrival at `now` in `session`'s file, if it is open.
    pub fn record(&mut self, session: u32, now: Instant) {
        let Some(file) = self.files.get_mut(&session) else {
            return;
        };
        let micros = now.saturating_duration_since(self.origin).as_micros();
        if let Err(e) = writeln!(file, "{micros}") {
            let path = Self::path_for(&self.base, session);
            self.fail(path, e.kind());
        }
    }

    /// Records a pause of this process, from `since` to `now`, in every open session's file.
    pub fn record_pause(&mut self, since: Instant, now: Instant) {
        let micros = |t: Instant| t.saturating_duration_since(self.origin).as_micros();
        let (from, to) = (micros(since), micros(now));
        let mut failed = None;
        for (&session, file) in &mut self.files {
            if let Err(e) = writeln!(file, "# pause {from} {to}") {
                failed = Some((session, e.kind()));
                break;
            }
        }
        if let Some((session, kind)) = failed {
            self.fail(Self::path_for(&self.base, session), kind);
        }
    }

    /// Records an arrival at `now` of a datagram whose header names an open session (the
    /// server's loop, which does not otherwise know the session of a datagram).
    pub fn record_datagram(&mut self, bytes: &[u8], now: Instant) {
        if let Ok(header) = realmq_proto::Header::parse(bytes) {
            self.record(header.session_id, now);
        }
    }

    /// Opens and closes session files as the server's sessions open and close.
    pub fn on_server_event(&mut self, event: &ServerEvent) {
        match *event {
            ServerEvent::SessionOpened { session_id, .. } => self.open(session_id),
            ServerEvent::SessionClosed { session_id, .. } => self.close(session_id),
        }
    }

    /// Flushes and closes `session`'s file.
    pub fn close(&mut self, session: u32) {
        if let Some(mut file) = self.files.remove(&session) {
            if let Err(e) = file.flush() {
                self.fail(Self::path_for(&self.base, session), e.kind());
            }
        }
    }

    /// Flushes and closes every file; returns how many sessions were recorded, or the first
    /// error met.
    pub fn finish(mut self) -> Result<usize, ArrivalsError> {
        let sessions: Vec<u32> = self.files.keys().copied().collect();
        for session in sessions {
            self.close(session);
        }
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.opened.min(MAX_RECORDED_SESSIONS)),
        }
    }

    fn fail(&mut self, path: PathBuf, kind: std::io::ErrorKind) {
        let error = ArrivalsError { path, kind };
        log::warn!("{error}; arrivals are no longer recorded");
        self.files.clear();
        self.error.get_or_insert(error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn temp_base(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("realmq-arrivals-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn one_file_per_open_session_in_microseconds() {
        let base = temp_base("trace");
        let t0 = Instant::now();
        let mut r = ArrivalRecorder::new(&base, t0);
        r.record(7, t0); // not open: ignored
        r.open(7);
        r.open(9);
        r.record(7, t0 + Duration::from_micros(1500));
        r.record(9, t0 + Duration::from_millis(2));
        r.record_pause(
            t0 + Duration::from_millis(3),
            t0 + Duration::from_millis(900),
        );
        r.record(7, t0 + Duration::from_secs(1));
        r.close(9);
        r.record(9, t0 + Duration::from_secs(3)); // closed: ignored
        assert_eq!(r.finish(), Ok(2));
        let seven = std::fs::read_to_string(ArrivalRecorder::path_for(&base, 7)).unwrap();
        assert_eq!(seven, "1500\n# pause 3000 900000\n1000000\n");
        let nine = std::fs::read_to_string(ArrivalRecorder::path_for(&base, 9)).unwrap();
        assert_eq!(nine, "2000\n# pause 3000 900000\n");
        // What it wrote is what the replay reads.
        let trace = crate::phi::replay::parse_trace(&seven).unwrap();
        assert_eq!(trace.pauses, vec![(3000, 900_000)]);
    }

    #[test]
    fn an_unwritable_path_is_reported_at_the_end() {
        let base = temp_base("no-such-dir").join("trace");
        let mut r = ArrivalRecorder::new(&base, Instant::now());
        r.open(1);
        r.record(1, Instant::now());
        let e = r.finish().unwrap_err();
        assert_eq!(e.kind, std::io::ErrorKind::NotFound);
        assert!(e.to_string().contains("trace.1"), "{e}");
    }
}
