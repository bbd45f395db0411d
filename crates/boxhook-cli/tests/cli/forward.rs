//! `boxhook work --forward` as a process, against destinations on
//! 127.0.0.1 that answer `200` at once and then drip their body: the status
//! line decides, so the event is done after one attempt.

#![cfg(unix)]

use crate::common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boxhook::inbox::{Inbox, NewRecord};
use boxhook_sqlite::SqliteInbox;
use common::{boxhook, run, temp_dir};

const LIMIT: Duration = Duration::from_secs(60);

/// A destination answering every request `200` at once, then its body a
/// byte every 100 ms: `bytes` of them, or without end when `None`.
struct Drip {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
}

impl Drip {
    fn start(bytes: Option<usize>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let (count, gone) = (Arc::clone(&requests), Arc::clone(&closed));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let (count, gone) = (Arc::clone(&count), Arc::clone(&gone));
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 4096];
                    let head_end = loop {
                        if let Some(at) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            break at + 4;
                        }
                        match stream.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&seen[..head_end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while seen.len() < head_end + length {
                        match stream.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    let declared = bytes.unwrap_or(1 << 30);
                    let answer = format!("HTTP/1.1 200 OK\r\ncontent-length: {declared}\r\n\r\n");
                    if stream.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                    for _ in 0..declared {
                        std::thread::sleep(Duration::from_millis(100));
                        if stream
                            .write_all(b"x")
                            .and_then(|()| stream.flush())
                            .is_err()
                        {
                            gone.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                    }
                });
            }
        });
        Self {
            addr,
            requests,
            closed,
        }
    }
}

fn body(event_id: &str) -> String {
    format!(
        r#"{{"type":"webhook_event","id":"{event_id}","trigger":"FILE.UPLOADED","webhook":{{"id":"4133","type":"webhook"}},"source":{{"id":"5","type":"file"}}}}"#
    )
}

fn store_event(inbox: &Path, event_id: &str) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let inbox = SqliteInbox::open(inbox).expect("open sqlite");
            let record =
                NewRecord::parse(body(event_id), Some("d-1"), chrono::Utc::now()).expect("event");
            inbox.store(record).await.expect("store");
        });
}

#[test]
fn a_200_with_a_slow_or_endless_body_is_done_after_one_attempt() {
    for (name, bytes) in [("slow", Some(40)), ("endless", None)] {
        let dir = temp_dir("work-forward-drip");
        let inbox = dir.join("inbox.sqlite");
        store_event(&inbox, "e-1");
        let drip = Drip::start(bytes);
        let store = format!("sqlite:{}", inbox.display());
        let started = Instant::now();
        let out = run(
            boxhook()
                .args(["--primary-key", boxhook_testkit::SAMPLE_PRIMARY_KEY])
                .args(["work", "--store", &store, "--once"])
                .args(["--forward", &format!("http://{}/", drip.addr)])
                .args(["--timeout", "1", "--max-attempts", "3", "--backoff", "0"]),
            LIMIT,
        );
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{name}: {stderr}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "processed 1 event(s); 0 attempt(s) failed\n",
            "{name}"
        );
        assert_eq!(
            stderr,
            format!(
                "working on {} with 1 worker(s), until nothing is ready\nstopped\n",
                inbox.display()
            ),
            "{name}"
        );
        assert_eq!(drip.requests.load(Ordering::SeqCst), 1, "{name}: one POST");
        assert!(took < Duration::from_secs(10), "{name}: {took:?}");
        let listed = run(
            boxhook().args(["inbox", "list", "--json", "--store", &store]),
            LIMIT,
        );
        let row: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("one JSON line");
        assert_eq!(
            (&row["event_id"], &row["state"], &row["attempts"]),
            (
                &serde_json::json!("e-1"),
                &serde_json::json!("done"),
                &serde_json::json!(1)
            ),
            "{name}"
        );
        // The worker gave the body up: its connection is closed.
        let deadline = Instant::now() + Duration::from_secs(5);
        while drip.closed.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "{name}: connection still open");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A destination answering every request `200` with an empty body on a
/// kept-alive connection, counting the connections it accepted and the
/// requests it answered.
struct KeepAlive {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

impl KeepAlive {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (accepted, answered) = (Arc::clone(&connections), Arc::clone(&requests));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                accepted.fetch_add(1, Ordering::SeqCst);
                let answered = Arc::clone(&answered);
                std::thread::spawn(move || {
                    let mut seen: Vec<u8> = Vec::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        // One request: its head, then content-length bytes.
                        let head_end = loop {
                            if let Some(at) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                                break at + 4;
                            }
                            match stream.read(&mut buf) {
                                Ok(0) | Err(_) => return,
                                Ok(n) => seen.extend_from_slice(&buf[..n]),
                            }
                        };
                        let head = String::from_utf8_lossy(&seen[..head_end]).to_ascii_lowercase();
                        let length: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        while seen.len() < head_end + length {
                            match stream.read(&mut buf) {
                                Ok(0) | Err(_) => return,
                                Ok(n) => seen.extend_from_slice(&buf[..n]),
                            }
                        }
                        seen.drain(..head_end + length);
                        answered.fetch_add(1, Ordering::SeqCst);
                        if stream
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                            .is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        Self {
            addr,
            connections,
            requests,
        }
    }
}

#[test]
fn forwarding_reuses_at_most_one_connection_per_worker() {
    for (concurrency, events) in [(1_usize, 20_usize), (4, 60)] {
        let dir = temp_dir("work-forward-keepalive");
        let inbox = dir.join("inbox.sqlite");
        for n in 0..events {
            store_event(&inbox, &format!("e-{n}"));
        }
        let receiver = KeepAlive::start();
        let store = format!("sqlite:{}", inbox.display());
        let out = run(
            boxhook()
                .args(["--primary-key", boxhook_testkit::SAMPLE_PRIMARY_KEY])
                .args(["work", "--store", &store, "--once"])
                .args(["--concurrency", &concurrency.to_string()])
                // One claim per event: with batched claims a worker posts
                // its next event at once, sometimes before the client's
                // pool has the previous connection back, and opens one
                // more (5 for 4 workers in 1 run of 3).
                .args(["--batch", "1"])
                .args(["--forward", &format!("http://{}/", receiver.addr)]),
            LIMIT,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{concurrency}: {stderr}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("processed {events} event(s); 0 attempt(s) failed\n")
        );
        assert_eq!(receiver.requests.load(Ordering::SeqCst), events);
        let connections = receiver.connections.load(Ordering::SeqCst);
        assert!(
            (1..=concurrency).contains(&connections),
            "{events} events on {concurrency} worker(s) took {connections} connections"
        );
    }
}
