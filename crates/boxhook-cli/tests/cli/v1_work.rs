//! V1 callbacks stored by `serve --v1-path` are worked by `boxhook work`:
//! `--exec` gets them as one JSON object on stdin with `BOXHOOK_KIND=v1`,
//! `--forward` posts that object signed; a stored body that can never be
//! read back is dead on its first attempt, with one log line.

#![cfg(unix)]
#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]
#![allow(
    clippy::doc_markdown,
    reason = "PostgreSQL and SQLite are product names, not code"
)]

use crate::common;

use std::path::Path;
use std::time::Duration;

use boxhook::inbox::{Inbox as _, NewRecord, RecordKind};
use common::{boxhook, inbox_list, run, temp_dir, Server};

const LIMIT: Duration = Duration::from_secs(60);
const SECRET: &str = "work-v1-secret-0123456789";

/// Stores two V1 callbacks (a GET, a form POST) and one V2 event through a
/// `serve --v1-path /v1`, stopped afterwards.
fn receive(inbox: &Path) {
    let server = Server::start_with_env(
        inbox,
        &["--v1-path", "/v1", "--v1-secret-env", "V1_SECRET"],
        &[("V1_SECRET", SECRET)],
    );
    let get = format!(
        "GET /v1?token={SECRET}&event_type=uploaded&item_id=42&item_type=file&item_name=Q1+%C3%A9t%C3%A9.pdf HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(common::raw_status(server.port, &get), 200);
    let form = format!("event_type=deleted&item_id=7&token={SECRET}&tag=a&tag=b");
    let post = format!(
        "POST /v1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    assert_eq!(common::raw_status(server.port, &post), 200);
    let v2 = common::raw_request(
        &boxhook_testkit::Delivery::new(common::event("e-1")).sent_at(chrono::Utc::now()),
    );
    let mut reader = std::io::BufReader::new(server.connect());
    let head = common::exchange(&mut reader, &v2).unwrap();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(server.terminate(LIMIT).code(), Some(0));
}

/// The stored V1 ids, in order.
/// The V1 records' ids in stored order (`inbox list` prints newest first).
fn v1_ids(inbox: &Path) -> Vec<String> {
    inbox_list(inbox)
        .iter()
        .rev()
        .filter(|e| e["kind"] == "v1")
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn serve_then_work_exec_hands_v1_callbacks_over_as_json() {
    let dir = temp_dir("v1-work-exec");
    let inbox = dir.join("inbox.sqlite");
    receive(&inbox);
    let ids = v1_ids(&inbox);
    assert_eq!(ids.len(), 2);
    let out_dir = dir.join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let script = dir.join("handle.sh");
    common::write_script(
        &script,
        &format!(
            "cat > {out}/$BOXHOOK_EVENT_ID.in\n\
             echo \"$BOXHOOK_KIND $BOXHOOK_TRIGGER $BOXHOOK_ATTEMPT\" > {out}/$BOXHOOK_EVENT_ID.env\n",
            out = out_dir.display()
        ),
    );
    let out = run(
        boxhook()
            .args(["work", "--once", "--inbox"])
            .arg(&inbox)
            .arg("--exec")
            .arg(&script),
        LIMIT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "processed 3 event(s); 0 attempt(s) failed\n"
    );
    assert!(!stderr.contains("ERROR"), "{stderr}");
    assert!(!stderr.contains("WARN"), "{stderr}");
    assert!(
        inbox_list(&inbox).iter().all(|e| e["state"] == "done"),
        "{:?}",
        inbox_list(&inbox)
    );

    let read = |id: &str, ext: &str| std::fs::read_to_string(out_dir.join(format!("{id}.{ext}")));
    assert_eq!(read(&ids[0], "env").unwrap(), "v1 uploaded 1\n");
    assert_eq!(read(&ids[1], "env").unwrap(), "v1 deleted 1\n");
    assert_eq!(read("e-1", "env").unwrap(), "v2 FILE.UPLOADED 1\n");
    assert_eq!(read("e-1", "in").unwrap(), common::event("e-1"));

    let first: serde_json::Value = serde_json::from_str(&read(&ids[0], "in").unwrap()).unwrap();
    let received_at = first["received_at"].as_str().unwrap().to_owned();
    assert!(
        received_at.ends_with('Z') && received_at.len() == 24,
        "{received_at}"
    );
    assert_eq!(
        first,
        serde_json::json!({
            "type": "v1_callback",
            "id": ids[0],
            "received_at": received_at,
            "trigger": "uploaded",
            "item_id": "42",
            "item_name": "Q1 été.pdf",
            "item_type": "file",
            "user_id": null,
            "params": [
                ["event_type", "uploaded"],
                ["item_id", "42"],
                ["item_type", "file"],
                ["item_name", "Q1 été.pdf"]
            ]
        })
    );
    let second: serde_json::Value = serde_json::from_str(&read(&ids[1], "in").unwrap()).unwrap();
    assert_eq!(
        second["params"],
        serde_json::json!([
            ["event_type", "deleted"],
            ["item_id", "7"],
            ["tag", "a"],
            ["tag", "b"]
        ])
    );
    assert_eq!(second["item_type"], serde_json::Value::Null);
    for id in &ids {
        assert!(
            !read(id, "in").unwrap().contains(SECRET),
            "the secret never reaches the handler"
        );
    }
}

#[test]
fn work_forward_posts_v1_callbacks_as_signed_json() {
    use boxhook_core::Verifier;
    use boxhook_testkit::{sample_keys, ScriptedServer, SystemClock};
    let dir = temp_dir("v1-work-forward");
    let inbox = dir.join("inbox.sqlite");
    receive(&inbox);
    let ids = v1_ids(&inbox);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(async {
        ScriptedServer::builder()
            .verify_with(Verifier::new(sample_keys()), SystemClock)
            .start()
            .await
            .unwrap()
    });
    let out = run(
        boxhook()
            .args(["--primary-key", boxhook_testkit::SAMPLE_PRIMARY_KEY])
            .args(["--secondary-key", boxhook_testkit::SAMPLE_SECONDARY_KEY])
            .args(["work", "--once", "--inbox"])
            .arg(&inbox)
            .args(["--forward", &server.uri().to_string()]),
        LIMIT,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let received = server.received();
    assert_eq!(received.len(), 3);
    let mut kinds = Vec::new();
    for request in &received {
        assert!(
            matches!(request.verification(), Some(Ok(_))),
            "signed: {:?}",
            request.verification()
        );
        let body: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
        kinds.push((
            body["type"].as_str().unwrap().to_owned(),
            body["id"].as_str().unwrap().to_owned(),
        ));
    }
    kinds.sort();
    let mut want = vec![("webhook_event".to_owned(), "e-1".to_owned())];
    want.extend(ids.iter().map(|id| ("v1_callback".to_owned(), id.clone())));
    want.sort();
    assert_eq!(kinds, want);
}

#[test]
fn a_body_that_can_never_be_read_is_dead_at_once_with_one_line() {
    let dir = temp_dir("v1-work-unreadable");
    let inbox = dir.join("inbox.sqlite");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let store = boxhook_sqlite::SqliteInbox::open(&inbox).unwrap();
            let good =
                NewRecord::parse(common::event("e-1"), Some("d-1"), chrono::Utc::now()).unwrap();
            let mut not_json = good.clone();
            not_json.event_id = "e-2".into();
            not_json.body = bytes::Bytes::from_static(b"not json at all");
            let mut bad_form = good.clone();
            bad_form.event_id = "v1-bad".into();
            bad_form.webhook_id = String::new();
            bad_form.kind = RecordKind::V1;
            bad_form.body = bytes::Bytes::from_static(b"event_type=%FF");
            for record in [not_json, bad_form] {
                store.store(record).await.unwrap();
            }
        });
    let out = run(
        boxhook()
            .args(["work", "--once", "--max-attempts", "10", "--inbox"])
            .arg(&inbox)
            .args(["--exec", "cat > /dev/null"]),
        LIMIT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "processed 0 event(s); 2 attempt(s) failed\n"
    );
    let about = |id: &str| -> Vec<String> {
        stderr
            .lines()
            // `/e-2 `, as in `event=4133/e-2 kind=…`: the temporary
            // directory's name in other lines may hold `e-2` too.
            .filter(|l| l.contains(&format!("/{id} ")))
            .map(str::to_owned)
            .collect()
    };
    for (id, error) in [
        (
            "e-2",
            "error=the stored body is not a webhook_event: body is not JSON",
        ),
        ("v1-bad", "error=the stored V1 callback is unreadable"),
    ] {
        let lines = about(id);
        assert_eq!(lines.len(), 1, "{id}: {stderr}");
        assert!(lines[0].contains("ERROR"), "{stderr}");
        assert!(
            lines[0].contains(
                "inbox event can never be processed: its stored body does not read back; it \
                 is dead at once, not retried"
            ),
            "{stderr}"
        );
        assert!(lines[0].contains(error), "{stderr}");
    }
    let states: Vec<(String, String, u64)> = inbox_list(&inbox)
        .iter()
        .map(|e| {
            (
                e["event_id"].as_str().unwrap().to_owned(),
                e["state"].as_str().unwrap().to_owned(),
                e["attempts"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        // Newest first, as `inbox list` prints.
        [
            ("v1-bad".to_owned(), "dead".to_owned(), 1),
            ("e-2".to_owned(), "dead".to_owned(), 1)
        ]
    );
}
