//! Integration tests of `boxhook-postgres`: one test binary, one module
//! per area, so a cold `cargo test` links one executable instead of one per file.

#![allow(
    clippy::doc_markdown,
    reason = "SQLite and PostgreSQL are product names, not code"
)]

#[cfg(unix)]
mod batch;
mod common;
#[cfg(unix)]
mod conformance;
#[cfg(unix)]
mod keys;
#[cfg(unix)]
mod migrate;
#[cfg(unix)]
mod notify;
#[cfg(unix)]
mod outage;
#[cfg(unix)]
mod prune;
#[cfg(unix)]
mod reads;
#[cfg(unix)]
mod scale;
#[cfg(all(unix, feature = "tls"))]
mod tls;
#[cfg(unix)]
mod worker_faults;
