//! The test kit's conformance suites against the PostgreSQL inbox and
//! idempotency store, on a throwaway server (skipped with a message when
//! PostgreSQL is not installed, unless `BOXHOOK_POSTGRES=required`).

#![cfg(unix)]
#![allow(
    clippy::doc_markdown,
    reason = "PostgreSQL is a product name, not code"
)]

use std::sync::atomic::{AtomicUsize, Ordering};

use boxhook_postgres::{Options, PgIdempotencyStore, PgInbox};
use boxhook_testkit::conformance;
use boxhook_testkit::postgres::Cluster;

/// A schema of its own per case: every case starts from an empty inbox.
fn fresh_options() -> Options {
    static CASE: AtomicUsize = AtomicUsize::new(0);
    let n = CASE.fetch_add(1, Ordering::Relaxed);
    Options::default().pool_size(8).schema(format!("case_{n}"))
}

/// Runs an async connect from the suites' synchronous `make`.
fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_postgres_inbox_conforms() {
    let Some(cluster) = Cluster::start("inbox-conformance") else {
        return;
    };
    let url = cluster.url();
    // Every rule, batch claims' included.
    conformance::InboxSuite::new(|| {
        block(PgInbox::connect_with(&url, &fresh_options())).expect("connect")
    })
    .dead_letters()
    .filtered_claims()
    .prune()
    .batch_claims()
    .run()
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_postgres_idempotency_store_conforms() {
    let Some(cluster) = Cluster::start("store-conformance") else {
        return;
    };
    let url = cluster.url();
    conformance::idempotency_store(|| {
        block(PgIdempotencyStore::connect_with(&url, &fresh_options())).expect("connect")
    })
    .await;
}
