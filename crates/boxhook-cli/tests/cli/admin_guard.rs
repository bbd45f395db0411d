//! The admin listener under attack: clients without the token cannot hold
//! its connections (a 401 closes the connection, an idle or slow one gives
//! way to a new one), health probes are answered while 40 keep-alive
//! sockets send `GET /nothing` every 3 s and 40 more sit idle, and without
//! a token only requests addressed to loopback are answered (DNS
//! rebinding).
#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use crate::common;

use std::io::{BufReader, Write as _};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::admin::{admin_addr, get};
use common::{closed_within, read_response, temp_dir, Server};

const TOKEN: &str = "s3cret-admin-token-0123456789";

/// `GET path` with `host`, and `authorization` if given, on `stream`
/// (keep-alive); the response head, lowercased, or `None` once closed.
fn ask(
    reader: &mut BufReader<TcpStream>,
    path: &str,
    host: &str,
    authorization: Option<&str>,
) -> Option<String> {
    let auth = authorization
        .map(|a| format!("authorization: {a}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nhost: {host}\r\n{auth}\r\n");
    reader.get_mut().write_all(request.as_bytes()).ok()?;
    read_response(reader)
}

fn connect(addr: &str) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    BufReader::new(stream)
}

#[test]
fn a_401_closes_its_connection() {
    let dir = temp_dir("admin-401");
    let server = Server::start_with_env(
        &dir.join("inbox.sqlite"),
        &["--admin", "127.0.0.1:0"],
        &[("BOXHOOK_ADMIN_TOKEN", TOKEN)],
    );
    let addr = admin_addr(&server);
    let mut reader = connect(&addr);
    let head = ask(&mut reader, "/nothing", &addr, None).expect("an answer");
    assert!(head.starts_with("http/1.1 401 unauthorized\r\n"), "{head}");
    assert!(head.contains("connection: close\r\n"), "{head}");
    assert!(
        closed_within(reader.get_mut(), Duration::from_secs(2)).is_some(),
        "the connection stays open after a 401"
    );
    // With the token, a connection is kept for the next request.
    let bearer = format!("Bearer {TOKEN}");
    let mut reader = connect(&addr);
    for _ in 0..3 {
        let head = ask(&mut reader, "/healthz", &addr, Some(&bearer)).expect("an answer");
        assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
        assert!(!head.contains("connection: close"), "{head}");
    }
    // A client that never sends its request head is cut after 2 s.
    let mut silent = TcpStream::connect(&addr).unwrap();
    let closed = closed_within(&mut silent, Duration::from_secs(5)).expect("closed");
    assert!(closed < Duration::from_secs(4), "{closed:?}");
}

/// Health probes while attackers hold as many sockets as they can: `busy`
/// keep-alive sockets each sending `GET /nothing` every 3 s (reconnecting
/// when closed) and `idle` sockets that never send anything (reconnecting
/// when closed). Returns the probes' statuses and the slowest probe.
fn probe_under_attack(
    addr: &str,
    authorization: Option<&str>,
    busy: usize,
    idle: usize,
) -> (Vec<(String, u16)>, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicU64::new(0));
    let mut attackers = Vec::new();
    for n in 0..busy + idle {
        let (addr, stop, requests) = (addr.to_owned(), Arc::clone(&stop), Arc::clone(&requests));
        attackers.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok(stream) = TcpStream::connect(&addr) else {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut reader = BufReader::new(stream);
                if n >= busy {
                    // Idle: hold the socket until the server closes it.
                    let _ = closed_within(reader.get_mut(), Duration::from_secs(30));
                    continue;
                }
                while !stop.load(Ordering::Relaxed) {
                    if ask(&mut reader, "/nothing", &addr, None).is_none() {
                        break;
                    }
                    requests.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_secs(3));
                }
            }
        }));
    }
    // Let the attack take hold.
    std::thread::sleep(Duration::from_secs(2));
    let mut statuses = Vec::new();
    let mut slowest = Duration::ZERO;
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        for path in ["/healthz", "/readyz"] {
            let started = Instant::now();
            let (status, _, body) = get(addr, path, authorization);
            slowest = slowest.max(started.elapsed());
            statuses.push((format!("{path}: {body}"), status));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    assert!(
        requests.load(Ordering::Relaxed) >= busy as u64,
        "the attack did not run"
    );
    (statuses, slowest)
}

#[test]
fn health_probes_are_answered_while_clients_without_the_token_hold_sockets() {
    let dir = temp_dir("admin-flood");
    let server = Server::start_with_env(
        &dir.join("inbox.sqlite"),
        &["--admin", "127.0.0.1:0"],
        &[("BOXHOOK_ADMIN_TOKEN", TOKEN)],
    );
    let addr = admin_addr(&server);
    let bearer = format!("Bearer {TOKEN}");
    let (statuses, slowest) = probe_under_attack(&addr, Some(&bearer), 40, 40);
    let failed: Vec<_> = statuses.iter().filter(|(_, s)| *s != 200).collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(statuses.len() >= 20, "{}", statuses.len());
    assert!(
        slowest < Duration::from_secs(1),
        "slowest probe {slowest:?}"
    );
}

#[test]
fn health_probes_are_answered_while_loopback_clients_hold_sockets() {
    let dir = temp_dir("admin-flood-open");
    let server = Server::start(&dir.join("inbox.sqlite"), &["--admin", "127.0.0.1:0"]);
    let addr = admin_addr(&server);
    let (statuses, slowest) = probe_under_attack(&addr, None, 40, 40);
    let failed: Vec<_> = statuses.iter().filter(|(_, s)| *s != 200).collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(
        slowest < Duration::from_secs(1),
        "slowest probe {slowest:?}"
    );
}

#[test]
fn without_a_token_only_requests_for_loopback_are_answered() {
    let dir = temp_dir("admin-host");
    let server = Server::start(&dir.join("inbox.sqlite"), &["--admin", "127.0.0.1:0"]);
    let addr = admin_addr(&server);
    let port = addr.rsplit(':').next().unwrap();
    let refused = "misdirected request: without --admin-token this admin listener answers \
                   only requests addressed to localhost, 127.0.0.1 or [::1] (the Host \
                   header), a defence against DNS rebinding; to reach it by another name, \
                   set --admin-token\n";
    for host in [
        format!("attacker.example:{port}"),
        "attacker.example".to_owned(),
        format!("localhost.attacker.example:{port}"),
        format!("10.0.0.5:{port}"),
    ] {
        for path in ["/healthz", "/metrics", "/summary.json", "/"] {
            let mut reader = connect(&addr);
            let request = format!("GET {path} HTTP/1.1\r\nhost: {host}\r\n\r\n");
            reader.get_mut().write_all(request.as_bytes()).unwrap();
            let mut response = String::new();
            std::io::Read::read_to_string(&mut reader, &mut response).unwrap();
            let (head, body) = response.split_once("\r\n\r\n").unwrap();
            assert!(
                head.starts_with("HTTP/1.1 421 Misdirected Request\r\n"),
                "{host} {path}: {head}"
            );
            assert!(
                head.to_ascii_lowercase().contains("connection: close"),
                "{head}"
            );
            assert_eq!(body, refused, "{host} {path}");
        }
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "localhost".to_owned(),
        format!("[::1]:{port}"),
        format!("127.0.0.2:{port}"),
    ] {
        let mut reader = connect(&addr);
        let head = ask(&mut reader, "/healthz", &host, None).expect("an answer");
        assert!(head.starts_with("http/1.1 200 ok\r\n"), "{host}: {head}");
    }
}

#[test]
fn with_a_token_any_host_is_answered() {
    let dir = temp_dir("admin-host-token");
    let server = Server::start_with_env(
        &dir.join("inbox.sqlite"),
        &["--admin", "127.0.0.1:0"],
        &[("BOXHOOK_ADMIN_TOKEN", TOKEN)],
    );
    let addr = admin_addr(&server);
    let bearer = format!("Bearer {TOKEN}");
    let mut reader = connect(&addr);
    let head = ask(
        &mut reader,
        "/healthz",
        "boxhook.internal:9090",
        Some(&bearer),
    )
    .unwrap();
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    let mut reader = connect(&addr);
    let head = ask(&mut reader, "/healthz", "boxhook.internal:9090", None).unwrap();
    assert!(head.starts_with("http/1.1 401 unauthorized\r\n"), "{head}");
}
