//! Connecting: the connection string, the pool, TLS, and the first
//! connection that migrates or checks the schema.

use std::sync::Arc;
use std::time::Duration;

use boxhook::inbox::{ErrorKind, InboxError};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::Notify;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::Socket;

use crate::conninfo::{self, redact, ConnInfo, Roots, Security};
use crate::options::{check_schema_name, Options};
use crate::schema;
use crate::wake::listen;

/// What the inbox and the idempotency store share: the pools, and the
/// wake-up fed by the `LISTEN` connection.
pub(crate) struct Shared {
    /// Stores, claims, settles: the connections deliveries wait for.
    pub(crate) pool: Pool,
    /// `list`, `get`, `counts`: read-only, with a statement timeout.
    pub(crate) read: Pool,
    /// `prune`: one connection, holding the pruners' advisory lock.
    pub(crate) maintenance: Pool,
    pub(crate) wake: Arc<Notify>,
    /// The stores waiting for a statement, and those in flight.
    pub(crate) stores: crate::batch::Batcher,
    /// How long a store statement may go unanswered (`Options::store_timeout`).
    pub(crate) store_timeout: Duration,
    /// 0 idle, 1 a NOTIFY in flight, 2 in flight and another one wanted.
    pub(crate) notifying: Arc<std::sync::atomic::AtomicU8>,
    pub(crate) listener: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    pub(crate) start_listener:
        Box<dyn Fn(Arc<Notify>) -> tokio::task::JoinHandle<()> + Send + Sync>,
}

/// Which of [`Shared`]'s pools a connection comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    /// [`Shared::pool`].
    Write,
    /// [`Shared::read`].
    Read,
}

/// How long a store, claim, settle or read waits for a free connection when
/// all the pool's are busy: well under the 30 s Box waits for an answer, so
/// a receiver answers 503 (and Box retries) rather than nothing.
pub(crate) const POOL_WAIT: Duration = Duration::from_secs(5);

impl Shared {
    /// A connection from `which` pool, waiting at most [`POOL_WAIT`] for one
    /// to be free (the pool's own timeouts otherwise).
    pub(crate) async fn connection(
        &self,
        which: Which,
    ) -> Result<deadpool_postgres::Object, InboxError> {
        let pool = match which {
            Which::Write => &self.pool,
            Which::Read => &self.read,
        };
        let timeouts = deadpool_postgres::Timeouts {
            wait: Some(POOL_WAIT),
            ..pool.timeouts()
        };
        pool.timeout_get(&timeouts)
            .await
            .map_err(|error| no_connection(&error, pool, which))
    }

    /// The pruning connection, when no other call of this process holds it.
    pub(crate) async fn idle_maintenance(
        &self,
    ) -> Result<Option<deadpool_postgres::Object>, InboxError> {
        use deadpool_postgres::{PoolError, TimeoutType};
        let timeouts = deadpool_postgres::Timeouts {
            wait: Some(Duration::ZERO),
            ..self.maintenance.timeouts()
        };
        match self.maintenance.timeout_get(&timeouts).await {
            Ok(client) => Ok(Some(client)),
            Err(PoolError::Timeout(TimeoutType::Wait)) => Ok(None),
            Err(error) => Err(no_connection(&error, &self.maintenance, Which::Write)),
        }
    }
}

/// Why no connection came from `pool`, and what to do.
fn no_connection(error: &deadpool_postgres::PoolError, pool: &Pool, which: Which) -> InboxError {
    use deadpool_postgres::{PoolError, TimeoutType};
    let hint = match (error, which) {
        (PoolError::Timeout(TimeoutType::Wait), Which::Write) => format!(
            " (all {} connections busy for {} s: the database is slow, or the pool too small \
             for the load)",
            pool.status().max_size,
            POOL_WAIT.as_secs()
        ),
        (PoolError::Timeout(TimeoutType::Wait), Which::Read) => format!(
            " (all {} read connections busy for {} s: reads are slow or too many at once; \
             deliveries do not wait for these)",
            pool.status().max_size,
            POOL_WAIT.as_secs()
        ),
        (PoolError::Timeout(TimeoutType::Create) | PoolError::Backend(_), _) => {
            "; check that the database is up and reachable".to_owned()
        }
        _ => String::new(),
    };
    InboxError::new(
        ErrorKind::Storage,
        format!("no PostgreSQL connection: {}{hint}", crate::describe(error)),
    )
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
    let named = config.get_application_name().is_none();
    if named {
        config.application_name("boxhook");
    }
    let configs = Configs::new(config, named, options);
    let shared = match &security {
        Security::Plain => build(configs, tokio_postgres::NoTls)?,
        Security::Verified { roots, check_name } => with_tls(configs, roots, *check_name)?,
    };
    let mut client = shared
        .pool
        .get()
        .await
        .map_err(|error| cannot_connect(url, &security, &error))?;
    schema::prepare(&mut client, options.schema.as_deref(), options.migrate).await?;
    if options.migrate {
        // Partitions for the coming days, so that stores land in them rather
        // than creating one on their first event of a day. Not fatal: a store
        // creates a missing partition itself, and `prune` creates them too.
        if let Err(error) = crate::partitions::ensure_ahead(&mut client, chrono::Utc::now()).await {
            tracing::warn!(%error, "cannot create the coming days' event partitions yet");
        }
    }
    drop(client);
    Ok(shared)
}

/// The connection settings of the three pools.
struct Configs {
    pool: tokio_postgres::Config,
    read: tokio_postgres::Config,
    maintenance: tokio_postgres::Config,
    pool_size: usize,
    read_pool_size: usize,
    store_timeout: Duration,
}

impl Configs {
    /// The read pool's connections may not write, stop each statement after
    /// the read timeout, and plan each statement with its values (a filter
    /// on a rare trigger or state uses its index, which a plan made for any
    /// value may not); when boxhook names the connections, the read
    /// and pruning connections say what they are (`boxhook-read`,
    /// `boxhook-prune`) in `pg_stat_activity`.
    fn new(config: tokio_postgres::Config, named: bool, options: &Options) -> Self {
        // The pool's statements give up waiting for a lock (see
        // `Options::lock_timeout`); migrations lift it for their transaction.
        let mut pool = config.clone();
        let lock = u64::try_from(options.lock_timeout.as_millis()).unwrap_or(u64::MAX);
        let current = pool.get_options().unwrap_or_default().to_owned();
        pool.options(format!("{current} -c lock_timeout={lock}").trim());
        let mut maintenance = config.clone();
        let mut read = config;
        let timeout = u64::try_from(options.read_timeout.as_millis()).unwrap_or(u64::MAX);
        let current = read.get_options().unwrap_or_default().to_owned();
        read.options(
            format!("{current} -c statement_timeout={timeout} -c default_transaction_read_only=on")
                .trim(),
        );
        // A prune dropped half way closes its connection: the server notices
        // within a second even while the statement waits for a lock, and
        // lets the pruners' lock go.
        let current = maintenance.get_options().unwrap_or_default().to_owned();
        maintenance.options(format!("{current} -c client_connection_check_interval=1000").trim());
        if named {
            read.application_name("boxhook-read");
            maintenance.application_name("boxhook-prune");
        }
        Self {
            pool,
            read,
            maintenance,
            pool_size: options.pool_size,
            read_pool_size: options.read_pool_size,
            store_timeout: options.store_timeout,
        }
    }
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
    if let Security::Verified { roots, .. } = security
        && let Some(why) = crate::tls::explain(error, roots)
    {
        return InboxError::new(
            ErrorKind::Storage,
            format!("cannot connect to {} over TLS: {why}", redact(url)),
        );
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
fn with_tls(configs: Configs, roots: &Roots, check_name: bool) -> Result<Arc<Shared>, InboxError> {
    let tls = crate::tls::client_config(roots, check_name)?;
    build(configs, tokio_postgres_rustls::MakeRustlsConnect::new(tls))
}

#[cfg(not(feature = "tls"))]
fn with_tls(_: Configs, _: &Roots, _: bool) -> Result<Arc<Shared>, InboxError> {
    Err(InboxError::new(
        ErrorKind::Storage,
        "the connection string asks for TLS (sslmode=require, verify-ca or verify-full, or \
         sslrootcert), but this build has no TLS: build boxhook-postgres with its `tls` \
         feature, or connect without TLS on a trusted network",
    ))
}

fn build<T>(configs: Configs, tls: T) -> Result<Arc<Shared>, InboxError>
where
    T: MakeTlsConnect<Socket> + Clone + Sync + Send + 'static,
    T::Stream: Sync + Send,
    T::TlsConnect: Sync + Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let config = configs.pool.clone();
    Ok(Arc::new(Shared {
        pool: pool(configs.pool, tls.clone(), configs.pool_size)?,
        read: pool(configs.read, tls.clone(), configs.read_pool_size)?,
        maintenance: pool(configs.maintenance, tls.clone(), 1)?,
        wake: Arc::new(Notify::new()),
        stores: crate::batch::Batcher::default(),
        store_timeout: configs.store_timeout,
        notifying: Arc::new(std::sync::atomic::AtomicU8::new(0)),
        listener: std::sync::Mutex::new(None),
        start_listener: Box::new(move |wake| {
            tokio::spawn(listen(config.clone(), tls.clone(), wake))
        }),
    }))
}

fn pool<T>(config: tokio_postgres::Config, tls: T, size: usize) -> Result<Pool, InboxError>
where
    T: MakeTlsConnect<Socket> + Clone + Sync + Send + 'static,
    T::Stream: Sync + Send,
    T::TlsConnect: Sync + Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let manager = Manager::from_config(
        config,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    // `build` only fails without a runtime for the timeouts; one is given.
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(Duration::from_secs(10)))
        .wait_timeout(Some(Duration::from_secs(30)))
        .build()
        .map_err(|error| {
            InboxError::new(
                ErrorKind::Storage,
                format!("cannot build the connection pool: {error}"),
            )
        })
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
