//! Open a boxhook inbox from a URL: `postgres://…` (or libpq's
//! `host=… dbname=…`), `sqlite:PATH`, or a plain path, behind one type over
//! the SQLite and PostgreSQL backends.
//!
//! - [`Store::parse`] takes what a user types and refuses, with a
//!   [`OpenErrorKind::Usage`] error, what names no store (another scheme, a
//!   misspelt connection string) rather than taking it for a file name.
//! - [`Store::open`] creates or migrates the store; [`Store::open_existing`]
//!   reads one without changing anything; [`Store::migrate`] only migrates.
//!   Each returns an [`AnyInbox`], which implements `boxhook`'s
//!   [`Inbox`](boxhook::inbox::Inbox), [`DeadLetters`](boxhook::inbox::DeadLetters),
//!   [`FilteredClaims`](boxhook::inbox::FilteredClaims) and
//!   [`Prune`](boxhook::inbox::Prune): what a receiver's
//!   [`Router::store_in`](boxhook::Router::store_in) and a
//!   [`Worker`](boxhook::inbox::Worker) take.
//! - [`Store::describe`] (and `Display`, `Debug`, every [`OpenError`]) names
//!   a PostgreSQL store without its password.
//!
//! # Features
//!
//! - `sqlite` (default): SQLite files, with module `sqlite`
//!   (`boxhook-sqlite` re-exported).
//! - `postgres`: PostgreSQL databases, with module `postgres`
//!   (`boxhook-postgres` re-exported: its `Options` for
//!   `Store::with_options`).
//! - `postgres-tls`: TLS to PostgreSQL (`sslmode=require|verify-ca|verify-full`).
//!
//! A store of a backend this build leaves out is refused by
//! [`Store::parse`] with a message naming the feature.
//!
//! # Example
//!
//! ```
//! # #[cfg(feature = "sqlite")] {
//! # let dir = boxhook_testkit::fs::TempDir::new("doc-crate");
//! # std::env::set_current_dir(dir.path()).unwrap();
//! use boxhook::inbox::Inbox as _;
//! use boxhook_store::{Backend, Store};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! // What the user gave: postgres://…, host=… dbname=…, sqlite:PATH or a path.
//! let url = "sqlite:boxhook-inbox.sqlite";
//! let store = Store::parse(url)?;
//! println!("inbox: {store}"); // no password shown
//! let inbox = store.open().await?;
//! # assert_eq!(inbox.backend(), Backend::Sqlite);
//! assert_eq!(inbox.counts().await.unwrap().pending, 0);
//! # Ok::<(), boxhook_store::OpenError>(())
//! # }).unwrap();
//! # }
//! ```

#![allow(
    clippy::doc_markdown,
    reason = "SQLite and PostgreSQL are product names, not code"
)]

mod any;
mod error;
mod store;

pub use any::{AnyInbox, Backend};
pub use error::{OpenError, OpenErrorKind};
pub use store::Store;

/// The PostgreSQL backend (crate `boxhook-postgres`): its
/// [`Options`](boxhook_postgres::Options) for [`Store::with_options`], its
/// [`PgInbox`](boxhook_postgres::PgInbox) and idempotency store.
#[cfg(feature = "postgres")]
pub use boxhook_postgres as postgres;
/// The SQLite backend (crate `boxhook-sqlite`): its
/// [`SqliteInbox`](boxhook_sqlite::SqliteInbox) and idempotency store.
#[cfg(feature = "sqlite")]
pub use boxhook_sqlite as sqlite;
