//! [`Store`]: a store named by a URL, parsed and opened.

use std::fmt;
#[cfg(feature = "sqlite")]
use std::path::{Path, PathBuf};
use std::str::FromStr;

use boxhook::Printable;
#[cfg(feature = "postgres")]
use boxhook_postgres::{Options, PgInbox};
#[cfg(feature = "sqlite")]
use boxhook_sqlite::SqliteInbox;

#[cfg(feature = "sqlite")]
use crate::OpenErrorKind;
use crate::{AnyInbox, Backend, OpenError};

/// A store named by a URL: a SQLite file or a PostgreSQL database, ready to
/// [`open`](Self::open).
///
/// [`parse`](Self::parse) takes what a user types: a PostgreSQL connection
/// string (`postgres://…`, `postgresql://…`, or libpq's `key=value` form),
/// `sqlite:PATH`, or a plain path. Its [`Display`](fmt::Display) and
/// [`Debug`] name the store without its password, as
/// [`describe`](Self::describe) does.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use boxhook_store::{Backend, Store};
///
/// let store = Store::parse("sqlite:/var/lib/boxhook/inbox.sqlite")?;
/// assert_eq!(store.backend(), Backend::Sqlite);
/// assert_eq!(store.to_string(), "/var/lib/boxhook/inbox.sqlite");
/// # }
/// # Ok::<(), boxhook_store::OpenError>(())
/// ```
#[derive(Clone)]
pub struct Store {
    place: Place,
}

/// Where a [`Store`] is, among the backends this build has.
#[derive(Clone)]
enum Place {
    #[cfg(feature = "sqlite")]
    Sqlite(PathBuf),
    #[cfg(feature = "postgres")]
    Postgres { url: String, options: Options },
}

/// What [`Store::parse`]'s refusals ask for instead.
const GIVE: &str = "give postgres://…, postgresql://…, host=… dbname=… (PostgreSQL), \
                    sqlite:PATH or a path (SQLite)";

impl Store {
    /// Parses what a user names a store by:
    ///
    /// - a PostgreSQL connection string: `postgres://…` or `postgresql://…`,
    ///   or libpq's `key=value` form with at least one of its settings
    ///   (`host=db port=5432 user=boxhook dbname=boxhook`);
    /// - `sqlite:PATH` (`sqlite://PATH` too), for any file name;
    /// - a plain path: a SQLite file.
    ///
    /// Anything else is refused
    /// ([`OpenErrorKind::Usage`](crate::OpenErrorKind::Usage)) rather than
    /// taken for a file name: an empty text or `sqlite:` alone, another scheme
    /// (`mysql://…`), a text with `=` that is no connection string (a
    /// misspelt `key=value` string), a text that starts or ends with a
    /// space; so is a backend this build leaves out (features `sqlite` and
    /// `postgres`). No message shows the text, which may hold a password;
    /// only an unknown scheme is named.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] {
    /// use boxhook_store::{Backend, OpenErrorKind, Store};
    ///
    /// assert_eq!(Store::parse("inbox.sqlite")?.backend(), Backend::Sqlite);
    /// assert_eq!(Store::parse("sqlite:run=3.sqlite")?.sqlite_path(), Some("run=3.sqlite".as_ref()));
    ///
    /// let err = Store::parse("hots=db pasword=s3cret").unwrap_err();
    /// assert_eq!(err.kind(), OpenErrorKind::Usage);
    /// assert!(!err.to_string().contains("s3cret"));
    /// # #[cfg(feature = "postgres")]
    /// assert_eq!(Store::parse("host=db dbname=boxhook")?.backend(), Backend::Postgres);
    /// # }
    /// # Ok::<(), boxhook_store::OpenError>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self, OpenError> {
        #[cfg(feature = "postgres")]
        if boxhook_postgres::is_connection_string(text) {
            return Ok(Self {
                place: Place::Postgres {
                    url: text.to_owned(),
                    options: Options::default(),
                },
            });
        }
        #[cfg(not(feature = "postgres"))]
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Err(OpenError::about(
                " ",
                "names a PostgreSQL database, and this build has no PostgreSQL support \
                 (boxhook-store's `postgres` feature)",
            ));
        }
        let explicit = text.strip_prefix("sqlite:");
        let path = explicit.unwrap_or(text);
        let path = path.strip_prefix("//").unwrap_or(path);
        if path.is_empty() {
            return Err(OpenError::about(
                " ",
                "names no file; give postgres://…, host=… dbname=…, sqlite:PATH or a path",
            ));
        }
        if let Some((scheme, _)) = text.split_once("://").filter(|_| explicit.is_none()) {
            // What comes before `://` is shown only when it is a scheme:
            // in `user:password@host://…` it is no scheme and holds a password.
            return Err(if is_scheme(scheme) {
                OpenError::about(
                    ": ",
                    format!("unknown scheme {}://; {GIVE}", Printable(scheme)),
                )
            } else {
                OpenError::about(": ", format!("unknown scheme before ://; {GIVE}"))
            });
        }
        if explicit.is_none() && text.contains('=') && cfg!(not(feature = "postgres")) {
            return Err(OpenError::about(
                " ",
                "is no plain path, and this build cannot read PostgreSQL connection strings \
                 (boxhook-store's `postgres` feature); for a SQLite file whose name holds '=', \
                 write sqlite:PATH",
            ));
        }
        if explicit.is_none() && (text.contains('=') || text.trim() != text) {
            return Err(OpenError::about(
                " ",
                "is neither a PostgreSQL connection string (postgres://… or libpq's host=… \
                 port=… user=… dbname=…) nor a plain path; for a SQLite file whose name holds \
                 '=' or starts or ends with a space, write sqlite:PATH",
            ));
        }
        Self::sqlite_file(path)
    }

    /// The SQLite file `path` that [`parse`](Self::parse) accepted.
    #[cfg(feature = "sqlite")]
    #[allow(clippy::unnecessary_wraps, reason = "fails in builds without SQLite")]
    fn sqlite_file(path: &str) -> Result<Self, OpenError> {
        Ok(Self::sqlite(path))
    }

    /// A SQLite file, in a build without SQLite.
    #[cfg(not(feature = "sqlite"))]
    fn sqlite_file(_: &str) -> Result<Self, OpenError> {
        Err(OpenError::about(
            " ",
            "names a SQLite file, and this build has no SQLite support (boxhook-store's \
             `sqlite` feature)",
        ))
    }

    /// The SQLite file at `path`, whatever its name.
    ///
    /// ```
    /// use boxhook_store::Store;
    ///
    /// let store = Store::sqlite("my=inbox.sqlite");
    /// assert_eq!(store.describe(), "my=inbox.sqlite");
    /// ```
    #[cfg(feature = "sqlite")]
    #[must_use]
    pub fn sqlite(path: impl Into<PathBuf>) -> Self {
        Self {
            place: Place::Sqlite(path.into()),
        }
    }

    /// A PostgreSQL store connected to with `options` (pool size, schema,
    /// root certificates, ...; see [`Options`]). Whether the schema is
    /// migrated is up to [`open`](Self::open) and
    /// [`open_existing`](Self::open_existing), not to `options`.
    ///
    /// Refused ([`OpenErrorKind::Usage`](crate::OpenErrorKind::Usage)) for
    /// a SQLite store.
    ///
    /// ```
    /// use boxhook_store::postgres::Options;
    /// use boxhook_store::{OpenErrorKind, Store};
    ///
    /// let store = Store::parse("postgres://boxhook@db/boxhook")?
    ///     .with_options(Options::default().pool_size(4).schema("tenant_a"))?;
    /// assert_eq!(store.to_string(), "postgres://boxhook@db/boxhook");
    ///
    /// # #[cfg(feature = "sqlite")] {
    /// let err = Store::parse("inbox.sqlite")?.with_options(Options::default()).unwrap_err();
    /// assert_eq!(err.kind(), OpenErrorKind::Usage);
    /// assert_eq!(
    ///     err.to_string(),
    ///     "PostgreSQL options apply to a PostgreSQL store, not to the SQLite file inbox.sqlite"
    /// );
    /// # }
    /// # Ok::<(), boxhook_store::OpenError>(())
    /// ```
    #[cfg(feature = "postgres")]
    pub fn with_options(self, options: Options) -> Result<Self, OpenError> {
        match self.place {
            #[cfg(feature = "sqlite")]
            Place::Sqlite(path) => Err(OpenError::new(
                OpenErrorKind::Usage,
                format!(
                    "PostgreSQL options apply to a PostgreSQL store, not to the SQLite file {}",
                    path.display()
                ),
            )),
            Place::Postgres { url, .. } => Ok(Self {
                place: Place::Postgres { url, options },
            }),
        }
    }

    /// Which backend it is.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] {
    /// use boxhook_store::{Backend, Store};
    ///
    /// assert_eq!(Store::parse("./boxhook-inbox.sqlite")?.backend(), Backend::Sqlite);
    /// # }
    /// # Ok::<(), boxhook_store::OpenError>(())
    /// ```
    #[must_use]
    pub fn backend(&self) -> Backend {
        match self.place {
            #[cfg(feature = "sqlite")]
            Place::Sqlite(_) => Backend::Sqlite,
            #[cfg(feature = "postgres")]
            Place::Postgres { .. } => Backend::Postgres,
        }
    }

    /// The SQLite file, for a SQLite store.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] {
    /// use boxhook_store::Store;
    ///
    /// let store = Store::parse("sqlite:///var/lib/boxhook/inbox.sqlite")?;
    /// assert_eq!(store.sqlite_path(), Some("/var/lib/boxhook/inbox.sqlite".as_ref()));
    /// # }
    /// # Ok::<(), boxhook_store::OpenError>(())
    /// ```
    #[must_use]
    pub fn sqlite_path(&self) -> Option<&std::path::Path> {
        match self.place {
            #[cfg(feature = "sqlite")]
            Place::Sqlite(ref path) => Some(path),
            #[cfg(feature = "postgres")]
            Place::Postgres { .. } => None,
        }
    }

    /// The connection string as given, password included, for a PostgreSQL
    /// store: to connect with, never to show ([`describe`](Self::describe)
    /// is for showing).
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] {
    /// use boxhook_store::Store;
    ///
    /// assert_eq!(Store::parse("inbox.sqlite")?.connection_string(), None);
    /// # #[cfg(feature = "postgres")]
    /// assert_eq!(
    ///     Store::parse("postgres://u:pw@db/boxhook")?.connection_string(),
    ///     Some("postgres://u:pw@db/boxhook")
    /// );
    /// # }
    /// # Ok::<(), boxhook_store::OpenError>(())
    /// ```
    #[must_use]
    pub fn connection_string(&self) -> Option<&str> {
        match self.place {
            #[cfg(feature = "sqlite")]
            Place::Sqlite(_) => None,
            #[cfg(feature = "postgres")]
            Place::Postgres { ref url, .. } => Some(url),
        }
    }

    /// Whether the connection string holds a password (a program may warn
    /// that a command line shows it to every user of the machine).
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] {
    /// use boxhook_store::Store;
    ///
    /// assert!(!Store::parse("inbox.sqlite")?.has_password());
    /// # #[cfg(feature = "postgres")] {
    /// assert!(Store::parse("host=db password=s3cret dbname=boxhook")?.has_password());
    /// assert!(!Store::parse("postgres://boxhook@db/boxhook")?.has_password());
    /// # }
    /// # }
    /// # Ok::<(), boxhook_store::OpenError>(())
    /// ```
    #[must_use]
    pub fn has_password(&self) -> bool {
        match self.place {
            #[cfg(feature = "sqlite")]
            Place::Sqlite(_) => false,
            #[cfg(feature = "postgres")]
            Place::Postgres { ref url, .. } => boxhook_postgres::redact(url) != *url,
        }
    }

    /// For messages: the SQLite file, or the connection string with its
    /// password replaced by `***`.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] {
    /// use boxhook_store::Store;
    ///
    /// assert_eq!(Store::parse("sqlite:inbox.sqlite")?.describe(), "inbox.sqlite");
    /// # #[cfg(feature = "postgres")] {
    /// assert_eq!(
    ///     Store::parse("postgres://boxhook:s3cret@db/boxhook")?.describe(),
    ///     "postgres://boxhook:***@db/boxhook"
    /// );
    /// assert_eq!(
    ///     Store::parse("host=db password='s3 cret' dbname=boxhook")?.describe(),
    ///     "host=db password=*** dbname=boxhook"
    /// );
    /// # }
    /// # }
    /// # Ok::<(), boxhook_store::OpenError>(())
    /// ```
    #[must_use]
    pub fn describe(&self) -> String {
        match self.place {
            #[cfg(feature = "sqlite")]
            Place::Sqlite(ref path) => path.display().to_string(),
            #[cfg(feature = "postgres")]
            Place::Postgres { ref url, .. } => boxhook_postgres::redact(url),
        }
    }

    /// Opens it for writing: a SQLite file is created if missing and
    /// migrated; a PostgreSQL schema is migrated under its advisory lock.
    /// Call it in the runtime that will use the inbox: PostgreSQL
    /// connections are driven by tasks on it.
    ///
    /// Fails with [`OpenErrorKind::Open`](crate::OpenErrorKind::Open):
    /// `cannot open inbox FILE: …` or
    /// `cannot open store URL: …` (without its password), ending with the
    /// inbox's error.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] {
    /// # let dir = boxhook_testkit::fs::TempDir::new("doc-open");
    /// # let path = dir.file("inbox.sqlite");
    /// use boxhook::inbox::Inbox as _;
    /// use boxhook_store::Store;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let inbox = Store::sqlite(&path).open().await?;
    /// assert_eq!(inbox.counts().await.unwrap().pending, 0);
    /// # Ok::<(), boxhook_store::OpenError>(())
    /// # }).unwrap();
    /// # }
    /// ```
    #[cfg_attr(
        not(feature = "postgres"),
        allow(
            clippy::unused_async,
            reason = "async for PostgreSQL: one signature in every build"
        )
    )]
    pub async fn open(&self) -> Result<AnyInbox, OpenError> {
        match self.place {
            #[cfg(feature = "sqlite")]
            Place::Sqlite(ref path) => SqliteInbox::open(path)
                .map(AnyInbox::Sqlite)
                .map_err(|err| cannot_open_inbox(path, err)),
            #[cfg(feature = "postgres")]
            Place::Postgres {
                ref url,
                ref options,
            } => PgInbox::connect_with(url, &options.clone().migrate(true))
                .await
                .map(AnyInbox::Postgres)
                .map_err(|err| cannot_open_store(url, err)),
        }
    }

    /// Opens it to read without changing anything: a SQLite file must exist
    /// ([`OpenErrorKind::NotFound`](crate::OpenErrorKind::NotFound): `no
    /// inbox at FILE`) and is opened read-only; a PostgreSQL schema is not
    /// migrated (one that is not current is refused). Otherwise fails as
    /// [`open`](Self::open).
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] {
    /// # let dir = boxhook_testkit::fs::TempDir::new("doc-open-existing");
    /// # let path = dir.file("inbox.sqlite");
    /// use boxhook_store::{OpenErrorKind, Store};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = Store::sqlite(&path);
    /// let err = store.open_existing().await.unwrap_err();
    /// assert_eq!(err.kind(), OpenErrorKind::NotFound);
    /// assert_eq!(err.to_string(), format!("no inbox at {}", path.display()));
    ///
    /// drop(store.open().await?);
    /// let inbox = store.open_existing().await?;
    /// assert!(inbox.as_sqlite().is_some_and(|inbox| inbox.is_read_only()));
    /// # Ok::<(), boxhook_store::OpenError>(())
    /// # }).unwrap();
    /// # }
    /// ```
    #[cfg_attr(
        not(feature = "postgres"),
        allow(
            clippy::unused_async,
            reason = "async for PostgreSQL: one signature in every build"
        )
    )]
    pub async fn open_existing(&self) -> Result<AnyInbox, OpenError> {
        match self.place {
            #[cfg(feature = "sqlite")]
            Place::Sqlite(ref path) => {
                if !path.is_file() {
                    return Err(OpenError::new(
                        OpenErrorKind::NotFound,
                        format!("no inbox at {}", path.display()),
                    ));
                }
                SqliteInbox::open_read_only(path)
                    .map(AnyInbox::Sqlite)
                    .map_err(|err| cannot_open_inbox(path, err))
            }
            #[cfg(feature = "postgres")]
            Place::Postgres {
                ref url,
                ref options,
            } => PgInbox::connect_with(url, &options.clone().migrate(false))
                .await
                .map(AnyInbox::Postgres)
                .map_err(|err| cannot_open_store(url, err)),
        }
    }

    /// Creates or upgrades the store's tables, and returns the PostgreSQL
    /// schema's version (`None` for SQLite, whose file is migrated as
    /// [`open`](Self::open) does).
    ///
    /// Fails with [`OpenErrorKind::Open`](crate::OpenErrorKind::Open):
    /// `cannot open inbox FILE: …`, or
    /// `cannot migrate URL: …` (without its password).
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] {
    /// # let dir = boxhook_testkit::fs::TempDir::new("doc-migrate");
    /// # let path = dir.file("inbox.sqlite");
    /// use boxhook_store::Store;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// assert_eq!(Store::sqlite(&path).migrate().await?, None);
    /// assert!(path.is_file());
    /// # Ok::<(), boxhook_store::OpenError>(())
    /// # }).unwrap();
    /// # }
    /// ```
    #[cfg_attr(
        not(feature = "postgres"),
        allow(
            clippy::unused_async,
            reason = "async for PostgreSQL: one signature in every build"
        )
    )]
    pub async fn migrate(&self) -> Result<Option<i64>, OpenError> {
        match self.place {
            #[cfg(feature = "sqlite")]
            Place::Sqlite(ref path) => SqliteInbox::open(path)
                .map(|_| None)
                .map_err(|err| cannot_open_inbox(path, err)),
            #[cfg(feature = "postgres")]
            Place::Postgres {
                ref url,
                ref options,
            } => boxhook_postgres::migrate(url, options)
                .await
                .map(Some)
                .map_err(|err| {
                    OpenError::open(
                        &format!("cannot migrate {}", boxhook_postgres::redact(url)),
                        err,
                    )
                }),
        }
    }
}

/// `cannot open inbox FILE: {err}`.
#[cfg(feature = "sqlite")]
fn cannot_open_inbox(path: &Path, err: boxhook::inbox::InboxError) -> OpenError {
    OpenError::open(&format!("cannot open inbox {}", path.display()), err)
}

/// `cannot open store URL: {err}`, without the URL's password.
#[cfg(feature = "postgres")]
fn cannot_open_store(url: &str, err: boxhook::inbox::InboxError) -> OpenError {
    OpenError::open(
        &format!("cannot open store {}", boxhook_postgres::redact(url)),
        err,
    )
}

/// Whether `text` is a URL scheme (RFC 3986: a letter, then letters,
/// digits, `+`, `-` or `.`).
fn is_scheme(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

impl FromStr for Store {
    type Err = OpenError;

    /// As [`Store::parse`].
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] {
    /// let store: boxhook_store::Store = "inbox.sqlite".parse()?;
    /// assert_eq!(store.describe(), "inbox.sqlite");
    /// # }
    /// # Ok::<(), boxhook_store::OpenError>(())
    /// ```
    fn from_str(text: &str) -> Result<Self, OpenError> {
        Self::parse(text)
    }
}

impl fmt::Display for Store {
    /// As [`Store::describe`]: no password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl fmt::Debug for Store {
    /// The backend and [`Store::describe`]: no password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .field("store", &self.describe())
            .finish()
    }
}
