//! [`StoreInInbox`]: the router handler that stores events instead of
//! processing them.

use std::fmt;

use boxhook_core::model::WebhookEvent;

use super::{Inbox, NewRecord, Stored};
use crate::context::DeliveryContext;
use crate::escaped;
use crate::handler::{Handler, HandlerError, NoActiveSession, WebhookDeleted};

/// A [`Handler`] that stores each event in an [`Inbox`] and returns once it
/// is durable, so the 2xx Box gets means "stored". An inbox failure is a
/// handler failure: 500, and Box retries.
///
/// **To store every event, use [`Router::store_in`](crate::Router::store_in)
/// instead.** As a handler, `StoreInInbox` can only answer `Ok(())`, so the
/// router reports a delivery the inbox counted as a duplicate as `handled`,
/// and runs it under an idempotency claim besides. `store_in` takes the
/// outcome from the inbox's own answer and needs no claim. `StoreInInbox`
/// remains for storing only some triggers (with [`Router::on`](crate::Router::on)
/// or [`Router::on_family`](crate::Router::on_family)).
///
/// It handles plain events as well as `WEBHOOK.DELETED` and
/// `NO_ACTIVE_SESSION`, so it can be the router's fallback and the
/// dedicated handlers at once. `received_at` is
/// [`DeliveryContext::now`]: the receiver's one clock, set with
/// [`VerifyLayer::clock`](crate::VerifyLayer::clock).
///
/// ```
/// use boxhook::inbox::{Inbox, ListFilter, StoreInInbox};
/// # use boxhook::inbox::*;
/// # use std::sync::Mutex;
/// # #[derive(Default)] struct Vec1(Mutex<Vec<NewRecord>>);
/// # impl Inbox for Vec1 {
/// #   async fn store(&self, r: NewRecord) -> Result<Stored, InboxError> { self.0.lock().unwrap().push(r); Ok(Stored::New) }
/// #   async fn claim_next(&self, _: &str, _: std::time::Duration, _: chrono::DateTime<chrono::Utc>) -> Result<Option<Claimed>, InboxError> { Ok(None) }
/// #   async fn ack(&self, _: &Claimed) -> Result<(), InboxError> { Ok(()) }
/// #   async fn requeue(&self, _: &Claimed, _: chrono::DateTime<chrono::Utc>) -> Result<(), InboxError> { Ok(()) }
/// #   async fn list(&self, _: ListFilter) -> Result<Vec<InboxEntry>, InboxError> {
/// #     Ok(self.0.lock().unwrap().iter().map(|r| InboxEntry::new(r, 1, 0, EntryState::Pending)).collect()) }
/// #   async fn get(&self, _: &str) -> Result<Option<StoredEvent>, InboxError> { Ok(None) }
/// #   async fn counts(&self) -> Result<boxhook::inbox::Counts, InboxError> { Ok(Default::default()) }
/// # }
/// use boxhook::Router;
/// use std::sync::Arc;
///
/// let inbox = Arc::new(Vec1::default()); // boxhook_sqlite::SqliteInbox in real life
/// let router = Router::new().fallback(StoreInInbox::new(Arc::clone(&inbox)));
/// # let _ = router;
/// ```
pub struct StoreInInbox<I> {
    inbox: I,
}

impl<I: Inbox> StoreInInbox<I> {
    /// A handler storing into `inbox` (pass a clone or an `Arc` to keep
    /// using the inbox elsewhere).
    #[must_use]
    pub fn new(inbox: I) -> Self {
        Self { inbox }
    }

    /// The inbox events go to.
    #[must_use]
    pub fn inbox(&self) -> &I {
        &self.inbox
    }

    async fn store(&self, event: &WebhookEvent, ctx: &DeliveryContext) -> Result<(), HandlerError> {
        let record = NewRecord::from_delivery(event, ctx, ctx.now());
        match self.inbox.store(record).await {
            Ok(Stored::New) => {
                tracing::debug!(
                    event_id = escaped::text(ctx.event_id()),
                    "event stored in the inbox"
                );
                Ok(())
            }
            Ok(Stored::Duplicate { deliveries }) => {
                tracing::debug!(
                    event_id = escaped::text(ctx.event_id()),
                    deliveries,
                    "event was in the inbox already; delivery counted"
                );
                Ok(())
            }
            Err(error) => Err(HandlerError::new(error)),
        }
    }
}

impl<I: Clone> Clone for StoreInInbox<I> {
    fn clone(&self) -> Self {
        Self {
            inbox: self.inbox.clone(),
        }
    }
}

impl<I> fmt::Debug for StoreInInbox<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreInInbox").finish_non_exhaustive()
    }
}

impl<I: Inbox> Handler for StoreInInbox<I> {
    async fn call(&self, event: WebhookEvent, ctx: DeliveryContext) -> Result<(), HandlerError> {
        self.store(&event, &ctx).await
    }
}

impl<I: Inbox> Handler<WebhookDeleted> for StoreInInbox<I> {
    async fn call(&self, input: WebhookDeleted, ctx: DeliveryContext) -> Result<(), HandlerError> {
        self.store(input.event(), &ctx).await
    }
}

impl<I: Inbox> Handler<NoActiveSession> for StoreInInbox<I> {
    async fn call(&self, input: NoActiveSession, ctx: DeliveryContext) -> Result<(), HandlerError> {
        self.store(input.event(), &ctx).await
    }
}
