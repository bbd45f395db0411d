//! [`AnyInbox`]: the inbox of whichever backend a [`Store`](crate::Store)
//! names, and [`Backend`].

#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres")),
    allow(
        unused_variables,
        reason = "a build without a backend has no inbox to pass arguments to"
    )
)]

use std::time::Duration;

use boxhook::inbox::{
    BatchClaims, Claimed, Counts, DeadLetters, FilteredClaims, Inbox, InboxEntry, InboxError,
    ListFilter, NewRecord, Prune, Pruned, Retention, Revive, SettleAs, Stored, StoredEvent,
};
#[cfg(feature = "postgres")]
use boxhook_postgres::PgInbox;
#[cfg(feature = "sqlite")]
use boxhook_sqlite::SqliteInbox;
use chrono::{DateTime, Utc};

/// Which backend a [`Store`](crate::Store) or an [`AnyInbox`] is. Both
/// variants exist in every build, whatever its features, so a `match` on
/// it compiles in all of them.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use boxhook_store::{Backend, Store};
///
/// let batch = match Store::parse("inbox.sqlite")?.backend() {
///     Backend::Sqlite => 500,
///     Backend::Postgres => 5_000,
/// };
/// assert_eq!(batch, 500);
/// # }
/// # Ok::<(), boxhook_store::OpenError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// A SQLite file (`boxhook-sqlite`).
    Sqlite,
    /// A PostgreSQL database (`boxhook-postgres`).
    Postgres,
}

/// The SQLite or the PostgreSQL inbox, as [`Store::open`](crate::Store::open)
/// returns it: one type that implements [`Inbox`], [`DeadLetters`],
/// [`FilteredClaims`], [`Prune`] and [`BatchClaims`] by calling the
/// backend's. Cheap to
/// clone; clones share the backend's connections.
///
/// A variant exists when its feature (`sqlite`, `postgres`) is on; the
/// enum is `#[non_exhaustive]` because another crate in a build can turn
/// one on.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// # let dir = boxhook_testkit::fs::TempDir::new("doc-any-inbox");
/// # let path = dir.file("inbox.sqlite");
/// use boxhook::inbox::{Inbox as _, ListFilter};
/// use boxhook_store::{AnyInbox, Store};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let inbox: AnyInbox = Store::sqlite(&path).open().await?;
/// assert!(inbox.list(ListFilter::default()).await.unwrap().is_empty());
/// # Ok::<(), boxhook_store::OpenError>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AnyInbox {
    /// A SQLite file.
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteInbox),
    /// A PostgreSQL database.
    #[cfg(feature = "postgres")]
    Postgres(PgInbox),
}

impl AnyInbox {
    /// Which backend it is: how to prune it, for example (SQLite in small
    /// batches, PostgreSQL in large ones).
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] {
    /// use boxhook_store::{AnyInbox, Backend};
    /// use boxhook_store::sqlite::SqliteInbox;
    ///
    /// let inbox = AnyInbox::from(SqliteInbox::in_memory().unwrap());
    /// assert_eq!(inbox.backend(), Backend::Sqlite);
    /// # }
    /// ```
    #[must_use]
    pub fn backend(&self) -> Backend {
        match *self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => Backend::Sqlite,
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// The SQLite inbox, when it is one.
    ///
    /// ```
    /// use boxhook_store::AnyInbox;
    /// use boxhook_store::sqlite::SqliteInbox;
    ///
    /// let inbox = AnyInbox::from(SqliteInbox::in_memory().unwrap());
    /// assert!(inbox.as_sqlite().is_some_and(|inbox| inbox.path().is_none()));
    /// ```
    #[cfg(feature = "sqlite")]
    #[must_use]
    pub fn as_sqlite(&self) -> Option<&SqliteInbox> {
        match *self {
            Self::Sqlite(ref inbox) => Some(inbox),
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => None,
        }
    }

    /// The PostgreSQL inbox, when it is one.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] {
    /// use boxhook_store::AnyInbox;
    /// use boxhook_store::sqlite::SqliteInbox;
    ///
    /// let inbox = AnyInbox::from(SqliteInbox::in_memory().unwrap());
    /// assert!(inbox.as_postgres().is_none());
    /// # }
    /// ```
    #[cfg(feature = "postgres")]
    #[must_use]
    pub fn as_postgres(&self) -> Option<&PgInbox> {
        match *self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => None,
            Self::Postgres(ref inbox) => Some(inbox),
        }
    }
}

#[cfg(feature = "sqlite")]
impl From<SqliteInbox> for AnyInbox {
    /// ```
    /// let inbox = boxhook_store::AnyInbox::from(boxhook_store::sqlite::SqliteInbox::in_memory().unwrap());
    /// assert_eq!(inbox.backend(), boxhook_store::Backend::Sqlite);
    /// ```
    fn from(inbox: SqliteInbox) -> Self {
        Self::Sqlite(inbox)
    }
}

#[cfg(feature = "postgres")]
impl From<PgInbox> for AnyInbox {
    /// ```no_run
    /// # async fn connect() -> Result<(), boxhook::inbox::InboxError> {
    /// let inbox = boxhook_store::postgres::PgInbox::connect("postgres://boxhook@db/boxhook").await?;
    /// assert_eq!(boxhook_store::AnyInbox::from(inbox).backend(), boxhook_store::Backend::Postgres);
    /// # Ok(())
    /// # }
    /// ```
    fn from(inbox: PgInbox) -> Self {
        Self::Postgres(inbox)
    }
}

/// Calls the backend's method on the inbox inside.
macro_rules! each {
    ($self:ident, $inbox:ident => $call:expr) => {
        match *$self {
            #[cfg(feature = "sqlite")]
            AnyInbox::Sqlite(ref $inbox) => $call.await,
            #[cfg(feature = "postgres")]
            AnyInbox::Postgres(ref $inbox) => $call.await,
        }
    };
}

impl Inbox for AnyInbox {
    async fn store(&self, record: NewRecord) -> Result<Stored, InboxError> {
        each!(self, inbox => inbox.store(record))
    }

    async fn claim_next(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Claimed>, InboxError> {
        each!(self, inbox => inbox.claim_next(worker_id, lease, now))
    }

    async fn ack(&self, claimed: &Claimed) -> Result<(), InboxError> {
        each!(self, inbox => inbox.ack(claimed))
    }

    async fn requeue(&self, claimed: &Claimed, retry_at: DateTime<Utc>) -> Result<(), InboxError> {
        each!(self, inbox => inbox.requeue(claimed, retry_at))
    }

    async fn list(&self, filter: ListFilter) -> Result<Vec<InboxEntry>, InboxError> {
        each!(self, inbox => inbox.list(filter))
    }

    async fn get(&self, event_id: &str) -> Result<Option<StoredEvent>, InboxError> {
        each!(self, inbox => inbox.get(event_id))
    }

    async fn counts(&self) -> Result<Counts, InboxError> {
        each!(self, inbox => inbox.counts())
    }

    async fn wait_for_work(&self, timeout: Duration) {
        each!(self, inbox => inbox.wait_for_work(timeout));
    }
}

impl DeadLetters for AnyInbox {
    async fn bury(&self, claimed: &Claimed) -> Result<(), InboxError> {
        each!(self, inbox => inbox.bury(claimed))
    }

    async fn revive(&self, which: Revive, now: DateTime<Utc>) -> Result<u64, InboxError> {
        each!(self, inbox => inbox.revive(which, now))
    }
}

impl FilteredClaims for AnyInbox {
    async fn claim_matching(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
        triggers: &[String],
    ) -> Result<Option<Claimed>, InboxError> {
        each!(self, inbox => inbox.claim_matching(worker_id, lease, now, triggers))
    }
}

impl BatchClaims for AnyInbox {
    async fn claim_batch(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
        triggers: &[String],
        max: usize,
    ) -> Result<Vec<Claimed>, InboxError> {
        each!(self, inbox => inbox.claim_batch(worker_id, lease, now, triggers, max))
    }

    async fn settle_batch(
        &self,
        settles: &[(Claimed, SettleAs)],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, InboxError> {
        each!(self, inbox => inbox.settle_batch(settles, now))
    }
}

impl Prune for AnyInbox {
    async fn prune(
        &self,
        retention: &Retention,
        now: DateTime<Utc>,
        batch: usize,
    ) -> Result<Pruned, InboxError> {
        each!(self, inbox => inbox.prune(retention, now, batch))
    }
}
