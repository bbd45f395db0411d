//! Receive Box webhooks: verify each delivery exactly as Box signs it, hand
//! each event once to a typed handler, and answer Box with the status that
//! makes it retry only what must be retried.
//!
//! # Where to start
//!
//! A receiver is one tower service: a layer that verifies, a router, and the
//! handlers you write.
//!
//! - [`VerifyLayer`] checks each delivery's signatures and timestamp with a
//!   [`Verifier`], which holds the app's two signature keys in a
//!   [`KeyRing`], and answers every delivery that fails before anything
//!   else sees it. The [`Verifier`] also works alone, without tower.
//! - [`Router`] parses each verified event and hands it, once, to the
//!   [`Handler`] registered for its trigger; its answer tells Box whether to
//!   retry.
//! - A [`Handler`] is what you write, usually an async function taking the
//!   [`WebhookEvent`] and, when it needs the delivery's ids, timing, key or
//!   raw body, its [`DeliveryContext`].
//! - [`inbox::Inbox`]: when handling takes longer than Box waits, the router
//!   stores each event in a durable inbox ([`Router::store_in`]) and an
//!   [`inbox::Worker`] processes it at your own pace.
//!
//! To run the service, [`server`] (feature `server`) serves it, or any tower
//! service holding it such as an axum app, over HTTP/1.1 with the connection
//! limits of the `boxhook` command: header, idle and age deadlines, a cap on
//! connections that drops the oldest idle one, and a global body budget; with
//! feature `server-tls` it also terminates TLS (1.2 and 1.3, FIPS-approved
//! suites, a reloadable certificate). Any other server that runs tower services works too. [`runtime`] (feature
//! `runtime`) sends deliveries as Box does, signed and with Box's retry
//! schedule, and replays stored events.
//!
//! # From `cargo new` to a running receiver
//!
//! One dependency on boxhook with its server, plus an async runtime and a
//! router. Until the crates are published, depend on them by path (a clone
//! of the repository) or by git, `git = "<the repository's URL>"` in place of
//! `path`:
//!
//! ```toml
//! [dependencies]
//! boxhook = { path = "../boxhook/crates/boxhook", features = ["server"] }
//! tokio = { version = "1", features = ["macros", "rt-multi-thread", "net"] }
//! axum = "0.8"
//! ```
//!
//! 1. Take the two signature keys from the app's Developer Console
//!    (Configuration → Webhooks → Manage signature keys). Either may be
//!    missing, not both.
//! 2. Write handlers: async functions or your own types implementing
//!    [`Handler`].
//! 3. Put a [`Router`] behind a [`VerifyLayer`], and serve it with
//!    [`server`] (connection limits and a body budget built in), or with
//!    anything that runs tower services.
//!
//! ```no_run
//! use boxhook::{
//!     DeliveryContext, HandlerError, KeyRing, Layer as _, Router, Trigger, Verifier, VerifyLayer,
//!     WebhookEvent,
//! };
//!
//! async fn on_upload(event: WebhookEvent, ctx: DeliveryContext) -> Result<(), HandlerError> {
//!     let name = event.source().and_then(|s| s.name()).unwrap_or("?");
//!     println!("{name} uploaded (event {})", ctx.event_id());
//!     Ok(())
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let keys = KeyRing::from_strs(
//!         std::env::var("BOX_PRIMARY_KEY").ok().as_deref(),
//!         std::env::var("BOX_SECONDARY_KEY").ok().as_deref(),
//!     )?;
//!     let webhooks = VerifyLayer::new(Verifier::new(keys))
//!         .layer(Router::new().on(Trigger::FileUploaded, on_upload));
//!     let app = axum::Router::new().route_service("/box/webhooks", webhooks);
//!
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//!     boxhook::server::serve(listener, app).await;
//!     Ok(())
//! }
//! ```
//!
//! A rejected delivery is answered with an empty body; why is logged with
//! `tracing` (a `WARN` line for a 401), which prints nothing until the
//! program installs a subscriber, e.g. `tracing-subscriber`'s
//! `tracing_subscriber::fmt().with_env_filter(EnvFilter::from_default_env()).init()`
//! run with `RUST_LOG=boxhook=debug`.
//!
//! The `boxhook-minimal-receiver` package in the repository's `examples/`
//! is this program with a graceful, bounded run (`--once`, `--for SECONDS`,
//! Ctrl-C) and a test that delivers a signed event to it.
//!
//! Box only delivers to HTTPS on port 443 with a public certificate
//! (see "Limits that shape a deployment" in docs/PROTOCOL.md): run the receiver behind a
//! TLS-terminating proxy. The proxy
//! must pass the body through untouched; if it re-encodes JSON, verification
//! still succeeds through the escaped form and
//! [`Verified::body_form`] tells you so.
//!
//! # Everything from one crate
//!
//! A receiver needs no other boxhook crate: the verifier's types are
//! re-exported here ([`Verifier`], [`Verified`], [`VerifyError`],
//! [`KeyRing`], [`SharedKeyRing`], [`Clock`], [`SystemClock`],
//! [`FixedClock`], [`Freshness`], [`Printable`], ...), the payload model is
//! [`model`] (with [`Trigger`] and [`WebhookEvent`] also at the root), tower's
//! [`Layer`] trait puts the [`VerifyLayer`] in front of a service, and
//! [`chrono`] is re-exported for the timestamps in
//! [`IdempotencyStore`](idempotency::IdempotencyStore) and
//! [`Inbox`](inbox::Inbox), so a custom store needs no extra dependency:
//!
//! ```
//! use boxhook::chrono::{DateTime, Utc};
//! use boxhook::model::TriggerFamily;
//! use boxhook::{Clock, FixedClock, Trigger};
//!
//! let clock = FixedClock::at("2024-05-14T09:12:31Z".parse()?);
//! let now: DateTime<Utc> = clock.now();
//! assert_eq!(now.to_rfc3339(), "2024-05-14T09:12:31+00:00");
//! assert_eq!(Trigger::FileUploaded.family(), TriggerFamily::File);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What answers Box gets
//!
//! The verify layer answers 405 (not `POST`), 413 (body over the limit), 408
//! (body too slow), 503 (the shared [`BodyBudget`](verify::BodyBudget): the
//! layer's own, or the one [`server`] puts in each request, 64 MiB by
//! default, cannot hold the body), 400 (an unsigned query `GET` or form `POST`:
//! a V1 callback on the V2 endpoint; see [`v1`]) and 401 (any verification
//! failure), each with an empty body; the reason goes to `tracing` and into the response extensions as a
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
//! service with them through `tower::ServiceExt::oneshot` (tower with its
//! `util` feature); the router puts the [`Outcome`] and the [`RoutedEvent`]
//! in every response's extensions. An app that serves the webhooks at a
//! path, as above, gets each delivery at that path with
//! `Delivery::at("/box/webhooks")`.

#![warn(clippy::arithmetic_side_effects)]
// Reason: the crate docs link `server` and `runtime`, which exist with their
// features only; the documentation is built with every feature (docs.rs:
// `all-features`, CI: `cargo doc --all-features`), where every link resolves.
#![cfg_attr(
    not(all(feature = "server", feature = "runtime")),
    allow(rustdoc::broken_intra_doc_links)
)]

// Every Rust snippet of the README compiles and runs as a doctest of this crate.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

pub mod alert;
mod clock;
mod context;
mod escaped;
mod handler;
pub mod idempotency;
pub mod inbox;
mod marker;
pub mod metrics;
mod panic;
mod router;
pub mod v1;
pub mod verify;

#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "runtime")]
pub mod runtime;
#[cfg(feature = "server")]
pub mod server;

pub use clock::RequestClock;
pub use context::DeliveryContext;
pub use handler::{Handler, HandlerError, NoActiveSession, WebhookDeleted};
pub use router::{Outcome, RoutedEvent, Router, RouterFuture, DEFAULT_HANDLER_TIMEOUT};
pub use verify::VerifyLayer;

/// The payload model: [`WebhookEvent`], [`Trigger`], [`Source`](model::Source)
/// and the types they hold.
///
/// ```
/// use boxhook::model::{Source, WebhookEvent};
///
/// let event = WebhookEvent::parse(br#"{
///     "id": "e-1", "trigger": "FILE.UPLOADED",
///     "source": {"id": "5", "type": "file", "name": "Q1.pdf", "size": 1024}
/// }"#)?;
/// let Some(Source::File(file)) = event.source() else { panic!("a file") };
/// assert_eq!(file.item.name.as_deref(), Some("Q1.pdf"));
/// assert_eq!(file.size, Some(1024));
/// # Ok::<(), boxhook::model::ParseError>(())
/// ```
pub use boxhook_core::model;
pub use boxhook_core::model::{Trigger, WebhookEvent};
pub use boxhook_core::{
    BodyForm, Clock, DeliveryHeaders, FixedClock, Freshness, KeyError, KeyRing, KeySlot, Printable,
    SharedKeyRing, SigningKey, SystemClock, Verified, Verifier, VerifierBuilder, VerifyError,
};

/// Why a delivery does not verify: [`diagnose`](diagnose::diagnose) repairs
/// the body, headers or keys one way at a time and names each repair that
/// verifies with a stable [`HintCode`](diagnose::HintCode) (see
/// docs/DIAGNOSIS.md for every code).
///
/// ```
/// use boxhook::diagnose::{diagnose, DiagnosisKeys, HintCode};
/// use boxhook::{chrono::Utc, DeliveryHeaders};
///
/// let headers = DeliveryHeaders::from_pairs([("box-signature-version", "1")])?;
/// let keys = DiagnosisKeys::new(Some("primary-key"), None)?;
/// let diagnosis = diagnose(&headers, b"{}", &keys, Utc::now());
/// assert_eq!(diagnosis.codes(), [HintCode::MissingHeader]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use boxhook_core::diagnose;

/// The date and time library of every timestamp boxhook hands out or takes
/// (the `now` of [`IdempotencyStore`](idempotency::IdempotencyStore) and
/// [`Inbox`](inbox::Inbox), [`Clock::now`], [`Verified::timestamp`]),
/// re-exported so an implementation needs no dependency of its own.
///
/// ```
/// use boxhook::chrono::{DateTime, TimeDelta, Utc};
///
/// let now: DateTime<Utc> = "2024-05-14T09:12:31Z".parse()?;
/// assert_eq!((now + TimeDelta::seconds(30)).to_rfc3339(), "2024-05-14T09:13:01+00:00");
/// # Ok::<(), boxhook::chrono::ParseError>(())
/// ```
pub use chrono;

/// tower's `Layer` trait, re-exported so [`VerifyLayer::layer`](Layer::layer)
/// can wrap a service without a tower dependency.
///
/// ```
/// use boxhook::{KeyRing, Layer as _, Router, Verifier, VerifyLayer};
///
/// let verifier = Verifier::new(KeyRing::from_strs(Some("primary-key"), None)?);
/// let service = VerifyLayer::new(verifier).layer(Router::new());
/// # let _ = service;
/// # Ok::<(), boxhook::KeyError>(())
/// ```
pub use tower_layer::Layer;
