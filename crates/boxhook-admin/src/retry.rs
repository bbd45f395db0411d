//! When to try a request again: on 429 and 5xx, after `Retry-After` when
//! Box sends it, otherwise after an exponential backoff.

use std::time::Duration;

/// How a [`BoxClient`](crate::BoxClient) retries 429 and 5xx answers and
/// failed connections.
///
/// The wait before retry `n` (0-based) is Box's `Retry-After` when sent,
/// otherwise `base × 2ⁿ`; either is capped at `max_delay`.
///
/// ```
/// use std::time::Duration;
/// use boxhook_admin::RetryPolicy;
///
/// let policy = RetryPolicy::default();
/// assert_eq!(policy.delay(0, None), Duration::from_secs(1));
/// assert_eq!(policy.delay(3, None), Duration::from_secs(8));
/// assert_eq!(policy.delay(0, Some(Duration::from_secs(5))), Duration::from_secs(5));
/// assert_eq!(policy.delay(9, None), Duration::from_secs(60)); // capped
///
/// // In tests: no real waiting.
/// let fast = RetryPolicy::default().base(Duration::from_millis(1)).max_delay(Duration::from_millis(5));
/// assert_eq!(fast.delay(0, Some(Duration::from_secs(30))), Duration::from_millis(5));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    retries: u32,
    base: Duration,
    max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 4 retries, 1 s base, waits capped at 60 s.
    fn default() -> Self {
        Self {
            retries: 4,
            base: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// `retries` retries, waits starting at `base` and capped at
    /// `max_delay`; usable in a `const`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use boxhook_admin::RetryPolicy;
    ///
    /// const QUICK: RetryPolicy = RetryPolicy::bounded(3, Duration::from_secs(1), Duration::from_secs(4));
    /// assert_eq!(QUICK.delay(5, None), Duration::from_secs(4));
    /// assert_eq!(QUICK.max_retries(), 3);
    /// ```
    #[must_use]
    pub const fn bounded(retries: u32, base: Duration, max_delay: Duration) -> Self {
        Self {
            retries,
            base,
            max_delay,
        }
    }

    /// No retries at all.
    #[must_use]
    pub fn none() -> Self {
        Self {
            retries: 0,
            ..Self::default()
        }
    }

    /// How many times a request is retried after its first attempt.
    #[must_use]
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// The first backoff wait, doubled on each retry.
    #[must_use]
    pub fn base(mut self, base: Duration) -> Self {
        self.base = base;
        self
    }

    /// The longest wait, `Retry-After` included.
    #[must_use]
    pub fn max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// The number of retries allowed.
    #[must_use]
    pub fn max_retries(&self) -> u32 {
        self.retries
    }

    /// The wait before retry `attempt` (0-based), given Box's `Retry-After`.
    #[must_use]
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let wait = retry_after.unwrap_or_else(|| {
            let factor = 1_u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX);
            self.base.saturating_mul(factor)
        });
        wait.min(self.max_delay)
    }
}

/// Whether an answer with `status` is worth retrying: 429 and 5xx.
pub(crate) fn retryable(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

/// `Retry-After` in seconds (the form Box sends); an HTTP date or junk
/// falls back to the backoff.
pub(crate) fn retry_after(value: Option<&http::HeaderValue>) -> Option<Duration> {
    let secs: u64 = value?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_only() {
        let v = |s: &'static str| http::HeaderValue::from_static(s);
        assert_eq!(retry_after(Some(&v("7"))), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(Some(&v(" 2 "))), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(Some(&v("Wed, 21 Oct 2015 07:28:00 GMT"))), None);
        assert_eq!(retry_after(Some(&v("-1"))), None);
        assert_eq!(retry_after(None), None);
    }

    #[test]
    fn retryable_statuses() {
        let table = [
            (200, false),
            (400, false),
            (401, false),
            (404, false),
            (409, false),
            (429, true),
            (500, true),
            (503, true),
            (599, true),
        ];
        for (status, want) in table {
            assert_eq!(retryable(status), want, "{status}");
        }
    }

    proptest::proptest! {
        #[test]
        fn delay_never_exceeds_the_cap(attempt in 0_u32..1000, after in proptest::option::of(0_u64..100_000)) {
            let policy = RetryPolicy::default();
            let d = policy.delay(attempt, after.map(Duration::from_secs));
            proptest::prop_assert!(d <= Duration::from_secs(60));
        }
    }
}
