//! The stats file sink: one record per delivered message, streamed to numbered files.
//!
//! Records are buffered in memory (a fixed-size buffer, so memory does not grow with the
//! number of messages), written out at least every `save_interval` (the caller's loop asks
//! [`StatsSink::poll_timeout`] and calls [`StatsSink::handle_timeout`]), and a new file is
//! started every `rotate_after` records: `stats-000000.csv`, `stats-000001.csv`, ...
//!
//! # Record formats
//!
//! CSV keeps the three columns of the original tool, `id,num,diff`, with this mapping:
//! - `id`: the message ID, a per-session sequence number starting at 0 (for the TCP
//!   baseline, the message's position on its connection);
//! - `num`: a server-wide running number of delivered messages, starting at 0;
//! - `diff`: one-way latency in milliseconds with microsecond precision (`0.042`).
//!
//! JSON lines carry the session too: `{"session":1,"id":0,"num":0,"latency_us":42}`.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

/// Record format of the stats files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatsFormat {
    /// `id,num,diff` lines with a header line per file.
    Csv,
    /// JSON lines: `{"session":S,"id":I,"num":N,"latency_us":L}`.
    Json,
}

/// Typical bytes of one CSV record (`123456,123456,0.042\n`), for the start-up note.
const CSV_BYTES_PER_RECORD: u64 = 23;
/// Typical bytes of one JSON line.
const JSON_BYTES_PER_RECORD: u64 = 66;

/// Size of the in-memory record buffer; a full buffer is written out at once.
const BUFFER_BYTES: usize = 256 * 1024;

/// Settings of the per-message statistics files (`StatsSink`).
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// Directory of the files; created if missing.
    pub dir: PathBuf,
    /// Record format.
    pub format: StatsFormat,
    /// Longest time a record stays in memory.
    pub save_interval: Duration,
    /// Records per file.
    pub rotate_after: u64,
}

/// Streams per-message records into rotating files. See the module docs for the formats.
#[derive(Debug)]
pub struct StatsSink {
    config: SinkConfig,
    out: BufWriter<File>,
    file_index: u32,
    in_file: u64,
    num: u64,
    next_flush: Instant,
}

impl StatsSink {
    /// Creates `config.dir` if needed and opens the first file, so that an unwritable
    /// directory is reported before any traffic. A directory that already holds files is
    /// refused: one run's records never mix with another's.
    pub fn create(config: SinkConfig, now: Instant) -> anyhow::Result<Self> {
        fs::create_dir_all(&config.dir)
            .with_context(|| format!("cannot create stats directory {}", config.dir.display()))?;
        let mut entries = fs::read_dir(&config.dir)
            .with_context(|| format!("cannot read stats directory {}", config.dir.display()))?;
        if entries.next().is_some() {
            anyhow::bail!(
                "the stats directory {} is not empty: give a new or empty directory, so that \
                 this run's records do not mix with an earlier run's",
                config.dir.display()
            );
        }
        let per_record = match config.format {
            StatsFormat::Csv => CSV_BYTES_PER_RECORD,
            StatsFormat::Json => JSON_BYTES_PER_RECORD,
        };
        log::info!(
            "stats: one record (about {per_record} bytes) per delivered message into {}: \
             about {} MB/s at 1 M msgs/s",
            config.dir.display(),
            per_record
        );
        let out = open_file(&config, 0)?;
        let next_flush = now + config.save_interval;
        Ok(Self {
            config,
            out,
            file_index: 0,
            in_file: 0,
            num: 0,
            next_flush,
        })
    }

    /// Appends the record of one delivered message.
    pub fn record(&mut self, session_id: u32, id: u64, latency_us: u64) -> anyhow::Result<()> {
        if self.in_file == self.config.rotate_after {
            self.rotate()?;
        }
        let num = self.num;
        let written = match self.config.format {
            StatsFormat::Csv => writeln!(
                self.out,
                "{id},{num},{}.{:03}",
                latency_us / 1000,
                latency_us % 1000
            ),
            StatsFormat::Json => writeln!(
                self.out,
                r#"{{"session":{session_id},"id":{id},"num":{num},"latency_us":{latency_us}}}"#
            ),
        };
        written.with_context(|| format!("cannot write to {}", self.current_path().display()))?;
        self.num += 1;
        self.in_file += 1;
        Ok(())
    }

    /// When the buffered records are due on disk.
    pub fn poll_timeout(&self) -> Instant {
        self.next_flush
    }

    /// Writes buffered records out if `save_interval` has passed since the last time.
    pub fn handle_timeout(&mut self, now: Instant) -> anyhow::Result<()> {
        if now < self.next_flush {
            return Ok(());
        }
        self.next_flush = now + self.config.save_interval;
        self.flush()
    }

    /// Writes out what is buffered and closes the current file. Returns the number of
    /// records written and of files used.
    pub fn finish(mut self) -> anyhow::Result<(u64, u32)> {
        self.flush()?;
        Ok((self.num, self.file_index + 1))
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        self.out
            .flush()
            .with_context(|| format!("cannot write to {}", self.current_path().display()))
    }

    fn rotate(&mut self) -> anyhow::Result<()> {
        self.flush()?;
        self.file_index += 1;
        self.out = open_file(&self.config, self.file_index)?;
        self.in_file = 0;
        Ok(())
    }

    fn current_path(&self) -> PathBuf {
        file_path(&self.config, self.file_index)
    }
}

/// Path of the numbered file `index` in the sink's directory.
pub(crate) fn file_path(config: &SinkConfig, index: u32) -> PathBuf {
    let ext = match config.format {
        StatsFormat::Csv => "csv",
        StatsFormat::Json => "jsonl",
    };
    config.dir.join(format!("stats-{index:06}.{ext}"))
}

fn open_file(config: &SinkConfig, index: u32) -> anyhow::Result<BufWriter<File>> {
    let path = file_path(config, index);
    let file = File::create(&path)
        .with_context(|| format!("cannot create stats file {}", path.display()))?;
    let mut out = BufWriter::with_capacity(BUFFER_BYTES, file);
    if config.format == StatsFormat::Csv {
        out.write_all(b"id,num,diff\n")
            .with_context(|| format!("cannot write to {}", path.display()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "realmq-sink-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn config(dir: &Path, format: StatsFormat, rotate_after: u64) -> SinkConfig {
        SinkConfig {
            dir: dir.to_path_buf(),
            format,
            save_interval: Duration::from_secs(1),
            rotate_after,
        }
    }

    #[test]
    fn csv_records_rotate_into_numbered_files() {
        let dir = temp_dir("csv");
        let now = Instant::now();
        let mut sink = StatsSink::create(config(&dir, StatsFormat::Csv, 2), now).unwrap();
        for (id, latency) in [(0, 42), (1, 1_500), (2, 2_000_007)] {
            sink.record(7, id, latency).unwrap();
        }
        assert_eq!(sink.finish().unwrap(), (3, 2));
        let first = fs::read_to_string(dir.join("stats-000000.csv")).unwrap();
        let second = fs::read_to_string(dir.join("stats-000001.csv")).unwrap();
        assert_eq!(first, "id,num,diff\n0,0,0.042\n1,1,1.500\n");
        assert_eq!(second, "id,num,diff\n2,2,2000.007\n");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn json_lines_carry_the_session() {
        let dir = temp_dir("json");
        let now = Instant::now();
        let mut sink = StatsSink::create(config(&dir, StatsFormat::Json, 10), now).unwrap();
        sink.record(3, 9, 120).unwrap();
        sink.finish().unwrap();
        let text = fs::read_to_string(dir.join("stats-000000.jsonl")).unwrap();
        assert_eq!(
            text,
            "{\"session\":3,\"id\":9,\"num\":0,\"latency_us\":120}\n"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn flushes_when_the_interval_has_passed() {
        let dir = temp_dir("flush");
        let now = Instant::now();
        let mut sink = StatsSink::create(config(&dir, StatsFormat::Csv, 10), now).unwrap();
        sink.record(1, 0, 5).unwrap();
        let path = dir.join("stats-000000.csv");
        // Not due yet: the record is still buffered.
        sink.handle_timeout(now).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "");
        assert_eq!(sink.poll_timeout(), now + Duration::from_secs(1));
        sink.handle_timeout(now + Duration::from_secs(1)).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "id,num,diff\n0,0,0.005\n"
        );
        assert_eq!(sink.poll_timeout(), now + Duration::from_secs(2));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_directory_with_an_earlier_run_is_refused() {
        let dir = temp_dir("nonempty");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("stats-000000.csv"), "id,num,diff\n").unwrap();
        let err = StatsSink::create(config(&dir, StatsFormat::Csv, 10), Instant::now())
            .unwrap_err()
            .to_string();
        fs::remove_dir_all(&dir).unwrap();
        assert!(err.contains("is not empty"), "{err}");
    }

    #[test]
    fn an_unusable_directory_is_reported_with_its_path() {
        let dir = temp_dir("blocked");
        fs::write(&dir, b"a file, not a directory").unwrap();
        let err =
            StatsSink::create(config(&dir, StatsFormat::Csv, 10), Instant::now()).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("cannot create stats directory"), "{text}");
        assert!(text.contains(&dir.display().to_string()), "{text}");
        fs::remove_file(&dir).unwrap();
    }
}
