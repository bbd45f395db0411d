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

/// What the inbox and the idempotency store share: the pool, and the
/// wake-up fed by the `LISTEN` connection.
pub(crate) struct Shared {
    pub(crate) pool: Pool,
    pub(crate) wake: Arc<Notify>,
    /// 0 idle, 1 a NOTIFY in flight, 2 in flight and another one wanted.
    pub(crate) notifying: Arc<std::sync::atomic::AtomicU8>,
    pub(crate) listener: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    pub(crate) start_listener:
        Box<dyn Fn(Arc<Notify>) -> tokio::task::JoinHandle<()> + Send + Sync>,
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
