//! At volume: with 200,000 events stored over nine day partitions, the
//! inbox's counts, its "newest 50" lists, its paging and its claims read a
//! few index pages, never the events table: checked on the plans
//! PostgreSQL ran for the very statements the inbox sent (read back from
//! `pg_stat_activity`), by the buffers they touched, not by timing. Skipped
//! with a message when PostgreSQL is not installed, unless
//! `BOXHOOK_POSTGRES=required`.

#![cfg(unix)]
#![allow(
    clippy::doc_markdown,
    reason = "PostgreSQL is a product name, not code"
)]

use crate::common;

use std::time::Duration;

use boxhook::inbox::{Counts, EntryState, Inbox, ListFilter};
use boxhook_postgres::{Options, PgInbox};
use boxhook_testkit::postgres::Cluster;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde_json::Value;

use common::{buffers, connect, event_blocks, explain, fill, last_statement, seq_scans, Fill};

const EVENTS: i64 = 200_000;

/// The most shared buffers one read may touch: a few per partition and
/// index, against the ~15,000 blocks the events take.
const MOST_BUFFERS: u64 = 400;

/// Reads plan each run with its values (the read pool's
/// `plan_cache_mode`); the stores' pool lets PostgreSQL choose, so claims
/// are checked with both kinds of plan.
const READS: bool = false;

/// Checks one plan: no sequential scan of an events partition, few
/// buffers.
fn no_scan(what: &str, plan: &Value, blocks: u64) {
    let scans = seq_scans(plan);
    assert!(
        scans.iter().all(|relation| !relation.starts_with("events")),
        "{what} scans {scans:?}: {plan:#}"
    );
    let touched = buffers(plan);
    assert!(
        touched <= MOST_BUFFERS && touched * 20 < blocks,
        "{what} touched {touched} buffers of {blocks}: {plan:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_lists_and_claims_read_indexes_not_the_200k_events() {
    let Some(cluster) = Cluster::start("scale") else {
        return;
    };
    let url = cluster.url();
    // pg_stat_activity keeps the first 1 kB of a statement by default; the
    // claim is longer.
    connect(&url, "public")
        .await
        .batch_execute("ALTER SYSTEM SET track_activity_query_size = 16384")
        .await
        .expect("alter system");
    cluster.stop();
    cluster.start_again();
    let inbox = PgInbox::connect_with(&url, &Options::default().schema("scale").pool_size(2))
        .await
        .expect("connect");
    let sql = &connect(&url, "scale").await;

    // Yesterday to 7 days on: the partitions made ahead at connect.
    let from = Utc::now()
        .duration_trunc(TimeDelta::days(1))
        .expect("a day")
        - TimeDelta::days(1);
    let step = TimeDelta::milliseconds(8 * 86_400_000 / EVENTS);
    let (pending, done, dead) = fill(
        sql,
        Fill {
            events: EVENTS,
            prefix: "e-",
            from,
            step,
            webhooks: 3,
            pending_every: 200,
            dead_every: 97,
        },
    )
    .await;
    sql.batch_execute("VACUUM ANALYZE events, event_keys, event_counts")
        .await
        .expect("analyze");
    let blocks = event_blocks(sql).await;
    assert!(blocks > 10_000, "only {blocks} blocks of events");

    // Counts: the counters' sums and the oldest pending event.
    assert_eq!(
        inbox.counts().await.expect("counts"),
        Counts {
            pending,
            claimed: 0,
            done,
            dead,
            oldest_pending: Some(from + step * 199),
        }
    );
    let counts = last_statement(sql, "boxhook-read", "event_counts").await;
    no_scan("counts", &explain(sql, &counts, &[], READS).await, blocks);

    let events = Events {
        inbox: &inbox,
        sql,
        from,
        blocks,
    };
    newest_and_paging(&events).await;
    filters(&events).await;
    claim(&events, pending).await;
}

/// What the checks share.
struct Events<'a> {
    inbox: &'a PgInbox,
    sql: &'a tokio_postgres::Client,
    /// The first event's `received_at`.
    from: DateTime<Utc>,
    /// The heap blocks of `events`.
    blocks: u64,
}

/// The newest 50, and the page before them.
async fn newest_and_paging(events: &Events<'_>) {
    let Events {
        inbox,
        sql,
        from: _,
        blocks,
    } = *events;
    // The newest 50, then the 50 before them.
    let page = inbox
        .list(ListFilter::new().newest_first().limit(50))
        .await
        .expect("list");
    let ids: Vec<String> = page.iter().map(|e| e.event_id.clone()).collect();
    let expected: Vec<String> = (EVENTS - 49..=EVENTS)
        .rev()
        .map(|i| format!("e-{i}"))
        .collect();
    assert_eq!(ids, expected);
    let newest = last_statement(sql, "boxhook-read", "ORDER BY e.seq DESC LIMIT").await;
    no_scan(
        "the newest 50",
        &explain(sql, &newest, &["50"], READS).await,
        blocks,
    );
    let next = inbox
        .list(ListFilter::new().newest_first().before(&ids[49]).limit(50))
        .await
        .expect("list");
    assert_eq!(
        next.first().map(|e| e.event_id.as_str()),
        Some(&*format!("e-{}", EVENTS - 50))
    );
    assert_eq!(next.len(), 50);
    let before = last_statement(sql, "boxhook-read", "e.seq < (SELECT seq").await;
    let plan = explain(sql, &before, &[&format!("'{}'", ids[49]), "50"], READS).await;
    no_scan("a page before an event", &plan, blocks);
}

/// By state, trigger, time; by id.
async fn filters(events: &Events<'_>) {
    let Events {
        inbox,
        sql,
        from,
        blocks,
    } = *events;
    // The newest 50 dead events (1 in 100); by trigger; events since a
    // time; one event.
    let dead_page = inbox
        .list(
            ListFilter::new()
                .state(EntryState::Dead)
                .newest_first()
                .limit(50),
        )
        .await
        .expect("list");
    assert_eq!(dead_page.len(), 50);
    assert!(dead_page.iter().all(|e| e.state == EntryState::Dead));
    let by_state = last_statement(sql, "boxhook-read", "e.state = 'dead'").await;
    no_scan(
        "the newest 50 dead",
        &explain(sql, &by_state, &["50"], READS).await,
        blocks,
    );
    for n in 0..3 {
        let at = from + TimeDelta::days(n);
        inbox
            .store(common::event(
                "w-0",
                &format!("deleted-{n}"),
                "FILE.DELETED",
                at,
            ))
            .await
            .expect("store");
    }
    let deleted = inbox
        .list(
            ListFilter::new()
                .trigger("FILE.DELETED")
                .newest_first()
                .limit(50),
        )
        .await
        .expect("list");
    let ids: Vec<&str> = deleted.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, ["deleted-2", "deleted-1", "deleted-0"]);
    let by_trigger = last_statement(sql, "boxhook-read", "e.trigger_name = $1").await;
    let plan = explain(sql, &by_trigger, &["'FILE.DELETED'", "50"], READS).await;
    no_scan("the newest 50 of a rare trigger", &plan, blocks);
    let since = from + TimeDelta::days(7);
    let recent = inbox
        .list(ListFilter::new().since(since).limit(50))
        .await
        .expect("list");
    assert_eq!(recent.len(), 50);
    assert!(recent.iter().all(|e| e.received_at >= since));
    let since_sql = last_statement(sql, "boxhook-read", "e.received_at >= $1").await;
    let at = since.timestamp_millis().to_string();
    no_scan(
        "50 since a time",
        &explain(sql, &since_sql, &[&at, "50"], READS).await,
        blocks,
    );
    let one = inbox.get("e-123456").await.expect("get").expect("stored");
    assert_eq!(one.entry.event_id, "e-123456");
    let get = last_statement(sql, "boxhook-read", "e.event_id = $1").await;
    no_scan(
        "get",
        &explain(sql, &get, &["'e-123456'"], READS).await,
        blocks,
    );
}

/// A claim, and the counts after it.
async fn claim(events: &Events<'_>, pending: u64) {
    let Events {
        inbox,
        sql,
        from: _,
        blocks,
    } = *events;
    // A claim, among 1,000 pending events.
    let claimed = inbox
        .claim_next(
            "w",
            Duration::from_secs(60),
            Utc::now() + TimeDelta::days(30),
        )
        .await
        .expect("claim")
        .expect("one pending");
    assert_eq!(claimed.entry.event_id, "e-200");
    let claim = last_statement(sql, "boxhook", "FOR UPDATE SKIP LOCKED").await;
    let now = (Utc::now() + TimeDelta::days(30))
        .timestamp_millis()
        .to_string();
    for generic in [false, true] {
        let plan = explain(sql, &claim, &["'w'", &now, &now, "'{}'"], generic).await;
        no_scan("a claim", &plan, blocks);
    }
    let after = inbox.counts().await.expect("counts");
    assert_eq!((after.pending, after.claimed), (pending + 3 - 1, 1));
}
