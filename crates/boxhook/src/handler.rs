//! The handler traits users implement, and what a handler returns.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use boxhook_core::model::{DeletionReason, WebhookEvent};

use crate::router::DeliveryContext;

/// Handles one kind of input: a [`WebhookEvent`] (the default), a
/// [`WebhookDeleted`] or a [`NoActiveSession`].
///
/// Implement it on your own types to hold state (clients, pools), or pass an
/// async closure `|input, ctx| async move { ... }`: every
/// `Fn(T, DeliveryContext) -> impl Future<Output = Result<(), HandlerError>>`
/// is a handler.
///
/// ```
/// use boxhook::{DeliveryContext, Handler, HandlerError, Router};
/// use boxhook_core::model::{Trigger, WebhookEvent};
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
/// let router = Router::new()
///     .on(Trigger::FileUploaded, Indexer { index_name: "files".into() })
///     .on(Trigger::FileDeleted, |event: WebhookEvent, _ctx: DeliveryContext| async move {
///         println!("deleted: {:?}", event.source().map(|s| s.id()));
///         Ok(())
///     });
/// # let _ = router;
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a boxhook handler for `{T}`",
    label = "not a `Handler<{T}>`",
    note = "implement `boxhook::Handler<{T}>`, or pass an async closure `|input: {T}, ctx: DeliveryContext| async move {{ Ok(()) }}` returning `Result<(), HandlerError>`"
)]
pub trait Handler<T = WebhookEvent>: Send + Sync + 'static {
    /// Handles `input`. `Ok(())` acknowledges the event (200); an error makes
    /// Box retry it (see [`HandlerError`]).
    fn call(
        &self,
        input: T,
        ctx: DeliveryContext,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

impl<F, Fut, T> Handler<T> for F
where
    F: Fn(T, DeliveryContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send,
    T: Send + 'static,
{
    fn call(
        &self,
        input: T,
        ctx: DeliveryContext,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send {
        self(input, ctx)
    }
}

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A [`Handler`] behind a pointer: what the router stores.
pub(crate) trait ErasedHandler<T>: Send + Sync {
    fn call_boxed(&self, input: T, ctx: DeliveryContext)
        -> BoxFuture<'_, Result<(), HandlerError>>;
}

impl<H: Handler<T>, T: Send + 'static> ErasedHandler<T> for H {
    fn call_boxed(
        &self,
        input: T,
        ctx: DeliveryContext,
    ) -> BoxFuture<'_, Result<(), HandlerError>> {
        Box::pin(self.call(input, ctx))
    }
}

/// A handler's failure. Box retries the event either way (see "Retries and deduplication" in
/// docs/PROTOCOL.md); the
/// difference is the status and the log line.
///
/// - [`HandlerError::new`], or `?` on any error: the handler failed, 500.
/// - [`HandlerError::retry_later`]: a temporary condition (a dependency is
///   down, a rate limit), 503.
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
    source: Box<dyn StdError + Send + Sync>,
}

impl HandlerError {
    /// The handler failed: answered with 500.
    pub fn new(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            retry: false,
            source: error.into(),
        }
    }

    /// The handler asks Box to come back later: answered with 503.
    pub fn retry_later(reason: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            retry: true,
            source: reason.into(),
        }
    }

    /// Whether this asks for a retry rather than reporting a failure.
    #[must_use]
    pub fn is_retry(&self) -> bool {
        self.retry
    }

    /// The underlying error.
    #[must_use]
    pub fn source(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.source
    }
}

impl<E: Into<Box<dyn StdError + Send + Sync>>> From<E> for HandlerError {
    fn from(error: E) -> Self {
        Self::new(error)
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerError")
            .field("retry", &self.retry)
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
/// use boxhook_core::model::DeletionReason;
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

impl WebhookDeleted {
    pub(crate) fn new(event: WebhookEvent) -> Self {
        let reason = event.additional_info().deletion_reason();
        Self { event, reason }
    }

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

impl NoActiveSession {
    pub(crate) fn new(event: WebhookEvent) -> Self {
        Self { event }
    }

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
