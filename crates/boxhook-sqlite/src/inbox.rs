//! [`SqliteInbox`]: the connection thread and the [`Inbox`] queries.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use boxhook::inbox::{
    Claimed, EntryState, ErrorKind, Inbox, InboxEntry, InboxError, ListFilter, NewRecord, Stored,
    StoredEvent,
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension as _, Row, TransactionBehavior};
use tokio::sync::oneshot;

use crate::file::{self, sibling, Identity};
use crate::{schema, storage};

/// How long a writer waits for another connection's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

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
    path: Option<PathBuf>,
    read_only: bool,
    /// The file and its `-wal` as opened, checked after each `store`.
    identity: Option<Arc<Identity>>,
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
        let identity = Identity::capture(path).map(Arc::new);
        Self::start(conn, Some(path.to_owned()), false, identity)
    }

    /// Opens an existing inbox to read it ([`list`](Inbox::list),
    /// [`get`](Inbox::get)) without changing anything on disk: no file
    /// created, no schema written, no migration. Its `store`, `claim_next`,
    /// `ack` and `requeue` fail with [`ErrorKind::Storage`].
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
        schema::check_readable(&conn, path)?;
        Self::start(conn, Some(path.to_owned()), true, None)
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
        schema::migrate(&mut conn)?;
        Self::start(conn, None, false, None)
    }

    /// The file the inbox is in; `None` in memory.
    ///
    /// ```
    /// assert_eq!(boxhook_sqlite::SqliteInbox::in_memory()?.path(), None);
    /// # Ok::<(), boxhook::inbox::InboxError>(())
    /// ```
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// Whether it was opened with [`open_read_only`](Self::open_read_only).
    ///
    /// ```
    /// assert!(!boxhook_sqlite::SqliteInbox::in_memory()?.is_read_only());
    /// # Ok::<(), boxhook::inbox::InboxError>(())
    /// ```
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        self.inner.read_only
    }

    fn start(
        mut conn: Connection,
        path: Option<PathBuf>,
        read_only: bool,
        identity: Option<Arc<Identity>>,
    ) -> Result<Self, InboxError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("boxhook-sqlite".into())
            .spawn(move || {
                for job in queue {
                    // A panicking job drops its reply sender, so its caller
                    // gets `Closed`; the connection stays in service (an
                    // open transaction rolls back as it unwinds).
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut conn)));
                }
            })
            .map_err(|error| InboxError::new(ErrorKind::Storage, error))?;
        Ok(Self {
            inner: Arc::new(Inner {
                jobs,
                path,
                read_only,
                identity,
            }),
        })
    }

    /// Fails when the inbox was opened read-only and cannot `what`.
    pub(crate) fn writable(&self, what: &str) -> Result<(), InboxError> {
        if !self.inner.read_only {
            return Ok(());
        }
        let path = self.inner.path.as_deref().unwrap_or(Path::new(":memory:"));
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
        self.inner.identity.clone()
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
            .send(Box::new(move |conn| {
                let _ = reply.send(f(conn));
            }))
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

/// WAL mode, fsync on every commit, and the schema: the setup of a
/// connection that writes. The migration commits a write even when the
/// schema is current, so this doubles as a write probe.
fn set_up(conn: &mut Connection, path: &Path) -> Result<(), InboxError> {
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

fn closed() -> InboxError {
    InboxError::new(ErrorKind::Closed, "the connection thread is gone")
}

impl fmt::Debug for SqliteInbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteInbox")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// The entry columns, in the order [`entry`] reads them.
const ENTRY_COLUMNS: &str = "webhook_id, event_id, trigger_name, source_type, source_id, \
     delivery_id, received_at, deliveries, attempts, state";

fn entry(row: &Row<'_>) -> rusqlite::Result<Result<InboxEntry, InboxError>> {
    let received_at: i64 = row.get(6)?;
    let deliveries: i64 = row.get(7)?;
    let attempts: i64 = row.get(8)?;
    let state: String = row.get(9)?;
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

impl Inbox for SqliteInbox {
    async fn store(&self, record: NewRecord) -> Result<Stored, InboxError> {
        self.writable("store an event")?;
        let check = self.inner.identity.clone();
        self.call(move |conn| {
            // An explicit transaction whose COMMIT error is returned, and the
            // statement stepped to its end (see `at_most_one_row`): SQLite
            // reports a full disk or a failed fsync on the last step of an
            // autocommit statement or on the COMMIT, and rusqlite's
            // `query_row` never takes that step (the error would be dropped
            // with the statement, and Box would get a 2xx for an event that
            // is not on disk). The UNIQUE key makes concurrent stores of one
            // event insert once.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let deliveries: i64 = {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO events (webhook_id, event_id, trigger_name, source_type, \
                         source_id, delivery_id, received_at, body) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                         ON CONFLICT (webhook_id, event_id) DO UPDATE SET deliveries = deliveries + 1 \
                         RETURNING deliveries",
                    )
                    .map_err(storage)?;
                at_most_one_row(
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
                    ],
                    |row| row.get(0),
                )
                .map_err(storage)?
                .ok_or_else(|| {
                    InboxError::new(ErrorKind::Storage, "INSERT … RETURNING returned no row")
                })?
            };
            tx.commit().map_err(storage)?;
            // Committed, but to the file this inbox opened: if that file was
            // deleted or replaced since, nobody will ever read the event.
            if let Some(identity) = &check {
                identity.check()?;
            }
            Ok(if deliveries <= 1 {
                Stored::New
            } else {
                Stored::Duplicate {
                    deliveries: u64::try_from(deliveries).unwrap_or(u64::MAX),
                }
            })
        })
        .await
    }

    async fn claim_next(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Claimed>, InboxError> {
        self.writable("claim an event")?;
        let worker_id = worker_id.to_owned();
        let lease_until = plus(now, lease);
        self.call(move |conn| {
            let sql = format!(
                "UPDATE events SET state = 'claimed', attempts = attempts + 1, worker_id = ?1, \
                 ready_at = ?2 \
                 WHERE seq = (SELECT seq FROM events WHERE state <> 'done' AND ready_at <= ?3 \
                              ORDER BY seq LIMIT 1) \
                 RETURNING {ENTRY_COLUMNS}, body"
            );
            // As in `store`: stepped to the end inside a transaction whose
            // COMMIT error is returned, so a claim that did not reach the
            // disk is not handed to a worker.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let row = {
                let mut stmt = tx.prepare_cached(&sql).map_err(storage)?;
                at_most_one_row(
                    &mut stmt,
                    params![worker_id, millis(lease_until), millis(now)],
                    |row| Ok(entry(row)?.map(|entry| (entry, row.get::<_, Vec<u8>>(10)))),
                )
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

    async fn ack(&self, claimed: &Claimed) -> Result<(), InboxError> {
        self.settle(claimed, EntryState::Done, None).await
    }

    async fn requeue(&self, claimed: &Claimed, retry_at: DateTime<Utc>) -> Result<(), InboxError> {
        self.settle(claimed, EntryState::Pending, Some(retry_at))
            .await
    }

    async fn list(&self, filter: ListFilter) -> Result<Vec<InboxEntry>, InboxError> {
        self.call(move |conn| {
            let limit = filter
                .limit
                .map_or(-1, |limit| i64::try_from(limit).unwrap_or(i64::MAX));
            let sql = format!(
                "SELECT {ENTRY_COLUMNS} FROM events \
                 WHERE ?1 IS NULL OR trigger_name = ?1 ORDER BY seq LIMIT ?2"
            );
            // A read: collecting steps the rows to the end, and stops at
            // (and returns) the first error.
            let mut stmt = conn.prepare_cached(&sql).map_err(storage)?;
            let rows = stmt
                .query_map(params![filter.trigger, limit], entry)
                .map_err(storage)?;
            rows.map(|row| row.map_err(storage)?).collect()
        })
        .await
    }

    async fn get(&self, event_id: &str) -> Result<Option<StoredEvent>, InboxError> {
        let event_id = event_id.to_owned();
        self.call(move |conn| {
            let sql = format!(
                "SELECT {ENTRY_COLUMNS}, body FROM events WHERE event_id = ?1 ORDER BY seq LIMIT 1"
            );
            // A read: `query_row` not stepping past the first row loses
            // nothing (there is no commit to report).
            let row = conn
                .prepare_cached(&sql)
                .and_then(|mut stmt| {
                    stmt.query_row([&event_id], |row| {
                        Ok(entry(row)?.map(|entry| (entry, row.get::<_, Vec<u8>>(10))))
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
        self.writable(if state == EntryState::Done {
            "acknowledge an event"
        } else {
            "requeue an event"
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
