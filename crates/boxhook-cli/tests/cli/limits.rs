//! `boxhook serve` limits: at `--max-connections` an idle connection gives
//! way to a new one, new ones wait only while every connection is busy, and
//! every limit is documented with its default and validated.
#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use crate::common;

use std::io::{BufReader, ErrorKind, Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use common::{boxhook, closed_within, event, exchange, run, signed_request, temp_dir, Server};

/// Opens a connection that sends a signed delivery's head and only part of
/// its body, so the server holds a request in flight, waiting for the rest.
fn stalled(server: &Server, id: &str) -> TcpStream {
    let request = signed_request(&event(id));
    let mut stream = server.connect();
    stream
        .write_all(&request[..request.len() - 10])
        .expect("send a partial request");
    stream
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n";

#[test]
fn new_connections_wait_only_while_every_connection_is_busy() {
    let dir = temp_dir("limits-busy");
    let server = Server::start(&dir.join("inbox.sqlite"), &["--max-connections", "2"]);
    let first = stalled(&server, "busy-1");
    let _second = stalled(&server, "busy-2");
    // Let the server take both requests in before the third arrives.
    std::thread::sleep(Duration::from_millis(300));

    let mut third = server.connect();
    third.write_all(GET).expect("send a complete request");
    third
        .set_read_timeout(Some(Duration::from_millis(800)))
        .unwrap();
    let mut buf = [0u8; 64];
    match third.read(&mut buf) {
        Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("a third connection was served while 2 of 2 were busy: {other:?}"),
    }

    // Closing a busy connection frees its slot; the waiting one is served.
    drop(first);
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(third);
    let head = common::read_response(&mut reader).expect("the waiting connection is answered");
    assert!(
        head.starts_with("http/1.1 405"),
        "GET is answered 405: {head}"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn at_the_limit_the_oldest_idle_connection_gives_way() {
    let dir = temp_dir("limits-idle");
    let server = Server::start(
        &dir.join("inbox.sqlite"),
        &[
            "--max-connections",
            "2",
            "--idle-timeout",
            "60",
            "--header-timeout",
            "60",
        ],
    );
    let mut oldest = server.connect();
    std::thread::sleep(Duration::from_millis(100));
    let mut younger = server.connect();
    std::thread::sleep(Duration::from_millis(200));

    let third = server.connect();
    third
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut reader = BufReader::new(third);
    let head = exchange(&mut reader, GET).expect("the new connection is served at once");
    assert!(head.starts_with("http/1.1 405"), "{head}");
    assert!(
        closed_within(&mut oldest, Duration::from_secs(2)).is_some(),
        "the oldest idle connection was closed"
    );
    assert_eq!(
        closed_within(&mut younger, Duration::from_millis(200)),
        None,
        "the younger one is kept"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

/// The `[default: ...]` shown for `flag` in `serve --help`.
fn default_of<'a>(help: &'a str, flag: &str) -> Option<&'a str> {
    let mut lines = help.lines();
    lines.find(|l| l.trim_start().starts_with(flag))?;
    let doc = lines.next()?;
    let start = doc.rfind("[default: ")? + "[default: ".len();
    doc[start..].strip_suffix(']')
}

#[test]
fn every_limit_is_documented_with_its_default() {
    let help = run(boxhook().args(["serve", "--help"]), Duration::from_secs(20));
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8(help.stdout).unwrap();
    for (flag, default) in [
        ("--max-connections <N>", "1024"),
        ("--max-body <BYTES>", "1048576"),
        ("--body-budget <BYTES>", "67108864"),
        ("--grace <S>", "30"),
        ("--header-timeout <S>", "5"),
        ("--idle-timeout <S>", "5"),
        ("--max-connection-age <S>", "300"),
        ("--max-requests-per-connection <N>", "1000"),
        ("--backlog <N>", "1024"),
    ] {
        assert_eq!(default_of(&text, flag), Some(default), "{flag} in:\n{text}");
    }
    for phrase in [
        "Every answer other than a 2xx closes its connection.",
        "the oldest idle one is closed to make room",
        "at most 16 KiB of HTTP read buffer",
        "--body-budget + --max-connections × 16 KiB, 80 MiB with the defaults",
        "is answered 503 at once, and Box retries it",
        "RUST_LOG overrides the filter (default \"warn\")",
    ] {
        assert!(text.contains(phrase), "{phrase:?} in:\n{text}");
    }
}

fn serve_with(extra: &[&str]) -> std::process::Output {
    let dir = temp_dir("limits-usage");
    let out = run(
        boxhook()
            .args([
                "--primary-key",
                "k",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--inbox",
            ])
            .arg(dir.join("i.sqlite"))
            .args(extra),
        Duration::from_secs(20),
    );
    let _ = std::fs::remove_dir_all(dir);
    out
}

#[test]
fn out_of_range_limits_are_usage_errors() {
    for (flag, value, range) in [
        ("--max-connections", "0", "1..=1000000"),
        ("--idle-timeout", "0", "1..=3600"),
        ("--header-timeout", "0", "1..=300"),
        ("--header-timeout", "18446744073709551615", "1..=300"),
        ("--max-connection-age", "86401", "1..=86400"),
        ("--max-requests-per-connection", "0", "1..=1000000"),
        ("--backlog", "0", "1..=65535"),
        ("--backlog", "4294967296", ""),
        ("--grace", "3601", "0..=3600"),
        ("--max-body", "0", "1..=67108864"),
        ("--body-budget", "17179869185", "0..=17179869184"),
        ("--body-budget", "lots", ""),
        ("--idle-timeout", "99999999999999999999999", ""),
    ] {
        let out = serve_with(&[flag, value]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(
            stderr.contains(&format!("invalid value '{value}' for '{flag}")),
            "{flag} {value}: {stderr}"
        );
        assert!(stderr.contains(range), "{flag} {value}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn the_largest_allowed_limits_serve_and_stop() {
    let dir = temp_dir("limits-max");
    let server = Server::start(
        &dir.join("inbox.sqlite"),
        &[
            "--max-connections",
            "1000000",
            "--header-timeout",
            "300",
            "--idle-timeout",
            "3600",
            "--max-connection-age",
            "86400",
            "--max-requests-per-connection",
            "1000000",
            "--backlog",
            "65535",
            "--grace",
            "3600",
            "--max-body",
            "67108864",
            "--body-budget",
            "17179869184",
        ],
    );
    let mut reader = BufReader::new(server.connect());
    let head = exchange(&mut reader, GET).expect("an answer");
    assert!(head.starts_with("http/1.1 405"), "{head}");
    let stderr_so_far = server.stderr();
    assert_eq!(server.terminate(Duration::from_secs(10)).code(), Some(0));
    assert!(!stderr_so_far.contains("panicked"), "{stderr_so_far}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Reads one answer's status line from a fresh connection that sent `request`.
fn answer(server: &Server, request: &[u8]) -> String {
    let mut reader = BufReader::new(server.connect());
    exchange(&mut reader, request).expect("an answer")
}

#[test]
fn bodies_past_the_body_budget_get_503_and_those_within_it_are_stored() {
    let dir = temp_dir("limits-budget");
    let small = signed_request(&event("fits"));
    let body_len = small.len() - small.windows(4).position(|w| w == b"\r\n\r\n").unwrap() - 4;
    // Room for one body, not for two: a stalled delivery holds its share
    // until it is answered, and the next one does not fit beside it.
    let budget = (body_len + body_len / 2).to_string();
    let server = Server::start(&dir.join("inbox.sqlite"), &["--body-budget", &budget]);

    let head = answer(&server, &small);
    assert!(head.starts_with("http/1.1 200"), "{head}");

    let stalled_delivery = stalled(&server, "held");
    std::thread::sleep(Duration::from_millis(300));
    let head = answer(&server, &signed_request(&event("crowded-out")));
    assert!(head.starts_with("http/1.1 503"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    drop(stalled_delivery);
    std::thread::sleep(Duration::from_millis(300));
    let head = answer(&server, &signed_request(&event("after")));
    assert!(head.starts_with("http/1.1 200"), "{head}");

    let stderr = server.stderr();
    assert!(stderr.contains(" 503 overloaded "), "{stderr}");
    assert_eq!(server.terminate(Duration::from_secs(10)).code(), Some(0));
    let _ = std::fs::remove_dir_all(dir);
}
