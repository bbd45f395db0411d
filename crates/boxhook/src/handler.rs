//! The handler traits users implement, and what a handler returns.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::Duration;

use boxhook_core::model::{DeletionReason, WebhookEvent};

use crate::context::DeliveryContext;
use crate::marker::{EventOnly, WithContext};

/// Handles one kind of input: a [`WebhookEvent`] (the default), a
/// [`WebhookDeleted`] or a [`NoActiveSession`].
///
/// Implement it on your own types to hold state (clients, pools), or pass an
/// async function or closure. Any
///
/// - `Fn(T, DeliveryContext) -> impl Future<Output = Result<(), E>>`, or
/// - `Fn(T) -> impl Future<Output = Result<(), E>>` (when the delivery
///   context is not needed),
///
/// with `E: Into<HandlerError>` (any `std::error::Error + Send + Sync`, a
/// boxed error, `anyhow::Error`, a `String`, or [`HandlerError`] itself) is
/// a handler. The second type parameter `M` only tells the two closure
/// shapes apart (a private marker type; the default is the one for handlers
/// taking the context). You never name it: code generic over handlers takes
/// it as a parameter of its own, `fn add<M>(handler: impl Handler<WebhookEvent, M>)`,
/// as [`Router::on`](crate::Router::on) does.
///
/// ```
/// use boxhook::{DeliveryContext, Handler, HandlerError, Router};
/// use boxhook::model::{Trigger, WebhookEvent};
///
/// struct Indexer { index_name: String }
///
/// impl Handler for Indexer {
///     async fn call(&self, event: WebhookEvent, ctx: DeliveryContext) -> Result<(), HandlerError> {
///         println!("{}: index {} for {}", ctx.event_id(), self.index_name, event.trigger());
///         Ok(())
///     }
/// }
///
/// // Your own error type: `?` and the return need no conversion.
/// async fn archive(event: WebhookEvent) -> Result<(), std::io::Error> {
///     std::fs::metadata(std::env::temp_dir())?;
///     println!("archived {}", event.id());
///     Ok(())
/// }
///
/// let router = Router::new()
///     .on(Trigger::FileUploaded, Indexer { index_name: "files".into() })
///     .on(Trigger::FileTrashed, archive)
///     .on(Trigger::FileDeleted, |event: WebhookEvent| async move {
///         println!("deleted: {:?}", event.source().map(|s| s.id()));
///         Ok::<_, HandlerError>(()) // a closure that never fails names its error type
///     })
///     .on(Trigger::FileCopied, |event: WebhookEvent, ctx: DeliveryContext| async move {
///         println!("copied {} (delivery {:?})", event.id(), ctx.delivery_id());
///         Ok::<_, HandlerError>(())
///     });
/// # let _ = router;
/// ```
///
/// A function of another shape is refused with a note saying what fits:
///
/// ```compile_fail,E0277
/// use boxhook::Router;
/// use boxhook::model::{Trigger, WebhookEvent};
///
/// // Not async, and returns nothing: not a handler.
/// fn on_upload(_event: WebhookEvent) {}
///
/// let router = Router::new().on(Trigger::FileUploaded, on_upload);
/// // error[E0277]: `fn(WebhookEvent) {on_upload}` is not a boxhook handler for `WebhookEvent`
/// //   = note: pass an async fn or closure taking `WebhookEvent` (and optionally
/// //     `DeliveryContext`) that returns `Result<(), E>` with `E: Into<HandlerError>`, ...
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a boxhook handler for `{T}`",
    label = "not a `Handler<{T}>`",
    note = "pass an async fn or closure taking `{T}` (and optionally `DeliveryContext`) that returns `Result<(), E>` with `E: Into<HandlerError>`, e.g. `|input: {T}| async move {{ Ok::<_, HandlerError>(()) }}`, or implement `boxhook::Handler<{T}>` for your type"
)]
pub trait Handler<T = WebhookEvent, M = WithContext>: Send + Sync + 'static {
    /// Handles `input`. `Ok(())` acknowledges the event (200); an error makes
    /// Box retry it (see [`HandlerError`]).
    fn call(
        &self,
        input: T,
        ctx: DeliveryContext,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

impl<F, Fut, E, T> Handler<T, WithContext> for F
where
    F: Fn(T, DeliveryContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
    E: Into<HandlerError>,
    T: Send + 'static,
{
    fn call(
        &self,
        input: T,
        ctx: DeliveryContext,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send {
        let handled = self(input, ctx);
        async move { handled.await.map_err(Into::into) }
    }
}

impl<F, Fut, E, T> Handler<T, EventOnly> for F
where
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
    E: Into<HandlerError>,
    T: Send + 'static,
{
    fn call(
        &self,
        input: T,
        _ctx: DeliveryContext,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send {
        let handled = self(input);
        async move { handled.await.map_err(Into::into) }
    }
}

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Any [`Handler`] behind a pointer, taking the event as parsed: what the
/// router stores. The dedicated inputs are built from the event here.
pub(crate) trait ErasedHandler: Send + Sync {
    fn call_boxed(
        &self,
        event: WebhookEvent,
        ctx: DeliveryContext,
    ) -> BoxFuture<'_, Result<(), HandlerError>>;
}

/// A `Handler<T, M>` as an [`ErasedHandler`]: `T` is built from the event.
pub(crate) struct Erased<H, T, M> {
    handler: H,
    _input: PhantomData<fn() -> (T, M)>,
}

impl<H, T, M> Erased<H, T, M> {
    pub(crate) fn new(handler: H) -> Self {
        Self {
            handler,
            _input: PhantomData,
        }
    }
}

impl<H, T, M> ErasedHandler for Erased<H, T, M>
where
    H: Handler<T, M>,
    T: sealed::FromEvent + Send + 'static,
    M: 'static,
{
    fn call_boxed(
        &self,
        event: WebhookEvent,
        ctx: DeliveryContext,
    ) -> BoxFuture<'_, Result<(), HandlerError>> {
        Box::pin(self.handler.call(T::from_event(event), ctx))
    }
}

mod sealed {
    use boxhook_core::model::WebhookEvent;

    /// What a handler's input is built from. Sealed: only the router builds
    /// handler inputs.
    #[allow(unreachable_pub, reason = "sealed: not nameable outside the crate")]
    pub trait FromEvent {
        fn from_event(event: WebhookEvent) -> Self;
    }

    impl FromEvent for WebhookEvent {
        fn from_event(event: WebhookEvent) -> Self {
            event
        }
    }
}

/// A handler's failure. Box retries the event either way (see "Retries and deduplication" in
/// docs/PROTOCOL.md); the
/// difference is the status and the log line.
///
/// - [`HandlerError::new`], `?` on any error, or a handler returning its
///   own error type: the handler failed, 500.
/// - [`HandlerError::retry_later`]: a temporary condition (a dependency is
///   down, a rate limit), 503.
/// - For handlers an inbox [`Worker`](crate::inbox::Worker) runs, two more
///   say how to settle the event: [`HandlerError::retry_in`] (again after
///   exactly this long) and [`HandlerError::give_up`] (dead now).
///
/// ```
/// use boxhook::HandlerError;
///
/// fn parse_size(s: &str) -> Result<u64, HandlerError> {
///     Ok(s.parse::<u64>()?) // any std error converts: a failure, 500
/// }
/// assert!(!parse_size("x").unwrap_err().is_retry());
/// assert!(HandlerError::retry_later("search index is rebuilding").is_retry());
/// ```
pub struct HandlerError {
    retry: bool,
    settle: Settle,
    source: Box<dyn StdError + Send + Sync>,
}

/// What a failure asks of an inbox worker beyond the failure itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settle {
    /// The worker's own backoff and attempt limit.
    Backoff,
    /// Claimable again after exactly this long (attempt limit unchanged).
    RetryIn(Duration),
    /// Dead now, whatever attempts are left.
    GiveUp,
}

impl HandlerError {
    /// The handler failed: answered with 500.
    pub fn new(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            retry: false,
            settle: Settle::Backoff,
            source: error.into(),
        }
    }

    /// The handler asks Box to come back later: answered with 503.
    pub fn retry_later(reason: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            retry: true,
            settle: Settle::Backoff,
            source: reason.into(),
        }
    }

    /// A retry after exactly `wait`: answered with 503 by a receiver (Box
    /// keeps its own schedule); an inbox [`Worker`](crate::inbox::Worker)
    /// makes the event claimable again after `wait` instead of its backoff
    /// (the attempt still counts towards
    /// [`max_attempts`](crate::inbox::Worker::max_attempts)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use boxhook::HandlerError;
    ///
    /// let later = HandlerError::retry_in(Duration::from_secs(90), "rate limited for 90 s");
    /// assert!(later.is_retry());
    /// assert_eq!(later.retry_wait(), Some(Duration::from_secs(90)));
    /// assert_eq!(HandlerError::retry_later("busy").retry_wait(), None);
    /// ```
    pub fn retry_in(wait: Duration, reason: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            retry: true,
            settle: Settle::RetryIn(wait),
            source: reason.into(),
        }
    }

    /// The event can never be processed: answered with 500 by a receiver
    /// (Box retries it anyway); an inbox [`Worker`](crate::inbox::Worker)
    /// with dead letters marks it dead at once instead of retrying it
    /// (without dead letters it is released for a retry, as every event
    /// that cannot be processed is).
    ///
    /// ```
    /// use boxhook::HandlerError;
    ///
    /// let never = HandlerError::give_up("the folder this event names was deleted");
    /// assert!(never.is_give_up() && !never.is_retry());
    /// assert!(!HandlerError::new("timeout").is_give_up());
    /// ```
    pub fn give_up(reason: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            retry: false,
            settle: Settle::GiveUp,
            source: reason.into(),
        }
    }

    /// Whether this asks for a retry rather than reporting a failure.
    #[must_use]
    pub fn is_retry(&self) -> bool {
        self.retry
    }

    /// The exact wait [`retry_in`](Self::retry_in) asked for, if any.
    #[must_use]
    pub fn retry_wait(&self) -> Option<Duration> {
        match self.settle {
            Settle::RetryIn(wait) => Some(wait),
            Settle::Backoff | Settle::GiveUp => None,
        }
    }

    /// Whether the handler gave up on the event ([`give_up`](Self::give_up)).
    #[must_use]
    pub fn is_give_up(&self) -> bool {
        self.settle == Settle::GiveUp
    }

    /// The underlying error.
    #[must_use]
    pub fn source(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.source
    }
}

/// Every error converts into a failure (500): anything that converts into
/// `Box<dyn Error + Send + Sync>`, which covers every
/// `std::error::Error + Send + Sync + 'static` type (`std::io::Error`, your
/// own), boxed errors, `anyhow::Error` and `eyre::Report` (both convert into
/// a boxed error), `String` and `&str`. Build a retry with
/// [`HandlerError::retry_later`].
///
/// ```
/// use boxhook::HandlerError;
///
/// let io: HandlerError = std::io::Error::other("disk full").into();
/// let boxed: HandlerError = Box::<dyn std::error::Error + Send + Sync>::from("lost").into();
/// let text: HandlerError = String::from("no such folder").into();
/// assert_eq!(
///     [io.to_string(), boxed.to_string(), text.to_string()],
///     ["disk full", "lost", "no such folder"]
/// );
/// assert!(!io.is_retry());
/// ```
impl<E: Into<Box<dyn StdError + Send + Sync>>> From<E> for HandlerError {
    fn from(error: E) -> Self {
        Self::new(error)
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerError")
            .field("retry", &self.retry)
            .field("settle", &self.settle)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.source, f)
    }
}

/// Input of the dedicated `WEBHOOK.DELETED` handler
/// ([`Router::on_webhook_deleted`](crate::Router::on_webhook_deleted)).
///
/// Box deletes a webhook on its own when its app is deleted, its tokens are
/// all gone, or deliveries kept failing for 30 days, and then says
/// `auto_cleanup` (see "`WEBHOOK.DELETED` and `NO_ACTIVE_SESSION`" in docs/PROTOCOL.md). The
/// webhook must be recreated to receive
/// anything again.
///
/// ```
/// use boxhook::{DeliveryContext, HandlerError, WebhookDeleted};
/// use boxhook::model::DeletionReason;
///
/// async fn recreate(deleted: WebhookDeleted, _ctx: DeliveryContext) -> Result<(), HandlerError> {
///     if matches!(deleted.reason(), Some(DeletionReason::AutoCleanup)) {
///         println!("webhook {:?} was cleaned up by Box: recreate it", deleted.webhook_id());
///     }
///     Ok(())
/// }
/// let router = boxhook::Router::new().on_webhook_deleted(recreate);
/// # let _ = router;
/// ```
#[derive(Debug, Clone)]
pub struct WebhookDeleted {
    event: WebhookEvent,
    reason: Option<DeletionReason>,
}

impl sealed::FromEvent for WebhookDeleted {
    fn from_event(event: WebhookEvent) -> Self {
        let reason = event.additional_info().deletion_reason();
        Self { event, reason }
    }
}

impl WebhookDeleted {
    /// `additional_info.reason`: [`DeletionReason::AutoCleanup`] is the one
    /// Box documents; `None` when Box sent no reason.
    #[must_use]
    pub fn reason(&self) -> Option<&DeletionReason> {
        self.reason.as_ref()
    }

    /// The id of the webhook that was deleted.
    #[must_use]
    pub fn webhook_id(&self) -> Option<&str> {
        self.event.webhook().map(|w| w.id.as_str())
    }

    /// The whole event.
    #[must_use]
    pub fn event(&self) -> &WebhookEvent {
        &self.event
    }
}

/// Input of the dedicated `NO_ACTIVE_SESSION` handler
/// ([`Router::on_no_active_session`](crate::Router::on_no_active_session)).
///
/// The authorization that created the webhook has died (an expired developer
/// token, a removed JWT authorization, expired OAuth tokens). Box still sends
/// events, but the original trigger and most of the source are gone
/// (see "`WEBHOOK.DELETED` and `NO_ACTIVE_SESSION`" in docs/PROTOCOL.md). Treat it as an
/// operational alert: the owner must
/// re-authorize the application; the webhook itself need not be recreated.
///
/// ```
/// use boxhook::{DeliveryContext, HandlerError, NoActiveSession};
///
/// let router = boxhook::Router::new().on_no_active_session(
///     |alert: NoActiveSession, _ctx: DeliveryContext| async move {
///         eprintln!("page on-call: re-authorize the Box app (webhook {:?})", alert.webhook_id());
///         Ok::<_, HandlerError>(())
///     },
/// );
/// # let _ = router;
/// ```
#[derive(Debug, Clone)]
pub struct NoActiveSession {
    event: WebhookEvent,
}

impl sealed::FromEvent for NoActiveSession {
    fn from_event(event: WebhookEvent) -> Self {
        Self { event }
    }
}

impl NoActiveSession {
    /// The webhook whose authorization died.
    #[must_use]
    pub fn webhook_id(&self) -> Option<&str> {
        self.event.webhook().map(|w| w.id.as_str())
    }

    /// The type and id of the item the lost event was about, when sent.
    #[must_use]
    pub fn source(&self) -> Option<(&str, &str)> {
        self.event.source().map(|s| (s.type_name(), s.id()))
    }

    /// The whole (reduced) event. Its trigger is always
    /// `NO_ACTIVE_SESSION`: the original one is lost.
    #[must_use]
    pub fn event(&self) -> &WebhookEvent {
        &self.event
    }
}
