//! Integration tests of `boxhook-cli`: one test binary, one module
//! per area, so a cold `cargo test` links one executable instead of one per file.
//!
//! `tests/big_inbox.rs` stays a binary of its own: it fills 200,000 events and
//! asserts that no delivery stalls and that serve's memory stays bounded while
//! 32 readers poll, so it must not share the machine with the tests here
//! (cargo runs test binaries one after another).

#[cfg(unix)]
mod acme;
mod admin;
mod admin_guard;
mod check_address;
mod common;
mod connections;
mod dashboard_browser;
#[cfg(unix)]
mod disk_full;
#[cfg(unix)]
mod forward;
#[cfg(unix)]
mod hostile_api;
#[cfg(unix)]
mod inbox_readonly;
mod limits;
mod log;
#[cfg(unix)]
mod many_receivers;
#[cfg(unix)]
mod operator_lines;
#[cfg(unix)]
mod pg_outage;
#[cfg(unix)]
mod pg_settings;
#[cfg(unix)]
mod pg_tls;
#[cfg(unix)]
mod pipe;
#[cfg(unix)]
mod readyz;
mod replay;
mod retention;
#[cfg(unix)]
mod secrets;
mod serve;
mod small_fs;
#[cfg(unix)]
mod tls_serve;
mod v1;
#[cfg(unix)]
mod v1_work;
mod verify;
mod webhooks;
#[cfg(unix)]
mod work;
#[cfg(unix)]
mod work_faults;
