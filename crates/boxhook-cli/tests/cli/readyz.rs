//! `/readyz` on a full disk: while every store fails, readiness fails too,
//! with the store's error, though the inbox still answers reads; once
//! space is freed and a delivery is stored again, it is ready again. On a
//! real 2 MiB tmpfs.

#![cfg(unix)] // Reason: tmpfs mounts.
#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use crate::common;
use crate::small_fs;

use std::path::Path;
use std::time::Duration;

use boxhook_testkit::Delivery;
use common::admin::{admin_addr, get, post};
use common::Server;
use small_fs::on_small_fs;

/// A distinct `webhook_event` of about `size` bytes.
fn big_event(n: u64, size: usize) -> String {
    let name = "x".repeat(size);
    format!(
        r#"{{"type":"webhook_event","id":"e-{n}","trigger":"FILE.UPLOADED","webhook":{{"id":"4133","type":"webhook"}},"source":{{"id":"f-{n}","type":"file","name":"{name}"}}}}"#
    )
}

#[test]
fn readyz_fails_while_the_disk_is_full_and_recovers() {
    on_small_fs(
        "readyz_fails_while_the_disk_is_full_and_recovers",
        "2m",
        full_disk,
    );
}

fn full_disk(dir: &Path) {
    std::fs::write(dir.join("ballast"), vec![0_u8; 384 * 1024]).unwrap();
    let server = Server::start(&dir.join("inbox.sqlite"), &["--admin", "127.0.0.1:0"]);
    let admin = admin_addr(&server);
    let ready = (
        200,
        "ready: store reachable, 2 signature key(s) loaded\n".to_owned(),
    );
    let readyz = || {
        let (status, _, body) = get(&admin, "/readyz", None);
        (status, body)
    };
    assert_eq!(readyz(), ready);
    // Fill the disk until a store fails.
    let mut refused = None;
    for n in 0..120 {
        let delivery = Delivery::new(big_event(n, 30 * 1024)).sent_at(chrono::Utc::now());
        match post(&server, &delivery) {
            200 => {}
            503 => {
                refused = Some(n);
                break;
            }
            other => panic!("delivery {n}: {other}\n{}", server.stderr()),
        }
    }
    let refused = refused.expect("2 MiB never filled up");
    let (status, body) = readyz();
    assert_eq!(status, 503, "{body}");
    assert!(
        body.starts_with("not ready: the last write to the store failed 0 s ago: ")
            || body.starts_with("not ready: the last write to the store failed 1 s ago: "),
        "{body}"
    );
    assert!(body.contains("database or disk is full"), "{body}");
    // Reads still answer: the dashboard counts what was stored (a count
    // is reused for 2 s).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let summary = loop {
        let (_, _, json) = get(&admin, "/summary.json", None);
        let summary: serde_json::Value = serde_json::from_str(&json).unwrap();
        if summary["inbox"]["states"]["pending"] == refused || std::time::Instant::now() > deadline
        {
            break summary;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(summary["inbox"]["states"]["pending"], refused, "{summary}");
    assert_eq!(summary["inbox"]["error"], serde_json::Value::Null);
    let (status, body) = readyz();
    assert_eq!(status, 503, "{body}");

    // Space freed: Box's retry is stored, and the receiver is ready again.
    std::fs::remove_file(dir.join("ballast")).unwrap();
    let retry = Delivery::new(big_event(refused, 30 * 1024)).sent_at(chrono::Utc::now());
    assert_eq!(post(&server, &retry), 200, "{}", server.stderr());
    assert_eq!(readyz(), ready);
    assert_eq!(server.terminate(Duration::from_secs(30)).code(), Some(0));
}
