//! [`Db`]: the handle on an opened inbox file, shared by
//! [`SqliteInbox`](crate::SqliteInbox) and
//! [`SqliteIdempotencyStore`](crate::SqliteIdempotencyStore): the
//! connection thread every write runs on, with group commit of stores, and
//! the reader's thread of a file opened for writing.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;

use boxhook::inbox::backend::{millis, stored};
use boxhook::inbox::{ErrorKind, InboxError, NewRecord, RecordKind, Stored};
use rusqlite::{params, Connection, TransactionBehavior};
use tokio::sync::oneshot;

use crate::file::Identity;
use crate::inbox::at_most_one_row;
use crate::read::Reader;
use crate::storage;

/// Most stores committed together in one transaction (one fsync).
const MAX_BATCH: usize = 64;

/// Most body bytes committed together: past this, the batch is closed
/// (a batch's last store may take it over).
const MAX_BATCH_BYTES: usize = 4 << 20;

/// What the connection thread runs.
enum Job {
    /// One `store`, committed together with the stores queued behind it
    /// (see [`store_batch`]).
    Store(StoreJob),
    /// Anything else, run alone, in queue order.
    Call(Box<dyn FnOnce(&mut Connection) + Send>),
}

/// A record to store and where its outcome goes.
struct StoreJob {
    record: NewRecord,
    reply: oneshot::Sender<Result<Stored, InboxError>>,
}

/// An opened database: its connection thread (and reader), and what it is.
/// Cheap to clone; the threads end when the last clone is dropped.
#[derive(Clone)]
pub(crate) struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    jobs: mpsc::Sender<Job>,
    /// The read-only connection of a file inbox opened for writing, where
    /// `list`, `get` and `counts` run; `None` in memory and for an inbox
    /// opened read-only, whose one connection reads.
    reader: Option<Reader>,
    setup: Setup,
}

/// What an opened inbox is, beyond its connections.
pub(crate) struct Setup {
    /// The file; `None` in memory.
    pub(crate) path: Option<PathBuf>,
    /// Whether it was opened read-only: every write is refused.
    pub(crate) read_only: bool,
    /// The file and its `-wal` as opened, checked after each `store`.
    pub(crate) identity: Option<Arc<Identity>>,
    /// How reads spell the record kind: the `kind` column, or `'v2'` for
    /// a file opened read-only before version 4 added the column.
    pub(crate) kind_column: &'static str,
    /// Whether the file has the `counts` table (version 5); a file opened
    /// read-only before it is counted from its rows.
    pub(crate) counters: bool,
    /// Whether the file vacuums incrementally (`auto_vacuum =
    /// INCREMENTAL`, set when it was created): prune then returns freed
    /// pages to the file system.
    pub(crate) vacuum: bool,
}

impl Db {
    /// Starts the connection thread that owns `conn`, and the reader's
    /// thread that owns `reader` (see [`Reader`]).
    pub(crate) fn start(
        mut conn: Connection,
        reader: Option<Connection>,
        setup: Setup,
    ) -> Result<Self, InboxError> {
        let (reader, reader_thread) = match reader {
            Some(conn) => {
                let (reader, thread) = Reader::start(conn)?;
                (Some(reader), Some(thread))
            }
            None => (None, None),
        };
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread_identity = setup.identity.clone();
        std::thread::Builder::new()
            .name("boxhook-sqlite".into())
            .spawn(move || {
                let check = thread_identity;
                let mut next = None;
                while let Some(job) = next.take().or_else(|| queue.recv().ok()) {
                    // A panicking job drops its reply senders, so its callers
                    // get `Closed`; the connection stays in service (an
                    // open transaction rolls back as it unwinds).
                    match job {
                        Job::Call(job) => {
                            let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut conn)));
                        }
                        Job::Store(first) => {
                            // Group commit: the stores already queued (never
                            // waiting for more) share one transaction. A
                            // job of another kind ends the batch and runs
                            // after it, so the queue's order is kept.
                            let mut bytes = first.record.body.len();
                            let mut batch = vec![first];
                            while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
                                match queue.try_recv() {
                                    Ok(Job::Store(job)) => {
                                        bytes = bytes.saturating_add(job.record.body.len());
                                        batch.push(job);
                                    }
                                    Ok(other) => {
                                        next = Some(other);
                                        break;
                                    }
                                    Err(_) => break,
                                }
                            }
                            let _ = std::panic::catch_unwind(AssertUnwindSafe(|| {
                                store_batch(&mut conn, batch, check.as_deref());
                            }));
                        }
                    }
                }
                // The reader closes first (its queue closed with ours): the
                // last connection to close checkpoints and removes the
                // -wal, which a read-only one cannot do.
                if let Some(thread) = reader_thread {
                    let _ = thread.join();
                }
                drop(conn);
            })
            .map_err(|error| InboxError::new(ErrorKind::Storage, error))?;
        Ok(Self {
            inner: Arc::new(Inner {
                jobs,
                reader,
                setup,
            }),
        })
    }

    /// What the database is, beyond its connections.
    pub(crate) fn setup(&self) -> &Setup {
        &self.inner.setup
    }

    /// The file; `None` in memory.
    pub(crate) fn path(&self) -> Option<&Path> {
        self.inner.setup.path.as_deref()
    }

    /// Fails when the inbox was opened read-only and cannot `what`.
    pub(crate) fn writable(&self, what: &str) -> Result<(), InboxError> {
        if !self.inner.setup.read_only {
            return Ok(());
        }
        let path = self
            .inner
            .setup
            .path
            .as_deref()
            .unwrap_or(Path::new(":memory:"));
        Err(InboxError::new(
            ErrorKind::Storage,
            format!(
                "inbox {} was opened read-only, so it cannot {what}; open it with \
                 SqliteInbox::open to write",
                path.display()
            ),
        ))
    }

    /// The file and its `-wal` as opened, to check after a write.
    pub(crate) fn identity(&self) -> Option<Arc<Identity>> {
        self.inner.setup.identity.clone()
    }

    /// Stores `record`, committed together with the stores queued with it
    /// (see [`store_batch`]).
    pub(crate) async fn store(&self, record: NewRecord) -> Result<Stored, InboxError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .jobs
            .send(Job::Store(StoreJob { record, reply }))
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Runs `f` on the connection thread.
    pub(crate) async fn call<R, F>(&self, f: F) -> Result<R, InboxError>
    where
        F: FnOnce(&mut Connection) -> Result<R, InboxError> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.inner
            .jobs
            .send(Job::Call(Box::new(move |conn| {
                let _ = reply.send(f(conn));
            })))
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Runs a read on the reader's thread, or on the connection thread when
    /// there is no reader (in memory, or opened read-only).
    pub(crate) async fn read<R, F>(&self, f: F) -> Result<R, InboxError>
    where
        F: FnOnce(&Connection) -> Result<R, InboxError> + Send + 'static,
        R: Send + 'static,
    {
        match &self.inner.reader {
            Some(reader) => reader.call(f).await,
            None => self.call(move |conn| f(conn)).await,
        }
    }
}

/// The error of a call whose connection thread is gone.
pub(crate) fn closed() -> InboxError {
    InboxError::new(ErrorKind::Closed, "the connection thread is gone")
}

/// Stores a batch of records in one transaction, and answers each caller
/// only after that transaction's COMMIT returned Ok (and the file was
/// checked to be the one opened).
///
/// If the batch fails (a statement or the COMMIT: a full disk, a failed
/// fsync), it was rolled back, no caller has been answered, and each record
/// is then stored again alone, in order, each in its own transaction: one
/// record that cannot be stored fails only its own caller, and on a full
/// disk every caller gets SQLite's own error for its own attempt.
fn store_batch(conn: &mut Connection, batch: Vec<StoreJob>, identity: Option<&Identity>) {
    let outcome = {
        let records: Vec<&NewRecord> = batch.iter().map(|job| &job.record).collect();
        store_in_one_transaction(conn, &records)
    };
    match outcome {
        Ok(counts) => {
            // Committed, but to the file this inbox opened: if that file was
            // deleted or replaced since, nobody will ever read the events.
            // One check for the batch; each caller gets its own error.
            match identity.map_or(Ok(()), Identity::check) {
                Ok(()) => {
                    for (job, deliveries) in batch.into_iter().zip(counts) {
                        let _ = job.reply.send(Ok(stored(deliveries)));
                    }
                }
                Err(error) => {
                    for job in batch {
                        let _ = job.reply.send(Err(same_error(&error)));
                    }
                }
            }
        }
        Err(error) if batch.len() <= 1 => {
            if let Some(job) = batch.into_iter().next() {
                let _ = job.reply.send(Err(error));
            }
        }
        Err(_) => {
            for job in batch {
                let result = store_in_one_transaction(conn, &[&job.record]).and_then(|counts| {
                    identity.map_or(Ok(()), Identity::check)?;
                    counts.first().copied().map(stored).ok_or_else(|| {
                        InboxError::new(ErrorKind::Storage, "a stored record has no count")
                    })
                });
                let _ = job.reply.send(result);
            }
        }
    }
}

/// An error of the same kind and message as `error`, for another caller
/// (an `InboxError` is not `Clone`: its source is a boxed error).
fn same_error(error: &InboxError) -> InboxError {
    let message =
        std::error::Error::source(error).map_or_else(|| error.to_string(), ToString::to_string);
    InboxError::new(error.kind(), message)
}

/// Inserts (or counts again) every record in one `BEGIN IMMEDIATE …
/// COMMIT`, returning each one's delivery count once the COMMIT succeeded.
///
/// An explicit transaction whose COMMIT error is returned, and each
/// statement stepped to its end (see [`at_most_one_row`]): SQLite reports a
/// full disk or a failed fsync on the last step of an autocommit statement
/// or on the COMMIT, and rusqlite's `query_row` never takes that step (the
/// error would be dropped with the statement, and Box would get a 2xx for
/// an event that is not on disk). The UNIQUE key makes concurrent stores of
/// one event insert once; within the transaction a second store of an
/// event sees the first one's row, so it counts 2.
fn store_in_one_transaction(
    conn: &mut Connection,
    records: &[&NewRecord],
) -> Result<Vec<i64>, InboxError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(storage)?;
    let mut counts = Vec::with_capacity(records.len());
    {
        // A retry of an event pruned since: counted on its kept key, and
        // stored nowhere (one primary-key probe; V1 callbacks have unique
        // ids, so no key is kept for them).
        let mut pruned = tx
            .prepare_cached(
                "UPDATE pruned_keys SET deliveries = deliveries + 1 \
                 WHERE webhook_id = ?1 AND event_id = ?2 RETURNING deliveries",
            )
            .map_err(storage)?;
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO events (webhook_id, event_id, trigger_name, source_type, \
                 source_id, delivery_id, received_at, body, kind) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT (webhook_id, event_id) DO UPDATE SET deliveries = deliveries + 1 \
                 RETURNING deliveries",
            )
            .map_err(storage)?;
        for record in records {
            if record.kind == RecordKind::V2 {
                let kept = at_most_one_row(
                    &mut pruned,
                    params![record.webhook_id, record.event_id],
                    |row| row.get::<_, i64>(0),
                )
                .map_err(storage)?;
                if let Some(deliveries) = kept {
                    counts.push(deliveries);
                    continue;
                }
            }
            let deliveries: i64 = at_most_one_row(
                &mut stmt,
                params![
                    record.webhook_id,
                    record.event_id,
                    record.trigger,
                    record.source_type,
                    record.source_id,
                    record.delivery_id,
                    millis(record.received_at),
                    &record.body[..],
                    record.kind.as_str(),
                ],
                |row| row.get(0),
            )
            .map_err(storage)?
            .ok_or_else(|| {
                InboxError::new(ErrorKind::Storage, "INSERT … RETURNING returned no row")
            })?;
            counts.push(deliveries);
        }
    }
    // On an error the transaction is rolled back as `tx` drops.
    tx.commit().map_err(storage)?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;
    use crate::schema;

    fn record(event_id: &str, delivery: &str) -> NewRecord {
        let body = format!(
            r#"{{"type":"webhook_event","id":"{event_id}","trigger":"FILE.UPLOADED","webhook":{{"id":"4133"}}}}"#
        );
        let at = DateTime::from_timestamp(1_700_000_000, 0).expect("in range");
        NewRecord::parse(body.into_bytes(), Some(delivery), at).expect("a webhook_event")
    }

    /// Runs `records` through `store_batch` as one batch; each outcome.
    fn run_batch(
        conn: &mut Connection,
        records: Vec<NewRecord>,
    ) -> Vec<Result<Stored, InboxError>> {
        let (batch, answers): (Vec<_>, Vec<_>) = records
            .into_iter()
            .map(|record| {
                let (reply, answer) = oneshot::channel();
                (StoreJob { record, reply }, answer)
            })
            .unzip();
        store_batch(conn, batch, None);
        answers
            .into_iter()
            .map(|mut answer| answer.try_recv().expect("answered"))
            .collect()
    }

    fn memory() -> Connection {
        let mut conn = Connection::open_in_memory().expect("open");
        schema::migrate(&mut conn).expect("schema");
        conn
    }

    fn rows(conn: &Connection) -> Vec<(String, i64)> {
        let mut stmt = conn
            .prepare("SELECT event_id, deliveries FROM events ORDER BY seq")
            .expect("prepare");
        stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows")
    }

    #[test]
    fn one_batch_counts_duplicates_exactly() {
        let mut conn = memory();
        let outcomes = run_batch(
            &mut conn,
            vec![
                record("e-1", "d-1"),
                record("e-1", "d-2"),
                record("e-2", "d-3"),
                record("e-1", "d-4"),
            ],
        );
        let outcomes: Vec<Stored> = outcomes
            .into_iter()
            .map(|outcome| outcome.expect("stored"))
            .collect();
        assert_eq!(
            outcomes,
            vec![
                Stored::New,
                Stored::Duplicate { deliveries: 2 },
                Stored::New,
                Stored::Duplicate { deliveries: 3 },
            ]
        );
        assert_eq!(
            rows(&conn),
            vec![("e-1".to_owned(), 3), ("e-2".to_owned(), 1)]
        );
    }

    #[test]
    fn a_failed_batch_is_retried_one_by_one() {
        let mut conn = memory();
        // One record that cannot be stored: the whole batch rolls back,
        // then each is stored alone and only that one fails.
        conn.execute_batch(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON events WHEN NEW.event_id = 'bad' \
             BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .expect("trigger");
        let outcomes = run_batch(
            &mut conn,
            vec![
                record("e-1", "d-1"),
                record("bad", "d-2"),
                record("e-1", "d-3"),
            ],
        );
        assert_eq!(outcomes.len(), 3);
        assert_eq!(outcomes[0].as_ref().ok(), Some(&Stored::New));
        let error = outcomes[1].as_ref().expect_err("refused");
        assert_eq!(error.kind(), ErrorKind::Storage);
        assert_eq!(error.to_string(), "inbox storage failed: refused");
        assert_eq!(
            outcomes[2].as_ref().ok(),
            Some(&Stored::Duplicate { deliveries: 2 })
        );
        assert_eq!(rows(&conn), vec![("e-1".to_owned(), 2)]);
    }

    #[test]
    fn a_lone_failed_store_gets_its_own_error() {
        let mut conn = memory();
        conn.execute_batch(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON events \
             BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .expect("trigger");
        let outcomes = run_batch(&mut conn, vec![record("e-1", "d-1")]);
        assert_eq!(outcomes.len(), 1);
        let error = outcomes[0].as_ref().expect_err("refused");
        assert_eq!(error.to_string(), "inbox storage failed: refused");
        assert!(rows(&conn).is_empty());
    }
}
