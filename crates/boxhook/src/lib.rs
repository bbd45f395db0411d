//! Receive Box webhooks: verify each delivery exactly as Box signs it, hand
//! each event once to a typed handler, and answer Box with the status that
//! makes it retry only what must be retried.
//!
//! # From `cargo add` to a running receiver
//!
//! ```toml
//! [dependencies]
//! boxhook = "0.1"
//! tokio = { version = "1", features = ["macros", "rt-multi-thread", "net"] }
//! hyper = { version = "1", features = ["server", "http1"] }
//! hyper-util = { version = "0.1", features = ["server", "http1", "tokio", "service"] }
//! ```
//!
//! 1. Take the two signature keys from the app's Developer Console
//!    (Configuration → Webhooks → Manage signature keys). Either may be
//!    missing, not both.
//! 2. Write handlers: async functions or your own types implementing
//!    [`Handler`].
//! 3. Put a [`Router`] behind a [`VerifyLayer`], and serve it with anything
//!    that runs tower services: hyper (below), axum (feature `axum`, see
//!    `examples/`), tonic's or your own server.
//!
//! ```no_run
//! use boxhook::{DeliveryContext, HandlerError, Router, VerifyLayer};
//! use boxhook_core::model::{Trigger, WebhookEvent};
//! use boxhook_core::{KeyRing, Verifier};
//! use tower_layer::Layer as _;
//!
//! async fn on_upload(event: WebhookEvent, ctx: DeliveryContext) -> Result<(), HandlerError> {
//!     println!("{} uploaded ({})", event.source().and_then(|s| s.name()).unwrap_or("?"), ctx.event_id());
//!     Ok(())
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let keys = KeyRing::from_strs(
//!         std::env::var("BOX_PRIMARY_KEY").ok().as_deref(),
//!         std::env::var("BOX_SECONDARY_KEY").ok().as_deref(),
//!     )?;
//!     let service = VerifyLayer::new(Verifier::new(keys))
//!         .layer(Router::new().on(Trigger::FileUploaded, on_upload));
//!
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//!     loop {
//!         let (stream, _) = listener.accept().await?;
//!         let service = hyper_util::service::TowerToHyperService::new(service.clone());
//!         tokio::spawn(async move {
//!             let io = hyper_util::rt::TokioIo::new(stream);
//!             let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
//!         });
//!     }
//! }
//! ```
//!
//! Box only delivers to HTTPS on port 443 with a public certificate
//! (PROTOCOL §6): run the receiver behind a TLS-terminating proxy. The proxy
//! must pass the body through untouched; if it re-encodes JSON, verification
//! still succeeds through the escaped form and
//! [`Verified::body_form`](boxhook_core::Verified::body_form) tells you so.
//!
//! # What answers Box gets
//!
//! The verify layer answers 405 (not `POST`), 413 (body over the limit), 408
//! (body too slow), 503 (the shared [`BodyBudget`](verify::BodyBudget), when
//! set, cannot hold the body) and 401 (any verification failure), each with
//! an empty body; the reason goes to `tracing` and into the response extensions as a
//! [`Rejection`](verify::Rejection). The router's answers are listed in
//! [`Outcome`]: 200 for handled, duplicate and unhandled events; 500 and 503
//! make Box retry.
//!
//! # Exactly once, as far as the handler sees
//!
//! The router claims each event in an [`IdempotencyStore`](idempotency::IdempotencyStore)
//! keyed on `webhook.id` and the event `id` (never the delivery id, which
//! changes on every retry), runs the handler, and only then marks it done. A
//! failed attempt releases its claim so Box's retry is processed; a duplicate
//! of a handled event is acknowledged without running the handler. See
//! [`idempotency`].
//!
//! # Slow handlers: store now, process later
//!
//! Box waits 30 s for an answer. When handling takes longer, store every
//! event in an inbox with [`Router::store_in`] (durable storage, e.g. the
//! `boxhook-sqlite` crate) and process it with an [`inbox::Worker`] at your
//! own pace; see [`inbox`].
//!
//! # Testing handlers
//!
//! The `boxhook-testkit` crate builds requests exactly as Box sends them,
//! signed with the same `Signer` this crate verifies against, plus tampered,
//! stale, future, wrong-key, missing-header and re-serialized variants, the
//! fixture corpus, and a Box-like retrying simulator. Drive this crate's
//! service with them through `tower::ServiceExt::oneshot`; the router puts
//! the [`Outcome`] and the [`RoutedEvent`] in every response's extensions.

#![warn(clippy::arithmetic_side_effects)]

pub mod alert;
mod clock;
mod handler;
pub mod idempotency;
pub mod inbox;
mod log;
pub mod marker;
mod panic;
mod router;
pub mod verify;

#[cfg(feature = "axum")]
pub mod axum;

pub use boxhook_core as core;
pub use clock::RequestClock;
pub use handler::Dedicated;
pub use handler::{Handler, HandlerError, NoActiveSession, WebhookDeleted};
pub use router::{
    DeliveryContext, Outcome, RoutedEvent, Router, RouterFuture, DEFAULT_HANDLER_TIMEOUT,
};
pub use verify::VerifyLayer;
