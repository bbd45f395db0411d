//! [`SqliteInbox`]: the connection thread and the [`Inbox`] queries.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use boxhook::inbox::{
    Claimed, Counts, EntryState, ErrorKind, Inbox, InboxEntry, InboxError, ListFilter, NewRecord,
    Pruned, RecordKind, Retention, Revive, Stored, StoredEvent,
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use rusqlite::{params, params_from_iter, Connection, OpenFlags, Row, TransactionBehavior};
use tokio::sync::oneshot;

use crate::file::{self, sibling, Identity};
use crate::read::{self, Reader};
use crate::{prune, schema, storage};

/// How long a writer waits for another connection's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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

/// A durable inbox in one SQLite file (see the [crate docs](crate)).
///
/// ```
/// use std::time::Duration;
/// use boxhook::inbox::{Inbox, ListFilter, NewRecord, Stored};
/// use boxhook_sqlite::SqliteInbox;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let inbox = SqliteInbox::in_memory()?;
/// let now = chrono::Utc::now();
/// let body = &br#"{"type":"webhook_event","id":"e-1","trigger":"FILE.UPLOADED","webhook":{"id":"4133"}}"#[..];
/// assert_eq!(inbox.store(NewRecord::parse(body, Some("d-1"), now)?).await?, Stored::New);
/// assert_eq!(inbox.store(NewRecord::parse(body, Some("d-2"), now)?).await?, Stored::Duplicate { deliveries: 2 });
///
/// let claimed = inbox.claim_next("worker-1", Duration::from_secs(60), now).await?.expect("pending");
/// inbox.ack(&claimed).await?;
/// let listed = inbox.list(ListFilter::new().trigger("FILE.UPLOADED")).await?;
/// assert_eq!((listed[0].deliveries, listed[0].delivery_id.as_deref()), (2, Some("d-1")));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct SqliteInbox {
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
struct Setup {
    path: Option<PathBuf>,
    read_only: bool,
    /// The file and its `-wal` as opened, checked after each `store`.
    identity: Option<Arc<Identity>>,
    /// How reads spell the record kind: the `kind` column, or `'v2'` for
    /// a file opened read-only before version 4 added the column.
    kind_column: &'static str,
    /// Whether the file has the `counts` table (version 5); a file opened
    /// read-only before it is counted from its rows.
    counters: bool,
    /// Whether the file vacuums incrementally (`auto_vacuum =
    /// INCREMENTAL`, set when it was created): prune then returns freed
    /// pages to the file system.
    vacuum: bool,
}

impl SqliteInbox {
    /// Opens the inbox at `path` for receiving and processing, creating the
    /// file and its schema if needed, and migrating an older schema.
    ///
    /// Opening writes (the schema version, in a committed transaction), so
    /// an inbox that cannot be written is refused here rather than on the
    /// first event: SQLite would otherwise open a read-only file or mount
    /// read-only without a word, and every store would fail. To only read,
    /// use [`open_read_only`](Self::open_read_only).
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("boxhook-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let inbox = boxhook_sqlite::SqliteInbox::open(dir.join("inbox.sqlite"))?;
    /// assert!(inbox.path().is_some());
    /// assert!(!inbox.is_read_only());
    /// # drop(inbox); let _ = std::fs::remove_dir_all(&dir);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Storage`] when the file cannot be created, opened,
    /// written or set up (a read-only file, directory or mount says so and
    /// what to do), [`ErrorKind::Corrupt`] when its schema is newer than
    /// this build.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, InboxError> {
        let path = path.as_ref();
        let mut conn = Connection::open(path).map_err(|error| cannot_open(path, &error))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(storage)?;
        // SQLite falls back to opening a file it may not write read-only.
        if conn.is_readonly(rusqlite::MAIN_DB).map_err(storage)? {
            return Err(read_only(path, None));
        }
        match set_up(&mut conn, path) {
            Ok(()) => {}
            Err(error) if is_read_only_error(&error) => {
                return Err(read_only(path, Some(&error)));
            }
            Err(error) => return Err(error),
        }
        let vacuum = incremental_vacuum(&conn)?;
        let identity = Identity::capture(path).map(Arc::new);
        // The reader: read-only, beside the writer (WAL), its own thread.
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|error| cannot_open(path, &error))?;
        reader.busy_timeout(BUSY_TIMEOUT).map_err(storage)?;
        Self::start(
            conn,
            Some(reader),
            Setup {
                path: Some(path.to_owned()),
                read_only: false,
                identity,
                kind_column: "kind",
                counters: true,
                vacuum,
            },
        )
    }

    /// Opens an existing inbox to read it ([`list`](Inbox::list),
    /// [`get`](Inbox::get), [`counts`](Inbox::counts)) without changing
    /// anything on disk: no file created, no schema written, no migration.
    /// Its `store`, `claim_next`, `ack`, `requeue` and `prune` fail with
    /// [`ErrorKind::Storage`]. A file older than schema version 5 has no
    /// counters yet: `counts` counts its rows (one pass over the table).
    ///
    /// Reading is safe while a receiver writes. SQLite reads a WAL-mode
    /// database through its `-wal` and `-shm` files, and a read-only
    /// connection creates them when they are missing (and leaves them
    /// behind); so while `inbox.sqlite-wal` exists (a writer has the file
    /// open, or one was killed) the inbox is read through them, and when it
    /// does not, every write has been checkpointed into the file and it is
    /// opened `immutable` (SQLite reads it without locks or side files).
    ///
    /// ```
    /// use boxhook::inbox::{ErrorKind, Inbox, ListFilter};
    /// use boxhook_sqlite::SqliteInbox;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let dir = std::env::temp_dir().join(format!("boxhook-doc-ro-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("inbox.sqlite");
    /// drop(SqliteInbox::open(&path)?); // a receiver created it
    ///
    /// let reader = SqliteInbox::open_read_only(&path)?;
    /// assert!(reader.is_read_only());
    /// assert!(reader.list(ListFilter::new()).await?.is_empty());
    ///
    /// // Anything else is refused, and nothing is created.
    /// let missing = SqliteInbox::open_read_only(dir.join("missing.sqlite")).unwrap_err();
    /// assert_eq!(missing.kind(), ErrorKind::Storage);
    /// assert!(!dir.join("missing.sqlite").exists());
    /// # drop(reader); let _ = std::fs::remove_dir_all(&dir);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Storage`] when the file is missing or cannot be opened;
    /// [`ErrorKind::Corrupt`] when it is not an SQLite database, not a
    /// boxhook inbox, or has a schema newer than this build.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, InboxError> {
        let path = path.as_ref();
        let absolute = std::fs::canonicalize(path).map_err(|error| {
            let what = if error.kind() == std::io::ErrorKind::NotFound {
                "there is no such file"
            } else {
                "it cannot be examined"
            };
            InboxError::new(
                ErrorKind::Storage,
                format!("no inbox at {}: {what} ({error})", path.display()),
            )
        })?;
        if !absolute.is_file() {
            return Err(InboxError::new(
                ErrorKind::Storage,
                format!("no inbox at {}: it is not a file", path.display()),
            ));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let opened = if sibling(&absolute, "-wal").exists() {
            Connection::open_with_flags(&absolute, flags)
        } else {
            Connection::open_with_flags(
                file::uri(&absolute, "immutable=1"),
                flags | OpenFlags::SQLITE_OPEN_URI,
            )
        };
        let conn = opened.map_err(|error| cannot_open(path, &error))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(storage)?;
        let version = schema::check_readable(&conn, path)?;
        Self::start(
            conn,
            None,
            Setup {
                path: Some(path.to_owned()),
                read_only: true,
                identity: None,
                kind_column: if version >= schema::KIND_VERSION {
                    "kind"
                } else {
                    "'v2'"
                },
                counters: version >= schema::COUNTS_VERSION,
                vacuum: false,
            },
        )
    }

    /// A private in-memory inbox, for tests: nothing survives the last
    /// clone.
    ///
    /// ```
    /// let inbox = boxhook_sqlite::SqliteInbox::in_memory()?;
    /// assert!(inbox.path().is_none());
    /// # Ok::<(), boxhook::inbox::InboxError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Storage`] when SQLite cannot set it up.
    pub fn in_memory() -> Result<Self, InboxError> {
        let mut conn = Connection::open_in_memory().map_err(storage)?;
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(storage)?;
        schema::migrate(&mut conn)?;
        let vacuum = incremental_vacuum(&conn)?;
        Self::start(
            conn,
            None,
            Setup {
                path: None,
                read_only: false,
                identity: None,
                kind_column: "kind",
                counters: true,
                vacuum,
            },
        )
    }

    /// The file the inbox is in; `None` in memory.
    ///
    /// ```
    /// assert_eq!(boxhook_sqlite::SqliteInbox::in_memory()?.path(), None);
    /// # Ok::<(), boxhook::inbox::InboxError>(())
    /// ```
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.inner.setup.path.as_deref()
    }

    /// Whether it was opened with [`open_read_only`](Self::open_read_only).
    ///
    /// ```
    /// assert!(!boxhook_sqlite::SqliteInbox::in_memory()?.is_read_only());
    /// # Ok::<(), boxhook::inbox::InboxError>(())
    /// ```
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        self.inner.setup.read_only
    }

    fn start(
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

/// Whether the file returns freed pages to the file system on request
/// (`auto_vacuum` is `INCREMENTAL`, 2).
fn incremental_vacuum(conn: &Connection) -> Result<bool, InboxError> {
    let mode: i64 = conn
        .query_row("PRAGMA auto_vacuum", [], |row| row.get(0))
        .map_err(storage)?;
    Ok(mode == 2)
}

/// WAL mode, fsync on every commit, and the schema: the setup of a
/// connection that writes. The migration commits a write even when the
/// schema is current, so this doubles as a write probe.
fn set_up(conn: &mut Connection, path: &Path) -> Result<(), InboxError> {
    // A new file vacuums incrementally: pruning returns the space it
    // frees. SQLite only takes this before the first table is created; for
    // an existing file without it, this changes nothing (see the crate
    // docs for converting one).
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
        .map_err(storage)?;
    // `query_row` is enough for PRAGMA journal_mode: it is not a write
    // transaction, and a failure to switch is reported on the first step
    // or as the mode read back.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(storage)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(InboxError::new(
            ErrorKind::Storage,
            format!(
                "cannot switch {} to WAL (journal mode is {mode})",
                path.display()
            ),
        ));
    }
    // FULL: the WAL is fsynced on every commit, so a stored event
    // survives a power loss too, not only a killed process.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(storage)?;
    schema::migrate(conn)
}

/// The SQLite error code behind an inbox error, if there is one.
fn sqlite_code(error: &InboxError) -> Option<rusqlite::ErrorCode> {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<rusqlite::Error>())
        .and_then(rusqlite::Error::sqlite_error_code)
}

fn is_read_only_error(error: &InboxError) -> bool {
    matches!(
        sqlite_code(error),
        Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen)
    )
}

fn read_only(path: &Path, cause: Option<&InboxError>) -> InboxError {
    let cause = cause.map(|error| match std::error::Error::source(error) {
        Some(source) => format!(" (SQLite: {source})"),
        None => String::new(),
    });
    InboxError::new(
        ErrorKind::Storage,
        format!(
            "inbox {} is read-only (file, directory or mount){}: storing events needs to write \
             to it and to create its -wal and -shm files next to it; check its permissions and \
             mount, or use a writable path",
            path.display(),
            cause.unwrap_or_default()
        ),
    )
}

fn cannot_open(path: &Path, error: &rusqlite::Error) -> InboxError {
    InboxError::new(
        ErrorKind::Storage,
        format!(
            "cannot open or create {}: {error}; check that its directory exists and that this \
             process may read and write it",
            path.display()
        ),
    )
}

/// Runs a statement that yields at most one row and steps it to the end.
///
/// rusqlite's `query_row` reads the first row and drops the statement
/// without the final step; for a write in autocommit mode that step is
/// the commit, and the error it reports (a full disk, a failed fsync) is
/// dropped with it. Stepping until `None` returns every error.
pub(crate) fn at_most_one_row<T>(
    stmt: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
    f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Option<T>> {
    let mut rows = stmt.query(params)?;
    let first = match rows.next()? {
        Some(row) => Some(f(row)?),
        None => None,
    };
    while rows.next()?.is_some() {}
    Ok(first)
}

pub(crate) fn closed() -> InboxError {
    InboxError::new(ErrorKind::Closed, "the connection thread is gone")
}

impl fmt::Debug for SqliteInbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteInbox")
            .field("path", &self.inner.setup.path)
            .finish_non_exhaustive()
    }
}

/// The entry columns, in the order [`entry`] reads them; the kind (the
/// `kind` column or, for an old file read-only, `'v2'`) follows them.
pub(crate) const ENTRY_COLUMNS: &str =
    "webhook_id, event_id, trigger_name, source_type, source_id, \
     delivery_id, received_at, deliveries, attempts, state";

pub(crate) fn entry(row: &Row<'_>) -> rusqlite::Result<Result<InboxEntry, InboxError>> {
    let received_at: i64 = row.get(6)?;
    let deliveries: i64 = row.get(7)?;
    let attempts: i64 = row.get(8)?;
    let state: String = row.get(9)?;
    let kind: String = row.get(10)?;
    let corrupt = |what: String| InboxError::new(ErrorKind::Corrupt, what);
    let decoded = (|| {
        Ok(InboxEntry {
            webhook_id: row.get(0)?,
            event_id: row.get(1)?,
            trigger: row.get(2)?,
            source_type: row.get(3)?,
            source_id: row.get(4)?,
            delivery_id: row.get(5)?,
            received_at: DateTime::from_timestamp_millis(received_at)
                .ok_or_else(|| corrupt(format!("received_at {received_at} ms is out of range")))?,
            deliveries: u64::try_from(deliveries)
                .map_err(|_| corrupt(format!("deliveries is {deliveries}")))?,
            attempts: u32::try_from(attempts)
                .map_err(|_| corrupt(format!("attempts is {attempts}")))?,
            state: EntryState::parse(&state)
                .ok_or_else(|| corrupt(format!("unknown state {state:?}")))?,
            kind: RecordKind::parse(&kind)
                .ok_or_else(|| corrupt(format!("unknown kind {kind:?}")))?,
        })
    })();
    Ok(decoded.map_err(|e: Either| e.into_inbox()))
}

/// A column read error or a decoding error, while reading one row.
enum Either {
    Sql(rusqlite::Error),
    Inbox(InboxError),
}

impl Either {
    fn into_inbox(self) -> InboxError {
        match self {
            Self::Sql(error) => storage(error),
            Self::Inbox(error) => error,
        }
    }
}

impl From<rusqlite::Error> for Either {
    fn from(error: rusqlite::Error) -> Self {
        Self::Sql(error)
    }
}

impl From<InboxError> for Either {
    fn from(error: InboxError) -> Self {
        Self::Inbox(error)
    }
}

pub(crate) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// `now + lease`, saturating at the last representable instant.
pub(crate) fn plus(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(lease)
        .ok()
        .and_then(|lease| now.checked_add_signed(lease))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
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

/// How `store` reports a row's delivery count.
fn stored(deliveries: i64) -> Stored {
    if deliveries <= 1 {
        Stored::New
    } else {
        Stored::Duplicate {
            deliveries: u64::try_from(deliveries).unwrap_or(u64::MAX),
        }
    }
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

impl Inbox for SqliteInbox {
    async fn store(&self, record: NewRecord) -> Result<Stored, InboxError> {
        self.writable("store an event")?;
        let (reply, answer) = oneshot::channel();
        self.inner
            .jobs
            .send(Job::Store(StoreJob { record, reply }))
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    async fn claim_next(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Claimed>, InboxError> {
        boxhook::inbox::FilteredClaims::claim_matching(self, worker_id, lease, now, &[]).await
    }

    async fn ack(&self, claimed: &Claimed) -> Result<(), InboxError> {
        self.settle(claimed, EntryState::Done, None).await
    }

    async fn requeue(&self, claimed: &Claimed, retry_at: DateTime<Utc>) -> Result<(), InboxError> {
        self.settle(claimed, EntryState::Pending, Some(retry_at))
            .await
    }

    async fn list(&self, filter: ListFilter) -> Result<Vec<InboxEntry>, InboxError> {
        let kind = self.inner.setup.kind_column;
        self.read(move |conn| read::list(conn, &filter, kind)).await
    }

    async fn get(&self, event_id: &str) -> Result<Option<StoredEvent>, InboxError> {
        let event_id = event_id.to_owned();
        let kind = self.inner.setup.kind_column;
        self.read(move |conn| read::get(conn, &event_id, kind))
            .await
    }

    async fn counts(&self) -> Result<Counts, InboxError> {
        let counters = self.inner.setup.counters;
        self.read(move |conn| read::counts(conn, counters)).await
    }
}

impl boxhook::inbox::DeadLetters for SqliteInbox {
    async fn bury(&self, claimed: &Claimed) -> Result<(), InboxError> {
        self.settle(claimed, EntryState::Dead, None).await
    }

    async fn revive(&self, which: Revive, now: DateTime<Utc>) -> Result<u64, InboxError> {
        self.writable("requeue events")?;
        self.call(move |conn| {
            let (condition, event_id) = match which {
                Revive::AllDead => ("state = 'dead'", None),
                Revive::Event(id) => ("event_id = ?2 AND state IN ('dead', 'done')", Some(id)),
            };
            let sql = format!(
                "UPDATE events SET state = 'pending', attempts = 0, worker_id = NULL, \
                 ready_at = ?1 WHERE {condition}"
            );
            // One UPDATE in autocommit: `execute` steps it to its end and
            // returns the commit's error.
            let mut stmt = conn.prepare_cached(&sql).map_err(storage)?;
            let changed = match event_id {
                None => stmt.execute(params![millis(now)]),
                Some(id) => stmt.execute(params![millis(now), id]),
            }
            .map_err(storage)?;
            Ok(u64::try_from(changed).unwrap_or(u64::MAX))
        })
        .await
    }
}

impl boxhook::inbox::FilteredClaims for SqliteInbox {
    async fn claim_matching(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
        triggers: &[String],
    ) -> Result<Option<Claimed>, InboxError> {
        self.writable("claim an event")?;
        let worker_id = worker_id.to_owned();
        let lease_until = plus(now, lease);
        let kind = self.inner.setup.kind_column;
        let triggers = triggers.to_vec();
        self.call(move |conn| {
            // ?1 to ?3, then one parameter per trigger.
            let only = if triggers.is_empty() {
                String::new()
            } else {
                let marks: Vec<String> = (4..triggers.len().saturating_add(4))
                    .map(|n| format!("?{n}"))
                    .collect();
                format!(" AND trigger_name IN ({})", marks.join(", "))
            };
            let sql = format!(
                "UPDATE events SET state = 'claimed', attempts = attempts + 1, worker_id = ?1, \
                 ready_at = ?2 \
                 WHERE seq = (SELECT seq FROM events WHERE state IN ('pending', 'claimed') \
                              AND ready_at <= ?3{only} ORDER BY seq LIMIT 1) \
                 RETURNING {ENTRY_COLUMNS}, {kind}, body"
            );
            let values: Vec<rusqlite::types::Value> = [
                rusqlite::types::Value::Text(worker_id.clone()),
                rusqlite::types::Value::Integer(millis(lease_until)),
                rusqlite::types::Value::Integer(millis(now)),
            ]
            .into_iter()
            .chain(triggers.into_iter().map(rusqlite::types::Value::Text))
            .collect();
            // As in `store`: stepped to the end inside a transaction whose
            // COMMIT error is returned, so a claim that did not reach the
            // disk is not handed to a worker.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let row = {
                let mut stmt = tx.prepare_cached(&sql).map_err(storage)?;
                at_most_one_row(&mut stmt, params_from_iter(values), |row| {
                    Ok(entry(row)?.map(|entry| (entry, row.get::<_, Vec<u8>>(11))))
                })
                .map_err(storage)?
            };
            tx.commit().map_err(storage)?;
            let Some(decoded) = row else {
                return Ok(None);
            };
            let (entry, body) = decoded?;
            Ok(Some(Claimed {
                entry,
                body: Bytes::from(body.map_err(storage)?),
                worker_id,
                lease_until,
            }))
        })
        .await
    }
}

impl boxhook::inbox::Prune for SqliteInbox {
    async fn prune(
        &self,
        retention: &Retention,
        now: DateTime<Utc>,
        batch: usize,
    ) -> Result<Pruned, InboxError> {
        self.writable("prune events")?;
        let retention = *retention;
        let vacuum = self.inner.setup.vacuum;
        let identity = self.identity();
        self.call(move |conn| {
            let pruned = prune::prune(conn, &retention, now, batch, vacuum)?;
            if let Some(identity) = &identity {
                identity.check()?;
            }
            Ok(pruned)
        })
        .await
    }
}

impl SqliteInbox {
    /// Acknowledges or requeues a claim, if it is still the one held.
    async fn settle(
        &self,
        claimed: &Claimed,
        state: EntryState,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), InboxError> {
        self.writable(match state {
            EntryState::Done => "acknowledge an event",
            EntryState::Dead => "mark an event dead",
            _ => "requeue an event",
        })?;
        let key = claimed.entry.key();
        let attempts = i64::from(claimed.entry.attempts);
        let worker_id = claimed.worker_id.clone();
        self.call(move |conn| {
            // `execute` steps the statement to its end (an UPDATE without
            // RETURNING finishes in one step, autocommit included) and
            // returns that step's error.
            let changed = conn
                .prepare_cached(
                    "UPDATE events SET state = ?1, ready_at = coalesce(?2, ready_at) \
                     WHERE webhook_id = ?3 AND event_id = ?4 AND state = 'claimed' \
                     AND attempts = ?5 AND worker_id = ?6",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        state.as_str(),
                        retry_at.map(millis),
                        key.webhook_id(),
                        key.event_id(),
                        attempts,
                        worker_id,
                    ])
                })
                .map_err(storage)?;
            if changed == 0 {
                return Err(InboxError::new(
                    ErrorKind::LeaseLost,
                    format!("event {key} attempt {attempts} of {worker_id} is no longer claimed"),
                ));
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
