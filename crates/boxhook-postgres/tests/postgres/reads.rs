//! Reads (`list`, `get`, `counts`) run on a read pool of their own, with a
//! statement timeout: a burst of slow admin or CLI reads queues there and
//! is cancelled, while deliveries keep storing on the other pool. Skipped
//! with a message when PostgreSQL is not installed, unless
//! `BOXHOOK_POSTGRES=required`.

#![cfg(unix)]
#![allow(
    clippy::doc_markdown,
    reason = "PostgreSQL is a product name, not code"
)]

use crate::common;

use std::time::{Duration, Instant};

use boxhook::inbox::{ErrorKind, Inbox, ListFilter, Stored};
use boxhook_postgres::{Options, PgInbox};
use boxhook_testkit::postgres::Cluster;
use chrono::Utc;

use common::{connect, day, record};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_stuck_behind_a_lock_never_hold_up_a_store() {
    let Some(cluster) = Cluster::start("reads") else {
        return;
    };
    let url = cluster.url();
    let options = Options::default()
        .schema("reads")
        .pool_size(1)
        .read_pool_size(1)
        .read_timeout(Duration::from_millis(1500));
    let inbox = PgInbox::connect_with(&url, &options)
        .await
        .expect("connect");
    assert_eq!(
        inbox
            .store(record("w", "old", day(0)))
            .await
            .expect("store"),
        Stored::New
    );
    // Something holds an old day's partition: every read of the whole
    // inbox waits for it (a slow query, a long transaction).
    let locker = connect(&url, "reads").await;
    locker
        .batch_execute("BEGIN; LOCK TABLE events_20200101 IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let reads: Vec<_> = (0..3)
        .map(|n| {
            let inbox = inbox.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let read = match n {
                    0 => inbox.counts().await.map(drop),
                    1 => inbox.list(ListFilter::new().limit(50)).await.map(drop),
                    _ => inbox.list(ListFilter::new().newest_first()).await.map(drop),
                };
                (read, started.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The reads hold the only read connection, and wait for it: stores go
    // on, on the only store connection.
    for n in 0..20 {
        let started = Instant::now();
        let stored = inbox
            .store(record("w", &format!("new-{n}"), Utc::now()))
            .await
            .expect("store");
        assert_eq!(stored, Stored::New);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "store {n} took {:?}",
            started.elapsed()
        );
    }

    // Each read is cancelled by the server after its 1.5 s.
    for read in reads {
        let (read, took) = read.await.expect("task");
        let error = read.expect_err("cancelled");
        assert_eq!(error.kind(), ErrorKind::Storage);
        assert_eq!(
            error.to_string(),
            "inbox storage failed: db error: ERROR: canceling statement due to statement \
             timeout (SQLSTATE 57014)"
        );
        assert!(took >= Duration::from_millis(1400), "{took:?}");
    }
    locker.batch_execute("ROLLBACK").await.expect("unlock");
    assert_eq!(inbox.counts().await.expect("counts").pending, 21);
    assert_eq!(inbox.list(ListFilter::new()).await.expect("list").len(), 21);
}
