//! [`PgIdempotencyStore`]: claims in the `claims` table.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use boxhook::idempotency::{Claim, EventKey, IdempotencyStore, StoreError};
use boxhook::inbox::backend::{lease_end, millis};
use chrono::{DateTime, Utc};

use crate::connect::{self, Shared};
use crate::options::Options;

/// A durable [`IdempotencyStore`] in PostgreSQL: a claim held by one
/// process is `InProgress` for every other until it is completed,
/// released, or its lease ends.
///
/// ```no_run
/// use std::time::Duration;
/// use boxhook::idempotency::{Claim, EventKey, IdempotencyStore};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = boxhook_postgres::PgIdempotencyStore::connect("postgres://boxhook@db/boxhook").await?;
/// let key = EventKey::new("4133", "e-1");
/// assert_eq!(store.claim(&key, chrono::Utc::now(), Duration::from_secs(30)).await?, Claim::Acquired);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PgIdempotencyStore {
    pub(crate) shared: Arc<Shared>,
}

impl PgIdempotencyStore {
    /// Connects to `url` with the default [`Options`] (see
    /// [`PgInbox::connect`](crate::PgInbox::connect)).
    ///
    /// # Errors
    ///
    /// As [`PgInbox::connect`](crate::PgInbox::connect).
    pub async fn connect(url: &str) -> Result<Self, boxhook::inbox::InboxError> {
        Self::connect_with(url, &Options::default()).await
    }

    /// [`connect`](Self::connect) with `options`.
    ///
    /// # Errors
    ///
    /// As [`PgInbox::connect_with`](crate::PgInbox::connect_with).
    pub async fn connect_with(
        url: &str,
        options: &Options,
    ) -> Result<Self, boxhook::inbox::InboxError> {
        Ok(Self {
            shared: connect::connect(url, options).await?,
        })
    }

    /// Forgets what was settled before `before`: keys completed before it
    /// (a later delivery of one is handled again) and claims whose lease
    /// ended before it. Claims still held are kept. Returns how many keys
    /// were forgotten. Call it now and then with, say, a day ago: Box stops
    /// retrying an event within hours.
    ///
    /// Deletes in batches of [`FORGET_BATCH`] keys, each its own
    /// transaction, so that no claim of a live key waits long behind it.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use boxhook::idempotency::{Claim, EventKey, IdempotencyStore};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = boxhook_postgres::PgIdempotencyStore::connect("postgres://boxhook@db/boxhook").await?;
    /// let (key, now) = (EventKey::new("4133", "e-1"), chrono::Utc::now());
    /// store.claim(&key, now, Duration::from_secs(30)).await?;
    /// store.complete(&key, now).await?;
    /// assert_eq!(store.forget_before(now).await?, 0); // completed at `now`, not before
    /// assert_eq!(store.forget_before(now + chrono::TimeDelta::days(1)).await?, 1);
    /// assert_eq!(store.claim(&key, now, Duration::from_secs(30)).await?, Claim::Acquired);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// When the database cannot be reached or refuses the change: the
    /// store's error (what was forgotten before it stays forgotten).
    pub async fn forget_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let before = millis(before);
        let limit = i64::from(FORGET_BATCH);
        let mut forgotten = 0_u64;
        loop {
            // A held claim's lease ends after it was changed, so both kinds
            // of forgettable rows were changed before `before`: the
            // `changed_at` index finds them.
            let rows = self
                .execute(
                    "WITH gone AS ( \
                       DELETE FROM claims WHERE (webhook_id, event_id) IN ( \
                         SELECT webhook_id, event_id FROM claims \
                         WHERE changed_at < $1 \
                         AND (state = 'done' OR (state = 'claimed' AND lease_until < $1)) \
                         LIMIT $2 FOR UPDATE SKIP LOCKED) \
                       RETURNING 1) \
                     SELECT count(*) FROM gone",
                    &[&before, &limit],
                )
                .await?;
            let n: i64 = rows
                .first()
                .map(|row| row.try_get(0))
                .transpose()
                .map_err(StoreError::new)?
                .unwrap_or(0);
            forgotten = forgotten.saturating_add(u64::try_from(n).unwrap_or(0));
            if n < limit {
                return Ok(forgotten);
            }
        }
    }

    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let client = self.shared.pool.get().await.map_err(StoreError::new)?;
        let stmt = client.prepare_cached(sql).await.map_err(StoreError::new)?;
        client.query(&stmt, params).await.map_err(StoreError::new)
    }
}

/// How many idempotency keys [`PgIdempotencyStore::forget_before`] deletes
/// per transaction.
///
/// ```
/// assert_eq!(boxhook_postgres::FORGET_BATCH, 1000);
/// ```
pub const FORGET_BATCH: u32 = 1000;

impl IdempotencyStore for PgIdempotencyStore {
    /// One statement: insert the claim, or take over one whose lease ended;
    /// the primary key makes one of concurrent claims win, and the others
    /// wait for it and see it held.
    async fn claim(
        &self,
        key: &EventKey,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let rows = self
            .execute(
                "WITH taken AS ( \
                   INSERT INTO claims (webhook_id, event_id, state, lease_until, changed_at) \
                   VALUES ($1, $2, 'claimed', $3, $4) \
                   ON CONFLICT (webhook_id, event_id) DO UPDATE \
                   SET state = 'claimed', lease_until = EXCLUDED.lease_until, \
                       changed_at = EXCLUDED.changed_at \
                   WHERE claims.state = 'claimed' AND claims.lease_until <= EXCLUDED.changed_at \
                   RETURNING 'acquired'::text AS outcome) \
                 SELECT outcome FROM taken \
                 UNION ALL \
                 SELECT state FROM claims WHERE webhook_id = $1 AND event_id = $2 \
                   AND NOT EXISTS (SELECT 1 FROM taken)",
                &[
                    &key.webhook_id(),
                    &key.event_id(),
                    &millis(lease_end(now, lease)),
                    &millis(now),
                ],
            )
            .await?;
        // No row: the conflicting claim was committed after this statement's
        // snapshot, by a concurrent first claim: it is held.
        let outcome: Option<String> = match rows.first() {
            Some(row) => Some(row.try_get(0).map_err(StoreError::new)?),
            None => None,
        };
        Ok(match outcome.as_deref() {
            Some("acquired") => Claim::Acquired,
            Some("done") => Claim::Done,
            _ => Claim::InProgress,
        })
    }

    async fn complete(&self, key: &EventKey, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO claims (webhook_id, event_id, state, lease_until, changed_at) \
             VALUES ($1, $2, 'done', $3, $3) \
             ON CONFLICT (webhook_id, event_id) DO UPDATE SET state = 'done', changed_at = $3",
            &[&key.webhook_id(), &key.event_id(), &millis(now)],
        )
        .await
        .map(drop)
    }

    async fn release(&self, key: &EventKey) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM claims WHERE webhook_id = $1 AND event_id = $2 AND state = 'claimed'",
            &[&key.webhook_id(), &key.event_id()],
        )
        .await
        .map(drop)
    }
}

impl fmt::Debug for PgIdempotencyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgIdempotencyStore").finish_non_exhaustive()
    }
}
