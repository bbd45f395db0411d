//! boxhook-store's tests, in one binary: the store texts accepted and
//! refused ([`urls`]), no password in any message ([`secrets`]), opening
//! SQLite files ([`sqlite`]), and `AnyInbox` against the inbox suites on
//! both backends ([`conformance`]; PostgreSQL on a throwaway server, skipped
//! with a message when it is not installed, unless `BOXHOOK_POSTGRES=required`).

#![allow(
    clippy::doc_markdown,
    reason = "SQLite and PostgreSQL are product names, not code"
)]

mod conformance;
#[cfg(feature = "postgres")]
mod postgres;
mod secrets;
#[cfg(feature = "sqlite")]
mod sqlite;
mod urls;

/// Runs an async call from synchronous code on a multi-thread runtime (the
/// suites' `make`).
pub(crate) fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}
