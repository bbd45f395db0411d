//! [`Options`]: how to connect (pool sizes, schema, migrations, trusted CAs).

use std::sync::Arc;
use std::time::Duration;

use boxhook::inbox::{ErrorKind, InboxError};

/// How to connect: pool sizes, schema, whether to migrate at start, which
/// CA certificates to trust for TLS.
///
/// An inbox holds three sets of connections, so that no kind of work waits
/// for a connection another kind holds:
///
/// - the pool ([`pool_size`](Self::pool_size), 16 by default) for stores,
///   claims and settles, whose statements wait for a row lock at most
///   [`lock_timeout`](Self::lock_timeout) (2 s by default);
/// - the read pool ([`read_pool_size`](Self::read_pool_size), 2 by default)
///   for `list`, `get` and `counts`, whose statements are cancelled after
///   [`read_timeout`](Self::read_timeout) (5 s by default) and may not
///   write: a burst of admin or CLI reads queues there, never in front of
///   a delivery's store;
/// - one connection for pruning, opened on the first `prune`.
///
/// Each is opened on first use; a receiver that never reads holds no read
/// connection.
///
/// ```
/// use std::time::Duration;
/// use boxhook_postgres::Options;
/// let options = Options::default().pool_size(4).schema("boxhook").migrate(false);
/// assert_eq!(options.pool_size_value(), 4);
/// assert_eq!(
///     format!("{:?}", options.root_certificates_pem("-----BEGIN CERTIFICATE-----")),
///     "Options { pool_size: 4, read_pool_size: 2, read_timeout: 5s, lock_timeout: 2s, \
///      store_timeout: 20s, schema: Some(\"boxhook\"), migrate: false, \
///      root_certificates: Some(\"27 bytes of PEM\") }"
/// );
/// let reads = Options::default().read_pool_size(1).read_timeout(Duration::from_millis(1500));
/// assert_eq!((reads.read_pool_size_value(), reads.read_timeout_value()), (1, Duration::from_millis(1500)));
/// ```
#[derive(Clone)]
pub struct Options {
    pub(crate) pool_size: usize,
    pub(crate) read_pool_size: usize,
    pub(crate) read_timeout: Duration,
    pub(crate) lock_timeout: Duration,
    pub(crate) store_timeout: Duration,
    pub(crate) schema: Option<String>,
    pub(crate) migrate: bool,
    pub(crate) root_certificates: Option<Arc<[u8]>>,
}

impl std::fmt::Debug for Options {
    /// The fields, with the root certificates as their size.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("pool_size", &self.pool_size)
            .field("read_pool_size", &self.read_pool_size)
            .field("read_timeout", &format_args!("{:?}", self.read_timeout))
            .field("lock_timeout", &format_args!("{:?}", self.lock_timeout))
            .field("store_timeout", &format_args!("{:?}", self.store_timeout))
            .field("schema", &self.schema)
            .field("migrate", &self.migrate)
            .field(
                "root_certificates",
                &self
                    .root_certificates
                    .as_ref()
                    .map(|pem| format!("{} bytes of PEM", pem.len())),
            )
            .finish()
    }
}

impl Default for Options {
    /// 16 connections whose statements wait at most 2 s for a row lock, 2
    /// read connections whose statements stop after 5 s, the connection's
    /// default schema (`public`), and the schema migrated at start.
    fn default() -> Self {
        Self {
            pool_size: 16,
            read_pool_size: 2,
            read_timeout: Duration::from_secs(5),
            lock_timeout: Duration::from_secs(2),
            store_timeout: Duration::from_secs(20),
            schema: None,
            migrate: true,
            root_certificates: None,
        }
    }
}

impl Options {
    /// The most connections the pool holds (at least 1).
    #[must_use]
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// The pool size set.
    #[must_use]
    pub fn pool_size_value(&self) -> usize {
        self.pool_size
    }

    /// The most connections the read pool holds (at least 1): those `list`,
    /// `get` and `counts` use, apart from the pool that stores deliveries.
    #[must_use]
    pub fn read_pool_size(mut self, size: usize) -> Self {
        self.read_pool_size = size.max(1);
        self
    }

    /// The read pool size set.
    #[must_use]
    pub fn read_pool_size_value(&self) -> usize {
        self.read_pool_size
    }

    /// How long one read (`list`, `get`, `counts`) may run before the
    /// server cancels it (`statement_timeout`), at least 1 ms. Raise it for
    /// `list` calls without a limit on a big inbox; page with
    /// [`ListFilter::before`](boxhook::inbox::ListFilter::before) instead
    /// where you can.
    #[must_use]
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The read timeout set.
    #[must_use]
    pub fn read_timeout_value(&self) -> Duration {
        self.read_timeout
    }

    /// How long a statement of the pool (a store, a claim, a settle) waits
    /// for a lock another transaction holds before it fails
    /// (`lock_timeout`), at least 1 ms; 2 s by default.
    ///
    /// Concurrent deliveries share store statements (group commit), so a
    /// row lock held elsewhere (an operator's open transaction on
    /// `event_keys`, say) would otherwise stall every delivery queued behind
    /// the statement that waits for it. With the timeout, that statement
    /// fails, its deliveries are stored again one by one, and only the
    /// delivery of the locked event fails (its sender retries it). A
    /// migration waits for the migration lock as long as it takes.
    ///
    /// ```
    /// use std::time::Duration;
    /// use boxhook_postgres::Options;
    /// let options = Options::default().lock_timeout(Duration::from_millis(500));
    /// assert_eq!(options.lock_timeout_value(), Duration::from_millis(500));
    /// assert_eq!(Options::default().lock_timeout(Duration::ZERO).lock_timeout_value(), Duration::from_millis(1));
    /// ```
    #[must_use]
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The lock timeout set.
    #[must_use]
    pub fn lock_timeout_value(&self) -> Duration {
        self.lock_timeout
    }

    /// How long a store statement may go without an answer from the
    /// server before the inbox gives up on it, at least 1 ms; 20 s by
    /// default (under a receiver's 25 s handler deadline, and Box's 30 s).
    ///
    /// A connection that neither answers nor closes (a network path that
    /// drops packets, a stalled proxy) would otherwise hold one of the two
    /// store statements in flight until TCP gives up, minutes later, and
    /// with both held every delivery waits in the queue and fails. At the
    /// timeout the statement's deliveries fail (each may or may not be
    /// stored: the sender's retry is counted as a duplicate if it was),
    /// the connection is closed rather than returned to the pool, and the
    /// next statement takes a fresh one.
    ///
    /// ```
    /// use std::time::Duration;
    /// use boxhook_postgres::Options;
    /// let options = Options::default().store_timeout(Duration::from_secs(10));
    /// assert_eq!(options.store_timeout_value(), Duration::from_secs(10));
    /// assert_eq!(Options::default().store_timeout_value(), Duration::from_secs(20));
    /// ```
    #[must_use]
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The store timeout set.
    #[must_use]
    pub fn store_timeout_value(&self) -> Duration {
        self.store_timeout
    }

    /// Keeps boxhook's tables in this schema (created if missing), by
    /// setting `search_path` on every connection: several inboxes can share
    /// one database. The name must be a plain lower-case identifier
    /// (letters, digits, `_`; at most 63): connecting refuses any other.
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Whether to apply pending migrations at start (default yes); when
    /// not, a database whose schema is not current is refused.
    #[must_use]
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// Trusts these CA certificates (PEM, one or more `-----BEGIN
    /// CERTIFICATE-----` blocks) instead of the Mozilla root store: your
    /// database provider's CA bundle, as `sslrootcert=PATH` gives it in
    /// the URL (give one or the other, not both). Unless the URL says
    /// otherwise, this also turns TLS on with `sslmode=verify-full`. Needs
    /// the `tls` feature; the certificates are parsed when connecting.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), boxhook::inbox::InboxError> {
    /// use boxhook_postgres::{Options, PgInbox};
    /// // e.g. the region bundle of a managed database, shipped with the app
    /// let ca = std::fs::read("/etc/boxhook/db-ca.pem").expect("the CA bundle");
    /// let options = Options::default().root_certificates_pem(ca);
    /// let inbox =
    ///     PgInbox::connect_with("postgres://boxhook@db.example.com/boxhook", &options).await?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates = Some(pem.into().into());
        self
    }
}

/// Refuses a schema name that is not a plain lower-case identifier: it goes
/// unquoted into the connection's `-c search_path=…` (where a space would
/// start another setting, and PostgreSQL folds upper case to lower, away
/// from the quoted name the schema is created with).
pub(crate) fn check_schema_name(schema: &str) -> Result<(), InboxError> {
    let mut chars = schema.chars();
    let plain = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && schema.len() <= 63;
    if plain {
        return Ok(());
    }
    Err(InboxError::new(
        ErrorKind::Storage,
        format!(
            "schema name {schema:?} is not a plain identifier: use lower-case letters, digits \
             and underscores, at most 63, not starting with a digit (e.g. boxhook)"
        ),
    ))
}

#[cfg(test)]
mod schema_names {
    #[test]
    fn only_plain_lower_case_identifiers_are_schema_names() {
        let cases = [
            ("boxhook", true),
            ("_b0x_hook", true),
            (&"a".repeat(63)[..], true),
            (&"a".repeat(64)[..], false),
            ("", false),
            ("0box", false),
            ("Boxhook", false),
            ("box hook", false),
            ("box -c fsync=off", false),
            ("box\"hook", false),
            ("bóx", false),
            ("box-hook", false),
        ];
        for (name, ok) in cases {
            let got = super::check_schema_name(name);
            assert_eq!(got.is_ok(), ok, "{name:?}");
            if let Err(error) = got {
                assert_eq!(error.kind(), boxhook::inbox::ErrorKind::Storage);
                assert!(
                    error.to_string().contains("is not a plain identifier"),
                    "{error}"
                );
            }
        }
    }
}
