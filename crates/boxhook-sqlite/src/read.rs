//! Reads: the queries of `list`, `get` and `counts`, and the read-only
//! connection they run on for a file inbox, on a thread of its own.
//!
//! A file inbox opened for writing has two connections. The writer's
//! thread stores deliveries (and claims, settles, prunes); the reader's
//! thread answers `list`, `get` and `counts`. In WAL mode a reader works on
//! the snapshot it started from and never takes a lock a writer waits
//! for, so an operator listing a million events, or a dashboard polling
//! the counts, never queues a delivery behind it.
//!
//! A read whose caller stopped waiting (its future dropped: a timeout, a
//! closed connection) is cancelled: skipped if it has not started, and
//! interrupted within a few thousand SQLite instructions if it has.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use boxhook::inbox::backend::millis;
use boxhook::inbox::{
    Counts, EntryState, ErrorKind, InboxEntry, InboxError, ListFilter, StoredEvent,
};
use bytes::Bytes;
use chrono::DateTime;
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, OptionalExtension as _};
use tokio::sync::oneshot;

use crate::db::closed;
use crate::inbox::{entry, ENTRY_COLUMNS};
use crate::storage;

/// How many SQLite virtual machine instructions run between two checks of
/// whether the running read was cancelled.
const CHECK_EVERY: std::ffi::c_int = 4096;

/// A read, and whether its caller still waits for it.
struct ReadJob {
    run: Box<dyn FnOnce(&Connection) + Send>,
    cancelled: Arc<AtomicBool>,
}

/// The read-only connection of a file inbox, on its own thread.
pub(crate) struct Reader {
    jobs: mpsc::Sender<ReadJob>,
}

impl Reader {
    /// Starts the thread that owns `conn`. The handle is for the writer's
    /// thread, which joins it before closing its own connection: the last
    /// connection to close checkpoints the WAL and removes it, and a
    /// read-only one cannot.
    pub(crate) fn start(conn: Connection) -> Result<(Self, JoinHandle<()>), InboxError> {
        let (jobs, queue) = mpsc::channel::<ReadJob>();
        // The cancel flag of the read running now, for the progress handler.
        let running: Arc<Mutex<Option<Arc<AtomicBool>>>> = Arc::default();
        let watched = Arc::clone(&running);
        conn.progress_handler(
            CHECK_EVERY,
            Some(move || {
                watched
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .as_ref()
                    .is_some_and(|cancelled| cancelled.load(Ordering::Acquire))
            }),
        )
        .map_err(storage)?;
        let thread = std::thread::Builder::new()
            .name("boxhook-sqlite-read".into())
            .spawn(move || {
                while let Ok(job) = queue.recv() {
                    if job.cancelled.load(Ordering::Acquire) {
                        continue;
                    }
                    *running.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some(Arc::clone(&job.cancelled));
                    // A panicking read drops its reply sender, so its caller
                    // gets `Closed`; the connection stays in service.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| (job.run)(&conn)));
                    *running.lock().unwrap_or_else(PoisonError::into_inner) = None;
                }
            })
            .map_err(|error| InboxError::new(ErrorKind::Storage, error))?;
        Ok((Self { jobs }, thread))
    }

    /// Runs `f` on the reader's thread; dropping the future cancels it.
    pub(crate) async fn call<R, F>(&self, f: F) -> Result<R, InboxError>
    where
        F: FnOnce(&Connection) -> Result<R, InboxError> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let cancelled = Arc::new(AtomicBool::new(false));
        let mut guard = CancelOnDrop {
            cancelled: Arc::clone(&cancelled),
            armed: true,
        };
        self.jobs
            .send(ReadJob {
                run: Box::new(move |conn| {
                    let _ = reply.send(f(conn));
                }),
                cancelled,
            })
            .map_err(|_| closed())?;
        let answer = answer.await;
        guard.armed = false;
        answer.map_err(|_| closed())?
    }
}

/// Marks a read cancelled when its caller's future is dropped before the
/// answer came.
struct CancelOnDrop {
    cancelled: Arc<AtomicBool>,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.cancelled.store(true, Ordering::Release);
        }
    }
}

/// The `list` query for `filter`, and its parameters.
///
/// Built for the planner to walk an index in the order asked and stop at
/// the limit: by `seq` (the table itself), by `events_trigger` (trigger,
/// seq) with a trigger, by the partial indexes `events_queue` (pending or
/// claimed) and `events_dead` with those states (their conditions are
/// spelled out as literals, so the planner can prove them). `before` is
/// resolved to its `seq` through `events_event_id` in the same statement
/// (so in the same snapshot); an unknown id makes `seq < NULL`, which no
/// row meets.
pub(crate) fn list_sql(filter: &ListFilter, kind: &str) -> (String, Vec<Value>) {
    let mut conditions: Vec<String> = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    let mut next = |value: Value| -> String {
        values.push(value);
        format!("?{}", values.len())
    };
    if let Some(trigger) = &filter.trigger {
        conditions.push(format!(
            "trigger_name = {}",
            next(Value::Text(trigger.clone()))
        ));
    }
    match filter.state {
        None => {}
        Some(EntryState::Pending) => {
            conditions.push("state IN ('pending', 'claimed') AND state = 'pending'".into());
        }
        Some(EntryState::Claimed) => {
            conditions.push("state IN ('pending', 'claimed') AND state = 'claimed'".into());
        }
        Some(EntryState::Done) => conditions.push("state = 'done'".into()),
        Some(EntryState::Dead) => conditions.push("state = 'dead'".into()),
    }
    if let Some(since) = filter.since {
        conditions.push(format!(
            "received_at >= {}",
            next(Value::Integer(millis(since)))
        ));
    }
    if let Some(before) = &filter.before {
        conditions.push(format!(
            "seq < (SELECT seq FROM events WHERE event_id = {} ORDER BY seq LIMIT 1)",
            next(Value::Text(before.clone()))
        ));
    }
    let limit = filter
        .limit
        .map_or(-1, |limit| i64::try_from(limit).unwrap_or(i64::MAX));
    let limit = next(Value::Integer(limit));
    let condition = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let order = if filter.newest_first { " DESC" } else { "" };
    (
        format!(
            "SELECT {ENTRY_COLUMNS}, {kind} FROM events{condition} ORDER BY seq{order} LIMIT {limit}"
        ),
        values,
    )
}

/// Lists what `filter` asks for (see [`list_sql`]).
pub(crate) fn list(
    conn: &Connection,
    filter: &ListFilter,
    kind: &str,
) -> Result<Vec<InboxEntry>, InboxError> {
    let (sql, values) = list_sql(filter, kind);
    // A read: collecting steps the rows to the end, and stops at (and
    // returns) the first error.
    let mut stmt = conn.prepare_cached(&sql).map_err(storage)?;
    let rows = stmt
        .query_map(params_from_iter(values), entry)
        .map_err(storage)?;
    rows.map(|row| row.map_err(storage)?).collect()
}

/// The oldest stored event with `event_id`, with its body.
pub(crate) fn get(
    conn: &Connection,
    event_id: &str,
    kind: &str,
) -> Result<Option<StoredEvent>, InboxError> {
    let sql = format!(
        "SELECT {ENTRY_COLUMNS}, {kind}, body FROM events WHERE event_id = ?1 ORDER BY seq LIMIT 1"
    );
    // A read: `query_row` not stepping past the first row loses nothing
    // (there is no commit to report).
    let row = conn
        .prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_row([event_id], |row| {
                Ok(entry(row)?.map(|entry| (entry, row.get::<_, Vec<u8>>(11))))
            })
            .optional()
        })
        .map_err(storage)?;
    match row {
        None => Ok(None),
        Some(decoded) => {
            let (entry, body) = decoded?;
            Ok(Some(StoredEvent {
                entry,
                body: Bytes::from(body.map_err(storage)?),
            }))
        }
    }
}

/// The counters, read from the `counts` table.
pub(crate) const COUNTS_SQL: &str = "SELECT state, n FROM counts";

/// The counters of a file older than version 5 opened read-only: counted
/// from the rows, the one read that visits every row (a receiver opening
/// the file migrates it, and counts it once then).
pub(crate) const COUNT_ROWS_SQL: &str = "SELECT state, count(*) FROM events GROUP BY state";

/// The oldest pending event: the first pending one in stored order, found
/// by walking the `events_queue` partial index (pending and claimed events
/// only) from its start, past the claimed ones before it.
pub(crate) const OLDEST_PENDING_SQL: &str = "SELECT received_at FROM events \
     WHERE state IN ('pending', 'claimed') AND state = 'pending' ORDER BY seq LIMIT 1";

/// How many events are in each state, and the oldest pending one, from
/// one snapshot.
pub(crate) fn counts(conn: &Connection, counters: bool) -> Result<Counts, InboxError> {
    let corrupt = |what: String| InboxError::new(ErrorKind::Corrupt, what);
    // Both reads in one read transaction: the same snapshot.
    let tx = conn.unchecked_transaction().map_err(storage)?;
    let mut counts = Counts::default();
    {
        let mut stmt = tx
            .prepare_cached(if counters { COUNTS_SQL } else { COUNT_ROWS_SQL })
            .map_err(storage)?;
        let mut rows = stmt.query([]).map_err(storage)?;
        while let Some(row) = rows.next().map_err(storage)? {
            let state: String = row.get(0).map_err(storage)?;
            let n: i64 = row.get(1).map_err(storage)?;
            let n = u64::try_from(n)
                .map_err(|_| corrupt(format!("the count of {state} events is {n}")))?;
            match EntryState::parse(&state) {
                Some(EntryState::Pending) => counts.pending = n,
                Some(EntryState::Claimed) => counts.claimed = n,
                Some(EntryState::Done) => counts.done = n,
                Some(EntryState::Dead) => counts.dead = n,
                None => return Err(corrupt(format!("unknown state {state:?}"))),
            }
        }
    }
    let oldest: Option<i64> = tx
        .prepare_cached(OLDEST_PENDING_SQL)
        .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)).optional())
        .map_err(storage)?;
    counts.oldest_pending = oldest
        .map(|ms| {
            DateTime::from_timestamp_millis(ms)
                .ok_or_else(|| corrupt(format!("received_at {ms} ms is out of range")))
        })
        .transpose()?;
    tx.finish().map_err(storage)?;
    Ok(counts)
}
