//! `boxhook serve`, `inbox` and `demo` as processes, over HTTP on 127.0.0.1.
#![allow(
    clippy::too_many_lines,
    clippy::unwrap_used,
    reason = "tests: long literal tables, and a panic is the failure report"
)]

use crate::common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use boxhook_testkit::{sample_keys, Delivery, RetrySchedule, Simulator};
use common::{boxhook, inbox_list, run, temp_dir, Server};

const LIMIT: Duration = Duration::from_secs(30);

fn event(id: &str, trigger: &str) -> String {
    format!(
        r#"{{"type":"webhook_event","id":"{id}","created_at":"2024-05-14T08:02:14-07:00","trigger":"{trigger}","webhook":{{"id":"4133","type":"webhook"}},"source":{{"id":"f-{id}","type":"file","name":"a\/b \u00e9.txt"}},"additional_info":[]}}"#
    )
}

fn simulator(url: &str) -> Simulator {
    Simulator::builder(url.parse().expect("url"), sample_keys())
        .schedule(RetrySchedule::none())
        .timeout(Duration::from_secs(10))
        .build()
}

async fn status(simulator: &Simulator, delivery: Delivery) -> u16 {
    let report = simulator.send(delivery).await;
    report
        .last()
        .and_then(boxhook_testkit::Attempt::status)
        .map_or(0, |s| s.as_u16())
}

#[test]
fn serve_stores_counts_and_stops_on_sigterm() {
    let dir = temp_dir("serve");
    let inbox = dir.join("inbox.sqlite");
    let server = Server::start(&inbox, &["--path", "/box", "--max-body", "4096"]);
    assert!(server.url.ends_with("/box"), "{}", server.url);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let other_path = server.url.replace("/box", "/other");
    let a = event("e-a", "FILE.UPLOADED");
    let b = event("e-b", "HUB.ITEM_CREATED"); // unknown trigger, kept exactly
    runtime.block_on(async {
        let sim = simulator(&server.url);
        let cases: Vec<(&str, Delivery, u16)> = vec![
            ("valid", Delivery::new(a.clone()), 200),
            ("retry of the same event", Delivery::new(a.clone()), 200),
            ("another retry", Delivery::new(a.clone()), 200),
            ("unknown trigger", Delivery::new(b.clone()), 200),
            (
                "tampered",
                Delivery::new(event("e-t", "FILE.UPLOADED")).tampered(),
                401,
            ),
            (
                "stale",
                Delivery::new(event("e-s", "FILE.UPLOADED")).stale(),
                401,
            ),
            (
                "wrong key",
                Delivery::new(event("e-w", "FILE.UPLOADED")).wrong_key(),
                401,
            ),
            ("not a webhook_event", Delivery::new("[1,2,3]"), 400),
            (
                "oversize",
                Delivery::new(event(&"x".repeat(5000), "FILE.UPLOADED")),
                413,
            ),
        ];
        for (name, delivery, want) in cases {
            assert_eq!(status(&sim, delivery).await, want, "{name}");
        }
        let elsewhere = simulator(&other_path);
        assert_eq!(status(&elsewhere, Delivery::new(a.clone())).await, 404);
    });
    let get = format!(
        "GET /box HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
        server.port
    );
    assert_eq!(common::raw_status(server.port, &get), 405);

    // While it runs: the CLI reads the same inbox.
    let listed = inbox_list(&inbox);
    let by_id: HashMap<&str, &serde_json::Value> = listed
        .iter()
        .map(|e| (e["event_id"].as_str().unwrap(), e))
        .collect();
    assert_eq!(by_id.len(), 2, "{listed:?}");
    assert_eq!(by_id["e-a"]["deliveries"], 3);
    assert_eq!(by_id["e-a"]["trigger"], "FILE.UPLOADED");
    assert_eq!(by_id["e-a"]["webhook_id"], "4133");
    assert_eq!(by_id["e-a"]["source_type"], "file");
    assert_eq!(by_id["e-a"]["source_id"], "f-e-a");
    assert_eq!(by_id["e-a"]["delivery_id"].as_str().map(str::len), Some(36));
    assert!(by_id["e-a"]["received_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(by_id["e-b"]["trigger"], "HUB.ITEM_CREATED");
    assert_eq!(by_id["e-b"]["deliveries"], 1);

    let filtered = run(
        boxhook()
            .args([
                "inbox",
                "list",
                "--json",
                "--trigger",
                "HUB.ITEM_CREATED",
                "--inbox",
            ])
            .arg(&inbox),
        LIMIT,
    );
    assert_eq!(
        String::from_utf8(filtered.stdout).unwrap().lines().count(),
        1
    );
    let table = run(
        boxhook().args(["inbox", "list", "--inbox"]).arg(&inbox),
        LIMIT,
    );
    assert!(String::from_utf8(table.stdout)
        .unwrap()
        .contains("2 event(s)"));

    let shown = run(
        boxhook()
            .args(["inbox", "show", "e-a", "--inbox"])
            .arg(&inbox),
        LIMIT,
    );
    assert_eq!(shown.status.code(), Some(0));
    assert_eq!(shown.stdout, a.as_bytes(), "byte-exact body");
    let missing = run(
        boxhook()
            .args(["inbox", "show", "nope", "--inbox"])
            .arg(&inbox),
        LIMIT,
    );
    assert_eq!(missing.status.code(), Some(1));
    let no_inbox = run(
        boxhook()
            .args(["inbox", "list", "--inbox"])
            .arg(dir.join("none.sqlite")),
        LIMIT,
    );
    assert_eq!(no_inbox.status.code(), Some(2));

    let status = server.terminate(Duration::from_secs(40));
    assert_eq!(status.code(), Some(0), "graceful stop exits 0");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_without_keys_is_a_usage_error() {
    let dir = temp_dir("serve-nokey");
    let out = run(
        boxhook()
            .args(["serve", "--listen", "127.0.0.1:0", "--inbox"])
            .arg(dir.join("i.sqlite")),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2));
}

/// `kill -9` during a concurrent burst; after a restart on the same inbox,
/// every delivery that got a 2xx is there exactly once.
#[test]
fn acknowledged_deliveries_survive_kill_9() {
    let dir = temp_dir("durability");
    let inbox = dir.join("inbox.sqlite");
    let mut server = Server::start(&inbox, &[]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let acked = Arc::new(AtomicUsize::new(0));
    let sim = {
        let acked = Arc::clone(&acked);
        Simulator::builder(server.url.parse().unwrap(), sample_keys())
            .schedule(RetrySchedule::none())
            .timeout(Duration::from_secs(10))
            .on_attempt(move |a| {
                if a.succeeded() {
                    acked.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build()
    };
    let total = 400;
    let ids: Vec<String> = (0..total).map(|i| format!("burst-{i:04}")).collect();
    let deliveries: Vec<Delivery> = ids
        .iter()
        .map(|id| Delivery::new(event(id, "FILE.UPLOADED")))
        .collect();
    let burst = runtime.spawn(async move { sim.send_many(deliveries, 16).await });

    // Kill once some, but not all, deliveries were acknowledged.
    let deadline = std::time::Instant::now() + LIMIT;
    while acked.load(Ordering::Relaxed) < 40 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    server.child.kill().expect("kill -9");
    let _ = server.child.wait();
    let reports = runtime.block_on(burst).expect("burst finished");
    let acknowledged: Vec<&str> = ids
        .iter()
        .zip(&reports)
        .filter(|(_, r)| r.delivered())
        .map(|(id, _)| id.as_str())
        .collect();
    eprintln!(
        "{} of {total} deliveries acknowledged before kill -9",
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

    // Restart on the same inbox: it opens, serves, and holds every ack'd event once.
    let server = Server::start(&inbox, &[]);
    let listed = inbox_list(&inbox);
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for entry in &listed {
        *counts
            .entry(entry["event_id"].as_str().unwrap())
            .or_default() += 1;
        assert_eq!(entry["deliveries"], 1, "{entry}");
    }
    for id in &acknowledged {
        assert_eq!(
            counts.get(id),
            Some(&1),
            "{id} got a 2xx, so it must be stored exactly once"
        );
    }
    runtime.block_on(async {
        assert_eq!(
            status(
                &simulator(&server.url),
                Delivery::new(event("after", "FILE.UPLOADED"))
            )
            .await,
            200
        );
    });
    assert_eq!(server.terminate(Duration::from_secs(40)).code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn demo_passes() {
    let out = run(boxhook().arg("demo"), Duration::from_secs(60));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("demo passed"), "{text}");
    // The tampered step's diagnosis: no repair verifies a changed byte.
    assert!(
        text.contains("   hint:     [unexplained] no repair verifies: check the keys"),
        "{text}"
    );
    assert!(
        text.contains("   hint:     [expired] BOX-DELIVERY-TIMESTAMP"),
        "{text}"
    );
    assert_eq!(text.matches("   ok\n").count(), 9, "{text}");
    assert!(
        text.contains("re-created through the API [webhooks_recreated=1 "),
        "{text}"
    );
}

#[test]
fn send_reports_each_attempt() {
    let dir = temp_dir("send");
    let inbox = dir.join("inbox.sqlite");
    let server = Server::start(&inbox, &[]);
    let keys = ["--primary-key", boxhook_testkit::SAMPLE_PRIMARY_KEY];
    let out = run(
        boxhook()
            .args(keys)
            .args(["send", "--to", &server.url, "--trigger", "FILE.UPLOADED"]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("attempt  1  delivery "), "{text}");
    assert!(text.contains("200 OK"), "{text}");
    let listed = inbox_list(&inbox);
    assert_eq!(listed.len(), 1);
    assert_ne!(
        listed[0]["event_id"], "df0b8e18-d430-5c05-a4ae-d0148b7a504d",
        "a fresh event id"
    );

    // A wrong key: 401, retried on a compressed Box schedule, then exit 1.
    let out = run(
        boxhook().args([
            "--primary-key",
            "wrong",
            "send",
            "--to",
            &server.url,
            "--trigger",
            "FILE.UPLOADED",
            "--retry",
            "--speedup",
            "1000000",
        ]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.matches("401 Unauthorized").count(), 11, "{text}");
    let ids: std::collections::HashSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("attempt"))
        .filter_map(|l| l.split_whitespace().nth(3))
        .collect();
    assert_eq!(ids.len(), 11, "a new delivery id per attempt: {text}");

    let body = dir.join("body.json");
    std::fs::write(&body, event("from-file", "FOLDER.CREATED")).unwrap();
    let out = run(
        boxhook()
            .args(keys)
            .args(["send", "--to", &server.url, "--body"])
            .arg(&body),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0));
    let out = run(
        boxhook().args(keys).args([
            "send",
            "--to",
            "https://example.test/",
            "--trigger",
            "FILE.UPLOADED",
        ]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "https is a usage error");
    let out = run(
        boxhook()
            .args(keys)
            .args(["send", "--to", &server.url, "--trigger", "NOT.A_TRIGGER"]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
