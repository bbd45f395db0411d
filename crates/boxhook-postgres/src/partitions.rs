//! The time partitions of `events`: one table per UTC day of `received_at`
//! (milliseconds), named after the day (`events_20250131`; a second table
//! for the same day while the first is being dropped gets `_2`, …; days
//! before year 1000 or after 9999 are `events_day<n>`, `n` days from
//! 1970-01-01).
//!
//! There is no DEFAULT partition: PostgreSQL refuses `DETACH PARTITION …
//! CONCURRENTLY` on a table that has one, and pruning relies on it. A row
//! whose day has no partition yet makes its store create that day's
//! partition ([`create`]) and try again, so any clock works.
//!
//! A partition is created as a plain table (`LIKE events`) and then
//! attached: `ATTACH PARTITION` takes a `SHARE UPDATE EXCLUSIVE` lock on
//! `events`, which no insert, update or read waits for, where `CREATE TABLE
//! … PARTITION OF` would take an `ACCESS EXCLUSIVE` one.

use boxhook::inbox::{ErrorKind, InboxError};
use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::GenericClient;

use crate::storage;

/// One day in milliseconds: the width of a partition.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// How many days after today (by the caller's clock) partitions are
/// created ahead, today and yesterday included.
pub(crate) const AHEAD_DAYS: i64 = 7;

/// The day (from 1970-01-01, UTC) of a time in milliseconds.
pub(crate) fn day_of(millis: i64) -> i64 {
    millis.div_euclid(DAY_MS)
}

/// The `[lo, hi)` range in milliseconds of `day`, `None` past `bigint`.
pub(crate) fn bounds(day: i64) -> Option<(i64, i64)> {
    let lo = day.checked_mul(DAY_MS)?;
    Some((lo, lo.checked_add(DAY_MS)?))
}

/// The table name of `day`'s partition (before any `_2` suffix).
pub(crate) fn name(day: i64) -> String {
    let date = day
        .checked_mul(86_400)
        .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
        .map(|at| at.date_naive());
    match date {
        Some(date) if (1000..=9999).contains(&chrono::Datelike::year(&date)) => {
            format!("events_{}", date.format("%Y%m%d"))
        }
        _ => format!("events_day{day}"),
    }
}

/// The day a partition's table name stands for, `None` when it is not one
/// of boxhook's partition names.
pub(crate) fn parse_name(table: &str) -> Option<i64> {
    let rest = table.strip_prefix("events_")?;
    // An optional `_<n>` suffix (n ≥ 2) for a second table of one day.
    let base = match rest.rsplit_once('_') {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            if n.starts_with('0') || n.parse::<u32>().ok()? < 2 {
                return None;
            }
            base
        }
        _ => rest,
    };
    if let Some(day) = base.strip_prefix("day") {
        let day: i64 = day.parse().ok()?;
        return (name(day) == format!("events_{base}")).then_some(day);
    }
    if base.len() != 8 || !base.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let date = NaiveDate::parse_from_str(base, "%Y%m%d").ok()?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    Some(date.signed_duration_since(epoch).num_days())
}

/// An attached partition of `events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Partition {
    pub(crate) table: String,
    pub(crate) lo: i64,
    pub(crate) hi: i64,
    /// A `DETACH … CONCURRENTLY` was interrupted: it must be finalized.
    pub(crate) detach_pending: bool,
}

/// The partitions attached to `events`, oldest first.
pub(crate) async fn attached(client: &impl GenericClient) -> Result<Vec<Partition>, InboxError> {
    let rows = client
        .query(
            "SELECT c.relname::text, pg_get_expr(c.relpartbound, c.oid), i.inhdetachpending \
             FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'events'::regclass",
            &[],
        )
        .await
        .map_err(storage)?;
    let mut partitions = Vec::with_capacity(rows.len());
    for row in rows {
        let table: String = row.try_get(0).map_err(storage)?;
        let bound: String = row.try_get(1).map_err(storage)?;
        let (lo, hi) = parse_bound(&bound).ok_or_else(|| {
            InboxError::new(
                ErrorKind::Corrupt,
                format!(
                    "partition {table} of events has the bound {bound:?}, not a range of \
                     received_at: it was not made by boxhook; detach it"
                ),
            )
        })?;
        partitions.push(Partition {
            table,
            lo,
            hi,
            detach_pending: row.try_get(2).map_err(storage)?,
        });
    }
    partitions.sort_by_key(|p| p.lo);
    Ok(partitions)
}

/// `FOR VALUES FROM ('0') TO ('86400000')` as `(0, 86400000)`.
fn parse_bound(bound: &str) -> Option<(i64, i64)> {
    let rest = bound.strip_prefix("FOR VALUES FROM (")?;
    let (lo, rest) = rest.split_once(") TO (")?;
    let hi = rest.strip_suffix(')')?;
    let number = |text: &str| text.trim_matches('\'').parse::<i64>().ok();
    Some((number(lo)?, number(hi)?))
}

/// Tables named like partitions of `events` that are not attached to it:
/// partitions a pruner detached and has not dropped yet (it was stopped
/// between the two), with their day.
pub(crate) async fn detached(
    client: &impl GenericClient,
) -> Result<Vec<(String, i64)>, InboxError> {
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_class c \
             WHERE c.relnamespace = (SELECT relnamespace FROM pg_class \
                                     WHERE oid = 'events'::regclass) \
             AND c.relkind = 'r' AND NOT c.relispartition AND c.relname LIKE 'events\\_%'",
            &[],
        )
        .await
        .map_err(storage)?;
    let mut tables = Vec::new();
    for row in rows {
        let table: String = row.try_get(0).map_err(storage)?;
        if let Some(day) = parse_name(&table) {
            tables.push((table, day));
        }
    }
    tables.sort_by_key(|(_, day)| *day);
    Ok(tables)
}

/// Creates and attaches `day`'s partition, in the caller's transaction.
///
/// The name is `day`'s, or the first free `_<n>` one after it (a table of
/// that name may be waiting to be dropped). Fails when a partition already
/// covers the day.
pub(crate) async fn create_in(client: &impl GenericClient, day: i64) -> Result<(), InboxError> {
    let (lo, hi) = bounds(day).ok_or_else(|| {
        InboxError::new(
            ErrorKind::Storage,
            format!("no partition can hold day {day} (past the range of received_at)"),
        )
    })?;
    let base = name(day);
    let taken: Vec<String> = client
        .query(
            "SELECT relname::text FROM pg_class \
             WHERE relnamespace = (SELECT relnamespace FROM pg_class \
                                   WHERE oid = 'events'::regclass) \
             AND (relname = $1 OR relname LIKE $1 || '\\_%')",
            &[&base],
        )
        .await
        .map_err(storage)?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(storage)?;
    // `taken` has fewer names than the candidates tried, so one is free.
    let table = std::iter::once(base.clone())
        .chain((2..=taken.len().saturating_add(2)).map(|n| format!("{base}_{n}")))
        .find(|candidate| !taken.contains(candidate))
        .unwrap_or(base);
    let table = quote_ident(&table);
    client
        .batch_execute(&format!(
            "CREATE TABLE {table} (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS \
                                   INCLUDING STORAGE); \
             ALTER TABLE events ATTACH PARTITION {table} FOR VALUES FROM ({lo}) TO ({hi})"
        ))
        .await
        .map_err(storage)
}

/// Creates `day`'s partition in a transaction of its own, waiting at most
/// 2 s for a lock, unless a partition covers the day by then (another
/// process created it meanwhile).
pub(crate) async fn create(
    client: &mut deadpool_postgres::Object,
    day: i64,
) -> Result<(), InboxError> {
    let created = async {
        let tx = client.transaction().await.map_err(storage)?;
        tx.batch_execute("SET LOCAL lock_timeout = '2s'")
            .await
            .map_err(storage)?;
        create_in(&tx, day).await?;
        tx.commit().await.map_err(storage)
    }
    .await;
    match created {
        Err(error) if !covers(&attached(&*client).await?, day) => Err(error),
        _ => Ok(()),
    }
}

/// Whether one of `partitions` holds rows of `day`.
fn covers(partitions: &[Partition], day: i64) -> bool {
    bounds(day).is_some_and(|(lo, hi)| partitions.iter().any(|p| p.lo < hi && lo < p.hi))
}

/// Creates the partitions missing from yesterday to [`AHEAD_DAYS`] after
/// `now`'s day, each in a transaction of its own.
pub(crate) async fn ensure_ahead(
    client: &mut deadpool_postgres::Object,
    now: DateTime<Utc>,
) -> Result<(), InboxError> {
    let today = day_of(now.timestamp_millis());
    let covered = attached(&*client).await?;
    for day in today.saturating_sub(1)..=today.saturating_add(AHEAD_DAYS) {
        if !covers(&covered, day) {
            create(client, day).await?;
        }
    }
    Ok(())
}

/// Whether `error` is PostgreSQL's "no partition of relation … found for
/// row": the row's day has no partition yet.
pub(crate) fn is_missing(error: &tokio_postgres::Error) -> bool {
    error.as_db_error().is_some_and(|db| {
        db.code() == &tokio_postgres::error::SqlState::CHECK_VIOLATION
            && db.message().starts_with("no partition of relation")
    })
}

/// `name` as a quoted SQL identifier.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_is_named_by_its_date_and_read_back() {
        let cases = [
            (0, "events_19700101"),
            (20_089, "events_20250101"),
            (-1, "events_19691231"),
            (-719_163, "events_day-719163"),
            (2_932_897, "events_day2932897"),
        ];
        for (day, table) in cases {
            assert_eq!(name(day), table, "{day}");
            assert_eq!(parse_name(table), Some(day), "{table}");
            assert_eq!(parse_name(&format!("{table}_2")), Some(day), "{table}_2");
            assert_eq!(parse_name(&format!("{table}_17")), Some(day), "{table}_17");
        }
        for other in [
            "events",
            "events_v1",
            "events_2025010",
            "events_20251301",
            "events_20250101_1",
            "events_20250101_02",
            "events_20250101_",
            "events_day12",
            "events_dayx",
            "event_keys",
            "events_seq_seq",
        ] {
            assert_eq!(parse_name(other), None, "{other}");
        }
    }

    #[test]
    fn a_day_is_a_range_of_milliseconds() {
        assert_eq!(bounds(0), Some((0, DAY_MS)));
        assert_eq!(bounds(-1), Some((-DAY_MS, 0)));
        assert_eq!(bounds(i64::MAX / DAY_MS + 1), None);
        assert_eq!(day_of(-1), -1);
        assert_eq!(day_of(DAY_MS - 1), 0);
        assert_eq!(day_of(DAY_MS), 1);
    }

    #[test]
    fn a_range_bound_is_read_from_its_text() {
        assert_eq!(
            parse_bound("FOR VALUES FROM ('0') TO ('86400000')"),
            Some((0, 86_400_000))
        );
        assert_eq!(
            parse_bound("FOR VALUES FROM ('-86400000') TO ('0')"),
            Some((-86_400_000, 0))
        );
        assert_eq!(parse_bound("DEFAULT"), None);
        assert_eq!(parse_bound("FOR VALUES FROM (MINVALUE) TO ('0')"), None);
    }
}
