//! Time: the injectable [`Clock`], the [`Freshness`] policy, and
//! [`DeliveryTimestamp`], the `BOX-DELIVERY-TIMESTAMP` value (see "Freshness" in docs/PROTOCOL.md).

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, SecondsFormat, TimeDelta, Utc};

use crate::error::VerifyError;

/// A source of "now". Everything time-dependent in boxhook takes one, so tests
/// never sleep.
///
/// ```
/// use boxhook_core::{Clock, SystemClock};
///
/// fn stamp(clock: &dyn Clock) -> i64 { clock.now().timestamp() }
/// assert!(stamp(&SystemClock) > 1_600_000_000);
/// ```
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
///
/// ```
/// use boxhook_core::{Clock, SystemClock};
/// let _now = SystemClock.now();
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that says what it is told. Clones share the same time, so a test can
/// move the clock a server holds.
///
/// ```
/// use std::time::Duration;
/// use boxhook_core::{Clock, FixedClock};
///
/// let clock = FixedClock::at("2020-01-01T07:00:00Z".parse().unwrap());
/// let held_by_server = clock.clone();
/// clock.advance(Duration::from_secs(601));
/// assert_eq!(held_by_server.now().to_rfc3339(), "2020-01-01T07:10:01+00:00");
/// ```
#[derive(Debug, Clone)]
pub struct FixedClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl FixedClock {
    /// A clock stopped at `now`.
    #[must_use]
    pub fn at(now: DateTime<Utc>) -> Self {
        Self {
            now: Arc::new(Mutex::new(now)),
        }
    }

    /// Sets the time.
    pub fn set(&self, now: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = now;
    }

    /// Moves the time forward by `by` (saturating at chrono's maximum date).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        let delta = TimeDelta::from_std(by).unwrap_or(TimeDelta::MAX);
        *now = now
            .checked_add_signed(delta)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How old, and how far in the future, a delivery timestamp may be.
///
/// Box asks receivers to reject deliveries older than 10 minutes and says
/// nothing about the future. boxhook defaults to a maximum age of
/// 600 s and allows 60 s of future skew, so a receiver whose clock lags Box's a
/// little keeps working (the generated SDKs allow none). Both bounds are
/// inclusive.
///
/// ```
/// use std::time::Duration;
/// use boxhook_core::Freshness;
///
/// let default = Freshness::default();
/// assert_eq!(default.max_age(), Duration::from_secs(600));
/// assert_eq!(default.max_future_skew(), Duration::from_secs(60));
///
/// let strict = Freshness::new(Duration::from_secs(300), Duration::ZERO);
/// assert_eq!(strict.max_age(), Duration::from_secs(300));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    max_age: Duration,
    max_future_skew: Duration,
}

impl Default for Freshness {
    fn default() -> Self {
        Self::new(Duration::from_secs(600), Duration::from_secs(60))
    }
}

impl Freshness {
    /// A policy with the given bounds.
    #[must_use]
    pub const fn new(max_age: Duration, max_future_skew: Duration) -> Self {
        Self {
            max_age,
            max_future_skew,
        }
    }

    /// The maximum age.
    #[must_use]
    pub const fn max_age(&self) -> Duration {
        self.max_age
    }

    /// The maximum future skew.
    #[must_use]
    pub const fn max_future_skew(&self) -> Duration {
        self.max_future_skew
    }

    /// Checks a timestamp against `now`, returning its age (negative when it is
    /// ahead of `now`).
    ///
    /// ```
    /// use boxhook_core::{ErrorKind, Freshness};
    ///
    /// let now = "2020-01-01T07:10:01Z".parse().unwrap();
    /// let sent = chrono::DateTime::parse_from_rfc3339("2020-01-01T00:00:00-07:00").unwrap();
    /// let err = Freshness::default().check(sent, now).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Expired);
    /// assert_eq!(err.to_string(), "timestamp is 601 s old, limit 600 s");
    /// ```
    pub fn check(
        &self,
        sent: DateTime<FixedOffset>,
        now: DateTime<Utc>,
    ) -> Result<TimeDelta, VerifyError> {
        let age = now.signed_duration_since(sent);
        if age >= TimeDelta::zero() {
            let age_std = age.to_std().unwrap_or(Duration::MAX);
            if age_std > self.max_age {
                return Err(VerifyError::Expired {
                    age: age_std,
                    limit: self.max_age,
                });
            }
        } else {
            // Checked, though chrono's TimeDelta range is symmetric: a
            // setting or a timestamp can never make this panic.
            let skew = TimeDelta::zero()
                .checked_sub(&age)
                .and_then(|skew| skew.to_std().ok())
                .unwrap_or(Duration::MAX);
            if skew > self.max_future_skew {
                return Err(VerifyError::Future {
                    skew,
                    limit: self.max_future_skew,
                });
            }
        }
        Ok(age)
    }
}

/// A `BOX-DELIVERY-TIMESTAMP` value: the exact text (which is signed) and the
/// instant it names.
///
/// ```
/// use boxhook_core::DeliveryTimestamp;
///
/// // Parsing keeps the text exactly; RFC 3339 with `Z`, offsets and fractions is accepted.
/// let ts = DeliveryTimestamp::parse("2020-01-01T07:00:00.250Z")?;
/// assert_eq!(ts.as_str(), "2020-01-01T07:00:00.250Z");
///
/// // Formatting writes Box's form: whole seconds and a numeric offset.
/// let sent = chrono::DateTime::parse_from_rfc3339("2016-07-11T10:10:33-07:00").unwrap();
/// assert_eq!(DeliveryTimestamp::from_datetime(sent).as_str(), "2016-07-11T10:10:33-07:00");
/// # Ok::<(), boxhook_core::VerifyError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryTimestamp {
    text: String,
    at: DateTime<FixedOffset>,
}

impl DeliveryTimestamp {
    /// Parses RFC 3339 text, keeping it as given.
    pub fn parse(text: &str) -> Result<Self, VerifyError> {
        Ok(Self {
            text: text.to_owned(),
            at: parse_rfc3339(text)?,
        })
    }

    /// Box's form of `at`: seconds precision and a numeric offset (`+00:00`
    /// for UTC), e.g. `2016-07-11T10:10:33-07:00`.
    #[must_use]
    pub fn from_datetime(at: DateTime<FixedOffset>) -> Self {
        let text = at.to_rfc3339_opts(SecondsFormat::Secs, false);
        Self {
            at: parse_rfc3339(&text).unwrap_or(at),
            text,
        }
    }

    /// Box's form of a UTC instant.
    ///
    /// ```
    /// use boxhook_core::DeliveryTimestamp;
    /// let ts = DeliveryTimestamp::from_utc("2020-01-01T07:00:00.9Z".parse().unwrap());
    /// assert_eq!(ts.as_str(), "2020-01-01T07:00:00+00:00");
    /// ```
    #[must_use]
    pub fn from_utc(at: DateTime<Utc>) -> Self {
        Self::from_datetime(at.fixed_offset())
    }

    /// The text, exactly as it is (or will be) sent.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The instant it names.
    #[must_use]
    pub fn datetime(&self) -> DateTime<FixedOffset> {
        self.at
    }
}

impl fmt::Display for DeliveryTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

pub(crate) fn parse_rfc3339(text: &str) -> Result<DateTime<FixedOffset>, VerifyError> {
    DateTime::parse_from_rfc3339(text).map_err(|_| VerifyError::MalformedTimestamp {
        found: text.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn now() -> DateTime<Utc> {
        "2020-01-01T07:00:00Z".parse().expect("valid")
    }

    #[test]
    fn freshness_table() {
        let policy = Freshness::default();
        let cases: &[(&str, Option<ErrorKind>)] = &[
            ("2020-01-01T00:00:00-07:00", None),
            ("2020-01-01T06:50:00Z", None),
            ("2020-01-01T06:49:59Z", Some(ErrorKind::Expired)),
            ("2020-01-01T07:01:00Z", None),
            ("2020-01-01T07:01:01Z", Some(ErrorKind::Future)),
            ("2020-01-01T07:01:00.001Z", Some(ErrorKind::Future)),
            ("2020-01-01T12:30:00+05:30", None),
            ("1970-01-01T00:00:00Z", Some(ErrorKind::Expired)),
            ("9999-12-31T23:59:59Z", Some(ErrorKind::Future)),
        ];
        for (text, want) in cases {
            let at = parse_rfc3339(text).expect("valid");
            assert_eq!(
                policy.check(at, now()).err().map(|e| e.kind()),
                *want,
                "{text}"
            );
        }
    }

    #[test]
    fn extreme_settings_and_instants_never_panic() {
        let far_past = DateTime::<Utc>::MIN_UTC.fixed_offset();
        let far_future = DateTime::<Utc>::MAX_UTC.fixed_offset();
        let lenient = Freshness::new(Duration::MAX, Duration::MAX);
        assert!(lenient.check(far_past, DateTime::<Utc>::MAX_UTC).is_ok());
        assert!(lenient.check(far_future, DateTime::<Utc>::MIN_UTC).is_ok());
        let strict = Freshness::new(Duration::ZERO, Duration::ZERO);
        let err = strict
            .check(far_future, DateTime::<Utc>::MIN_UTC)
            .expect_err("ahead");
        assert_eq!(err.kind(), ErrorKind::Future);
        let err = strict
            .check(far_past, DateTime::<Utc>::MAX_UTC)
            .expect_err("old");
        assert_eq!(err.kind(), ErrorKind::Expired);

        let clock = FixedClock::at(now());
        clock.advance(Duration::MAX);
        assert_eq!(clock.now(), DateTime::<Utc>::MAX_UTC);
        clock.advance(Duration::from_secs(1));
        assert_eq!(clock.now(), DateTime::<Utc>::MAX_UTC);
    }

    #[test]
    fn malformed_timestamps() {
        for text in [
            "",
            "yesterday",
            "2020-01-01",
            "2020-01-01T00:00:00",
            "2020-13-01T00:00:00Z",
            "NaN",
        ] {
            assert_eq!(
                parse_rfc3339(text).expect_err(text),
                VerifyError::MalformedTimestamp {
                    found: text.to_owned()
                }
            );
        }
    }
}
