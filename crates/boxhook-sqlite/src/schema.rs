//! The schema, created and migrated on open (`PRAGMA user_version`).

use rusqlite::{Connection, TransactionBehavior};

use boxhook::inbox::{ErrorKind, InboxError};

use crate::storage;

/// The schema version this build writes and reads.
pub(crate) const VERSION: i64 = 1;

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

/// Brings the database to [`VERSION`]. Runs in an immediate transaction so
/// two processes opening a new file at once do not both create the tables.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), InboxError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(storage)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(storage)?;
    match version {
        0 => {
            tx.execute_batch(V1).map_err(storage)?;
            tx.pragma_update(None, "user_version", VERSION)
                .map_err(storage)?;
        }
        VERSION => {}
        newer => {
            return Err(InboxError::new(
                ErrorKind::Corrupt,
                format!("inbox schema version {newer} is newer than this build reads ({VERSION})"),
            ))
        }
    }
    tx.commit().map_err(storage)
}
