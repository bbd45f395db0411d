//! Serve any tower service over HTTP/1.1 with bounded connections: request
//! head, idle and age deadlines, a request cap per connection, a connection
//! cap that sheds the oldest idle connection, and one body budget for all
//! requests (feature `server`).
//!
//! [`serve`] takes a [`TcpListener`] and a service (an [`axum::Router`], a
//! [`VerifyLayer`](crate::VerifyLayer) around a [`Router`](crate::Router), or any
//! `Service<Request<Incoming>>` that is `Clone + Send`) and returns a
//! [`Server`] to configure and `.await`:
//!
//! ```no_run
//! use boxhook::{KeyRing, Layer as _, Router, Verifier, VerifyLayer};
//!
//! # async fn example(stop: tokio::sync::oneshot::Receiver<()>) -> Result<(), Box<dyn std::error::Error>> {
//! let keys = KeyRing::from_strs(Some("primary-key"), Some("secondary-key"))?;
//! let webhooks = VerifyLayer::new(Verifier::new(keys)).layer(Router::new());
//! let app = axum::Router::new().route_service("/box/webhooks", webhooks);
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! boxhook::server::serve(listener, app)
//!     // Stops on a signal: here a channel; `tokio::signal::ctrl_c()` in a binary.
//!     .with_graceful_shutdown(async move {
//!         let _ = stop.await;
//!     })
//!     .await;
//! # Ok(())
//! # }
//! ```
//!
//! [`axum::Router`]: https://docs.rs/axum/0.8/axum/struct.Router.html
//!
//! # Connections
//!
//! A connection is *busy* while a request is in flight: from the moment its
//! head has been read and handed to the service until the service answers.
//! Otherwise it is *idle*: waiting for or reading a request head, or writing
//! out an answer already made. Only idle connections are ever cut short
//! ([`Limits`] holds the numbers):
//!
//! - at the connection limit (`max_connections`), a new connection is
//!   still accepted, and the oldest idle connection is closed to make
//!   room; only when every connection is busy, or idle but new (see
//!   [`SHED_GRACE`]), does a new one wait in the listen backlog;
//! - a connection idle for `idle_timeout` is closed, as is one that has not
//!   sent a complete request head within `header_timeout` (counted from
//!   when the connection is accepted and after each answer);
//! - a connection older than `max_age`, or that has made `max_requests`
//!   requests, closes once its request in flight (if any) is answered;
//! - every answer other than a 2xx closes its connection (`Connection:
//!   close`);
//! - each connection buffers at most [`MAX_BUF_SIZE`] bytes of what it
//!   reads (a request head must fit in it);
//! - on shutdown ([`Server::with_graceful_shutdown`]) the listener closes,
//!   idle connections close at once, busy ones after their answer; those
//!   still busy after the grace ([`Server::grace`]) are dropped.
//!
//! A service error (or a panic) closes its connection without an answer,
//! as hyper does; boxhook's own services never fail, they answer.
//!
//! # One body budget for every request
//!
//! The server puts one shared [`BodyBudget`] (default
//! [`DEFAULT_BODY_BUDGET`], 64 MiB; see [`Server::body_budget`]) into each
//! request's extensions. A [`VerifyLayer`](crate::VerifyLayer) with no budget of its own
//! ([`VerifyLayer::body_budget`](crate::VerifyLayer::body_budget)) takes that one, so every body it buffers,
//! over every connection, counts against it: a delivery that does not fit
//! is answered 503 at once, which Box retries. An app written as above
//! therefore holds at most the budget in bodies whatever the number of
//! connections, with no code for it. A layer's own budget wins over the
//! server's; [`Server::without_body_budget`] puts none in.
//!
//! # Notices
//!
//! Two events are worth an operator's attention: an accept that failed (out
//! of file descriptors, say; the server waits 50 ms and goes on) and a grace
//! that ran out with requests still in flight. Each is a [`Notice`], logged
//! with `tracing` at `WARN` (target `boxhook::server`), or handed to the
//! hook set with [`Server::on_notice`] instead.
#![cfg_attr(feature = "server-tls", doc = "")]
#![cfg_attr(feature = "server-tls", doc = include_str!("tls.md"))]

mod conn;
mod limits;
mod notice;
#[cfg(feature = "server-tls")]
mod tls;
mod tracker;

#[cfg(test)]
mod tests;
#[cfg(all(test, feature = "server-tls"))]
mod tls_tests;

use std::error::Error as StdError;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower_service::Service;

pub use limits::{
    Limits, DEFAULT_BODY_BUDGET, DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_AGE,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_REQUESTS, MAX_BUF_SIZE, SHED_GRACE,
};

pub use notice::Notice;

#[cfg(feature = "server-tls")]
pub use tls::{
    CertError, ReloadableCert, Tls, TlsPolicy, ACME_TLS_ALPN, DEFAULT_HANDSHAKE_TIMEOUT,
};

use tracker::{Conn, Registered, Room, Tracker};

use crate::verify::BodyBudget;

/// How long requests in flight may take to finish after a shutdown signal,
/// unless told otherwise: 30 s, as long as Box waits for an answer.
///
/// ```
/// assert_eq!(boxhook::server::DEFAULT_GRACE.as_secs(), 30);
/// ```
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// How long to wait after a failed accept before the next one.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

type NoticeHook = Arc<dyn Fn(&Notice) + Send + Sync>;

/// A server for one service on one listener, configured by its methods and
/// run by `.await` (or [`Server::run`]); made by [`serve`].
///
/// It runs until its shutdown signal ([`Server::with_graceful_shutdown`];
/// none by default: it runs until dropped).
///
/// ```no_run
/// use std::time::Duration;
/// use boxhook::server::{Limits, Server};
/// use boxhook::verify::BodyBudget;
///
/// # async fn example(app: axum::Router, stop: tokio::sync::oneshot::Receiver<()>) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// Server::new(listener, app)
///     .limits(Limits { max_connections: 256, ..Limits::DEFAULT })
///     .body_budget(BodyBudget::new(16 * 1024 * 1024))
///     .grace(Duration::from_secs(10))
///     .on_notice(|notice| eprintln!("WARN {notice}"))
///     .with_graceful_shutdown(async move {
///         let _ = stop.await;
///     })
///     .await;
/// # Ok(())
/// # }
/// ```
#[must_use = "a server does nothing until awaited"]
pub struct Server<S> {
    listener: TcpListener,
    service: S,
    limits: Limits,
    budget: Option<BodyBudget>,
    grace: Duration,
    on_notice: Option<NoticeHook>,
    #[cfg(feature = "server-tls")]
    tls: Option<Tls>,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
}

/// Serves `service` on `listener` with the default [`Limits`], a
/// [`DEFAULT_BODY_BUDGET`] body budget and a [`DEFAULT_GRACE`]; `.await`
/// the [`Server`] it returns to run it.
///
/// ```no_run
/// # async fn example(app: axum::Router) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// boxhook::server::serve(listener, app).await;
/// # Ok(())
/// # }
/// ```
pub fn serve<S>(listener: TcpListener, service: S) -> Server<S> {
    Server::new(listener, service)
}

impl<S> Server<S> {
    /// The same as [`serve`].
    ///
    /// ```no_run
    /// # async fn example(app: axum::Router) -> std::io::Result<()> {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let server = boxhook::server::Server::new(listener, app);
    /// # let _ = server;
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(listener: TcpListener, service: S) -> Self {
        Self {
            listener,
            service,
            limits: Limits::DEFAULT,
            budget: Some(BodyBudget::new(DEFAULT_BODY_BUDGET)),
            grace: DEFAULT_GRACE,
            on_notice: None,
            #[cfg(feature = "server-tls")]
            tls: None,
            shutdown: Box::pin(std::future::pending()),
        }
    }

    /// Holds connections within `limits` (default [`Limits::DEFAULT`]); a
    /// `max_connections` or `max_requests` of 0 is taken as 1.
    ///
    /// ```no_run
    /// use boxhook::server::{serve, Limits};
    ///
    /// # async fn example(listener: tokio::net::TcpListener, app: axum::Router) {
    /// serve(listener, app).limits(Limits { max_requests: 100, ..Limits::DEFAULT }).await;
    /// # }
    /// ```
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits.at_least_one();
        self
    }

    /// Puts `budget` into every request's extensions (default: a budget of
    /// [`DEFAULT_BODY_BUDGET`] bytes), for the [`VerifyLayer`](crate::VerifyLayer)s behind the
    /// server that have none of their own; see the
    /// [module docs](self#one-body-budget-for-every-request). Keep a clone
    /// to watch it.
    ///
    /// ```no_run
    /// use boxhook::verify::BodyBudget;
    ///
    /// # async fn example(listener: tokio::net::TcpListener, app: axum::Router) {
    /// let budget = BodyBudget::new(8 * 1024 * 1024);
    /// let watched = budget.clone();
    /// let server = tokio::spawn(boxhook::server::serve(listener, app).body_budget(budget).run());
    /// println!("{} body bytes held", watched.in_use());
    /// # let _ = server;
    /// # }
    /// ```
    pub fn body_budget(mut self, budget: BodyBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Puts no body budget into the requests' extensions: only the
    /// [`VerifyLayer`](crate::VerifyLayer)s' own budgets (if any) bound their bodies.
    ///
    /// ```no_run
    /// # async fn example(listener: tokio::net::TcpListener, app: axum::Router) {
    /// boxhook::server::serve(listener, app).without_body_budget().await;
    /// # }
    /// ```
    pub fn without_body_budget(mut self) -> Self {
        self.budget = None;
        self
    }

    /// How long requests in flight may take to finish after the shutdown
    /// signal (default [`DEFAULT_GRACE`]); then their connections are
    /// closed, with a [`Notice::GraceExpired`].
    ///
    /// ```no_run
    /// use std::time::Duration;
    ///
    /// # async fn example(listener: tokio::net::TcpListener, app: axum::Router) {
    /// boxhook::server::serve(listener, app).grace(Duration::from_secs(5)).await;
    /// # }
    /// ```
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Hands each [`Notice`] to `hook` instead of logging it with `tracing`.
    ///
    /// ```no_run
    /// use boxhook::server::Notice;
    ///
    /// # async fn example(listener: tokio::net::TcpListener, app: axum::Router) {
    /// boxhook::server::serve(listener, app)
    ///     .on_notice(|notice: &Notice| eprintln!("boxhook: {notice}"))
    ///     .await;
    /// # }
    /// ```
    pub fn on_notice(mut self, hook: impl Fn(&Notice) + Send + Sync + 'static) -> Self {
        self.on_notice = Some(Arc::new(hook));
        self
    }

    /// Serves HTTPS: every accepted connection shakes hands under `tls`
    /// (its [deadline](Tls::handshake_timeout), counted against the
    /// connection cap) before it is served with the same limits as a plain
    /// one; see [TLS](self#tls). Feature `server-tls`.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use boxhook::server::{ReloadableCert, Tls, TlsPolicy};
    ///
    /// # async fn example(listener: tokio::net::TcpListener, app: axum::Router) -> Result<(), boxhook::server::CertError> {
    /// let cert = Arc::new(ReloadableCert::from_pem_files("cert.pem", "key.pem")?);
    /// boxhook::server::serve(listener, app)
    ///     .tls(Tls::new(cert, TlsPolicy::FipsOnly))
    ///     .await;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "server-tls")]
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Stops when `signal` completes: the listener closes, idle connections
    /// close at once and requests in flight have the [grace](Self::grace)
    /// to finish. Without it the server runs until dropped.
    ///
    /// ```no_run
    /// # async fn example(listener: tokio::net::TcpListener, app: axum::Router) {
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// let server = tokio::spawn(
    ///     boxhook::server::serve(listener, app)
    ///         .with_graceful_shutdown(async move {
    ///             let _ = stopped.await;
    ///         })
    ///         .run(),
    /// );
    /// let _ = stop.send(());
    /// server.await.expect("the server stops");
    /// # }
    /// ```
    pub fn with_graceful_shutdown(
        mut self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        self.shutdown = Box::pin(signal);
        self
    }
}

impl<S: fmt::Debug> fmt::Debug for Server<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Server");
        d.field("listener", &self.listener)
            .field("service", &self.service)
            .field("limits", &self.limits)
            .field("body_budget", &self.budget)
            .field("grace", &self.grace);
        #[cfg(feature = "server-tls")]
        d.field("tls", &self.tls);
        d.finish_non_exhaustive()
    }
}

impl<S, B> Server<S>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    /// Accepts connections until the shutdown signal, then lets requests in
    /// flight finish for at most the grace, and returns once every
    /// connection is closed. The same as awaiting the server; this is the
    /// future to hand to `tokio::spawn`.
    ///
    /// ```no_run
    /// # async fn example(listener: tokio::net::TcpListener, app: axum::Router) {
    /// let server = tokio::spawn(boxhook::server::serve(listener, app).run());
    /// # let _ = server;
    /// # }
    /// ```
    pub async fn run(self) {
        let Self {
            listener,
            service,
            limits,
            budget,
            grace,
            on_notice,
            #[cfg(feature = "server-tls")]
            tls,
            mut shutdown,
        } = self;
        let notify = |notice: Notice| {
            if let Some(hook) = &on_notice {
                hook(&notice);
            } else {
                tracing::warn!(target: "boxhook::server", "{notice}");
            }
        };
        let tracker = Arc::new(Tracker::default());
        let mut tasks = JoinSet::new();
        loop {
            let room = tracker.room(limits.max_connections, Instant::now());
            if let Room::Full(grace_end) = room {
                let grace_ended = sleep_until(grace_end);
                tokio::select! {
                    () = tracker.changed.notified() => continue,
                    () = grace_ended => continue,
                    Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
                    () = &mut shutdown => break,
                }
            }
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(err) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        notify(Notice::AcceptFailed(err));
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
                // At the limit, the idle connection that would give way may have
                // become busy meanwhile: look again (accepting is cancel-safe).
                () = tracker.changed.notified(), if room == Room::Shed => continue,
                // A finished connection's task, reaped.
                Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
                () = &mut shutdown => break,
            };
            let conn = Arc::new(Conn::new(Instant::now()));
            let id = tracker.add(Arc::clone(&conn));
            tracker.shed(limits.max_connections, id, Instant::now());
            let registered = Registered {
                tracker: Arc::clone(&tracker),
                id,
            };
            #[cfg(feature = "server-tls")]
            if let Some(tls) = &tls {
                let tls = tls.clone();
                let service = service.clone();
                let budget = budget.clone();
                tasks.spawn(async move {
                    // A failed, cut or shed handshake ends here; `registered`
                    // drops with the task, leaving the tracker.
                    if let Some(stream) = tls.handshake(stream, &conn, &limits).await {
                        conn::drive(stream, limits, service, budget, conn, registered).await;
                    }
                });
                continue;
            }
            tasks.spawn(conn::drive(
                stream,
                limits,
                service.clone(),
                budget.clone(),
                conn,
                registered,
            ));
        }
        drop(listener);
        tracker.close_all();
        let drained =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            notify(Notice::GraceExpired {
                grace,
                connections: tasks.len(),
            });
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
    }
}

impl<S, B> IntoFuture for Server<S>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Output = ();
    type IntoFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// Sleeps until `at`, or forever when there is no such time: the wait of a
/// `select!` arm that fires on the next deadline, if any.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
