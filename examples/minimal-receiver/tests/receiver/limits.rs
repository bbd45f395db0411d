//! The README's receiver holds connections as `boxhook serve` does: the
//! squatting and slow-client checks of `benches/load` (`squat.sh`,
//! `memory.sh`) and of the CLI's `tests/connections.rs`, run against
//! [`run_within`] over real sockets on 127.0.0.1, with the same limits and
//! the same expected results: junk squatters and silent connections beyond
//! the cap cannot delay a delivery, the oldest silent connections are the
//! ones shed, a dripping request head is cut at the header deadline, and
//! slow bodies beyond the body budget are answered 503 at once while those
//! within it are read and judged (401).
#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use std::io::{BufRead as _, BufReader, ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boxhook::chrono::Utc;
use boxhook::server::Limits as Connections;
use boxhook::verify::BodyBudget;
use boxhook_minimal_receiver::{run_within, Limits, PATH};
use boxhook_testkit::{sample_keys, Delivery};

/// The example receiver on a free port, on its own runtime, until dropped.
struct Receiver {
    runtime: Option<tokio::runtime::Runtime>,
    addr: SocketAddr,
}

impl Receiver {
    fn start(connections: Connections, budget: BodyBudget) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        // Bounded: the receiver stops by itself after two minutes.
        let limits = Limits {
            once: false,
            max_run: Some(Duration::from_secs(120)),
        };
        runtime.spawn(run_within(
            listener,
            sample_keys(),
            limits,
            connections,
            budget,
        ));
        Self {
            runtime: Some(runtime),
            addr,
        }
    }

    fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).unwrap()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// `delivery` as raw HTTP/1.1 bytes for [`PATH`] (keep-alive): its head,
/// then its body.
fn raw_request(delivery: &Delivery) -> (Vec<u8>, Vec<u8>) {
    let body = delivery.body().to_vec();
    let mut head = format!("POST {PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\n").into_bytes();
    for (name, value) in &delivery.headers() {
        if name != "content-length" {
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
    }
    head.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    (head, body)
}

/// A `webhook_event` with event id `id`, signed with the sample keys now.
fn signed_request(id: &str) -> Vec<u8> {
    let body = format!(
        r#"{{"type":"webhook_event","id":"{id}","created_at":"2024-05-14T08:02:14-07:00","trigger":"FILE.UPLOADED","webhook":{{"id":"4133","type":"webhook"}},"source":{{"id":"f-1","type":"file","name":"a.txt"}}}}"#
    );
    let (mut request, body) = raw_request(&Delivery::new(body).sent_at(Utc::now()));
    request.extend_from_slice(&body);
    request
}

/// Reads one response (head and `Content-Length` body); returns its head,
/// lowercased, or `None` if the connection closed first.
fn read_response(reader: &mut BufReader<TcpStream>) -> Option<String> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
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
    reader.read_exact(&mut body).ok()?;
    Some(head)
}

fn exchange(reader: &mut BufReader<TcpStream>, request: &[u8]) -> Option<String> {
    reader.get_mut().write_all(request).ok()?;
    read_response(reader)
}

/// Waits up to `limit` for the receiver to close `stream` (end of stream or
/// a reset); how long it took, or `None` if it is still open.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None
            }
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
}

/// A real delivery's round trip on a fresh connection: its status line and
/// how long it took.
fn deliver(receiver: &Receiver, id: &str) -> (String, Duration) {
    let started = Instant::now();
    let stream = receiver.connect();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut reader = BufReader::new(stream);
    let head = exchange(&mut reader, &signed_request(id)).unwrap_or_default();
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, started.elapsed())
}

const SQUAT_N: usize = 64;

/// `serve --max-connections 64` (its other limits the defaults).
fn capped() -> Connections {
    Connections {
        max_connections: SQUAT_N,
        ..Connections::DEFAULT
    }
}

fn default_budget() -> BodyBudget {
    BodyBudget::new(boxhook::server::DEFAULT_BODY_BUDGET)
}

#[test]
fn squatters_sending_junk_cannot_delay_a_delivery() {
    let receiver = Receiver::start(capped(), default_budget());
    let stop = Arc::new(AtomicBool::new(false));
    let addr = receiver.addr;
    // N clients, each keeping a connection busy with junk `GET` requests
    // (405, which closes the connection) and reconnecting each time.
    let junk_request = format!("GET {PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
    let squatters: Vec<_> = (0..SQUAT_N)
        .map(|_| {
            let stop = Arc::clone(&stop);
            let junk_request = junk_request.clone();
            std::thread::spawn(move || {
                let mut junk = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let Ok(stream) = TcpStream::connect(addr) else {
                        continue;
                    };
                    stream
                        .set_read_timeout(Some(Duration::from_secs(5)))
                        .unwrap();
                    let mut reader = BufReader::new(stream);
                    while !stop.load(Ordering::Relaxed) {
                        match exchange(&mut reader, junk_request.as_bytes()) {
                            Some(head) => {
                                assert!(head.starts_with("http/1.1 405"), "{head}");
                                junk += 1;
                            }
                            None => break,
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
                junk
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));

    let mut slowest = Duration::ZERO;
    for n in 0..5 {
        let (status, took) = deliver(&receiver, &format!("real-{n}"));
        assert_eq!(status, "http/1.1 200 ok", "delivery {n}");
        slowest = slowest.max(took);
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    let junk: usize = squatters.into_iter().map(|t| t.join().unwrap()).sum();
    eprintln!("{SQUAT_N} junk squatters ({junk} junk requests): slowest real delivery {slowest:?}");
    assert!(junk >= SQUAT_N, "the squatters did run: {junk}");
    assert!(
        slowest < Duration::from_secs(3),
        "a real delivery took {slowest:?}"
    );
}

#[test]
fn silent_connections_beyond_the_limit_cannot_delay_a_delivery() {
    // Long deadlines: only shedding can free a slot here.
    let connections = Connections {
        idle_timeout: Duration::from_secs(60),
        header_timeout: Duration::from_secs(60),
        ..capped()
    };
    let receiver = Receiver::start(connections, default_budget());
    let mut silent: Vec<TcpStream> = (0..2 * SQUAT_N).map(|_| receiver.connect()).collect();
    std::thread::sleep(Duration::from_millis(500));

    let (status, took) = deliver(&receiver, "real-silent");
    eprintln!(
        "{} silent connections: real delivery took {took:?}",
        2 * SQUAT_N
    );
    assert_eq!(status, "http/1.1 200 ok");
    assert!(
        took < Duration::from_secs(3),
        "a real delivery took {took:?}"
    );

    // The oldest were closed to make room; the newest are still held.
    for (n, stream) in silent.iter_mut().enumerate().take(SQUAT_N) {
        assert!(
            closed_within(stream, Duration::from_secs(2)).is_some(),
            "silent connection {n} (among the oldest) was shed"
        );
    }
    for (n, stream) in silent.iter_mut().enumerate().skip(SQUAT_N + 1) {
        assert_eq!(
            closed_within(stream, Duration::from_millis(50)),
            None,
            "silent connection {n} (among the newest) is still held"
        );
    }
}

#[test]
fn a_slow_request_head_is_cut_at_the_header_timeout() {
    let connections = Connections {
        header_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(60),
        ..Connections::DEFAULT
    };
    let receiver = Receiver::start(connections, default_budget());
    let mut stream = receiver.connect();
    let mut writer = stream.try_clone().unwrap();
    let started = Instant::now();
    // One header byte a second, never finishing the head.
    let dripping = std::thread::spawn(move || {
        for byte in b"POST /box/webhooks HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: "
            .iter()
            .cycle()
            .take(15)
        {
            if writer.write_all(&[*byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let closed = closed_within(&mut stream, Duration::from_secs(8)).map(|_| started.elapsed());
    drop(stream);
    dripping.join().unwrap();
    let closed = closed.expect("the receiver closed the connection");
    assert!(
        closed >= Duration::from_millis(1800) && closed < Duration::from_millis(3500),
        "cut after {closed:?}, header timeout 2 s"
    );
}

/// How one slow client ended: a POST that looks like a fresh Box delivery
/// (signed with a key the receiver does not hold) declaring `body` bytes,
/// sent in `pieces` after a pause, as `benches/src/bin/slow_clients.rs` does.
fn slow_client(addr: SocketAddr, body: usize, pieces: usize) -> String {
    let delivery = Delivery::new(vec![b'x'; body])
        .sent_at(Utc::now())
        .wrong_key();
    let (head, body) = raw_request(&delivery);
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(&head).unwrap();
    // Turned away before the body is read: the answer comes at once.
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut reader = BufReader::new(stream);
    if reader.fill_buf().is_ok_and(|b| !b.is_empty()) {
        let head = read_response(&mut reader).unwrap_or_default();
        return format!("at once: {}", head.lines().next().unwrap_or_default());
    }
    for piece in body.chunks(body.len().div_ceil(pieces)) {
        std::thread::sleep(Duration::from_millis(100));
        if reader.get_mut().write_all(piece).is_err() {
            return "write failed".to_owned();
        }
    }
    reader
        .get_mut()
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let head = read_response(&mut reader).unwrap_or_default();
    format!(
        "after the body: {}",
        head.lines().next().unwrap_or_default()
    )
}

#[test]
fn slow_bodies_beyond_the_body_budget_are_turned_away_at_once() {
    // `memory.sh` at a smaller scale: there 1,000 clients × 1 MiB against the
    // 64 MiB budget (64 read and refused 401, 936 turned away with 503);
    // here 12 clients × 64 KiB against a budget of 4 bodies.
    const BODY: usize = 64 * 1024;
    let budget = BodyBudget::new(4 * BODY);
    let watched = budget.clone();
    let receiver = Receiver::start(Connections::DEFAULT, budget);
    let addr = receiver.addr;
    let clients: Vec<_> = (0..12)
        .map(|_| std::thread::spawn(move || slow_client(addr, BODY, 8)))
        .collect();
    let mut ended: Vec<String> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    ended.sort();
    let mut want = vec!["after the body: http/1.1 401 unauthorized".to_owned(); 4];
    want.extend(vec![
        "at once: http/1.1 503 service unavailable".to_owned();
        8
    ]);
    assert_eq!(ended, want);
    assert_eq!(watched.in_use(), 0, "every reservation given back");
}
