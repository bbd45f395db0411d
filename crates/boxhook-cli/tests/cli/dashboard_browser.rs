//! The dashboard in a real browser: headless Chromium loads `serve
//! --admin`'s page after deliveries that fill every card, runs its script,
//! and the numbers it shows are checked; screenshots at 360 px and 1440 px
//! go to `target/dashboard/`. With a certificate that expires in 10 days,
//! the page shows the warning, after its script refreshed it.
//!
//! Needs Debian's `chromium` (or `BOXHOOK_CHROMIUM=/path`). Without it the
//! test says so and passes, unless `BOXHOOK_BROWSER=required` (as in CI).
#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::admin::{admin_addr, covering_deliveries, get, post};
use common::{run, temp_dir, Server};

fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("BOXHOOK_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Chromium, headless, as root in a container, with a fresh profile and no
/// traffic of its own.
fn browser(binary: &Path, profile: &Path, width: u32) -> Command {
    let mut command = Command::new(binary);
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--virtual-time-budget=4000",
    ]);
    command
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size={width},900"));
    command
}

/// `data-k="KEY">N<` in the page: the number the page shows for KEY.
fn shown(dom: &str, key: &str) -> Option<u64> {
    let marker = format!("data-k=\"{key}\">");
    let start = dom.find(&marker)? + marker.len();
    dom[start..].split('<').next()?.parse().ok()
}

/// Chromium, or `None` after saying why the test is skipped (a failure
/// when `BOXHOOK_BROWSER=required`).
fn chromium_or_skip(test: &str) -> Option<PathBuf> {
    let binary = chromium();
    if binary.is_none() {
        assert!(
            std::env::var("BOXHOOK_BROWSER").as_deref() != Ok("required"),
            "BOXHOOK_BROWSER=required but no Chromium: apt-get install chromium chromium-driver"
        );
        eprintln!(
            "SKIPPED {test}: no Chromium (apt-get install chromium, or set BOXHOOK_CHROMIUM); \
             CI sets BOXHOOK_BROWSER=required"
        );
    }
    binary
}

#[test]
#[cfg(unix)]
fn dashboard_warns_of_a_certificate_expiring_in_10_days_in_chromium() {
    let Some(binary) =
        chromium_or_skip("dashboard_warns_of_a_certificate_expiring_in_10_days_in_chromium")
    else {
        return;
    };
    let dir = temp_dir("dashboard-cert");
    let (_, cert, key) = crate::tls_serve::certificate_until(
        &["hooks.test"],
        crate::tls_serve::unix_now() + 10 * 86_400 + 3600,
    );
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, cert).unwrap();
    std::fs::write(&key_file, key).unwrap();
    let server = Server::start(
        &dir.join("inbox.sqlite"),
        &[
            "--admin",
            "127.0.0.1:0",
            "--tls-cert",
            cert_file.to_str().unwrap(),
            "--tls-key",
            key_file.to_str().unwrap(),
        ],
    );
    let admin = admin_addr(&server);
    let out = run(
        browser(&binary, &dir.join("profile"), 360)
            .arg("--dump-dom")
            .arg(format!("http://{admin}/")),
        Duration::from_secs(90),
    );
    assert!(
        out.status.success(),
        "chromium --dump-dom failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        dom.contains("data-refreshed=\""),
        "the script did not run:\n{dom}"
    );
    assert!(
        dom.contains("data-fits=\"true\""),
        "wider than 360 px:\n{dom}"
    );
    assert!(
        dom.contains("<section class=\"card wide urgent\" id=\"certificates\">"),
        "{dom}"
    );
    assert!(
        dom.contains(
            "<li class=\"warning\" data-level=\"warning\">The certificate for hooks.test \
             expires in 10 days, on "
        ),
        "{dom}"
    );
    assert!(dom.contains("<tr><td>hooks.test</td>"), "{dom}");
}

#[test]
#[allow(clippy::too_many_lines, reason = "one page, every card checked")]
fn dashboard_shows_every_card_in_chromium() {
    let Some(binary) = chromium_or_skip("dashboard_shows_every_card_in_chromium") else {
        return;
    };
    let dir = temp_dir("dashboard");
    let server = Server::start(&dir.join("inbox.sqlite"), &["--admin", "127.0.0.1:0"]);
    let admin = admin_addr(&server);
    for (what, delivery, want) in covering_deliveries() {
        assert_eq!(post(&server, &delivery), want, "{what}");
    }
    // A delivery id that is markup must show as text.
    let hostile = boxhook_testkit::Delivery::new("{}")
        .sent_at(chrono::Utc::now())
        .wrong_key()
        .delivery_id("<img src=x onerror=document.title='owned'>");
    assert_eq!(post(&server, &hostile), 401);
    // Let the inbox count catch up before the browser looks.
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(get(&admin, "/summary.json", None).0, 200);

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard");
    std::fs::create_dir_all(&shots).unwrap();
    let url = format!("http://{admin}/");
    for width in [360u32, 1440] {
        let profile = dir.join(format!("profile-{width}"));
        let out = run(
            browser(&binary, &profile, width)
                .arg("--dump-dom")
                .arg(&url),
            Duration::from_secs(90),
        );
        let dom = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "chromium --dump-dom failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The script ran, refreshed the page from /summary.json, and the
        // page fits the width without sideways scrolling.
        assert!(
            dom.contains("data-refreshed=\""),
            "the script did not run:\n{dom}"
        );
        assert!(
            dom.contains("data-fits=\"true\""),
            "wider than {width} px:\n{dom}"
        );
        let expect: &[(&str, u64)] = &[
            ("deliveries.accepted", 6),
            ("deliveries.rejected", 3),
            ("rejections.mismatch", 2),
            ("rejections.expired", 1),
            ("triggers.FILE.UPLOADED.events", 4),
            ("triggers.FILE.UPLOADED.duplicates", 1),
            ("triggers.WEBHOOK.DELETED.events", 1),
            ("triggers.NO_ACTIVE_SESSION.events", 1),
            ("keys.primary", 5),
            ("keys.secondary", 1),
            ("keys.raw", 6),
            ("keys.escaped", 0),
            ("alerts.webhook_deleted", 1),
            ("alerts.no_active_session", 1),
            ("inbox.pending", 5),
        ];
        for (key, want) in expect {
            assert_eq!(shown(&dom, key), Some(*want), "{key} at {width} px:\n{dom}");
        }
        assert!(shown(&dom, "inbox.oldest_pending_age_s").is_some(), "{dom}");
        // The alert card: reason, webhook id and what to do.
        assert!(
            dom.contains("webhook w-1, reason auto_cleanup: Box deleted this webhook; no events arrive until it is recreated"),
            "{dom}"
        );
        assert!(
            dom.contains(
                "webhook w-1: the webhook's authorization expired; re-authorize the Box app"
            ),
            "{dom}"
        );
        // The key card's plain words.
        assert!(
            dom.contains("1 verified deliveries matched only the secondary key"),
            "{dom}"
        );
        // Rejected deliveries with the diagnosis' hint.
        assert!(dom.contains("<b>expired</b>"), "{dom}");
        assert!(dom.contains("401 mismatch"), "{dom}");
        // Markup from the network stays text.
        assert!(
            dom.contains("&lt;img src=x onerror=document.title='owned'&gt;"),
            "{dom}"
        );
        assert!(!dom.contains("<img"), "{dom}");
        assert!(!dom.contains("<title>owned</title>"), "{dom}");

        let shot = shots.join(format!("dashboard-{width}.png"));
        let _ = std::fs::remove_file(&shot);
        let out = run(
            browser(&binary, &dir.join(format!("shot-{width}")), width)
                .arg(format!("--screenshot={}", shot.display()))
                .arg(&url),
            Duration::from_secs(90),
        );
        assert!(
            out.status.success(),
            "chromium --screenshot failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let png = std::fs::read(&shot).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{}", shot.display());
        eprintln!("screenshot: {}", shot.display());
    }
}
