//! Migrating a version 1 inbox (one `events` table) with rows in it to
//! version 2 (partitioned by day): every row keeps every column, its `seq`
//! and its order, the sequence goes on, keys and counts match, and the
//! rows are claimed, listed and deduplicated as before. Skipped with a
//! message when PostgreSQL is not installed, unless
//! `BOXHOOK_POSTGRES=required`.

#![cfg(unix)]
#![allow(
    clippy::doc_markdown,
    reason = "PostgreSQL is a product name, not code"
)]

use crate::common;

use std::time::Duration;

use boxhook::inbox::{Counts, EntryState, ErrorKind, Inbox, ListFilter, RecordKind, Stored};
use boxhook_postgres::{Options, PgInbox};
use boxhook_testkit::postgres::Cluster;
use chrono::TimeDelta;

use common::{connect, day, partitions, record};

/// Version 1's schema, as boxhook 0.x created it.
const V1: &str = "
CREATE TABLE events (
    seq          bigserial PRIMARY KEY,
    webhook_id   text      NOT NULL,
    event_id     text      NOT NULL,
    trigger_name text      NOT NULL,
    source_type  text,
    source_id    text,
    delivery_id  text,
    received_at  bigint    NOT NULL,
    body         bytea     NOT NULL,
    kind         text      NOT NULL DEFAULT 'v2',
    deliveries   bigint    NOT NULL DEFAULT 1,
    state        text      NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'claimed', 'done', 'dead')),
    attempts     integer   NOT NULL DEFAULT 0,
    worker_id    text,
    ready_at     bigint    NOT NULL DEFAULT 0,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX events_queue ON events (seq) WHERE state IN ('pending', 'claimed');
CREATE INDEX events_trigger ON events (trigger_name, seq);
CREATE INDEX events_event_id ON events (event_id);
CREATE INDEX events_state ON events (state, seq);
CREATE TABLE claims (
    webhook_id  text   NOT NULL,
    event_id    text   NOT NULL,
    state       text   NOT NULL CHECK (state IN ('claimed', 'done')),
    lease_until bigint NOT NULL,
    changed_at  bigint NOT NULL,
    PRIMARY KEY (webhook_id, event_id)
);
CREATE INDEX claims_changed ON claims (changed_at);
CREATE TABLE boxhook_schema (
    version    bigint      PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO boxhook_schema (version) VALUES (1);
";

/// Version 1 rows: stored out of `received_at` order, with gaps in
/// `seq`, over days far apart (one before 1970), one V1 callback, every
/// state; the sequence left at 20. Days from 2020-01-01: 0, 1, 3, and the
/// day before 1970-01-01; leases end on day 40, a retry is due on day 30.
/// Bodies as [`body`] makes them.
const V1_ROWS: &str = "
INSERT INTO events (seq, webhook_id, event_id, trigger_name, source_type, source_id,
                    delivery_id, received_at, body, kind, deliveries, state, attempts,
                    worker_id, ready_at)
SELECT seq, w, e, t, st, si, d, r, convert_to('{\"id\":\"' || e || '\",\"n\":\"é\"}', 'UTF8'),
       k, n, s, a, wk, ready
FROM (VALUES
  (3, 'w-1', 'e-1', 'FILE.UPLOADED', 'file', '11', 'd-1', 1578096000000, 'v2', 1, 'done', 1,
   'worker-a', 1581292800000),
  (4, 'w-1', 'e-2', 'FILE.DELETED', 'file', '12', 'd-2', 1577837100000, 'v2', 3, 'dead', 5,
   'worker-b', 1581292800000),
  (7, 'w-2', 'e-3', 'FOLDER.CREATED', NULL, NULL, NULL, 1578096060000, 'v2', 1, 'pending', 0,
   NULL, 0),
  (8, 'w-2', 'e-1', 'FILE.UPLOADED', 'file', '13', 'd-4', -86400000, 'v2', 2, 'pending', 2,
   NULL, 1580428800000),
  (9, '', 'v1-a', 'uploaded', 'file', '14', NULL, 1577923200000, 'v1', 1, 'done', 1,
   'worker-a', 1581292800000),
  (12, 'w-1', 'e-4', 'FILE.UPLOADED', NULL, NULL, 'd-6', 1577925000000, 'v2', 1, 'claimed', 1,
   'worker-c', 1581292800000),
  (13, 'w-3', 'e-5', 'FILE.UPLOADED', NULL, NULL, 'd-7', 1578096120000, 'v2', 1, 'pending', 0,
   NULL, 0)
) v(seq, w, e, t, st, si, d, r, k, n, s, a, wk, ready);
SELECT setval('events_seq_seq', 20);
";

fn body(id: &str) -> Vec<u8> {
    format!("{{\"id\":\"{id}\",\"n\":\"\u{e9}\"}}").into_bytes()
}

/// Every column of every row, in `seq` order, with each key's deliveries,
/// as text: what the migration must keep.
async fn every_column(sql: &tokio_postgres::Client, deliveries_from: &str) -> Vec<String> {
    sql.query(
        &format!(
            "SELECT concat_ws('|', e.seq, e.webhook_id, e.event_id, e.trigger_name, e.source_type, \
             e.source_id, e.delivery_id, e.received_at, encode(e.body, 'hex'), e.kind, \
             {deliveries_from}, e.state, e.attempts, e.worker_id, e.ready_at) \
             FROM events e ORDER BY e.seq"
        ),
        &[],
    )
    .await
    .expect("rows")
    .iter()
    .map(|row| row.get(0))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_inbox_keeps_every_row_column_and_order() {
    let Some(cluster) = Cluster::start("migrate") else {
        return;
    };
    let url = cluster.url();
    let sql = connect(&url, "old").await;
    sql.batch_execute("CREATE SCHEMA old")
        .await
        .expect("schema");
    sql.batch_execute(V1).await.expect("version 1");
    sql.batch_execute(V1_ROWS).await.expect("version 1 rows");
    let before = every_column(&sql, "e.deliveries").await;

    // A receiver that does not migrate refuses the old schema.
    let refused = PgInbox::connect_with(&url, &Options::default().schema("old").migrate(false))
        .await
        .expect_err("refused");
    assert_eq!(refused.kind(), ErrorKind::Corrupt);
    assert_eq!(
        refused.to_string(),
        "inbox data is unreadable: the database's boxhook schema is version 1, older than this build's (2); \
         run `boxhook migrate --store URL` first"
    );

    let migrated = boxhook_postgres::migrate(&url, &Options::default().schema("old"))
        .await
        .expect("migrate");
    assert_eq!(migrated, 2);
    let after = every_column(
        &sql,
        "(SELECT k.deliveries FROM event_keys k \
          WHERE k.webhook_id = e.webhook_id AND k.event_id = e.event_id)",
    )
    .await;
    assert_eq!(after, before);
    let gone: bool = sql
        .query_one("SELECT to_regclass('events_v1') IS NULL", &[])
        .await
        .expect("regclass")
        .get(0);
    assert!(gone);
    // A partition per day with rows (and the coming days').
    let tables = partitions(&sql).await;
    for table in [
        "events_19691231",
        "events_20200101",
        "events_20200102",
        "events_20200104",
    ] {
        assert!(
            tables.iter().any(|t| t == table),
            "{table} not in {tables:?}"
        );
    }
    let keys: i64 = sql
        .query_one("SELECT count(*) FROM event_keys", &[])
        .await
        .expect("keys")
        .get(0);
    assert_eq!(keys, 7);

    let inbox = PgInbox::connect_with(&url, &Options::default().schema("old").migrate(false))
        .await
        .expect("current now");
    listed_claimed_and_deduplicated_as_before(&inbox, &sql).await;
}

async fn listed_claimed_and_deduplicated_as_before(inbox: &PgInbox, sql: &tokio_postgres::Client) {
    let listed = inbox.list(ListFilter::new()).await.expect("list");
    let order: Vec<(&str, &str)> = listed
        .iter()
        .map(|e| (e.webhook_id.as_str(), e.event_id.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            ("w-1", "e-1"),
            ("w-1", "e-2"),
            ("w-2", "e-3"),
            ("w-2", "e-1"),
            ("", "v1-a"),
            ("w-1", "e-4"),
            ("w-3", "e-5"),
        ]
    );
    let dead = &listed[1];
    assert_eq!(
        (
            dead.deliveries,
            dead.attempts,
            dead.state,
            dead.trigger.as_str()
        ),
        (3, 5, EntryState::Dead, "FILE.DELETED")
    );
    assert_eq!(listed[4].kind, RecordKind::V1);
    let stored = inbox.get("v1-a").await.expect("get").expect("stored");
    assert_eq!(&stored.body[..], &body("v1-a")[..]);
    assert_eq!(
        inbox.counts().await.expect("counts"),
        Counts {
            pending: 3,
            claimed: 1,
            done: 2,
            dead: 1,
            oldest_pending: Some(day(-18_263)),
        }
    );

    // Claims go in seq order: w-2/e-1 is ready only from day 30.
    let claimed = inbox
        .claim_next("worker", Duration::from_secs(60), day(10))
        .await
        .expect("claim")
        .expect("e-3");
    assert_eq!(
        (
            claimed.entry.webhook_id.as_str(),
            claimed.entry.event_id.as_str()
        ),
        ("w-2", "e-3")
    );
    inbox.ack(&claimed).await.expect("ack");

    // Deduplication goes on from the copied deliveries; a new event (on a
    // day with a partition: a store that creates one takes two numbers)
    // gets the seq after the old ones.
    assert_eq!(
        inbox
            .store(record("w-1", "e-2", day(10)))
            .await
            .expect("store"),
        Stored::Duplicate { deliveries: 4 }
    );
    assert_eq!(
        inbox
            .store(record("w-1", "e-9", day(3) + TimeDelta::hours(1)))
            .await
            .expect("store"),
        Stored::New
    );
    let seq: i64 = sql
        .query_one("SELECT seq FROM events WHERE event_id = 'e-9'", &[])
        .await
        .expect("seq")
        .get(0);
    assert_eq!(seq, 21);
    let counts = inbox.counts().await.expect("counts");
    assert_eq!((counts.pending, counts.done), (3, 3));
}
