//! [`InboxError`]: why an inbox could not answer.

use std::error::Error as StdError;
use std::fmt;

/// What kind of failure an [`InboxError`] is.
///
/// ```
/// use boxhook::inbox::{ErrorKind, InboxError};
///
/// let err = InboxError::new(ErrorKind::LeaseLost, "event 4133/e-1 was claimed again");
/// assert_eq!(err.kind(), ErrorKind::LeaseLost);
/// assert!(err.is_lease_lost());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The storage failed (I/O, a locked or full database, a failed commit).
    /// Nothing was stored; retrying later may succeed.
    Storage,
    /// The inbox is shut down or its worker thread is gone.
    Closed,
    /// An `ack` or `requeue` of a claim the caller no longer holds: its lease
    /// ran out and another worker claimed the event, or it was settled
    /// already.
    LeaseLost,
    /// Stored data could not be read back (an out-of-range timestamp, a
    /// schema newer than this code).
    Corrupt,
    /// The inbox does not implement this operation (an inbox written before
    /// dead letters and trigger-filtered claims; the SQLite and PostgreSQL
    /// inboxes implement everything).
    Unsupported,
}

impl ErrorKind {
    /// A stable snake-case name, for logs and metrics.
    ///
    /// ```
    /// assert_eq!(boxhook::inbox::ErrorKind::LeaseLost.as_str(), "lease_lost");
    /// ```
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Storage => "storage",
            Self::Closed => "closed",
            Self::LeaseLost => "lease_lost",
            Self::Corrupt => "corrupt",
            Self::Unsupported => "unsupported",
        }
    }

    const fn describe(self) -> &'static str {
        match self {
            Self::Storage => "inbox storage failed",
            Self::Closed => "inbox is closed",
            Self::LeaseLost => "inbox claim is no longer held",
            Self::Corrupt => "inbox data is unreadable",
            Self::Unsupported => "inbox cannot do this",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An [`Inbox`](super::Inbox) could not do what was asked.
///
/// Opaque, with a [`kind`](Self::kind); the backend's own error is the
/// [`source`](StdError::source).
///
/// ```
/// use boxhook::inbox::{ErrorKind, InboxError};
///
/// let err = InboxError::new(ErrorKind::Storage, "disk I/O error");
/// assert_eq!(err.to_string(), "inbox storage failed: disk I/O error");
/// assert!(!err.is_lease_lost());
/// ```
pub struct InboxError {
    kind: ErrorKind,
    source: Box<dyn StdError + Send + Sync>,
}

impl InboxError {
    /// An error of `kind`, caused by `source` (the backend's error or a
    /// message).
    pub fn new(kind: ErrorKind, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            kind,
            source: source.into(),
        }
    }

    /// What kind of failure this is.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether the claim was lost (see [`ErrorKind::LeaseLost`]).
    #[must_use]
    pub fn is_lease_lost(&self) -> bool {
        self.kind == ErrorKind::LeaseLost
    }
}

impl fmt::Debug for InboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboxError")
            .field("kind", &self.kind)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for InboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.describe(), self.source)
    }
}

impl StdError for InboxError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}
