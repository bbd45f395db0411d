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
//!   create (schema migrated on open; an inbox that cannot be written is
//!   refused here). Cheap to clone; all clones share one connection on one
//!   background thread.
//! - [`SqliteInbox::open_read_only`]`(path)`: read an existing inbox
//!   (`list`, `get`, `counts`) without creating, migrating or writing
//!   anything.
//! - [`Inbox`](boxhook::inbox::Inbox) (the framework's trait):
//!   `store(NewRecord) -> Stored::{New, Duplicate { deliveries }}`,
//!   `claim_next(worker_id, lease, now) -> Option<Claimed>`, `ack(&Claimed)`,
//!   `requeue(&Claimed, retry_at)`, `list(ListFilter { trigger, state,
//!   limit, newest_first, since, before }) -> Vec<InboxEntry>`,
//!   `get(event_id) -> Option<StoredEvent>` (entry + raw body), `counts()
//!   -> Counts` (per state, and the oldest pending); and the three optional
//!   capabilities, all implemented here:
//!   [`DeadLetters`](boxhook::inbox::DeadLetters) (`bury(&Claimed)` marks
//!   an event dead, `revive(Revive, now)` requeues dead or done ones),
//!   [`FilteredClaims`](boxhook::inbox::FilteredClaims)
//!   (`claim_matching(.., triggers)`) and
//!   [`Prune`](boxhook::inbox::Prune) (`prune(&Retention, now, batch) ->
//!   Pruned`).
//!   [`Router::store_in`](boxhook::Router::store_in) deduplicates with it:
//!   of concurrent deliveries of one event exactly one is stored, and every
//!   one is counted.
//! - [`SqliteIdempotencyStore`]: a durable
//!   [`IdempotencyStore`](boxhook::idempotency::IdempotencyStore) for the
//!   events handled at once rather than stored, in its own `claims` table
//!   of the same file ([`SqliteInbox::idempotency_store`]) or of a file of
//!   its own ([`SqliteIdempotencyStore::open`]). A claim held by one
//!   process is `InProgress` for every other until it is completed,
//!   released, or its lease ends.
//!
//! The inbox is not an idempotency store, and the two traits share no
//! method name: nothing needs a trait-qualified call.
//!
//! # A receiver that stores, and a worker that processes
//!
//! ```no_run
//! use std::time::Duration;
//! use boxhook::inbox::{Claimed, Worker};
//! use boxhook::{HandlerError, KeyRing, Layer as _, Router, Verifier, VerifyLayer, WebhookEvent};
//! use boxhook_sqlite::SqliteInbox;
//!
//! # async fn serve(_: impl Sized) {}
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! # let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let inbox = SqliteInbox::open("boxhook-inbox.sqlite")?;
//!
//! // Receiving: store every event, count every duplicate delivery.
//! let keys = KeyRing::from_strs(Some("primary key"), None)?;
//! let service = VerifyLayer::new(Verifier::new(keys)).layer(Router::new().store_in(inbox.clone()));
//! tokio::spawn(serve(service)); // hyper, axum, ... as in boxhook's docs
//!
//! // Processing, at its own pace; at least once per event. After 10 failed
//! // attempts, or at once when it can never be processed, an event is
//! // `dead` (`max_attempts` needs the inbox's `DeadLetters`; without it and
//! // without `dead_letters()`, failing events are retried for ever).
//! Worker::new(inbox, |event: WebhookEvent, claimed: Claimed| async move {
//!     println!("{} (attempt {})", event.trigger(), claimed.attempt());
//!     Ok::<_, HandlerError>(())
//! })
//! .lease(Duration::from_secs(120))
//! .max_attempts(10)
//! .run_until(async { let _ = stopped.await; }) // e.g. on SIGTERM
//! .await;
//! # Ok(()) }
//! ```
//!
//! # Schema
//!
//! One file holds both: the `events` table (the inbox, schema version 1)
//! and the `claims` table (the idempotency store, added by version 2).
//! Version 3 adds the `dead` state (an event that failed on every attempt
//! a worker allows); SQLite cannot change a CHECK constraint, so the
//! `events` table is rebuilt, every row and its order kept. Version 4 adds
//! `events.kind` (`v2`, the default, or `v1` for a V1 callback). Opening a
//! file migrates it in one transaction (`PRAGMA user_version`), so an older
//! inbox keeps its events (as `v2`) and gains what is new the first time
//! this build opens it for writing. Older builds refuse a newer file
//! ("newer than this build reads"), so upgrade every process sharing a file
//! together. Opening read-only never migrates, and reads version 1 to 5
//! files alike (events of a file older than 4 read as `v2`; a file older
//! than 5 is counted from its rows).
//!
//! Version 5 adds what a long-running inbox needs: the `counts` table
//! (kept by triggers), `pruned_keys` (the keys of pruned events), and two
//! partial indexes (dead events; done or dead V1 callbacks). Migrating
//! counts the existing events once, in one pass over the table.
//!
//! # Counts, retention and disk space
//!
//! - [`counts`](boxhook::inbox::Inbox::counts) reads four counters and
//!   walks the queue index to the first pending event: the same work with
//!   ten events stored or ten million (tested with 200,000, counting
//!   SQLite's steps). The counters change in the same transaction as the
//!   events they count.
//! - [`list`](boxhook::inbox::Inbox::list) walks an index in the order
//!   asked and stops at the limit: the newest 50, a page `before` a cursor,
//!   by trigger, pending, claimed or dead events cost what they return.
//!   Two filters have no index of their own and may read far: `since`
//!   (events received at or after a time) reads every newer event before
//!   the limit is met, and, without a limit, `done` reads the table. They
//!   run on the reader's connection, so they delay no store; an index for
//!   them would be written by every store (one more index on `state` cost
//!   `serve` a fifth of its stores per second when measured).
//! - [`prune`](boxhook::inbox::Prune::prune) removes at most `batch`
//!   events per call, oldest first, in one transaction, walking done V2
//!   events by `seq` (which grows with time) and dead events and V1
//!   callbacks by their partial indexes; it stops at the first event too
//!   young to prune, so a call costs the events it removes plus the older
//!   ones it keeps (pending, claimed, or kept longer). The key of each
//!   pruned V2 event goes to `pruned_keys` until `received_at +
//!   retention.keys`: a retry of it is `Duplicate` (its deliveries counted
//!   on), stores nothing, and costs `store` one primary-key probe. Expired
//!   keys are removed by later calls, at most `batch` a call.
//! - **Space.** A file created by this build has `auto_vacuum =
//!   INCREMENTAL`: after each batch, prune returns up to 4,096 free pages
//!   (16 MiB) to the file system with `PRAGMA incremental_vacuum` (2,000
//!   events of 3 KiB: 8.4 MB on disk, 176 KB after pruning them, their keys
//!   kept; `tests/retention.rs`). A file created before has `auto_vacuum =
//!   NONE`, which SQLite cannot change without rewriting the file: pruning
//!   frees its pages inside the file, and new events fill them before the
//!   file grows again (tested), so it stops growing but does not shrink.
//!   To convert one, stop every receiver and worker using it, make sure
//!   the disk has room for a second copy of it, then run `sqlite3 FILE
//!   'PRAGMA auto_vacuum = INCREMENTAL; VACUUM;'`: it rewrites the whole
//!   file (minutes per gigabyte) and prunes return space from then on.
//!   `PRAGMA auto_vacuum = NONE; VACUUM;` converts back, for an operator
//!   who would rather not pay its cost on stores (see
//!   docs/ARCHITECTURE.md).
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
//! # When the disk or the file fails
//!
//! - **Disk full**: every write (of the inbox and of the idempotency
//!   store) runs in a transaction whose COMMIT error is
//!   returned, and every statement is stepped to its end, so a store that
//!   did not reach the disk fails with [`ErrorKind::Storage`] ("database or
//!   disk is full") and the receiver answers 5xx: Box retries it later. The
//!   events stored before are intact, and stores succeed again once space
//!   is freed (tested on a full 2 MiB tmpfs).
//! - **Read-only file, directory or mount**: SQLite would open such a file
//!   read-only without a word, and every store would fail. Opening writes
//!   (the schema version, committed) so [`SqliteInbox::open`] fails at once
//!   with a message naming the file and what to check.
//! - **File deleted or replaced while open**: SQLite keeps writing through
//!   its open descriptors, into a file nobody will open again. On Unix the
//!   inbox remembers the device and inode of the file and of its `-wal` at
//!   open, and checks them after each committed `store` (one `stat` each,
//!   next to an fsync: measured at about 0.7 µs for both, against about
//!   560 µs per store, on ext4 in a virtual machine, release build); when either path names another file or nothing,
//!   the store fails with [`ErrorKind::Storage`], so the delivery gets a
//!   5xx and Box retries, until the receiver is restarted and opens the
//!   file again.
//! - **Reading without writing**: [`SqliteInbox::open_read_only`] never
//!   creates a file. A WAL-mode database is read through its `-wal` and
//!   `-shm`, which SQLite creates (and leaves) even for a read-only
//!   connection; so they are used when a writer has them, and when there
//!   is no `-wal` the file holds every commit and is opened `immutable`.
//!
//! # Threads
//!
//! rusqlite blocks, so the connection lives on a dedicated thread and the
//! async methods send it work through a channel: the async runtime never
//! blocks on disk, and any executor can drive the futures. The thread ends
//! when the last clone is dropped.
//!
//! A file inbox opened with [`SqliteInbox::open`] has a second,
//! read-only connection on a thread of its own for `list`, `get` and
//! `counts`: in WAL mode a reader works on its own snapshot and takes no
//! lock a writer waits for, so an admin page or `boxhook inbox list`
//! never queues a delivery behind it (tested by holding a read open while
//! stores commit). A read whose future is dropped before its answer (a
//! timeout, a closed connection) is cancelled: skipped if it has not
//! started, interrupted within a few thousand SQLite instructions if it
//! has. A long read keeps the WAL from being checkpointed past its
//! snapshot, so the `-wal` grows while it lasts and is reused after. In
//! memory, and for [`SqliteInbox::open_read_only`], the one connection
//! does everything.

#![forbid(unsafe_code)]
#![warn(clippy::arithmetic_side_effects)]
#![allow(clippy::doc_markdown, reason = "SQLite is a product name, not code")]

mod db;
mod file;
mod idempotency;
mod inbox;
#[cfg(test)]
mod no_scan_tests;
mod open;
mod prune;
mod read;
#[cfg(test)]
mod reader_tests;
mod schema;

pub use idempotency::SqliteIdempotencyStore;
pub use inbox::SqliteInbox;

use boxhook::inbox::{ErrorKind, InboxError};

pub(crate) fn storage(error: rusqlite::Error) -> InboxError {
    InboxError::new(ErrorKind::Storage, error)
}
