//! Helpers for inbox implementations: what every backend of
//! [`Inbox`](super::Inbox) does the same way, whatever its SQL.
//!
//! An application never needs this module; a crate that stores events
//! (`boxhook-sqlite`, `boxhook-postgres`, or one of your own) uses it so
//! that every inbox reads rows back, counts deliveries, stores times and
//! ends leases alike, and fails with the same messages:
//!
//! - [`EntryColumns`]: a stored row's columns, decoded into an
//!   [`InboxEntry`] (or an [`ErrorKind::Corrupt`] error saying which value
//!   is wrong);
//! - [`stored`]: what `store` answers for a row's delivery count;
//! - [`millis`]: the instant stored in an integer column;
//! - [`lease_end`]: when a claim's lease ends, without overflowing;
//! - [`lease_lost`]: the error of settling a claim no longer held.
//!
//! ```
//! use std::time::Duration;
//! use boxhook::inbox::backend::{lease_end, millis, stored};
//! use boxhook::inbox::Stored;
//!
//! let now = chrono::DateTime::from_timestamp_millis(1_700_000_000_000).expect("in range");
//! assert_eq!(millis(lease_end(now, Duration::from_secs(60))), 1_700_000_060_000);
//! assert_eq!(stored(1), Stored::New);
//! assert_eq!(stored(2), Stored::Duplicate { deliveries: 2 });
//! ```

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{EntryState, ErrorKind, InboxEntry, InboxError, RecordKind, Stored};
use crate::idempotency::EventKey;

/// The columns of one stored event, as an inbox reads them from its
/// storage (integers as `i64`, the state and kind as stored text), before
/// they are checked: [`decode`](Self::decode) makes the [`InboxEntry`].
///
/// ```
/// use boxhook::inbox::backend::EntryColumns;
/// use boxhook::inbox::{EntryState, ErrorKind, RecordKind};
///
/// let columns = EntryColumns {
///     webhook_id: "4133".into(),
///     event_id: "e-1".into(),
///     trigger: "FILE.UPLOADED".into(),
///     source_type: Some("file".into()),
///     source_id: Some("12345".into()),
///     delivery_id: Some("d-1".into()),
///     received_at_ms: 1_700_000_000_000,
///     deliveries: 2,
///     attempts: 1,
///     state: "claimed".into(),
///     kind: "v2".into(),
/// };
/// let entry = columns.clone().decode()?;
/// assert_eq!((entry.deliveries, entry.attempts), (2, 1));
/// assert_eq!((entry.state, entry.kind), (EntryState::Claimed, RecordKind::V2));
/// assert_eq!(entry.received_at.timestamp_millis(), 1_700_000_000_000);
///
/// let corrupt = EntryColumns { state: "lost".into(), ..columns }.decode().unwrap_err();
/// assert_eq!(corrupt.kind(), ErrorKind::Corrupt);
/// assert_eq!(corrupt.to_string(), r#"inbox data is unreadable: unknown state "lost""#);
/// # Ok::<(), boxhook::inbox::InboxError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryColumns {
    /// `webhook.id`; the empty string when the event has none.
    pub webhook_id: String,
    /// The event's `id`.
    pub event_id: String,
    /// The trigger, exactly as sent.
    pub trigger: String,
    /// `source.type`.
    pub source_type: Option<String>,
    /// `source.id`.
    pub source_id: Option<String>,
    /// `BOX-DELIVERY-ID` of the first delivery stored.
    pub delivery_id: Option<String>,
    /// When the first delivery was accepted, in milliseconds since the
    /// Unix epoch (as [`millis`] stores it).
    pub received_at_ms: i64,
    /// How many deliveries were counted.
    pub deliveries: i64,
    /// How many times a worker claimed it.
    pub attempts: i64,
    /// The state as stored ([`EntryState::as_str`]).
    pub state: String,
    /// The kind as stored ([`RecordKind::as_str`]).
    pub kind: String,
}

impl EntryColumns {
    /// The entry these columns hold.
    ///
    /// ```
    /// use boxhook::inbox::backend::EntryColumns;
    ///
    /// let columns = EntryColumns {
    ///     webhook_id: String::new(),
    ///     event_id: "e-1".into(),
    ///     trigger: "FILE.UPLOADED".into(),
    ///     source_type: None,
    ///     source_id: None,
    ///     delivery_id: None,
    ///     received_at_ms: 0,
    ///     deliveries: -1,
    ///     attempts: 0,
    ///     state: "pending".into(),
    ///     kind: "v2".into(),
    /// };
    /// let error = columns.decode().unwrap_err();
    /// assert_eq!(error.to_string(), "inbox data is unreadable: deliveries is -1");
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Corrupt`], for the first value that is not one, in
    /// this order: `received_at {ms} ms is out of range`, `deliveries is
    /// {n}` (negative), `attempts is {n}` (negative or past `u32`),
    /// `unknown state {state:?}`, `unknown kind {kind:?}`.
    pub fn decode(self) -> Result<InboxEntry, InboxError> {
        let corrupt = |what: String| InboxError::new(ErrorKind::Corrupt, what);
        let Self {
            webhook_id,
            event_id,
            trigger,
            source_type,
            source_id,
            delivery_id,
            received_at_ms,
            deliveries,
            attempts,
            state,
            kind,
        } = self;
        Ok(InboxEntry {
            webhook_id,
            event_id,
            trigger,
            source_type,
            source_id,
            delivery_id,
            received_at: DateTime::from_timestamp_millis(received_at_ms).ok_or_else(|| {
                corrupt(format!("received_at {received_at_ms} ms is out of range"))
            })?,
            deliveries: u64::try_from(deliveries)
                .map_err(|_| corrupt(format!("deliveries is {deliveries}")))?,
            attempts: u32::try_from(attempts)
                .map_err(|_| corrupt(format!("attempts is {attempts}")))?,
            state: EntryState::parse(&state)
                .ok_or_else(|| corrupt(format!("unknown state {state:?}")))?,
            kind: RecordKind::parse(&kind)
                .ok_or_else(|| corrupt(format!("unknown kind {kind:?}")))?,
        })
    }
}

/// What `store` answers for the delivery count of the event's row after
/// the store: [`Stored::New`] for the first delivery, else
/// [`Stored::Duplicate`] with the count.
///
/// ```
/// use boxhook::inbox::backend::stored;
/// use boxhook::inbox::Stored;
///
/// assert_eq!(stored(1), Stored::New);
/// assert_eq!(stored(3), Stored::Duplicate { deliveries: 3 });
/// ```
#[must_use]
pub fn stored(deliveries: i64) -> Stored {
    if deliveries <= 1 {
        Stored::New
    } else {
        Stored::Duplicate {
            deliveries: u64::try_from(deliveries).unwrap_or(u64::MAX),
        }
    }
}

/// `at` as an integer column stores it: milliseconds since the Unix epoch
/// ([`EntryColumns::received_at_ms`] reads it back).
///
/// ```
/// let at = chrono::DateTime::from_timestamp(1_700_000_000, 5_000_000).expect("in range");
/// assert_eq!(boxhook::inbox::backend::millis(at), 1_700_000_000_005);
/// ```
#[must_use]
pub fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// When a lease of `lease` taken at `now` ends: `now + lease`, saturating
/// at the last representable instant instead of overflowing (a lease of
/// `Duration::MAX` never ends).
///
/// ```
/// use std::time::Duration;
/// use boxhook::inbox::backend::lease_end;
/// use chrono::{DateTime, Utc};
///
/// let now = DateTime::from_timestamp(1_700_000_000, 0).expect("in range");
/// assert_eq!(lease_end(now, Duration::from_secs(30)), now + chrono::TimeDelta::seconds(30));
/// assert_eq!(lease_end(now, Duration::MAX), DateTime::<Utc>::MAX_UTC);
/// ```
#[must_use]
pub fn lease_end(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(lease)
        .ok()
        .and_then(|lease| now.checked_add_signed(lease))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The error of an `ack`, `requeue` or `bury` whose claim is no longer the
/// one held ([`ErrorKind::LeaseLost`]): not attempt `attempts` of event
/// `key`, or not held by `worker_id`, or not claimed any more.
///
/// ```
/// use boxhook::idempotency::EventKey;
/// use boxhook::inbox::backend::lease_lost;
/// use boxhook::inbox::ErrorKind;
///
/// let error = lease_lost(&EventKey::new("4133", "e-1"), 2, "worker-1");
/// assert_eq!(error.kind(), ErrorKind::LeaseLost);
/// assert_eq!(
///     error.to_string(),
///     "inbox claim is no longer held: event 4133/e-1 attempt 2 of worker-1 is no longer claimed"
/// );
/// ```
#[must_use]
pub fn lease_lost(key: &EventKey, attempts: u32, worker_id: &str) -> InboxError {
    InboxError::new(
        ErrorKind::LeaseLost,
        format!("event {key} attempt {attempts} of {worker_id} is no longer claimed"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> EntryColumns {
        EntryColumns {
            webhook_id: "4133".into(),
            event_id: "e-1".into(),
            trigger: "FILE.UPLOADED".into(),
            source_type: None,
            source_id: Some("12345".into()),
            delivery_id: None,
            received_at_ms: -1,
            deliveries: 1,
            attempts: i64::from(u32::MAX),
            state: "dead".into(),
            kind: "v1".into(),
        }
    }

    fn corrupt(columns: EntryColumns) -> String {
        let error = columns.decode().expect_err("corrupt");
        assert_eq!(error.kind(), ErrorKind::Corrupt);
        std::error::Error::source(&error)
            .expect("a message")
            .to_string()
    }

    #[test]
    fn decodes_every_column() {
        let entry = columns().decode().expect("valid");
        assert_eq!(
            (
                entry.webhook_id.as_str(),
                entry.event_id.as_str(),
                entry.trigger.as_str()
            ),
            ("4133", "e-1", "FILE.UPLOADED")
        );
        assert_eq!(
            (entry.source_type, entry.source_id, entry.delivery_id),
            (None, Some("12345".to_owned()), None)
        );
        assert_eq!(entry.received_at.timestamp_millis(), -1);
        assert_eq!((entry.deliveries, entry.attempts), (1, u32::MAX));
        assert_eq!(
            (entry.state, entry.kind),
            (EntryState::Dead, RecordKind::V1)
        );
    }

    #[test]
    fn names_the_first_wrong_value() {
        let all_wrong = EntryColumns {
            received_at_ms: i64::MAX,
            deliveries: -2,
            attempts: i64::from(u32::MAX) + 1,
            state: "gone".into(),
            kind: "v3".into(),
            ..columns()
        };
        assert_eq!(
            corrupt(all_wrong.clone()),
            format!("received_at {} ms is out of range", i64::MAX)
        );
        let rest = EntryColumns {
            received_at_ms: 0,
            ..all_wrong
        };
        assert_eq!(corrupt(rest.clone()), "deliveries is -2");
        let rest = EntryColumns {
            deliveries: 0,
            ..rest
        };
        assert_eq!(corrupt(rest.clone()), "attempts is 4294967296");
        assert_eq!(
            corrupt(EntryColumns {
                attempts: -1,
                ..rest.clone()
            }),
            "attempts is -1"
        );
        let rest = EntryColumns {
            attempts: 0,
            ..rest
        };
        assert_eq!(corrupt(rest.clone()), r#"unknown state "gone""#);
        let rest = EntryColumns {
            state: "done".into(),
            ..rest
        };
        assert_eq!(corrupt(rest), r#"unknown kind "v3""#);
    }

    #[test]
    fn counts_past_one_are_duplicates() {
        assert_eq!(stored(i64::MIN), Stored::New);
        assert_eq!(stored(0), Stored::New);
        assert_eq!(stored(1), Stored::New);
        assert_eq!(stored(2), Stored::Duplicate { deliveries: 2 });
        assert_eq!(
            stored(i64::MAX),
            Stored::Duplicate {
                deliveries: u64::try_from(i64::MAX).expect("positive")
            }
        );
    }

    #[test]
    fn lease_end_saturates() {
        let max = DateTime::<Utc>::MAX_UTC;
        assert_eq!(lease_end(max, Duration::from_millis(1)), max);
        assert_eq!(lease_end(max, Duration::ZERO), max);
        let min = DateTime::<Utc>::MIN_UTC;
        assert_eq!(
            millis(lease_end(min, Duration::from_millis(1500))),
            millis(min) + 1500
        );
    }

    #[test]
    fn lease_lost_escapes_the_key() {
        let error = lease_lost(&EventKey::new("41\n33", "e-1"), 0, "w");
        assert_eq!(error.kind(), ErrorKind::LeaseLost);
        assert_eq!(
            std::error::Error::source(&error)
                .expect("a message")
                .to_string(),
            r"event 41\n33/e-1 attempt 0 of w is no longer claimed"
        );
    }
}
