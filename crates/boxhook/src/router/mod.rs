//! The router: parses a verified body and hands the event, once, to the
//! handler registered for its trigger.
//!
//! Handlers are chosen in this order: the handler for the exact trigger
//! (a dedicated `WEBHOOK.DELETED` / `NO_ACTIVE_SESSION` handler is the one
//! for its trigger), the handler
//! for the trigger's family (`FILE.*`), the fallback or the inbox given to
//! [`Router::store_in`] (one or the other, never both). An event none of them
//! takes is acknowledged with 200 and a log line ([`Outcome::Unhandled`]):
//! never a non-2xx for an event the receiver does not care about, which Box
//! would retry. `WEBHOOK.DELETED` and `NO_ACTIVE_SESSION` are logged at `warn`
//! whether or not a handler takes them.

mod outcome;
mod service;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use boxhook_core::model::{Trigger, TriggerFamily, WebhookEvent};

use crate::handler::{Erased, ErasedHandler, Handler, NoActiveSession, WebhookDeleted};
use crate::idempotency::{ErasedStore, IdempotencyStore, MemoryStore};
use crate::inbox::{ErasedInbox, Inbox};

pub use outcome::{Outcome, RoutedEvent};
pub use service::RouterFuture;

/// How long a handler may run before it is cancelled: 25 s, under the 30 s
/// Box waits for an answer (see "Retries and deduplication" in docs/PROTOCOL.md).
pub const DEFAULT_HANDLER_TIMEOUT: Duration = Duration::from_secs(25);

/// Dispatches verified deliveries to handlers by trigger; a tower
/// [`Service`](tower_service::Service) meant to sit behind
/// [`VerifyLayer`](crate::VerifyLayer).
///
/// ```
/// use std::time::Duration;
/// use boxhook::{DeliveryContext, HandlerError, Router, WebhookDeleted};
/// use boxhook::idempotency::MemoryStore;
/// use boxhook::model::{Trigger, TriggerFamily, WebhookEvent};
///
/// async fn on_upload(event: WebhookEvent, ctx: DeliveryContext) -> Result<(), HandlerError> {
///     println!("uploaded {:?} ({})", event.source().and_then(|s| s.name()), ctx.event_id());
///     Ok(())
/// }
///
/// let router = Router::new()
///     .on(Trigger::FileUploaded, on_upload)
///     .on_family(TriggerFamily::Folder, |event: WebhookEvent| async move {
///         println!("folder event {}", event.trigger());
///         Ok::<_, HandlerError>(())
///     })
///     .on_webhook_deleted(|deleted: WebhookDeleted| async move {
///         eprintln!("webhook {:?} deleted: {:?}", deleted.webhook_id(), deleted.reason());
///         Ok::<_, HandlerError>(())
///     })
///     .idempotency(MemoryStore::new(50_000, Duration::from_secs(24 * 3600)))
///     .handler_timeout(Duration::from_secs(20));
/// # let _ = router;
/// ```
#[derive(Clone)]
pub struct Router {
    routes: Arc<Routes>,
}

const FALLBACK_AND_INBOX: &str =
    "boxhook: a router takes either a fallback or store_in, not both: \
    both take every event no other handler takes; route what the fallback should see \
    with .on(..) or .on_family(..), and let store_in take the rest";

type EventHandler = Arc<dyn ErasedHandler>;

#[derive(Clone)]
pub(crate) struct Routes {
    /// Handlers by trigger, the `WEBHOOK.DELETED` and `NO_ACTIVE_SESSION`
    /// ones ([`Router::on_webhook_deleted`], [`Router::on_no_active_session`])
    /// included: each builds its own input from the event.
    exact: HashMap<Trigger, EventHandler>,
    family: HashMap<TriggerFamily, EventHandler>,
    fallback: Option<EventHandler>,
    inbox: Option<Arc<dyn ErasedInbox>>,
    store: Arc<dyn ErasedStore>,
    handler_timeout: Duration,
    claim_lease: Option<Duration>,
}

impl Default for Router {
    fn default() -> Self {
        Self::new()
    }
}

impl Router {
    /// A router with no handlers, a default [`MemoryStore`] and a 25 s
    /// handler deadline. Its time is the one each request carries from
    /// [`VerifyLayer::clock`](crate::VerifyLayer::clock) (a
    /// [`RequestClock`](crate::RequestClock)).
    #[must_use]
    pub fn new() -> Self {
        Self {
            routes: Arc::new(Routes {
                exact: HashMap::new(),
                family: HashMap::new(),
                fallback: None,
                inbox: None,
                store: Arc::new(MemoryStore::default()),
                handler_timeout: DEFAULT_HANDLER_TIMEOUT,
                claim_lease: None,
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Routes)) -> Self {
        f(Arc::make_mut(&mut self.routes));
        self
    }

    /// Handles `trigger` with `handler`: an async function or closure taking
    /// the [`WebhookEvent`] (and optionally the [`DeliveryContext`](crate::DeliveryContext)), or any
    /// [`Handler`].
    ///
    /// ```
    /// use boxhook::{DeliveryContext, HandlerError, Router};
    /// use boxhook::model::{Trigger, WebhookEvent};
    ///
    /// let router = Router::new()
    ///     .on(Trigger::FileUploaded, |event: WebhookEvent| async move {
    ///         println!("uploaded {}", event.id());
    ///         Ok::<_, HandlerError>(())
    ///     })
    ///     .on(Trigger::FileDeleted, |event: WebhookEvent, ctx: DeliveryContext| async move {
    ///         println!("deleted {} (delivery {:?})", event.id(), ctx.delivery_id());
    ///         Ok::<_, std::io::Error>(())
    ///     });
    /// # let _ = router;
    /// ```
    ///
    /// # Panics
    ///
    /// When `trigger` already has a handler (including one given to
    /// [`on_webhook_deleted`](Router::on_webhook_deleted) or
    /// [`on_no_active_session`](Router::on_no_active_session)): a setup error.
    #[must_use]
    pub fn on<M: 'static>(self, trigger: Trigger, handler: impl Handler<WebhookEvent, M>) -> Self {
        self.route(trigger, Erased::<_, WebhookEvent, M>::new(handler))
    }

    fn route(self, trigger: Trigger, handler: impl ErasedHandler + 'static) -> Self {
        self.edit(|r| {
            assert!(
                !r.exact.contains_key(&trigger),
                "boxhook: {trigger} has a handler already"
            );
            r.exact.insert(trigger, Arc::new(handler));
        })
    }

    /// Handles every trigger of `family` (`FILE.*`, `FOLDER.*`, ...) that has
    /// no handler of its own.
    ///
    /// ```
    /// use boxhook::{HandlerError, Router};
    /// use boxhook::model::{TriggerFamily, WebhookEvent};
    ///
    /// let router = Router::new().on_family(TriggerFamily::Folder, |event: WebhookEvent| async move {
    ///     println!("folder event {}", event.trigger());
    ///     Ok::<_, HandlerError>(())
    /// });
    /// # let _ = router;
    /// ```
    ///
    /// # Panics
    ///
    /// When `family` already has a handler.
    #[must_use]
    pub fn on_family<M: 'static>(
        self,
        family: TriggerFamily,
        handler: impl Handler<WebhookEvent, M>,
    ) -> Self {
        self.edit(|r| {
            assert!(
                !r.family.contains_key(&family),
                "boxhook: {family:?} has a handler already"
            );
            r.family
                .insert(family, Arc::new(Erased::<_, WebhookEvent, M>::new(handler)));
        })
    }

    /// Handles `WEBHOOK.DELETED` with its typed view, [`WebhookDeleted`]
    /// (with its reason, `auto_cleanup`). It is the handler for that
    /// trigger, as [`on`](Router::on) would register it.
    ///
    /// ```
    /// use boxhook::{HandlerError, Router, WebhookDeleted};
    ///
    /// let router = Router::new().on_webhook_deleted(|deleted: WebhookDeleted| async move {
    ///     eprintln!("recreate webhook {:?}", deleted.webhook_id());
    ///     Ok::<_, HandlerError>(())
    /// });
    /// # let _ = router;
    /// ```
    ///
    /// # Panics
    ///
    /// When `WEBHOOK.DELETED` already has a handler.
    #[must_use]
    pub fn on_webhook_deleted<M: 'static>(self, handler: impl Handler<WebhookDeleted, M>) -> Self {
        self.route(
            Trigger::WebhookDeleted,
            Erased::<_, WebhookDeleted, M>::new(handler),
        )
    }

    /// Handles `NO_ACTIVE_SESSION`, Box's sign that the webhook's
    /// authorization has died, with its typed view, [`NoActiveSession`]. It
    /// is the handler for that trigger, as [`on`](Router::on) would
    /// register it.
    ///
    /// ```
    /// use boxhook::{HandlerError, NoActiveSession, Router};
    ///
    /// let router = Router::new().on_no_active_session(|alert: NoActiveSession| async move {
    ///     eprintln!("re-authorize the Box app (webhook {:?})", alert.webhook_id());
    ///     Ok::<_, HandlerError>(())
    /// });
    /// # let _ = router;
    /// ```
    ///
    /// # Panics
    ///
    /// When `NO_ACTIVE_SESSION` already has a handler.
    #[must_use]
    pub fn on_no_active_session<M: 'static>(
        self,
        handler: impl Handler<NoActiveSession, M>,
    ) -> Self {
        self.route(
            Trigger::NoActiveSession,
            Erased::<_, NoActiveSession, M>::new(handler),
        )
    }

    /// Handles every event no other handler takes, including triggers boxhook
    /// does not know yet.
    ///
    /// To store every such event in an inbox, use [`Router::store_in`]
    /// instead.
    ///
    /// ```
    /// use boxhook::{HandlerError, Router};
    /// use boxhook::model::WebhookEvent;
    ///
    /// let router = Router::new().fallback(|event: WebhookEvent| async move {
    ///     println!("unrouted {} ({})", event.id(), event.trigger());
    ///     Ok::<_, HandlerError>(())
    /// });
    /// # let _ = router;
    /// ```
    ///
    /// # Panics
    ///
    /// When a fallback is set already, or [`Router::store_in`] is: both would
    /// take the same events.
    #[must_use]
    pub fn fallback<M: 'static>(self, handler: impl Handler<WebhookEvent, M>) -> Self {
        self.edit(|r| {
            assert!(r.fallback.is_none(), "boxhook: the fallback is set already");
            assert!(r.inbox.is_none(), "{FALLBACK_AND_INBOX}");
            r.fallback = Some(Arc::new(Erased::<_, WebhookEvent, M>::new(handler)));
        })
    }

    /// Stores every event no other handler takes in `inbox`, to be processed
    /// later by a [`Worker`](crate::inbox::Worker): the one call for "store
    /// everything, answer Box at once".
    ///
    /// It takes the events a fallback would, `WEBHOOK.DELETED` and
    /// `NO_ACTIVE_SESSION` included unless they have dedicated handlers
    /// (both are still logged at `warn`). For each one the router builds the
    /// [`NewRecord`](crate::inbox::NewRecord) itself (`received_at` from the
    /// request's [`RequestClock`](crate::RequestClock), that is the
    /// [`VerifyLayer::clock`](crate::VerifyLayer::clock)), calls
    /// [`Inbox::store`], and answers from the inbox's own answer:
    ///
    /// | `store` returned | outcome | status |
    /// |---|---|---|
    /// | [`Stored::New`](crate::inbox::Stored::New) | [`Outcome::Handled`] | 200 |
    /// | [`Stored::Duplicate`](crate::inbox::Stored::Duplicate) | [`Outcome::Duplicate`] | 200 |
    /// | an error | [`Outcome::InboxFailed`] (logged at `error` with the reason) | 503 |
    /// | nothing before the [handler timeout](Router::handler_timeout) | [`Outcome::TimedOut`] | 503 |
    ///
    /// These events do not go through the [idempotency store](Router::idempotency):
    /// the inbox's unique key (`webhook.id` + event `id`) is the
    /// deduplication, so of concurrent deliveries of one event exactly one
    /// is `handled` and each is counted once. Events taken by other handlers
    /// are deduplicated by the idempotency store as usual.
    ///
    /// ```
    /// use boxhook::inbox::{Inbox, ListFilter};
    /// # use boxhook::inbox::*;
    /// # use std::sync::Mutex;
    /// # #[derive(Default)] struct Vec1(Mutex<Vec<NewRecord>>);
    /// # impl Inbox for Vec1 {
    /// #   async fn store(&self, r: NewRecord) -> Result<Stored, InboxError> { self.0.lock().unwrap().push(r); Ok(Stored::New) }
    /// #   async fn claim_next(&self, _: &str, _: std::time::Duration, _: chrono::DateTime<chrono::Utc>) -> Result<Option<Claimed>, InboxError> { Ok(None) }
    /// #   async fn ack(&self, _: &Claimed) -> Result<(), InboxError> { Ok(()) }
    /// #   async fn requeue(&self, _: &Claimed, _: chrono::DateTime<chrono::Utc>) -> Result<(), InboxError> { Ok(()) }
    /// #   async fn list(&self, _: ListFilter) -> Result<Vec<InboxEntry>, InboxError> { Ok(vec![]) }
    /// #   async fn get(&self, _: &str) -> Result<Option<StoredEvent>, InboxError> { Ok(None) }
    /// #   async fn counts(&self) -> Result<boxhook::inbox::Counts, InboxError> { Ok(Default::default()) }
    /// # }
    /// use boxhook::{HandlerError, Router};
    /// use boxhook::model::{Trigger, WebhookEvent};
    /// use std::sync::Arc;
    ///
    /// let inbox = Arc::new(Vec1::default()); // boxhook_sqlite::SqliteInbox in real life
    /// let router = Router::new()
    ///     // handled at once, deduplicated by the idempotency store:
    ///     .on(Trigger::FileDeleted, |_e: WebhookEvent| async { Ok::<_, HandlerError>(()) })
    ///     // everything else: stored, deduplicated by the inbox
    ///     .store_in(Arc::clone(&inbox));
    /// # let _ = router;
    /// ```
    ///
    /// # Panics
    ///
    /// When an inbox or a [`fallback`](Router::fallback) is set already: the
    /// fallback and the inbox would take the same events. Route the events
    /// the fallback should see with [`on`](Router::on) or
    /// [`on_family`](Router::on_family) instead.
    #[must_use]
    pub fn store_in(self, inbox: impl Inbox) -> Self {
        self.edit(|r| {
            assert!(r.inbox.is_none(), "boxhook: store_in is set already");
            assert!(r.fallback.is_none(), "{FALLBACK_AND_INBOX}");
            r.inbox = Some(Arc::new(inbox));
        })
    }

    /// The idempotency store (default: [`MemoryStore::default`]). To keep
    /// a handle on it (a test inspecting it, two routers sharing it), pass
    /// an `Arc` of it: `Arc<S>` is a store whenever `S` is.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use boxhook::idempotency::MemoryStore;
    /// use boxhook::Router;
    ///
    /// let store = Arc::new(MemoryStore::new(10_000, Duration::from_secs(3600)));
    /// let uploads = Router::new().idempotency(Arc::clone(&store));
    /// let deletions = Router::new().idempotency(store);
    /// # let _ = (uploads, deletions);
    /// ```
    #[must_use]
    pub fn idempotency(self, store: impl IdempotencyStore) -> Self {
        self.edit(|r| r.store = Arc::new(store))
    }

    /// How long a handler may run (default [`DEFAULT_HANDLER_TIMEOUT`]);
    /// past it, the handler is cancelled and Box told to retry (503).
    #[must_use]
    pub fn handler_timeout(self, timeout: Duration) -> Self {
        self.edit(|r| r.handler_timeout = timeout)
    }

    /// How long a claim on an event lasts before another attempt may take it
    /// over (default: the handler timeout plus 5 s, so a running handler is
    /// never doubled).
    #[must_use]
    pub fn claim_lease(self, lease: Duration) -> Self {
        self.edit(|r| r.claim_lease = Some(lease))
    }
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.routes;
        f.debug_struct("Router")
            .field("triggers", &r.exact.keys().collect::<Vec<_>>())
            .field("families", &r.family.keys().collect::<Vec<_>>())
            .field("fallback", &r.fallback.is_some())
            .field("store_in", &r.inbox.is_some())
            .field("handler_timeout", &r.handler_timeout)
            .finish_non_exhaustive()
    }
}
