//! Retention as a user meets it: the `--retain-*` flags checked before
//! anything is opened, `serve` and `work` pruning in the background,
//! `boxhook inbox prune` by hand (and a retry of a pruned event still a
//! duplicate), and `boxhook inbox list` paging through a big inbox.
#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use crate::common;

use std::path::Path;
use std::time::Duration;

use boxhook::inbox::{DeadLetters as _, EntryState, Inbox as _, NewRecord};
use boxhook_sqlite::SqliteInbox;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use common::admin::{admin_addr, get, post};
use common::{boxhook, run, temp_dir, Server};

const LIMIT: Duration = Duration::from_secs(60);

/// A group of events stored by [`fill`]: `count` events `{prefix}-{n}`
/// (n from 1), the n-th received `age` minus n seconds ago, left in `state`.
struct Group {
    prefix: &'static str,
    count: u32,
    age: TimeDelta,
    state: EntryState,
    trigger: fn(u32) -> &'static str,
}

fn uploaded(_: u32) -> &'static str {
    "FILE.UPLOADED"
}

fn body(id: &str, trigger: &str) -> String {
    format!(
        r#"{{"type":"webhook_event","id":"{id}","created_at":"2024-05-14T08:02:14-07:00","trigger":"{trigger}","webhook":{{"id":"w-1","type":"webhook"}},"source":{{"id":"f-1","type":"file","name":"a.txt"}}}}"#
    )
}

/// Stores each group through the library (as `serve` would have, at the
/// groups' times), then claims and settles it into its state.
fn fill(path: &Path, groups: &[Group]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let inbox = SqliteInbox::open(path).unwrap();
        let now = Utc::now();
        for group in groups {
            for n in 1..=group.count {
                let id = format!("{}-{n}", group.prefix);
                let at = now - group.age + TimeDelta::seconds(i64::from(n));
                let record =
                    NewRecord::parse(body(&id, (group.trigger)(n)), Some("d-1"), at).unwrap();
                inbox.store(record).await.unwrap();
            }
            if group.state == EntryState::Pending {
                continue;
            }
            while let Some(claimed) = inbox
                .claim_next("filler", Duration::from_secs(60), now)
                .await
                .unwrap()
            {
                match group.state {
                    EntryState::Done => inbox.ack(&claimed).await.unwrap(),
                    _ => inbox.bury(&claimed).await.unwrap(),
                }
            }
        }
    });
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `boxhook inbox ARGS --inbox PATH`.
fn inbox_command(path: &Path, args: &[&str]) -> std::process::Output {
    run(
        boxhook().arg("inbox").args(args).arg("--inbox").arg(path),
        LIMIT,
    )
}

/// The event ids `inbox list --all --json` shows, newest first.
fn listed_ids(path: &Path) -> Vec<String> {
    common::inbox_list(path)
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn retention_flags_are_usage_errors_before_anything_is_opened() {
    let dir = temp_dir("retention-flags");
    let inbox = dir.join("inbox.sqlite");
    let forms = "use a whole number and a unit: s, m, h or d (90s, 30m, 12h, 30d)";
    let cases: &[(&str, &str, String)] = &[
        (
            "--retain-done",
            "3x",
            format!("error: invalid value '3x' for '--retain-done <DURATION>': \"3x\" is not a duration: {forms}, or forever"),
        ),
        (
            "--retain-dead",
            "0s",
            "error: invalid value '0s' for '--retain-dead <DURATION>': \"0s\" is zero: give at least 1s (or forever to keep everything), or forever".to_owned(),
        ),
        (
            "--retain-v1",
            "never",
            format!("error: invalid value 'never' for '--retain-v1 <DURATION>': \"never\" is not a duration: {forms}, or forever"),
        ),
        (
            "--retain-keys",
            "12h",
            "error: invalid value '12h' for '--retain-keys <DURATION>': \"12h\" is shorter than 1d: a key must outlive Box's retries (about 2 hours, which Box may lengthen); give 1d or more, e.g. 7d".to_owned(),
        ),
        (
            "--retain-keys",
            "forever",
            "error: invalid value 'forever' for '--retain-keys <DURATION>': keys of pruned events must expire: give a duration of at least 1d, e.g. 7d or 365d".to_owned(),
        ),
    ];
    for (flag, value, message) in cases {
        for command in [
            &["serve", "--listen", "127.0.0.1:0"][..],
            &["work", "--exec", "true"][..],
        ] {
            let out = run(
                boxhook()
                    .args(["--primary-key", "k"])
                    .args(command)
                    .args([*flag, *value, "--inbox"])
                    .arg(&inbox),
                LIMIT,
            );
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
            assert_eq!(stderr.lines().next(), Some(message.as_str()), "{stderr}");
            assert!(out.stdout.is_empty());
            assert!(!inbox.exists(), "{flag} {value}: the inbox was created");
        }
    }
    // And `inbox prune`'s own.
    let out = inbox_command(&inbox, &["prune", "--older-than", "1w"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).lines().next(),
        Some(
            format!(
                "error: invalid value '1w' for '--older-than <DURATION>': \"1w\" is not a duration: {forms}"
            )
            .as_str()
        )
    );
    let out = inbox_command(
        &inbox,
        &["prune", "--older-than", "1d", "--state", "pending"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(
            "'--state <STATE>': pending events are never pruned (a worker still has to process \
             them); give done or dead"
        ),
        "{}",
        text(&out.stderr)
    );
    let out = inbox_command(&inbox, &["prune", "--older-than", "1d"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "boxhook: no inbox at {} (pass --inbox FILE or --store URL)\n",
            inbox.display()
        )
    );
    assert!(!inbox.exists());
}

/// `stdout` with its cutoff time replaced by `TIME`, after checking that
/// time is within a minute of `older_than` ago.
fn with_time(stdout: &str, older_than: TimeDelta) -> String {
    let (head, tail) = stdout
        .split_once(" received before ")
        .unwrap_or_else(|| panic!("{stdout}"));
    let (time, rest) = tail.split_once(' ').unwrap_or_else(|| panic!("{stdout}"));
    let at: DateTime<Utc> = DateTime::parse_from_rfc3339(time).unwrap().into();
    let expected = Utc::now() - older_than;
    assert!((expected - at).num_seconds().abs() < 60, "{time}");
    format!("{head} received before TIME {rest}")
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one inbox: pruned by state, then a pruned event retried"
)]
fn inbox_prune_removes_old_finished_events_and_a_retry_stays_a_duplicate() {
    let dir = temp_dir("retention-prune");
    let path = dir.join("inbox.sqlite");
    fill(
        &path,
        &[
            Group {
                prefix: "old-done",
                count: 1200,
                age: TimeDelta::days(40),
                state: EntryState::Done,
                trigger: uploaded,
            },
            Group {
                prefix: "old-dead",
                count: 3,
                age: TimeDelta::days(40),
                state: EntryState::Dead,
                trigger: uploaded,
            },
            Group {
                prefix: "old-pending",
                count: 2,
                age: TimeDelta::days(40),
                state: EntryState::Pending,
                trigger: uploaded,
            },
        ],
    );
    let out = inbox_command(&path, &["prune", "--older-than", "30d"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        with_time(&text(&out.stdout), TimeDelta::days(30)),
        format!(
            "pruned 1200 event(s) received before TIME from {}: 1200 done, 0 dead, 0 v1; 0 \
             expired deduplication key(s) removed\n",
            path.display()
        )
    );
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    // Pending events are never pruned, whatever their age; dead ones only
    // when asked.
    let mut left = listed_ids(&path);
    left.sort();
    assert_eq!(
        left,
        [
            "old-dead-1",
            "old-dead-2",
            "old-dead-3",
            "old-pending-1",
            "old-pending-2"
        ]
    );
    let out = inbox_command(&path, &["prune", "--older-than", "30d", "--state", "dead"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        with_time(&text(&out.stdout), TimeDelta::days(30)),
        format!(
            "pruned 3 event(s) received before TIME from {}: 0 done, 3 dead, 0 v1; 0 \
             expired deduplication key(s) removed\n",
            path.display()
        )
    );
    assert_eq!(listed_ids(&path), ["old-pending-2", "old-pending-1"]);
    // Nothing old enough: 0, exit 0.
    let out = inbox_command(&path, &["prune", "--older-than", "30d"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        with_time(&text(&out.stdout), TimeDelta::days(30)),
        format!(
            "pruned 0 event(s) received before TIME from {}: 0 done, 0 dead, 0 v1; 0 expired \
             deduplication key(s) removed\n",
            path.display()
        )
    );

    // A delivery processed, pruned a second later, then retried by Box: a
    // duplicate, answered 200 and stored nowhere.
    let server = Server::start(&path, &[]);
    let delivery =
        boxhook_testkit::Delivery::new(body("e-late", "FILE.UPLOADED")).sent_at(Utc::now());
    assert_eq!(post(&server, &delivery), 200);
    let worked = run(
        boxhook()
            .args(["work", "--once", "--exec", "true"])
            .args(["--inbox"])
            .arg(&path),
        LIMIT,
    );
    assert_eq!(worked.status.code(), Some(0), "{}", text(&worked.stderr));
    std::thread::sleep(Duration::from_millis(1500));
    let out = inbox_command(&path, &["prune", "--older-than", "1s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // The two old pending events were processed too.
    assert_eq!(
        with_time(&text(&out.stdout), TimeDelta::seconds(1)),
        format!(
            "pruned 3 event(s) received before TIME from {}: 3 done, 0 dead, 0 v1; 0 \
             expired deduplication key(s) removed\n",
            path.display()
        )
    );
    assert_eq!(listed_ids(&path), Vec::<String>::new());
    let retry = boxhook_testkit::Delivery::new(body("e-late", "FILE.UPLOADED")).sent_at(Utc::now());
    assert_eq!(post(&server, &retry), 200);
    let log = server.wait_for_stderr(" 200 duplicate ", Duration::from_secs(10));
    assert!(log.contains(" 200 duplicate "), "{log}");
    assert_eq!(listed_ids(&path), Vec::<String>::new(), "stored again");
    assert_eq!(server.terminate(LIMIT).code(), Some(0));
}

#[test]
fn serve_and_work_prune_in_the_background_and_show_it() {
    let dir = temp_dir("retention-background");
    let path = dir.join("inbox.sqlite");
    let groups = [
        Group {
            prefix: "old",
            count: 1500,
            age: TimeDelta::days(40),
            state: EntryState::Done,
            trigger: uploaded,
        },
        Group {
            prefix: "new",
            count: 2,
            age: TimeDelta::hours(1),
            state: EntryState::Done,
            trigger: uploaded,
        },
    ];
    fill(&path, &groups);
    let server = Server::start(&path, &["--admin", "127.0.0.1:0"]);
    let admin = admin_addr(&server);
    let log = server.wait_for_stderr("pruned 1500 event(s)", Duration::from_secs(30));
    assert!(
        log.contains(
            "pruning every 300 s in batches of 25; retention done 30d, dead 90d, v1 30d, keys 7d\n"
        ),
        "{log}"
    );
    let line = log
        .lines()
        .find(|l| l.starts_with("pruned "))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.starts_with(
            "pruned 1500 event(s) (1500 done, 0 dead, 0 v1) and 0 expired deduplication key(s) in "
        ),
        "{line}"
    );
    assert!(
        line.ends_with(" s (retention done 30d, dead 90d, v1 30d, keys 7d)"),
        "{line}"
    );
    let (_, _, metrics) = get(&admin, "/metrics", None);
    for sample in [
        "boxhook_pruned_total{state=\"done\"} 1500",
        "boxhook_pruned_total{state=\"dead\"} 0",
        "boxhook_inbox_events{state=\"done\"} 2",
        "boxhook_inbox_oldest_pending_age_seconds 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == sample),
            "{sample} in\n{metrics}"
        );
    }
    let (_, _, json) = get(&admin, "/summary.json", None);
    let summary: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(summary["pruned"]["done"], 1500);
    assert_eq!(summary["retention"]["done"], "30d");
    assert!(
        summary["retention"]["last_round_at"].is_string(),
        "{summary}"
    );
    assert_eq!(summary["retention"]["error"], serde_json::Value::Null);
    let (_, _, page) = get(&admin, "/", None);
    assert!(page.contains("data-k=\"pruned.done\">1500<"), "{page}");
    assert_eq!(server.terminate(LIMIT).code(), Some(0));
    assert_eq!(listed_ids(&path), ["new-2", "new-1"]);

    // work too, with its own retention.
    let mut child = boxhook()
        .args(["work", "--exec", "true", "--retain-done", "30m", "--inbox"])
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = common::collect_lines(child.stderr.take().unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !stderr.lock().unwrap().contains("pruned 2 event(s)")
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = stderr.lock().unwrap().clone();
    assert!(
        log.contains("retention done 30m, dead 90d, v1 30d, keys 7d"),
        "{log}"
    );
    assert!(
        log.contains("pruned 2 event(s) (2 done, 0 dead, 0 v1)"),
        "{log}"
    );
    assert_eq!(listed_ids(&path), Vec::<String>::new());
}

fn every_tenth_deleted(n: u32) -> &'static str {
    if n.is_multiple_of(10) {
        "FILE.DELETED"
    } else {
        "FILE.UPLOADED"
    }
}

#[test]
#[allow(clippy::too_many_lines, reason = "one inbox, every way of paging it")]
fn inbox_list_pages_newest_first_and_says_how_many_in_all() {
    let dir = temp_dir("retention-list");
    let path = dir.join("inbox.sqlite");
    fill(
        &path,
        &[Group {
            prefix: "e",
            count: 120,
            age: TimeDelta::hours(1),
            state: EntryState::Pending,
            trigger: every_tenth_deleted,
        }],
    );
    let ids = |from: u32, to: u32| -> Vec<String> {
        (to..=from).rev().map(|n| format!("e-{n}")).collect()
    };
    let table_ids = |stdout: &str| -> Vec<String> {
        stdout
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(2))
            .filter(|id| id.starts_with("e-"))
            .map(str::to_owned)
            .collect()
    };

    // The newest 50, how many in all, and the next page's cursor.
    let out = inbox_command(&path, &["list"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("RECEIVED              KIND  EVENT ID  TRIGGER"),
        "{stdout}"
    );
    assert_eq!(table_ids(&stdout), ids(120, 71));
    assert!(
        stdout.ends_with("\n50 of 120 event(s), newest first; next page: --before e-71\n"),
        "{stdout}"
    );
    let out = inbox_command(&path, &["list", "--before", "e-71"]);
    let stdout = text(&out.stdout);
    assert_eq!(table_ids(&stdout), ids(70, 21));
    assert!(
        stdout.ends_with(
            "\n50 event(s) (120 in the inbox), newest first; next page: --before e-21\n"
        ),
        "{stdout}"
    );
    let out = inbox_command(&path, &["list", "--before", "e-21"]);
    let stdout = text(&out.stdout);
    assert_eq!(table_ids(&stdout), ids(20, 1));
    assert!(stdout.ends_with("\n20 event(s)\n"), "{stdout}");

    // JSON: objects on stdout, the cursor on stderr.
    let out = inbox_command(&path, &["list", "--json", "--limit", "7"]);
    let rows: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let json_ids: Vec<&str> = rows
        .iter()
        .map(|r| r["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(json_ids, ids(120, 114));
    assert_eq!(
        text(&out.stderr),
        "7 of 120 event(s), newest first; next page: --before e-114\n"
    );
    let out = inbox_command(&path, &["list", "--json", "--all"]);
    assert_eq!(text(&out.stdout).lines().count(), 120);
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));

    // Filters.
    let out = inbox_command(&path, &["list", "--state", "pending", "--limit", "5"]);
    assert!(
        text(&out.stdout)
            .ends_with("\n5 of 120 pending event(s), newest first; next page: --before e-116\n"),
        "{}",
        text(&out.stdout)
    );
    let out = inbox_command(&path, &["list", "--trigger", "FILE.DELETED", "--all"]);
    let stdout = text(&out.stdout);
    assert_eq!(
        table_ids(&stdout),
        (1..=12)
            .rev()
            .map(|n| format!("e-{}", n * 10))
            .collect::<Vec<_>>()
    );
    assert!(stdout.ends_with("\n12 event(s)\n"), "{stdout}");
    let since = common::inbox_list(&path)
        .iter()
        .find(|e| e["event_id"] == "e-100")
        .map(|e| e["received_at"].as_str().unwrap().to_owned())
        .unwrap();
    let out = inbox_command(&path, &["list", "--since", &since, "--json", "--all"]);
    assert_eq!(text(&out.stdout).lines().count(), 21, "{since}");
    let recent = (Utc::now() - TimeDelta::minutes(30)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let out = inbox_command(&path, &["list", "--since", &recent]);
    assert_eq!(
        text(&out.stdout),
        "RECEIVED  KIND  EVENT ID  TRIGGER  SOURCE  DELIVERIES  STATE\n0 event(s)\n"
    );
    for state in ["claimed", "in_progress"] {
        let out = inbox_command(&path, &["list", "--state", state]);
        assert_eq!(out.status.code(), Some(0), "{state}");
        assert!(text(&out.stdout).ends_with("\n0 event(s)\n"), "{state}");
    }

    // Mistakes.
    let out = inbox_command(&path, &["list", "--before", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "no event \"nope\" in {}: --before takes an event id that a previous page showed\n",
            path.display()
        )
    );
    for (args, message) in [
        (&["list", "--limit", "0"][..], "error: invalid value '0' for '--limit <N>': 0 is not in 1..18446744073709551615"),
        (&["list", "--limit", "5", "--all"][..], "error: the argument '--limit <N>' cannot be used with '--all'"),
        (&["list", "--since", "yesterday"][..], "error: invalid value 'yesterday' for '--since <TIME>': \"yesterday\" is neither an RFC 3339 time (2026-01-31T12:00:00Z) nor an age (90s, 30m, 12h, 7d)"),
        (&["list", "--state", "finished"][..], "error: invalid value 'finished' for '--state <STATE>': unknown state \"finished\"; one of pending, claimed, done, dead"),
    ] {
        let out = inbox_command(&path, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(text(&out.stderr).lines().next(), Some(message), "{args:?}");
    }
}
