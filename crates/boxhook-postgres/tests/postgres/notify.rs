//! LISTEN/NOTIFY wakes an idle worker: a store made through one connection
//! pool wakes `wait_for_work` on another (as on another host) long before
//! its timeout, so workers do not depend on polling to see new events.
//! Skipped with a message when PostgreSQL is not installed, unless
//! `BOXHOOK_POSTGRES=required`.

#![cfg(unix)]
#![allow(
    clippy::doc_markdown,
    reason = "PostgreSQL is a product name, not code"
)]

use std::time::{Duration, Instant};

use boxhook::inbox::{Inbox, NewRecord};
use boxhook_postgres::{Options, PgInbox};
use boxhook_testkit::postgres::Cluster;

/// How long the idle worker would wait if nothing woke it.
const POLL: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_on_one_pool_wakes_a_worker_waiting_on_another() {
    let Some(cluster) = Cluster::start("notify") else {
        return;
    };
    let url = cluster.url();
    let options = Options::default().pool_size(2).schema("notify");
    let receiver = PgInbox::connect_with(&url, &options)
        .await
        .expect("connect");
    let worker = PgInbox::connect_with(&url, &options)
        .await
        .expect("connect");

    // The first wait starts the worker's LISTEN connection, which wakes it
    // once when it is up (for anything stored before); the second takes the
    // permit that wake may have left.
    worker.wait_for_work(Duration::from_secs(10)).await;
    worker.wait_for_work(Duration::from_millis(100)).await;
    // From here on nothing wakes an idle worker but a notification.
    let started = Instant::now();
    worker.wait_for_work(Duration::from_millis(500)).await;
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "woken with nothing stored"
    );

    let waiting = tokio::spawn({
        let worker = worker.clone();
        async move {
            let started = Instant::now();
            worker.wait_for_work(POLL).await;
            started.elapsed()
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let body = r#"{"type":"webhook_event","id":"e-1","trigger":"FILE.UPLOADED","webhook":{"id":"4133","type":"webhook"}}"#;
    let record = NewRecord::parse(body.as_bytes().to_vec(), Some("d-1"), chrono::Utc::now())
        .expect("an event");
    receiver.store(record).await.expect("store");
    let waited = tokio::time::timeout(POLL, waiting)
        .await
        .expect("woken before the poll interval")
        .expect("join");
    // Woken by the notification, not by the 60 s timeout; the bound is
    // generous for a loaded machine.
    assert!(
        waited < Duration::from_secs(20),
        "the worker waited {waited:?} of its {POLL:?}"
    );
}
