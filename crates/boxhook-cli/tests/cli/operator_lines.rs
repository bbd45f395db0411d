//! What an operator meets first: `serve` checks every flag before it creates
//! or opens a store, writes its start lines on one stream, says why a
//! webhook was deleted; `work` says how a command exited; `inbox replay`
//! shows rates a person reads (`20/s`, `2.0/s`), right from the first.

#![cfg(unix)]
#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]
#![allow(
    clippy::doc_markdown,
    reason = "PostgreSQL and SQLite are product names, not code"
)]

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use boxhook::inbox::{Inbox as _, NewRecord};
use common::{boxhook, raw_request, run, temp_dir, Server};

const LIMIT: Duration = Duration::from_secs(60);
const V1_SECRET: &str = "operator-v1-secret-0123456789";

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Arguments, environment, exit code, and the start of stderr.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], i32, &'a str);

#[test]
fn every_serve_flag_is_checked_before_the_store_is_created() {
    let dir = temp_dir("serve-flags-first");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    let free = "127.0.0.1:0";
    let cases: [Case<'_>; 5] = [
        (
            &[
                "--listen",
                free,
                "--v1-path",
                "/v1",
                "--v1-secret-env",
                "V1_SHORT",
            ],
            &[("V1_SHORT", "short")],
            2,
            "boxhook: --v1-secret-env V1_SHORT: ",
        ),
        (
            &[
                "--listen",
                free,
                "--v1-path",
                "/v1",
                "--v1-secret-env",
                "V1_NOT_SET_21",
            ],
            &[],
            2,
            "boxhook: --v1-secret-env V1_NOT_SET_21: the environment variable is not set",
        ),
        (
            &[
                "--listen",
                free,
                "--v1-path",
                "v1",
                "--v1-secret-env",
                "V1_OK",
            ],
            &[("V1_OK", V1_SECRET)],
            2,
            "boxhook: --v1-path v1 must start with /",
        ),
        (
            &["--listen", free, "--path", "hooks"],
            &[],
            2,
            "boxhook: --path hooks must start with /",
        ),
        (
            &["--listen", &busy_addr],
            &[],
            1,
            "boxhook: cannot listen on ",
        ),
    ];
    for (args, env, code, want) in cases {
        let inbox = dir.join("inbox.sqlite");
        let mut command = boxhook();
        command
            .env_remove("V1_NOT_SET_21")
            .envs(env.iter().copied());
        let out = run(
            command
                .args(["--primary-key", boxhook_testkit::SAMPLE_PRIMARY_KEY])
                .args(["serve", "--inbox"])
                .arg(&inbox)
                .args(args),
            LIMIT,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.starts_with(want), "{args:?}: {stderr}");
        assert_eq!(
            files_in(&dir),
            Vec::<String>::new(),
            "{args:?}: no store file, no -wal, no -shm"
        );
    }
    drop(busy);
}

#[test]
fn serve_writes_its_start_lines_on_stderr_in_order() {
    let dir = temp_dir("serve-start-lines");
    let inbox = dir.join("inbox.sqlite");
    let server = Server::start_with_env(
        &inbox,
        &[
            "--v1-path",
            "/v1",
            "--v1-secret-env",
            "V1_SECRET",
            "--admin",
            "127.0.0.1:0",
        ],
        &[("V1_SECRET", V1_SECRET)],
    );
    let text = server.wait_for_stderr("inbox: ", LIMIT);
    let lines: Vec<&str> = text.lines().collect();
    let base = server.url.trim_end_matches('/');
    assert_eq!(
        lines.first().copied(),
        Some(&*format!("listening on {}", server.url)),
        "{text}"
    );
    assert!(lines[1].starts_with("admin on http://127.0.0.1:"), "{text}");
    assert_eq!(lines[2], format!("V1 callbacks on {base}/v1"), "{text}");
    assert_eq!(lines[3], format!("inbox: {}", inbox.display()), "{text}");
}

fn deleted(id: &str, info: &str) -> String {
    format!(
        r#"{{"type":"webhook_event","id":"{id}","created_at":"2024-05-14T08:02:14-07:00","trigger":"WEBHOOK.DELETED","webhook":{{"id":"w-9","type":"webhook"}},"source":{{"id":"11","type":"folder"}},"additional_info":{info}}}"#
    )
}

#[test]
fn the_webhook_deleted_lines_say_why() {
    use std::io::{BufReader, Write as _};
    let dir = temp_dir("deleted-reason");
    let server = Server::start(&dir.join("inbox.sqlite"), &[]);
    let mut reader = BufReader::new(server.connect());
    for body in [
        deleted("e-1", r#"{"reason":"auto_cleanup"}"#),
        deleted("e-2", "[]"),
    ] {
        let request =
            raw_request(&boxhook_testkit::Delivery::new(body).sent_at(chrono::Utc::now()));
        reader.get_mut().write_all(&request).unwrap();
        let head = common::read_response(&mut reader).expect("an answer");
        assert!(head.starts_with("http/1.1 200"), "{head}");
    }
    let text = server.wait_for_stderr("event=e-2", LIMIT);
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?}: {text}"))
            .to_owned()
    };
    assert!(
        line("event=e-1 trigger=WEBHOOK.DELETED").ends_with(
            "ALERT: Box deleted this webhook; no events arrive until it is recreated \
             (reason auto_cleanup)"
        ),
        "{text}"
    );
    assert!(
        line("event=e-2 trigger=WEBHOOK.DELETED").ends_with(
            "ALERT: Box deleted this webhook; no events arrive until it is recreated \
             (no reason given)"
        ),
        "{text}"
    );
    // The framework's own warning, one per delivery, carries it too.
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("trigger=\"WEBHOOK.DELETED\""))
        .collect();
    assert_eq!(warnings.len(), 2, "{text}");
    assert!(warnings[0].contains(" reason=auto_cleanup "), "{text}");
    assert!(warnings[1].contains(" reason=- "), "{text}");
}

fn store_events(path: &Path, ids: &[&str]) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let inbox = boxhook_sqlite::SqliteInbox::open(path).unwrap();
            for id in ids {
                let record =
                    NewRecord::parse(common::event(id), Some("d-1"), chrono::Utc::now()).unwrap();
                inbox.store(record).await.unwrap();
            }
        });
}

#[test]
fn work_says_how_the_command_exited() {
    let dir = temp_dir("work-exit-words");
    let inbox = dir.join("inbox.sqlite");
    store_events(&inbox, &["e-1", "e-2"]);
    let out = run(
        boxhook()
            .args(["work", "--once", "--max-attempts", "1", "--inbox"])
            .arg(&inbox)
            .args([
                "--exec",
                "if [ $BOXHOOK_EVENT_ID = e-1 ]; then exit 3; fi; kill -9 $$",
            ]),
        LIMIT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let dead: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("inbox event failed on its last attempt"))
        .collect();
    assert_eq!(dead.len(), 2, "{stderr}");
    assert!(
        dead[0].contains("error=the command exited with status 3"),
        "{stderr}"
    );
    assert!(
        dead[1].contains("error=the command was killed by signal 9"),
        "{stderr}"
    );
    assert!(!stderr.contains("exit status:"), "{stderr}");
}

/// The rates in `text`: each number written before `/s`.
fn rates(text: &str) -> Vec<String> {
    text.split("/s")
        .filter_map(|before| {
            let number: String = before
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
                .collect();
            (!number.is_empty()).then(|| number.chars().rev().collect())
        })
        .collect()
}

#[test]
fn replay_rates_are_right_from_the_first_line_under_rate_2() {
    let dir = temp_dir("replay-rate");
    let (first, second) = (dir.join("first.sqlite"), dir.join("second.sqlite"));
    store_events(&first, &["r-1", "r-2", "r-3", "r-4", "r-5"]);
    let target = Server::start(&second, &[]);
    let out = run(
        boxhook()
            .args(["--primary-key", boxhook_testkit::SAMPLE_PRIMARY_KEY])
            .args([
                "inbox",
                "replay",
                "--to",
                &target.url,
                "--rate",
                "2",
                "--inbox",
            ])
            .arg(&first),
        LIMIT,
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let progress: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("progress "))
        .collect();
    assert!(!progress.is_empty(), "{stdout}");
    for line in &progress {
        let shown = rates(line);
        assert_eq!(shown.len(), 1, "{line}");
        let rate: f64 = shown[0].parse().unwrap_or_else(|_| panic!("{line}"));
        assert!((1.8..=2.2).contains(&rate), "{line}");
        assert_eq!(shown[0].split('.').nth(1).map(str::len), Some(1), "{line}");
    }
    assert!(
        progress[progress.len() - 1]
            .starts_with("progress 5/5: sent 5, 2xx 5, other 0, failed 0, "),
        "{stdout}"
    );
}

#[test]
fn a_terminal_bar_shows_whole_rates() {
    if !Path::new("/usr/bin/script").is_file() {
        boxhook_testkit::fs::skip_unless_required(
            "a_terminal_bar_shows_whole_rates",
            "no `script` (util-linux) for a pty",
        );
        return;
    }
    let dir = temp_dir("replay-bar-rate");
    let (first, second) = (dir.join("first.sqlite"), dir.join("second.sqlite"));
    store_events(&first, &["b-1", "b-2", "b-3", "b-4", "b-5", "b-6"]);
    let target = Server::start(&second, &[]);
    let inner = format!(
        "{} --primary-key {} inbox replay --to {} --inbox {} --rate 20",
        env!("CARGO_BIN_EXE_boxhook"),
        boxhook_testkit::SAMPLE_PRIMARY_KEY,
        target.url,
        first.display()
    );
    let out = run(
        Command::new("script").args(["-qefc", &inner, "/dev/null"]),
        LIMIT,
    );
    let drawn = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{drawn}");
    let shown = rates(&drawn);
    assert!(!shown.is_empty(), "{drawn:?}");
    for rate in shown {
        if rate == "-" {
            continue;
        }
        // The rule, whatever the machine's speed: whole from 10/s up, one
        // decimal under it; never faster than --rate 20 (the pace itself
        // is a benchmark's business, not a test's: a loaded CI machine
        // replays slower).
        let value: f64 = rate.parse().unwrap_or_else(|_| panic!("{drawn:?}"));
        assert_eq!(rate.contains('.'), value < 10.0, "{rate}/s in {drawn:?}");
        assert!(value <= 25.0, "{rate}/s in {drawn:?}");
    }
}
