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
use rusqlite::{params, Connection, OptionalExtension as _, Row};
use tokio::sync::oneshot;

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
/// let claimed = inbox.claim("worker-1", Duration::from_secs(60), now).await?.expect("pending");
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
}

impl SqliteInbox {
    /// Opens the inbox at `path`, creating the file and its schema if
    /// needed, and migrating an older schema.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("boxhook-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let inbox = boxhook_sqlite::SqliteInbox::open(dir.join("inbox.sqlite"))?;
    /// assert!(inbox.path().is_some());
    /// # drop(inbox); let _ = std::fs::remove_dir_all(&dir);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Storage`] when the file cannot be opened or set up,
    /// [`ErrorKind::Corrupt`] when its schema is newer than this build.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, InboxError> {
        let path = path.as_ref();
        let mut conn = Connection::open(path).map_err(storage)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(storage)?;
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
        schema::migrate(&mut conn)?;
        Self::start(conn, Some(path.to_owned()))
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
        Self::start(conn, None)
    }

    /// The file the inbox is in; `None` in memory.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    fn start(mut conn: Connection, path: Option<PathBuf>) -> Result<Self, InboxError> {
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
            inner: Arc::new(Inner { jobs, path }),
        })
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

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn plus(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(lease)
        .ok()
        .and_then(|lease| now.checked_add_signed(lease))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl Inbox for SqliteInbox {
    async fn store(&self, record: NewRecord) -> Result<Stored, InboxError> {
        self.call(move |conn| {
            // One statement, committed (and fsynced) before it returns. The
            // UNIQUE key makes concurrent stores of one event insert once.
            let deliveries: i64 = conn
                .prepare_cached(
                    "INSERT INTO events (webhook_id, event_id, trigger_name, source_type, \
                     source_id, delivery_id, received_at, body) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                     ON CONFLICT (webhook_id, event_id) DO UPDATE SET deliveries = deliveries + 1 \
                     RETURNING deliveries",
                )
                .and_then(|mut stmt| {
                    stmt.query_row(
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
                })
                .map_err(storage)?;
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

    async fn claim(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Claimed>, InboxError> {
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
            let row = conn
                .prepare_cached(&sql)
                .and_then(|mut stmt| {
                    stmt.query_row(
                        params![worker_id, millis(lease_until), millis(now)],
                        |row| Ok(entry(row)?.map(|entry| (entry, row.get::<_, Vec<u8>>(10)))),
                    )
                    .optional()
                })
                .map_err(storage)?;
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

    async fn release(&self, claimed: &Claimed, retry_at: DateTime<Utc>) -> Result<(), InboxError> {
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
    /// Acknowledges or releases a claim, if it is still the one held.
    async fn settle(
        &self,
        claimed: &Claimed,
        state: EntryState,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), InboxError> {
        let key = claimed.entry.key();
        let attempts = i64::from(claimed.entry.attempts);
        let worker_id = claimed.worker_id.clone();
        self.call(move |conn| {
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
