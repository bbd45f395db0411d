//! Helpers the examples share: reading keys from the environment and
//! serving a tower service with hyper until Ctrl-C.

use std::convert::Infallible;
use std::net::SocketAddr;

use boxhook::{KeyError, KeyRing};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;

/// The key ring from `BOX_PRIMARY_KEY` / `BOX_SECONDARY_KEY` (either may be
/// unset, not both).
///
/// ```no_run
/// let keys = boxhook_examples::keys_from_env()?;
/// # Ok::<(), boxhook::KeyError>(())
/// ```
pub fn keys_from_env() -> Result<KeyRing, KeyError> {
    let primary = std::env::var("BOX_PRIMARY_KEY").ok();
    let secondary = std::env::var("BOX_SECONDARY_KEY").ok();
    KeyRing::from_strs(primary.as_deref(), secondary.as_deref())
}

/// Logs to stderr; `RUST_LOG=boxhook=debug` shows every verification.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Serves `service` over HTTP/1.1 on `addr` until Ctrl-C, one task per
/// connection. Plain HTTP: put a TLS-terminating proxy in front (Box only
/// delivers to HTTPS on port 443).
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// let service = boxhook::VerifyLayer::new(boxhook::Verifier::new(boxhook_examples::keys_from_env().unwrap()));
/// # let service = boxhook::Layer::layer(&service, boxhook::Router::new());
/// boxhook_examples::serve("127.0.0.1:8080".parse().unwrap(), service).await
/// # }
/// ```
pub async fn serve<S, B>(addr: SocketAddr, service: S) -> std::io::Result<()>
where
    S: tower_service::Service<
            http::Request<Incoming>,
            Response = http::Response<B>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("listening on http://{}/", listener.local_addr()?);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                let service = TowerToHyperService::new(service.clone());
                tokio::spawn(async move {
                    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                    if let Err(error) = conn.await {
                        eprintln!("connection error: {error}");
                    }
                });
            }
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}
