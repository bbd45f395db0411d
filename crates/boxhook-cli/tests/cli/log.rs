//! `boxhook serve`'s stderr: one escaped line per request, and the
//! framework's warnings and errors through the tracing subscriber.
#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use crate::common;

use std::io::BufReader;
use std::time::Duration;

use boxhook_testkit::Delivery;
use common::{boxhook, event, exchange, raw_request, run, signed_request, temp_dir, Server};

fn answer(server: &Server, request: &[u8]) -> String {
    let mut reader = BufReader::new(server.connect());
    exchange(&mut reader, request).expect("an answer")
}

#[test]
fn text_from_a_delivery_cannot_forge_log_lines_or_reach_the_terminal() {
    let dir = temp_dir("log-injection");
    let server = Server::start(&dir.join("inbox.sqlite"), &[]);
    let id = "e1\n2026-11-30 INFO forged\u{1b}]0;x\u{7}";
    let head = answer(&server, &signed_request(&event(id)));
    assert!(head.starts_with("http/1.1 200"), "{head}");

    let stderr = server.wait_for_stderr("forged", Duration::from_secs(5));
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("forged")).collect();
    assert_eq!(lines.len(), 1, "one line for the delivery: {stderr:?}");
    assert!(
        lines[0].starts_with("POST / 200 handled delivery="),
        "{:?}",
        lines[0]
    );
    assert!(
        lines[0]
            .contains(r" event=e1\n2026-11-30 INFO forged\u{1b}]0;x\u{7} trigger=FILE.UPLOADED "),
        "{:?}",
        lines[0]
    );
    assert!(
        !stderr.contains(['\u{1b}', '\u{7}']),
        "no raw escape reaches stderr: {stderr:?}"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn framework_warnings_reach_stderr_and_info_lines_do_not() {
    let dir = temp_dir("log-warn");
    let server = Server::start(&dir.join("inbox.sqlite"), &[]);
    let head = answer(&server, &signed_request(&event("log-ok")));
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let wrong = raw_request(
        &Delivery::new(event("log-wrong"))
            .sent_at(chrono::Utc::now())
            .wrong_key(),
    );
    let head = answer(&server, &wrong);
    assert!(head.starts_with("http/1.1 401"), "{head}");

    let stderr = server.wait_for_stderr("rejected Box delivery", Duration::from_secs(5));
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains("rejected Box delivery"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        !stderr.contains(" INFO "),
        "no per-event info lines: {stderr}"
    );
    assert!(
        !stderr.contains("why the delivery was rejected"),
        "no diagnosis without debug logging: {stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "no colours when not a terminal: {stderr:?}"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

/// With debug logging on, a 401 gets the diagnosis's codes in the log; the
/// peer's answer is the same empty 401.
#[test]
fn a_rejection_is_diagnosed_at_debug_level_only_in_the_log() {
    let dir = temp_dir("log-diagnosis");
    let server = Server::start_with_env(
        &dir.join("inbox.sqlite"),
        &[],
        &[("RUST_LOG", "warn,boxhook::serve=debug")],
    );
    let wrong = raw_request(
        &Delivery::new(event("log-diagnosed"))
            .sent_at(chrono::Utc::now())
            .wrong_key(),
    );
    let head = answer(&server, &wrong);
    assert!(head.starts_with("http/1.1 401"), "{head}");
    assert!(!head.contains("unexplained"), "{head}");
    let stderr = server.wait_for_stderr("why the delivery was rejected", Duration::from_secs(5));
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("why the delivery was rejected"))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains(" DEBUG "), "{}", lines[0]);
    // The test event's members are not in Box's order: evidence, not a repair.
    assert!(lines[0].contains("hints=reserialized"), "{}", lines[0]);
    assert!(lines[0].contains("NOT verified"), "{}", lines[0]);
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn rust_log_overrides_the_filter() {
    let dir = temp_dir("log-rust-log");
    let server = Server::start_with_env(
        &dir.join("inbox.sqlite"),
        &[],
        &[("RUST_LOG", "boxhook=info")],
    );
    let head = answer(&server, &signed_request(&event("log-info")));
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let stderr = server.wait_for_stderr(" INFO ", Duration::from_secs(5));
    assert!(
        stderr.lines().any(|l| l.contains(" INFO ")
            && l.contains("event stored in the inbox")
            && l.contains("log-info")),
        "{stderr}"
    );
    drop(server);

    let out = run(
        boxhook()
            .env("RUST_LOG", "boxhook=loudest")
            .args([
                "--primary-key",
                "k",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--inbox",
            ])
            .arg(dir.join("other.sqlite")),
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("RUST_LOG=boxhook=loudest is not a valid log filter"),
        "{stderr}"
    );
    assert!(
        stderr.contains("unset it, or use e.g. RUST_LOG=warn"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn concurrent_deliveries_of_one_event_are_labelled_by_the_inbox_answer() {
    const ATTEMPTS: usize = 50;
    let dir = temp_dir("log-labels");
    let inbox = dir.join("inbox.sqlite");
    let server = Server::start(&inbox, &[]);
    // Box's retries of one event: each with its own delivery id and
    // signature, all sent at once so that none sees another stored.
    let requests: Vec<Vec<u8>> = (0..ATTEMPTS)
        .map(|n| {
            raw_request(
                &Delivery::new(event("raced"))
                    .sent_at(chrono::Utc::now())
                    .delivery_id(format!("attempt-{n}")),
            )
        })
        .collect();
    let start = std::sync::Barrier::new(ATTEMPTS);
    let heads: Vec<String> = std::thread::scope(|scope| {
        let threads: Vec<_> = requests
            .iter()
            .map(|request| {
                let (server, start) = (&server, &start);
                scope.spawn(move || {
                    let mut reader = BufReader::new(server.connect());
                    start.wait();
                    exchange(&mut reader, request).expect("an answer")
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert!(
        heads.iter().all(|h| h.starts_with("http/1.1 200")),
        "{heads:?}"
    );

    // Each line is written before its answer goes out; give the pipe a moment.
    let mut stderr = server.stderr();
    for _ in 0..100 {
        if stderr.matches("event=raced").count() >= ATTEMPTS {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        stderr = server.stderr();
    }
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("event=raced"))
        .collect();
    assert_eq!(lines.len(), ATTEMPTS, "{stderr}");
    let handled = lines.iter().filter(|l| l.contains(" 200 handled ")).count();
    let duplicate = lines
        .iter()
        .filter(|l| l.contains(" 200 duplicate "))
        .count();
    assert_eq!((handled, duplicate), (1, ATTEMPTS - 1), "{stderr}");
    assert_eq!(server.terminate(Duration::from_secs(10)).code(), Some(0));

    let listed = run(
        boxhook()
            .args(["inbox", "list", "--json", "--inbox"])
            .arg(&inbox),
        Duration::from_secs(20),
    );
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(
        listed.contains(&format!("\"deliveries\":{ATTEMPTS}")),
        "{listed}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
