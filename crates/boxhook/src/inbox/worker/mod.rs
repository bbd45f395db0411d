//! [`Worker`]: claims stored events, runs a handler, acknowledges.

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use boxhook_core::model::WebhookEvent;
use boxhook_core::{Clock, SystemClock};
use chrono::{DateTime, Utc};

use super::{
    Backoff, BatchClaims, Claimed, DeadLetters, FilteredClaims, Inbox, InboxError, RecordKind,
    SettleAs, StoredEvent,
};
use crate::escaped;
use crate::handler::{BoxFuture, HandlerError};
use crate::v1::{V1Callback, V1Fields};

mod batch;
mod run;
mod settle;

use settle::bounded;

/// How long a claim lasts unless set: 5 minutes.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(300);
/// How long an idle worker waits before looking again: 1 s.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long a failed event waits before it can be claimed again after its
/// first failed attempt: 30 s, doubling after each further one up to an
/// hour.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(30);
/// The longest wait between two attempts, unless set: 1 hour.
const DEFAULT_MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);

/// What a [`Worker`] runs for each claimed event.
///
/// The framework's [`Handler`](crate::Handler) takes a
/// [`DeliveryContext`](crate::DeliveryContext), which holds the proof that a
/// delivery was verified just now; a stored event is no longer a delivery,
/// so worker handlers get the [`Claimed`] event instead (ids, counters,
/// raw body). Every
/// `Fn(WebhookEvent, Claimed) -> impl Future<Output = Result<(), HandlerError>>`
/// is one.
///
/// ```
/// use boxhook::inbox::{Claimed, InboxHandler};
/// use boxhook::HandlerError;
/// use boxhook::model::WebhookEvent;
///
/// struct Thumbnailer;
///
/// impl InboxHandler for Thumbnailer {
///     async fn call(&self, event: WebhookEvent, claimed: Claimed) -> Result<(), HandlerError> {
///         println!("attempt {} at {}", claimed.attempt(), event.trigger());
///         Ok(())
///     }
/// }
///
/// fn takes(_: impl InboxHandler) {}
/// takes(Thumbnailer);
/// takes(|event: WebhookEvent, _claimed: Claimed| async move {
///     println!("{}", event.id());
///     Ok(())
/// });
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a boxhook inbox handler",
    label = "not an `InboxHandler`",
    note = "implement `boxhook::inbox::InboxHandler`, or pass an async closure `|event: WebhookEvent, claimed: Claimed| async move {{ Ok(()) }}` returning `Result<(), HandlerError>`"
)]
pub trait InboxHandler: Send + Sync + 'static {
    /// Processes one event. `Ok(())` acknowledges it; an error (or a panic,
    /// or passing the lease) releases it for a later retry.
    fn call(
        &self,
        event: WebhookEvent,
        claimed: Claimed,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;

    /// Processes one V1 callback (a record of kind
    /// [`RecordKind::V1`](super::RecordKind::V1), stored by
    /// [`V1Router::store_in`](crate::v1::V1Router::store_in)), read back
    /// with the worker's [`V1Fields`] (see [`Worker::v1_fields`]). `Ok(())`
    /// acknowledges it; an error releases it for a retry, as for
    /// [`call`](Self::call).
    ///
    /// The default takes none: a handler that does not implement it (a
    /// closure, for one) has each V1 record marked `dead` at once, with one
    /// log line saying so, rather than failing it attempt after attempt;
    /// requeue them once a handler takes them.
    ///
    /// ```
    /// use boxhook::inbox::{Claimed, InboxHandler};
    /// use boxhook::model::WebhookEvent;
    /// use boxhook::v1::V1Callback;
    /// use boxhook::HandlerError;
    ///
    /// struct Both;
    ///
    /// impl InboxHandler for Both {
    ///     async fn call(&self, event: WebhookEvent, _: Claimed) -> Result<(), HandlerError> {
    ///         println!("V2 {} {}", event.id(), event.trigger());
    ///         Ok(())
    ///     }
    ///
    ///     async fn call_v1(&self, callback: V1Callback, _: Claimed) -> Result<(), HandlerError> {
    ///         println!("V1 {} on item {:?}", callback.trigger(), callback.item_id());
    ///         Ok(())
    ///     }
    /// }
    /// # fn takes(_: impl InboxHandler) {}
    /// # takes(Both);
    /// ```
    fn call_v1(
        &self,
        callback: V1Callback,
        claimed: Claimed,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send {
        drop((callback, claimed));
        std::future::ready(Err(HandlerError::new(NoV1Handler)))
    }
}

/// What the default [`InboxHandler::call_v1`] fails with: the worker marks
/// the record dead at once rather than retrying it.
#[derive(Debug)]
struct NoV1Handler;

impl fmt::Display for NoV1Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "this worker's handler takes V2 events only (it does not implement \
             InboxHandler::call_v1); requeue the callback once one does",
        )
    }
}

impl std::error::Error for NoV1Handler {}

/// A claimed record, read back: a V2 event or a V1 callback.
enum Input {
    /// Boxed: a typed event is several times the size of a callback.
    V2(Box<WebhookEvent>),
    V1(V1Callback),
}

impl<F, Fut> InboxHandler for F
where
    F: Fn(WebhookEvent, Claimed) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send,
{
    fn call(
        &self,
        event: WebhookEvent,
        claimed: Claimed,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send {
        self(event, claimed)
    }
}

/// What one [`Worker::run_once`] did.
///
/// ```
/// use boxhook::inbox::Ran;
/// assert_ne!(Ran::Idle, Ran::Acked);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ran {
    /// Nothing was claimable.
    Idle,
    /// An event was processed and acknowledged.
    Acked,
    /// An event failed (error, panic, deadline, unparsable body) and was
    /// released for a retry after the retry delay.
    Released,
    /// An event was processed, but its lease had ended and another worker
    /// claimed it meanwhile: it will be processed again there.
    LeaseLost,
    /// An event failed on its last allowed attempt (or was claimed past it,
    /// after workers died holding it), or can never be processed (its
    /// stored body does not read back as its kind, or it is a V1 callback
    /// and the handler takes none), and is now `dead`.
    Dead,
    /// The worker was stopping and the event ran past the grace period:
    /// it was cancelled and put back in the queue, ready at once.
    Stopped,
    /// The event was claimed in a batch ([`Worker::batch`]), and the worker
    /// was asked to stop before its handler started: it was put back in the
    /// queue unstarted, ready at once for another worker (the claim still
    /// counted an attempt).
    PutBack,
}

/// How a claimed event is settled.
#[derive(Debug, Clone, Copy)]
enum Settle {
    Ack,
    Requeue(DateTime<Utc>),
    Bury,
}

/// When a requeued event is ready again, for its log line (RFC 3339, UTC,
/// milliseconds); empty for other settles.
fn requeued_at(how: Settle) -> String {
    match how {
        Settle::Requeue(at) => at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        Settle::Ack | Settle::Bury => String::new(),
    }
}

/// Claims events from an [`Inbox`] one at a time, runs an [`InboxHandler`]
/// on each, and acknowledges it (success) or releases it for a retry after
/// [`retry_delay`](Self::retry_delay) (error, panic, or running past the
/// lease). Run several for parallelism; each claims on its own.
///
/// A worker needs only an [`Inbox`]. On one that keeps [`DeadLetters`] (the
/// SQLite and PostgreSQL inboxes do), [`max_attempts`](Self::max_attempts)
/// marks `dead` an event that failed that many times, and, like
/// [`dead_letters`](Self::dead_letters), one that can never be processed;
/// without either, such events are retried for ever.
///
/// ```
/// # use boxhook::inbox::*;
/// # use std::sync::Mutex;
/// # use std::time::Duration;
/// # use chrono::{DateTime, Utc};
/// # #[derive(Default)] struct One(Mutex<Option<NewRecord>>, Mutex<Vec<&'static str>>);
/// # impl Inbox for One {
/// #   async fn store(&self, r: NewRecord) -> Result<Stored, InboxError> { *self.0.lock().unwrap() = Some(r); Ok(Stored::New) }
/// #   async fn claim_next(&self, w: &str, l: Duration, now: DateTime<Utc>) -> Result<Option<Claimed>, InboxError> {
/// #     Ok(self.0.lock().unwrap().take().map(|r| Claimed { entry: InboxEntry::new(&r, 1, 1, EntryState::Claimed),
/// #        body: r.body.clone(), worker_id: w.into(), lease_until: now + l })) }
/// #   async fn ack(&self, _: &Claimed) -> Result<(), InboxError> { self.1.lock().unwrap().push("ack"); Ok(()) }
/// #   async fn requeue(&self, _: &Claimed, _: DateTime<Utc>) -> Result<(), InboxError> { self.1.lock().unwrap().push("release"); Ok(()) }
/// #   async fn list(&self, _: ListFilter) -> Result<Vec<InboxEntry>, InboxError> { Ok(vec![]) }
/// #   async fn get(&self, _: &str) -> Result<Option<StoredEvent>, InboxError> { Ok(None) }
/// #   async fn counts(&self) -> Result<boxhook::inbox::Counts, InboxError> { Ok(Default::default()) }
/// # }
/// use boxhook::HandlerError;
/// use boxhook::model::WebhookEvent;
/// use std::sync::Arc;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let inbox = Arc::new(One::default()); // boxhook_sqlite::SqliteInbox in real life
/// # inbox.store(NewRecord::parse(&br#"{"id":"e-1","trigger":"FILE.UPLOADED"}"#[..], None, Utc::now()).unwrap()).await.unwrap();
/// let worker = Worker::new(Arc::clone(&inbox), |event: WebhookEvent, _claimed: Claimed| async move {
///     println!("slow work for {}", event.id());
///     Ok::<_, HandlerError>(())
/// })
/// .worker_id("thumbnailer-1")
/// .lease(Duration::from_secs(120))
/// .poll_interval(Duration::from_millis(200));
///
/// // One step at a time (tests) ...
/// assert_eq!(worker.run_once().await?, Ran::Acked);
/// assert_eq!(worker.run_once().await?, Ran::Idle);
/// // ... or until shutdown: `worker.run_until(ctrl_c_future).await`.
/// worker.run_until(async {}).await;
/// # assert_eq!(*inbox.1.lock().unwrap(), ["ack"]);
/// # Ok::<(), InboxError>(())
/// # }).unwrap();
/// ```
pub struct Worker<I, H> {
    inbox: I,
    handler: H,
    id: String,
    lease: Duration,
    poll_interval: Duration,
    backoff: Backoff,
    max_attempts: Option<u32>,
    /// How events are marked dead: set, with the inbox's
    /// [`DeadLetters::bury`], by [`max_attempts`](Self::max_attempts) and
    /// [`dead_letters`](Self::dead_letters); `None` keeps no dead letters.
    bury: Option<BuryFn<I>>,
    triggers: Vec<String>,
    /// How events are claimed: [`Inbox::claim_next`], or
    /// [`FilteredClaims::claim_matching`] once [`triggers`](Self::triggers)
    /// is set.
    claim: ClaimFn<I>,
    v1_fields: V1Fields,
    clock: Arc<dyn Clock>,
    /// How many events one claim takes and how they are settled, once
    /// [`batch`](Self::batch) is set on an inbox with [`BatchClaims`].
    batch: Option<Batch<I>>,
}

/// A batching worker's inbox calls: [`BatchClaims`] of its inbox, and how
/// many events one claim takes (2 or more).
struct Batch<I> {
    max: usize,
    claim: ClaimBatchFn<I>,
    settle: SettleBatchFn<I>,
}

/// [`BatchClaims::claim_batch`]: `(inbox, worker id, lease, now, triggers,
/// max)`.
type ClaimBatchFn<I> = for<'a> fn(
    &'a I,
    &'a str,
    Duration,
    DateTime<Utc>,
    &'a [String],
    usize,
) -> BoxFuture<'a, Result<Vec<Claimed>, InboxError>>;

/// [`BatchClaims::settle_batch`]: `(inbox, settles, now)`.
type SettleBatchFn<I> = for<'a> fn(
    &'a I,
    &'a [(Claimed, SettleAs)],
    DateTime<Utc>,
) -> BoxFuture<'a, Result<Vec<bool>, InboxError>>;

fn claim_batch<'a, I: BatchClaims>(
    inbox: &'a I,
    worker_id: &'a str,
    lease: Duration,
    now: DateTime<Utc>,
    triggers: &'a [String],
    max: usize,
) -> BoxFuture<'a, Result<Vec<Claimed>, InboxError>> {
    Box::pin(inbox.claim_batch(worker_id, lease, now, triggers, max))
}

fn settle_batch<'a, I: BatchClaims>(
    inbox: &'a I,
    settles: &'a [(Claimed, SettleAs)],
    now: DateTime<Utc>,
) -> BoxFuture<'a, Result<Vec<bool>, InboxError>> {
    Box::pin(inbox.settle_batch(settles, now))
}

/// [`DeadLetters::bury`] of a worker's inbox, kept by a worker whose inbox
/// has dead letters.
type BuryFn<I> = for<'a> fn(&'a I, &'a Claimed) -> BoxFuture<'a, Result<(), InboxError>>;

/// How a worker claims its next event: `(inbox, worker id, lease, now,
/// triggers)`.
type ClaimFn<I> = for<'a> fn(
    &'a I,
    &'a str,
    Duration,
    DateTime<Utc>,
    &'a [String],
) -> BoxFuture<'a, Result<Option<Claimed>, InboxError>>;

/// Claims any event: the triggers are empty unless the inbox filters claims.
fn claim_any<'a, I: Inbox>(
    inbox: &'a I,
    worker_id: &'a str,
    lease: Duration,
    now: DateTime<Utc>,
    _: &'a [String],
) -> BoxFuture<'a, Result<Option<Claimed>, InboxError>> {
    Box::pin(inbox.claim_next(worker_id, lease, now))
}

/// Claims an event with one of `triggers` (any when empty).
fn claim_matching<'a, I: FilteredClaims>(
    inbox: &'a I,
    worker_id: &'a str,
    lease: Duration,
    now: DateTime<Utc>,
    triggers: &'a [String],
) -> BoxFuture<'a, Result<Option<Claimed>, InboxError>> {
    Box::pin(inbox.claim_matching(worker_id, lease, now, triggers))
}

/// Marks a claimed event dead.
fn bury<'a, I: DeadLetters>(
    inbox: &'a I,
    claimed: &'a Claimed,
) -> BoxFuture<'a, Result<(), InboxError>> {
    Box::pin(inbox.bury(claimed))
}

impl<I: Inbox, H: InboxHandler> Worker<I, H> {
    /// A worker on `inbox` running `handler`, with the defaults
    /// [`DEFAULT_LEASE`], [`DEFAULT_POLL_INTERVAL`], an exponential backoff
    /// from [`DEFAULT_RETRY_DELAY`] up to an hour, no limit on attempts,
    /// every trigger, the system clock and the worker id `worker-<pid>`.
    ///
    /// These defaults need only an [`Inbox`]. Without dead letters (see
    /// [`dead_letters`](Self::dead_letters)), an event that can never be
    /// processed (its body does not read back, or it is a V1 callback and
    /// the handler takes none) is released for a retry after the backoff,
    /// with an error logged each time, rather than marked `dead`.
    #[must_use]
    pub fn new(inbox: I, handler: H) -> Self {
        Self {
            inbox,
            handler,
            id: format!("worker-{}", std::process::id()),
            lease: DEFAULT_LEASE,
            poll_interval: DEFAULT_POLL_INTERVAL,
            backoff: Backoff::exponential(DEFAULT_RETRY_DELAY, DEFAULT_MAX_RETRY_DELAY),
            max_attempts: None,
            bury: None,
            triggers: Vec::new(),
            claim: claim_any::<I>,
            v1_fields: V1Fields::default(),
            clock: Arc::new(SystemClock),
            batch: None,
        }
    }

    /// The id claims are recorded under (for logs and the CLI).
    #[must_use]
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// How long a claim lasts. The handler is cancelled when it runs past
    /// it, since another worker may take the event over from then on.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How long to wait when there is nothing to do, or the inbox failed.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// How long a failed event waits before it may be claimed again, the
    /// same after every attempt (shorthand for
    /// `backoff(Backoff::constant(delay))`).
    #[must_use]
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.backoff = Backoff::constant(delay);
        self
    }

    /// How long a failed event waits before each next attempt.
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The parameter names V1 callbacks are read back with, for
    /// [`InboxHandler::call_v1`]: those the receiver's
    /// [`V1Service`](crate::v1::V1Service) used (default
    /// [`V1Fields::default`]).
    ///
    /// ```
    /// # use boxhook::inbox::*;
    /// # use boxhook::model::WebhookEvent;
    /// use boxhook::v1::V1Fields;
    /// # #[derive(Clone)] struct None_;
    /// # impl Inbox for None_ {
    /// #   async fn store(&self, _: NewRecord) -> Result<Stored, InboxError> { Ok(Stored::New) }
    /// #   async fn claim_next(&self, _: &str, _: std::time::Duration, _: chrono::DateTime<chrono::Utc>) -> Result<Option<Claimed>, InboxError> { Ok(None) }
    /// #   async fn ack(&self, _: &Claimed) -> Result<(), InboxError> { Ok(()) }
    /// #   async fn requeue(&self, _: &Claimed, _: chrono::DateTime<chrono::Utc>) -> Result<(), InboxError> { Ok(()) }
    /// #   async fn list(&self, _: ListFilter) -> Result<Vec<InboxEntry>, InboxError> { Ok(vec![]) }
    /// #   async fn get(&self, _: &str) -> Result<Option<StoredEvent>, InboxError> { Ok(None) }
    /// #   async fn counts(&self) -> Result<boxhook::inbox::Counts, InboxError> { Ok(Default::default()) }
    /// # }
    ///
    /// // For a callback URL `...?event=#event_type#&item=#item_id#`:
    /// let worker = Worker::new(None_, |_: WebhookEvent, _: Claimed| async {
    ///     Ok::<_, boxhook::HandlerError>(())
    /// })
    /// .v1_fields(V1Fields::default().trigger("event").item_id("item"));
    /// # let _ = worker;
    /// ```
    #[must_use]
    pub fn v1_fields(mut self, fields: V1Fields) -> Self {
        self.v1_fields = fields;
        self
    }

    /// The clock claims and retries are timed with (default the system
    /// clock).
    ///
    /// The worker keeps a clock of its own, unlike the router, whose time
    /// comes from [`VerifyLayer::clock`](crate::VerifyLayer::clock) with each
    /// request: a worker is a separate loop, often in another process, that
    /// no request passes through. Give it the same clock as the layer when
    /// a test runs both on fixed time.
    ///
    /// ```
    /// # use boxhook::inbox::*;
    /// # use boxhook::model::WebhookEvent;
    /// use boxhook::FixedClock;
    /// # struct None_;
    /// # impl Inbox for None_ {
    /// #   async fn store(&self, _: NewRecord) -> Result<Stored, InboxError> { Ok(Stored::New) }
    /// #   async fn claim_next(&self, _: &str, _: std::time::Duration, _: chrono::DateTime<chrono::Utc>) -> Result<Option<Claimed>, InboxError> { Ok(None) }
    /// #   async fn ack(&self, _: &Claimed) -> Result<(), InboxError> { Ok(()) }
    /// #   async fn requeue(&self, _: &Claimed, _: chrono::DateTime<chrono::Utc>) -> Result<(), InboxError> { Ok(()) }
    /// #   async fn list(&self, _: ListFilter) -> Result<Vec<InboxEntry>, InboxError> { Ok(vec![]) }
    /// #   async fn get(&self, _: &str) -> Result<Option<StoredEvent>, InboxError> { Ok(None) }
    /// #   async fn counts(&self) -> Result<boxhook::inbox::Counts, InboxError> { Ok(Default::default()) }
    /// # }
    ///
    /// let clock = FixedClock::at("2020-01-01T07:00:00Z".parse().unwrap());
    /// let worker = Worker::new(None_, |_: WebhookEvent, _: Claimed| async {
    ///     Ok::<_, boxhook::HandlerError>(())
    /// })
    /// .clock(clock);
    /// # let _ = worker;
    /// ```
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// When a failed event may be claimed again: now plus the backoff for
    /// `attempt`, saturating at the latest instant `chrono` holds (a delay
    /// of `Duration::MAX` means "not before the end of time", not a panic).
    fn retry_at(&self, attempt: u32) -> DateTime<Utc> {
        super::backend::lease_end(self.clock.now(), self.backoff.delay(attempt))
    }

    /// Whether failed attempt `attempt` was the last one allowed.
    fn is_last(&self, attempt: u32) -> bool {
        self.max_attempts.is_some_and(|max| attempt >= max)
    }

    /// Claims one event, if any, processes it and settles it.
    ///
    /// # Errors
    ///
    /// When the inbox fails to claim, or to acknowledge or release, or
    /// does not answer one of these within 30 s (a database cut off by the
    /// network). A settle that fails with [`ErrorKind::Storage`](crate::inbox::ErrorKind::Storage) is tried
    /// again, with a growing wait (100 ms doubling up to 5 s), while the
    /// claim's lease lasts. An event claimed but not settled returns to the
    /// queue when its lease ends.
    pub async fn run_once(&self) -> Result<Ran, super::InboxError> {
        self.run_once_until(std::future::pending()).await
    }

    /// [`run_once`](Self::run_once), cancelling the handler when `stop`
    /// completes first and putting the event back, ready at once.
    async fn run_once_until(
        &self,
        stop: impl Future<Output = ()>,
    ) -> Result<Ran, super::InboxError> {
        let claim = (self.claim)(
            &self.inbox,
            &self.id,
            self.lease,
            self.clock.now(),
            &self.triggers,
        );
        let Some(claimed) = bounded("claim", claim).await? else {
            return Ok(Ran::Idle);
        };
        let key = claimed.entry.key();
        let attempt = claimed.attempt();
        let mut stop = pin!(stop);
        if self.max_attempts.is_some_and(|max| attempt > max) {
            // Earlier attempts died with their worker (the lease ended):
            // running it again could kill this worker too.
            return self
                .settle_dead(
                    &claimed,
                    "earlier attempts never finished (their workers stopped)",
                    Dead::LastAttempt,
                    stop,
                )
                .await;
        }
        let input = match self.read(&claimed) {
            Ok(input) => input,
            // No attempt can ever succeed: dead at once, not after every
            // allowed attempt.
            Err(error) => {
                return self
                    .settle_dead(&claimed, &error, Dead::Unreadable, stop)
                    .await
            }
        };
        let outcome = self.call(input, &claimed, stop.as_mut()).await;
        let Some(failure) = outcome else {
            // `stop` has completed: one try, and otherwise the lease's end
            // puts the event back.
            let requeue = self.inbox.requeue(&claimed, self.clock.now());
            return match bounded("requeue", requeue).await {
                Ok(()) => {
                    tracing::warn!(event = %key, attempt, "worker stopping: event cancelled after the grace period and put back");
                    Ok(Ran::Stopped)
                }
                Err(error) if error.is_lease_lost() => Ok(Ran::LeaseLost),
                Err(error) => Err(error),
            };
        };
        let (failure, wait) = match failure {
            None => (None, None),
            Some(Failure::Never(error)) => {
                return self
                    .settle_dead(&claimed, &error, Dead::NoV1Handler, stop)
                    .await
            }
            Some(Failure::GaveUp(error)) => {
                return self.settle_dead(&claimed, &error, Dead::GaveUp, stop).await
            }
            Some(Failure::Once(error, wait)) => (Some(error), wait),
        };
        let how = match &failure {
            None => Settle::Ack,
            Some(error) if self.is_last(attempt) => {
                return self
                    .settle_dead(&claimed, error, Dead::LastAttempt, stop)
                    .await
            }
            Some(_) => Settle::Requeue(match wait {
                Some(wait) => super::backend::lease_end(self.clock.now(), wait),
                None => self.retry_at(attempt),
            }),
        };
        match (self.settle(&claimed, how, stop).await, failure) {
            (Ok(()), None) => {
                tracing::info!(event = %key, attempt, "inbox event processed");
                Ok(Ran::Acked)
            }
            (Ok(()), Some(error)) => {
                let retry_at = requeued_at(how);
                tracing::warn!(event = %key, attempt, error = escaped::shown(&error), retry_at, "inbox event failed; released for a retry");
                Ok(Ran::Released)
            }
            (Err(error), _) if error.is_lease_lost() => {
                tracing::warn!(event = %key, attempt, error = escaped::shown(&error), "inbox claim no longer held when settling the event; its lease expired and another attempt owns it, or an earlier try settled it");
                Ok(Ran::LeaseLost)
            }
            (Err(error), _) => Err(error),
        }
    }
}

impl<I: DeadLetters, H: InboxHandler> Worker<I, H> {
    /// After this many failed attempts an event is `dead`
    /// ([`DeadLetters::bury`]): listed, never claimed again until requeued.
    /// An event claimed past it (its earlier workers died holding it) is
    /// buried without running. Unlimited unless set; 0 counts as 1. Implies
    /// [`dead_letters`](Self::dead_letters).
    ///
    /// ```
    /// use boxhook::inbox::{Claimed, Worker};
    /// use boxhook::model::WebhookEvent;
    /// # use boxhook::inbox::*;
    /// # struct MyInbox;
    /// # impl Inbox for MyInbox {
    /// #   async fn store(&self, _: NewRecord) -> Result<Stored, InboxError> { Ok(Stored::New) }
    /// #   async fn claim_next(&self, _: &str, _: std::time::Duration, _: chrono::DateTime<chrono::Utc>) -> Result<Option<Claimed>, InboxError> { Ok(None) }
    /// #   async fn ack(&self, _: &Claimed) -> Result<(), InboxError> { Ok(()) }
    /// #   async fn requeue(&self, _: &Claimed, _: chrono::DateTime<chrono::Utc>) -> Result<(), InboxError> { Ok(()) }
    /// #   async fn list(&self, _: ListFilter) -> Result<Vec<InboxEntry>, InboxError> { Ok(vec![]) }
    /// #   async fn get(&self, _: &str) -> Result<Option<StoredEvent>, InboxError> { Ok(None) }
    /// #   async fn counts(&self) -> Result<Counts, InboxError> { Ok(Default::default()) }
    /// # }
    /// # impl DeadLetters for MyInbox {
    /// #   async fn bury(&self, _: &Claimed) -> Result<(), InboxError> { Ok(()) }
    /// #   async fn revive(&self, _: Revive, _: chrono::DateTime<chrono::Utc>) -> Result<u64, InboxError> { Ok(0) }
    /// # }
    ///
    /// // `MyInbox` implements `DeadLetters`; without it this does not compile.
    /// let worker = Worker::new(MyInbox, |_: WebhookEvent, _: Claimed| async {
    ///     Ok::<_, boxhook::HandlerError>(())
    /// })
    /// .max_attempts(5);
    /// # let _ = worker;
    /// ```
    #[must_use]
    pub fn max_attempts(mut self, max: u32) -> Self {
        self.max_attempts = Some(max.max(1));
        self.dead_letters()
    }

    /// Marks `dead` ([`DeadLetters::bury`]) at once every event that can
    /// never be processed: its stored body does not read back as its kind,
    /// or it is a V1 callback and the handler takes none. Without it (and
    /// without [`max_attempts`](Self::max_attempts)) such an event is
    /// released for a retry after the backoff, again and again.
    #[must_use]
    pub fn dead_letters(mut self) -> Self {
        self.bury = Some(bury::<I>);
        self
    }
}

impl<I: BatchClaims, H: InboxHandler> Worker<I, H> {
    /// Claims up to `max` events per round trip to the inbox
    /// ([`BatchClaims::claim_batch`], with the worker's
    /// [`triggers`](Self::triggers) if set), runs the handler on them one
    /// after the other, and settles the finished ones together
    /// ([`BatchClaims::settle_batch`]): when the batch is done, or sooner,
    /// between two events, once the oldest finished one has waited 200 ms.
    /// A settle that fails because the store is away is tried again while
    /// every lease of the group lasts (once only when stopping). 0 and 1
    /// claim one event at a time, as without it.
    ///
    /// The handler runs on one event at a time, as without batching: run
    /// several workers for concurrency (each claims its own batches). That
    /// keeps what a handler may assume (one call at a time per worker) and
    /// each event's lease meaningful: an event waits for its turn at most
    /// the batch before it, and only what is left of its lease is given to
    /// its handler.
    ///
    /// Every lease rule stays: an event whose lease ends before its turn is
    /// not run ([`Ran::LeaseLost`]), and one whose lease ends before its
    /// settle is not settled by this worker (the inbox refuses it, and it
    /// is processed again where it is claimed next). An event is settled
    /// `done` only when its handler succeeded. When the worker is asked to
    /// stop, the events of the batch not yet started are put back in the
    /// queue at once, ready for another worker ([`Ran::PutBack`]); the one
    /// running has the grace period, as without batching.
    /// [`run_once`](Self::run_once) still claims one event.
    ///
    /// ```
    /// use boxhook::inbox::{Claimed, Worker};
    /// use boxhook::model::WebhookEvent;
    /// # use boxhook::inbox::*;
    /// # struct MyInbox;
    /// # impl Inbox for MyInbox {
    /// #   async fn store(&self, _: NewRecord) -> Result<Stored, InboxError> { Ok(Stored::New) }
    /// #   async fn claim_next(&self, _: &str, _: std::time::Duration, _: chrono::DateTime<chrono::Utc>) -> Result<Option<Claimed>, InboxError> { Ok(None) }
    /// #   async fn ack(&self, _: &Claimed) -> Result<(), InboxError> { Ok(()) }
    /// #   async fn requeue(&self, _: &Claimed, _: chrono::DateTime<chrono::Utc>) -> Result<(), InboxError> { Ok(()) }
    /// #   async fn list(&self, _: ListFilter) -> Result<Vec<InboxEntry>, InboxError> { Ok(vec![]) }
    /// #   async fn get(&self, _: &str) -> Result<Option<StoredEvent>, InboxError> { Ok(None) }
    /// #   async fn counts(&self) -> Result<Counts, InboxError> { Ok(Default::default()) }
    /// # }
    /// # impl BatchClaims for MyInbox {
    /// #   async fn claim_batch(&self, _: &str, _: std::time::Duration, _: chrono::DateTime<chrono::Utc>, _: &[String], _: usize) -> Result<Vec<Claimed>, InboxError> { Ok(vec![]) }
    /// #   async fn settle_batch(&self, s: &[(Claimed, SettleAs)], _: chrono::DateTime<chrono::Utc>) -> Result<Vec<bool>, InboxError> { Ok(vec![true; s.len()]) }
    /// # }
    ///
    /// // `MyInbox` implements `BatchClaims`; without it this does not compile.
    /// let worker = Worker::new(MyInbox, |_: WebhookEvent, _: Claimed| async {
    ///     Ok::<_, boxhook::HandlerError>(())
    /// })
    /// .batch(64);
    /// # let _ = worker;
    /// ```
    #[must_use]
    pub fn batch(mut self, max: usize) -> Self {
        self.batch = (max > 1).then_some(Batch {
            max,
            claim: claim_batch::<I>,
            settle: settle_batch::<I>,
        });
        self
    }
}

impl<I: FilteredClaims, H: InboxHandler> Worker<I, H> {
    /// Claims only events with one of these exact triggers (every event
    /// when empty, the default); see [`FilteredClaims::claim_matching`].
    #[must_use]
    pub fn triggers(mut self, triggers: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.triggers = triggers.into_iter().map(Into::into).collect();
        self.claim = claim_matching::<I>;
        self
    }
}

impl<I: Inbox, H: InboxHandler> Worker<I, H> {
    /// Runs the handler on `input` within the lease, a panic caught: `None`
    /// when `stop` completed first, else the failure, if any.
    async fn call(
        &self,
        input: Input,
        claimed: &Claimed,
        mut stop: std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Option<Option<Failure>> {
        let handler = &self.handler;
        let run = crate::panic::catch_unwind(|| -> HandlerFuture<'_> {
            match input {
                Input::V2(event) => Box::pin(handler.call(*event, claimed.clone())),
                Input::V1(callback) => Box::pin(handler.call_v1(callback, claimed.clone())),
            }
        });
        // Until the claim's lease ends, not a whole lease from now: a claim
        // that came back late must not let the handler run on while another
        // worker may claim the event.
        let left = settle::lease_left(claimed, self.clock.now()).min(self.lease);
        let mut run = pin!(tokio::time::timeout(left, run));
        poll_fn(|cx| {
            if let Poll::Ready(done) = run.as_mut().poll(cx) {
                return Poll::Ready(Some(done));
            }
            stop.as_mut().poll(cx).map(|()| None)
        })
        .await
        .map(|done| match done {
            Ok(Ok(Ok(()))) => None,
            Ok(Ok(Err(error))) if error.source().is::<NoV1Handler>() => {
                Some(Failure::Never(error.to_string()))
            }
            Ok(Ok(Err(error))) if error.is_give_up() => Some(Failure::GaveUp(error.to_string())),
            Ok(Ok(Err(error))) => Some(Failure::Once(error.to_string(), error.retry_wait())),
            Ok(Err(panic)) => Some(Failure::Once(
                format!("handler panicked: {}", crate::panic::panic_message(&*panic)),
                None,
            )),
            Err(_) => Some(Failure::Once(
                format!("handler ran past its {:?} lease", self.lease),
                None,
            )),
        })
    }

    /// The claimed record read back as its kind says: a V2 event, or a V1
    /// callback with this worker's [`V1Fields`]. An error means no attempt
    /// can ever read it.
    fn read(&self, claimed: &Claimed) -> Result<Input, String> {
        match claimed.entry.kind {
            RecordKind::V2 => claimed
                .event()
                .map(|event| Input::V2(Box::new(event)))
                .map_err(|error| format!("the stored body is not a webhook_event: {error}")),
            RecordKind::V1 => {
                let stored = StoredEvent {
                    entry: claimed.entry.clone(),
                    body: claimed.body.clone(),
                };
                V1Callback::from_stored(&stored, &self.v1_fields)
                    .map(Input::V1)
                    .map_err(|error| error.to_string())
            }
        }
    }
}

/// The future of one handler call, V2 or V1.
type HandlerFuture<'a> =
    std::pin::Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send + 'a>>;

/// Why an attempt failed: worth another attempt, or never.
enum Failure {
    /// Worth another attempt: after the backoff, or after exactly this
    /// long ([`HandlerError::retry_in`]).
    Once(String, Option<std::time::Duration>),
    /// Never: no handler for its kind.
    Never(String),
    /// The handler gave up on it ([`HandlerError::give_up`]).
    GaveUp(String),
}

/// Why an event is buried, for its one log line.
#[derive(Debug, Clone, Copy)]
enum Dead {
    /// It failed on its last allowed attempt.
    LastAttempt,
    /// Its stored body does not read back as its kind.
    Unreadable,
    /// It is a V1 callback and the handler takes none.
    NoV1Handler,
    /// Its handler gave up on it ([`HandlerError::give_up`]).
    GaveUp,
}

impl<I, H> fmt::Debug for Worker<I, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("worker_id", &self.id)
            .field("lease", &self.lease)
            .field("poll_interval", &self.poll_interval)
            .field("backoff", &self.backoff)
            .field("max_attempts", &self.max_attempts)
            .field("dead_letters", &self.bury.is_some())
            .field("triggers", &self.triggers)
            .field("v1_fields", &self.v1_fields)
            .field("batch", &self.batch.as_ref().map_or(1, |batch| batch.max))
            .finish_non_exhaustive()
    }
}
