//! [`PgInbox`]: the [`Inbox`] queries.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use boxhook::inbox::{
    Claimed, EntryState, ErrorKind, Inbox, InboxEntry, InboxError, ListFilter, NewRecord,
    RecordKind, Revive, Stored, StoredEvent,
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use crate::connect::{self, Shared};
use crate::options::Options;
use crate::{millis, plus, storage};

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

    /// A connection from the pool, waiting at most [`POOL_WAIT`] for one to
    /// be free (the pool's own timeouts otherwise).
    async fn client(&self) -> Result<deadpool_postgres::Object, InboxError> {
        use deadpool_postgres::{PoolError, TimeoutType};
        let timeouts = deadpool_postgres::Timeouts {
            wait: Some(POOL_WAIT),
            ..self.shared.pool.timeouts()
        };
        self.shared
            .pool
            .timeout_get(&timeouts)
            .await
            .map_err(|error| {
                let hint = match &error {
                    PoolError::Timeout(TimeoutType::Wait) => format!(
                        " (all {} connections busy for {} s: the database is slow, or the \
                         pool too small for the load)",
                        self.shared.pool.status().max_size,
                        POOL_WAIT.as_secs()
                    ),
                    PoolError::Timeout(TimeoutType::Create) | PoolError::Backend(_) => {
                        "; check that the database is up and reachable".to_owned()
                    }
                    _ => String::new(),
                };
                InboxError::new(
                    ErrorKind::Storage,
                    format!(
                        "no PostgreSQL connection: {}{hint}",
                        crate::describe(&error)
                    ),
                )
            })
    }

    /// Acknowledges, requeues or buries a claim, if it is still the one
    /// held: the same worker and attempt, still `claimed`.
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
            .prepare_cached(
                "UPDATE events SET state = $1, ready_at = coalesce($2, ready_at) \
                 WHERE webhook_id = $3 AND event_id = $4 AND state = 'claimed' \
                 AND attempts = $5 AND worker_id = $6",
            )
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
                ],
            )
            .await
            .map_err(storage)?;
        if changed == 0 {
            return Err(InboxError::new(
                ErrorKind::LeaseLost,
                format!(
                    "event {key} attempt {attempts} of {} is no longer claimed",
                    claimed.worker_id
                ),
            ));
        }
        Ok(())
    }
}

/// How long a store, claim or settle waits for a free connection when all
/// the pool's are busy: well under the 30 s Box waits for an answer, so a
/// receiver answers 503 (and Box retries) rather than nothing.
const POOL_WAIT: Duration = Duration::from_secs(5);

/// The entry columns, in the order [`entry`] reads them.
const ENTRY_COLUMNS: &str = "webhook_id, event_id, trigger_name, source_type, source_id, \
     delivery_id, received_at, deliveries, attempts, state, kind";

fn entry(row: &Row) -> Result<InboxEntry, InboxError> {
    let corrupt = |what: String| InboxError::new(ErrorKind::Corrupt, what);
    let received_at: i64 = row.try_get(6).map_err(storage)?;
    let deliveries: i64 = row.try_get(7).map_err(storage)?;
    let attempts: i32 = row.try_get(8).map_err(storage)?;
    let state: String = row.try_get(9).map_err(storage)?;
    let kind: String = row.try_get(10).map_err(storage)?;
    Ok(InboxEntry {
        webhook_id: row.try_get(0).map_err(storage)?,
        event_id: row.try_get(1).map_err(storage)?,
        trigger: row.try_get(2).map_err(storage)?,
        source_type: row.try_get(3).map_err(storage)?,
        source_id: row.try_get(4).map_err(storage)?,
        delivery_id: row.try_get(5).map_err(storage)?,
        received_at: DateTime::from_timestamp_millis(received_at)
            .ok_or_else(|| corrupt(format!("received_at {received_at} ms is out of range")))?,
        deliveries: u64::try_from(deliveries)
            .map_err(|_| corrupt(format!("deliveries is {deliveries}")))?,
        attempts: u32::try_from(attempts)
            .map_err(|_| corrupt(format!("attempts is {attempts}")))?,
        state: EntryState::parse(&state)
            .ok_or_else(|| corrupt(format!("unknown state {state:?}")))?,
        kind: RecordKind::parse(&kind).ok_or_else(|| corrupt(format!("unknown kind {kind:?}")))?,
    })
}

/// How `store` reports a row's delivery count.
fn stored(deliveries: i64) -> Stored {
    if deliveries <= 1 {
        Stored::New
    } else {
        Stored::Duplicate {
            deliveries: u64::try_from(deliveries).unwrap_or(u64::MAX),
        }
    }
}

impl Inbox for PgInbox {
    /// One `INSERT … ON CONFLICT DO UPDATE`, committed (and, with
    /// PostgreSQL's default `synchronous_commit = on`, flushed to its WAL)
    /// before it returns. The unique key makes concurrent stores of one
    /// event insert once: the others wait for that row and count it.
    async fn store(&self, record: NewRecord) -> Result<Stored, InboxError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO events (webhook_id, event_id, trigger_name, source_type, \
                 source_id, delivery_id, received_at, body, kind) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (webhook_id, event_id) \
                 DO UPDATE SET deliveries = events.deliveries + 1 \
                 RETURNING deliveries",
            )
            .await
            .map_err(storage)?;
        let row = client
            .query_one(
                &stmt,
                &[
                    &record.webhook_id,
                    &record.event_id,
                    &record.trigger,
                    &record.source_type,
                    &record.source_id,
                    &record.delivery_id,
                    &millis(record.received_at),
                    &&record.body[..],
                    &record.kind.as_str(),
                ],
            )
            .await
            .map_err(storage)?;
        let stored = stored(row.try_get(0).map_err(storage)?);
        if stored == Stored::New {
            self.shared.notify_ready();
        }
        Ok(stored)
    }

    async fn claim_next(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Claimed>, InboxError> {
        self.claim_matching(worker_id, lease, now, &[]).await
    }

    /// `FOR UPDATE SKIP LOCKED`: concurrent workers each lock a different
    /// ready row, never wait for each other, and never take one row twice.
    async fn claim_matching(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
        triggers: &[String],
    ) -> Result<Option<Claimed>, InboxError> {
        let client = self.client().await?;
        let lease_until = plus(now, lease);
        let sql = format!(
            "UPDATE events e SET state = 'claimed', attempts = e.attempts + 1, \
             worker_id = $1, ready_at = $2 \
             FROM (SELECT seq FROM events \
                   WHERE state IN ('pending', 'claimed') AND ready_at <= $3 \
                   AND (cardinality($4::text[]) = 0 OR trigger_name = ANY($4)) \
                   ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED) next \
             WHERE e.seq = next.seq \
             RETURNING {}, e.body",
            ENTRY_COLUMNS
                .split(", ")
                .map(|column| format!("e.{column}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let stmt = client.prepare_cached(&sql).await.map_err(storage)?;
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

    async fn ack(&self, claimed: &Claimed) -> Result<(), InboxError> {
        self.settle(claimed, EntryState::Done, None).await
    }

    async fn requeue(&self, claimed: &Claimed, retry_at: DateTime<Utc>) -> Result<(), InboxError> {
        self.settle(claimed, EntryState::Pending, Some(retry_at))
            .await?;
        self.shared.notify_ready();
        Ok(())
    }

    async fn bury(&self, claimed: &Claimed) -> Result<(), InboxError> {
        self.settle(claimed, EntryState::Dead, None).await
    }

    async fn revive(&self, which: Revive, now: DateTime<Utc>) -> Result<u64, InboxError> {
        let client = self.client().await?;
        let (condition, event_id) = match which {
            Revive::AllDead => ("state = 'dead' AND $2::text IS NULL", None),
            Revive::Event(id) => ("event_id = $2 AND state IN ('dead', 'done')", Some(id)),
        };
        let sql = format!(
            "UPDATE events SET state = 'pending', attempts = 0, worker_id = NULL, \
             ready_at = $1 WHERE {condition}"
        );
        let stmt = client.prepare_cached(&sql).await.map_err(storage)?;
        let revived = client
            .execute(&stmt, &[&millis(now), &event_id])
            .await
            .map_err(storage)?;
        if revived > 0 {
            self.shared.notify_ready();
        }
        Ok(revived)
    }

    async fn list(&self, filter: ListFilter) -> Result<Vec<InboxEntry>, InboxError> {
        let client = self.client().await?;
        let limit = filter
            .limit
            .map(|limit| i64::try_from(limit).unwrap_or(i64::MAX));
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {ENTRY_COLUMNS} FROM events \
                 WHERE ($1::text IS NULL OR trigger_name = $1) \
                 AND ($2::text IS NULL OR state = $2) \
                 ORDER BY seq LIMIT $3"
            ))
            .await
            .map_err(storage)?;
        let rows = client
            .query(
                &stmt,
                &[
                    &filter.trigger,
                    &filter.state.map(EntryState::as_str),
                    &limit,
                ],
            )
            .await
            .map_err(storage)?;
        rows.iter().map(entry).collect()
    }

    // ISSUE-22-PLACEHOLDER: replaced by the counters of issue 22 before it lands.
    async fn counts(&self) -> Result<boxhook::inbox::Counts, InboxError> {
        Err(InboxError::new(
            ErrorKind::Unsupported,
            "counts are not implemented yet",
        ))
    }

    async fn get(&self, event_id: &str) -> Result<Option<StoredEvent>, InboxError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {ENTRY_COLUMNS}, body FROM events WHERE event_id = $1 \
                 ORDER BY seq LIMIT 1"
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

impl fmt::Debug for PgInbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.shared.pool.status();
        f.debug_struct("PgInbox")
            .field("pool_size", &status.max_size)
            .finish_non_exhaustive()
    }
}
