//! Integration tests of `boxhook`: one test binary, one module
//! per area, so a cold `cargo test` links one executable instead of one per file.

#[cfg(feature = "axum")]
mod axum;
mod budget;
mod chaos;
mod clock;
mod common;
mod conformance;
mod diagnose;
mod extremes;
mod handlers;
mod http;
mod logs;
mod metrics;
mod service;
mod store_in;
mod v1;
mod worker_outage;
mod worker_v1;
