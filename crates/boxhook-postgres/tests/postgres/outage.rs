//! The PostgreSQL inbox when its database misbehaves: every connection of
//! the pool busy (a slow or locked database), a database that only reads
//! (a failover that left the address on a standby), and a restart. Each
//! fails with [`ErrorKind::Storage`] and a message that says what happened,
//! promptly, and the inbox works again once the database does. Skipped with
//! a message when PostgreSQL is not installed, unless
//! `BOXHOOK_POSTGRES=required`.

#![cfg(unix)]
#![allow(
    clippy::doc_markdown,
    reason = "PostgreSQL is a product name, not code"
)]

use std::time::{Duration, Instant};

use boxhook::inbox::{ErrorKind, Inbox, NewRecord, Stored};
use boxhook_postgres::{Options, PgInbox};
use boxhook_testkit::postgres::Cluster;

fn record(id: &str) -> NewRecord {
    let body = format!(
        r#"{{"type":"webhook_event","id":"{id}","trigger":"FILE.UPLOADED","webhook":{{"id":"w-1"}}}}"#
    );
    NewRecord::parse(body, Some("d-1"), chrono::Utc::now()).expect("record")
}

/// A plain connection beside the inbox's pool.
async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_pool_fails_a_store_after_5_s_not_after_box_gave_up() {
    let Some(cluster) = Cluster::start("pool-busy") else {
        return;
    };
    let url = cluster.url();
    // Another session holds the table: the first store waits for the lock
    // (a lock timeout longer than the test), holding the pool's only
    // connection.
    let options = Options::default()
        .pool_size(1)
        .lock_timeout(Duration::from_secs(60));
    let inbox = PgInbox::connect_with(&url, &options)
        .await
        .expect("connect");
    let locker = connect(&url).await;
    locker
        .batch_execute("BEGIN; LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let first = tokio::spawn({
        let inbox = inbox.clone();
        async move { inbox.store(record("e-1")).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let error = inbox
        .store(record("e-2"))
        .await
        .expect_err("no free connection");
    let waited = started.elapsed();
    assert_eq!(error.kind(), ErrorKind::Storage);
    assert_eq!(
        error.to_string(),
        "inbox storage failed: no PostgreSQL connection: Timeout occurred while waiting for a \
         slot to become available (all 1 connections busy for 5 s: the database is slow, or the \
         pool too small for the load)"
    );
    assert!(
        waited >= Duration::from_millis(4_900) && waited < Duration::from_secs(8),
        "gave up after {waited:?}"
    );
    locker.batch_execute("ROLLBACK").await.expect("unlock");
    assert_eq!(
        first.await.expect("task").expect("stored once unlocked"),
        Stored::New
    );
    assert_eq!(
        inbox.store(record("e-2")).await.expect("stored"),
        Stored::New
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_database_says_so_with_its_sqlstate() {
    let Some(cluster) = Cluster::start("read-only") else {
        return;
    };
    let url = cluster.url();
    PgInbox::connect(&url).await.expect("migrate");
    // What a client sees on a standby (a failover that left the address on
    // the old primary, now following the new one).
    connect(&url)
        .await
        .batch_execute("ALTER DATABASE postgres SET default_transaction_read_only = on")
        .await
        .expect("alter");
    let inbox = PgInbox::connect(&url).await.expect("connect");
    let error = inbox.store(record("e-1")).await.expect_err("read-only");
    assert_eq!(error.kind(), ErrorKind::Storage);
    assert_eq!(
        error.to_string(),
        "inbox storage failed: db error: ERROR: cannot execute INSERT in a read-only \
         transaction (SQLSTATE 25006)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_database_is_used_again_without_reconnecting_by_hand() {
    let Some(cluster) = Cluster::start("restart") else {
        return;
    };
    let inbox = PgInbox::connect(&cluster.tcp_url()).await.expect("connect");
    assert_eq!(inbox.store(record("e-1")).await.expect("up"), Stored::New);
    cluster.stop();
    let started = Instant::now();
    let error = inbox.store(record("e-2")).await.expect_err("down");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(error.kind(), ErrorKind::Storage);
    assert_eq!(
        error.to_string(),
        "inbox storage failed: no PostgreSQL connection: Error occurred while creating a new \
         object: error connecting to server: Connection refused (os error 111); check that the \
         database is up and reachable"
    );
    cluster.start_again();
    assert_eq!(inbox.store(record("e-2")).await.expect("back"), Stored::New);
    assert_eq!(
        inbox.store(record("e-1")).await.expect("back"),
        Stored::Duplicate { deliveries: 2 }
    );
}
