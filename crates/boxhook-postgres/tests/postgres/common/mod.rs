//! What the PostgreSQL inbox's own tests share: records, a plain
//! connection beside the inbox's pools, a fast fill in one statement, and
//! reading the plans PostgreSQL chose.

#![allow(
    dead_code,
    reason = "each test file uses the helpers it needs and no more"
)]

use boxhook::inbox::NewRecord;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

/// A `FILE.UPLOADED` event `id` of webhook `webhook`, received at `at`.
pub(crate) fn record(webhook: &str, id: &str, at: DateTime<Utc>) -> NewRecord {
    event(webhook, id, "FILE.UPLOADED", at)
}

/// A V2 event `id` of webhook `webhook` with `trigger`, received at `at`.
pub(crate) fn event(webhook: &str, id: &str, trigger: &str, at: DateTime<Utc>) -> NewRecord {
    let body = format!(
        r#"{{"type":"webhook_event","id":"{id}","trigger":"{trigger}","webhook":{{"id":"{webhook}","type":"webhook"}}}}"#
    );
    NewRecord::parse(body, Some("d-1"), at).expect("an event")
}

/// 2020-01-01T00:00:00Z plus `days`.
pub(crate) fn day(days: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_577_836_800, 0).expect("a time") + TimeDelta::days(days)
}

/// A plain connection beside the inbox's pools, with `search_path` set to
/// `schema`.
pub(crate) async fn connect(url: &str, schema: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("SET search_path = {schema}"))
        .await
        .expect("search_path");
    client
}

/// What [`fill`] stores.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fill<'a> {
    /// How many events.
    pub(crate) events: i64,
    /// Event ids are this followed by 1, 2, …
    pub(crate) prefix: &'a str,
    /// The first event's `received_at`.
    pub(crate) from: DateTime<Utc>,
    /// The time between two events.
    pub(crate) step: TimeDelta,
    /// Events are spread over this many webhooks (`w-0`, `w-1`, …).
    pub(crate) webhooks: i64,
    /// Every `pending_every`th event is pending.
    pub(crate) pending_every: i64,
    /// Of the others, every `dead_every`th is dead; the rest are done.
    pub(crate) dead_every: i64,
}

/// Stores events in one statement, as the inbox's store would have stored
/// and settled them one by one: the rows, their keys and their counts.
/// Their days must have partitions. Returns (pending, done, dead).
pub(crate) async fn fill(client: &tokio_postgres::Client, fill: Fill<'_>) -> (u64, u64, u64) {
    let sql = "WITH rows AS MATERIALIZED ( \
           SELECT i, 'w-' || (i % $6) AS w, $2 || i AS e, $3 + (i - 1) * $4 AS r, \
                  CASE WHEN i % $5 = 0 THEN 'pending' WHEN i % $7 = 0 THEN 'dead' \
                       ELSE 'done' END AS s \
           FROM generate_series(1, $1::bigint) i), \
         keys AS ( \
           INSERT INTO event_keys (webhook_id, event_id, received_at) SELECT w, e, r FROM rows), \
         added AS ( \
           INSERT INTO events (webhook_id, event_id, trigger_name, received_at, body, state, \
                               attempts) \
           SELECT w, e, 'FILE.UPLOADED', r, \
                  convert_to('{\"type\":\"webhook_event\",\"id\":\"' || e || \
                             '\",\"trigger\":\"FILE.UPLOADED\",\"webhook\":{\"id\":\"' || w || \
                             '\"},\"pad\":\"' || repeat('x', 400) || '\"}', 'UTF8'), \
                  s, CASE WHEN s = 'pending' THEN 0 ELSE 1 END \
           FROM rows ORDER BY i) \
         INSERT INTO event_counts AS c (webhook_id, shard, pending, done, dead, deliveries) \
         SELECT w, 0, count(*) FILTER (WHERE s = 'pending'), count(*) FILTER (WHERE s = 'done'), \
                count(*) FILTER (WHERE s = 'dead'), count(*) FROM rows GROUP BY w \
         ON CONFLICT (webhook_id, shard) DO UPDATE SET pending = c.pending + EXCLUDED.pending, \
         done = c.done + EXCLUDED.done, dead = c.dead + EXCLUDED.dead, \
         deliveries = c.deliveries + EXCLUDED.deliveries";
    client
        .execute(
            sql,
            &[
                &fill.events,
                &fill.prefix,
                &fill.from.timestamp_millis(),
                &fill.step.num_milliseconds(),
                &fill.pending_every,
                &fill.webhooks,
                &fill.dead_every,
            ],
        )
        .await
        .expect("fill");
    let (mut pending, mut done, mut dead) = (0, 0, 0);
    for i in 1..=fill.events {
        if i % fill.pending_every == 0 {
            pending += 1;
        } else if i % fill.dead_every == 0 {
            dead += 1;
        } else {
            done += 1;
        }
    }
    (pending, done, dead)
}

/// The partitions attached to `events`, by table name, oldest first.
pub(crate) async fn partitions(client: &tokio_postgres::Client) -> Vec<String> {
    client
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'events'::regclass ORDER BY 1",
            &[],
        )
        .await
        .expect("partitions")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// The statement the inbox's `application` connection (e.g.
/// `boxhook-read`) ran last, among those whose text has `containing`.
pub(crate) async fn last_statement(
    client: &tokio_postgres::Client,
    application: &str,
    containing: &str,
) -> String {
    client
        .query_one(
            "SELECT query FROM pg_stat_activity WHERE application_name = $1 \
             AND state = 'idle' AND strpos(query, $2) > 0 ORDER BY state_change DESC LIMIT 1",
            &[&application, &containing],
        )
        .await
        .expect("the inbox's last statement")
        .get(0)
}

/// `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` of `sql` run with `args` (SQL
/// literals, one per `$n`), with a generic plan when `generic` (as a
/// prepared statement gets after its fifth run), a custom one otherwise;
/// in a transaction rolled back, so that a plan of a change changes
/// nothing.
pub(crate) async fn explain(
    client: &tokio_postgres::Client,
    sql: &str,
    args: &[&str],
    generic: bool,
) -> Value {
    let mode = if generic {
        "force_generic_plan"
    } else {
        "force_custom_plan"
    };
    let execute = if args.is_empty() {
        "q".to_owned()
    } else {
        format!("q({})", args.join(", "))
    };
    let messages = client
        .simple_query(&format!(
            "DEALLOCATE ALL; BEGIN; SET LOCAL plan_cache_mode = {mode}; PREPARE q AS {sql}; \
             EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE {execute}; ROLLBACK"
        ))
        .await
        .expect("explain");
    let text = messages
        .iter()
        .find_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        })
        .expect("a plan");
    let plans: Value = serde_json::from_str(&text).expect("JSON");
    plans[0].clone()
}

/// Every relation a plan read with a sequential scan that touched a
/// buffer (the planner scans an empty partition, ahead of its day, rather
/// than open its index: that reads nothing).
pub(crate) fn seq_scans(plan: &Value) -> Vec<String> {
    fn walk(node: &Value, out: &mut Vec<String>) {
        let touched = node["Shared Hit Blocks"].as_u64().unwrap_or(0)
            + node["Shared Read Blocks"].as_u64().unwrap_or(0);
        if node["Node Type"] == "Seq Scan" && touched > 0 {
            out.push(node["Relation Name"].as_str().unwrap_or("?").to_owned());
        }
        for child in node["Plans"].as_array().into_iter().flatten() {
            walk(child, out);
        }
    }
    let mut out = Vec::new();
    walk(&plan["Plan"], &mut out);
    out
}

/// The shared buffers a plan's execution touched (hit or read).
pub(crate) fn buffers(plan: &Value) -> u64 {
    let node = &plan["Plan"];
    node["Shared Hit Blocks"].as_u64().unwrap_or(0)
        + node["Shared Read Blocks"].as_u64().unwrap_or(0)
}

/// How many heap blocks `events` has, over every partition.
pub(crate) async fn event_blocks(client: &tokio_postgres::Client) -> u64 {
    let blocks: i64 = client
        .query_one(
            "SELECT coalesce(sum(pg_relation_size(c.oid) / current_setting('block_size')::int), 0)::bigint \
             FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'events'::regclass",
            &[],
        )
        .await
        .expect("size")
        .get(0);
    u64::try_from(blocks).expect("a size")
}
