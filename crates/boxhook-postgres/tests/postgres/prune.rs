//! Pruning the PostgreSQL inbox: whole day partitions dropped, batches
//! deleted where events must stay, keys kept past their events and then
//! removed, a partition left half detached finished by the next prune, one
//! pruner at a time, and stores that go on while it runs. Skipped with a
//! message when PostgreSQL is not installed, unless
//! `BOXHOOK_POSTGRES=required`.

#![cfg(unix)]
#![allow(
    clippy::doc_markdown,
    reason = "PostgreSQL is a product name, not code"
)]

use crate::common;

use std::time::{Duration, Instant};

use boxhook::inbox::EntryState::{self, Dead, Done};
use boxhook::inbox::{Counts, DeadLetters, Inbox, ListFilter, Prune, Pruned, Retention, Stored};
use boxhook_postgres::{Options, PgInbox};
use boxhook_testkit::postgres::Cluster;
use chrono::{DateTime, TimeDelta, Utc};

use common::{connect, day, fill, partitions, record, Fill};

const DAY: Duration = Duration::from_secs(86_400);

/// Tasks storing while a prune runs, and how many events each stores.
const TASKS: usize = 8;
const EACH: usize = 50;

async fn inbox(url: &str, schema: &str) -> PgInbox {
    PgInbox::connect_with(url, &Options::default().schema(schema).pool_size(4))
        .await
        .expect("connect")
}

/// Stores `ids` (webhook `w`) received a minute apart from `at`.
async fn store(inbox: &PgInbox, ids: &[&str], at: DateTime<Utc>) {
    for (n, id) in (0..).zip(ids) {
        let stored = inbox
            .store(record("w", id, at + TimeDelta::minutes(n)))
            .await
            .expect("store");
        assert_eq!(stored, Stored::New, "{id}");
    }
}

/// Claims the ready events, oldest first, and settles each as `then` says
/// (done or dead).
async fn settle(inbox: &PgInbox, then: &[(&str, EntryState)]) {
    for (id, state) in then {
        let claimed = inbox
            .claim_next("worker", Duration::from_secs(60), day(1000))
            .await
            .expect("claim")
            .expect("an event");
        assert_eq!(claimed.entry.event_id, *id);
        match state {
            EntryState::Done => inbox.ack(&claimed).await.expect("ack"),
            EntryState::Dead => inbox.bury(&claimed).await.expect("bury"),
            other => panic!("settle as {other}?"),
        }
    }
}

fn ids(entries: &[boxhook::inbox::InboxEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.event_id.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_partitions_go_and_batches_are_deleted_where_events_stay() {
    let Some(cluster) = Cluster::start("prune-parts") else {
        return;
    };
    let url = cluster.url();
    let inbox = inbox(&url, "parts").await;
    let sql = connect(&url, "parts").await;
    // Day 0: three done. Day 1: two done, one dead (kept forever). Day 2:
    // two done, one pending. Each day's partition is made by its first store.
    store(&inbox, &["a-1", "a-2", "a-3"], day(0)).await;
    store(&inbox, &["b-1", "b-2", "b-3"], day(1)).await;
    store(&inbox, &["c-1", "c-2"], day(2)).await;
    settle(
        &inbox,
        &[
            ("a-1", Done),
            ("a-2", Done),
            ("a-3", Done),
            ("b-1", Done),
            ("b-2", Done),
            ("b-3", Dead),
            ("c-1", Done),
            ("c-2", Done),
        ],
    )
    .await;
    store(&inbox, &["c-3"], day(2) + TimeDelta::hours(1)).await;
    let before = partitions(&sql).await;
    for table in ["events_20200101", "events_20200102", "events_20200103"] {
        assert!(before.iter().any(|t| t == table), "{table} in {before:?}");
    }

    let retention = Retention::nothing().done(Some(DAY));
    let pruned = inbox.prune(&retention, day(5), 100).await.expect("prune");
    assert_eq!(
        pruned,
        Pruned {
            done: 7,
            ..Pruned::default()
        }
    );
    let after = partitions(&sql).await;
    assert!(!after.iter().any(|t| t == "events_20200101"), "{after:?}");
    assert!(after.iter().any(|t| t == "events_20200102"), "{after:?}");
    assert!(after.iter().any(|t| t == "events_20200103"), "{after:?}");
    let left = inbox.list(ListFilter::new()).await.expect("list");
    assert_eq!(ids(&left), ["b-3", "c-3"]);
    assert_eq!(
        inbox.counts().await.expect("counts"),
        Counts {
            pending: 1,
            dead: 1,
            oldest_pending: Some(day(2) + TimeDelta::hours(1)),
            ..Counts::default()
        }
    );
    assert_eq!(
        inbox.prune(&retention, day(5), 100).await.expect("prune"),
        Pruned::default()
    );

    // Retries of events pruned both ways are duplicates, and store nothing.
    for id in ["a-2", "b-1"] {
        assert_eq!(
            inbox.store(record("w", id, day(5))).await.expect("store"),
            Stored::Duplicate { deliveries: 2 },
            "{id}"
        );
    }
    assert_eq!(inbox.list(ListFilter::new()).await.expect("list").len(), 2);

    keys_outlive_their_events(&inbox, &sql).await;
}

/// The keys of the events the test above pruned.
async fn keys_outlive_their_events(inbox: &PgInbox, sql: &tokio_postgres::Client) {
    // Keys go 7 days after their event came: day 0's (their partition
    // dropped) and day 1's (marked when their rows were deleted); day 2's
    // stay until day 9.
    let keys = Retention::nothing().done(Some(DAY)).keys(7 * DAY);
    let at = day(8) + TimeDelta::hours(12);
    assert_eq!(
        inbox.prune(&keys, at, 100).await.expect("prune"),
        Pruned {
            keys: 5,
            ..Pruned::default()
        }
    );
    assert_eq!(
        inbox.store(record("w", "c-1", at)).await.expect("store"),
        Stored::Duplicate { deliveries: 2 },
        "c-1 came on day 2: its key stays until day 9"
    );
    assert_eq!(
        inbox
            .prune(&keys, day(9) + TimeDelta::hours(1), 100)
            .await
            .expect("prune"),
        Pruned {
            keys: 2,
            ..Pruned::default()
        }
    );
    // A retry after its key went is a new event; its day gets a partition
    // again.
    assert_eq!(
        inbox
            .store(record("w", "a-1", day(0)))
            .await
            .expect("store"),
        Stored::New
    );
    assert!(partitions(sql).await.iter().any(|t| t == "events_20200101"));
    let counts = inbox.counts().await.expect("counts");
    assert_eq!((counts.pending, counts.dead, counts.done), (2, 1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_too_big_for_any_batch_goes_whole_in_one_call() {
    let Some(cluster) = Cluster::start("prune-big") else {
        return;
    };
    let url = cluster.url();
    let inbox = inbox(&url, "big").await;
    let sql = connect(&url, "big").await;
    store(&inbox, &["first"], day(2)).await;
    store(&inbox, &["later"], day(3)).await;
    settle(
        &inbox,
        &[("first", EntryState::Done), ("later", EntryState::Done)],
    )
    .await;
    let (pending, done, dead) = fill(
        &sql,
        Fill {
            events: 10_000,
            prefix: "bulk-",
            from: day(2) + TimeDelta::hours(1),
            step: TimeDelta::seconds(1),
            webhooks: 2,
            pending_every: 1_000_000,
            dead_every: 1_000_000,
        },
    )
    .await;
    assert_eq!((pending, done, dead), (0, 10_000, 0));
    assert_eq!(inbox.counts().await.expect("counts").done, 10_002);

    let retention = Retention::nothing().done(Some(DAY));
    assert_eq!(
        inbox.prune(&retention, day(6), 100).await.expect("prune"),
        Pruned {
            done: 10_001,
            more: true,
            ..Pruned::default()
        }
    );
    assert!(!partitions(&sql)
        .await
        .iter()
        .any(|t| t == "events_20200103"));
    assert_eq!(inbox.counts().await.expect("counts").done, 1);
    assert_eq!(
        inbox.prune(&retention, day(6), 100).await.expect("prune"),
        Pruned {
            done: 1,
            ..Pruned::default()
        }
    );
    assert_eq!(inbox.counts().await.expect("counts"), Counts::default());
    assert!(inbox
        .list(ListFilter::new())
        .await
        .expect("list")
        .is_empty());
    // The partition's keys stay: its retries are duplicates.
    assert_eq!(
        inbox
            .store(record("w-1", "bulk-1", day(6)))
            .await
            .expect("store"),
        Stored::Duplicate { deliveries: 2 }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detach_cut_short_is_finished_or_undone_by_the_next_prune() {
    let Some(cluster) = Cluster::start("prune-detach") else {
        return;
    };
    let url = cluster.url();
    let inbox = inbox(&url, "detach").await;
    let sql = connect(&url, "detach").await;
    store(&inbox, &["a-1", "a-2"], day(0)).await;
    store(&inbox, &["b-1"], day(1)).await;
    settle(
        &inbox,
        &[
            ("a-1", EntryState::Done),
            ("a-2", EntryState::Done),
            ("b-1", EntryState::Done),
        ],
    )
    .await;
    store(&inbox, &["b-2"], day(1) + TimeDelta::hours(1)).await;

    // A DETACH … CONCURRENTLY cancelled while it waits for a reader leaves
    // day 0's partition "detach pending".
    cut_detach_short(&url, &sql, "events_20200101").await;
    // Day 1's partition, holding a pending event, detached by hand: as if
    // a pruner had detached it when a revive raced its check.
    sql.batch_execute("ALTER TABLE events DETACH PARTITION events_20200102")
        .await
        .expect("detach");
    assert_eq!(inbox.counts().await.expect("counts").done, 3);

    let pruned = inbox
        .prune(&Retention::nothing().done(Some(DAY)), day(5), 100)
        .await
        .expect("prune");
    assert_eq!(
        pruned,
        Pruned {
            done: 3,
            ..Pruned::default()
        }
    );
    let now = partitions(&sql).await;
    assert!(!now.iter().any(|t| t == "events_20200101"), "{now:?}");
    assert!(now.iter().any(|t| t == "events_20200102"), "{now:?}");
    let gone: bool = sql
        .query_one("SELECT to_regclass('events_20200101') IS NULL", &[])
        .await
        .expect("regclass")
        .get(0);
    assert!(gone);
    assert_eq!(
        ids(&inbox.list(ListFilter::new()).await.expect("list")),
        ["b-2"]
    );
    assert_eq!(
        inbox.counts().await.expect("counts"),
        Counts {
            pending: 1,
            oldest_pending: Some(day(1) + TimeDelta::hours(1)),
            ..Counts::default()
        }
    );
    let claimed = inbox
        .claim_next("worker", Duration::from_secs(60), day(5))
        .await
        .expect("claim")
        .expect("b-2");
    assert_eq!(claimed.entry.event_id, "b-2");
}

/// Leaves `table` "detach pending": a `DETACH … CONCURRENTLY` cancelled
/// while it waits for a reader, as a pruner stopped there would.
async fn cut_detach_short(url: &str, sql: &tokio_postgres::Client, table: &str) {
    let reader = connect(url, "detach").await;
    reader
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM events")
        .await
        .expect("reader");
    let detacher = tokio::spawn({
        let (url, table) = (url.to_owned(), table.to_owned());
        async move {
            connect(&url, "detach")
                .await
                .batch_execute(&format!(
                    "ALTER TABLE events DETACH PARTITION {table} CONCURRENTLY"
                ))
                .await
        }
    });
    let started = Instant::now();
    loop {
        let cancelled: bool = sql
            .query_one(
                "SELECT coalesce(bool_or(pg_cancel_backend(pid)), false) FROM pg_stat_activity \
                 WHERE query LIKE 'ALTER TABLE events DETACH%' AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .expect("cancel")
            .get(0);
        if cancelled {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "never waited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let error = detacher.await.expect("task").expect_err("cancelled");
    assert_eq!(
        error
            .as_db_error()
            .map(tokio_postgres::error::DbError::message),
        Some("canceling statement due to user request")
    );
    reader.batch_execute("COMMIT").await.expect("commit");
    let pending: bool = sql
        .query_one(
            "SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = to_regclass($1)",
            &[&table],
        )
        .await
        .expect("pg_inherits")
        .get(0);
    assert!(pending);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pruner_at_a_time_and_a_cancelled_one_lets_go() {
    let Some(cluster) = Cluster::start("prune-lock") else {
        return;
    };
    let url = cluster.url();
    let inbox = inbox(&url, "lock").await;
    let other = inbox.clone();
    let sql = connect(&url, "lock").await;
    store(&inbox, &["a-1", "a-2"], day(0)).await;
    store(&inbox, &["b-1"], day(0) + TimeDelta::hours(2)).await;
    settle(
        &inbox,
        &[
            ("a-1", EntryState::Done),
            ("a-2", EntryState::Done),
            ("b-1", EntryState::Done),
        ],
    )
    .await;
    let retention = Retention::nothing().done(Some(Duration::from_secs(3600)));
    let now = day(0) + TimeDelta::hours(3);

    // Another process prunes: this one returns at once, having pruned
    // nothing, and says more may be left (never "nothing left").
    let holder = connect(&url, "lock").await;
    holder
        .batch_execute("SELECT pg_advisory_lock(hashtext('boxhook-prune:' || current_schema()))")
        .await
        .expect("lock");
    let skipped = tokio::time::timeout(Duration::from_secs(5), other.prune(&retention, now, 100))
        .await
        .expect("returned at once")
        .expect("prune");
    assert_eq!(
        skipped,
        Pruned {
            more: true,
            ..Pruned::default()
        }
    );
    assert_eq!(inbox.counts().await.expect("counts").done, 3);
    holder
        .batch_execute("SELECT pg_advisory_unlock(hashtext('boxhook-prune:' || current_schema()))")
        .await
        .expect("unlock");

    // A prune stuck behind a lock (a duplicate store of an event it prunes
    // holds the key) and dropped: its connection closes, and the server
    // lets its lock go without waiting for the key.
    let blocker = connect(&url, "lock").await;
    blocker
        .batch_execute("BEGIN; SELECT * FROM event_keys WHERE event_id = 'a-1' FOR UPDATE")
        .await
        .expect("lock a key");
    let stuck = tokio::spawn({
        let inbox = inbox.clone();
        async move { inbox.prune(&retention, now, 100).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Meanwhile another call in this process returns at once.
    let meanwhile = tokio::time::timeout(Duration::from_secs(2), other.prune(&retention, now, 100))
        .await
        .expect("returned at once")
        .expect("prune");
    assert_eq!(
        meanwhile,
        Pruned {
            more: true,
            ..Pruned::default()
        }
    );
    assert!(!stuck.is_finished(), "the prune did not wait: {stuck:?}");
    stuck.abort();
    let held = || async {
        sql.query_one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted",
            &[],
        )
        .await
        .expect("pg_locks")
        .get::<_, i64>(0)
    };
    let started = Instant::now();
    while held().await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the dropped prune's lock is still held"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    blocker
        .batch_execute("ROLLBACK")
        .await
        .expect("unlock a key");
    // Nothing was pruned by the dropped call (its transaction rolled back);
    // the next call prunes.
    assert_eq!(inbox.counts().await.expect("counts").done, 3);
    let pruned = other.prune(&retention, now, 100).await.expect("prune");
    assert_eq!(
        pruned,
        Pruned {
            done: 2,
            ..Pruned::default()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stores_go_on_while_a_big_partition_is_dropped() {
    let Some(cluster) = Cluster::start("prune-busy") else {
        return;
    };
    let url = cluster.url();
    let inbox = inbox(&url, "busy").await;
    let sql = connect(&url, "busy").await;
    store(&inbox, &["seed"], day(2)).await;
    store(&inbox, &["seed-2"], day(3)).await;
    settle(
        &inbox,
        &[("seed", EntryState::Done), ("seed-2", EntryState::Done)],
    )
    .await;
    fill(
        &sql,
        Fill {
            events: 20_000,
            prefix: "old-",
            from: day(2) + TimeDelta::hours(1),
            step: TimeDelta::seconds(1),
            webhooks: 4,
            pending_every: 1_000_000,
            dead_every: 1_000_000,
        },
    )
    .await;
    fill(
        &sql,
        Fill {
            events: 500,
            prefix: "mixed-",
            from: day(3),
            step: TimeDelta::seconds(1),
            webhooks: 4,
            pending_every: 100,
            dead_every: 1_000_000,
        },
    )
    .await;

    let storing: Vec<_> = (0..TASKS)
        .map(|task| {
            let inbox = inbox.clone();
            tokio::spawn(async move {
                let mut slowest = Duration::ZERO;
                for n in 0..EACH {
                    let started = Instant::now();
                    let stored = inbox
                        .store(record("w", &format!("new-{task}-{n}"), Utc::now()))
                        .await
                        .expect("store");
                    assert_eq!(stored, Stored::New);
                    slowest = slowest.max(started.elapsed());
                }
                slowest
            })
        })
        .collect();
    let retention = Retention::nothing().done(Some(DAY));
    let mut total = Pruned::default();
    let mut calls = 0;
    loop {
        let pruned = inbox.prune(&retention, day(6), 100).await.expect("prune");
        calls += 1;
        total.add(pruned);
        if !pruned.more {
            break;
        }
    }
    let mut slowest = Duration::ZERO;
    for task in storing {
        slowest = slowest.max(task.await.expect("task"));
    }
    // 20,001 done events went in one call, then 496 in five batches.
    assert_eq!(
        total,
        Pruned {
            done: 20_497,
            ..Pruned::default()
        }
    );
    assert_eq!(calls, 6);
    let stored = u64::try_from(TASKS * EACH).expect("a count");
    let counts = inbox.counts().await.expect("counts");
    assert_eq!(
        (counts.pending, counts.done, counts.dead),
        (stored + 5, 0, 0)
    );
    // No store waited for the prune: a generous bound for a loaded machine.
    assert!(slowest < Duration::from_secs(2), "a store took {slowest:?}");
}
