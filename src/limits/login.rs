//! Failed logins per username and per client address: past either limit every attempt is
//! refused, even with the right password, before any password hashing is spent on it.
//!
//! Failures are counted by governor (a burst of N, refilled at N per minute); once a key has
//! no failure left it is locked until the next one is refilled, and a locked key is refused up
//! front. So a guesser gets N tries a minute, and a flood costs the server no Argon2 time.
use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use super::keyed::{Decision, KeyedLimiter};
use crate::domain::Username;

/// Locks held before expired ones are swept out.
const LOCKS_SWEEP_AT: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum LockKey {
    Name(String),
    Address(IpAddr),
}

/// The two failed-login limits.
pub struct LoginLimiter {
    per_name: KeyedLimiter<String>,
    per_address: KeyedLimiter<IpAddr>,
    /// Until when a key that used up its failures is refused.
    locked_until: Mutex<HashMap<LockKey, Instant>>,
}

/// The key a login name counts under: names compare regardless of case, like accounts. A name
/// no account can have (see [`Username`]) counts only against the address, so arbitrary
/// strings cannot fill the limiter's memory.
pub fn name_key(raw: &str) -> Option<String> {
    Username::parse(raw).ok().map(|name| name.as_str().to_ascii_lowercase())
}

impl LoginLimiter {
    /// `per_name` and `per_address` failures per minute; 0 turns either off.
    pub fn new(per_name: u32, per_address: u32) -> Self {
        Self {
            per_name: KeyedLimiter::per_minute(per_name),
            per_address: KeyedLimiter::per_minute(per_address),
            locked_until: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after)` when the name or the address is locked: refuse without checking.
    pub fn admit(&self, name: Option<&str>, address: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let locks = self.locked_until.lock().unwrap_or_else(|e| e.into_inner());
        let wait = self
            .keys(name, address)
            .filter_map(|key| locks.get(&key))
            .filter(|until| **until > now)
            .map(|until| *until - now)
            .max();
        match wait {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Counts a failed login; `Err(retry_after)` when this failure itself went past a limit
    /// (two attempts raced past [`Self::admit`]).
    pub fn failed(&self, name: Option<&str>, address: IpAddr) -> Result<(), Duration> {
        let mut over = None;
        let lock = |key: LockKey, wait: Duration| {
            let mut locks = self.locked_until.lock().unwrap_or_else(|e| e.into_inner());
            if locks.len() >= LOCKS_SWEEP_AT {
                let now = Instant::now();
                locks.retain(|_, until| *until > now);
            }
            let until = Instant::now() + wait;
            let entry = locks.entry(key).or_insert(until);
            *entry = (*entry).max(until);
        };
        if let Some(name) = name {
            match self.per_name.check(&name.to_string()) {
                Decision::Allowed { remaining: 0 } => lock(LockKey::Name(name.into()), self.per_name.refill_interval()),
                Decision::Allowed { .. } => {}
                Decision::Refused { retry_after } => {
                    lock(LockKey::Name(name.into()), retry_after);
                    over = over.max(Some(retry_after));
                }
            }
        }
        match self.per_address.check(&address) {
            Decision::Allowed { remaining: 0 } => lock(LockKey::Address(address), self.per_address.refill_interval()),
            Decision::Allowed { .. } => {}
            Decision::Refused { retry_after } => {
                lock(LockKey::Address(address), retry_after);
                over = over.max(Some(retry_after));
            }
        }
        match over {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    fn keys(&self, name: Option<&str>, address: IpAddr) -> impl Iterator<Item = LockKey> {
        let name = name
            .filter(|_| self.per_name.is_enabled())
            .map(|n| LockKey::Name(n.to_string()));
        let address = self.per_address.is_enabled().then_some(LockKey::Address(address));
        name.into_iter().chain(address)
    }

    /// Keys the limiters and locks hold now.
    pub fn held_keys(&self) -> usize {
        self.per_name.len() + self.per_address.len() + self.locked_until.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const AWAY: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn the_name_locks_after_its_failures_and_only_that_name() {
        let limiter = LoginLimiter::new(3, 0);
        for _ in 0..3 {
            assert_eq!(limiter.admit(Some("alice"), HOME), Ok(()));
            assert_eq!(limiter.failed(Some("alice"), HOME), Ok(()));
        }
        let wait = limiter.admit(Some("alice"), AWAY).expect_err("locked from any address");
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(20), "{wait:?}");
        assert_eq!(limiter.admit(Some("bob"), HOME), Ok(()));
    }

    #[test]
    fn the_address_locks_across_names() {
        let limiter = LoginLimiter::new(0, 2);
        limiter.failed(Some("a1x"), HOME).expect("first");
        limiter.failed(None, HOME).expect("second");
        assert!(limiter.admit(Some("zed"), HOME).is_err());
        assert_eq!(limiter.admit(Some("zed"), AWAY), Ok(()));
    }

    #[test]
    fn off_limits_never_lock() {
        let limiter = LoginLimiter::new(0, 0);
        for _ in 0..100 {
            assert_eq!(limiter.failed(Some("alice"), HOME), Ok(()));
        }
        assert_eq!(limiter.admit(Some("alice"), HOME), Ok(()));
        assert_eq!(limiter.held_keys(), 0);
    }

    #[test]
    fn names_count_regardless_of_case_and_junk_names_not_at_all() {
        assert_eq!(name_key("Alice"), Some("alice".into()));
        assert_eq!(name_key(&"x".repeat(10_000)), None);
        assert_eq!(name_key("a b"), None);
    }
}
