//! `boxhook webhooks plan|apply|list|delete` and `serve --webhooks` as
//! processes, against the fake Box API running in the test.
#![allow(
    clippy::too_many_lines,
    clippy::unwrap_used,
    reason = "tests: long literal tables, and a panic is the failure report"
)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use boxhook_admin::fake::{FakeBoxApi, FAKE_ACCESS_TOKEN, FAKE_CLIENT_ID, FAKE_CLIENT_SECRET};
use boxhook_testkit::{sample_keys, RetrySchedule, Simulator};
use common::{boxhook, run, temp_dir, Server};

/// Environment variables for one run.
type Env<'a> = &'a [(&'a str, &'a str)];

const LIMIT: Duration = Duration::from_secs(30);
const HOOK: &str = "https://hooks.example.com/box";
/// `plan` and `apply` check every address against Box's rules by default
/// (tested in `check_address.rs`); these tests are about the API calls, and
/// run with or without a network alike.
const OFFLINE: &str = "--no-check-addresses";

/// The fake, served by its own runtime for the test's whole length.
struct Fake {
    api: FakeBoxApi,
    runtime: tokio::runtime::Runtime,
}

fn fake_with(builder: boxhook_admin::fake::FakeBoxApiBuilder) -> Fake {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let api = runtime.block_on(builder.start()).unwrap();
    Fake { api, runtime }
}

fn fake() -> Fake {
    fake_with(FakeBoxApi::builder())
}

/// `boxhook webhooks ARGS` acting with `env` (no other Box credentials).
fn webhooks(fake: &Fake, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command: Command = boxhook();
    for name in [
        "BOX_ACCESS_TOKEN",
        "BOX_CLIENT_ID",
        "BOX_CLIENT_SECRET",
        "BOX_SUBJECT_TYPE",
        "BOX_SUBJECT_ID",
    ] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    run(
        command
            .arg("webhooks")
            .args(args)
            .args(["--api-base", &fake.api.uri()]),
        LIMIT,
    )
}

fn with_token(fake: &Fake, args: &[&str]) -> Output {
    webhooks(fake, &[("BOX_ACCESS_TOKEN", FAKE_ACCESS_TOKEN)], args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &Path, toml: &str) -> PathBuf {
    let path = dir.join("webhooks.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

fn desired(dir: &Path) -> PathBuf {
    write(
        dir,
        &format!(
            r#"
[[webhook]]
target = "folder:11"
address = "{HOOK}"
triggers = ["FILE.UPLOADED", "FILE.TRASHED"]

[[webhook]]
target = "file:22"
address = "{HOOK}"
triggers = ["FILE.PREVIEWED"]
"#
        ),
    )
}

#[test]
fn plan_apply_and_a_second_apply_that_writes_nothing() {
    let fake = fake();
    let dir = temp_dir("webhooks-apply");
    let file = desired(&dir);
    let file = file.to_str().unwrap();
    let old = fake
        .api
        .seed(FAKE_ACCESS_TOKEN, "folder", "11", HOOK, &["FILE.UPLOADED"]);
    let stray = fake
        .api
        .seed(FAKE_ACCESS_TOKEN, "folder", "44", HOOK, &["FILE.UPLOADED"]);

    let out = with_token(&fake, &["plan", "--file", file, "--prune", OFFLINE]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!(
            "update     folder:11                webhook {}: triggers +FILE.TRASHED\n\
             create     file:22                  {HOOK} FILE.PREVIEWED\n\
             delete     folder:44                webhook {} ({HOOK})\n\
             plan: 1 to create, 1 to update, 1 to delete, 0 unchanged\n",
            old.id, stray.id
        )
    );
    assert_eq!(fake.api.write_calls(), 0);

    let out = with_token(&fake, &["plan", "--file", file, "--json", OFFLINE]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc,
        serde_json::json!({
            "changes": [
                {"action": "update", "id": old.id, "target": "folder:11", "address": HOOK,
                 "triggers": ["FILE.UPLOADED", "FILE.TRASHED"],
                 "diff": {"add_triggers": ["FILE.TRASHED"]}},
                {"action": "create", "target": "file:22", "address": HOOK,
                 "triggers": ["FILE.PREVIEWED"]},
            ],
            "create": 1, "update": 1, "unchanged": 0, "delete": 0,
        })
    );

    let out = with_token(&fake, &["apply", "--file", file, OFFLINE]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let created = fake
        .api
        .webhooks()
        .into_iter()
        .find(|w| w.target() == "file:22")
        .unwrap();
    assert_eq!(
        text(&out.stdout),
        format!(
            "updated            folder:11                webhook {}\n\
             created            file:22                  webhook {}\n\
             apply: converged, 2 webhook(s) as declared\n",
            old.id, created.id
        )
    );
    assert_eq!(fake.api.webhooks().len(), 3, "no --prune: folder:44 stays");

    fake.api.reset_calls();
    let out = with_token(&fake, &["apply", "--file", file, "--json", OFFLINE]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["converged"], true);
    assert_eq!(doc["failed"], 0);
    let results: Vec<&str> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["unchanged", "unchanged"]);
    assert_eq!(fake.api.write_calls(), 0, "{:?}", fake.api.calls());
    assert_eq!(fake.api.count("GET /2.0/webhooks"), 1);
    assert_eq!(fake.api.count("GET /2.0/webhooks/{id}"), 2);

    let out = with_token(&fake, &["apply", "--file", file, "--prune", OFFLINE]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!(
        "deleted            folder:44                webhook {}\n",
        stray.id
    )));
    assert_eq!(fake.api.webhooks().len(), 2);
}

#[test]
fn a_file_box_would_refuse_exits_2_with_every_problem_and_no_call() {
    let fake = fake();
    let dir = temp_dir("webhooks-precheck");
    let file = write(
        &dir,
        r#"
[[webhook]]
target = "folder:0"
address = "http://hooks.example.com:8080/box"
triggers = ["FILE.UPLOADED"]

[[webhook]]
target = "file:5"
address = "https://box.com/x"
triggers = ["FOLDER.CREATED", "FILE.NOPE"]
"#,
    );
    for command in ["plan", "apply"] {
        let out = with_token(&fake, &[command, "--file", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(out.stdout, b"");
        assert_eq!(
            text(&out.stderr),
            format!(
                "boxhook: {}: 6 problem(s), nothing was sent to Box:\n\
                 webhook 1 (folder:0): the address must be https, not http\n\
                 webhook 1 (folder:0): the address must use port 443 (Box delivers nowhere else), not 8080\n\
                 webhook 1 (folder:0): Box allows no webhook on the root folder 0; watch a folder inside it\n\
                 webhook 2 (file:5): the address must not be box.com or a subdomain of it (box.com)\n\
                 webhook 2 (file:5): FOLDER.CREATED only applies to folders; put the webhook on the file's folder\n\
                 webhook 2 (file:5): FILE.NOPE is not a Box trigger (see https://developer.box.com/guides/webhooks/triggers/)\n",
                file.display()
            )
        );
    }
    assert!(fake.api.calls().is_empty(), "{:?}", fake.api.calls());
    // The file is checked before the credentials.
    let out = webhooks(&fake, &[], &["plan", "--file", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("nothing was sent to Box"));
}

#[test]
fn usage_errors_exit_2() {
    let fake = fake();
    let dir = temp_dir("webhooks-usage");
    let file = desired(&dir);
    let file = file.to_str().unwrap();
    let table: &[(Env<'_>, &[&str], &str)] = &[
        (&[], &["list"], "boxhook: no Box credentials: set BOX_ACCESS_TOKEN, or BOX_CLIENT_ID, BOX_CLIENT_SECRET, BOX_SUBJECT_TYPE (enterprise or user) and BOX_SUBJECT_ID for the Client Credentials Grant\n"),
        (&[("BOX_CLIENT_ID", "x")], &["list"], "boxhook: BOX_CLIENT_ID is set but BOX_CLIENT_SECRET, BOX_SUBJECT_TYPE, BOX_SUBJECT_ID are not: the Client Credentials Grant needs all four\n"),
        (&[("BOX_ACCESS_TOKEN", "t")], &["plan", "--file", "/nonexistent/w.toml"], "boxhook: cannot read desired-state file /nonexistent/w.toml: No such file or directory (os error 2)\n"),
        (&[("BOX_ACCESS_TOKEN", "t")], &["delete", "12/../3"], "boxhook: webhook id \"12/../3\" is not a Box id (digits only); `boxhook webhooks list` shows them\n"),
    ];
    for (env, args, want) in table {
        let out = webhooks(&fake, env, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(text(&out.stderr), *want, "{args:?}");
    }
    let out = run(
        boxhook().env("BOX_ACCESS_TOKEN", "t").args([
            "webhooks",
            "plan",
            "--file",
            file,
            "--api-base",
            "http://api.example.com",
        ]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "boxhook: --api-base \"http://api.example.com\" must be https (plain http only to a \
         loopback host); it is Box's API root, e.g. https://api.box.com\n"
    );
    assert!(fake.api.calls().is_empty());
}

#[test]
fn a_failed_webhook_is_named_and_apply_exits_1() {
    // Box's cap, reached: one webhook exists, the cap is 1.
    let fake = fake_with(FakeBoxApi::builder().cap(1));
    fake.api.seed(
        FAKE_ACCESS_TOKEN,
        "folder",
        "11",
        HOOK,
        &["FILE.UPLOADED", "FILE.TRASHED"],
    );
    let dir = temp_dir("webhooks-fail");
    let file = desired(&dir);
    let out = with_token(&fake, &["apply", "--file", file.to_str().unwrap(), OFFLINE]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("unchanged          folder:11"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "FAILED             file:22                  create: Box answered 400 bad_request: \
             Bad Request: the limit of webhooks for this application and user is reached \
             (request id fakereq"
        ),
        "{stdout}"
    );
    assert!(
        stdout.ends_with(
            "apply: 1 of 2 change(s) FAILED (named above); run apply again once fixed\n"
        ),
        "{stdout}"
    );
}

#[test]
fn list_and_delete_with_the_client_credentials_grant_and_a_429() {
    let fake = fake();
    let env = [
        ("BOX_CLIENT_ID", FAKE_CLIENT_ID),
        ("BOX_CLIENT_SECRET", FAKE_CLIENT_SECRET),
        ("BOX_SUBJECT_TYPE", "enterprise"),
        ("BOX_SUBJECT_ID", "777"),
    ];
    let dir = temp_dir("webhooks-list");
    let file = desired(&dir);
    let out = webhooks(
        &fake,
        &env,
        &["apply", "--file", file.to_str().unwrap(), OFFLINE],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Call 1 of the next process is its token request: Box limits it once.
    fake.api.reset_calls();
    let before = fake.api.calls().values().sum::<u64>();
    assert_eq!(before, 0);
    let out = webhooks(&fake, &env, &["list", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<String> = fake.api.webhooks().into_iter().map(|w| w.id).collect();
    assert_eq!(
        lines,
        [
            serde_json::json!({"id": ids[0], "target": "folder:11", "address": HOOK, "triggers": ["FILE.UPLOADED", "FILE.TRASHED"]}),
            serde_json::json!({"id": ids[1], "target": "file:22", "address": HOOK, "triggers": ["FILE.PREVIEWED"]}),
        ]
    );
    assert_eq!(fake.api.count("POST /oauth2/token"), 1);
    let out = webhooks(&fake, &env, &["list"]);
    assert_eq!(
        text(&out.stdout),
        format!(
            "{:<12} folder:11                {HOOK} FILE.UPLOADED,FILE.TRASHED\n\
             {:<12} file:22                  {HOOK} FILE.PREVIEWED\n\
             2 webhook(s)\n",
            ids[0], ids[1]
        )
    );

    // The next process asks for its token, then deletes: Box limits the delete once.
    fake.api.rate_limit_call(fake.api.total_calls() + 2, 1);
    let out = webhooks(&fake, &env, &["delete", &ids[0]]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("deleted webhook {}\n", ids[0]));
    assert_eq!(
        fake.api.count("DELETE /2.0/webhooks/{id}"),
        2,
        "429, then retried"
    );
    let out = webhooks(&fake, &env, &["delete", &ids[0]]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with(&format!(
            "boxhook: cannot delete webhook {}: Box answered 404 not_found: Not Found (request id fakereq",
            ids[0]
        )),
        "{}",
        text(&out.stderr)
    );
    let out = webhooks(&fake, &[("BOX_ACCESS_TOKEN", "wrong")], &["list"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "boxhook: cannot list the webhooks: Box answered 401 unauthorized: the access token is \
         invalid or expired; check BOX_ACCESS_TOKEN (developer tokens expire after an hour) or \
         the client id, secret and subject\n"
    );
}

fn deleted_event(event_id: &str, webhook_id: &str, reason: &str) -> String {
    format!(
        r#"{{"type":"webhook_event","id":"{event_id}","created_at":"2026-11-30T03:00:12-07:00","trigger":"WEBHOOK.DELETED","webhook":{{"id":"{webhook_id}","type":"webhook"}},"source":{{"id":"11","type":"folder"}},"additional_info":{{"reason":"{reason}"}}}}"#
    )
}

#[test]
fn serve_with_webhooks_puts_a_cleaned_up_webhook_back() {
    let fake = fake();
    let dir = temp_dir("webhooks-serve");
    let file = desired(&dir);
    let old = fake.api.seed(
        FAKE_ACCESS_TOKEN,
        "folder",
        "11",
        HOOK,
        &["FILE.UPLOADED", "FILE.TRASHED"],
    );
    let server = Server::start_with_env(
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
    );
    server.wait_for_stderr("webhook(s) exist for this app and user", LIMIT);
    fake.api.auto_cleanup(&old.id).unwrap();
    let simulator = Simulator::builder(server.url.parse().unwrap(), sample_keys())
        .schedule(RetrySchedule::none())
        .timeout(Duration::from_secs(10))
        .build();
    let report =
        fake.runtime
            .block_on(simulator.send_body(deleted_event("e-1", &old.id, "auto_cleanup")));
    assert_eq!(
        report.last().unwrap().status().map(|s| s.as_u16()),
        Some(200)
    );
    let back: Vec<_> = fake.api.webhooks();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].target(), "folder:11");
    assert_ne!(back[0].id, old.id);
    let stderr = server.wait_for_stderr("webhooks_recreated=1", LIMIT);
    assert!(
        stderr.contains(&format!(
            "webhooks: re-created the webhook on folder:11 (new id {}) [webhooks_recreated=1 \
             webhooks_already_back=0 webhooks_alerted=0 webhooks_recreate_failed=0]",
            back[0].id
        )),
        "{stderr}"
    );

    // Another reason: alerted, nothing called.
    fake.api.reset_calls();
    let report = fake.runtime.block_on(simulator.send_body(deleted_event(
        "e-2",
        &back[0].id,
        "app_deleted",
    )));
    assert_eq!(
        report.last().unwrap().status().map(|s| s.as_u16()),
        Some(200)
    );
    assert!(fake.api.calls().is_empty());

    let session = r#"{"type":"webhook_event","id":"e-3","trigger":"NO_ACTIVE_SESSION","webhook":{"id":"9","type":"webhook"},"source":{"id":"5","type":"file"},"additional_info":[]}"#;
    let report = fake.runtime.block_on(simulator.send_body(session));
    assert_eq!(
        report.last().unwrap().status().map(|s| s.as_u16()),
        Some(200)
    );
    let stderr = server.wait_for_stderr("NO_ACTIVE_SESSION for webhook 9", LIMIT);
    assert!(
        stderr.contains(
            "webhooks: ALERT: NO_ACTIVE_SESSION for webhook 9: the user's access and refresh \
             tokens have both expired: the user must consent again"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("webhooks: ALERT: webhook "), "{stderr}");
    let status = server.terminate(LIMIT);
    assert!(status.success());
}

#[test]
fn serve_refuses_a_bad_webhooks_file_before_listening() {
    let dir = temp_dir("webhooks-serve-bad");
    let file = write(&dir, "[[webhook]]\ntarget = \"folder:0\"\naddress = \"https://h.example.com/\"\ntriggers = [\"FILE.UPLOADED\"]\n");
    let out = run(
        boxhook()
            .env("BOX_ACCESS_TOKEN", "t")
            .args([
                "--primary-key",
                "k",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--inbox",
            ])
            .arg(dir.join("inbox.sqlite"))
            .arg("--webhooks")
            .arg(&file),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(out.stdout, b"");
    assert!(
        text(&out.stderr).ends_with(
            "webhook 1 (folder:0): Box allows no webhook on the root folder 0; watch a folder inside it\n"
        ),
        "{}",
        text(&out.stderr)
    );
}
