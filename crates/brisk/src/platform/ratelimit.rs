//! In-process keyed rate limits (per tenant, per login e-mail, per client
//! IP), as token buckets that refill evenly over a minute.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// A per-key limit of N per minute; `0` disables it.
#[derive(Clone)]
pub struct KeyedLimit {
    limiter: Option<Arc<DefaultKeyedRateLimiter<String>>>,
}

impl KeyedLimit {
    pub fn per_minute(n: u32) -> Self {
        KeyedLimit {
            limiter: NonZeroU32::new(n).map(|n| Arc::new(RateLimiter::keyed(Quota::per_minute(n)))),
        }
    }

    /// Takes one unit for `key`; when none is left, the seconds until one is.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter.check_key(&key.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    /// Forgets keys whose buckets are full again, so memory stays bounded
    /// however many distinct keys pass by.
    pub fn forget_idle_keys(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// The limits one node enforces.
#[derive(Clone)]
pub struct Limits {
    pub tenant_requests: KeyedLimit,
    pub login_by_email: KeyedLimit,
    pub login_by_ip: KeyedLimit,
}

impl Limits {
    pub fn new(requests_per_minute: u32, logins_per_minute: u32) -> Self {
        Limits {
            tenant_requests: KeyedLimit::per_minute(requests_per_minute),
            login_by_email: KeyedLimit::per_minute(logins_per_minute),
            login_by_ip: KeyedLimit::per_minute(logins_per_minute),
        }
    }

    /// Forgets full buckets, so the key maps stay small; run every minute.
    pub fn housekeeping(&self) {
        self.tenant_requests.forget_idle_keys();
        self.login_by_email.forget_idle_keys();
        self.login_by_ip.forget_idle_keys();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_n_then_refuses_with_a_wait() {
        let limit = KeyedLimit::per_minute(3);
        for _ in 0..3 {
            assert!(limit.check("a").is_ok());
        }
        let wait = limit.check("a").unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        assert!(limit.check("b").is_ok(), "keys are independent");
        assert!(KeyedLimit::per_minute(0).check("a").is_ok());
    }
}
