//! [`SqliteInbox`]: the [`Inbox`] queries, and the trait implementations
//! that run them on its database's threads.

use std::fmt;
use std::time::Duration;

use boxhook::inbox::backend::{lease_end, lease_lost, millis, EntryColumns};
use boxhook::inbox::{
    Claimed, Counts, EntryState, Inbox, InboxEntry, InboxError, ListFilter, NewRecord, Pruned,
    Retention, Revive, SettleAs, Stored, StoredEvent,
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use rusqlite::{params, params_from_iter, Row, TransactionBehavior};

use crate::db::Db;
use crate::{prune, read, storage};

/// A durable inbox in one SQLite file (see the [crate docs](crate)).
///
/// ```
/// use std::time::Duration;
/// use boxhook::inbox::{Inbox, ListFilter, NewRecord, Stored};
/// use boxhook_sqlite::SqliteInbox;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let inbox = SqliteInbox::in_memory()?;
/// let now = chrono::Utc::now();
/// let body = &br#"{"type":"webhook_event","id":"e-1","trigger":"FILE.UPLOADED","webhook":{"id":"4133"}}"#[..];
/// assert_eq!(inbox.store(NewRecord::parse(body, Some("d-1"), now)?).await?, Stored::New);
/// assert_eq!(inbox.store(NewRecord::parse(body, Some("d-2"), now)?).await?, Stored::Duplicate { deliveries: 2 });
///
/// let claimed = inbox.claim_next("worker-1", Duration::from_secs(60), now).await?.expect("pending");
/// inbox.ack(&claimed).await?;
/// let listed = inbox.list(ListFilter::new().trigger("FILE.UPLOADED")).await?;
/// assert_eq!((listed[0].deliveries, listed[0].delivery_id.as_deref()), (2, Some("d-1")));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct SqliteInbox {
    /// The database, shared with its [`idempotency_store`](Self::idempotency_store).
    pub(crate) db: Db,
}

/// Runs a statement that yields at most one row and steps it to the end.
///
/// rusqlite's `query_row` reads the first row and drops the statement
/// without the final step; for a write in autocommit mode that step is
/// the commit, and the error it reports (a full disk, a failed fsync) is
/// dropped with it. Stepping until `None` returns every error.
pub(crate) fn at_most_one_row<T>(
    stmt: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
    f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Option<T>> {
    let mut rows = stmt.query(params)?;
    let first = match rows.next()? {
        Some(row) => Some(f(row)?),
        None => None,
    };
    while rows.next()?.is_some() {}
    Ok(first)
}

impl fmt::Debug for SqliteInbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteInbox")
            .field("path", &self.db.path())
            .finish_non_exhaustive()
    }
}

/// The entry columns, in the order [`entry`] reads them; the kind (the
/// `kind` column or, for an old file read-only, `'v2'`) follows them.
pub(crate) const ENTRY_COLUMNS: &str =
    "webhook_id, event_id, trigger_name, source_type, source_id, \
     delivery_id, received_at, deliveries, attempts, state";

/// Reads the entry of a row selected with [`ENTRY_COLUMNS`] and the kind.
///
/// A counter, the state or the kind that cannot be read as its type fails
/// the statement (the outer error: a claim is rolled back); a text column
/// that cannot be read, or a value that is not one
/// ([`EntryColumns::decode`]), fails only this entry (the inner error,
/// returned once the statement is done).
pub(crate) fn entry(row: &Row<'_>) -> rusqlite::Result<Result<InboxEntry, InboxError>> {
    let received_at_ms = row.get(6)?;
    let deliveries = row.get(7)?;
    let attempts = row.get(8)?;
    let state = row.get(9)?;
    let kind = row.get(10)?;
    let columns = (|| {
        Ok(EntryColumns {
            webhook_id: row.get(0)?,
            event_id: row.get(1)?,
            trigger: row.get(2)?,
            source_type: row.get(3)?,
            source_id: row.get(4)?,
            delivery_id: row.get(5)?,
            received_at_ms,
            deliveries,
            attempts,
            state,
            kind,
        })
    })();
    Ok(columns.map_err(storage).and_then(EntryColumns::decode))
}

impl Inbox for SqliteInbox {
    async fn store(&self, record: NewRecord) -> Result<Stored, InboxError> {
        self.db.writable("store an event")?;
        self.db.store(record).await
    }

    async fn claim_next(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Claimed>, InboxError> {
        boxhook::inbox::FilteredClaims::claim_matching(self, worker_id, lease, now, &[]).await
    }

    async fn ack(&self, claimed: &Claimed) -> Result<(), InboxError> {
        self.settle(claimed, EntryState::Done, None).await
    }

    async fn requeue(&self, claimed: &Claimed, retry_at: DateTime<Utc>) -> Result<(), InboxError> {
        self.settle(claimed, EntryState::Pending, Some(retry_at))
            .await
    }

    async fn list(&self, filter: ListFilter) -> Result<Vec<InboxEntry>, InboxError> {
        let kind = self.db.setup().kind_column;
        self.db
            .read(move |conn| read::list(conn, &filter, kind))
            .await
    }

    async fn get(&self, event_id: &str) -> Result<Option<StoredEvent>, InboxError> {
        let event_id = event_id.to_owned();
        let kind = self.db.setup().kind_column;
        self.db
            .read(move |conn| read::get(conn, &event_id, kind))
            .await
    }

    async fn counts(&self) -> Result<Counts, InboxError> {
        let counters = self.db.setup().counters;
        self.db.read(move |conn| read::counts(conn, counters)).await
    }
}

impl boxhook::inbox::DeadLetters for SqliteInbox {
    async fn bury(&self, claimed: &Claimed) -> Result<(), InboxError> {
        self.settle(claimed, EntryState::Dead, None).await
    }

    async fn revive(&self, which: Revive, now: DateTime<Utc>) -> Result<u64, InboxError> {
        self.db.writable("requeue events")?;
        self.db
            .call(move |conn| {
                let (condition, event_id) = match which {
                    Revive::AllDead => ("state = 'dead'", None),
                    Revive::Event(id) => ("event_id = ?2 AND state IN ('dead', 'done')", Some(id)),
                };
                let sql = format!(
                    "UPDATE events SET state = 'pending', attempts = 0, worker_id = NULL, \
                 ready_at = ?1 WHERE {condition}"
                );
                // One UPDATE in autocommit: `execute` steps it to its end and
                // returns the commit's error.
                let mut stmt = conn.prepare_cached(&sql).map_err(storage)?;
                let changed = match event_id {
                    None => stmt.execute(params![millis(now)]),
                    Some(id) => stmt.execute(params![millis(now), id]),
                }
                .map_err(storage)?;
                Ok(u64::try_from(changed).unwrap_or(u64::MAX))
            })
            .await
    }
}

/// ` AND trigger_name IN (?first, …)` for `count` triggers bound from
/// parameter `first` on; empty for none (every trigger).
fn trigger_filter(first: usize, count: usize) -> String {
    if count == 0 {
        return String::new();
    }
    let marks: Vec<String> = (first..first.saturating_add(count))
        .map(|n| format!("?{n}"))
        .collect();
    format!(" AND trigger_name IN ({})", marks.join(", "))
}

impl boxhook::inbox::FilteredClaims for SqliteInbox {
    async fn claim_matching(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
        triggers: &[String],
    ) -> Result<Option<Claimed>, InboxError> {
        self.db.writable("claim an event")?;
        let worker_id = worker_id.to_owned();
        let lease_until = lease_end(now, lease);
        let kind = self.db.setup().kind_column;
        let triggers = triggers.to_vec();
        self.db
            .call(move |conn| {
                // ?1 to ?3, then one parameter per trigger.
                let only = trigger_filter(4, triggers.len());
                let sql = format!(
                "UPDATE events SET state = 'claimed', attempts = attempts + 1, worker_id = ?1, \
                 ready_at = ?2 \
                 WHERE seq = (SELECT seq FROM events WHERE state IN ('pending', 'claimed') \
                              AND ready_at <= ?3{only} ORDER BY seq LIMIT 1) \
                 RETURNING {ENTRY_COLUMNS}, {kind}, body"
            );
                let values: Vec<rusqlite::types::Value> = [
                    rusqlite::types::Value::Text(worker_id.clone()),
                    rusqlite::types::Value::Integer(millis(lease_until)),
                    rusqlite::types::Value::Integer(millis(now)),
                ]
                .into_iter()
                .chain(triggers.into_iter().map(rusqlite::types::Value::Text))
                .collect();
                // As in `store`: stepped to the end inside a transaction whose
                // COMMIT error is returned, so a claim that did not reach the
                // disk is not handed to a worker.
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(storage)?;
                let row = {
                    let mut stmt = tx.prepare_cached(&sql).map_err(storage)?;
                    at_most_one_row(&mut stmt, params_from_iter(values), |row| {
                        Ok(entry(row)?.map(|entry| (entry, row.get::<_, Vec<u8>>(11))))
                    })
                    .map_err(storage)?
                };
                tx.commit().map_err(storage)?;
                let Some(decoded) = row else {
                    return Ok(None);
                };
                let (entry, body) = decoded?;
                Ok(Some(Claimed {
                    entry,
                    body: Bytes::from(body.map_err(storage)?),
                    worker_id,
                    lease_until,
                }))
            })
            .await
    }
}

impl boxhook::inbox::Prune for SqliteInbox {
    async fn prune(
        &self,
        retention: &Retention,
        now: DateTime<Utc>,
        batch: usize,
    ) -> Result<Pruned, InboxError> {
        self.db.writable("prune events")?;
        let retention = *retention;
        let vacuum = self.db.setup().vacuum;
        let identity = self.db.identity();
        self.db
            .call(move |conn| {
                let pruned = prune::prune(conn, &retention, now, batch, vacuum)?;
                if let Some(identity) = &identity {
                    identity.check()?;
                }
                Ok(pruned)
            })
            .await
    }
}

impl SqliteInbox {
    /// Acknowledges or requeues a claim, if it is still the one held.
    async fn settle(
        &self,
        claimed: &Claimed,
        state: EntryState,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), InboxError> {
        self.db.writable(match state {
            EntryState::Done => "acknowledge an event",
            EntryState::Dead => "mark an event dead",
            _ => "requeue an event",
        })?;
        let key = claimed.entry.key();
        let claimed_attempt = claimed.entry.attempts;
        let attempts = i64::from(claimed_attempt);
        let worker_id = claimed.worker_id.clone();
        self.db
            .call(move |conn| {
                // `execute` steps the statement to its end (an UPDATE without
                // RETURNING finishes in one step, autocommit included) and
                // returns that step's error.
                let changed = conn
                    .prepare_cached(
                        "UPDATE events SET state = ?1, ready_at = coalesce(?2, ready_at) \
                     WHERE webhook_id = ?3 AND event_id = ?4 AND state = 'claimed' \
                     AND attempts = ?5 AND worker_id = ?6",
                    )
                    .and_then(|mut stmt| {
                        stmt.execute(params![
                            state.as_str(),
                            retry_at.map(millis),
                            key.webhook_id(),
                            key.event_id(),
                            attempts,
                            worker_id,
                        ])
                    })
                    .map_err(storage)?;
                if changed == 0 {
                    return Err(lease_lost(&key, claimed_attempt, &worker_id));
                }
                Ok(())
            })
            .await
    }
}

/// One claim of a batch settle: webhook id, event id, attempt, worker id,
/// the new state, and the retry time of a requeue.
type SettleRow = (String, String, i64, String, &'static str, Option<i64>);

impl boxhook::inbox::BatchClaims for SqliteInbox {
    /// One `UPDATE … WHERE seq IN (… ORDER BY seq LIMIT n) RETURNING …` in
    /// one immediate transaction on the connection thread, its commit's
    /// error returned: the claim of a single event, for up to `max`.
    async fn claim_batch(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
        triggers: &[String],
        max: usize,
    ) -> Result<Vec<Claimed>, InboxError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        self.db.writable("claim events")?;
        let worker_id = worker_id.to_owned();
        let lease_until = lease_end(now, lease);
        let kind = self.db.setup().kind_column;
        let triggers = triggers.to_vec();
        self.db
            .call(move |conn| {
                // ?1 to ?4, then one parameter per trigger.
                let only = trigger_filter(5, triggers.len());
                let sql = format!(
                    "UPDATE events SET state = 'claimed', attempts = attempts + 1, \
                     worker_id = ?1, ready_at = ?2 \
                     WHERE seq IN (SELECT seq FROM events WHERE state IN ('pending', 'claimed') \
                                   AND ready_at <= ?3{only} ORDER BY seq LIMIT ?4) \
                     RETURNING {ENTRY_COLUMNS}, {kind}, body, seq"
                );
                let values: Vec<rusqlite::types::Value> = [
                    rusqlite::types::Value::Text(worker_id.clone()),
                    rusqlite::types::Value::Integer(millis(lease_until)),
                    rusqlite::types::Value::Integer(millis(now)),
                    rusqlite::types::Value::Integer(i64::try_from(max).unwrap_or(i64::MAX)),
                ]
                .into_iter()
                .chain(triggers.into_iter().map(rusqlite::types::Value::Text))
                .collect();
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(storage)?;
                let mut taken = Vec::new();
                {
                    let mut stmt = tx.prepare_cached(&sql).map_err(storage)?;
                    let mut rows = stmt.query(params_from_iter(values)).map_err(storage)?;
                    while let Some(row) = rows.next().map_err(storage)? {
                        let decoded = entry(row).map_err(storage)?;
                        let body = row.get::<_, Vec<u8>>(11);
                        let seq: i64 = row.get(12).map_err(storage)?;
                        taken.push((seq, decoded, body));
                    }
                }
                tx.commit().map_err(storage)?;
                // RETURNING gives no order: oldest first, as stored.
                taken.sort_by_key(|(seq, _, _)| *seq);
                // A row that does not read back fails only itself: it stays
                // claimed until its lease ends (as a single claim of it
                // would), and the others of the batch run.
                Ok(taken
                    .into_iter()
                    .filter_map(|(seq, decoded, body)| {
                        let claimed = decoded.and_then(|entry| {
                            Ok(Claimed {
                                entry,
                                body: Bytes::from(body.map_err(storage)?),
                                worker_id: worker_id.clone(),
                                lease_until,
                            })
                        });
                        claimed
                            .map_err(|error| {
                                tracing::error!(
                                    seq,
                                    error = %error,
                                    "an event claimed in a batch does not read back from the \
                                     inbox; the others run, it stays claimed until its lease \
                                     ends (inspect it with `boxhook inbox list --state claimed`)"
                                );
                            })
                            .ok()
                    })
                    .collect())
            })
            .await
    }

    /// One immediate transaction on the connection thread: the settle of
    /// each claim, with the lease's end checked too (`ready_at > now`);
    /// the counters follow each update in the same transaction.
    async fn settle_batch(
        &self,
        settles: &[(Claimed, SettleAs)],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, InboxError> {
        if settles.is_empty() {
            return Ok(Vec::new());
        }
        self.db.writable("settle events")?;
        let rows: Vec<SettleRow> = settles
            .iter()
            .map(|(claimed, how)| {
                let (state, retry_at) = match how {
                    SettleAs::Done => ("done", None),
                    SettleAs::Pending(at) => ("pending", Some(millis(*at))),
                    SettleAs::Dead => ("dead", None),
                };
                (
                    claimed.entry.webhook_id.clone(),
                    claimed.entry.event_id.clone(),
                    i64::from(claimed.entry.attempts),
                    claimed.worker_id.clone(),
                    state,
                    retry_at,
                )
            })
            .collect();
        let now = millis(now);
        self.db
            .call(move |conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(storage)?;
                let mut settled = Vec::with_capacity(rows.len());
                {
                    let mut stmt = tx
                        .prepare_cached(
                            "UPDATE events SET state = ?1, ready_at = coalesce(?2, ready_at) \
                             WHERE webhook_id = ?3 AND event_id = ?4 AND state = 'claimed' \
                             AND attempts = ?5 AND worker_id = ?6 AND ready_at > ?7",
                        )
                        .map_err(storage)?;
                    for (webhook_id, event_id, attempts, worker_id, state, retry_at) in &rows {
                        let changed = stmt
                            .execute(params![
                                state, retry_at, webhook_id, event_id, attempts, worker_id, now
                            ])
                            .map_err(storage)?;
                        settled.push(changed > 0);
                    }
                }
                tx.commit().map_err(storage)?;
                Ok(settled)
            })
            .await
    }
}
