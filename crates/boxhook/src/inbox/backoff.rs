//! [`Backoff`]: how long a failed event waits before its next attempt.

use std::time::Duration;

/// The wait before the next attempt of a failed event: `first` after the
/// first failed attempt, doubled after each further one, never more than
/// `max`.
///
/// ```
/// use std::time::Duration;
/// use boxhook::inbox::Backoff;
///
/// let backoff = Backoff::exponential(Duration::from_secs(10), Duration::from_secs(60));
/// let delays: Vec<u64> = (1..=5).map(|attempt| backoff.delay(attempt).as_secs()).collect();
/// assert_eq!(delays, [10, 20, 40, 60, 60]);
/// assert_eq!(Backoff::constant(Duration::from_secs(5)).delay(9), Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    doubling: bool,
}

impl Backoff {
    /// `first`, doubling per failed attempt, capped at `max` (a `max` below
    /// `first` caps every delay at `max`).
    #[must_use]
    pub const fn exponential(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            doubling: true,
        }
    }

    /// The same `delay` after every failed attempt.
    #[must_use]
    pub const fn constant(delay: Duration) -> Self {
        Self {
            first: delay,
            max: delay,
            doubling: false,
        }
    }

    /// The wait after failed attempt number `attempt` (from 1; 0 counts as
    /// 1). Saturates instead of overflowing.
    #[must_use]
    pub fn delay(&self, attempt: u32) -> Duration {
        if !self.doubling {
            return self.first;
        }
        let doublings = attempt.saturating_sub(1).min(63);
        let factor = 1_u32.checked_shl(doublings).unwrap_or(u32::MAX);
        self.first.saturating_mul(factor).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_and_cap_without_overflow() {
        let secs = Duration::from_secs;
        let cases = [
            (Backoff::exponential(secs(1), secs(3600)), 0, secs(1)),
            (Backoff::exponential(secs(1), secs(3600)), 1, secs(1)),
            (Backoff::exponential(secs(1), secs(3600)), 2, secs(2)),
            (Backoff::exponential(secs(1), secs(3600)), 12, secs(2048)),
            (Backoff::exponential(secs(1), secs(3600)), 13, secs(3600)),
            (
                Backoff::exponential(secs(1), secs(3600)),
                u32::MAX,
                secs(3600),
            ),
            (
                Backoff::exponential(Duration::MAX, Duration::MAX),
                40,
                Duration::MAX,
            ),
            (Backoff::exponential(secs(10), secs(5)), 1, secs(5)),
            (Backoff::constant(secs(30)), u32::MAX, secs(30)),
        ];
        for (backoff, attempt, want) in cases {
            assert_eq!(
                backoff.delay(attempt),
                want,
                "{backoff:?} attempt {attempt}"
            );
        }
    }
}
