//! A governor keyed rate limiter whose memory stays bounded: stale keys are pruned as it is used.
use std::{
    hash::Hash,
    num::NonZeroU32,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::StateInformationMiddleware,
};

/// Checks between two prunings of keys whose state has fully recovered.
const PRUNE_EVERY_CHECKS: u32 = 1024;

/// What a check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Let through; `remaining` more are allowed right now.
    Allowed { remaining: u32 },
    /// Refused; one more is allowed after this long.
    Refused { retry_after: Duration },
}

/// `per_minute` events per key per minute (GCRA: a burst of `per_minute`, then refilled evenly
/// over the minute); `None` when the limit is off (0).
pub struct KeyedLimiter<K: Hash + Eq + Clone> {
    limiter: Option<DefaultKeyedRateLimiter<K, StateInformationMiddleware>>,
    quota: Option<Quota>,
    clock: DefaultClock,
    checks: AtomicU32,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// A limiter of `per_minute` events per key; 0 turns it off.
    pub fn per_minute(per_minute: u32) -> Self {
        let quota = NonZeroU32::new(per_minute).map(Quota::per_minute);
        Self {
            limiter: quota.map(|q| RateLimiter::keyed(q).with_middleware::<StateInformationMiddleware>()),
            quota,
            clock: DefaultClock::default(),
            checks: AtomicU32::new(0),
        }
    }

    /// Whether the limit is on.
    pub fn is_enabled(&self) -> bool {
        self.limiter.is_some()
    }

    /// Counts one event for `key`, unless the key is out of allowance.
    pub fn check(&self, key: &K) -> Decision {
        let Some(limiter) = &self.limiter else {
            return Decision::Allowed { remaining: u32::MAX };
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY_CHECKS == PRUNE_EVERY_CHECKS - 1 {
            self.prune();
        }
        match limiter.check_key(key) {
            Ok(snapshot) => Decision::Allowed {
                remaining: snapshot.remaining_burst_capacity(),
            },
            Err(not_until) => Decision::Refused {
                retry_after: not_until.wait_time_from(self.clock.now()),
            },
        }
    }

    /// How long until one more event is allowed for a key that has none left.
    pub fn refill_interval(&self) -> Duration {
        self.quota.map_or(Duration::ZERO, |q| q.replenish_interval())
    }

    /// Keys held now (for tests of the pruning).
    pub fn len(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.len())
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every key whose allowance is whole again (no different from an absent key).
    pub fn prune(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowance_runs_out_and_says_when_it_is_back() {
        let limiter = KeyedLimiter::per_minute(2);
        assert_eq!(limiter.check(&1), Decision::Allowed { remaining: 1 });
        assert_eq!(limiter.check(&1), Decision::Allowed { remaining: 0 });
        let Decision::Refused { retry_after } = limiter.check(&1) else {
            panic!("a third event within the minute is refused");
        };
        assert!(retry_after > Duration::from_secs(25) && retry_after <= Duration::from_secs(30));
        assert_eq!(
            limiter.check(&2),
            Decision::Allowed { remaining: 1 },
            "keys are separate"
        );
    }

    #[test]
    fn keys_whose_allowance_is_whole_again_are_pruned() {
        // 60,000 a minute: one event is forgotten after a millisecond.
        let limiter = KeyedLimiter::per_minute(60_000);
        for key in 0..(2 * PRUNE_EVERY_CHECKS) {
            limiter.check(&key);
        }
        std::thread::sleep(Duration::from_millis(20));
        limiter.prune();
        assert!(limiter.is_empty(), "{} keys left", limiter.len());
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let limiter = KeyedLimiter::per_minute(0);
        assert!(!limiter.is_enabled());
        for _ in 0..1000 {
            assert!(matches!(limiter.check(&1), Decision::Allowed { .. }));
        }
        assert!(limiter.is_empty());
    }
}
