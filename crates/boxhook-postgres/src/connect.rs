//! Parsing the URL, the pool, TLS, and the `LISTEN` connection.

use std::sync::Arc;
use std::time::Duration;

use boxhook::inbox::{ErrorKind, InboxError};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::Notify;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Socket};

use crate::conninfo::{self, redact, ConnInfo, Roots, Security};
use crate::schema;

/// The channel stores and requeues notify, and idle workers listen on.
pub(crate) const CHANNEL: &str = "boxhook_events";

/// How long a worker's `LISTEN` connection waits before reconnecting.
const RECONNECT: Duration = Duration::from_secs(1);

/// How to connect: pool size, schema, whether to migrate at start, which
/// CA certificates to trust for TLS.
///
/// ```
/// use boxhook_postgres::Options;
/// let options = Options::default().pool_size(4).schema("boxhook").migrate(false);
/// assert_eq!(options.pool_size_value(), 4);
/// assert_eq!(
///     format!("{:?}", options.root_certificates_pem("-----BEGIN CERTIFICATE-----")),
///     "Options { pool_size: 4, schema: Some(\"boxhook\"), migrate: false, \
///      root_certificates: Some(\"27 bytes of PEM\") }"
/// );
/// ```
#[derive(Clone)]
pub struct Options {
    pool_size: usize,
    schema: Option<String>,
    migrate: bool,
    root_certificates: Option<Arc<[u8]>>,
}

impl std::fmt::Debug for Options {
    /// The fields, with the root certificates as their size.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("pool_size", &self.pool_size)
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
    /// 16 connections, the connection's default schema (`public`), and the
    /// schema migrated at start.
    fn default() -> Self {
        Self {
            pool_size: 16,
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

/// What the inbox and the idempotency store share: the pool, and the
/// wake-up fed by the `LISTEN` connection.
pub(crate) struct Shared {
    pub(crate) pool: Pool,
    pub(crate) wake: Arc<Notify>,
    /// 0 idle, 1 a NOTIFY in flight, 2 in flight and another one wanted.
    notifying: Arc<std::sync::atomic::AtomicU8>,
    listener: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    start_listener: Box<dyn Fn(Arc<Notify>) -> tokio::task::JoinHandle<()> + Send + Sync>,
}

impl Shared {
    /// Tells the idle workers of every process that an event is ready:
    /// `NOTIFY` in a transaction of its own, after the caller's COMMIT,
    /// from a background task (the caller does not wait). At most one is
    /// in flight per process; requests meanwhile are folded into one more.
    pub(crate) fn notify_ready(&self) {
        use std::sync::atomic::Ordering;
        if self.notifying.fetch_add(1, Ordering::AcqRel) > 0 {
            // One is in flight: make sure one more follows it, no more.
            self.notifying.store(2, Ordering::Release);
            return;
        }
        let pool = self.pool.clone();
        let notifying = Arc::clone(&self.notifying);
        tokio::spawn(async move {
            loop {
                if let Ok(client) = pool.get().await {
                    if let Err(error) = client.batch_execute(&format!("NOTIFY {CHANNEL}")).await {
                        tracing::debug!(%error, "NOTIFY failed; workers will poll");
                    }
                }
                // 1 → 0: done. 2 → 1: someone asked meanwhile, go again.
                if notifying.fetch_sub(1, Ordering::AcqRel) == 1 {
                    return;
                }
                notifying.store(1, Ordering::Release);
            }
        });
    }

    /// Starts the `LISTEN` connection, once, on first use.
    pub(crate) fn ensure_listening(&self) {
        let mut listener = self
            .listener
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if listener
            .as_ref()
            .is_none_or(tokio::task::JoinHandle::is_finished)
        {
            *listener = Some((self.start_listener)(Arc::clone(&self.wake)));
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(listener) = self
            .listener
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            listener.abort();
        }
    }
}

/// Refuses a schema name that is not a plain lower-case identifier: it goes
/// unquoted into the connection's `-c search_path=…` (where a space would
/// start another setting, and PostgreSQL folds upper case to lower, away
/// from the quoted name the schema is created with).
fn check_schema_name(schema: &str) -> Result<(), InboxError> {
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

/// Connects a pool to `url`, checks the database is reachable, and
/// migrates (or checks) the schema.
pub(crate) async fn connect(url: &str, options: &Options) -> Result<Arc<Shared>, InboxError> {
    let ConnInfo {
        mut config,
        security,
    } = conninfo::parse(url, options.root_certificates.as_ref())?;
    if let Some(schema) = &options.schema {
        check_schema_name(schema)?;
        let current = config.get_options().unwrap_or_default().to_owned();
        config.options(format!("{current} -c search_path={schema}").trim());
    }
    if config.get_application_name().is_none() {
        config.application_name("boxhook");
    }
    let shared = match &security {
        Security::Plain => build(config, tokio_postgres::NoTls, options.pool_size)?,
        Security::Verified { roots, check_name } => {
            with_tls(config, roots, *check_name, options.pool_size)?
        }
    };
    let mut client = shared
        .pool
        .get()
        .await
        .map_err(|error| cannot_connect(url, &security, &error))?;
    schema::prepare(&mut client, options.schema.as_deref(), options.migrate).await?;
    drop(client);
    Ok(shared)
}

/// Why the first connection failed, and what to do.
#[cfg_attr(
    not(feature = "tls"),
    allow(unused_variables, reason = "only TLS failures are explained")
)]
fn cannot_connect(
    url: &str,
    security: &Security,
    error: &(dyn std::error::Error + 'static),
) -> InboxError {
    #[cfg(feature = "tls")]
    if let Security::Verified { roots, .. } = security {
        if let Some(why) = crate::tls::explain(error, roots) {
            return InboxError::new(
                ErrorKind::Storage,
                format!("cannot connect to {} over TLS: {why}", redact(url)),
            );
        }
    }
    InboxError::new(
        ErrorKind::Storage,
        format!(
            "cannot connect to {}: {}; check that the server runs, the host, port, \
             user and password, and sslmode",
            redact(url),
            crate::describe(error)
        ),
    )
}

#[cfg(feature = "tls")]
fn with_tls(
    config: tokio_postgres::Config,
    roots: &Roots,
    check_name: bool,
    size: usize,
) -> Result<Arc<Shared>, InboxError> {
    let tls = crate::tls::client_config(roots, check_name)?;
    build(
        config,
        tokio_postgres_rustls::MakeRustlsConnect::new(tls),
        size,
    )
}

#[cfg(not(feature = "tls"))]
fn with_tls(
    _: tokio_postgres::Config,
    _: &Roots,
    _: bool,
    _: usize,
) -> Result<Arc<Shared>, InboxError> {
    Err(InboxError::new(
        ErrorKind::Storage,
        "the connection string asks for TLS (sslmode=require, verify-ca or verify-full, or \
         sslrootcert), but this build has no TLS: build boxhook-postgres with its `tls` \
         feature, or connect without TLS on a trusted network",
    ))
}

fn build<T>(config: tokio_postgres::Config, tls: T, size: usize) -> Result<Arc<Shared>, InboxError>
where
    T: MakeTlsConnect<Socket> + Clone + Sync + Send + 'static,
    T::Stream: Sync + Send,
    T::TlsConnect: Sync + Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let manager = Manager::from_config(
        config.clone(),
        tls.clone(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(Duration::from_secs(10)))
        .wait_timeout(Some(Duration::from_secs(30)))
        .build();
    // `build` only fails without a runtime for the timeouts; one is given.
    let pool = pool.map_err(|error| {
        InboxError::new(
            ErrorKind::Storage,
            format!("cannot build the connection pool: {error}"),
        )
    })?;
    Ok(Arc::new(Shared {
        pool,
        wake: Arc::new(Notify::new()),
        notifying: Arc::new(std::sync::atomic::AtomicU8::new(0)),
        listener: std::sync::Mutex::new(None),
        start_listener: Box::new(move |wake| {
            tokio::spawn(listen(config.clone(), tls.clone(), wake))
        }),
    }))
}

/// Holds a connection that `LISTEN`s on [`CHANNEL`], waking `wake` on each
/// notification (and once on every reconnect, for what was missed).
async fn listen<T>(config: tokio_postgres::Config, tls: T, wake: Arc<Notify>)
where
    T: MakeTlsConnect<Socket> + Clone + Sync + Send + 'static,
    T::Stream: Sync + Send,
    T::TlsConnect: Sync + Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    // Whether the connection was lost: its loss (or the first failure to
    // open it) is a warning, the retries every second after it are debug
    // lines, and the reconnect is said once.
    let mut lost = false;
    loop {
        match config.connect(tls.clone()).await {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    while let Some(message) =
                        std::future::poll_fn(|cx| connection.poll_message(cx)).await
                    {
                        match message {
                            Ok(AsyncMessage::Notification(_)) => {
                                if tx.send(()).is_err() {
                                    return;
                                }
                            }
                            Ok(_) => {}
                            Err(error) => {
                                let error = crate::describe(&error);
                                tracing::warn!(%error, "PostgreSQL LISTEN connection failed");
                                return;
                            }
                        }
                    }
                });
                if client
                    .batch_execute(&format!("LISTEN {CHANNEL}"))
                    .await
                    .is_ok()
                {
                    if std::mem::take(&mut lost) {
                        tracing::warn!("PostgreSQL LISTEN connection open again");
                    }
                    wake_all(&wake);
                    while rx.recv().await.is_some() {
                        wake_all(&wake);
                    }
                }
                // The driver said why (a warning); the reconnects are quiet.
                lost = true;
                driver.abort();
            }
            Err(error) => {
                let error = crate::describe(&error);
                if std::mem::replace(&mut lost, true) {
                    tracing::debug!(%error, "cannot open the PostgreSQL LISTEN connection yet");
                } else {
                    tracing::warn!(
                        %error,
                        "cannot open the PostgreSQL LISTEN connection; workers poll meanwhile, \
                         retrying every second"
                    );
                }
            }
        }
        tokio::time::sleep(RECONNECT).await;
    }
}

/// Wakes every idle worker, and the next one to wait if none is waiting.
fn wake_all(wake: &Notify) {
    wake.notify_waiters();
    wake.notify_one();
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

#[cfg(all(test, not(feature = "tls")))]
mod without_tls {
    #[tokio::test]
    async fn sslmode_require_is_refused_rather_than_sent_in_plain_text() {
        let error = super::connect(
            "postgres://u:pw@127.0.0.1:1/db?sslmode=require",
            &super::Options::default(),
        )
        .await
        .err()
        .expect("refused");
        assert_eq!(error.kind(), boxhook::inbox::ErrorKind::Storage);
        assert_eq!(
            error.to_string(),
            "inbox storage failed: the connection string asks for TLS (sslmode=require, \
             verify-ca or verify-full, or sslrootcert), but this build has no TLS: build \
             boxhook-postgres with its `tls` feature, or connect without TLS on a trusted \
             network"
        );
    }
}
