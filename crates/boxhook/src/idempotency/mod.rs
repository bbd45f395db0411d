//! Idempotency: each event is handled once, however often Box delivers it.
//!
//! Box retries a delivery until it gets a 2xx, with a new `BOX-DELIVERY-ID`
//! each time; the event's own `id` stays the same (see "Retries and deduplication" in
//! docs/PROTOCOL.md). The router
//! therefore keys its [`IdempotencyStore`] on [`EventKey`] — `webhook.id` plus
//! the event `id` — and follows a claim / complete / release protocol:
//!
//! | store answer to `claim` | router does | status |
//! |---|---|---|
//! | [`Claim::Acquired`] | runs the handler, then `complete` (success) or `release` (failure) | handler's |
//! | [`Claim::Done`] | acknowledges without running the handler | 200 |
//! | [`Claim::InProgress`] | another attempt holds the claim: asks Box to come back | 503 |
//!
//! A claim is a lease: if the process dies while holding one, the claim expires
//! and a later retry is processed, so a crash never wedges an event.
//!
//! [`MemoryStore`] is the default. Other stores (a database, Redis) plug in by
//! implementing [`IdempotencyStore`]; a durable one, in a database file, is
//! `boxhook_sqlite::SqliteIdempotencyStore`. Whatever the store, a second
//! concurrent claim of an event is [`Claim::InProgress`] until the first
//! holder completes or releases it, or its lease ends: the trait's
//! documentation lists every rule, and `boxhook_testkit::conformance`
//! checks them.
//!
//! An idempotency store is not an [inbox](crate::inbox): the store decides
//! whether a handler may run *now*, the inbox keeps events to process
//! *later*. [`Router::store_in`](crate::Router::store_in) deduplicates with
//! the inbox alone.

mod memory;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::handler::BoxFuture;

pub use memory::MemoryStore;

/// What an event is deduplicated on: the webhook's id and the event's id.
/// Never the delivery id, which changes on every retry.
///
/// ```
/// use boxhook::idempotency::EventKey;
///
/// let key = EventKey::new("4133", "a3b9ce1d-2df5-4a1b-b4a2-0b1e8f4c7c11");
/// assert_eq!(key.to_string(), "4133/a3b9ce1d-2df5-4a1b-b4a2-0b1e8f4c7c11");
///
/// // Both ids come from the sender: displayed, they are escaped
/// // (`boxhook::Printable`), so a key is safe to log as it is.
/// let forged = EventKey::new("4133", "e1\n2026-11-30T00:00:00Z  INFO forged");
/// assert_eq!(forged.to_string(), r"4133/e1\n2026-11-30T00:00:00Z  INFO forged");
/// assert_eq!(forged.event_id(), "e1\n2026-11-30T00:00:00Z  INFO forged"); // the raw id
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventKey {
    webhook_id: String,
    event_id: String,
}

impl EventKey {
    /// A key. An event without a `webhook.id` uses the empty string.
    #[must_use]
    pub fn new(webhook_id: impl Into<String>, event_id: impl Into<String>) -> Self {
        Self {
            webhook_id: webhook_id.into(),
            event_id: event_id.into(),
        }
    }

    /// `webhook.id`.
    #[must_use]
    pub fn webhook_id(&self) -> &str {
        &self.webhook_id
    }

    /// The event's `id`.
    #[must_use]
    pub fn event_id(&self) -> &str {
        &self.event_id
    }
}

/// `webhook_id/event_id`, each escaped with [`Printable`](crate::Printable):
/// for logs and messages. Store the parts, not this text.
impl fmt::Display for EventKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use boxhook_core::Printable;
        write!(
            f,
            "{}/{}",
            Printable(&self.webhook_id),
            Printable(&self.event_id)
        )
    }
}

/// A store's answer to a claim.
///
/// ```
/// use boxhook::idempotency::Claim;
/// assert_ne!(Claim::Acquired, Claim::Done);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The caller now holds the event until it completes, releases, or the
    /// lease runs out.
    Acquired,
    /// The event was handled already.
    Done,
    /// Another attempt holds an unexpired claim.
    InProgress,
}

/// Remembers which events were handled (see the [module docs](self)).
///
/// The contract, for every implementation (`now` comes from the caller's
/// clock, and every rule holds across processes sharing the store):
///
/// - **At most one holder.** `claim` is atomic: of any number of concurrent
///   claims of one key, exactly one gets [`Claim::Acquired`], and the others
///   get [`Claim::InProgress`] while that claim is held.
/// - **A claim is a lease.** It is held until `now + lease` (saturating: an
///   enormous lease never overflows), until `release`, or until `complete`;
///   a claim at or after the lease's end is [`Claim::Acquired`] again.
/// - **Done is final.** After `complete`, every claim answers
///   [`Claim::Done`], however much later (up to what the store documents
///   as its retention), and `release` does not undo it.
/// - **Keys are whole.** Keys differing in the webhook id or the event id
///   are independent.
/// - **Never a panic** for any `now` or `lease` (`Duration::ZERO`,
///   `Duration::MAX`, `DateTime::<Utc>::MAX_UTC`): failures are
///   [`StoreError`]s.
///
/// `boxhook_testkit::conformance::idempotency_store` checks these rules
/// against any implementation; run it in the store's tests.
///
/// ```
/// use std::time::Duration;
/// use boxhook::idempotency::{Claim, EventKey, IdempotencyStore, MemoryStore};
///
/// # tokio_test_block_on(async {
/// let store = MemoryStore::default();
/// let key = EventKey::new("4133", "evt-1");
/// let now = chrono::Utc::now();
/// assert_eq!(store.claim(&key, now, Duration::from_secs(30)).await?, Claim::Acquired);
/// assert_eq!(store.claim(&key, now, Duration::from_secs(30)).await?, Claim::InProgress);
/// store.complete(&key, now).await?;
/// assert_eq!(store.claim(&key, now, Duration::from_secs(30)).await?, Claim::Done);
/// # Ok::<(), boxhook::idempotency::StoreError>(())
/// # }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Claims `key` for `lease`, unless it is done or claimed by someone else.
    fn claim(
        &self,
        key: &EventKey,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Marks `key` handled; later claims answer [`Claim::Done`].
    fn complete(
        &self,
        key: &EventKey,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Gives up a claim after a failed attempt, so Box's retry is processed.
    fn release(&self, key: &EventKey) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// An [`IdempotencyStore`] behind a pointer: what the router holds.
pub(crate) trait ErasedStore: Send + Sync {
    fn claim<'a>(
        &'a self,
        key: &'a EventKey,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Claim, StoreError>>;
    fn complete<'a>(
        &'a self,
        key: &'a EventKey,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    fn release<'a>(&'a self, key: &'a EventKey) -> BoxFuture<'a, Result<(), StoreError>>;
}

impl<T: IdempotencyStore> ErasedStore for T {
    fn claim<'a>(
        &'a self,
        key: &'a EventKey,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        Box::pin(IdempotencyStore::claim(self, key, now, lease))
    }
    fn complete<'a>(
        &'a self,
        key: &'a EventKey,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(IdempotencyStore::complete(self, key, now))
    }
    fn release<'a>(&'a self, key: &'a EventKey) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(IdempotencyStore::release(self, key))
    }
}

/// A store could not answer. The router answers 503 so Box retries later.
///
/// ```
/// use boxhook::idempotency::StoreError;
/// let err = StoreError::new("connection pool exhausted");
/// assert_eq!(err.to_string(), "idempotency store failed: connection pool exhausted");
/// ```
#[derive(Debug)]
pub struct StoreError {
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl StoreError {
    /// Wraps the store's own error.
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            source: source.into(),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "idempotency store failed: {}", self.source)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// A shared store is a store: hand the router an `Arc` and keep a clone to
/// look into the store (from a test, a health check) or to share it between
/// routers.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use boxhook::idempotency::{Claim, EventKey, IdempotencyStore, MemoryStore};
/// use boxhook::Router;
///
/// let store = Arc::new(MemoryStore::default());
/// let router = Router::new().idempotency(Arc::clone(&store));
/// # let _ = router;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let key = EventKey::new("4133", "evt-1");
/// let now = boxhook::chrono::Utc::now();
/// assert_eq!(store.claim(&key, now, Duration::from_secs(30)).await?, Claim::Acquired);
/// # Ok::<(), boxhook::idempotency::StoreError>(())
/// # }).unwrap();
/// ```
impl<S: IdempotencyStore> IdempotencyStore for Arc<S> {
    fn claim(
        &self,
        key: &EventKey,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send {
        (**self).claim(key, now, lease)
    }

    fn complete(
        &self,
        key: &EventKey,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).complete(key, now)
    }

    fn release(&self, key: &EventKey) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).release(key)
    }
}
