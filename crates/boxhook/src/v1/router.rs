//! [`V1Handler`] and [`V1Router`]: what runs for a V1 callback.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::{V1Callback, V1Trigger};
use crate::escaped;
use crate::handler::{BoxFuture, HandlerError};
use crate::inbox::{ErasedInbox, Inbox, Stored};
use crate::panic::{catch_unwind, panic_message};
use crate::Outcome;

/// Handles V1 callbacks: an async function or closure taking a
/// [`V1Callback`] and returning `Result<(), E>` with
/// `E: Into<HandlerError>`, or your own type, as with
/// [`Handler`](crate::Handler) for V2 events.
///
/// ```
/// use boxhook::v1::{V1Callback, V1Router, V1Trigger};
/// use boxhook::HandlerError;
///
/// async fn on_upload(callback: V1Callback) -> Result<(), HandlerError> {
///     println!("uploaded: {:?}", callback.item_name());
///     Ok(())
/// }
/// let router = V1Router::new().on(V1Trigger::Uploaded, on_upload);
/// # let _ = router;
/// ```
pub trait V1Handler: Send + Sync + 'static {
    /// Handles one callback.
    fn call(&self, callback: V1Callback) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

impl<F, Fut, E> V1Handler for F
where
    F: Fn(V1Callback) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
    E: Into<HandlerError>,
{
    fn call(&self, callback: V1Callback) -> impl Future<Output = Result<(), HandlerError>> + Send {
        let handled = self(callback);
        async move { handled.await.map_err(Into::into) }
    }
}

trait ErasedV1Handler: Send + Sync {
    fn call_boxed(&self, callback: V1Callback) -> BoxFuture<'_, Result<(), HandlerError>>;
}

impl<H: V1Handler> ErasedV1Handler for H {
    fn call_boxed(&self, callback: V1Callback) -> BoxFuture<'_, Result<(), HandlerError>> {
        Box::pin(self.call(callback))
    }
}

/// Sends each V1 callback to the handler for its trigger, else to the
/// fallback, else into the inbox given to [`store_in`](Self::store_in),
/// else answers 200 `unhandled`. The answer is an [`Outcome`], as for V2.
///
/// **V1 callbacks are never retried.** A handler that fails (500) or an
/// inbox that cannot store (503) loses the callback for good; Box only
/// records a failed delivery. Hence the advice: `store_in` a durable
/// inbox, which answers 2xx only once the callback is stored, and process
/// it from there.
///
/// ```
/// use boxhook::v1::{V1Callback, V1Router, V1Trigger};
/// use boxhook::HandlerError;
///
/// let router = V1Router::new()
///     .on(V1Trigger::Deleted, |cb: V1Callback| async move {
///         println!("deleted {:?}", cb.item_id());
///         Ok::<_, HandlerError>(())
///     })
///     .fallback(|_cb: V1Callback| async { Ok::<_, HandlerError>(()) });
/// # let _ = router;
/// ```
#[derive(Clone)]
pub struct V1Router {
    routes: Vec<(V1Trigger, Arc<dyn ErasedV1Handler>)>,
    fallback: Option<Arc<dyn ErasedV1Handler>>,
    inbox: Option<Arc<dyn ErasedInbox>>,
    handler_timeout: Duration,
}

impl Default for V1Router {
    fn default() -> Self {
        Self {
            routes: Vec::new(),
            fallback: None,
            inbox: None,
            handler_timeout: crate::DEFAULT_HANDLER_TIMEOUT,
        }
    }
}

impl V1Router {
    /// A router with no handler: it answers every callback `unhandled`.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// How long a handler (or the inbox's store) may take before it is
    /// cancelled and the callback answered 503 `timed_out`: the same
    /// deadline, with the same default
    /// ([`DEFAULT_HANDLER_TIMEOUT`](crate::DEFAULT_HANDLER_TIMEOUT), 25 s), as
    /// [`Router::handler_timeout`](crate::Router::handler_timeout). Box
    /// does not retry V1 callbacks, so a cancelled one is lost; the log
    /// says so.
    ///
    /// ```
    /// use std::time::Duration;
    /// let router = boxhook::v1::V1Router::new().handler_timeout(Duration::from_secs(5));
    /// # let _ = router;
    /// ```
    #[must_use]
    pub fn handler_timeout(mut self, timeout: Duration) -> Self {
        self.handler_timeout = timeout;
        self
    }

    /// Runs `handler` for callbacks with this trigger (an
    /// [`Other`](V1Trigger::Other) matches its exact text). A later `on`
    /// for the same trigger replaces the earlier one.
    #[must_use]
    pub fn on(mut self, trigger: V1Trigger, handler: impl V1Handler) -> Self {
        self.routes.retain(|(t, _)| *t != trigger);
        self.routes.push((trigger, Arc::new(handler)));
        self
    }

    /// Runs `handler` for callbacks no [`on`](Self::on) takes.
    #[must_use]
    pub fn fallback(mut self, handler: impl V1Handler) -> Self {
        self.fallback = Some(Arc::new(handler));
        self
    }

    /// Stores every callback no handler takes in `inbox`, as a
    /// [`RecordKind::V1`](crate::inbox::RecordKind::V1) record under its
    /// own unique id, and answers 200 only once it is stored (503 when the
    /// inbox fails).
    #[must_use]
    pub fn store_in(mut self, inbox: impl Inbox) -> Self {
        self.inbox = Some(Arc::new(inbox));
        self
    }

    /// Runs what this router runs for `callback`, and says what happened.
    pub async fn dispatch(&self, callback: V1Callback) -> Outcome {
        let handler = self
            .routes
            .iter()
            .find(|(t, _)| t == callback.trigger())
            .map(|(_, h)| h)
            .or(self.fallback.as_ref());
        let deadline = self.handler_timeout;
        let id = callback.id().to_owned();
        // tokio saturates: a deadline past what `Instant` holds never fires.
        let outcome = if let Some(handler) = handler {
            tokio::time::timeout(deadline, run(handler.as_ref(), callback)).await
        } else if let Some(inbox) = &self.inbox {
            tokio::time::timeout(deadline, store(inbox.as_ref(), &callback)).await
        } else {
            tracing::debug!(
                callback_id = callback.id(),
                trigger = escaped::text(callback.trigger().as_str()),
                "no handler for V1 callback"
            );
            return Outcome::Unhandled;
        };
        outcome.unwrap_or_else(|_| {
            tracing::warn!(
                callback_id = id,
                ?deadline,
                "V1 callback passed its deadline; cancelled, and Box does not retry it"
            );
            Outcome::TimedOut
        })
    }
}

async fn run(handler: &dyn ErasedV1Handler, callback: V1Callback) -> Outcome {
    let id = callback.id().to_owned();
    match catch_unwind(|| handler.call_boxed(callback)).await {
        Ok(Ok(())) => Outcome::Handled,
        Ok(Err(error)) => {
            tracing::error!(
                callback_id = id,
                "V1 handler failed; Box does not retry V1 callbacks, so this one is lost: {}",
                escaped::shown(&error)
            );
            Outcome::Failed
        }
        Err(panic) => {
            tracing::error!(
                callback_id = id,
                "V1 handler panicked; Box does not retry V1 callbacks, so this one is lost: {}",
                escaped::text(panic_message(&*panic))
            );
            Outcome::Panicked
        }
    }
}

async fn store(inbox: &dyn ErasedInbox, callback: &V1Callback) -> Outcome {
    match inbox.store_boxed(callback.to_record()).await {
        Ok(Stored::New) => {
            tracing::debug!(
                callback_id = callback.id(),
                "V1 callback stored in the inbox"
            );
            Outcome::Handled
        }
        Ok(Stored::Duplicate { deliveries }) => {
            // Ids are unique: this is an id collision, which would merge
            // two callbacks. Say so, and keep the callback's answer honest.
            tracing::error!(
                callback_id = callback.id(),
                deliveries,
                "V1 callback id was in the inbox already; this callback was not stored"
            );
            Outcome::InboxFailed
        }
        Err(error) => {
            tracing::error!(
                callback_id = callback.id(),
                "V1 callback not stored, and Box does not retry it: {}",
                escaped::shown(&error)
            );
            Outcome::InboxFailed
        }
    }
}

impl fmt::Debug for V1Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V1Router")
            .field(
                "routes",
                &self.routes.iter().map(|(t, _)| t).collect::<Vec<_>>(),
            )
            .field("fallback", &self.fallback.is_some())
            .field("store_in", &self.inbox.is_some())
            .field("handler_timeout", &self.handler_timeout)
            .finish()
    }
}
