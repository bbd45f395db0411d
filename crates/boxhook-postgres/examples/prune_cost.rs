//! Measures what pruning costs the PostgreSQL inbox, both ways it prunes:
//! a day partition of `N` done events dropped whole, and the same number
//! deleted in batches of 1,000 (a partition that also holds one pending
//! event cannot be dropped). Prints the time, the WAL written and what is
//! left on disk for each.
//!
//! ```text
//! cargo run --release -p boxhook-postgres --example prune_cost -- \
//!     'postgres://postgres@localhost/postgres?host=/tmp&port=5432' 500000
//! ```
//!
//! It works in a schema of its own, `prune_cost`, dropped at the start and
//! at the end. Give it a database you can spare: the events take about
//! 1 kB each on disk until they are pruned.

#![allow(
    clippy::doc_markdown,
    reason = "PostgreSQL is a product name, not code"
)]

use std::time::{Duration, Instant};

use boxhook::inbox::{Inbox, NewRecord, Prune, Pruned, Retention};
use boxhook_postgres::{Options, PgInbox};
use chrono::{DateTime, TimeDelta, Utc};

const SCHEMA: &str = "prune_cost";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or("usage: prune_cost POSTGRES_URL [EVENTS]")?;
    let events: i64 = args.next().map_or(Ok(200_000), |n| n.parse())?;
    let (sql, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    sql.batch_execute(&format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        .await?;
    let inbox = PgInbox::connect_with(&url, &Options::default().schema(SCHEMA)).await?;
    sql.batch_execute(&format!("SET search_path = {SCHEMA}"))
        .await?;

    // Day 0 goes whole; day 1 holds a pending event, so its done events go
    // in batches.
    let day = |n: i64| {
        DateTime::from_timestamp(1_577_836_800, 0).unwrap_or_default() + TimeDelta::days(n)
    };
    for (n, id) in [(0, "seed-0"), (1, "seed-1")] {
        let body = format!(r#"{{"id":"{id}","trigger":"FILE.UPLOADED","webhook":{{"id":"w"}}}}"#);
        inbox.store(NewRecord::parse(body, None, day(n))?).await?;
    }
    let seed = inbox
        .claim_next("cost", Duration::from_secs(60), day(2))
        .await?
        .ok_or("seed-0 is pending")?;
    inbox.ack(&seed).await?;
    let retention = Retention::nothing().done(Some(Duration::from_secs(86_400)));
    for (n, prefix) in [(0, "whole-"), (1, "batched-")] {
        fill(&sql, prefix, events, day(n)).await?;
    }
    sql.batch_execute("VACUUM ANALYZE events, event_keys, event_counts")
        .await?;
    let before = size(&sql).await?;
    println!("{events} done events on each of two days: {before} bytes of events and keys");

    let whole = measure(&sql, || inbox.prune(&retention, day(5), 1_000)).await?;
    println!(
        "dropped whole: {} events in {} call(s), {:?}, {} bytes of WAL; {} bytes left",
        whole.pruned.events(),
        whole.calls,
        whole.took,
        whole.wal,
        size(&sql).await?
    );
    let batched = measure(&sql, || inbox.prune(&retention, day(5), 1_000)).await?;
    println!(
        "in batches of 1,000: {} events in {} call(s), {:?}, {} bytes of WAL; {} bytes left \
         (the deleted rows' space stays in their partition until it is dropped)",
        batched.pruned.events(),
        batched.calls,
        batched.took,
        batched.wal,
        size(&sql).await?
    );
    sql.batch_execute(&format!("DROP SCHEMA {SCHEMA} CASCADE"))
        .await?;
    Ok(())
}

/// What pruning until `more` is false took.
struct Measured {
    pruned: Pruned,
    calls: u32,
    took: Duration,
    wal: i64,
}

async fn measure<F, Fut>(
    sql: &tokio_postgres::Client,
    mut prune: F,
) -> Result<Measured, Box<dyn std::error::Error>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Pruned, boxhook::inbox::InboxError>>,
{
    let lsn = "SELECT pg_current_wal_lsn()::text";
    let start: String = sql.query_one(lsn, &[]).await?.get(0);
    let started = Instant::now();
    let mut total = Pruned::default();
    let mut calls = 0;
    loop {
        let pruned = prune().await?;
        calls += 1;
        total.add(pruned);
        // One call per measurement when it dropped a partition: the next
        // one prunes the other day.
        if !pruned.more || pruned.events() > 1_000 {
            break;
        }
    }
    let took = started.elapsed();
    let end: String = sql.query_one(lsn, &[]).await?.get(0);
    let wal: i64 = sql
        .query_one(
            "SELECT pg_wal_lsn_diff($1::text::pg_lsn, $2::text::pg_lsn)::bigint",
            &[&end, &start],
        )
        .await?
        .get(0);
    Ok(Measured {
        pruned: total,
        calls,
        took,
        wal,
    })
}

/// The bytes of every partition of `events` and of `event_keys`, indexes
/// included.
async fn size(sql: &tokio_postgres::Client) -> Result<i64, tokio_postgres::Error> {
    Ok(sql
        .query_one(
            "SELECT (SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits \
                     WHERE inhparent = 'events'::regclass)::bigint \
                    + pg_total_relation_size('event_keys')",
            &[],
        )
        .await?
        .get(0))
}

/// `events` done events received over the day from `from`, with their
/// keys and counts, in one statement.
async fn fill(
    sql: &tokio_postgres::Client,
    prefix: &str,
    events: i64,
    from: DateTime<Utc>,
) -> Result<(), tokio_postgres::Error> {
    sql.execute(
        "WITH rows AS MATERIALIZED ( \
           SELECT 'w' AS w, $1 || i AS e, $3 + i * (86399000 / $2) AS r \
           FROM generate_series(1, $2::bigint) i), \
         keys AS (INSERT INTO event_keys (webhook_id, event_id, received_at) \
                  SELECT w, e, r FROM rows), \
         added AS (INSERT INTO events (webhook_id, event_id, trigger_name, received_at, body, \
                                       state, attempts) \
                   SELECT w, e, 'FILE.UPLOADED', r, \
                          convert_to('{\"id\":\"' || e || '\",\"pad\":\"' || repeat('x', 600) \
                                     || '\"}', 'UTF8'), 'done', 1 FROM rows) \
         INSERT INTO event_counts AS c (webhook_id, shard, done, deliveries) \
         SELECT 'w', 0, count(*), count(*) FROM rows \
         ON CONFLICT (webhook_id, shard) DO UPDATE \
         SET done = c.done + EXCLUDED.done, deliveries = c.deliveries + EXCLUDED.deliveries",
        &[&prefix, &events, &from.timestamp_millis()],
    )
    .await?;
    Ok(())
}
