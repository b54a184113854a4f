//! Failed-login limits per client address and per user.
//!
//! Each key counts failures in a fixed window; over the limit, further
//! attempts are refused with 429 before any password is checked. The
//! per-user limit is much higher than the per-address one, so an attacker
//! hammering one account from one address locks out only that address,
//! while the owner can still log in from elsewhere.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Failures allowed per client address in a window.
    pub per_addr: u32,
    /// Failures allowed per user name in a window.
    pub per_user: u32,
    /// Window length.
    pub window: Duration,
}

#[derive(Debug, Hash, PartialEq, Eq, Clone)]
enum Key {
    Addr(IpAddr),
    User(String),
}

/// Failure counters.
pub struct Limiter {
    limits: Limits,
    counts: Mutex<HashMap<Key, (u32, Instant)>>,
}

impl Limiter {
    /// New limiter.
    pub fn new(limits: Limits) -> Self {
        Limiter {
            limits,
            counts: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, (u32, Instant)>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn over(
        &self,
        map: &HashMap<Key, (u32, Instant)>,
        key: &Key,
        limit: u32,
        now: Instant,
    ) -> Option<Duration> {
        let (n, start) = map.get(key)?;
        let end = *start + self.limits.window;
        (now < end && *n >= limit).then(|| end - now)
    }

    /// If this attempt must be refused, how long until it may be retried.
    pub fn check(&self, addr: IpAddr, user: Option<&str>) -> Option<Duration> {
        let now = Instant::now();
        let map = self.lock();
        self.over(&map, &Key::Addr(addr), self.limits.per_addr, now)
            .or_else(|| {
                user.and_then(|u| {
                    self.over(&map, &Key::User(u.to_owned()), self.limits.per_user, now)
                })
            })
    }

    /// Record a failed attempt.
    pub fn failed(&self, addr: IpAddr, user: Option<&str>) {
        let now = Instant::now();
        let window = self.limits.window;
        let mut map = self.lock();
        if map.len() > 100_000 {
            map.retain(|_, (_, start)| *start + window > now);
        }
        let mut bump = |k: Key| {
            let e = map.entry(k).or_insert((0, now));
            if e.1 + window <= now {
                *e = (0, now);
            }
            e.0 += 1;
        };
        bump(Key::Addr(addr));
        if let Some(u) = user {
            bump(Key::User(u.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_limit_does_not_lock_the_user_out_elsewhere() {
        let l = Limiter::new(Limits {
            per_addr: 3,
            per_user: 10,
            window: Duration::from_secs(60),
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check(a, Some("alice")).is_none());
            l.failed(a, Some("alice"));
        }
        assert!(l.check(a, Some("alice")).is_some());
        assert!(
            l.check(a, Some("bob")).is_some(),
            "the address is limited for every user"
        );
        assert!(
            l.check(b, Some("alice")).is_none(),
            "another address still works"
        );
        for _ in 0..7 {
            l.failed(b, Some("alice"));
        }
        assert!(
            l.check("10.0.0.3".parse().unwrap(), Some("alice"))
                .is_some(),
            "per-user limit"
        );
    }
}
