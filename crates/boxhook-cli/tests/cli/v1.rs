//! `boxhook serve --v1-path` and `boxhook send --v1` as processes, over HTTP
//! on 127.0.0.1: V1 callbacks beside V2 in one inbox, usage errors, and
//! store-then-ack across `kill -9`.
#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use crate::common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{boxhook, inbox_list, run, temp_dir, Server};

const LIMIT: Duration = Duration::from_secs(30);
const SECRET: &str = "cli-v1-secret-0123456789";
const NEXT: &str = "cli-v1-next-secret-0123456789";

fn v1_server(inbox: &std::path::Path) -> Server {
    Server::start_with_env(
        inbox,
        &[
            "--v1-path",
            "/v1",
            "--v1-secret-env",
            "V1_SECRET",
            "--v1-secret-env",
            "V1_NEXT",
        ],
        &[("V1_SECRET", SECRET), ("V1_NEXT", NEXT)],
    )
}

/// One raw GET, on its own connection; the status, 0 when none came.
fn get(port: u16, target: &str) -> u16 {
    common::raw_status(
        port,
        &format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
}

#[test]
fn serve_stores_v1_callbacks_beside_v2_and_send_v1_sends_them() {
    let dir = temp_dir("v1-serve");
    let inbox = dir.join("inbox.sqlite");
    let server = v1_server(&inbox);
    let base = server.url.trim_end_matches('/').to_owned();
    let started = server.wait_for_stderr("V1 callbacks on", LIMIT);
    assert!(
        started.contains(&format!("V1 callbacks on {base}/v1\n")),
        "{started}"
    );
    let send = |secret: &str, extra: &[&str]| {
        let url = format!(
            "{base}/v1?token={secret}&event_type=#event_type#&item_id=#item_id#&item_name=#item_name#"
        );
        run(
            boxhook()
                .args(["send", "--v1", "--trigger", "uploaded", "--to", &url])
                .args(extra),
            LIMIT,
        )
    };
    // Both live secrets, GET and POST; a wrong secret is refused.
    let cases: [(&str, &[&str], i32, &str); 4] = [
        (SECRET, &[], 0, " 200 "),
        (
            NEXT,
            &["--post", "--set", "item_name=été &.txt"],
            0,
            " 200 ",
        ),
        ("wrong-secret-0123456789", &[], 1, " 401 "),
        (SECRET, &["--set", "item_id=7"], 0, " 200 "),
    ];
    for (secret, extra, code, status) in cases {
        let out = send(secret, extra);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(code), "{extra:?}: {stdout}");
        assert!(stdout.contains(status), "{extra:?}: {stdout}");
    }
    // A V2 delivery on / still works, and a V1 callback on / is named.
    let out = run(
        boxhook()
            .args(["--primary-key", boxhook_testkit::SAMPLE_PRIMARY_KEY])
            .args(["send", "--trigger", "FILE.UPLOADED", "--to", &server.url]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        get(server.port, &format!("/?token={SECRET}&event_type=x")),
        400
    );
    // The warning comes before the access line: wait for the access line.
    let log = server.wait_for_stderr("GET / 400 v1_callback_on_v2_endpoint", LIMIT);
    assert!(
        log.contains("GET / 400 v1_callback_on_v2_endpoint"),
        "{log}"
    );
    assert!(log.contains("GET /v1 401 v1_secret_wrong"), "{log}");
    assert!(
        !log.contains(SECRET),
        "the secret must not be logged: {log}"
    );

    let listed = inbox_list(&inbox);
    let kinds: Vec<(&str, &str, Option<&str>)> = listed
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["trigger"].as_str().unwrap(),
                e["source_id"].as_str(),
            )
        })
        .collect();
    // Newest first.
    assert_eq!(
        kinds,
        [
            ("v2", "FILE.UPLOADED", Some("1514863282731")),
            ("v1", "uploaded", Some("7")),
            ("v1", "uploaded", Some("123456789")),
            ("v1", "uploaded", Some("123456789")),
        ]
    );
    // The stored body is the parameters, without the secret.
    let id = listed[2]["event_id"].as_str().unwrap();
    let out = run(
        boxhook().args(["inbox", "show", id, "--inbox"]).arg(&inbox),
        LIMIT,
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "event_type=uploaded&item_id=123456789&item_name=%C3%A9t%C3%A9+%26.txt"
    );
    let table = run(
        boxhook().args(["inbox", "list", "--inbox"]).arg(&inbox),
        LIMIT,
    );
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.starts_with("RECEIVED              KIND  EVENT ID"),
        "{table}"
    );
    assert_eq!(table.matches("  v1    v1-").count(), 3, "{table}");
    assert_eq!(server.terminate(LIMIT).code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Arguments, environment, and what stderr must say.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn v1_options_are_checked_before_serving() {
    let dir = temp_dir("v1-usage");
    let inbox = dir.join("i.sqlite");
    let cases: [Case<'_>; 5] = [
        (&["--v1-path", "/v1"], &[], "--v1-secret-env"),
        (
            &["--v1-path", "/v1", "--v1-secret-env", "NOT_SET_ANYWHERE"],
            &[],
            "is not set",
        ),
        (
            &["--v1-path", "/v1", "--v1-secret-env", "S"],
            &[("S", "short")],
            "at least 16",
        ),
        (
            &["--v1-path", "v1", "--v1-secret-env", "S"],
            &[("S", SECRET)],
            "must start with /",
        ),
        (
            &["--v1-path", "/", "--v1-secret-env", "S"],
            &[("S", SECRET)],
            "also --path",
        ),
    ];
    for (args, env, needle) in cases {
        let mut command = boxhook();
        for (name, value) in env {
            command.env(name, value);
        }
        let out = run(
            command
                .args(["--primary-key", boxhook_testkit::SAMPLE_PRIMARY_KEY])
                .args(["serve", "--listen", "127.0.0.1:0", "--inbox"])
                .arg(&inbox)
                .args(args),
            LIMIT,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_secret_parameter_name_is_configurable() {
    let dir = temp_dir("v1-param");
    let inbox = dir.join("inbox.sqlite");
    let server = Server::start_with_env(
        &inbox,
        &[
            "--v1-path",
            "/hook",
            "--v1-secret-env",
            "S",
            "--v1-param",
            "k",
        ],
        &[("S", SECRET)],
    );
    assert_eq!(
        get(server.port, &format!("/hook?k={SECRET}&event_type=moved")),
        200
    );
    assert_eq!(
        get(
            server.port,
            &format!("/hook?token={SECRET}&event_type=moved")
        ),
        401
    );
    assert_eq!(get(server.port, &format!("/v1?k={SECRET}")), 404);
    assert_eq!(server.terminate(LIMIT).code(), Some(0));
    let listed = inbox_list(&inbox);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["trigger"], "moved");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `kill -9` during a concurrent burst of V1 callbacks; after a restart on
/// the same inbox, every callback that got a 2xx is there exactly once
/// (told apart by its item id, since V1 callbacks have no event id).
#[test]
fn acknowledged_v1_callbacks_survive_kill_9() {
    let dir = temp_dir("v1-durability");
    let inbox = dir.join("inbox.sqlite");
    let mut server = v1_server(&inbox);
    let total = 400_usize;
    let next = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(Mutex::new(Vec::<usize>::new()));
    let senders: Vec<_> = (0..8)
        .map(|_| {
            let (next, acked, port) = (Arc::clone(&next), Arc::clone(&acked), server.port);
            std::thread::spawn(move || loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return;
                }
                let target = format!("/v1?token={SECRET}&event_type=uploaded&item_id=burst-{n:04}");
                if get(port, &target) == 200 {
                    acked.lock().unwrap().push(n);
                }
            })
        })
        .collect();
    // Kill once some, but not all, callbacks were acknowledged.
    let deadline = Instant::now() + LIMIT;
    while acked.lock().unwrap().len() < 40 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    server.child.kill().expect("kill -9");
    let _ = server.child.wait();
    for sender in senders {
        sender.join().unwrap();
    }
    let acknowledged = acked.lock().unwrap().clone();
    eprintln!(
        "{} of {total} V1 callbacks acknowledged before kill -9",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() >= 40,
        "{} acknowledged",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() < total,
        "the kill came too late to test anything"
    );

    // Restart on the same inbox: it opens, serves, and holds every ack'd callback once.
    let server = v1_server(&inbox);
    let listed = inbox_list(&inbox);
    let mut counts: HashMap<String, u64> = HashMap::new();
    for entry in &listed {
        assert_eq!(entry["kind"], "v1", "{entry}");
        *counts
            .entry(entry["source_id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    for n in &acknowledged {
        assert_eq!(
            counts.get(&format!("burst-{n:04}")),
            Some(&1),
            "callback {n} got a 2xx, so it must be stored exactly once"
        );
    }
    assert_eq!(
        get(server.port, &format!("/v1?token={SECRET}&event_type=after")),
        200
    );
    assert_eq!(server.terminate(Duration::from_secs(40)).code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}
