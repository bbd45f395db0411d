//! Opening an inbox file: for writing (set up, migrated, and refused when
//! it cannot be written), to read only, or in memory.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use boxhook::inbox::{ErrorKind, InboxError};
use rusqlite::{Connection, OpenFlags};

use crate::db::{Db, Setup};
use crate::file::{self, sibling, Identity};
use crate::{schema, storage, SqliteInbox};

/// How long a writer waits for another connection's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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
        file(path.as_ref()).map(|db| Self { db })
    }

    /// Opens an existing inbox to read it ([`list`](boxhook::inbox::Inbox::list),
    /// [`get`](boxhook::inbox::Inbox::get), [`counts`](boxhook::inbox::Inbox::counts)) without changing
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
        file_read_only(path.as_ref()).map(|db| Self { db })
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
        memory().map(|db| Self { db })
    }

    /// The file the inbox is in; `None` in memory.
    ///
    /// ```
    /// assert_eq!(boxhook_sqlite::SqliteInbox::in_memory()?.path(), None);
    /// # Ok::<(), boxhook::inbox::InboxError>(())
    /// ```
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.db.path()
    }

    /// Whether it was opened with [`open_read_only`](Self::open_read_only).
    ///
    /// ```
    /// assert!(!boxhook_sqlite::SqliteInbox::in_memory()?.is_read_only());
    /// # Ok::<(), boxhook::inbox::InboxError>(())
    /// ```
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        self.db.setup().read_only
    }
}

/// Opens the file at `path` for writing (see [`SqliteInbox::open`]).
pub(crate) fn file(path: &Path) -> Result<Db, InboxError> {
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
    Db::start(
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

/// Opens the file at `path` to read (see [`SqliteInbox::open_read_only`]).
fn file_read_only(path: &Path) -> Result<Db, InboxError> {
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
    Db::start(
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

/// A private in-memory database (see [`SqliteInbox::in_memory`]).
pub(crate) fn memory() -> Result<Db, InboxError> {
    let mut conn = Connection::open_in_memory().map_err(storage)?;
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
        .map_err(storage)?;
    schema::migrate(&mut conn)?;
    let vacuum = incremental_vacuum(&conn)?;
    Db::start(
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
