//! The admin listener's HTTP side: a few GET routes behind the token (or,
//! without one, behind the loopback `Host` rule), on a small, bounded set
//! of connections.
//!
//! Connections are managed by [`boxhook::server`], as the delivery
//! listener's are: at most [`LIMITS`]`.max_connections` are held,
//! and at the limit a new connection is still accepted and the oldest idle
//! one is closed to make room, so idle or slow clients cannot keep a health
//! probe out. Every answer other than a 2xx closes its connection (a client
//! without the token gets one 401 per connection), and a connection must
//! send its request head within 2 s of opening (or of its last answer), so
//! an unauthenticated connection lives at most about 2 s.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use boxhook::server::{Limits, Server};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tower_service::Service;

use super::inbox::Counter;
use super::{auth, host, page, summary, Dashboard};
use crate::health::{StoreHealth, Verdict};
use crate::prune::PruneStatus;

/// The admin listener's connection bounds.
const LIMITS: Limits = Limits {
    max_connections: 32,
    header_timeout: Duration::from_secs(2),
    idle_timeout: Duration::from_secs(10),
    max_age: Duration::from_secs(60),
    max_requests: 100,
};

/// How old an inbox count may be when a page or a scrape is answered.
pub(super) const FRESH: Duration = Duration::from_secs(2);

/// Everything a request may need.
pub(super) struct Shared {
    pub(super) token: Option<auth::Token>,
    pub(super) metrics: PrometheusHandle,
    pub(super) dashboard: Option<Arc<Dashboard>>,
    pub(super) counter: Arc<Counter>,
    /// The outcome of the store's last write (`None`: not tracked).
    pub(super) health: Option<Arc<StoreHealth>>,
    /// The background pruner (`None`: not pruning, as `work --once`).
    pub(super) prune: Option<Arc<PruneStatus>>,
    pub(super) keys: Option<usize>,
    /// The delivery listener's certificates (`None`: not `serve`).
    pub(super) certificates: Option<Arc<super::Certificates>>,
}

/// The admin routes, as a tower service the server calls: always ready,
/// never failing.
#[derive(Clone)]
struct Admin(Arc<Shared>);

impl Service<Request<Incoming>> for Admin {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let shared = Arc::clone(&self.0);
        Box::pin(async move { Ok(handle(&shared, &request).await) })
    }
}

/// Serves the admin listener until the runtime ends.
pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    Server::new(listener, Admin(shared))
        .limits(LIMITS)
        .grace(Duration::ZERO)
        .without_body_budget()
        .on_notice(crate::logging::server_notice)
        .run()
        .await;
}

/// Answers one admin request.
pub(super) async fn handle<B>(shared: &Shared, request: &Request<B>) -> Response<Full<Bytes>> {
    match &shared.token {
        Some(token) => {
            if !token.admits(request.headers()) {
                let mut response = text(StatusCode::UNAUTHORIZED, "unauthorized\n");
                response.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"boxhook admin\", Bearer"),
                );
                return response;
            }
        }
        None => {
            if !host::is_loopback_request(request) {
                return text(
                    StatusCode::MISDIRECTED_REQUEST,
                    "misdirected request: without --admin-token this admin listener answers \
                     only requests addressed to localhost, 127.0.0.1 or [::1] (the Host \
                     header), a defence against DNS rebinding; to reach it by another name, \
                     set --admin-token\n",
                );
            }
        }
    }
    let path = request.uri().path();
    let known = matches!(
        path,
        "/" | "/healthz"
            | "/readyz"
            | "/metrics"
            | "/summary.json"
            | page::SCRIPT_PATH
            | page::STYLE_PATH
    );
    if !known {
        return text(StatusCode::NOT_FOUND, "not found\n");
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response
            .headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match path {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => readyz(shared).await,
        "/metrics" => {
            shared.counter.fresh(FRESH).await;
            let body = shared.metrics.render();
            with_type(
                StatusCode::OK,
                body.into(),
                "text/plain; version=0.0.4; charset=utf-8",
            )
        }
        "/summary.json" => {
            let inbox = shared.counter.fresh(FRESH).await;
            let summary = summary::summary(shared, &inbox).await;
            with_type(
                StatusCode::OK,
                summary.to_string().into(),
                "application/json",
            )
        }
        page::SCRIPT_PATH => with_type(
            StatusCode::OK,
            Bytes::from_static(page::SCRIPT.as_bytes()),
            "text/javascript; charset=utf-8",
        ),
        page::STYLE_PATH => with_type(
            StatusCode::OK,
            Bytes::from_static(page::STYLE.as_bytes()),
            "text/css; charset=utf-8",
        ),
        _ => {
            let inbox = shared.counter.fresh(FRESH).await;
            let summary = summary::summary(shared, &inbox).await;
            with_type(
                StatusCode::OK,
                page::html(&summary).into(),
                "text/html; charset=utf-8",
            )
        }
    }
}

/// 200 when the keys are loaded, the store's last write succeeded and it
/// answers a count; else 503 with why (see `crate::health`).
async fn readyz(shared: &Shared) -> Response<Full<Bytes>> {
    let keys = match shared.keys {
        Some(0) => {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: no key loaded\n",
            )
        }
        Some(n) => format!(", {n} signature key(s) loaded"),
        None => String::new(),
    };
    let verdict = shared
        .health
        .as_ref()
        .map_or(Verdict::Writes, |h| h.verdict(tokio::time::Instant::now()));
    if let Verdict::Failing { ago, why } = &verdict {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "not ready: the last write to the store failed {} s ago: {why}\n",
                ago.as_secs()
            ),
        );
    }
    if let Some(why) = shared.counter.fresh(FRESH).await.error {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("not ready: {why}\n"),
        );
    }
    match verdict {
        Verdict::Retrying { ago, why } => text(
            StatusCode::OK,
            &format!(
                "ready: store reachable{keys}; the last write failed {} s ago ({why}), none \
                 since: taking deliveries again to retry\n",
                ago.as_secs()
            ),
        ),
        _ => text(StatusCode::OK, &format!("ready: store reachable{keys}\n")),
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    with_type(
        status,
        Bytes::copy_from_slice(body.as_bytes()),
        "text/plain; charset=utf-8",
    )
}

fn with_type(status: StatusCode, body: Bytes, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
             img-src 'self'; frame-ancestors 'none'",
        ),
    );
    response
}

#[cfg(test)]
mod tests {
    use boxhook::inbox::{Counts, Inbox as _, NewRecord};
    use http_body_util::BodyExt as _;

    use super::super::inbox::Probe;
    use super::*;
    use crate::fake::Fake;
    use crate::health::Watched;

    fn shared_with(fake: &Arc<Fake>, keys: Option<usize>, token: Option<&str>) -> Shared {
        Shared {
            token: token.map(|t| auth::Token::new(t).expect("token")),
            metrics: metrics_exporter_prometheus::PrometheusBuilder::new()
                .build_recorder()
                .handle(),
            dashboard: None,
            counter: Counter::new(Arc::new(Probe::new(Arc::clone(fake)))),
            health: Some(Arc::new(StoreHealth::default())),
            prune: None,
            keys,
            certificates: None,
        }
    }

    fn down() -> Arc<Fake> {
        let fake = Fake::default();
        *fake.counts_error.lock().expect("lock") = Some("database is locked".to_owned());
        Arc::new(fake)
    }

    async fn answer_with(
        shared: &Shared,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = handle(shared, &request.body(()).expect("request")).await;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    async fn answer(shared: &Shared, method: Method, path: &str) -> (u16, String) {
        answer_with(shared, method, path, &[("host", "127.0.0.1:9090")]).await
    }

    #[tokio::test]
    async fn readyz_says_why_it_is_not_ready() {
        let cases: &[(Option<usize>, u16, &str)] = &[
            (
                Some(2),
                503,
                "not ready: the store failed: inbox storage failed: database is locked\n",
            ),
            (Some(0), 503, "not ready: no key loaded\n"),
            (
                None,
                503,
                "not ready: the store failed: inbox storage failed: database is locked\n",
            ),
        ];
        for (keys, status, body) in cases {
            let got = answer(&shared_with(&down(), *keys, None), Method::GET, "/readyz").await;
            assert_eq!(got, (*status, (*body).to_owned()), "{keys:?}");
        }
    }

    fn record() -> NewRecord {
        NewRecord::parse(
            r#"{"type":"webhook_event","id":"e-1","trigger":"FILE.UPLOADED"}"#,
            Some("d-1"),
            chrono::Utc::now(),
        )
        .expect("a record")
    }

    #[tokio::test(start_paused = true)]
    async fn readyz_fails_while_writes_fail_though_reads_answer() {
        let fake = Arc::new(Fake::counting(Counts::default()));
        let shared = shared_with(&fake, Some(1), None);
        let health = Arc::clone(shared.health.as_ref().expect("tracked"));
        let inbox = Watched::new(Arc::clone(&fake), health);
        assert_eq!(
            answer(&shared, Method::GET, "/readyz").await,
            (
                200,
                "ready: store reachable, 1 signature key(s) loaded\n".to_owned()
            )
        );
        *fake.failing.lock().expect("lock") = Some("database or disk is full".to_owned());
        assert!(inbox.store(record()).await.is_err());
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(
            answer(&shared, Method::GET, "/readyz").await,
            (
                503,
                "not ready: the last write to the store failed 4 s ago: inbox storage failed: \
                 database or disk is full\n"
                    .to_owned()
            )
        );
        // No delivery for a while: let them in again to find out.
        tokio::time::advance(crate::health::RETRY_AFTER).await;
        assert_eq!(
            answer(&shared, Method::GET, "/readyz").await,
            (
                200,
                "ready: store reachable, 1 signature key(s) loaded; the last write failed 34 s \
                 ago (inbox storage failed: database or disk is full), none since: taking \
                 deliveries again to retry\n"
                    .to_owned()
            )
        );
        *fake.failing.lock().expect("lock") = None;
        assert!(inbox.store(record()).await.is_ok());
        assert_eq!(
            answer(&shared, Method::GET, "/readyz").await,
            (
                200,
                "ready: store reachable, 1 signature key(s) loaded\n".to_owned()
            )
        );
    }

    #[tokio::test]
    async fn routes_methods_and_the_inbox_error_on_the_page() {
        let shared = shared_with(&down(), Some(1), None);
        assert_eq!(
            answer(&shared, Method::GET, "/healthz").await,
            (200, "ok\n".to_owned())
        );
        assert_eq!(answer(&shared, Method::POST, "/metrics").await.0, 405);
        assert_eq!(answer(&shared, Method::GET, "/admin").await.0, 404);
        let (status, json) = answer(&shared, Method::GET, "/summary.json").await;
        assert_eq!(status, 200);
        let summary: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(
            summary["inbox"]["error"],
            "the store failed: inbox storage failed: database is locked"
        );
        assert_eq!(summary["role"], "work");
    }

    #[tokio::test]
    async fn without_a_token_only_loopback_hosts_are_answered() {
        let shared = shared_with(&down(), Some(1), None);
        let refused = "misdirected request: without --admin-token this admin listener answers \
                       only requests addressed to localhost, 127.0.0.1 or [::1] (the Host \
                       header), a defence against DNS rebinding; to reach it by another name, \
                       set --admin-token\n";
        for path in ["/healthz", "/metrics", "/", "/nothing"] {
            assert_eq!(
                answer_with(
                    &shared,
                    Method::GET,
                    path,
                    &[("host", "attacker.example:9090")]
                )
                .await,
                (421, refused.to_owned()),
                "{path}"
            );
        }
        for host in ["localhost:9090", "127.0.0.1", "[::1]:9090"] {
            assert_eq!(
                answer_with(&shared, Method::GET, "/healthz", &[("host", host)]).await,
                (200, "ok\n".to_owned()),
                "{host}"
            );
        }
        // With a token, any name: the token is the defence.
        let token = "0123456789abcdef0123";
        let shared = shared_with(&down(), Some(1), Some(token));
        let bearer = format!("Bearer {token}");
        assert_eq!(
            answer_with(
                &shared,
                Method::GET,
                "/healthz",
                &[
                    ("host", "boxhook.internal:9090"),
                    ("authorization", &bearer)
                ]
            )
            .await,
            (200, "ok\n".to_owned())
        );
        assert_eq!(
            answer_with(&shared, Method::GET, "/healthz", &[("host", "localhost")]).await,
            (401, "unauthorized\n".to_owned())
        );
    }
}
