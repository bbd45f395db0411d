//! [`SqliteIdempotencyStore`]: the router's idempotency store, durable, in
//! the inbox's SQLite file.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use boxhook::idempotency::{Claim, EventKey, IdempotencyStore, StoreError};
use boxhook::inbox::backend::{lease_end, millis};
use boxhook::inbox::{ErrorKind, InboxError};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, TransactionBehavior};

use crate::db::Db;
use crate::inbox::at_most_one_row;
use crate::{open, storage, SqliteInbox};

/// A durable [`IdempotencyStore`] in SQLite: the router's claims survive a
/// restart, and processes sharing the file share them.
///
/// It lives in the `claims` table of a boxhook SQLite file (schema version
/// 2): the inbox's own file ([`SqliteInbox::idempotency_store`], sharing
/// its connection thread) or a file of its own
/// ([`open`](Self::open), which creates the same schema). It is a separate
/// table from the inbox's `events`: a claim is not a stored event, and
/// storing an event does not claim it.
///
/// Every rule of the trait holds across processes: each `claim` is one
/// `INSERT … ON CONFLICT DO UPDATE … WHERE` (taken only when there is no
/// row, or a claim whose lease ended by `now`) in an immediate transaction
/// whose COMMIT error is returned, so of concurrent first claims exactly one
/// is [`Claim::Acquired`] and a claim that did not reach the disk is an
/// error, never `Acquired`. `release` deletes a held claim; `complete` makes
/// the key `done` for good (see [`forget_before`](Self::forget_before) to
/// bound the table).
///
/// ```
/// use std::time::Duration;
/// use boxhook::idempotency::{Claim, EventKey, IdempotencyStore};
/// use boxhook_sqlite::SqliteIdempotencyStore;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = SqliteIdempotencyStore::in_memory()?;
/// let key = EventKey::new("4133", "e-1");
/// let now = chrono::Utc::now();
/// let lease = Duration::from_secs(30);
/// assert_eq!(store.claim(&key, now, lease).await?, Claim::Acquired);
/// assert_eq!(store.claim(&key, now, lease).await?, Claim::InProgress); // held
/// store.release(&key).await?; // the handler failed
/// assert_eq!(store.claim(&key, now, lease).await?, Claim::Acquired);
/// store.complete(&key, now).await?;
/// assert_eq!(store.claim(&key, now, lease).await?, Claim::Done);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
///
/// With a router that stores some events and handles others at once:
///
/// ```no_run
/// use boxhook::{DeliveryContext, HandlerError, Router, Trigger, WebhookEvent};
/// use boxhook_sqlite::SqliteInbox;
///
/// # fn run() -> Result<(), boxhook::inbox::InboxError> {
/// let inbox = SqliteInbox::open("boxhook-inbox.sqlite")?;
/// let router = Router::new()
///     // handled now, at most once at a time, never again once done:
///     .idempotency(inbox.idempotency_store())
///     .on(Trigger::FileDeleted, |_e: WebhookEvent, _c: DeliveryContext| async {
///         Ok::<_, HandlerError>(())
///     })
///     // everything else: stored, deduplicated by the inbox itself
///     .store_in(inbox);
/// # let _ = router; Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqliteIdempotencyStore {
    /// The database: its own, or an inbox's (the same handle).
    db: Db,
}

impl SqliteIdempotencyStore {
    /// Opens (creating and migrating as needed) the boxhook SQLite file at
    /// `path` and uses its `claims` table. The inbox's file is fine; so is
    /// a file of its own. The same checks as [`SqliteInbox::open`] apply
    /// (WAL, `synchronous = FULL`, a write probe that refuses a read-only
    /// file).
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("boxhook-doc-idem-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let store = boxhook_sqlite::SqliteIdempotencyStore::open(dir.join("claims.sqlite"))?;
    /// assert_eq!(store.path(), Some(dir.join("claims.sqlite").as_path()));
    /// # drop(store); let _ = std::fs::remove_dir_all(&dir);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`SqliteInbox::open`]: [`ErrorKind::Storage`] when the file cannot
    /// be created, opened, written or set up, [`ErrorKind::Corrupt`] when
    /// its schema is newer than this build.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, InboxError> {
        open::file(path.as_ref()).map(|db| Self { db })
    }

    /// A private in-memory store, for tests: nothing survives the last
    /// clone.
    ///
    /// ```
    /// let store = boxhook_sqlite::SqliteIdempotencyStore::in_memory()?;
    /// assert_eq!(store.path(), None);
    /// # Ok::<(), boxhook::inbox::InboxError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Storage`] when SQLite cannot set it up.
    pub fn in_memory() -> Result<Self, InboxError> {
        open::memory().map(|db| Self { db })
    }

    /// The file the claims are in; `None` in memory.
    ///
    /// ```
    /// let inbox = boxhook_sqlite::SqliteInbox::in_memory()?;
    /// assert_eq!(inbox.idempotency_store().path(), None);
    /// # Ok::<(), boxhook::inbox::InboxError>(())
    /// ```
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.db.path()
    }

    /// Forgets what was settled before `before`: keys completed strictly
    /// before it (a later delivery of one is handled again) and claims
    /// whose lease ended strictly before it (abandoned by a process that
    /// died). Claims still held, and keys completed at or after `before`,
    /// are kept. Returns exactly how many rows were removed.
    ///
    /// This is what the pruner calls (`boxhook serve` and `work` on their
    /// retention schedule), with `now - retention.keys` (at least a day;
    /// 7 days by default): the router's deduplication of the events it
    /// handles at once outlives them as long as the inbox's keys of pruned
    /// events do, far past Box's retry window of a few hours.
    ///
    /// It removes at most [`FORGET_BATCH`](Self::FORGET_BATCH) rows per
    /// transaction, each a job of its own on the connection thread, so
    /// deliveries stored or claimed meanwhile wait for one batch at most,
    /// never for the whole table. Both kinds are found through the
    /// `changed_at` index: a claim's `changed_at` is when it was taken,
    /// never after its lease's end.
    ///
    /// ```
    /// use std::time::Duration;
    /// use boxhook::idempotency::{Claim, EventKey, IdempotencyStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = boxhook_sqlite::SqliteIdempotencyStore::in_memory()?;
    /// let (key, now) = (EventKey::new("4133", "e-1"), chrono::Utc::now());
    /// store.claim(&key, now, Duration::from_secs(30)).await?;
    /// store.complete(&key, now).await?;
    /// assert_eq!(store.forget_before(now).await?, 0); // completed at `now`, not before
    /// assert_eq!(store.forget_before(now + chrono::TimeDelta::days(1)).await?, 1);
    /// assert_eq!(store.claim(&key, now, Duration::from_secs(30)).await?, Claim::Acquired);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// When the file cannot be written: the store's error. The batches
    /// committed before it stay forgotten.
    pub async fn forget_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let before = millis(before);
        let batch = i64::try_from(Self::FORGET_BATCH).unwrap_or(i64::MAX);
        let mut forgotten: u64 = 0;
        loop {
            let removed = self
                .write("forget claims", move |conn| {
                    let tx = conn
                        .transaction_with_behavior(TransactionBehavior::Immediate)
                        .map_err(storage)?;
                    // `execute` steps the DELETE to its end; the COMMIT's
                    // error is returned below.
                    let removed = tx
                        .prepare_cached(
                            "DELETE FROM claims WHERE (webhook_id, event_id) IN \
                             (SELECT webhook_id, event_id FROM claims \
                              WHERE changed_at < ?1 AND (state = 'done' OR lease_until < ?1) \
                              ORDER BY changed_at LIMIT ?2)",
                        )
                        .and_then(|mut stmt| stmt.execute(params![before, batch]))
                        .map_err(storage)?;
                    tx.commit().map_err(storage)?;
                    Ok(removed)
                })
                .await?;
            forgotten = forgotten.saturating_add(u64::try_from(removed).unwrap_or(u64::MAX));
            if removed < Self::FORGET_BATCH {
                return Ok(forgotten);
            }
        }
    }

    /// Most claims [`forget_before`](Self::forget_before) removes in one
    /// transaction.
    ///
    /// ```
    /// assert_eq!(boxhook_sqlite::SqliteIdempotencyStore::FORGET_BATCH, 1000);
    /// ```
    pub const FORGET_BATCH: usize = 1000;

    /// Runs a write on the connection thread, then checks that the file is
    /// still the one opened (as a `store` does).
    async fn write<R, F>(&self, what: &str, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<R, InboxError> + Send + 'static,
        R: Send + 'static,
    {
        self.db.writable(what).map_err(StoreError::new)?;
        let identity = self.db.identity();
        self.db
            .call(move |conn| {
                let out = f(conn)?;
                if let Some(identity) = &identity {
                    identity.check()?;
                }
                Ok(out)
            })
            .await
            .map_err(StoreError::new)
    }
}

impl SqliteInbox {
    /// An [`IdempotencyStore`] in this inbox's file, on its connection
    /// thread: the `claims` table, next to the stored events (see
    /// [`SqliteIdempotencyStore`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use boxhook::idempotency::{Claim, EventKey, IdempotencyStore};
    /// use boxhook_sqlite::SqliteInbox;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let inbox = SqliteInbox::in_memory()?;
    /// let store = inbox.idempotency_store();
    /// let key = EventKey::new("4133", "e-1");
    /// assert_eq!(store.claim(&key, chrono::Utc::now(), Duration::from_secs(30)).await?, Claim::Acquired);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    #[must_use]
    pub fn idempotency_store(&self) -> SqliteIdempotencyStore {
        SqliteIdempotencyStore {
            db: self.db.clone(),
        }
    }
}

impl IdempotencyStore for SqliteIdempotencyStore {
    async fn claim(
        &self,
        key: &EventKey,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let key = key.clone();
        let until = millis(lease_end(now, lease));
        let now = millis(now);
        self.write("claim an event", move |conn| {
            // One statement decides: it inserts the claim, or takes over a
            // claim whose lease ended, and returns a row only then. The
            // immediate transaction holds the write lock from its start, so
            // the follow-up read sees what the upsert saw; the COMMIT's
            // error is returned, so a claim that did not reach the disk is
            // never `Acquired`.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let acquired = {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO claims (webhook_id, event_id, state, lease_until, changed_at) \
                         VALUES (?1, ?2, 'claimed', ?3, ?4) \
                         ON CONFLICT (webhook_id, event_id) DO UPDATE \
                         SET lease_until = excluded.lease_until, changed_at = excluded.changed_at \
                         WHERE claims.state = 'claimed' AND claims.lease_until <= ?4 \
                         RETURNING 1",
                    )
                    .map_err(storage)?;
                at_most_one_row(
                    &mut stmt,
                    params![key.webhook_id(), key.event_id(), until, now],
                    |_| Ok(()),
                )
                .map_err(storage)?
                .is_some()
            };
            let claim = if acquired {
                Claim::Acquired
            } else {
                let state: String = tx
                    .prepare_cached(
                        "SELECT state FROM claims WHERE webhook_id = ?1 AND event_id = ?2",
                    )
                    .and_then(|mut stmt| {
                        at_most_one_row(
                            &mut stmt,
                            params![key.webhook_id(), key.event_id()],
                            |row| row.get(0),
                        )
                    })
                    .map_err(storage)?
                    .ok_or_else(|| {
                        InboxError::new(ErrorKind::Storage, "a claim that was not taken is missing")
                    })?;
                match state.as_str() {
                    "done" => Claim::Done,
                    "claimed" => Claim::InProgress,
                    other => {
                        return Err(InboxError::new(
                            ErrorKind::Corrupt,
                            format!("unknown claim state {other:?}"),
                        ))
                    }
                }
            };
            tx.commit().map_err(storage)?;
            Ok(claim)
        })
        .await
    }

    async fn complete(&self, key: &EventKey, now: DateTime<Utc>) -> Result<(), StoreError> {
        let key = key.clone();
        let now = millis(now);
        self.write("complete an event", move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            // Done is final: completing again keeps the first completion.
            tx.prepare_cached(
                "INSERT INTO claims (webhook_id, event_id, state, lease_until, changed_at) \
                 VALUES (?1, ?2, 'done', ?3, ?3) \
                 ON CONFLICT (webhook_id, event_id) DO UPDATE \
                 SET state = 'done', lease_until = excluded.lease_until, \
                     changed_at = excluded.changed_at \
                 WHERE claims.state <> 'done'",
            )
            .and_then(|mut stmt| stmt.execute(params![key.webhook_id(), key.event_id(), now]))
            .map_err(storage)?;
            tx.commit().map_err(storage)
        })
        .await
    }

    async fn release(&self, key: &EventKey) -> Result<(), StoreError> {
        let key = key.clone();
        self.write("release an event", move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            tx.prepare_cached(
                "DELETE FROM claims WHERE webhook_id = ?1 AND event_id = ?2 AND state = 'claimed'",
            )
            .and_then(|mut stmt| stmt.execute(params![key.webhook_id(), key.event_id()]))
            .map_err(storage)?;
            tx.commit().map_err(storage)
        })
        .await
    }
}

impl fmt::Debug for SqliteIdempotencyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteIdempotencyStore")
            .field("path", &self.db.path())
            .finish_non_exhaustive()
    }
}
