//! `boxhook serve --max-connections`: connections past the limit wait,
//! unaccepted, until one of the served ones closes.

mod common;

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use common::{boxhook, run, temp_dir, Server};

/// Opens a connection that declares a 100-byte body and sends only part of
/// it, so the server holds the connection (and its permit) waiting for the rest.
fn stalled(port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .write_all(b"POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 100\r\n\r\n{\"type\":")
        .expect("send a partial request");
    stream
}

#[test]
fn connections_past_the_limit_wait_for_a_free_slot() {
    let dir = temp_dir("limits");
    let server = Server::start(&dir.join("inbox.sqlite"), &["--max-connections", "2"]);
    let first = stalled(server.port);
    let _second = stalled(server.port);
    // Let the server accept both before the third arrives (the backlog is FIFO anyway).
    std::thread::sleep(Duration::from_millis(300));

    let mut third = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    third
        .write_all(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
        .expect("send a complete request");
    third
        .set_read_timeout(Some(Duration::from_millis(800)))
        .expect("set timeout");
    let mut buf = [0u8; 64];
    match third.read(&mut buf) {
        Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("a third connection was served past a limit of 2: {other:?}"),
    }

    // Closing a served connection frees its slot; the waiting one is served.
    drop(first);
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set timeout");
    let mut response = Vec::new();
    third
        .read_to_end(&mut response)
        .expect("the waiting connection is answered");
    let response = String::from_utf8_lossy(&response);
    assert!(
        response.starts_with("HTTP/1.1 405"),
        "GET is answered 405: {response:?}"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_limit_is_documented_and_must_be_positive() {
    let help = run(boxhook().args(["serve", "--help"]), Duration::from_secs(20));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("--max-connections <N>"), "{text}");
    assert!(text.contains("[default: 1024]"), "{text}");

    let zero = run(
        boxhook().args([
            "--primary-key",
            "k",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--max-connections",
            "0",
        ]),
        Duration::from_secs(20),
    );
    assert_eq!(zero.status.code(), Some(2), "a usage error");
}
