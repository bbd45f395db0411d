//! Marker types that tell [`Handler`](crate::Handler)'s two closure shapes
//! apart. You never name them: the compiler picks the one your function or
//! closure fits, and a handler you implement yourself takes the default.
//!
//! The module is private, so the types cannot be named outside the crate;
//! they are `pub` because they appear in `Handler`'s public signature (its
//! second type parameter), as sealed types do.
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
#[derive(Debug)]
pub enum WithContext {}

/// The handler takes the input alone: `Fn(T)`.
#[derive(Debug)]
pub enum EventOnly {}
