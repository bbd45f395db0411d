//! Versioned, embedded migrations, applied under an advisory lock.

use boxhook::inbox::{ErrorKind, InboxError};
use deadpool_postgres::Object;

use crate::storage;

/// Each migration, in order: version `n` is `MIGRATIONS[n - 1]`.
///
/// Times are milliseconds since the Unix epoch, UTC, as in the SQLite
/// inbox: `bigint` holds every instant `chrono` does (`timestamptz` stops
/// at 4713 BC). `trigger_name` because `trigger` is an SQL keyword. In
/// `events`, `ready_at` is when a pending or claimed event may be claimed
/// (0 for a new one, the lease's end for a claimed one, the retry time for
/// a requeued one). `kind` tells V2 events from V1 callbacks.
pub(crate) const MIGRATIONS: &[&str] = &["
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
"];

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
    let lock_key = format!("boxhook-migrate:{}", schema.unwrap_or(""));
    tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&lock_key])
        .await
        .map_err(storage)?;
    if let Some(schema) = schema {
        if migrate {
            tx.batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {}",
                quote_ident(schema)
            ))
            .await
            .map_err(storage)?;
        }
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
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let number = i64::try_from(index).unwrap_or(i64::MAX).saturating_add(1);
        if number <= current {
            continue;
        }
        tx.batch_execute(sql).await.map_err(storage)?;
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

/// `name` as a quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
