//! The receiver `serve` and the demos run: the path check, the framework's
//! verify layer and router (every event stored in the inbox), the V1 path,
//! one [`DeliveryLog`] per request for its observers, and the diagnosis of
//! 401s. A tower service, served by [`boxhook::server`].

mod diagnosis;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use boxhook::server::Server;
use boxhook::v1::V1Service;
use boxhook::verify::{BodyBudget, Verify};
use boxhook::{Router, VerifyLayer};
use boxhook_core::{KeyRing, Verifier};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tower_layer::Layer as _;
use tower_service::Service;

use crate::logging::{DeliveryLog, LogFormat};

type Observer = Arc<dyn Fn(&DeliveryLog) + Send + Sync>;

/// The receiver: path check, then the framework's verify layer and router,
/// with every event stored in the inbox.
#[derive(Clone)]
pub(crate) struct App {
    path: Arc<str>,
    /// The verify layer `service` was built with, to rebuild it when the
    /// rejected deliveries are wanted.
    layer: VerifyLayer<Full<Bytes>>,
    service: Verify<Router, Full<Bytes>>,
    v1: Option<(Arc<str>, V1Service)>,
    observers: Vec<Observer>,
    diagnoser: Option<diagnosis::Diagnoser>,
}

impl App {
    /// A receiver for `path`, verifying with `ring`, storing into `inbox`,
    /// taking bodies of at most `max_body` bytes and buffering at most
    /// `body_budget` bytes of bodies at once across all connections.
    ///
    /// The inbox's own answer tells a new event from a duplicate, so a
    /// retried delivery is acknowledged and counted, never stored twice, and
    /// logged as `duplicate` even when two attempts race.
    pub(crate) fn new(
        ring: KeyRing,
        inbox: impl boxhook::inbox::Inbox,
        path: &str,
        max_body: usize,
        body_budget: usize,
    ) -> Self {
        Self::with_router(
            ring,
            Router::new().store_in(inbox),
            path,
            max_body,
            body_budget,
        )
    }

    /// As [`App::new`], with `router` (its own `store_in`, handlers) behind
    /// the verify layer.
    pub(crate) fn with_router(
        ring: KeyRing,
        router: Router,
        path: &str,
        max_body: usize,
        body_budget: usize,
    ) -> Self {
        // Rejected deliveries are kept (their headers and body cloned) only
        // once `diagnose_rejections` says something will read them.
        let layer = VerifyLayer::new(Verifier::new(ring))
            .body_limit(max_body)
            .body_budget(BodyBudget::new(body_budget));
        let service = layer.clone().layer(router);
        Self {
            path: path.into(),
            layer,
            service,
            v1: None,
            observers: Vec::new(),
            diagnoser: None,
        }
    }

    /// Also receives V1 callbacks on the given path, with the given service.
    pub(crate) fn v1(mut self, v1: Option<(String, V1Service)>) -> Self {
        self.v1 = v1.map(|(path, service)| (path.into(), service));
        self
    }

    /// Also writes each delivery's log on stderr, as a text line or a JSON
    /// object on one line.
    pub(crate) fn log_as(self, format: LogFormat) -> Self {
        match format {
            LogFormat::Text => self.observe(|log| eprintln!("{log}")),
            LogFormat::Json => self.observe(|log| eprintln!("{}", log.to_json())),
        }
    }

    /// Calls `observer` with each delivery's log, before the response goes out.
    pub(crate) fn observe(
        mut self,
        observer: impl Fn(&DeliveryLog) + Send + Sync + 'static,
    ) -> Self {
        self.observers.push(Arc::new(observer));
        self
    }

    /// Serves this receiver on `listener` (default limits) in a task of
    /// its own until `stop` fires or is dropped, then lets requests in
    /// flight finish for 5 s: the demos' receiver.
    pub(crate) fn spawn(
        self,
        listener: TcpListener,
        stop: tokio::sync::oneshot::Receiver<()>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(
            Server::new(listener, self)
                .grace(Duration::from_secs(5))
                .without_body_budget()
                .on_notice(crate::logging::server_notice)
                .with_graceful_shutdown(async move {
                    let _ = stop.await;
                })
                .run(),
        )
    }

    async fn handle(mut self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let delivery_id = request
            .headers()
            .get(boxhook_core::headers::DELIVERY_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let response = if path == *self.path {
            let service = &mut self.service;
            match std::future::poll_fn(|cx| Service::<Request<Incoming>>::poll_ready(service, cx))
                .await
            {
                Ok(()) => match service.call(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
                Err(never) => match never {},
            }
        } else if let Some((_, v1)) = self.v1.as_mut().filter(|(p, _)| **p == *path) {
            match v1.call(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        } else {
            let mut response = Response::new(Full::default());
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        };
        let mut response = response;
        let hints = diagnosis::hints(
            self.diagnoser.as_ref(),
            &mut response,
            delivery_id.as_deref(),
        );
        let mut log = DeliveryLog::new(method, path, delivery_id, &response, started.elapsed());
        log.hints = hints;
        for observe in &self.observers {
            observe(&log);
        }
        response
    }
}

/// Always ready; each call answers through [`App::handle`], never failing.
impl Service<Request<Incoming>> for App {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let app = self.clone();
        Box::pin(async move { Ok(app.handle(request).await) })
    }
}
