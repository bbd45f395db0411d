//! The admin listener's HTTP side: a few GET routes behind the token, on
//! a small, bounded set of connections.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::{auth, page, summary, Dashboard, InboxProbe};

/// Connections served at once; more wait in the backlog.
const MAX_CONNECTIONS: usize = 32;
/// How long one admin connection may stay open.
const MAX_CONNECTION_AGE: Duration = Duration::from_secs(60);
/// How long a request head may take.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// How old an inbox count may be when a page or a scrape is answered.
const FRESH: Duration = Duration::from_secs(2);

/// Everything a request may need.
pub(super) struct Shared {
    pub(super) token: Option<auth::Token>,
    pub(super) metrics: PrometheusHandle,
    pub(super) dashboard: Option<Arc<Dashboard>>,
    pub(super) inbox: Arc<dyn InboxProbe>,
    pub(super) keys: Option<usize>,
}

/// Accepts connections until the runtime ends.
pub(super) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let Ok((stream, _)) = listener.accept().await else {
            // A transient accept error (too many open files): try again soon.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(handle(&shared, &request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(MAX_CONNECTION_AGE, connection).await;
            drop(permit);
        });
    }
}

/// Answers one admin request.
pub(super) async fn handle<B>(shared: &Shared, request: &Request<B>) -> Response<Full<Bytes>> {
    if let Some(token) = &shared.token {
        if !token.admits(request.headers()) {
            let mut response = text(StatusCode::UNAUTHORIZED, "unauthorized\n");
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"boxhook admin\", Bearer"),
            );
            return response;
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
            super::inbox::refresh_if_older(&*shared.inbox, FRESH).await;
            let body = shared.metrics.render();
            with_type(
                StatusCode::OK,
                body.into(),
                "text/plain; version=0.0.4; charset=utf-8",
            )
        }
        "/summary.json" => {
            super::inbox::refresh_if_older(&*shared.inbox, FRESH).await;
            let summary = summary::summary(shared).await;
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
            super::inbox::refresh_if_older(&*shared.inbox, FRESH).await;
            let summary = summary::summary(shared).await;
            with_type(
                StatusCode::OK,
                page::html(&summary).into(),
                "text/html; charset=utf-8",
            )
        }
    }
}

/// 200 when the store answers and the keys are loaded, else 503 with why.
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
    match shared.inbox.ping().await {
        Ok(()) => text(StatusCode::OK, &format!("ready: store reachable{keys}\n")),
        Err(why) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("not ready: {why}\n"),
        ),
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
    use std::future::Future;
    use std::pin::Pin;

    use http_body_util::BodyExt as _;

    use super::super::inbox::InboxSummary;
    use super::*;

    /// A store that cannot be reached.
    #[derive(Default)]
    struct Down(std::sync::Mutex<InboxSummary>);

    type Fut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

    impl InboxProbe for Down {
        fn ping(&self) -> Fut<'_, Result<(), String>> {
            Box::pin(async { Err("the store failed: database is locked".to_owned()) })
        }
        fn count(&self) -> Fut<'_, Result<InboxSummary, String>> {
            Box::pin(async { Err("the store failed: database is locked".to_owned()) })
        }
        fn body<'a>(&'a self, _: &'a str) -> Fut<'a, Option<Bytes>> {
            Box::pin(async { None })
        }
        fn last(&self) -> InboxSummary {
            self.0.lock().expect("lock").clone()
        }
        fn keep(&self, summary: InboxSummary) {
            *self.0.lock().expect("lock") = summary;
        }
    }

    fn shared(keys: Option<usize>) -> Shared {
        Shared {
            token: None,
            metrics: metrics_exporter_prometheus::PrometheusBuilder::new()
                .build_recorder()
                .handle(),
            dashboard: None,
            inbox: Arc::new(Down::default()),
            keys,
        }
    }

    async fn answer(shared: &Shared, method: Method, path: &str) -> (u16, String) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .expect("request");
        let response = handle(shared, &request).await;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn readyz_says_why_it_is_not_ready() {
        let cases: &[(Option<usize>, u16, &str)] = &[
            (
                Some(2),
                503,
                "not ready: the store failed: database is locked\n",
            ),
            (Some(0), 503, "not ready: no key loaded\n"),
            (
                None,
                503,
                "not ready: the store failed: database is locked\n",
            ),
        ];
        for (keys, status, body) in cases {
            let got = answer(&shared(*keys), Method::GET, "/readyz").await;
            assert_eq!(got, (*status, (*body).to_owned()), "{keys:?}");
        }
    }

    #[tokio::test]
    async fn routes_methods_and_the_inbox_error_on_the_page() {
        let shared = shared(Some(1));
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
            "the store failed: database is locked"
        );
        assert_eq!(summary["role"], "work");
    }
}
