//! A short-lived cache of each GUN's current metadata files.
//!
//! `GET {role}.json` is the hot path of every trust-enabled pull and would
//! otherwise cost two database reads and three JSON parses (the timestamp's
//! freshness check). Entries live for [`TTL`] at most, and never past the
//! file's own expiry; this process's writes for a GUN drop its entries at
//! once. Another replica's write shows up here within [`TTL`], which is far
//! inside the `max-age=300` Notary itself tells clients to cache for.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::meta::TufFile;

/// Longest time an entry is served.
pub const TTL: Duration = Duration::from_secs(1);

/// Most entries kept before the cache is cleared.
const MAX_ENTRIES: usize = 10_000;

/// The cache (one per registry).
#[derive(Default)]
pub struct Cache {
    entries: Mutex<HashMap<(String, String), (Instant, TufFile)>>,
}

impl Cache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), (Instant, TufFile)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached current file of `role`, if still fresh.
    pub fn get(&self, gun: &str, role: &str) -> Option<TufFile> {
        let map = self.lock();
        let (until, f) = map.get(&(gun.to_owned(), role.to_owned()))?;
        (Instant::now() < *until).then(|| f.clone())
    }

    /// Remember `file` as current for at most `TTL` (or `valid_for`, if shorter).
    pub fn put(&self, gun: &str, role: &str, file: TufFile, valid_for: Option<Duration>) {
        let ttl = valid_for.map_or(TTL, |v| v.min(TTL));
        if ttl.is_zero() {
            return;
        }
        let mut map = self.lock();
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(
            (gun.to_owned(), role.to_owned()),
            (Instant::now() + ttl, file),
        );
    }

    /// Forget everything about `gun` (after a write).
    pub fn invalidate(&self, gun: &str) {
        self.lock().retain(|(g, _), _| g != gun);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(v: u64) -> TufFile {
        TufFile {
            role: "timestamp".into(),
            version: v,
            sha256: String::new(),
            data: vec![],
            created_at: 0,
        }
    }

    #[test]
    fn entries_expire_and_invalidate() {
        let c = Cache::default();
        c.put("g", "timestamp", file(1), None);
        assert_eq!(c.get("g", "timestamp").map(|f| f.version), Some(1));
        assert!(c.get("g", "root").is_none());
        c.invalidate("g");
        assert!(c.get("g", "timestamp").is_none());
        c.put("g", "timestamp", file(2), Some(Duration::from_millis(1)));
        std::thread::sleep(Duration::from_millis(5));
        assert!(
            c.get("g", "timestamp").is_none(),
            "never served past the file's expiry"
        );
    }
}
