//! [`PgInbox`]: the [`Inbox`] queries.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use boxhook::inbox::backend::{lease_end, lease_lost, millis, EntryColumns};
use boxhook::inbox::{
    Claimed, Counts, EntryState, ErrorKind, Inbox, InboxEntry, InboxError, ListFilter, NewRecord,
    Pruned, Retention, Revive, Stored, StoredEvent,
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use crate::connect::{self, Shared, Which};
use crate::options::Options;
use crate::storage;

mod claims;

/// A durable inbox in a PostgreSQL database, shared by any number of
/// receivers and workers (see the [crate docs](crate)).
///
/// ```no_run
/// use std::time::Duration;
/// use boxhook::inbox::{Inbox, NewRecord, Stored};
/// use boxhook_postgres::PgInbox;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let inbox = PgInbox::connect("postgres://boxhook@db.internal/boxhook").await?;
/// let body = &br#"{"type":"webhook_event","id":"e-1","trigger":"FILE.UPLOADED","webhook":{"id":"4133"}}"#[..];
/// let now = chrono::Utc::now();
/// assert_eq!(inbox.store(NewRecord::parse(body, Some("d-1"), now)?).await?, Stored::New);
/// let claimed = inbox.claim_next("worker-1", Duration::from_secs(60), now).await?.expect("pending");
/// inbox.ack(&claimed).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PgInbox {
    pub(crate) shared: Arc<Shared>,
}

impl PgInbox {
    /// Connects to `url` (`postgres://` or `postgresql://`, or a
    /// `key=value` string), with the default [`Options`]: the schema is
    /// migrated at once, under an advisory lock.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Storage`] when the URL is not one, or the server cannot
    /// be reached (the message says what to check);
    /// [`ErrorKind::Corrupt`] when the schema is newer than this build.
    pub async fn connect(url: &str) -> Result<Self, InboxError> {
        Self::connect_with(url, &Options::default()).await
    }

    /// [`connect`](Self::connect) with `options`.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect); with `migrate(false)`,
    /// [`ErrorKind::Corrupt`] when the schema is not current.
    ///
    /// Logs a warning (`tracing`, at `warn`) when the server would
    /// acknowledge a COMMIT before it is safe on disk for this connection
    /// (`synchronous_commit` or `fsync` off): a 2xx could then be lost in a
    /// crash of the database server.
    pub async fn connect_with(url: &str, options: &Options) -> Result<Self, InboxError> {
        let inbox = Self {
            shared: connect::connect(url, options).await?,
        };
        inbox.warn_unless_durable().await;
        Ok(inbox)
    }

    /// Warns when `synchronous_commit` or `fsync` is off for this
    /// connection (the server's, the database's or the role's setting).
    async fn warn_unless_durable(&self) {
        let Ok(client) = self.client().await else {
            return;
        };
        let Ok(rows) = client
            .query(
                "SELECT name, setting FROM pg_settings \
                 WHERE name IN ('synchronous_commit', 'fsync') AND setting = 'off' ORDER BY name",
                &[],
            )
            .await
        else {
            return;
        };
        for row in rows {
            let Ok(name) = row.try_get::<_, String>(0) else {
                continue;
            };
            let fix = if name == "fsync" {
                "set fsync = on in postgresql.conf"
            } else {
                "set synchronous_commit = on (postgresql.conf, or ALTER ROLE / ALTER DATABASE \
                 … SET synchronous_commit = on)"
            };
            tracing::warn!(
                "PostgreSQL runs with {name}=off for boxhook's connections: a COMMIT can return \
                 before it is safe on disk, so an event answered 2xx can be lost if the database \
                 server crashes; {fix}"
            );
        }
    }

    /// The idempotency store in the same database, sharing this pool.
    #[must_use]
    pub fn idempotency_store(&self) -> crate::PgIdempotencyStore {
        crate::PgIdempotencyStore {
            shared: Arc::clone(&self.shared),
        }
    }

    /// A connection from the pool that stores, claims and settles.
    async fn client(&self) -> Result<deadpool_postgres::Object, InboxError> {
        self.shared.connection(Which::Write).await
    }

    /// A connection from the read pool (`list`, `get`, `counts`).
    async fn reader(&self) -> Result<deadpool_postgres::Object, InboxError> {
        self.shared.connection(Which::Read).await
    }

    /// Acknowledges, requeues or buries a claim, if it is still the one
    /// held: the same worker and attempt, still `claimed`; the counts move
    /// from `claimed` to `state` in the same statement.
    async fn settle(
        &self,
        claimed: &Claimed,
        state: EntryState,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), InboxError> {
        let client = self.client().await?;
        let key = claimed.entry.key();
        let attempts = i32::try_from(claimed.entry.attempts).unwrap_or(i32::MAX);
        let stmt = client
            .prepare_cached(&format!(
                "WITH settled AS ( \
                   UPDATE events SET state = $1, ready_at = coalesce($2, ready_at) \
                   WHERE event_id = $4 AND webhook_id = $3 AND received_at = $7 \
                   AND state = 'claimed' AND attempts = $5 AND worker_id = $6 \
                   RETURNING webhook_id) \
                 INSERT INTO event_counts AS c (webhook_id, shard, pending, claimed, done, dead) \
                 SELECT webhook_id, {SHARD}, ($1 = 'pending')::int, -1, ($1 = 'done')::int, \
                        ($1 = 'dead')::int FROM settled \
                 ON CONFLICT (webhook_id, shard) DO UPDATE SET {ADD_COUNTS}"
            ))
            .await
            .map_err(storage)?;
        let changed = client
            .execute(
                &stmt,
                &[
                    &state.as_str(),
                    &retry_at.map(millis),
                    &key.webhook_id(),
                    &key.event_id(),
                    &attempts,
                    &claimed.worker_id,
                    &millis(claimed.entry.received_at),
                ],
            )
            .await
            .map_err(storage)?;
        if changed == 0 {
            return Err(lease_lost(&key, claimed.entry.attempts, &claimed.worker_id));
        }
        Ok(())
    }
}

/// The counter shard a statement updates: the backend's pid modulo 16.
/// A connection runs one transaction at a time, and a pool's connections
/// are started one after the other (consecutive pids), so concurrent
/// stores mostly update rows of their own instead of waiting for each
/// other's commit on one row.
pub(crate) const SHARD: &str = crate::batch::shard!();

/// Adds an `event_counts` row's `EXCLUDED` changes to the stored one (in
/// `ON CONFLICT … DO UPDATE`, the table aliased `c`).
pub(crate) const ADD_COUNTS: &str = "pending = c.pending + EXCLUDED.pending, \
     claimed = c.claimed + EXCLUDED.claimed, done = c.done + EXCLUDED.done, \
     dead = c.dead + EXCLUDED.dead, deliveries = c.deliveries + EXCLUDED.deliveries";

/// The entry columns of `events e` joined to `event_keys k`, in the order
/// [`entry`] reads them.
const ENTRY_COLUMNS: &str = "e.webhook_id, e.event_id, e.trigger_name, e.source_type, \
     e.source_id, e.delivery_id, e.received_at, coalesce(k.deliveries, 1), e.attempts, \
     e.state, e.kind";

/// `events e` with each event's key, for its delivery count.
const WITH_KEYS: &str =
    "events e LEFT JOIN event_keys k ON k.webhook_id = e.webhook_id AND k.event_id = e.event_id";

fn entry(row: &Row) -> Result<InboxEntry, InboxError> {
    EntryColumns {
        webhook_id: row.try_get(0).map_err(storage)?,
        event_id: row.try_get(1).map_err(storage)?,
        trigger: row.try_get(2).map_err(storage)?,
        source_type: row.try_get(3).map_err(storage)?,
        source_id: row.try_get(4).map_err(storage)?,
        delivery_id: row.try_get(5).map_err(storage)?,
        received_at_ms: row.try_get(6).map_err(storage)?,
        deliveries: row.try_get(7).map_err(storage)?,
        attempts: i64::from(row.try_get::<_, i32>(8).map_err(storage)?),
        state: row.try_get(9).map_err(storage)?,
        kind: row.try_get(10).map_err(storage)?,
    }
    .decode()
}

impl Inbox for PgInbox {
    /// Committed (and, with PostgreSQL's default `synchronous_commit =
    /// on`, flushed to its WAL) before it returns, in one statement with
    /// the stores running concurrently in this process (group commit; see
    /// the [crate docs](crate#group-commit)): it inserts the event's key in
    /// `event_keys` or counts one more delivery of it (concurrent stores of
    /// one event wait for each other's key, or share one row of the batch),
    /// inserts the event only when its key is new, and counts it. When the
    /// event's day has no partition yet (a clock far from the others', or
    /// no prune for a week), the store creates it and runs again.
    async fn store(&self, record: NewRecord) -> Result<Stored, InboxError> {
        crate::batch::store(&self.shared, record).await
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
            .await?;
        self.shared.notify_ready();
        Ok(())
    }

    /// On the read pool. Each combination of filters is its own statement,
    /// so that PostgreSQL plans each with the index it needs: `seq` (every
    /// event), `(trigger_name, seq)`, `(state, seq)`, walked from either
    /// end and merged across partitions; `since` skips the partitions of
    /// earlier days; `before` finds the event's `seq` through the primary
    /// key (which starts with `event_id`). The read pool plans each run
    /// with its values (`plan_cache_mode = force_custom_plan`): a rare
    /// trigger is looked up in its index, a common one walked in `seq`
    /// order.
    async fn list(&self, filter: ListFilter) -> Result<Vec<InboxEntry>, InboxError> {
        let client = self.reader().await?;
        let trigger = filter.trigger;
        let state = filter.state.map(EntryState::as_str);
        let since = filter.since.map(millis);
        let before = filter.before;
        let limit = filter
            .limit
            .map(|limit| i64::try_from(limit).unwrap_or(i64::MAX));
        let mut sql = format!("SELECT {ENTRY_COLUMNS} FROM {WITH_KEYS} WHERE true");
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::new();
        let mut condition = |sql: &mut String, param, text: &str| {
            params.push(param);
            sql.push_str(&text.replace('$', &format!("${}", params.len())));
        };
        if let Some(trigger) = &trigger {
            condition(&mut sql, trigger, " AND e.trigger_name = $");
        }
        if let Some(state) = state {
            // One of four words, written in: the plan knows how rare the
            // state is (dead events are few, done ones most).
            sql.push_str(" AND e.state = '");
            sql.push_str(state);
            sql.push('\'');
        }
        if let Some(since) = &since {
            condition(&mut sql, since, " AND e.received_at >= $");
        }
        if let Some(before) = &before {
            condition(
                &mut sql,
                before,
                " AND e.seq < (SELECT seq FROM events WHERE event_id = $ ORDER BY seq LIMIT 1)",
            );
        }
        sql.push_str(if filter.newest_first {
            " ORDER BY e.seq DESC"
        } else {
            " ORDER BY e.seq"
        });
        if let Some(limit) = &limit {
            condition(&mut sql, limit, " LIMIT $");
        }
        let stmt = client.prepare_cached(&sql).await.map_err(storage)?;
        let rows = client.query(&stmt, &params).await.map_err(storage)?;
        rows.iter().map(entry).collect()
    }

    /// On the read pool: the sums of the counter rows (one per webhook and
    /// shard, not per event), and the oldest pending `received_at` from the
    /// `(state, kind, received_at)` index of each partition.
    async fn counts(&self) -> Result<Counts, InboxError> {
        let client = self.reader().await?;
        let stmt = client.prepare_cached(COUNTS).await.map_err(storage)?;
        let row = client.query_one(&stmt, &[]).await.map_err(storage)?;
        let count = |index: usize, state: &str| -> Result<u64, InboxError> {
            let n: i64 = row.try_get(index).map_err(storage)?;
            u64::try_from(n).map_err(|_| {
                InboxError::new(
                    ErrorKind::Corrupt,
                    format!(
                        "the {state} events' counters add up to {n}: event_counts was changed \
                         by hand; see docs/FAILURE_MODES.md to recount"
                    ),
                )
            })
        };
        let oldest: Option<i64> = row.try_get(4).map_err(storage)?;
        Ok(Counts {
            pending: count(0, "pending")?,
            claimed: count(1, "claimed")?,
            done: count(2, "done")?,
            dead: count(3, "dead")?,
            oldest_pending: match oldest {
                None => None,
                Some(at) => Some(DateTime::from_timestamp_millis(at).ok_or_else(|| {
                    InboxError::new(
                        ErrorKind::Corrupt,
                        format!("received_at {at} ms is out of range"),
                    )
                })?),
            },
        })
    }

    /// On the read pool.
    async fn get(&self, event_id: &str) -> Result<Option<StoredEvent>, InboxError> {
        let client = self.reader().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {ENTRY_COLUMNS}, e.body FROM {WITH_KEYS} WHERE e.event_id = $1 \
                 ORDER BY e.seq LIMIT 1"
            ))
            .await
            .map_err(storage)?;
        let Some(row) = client
            .query_opt(&stmt, &[&event_id])
            .await
            .map_err(storage)?
        else {
            return Ok(None);
        };
        let body: Vec<u8> = row.try_get(11).map_err(storage)?;
        Ok(Some(StoredEvent {
            entry: entry(&row)?,
            body: Bytes::from(body),
        }))
    }

    /// Waits for a `NOTIFY` from a store or requeue in any process, or
    /// `timeout`. The `LISTEN` connection is opened on the first wait.
    async fn wait_for_work(&self, timeout: Duration) {
        self.shared.ensure_listening();
        let _ = tokio::time::timeout(timeout, self.shared.wake.notified()).await;
    }
}

impl boxhook::inbox::DeadLetters for PgInbox {
    async fn bury(&self, claimed: &Claimed) -> Result<(), InboxError> {
        self.settle(claimed, EntryState::Dead, None).await
    }

    async fn revive(&self, which: Revive, now: DateTime<Utc>) -> Result<u64, InboxError> {
        let client = self.client().await?;
        let (condition, event_id) = match which {
            Revive::AllDead => ("state = 'dead' AND $2::text IS NULL", None),
            Revive::Event(id) => ("event_id = $2 AND state IN ('dead', 'done')", Some(id)),
        };
        let stmt = client
            .prepare_cached(&format!(
                "WITH old AS ( \
                   SELECT event_id, webhook_id, received_at, state FROM events \
                   WHERE {condition} FOR UPDATE), \
                 revived AS ( \
                   UPDATE events e SET state = 'pending', attempts = 0, worker_id = NULL, \
                   ready_at = $1 FROM old WHERE e.event_id = old.event_id \
                   AND e.webhook_id = old.webhook_id AND e.received_at = old.received_at \
                   RETURNING e.webhook_id, old.state AS was), \
                 counted AS ( \
                   INSERT INTO event_counts AS c (webhook_id, shard, pending, done, dead) \
                   SELECT webhook_id, {SHARD}, count(*), -count(*) FILTER (WHERE was = 'done'), \
                          -count(*) FILTER (WHERE was = 'dead') \
                   FROM revived GROUP BY webhook_id ORDER BY webhook_id \
                   ON CONFLICT (webhook_id, shard) DO UPDATE SET {ADD_COUNTS}) \
                 SELECT count(*) FROM revived"
            ))
            .await
            .map_err(storage)?;
        let revived: i64 = client
            .query_one(&stmt, &[&millis(now), &event_id])
            .await
            .map_err(storage)?
            .try_get(0)
            .map_err(storage)?;
        if revived > 0 {
            self.shared.notify_ready();
        }
        Ok(u64::try_from(revived).unwrap_or(0))
    }
}

impl boxhook::inbox::FilteredClaims for PgInbox {
    /// `FOR UPDATE SKIP LOCKED`: concurrent workers each lock a different
    /// ready row, never wait for each other, and never take one row twice.
    /// A pending event claimed moves from `pending` to `claimed` in the
    /// counts, in the same statement.
    async fn claim_matching(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
        triggers: &[String],
    ) -> Result<Option<Claimed>, InboxError> {
        let client = self.client().await?;
        let lease_until = lease_end(now, lease);
        let stmt = client
            .prepare_cached(&format!(
                "WITH next AS ( \
                   SELECT event_id, webhook_id, received_at, state FROM events \
                   WHERE state IN ('pending', 'claimed') AND ready_at <= $3 \
                   AND (cardinality($4::text[]) = 0 OR trigger_name = ANY($4)) \
                   ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED), \
                 taken AS ( \
                   UPDATE events e SET state = 'claimed', attempts = e.attempts + 1, \
                   worker_id = $1, ready_at = $2 \
                   FROM next WHERE e.event_id = next.event_id \
                   AND e.webhook_id = next.webhook_id AND e.received_at = next.received_at \
                   RETURNING e.*, next.state AS was), \
                 counted AS ( \
                   INSERT INTO event_counts AS c (webhook_id, shard, pending, claimed) \
                   SELECT webhook_id, {SHARD}, -1, 1 FROM taken WHERE was = 'pending' \
                   ON CONFLICT (webhook_id, shard) DO UPDATE SET {ADD_COUNTS}) \
                 SELECT {ENTRY_COLUMNS}, e.body \
                 FROM taken e LEFT JOIN event_keys k \
                 ON k.webhook_id = e.webhook_id AND k.event_id = e.event_id"
            ))
            .await
            .map_err(storage)?;
        let row = client
            .query_opt(
                &stmt,
                &[&worker_id, &millis(lease_until), &millis(now), &triggers],
            )
            .await
            .map_err(storage)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let body: Vec<u8> = row.try_get(11).map_err(storage)?;
        Ok(Some(Claimed {
            entry: entry(&row)?,
            body: Bytes::from(body),
            worker_id: worker_id.to_owned(),
            lease_until,
        }))
    }
}

impl boxhook::inbox::Prune for PgInbox {
    /// Removes what `retention` no longer keeps: whole day partitions
    /// (detached concurrently, then dropped) where every event may go, at
    /// most `batch` events by `DELETE` elsewhere, then keys past
    /// `retention.keys`; one process at a time per schema (the others get
    /// nothing pruned at once). See "PostgreSQL at volume" in
    /// docs/ARCHITECTURE.md.
    async fn prune(
        &self,
        retention: &Retention,
        now: DateTime<Utc>,
        batch: usize,
    ) -> Result<Pruned, InboxError> {
        crate::prune::prune(&self.shared, retention, now, batch).await
    }
}

/// The counts: the counter rows' sums, and the oldest pending event's
/// `received_at` (the least of V2 events' and V1 callbacks', each the
/// first entry of `events_age` under `('pending', kind)` in each partition).
pub(crate) const COUNTS: &str = "SELECT coalesce(sum(pending), 0)::bigint, \
     coalesce(sum(claimed), 0)::bigint, coalesce(sum(done), 0)::bigint, \
     coalesce(sum(dead), 0)::bigint, \
     least((SELECT min(received_at) FROM events WHERE state = 'pending' AND kind = 'v2'), \
           (SELECT min(received_at) FROM events WHERE state = 'pending' AND kind = 'v1')) \
     FROM event_counts";

impl fmt::Debug for PgInbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.shared.pool.status();
        f.debug_struct("PgInbox")
            .field("pool_size", &status.max_size)
            .field("read_pool_size", &self.shared.read.status().max_size)
            .finish_non_exhaustive()
    }
}
