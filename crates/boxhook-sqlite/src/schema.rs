//! The schema, created and migrated on open (`PRAGMA user_version`).

use std::path::Path;

use rusqlite::{Connection, ErrorCode, TransactionBehavior};

use boxhook::inbox::{ErrorKind, InboxError};

use crate::storage;

/// The schema version this build writes and reads.
pub(crate) const VERSION: i64 = 5;

/// The version that added `events.kind`: a file opened read-only below it
/// is read as all `v2`.
pub(crate) const KIND_VERSION: i64 = 4;

/// The version that added the `counts` table (and `pruned_keys`): a file
/// opened read-only below it is counted by reading its rows.
pub(crate) const COUNTS_VERSION: i64 = 5;

/// The oldest version [`check_readable`] accepts: a reader only needs the
/// `events` table, which version 2 left as it was, version 3 rebuilt with
/// the same columns (the `dead` state added), version 4 extended with
/// `kind` (read as all `v2` before it) and version 5 left as it was (its
/// counters are counted from the rows before it).
const OLDEST_READABLE: i64 = 1;

/// Version 1. `trigger_name` because `trigger` is an SQL keyword. Times are
/// milliseconds since the Unix epoch, UTC. `ready_at` is when a not-done
/// event may be claimed: 0 for a new one, the lease's end for a claimed one,
/// the retry time for a released one.
const V1: &str = "
CREATE TABLE events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id   TEXT    NOT NULL,
    event_id     TEXT    NOT NULL,
    trigger_name TEXT    NOT NULL,
    source_type  TEXT,
    source_id    TEXT,
    delivery_id  TEXT,
    received_at  INTEGER NOT NULL,
    body         BLOB    NOT NULL,
    deliveries   INTEGER NOT NULL DEFAULT 1,
    state        TEXT    NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'claimed', 'done')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    worker_id    TEXT,
    ready_at     INTEGER NOT NULL DEFAULT 0,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX events_queue ON events (seq) WHERE state <> 'done';
CREATE INDEX events_trigger ON events (trigger_name, seq);
CREATE INDEX events_event_id ON events (event_id);
";

/// Version 2: the idempotency store's claims, one row per key. `state` is
/// `claimed` (held until `lease_until`) or `done` (final); a released claim
/// is deleted. Times are milliseconds since the Unix epoch, UTC.
/// `changed_at` is the caller's `now` at the last change, for pruning.
const V2: &str = "
CREATE TABLE claims (
    webhook_id  TEXT    NOT NULL,
    event_id    TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('claimed', 'done')),
    lease_until INTEGER NOT NULL,
    changed_at  INTEGER NOT NULL,
    PRIMARY KEY (webhook_id, event_id)
) WITHOUT ROWID;
CREATE INDEX claims_changed ON claims (changed_at);
";

/// Version 3: the `dead` state (an event that failed on every allowed
/// attempt). SQLite cannot change a CHECK constraint in place, so the
/// table is rebuilt, keeping every row and its `seq`; the queue index now
/// leaves dead events out too. There is deliberately no index on `state`:
/// it cost `serve` about a fifth of its stores per second (one more B-tree
/// written per event; 16,775 against 21,002 requests/s in
/// `benches/load/run.sh`, 2026-11-30), for the operator's `inbox list
/// --state` and `requeue --dead`, which scan the table instead.
const V3: &str = "
CREATE TABLE events_v3 (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id   TEXT    NOT NULL,
    event_id     TEXT    NOT NULL,
    trigger_name TEXT    NOT NULL,
    source_type  TEXT,
    source_id    TEXT,
    delivery_id  TEXT,
    received_at  INTEGER NOT NULL,
    body         BLOB    NOT NULL,
    deliveries   INTEGER NOT NULL DEFAULT 1,
    state        TEXT    NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'claimed', 'done', 'dead')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    worker_id    TEXT,
    ready_at     INTEGER NOT NULL DEFAULT 0,
    UNIQUE (webhook_id, event_id)
);
INSERT INTO events_v3 (seq, webhook_id, event_id, trigger_name, source_type, source_id,
                       delivery_id, received_at, body, deliveries, state, attempts,
                       worker_id, ready_at)
    SELECT seq, webhook_id, event_id, trigger_name, source_type, source_id,
           delivery_id, received_at, body, deliveries, state, attempts,
           worker_id, ready_at
    FROM events;
DROP TABLE events;
ALTER TABLE events_v3 RENAME TO events;
CREATE INDEX events_queue ON events (seq) WHERE state IN ('pending', 'claimed');
CREATE INDEX events_trigger ON events (trigger_name, seq);
CREATE INDEX events_event_id ON events (event_id);
";

/// Version 4: what each event is, `v2` (a signed V2 event, the default,
/// which every event stored before was) or `v1` (a V1 callback, stored
/// under its own unique id).
const V4: &str = "
ALTER TABLE events ADD COLUMN kind TEXT NOT NULL DEFAULT 'v2' CHECK (kind IN ('v2', 'v1'));
";

/// Version 5: counts without scans, and retention.
///
/// - `counts`: how many events are in each state, kept by triggers in the
///   same transaction as every insert, state change and delete, so
///   `Inbox::counts` reads four rows instead of the table. The migration
///   counts the existing rows once (one pass over the table: the only
///   time a file is read whole). A counter costs every store one more
///   update of a one-page table, inside the transaction the store commits
///   anyway (group commit: one page per commit, not per store). Measured
///   with `benches/load/serve_ab.sh` (`benches/load/run.sh`'s load: 3 KiB
///   bodies, 64 connections; 7 alternated rounds, once in each order, on
///   2 cores shared with other builds, 2026-12-06): all of version 5
///   (counters, the `pruned_keys` probe, `auto_vacuum` on a new file) took
///   `serve` about 4% more CPU per stored delivery (95.2 → 99.4 µs and
///   102.9 → 107.1 µs, medians); requests/s differed by -10% and +4%,
///   within that machine's noise. See docs/ARCHITECTURE.md, "The SQLite
///   store over months".
/// - `pruned_keys`: the deduplication key of each pruned event, kept until
///   its `received_at` plus the retention's `keys` (a retry of a pruned
///   event is a duplicate, stored nowhere). `store` looks a key up there
///   (one primary-key probe) before inserting; the index on `received_at`
///   is written by pruning only.
/// - `events_dead` and `events_v1_settled`: partial indexes holding only
///   dead events, and only done or dead V1 callbacks, each with the
///   columns pruning reads (so it never reads those rows themselves). A store of a new V2
///   event writes neither (SQLite skips a partial index whose condition
///   the row does not meet), so they cost the store path nothing; they let
///   pruning, `list --state dead` and `revive` find those events without
///   walking the table. Done V2 events, most of the table, need no index:
///   pruning walks them by `seq`, which grows with time.
const V5: &str = "
CREATE TABLE counts (
    state TEXT    PRIMARY KEY CHECK (state IN ('pending', 'claimed', 'done', 'dead')),
    n     INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counts (state, n) VALUES ('pending', 0), ('claimed', 0), ('done', 0), ('dead', 0);
UPDATE counts SET n = tally.n
    FROM (SELECT state, count(*) AS n FROM events GROUP BY state) AS tally
    WHERE counts.state = tally.state;
CREATE TRIGGER events_count_insert AFTER INSERT ON events BEGIN
    UPDATE counts SET n = n + 1 WHERE state = NEW.state;
END;
CREATE TRIGGER events_count_delete AFTER DELETE ON events BEGIN
    UPDATE counts SET n = n - 1 WHERE state = OLD.state;
END;
CREATE TRIGGER events_count_update AFTER UPDATE OF state ON events
    WHEN OLD.state <> NEW.state BEGIN
    UPDATE counts SET n = n - 1 WHERE state = OLD.state;
    UPDATE counts SET n = n + 1 WHERE state = NEW.state;
END;
CREATE TABLE pruned_keys (
    webhook_id  TEXT    NOT NULL,
    event_id    TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    deliveries  INTEGER NOT NULL,
    PRIMARY KEY (webhook_id, event_id)
) WITHOUT ROWID;
CREATE INDEX pruned_keys_received ON pruned_keys (received_at);
CREATE INDEX events_dead ON events (seq, received_at, kind) WHERE state = 'dead';
CREATE INDEX events_v1_settled ON events (seq, received_at, state)
    WHERE kind = 'v1' AND state IN ('done', 'dead');
";

/// Brings the database to [`VERSION`]. Runs in an immediate transaction so
/// two processes opening a new file at once do not both create the tables.
///
/// It always writes (`user_version`, even when unchanged) and returns the
/// COMMIT's error: opening an inbox is a write probe, so a file, directory
/// or mount that cannot be written fails at open, not on the first event.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), InboxError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(storage)?;
    // `query_row` is enough for a read: nothing is lost when its statement
    // is not stepped to the end.
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(storage)?;
    // `execute_batch`, `pragma_update` and `commit` step each statement
    // once, which for statements that return no rows is the last step: its
    // error is returned.
    // Each step brings one version to the next, in the same transaction:
    // a file is either wholly migrated or left as it was.
    if version > VERSION {
        return Err(newer_schema(version));
    }
    if version < 1 {
        tx.execute_batch(V1).map_err(storage)?;
    }
    if version < 2 {
        tx.execute_batch(V2).map_err(storage)?;
    }
    if version < 3 {
        tx.execute_batch(V3).map_err(storage)?;
    }
    if version < 4 {
        tx.execute_batch(V4).map_err(storage)?;
    }
    if version < 5 {
        tx.execute_batch(V5).map_err(storage)?;
    }
    tx.pragma_update(None, "user_version", VERSION)
        .map_err(storage)?;
    tx.commit().map_err(storage)
}

/// Checks, without writing, that `conn` holds a boxhook inbox this build
/// reads: the reader's half of [`migrate`]. Returns the file's version.
pub(crate) fn check_readable(conn: &Connection, path: &Path) -> Result<i64, InboxError> {
    let corrupt = |what: String| InboxError::new(ErrorKind::Corrupt, what);
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|error| match error.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => corrupt(format!(
                "{} is not an SQLite database, so not a boxhook inbox ({error})",
                path.display()
            )),
            _ => storage(error),
        })?;
    let has_events: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'events')",
            [],
            |row| row.get(0),
        )
        .map_err(storage)?;
    match version {
        OLDEST_READABLE..=VERSION if has_events => Ok(version),
        newer if newer > VERSION => Err(newer_schema(newer)),
        _ => Err(corrupt(format!(
            "{} is not a boxhook inbox (an SQLite database without its events table)",
            path.display()
        ))),
    }
}

fn newer_schema(newer: i64) -> InboxError {
    InboxError::new(
        ErrorKind::Corrupt,
        format!("inbox schema version {newer} is newer than this build reads ({VERSION})"),
    )
}
