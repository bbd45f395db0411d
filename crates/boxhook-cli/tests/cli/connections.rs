//! `boxhook serve` connection management, over real sockets on 127.0.0.1:
//! squatters cannot hold deliveries out, non-2xx answers close, idle, old
//! and long-used connections close, slow heads are cut, and a stop is not
//! held up by a half-sent head.
#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use crate::common;

use std::io::{BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boxhook_testkit::Delivery;
use common::{
    closed_within, event, exchange, raw_request, read_response, signed_request, temp_dir, Server,
};

/// A real delivery's round trip on a fresh connection: its status line and
/// how long it took.
fn deliver(server: &Server, id: &str) -> (String, Duration) {
    let started = Instant::now();
    let stream = server.connect();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut reader = BufReader::new(stream);
    let head = exchange(&mut reader, &signed_request(&event(id))).unwrap_or_default();
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, started.elapsed())
}

const SQUAT_N: usize = 64;

#[test]
fn squatters_sending_junk_cannot_delay_a_delivery() {
    let dir = temp_dir("squat-junk");
    let max = SQUAT_N.to_string();
    let server = Server::start(&dir.join("inbox.sqlite"), &["--max-connections", &max]);
    let stop = Arc::new(AtomicBool::new(false));
    let port = server.port;
    // N clients, each keeping a connection busy with junk `GET /` requests
    // and reconnecting whenever the server closes it.
    let squatters: Vec<_> = (0..SQUAT_N)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut junk = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else {
                        continue;
                    };
                    stream
                        .set_read_timeout(Some(Duration::from_secs(5)))
                        .unwrap();
                    let mut reader = BufReader::new(stream);
                    while !stop.load(Ordering::Relaxed)
                        && exchange(&mut reader, b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
                            .is_some()
                    {
                        junk += 1;
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
        let (status, took) = deliver(&server, &format!("real-{n}"));
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
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn silent_connections_beyond_the_limit_cannot_delay_a_delivery() {
    let dir = temp_dir("squat-silent");
    let max = SQUAT_N.to_string();
    // Long timeouts: only shedding can free a slot here.
    let server = Server::start(
        &dir.join("inbox.sqlite"),
        &[
            "--max-connections",
            &max,
            "--idle-timeout",
            "60",
            "--header-timeout",
            "60",
        ],
    );
    let mut silent: Vec<TcpStream> = (0..2 * SQUAT_N).map(|_| server.connect()).collect();
    std::thread::sleep(Duration::from_millis(500));

    let (status, took) = deliver(&server, "real-silent");
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
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn every_answer_but_a_2xx_closes_the_connection() {
    let dir = temp_dir("close-non-2xx");
    let server = Server::start(
        &dir.join("inbox.sqlite"),
        &["--idle-timeout", "60", "--header-timeout", "60"],
    );
    let wrong_key = raw_request(
        &Delivery::new(event("e-wrong"))
            .sent_at(chrono::Utc::now())
            .wrong_key(),
    );
    let get = b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n".to_vec();
    for (request, status) in [(get, "http/1.1 405"), (wrong_key, "http/1.1 401")] {
        let mut reader = BufReader::new(server.connect());
        let head = exchange(&mut reader, &request).expect("an answer");
        assert!(head.starts_with(status), "{head}");
        assert!(head.contains("connection: close\r\n"), "{head}");
        let closed = closed_within(reader.get_mut(), Duration::from_secs(2));
        assert!(
            closed.is_some(),
            "{status}: the server closed the connection"
        );
    }

    // A 2xx keeps it open for the next delivery.
    let mut reader = BufReader::new(server.connect());
    for id in ["e-1", "e-2"] {
        let head = exchange(&mut reader, &signed_request(&event(id))).expect("an answer");
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(!head.contains("connection: close"), "{head}");
    }
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn idle_connections_close_after_the_idle_timeout() {
    let dir = temp_dir("idle");
    let server = Server::start(
        &dir.join("inbox.sqlite"),
        &["--idle-timeout", "1", "--header-timeout", "30"],
    );
    // Between requests (keep-alive) ...
    let mut reader = BufReader::new(server.connect());
    let head = exchange(&mut reader, &signed_request(&event("idle-1"))).expect("an answer");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let closed = closed_within(reader.get_mut(), Duration::from_secs(5)).expect("closed");
    assert!(
        closed >= Duration::from_millis(800) && closed < Duration::from_millis(2500),
        "closed {closed:?} after the answer, idle timeout 1 s"
    );
    // ... and before the first one.
    let mut fresh = server.connect();
    let closed = closed_within(&mut fresh, Duration::from_secs(5)).expect("closed");
    assert!(
        closed >= Duration::from_millis(800) && closed < Duration::from_millis(2500),
        "closed {closed:?} after connecting, idle timeout 1 s"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_connection_closes_after_its_last_allowed_request() {
    let dir = temp_dir("max-requests");
    let server = Server::start(
        &dir.join("inbox.sqlite"),
        &["--max-requests-per-connection", "3", "--idle-timeout", "30"],
    );
    let mut reader = BufReader::new(server.connect());
    for n in 1..=3 {
        let head = exchange(&mut reader, &signed_request(&event(&format!("mr-{n}"))))
            .unwrap_or_else(|| panic!("request {n} answered"));
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert_eq!(
            head.contains("connection: close\r\n"),
            n == 3,
            "request {n}: {head}"
        );
    }
    assert!(closed_within(reader.get_mut(), Duration::from_secs(2)).is_some());
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_connection_closes_at_its_maximum_age() {
    let dir = temp_dir("max-age");
    let server = Server::start(
        &dir.join("inbox.sqlite"),
        &[
            "--max-connection-age",
            "2",
            "--idle-timeout",
            "60",
            "--header-timeout",
            "60",
        ],
    );
    let started = Instant::now();
    let mut reader = BufReader::new(server.connect());
    let mut answered = 0;
    while exchange(
        &mut reader,
        &signed_request(&event(&format!("age-{answered}"))),
    )
    .is_some()
    {
        answered += 1;
        assert!(started.elapsed() < Duration::from_secs(10), "never closed");
        std::thread::sleep(Duration::from_millis(250));
    }
    let closed = started.elapsed();
    assert!(answered >= 4, "kept alive until then: {answered} answers");
    assert!(
        closed >= Duration::from_millis(1800) && closed < Duration::from_millis(3500),
        "closed after {closed:?}, maximum age 2 s"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_slow_request_head_is_cut_at_the_header_timeout() {
    let dir = temp_dir("slowloris");
    let server = Server::start(
        &dir.join("inbox.sqlite"),
        &["--header-timeout", "2", "--idle-timeout", "60"],
    );
    let mut stream = server.connect();
    let mut writer = stream.try_clone().unwrap();
    let started = Instant::now();
    // One header byte a second, never finishing the head.
    let dripping = std::thread::spawn(move || {
        for byte in b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: "
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
    let closed = closed.expect("the server closed the connection");
    assert!(
        closed >= Duration::from_millis(1800) && closed < Duration::from_millis(3500),
        "cut after {closed:?}, header timeout 2 s"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sigterm_is_not_held_up_by_half_sent_heads() {
    let dir = temp_dir("stop-half-head");
    let server = Server::start(
        &dir.join("inbox.sqlite"),
        &[
            "--header-timeout",
            "60",
            "--idle-timeout",
            "60",
            "--grace",
            "30",
        ],
    );
    // A first request head, half sent.
    let mut first = server.connect();
    first
        .write_all(b"POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-le")
        .unwrap();
    // A second request head, half sent after a delivery on the same connection.
    let mut reader = BufReader::new(server.connect());
    let head = exchange(&mut reader, &signed_request(&event("stop-1"))).expect("an answer");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    reader
        .get_mut()
        .write_all(b"POST / HTTP/1.1\r\nhost: 127.")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let started = Instant::now();
    let status = server.terminate(Duration::from_secs(10));
    let took = started.elapsed();
    eprintln!("stopped {took:?} after SIGTERM");
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(3), "stop took {took:?}");
    let mut rest = Vec::new();
    assert!(matches!(first.read_to_end(&mut rest), Ok(0) | Err(_)));
    assert_eq!(read_response(&mut reader), None, "closed without an answer");
    let _ = std::fs::remove_dir_all(dir);
}
