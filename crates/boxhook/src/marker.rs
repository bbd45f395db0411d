//! Marker types that tell [`Handler`](crate::Handler)'s two closure shapes
//! apart. You never name them: the compiler picks the one your function or
//! closure fits.
//!
//! ```
//! use boxhook::{DeliveryContext, HandlerError, Router};
//! use boxhook::model::{Trigger, WebhookEvent};
//!
//! async fn with_context(_: WebhookEvent, _: DeliveryContext) -> Result<(), HandlerError> { Ok(()) }
//! async fn event_only(_: WebhookEvent) -> Result<(), std::io::Error> { Ok(()) }
//!
//! let router = Router::new()
//!     .on(Trigger::FileUploaded, with_context) // Handler<WebhookEvent, WithContext>
//!     .on(Trigger::FileDeleted, event_only); // Handler<WebhookEvent, EventOnly>
//! # let _ = router;
//! ```

/// The handler takes the input and the
/// [`DeliveryContext`](crate::DeliveryContext): `Fn(T, DeliveryContext)`,
/// and the default for handlers you implement yourself.
///
/// ```
/// fn takes<H: boxhook::Handler<boxhook::model::WebhookEvent, boxhook::marker::WithContext>>(_: H) {}
/// takes(|_: boxhook::model::WebhookEvent, _: boxhook::DeliveryContext| async {
///     Ok::<_, boxhook::HandlerError>(())
/// });
/// ```
#[derive(Debug)]
pub enum WithContext {}

/// The handler takes the input alone: `Fn(T)`.
///
/// ```
/// fn takes<H: boxhook::Handler<boxhook::model::WebhookEvent, boxhook::marker::EventOnly>>(_: H) {}
/// takes(|_: boxhook::model::WebhookEvent| async { Ok::<_, boxhook::HandlerError>(()) });
/// ```
#[derive(Debug)]
pub enum EventOnly {}
