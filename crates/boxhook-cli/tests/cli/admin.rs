//! `serve --admin`: the metrics after a demo-like run, health and
//! readiness, the token rule, and a public listener that serves none of it.
#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use crate::common;

use std::time::Duration;

use common::admin::{admin_addr, covering_deliveries, get, post};
use common::{boxhook, run, temp_dir, Server};

/// The sample lines of Prometheus text, without comments.
fn sample_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect()
}

#[test]
#[allow(clippy::too_many_lines, reason = "one run, every metric checked")]
fn metrics_show_what_was_sent() {
    let dir = temp_dir("admin-metrics");
    let server = Server::start(&dir.join("inbox.sqlite"), &["--admin", "127.0.0.1:0"]);
    let admin = admin_addr(&server);
    for (what, delivery, want) in covering_deliveries() {
        assert_eq!(post(&server, &delivery), want, "{what}");
    }
    // The inbox is counted at most every 2 s for a scrape: wait for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let (status, head, text) = loop {
        let got = get(&admin, "/metrics", None);
        if got.2.contains(r#"boxhook_inbox_events{state="pending"} 5"#)
            || std::time::Instant::now() > deadline
        {
            break got;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(status, 200);
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let lines = sample_lines(&text);
    let expected = [
        r#"boxhook_deliveries_total{status="200"} 6"#,
        r#"boxhook_deliveries_total{status="401"} 2"#,
        r#"boxhook_rejections_total{reason="mismatch"} 1"#,
        r#"boxhook_rejections_total{reason="expired"} 1"#,
        r#"boxhook_verified_total{key="primary",form="raw"} 5"#,
        r#"boxhook_verified_total{key="secondary",form="raw"} 1"#,
        r#"boxhook_events_total{trigger="FILE.UPLOADED",outcome="handled"} 3"#,
        r#"boxhook_events_total{trigger="FILE.UPLOADED",outcome="duplicate"} 1"#,
        r#"boxhook_events_total{trigger="WEBHOOK.DELETED",outcome="handled"} 1"#,
        r#"boxhook_events_total{trigger="NO_ACTIVE_SESSION",outcome="handled"} 1"#,
        r#"boxhook_alerts_total{kind="webhook_deleted"} 1"#,
        r#"boxhook_alerts_total{kind="no_active_session"} 1"#,
        // Five new events, all waiting for a worker.
        r#"boxhook_inbox_events{state="pending"} 5"#,
        r#"boxhook_inbox_events{state="claimed"} 0"#,
        r#"boxhook_inbox_events{state="done"} 0"#,
        r#"boxhook_inbox_events{state="dead"} 0"#,
        // Nothing old enough to prune.
        r#"boxhook_pruned_total{state="done"} 0"#,
        r#"boxhook_pruned_total{state="keys"} 0"#,
        // Each delivery that reached the verifier, the rejected ones too.
        "boxhook_verify_seconds_count 8",
        // serve stores events itself; no handler ran.
        "boxhook_handler_seconds_count 0",
    ];
    for line in expected {
        assert!(lines.contains(&line), "missing {line:?} in\n{text}");
    }
    // Every name in the documented table, with its help text.
    for name in [
        "boxhook_deliveries_total",
        "boxhook_rejections_total",
        "boxhook_verified_total",
        "boxhook_events_total",
        "boxhook_alerts_total",
        "boxhook_verify_seconds",
        "boxhook_handler_seconds",
        "boxhook_inbox_events",
        "boxhook_inbox_oldest_pending_age_seconds",
        "boxhook_pruned_total",
    ] {
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} in\n{text}"
        );
    }
    // No id is ever a label.
    for id in ["e-1", "w-1", "f-1"] {
        assert!(!text.contains(id), "{id} in\n{text}");
    }

    // The dashboard's summary shows the same numbers.
    let (status, _, json) = get(&admin, "/summary.json", None);
    assert_eq!(status, 200);
    let summary: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        summary["deliveries"],
        serde_json::json!({"accepted": 6, "rejected": 2})
    );
    assert_eq!(
        summary["rejections"],
        serde_json::json!({"expired": 1, "mismatch": 1})
    );
    assert_eq!(summary["keys"]["primary"], 5);
    assert_eq!(summary["keys"]["secondary"], 1);
    assert_eq!(summary["keys"]["raw"], 6);
    assert_eq!(summary["keys"]["escaped"], 0);
    assert_eq!(
        summary["inbox"]["states"],
        serde_json::json!({"pending": 5, "claimed": 0, "done": 0, "dead": 0})
    );
    assert_eq!(summary["inbox"]["total"], 5);
    // The retention in force (the defaults), and nothing pruned.
    for (state, kept) in [
        ("done", "30d"),
        ("dead", "90d"),
        ("v1", "30d"),
        ("keys", "7d"),
    ] {
        assert_eq!(summary["retention"][state], kept, "{state}");
        assert_eq!(summary["pruned"][state], 0, "{state}");
    }
    let alerts = summary["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0]["trigger"], "NO_ACTIVE_SESSION");
    assert_eq!(alerts[1]["trigger"], "WEBHOOK.DELETED");
    assert_eq!(alerts[1]["webhook_id"], "w-1");
    assert_eq!(alerts[1]["reason"], "auto_cleanup");
    let recent = summary["recent"].as_array().unwrap();
    let reasons: Vec<&str> = recent
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["expired", "mismatch"]);
    // The diagnosis `boxhook verify` gives, per rejected delivery.
    assert_eq!(recent[0]["hint_code"], "expired");
    assert_eq!(recent[1]["hint_code"], "unexplained", "{}", recent[1]);
    let minutes = summary["minutes"].as_array().unwrap();
    assert_eq!(minutes.len(), 60);
    let sum = |key: &str| {
        minutes
            .iter()
            .map(|m| m[key].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!((sum("accepted"), sum("rejected")), (6, 2));
}

#[test]
fn health_readiness_and_no_admin_path_on_the_public_listener() {
    let dir = temp_dir("admin-health");
    let server = Server::start(&dir.join("inbox.sqlite"), &["--admin", "127.0.0.1:0"]);
    let admin = admin_addr(&server);
    assert_eq!(get(&admin, "/healthz", None).0, 200);
    assert_eq!(get(&admin, "/healthz", None).2, "ok\n");
    assert_eq!(
        get(&admin, "/readyz", None).2,
        "ready: store reachable, 2 signature key(s) loaded\n"
    );
    assert_eq!(get(&admin, "/nope", None).0, 404);
    let (status, head, page) = get(&admin, "/", None);
    assert_eq!(status, 200);
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    assert!(
        page.contains("<script src=\"/dashboard.js\"></script>"),
        "{page}"
    );
    assert_eq!(get(&admin, "/dashboard.js", None).0, 200);
    assert_eq!(get(&admin, "/dashboard.css", None).0, 200);
    let public = format!("127.0.0.1:{}", server.port);
    for path in [
        "/metrics",
        "/healthz",
        "/readyz",
        "/summary.json",
        "/dashboard.js",
    ] {
        assert_eq!(
            get(&public, path, None).0,
            404,
            "{path} on the public listener"
        );
    }
    // Without --admin, no admin listener and no line about one.
    let plain = Server::start(&dir.join("plain.sqlite"), &[]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!plain.stderr().contains("admin on"), "{}", plain.stderr());
}

#[test]
fn the_token_is_required_when_given_and_off_loopback() {
    let dir = temp_dir("admin-token");
    let token = "s3cret-admin-token-0123456789";
    let server = Server::start_with_env(
        &dir.join("inbox.sqlite"),
        &["--admin", "127.0.0.1:0"],
        &[("BOXHOOK_ADMIN_TOKEN", token)],
    );
    let admin = admin_addr(&server);
    let (status, head, _) = get(&admin, "/metrics", None);
    assert_eq!(status, 401);
    assert!(
        head.contains("www-authenticate: basic realm=\"boxhook admin\""),
        "{head}"
    );
    assert_eq!(
        get(&admin, "/healthz", Some("Bearer wrong-token-0123456789ab")).0,
        401
    );
    assert_eq!(
        get(&admin, "/healthz", Some(&format!("Bearer {token}"))).0,
        200
    );
    assert_eq!(
        get(&admin, "/metrics", Some(&format!("Bearer {token}"))).0,
        200
    );

    // Off loopback without a token: refused before anything listens.
    let out = run(
        boxhook()
            .args(["--primary-key", "k"])
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--admin",
                "0.0.0.0:0",
                "--inbox",
            ])
            .arg(dir.join("other.sqlite")),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--admin 0.0.0.0:0 is reachable from other machines: set --admin-token"),
        "{stderr}"
    );
    // A token too short to be a secret.
    let out = run(
        boxhook()
            .args(["--primary-key", "k"])
            .args(["serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
            .args(["--admin-token", "short", "--inbox"])
            .arg(dir.join("other.sqlite")),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--admin-token is 5 characters"));
}

#[test]
fn json_logs_carry_the_text_lines_fields() {
    let dir = temp_dir("admin-jsonlog");
    let server = Server::start(
        &dir.join("inbox.sqlite"),
        &["--log-format", "json", "--admin", "127.0.0.1:0"],
    );
    for (what, delivery, want) in covering_deliveries()
        .iter()
        .filter(|d| ["accepted", "webhook deleted", "mismatch"].contains(&d.0))
    {
        assert_eq!(post(&server, delivery), *want, "{what}");
    }
    server.wait_for_stderr("\"outcome\":\"mismatch\"", Duration::from_secs(20));
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let text = server.wait_for_stderr("\"message\":\"stopped\"", Duration::from_secs(30));
    // Every line on stderr is one JSON object: the start and stop notices,
    // the delivery lines, and the framework's own warnings.
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("admin on http://127.0.0.1:")),
        "{text}"
    );
    assert!(messages.iter().any(|m| m.starts_with("inbox: ")), "{text}");
    assert!(messages.contains(&"stopped"), "{text}");
    let deliveries: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["message"] == "delivery")
        .collect();
    assert_eq!(deliveries.len(), 4, "{text}");
    let first = deliveries[0];
    assert_eq!(first["method"], "POST");
    assert_eq!(first["path"], "/");
    assert_eq!(first["status"], 200);
    assert_eq!(first["outcome"], "handled");
    assert_eq!(first["event_id"], "e-1");
    assert_eq!(first["trigger"], "FILE.UPLOADED");
    assert!(first["delivery_id"].is_string());
    assert!(first["latency_ms"].is_u64());
    assert_eq!(first["detail"], serde_json::Value::Null);
    let deleted = deliveries[2];
    assert_eq!(deleted["trigger"], "WEBHOOK.DELETED");
    assert_eq!(
        deleted["alert"],
        "Box deleted this webhook; no events arrive until it is recreated"
    );
    let rejected = deliveries[3];
    assert_eq!(rejected["status"], 401);
    assert_eq!(rejected["outcome"], "mismatch");
    assert_eq!(
        rejected["detail"],
        "no signature matches the body under any key"
    );
    // With --admin the 401 was diagnosed; its hint codes are in the line.
    assert_eq!(rejected["hints"], serde_json::json!(["unexplained"]));
    // The router's own warning, from tracing, as JSON with its fields.
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "WARN" && l["trigger"] == "WEBHOOK.DELETED"),
        "{text}"
    );
}

#[test]
fn work_has_an_admin_listener_too() {
    use std::io::Read as _;
    let dir = temp_dir("admin-work");
    let inbox = dir.join("inbox.sqlite");
    let server = Server::start(&inbox, &[]);
    for (what, delivery, want) in covering_deliveries().iter().take(2) {
        assert_eq!(post(&server, delivery), *want, "{what}");
    }
    drop(server);
    let mut child = boxhook()
        .args(["work", "--exec", "cat >/dev/null", "--poll-ms", "50"])
        .args(["--admin", "127.0.0.1:0", "--log-format", "json", "--inbox"])
        .arg(&inbox)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stderr.read(&mut buf) {
            let _ = tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    });
    // Only a whole line parses: stderr arrives in chunks that may end
    // mid-line, so wait for the line's newline too.
    let whole_line = |text: &str| {
        text.split_inclusive('\n')
            .find(|l| l.ends_with('\n') && l.contains("admin on http://"))
            .map(|l| l.trim_end().to_owned())
    };
    let mut text = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while whole_line(&text).is_none() && std::time::Instant::now() < deadline {
        if let Ok(more) = rx.recv_timeout(Duration::from_millis(100)) {
            text.push_str(&more);
        }
    }
    let line = whole_line(&text).unwrap_or_else(|| panic!("{text}"));
    let message: serde_json::Value = serde_json::from_str(&line).unwrap();
    let addr = message["message"]
        .as_str()
        .and_then(|m| m.strip_prefix("admin on http://"))
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    let (status, _, body) = get(&addr, "/readyz", None);
    assert_eq!((status, body.as_str()), (200, "ready: store reachable\n"));
    // Both events processed: the gauge says so.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let (_, _, metrics) = get(&addr, "/metrics", None);
        if metrics.contains("boxhook_inbox_events{state=\"done\"} 2")
            || std::time::Instant::now() > deadline
        {
            break metrics;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let lines = sample_lines(&metrics);
    assert!(
        lines.contains(&"boxhook_inbox_events{state=\"done\"} 2"),
        "{metrics}"
    );
    assert!(
        lines.contains(&"boxhook_inbox_events{state=\"pending\"} 0"),
        "{metrics}"
    );
    let (status, _, page) = get(&addr, "/", None);
    assert_eq!(status, 200);
    assert!(page.contains("data-k=\"inbox.done\">2<"), "{page}");
    assert!(!page.contains("Deliveries per minute"), "{page}");
    let _ = child.kill();
    let _ = child.wait();
}
