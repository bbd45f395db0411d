//! Versioned, embedded migrations, applied under an advisory lock.

use boxhook::inbox::{ErrorKind, InboxError};
use deadpool_postgres::Object;

use crate::{partitions, storage};

/// One step of a migration.
pub(crate) enum Step {
    /// SQL, run as it is.
    Sql(&'static str),
    /// Creates a partition of `events` for each day that has a row in
    /// `events_v1`, and for the days around now (see
    /// [`partitions::ensure_ahead`]).
    PartitionsForV1Rows,
}

/// Each migration, in order: version `n` is `MIGRATIONS[n - 1]`.
pub(crate) const MIGRATIONS: &[&[Step]] = &[
    &[Step::Sql(V1)],
    &[
        Step::Sql(V2_TABLES),
        Step::PartitionsForV1Rows,
        Step::Sql(V2_ROWS),
    ],
];

/// Version 1: one `events` table, unique on `(webhook_id, event_id)`.
///
/// Times are milliseconds since the Unix epoch, UTC, as in the SQLite
/// inbox: `bigint` holds every instant `chrono` does (`timestamptz` stops
/// at 4713 BC). `trigger_name` because `trigger` is an SQL keyword. In
/// `events`, `ready_at` is when a pending or claimed event may be claimed
/// (0 for a new one, the lease's end for a claimed one, the retry time for
/// a requeued one). `kind` tells V2 events from V1 callbacks.
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

-- Idle workers LISTEN on boxhook_events; receivers and requeues NOTIFY
-- it after their own COMMIT (not in a trigger: NOTIFY holds a database-wide
-- lock through COMMIT, which would serialize every store's WAL flush).

-- The idempotency store: one row per key, `claimed` (held until
-- lease_until) or `done` (final); a released claim is deleted.
CREATE TABLE claims (
    webhook_id  text   NOT NULL,
    event_id    text   NOT NULL,
    state       text   NOT NULL CHECK (state IN ('claimed', 'done')),
    lease_until bigint NOT NULL,
    changed_at  bigint NOT NULL,
    PRIMARY KEY (webhook_id, event_id)
);
CREATE INDEX claims_changed ON claims (changed_at);
";

/// Version 2, first step: `events` partitioned by day of `received_at`, the
/// deduplication key in `event_keys`, counters in `event_counts`. Version
/// 1's table steps aside as `events_v1` until its rows are copied.
///
/// - `events` has no unique key of its own on `(webhook_id, event_id)`:
///   PostgreSQL only enforces unique keys that include the partition key.
///   Its primary key `(event_id, webhook_id, received_at)` finds one row
///   (in one partition when `received_at` is given) and any event by id.
///   `deliveries` moved to `event_keys`.
/// - `event_keys` is the exact deduplication key, one row per event,
///   outliving the event's body once pruned (`gone` when its body was
///   deleted row by row; a key whose `received_at` no partition covers
///   lost its body with a dropped partition).
/// - `event_counts` holds, per webhook and per shard (the storing
///   connection's backend pid modulo 16, so that concurrent stores rarely
///   update one row), the change each state's count saw: the counts are
///   their sums. `deliveries` counts every store, new or duplicate.
const V2_TABLES: &str = "
ALTER TABLE events RENAME TO events_v1;
ALTER TABLE events_v1 ALTER COLUMN seq DROP DEFAULT;
ALTER SEQUENCE events_seq_seq OWNED BY NONE;
DROP INDEX events_queue, events_trigger, events_event_id, events_state;
ALTER TABLE events_v1 DROP CONSTRAINT events_webhook_id_event_id_key;
ALTER TABLE events_v1 RENAME CONSTRAINT events_pkey TO events_v1_pkey;

CREATE TABLE events (
    seq          bigint    NOT NULL DEFAULT nextval('events_seq_seq'),
    webhook_id   text      NOT NULL,
    event_id     text      NOT NULL,
    trigger_name text      NOT NULL,
    source_type  text,
    source_id    text,
    delivery_id  text,
    received_at  bigint    NOT NULL,
    body         bytea     NOT NULL,
    kind         text      NOT NULL DEFAULT 'v2',
    state        text      NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'claimed', 'done', 'dead')),
    attempts     integer   NOT NULL DEFAULT 0,
    worker_id    text,
    ready_at     bigint    NOT NULL DEFAULT 0
) PARTITION BY RANGE (received_at);

CREATE TABLE event_keys (
    webhook_id  text    NOT NULL,
    event_id    text    NOT NULL,
    received_at bigint  NOT NULL,
    deliveries  bigint  NOT NULL DEFAULT 1,
    gone        boolean NOT NULL DEFAULT false,
    PRIMARY KEY (webhook_id, event_id)
);

CREATE TABLE event_counts (
    webhook_id text     NOT NULL,
    shard      smallint NOT NULL,
    pending    bigint   NOT NULL DEFAULT 0,
    claimed    bigint   NOT NULL DEFAULT 0,
    done       bigint   NOT NULL DEFAULT 0,
    dead       bigint   NOT NULL DEFAULT 0,
    deliveries bigint   NOT NULL DEFAULT 0,
    PRIMARY KEY (webhook_id, shard)
) WITH (fillfactor = 50);
";

/// Version 2, last step: version 1's rows copied in `seq` order (the
/// sequence goes on where it was), their keys and counts, then the indexes
/// (built once over the copied rows, faster than row by row).
const V2_ROWS: &str = "
INSERT INTO events (seq, webhook_id, event_id, trigger_name, source_type, source_id,
                    delivery_id, received_at, body, kind, state, attempts, worker_id, ready_at)
SELECT seq, webhook_id, event_id, trigger_name, source_type, source_id,
       delivery_id, received_at, body, kind, state, attempts, worker_id, ready_at
FROM events_v1 ORDER BY seq;

INSERT INTO event_keys (webhook_id, event_id, received_at, deliveries)
SELECT webhook_id, event_id, received_at, deliveries FROM events_v1;

INSERT INTO event_counts (webhook_id, shard, pending, claimed, done, dead, deliveries)
SELECT webhook_id, 0,
       count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = 'claimed'),
       count(*) FILTER (WHERE state = 'done'), count(*) FILTER (WHERE state = 'dead'),
       sum(deliveries)::bigint
FROM events_v1 GROUP BY webhook_id;

DROP TABLE events_v1;
ALTER SEQUENCE events_seq_seq OWNED BY events.seq;

ALTER TABLE events ADD PRIMARY KEY (event_id, webhook_id, received_at);
CREATE INDEX events_seq ON events (seq);
CREATE INDEX events_queue ON events (seq) WHERE state IN ('pending', 'claimed');
CREATE INDEX events_state ON events (state, seq);
CREATE INDEX events_age ON events (state, kind, received_at) INCLUDE (webhook_id);
CREATE INDEX events_trigger ON events (trigger_name, seq);
CREATE INDEX event_keys_received ON event_keys (received_at);
CREATE INDEX event_keys_gone ON event_keys (received_at) WHERE gone;
ANALYZE events, event_keys, event_counts;
";

/// The schema version this build writes and reads.
pub(crate) fn version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// Migrates (or, when `migrate` is false, only checks) the schema.
///
/// One transaction holds `pg_advisory_xact_lock` on a key derived from the
/// schema name, so receivers starting together apply each migration once:
/// the others wait for the lock, then find the version current.
pub(crate) async fn prepare(
    client: &mut Object,
    schema: Option<&str>,
    migrate: bool,
) -> Result<(), InboxError> {
    let tx = client.transaction().await.map_err(storage)?;
    // The pool's lock timeout is for deliveries; a migration waits for
    // the one before it (and for the locks its DDL needs) as long as it takes.
    tx.batch_execute("SET LOCAL lock_timeout = 0")
        .await
        .map_err(storage)?;
    let lock_key = format!("boxhook-migrate:{}", schema.unwrap_or(""));
    tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&lock_key])
        .await
        .map_err(storage)?;
    if let Some(schema) = schema
        && migrate
    {
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            quote_ident(schema)
        ))
        .await
        .map_err(storage)?;
    }
    let exists: bool = tx
        .query_one("SELECT to_regclass('boxhook_schema') IS NOT NULL", &[])
        .await
        .map_err(storage)?
        .get(0);
    let current: i64 = if exists {
        tx.query_one("SELECT coalesce(max(version), 0) FROM boxhook_schema", &[])
            .await
            .map_err(storage)?
            .get(0)
    } else {
        0
    };
    if current > version() {
        return Err(InboxError::new(
            ErrorKind::Corrupt,
            format!(
                "the database's boxhook schema is version {current}, newer than this build \
                 reads ({}); upgrade boxhook",
                version()
            ),
        ));
    }
    if current == version() {
        return tx.commit().await.map_err(storage);
    }
    if !migrate {
        return Err(InboxError::new(
            ErrorKind::Corrupt,
            format!(
                "the database's boxhook schema is version {current}, older than this build's \
                 ({}); run `boxhook migrate --store URL` first",
                version()
            ),
        ));
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS boxhook_schema (
            version    bigint      PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )
    .await
    .map_err(storage)?;
    for (index, steps) in MIGRATIONS.iter().enumerate() {
        let number = i64::try_from(index).unwrap_or(i64::MAX).saturating_add(1);
        if number <= current {
            continue;
        }
        for step in *steps {
            match step {
                Step::Sql(sql) => tx.batch_execute(sql).await.map_err(storage)?,
                Step::PartitionsForV1Rows => partitions_for_v1_rows(&tx).await?,
            }
        }
        tx.execute(
            "INSERT INTO boxhook_schema (version) VALUES ($1)",
            &[&number],
        )
        .await
        .map_err(storage)?;
        tracing::info!(version = number, "applied boxhook PostgreSQL migration");
    }
    tx.commit().await.map_err(storage)
}

/// A partition for each day with a row in `events_v1`, and for the days
/// around now: no row is left without one (there is no DEFAULT partition).
async fn partitions_for_v1_rows(tx: &deadpool_postgres::Transaction<'_>) -> Result<(), InboxError> {
    let today = partitions::day_of(chrono::Utc::now().timestamp_millis());
    let ahead = today.saturating_sub(1)..=today.saturating_add(partitions::AHEAD_DAYS);
    let mut days: Vec<i64> = tx
        .query(
            "SELECT DISTINCT floor(received_at / 86400000.0)::bigint FROM events_v1",
            &[],
        )
        .await
        .map_err(storage)?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(storage)?;
    days.extend(ahead);
    days.sort_unstable();
    days.dedup();
    for day in days {
        partitions::create_in(tx, day).await?;
    }
    Ok(())
}

/// `name` as a quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
