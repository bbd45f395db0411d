//! Group commit under concurrency: while the first store statements wait
//! for a lock, the stores behind them wait in the inbox's queue (not on
//! connections), then go together; many deliveries of one event among
//! them make one event, one `Stored::New` and every delivery counted.
//! Skipped with a message when PostgreSQL is not installed, unless
//! `BOXHOOK_POSTGRES=required`.

#![cfg(unix)]
#![allow(
    clippy::doc_markdown,
    reason = "PostgreSQL is a product name, not code"
)]

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use boxhook::inbox::{Inbox, ListFilter, Stored};
use boxhook_postgres::{Options, PgInbox};
use boxhook_testkit::postgres::Cluster;
use chrono::Utc;

use common::{connect, record};

/// A lock timeout longer than these tests hold their locks: they test
/// what queues behind statements that wait.
const HELD: Duration = Duration::from_secs(60);

/// Store statements of the inbox's pool waiting for a lock.
async fn waiting(sql: &tokio_postgres::Client) -> i64 {
    sql.query_one(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'boxhook' \
         AND wait_event_type = 'Lock' AND strpos(query, 'event_keys') > 0",
        &[],
    )
    .await
    .expect("activity")
    .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_stores_of_one_event_and_of_many_queue_then_count_exactly() {
    let Some(cluster) = Cluster::start("batch-concurrent") else {
        return;
    };
    let url = cluster.url();
    let inbox = PgInbox::connect_with(
        &url,
        &Options::default()
            .schema("many")
            .pool_size(16)
            .lock_timeout(HELD),
    )
    .await
    .expect("connect");
    let sql = connect(&url, "many").await;
    let locker = connect(&url, "many").await;
    locker
        .batch_execute("BEGIN; LOCK TABLE event_counts IN EXCLUSIVE MODE")
        .await
        .expect("lock");

    // 5 events delivered 8 times each, and 20 events delivered once,
    // interleaved: 60 stores at once.
    let now = Utc::now();
    let mut ids = Vec::new();
    for round in 0..8 {
        for event in 0..5 {
            ids.push(format!("dup-{event}"));
        }
        for single in 0..20 {
            if single % 8 == round {
                ids.push(format!("one-{single}"));
            }
        }
    }
    assert_eq!(ids.len(), 60);
    let tasks: Vec<_> = ids
        .iter()
        .map(|id| {
            let inbox = inbox.clone();
            let record = record("w", id, now);
            let id = id.clone();
            tokio::spawn(async move { (id, inbox.store(record).await) })
        })
        .collect();

    // Two statements (the flights) wait for the lock; the other stores
    // wait in the queue, holding no connection.
    let started = Instant::now();
    while waiting(&sql).await < 2 && started.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(waiting(&sql).await, 2);
    locker.batch_execute("ROLLBACK").await.expect("unlock");

    let mut outcomes: BTreeMap<String, Vec<Stored>> = BTreeMap::new();
    for task in tasks {
        let (id, stored) = task.await.expect("task");
        outcomes
            .entry(id)
            .or_default()
            .push(stored.expect("stored"));
    }
    for (id, stored) in &outcomes {
        let mut deliveries: Vec<u64> = stored.iter().map(|s| s.deliveries()).collect();
        deliveries.sort_unstable();
        let expected: Vec<u64> = if id.starts_with("dup-") {
            (1..=8).collect()
        } else {
            vec![1]
        };
        assert_eq!(deliveries, expected, "{id}");
        assert_eq!(
            stored.iter().filter(|s| **s == Stored::New).count(),
            1,
            "{id}"
        );
    }
    assert_eq!(outcomes.len(), 25);

    let listed: BTreeMap<String, u64> = inbox
        .list(ListFilter::new())
        .await
        .expect("list")
        .into_iter()
        .map(|entry| (entry.event_id, entry.deliveries))
        .collect();
    let expected: BTreeMap<String, u64> = outcomes
        .keys()
        .map(|id| (id.clone(), if id.starts_with("dup-") { 8 } else { 1 }))
        .collect();
    assert_eq!(listed, expected);
    assert_eq!(inbox.counts().await.expect("counts").pending, 25);
    let deliveries: i64 = sql
        .query_one("SELECT sum(deliveries)::bigint FROM event_counts", &[])
        .await
        .expect("counters")
        .get(0);
    assert_eq!(deliveries, 60);
    // And they did share statements: each transaction that inserted
    // events stamped its rows with its own xmin. The two flights stored
    // one record each (one event, or two deliveries of one); the 58 queued
    // stores went in a few batch statements, not one transaction per event
    // (which would make 25).
    let transactions: i64 = sql
        .query_one("SELECT count(DISTINCT xmin::text) FROM events", &[])
        .await
        .expect("xmin")
        .get(0);
    assert!(
        (2..=6).contains(&transactions),
        "the 25 new events were inserted by {transactions} transactions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_queued_behind_stuck_statements_fails_after_5_s_with_what_to_check() {
    let Some(cluster) = Cluster::start("batch-stuck") else {
        return;
    };
    let url = cluster.url();
    let inbox = PgInbox::connect_with(&url, &Options::default().schema("stuck").lock_timeout(HELD))
        .await
        .expect("connect");
    let sql = connect(&url, "stuck").await;
    let locker = connect(&url, "stuck").await;
    locker
        .batch_execute("BEGIN; LOCK TABLE event_counts IN EXCLUSIVE MODE")
        .await
        .expect("lock");
    let now = Utc::now();
    let stuck: Vec<_> = ["e-1", "e-2"]
        .into_iter()
        .map(|id| {
            let inbox = inbox.clone();
            let record = record("w", id, now);
            tokio::spawn(async move { inbox.store(record).await })
        })
        .collect();
    let started = Instant::now();
    while waiting(&sql).await < 2 && started.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(waiting(&sql).await, 2);

    let started = Instant::now();
    let error = inbox
        .store(record("w", "e-3", now))
        .await
        .expect_err("queued behind the lock");
    let waited = started.elapsed();
    assert_eq!(error.kind(), boxhook::inbox::ErrorKind::Storage);
    assert_eq!(
        error.to_string(),
        "inbox storage failed: no PostgreSQL connection: this store waited 5 s in the queue \
         behind the 2 store statements in flight (or their wait for a pooled connection): the \
         database is slow or a lock holds them; check pg_stat_activity for what they wait for"
    );
    assert!(
        waited >= Duration::from_millis(4_900) && waited < Duration::from_secs(8),
        "gave up after {waited:?}"
    );

    locker.batch_execute("ROLLBACK").await.expect("unlock");
    for store in stuck {
        assert_eq!(store.await.expect("task").expect("stored"), Stored::New);
    }
    // The refused store left nothing behind; the next one goes at once.
    assert_eq!(
        inbox.store(record("w", "e-3", now)).await.expect("stored"),
        Stored::New
    );
    assert_eq!(inbox.counts().await.expect("counts").pending, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_lock_held_elsewhere_fails_only_the_delivery_that_needs_it() {
    let Some(cluster) = Cluster::start("batch-held-row") else {
        return;
    };
    let url = cluster.url();
    let inbox = PgInbox::connect_with(
        &url,
        &Options::default()
            .schema("held")
            .lock_timeout(Duration::from_secs(1)),
    )
    .await
    .expect("connect");
    let sql = connect(&url, "held").await;
    let now = Utc::now();
    assert_eq!(
        inbox
            .store(record("w", "locked", now))
            .await
            .expect("stored"),
        Stored::New
    );
    // An operator's transaction left open on the event's key.
    let locker = connect(&url, "held").await;
    locker
        .batch_execute("BEGIN; SELECT 1 FROM event_keys WHERE event_id = 'locked' FOR UPDATE")
        .await
        .expect("lock");

    // Its retry among 29 new deliveries, at once: they share statements
    // with it, and are stored anyway.
    let started = Instant::now();
    let tasks: Vec<_> = std::iter::once("locked".to_owned())
        .chain((0..29).map(|n| format!("free-{n}")))
        .map(|id| {
            let inbox = inbox.clone();
            let record = record("w", &id, now);
            tokio::spawn(async move { (id, inbox.store(record).await) })
        })
        .collect();
    let mut stored = 0;
    for task in tasks {
        let (id, outcome) = task.await.expect("task");
        if id == "locked" {
            let error = outcome.expect_err("its key is locked");
            assert_eq!(error.kind(), boxhook::inbox::ErrorKind::Storage);
            let text = error.to_string();
            assert!(
                text.contains(
                    "canceling statement due to lock timeout (SQLSTATE 55P03): \
                               another transaction held a row or table this statement needed \
                               for longer than lock_timeout; look in pg_stat_activity"
                ),
                "{text}"
            );
        } else {
            assert_eq!(outcome.expect("stored"), Stored::New, "{id}");
            stored += 1;
        }
    }
    assert_eq!(stored, 29);
    // Within the queue's 5 s: the lock stalled one statement for its
    // timeout, not the deliveries behind it for theirs.
    let waited = started.elapsed();
    assert!(waited < Duration::from_millis(4_500), "took {waited:?}");

    locker.batch_execute("ROLLBACK").await.expect("unlock");
    // The failed delivery counted nothing; its sender's retry does.
    assert_eq!(
        inbox
            .store(record("w", "locked", now))
            .await
            .expect("stored"),
        Stored::Duplicate { deliveries: 2 }
    );
    assert_eq!(inbox.counts().await.expect("counts").pending, 30);
    let deliveries: i64 = sql
        .query_one("SELECT sum(deliveries)::bigint FROM event_counts", &[])
        .await
        .expect("counters")
        .get(0);
    assert_eq!(deliveries, 31);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_left_unanswered_fails_at_the_store_timeout_and_its_connection_is_closed() {
    use boxhook_testkit::pgproxy::{Direction, Fault, PgProxy, Scope};

    let Some(cluster) = Cluster::start("batch-unanswered") else {
        return;
    };
    let proxy = PgProxy::start(cluster.port()).expect("proxy");
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
        proxy.port()
    );
    let inbox = PgInbox::connect_with(
        &url,
        &Options::default()
            .schema("unanswered")
            .store_timeout(Duration::from_secs(1)),
    )
    .await
    .expect("connect");
    let now = Utc::now();
    assert_eq!(
        inbox
            .store(record("w", "first", now))
            .await
            .expect("stored"),
        Stored::New
    );
    // Once the new event's wake-up NOTIFY (sent on a pool connection of
    // its own accord) has gone, the pool's connections answer nothing:
    // the server's replies wait in the proxy, the connections stay open.
    let mut last = proxy.connections();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = proxy.connections();
        if now == last {
            break;
        }
        last = now;
    }
    let held: Vec<u64> = proxy
        .connections()
        .into_iter()
        .filter(|c| c.open)
        .map(|c| c.id)
        .collect();
    assert!(!held.is_empty());
    for id in &held {
        proxy.set(
            Scope::Connection(*id),
            Fault::Stall {
                direction: Direction::ToClient,
                after: 0,
                duration: Duration::from_secs(60),
            },
        );
    }

    let started = Instant::now();
    let error = inbox
        .store(record("w", "unanswered", now))
        .await
        .expect_err("no answer");
    let waited = started.elapsed();
    assert_eq!(error.kind(), boxhook::inbox::ErrorKind::Storage);
    assert_eq!(
        error.to_string(),
        "inbox storage failed: PostgreSQL did not answer a store statement within 1 s; its \
         connection is closed. The event may or may not be stored: the sender's retry is \
         counted as a duplicate if it was. Check the network path to the database and \
         pg_stat_activity"
    );
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "gave up after {waited:?}"
    );

    // The held connection is closed, not reused: the next store takes a
    // fresh one at once and is stored.
    let started = Instant::now();
    assert_eq!(
        inbox.store(record("w", "next", now)).await.expect("stored"),
        Stored::New
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    let still_open: Vec<u64> = proxy
        .connections()
        .into_iter()
        .filter(|c| c.open && held.contains(&c.id))
        .map(|c| c.id)
        .collect();
    assert!(
        still_open.len() < held.len(),
        "the timed-out connection was closed: {still_open:?} of {held:?} still open"
    );
    // The unanswered statement did commit (only its reply was held): the
    // sender's retry is a duplicate, counted once more.
    assert_eq!(
        inbox
            .store(record("w", "unanswered", now))
            .await
            .expect("stored"),
        Stored::Duplicate { deliveries: 2 }
    );
    assert_eq!(inbox.counts().await.expect("counts").pending, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_claim_with_a_row_that_does_not_read_back_hands_out_the_others() {
    use boxhook::inbox::BatchClaims;

    let Some(cluster) = Cluster::start("batch-unreadable") else {
        return;
    };
    let url = cluster.url();
    let inbox = PgInbox::connect_with(&url, &Options::default().schema("unreadable"))
        .await
        .expect("connect");
    let now = Utc::now();
    for id in ["e-1", "e-2", "e-3"] {
        inbox.store(record("w", id, now)).await.expect("stored");
    }
    // e-2's attempt count below what the inbox can read (a u32).
    connect(&url, "unreadable")
        .await
        .execute(
            "UPDATE events SET attempts = -5 WHERE event_id = 'e-2'",
            &[],
        )
        .await
        .expect("corrupt one row");
    let claimed = inbox
        .claim_batch("w", Duration::from_secs(60), Utc::now(), &[], 8)
        .await
        .expect("the others are handed out");
    let ids: Vec<&str> = claimed.iter().map(|c| c.entry.event_id.as_str()).collect();
    assert_eq!(ids, ["e-1", "e-3"]);
}
