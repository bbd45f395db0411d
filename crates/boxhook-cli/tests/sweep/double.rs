//! The broken receiver the sweep must catch: it answers `200` as soon as a
//! request is read, and only then stores the event (through the same
//! `SqliteInbox`, so the writer thread and the file are `serve`'s). When
//! the store then fails or the process dies before its COMMIT, an event
//! answered 2xx is not in the inbox.
//!
//! It is this test binary run as `sweep broken-receiver --inbox FILE`; it
//! is not part of `boxhook`. It prints `listening on
//! http://127.0.0.1:PORT/`, accepts any POST whose body is a
//! `webhook_event` (no signature check: it is a double), and exits 0 on
//! SIGTERM after 300 ms, so that stores begun before are done.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use boxhook::inbox::{Inbox, NewRecord};
use boxhook_sqlite::SqliteInbox;

use crate::wire::read_request;

/// The first argument that makes this binary the double.
pub const ARG: &str = "broken-receiver";

/// Runs the double with `args` (after [`ARG`]): `--inbox FILE`.
pub fn main(args: &[String]) -> ExitCode {
    let [flag, path] = args else {
        eprintln!("usage: sweep {ARG} --inbox FILE");
        return ExitCode::from(2);
    };
    if flag != "--inbox" {
        eprintln!("usage: sweep {ARG} --inbox FILE");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // SIGTERM is caught before the `listening on` line (as serve does).
    let term = match runtime.block_on(async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    }) {
        Ok(term) => term,
        Err(e) => {
            eprintln!("cannot catch SIGTERM: {e}");
            return ExitCode::FAILURE;
        }
    };
    let inbox = match SqliteInbox::open(PathBuf::from(path)) {
        Ok(inbox) => inbox,
        Err(e) => {
            eprintln!("cannot open inbox {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    answer_before_commit(&runtime, inbox, term)
}

/// The defect both doubles share: listens on 127.0.0.1 (printing
/// `listening on`), answers each delivery `200` and only then stores it in
/// `inbox`; returns on SIGTERM (`term`).
pub fn answer_before_commit<I: Inbox + Clone>(
    runtime: &tokio::runtime::Runtime,
    inbox: I,
    term: tokio::signal::unix::Signal,
) -> ExitCode {
    let listener = match TcpListener::bind("127.0.0.1:0").and_then(|l| Ok((l.local_addr()?, l))) {
        Ok((addr, listener)) => {
            println!("listening on http://{addr}/");
            listener
        }
        Err(e) => {
            eprintln!("cannot listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let handle = runtime.handle().clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let inbox = inbox.clone();
            let handle = handle.clone();
            std::thread::spawn(move || {
                let mut stream = stream;
                while let Some((head, body)) = read_request(&mut stream) {
                    let delivery = head
                        .lines()
                        .find_map(|l| l.strip_prefix("box-delivery-id: "))
                        .map(|v| v.trim().to_owned());
                    let Ok(record) =
                        NewRecord::parse(body, delivery.as_deref(), chrono::Utc::now())
                    else {
                        let _ = stream.write_all(
                            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        );
                        return;
                    };
                    // The defect: the answer goes out before the COMMIT.
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
                    let inbox = inbox.clone();
                    handle.spawn(async move {
                        if let Err(e) = inbox.store(record).await {
                            eprintln!("store failed after the 200: {e}");
                        }
                    });
                }
            });
        }
    });
    let mut term = term;
    runtime.block_on(async {
        term.recv().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    });
    ExitCode::SUCCESS
}
