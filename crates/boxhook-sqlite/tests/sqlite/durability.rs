//! Durability over HTTP: verify layer + router + `SqliteInbox`, as Box sees
//! it. Every delivery answered 2xx is in the inbox exactly once, and every
//! accepted delivery is counted, including across a `kill -9`.
//!
//! The kill test re-runs this test binary as the server process (the
//! `child_server` test, which does nothing unless `CHILD_ENV` is set).

use crate::common;

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use boxhook::inbox::{Inbox, InboxEntry, ListFilter};
use boxhook::{Router, VerifyLayer};
use boxhook_core::{Clock as _, SystemClock, Verifier};
use boxhook_sqlite::SqliteInbox;
use boxhook_testkit::{sample_keys, Delivery};
use bytes::Bytes;
use common::{event, TempDir};
use http::{StatusCode, Uri};
use http_body_util::Full;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower_layer::Layer as _;

const CHILD_ENV: &str = "BOXHOOK_SQLITE_TEST_CHILD_INBOX";
const PORT_PREFIX: &str = "BOXHOOK_TEST_PORT=";

/// Serves layer + router + inbox on 127.0.0.1 and a free port, on the
/// system clock, the way `boxhook serve` does.
async fn serve(inbox: SqliteInbox) -> SocketAddr {
    let service =
        VerifyLayer::new(Verifier::new(sample_keys())).layer(Router::new().store_in(inbox));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
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
    addr
}

/// The server process of `killed_mid_burst_...`: inert in a normal run.
#[test]
fn child_server() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    // Exit when the parent goes away (its end of stdin closes), so no
    // server outlives a test run.
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let inbox = SqliteInbox::open(&path).expect("open inbox");
        let addr = serve(inbox).await;
        println!("\n{PORT_PREFIX}{}", addr.port());
        std::future::pending::<()>().await;
    });
}

/// A server process, killed with SIGKILL when dropped.
struct ServerProcess {
    child: Child,
    addr: SocketAddr,
}

impl ServerProcess {
    fn start(inbox: &Path) -> Self {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "durability::child_server",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, inbox)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn server process");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(at) = line.find(PORT_PREFIX) {
                    let digits: String = line[at + PORT_PREFIX.len()..]
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    let _ = tx.send(digits.parse::<u16>());
                }
            }
        });
        let mut server = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let port = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("server printed its port")
            .expect("a port number");
        server.addr.set_port(port);
        server
    }

    /// `kill -9`: `Child::kill` sends SIGKILL on Unix.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends `body` as Box would now: fresh timestamp and signature.
async fn deliver(
    client: &Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    body: &str,
    delivery_id: &str,
) -> Option<StatusCode> {
    let mut request = Delivery::new(body.to_owned())
        .sent_at(SystemClock.now())
        .delivery_id(delivery_id)
        .to_request();
    *request.uri_mut() = Uri::try_from(format!("http://{addr}/")).expect("uri");
    let answer = tokio::time::timeout(Duration::from_secs(10), client.request(request)).await;
    match answer {
        Ok(Ok(response)) => Some(response.status()),
        _ => None,
    }
}

async fn by_event(inbox: &SqliteInbox) -> HashMap<String, InboxEntry> {
    let listed = inbox.list(ListFilter::new()).await.expect("list");
    let count = listed.len();
    let map: HashMap<_, _> = listed
        .into_iter()
        .map(|e| (e.event_id.clone(), e))
        .collect();
    assert_eq!(map.len(), count, "an event is in the inbox twice");
    map
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_delivery_is_stored_once_and_counted() {
    let dir = TempDir::new("router");
    let inbox = SqliteInbox::open(dir.file("inbox.sqlite")).expect("open");
    let addr = serve(inbox.clone()).await;
    let client = client();
    let a = event("4133", "a", "FILE.UPLOADED");
    let b = event("4133", "b", "WEBHOOK.DELETED");

    assert_eq!(
        deliver(&client, addr, &a, "a-1").await,
        Some(StatusCode::OK)
    );
    // Box's retries of a: sequential, then concurrent.
    assert_eq!(
        deliver(&client, addr, &a, "a-2").await,
        Some(StatusCode::OK)
    );
    let retries: Vec<_> = (3..=10)
        .map(|i| {
            let (client, a) = (client.clone(), a.clone());
            tokio::spawn(async move { deliver(&client, addr, &a, &format!("a-{i}")).await })
        })
        .collect();
    for retry in retries {
        assert_eq!(retry.await.expect("join"), Some(StatusCode::OK));
    }
    // Concurrent first deliveries of b.
    let firsts: Vec<_> = (1..=4)
        .map(|i| {
            let (client, b) = (client.clone(), b.clone());
            tokio::spawn(async move { deliver(&client, addr, &b, &format!("b-{i}")).await })
        })
        .collect();
    for first in firsts {
        assert_eq!(first.await.expect("join"), Some(StatusCode::OK));
    }
    // A tampered delivery is refused and not counted.
    let mut tampered = Delivery::new(a.clone())
        .sent_at(SystemClock.now())
        .tampered()
        .to_request();
    *tampered.uri_mut() = Uri::try_from(format!("http://{addr}/")).expect("uri");
    let status = client.request(tampered).await.expect("answer").status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let stored = by_event(&inbox).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored["a"].deliveries, 10);
    assert_eq!(stored["a"].delivery_id.as_deref(), Some("a-1"));
    assert_eq!(stored["b"].deliveries, 4);
    assert_eq!(stored["b"].trigger, "WEBHOOK.DELETED");
    let raw = inbox.get("a").await.expect("get").expect("a");
    assert_eq!(raw.body, Bytes::from(a));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines, reason = "one scenario, read top to bottom")]
async fn killed_mid_burst_every_2xx_is_stored_exactly_once() {
    const EVENTS: usize = 600;
    const KILL_AFTER: usize = 150;
    let started = Instant::now();
    let dir = TempDir::new("kill9");
    let path = dir.file("inbox.sqlite");
    let server = Arc::new(Mutex::new(ServerProcess::start(&path)));
    let addr = server.lock().expect("lock").addr;
    let client = client();
    let bodies: Arc<Vec<String>> = Arc::new(
        (0..EVENTS)
            .map(|i| event("4133", &format!("evt-{i:04}"), "FILE.UPLOADED"))
            .collect(),
    );

    // The burst: 16 senders, killed with SIGKILL once 150 events got a 2xx.
    let accepted = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let results = Arc::new(Mutex::new(vec![None; EVENTS]));
    let senders: Vec<_> = (0..16)
        .map(|_| {
            let (client, bodies, accepted, next, results) = (
                client.clone(),
                Arc::clone(&bodies),
                Arc::clone(&accepted),
                Arc::clone(&next),
                Arc::clone(&results),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= EVENTS {
                        return;
                    }
                    let status = deliver(&client, addr, &bodies[i], &format!("{i}-first")).await;
                    if status.is_some_and(|s| s.is_success()) {
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                    results.lock().expect("lock")[i] = status;
                }
            })
        })
        .collect();
    while accepted.load(Ordering::Relaxed) < KILL_AFTER {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "burst too slow"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    server.lock().expect("lock").kill();
    for sender in senders {
        sender.await.expect("join");
    }
    let results = results.lock().expect("lock").clone();
    let ok: Vec<usize> = (0..EVENTS)
        .filter(|&i| results[i].is_some_and(|s| s.is_success()))
        .collect();
    let failed: Vec<usize> = (0..EVENTS)
        .filter(|&i| !results[i].is_some_and(|s| s.is_success()))
        .collect();
    assert!(ok.len() >= KILL_AFTER, "{} accepted", ok.len());
    assert!(
        !failed.is_empty(),
        "the kill came after the burst: nothing tested"
    );
    assert!(
        results.iter().all(|s| s.is_none_or(|s| s.is_success())),
        "only 2xx or no answer"
    );

    // Restart on the same file; read it alongside (WAL allows both).
    let server = ServerProcess::start(&path);
    let inbox = SqliteInbox::open(&path).expect("open");
    let after_kill = by_event(&inbox).await;
    for &i in &ok {
        let entry = after_kill
            .get(&format!("evt-{i:04}"))
            .unwrap_or_else(|| panic!("evt-{i:04} got a 2xx but is not in the inbox"));
        assert_eq!(entry.deliveries, 1);
        assert_eq!(
            entry.delivery_id.as_deref(),
            Some(format!("{i}-first").as_str())
        );
    }
    let stored_unanswered: Vec<usize> = failed
        .iter()
        .copied()
        .filter(|i| after_kill.contains_key(&format!("evt-{i:04}")))
        .collect();

    // Box retries what failed, with new delivery ids; and we redeliver a
    // few accepted ones as duplicates.
    let duplicates: Vec<usize> = ok.iter().copied().take(10).collect();
    for &i in failed.iter().chain(&duplicates) {
        let status = deliver(&client, server.addr, &bodies[i], &format!("{i}-retry")).await;
        assert_eq!(status, Some(StatusCode::OK), "retry of evt-{i:04}");
    }

    let finally = by_event(&inbox).await;
    assert_eq!(finally.len(), EVENTS, "every event is there, once");
    for i in 0..EVENTS {
        let entry = &finally[&format!("evt-{i:04}")];
        let expected = if duplicates.contains(&i) || stored_unanswered.contains(&i) {
            2
        } else {
            1
        };
        assert_eq!(entry.deliveries, expected, "deliveries of evt-{i:04}");
        let first = if ok.contains(&i) || stored_unanswered.contains(&i) {
            format!("{i}-first")
        } else {
            format!("{i}-retry")
        };
        assert_eq!(entry.delivery_id.as_deref(), Some(first.as_str()));
    }
    let sample = inbox.get("evt-0042").await.expect("get").expect("stored");
    assert_eq!(sample.body, Bytes::from(bodies[42].clone()));
    drop(server);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    eprintln!(
        "kill -9 after {} accepted: {} unanswered, {} of them stored before the kill; {:?}",
        ok.len(),
        failed.len(),
        stored_unanswered.len(),
        started.elapsed()
    );
}
