//! Shared test harness: a real hyper server on 127.0.0.1 and a hyper client.
#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses a different subset"
)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use boxhook::{Router, VerifyLayer};
use boxhook_core::{FixedClock, KeyRing, Verifier};
use boxhook_testkit::Delivery;
use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower_layer::Layer as _;
use tower_service::Service;

/// The instant every test delivery is sent at (the test kit's default
/// timestamp, 2020-01-01T00:00:00-07:00).
pub fn now() -> chrono::DateTime<chrono::Utc> {
    "2020-01-01T07:00:00Z".parse().expect("valid")
}

pub fn clock() -> FixedClock {
    FixedClock::at(now())
}

pub fn keys() -> KeyRing {
    boxhook_testkit::sample_keys()
}

/// A compact `webhook_event` body in Box's wire form.
pub fn event(id: &str, trigger: &str) -> String {
    format!(
        r#"{{"type":"webhook_event","id":"{id}","created_at":"2019-12-31T23:59:58-07:00","trigger":"{trigger}","webhook":{{"id":"4133","type":"webhook"}},"created_by":{{"type":"user","id":"22","name":"Ann","login":"ann@example.com"}},"source":{{"id":"1234567890","type":"file","name":"Q1\/report.pdf"}},"additional_info":[]}}"#
    )
}

/// The layer + router stack every HTTP test serves, on the fixed clock.
pub fn stack(router: Router) -> boxhook::verify::Verify<Router> {
    VerifyLayer::new(Verifier::new(keys()))
        .clock(clock())
        .layer(router)
}

/// A server that stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn serve<S>(service: S) -> Server
where
    S: Service<Request<Incoming>, Response = Response<Full<Bytes>>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("address");
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let service = hyper_util::service::TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Server { addr, task }
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends `request` to `addr`, keeping its path.
pub async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    mut request: Request<Full<Bytes>>,
) -> StatusCode {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    *request.uri_mut() = Uri::try_from(format!("http://{addr}{path}")).expect("uri");
    client.request(request).await.expect("response").status()
}

pub async fn deliver(
    client: &Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    delivery: &Delivery,
) -> StatusCode {
    send(client, addr, delivery.to_request()).await
}

/// A counter handlers bump, shared with the test.
#[derive(Clone, Default)]
pub struct Count(pub Arc<AtomicUsize>);

impl Count {
    pub fn bump(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// An inbox whose `store` is `f`, for tests that only look at what the
/// router stores; its worker side holds nothing (`claim_next` finds no
/// event, `list` and `get` nothing).
pub struct StoreWith<F>(pub F);

impl<F, Fut> boxhook::inbox::Inbox for StoreWith<F>
where
    F: Fn(boxhook::inbox::NewRecord) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<boxhook::inbox::Stored, boxhook::inbox::InboxError>>
        + Send,
{
    async fn store(
        &self,
        record: boxhook::inbox::NewRecord,
    ) -> Result<boxhook::inbox::Stored, boxhook::inbox::InboxError> {
        (self.0)(record).await
    }
    async fn claim_next(
        &self,
        _: &str,
        _: std::time::Duration,
        _: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<boxhook::inbox::Claimed>, boxhook::inbox::InboxError> {
        Ok(None)
    }
    async fn ack(&self, _: &boxhook::inbox::Claimed) -> Result<(), boxhook::inbox::InboxError> {
        Ok(())
    }
    async fn requeue(
        &self,
        _: &boxhook::inbox::Claimed,
        _: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), boxhook::inbox::InboxError> {
        Ok(())
    }
    async fn list(
        &self,
        _: boxhook::inbox::ListFilter,
    ) -> Result<Vec<boxhook::inbox::InboxEntry>, boxhook::inbox::InboxError> {
        Ok(Vec::new())
    }
    async fn get(
        &self,
        _: &str,
    ) -> Result<Option<boxhook::inbox::StoredEvent>, boxhook::inbox::InboxError> {
        Ok(None)
    }
    async fn counts(&self) -> Result<boxhook::inbox::Counts, boxhook::inbox::InboxError> {
        Ok(boxhook::inbox::Counts::default())
    }
}

/// Everything a test's subscriber formatted, as one shared buffer (a
/// `MakeWriter` for `tracing_subscriber`).
#[derive(Clone, Default)]
pub struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// What was logged so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("lock").clone()).expect("UTF-8 logs")
    }
}

thread_local! {
    /// The capture of the test running on this thread, and its level.
    static CAPTURE: std::cell::RefCell<Option<(Captured, tracing::Level)>> =
        const { std::cell::RefCell::new(None) };
}

/// Where the one global subscriber writes an event: the capture of the
/// thread that logged it, when that thread captures at the event's level;
/// nowhere otherwise.
struct ToThisThreadsCapture;

/// The writer [`ToThisThreadsCapture`] hands out.
enum CaptureWriter {
    To(Captured),
    Nowhere,
}

impl std::io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::To(captured) => captured.write(buf),
            Self::Nowhere => Ok(buf.len()),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ToThisThreadsCapture {
    type Writer = CaptureWriter;

    fn make_writer(&'a self) -> CaptureWriter {
        CaptureWriter::Nowhere
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> CaptureWriter {
        CAPTURE.with(|capture| match &*capture.borrow() {
            Some((captured, level)) if meta.level() <= level => CaptureWriter::To(captured.clone()),
            _ => CaptureWriter::Nowhere,
        })
    }
}

/// Ends this thread's capture when dropped.
pub struct CaptureGuard(());

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURE.with(|capture| capture.borrow_mut().take());
    }
}

/// Formats every event of this thread up to `level`, without colours, into
/// the returned buffer, for as long as the guard lives.
///
/// One subscriber, set once as the global default, formats the events of
/// every thread and writes each to the capture of the thread that logged it.
/// A subscriber per test (`set_default`) loses events when tests run in
/// parallel in one binary: tracing caches each call site's interest
/// globally, and a call site first reached on a thread without a subscriber
/// while another thread installs one can stay cached as "never".
pub fn capture_logs(level: tracing::Level) -> (Captured, CaptureGuard) {
    static GLOBAL: std::sync::Once = std::sync::Once::new();
    GLOBAL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(ToThisThreadsCapture)
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in this test binary");
    });
    // A call site registered while the global default was being set may
    // have cached the interest of no subscriber: ask every call site again.
    tracing::callsite::rebuild_interest_cache();
    let captured = Captured::default();
    CAPTURE.with(|capture| *capture.borrow_mut() = Some((captured.clone(), level)));
    (captured, CaptureGuard(()))
}
