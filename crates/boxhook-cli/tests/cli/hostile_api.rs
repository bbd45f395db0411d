//! `boxhook webhooks` and `serve --webhooks` as processes, against a fake
//! Box API that misbehaves: error messages full of terminal escapes and line
//! breaks (nothing of them may reach the terminal as such), and lists whose
//! pages never end or go round in a loop (stopped, with the bound named).

#![cfg(unix)]
#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use crate::common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use boxhook_admin::fake::{FakeBoxApi, FakeBoxApiBuilder, Paging, FAKE_ACCESS_TOKEN};
use boxhook_testkit::{sample_keys, RetrySchedule, Simulator};
use common::{boxhook, run, temp_dir, Server};

const LIMIT: Duration = Duration::from_secs(60);
const HOOK: &str = "https://hooks.example.com/box";

/// An error message that clears the screen, retitles the terminal, rings
/// its bell and forges a line of its own.
const HOSTILE: &str = "\u{1b}[2J\u{1b}]0;pwned\u{7}denied\nboxhook: all good";
/// The same, as it must be shown.
const HOSTILE_SHOWN: &str = r"\u{1b}[2J\u{1b}]0;pwned\u{7}denied\nboxhook: all good";

/// The fake, served by its own runtime for the test's whole length.
struct Fake {
    api: FakeBoxApi,
    runtime: tokio::runtime::Runtime,
}

fn fake_with(builder: FakeBoxApiBuilder) -> Fake {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let api = runtime.block_on(builder.start()).unwrap();
    Fake { api, runtime }
}

/// `boxhook webhooks ARGS` with the fake's static token.
fn webhooks(fake: &Fake, args: &[&str]) -> Output {
    let mut command: Command = boxhook();
    for name in [
        "BOX_CLIENT_ID",
        "BOX_CLIENT_SECRET",
        "BOX_SUBJECT_TYPE",
        "BOX_SUBJECT_ID",
    ] {
        command.env_remove(name);
    }
    run(
        command
            .env("BOX_ACCESS_TOKEN", FAKE_ACCESS_TOKEN)
            .arg("webhooks")
            .args(args)
            .args(["--api-base", &fake.api.uri()]),
        LIMIT,
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Nothing of `HOSTILE` acts on a terminal or starts a line of its own.
fn assert_inert(stderr: &str) {
    assert!(!stderr.contains('\u{1b}'), "an ESC byte: {stderr:?}");
    assert!(!stderr.contains('\u{7}'), "a BEL byte: {stderr:?}");
    assert!(
        !stderr.lines().any(|l| l.starts_with("boxhook: all good")),
        "a forged line: {stderr:?}"
    );
}

fn desired(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("webhooks.toml");
    std::fs::write(
        &path,
        format!(
            "[[webhook]]\ntarget = \"folder:11\"\naddress = \"{HOOK}\"\ntriggers = [\"FILE.UPLOADED\"]\n"
        ),
    )
    .unwrap();
    path
}

/// `serve --webhooks` against the fake.
fn serve(fake: &Fake, dir: &std::path::Path) -> Server {
    let file = desired(dir);
    Server::start_with_env(
        &dir.join("inbox.sqlite"),
        &[
            "--webhooks",
            file.to_str().unwrap(),
            "--api-base",
            &fake.api.uri(),
            "--box-auth",
            "oauth2",
        ],
        &[("BOX_ACCESS_TOKEN", FAKE_ACCESS_TOKEN)],
    )
}

#[test]
fn a_hostile_api_error_reaches_the_terminal_escaped_in_one_line() {
    let fake = fake_with(FakeBoxApi::builder());
    fake.api.fail_call_with(1, 400, "bad_request", HOSTILE);
    let out = webhooks(&fake, &["list"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "boxhook: cannot list the webhooks: Box answered 400 bad_request: {HOSTILE_SHOWN} \
             (request id fakereq00000001)\n"
        )
    );
    assert_inert(&stderr);
    assert_eq!(out.stdout, b"");
}

#[test]
fn serve_with_webhooks_logs_a_hostile_api_error_escaped() {
    let fake = fake_with(FakeBoxApi::builder());
    let dir = temp_dir("hostile-serve");
    // Call 1 is the list at start; the calls of the re-create come after.
    for n in 1..=10 {
        fake.api.fail_call_with(n, 400, "bad_request", HOSTILE);
    }
    let server = serve(&fake, &dir);
    let stderr = server.wait_for_stderr("cannot list the current webhooks", LIMIT);
    assert!(
        stderr.contains(&format!(
            "webhooks: cannot list the current webhooks (Box answered 400 bad_request: \
             {HOSTILE_SHOWN} (request id fakereq00000001)); a WEBHOOK.DELETED without its item \
             as source cannot be matched until the next restart\n"
        )),
        "{stderr}"
    );

    // A WEBHOOK.DELETED by auto_cleanup: the re-create meets the same error.
    let event = r#"{"type":"webhook_event","id":"e-1","created_at":"2026-11-30T03:00:12-07:00","trigger":"WEBHOOK.DELETED","webhook":{"id":"4000001","type":"webhook"},"source":{"id":"11","type":"folder"},"additional_info":{"reason":"auto_cleanup"}}"#;
    let simulator = Simulator::builder(server.url.parse().unwrap(), sample_keys())
        .schedule(RetrySchedule::none())
        .timeout(Duration::from_secs(20))
        .build();
    let report = fake.runtime.block_on(simulator.send_body(event));
    assert_eq!(
        report.last().unwrap().status().map(|s| s.as_u16()),
        Some(503),
        "Box will retry"
    );
    let stderr = server.wait_for_stderr("webhooks_recreate_failed=1", LIMIT);
    assert!(
        stderr.contains(&format!(
            "webhooks: ALERT: could not re-create the webhook on folder:11: Box answered 400 \
             bad_request: {HOSTILE_SHOWN} (request id fakereq00000002); Box will retry the event \
             [webhooks_recreated=0 webhooks_already_back=0 webhooks_alerted=0 \
             webhooks_recreate_failed=1]\n"
        )),
        "{stderr}"
    );
    // The library's own log line (boxhook_admin) is escaped the same way.
    assert!(
        stderr.contains(&format!(
            " ERROR boxhook_admin: ALERT: could not re-create the webhook on folder:11: Box \
             answered 400 bad_request: {HOSTILE_SHOWN} (request id fakereq00000002); Box will \
             retry the event\n"
        )),
        "{stderr}"
    );
    assert_inert(&stderr);
    let status = server.terminate(LIMIT);
    assert!(status.success());
}

#[test]
fn webhooks_list_stops_an_endless_list_at_its_bound() {
    let fake = fake_with(FakeBoxApi::builder().paging(Paging::Endless));
    let out = webhooks(&fake, &["list"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "boxhook: cannot list the webhooks: unexpected answer from the Box API (webhook list): \
         page 11 would bring the list past 10000 webhooks; Box keeps at most 1000 per app and \
         user, so this API does not page as Box's does: stopped\n"
    );
    assert_eq!(out.stdout, b"");
    assert_eq!(fake.api.count("GET /2.0/webhooks"), 11);
    assert_eq!(fake.api.count("GET /2.0/webhooks/{id}"), 0);
}

#[test]
fn webhooks_list_and_plan_stop_a_looping_list() {
    let fake = fake_with(FakeBoxApi::builder().paging(Paging::Loop { pages: 3 }));
    let dir = temp_dir("hostile-loop");
    let file = desired(&dir);
    for (args, doing) in [
        (vec!["list"], "list the webhooks"),
        (
            vec!["plan", "--file", file.to_str().unwrap()],
            "read the current webhooks",
        ),
    ] {
        fake.api.reset_calls();
        let out = webhooks(&fake, &args);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert_eq!(
            text(&out.stderr),
            format!(
                "boxhook: cannot {doing}: unexpected answer from the Box API (webhook list): \
                 page 4 gives the same next_marker as page 1, so the pages go round in a loop: \
                 stopped\n"
            )
        );
        assert_eq!(fake.api.count("GET /2.0/webhooks"), 4, "{doing}");
    }
}

#[test]
fn serve_with_webhooks_stops_an_endless_list_and_keeps_serving() {
    let fake = fake_with(FakeBoxApi::builder().paging(Paging::Endless));
    let dir = temp_dir("hostile-serve-endless");
    let server = serve(&fake, &dir);
    let stderr = server.wait_for_stderr("cannot list the current webhooks", LIMIT);
    assert!(
        stderr.contains(
            "webhooks: cannot list the current webhooks (unexpected answer from the Box API \
             (webhook list): page 11 would bring the list past 10000 webhooks; Box keeps at \
             most 1000 per app and user, so this API does not page as Box's does: stopped); a \
             WEBHOOK.DELETED without its item as source cannot be matched until the next \
             restart\n"
        ),
        "{stderr}"
    );
    assert_eq!(fake.api.count("GET /2.0/webhooks"), 11);
    // Still receiving.
    let simulator = Simulator::builder(server.url.parse().unwrap(), sample_keys())
        .schedule(RetrySchedule::none())
        .timeout(Duration::from_secs(10))
        .build();
    let report = fake
        .runtime
        .block_on(simulator.send_body(common::event("e-endless")));
    assert_eq!(
        report.last().unwrap().status().map(|s| s.as_u16()),
        Some(200)
    );
    assert!(server.terminate(LIMIT).success());
}
