//! The durable inbox: store now, process later.
//!
//! A receiver whose handlers are slow should not make Box wait (it gives up
//! after 30 s; see "Retries and deduplication" in docs/PROTOCOL.md). With an inbox, the receiver
//! only *stores* each
//! accepted event, durably, before answering 2xx; workers then claim events,
//! process them and acknowledge them, at their own pace.
//!
//! - [`Inbox`]: the storage trait. Backends: the SQLite inbox is the
//!   `boxhook-sqlite` crate (`boxhook_sqlite::SqliteInbox`), kept out of
//!   this crate so the framework does not pull in SQLite.
//! - [`Router::store_in`](crate::Router::store_in): the router stores every
//!   event no other handler takes, and answers Box from the inbox's own
//!   answer ([`Stored::New`] is `handled`, [`Stored::Duplicate`] is
//!   `duplicate`).
//! - [`StoreInInbox`]: the same storing as a [`Handler`](crate::Handler), for
//!   one trigger or family; prefer `store_in` for "store everything".
//! - [`Worker`]: the loop that takes the next event
//!   ([`claim_next`](Inbox::claim_next)), runs an [`InboxHandler`], and
//!   acknowledges it ([`ack`](Inbox::ack)) or puts it back for a retry
//!   ([`requeue`](Inbox::requeue)) after a [`Backoff`]; after its
//!   `max_attempts` an event is `dead` ([`bury`](DeadLetters::bury)) until
//!   an operator requeues it ([`revive`](DeadLetters::revive)).
//!
//! # What an inbox must do, and what it may
//!
//! [`Inbox`] is what every inbox implements, and all that
//! [`Router::store_in`](crate::Router::store_in), [`StoreInInbox`] and a
//! default [`Worker`] need: `store`, `claim_next`, `ack`, `requeue`, `list`,
//! `get`, `counts` (and `wait_for_work`, which polls unless the inbox can be
//! woken). Four more capabilities are traits of their own, so a type says
//! what it can do by what it implements, and a call it cannot answer does
//! not compile, rather than failing at run time:
//!
//! | trait | methods | needed for |
//! |---|---|---|
//! | [`DeadLetters`] | `bury`, `revive` | [`Worker::max_attempts`] and [`Worker::dead_letters`] (events that fail too often, or can never be processed, are `dead`); requeueing dead or done events (`boxhook inbox requeue`) |
//! | [`FilteredClaims`] | `claim_matching` | [`Worker::triggers`] (a worker that takes some triggers only) |
//! | [`Prune`] | `prune` | removing old events and keys (`boxhook inbox prune`, and the background pruner of `boxhook serve` and `boxhook work`) |
//! | [`BatchClaims`] | `claim_batch`, `settle_batch` | [`Worker::batch`] (many events claimed per round trip, their settles written together) |
//!
//! The SQLite and PostgreSQL inboxes implement all five, and so does an
//! `Arc` of any of them. `boxhook_testkit::conformance` checks the rules of
//! each trait an inbox implements.
//!
//! # An inbox is not an idempotency store
//!
//! The two traits answer different questions, and their methods have
//! different names, so a type may implement both without any call needing
//! a trait name:
//!
//! | | [`IdempotencyStore`](crate::idempotency::IdempotencyStore) | [`Inbox`] |
//! |---|---|---|
//! | guarantees | at most one handler run at a time per event, and none after it completed | every accepted event stored durably once, then processed until acknowledged |
//! | receiving side | `claim` / `complete` / `release` around the handler | `store` (the unique key is the deduplication) |
//! | processing side | — | `claim_next` / `ack` / `requeue` |
//!
//! [`Router::store_in`](crate::Router::store_in) needs only the inbox; the
//! router's idempotency store keeps deduplicating the events other handlers
//! take.
//!
//! # Guarantees
//!
//! - An event is stored once per `webhook.id` + event `id`; every further
//!   delivery of it only increments its `deliveries` count.
//! - `store` returns only once the event is durable, so a 2xx always means
//!   "in the inbox".
//! - Processing is at least once: a claim that is neither acknowledged nor
//!   requeued before its lease ends returns to the queue. Make processing
//!   idempotent, or check the attempt count.
//!
//! # Wiring
//!
//! Hand the inbox to [`Router::store_in`](crate::Router::store_in). The
//! inbox's unique key is the deduplication: the router does not claim these
//! events in its idempotency store, and concurrent deliveries of one event
//! are told apart by the inbox itself (exactly one is `handled`, the others
//! `duplicate`, and every one is counted):
//!
//! ```ignore
//! let inbox = boxhook_sqlite::SqliteInbox::open("inbox.sqlite")?;
//! let router = Router::new().store_in(inbox.clone());
//! // elsewhere, in the same or another process; after 10 failed attempts an
//! // event is `dead` (`max_attempts` needs the inbox's `DeadLetters`):
//! Worker::new(inbox, my_slow_handler).max_attempts(10).run_until(shutdown).await;
//! ```
//!
//! The trait in action, with a toy in-memory inbox (a real one is durable):
//!
//! ```
//! # use std::collections::BTreeMap;
//! # use std::sync::Mutex;
//! # use std::time::Duration;
//! # use chrono::{DateTime, Utc};
//! use boxhook::inbox::*;
//!
//! # #[derive(Default)]
//! # struct Toy(Mutex<BTreeMap<(String, String), (NewRecord, u64, EntryState, u32)>>);
//! # impl Inbox for Toy {
//! #     async fn store(&self, r: NewRecord) -> Result<Stored, InboxError> {
//! #         let mut m = self.0.lock().unwrap();
//! #         let k = (r.webhook_id.clone(), r.event_id.clone());
//! #         if let Some(e) = m.get_mut(&k) { e.1 += 1; return Ok(Stored::Duplicate { deliveries: e.1 }); }
//! #         m.insert(k, (r, 1, EntryState::Pending, 0));
//! #         Ok(Stored::New)
//! #     }
//! #     async fn claim_next(&self, worker_id: &str, lease: Duration, now: DateTime<Utc>) -> Result<Option<Claimed>, InboxError> {
//! #         let mut m = self.0.lock().unwrap();
//! #         Ok(m.values_mut().find(|e| e.2 == EntryState::Pending).map(|e| {
//! #             e.2 = EntryState::Claimed; e.3 += 1;
//! #             Claimed { entry: InboxEntry::new(&e.0, e.1, e.3, e.2), body: e.0.body.clone(),
//! #                       worker_id: worker_id.into(), lease_until: now + lease }
//! #         }))
//! #     }
//! #     async fn ack(&self, c: &Claimed) -> Result<(), InboxError> { self.set(c, EntryState::Done) }
//! #     async fn requeue(&self, c: &Claimed, _: DateTime<Utc>) -> Result<(), InboxError> { self.set(c, EntryState::Pending) }
//! #     async fn list(&self, _: ListFilter) -> Result<Vec<InboxEntry>, InboxError> {
//! #         Ok(self.0.lock().unwrap().values().map(|e| InboxEntry::new(&e.0, e.1, e.3, e.2)).collect())
//! #     }
//! #     async fn get(&self, id: &str) -> Result<Option<StoredEvent>, InboxError> {
//! #         Ok(self.0.lock().unwrap().values().find(|e| e.0.event_id == id)
//! #             .map(|e| StoredEvent { entry: InboxEntry::new(&e.0, e.1, e.3, e.2), body: e.0.body.clone() }))
//! #     }
//! #     // A toy counts by looking at every event; a real inbox keeps counters.
//! #     async fn counts(&self) -> Result<Counts, InboxError> {
//! #         let mut counts = Counts::default();
//! #         for e in self.0.lock().unwrap().values() {
//! #             match e.2 { EntryState::Pending => counts.pending += 1, EntryState::Claimed => counts.claimed += 1,
//! #                         EntryState::Done => counts.done += 1, EntryState::Dead => counts.dead += 1 }
//! #         }
//! #         Ok(counts)
//! #     }
//! # }
//! # impl Toy { fn set(&self, c: &Claimed, s: EntryState) -> Result<(), InboxError> {
//! #     self.0.lock().unwrap().get_mut(&(c.entry.webhook_id.clone(), c.entry.event_id.clone())).unwrap().2 = s; Ok(()) } }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let inbox = Toy::default();
//! let now = Utc::now();
//! let body = &br#"{"type":"webhook_event","id":"e-1","trigger":"FILE.UPLOADED","webhook":{"id":"4133"}}"#[..];
//! assert_eq!(inbox.store(NewRecord::parse(body, Some("d-1"), now)?).await?, Stored::New);
//! assert_eq!(inbox.store(NewRecord::parse(body, Some("d-2"), now)?).await?.deliveries(), 2);
//!
//! let claimed = inbox.claim_next("worker-1", Duration::from_secs(60), now).await?.expect("one pending");
//! assert_eq!(&claimed.body[..], body);
//! inbox.ack(&claimed).await?;
//! assert_eq!(inbox.list(ListFilter::new()).await?[0].state, EntryState::Done);
//! assert_eq!(inbox.counts().await?.done, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

#![allow(clippy::doc_markdown, reason = "SQLite is a product name, not code")]

pub mod backend;
mod backoff;
mod batch;
mod error;
mod handler;
mod record;
mod retention;
mod worker;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::handler::BoxFuture;

pub use backoff::Backoff;
pub use batch::{BatchClaims, SettleAs};
pub use error::{ErrorKind, InboxError};
pub use handler::StoreInInbox;
pub use record::{
    Claimed, EntryState, InboxEntry, ListFilter, NewRecord, RecordKind, Revive, Stored, StoredEvent,
};
pub use retention::{Counts, Pruned, Retention, DEFAULT_KEEP_KEYS, MIN_KEEP_KEYS};
pub use worker::{
    InboxHandler, Ran, Worker, DEFAULT_LEASE, DEFAULT_POLL_INTERVAL, DEFAULT_RETRY_DELAY,
};

/// A durable queue of accepted events (see the [module docs](self)).
///
/// Implementations must make `store` durable before it returns, make it
/// atomic per event key (of concurrent stores of one event, exactly one
/// answers [`Stored::New`], and every delivery is counted), and make
/// `claim_next` atomic (an event is held by one unexpired claim at a time).
/// `now` always comes from the caller's clock.
///
/// `boxhook_testkit::conformance::inbox` checks these rules, and the others
/// documented on each method, against any implementation.
///
/// ```
/// # use std::time::Duration;
/// # use chrono::{DateTime, Utc};
/// use boxhook::inbox::*;
///
/// /// An inbox that keeps nothing: every event is new, none is ever pending.
/// struct Forgetful;
///
/// impl Inbox for Forgetful {
///     async fn store(&self, _: NewRecord) -> Result<Stored, InboxError> { Ok(Stored::New) }
///     async fn claim_next(&self, _: &str, _: Duration, _: DateTime<Utc>) -> Result<Option<Claimed>, InboxError> { Ok(None) }
///     async fn ack(&self, _: &Claimed) -> Result<(), InboxError> { Ok(()) }
///     async fn requeue(&self, _: &Claimed, _: DateTime<Utc>) -> Result<(), InboxError> { Ok(()) }
///     async fn list(&self, _: ListFilter) -> Result<Vec<InboxEntry>, InboxError> { Ok(vec![]) }
///     async fn get(&self, _: &str) -> Result<Option<StoredEvent>, InboxError> { Ok(None) }
///     async fn counts(&self) -> Result<Counts, InboxError> { Ok(Counts::default()) }
/// }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// assert!(Forgetful.claim_next("w", Duration::from_secs(1), Utc::now()).await?.is_none());
/// # Ok::<(), InboxError>(())
/// # }).unwrap();
/// ```
pub trait Inbox: Send + Sync + 'static {
    /// Stores an accepted event, or counts one more delivery of an event
    /// stored before. Returns once the change is durable.
    fn store(&self, record: NewRecord) -> impl Future<Output = Result<Stored, InboxError>> + Send;

    /// Claims the oldest event that is pending and ready by `now` (new,
    /// requeued with a retry time at or before `now`, or claimed under a
    /// lease that ended by `now`), for `lease`; `None` when there is none.
    /// The claim counts one more attempt.
    fn claim_next(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Claimed>, InboxError>> + Send;

    /// Marks a claimed event done.
    ///
    /// Fails with [`ErrorKind::LeaseLost`] when the claim is no longer held
    /// (another worker claimed the event after the lease ended): the event
    /// will be processed again by that worker.
    fn ack(&self, claimed: &Claimed) -> impl Future<Output = Result<(), InboxError>> + Send;

    /// Returns a claimed event to the queue, to be claimed again from
    /// `retry_at` on (pass `now` to retry at once). Same
    /// [`ErrorKind::LeaseLost`] rule as [`ack`](Self::ack).
    fn requeue(
        &self,
        claimed: &Claimed,
        retry_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), InboxError>> + Send;

    /// Lists stored events, oldest first (newest first with
    /// [`ListFilter::newest_first`]), as `filter` selects.
    fn list(
        &self,
        filter: ListFilter,
    ) -> impl Future<Output = Result<Vec<InboxEntry>, InboxError>> + Send;

    /// The oldest stored event with this event `id`, with its raw body.
    fn get(
        &self,
        event_id: &str,
    ) -> impl Future<Output = Result<Option<StoredEvent>, InboxError>> + Send;

    /// How many events are in each state, and when the oldest pending one
    /// was received.
    ///
    /// Answered from counters the inbox keeps in the same transaction as
    /// every change, or from an index: never by reading every row, so the
    /// answer costs the same with ten events stored or ten million (the
    /// admin listener and `boxhook inbox list` ask it often).
    fn counts(&self) -> impl Future<Output = Result<Counts, InboxError>> + Send;

    /// Waits until new work may be ready, or at most `timeout`: what an
    /// idle worker does between two claims.
    ///
    /// The provided method sleeps for `timeout` (polling); an inbox that
    /// can be told about new events (PostgreSQL's `LISTEN`) returns as soon
    /// as one is stored or requeued. Returning early is always allowed.
    fn wait_for_work(&self, timeout: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(timeout)
    }
}

/// An [`Inbox`] that keeps dead letters: events marked `dead`, never
/// claimed again until an operator requeues them.
///
/// [`Worker::max_attempts`] and [`Worker::dead_letters`] need it, and so
/// does requeueing dead or done events. `boxhook_testkit::conformance`
/// checks its rules (`bury-is-dead`, `revive-requeues`, ...) with
/// `InboxSuite::dead_letters`.
///
/// ```
/// # use std::time::Duration;
/// # use chrono::{DateTime, Utc};
/// use boxhook::inbox::*;
///
/// /// Keeps nothing, so it has nothing to bury or revive either.
/// struct Forgetful;
/// # impl Inbox for Forgetful {
/// #     async fn store(&self, _: NewRecord) -> Result<Stored, InboxError> { Ok(Stored::New) }
/// #     async fn claim_next(&self, _: &str, _: Duration, _: DateTime<Utc>) -> Result<Option<Claimed>, InboxError> { Ok(None) }
/// #     async fn ack(&self, _: &Claimed) -> Result<(), InboxError> { Ok(()) }
/// #     async fn requeue(&self, _: &Claimed, _: DateTime<Utc>) -> Result<(), InboxError> { Ok(()) }
/// #     async fn list(&self, _: ListFilter) -> Result<Vec<InboxEntry>, InboxError> { Ok(vec![]) }
/// #     async fn get(&self, _: &str) -> Result<Option<StoredEvent>, InboxError> { Ok(None) }
/// #     async fn counts(&self) -> Result<Counts, InboxError> { Ok(Counts::default()) }
/// # }
///
/// impl DeadLetters for Forgetful {
///     async fn bury(&self, _: &Claimed) -> Result<(), InboxError> {
///         Err(InboxError::new(ErrorKind::LeaseLost, "no claim is ever held"))
///     }
///     async fn revive(&self, _: Revive, _: DateTime<Utc>) -> Result<u64, InboxError> { Ok(0) }
/// }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// assert_eq!(Forgetful.revive(Revive::AllDead, Utc::now()).await?, 0);
/// # Ok::<(), InboxError>(())
/// # }).unwrap();
/// ```
pub trait DeadLetters: Inbox {
    /// Marks a claimed event `dead`: it is not claimed again until
    /// [`revive`](Self::revive)d. Same [`ErrorKind::LeaseLost`] rule as
    /// [`ack`](Inbox::ack).
    fn bury(&self, claimed: &Claimed) -> impl Future<Output = Result<(), InboxError>> + Send;

    /// Puts events back in the queue, ready at `now`, with their attempt
    /// count reset to 0; returns how many. See [`Revive`] for which.
    fn revive(
        &self,
        which: Revive,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, InboxError>> + Send;
}

/// An [`Inbox`] that can claim the events of some triggers only, for
/// [`Worker::triggers`]. `boxhook_testkit::conformance` checks it
/// (`claim-matching-triggers`) with `InboxSuite::filtered_claims`.
///
/// ```
/// # use std::time::Duration;
/// # use chrono::{DateTime, Utc};
/// use boxhook::inbox::*;
///
/// /// Never has anything to claim, whatever the triggers.
/// struct Empty;
/// # impl Inbox for Empty {
/// #     async fn store(&self, _: NewRecord) -> Result<Stored, InboxError> { Ok(Stored::New) }
/// #     async fn claim_next(&self, _: &str, _: Duration, _: DateTime<Utc>) -> Result<Option<Claimed>, InboxError> { Ok(None) }
/// #     async fn ack(&self, _: &Claimed) -> Result<(), InboxError> { Ok(()) }
/// #     async fn requeue(&self, _: &Claimed, _: DateTime<Utc>) -> Result<(), InboxError> { Ok(()) }
/// #     async fn list(&self, _: ListFilter) -> Result<Vec<InboxEntry>, InboxError> { Ok(vec![]) }
/// #     async fn get(&self, _: &str) -> Result<Option<StoredEvent>, InboxError> { Ok(None) }
/// #     async fn counts(&self) -> Result<Counts, InboxError> { Ok(Counts::default()) }
/// # }
///
/// impl FilteredClaims for Empty {
///     async fn claim_matching(&self, _: &str, _: Duration, _: DateTime<Utc>, _: &[String])
///         -> Result<Option<Claimed>, InboxError> { Ok(None) }
/// }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let triggers = ["FILE.UPLOADED".to_owned()];
/// assert!(Empty.claim_matching("w", Duration::from_secs(60), Utc::now(), &triggers).await?.is_none());
/// # Ok::<(), InboxError>(())
/// # }).unwrap();
/// ```
pub trait FilteredClaims: Inbox {
    /// [`claim_next`](Inbox::claim_next), among the events whose trigger is
    /// exactly one of `triggers` only (every event when it is empty).
    fn claim_matching(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
        triggers: &[String],
    ) -> impl Future<Output = Result<Option<Claimed>, InboxError>> + Send;
}

/// An [`Inbox`] that removes old events and deduplication keys, as a
/// [`Retention`] says. `boxhook_testkit::conformance` checks its rules
/// (`prune-*`, `retry-after-prune-is-duplicate`, `keys-pruned-after-keys`)
/// with `InboxSuite::prune`.
///
/// ```
/// # use std::time::Duration;
/// # use chrono::{DateTime, Utc};
/// use boxhook::inbox::*;
///
/// /// Keeps nothing, so there is never anything to prune.
/// struct Forgetful;
/// # impl Inbox for Forgetful {
/// #     async fn store(&self, _: NewRecord) -> Result<Stored, InboxError> { Ok(Stored::New) }
/// #     async fn claim_next(&self, _: &str, _: Duration, _: DateTime<Utc>) -> Result<Option<Claimed>, InboxError> { Ok(None) }
/// #     async fn ack(&self, _: &Claimed) -> Result<(), InboxError> { Ok(()) }
/// #     async fn requeue(&self, _: &Claimed, _: DateTime<Utc>) -> Result<(), InboxError> { Ok(()) }
/// #     async fn list(&self, _: ListFilter) -> Result<Vec<InboxEntry>, InboxError> { Ok(vec![]) }
/// #     async fn get(&self, _: &str) -> Result<Option<StoredEvent>, InboxError> { Ok(None) }
/// #     async fn counts(&self) -> Result<Counts, InboxError> { Ok(Counts::default()) }
/// # }
///
/// impl Prune for Forgetful {
///     async fn prune(&self, _: &Retention, _: DateTime<Utc>, _: usize) -> Result<Pruned, InboxError> {
///         Ok(Pruned::default())
///     }
/// }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let pruned = Forgetful.prune(&Retention::default(), Utc::now(), 1_000).await?;
/// assert!(!pruned.more);
/// # Ok::<(), InboxError>(())
/// # }).unwrap();
/// ```
pub trait Prune: Inbox {
    /// Removes, in one bounded batch of at most `batch` events, the done
    /// and dead events (and V1 callbacks) that `retention` no longer keeps
    /// at `now`, and the deduplication keys of pruned events once
    /// `retention.keys` has passed; says what it removed and whether more
    /// is left. Pending and claimed events are never removed.
    ///
    /// A pruned event's key outlives its body: until `received_at +
    /// retention.keys`, a [`store`](Inbox::store) of the same event answers
    /// [`Stored::Duplicate`] and stores nothing, even when the event was
    /// pruned a second after it was received.
    ///
    /// The bound is on work that grows with the events removed. An inbox
    /// that keeps its events in time partitions (the PostgreSQL one) may
    /// also drop a whole partition whose every event the retention lets go,
    /// however many it holds, in one call: that costs the same for ten
    /// events or a million, and holds no lock a store waits for.
    ///
    /// A call that cannot prune now (another process is pruning the same
    /// store) removes nothing and says `more`: the caller tries again
    /// later, never takes it for "nothing left".
    fn prune(
        &self,
        retention: &Retention,
        now: DateTime<Utc>,
        batch: usize,
    ) -> impl Future<Output = Result<Pruned, InboxError>> + Send;
}

/// An [`Inbox`] behind a pointer, for what the router needs of it:
/// [`Router::store_in`](crate::Router::store_in) keeps one.
pub(crate) trait ErasedInbox: Send + Sync {
    fn store_boxed(&self, record: NewRecord) -> BoxFuture<'_, Result<Stored, InboxError>>;
}

impl<I: Inbox> ErasedInbox for I {
    fn store_boxed(&self, record: NewRecord) -> BoxFuture<'_, Result<Stored, InboxError>> {
        Box::pin(self.store(record))
    }
}

impl<I: Inbox> Inbox for Arc<I> {
    fn store(&self, record: NewRecord) -> impl Future<Output = Result<Stored, InboxError>> + Send {
        (**self).store(record)
    }

    fn claim_next(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Claimed>, InboxError>> + Send {
        (**self).claim_next(worker_id, lease, now)
    }

    fn ack(&self, claimed: &Claimed) -> impl Future<Output = Result<(), InboxError>> + Send {
        (**self).ack(claimed)
    }

    fn requeue(
        &self,
        claimed: &Claimed,
        retry_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), InboxError>> + Send {
        (**self).requeue(claimed, retry_at)
    }

    fn list(
        &self,
        filter: ListFilter,
    ) -> impl Future<Output = Result<Vec<InboxEntry>, InboxError>> + Send {
        (**self).list(filter)
    }

    fn get(
        &self,
        event_id: &str,
    ) -> impl Future<Output = Result<Option<StoredEvent>, InboxError>> + Send {
        (**self).get(event_id)
    }

    fn counts(&self) -> impl Future<Output = Result<Counts, InboxError>> + Send {
        (**self).counts()
    }

    fn wait_for_work(&self, timeout: Duration) -> impl Future<Output = ()> + Send {
        (**self).wait_for_work(timeout)
    }
}

impl<I: DeadLetters> DeadLetters for Arc<I> {
    fn bury(&self, claimed: &Claimed) -> impl Future<Output = Result<(), InboxError>> + Send {
        (**self).bury(claimed)
    }

    fn revive(
        &self,
        which: Revive,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, InboxError>> + Send {
        (**self).revive(which, now)
    }
}

impl<I: FilteredClaims> FilteredClaims for Arc<I> {
    fn claim_matching(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
        triggers: &[String],
    ) -> impl Future<Output = Result<Option<Claimed>, InboxError>> + Send {
        (**self).claim_matching(worker_id, lease, now, triggers)
    }
}

impl<I: Prune> Prune for Arc<I> {
    fn prune(
        &self,
        retention: &Retention,
        now: DateTime<Utc>,
        batch: usize,
    ) -> impl Future<Output = Result<Pruned, InboxError>> + Send {
        (**self).prune(retention, now, batch)
    }
}
