//! Integration tests of `boxhook-sqlite`: one test binary, one module
//! per area, so a cold `cargo test` links one executable instead of one per file.

#![allow(
    clippy::doc_markdown,
    reason = "SQLite and PostgreSQL are product names, not code"
)]

mod common;
mod conformance;
#[cfg(unix)]
mod disk_full;
mod durability;
#[cfg(unix)]
mod files;
mod inbox;
mod retention;
mod worker_faults;
