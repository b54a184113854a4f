//! `bay logs [-f] [--tail N] [-t] [--since T] [--until T]`: reads the
//! json-file log the container's monitor writes (rotated files first), and
//! with `-f` follows it across rotations until the container is done.

use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use bay_runtime::logs::{LogEntry, parse_entries, rfc3339_nano, rotated};
use bay_runtime::{ContainerId, ContainerStatus, Runtime};
use chrono::{DateTime, Utc};

use super::container::{open_runtime, resolve};
use super::{CommandError, Env, out_err};

/// `logs` flags.
#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    /// `-f`.
    pub follow: bool,
    /// `--tail N` (`None`: all).
    pub tail: Option<usize>,
    /// `-t`.
    pub timestamps: bool,
    /// `--since`.
    pub since: Option<DateTime<Utc>>,
    /// `--until`.
    pub until: Option<DateTime<Utc>>,
}

/// docker's `--since`/`--until` values: RFC 3339 (with or without zone),
/// Unix seconds (`1700000000.5`), or a Go duration before now (`42m`, `1h30m`, `10s`).
pub fn parse_time(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, CommandError> {
    let bad = || CommandError::BadTime {
        value: s.to_owned(),
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.to_utc());
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Ok(t.and_utc());
        }
        if let Ok(d) = chrono::NaiveDate::parse_from_str(s, f)
            && let Some(t) = d.and_hms_opt(0, 0, 0)
        {
            return Ok(t.and_utc());
        }
    }
    if let Ok(secs) = s.parse::<f64>() {
        let whole = secs.trunc() as i64;
        let nanos = ((secs - secs.trunc()) * 1e9) as u32;
        return DateTime::from_timestamp(whole, nanos).ok_or_else(bad);
    }
    // A Go duration: a sequence of <number><unit>.
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if (c == 'm' && chars.peek() == Some(&'s'))
            || ((c == 'u' || c == 'µ' || c == 'n') && chars.peek() == Some(&'s'))
        {
            unit.push('s');
            chars.next();
        }
        let v: f64 = num.parse().map_err(|_| bad())?;
        num.clear();
        total += v * match unit.as_str() {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return Err(bad()),
        };
        any = true;
    }
    if !any || !num.is_empty() {
        return Err(bad());
    }
    Ok(now - chrono::Duration::nanoseconds((total * 1e9) as i64))
}

fn print(
    e: &LogEntry,
    timestamps: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    let w: &mut dyn Write = if e.stream == "stderr" { err } else { out };
    if timestamps {
        write!(w, "{} ", rfc3339_nano(e.time)).map_err(out_err)?;
    }
    w.write_all(e.log.as_bytes()).map_err(out_err)?;
    w.flush().map_err(out_err)
}

/// The container is done for good: not running, and no monitor that may restart it.
fn finished(rt: &Runtime, id: &ContainerId) -> bool {
    match rt.load(id) {
        Ok(c) => {
            let s = c.state();
            !matches!(s.status, ContainerStatus::Running | ContainerStatus::Paused)
                && !s.restarting
                && !s.monitor_alive()
        }
        Err(_) => true,
    }
}

/// Follows the live log from `offset` until the container is done.
pub(crate) fn follow_from(
    rt: &Runtime,
    id: &ContainerId,
    offset: u64,
    timestamps: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    follow(rt, id, offset, None, timestamps, out, err)
}

fn follow(
    rt: &Runtime,
    id: &ContainerId,
    mut offset: u64,
    until: Option<DateTime<Utc>>,
    timestamps: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    let path = rt.layout().container_log(id.as_str());
    let mut file: Option<std::fs::File> = None;
    let mut ino = 0;
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let done = finished(rt, id);
        if file.is_none() {
            if let Ok(mut f) = std::fs::File::open(&path) {
                ino = f.metadata().map_or(0, |m| m.ino());
                let _ = f.seek(std::io::SeekFrom::Start(offset));
                file = Some(f);
            } else if done {
                return Ok(());
            }
        }
        let mut got = false;
        if let Some(f) = file.as_mut() {
            // Truncated in place (max-file=1): start over.
            if f.metadata().is_ok_and(|m| m.len() < offset) {
                let _ = f.seek(std::io::SeekFrom::Start(0));
                offset = 0;
                pending.clear();
            }
            loop {
                let n = f.read(&mut buf).map_err(|source| CommandError::Io {
                    op: "read",
                    what: path.display().to_string(),
                    source,
                })?;
                if n == 0 {
                    break;
                }
                got = true;
                offset += n as u64;
                pending.extend_from_slice(&buf[..n]);
            }
            if let Some(last) = pending.iter().rposition(|b| *b == b'\n') {
                let complete: Vec<u8> = pending.drain(..=last).collect();
                for e in parse_entries(&complete[..]) {
                    if until.is_some_and(|u| e.time > u) {
                        return Ok(());
                    }
                    print(&e, timestamps, out, err)?;
                }
            }
            // Rotated: the old file is read to its end; go on with the new one.
            if !got && std::fs::metadata(&path).is_ok_and(|m| m.ino() != ino) {
                file = None;
                offset = 0;
                pending.clear();
                continue;
            }
        }
        if !got && done {
            return Ok(());
        }
        if !got {
            std::thread::sleep(Duration::from_millis(30));
        }
    }
}

/// `bay logs`.
pub fn logs(
    env: &Env,
    query: &str,
    opts: &LogsOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    let rt = open_runtime(env)?;
    let id = resolve(&rt, query)?;
    let c = rt.load(&id)?;
    let max_file = c.state().lifecycle.log.max_file;
    let path = rt.layout().container_log(id.as_str());
    let mut entries = Vec::new();
    for i in (1..max_file.max(1)).rev() {
        if let Ok(b) = std::fs::read(rotated(&path, i)) {
            entries.extend(parse_entries(&b[..]));
        }
    }
    // The live file up to a complete line; following resumes right there.
    let mut offset = 0;
    if let Ok(b) = std::fs::read(&path) {
        let end = b.iter().rposition(|c| *c == b'\n').map_or(0, |i| i + 1);
        entries.extend(parse_entries(&b[..end]));
        offset = end as u64;
    }
    entries.retain(|e| {
        opts.since.is_none_or(|s| e.time >= s) && opts.until.is_none_or(|u| e.time <= u)
    });
    let skip = opts.tail.map_or(0, |n| entries.len().saturating_sub(n));
    for e in &entries[skip..] {
        print(e, opts.timestamps, out, err)?;
    }
    if opts.follow {
        follow(&rt, &id, offset, opts.until, opts.timestamps, out, err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_dockers_forms() {
        let now = DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z")
            .unwrap()
            .to_utc();
        let t = |s| parse_time(s, now).unwrap();
        assert_eq!(t("2024-05-01T09:00:00Z"), now - chrono::Duration::hours(1));
        assert_eq!(t("2024-05-01T09:00:00"), now - chrono::Duration::hours(1));
        assert_eq!(t("42m"), now - chrono::Duration::minutes(42));
        assert_eq!(t("1h30m"), now - chrono::Duration::minutes(90));
        assert_eq!(t("500ms"), now - chrono::Duration::milliseconds(500));
        assert_eq!(t("1714557600"), now);
        for bad in ["yesterday", "5x", "m", ""] {
            assert!(parse_time(bad, now).is_err(), "{bad}");
        }
    }
}
