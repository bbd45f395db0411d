//! Shared test helpers: temporary files, event bodies, times.
#![allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    reason = "each test binary uses a different subset"
)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

pub use boxhook_testkit::fs::{as_unprivileged, on_small_fs, remount_read_only, snapshot, TempDir};

/// `t(0)` is a fixed instant; `t(s)` is `s` seconds after it.
pub fn t(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).expect("in range") + TimeDelta::seconds(seconds)
}

/// A compact `webhook_event` body in Box's wire form, with escapes.
pub fn event(webhook_id: &str, id: &str, trigger: &str) -> String {
    format!(
        r#"{{"type":"webhook_event","id":"{id}","created_at":"2023-11-14T14:13:20-08:00","trigger":"{trigger}","webhook":{{"id":"{webhook_id}","type":"webhook"}},"created_by":{{"type":"user","id":"22","name":"Ann","login":"ann@example.com"}},"source":{{"id":"1234567890","type":"file","name":"Q1\/r\u00e9port.pdf"}},"additional_info":[]}}"#
    )
}

/// A distinct `webhook_event` of about `size` bytes: event `e-{n}` with a
/// long file name that varies with `n`.
pub fn big_event(n: u64, size: usize) -> String {
    let mut state = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let name: String = (0..size)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            char::from(b'a' + u8::try_from((state >> 59) % 26).unwrap_or(0))
        })
        .collect();
    format!(
        r#"{{"type":"webhook_event","id":"e-{n}","trigger":"FILE.UPLOADED","webhook":{{"id":"4133","type":"webhook"}},"source":{{"id":"f-{n}","type":"file","name":"{name}"}}}}"#
    )
}

/// The version 1 schema exactly as builds before the idempotency store
/// wrote it: a file of theirs must open, keep its events, and gain the
/// `claims` table.
pub const V1_SCHEMA: &str = "
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
PRAGMA user_version = 1;
";

/// Waits for the inbox's connection threads to close it: the last
/// connection to close deletes the -wal. Dropping an inbox returns before
/// its thread has closed the connection, and when a reader happens to
/// close last it cannot checkpoint; a plain connection, opened and closed
/// once the others are gone, finishes the job.
pub fn wait_until_closed(path: &Path) {
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    for _ in 0..250 {
        if !wal.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
        // A connection only opens the -wal once it reads.
        rusqlite::Connection::open(path)
            .and_then(|conn| conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(())))
            .expect("open to checkpoint");
    }
    panic!(
        "{} is still there: a connection is still open",
        wal.display()
    );
}

/// The `-wal` next to `path`.
pub fn sibling_wal(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}-wal", path.display()))
}
