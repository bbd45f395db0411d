//! The server as a user meets it, over real sockets on 127.0.0.1: an axum
//! app is served, non-2xx answers close, slow heads are cut at the deadline,
//! the cap sheds the oldest idle connection, the body budget reaches the
//! verify layer, and a shutdown finishes what is in flight within the grace.
#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower_layer::Layer as _;

use super::{serve, Limits, Server};
use crate::verify::BodyBudget;
use crate::{KeyRing, Router, Verifier, VerifyLayer};

/// Runs `configure(serve(listener, app))` on a free port until the sender
/// is used (or dropped).
async fn start<S, B>(
    app: S,
    configure: impl FnOnce(Server<S>) -> Server<S>,
) -> (SocketAddr, oneshot::Sender<()>, JoinHandle<()>)
where
    S: tower_service::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = configure(serve(listener, app)).with_graceful_shutdown(async move {
        let _ = stopped.await;
    });
    (addr, stop, tokio::spawn(server.run()))
}

/// Reads one response: its head, lowercased, and its `Content-Length` body;
/// `None` if the connection closed first.
async fn read_response(reader: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => return None,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => head.push_str(&line.to_ascii_lowercase()),
        }
    }
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).await.ok()?;
    Some((head, body))
}

async fn exchange(reader: &mut BufReader<TcpStream>, request: &[u8]) -> Option<(String, Vec<u8>)> {
    reader.get_mut().write_all(request).await.ok()?;
    read_response(reader).await
}

async fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    BufReader::new(TcpStream::connect(addr).await.unwrap())
}

/// How long until the server closes the connection (end of stream or a
/// reset), or `None` if it is still open after `limit`.
async fn closed_within(reader: &mut BufReader<TcpStream>, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, reader.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

const GET_HELLO: &[u8] = b"GET /hello HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n";

fn hello_app() -> axum::Router {
    axum::Router::new().route("/hello", axum::routing::get(|| async { "hi" }))
}

#[tokio::test]
async fn an_axum_router_is_served_and_every_answer_but_a_2xx_closes() {
    let (addr, stop, server) = start(hello_app(), |s| s).await;
    let mut reader = connect(addr).await;
    for _ in 0..2 {
        let (head, body) = exchange(&mut reader, GET_HELLO).await.unwrap();
        assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
        assert!(!head.contains("connection: close"), "{head}");
        assert_eq!(body, b"hi");
    }
    let (head, body) = exchange(&mut reader, b"GET /nope HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(head.starts_with("http/1.1 404 not found\r\n"), "{head}");
    assert!(head.contains("connection: close\r\n"), "{head}");
    assert_eq!(body, b"");
    assert!(closed_within(&mut reader, Duration::from_secs(2))
        .await
        .is_some());
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn the_last_allowed_request_closes_its_connection() {
    let limits = Limits {
        max_requests: 2,
        ..Limits::DEFAULT
    };
    let (addr, stop, server) = start(hello_app(), |s| s.limits(limits)).await;
    let mut reader = connect(addr).await;
    let (first, _) = exchange(&mut reader, GET_HELLO).await.unwrap();
    assert!(!first.contains("connection: close"), "{first}");
    let (second, _) = exchange(&mut reader, GET_HELLO).await.unwrap();
    assert!(second.starts_with("http/1.1 200 ok\r\n"), "{second}");
    assert!(second.contains("connection: close\r\n"), "{second}");
    assert!(closed_within(&mut reader, Duration::from_secs(2))
        .await
        .is_some());
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn a_slow_request_head_is_cut_at_the_header_deadline() {
    let limits = Limits {
        header_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(60),
        ..Limits::DEFAULT
    };
    let (addr, stop, server) = start(hello_app(), |s| s.limits(limits)).await;
    let mut reader = connect(addr).await;
    let started = Instant::now();
    // Part of a head at once, then a byte every 300 ms: never finished.
    reader
        .get_mut()
        .write_all(b"GET /hello HTTP/1.1\r\nx-slow: ")
        .await
        .unwrap();
    let closed = loop {
        if let Some(closed) = closed_within(&mut reader, Duration::from_millis(300)).await {
            break started.elapsed().max(closed);
        }
        assert!(started.elapsed() < Duration::from_secs(5), "never cut");
        let _ = reader.get_mut().write_all(b"a").await;
    };
    assert!(
        closed >= Duration::from_millis(900) && closed < Duration::from_millis(2500),
        "cut after {closed:?}, header deadline 1 s"
    );
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn an_idle_connection_closes_at_the_idle_deadline() {
    let limits = Limits {
        header_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(1),
        ..Limits::DEFAULT
    };
    let (addr, stop, server) = start(hello_app(), |s| s.limits(limits)).await;
    let mut reader = connect(addr).await;
    exchange(&mut reader, GET_HELLO).await.unwrap();
    let closed = closed_within(&mut reader, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        closed >= Duration::from_millis(800) && closed < Duration::from_millis(2500),
        "closed {closed:?} after the answer, idle deadline 1 s"
    );
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn at_the_cap_the_oldest_idle_connection_is_shed() {
    let limits = Limits {
        max_connections: 2,
        header_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(60),
        ..Limits::DEFAULT
    };
    let (addr, stop, server) = start(hello_app(), |s| s.limits(limits)).await;
    let mut oldest = connect(addr).await;
    let mut second = connect(addr).await;
    // Past their shedding grace.
    tokio::time::sleep(super::SHED_GRACE + Duration::from_millis(100)).await;
    let mut newest = connect(addr).await;
    assert!(
        closed_within(&mut oldest, Duration::from_secs(2))
            .await
            .is_some(),
        "the oldest idle connection gave way"
    );
    assert_eq!(
        closed_within(&mut second, Duration::from_millis(100)).await,
        None,
        "the second is kept"
    );
    let (head, body) = exchange(&mut newest, GET_HELLO).await.unwrap();
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert_eq!(body, b"hi");
    stop.send(()).unwrap();
    server.await.unwrap();
}

/// A POST declaring a 10-byte body: the verify layer reserves it in the
/// budget before reading it, then finds no signature (401).
const UNSIGNED_POST: &[u8] =
    b"POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 10\r\n\r\n0123456789";

fn webhooks() -> VerifyLayer {
    VerifyLayer::new(Verifier::new(
        KeyRing::from_strs(Some("primary"), None).unwrap(),
    ))
}

async fn status_of(addr: SocketAddr, request: &[u8]) -> String {
    let mut reader = connect(addr).await;
    let (head, _) = exchange(&mut reader, request).await.unwrap();
    head.lines().next().unwrap().to_owned()
}

#[tokio::test]
async fn a_verify_layer_without_a_budget_takes_the_servers() {
    let app = webhooks().layer(Router::new());
    // A budget of 0 bytes admits no body: 503 before the signature is looked at.
    let (addr, stop, server) = start(app.clone(), |s| s.body_budget(BodyBudget::new(0))).await;
    assert_eq!(
        status_of(addr, UNSIGNED_POST).await,
        "http/1.1 503 service unavailable"
    );
    stop.send(()).unwrap();
    server.await.unwrap();

    // Without one, the body is read and the missing signature refused.
    let (addr, stop, server) = start(app, Server::without_body_budget).await;
    assert_eq!(
        status_of(addr, UNSIGNED_POST).await,
        "http/1.1 401 unauthorized"
    );
    stop.send(()).unwrap();
    server.await.unwrap();

    // A layer's own budget wins over the server's.
    let own = webhooks()
        .body_budget(BodyBudget::new(1024))
        .layer(Router::new());
    let (addr, stop, server) = start(own, |s| s.body_budget(BodyBudget::new(0))).await;
    assert_eq!(
        status_of(addr, UNSIGNED_POST).await,
        "http/1.1 401 unauthorized"
    );
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn the_default_budget_reaches_a_verify_layer_inside_an_axum_app() {
    let budget = BodyBudget::new(super::DEFAULT_BODY_BUDGET);
    let watched = budget.clone();
    let app = axum::Router::new().route_service("/box", webhooks().layer(Router::new()));
    let (addr, stop, server) = start(app, |s| s.body_budget(budget)).await;
    let mut reader = connect(addr).await;
    // The head and half the body: the layer has reserved all 10 bytes.
    reader
        .get_mut()
        .write_all(b"POST /box HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n01234")
        .await
        .unwrap();
    let started = Instant::now();
    while watched.in_use() != 10 {
        assert!(started.elapsed() < Duration::from_secs(5), "never reserved");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (head, _) = exchange(&mut reader, b"56789").await.unwrap();
    assert!(head.starts_with("http/1.1 401 unauthorized\r\n"), "{head}");
    assert_eq!(watched.in_use(), 0, "given back with the answer");
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn a_shutdown_finishes_requests_in_flight_and_closes_idle_connections() {
    let app = axum::Router::new().route(
        "/slow",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            "done"
        }),
    );
    let (addr, stop, server) = start(app, |s| s.grace(Duration::from_secs(10))).await;
    let mut idle = connect(addr).await;
    let mut busy = connect(addr).await;
    busy.get_mut()
        .write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    stop.send(()).unwrap();
    assert!(
        closed_within(&mut idle, Duration::from_millis(150))
            .await
            .is_some(),
        "an idle connection closes at once"
    );
    let (head, body) = read_response(&mut busy).await.unwrap();
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert_eq!(body, b"done");
    tokio::time::timeout(Duration::from_secs(2), server)
        .await
        .unwrap()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn past_the_grace_busy_connections_close_with_a_notice() {
    let app = axum::Router::new().route(
        "/never",
        axum::routing::get(std::future::pending::<&'static str>),
    );
    let notices = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&notices);
    let (addr, stop, server) = start(app, move |s| {
        s.grace(Duration::from_secs(1))
            .on_notice(move |notice| seen.lock().unwrap().push(notice.to_string()))
    })
    .await;
    let mut busy = connect(addr).await;
    busy.get_mut()
        .write_all(b"GET /never HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(2),
        "stopped after {took:?}, grace 1 s"
    );
    assert_eq!(
        read_response(&mut busy).await,
        None,
        "closed without an answer"
    );
    assert_eq!(
        *notices.lock().unwrap(),
        ["1 connection(s) still answering after the 1 s grace; closing them"]
    );
}

/// A handler with a bug.
async fn buggy() -> &'static str {
    panic!("handler bug")
}

#[tokio::test]
async fn a_panicking_service_closes_its_connection_and_the_server_goes_on() {
    let app = axum::Router::new()
        .route("/panic", axum::routing::get(buggy))
        .merge(hello_app());
    let limits = Limits {
        max_connections: 1,
        ..Limits::DEFAULT
    };
    let (addr, stop, server) = start(app, |s| s.limits(limits).grace(Duration::ZERO)).await;
    let mut reader = connect(addr).await;
    assert_eq!(
        exchange(&mut reader, b"GET /panic HTTP/1.1\r\nhost: x\r\n\r\n").await,
        None
    );
    let mut reader = connect(addr).await;
    let (head, body) = exchange(&mut reader, GET_HELLO).await.unwrap();
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert_eq!(body, b"hi");
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[test]
fn an_accept_failure_notice_says_what_to_do() {
    let notice = super::Notice::AcceptFailed(std::io::Error::other("too many open files"));
    assert_eq!(
        notice.to_string(),
        "accept failed: too many open files; retrying (if out of file descriptors, raise \
         `ulimit -n` or lower the connection limit)"
    );
}
