//! Keys: concurrent first stores of one event on a day that has no
//! partition yet (each store would create it), and the idempotency store
//! forgetting settled keys in batches. Skipped with a message when
//! PostgreSQL is not installed, unless `BOXHOOK_POSTGRES=required`.

#![cfg(unix)]
#![allow(
    clippy::doc_markdown,
    reason = "PostgreSQL is a product name, not code"
)]

use crate::common;

use std::time::Duration;

use boxhook::idempotency::{Claim, EventKey, IdempotencyStore};
use boxhook::inbox::{Inbox, ListFilter, Stored};
use boxhook_postgres::{Options, PgIdempotencyStore, PgInbox, FORGET_BATCH};
use boxhook_testkit::postgres::Cluster;
use chrono::TimeDelta;

use common::{connect, day, partitions, record};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_stores_make_one_event_and_one_partition() {
    let Some(cluster) = Cluster::start("keys-race") else {
        return;
    };
    let url = cluster.url();
    let inbox = PgInbox::connect_with(&url, &Options::default().schema("race").pool_size(32))
        .await
        .expect("connect");
    let sql = connect(&url, "race").await;
    let at = day(100);
    let stores: Vec<_> = (0..32)
        .map(|_| {
            let inbox = inbox.clone();
            tokio::spawn(async move { inbox.store(record("w", "e-1", at)).await })
        })
        .collect();
    let mut deliveries = Vec::new();
    for store in stores {
        deliveries.push(store.await.expect("task").expect("store").deliveries());
    }
    deliveries.sort_unstable();
    assert_eq!(deliveries, (1..=32).collect::<Vec<u64>>());
    let tables: Vec<String> = partitions(&sql)
        .await
        .into_iter()
        .filter(|t| t.starts_with("events_202004"))
        .collect();
    assert_eq!(tables, ["events_20200410"]);
    let rows: i64 = sql
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(rows, 1);

    // The same event id under another webhook is another event.
    assert_eq!(
        inbox.store(record("w-2", "e-1", at)).await.expect("store"),
        Stored::New
    );
    let listed = inbox.list(ListFilter::new()).await.expect("list");
    let keys: Vec<(&str, u64)> = listed
        .iter()
        .map(|e| (e.webhook_id.as_str(), e.deliveries))
        .collect();
    assert_eq!(keys, [("w", 32), ("w-2", 1)]);
    assert_eq!(inbox.counts().await.expect("counts").pending, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_before_forgets_settled_keys_in_batches_and_keeps_held_ones() {
    let Some(cluster) = Cluster::start("keys-forget") else {
        return;
    };
    let url = cluster.url();
    let store = PgIdempotencyStore::connect_with(&url, &Options::default().schema("forget"))
        .await
        .expect("connect");
    let sql = connect(&url, "forget").await;
    let old = day(0).timestamp_millis();
    let later = day(10).timestamp_millis();
    // 2,500 keys completed on day 0, 2 claims whose lease ended on day 0,
    // 3 claims held until day 10, 1 key completed on day 10.
    sql.execute(
        "INSERT INTO claims (webhook_id, event_id, state, lease_until, changed_at) \
         SELECT 'w', 'done-' || i, 'done', $1::bigint, $1::bigint FROM generate_series(1, 2500) i \
         UNION ALL SELECT 'w', 'lapsed-' || i, 'claimed', $1, $1 FROM generate_series(1, 2) i \
         UNION ALL SELECT 'w', 'held-' || i, 'claimed', $2, $1 FROM generate_series(1, 3) i \
         UNION ALL SELECT 'w', 'recent', 'done', $2::bigint, $2::bigint",
        &[&old, &later],
    )
    .await
    .expect("claims");
    const { assert!(2_500 > FORGET_BATCH * 2, "spans several batches") };

    let forgotten = store.forget_before(day(1)).await.expect("forget");
    assert_eq!(forgotten, 2_502);
    let left: Vec<String> = sql
        .query("SELECT event_id FROM claims ORDER BY event_id", &[])
        .await
        .expect("claims")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(left, ["held-1", "held-2", "held-3", "recent"]);
    let now = day(1);
    let lease = Duration::from_secs(30);
    assert_eq!(
        store
            .claim(&EventKey::new("w", "done-7"), now, lease)
            .await
            .expect("claim"),
        Claim::Acquired
    );
    assert_eq!(
        store
            .claim(&EventKey::new("w", "held-1"), now, lease)
            .await
            .expect("claim"),
        Claim::InProgress
    );
    assert_eq!(
        store
            .claim(
                &EventKey::new("w", "recent"),
                now + TimeDelta::days(30),
                lease
            )
            .await
            .expect("claim"),
        Claim::Done
    );
    assert_eq!(store.forget_before(day(1)).await.expect("forget"), 0);
}
