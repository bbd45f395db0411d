//! [`OpenError`]: why a store could not be named or opened.

use std::borrow::Cow;
use std::fmt;

use boxhook::inbox::InboxError;

/// What went wrong, for a caller that answers differently: a program exits
/// with a usage status (2) for [`Usage`](Self::Usage) and
/// [`NotFound`](Self::NotFound), and with a failure (1) for
/// [`Open`](Self::Open).
///
/// ```
/// use boxhook_store::{OpenErrorKind, Store};
///
/// let err = Store::parse("mysql://db/boxhook").unwrap_err();
/// assert_eq!(err.kind(), OpenErrorKind::Usage);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpenErrorKind {
    /// The caller named something wrong: no file, an unknown scheme, a text
    /// that is neither a connection string nor a plain path, a backend this
    /// build leaves out, PostgreSQL options for a SQLite file.
    Usage,
    /// [`Store::open_existing`](crate::Store::open_existing) found no SQLite
    /// file at the path.
    NotFound,
    /// The store is named right but could not be opened, connected to or
    /// migrated ([`OpenError::inbox_error`] says why).
    Open,
}

/// Why [`Store::parse`](crate::Store::parse) refused a text, or
/// [`Store::open`](crate::Store::open) and its siblings failed. The
/// message never shows a password: a PostgreSQL store is named without
/// it, and a refused text is not echoed (only an unknown URL scheme is).
///
/// A message about the text names it "the store"; a program that took the
/// text from a flag says the flag's name instead with
/// [`named`](Self::named).
///
/// ```
/// use boxhook_store::{OpenErrorKind, Store};
///
/// let err = Store::parse("sqlite:").unwrap_err();
/// assert_eq!(err.kind(), OpenErrorKind::Usage);
/// assert_eq!(
///     err.to_string(),
///     "the store names no file; give postgres://…, host=… dbname=…, sqlite:PATH or a path"
/// );
/// assert_eq!(
///     err.named("--store").to_string(),
///     "--store names no file; give postgres://…, host=… dbname=…, sqlite:PATH or a path"
/// );
/// ```
#[derive(Debug)]
pub struct OpenError {
    kind: OpenErrorKind,
    message: Message,
    inbox_error: Option<InboxError>,
}

/// The text of an [`OpenError`].
#[derive(Debug)]
enum Message {
    /// About the text the store was named by: `{subject}{join}{rest}`.
    About {
        subject: Cow<'static, str>,
        join: &'static str,
        rest: String,
    },
    /// Whole, naming the store by its file or redacted URL.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    Whole(String),
}

/// What a message about the text calls it unless [`OpenError::named`] says
/// otherwise.
const SUBJECT: &str = "the store";

impl OpenError {
    /// A usage error about the text: `the store{join}{rest}`.
    pub(crate) fn about(join: &'static str, rest: impl Into<String>) -> Self {
        Self {
            kind: OpenErrorKind::Usage,
            message: Message::About {
                subject: Cow::Borrowed(SUBJECT),
                join,
                rest: rest.into(),
            },
            inbox_error: None,
        }
    }

    /// An error of `kind` with a whole message.
    #[cfg(feature = "sqlite")]
    pub(crate) fn new(kind: OpenErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: Message::Whole(message.into()),
            inbox_error: None,
        }
    }

    /// An [`OpenErrorKind::Open`] error: `{what}: {error}`.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn open(what: &str, error: InboxError) -> Self {
        Self {
            kind: OpenErrorKind::Open,
            message: Message::Whole(format!("{what}: {error}")),
            inbox_error: Some(error),
        }
    }

    /// What went wrong.
    ///
    /// ```
    /// use boxhook_store::{OpenErrorKind, Store};
    ///
    /// assert_eq!(Store::parse("").unwrap_err().kind(), OpenErrorKind::Usage);
    /// ```
    #[must_use]
    pub fn kind(&self) -> OpenErrorKind {
        self.kind
    }

    /// The same error, calling the text the store was named by `subject`
    /// (say, the command-line flag it came from) where the message speaks
    /// of it; other messages are unchanged.
    ///
    /// ```
    /// use boxhook_store::Store;
    ///
    /// let err = Store::parse("mysql://u:s3cret@db/boxhook").unwrap_err().named("--store");
    /// assert_eq!(
    ///     err.to_string(),
    ///     "--store: unknown scheme mysql://; give postgres://…, postgresql://…, host=… \
    ///      dbname=… (PostgreSQL), sqlite:PATH or a path (SQLite)"
    /// );
    /// ```
    #[must_use]
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "postgres")),
        allow(
            irrefutable_let_patterns,
            reason = "every message is about the text in a build without a backend"
        )
    )]
    pub fn named(mut self, subject: impl Into<String>) -> Self {
        if let Message::About { subject: named, .. } = &mut self.message {
            *named = Cow::Owned(subject.into());
        }
        self
    }

    /// The inbox's own error, when opening, connecting or migrating failed
    /// ([`OpenErrorKind::Open`]); its text ends the message already, so it
    /// is not [`source`](std::error::Error::source) too.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] {
    /// # let dir = boxhook_testkit::fs::TempDir::new("doc-inbox-error");
    /// use boxhook::inbox::ErrorKind;
    /// use boxhook_store::Store;
    ///
    /// // Not an inbox: a directory.
    /// let store = Store::sqlite(dir.path());
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let err = store.open().await.unwrap_err();
    /// assert_eq!(err.inbox_error().map(|err| err.kind()), Some(ErrorKind::Storage));
    /// # });
    /// # }
    /// ```
    #[must_use]
    pub fn inbox_error(&self) -> Option<&InboxError> {
        self.inbox_error.as_ref()
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Message::About {
                subject,
                join,
                rest,
            } => write!(f, "{subject}{join}{rest}"),
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            Message::Whole(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for OpenError {}
