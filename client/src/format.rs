//! Human-readable sizes and durations exactly as docker prints them.
//!
//! These mirror `github.com/docker/go-units` (`HumanSizeWithPrecision(n, 3)` and
//! `HumanDuration`), which the docker CLI uses in `images` and `history`. They
//! are a few lines each, so we keep them here rather than add a dependency whose
//! rounding differs from docker's.

use chrono::{DateTime, Utc};

/// `HumanSizeWithPrecision(size, 3)`: decimal units, three significant digits.
pub fn human_size(size: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    // Precision loss is irrelevant for a three-digit display.
    #[allow(clippy::cast_precision_loss)]
    let mut v = size as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", g3(v), UNITS[i])
}

/// Go's `%.3g` for values in [0, 1000): three significant digits, no trailing zeros.
fn g3(v: f64) -> String {
    let decimals = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    };
    // Rounding can carry into a fourth digit (999.5 → "1000"); Go prints 1e+03.
    if s == "1000" { "1e+03".to_owned() } else { s }
}

/// `HumanDuration`: "About an hour", "3 days", …
pub fn human_duration(secs: i64) -> String {
    if secs < 1 {
        return "Less than a second".to_owned();
    }
    if secs == 1 {
        return "1 second".to_owned();
    }
    if secs < 60 {
        return format!("{secs} seconds");
    }
    let minutes = secs / 60;
    if minutes == 1 {
        return "About a minute".to_owned();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs + 1800) / 3600;
    if hours == 1 {
        return "About an hour".to_owned();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", hours / 24 / 365)
}

/// "2 hours ago", or "N/A" when the time is unknown.
pub fn since(t: Option<DateTime<Utc>>) -> String {
    match t {
        Some(t) => format!("{} ago", human_duration((Utc::now() - t).num_seconds())),
        None => "N/A".to_owned(),
    }
}

/// Pads every column but the last to a common width with three spaces between
/// columns, like the docker CLI's tabwriter.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i + 1 < r.len() {
                let pad = widths[i] - c.chars().count() + 3;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1240), "1.24kB");
        assert_eq!(human_size(4_261_000), "4.26MB");
        assert_eq!(human_size(923_000_000), "923MB");
        assert_eq!(human_size(5_000_000), "5MB");
        assert_eq!(human_size(72_840_000), "72.8MB");
        assert_eq!(human_size(1_500_000_000), "1.5GB");
    }

    #[test]
    fn durations_match_go_units() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(31), "31 seconds");
        assert_eq!(human_duration(61), "About a minute");
        assert_eq!(human_duration(60 * 47), "47 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(3600 * 5), "5 hours");
        assert_eq!(human_duration(3600 * 24 * 3), "3 days");
        assert_eq!(human_duration(3600 * 24 * 20), "2 weeks");
        assert_eq!(human_duration(3600 * 24 * 90), "3 months");
        assert_eq!(human_duration(3600 * 24 * 365 * 3), "3 years");
    }

    #[test]
    fn table_pads_columns() {
        let t = table(&[
            vec!["A".into(), "BB".into(), "C".into()],
            vec!["xxxx".into(), "y".into(), "z".into()],
        ]);
        assert_eq!(t, "A      BB   C\nxxxx   y    z\n");
    }
}
