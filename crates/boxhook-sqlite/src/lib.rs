//! A durable SQLite [`Inbox`](boxhook::inbox::Inbox) for boxhook: every
//! accepted Box event is committed to disk before Box gets its 2xx, and
//! processed later by workers.
//!
//! This crate is the SQLite gate of `boxhook::inbox`: the framework has the
//! trait, the handler and the worker loop; this crate brings rusqlite with
//! a bundled SQLite (no system library needed).
//!
//! # API at a glance
//!
//! - [`SqliteInbox::open`]`(path)` / [`SqliteInbox::in_memory`]`()`: open or
//!   create (schema migrated on open). Cheap to clone; all clones share one
//!   connection on one background thread.
//! - [`Inbox`](boxhook::inbox::Inbox) (the framework's trait):
//!   `store(NewRecord) -> Stored::{New, Duplicate { deliveries }}`,
//!   `claim(worker_id, lease, now) -> Option<Claimed>`, `ack(&Claimed)`,
//!   `release(&Claimed, retry_at)`, `list(ListFilter { trigger, limit }) ->
//!   Vec<InboxEntry>`, `get(event_id) -> Option<StoredEvent>` (entry + raw body).
//! - [`IdempotencyStore`](boxhook::idempotency::IdempotencyStore): the
//!   router's duplicate check, answered from the same table: an event
//!   already stored is [`Claim::Done`](boxhook::idempotency::Claim::Done)
//!   and its `deliveries` count goes up. Both traits have `claim` and
//!   `release`: with both in scope, call them as `Inbox::claim(&inbox, ..)`.
//!
//! # A receiver that stores, and a worker that processes
//!
//! ```no_run
//! use std::time::Duration;
//! use boxhook::inbox::{Claimed, StoreInInbox, Worker};
//! use boxhook::{HandlerError, Router, VerifyLayer};
//! use boxhook_core::model::WebhookEvent;
//! use boxhook_core::{KeyRing, Verifier};
//! use boxhook_sqlite::SqliteInbox;
//! use tower_layer::Layer as _;
//!
//! # async fn serve(_: impl Sized) {}
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! # let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let inbox = SqliteInbox::open("boxhook-inbox.sqlite")?;
//!
//! // Receiving: store every event, count every duplicate delivery.
//! let keys = KeyRing::from_strs(Some("primary key"), None)?;
//! let service = VerifyLayer::new(Verifier::new(keys)).layer(
//!     Router::new()
//!         .idempotency(inbox.clone())
//!         .fallback(StoreInInbox::new(inbox.clone())),
//! );
//! tokio::spawn(serve(service)); // hyper, axum, ... as in boxhook's docs
//!
//! // Processing, at its own pace; at least once per event.
//! Worker::new(inbox, |event: WebhookEvent, claimed: Claimed| async move {
//!     println!("{} (attempt {})", event.trigger(), claimed.attempt());
//!     Ok::<_, HandlerError>(())
//! })
//! .lease(Duration::from_secs(120))
//! .run_until(async { let _ = stopped.await; }) // e.g. on SIGTERM
//! .await;
//! # Ok(()) }
//! ```
//!
//! # Durability
//!
//! The database runs in WAL mode with `synchronous = FULL`: each `store`
//! returns only after its transaction is committed and the WAL fsynced. An
//! acknowledged event therefore survives the process being killed (`kill
//! -9`, tested) and, as far as the disk honours fsync, a power loss. WAL
//! also lets the CLI read (`list`, `get`) while a receiver writes; a
//! writer waits up to 5 s for a lock before failing with
//! [`ErrorKind::Storage`].
//!
//! # Threads
//!
//! rusqlite blocks, so the connection lives on a dedicated thread and the
//! async methods send it work through a channel: the async runtime never
//! blocks on disk, and any executor can drive the futures. The thread ends
//! when the last clone is dropped.

#![forbid(unsafe_code)]
#![allow(clippy::doc_markdown, reason = "SQLite is a product name, not code")]

mod file;
mod idempotency;
mod inbox;
mod schema;

pub use inbox::SqliteInbox;

use boxhook::inbox::{ErrorKind, InboxError};

pub(crate) fn storage(error: rusqlite::Error) -> InboxError {
    InboxError::new(ErrorKind::Storage, error)
}
