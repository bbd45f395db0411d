//! The router's duplicate check, answered from the inbox table.

use std::time::Duration;

use boxhook::idempotency::{Claim, EventKey, IdempotencyStore, StoreError};
use chrono::{DateTime, Utc};
use rusqlite::params;

use crate::{storage, SqliteInbox};

/// Answers the router's duplicate check from the inbox, so that a delivery
/// of an event stored before is acknowledged without storing it again, and
/// counted.
///
/// - `claim`: an event already in the inbox is [`Claim::Done`], and its
///   `deliveries` count goes up (in the same committed statement); any other
///   event is [`Claim::Acquired`]. No lease is needed: `store` is an atomic
///   upsert, so two concurrent first deliveries store the event once and
///   count two deliveries.
/// - `complete` and `release` do nothing: the event is durable once
///   [`StoreInInbox`](boxhook::inbox::StoreInInbox) returned, and nothing
///   was stored when it failed.
///
/// Use it as the router's store only when every event goes to
/// `StoreInInbox` (as the fallback, with no other handlers): an event
/// handled by another handler is never stored, so never deduplicated.
///
/// ```
/// use std::time::Duration;
/// use boxhook::idempotency::{Claim, EventKey, IdempotencyStore};
/// use boxhook::inbox::{Inbox, ListFilter, NewRecord};
/// use boxhook_sqlite::SqliteInbox;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let inbox = SqliteInbox::in_memory()?;
/// let now = chrono::Utc::now();
/// let key = EventKey::new("4133", "e-1");
/// let lease = Duration::from_secs(30);
/// // Both traits have a `claim`: name the one meant when both are in scope.
/// assert_eq!(IdempotencyStore::claim(&inbox, &key, now, lease).await?, Claim::Acquired);
/// let body = &br#"{"id":"e-1","trigger":"FILE.UPLOADED","webhook":{"id":"4133"}}"#[..];
/// inbox.store(NewRecord::parse(body, Some("d-1"), now)?).await?;
/// assert_eq!(IdempotencyStore::claim(&inbox, &key, now, lease).await?, Claim::Done); // a retry: counted
/// assert_eq!(inbox.list(ListFilter::new()).await?[0].deliveries, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
impl IdempotencyStore for SqliteInbox {
    async fn claim(
        &self,
        key: &EventKey,
        _now: DateTime<Utc>,
        _lease: Duration,
    ) -> Result<Claim, StoreError> {
        self.writable("count a delivery").map_err(StoreError::new)?;
        let key = key.clone();
        self.call(move |conn| {
            // `execute` steps the UPDATE to its end, autocommit included,
            // and returns that step's error: a count that did not reach the
            // disk is an error, not a `Claim::Done`.
            let counted = conn
                .prepare_cached(
                    "UPDATE events SET deliveries = deliveries + 1 \
                     WHERE webhook_id = ?1 AND event_id = ?2",
                )
                .and_then(|mut stmt| stmt.execute(params![key.webhook_id(), key.event_id()]))
                .map_err(storage)?;
            Ok(if counted == 0 {
                Claim::Acquired
            } else {
                Claim::Done
            })
        })
        .await
        .map_err(StoreError::new)
    }

    async fn complete(&self, _key: &EventKey, _now: DateTime<Utc>) -> Result<(), StoreError> {
        Ok(())
    }

    async fn release(&self, _key: &EventKey) -> Result<(), StoreError> {
        Ok(())
    }
}
