//! Pruning: what [`Prune::prune`](boxhook::inbox::Prune::prune) removes in
//! one bounded batch, the keys it keeps for pruned events, and the space it
//! gives back to the file system.

use boxhook::inbox::backend::millis;
use boxhook::inbox::{ErrorKind, InboxError, Pruned, Retention, MIN_KEEP_KEYS};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, Transaction, TransactionBehavior};

use crate::storage;

/// Most pages one prune call returns to the file system (16 MiB of 4 KiB
/// pages): more than a batch of a few thousand events frees. They are
/// returned inside the batch's own transaction, before its commit, so a
/// batch costs one commit (one WAL fsync), not two: a separate
/// `incremental_vacuum` transaction after every batch doubled the commits
/// a prune makes while deliveries wait behind them.
pub(crate) const MAX_VACUUM_PAGES: i64 = 4096;

/// The done V2 events old enough to prune, oldest first: a walk of the
/// table by `seq` from its start. It stops at the first event received at
/// or after the cut-off (`seq` grows with time, so what follows is as
/// young), so it visits the events it removes and the older ones it keeps
/// (pending, claimed, dead, V1 callbacks) and no more.
pub(crate) const DONE_WALK_SQL: &str =
    "SELECT seq, received_at, state = 'done' AND kind = 'v2' FROM events ORDER BY seq";

/// The dead events, oldest first, from the `events_dead` partial index
/// alone (it holds `seq`, `received_at` and `kind`): V2 ones are pruned by
/// the dead retention, V1 ones by the V1 walk.
pub(crate) const DEAD_WALK_SQL: &str =
    "SELECT seq, received_at, kind = 'v2' FROM events WHERE state = 'dead' ORDER BY seq";

/// The done or dead V1 callbacks, oldest first, from the
/// `events_v1_settled` partial index alone.
pub(crate) const V1_WALK_SQL: &str = "SELECT seq, received_at, 1 FROM events \
     WHERE kind = 'v1' AND state IN ('done', 'dead') ORDER BY seq";

/// What kind of event a candidate is, for [`Pruned`]'s counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Done,
    Dead,
    V1,
}

/// Up to `limit` events of one walk whose `received_at` is before `cut`
/// and whose third column is true, stopping at the first row (of any
/// kind) received at or after `cut`.
fn walk(
    tx: &Transaction<'_>,
    sql: &str,
    cut: i64,
    limit: usize,
    kind: Kind,
) -> Result<Vec<(i64, Kind)>, InboxError> {
    let mut found = Vec::new();
    if limit == 0 {
        return Ok(found);
    }
    let mut stmt = tx.prepare_cached(sql).map_err(storage)?;
    let mut rows = stmt.query([]).map_err(storage)?;
    while let Some(row) = rows.next().map_err(storage)? {
        let received_at: i64 = row.get(1).map_err(storage)?;
        if received_at >= cut {
            break;
        }
        if row.get::<_, bool>(2).map_err(storage)? {
            found.push((row.get(0).map_err(storage)?, kind));
            if found.len() >= limit {
                break;
            }
        }
    }
    Ok(found)
}

/// One prune call: expired keys, then at most `batch` events, in one
/// immediate transaction; then, when the file vacuums incrementally, up to
/// [`MAX_VACUUM_PAGES`] free pages returned to the file system.
pub(crate) fn prune(
    conn: &mut Connection,
    retention: &Retention,
    now: DateTime<Utc>,
    batch: usize,
    vacuum: bool,
) -> Result<Pruned, InboxError> {
    let mut pruned = Pruned::default();
    let keys = retention.keys.max(MIN_KEEP_KEYS);
    // A pruned event's key is kept while `received_at + keys` is ahead of
    // `now`, that is while `received_at` is after this.
    let keys_cut = Retention::cutoff(now, Some(keys)).map_or(i64::MIN, millis);
    let limit = i64::try_from(batch).unwrap_or(i64::MAX);
    let mut tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(storage)?;

    let removed = tx
        .prepare_cached(
            "DELETE FROM pruned_keys WHERE (webhook_id, event_id) IN \
             (SELECT webhook_id, event_id FROM pruned_keys WHERE received_at <= ?1 \
              ORDER BY received_at LIMIT ?2)",
        )
        .and_then(|mut stmt| stmt.execute(params![keys_cut, limit]))
        .map_err(storage)?;
    pruned.keys = u64::try_from(removed).unwrap_or(u64::MAX);
    let keys_left: bool = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM pruned_keys WHERE received_at <= ?1)")
        .and_then(|mut stmt| stmt.query_row([keys_cut], |row| row.get(0)))
        .map_err(storage)?;

    // One more than the batch from each walk: whether more is left.
    let each = batch.saturating_add(1);
    let mut candidates = Vec::new();
    for (age, sql, kind) in [
        (retention.done, DONE_WALK_SQL, Kind::Done),
        (retention.dead, DEAD_WALK_SQL, Kind::Dead),
        (retention.v1, V1_WALK_SQL, Kind::V1),
    ] {
        if let Some(cut) = Retention::cutoff(now, age) {
            candidates.extend(walk(&tx, sql, millis(cut), each, kind)?);
        }
    }
    candidates.sort_unstable_by_key(|(seq, _)| *seq);
    let events_left = candidates.len() > batch;
    candidates.truncate(batch);

    {
        let mut delete = tx
            .prepare_cached(
                "DELETE FROM events WHERE seq = ?1 \
                 RETURNING webhook_id, event_id, received_at, deliveries",
            )
            .map_err(storage)?;
        let mut keep = tx
            .prepare_cached(
                "INSERT INTO pruned_keys (webhook_id, event_id, received_at, deliveries) \
                 VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (webhook_id, event_id) DO UPDATE \
                 SET received_at = excluded.received_at, deliveries = excluded.deliveries",
            )
            .map_err(storage)?;
        for (seq, kind) in candidates {
            let mut rows = delete.query([seq]).map_err(storage)?;
            let Some(row) = rows.next().map_err(storage)? else {
                return Err(InboxError::new(
                    ErrorKind::Storage,
                    format!("event {seq} to prune is gone from its own transaction"),
                ));
            };
            let (webhook_id, event_id, received_at, deliveries): (String, String, i64, i64) = (
                row.get(0).map_err(storage)?,
                row.get(1).map_err(storage)?,
                row.get(2).map_err(storage)?,
                row.get(3).map_err(storage)?,
            );
            // Stepped to its end: a DELETE reports its errors on the last step.
            while rows.next().map_err(storage)?.is_some() {}
            drop(rows);
            match kind {
                Kind::Done => pruned.done = pruned.done.saturating_add(1),
                Kind::Dead => pruned.dead = pruned.dead.saturating_add(1),
                // A V1 callback's id is its own, never delivered twice:
                // there is no retry to recognise, so no key to keep.
                Kind::V1 => {
                    pruned.v1 = pruned.v1.saturating_add(1);
                    continue;
                }
            }
            if received_at > keys_cut {
                keep.execute(params![webhook_id, event_id, received_at, deliveries])
                    .map_err(storage)?;
            }
        }
    }
    if vacuum {
        // In the batch's transaction, one commit for both; in a savepoint,
        // so a failure to give pages back undoes only that, and the batch
        // still commits. The pages stay free in the file, new events reuse
        // them, and the next prune returns them.
        let savepoint = tx.savepoint().map_err(storage)?;
        match return_free_pages(&savepoint) {
            Ok(_) => savepoint.commit().map_err(storage)?,
            Err(error) => {
                drop(savepoint);
                tracing::warn!(
                    error = %error,
                    "pruned, but could not return the freed pages to the file system"
                );
            }
        }
    }
    // On an error the transaction is rolled back as `tx` drops: nothing of
    // this batch is removed, and the counters are as they were.
    tx.commit().map_err(storage)?;
    pruned.more = events_left || keys_left;
    Ok(pruned)
}

/// Returns up to [`MAX_VACUUM_PAGES`] free pages to the file system
/// (`PRAGMA incremental_vacuum`), in the transaction `conn` is in, if any.
/// Returns how many.
pub(crate) fn return_free_pages(conn: &Connection) -> Result<i64, InboxError> {
    let free: i64 = conn
        .query_row("PRAGMA freelist_count", [], |row| row.get(0))
        .map_err(storage)?;
    let pages = free.min(MAX_VACUUM_PAGES);
    if pages <= 0 {
        return Ok(0);
    }
    // The pragma frees one page per step (it yields a row for each): it
    // must be stepped to its end, which also reports the commit's error.
    let mut stmt = conn
        .prepare(&format!("PRAGMA incremental_vacuum({pages})"))
        .map_err(storage)?;
    let mut rows = stmt.query([]).map_err(storage)?;
    while rows.next().map_err(storage)?.is_some() {}
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use boxhook::inbox::{Counts, Pruned, Retention};
    use chrono::DateTime;
    use rusqlite::Connection;

    use super::prune;
    use crate::{read, schema};

    /// Ten done events received at 1..=10 s, and the prune that takes
    /// them all.
    fn ten_done() -> Connection {
        let mut conn = Connection::open_in_memory().expect("open");
        schema::migrate(&mut conn).expect("schema");
        conn.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10) \
             INSERT INTO events (webhook_id, event_id, trigger_name, received_at, body, state) \
             SELECT '4133', 'e-' || i, 'FILE.UPLOADED', i * 1000, x'7b7d', 'done' FROM n",
        )
        .expect("fill");
        conn
    }

    fn kept_keys(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM pruned_keys", [], |row| row.get(0))
            .expect("keys")
    }

    /// A batch that fails half way (here: on its 7th delete) removes
    /// nothing: its deletes, counters and kept keys roll back together,
    /// and the next call does the whole batch.
    #[test]
    fn a_batch_that_fails_half_way_leaves_everything_as_it_was() {
        let mut conn = ten_done();
        let retention = Retention::nothing().done(Some(Duration::from_secs(1)));
        let now = DateTime::from_timestamp(100, 0).expect("in range");
        conn.execute_batch(
            "CREATE TEMP TRIGGER refuse BEFORE DELETE ON events WHEN OLD.event_id = 'e-7' \
             BEGIN SELECT RAISE(ABORT, 'disk I/O error, say'); END;",
        )
        .expect("trigger");
        let error = prune(&mut conn, &retention, now, 100, true).expect_err("refused");
        assert_eq!(
            error.to_string(),
            "inbox storage failed: disk I/O error, say"
        );
        let counts = read::counts(&conn, true).expect("counts");
        assert_eq!(
            counts,
            Counts {
                done: 10,
                ..Counts::default()
            }
        );
        assert_eq!(kept_keys(&conn), 0);

        conn.execute_batch("DROP TRIGGER refuse").expect("drop");
        assert_eq!(
            prune(&mut conn, &retention, now, 100, true).expect("prune"),
            Pruned {
                done: 10,
                ..Pruned::default()
            }
        );
        assert_eq!(
            read::counts(&conn, true).expect("counts"),
            Counts::default()
        );
        assert_eq!(kept_keys(&conn), 10);
    }
}
