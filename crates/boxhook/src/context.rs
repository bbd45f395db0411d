//! [`DeliveryContext`]: what a handler knows about the delivery besides the event.

use boxhook_core::{BodyForm, Clock as _, KeySlot, Verified};
use bytes::Bytes;
use chrono::{DateTime, FixedOffset, Utc};

use crate::RequestClock;

/// The delivery an event came in: ids, timing, which key and body form
/// matched, and the raw body. Cheap to clone.
///
/// ```
/// use boxhook::{DeliveryContext, HandlerError};
/// use boxhook::model::WebhookEvent;
///
/// async fn audit(event: WebhookEvent, ctx: DeliveryContext) -> Result<(), HandlerError> {
///     println!(
///         "event {} (delivery {:?}, key {}, {} bytes, {} s old)",
///         ctx.event_id(),
///         ctx.delivery_id(),
///         ctx.key_slot(),
///         ctx.raw_body().len(),
///         ctx.verified().age().num_seconds(),
///     );
///     # let _ = event;
///     Ok(())
/// }
/// # let _ = boxhook::Router::new().fallback(audit);
/// ```
#[derive(Debug, Clone)]
pub struct DeliveryContext {
    verified: Verified,
    event_id: String,
    webhook_id: Option<String>,
    body: Bytes,
    clock: RequestClock,
}

impl DeliveryContext {
    pub(crate) fn new(
        verified: Verified,
        event_id: String,
        webhook_id: Option<String>,
        body: Bytes,
    ) -> Self {
        Self {
            verified,
            event_id,
            webhook_id,
            body,
            clock: RequestClock::default(),
        }
    }

    /// The same context, timed by `clock` (the router passes the request's).
    pub(crate) fn with_clock(mut self, clock: RequestClock) -> Self {
        self.clock = clock;
        self
    }

    /// The verification proof.
    #[must_use]
    pub fn verified(&self) -> &Verified {
        &self.verified
    }

    /// `BOX-DELIVERY-ID`: changes on every retry; for logs, not deduplication.
    #[must_use]
    pub fn delivery_id(&self) -> Option<&str> {
        self.verified.delivery_id()
    }

    /// The event's `id`: the same on every retry.
    #[must_use]
    pub fn event_id(&self) -> &str {
        &self.event_id
    }

    /// `webhook.id`.
    #[must_use]
    pub fn webhook_id(&self) -> Option<&str> {
        self.webhook_id.as_deref()
    }

    /// `BOX-DELIVERY-TIMESTAMP`.
    #[must_use]
    pub fn timestamp(&self) -> DateTime<FixedOffset> {
        self.verified.timestamp()
    }

    /// Which key matched.
    #[must_use]
    pub fn key_slot(&self) -> KeySlot {
        self.verified.key_slot()
    }

    /// Which body form matched.
    #[must_use]
    pub fn body_form(&self) -> BodyForm {
        self.verified.body_form()
    }

    /// The body exactly as received.
    #[must_use]
    pub fn raw_body(&self) -> &Bytes {
        &self.body
    }

    /// The receiver's time now, from the clock set with
    /// [`VerifyLayer::clock`](crate::VerifyLayer::clock): the clock the
    /// delivery was verified and claimed with, so a test's fixed clock
    /// reaches handlers too.
    ///
    /// ```
    /// use boxhook::{DeliveryContext, HandlerError};
    /// use boxhook::model::WebhookEvent;
    ///
    /// async fn stamp(event: WebhookEvent, ctx: DeliveryContext) -> Result<(), HandlerError> {
    ///     println!("{} handled at {}", event.id(), ctx.now().to_rfc3339());
    ///     Ok(())
    /// }
    /// # let _ = boxhook::Router::new().fallback(stamp);
    /// ```
    #[must_use]
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The receiver's clock itself, to hand to code that takes a
    /// [`Clock`](crate::Clock).
    ///
    /// ```
    /// use boxhook::{DeliveryContext, HandlerError};
    /// use boxhook::Clock;
    /// use boxhook::model::WebhookEvent;
    ///
    /// fn due(clock: &dyn Clock) -> bool { clock.now().timestamp() > 0 }
    ///
    /// async fn check(_event: WebhookEvent, ctx: DeliveryContext) -> Result<(), HandlerError> {
    ///     assert!(due(ctx.clock()));
    ///     Ok(())
    /// }
    /// # let _ = boxhook::Router::new().fallback(check);
    /// ```
    #[must_use]
    pub fn clock(&self) -> &RequestClock {
        &self.clock
    }
}
