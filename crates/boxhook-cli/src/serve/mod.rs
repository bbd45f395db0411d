//! `boxhook serve`: a standalone receiver built on the framework — the
//! verify layer, the router, and the SQLite inbox as its only handler — with
//! one log line per delivery and a graceful stop on SIGINT/SIGTERM.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use boxhook::inbox::StoreInInbox;
use boxhook::verify::{Rejection, Verify, DEFAULT_BODY_LIMIT};
use boxhook::{Outcome, RoutedEvent, Router, VerifyLayer};
use boxhook_core::{KeyRing, Verifier};
use boxhook_sqlite::SqliteInbox;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_layer::Layer as _;
use tower_service::Service;

use crate::keys::KeyArgs;
use crate::usage;

/// Where `serve` and `inbox` keep events unless told otherwise.
pub(crate) const DEFAULT_INBOX: &str = "./boxhook-inbox.sqlite";

/// How long in-flight deliveries may take to finish after a stop signal.
const DEFAULT_GRACE_SECS: u64 = 30;

/// How many connections are served at once unless told otherwise. With the
/// 1 MiB default body limit, this bounds buffered bodies to about 1 GiB.
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Arguments of `boxhook serve`.
#[derive(clap::Args)]
#[command(after_help = "\
Answers: 200 stored or duplicate (counted), 401 any verification failure, \
413 body over --max-body, 405 not POST, 400 a verified body that is not a \
webhook_event, 404 any other path, 500/503 the inbox failed (Box retries).

Box only delivers to HTTPS on port 443: run this behind a TLS-terminating \
proxy or tunnel that forwards the body untouched, e.g. with Caddy:
  webhooks.example.com {
      reverse_proxy 127.0.0.1:8080
  }")]
pub(crate) struct Args {
    /// Address to listen on (port 0 picks a free one; the address is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The one path deliveries are accepted on.
    #[arg(long, value_name = "P", default_value = "/")]
    path: String,
    /// The SQLite inbox file (created if missing).
    #[arg(long, value_name = "FILE", default_value = DEFAULT_INBOX)]
    inbox: PathBuf,
    /// The largest body accepted, in bytes (real payloads are 1–8 KB).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_BODY_LIMIT)]
    max_body: usize,
    /// After SIGINT/SIGTERM, how long in-flight deliveries may take, in seconds.
    #[arg(long, value_name = "S", default_value_t = DEFAULT_GRACE_SECS)]
    grace: u64,
    /// The most connections served at once; further ones wait, unaccepted,
    /// in the listen backlog. Memory for bodies stays under about
    /// --max-body × --max-connections.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: u64,
}

/// Serves until SIGINT or SIGTERM, then stops gracefully and exits 0.
pub(crate) fn run(keys: &KeyArgs, args: &Args) -> anyhow::Result<ExitCode> {
    let ring = keys.ring()?;
    if !args.path.starts_with('/') {
        return Err(usage(format!("--path {:?} must start with /", args.path)));
    }
    let inbox = SqliteInbox::open(&args.inbox)
        .map_err(|err| anyhow::anyhow!("cannot open inbox {}: {err}", args.inbox.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(args.listen)
            .await
            .map_err(|err| anyhow::anyhow!("cannot listen on {}: {err}", args.listen))?;
        let addr = listener.local_addr()?;
        let app = App::new(ring, inbox, &args.path, args.max_body)
            .max_connections(usize::try_from(args.max_connections).unwrap_or(usize::MAX))
            .log_to_stderr();
        println!("listening on http://{addr}{}", args.path);
        eprintln!("inbox: {}", args.inbox.display());
        std::io::stdout().flush()?;
        let stop = async {
            stop_signal().await;
            eprintln!("stopping: no new connections; finishing in-flight deliveries");
        };
        serve(listener, app, stop, Duration::from_secs(args.grace)).await;
        eprintln!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Accepts connections until `stop` resolves, then stops accepting and lets
/// in-flight deliveries finish, for at most `grace`.
///
/// At most `app`'s connection limit are served at once: a connection is only
/// accepted once a permit is free, and holds it until it closes, so a flood
/// of slow clients costs at most that many body buffers.
pub(crate) async fn serve(
    listener: TcpListener,
    app: App,
    stop: impl Future<Output = ()>,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(app.max_connections));
    let mut stop = std::pin::pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => {
                permit.expect("the semaphore is never closed")
            }
            () = &mut stop => break,
        };
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(err) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        eprintln!("accept failed: {err}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let app = app.clone();
                let service = hyper::service::service_fn(move |request| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(app.handle(request).await) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(30))
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                    drop(permit);
                });
            }
            () = &mut stop => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            eprintln!("in-flight deliveries still running after {} s; stopping anyway", grace.as_secs());
        }
    }
}

type Observer = Arc<dyn Fn(&DeliveryLog) + Send + Sync>;

/// The receiver: path check, then the framework's verify layer and router,
/// with every event stored in the inbox.
#[derive(Clone)]
pub(crate) struct App {
    path: Arc<str>,
    service: Verify<Router, Full<Bytes>>,
    observers: Vec<Observer>,
    max_connections: usize,
}

impl App {
    /// A receiver for `path`, verifying with `ring`, storing into `inbox`.
    pub(crate) fn new(ring: KeyRing, inbox: SqliteInbox, path: &str, max_body: usize) -> Self {
        // The inbox answers the router's duplicate check, so a retried
        // delivery is acknowledged and counted, never stored twice.
        let router = Router::new()
            .idempotency(inbox.clone())
            .fallback(StoreInInbox::new(inbox));
        let service = VerifyLayer::new(Verifier::new(ring))
            .body_limit(max_body)
            .layer(router);
        Self {
            path: path.into(),
            service,
            observers: Vec::new(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }

    /// Serves at most `n` connections at once (default
    /// [`DEFAULT_MAX_CONNECTIONS`]); `serve` accepts no more until one closes.
    pub(crate) fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.clamp(1, Semaphore::MAX_PERMITS);
        self
    }

    /// Also prints each delivery's log line on stderr.
    pub(crate) fn log_to_stderr(self) -> Self {
        self.observe(|log| eprintln!("{log}"))
    }

    /// Calls `observer` with each delivery's log, before the response goes out.
    pub(crate) fn observe(
        mut self,
        observer: impl Fn(&DeliveryLog) + Send + Sync + 'static,
    ) -> Self {
        self.observers.push(Arc::new(observer));
        self
    }

    async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let delivery_id = request
            .headers()
            .get(boxhook_core::headers::DELIVERY_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let response = if path == *self.path {
            let mut service = self.service.clone();
            match std::future::poll_fn(|cx| {
                Service::<Request<Incoming>>::poll_ready(&mut service, cx)
            })
            .await
            {
                Ok(()) => match service.call(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
                Err(never) => match never {},
            }
        } else {
            let mut response = Response::new(Full::default());
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        };
        let log = DeliveryLog::new(method, path, delivery_id, &response, started.elapsed());
        for observe in &self.observers {
            observe(&log);
        }
        response
    }
}

/// What happened to one request, for the log line and the demo.
#[derive(Debug, Clone)]
pub(crate) struct DeliveryLog {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) status: StatusCode,
    /// The router's outcome (`handled`, `duplicate`, ...), the verify
    /// layer's rejection code (`expired`, `mismatch`, ...), or `not_found`.
    pub(crate) outcome: &'static str,
    /// The rejection's detail, e.g. "timestamp is 601 s old, limit 600 s".
    pub(crate) detail: Option<String>,
    pub(crate) delivery_id: Option<String>,
    pub(crate) event: Option<RoutedEvent>,
    pub(crate) latency: Duration,
}

impl DeliveryLog {
    fn new(
        method: Method,
        path: String,
        delivery_id: Option<String>,
        response: &Response<Full<Bytes>>,
        latency: Duration,
    ) -> Self {
        let extensions = response.extensions();
        let rejection = extensions.get::<Rejection>();
        let outcome = if let Some(outcome) = extensions.get::<Outcome>() {
            outcome.as_str()
        } else if let Some(rejection) = rejection {
            rejection.code()
        } else if response.status() == StatusCode::NOT_FOUND {
            "not_found"
        } else {
            "unknown"
        };
        Self {
            method,
            path,
            status: response.status(),
            outcome,
            detail: rejection.map(|r| match r.verify_error() {
                Some(err) => err.to_string(),
                None => r.to_string(),
            }),
            delivery_id,
            event: extensions.get::<RoutedEvent>().cloned(),
            latency,
        }
    }
}

impl fmt::Display for DeliveryLog {
    /// `method path status outcome delivery_id event_id trigger latency`,
    /// `-` for what is unknown, then the rejection's detail or an alert.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let event = self.event.as_ref();
        write!(
            f,
            "{} {} {} {} delivery={} event={} trigger={} {}ms",
            self.method,
            self.path,
            self.status.as_u16(),
            self.outcome,
            self.delivery_id.as_deref().unwrap_or("-"),
            event.map_or("-", RoutedEvent::event_id),
            event.map_or("-", |e| e.trigger().as_str()),
            self.latency.as_millis(),
        )?;
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        match event.map(|e| e.trigger().as_str()) {
            Some("WEBHOOK.DELETED") => f.write_str(
                " ALERT: Box deleted this webhook; recreate it to keep receiving events",
            ),
            Some("NO_ACTIVE_SESSION") => {
                f.write_str(" ALERT: the webhook's authorization expired; re-authorize the Box app")
            }
            _ => Ok(()),
        }
    }
}
