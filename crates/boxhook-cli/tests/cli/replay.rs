//! `boxhook inbox replay`: stored events re-sent to a second receiver arrive
//! verified and are stored there once; plain progress without escape codes
//! when stdout is not a terminal; Ctrl-C stops and says how far it got.
#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::admin::{covering_deliveries, post};
use common::{boxhook, inbox_list, run, temp_dir, wait_for, Server};

fn replay(inbox: &std::path::Path, to: &str, extra: &[&str]) -> Command {
    let mut command = boxhook();
    command
        .args(["--primary-key", boxhook_testkit::SAMPLE_PRIMARY_KEY])
        .args(["--secondary-key", boxhook_testkit::SAMPLE_SECONDARY_KEY])
        .args(["inbox", "replay", "--to", to, "--inbox"])
        .arg(inbox)
        .args(extra);
    command
}

fn ids_and_deliveries(inbox: &std::path::Path) -> Vec<(String, u64)> {
    let mut rows: Vec<(String, u64)> = inbox_list(inbox)
        .iter()
        .map(|e| {
            (
                e["event_id"].as_str().unwrap().to_owned(),
                e["deliveries"].as_u64().unwrap(),
            )
        })
        .collect();
    rows.sort();
    rows
}

/// Stores the covering deliveries in a new inbox at `inbox`, through a
/// `serve` stopped afterwards.
fn fill(inbox: &Path) {
    let source = Server::start(inbox, &[]);
    for (what, delivery, want) in covering_deliveries() {
        assert_eq!(post(&source, &delivery), want, "{what}");
    }
}

#[test]
fn replayed_events_arrive_verified_and_are_stored_once() {
    let dir = temp_dir("replay");
    let (first, second) = (dir.join("first.sqlite"), dir.join("second.sqlite"));
    fill(&first);
    let target = Server::start(&second, &[]);

    let out = run(
        &mut replay(&first, &target.url, &[]),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        !stdout.contains('\u{1b}') && !stderr.contains('\u{1b}'),
        "{stdout:?}{stderr:?}"
    );
    assert!(stderr.starts_with("replaying 5 event(s) from "), "{stderr}");
    let last = stdout.lines().last().unwrap();
    assert_eq!(
        last,
        "replayed 5 event(s): sent 5, 2xx 5, other 0, failed 0"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("progress 5/5: sent 5, 2xx 5, other 0, failed 0, ")),
        "{stdout}"
    );
    // Verified (else 401) and stored: the same five events, once each.
    let want: Vec<(String, u64)> = ["e-1", "e-2", "e-3", "e-4", "e-5"]
        .iter()
        .map(|id| ((*id).to_owned(), 1))
        .collect();
    assert_eq!(ids_and_deliveries(&second), want);
    let log = target.wait_for_stderr("e-5", Duration::from_secs(10));
    assert_eq!(log.matches(" 200 handled ").count(), 5, "{log}");

    // Again: the receiver knows them, answers 200 duplicate, stores nothing new.
    let out = run(
        &mut replay(&first, &target.url, &[]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0));
    let want: Vec<(String, u64)> = want.into_iter().map(|(id, _)| (id, 2)).collect();
    assert_eq!(ids_and_deliveries(&second), want);

    // Filters: one trigger, a state no event is in, a time in the future.
    let out = run(
        &mut replay(&first, &target.url, &["--trigger", "WEBHOOK.DELETED"]),
        Duration::from_secs(60),
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().lines().last(),
        Some("replayed 1 event(s): sent 1, 2xx 1, other 0, failed 0")
    );
    for filter in [["--state", "done"], ["--since", "2999-01-01T00:00:00Z"]] {
        let out = run(
            &mut replay(&first, &target.url, &filter),
            Duration::from_secs(60),
        );
        assert_eq!(
            String::from_utf8(out.stdout).unwrap().lines().last(),
            Some("replayed 0 event(s): sent 0, 2xx 0, other 0, failed 0"),
            "{filter:?}"
        );
    }

    // An unknown state is a usage error, not an empty replay.
    let out = run(
        &mut replay(&first, &target.url, &["--state", "finished"]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("unknown state \"finished\"; one of pending, claimed, done, dead"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Signed with other keys: the receiver answers 401, counted as other.
    let out = run(
        boxhook()
            .args(["--primary-key", "not-the-key"])
            .args(["inbox", "replay", "--to", &target.url, "--inbox"])
            .arg(&first)
            .args(["--trigger", "NO_ACTIVE_SESSION"]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("event e-5: HTTP 401 Unauthorized"),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().last(),
        Some("replayed 1 event(s): sent 1, 2xx 0, other 1, failed 0")
    );
}

#[test]
fn a_terminal_gets_a_progress_bar() {
    if !std::path::Path::new("/usr/bin/script").is_file() {
        boxhook_testkit::fs::skip_unless_required(
            "a_terminal_gets_a_progress_bar",
            "no `script` (util-linux) for a pty",
        );
        return;
    }
    let dir = temp_dir("replay-tty");
    let (first, second) = (dir.join("first.sqlite"), dir.join("second.sqlite"));
    fill(&first);
    let target = Server::start(&second, &[]);
    // `script` gives the command a terminal and copies what it drew.
    let inner = format!(
        "{} --primary-key {} inbox replay --to {} --inbox {} --rate 20",
        env!("CARGO_BIN_EXE_boxhook"),
        boxhook_testkit::SAMPLE_PRIMARY_KEY,
        target.url,
        first.display()
    );
    let out = run(
        Command::new("script").args(["-qefc", &inner, "/dev/null"]),
        Duration::from_secs(60),
    );
    let drawn = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{drawn}");
    // The bar is drawn with escape codes and cleared; the summary stays.
    assert!(drawn.contains('\u{1b}'), "{drawn:?}");
    assert!(drawn.contains("/5 events"), "{drawn:?}");
    assert!(
        drawn.contains("replayed 5 event(s): sent 5, 2xx 5, other 0, failed 0"),
        "{drawn:?}"
    );
    assert!(
        !drawn.contains("progress 5/5"),
        "plain lines on a terminal: {drawn:?}"
    );
}

#[test]
fn ctrl_c_stops_and_says_how_far_it_got() {
    let dir = temp_dir("replay-stop");
    let (first, second) = (dir.join("first.sqlite"), dir.join("second.sqlite"));
    fill(&first);
    let target = Server::start(&second, &[]);
    let mut child = replay(&first, &target.url, &["--rate", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = wait_for(&mut child, Duration::from_secs(20)).expect("replay stopped");
    assert_eq!(exit.code(), Some(130));
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.lines().last().unwrap();
    // At 1/s, 1.5 s in: one or two were sent (the start takes its time),
    // and the line says which.
    let sent: usize = last
        .strip_prefix("interrupted after ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!((1..5).contains(&sent), "{stdout}");
    assert_eq!(
        last,
        format!(
            "interrupted after {sent} of 5 event(s): sent {sent}, 2xx {sent}, other 0, failed 0"
        )
    );
    assert_eq!(inbox_list(&second).len(), sent);
}

#[test]
fn replays_from_postgres_with_store() {
    use boxhook::inbox::{Inbox as _, NewRecord};
    let Some(cluster) = boxhook_testkit::postgres::Cluster::start("replay") else {
        eprintln!("SKIPPED replays_from_postgres_with_store: no PostgreSQL here");
        return;
    };
    let url = cluster.url();
    let bodies: Vec<String> = ["p-1", "p-2", "p-3"]
        .iter()
        .map(|id| common::admin::body(id, "FILE.UPLOADED", &serde_json::json!([])))
        .collect();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let inbox = boxhook_postgres::PgInbox::connect(&url).await.unwrap();
            for body in &bodies {
                let record =
                    NewRecord::parse(body.clone(), Some("d-1"), chrono::Utc::now()).unwrap();
                inbox.store(record).await.unwrap();
            }
        });
    let dir = temp_dir("replay-pg");
    let second = dir.join("second.sqlite");
    let target = Server::start(&second, &[]);
    let mut command = boxhook();
    command
        .args(["--primary-key", boxhook_testkit::SAMPLE_PRIMARY_KEY])
        .args(["inbox", "replay", "--to", &target.url, "--store", &url]);
    let out = run(&mut command, Duration::from_secs(60));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some("replayed 3 event(s): sent 3, 2xx 3, other 0, failed 0")
    );
    let want: Vec<(String, u64)> = ["p-1", "p-2", "p-3"]
        .iter()
        .map(|id| ((*id).to_owned(), 1))
        .collect();
    assert_eq!(ids_and_deliveries(&second), want);
}
