//! [`RetrySchedule`]: when the simulator tries a failed delivery again.

use std::time::Duration;

/// The waits between a failed attempt and the next one.
///
/// A schedule of *n* delays allows *n* retries, *n* + 1 attempts in all. The
/// delays are Box's time; how the simulator spends them (really sleeping,
/// compressed, or by advancing a shared [`FixedClock`](crate::FixedClock))
/// is the [`Sleeper`](crate::runtime::send::Sleeper)'s business, so a test of a 7-hour
/// schedule runs in milliseconds.
///
/// ```
/// use std::time::Duration;
/// use boxhook::runtime::send::RetrySchedule;
///
/// let schedule = RetrySchedule::default();
/// assert_eq!(schedule, RetrySchedule::box_like());
/// assert_eq!(schedule.retries(), 10);
/// assert_eq!(schedule.delay_before_retry(1), Some(Duration::from_secs(300)));
/// assert_eq!(schedule.delay_before_retry(2), Some(Duration::from_secs(600)));
/// assert_eq!(schedule.delay_before_retry(11), None);
///
/// assert_eq!(RetrySchedule::immediate(3).delays(), [Duration::ZERO; 3]);
/// assert_eq!(RetrySchedule::none().attempts(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self::box_like()
    }
}

impl RetrySchedule {
    /// Box's schedule as its older documentation describes it: up to 10
    /// retries, the first after 5 minutes, then exponential back-off (doubling),
    /// each wait capped at one hour — 7 h 15 min in all. Box's exact schedule is
    /// not public (see "Retries and deduplication" in docs/PROTOCOL.md); the cap is this kit's
    /// assumption.
    ///
    /// ```
    /// use std::time::Duration;
    /// use boxhook::runtime::send::RetrySchedule;
    ///
    /// let minutes: Vec<u64> = RetrySchedule::box_like().delays().iter().map(|d| d.as_secs() / 60).collect();
    /// assert_eq!(minutes, [5, 10, 20, 40, 60, 60, 60, 60, 60, 60]);
    /// assert_eq!(RetrySchedule::box_like().total(), Duration::from_secs(435 * 60));
    /// ```
    #[must_use]
    pub fn box_like() -> Self {
        Self::exponential(
            10,
            Duration::from_secs(5 * 60),
            2,
            Duration::from_secs(60 * 60),
        )
    }

    /// No retries: one attempt, whatever its answer.
    #[must_use]
    pub fn none() -> Self {
        Self { delays: Vec::new() }
    }

    /// `retries` retries without waiting.
    #[must_use]
    pub fn immediate(retries: usize) -> Self {
        Self::fixed(retries, Duration::ZERO)
    }

    /// `retries` retries, each after `delay`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use boxhook::runtime::send::RetrySchedule;
    /// assert_eq!(RetrySchedule::fixed(2, Duration::from_millis(5)).total(), Duration::from_millis(10));
    /// ```
    #[must_use]
    pub fn fixed(retries: usize, delay: Duration) -> Self {
        Self {
            delays: vec![delay; retries],
        }
    }

    /// `retries` retries: the first after `first`, each next wait `factor`
    /// times the one before, none longer than `cap`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use boxhook::runtime::send::RetrySchedule;
    ///
    /// let s = RetrySchedule::exponential(4, Duration::from_secs(1), 3, Duration::from_secs(10));
    /// assert_eq!(s.delays(), [1, 3, 9, 10].map(Duration::from_secs));
    /// ```
    #[must_use]
    pub fn exponential(retries: usize, first: Duration, factor: u32, cap: Duration) -> Self {
        let delays = std::iter::successors(Some(first.min(cap)), |d| {
            Some(d.checked_mul(factor).unwrap_or(cap).min(cap))
        })
        .take(retries)
        .collect();
        Self { delays }
    }

    /// A schedule with exactly these waits.
    ///
    /// ```
    /// use std::time::Duration;
    /// use boxhook::runtime::send::RetrySchedule;
    /// let s = RetrySchedule::from_delays([Duration::from_secs(1), Duration::from_secs(30)]);
    /// assert_eq!(s.retries(), 2);
    /// ```
    #[must_use]
    pub fn from_delays(delays: impl IntoIterator<Item = Duration>) -> Self {
        Self {
            delays: delays.into_iter().collect(),
        }
    }

    /// The same schedule with every wait divided by `factor` (0 counts as 1).
    ///
    /// ```
    /// use std::time::Duration;
    /// use boxhook::runtime::send::RetrySchedule;
    /// // Box's 7 h 15 min in 435 ms.
    /// let fast = RetrySchedule::box_like().compressed(60_000);
    /// assert_eq!(fast.total(), Duration::from_millis(435));
    /// ```
    #[must_use]
    pub fn compressed(self, factor: u32) -> Self {
        let factor = factor.max(1);
        Self {
            delays: self
                .delays
                .into_iter()
                .map(|d| d.checked_div(factor).unwrap_or(d))
                .collect(),
        }
    }

    /// How many retries are allowed.
    #[must_use]
    pub fn retries(&self) -> usize {
        self.delays.len()
    }

    /// How many attempts at most: the first plus the retries.
    #[must_use]
    pub fn attempts(&self) -> usize {
        self.delays.len().saturating_add(1)
    }

    /// The wait before retry `n` (1-based); `None` past the last retry.
    #[must_use]
    pub fn delay_before_retry(&self, n: usize) -> Option<Duration> {
        self.delays.get(n.checked_sub(1)?).copied()
    }

    /// Every wait, in order.
    #[must_use]
    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// The sum of the waits: how long Box keeps trying.
    #[must_use]
    pub fn total(&self) -> Duration {
        self.delays.iter().sum()
    }
}
