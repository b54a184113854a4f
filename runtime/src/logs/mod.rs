//! docker's `json-file` log driver: one JSON object per line,
//! `{"log":"hi\n","stream":"stdout","time":"2024-05-01T10:00:00.123456789Z"}`,
//! with `--log-opt max-size=…,max-file=…` rotation (`<log>.1` is the newest
//! rotated file, `<log>.<max-file - 1>` the oldest), and the reader behind
//! `bay logs`.
//!
//! Lines are split as docker's copier does: each message is one line with
//! its `\n`; a line longer than 16 KiB is cut into 16 KiB messages without
//! one, and a trailing partial line is written when its stream closes.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

/// docker's copier buffer: longer lines are split into messages of this size.
pub const MAX_MESSAGE: usize = 16 * 1024;

/// Errors of the log driver.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// A `--log-opt` that is unknown or malformed.
    #[error("invalid --log-opt {opt:?}: {why}")]
    BadOption {
        /// The option as given.
        opt: String,
        /// What is wrong.
        why: &'static str,
    },
    /// Reading or writing a log file failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What we tried.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LogError {
    let path = path.to_path_buf();
    move |source| LogError::Io { op, path, source }
}

/// Rotation settings (`--log-opt max-size=10m --log-opt max-file=3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogConfig {
    /// Rotate once the file reaches this many bytes (`None`: never).
    pub max_size: Option<u64>,
    /// Files kept, the live one included (docker's default 1: the log is
    /// truncated on rotation).
    pub max_file: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            max_size: None,
            max_file: 1,
        }
    }
}

/// docker's `units.RAMInBytes`: `10m`, `1.5k`, `512`, `2GiB`, case-insensitive.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s
        .strip_suffix("ib")
        .or_else(|| s.strip_suffix('b'))
        .unwrap_or(&s);
    let (num, mult) = match s.char_indices().last()? {
        (i, 'k') => (&s[..i], 1u64 << 10),
        (i, 'm') => (&s[..i], 1 << 20),
        (i, 'g') => (&s[..i], 1 << 30),
        (i, 't') => (&s[..i], 1 << 40),
        _ => (s, 1),
    };
    let v: f64 = num.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some((v * mult as f64) as u64)
}

impl LogConfig {
    /// Parses `--log-opt KEY=VALUE` options of the json-file driver.
    pub fn parse(opts: &[String]) -> Result<Self, LogError> {
        let mut c = Self::default();
        for opt in opts {
            let bad = |why| LogError::BadOption {
                opt: opt.clone(),
                why,
            };
            let (k, v) = opt
                .split_once('=')
                .ok_or_else(|| bad("expected KEY=VALUE"))?;
            match k {
                "max-size" => {
                    let n = parse_size(v).ok_or_else(|| bad("expected a size like 10m"))?;
                    c.max_size = (n > 0).then_some(n);
                }
                "max-file" => {
                    let n: u32 = v.parse().map_err(|_| bad("expected a number"))?;
                    if n < 1 {
                        return Err(bad("max-file cannot be less than 1"));
                    }
                    c.max_file = n;
                }
                // Accepted as docker does; they change nothing here.
                "compress" | "labels" | "env" | "env-regex" | "tag" | "mode" => {}
                _ => return Err(bad("supported: max-size, max-file")),
            }
        }
        if c.max_file > 1 && c.max_size.is_none() {
            return Err(LogError::BadOption {
                opt: format!("max-file={}", c.max_file),
                why: "max-file requires max-size to be set",
            });
        }
        Ok(c)
    }
}

/// Which stream a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// fd 1 (and everything under `-t`).
    Stdout,
    /// fd 2.
    Stderr,
}

impl Stream {
    /// docker's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// Go's `time.RFC3339Nano` in UTC: trailing zeros of the fraction dropped.
pub fn rfc3339_nano(t: DateTime<Utc>) -> String {
    // `to_rfc3339_opts` writes directly; `format` would run the strftime
    // parser on every log line.
    let mut s = t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    s.pop(); // the `Z`
    while s.ends_with('0') {
        s.pop();
    }
    if s.ends_with('.') {
        s.pop();
    }
    s.push('Z');
    s
}

#[derive(serde::Serialize)]
struct Record<'a> {
    log: &'a str,
    stream: &'a str,
    time: &'a str,
}

/// Appends messages to a json-file log, rotating it by size.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: std::fs::File,
    size: u64,
    config: LogConfig,
    buf: Vec<u8>,
}

impl LogWriter {
    /// Opens (appending to) the log at `path`.
    pub fn open(path: &Path, config: LogConfig) -> Result<Self, LogError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io("open", path))?;
        let size = file.metadata().map_err(io("stat", path))?.len();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            size,
            config,
            buf: Vec::with_capacity(256),
        })
    }

    /// Writes one message.
    pub fn write(
        &mut self,
        stream: Stream,
        msg: &[u8],
        time: DateTime<Utc>,
    ) -> Result<(), LogError> {
        let log = String::from_utf8_lossy(msg);
        let time = rfc3339_nano(time);
        self.buf.clear();
        let rec = Record {
            log: &log,
            stream: stream.as_str(),
            time: &time,
        };
        serde_json::to_writer(&mut self.buf, &rec)
            .map_err(|e| io("encode", &self.path)(e.into()))?;
        self.buf.push(b'\n');
        self.file
            .write_all(&self.buf)
            .map_err(io("write", &self.path))?;
        self.size += self.buf.len() as u64;
        if self.buf.capacity() > 4 * MAX_MESSAGE {
            self.buf = Vec::with_capacity(256);
        }
        if self.config.max_size.is_some_and(|m| self.size >= m) {
            self.rotate()?;
        }
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), LogError> {
        let n = self.config.max_file;
        if n > 1 {
            for i in (1..n - 1).rev() {
                let from = rotated(&self.path, i);
                if from.exists() {
                    std::fs::rename(&from, rotated(&self.path, i + 1))
                        .map_err(io("rotate", &from))?;
                }
            }
            std::fs::rename(&self.path, rotated(&self.path, 1))
                .map_err(io("rotate", &self.path))?;
            self.file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(io("open", &self.path))?;
        } else {
            self.file.set_len(0).map_err(io("truncate", &self.path))?;
        }
        self.size = 0;
        Ok(())
    }
}

/// `<log>.<i>`.
pub fn rotated(path: &Path, i: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

/// Cuts a byte stream into docker's messages.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Feeds bytes; calls `emit` for each complete message.
    pub fn feed(&mut self, mut data: &[u8], mut emit: impl FnMut(&[u8])) {
        while !data.is_empty() {
            match data.iter().position(|b| *b == b'\n') {
                Some(i) if self.pending.len() + i < MAX_MESSAGE => {
                    if self.pending.is_empty() {
                        emit(&data[..=i]);
                    } else {
                        self.pending.extend_from_slice(&data[..=i]);
                        emit(&self.pending);
                        self.pending.clear();
                    }
                    data = &data[i + 1..];
                }
                _ => {
                    let room = MAX_MESSAGE - self.pending.len();
                    let take = room.min(data.len());
                    self.pending.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if self.pending.len() >= MAX_MESSAGE {
                        emit(&self.pending);
                        self.pending.clear();
                    }
                }
            }
        }
        if self.pending.capacity() > MAX_MESSAGE && self.pending.is_empty() {
            self.pending = Vec::new();
        }
    }

    /// The stream closed: emits the partial line, if any.
    pub fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.pending.is_empty() {
            emit(&self.pending);
            self.pending = Vec::new();
        }
    }
}

/// One message read back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct LogEntry {
    /// The text, with its `\n` if it had one.
    pub log: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// When the monitor read it.
    pub time: DateTime<Utc>,
}

/// Parses the lines of one log file (malformed lines, e.g. one cut by a
/// crash, are skipped).
pub fn parse_entries(r: impl BufRead) -> Vec<LogEntry> {
    r.lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect()
}

/// Every message of the log at `path`, its rotated files first (oldest first).
pub fn read_all(path: &Path, max_file: u32) -> Result<Vec<LogEntry>, LogError> {
    let mut out = Vec::new();
    for i in (1..max_file.max(1)).rev() {
        let p = rotated(path, i);
        match std::fs::File::open(&p) {
            Ok(f) => out.extend(parse_entries(std::io::BufReader::new(f))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("open", &p)(e)),
        }
    }
    match std::fs::File::open(path) {
        Ok(f) => out.extend(parse_entries(std::io::BufReader::new(f))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("open", path)(e)),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_like_docker() {
        let c = LogConfig::parse(&["max-size=1k".into(), "max-file=3".into()]).unwrap();
        assert_eq!(c.max_size, Some(1024));
        assert_eq!(c.max_file, 3);
        assert_eq!(
            LogConfig::parse(&["max-size=10m".into()]).unwrap().max_size,
            Some(10 << 20)
        );
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("512"), Some(512));
        assert!(LogConfig::parse(&["max-file=2".into()]).is_err());
        assert!(LogConfig::parse(&["max-file=0".into(), "max-size=1k".into()]).is_err());
        assert!(LogConfig::parse(&["max-size=ten".into()]).is_err());
        assert!(LogConfig::parse(&["syslog-address=x".into()]).is_err());
    }

    #[test]
    fn times_are_go_rfc3339nano() {
        let t = DateTime::parse_from_rfc3339("2024-05-01T10:00:00.120000000Z")
            .unwrap()
            .to_utc();
        assert_eq!(rfc3339_nano(t), "2024-05-01T10:00:00.12Z");
        let t = DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(rfc3339_nano(t), "2024-05-01T10:00:00Z");
    }

    #[test]
    fn lines_are_split_like_dockers_copier() {
        let mut s = LineSplitter::default();
        let mut got: Vec<Vec<u8>> = Vec::new();
        s.feed(b"a\nb", |m| got.push(m.to_vec()));
        s.feed(b"c\nd", |m| got.push(m.to_vec()));
        s.finish(|m| got.push(m.to_vec()));
        assert_eq!(got, [b"a\n".to_vec(), b"bc\n".to_vec(), b"d".to_vec()]);
        let mut got = Vec::new();
        let long = vec![b'x'; MAX_MESSAGE + 10];
        s.feed(&long, |m| got.push(m.len()));
        s.feed(b"\n", |m| got.push(m.len()));
        assert_eq!(got, [MAX_MESSAGE, 11]);
    }

    #[test]
    fn writer_rotates_and_reader_reads_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let cfg = LogConfig {
            max_size: Some(200),
            max_file: 3,
        };
        let mut w = LogWriter::open(&path, cfg).unwrap();
        let now = Utc::now();
        for i in 0..20 {
            let stream = if i % 2 == 0 {
                Stream::Stdout
            } else {
                Stream::Stderr
            };
            w.write(stream, format!("line \"{i}\"\n").as_bytes(), now)
                .unwrap();
        }
        assert!(rotated(&path, 1).exists() && rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists());
        for p in [path.clone(), rotated(&path, 1), rotated(&path, 2)] {
            assert!(std::fs::metadata(&p).unwrap().len() < 300, "{p:?}");
        }
        let all = read_all(&path, 3).unwrap();
        assert!(
            !all.is_empty() && all.len() < 20,
            "older files were dropped"
        );
        let nums: Vec<u32> = all
            .iter()
            .map(|e| {
                e.log
                    .trim_end()
                    .trim_start_matches("line \"")
                    .trim_end_matches('"')
                    .parse()
                    .unwrap()
            })
            .collect();
        assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
        assert_eq!(*nums.last().unwrap(), 19);
        assert_eq!(
            all[0].stream,
            if nums[0].is_multiple_of(2) {
                "stdout"
            } else {
                "stderr"
            }
        );
        // The raw format is docker's.
        let first = std::fs::read_to_string(&path).unwrap();
        let line = first.lines().next().unwrap();
        assert!(line.starts_with("{\"log\":\"line \\\""), "{line}");
        assert!(
            line.contains("\",\"stream\":\"std") && line.contains("\"time\":\""),
            "{line}"
        );

        // max-file=1 truncates instead.
        let p1 = dir.path().join("one.log");
        let mut w = LogWriter::open(
            &p1,
            LogConfig {
                max_size: Some(100),
                max_file: 1,
            },
        )
        .unwrap();
        for _ in 0..10 {
            w.write(Stream::Stdout, b"0123456789012345678901234567890\n", now)
                .unwrap();
        }
        assert!(std::fs::metadata(&p1).unwrap().len() < 100);
        assert!(!rotated(&p1, 1).exists());
    }
}
