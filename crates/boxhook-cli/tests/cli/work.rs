//! `boxhook work`, `inbox list --state` and `inbox requeue`, as processes,
//! on a SQLite file and on a throwaway PostgreSQL server (skipped with a
//! message when PostgreSQL is not installed, unless
//! `BOXHOOK_POSTGRES=required`).

#![cfg(unix)]
#![allow(
    clippy::doc_markdown,
    reason = "PostgreSQL and SQLite are product names, not code"
)]

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use boxhook::inbox::{Inbox, NewRecord};
use boxhook_postgres::PgInbox;
use boxhook_sqlite::SqliteInbox;
use boxhook_testkit::postgres::Cluster;
use common::{boxhook, run, temp_dir};

const LIMIT: Duration = Duration::from_secs(60);

/// A store to test on: the `--store` value, and what keeps it alive.
struct Store {
    arg: String,
    _cluster: Option<Cluster>,
}

fn sqlite(dir: &Path) -> Store {
    Store {
        arg: format!("sqlite:{}", dir.join("inbox.sqlite").display()),
        _cluster: None,
    }
}

fn postgres(name: &str) -> Option<Store> {
    let cluster = Cluster::start(name)?;
    Some(Store {
        arg: cluster.url(),
        _cluster: Some(cluster),
    })
}

/// Every store available here.
fn stores(name: &str, dir: &Path) -> Vec<Store> {
    let mut stores = vec![sqlite(dir)];
    stores.extend(postgres(name));
    stores
}

fn body(event_id: &str, trigger: &str) -> String {
    format!(
        r#"{{"type":"webhook_event","id":"{event_id}","trigger":"{trigger}","webhook":{{"id":"4133","type":"webhook"}},"source":{{"id":"5","type":"file"}},"note":"caf\u00e9 \u2603"}}"#
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Stores events directly, as a receiver would have.
fn store_events(store: &Store, events: &[(&str, &str)]) {
    runtime().block_on(async {
        let records: Vec<NewRecord> = events
            .iter()
            .map(|(id, trigger)| {
                NewRecord::parse(body(id, trigger), Some("d-1"), chrono::Utc::now()).expect("event")
            })
            .collect();
        if let Some(path) = store.arg.strip_prefix("sqlite:") {
            let inbox = SqliteInbox::open(path).expect("open sqlite");
            for record in records {
                inbox.store(record).await.expect("store");
            }
        } else {
            let inbox = PgInbox::connect(&store.arg).await.expect("connect");
            for record in records {
                inbox.store(record).await.expect("store");
            }
        }
    });
}

/// (state, attempts) of each event, oldest first, through `inbox show`'s
/// sibling `list` (which lists newest first).
fn states(store: &Store, state: Option<&str>) -> Vec<(String, String, u64)> {
    let mut command = boxhook();
    command.args(["inbox", "list", "--all", "--json", "--store", &store.arg]);
    if let Some(state) = state {
        command.args(["--state", state]);
    }
    let out = run(&mut command, LIMIT);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("json");
            (
                v["event_id"].as_str().expect("id").to_owned(),
                v["state"].as_str().expect("state").to_owned(),
                v["attempts"].as_u64().expect("attempts"),
            )
        })
        .rev()
        .collect()
}

fn row(id: &str, state: &str, attempts: u64) -> (String, String, u64) {
    (id.to_owned(), state.to_owned(), attempts)
}

fn script(dir: &Path) -> PathBuf {
    let path = dir.join("handle.sh");
    common::write_script(
        &path,
        &format!(
            "out={}\n\
             cat > \"$out/$BOXHOOK_EVENT_ID.body\"\n\
             env | grep -E '^BOXHOOK_(ATTEMPT|EVENT_ID|TRIGGER|WEBHOOK_ID)=' | sort > \"$out/$BOXHOOK_EVENT_ID.$BOXHOOK_ATTEMPT.env\"\n\
             echo \"oops $BOXHOOK_EVENT_ID\" >&2\n\
             [ \"$BOXHOOK_TRIGGER\" != FILE.DELETED ]\n",
            dir.display()
        ),
    );
    path
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one scenario, step by step, on each store"
)]
fn exec_gets_the_body_and_environment_then_done_or_dead_and_requeued() {
    let dir = temp_dir("work-exec");
    for store in stores("work-exec", &dir) {
        let out_dir = temp_dir("work-exec-out");
        let handler = script(&out_dir);
        store_events(
            &store,
            &[
                ("e-1", "FILE.UPLOADED"),
                ("e-2", "FILE.DELETED"),
                ("e-3", "FOLDER.CREATED"),
            ],
        );
        let out = run(
            boxhook().args([
                "work",
                "--store",
                &store.arg,
                "--exec",
                handler.to_str().expect("utf-8"),
                "--once",
                "--max-attempts",
                "2",
                "--backoff",
                "0",
            ]),
            LIMIT,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{} {stderr}", store.arg);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "processed 2 event(s); 2 attempt(s) failed\n"
        );
        assert!(
            stderr.contains("event e-1 attempt 1 stderr: oops e-1\n"),
            "{stderr}"
        );
        assert!(
            stderr.contains("event e-2 attempt 2 stderr: oops e-2\n"),
            "{stderr}"
        );
        for (id, trigger) in [("e-1", "FILE.UPLOADED"), ("e-2", "FILE.DELETED")] {
            assert_eq!(
                std::fs::read(out_dir.join(format!("{id}.body"))).expect("body"),
                body(id, trigger).into_bytes(),
                "{id}: the stored body, byte for byte, on stdin"
            );
        }
        assert_eq!(
            std::fs::read_to_string(out_dir.join("e-2.2.env")).expect("env"),
            "BOXHOOK_ATTEMPT=2\nBOXHOOK_EVENT_ID=e-2\nBOXHOOK_TRIGGER=FILE.DELETED\nBOXHOOK_WEBHOOK_ID=4133\n"
        );
        assert!(!out_dir.join("e-2.3.env").exists(), "no third attempt");
        assert_eq!(
            states(&store, None),
            [
                row("e-1", "done", 1),
                row("e-2", "dead", 2),
                row("e-3", "done", 1)
            ]
        );
        assert_eq!(states(&store, Some("dead")), [row("e-2", "dead", 2)]);
        assert_eq!(states(&store, Some("in_progress")), []);

        // Requeue by id: pending again, attempts reset; then --dead finds none.
        let requeue = run(
            boxhook().args(["inbox", "requeue", "e-2", "--store", &store.arg]),
            LIMIT,
        );
        assert!(requeue.status.success());
        assert_eq!(
            String::from_utf8_lossy(&requeue.stdout),
            "requeued 1 event(s)\n"
        );
        assert_eq!(states(&store, Some("pending")), [row("e-2", "pending", 0)]);
        let none = run(
            boxhook().args(["inbox", "requeue", "--dead", "--store", &store.arg]),
            LIMIT,
        );
        assert_eq!(
            String::from_utf8_lossy(&none.stdout),
            "requeued 0 event(s)\n"
        );
        let pending = run(
            boxhook().args(["inbox", "requeue", "e-2", "--store", &store.arg]),
            LIMIT,
        );
        assert_eq!(pending.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&pending.stderr)
            .contains("only dead and done events are requeued"));

        let again = run(
            boxhook().args(["work", "--store", &store.arg, "--exec", "true", "--once"]),
            LIMIT,
        );
        assert_eq!(
            again.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&again.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&again.stdout),
            "processed 1 event(s); 0 attempt(s) failed\n"
        );
        assert_eq!(states(&store, Some("done")).len(), 3);
        let _ = std::fs::remove_dir_all(&out_dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_command_past_its_timeout_is_killed_and_retried() {
    let dir = temp_dir("work-timeout");
    for store in stores("work-timeout", &dir) {
        store_events(&store, &[("e-1", "FILE.UPLOADED")]);
        let started = Instant::now();
        let out = run(
            boxhook().args([
                "work",
                "--store",
                &store.arg,
                "--exec",
                "sleep 30",
                "--once",
                "--timeout",
                "1",
                "--lease",
                "5",
                "--max-attempts",
                "2",
                "--backoff",
                "0",
            ]),
            LIMIT,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            stderr
                .matches("the command ran past --timeout 1s and was killed")
                .count(),
            2,
            "{stderr}"
        );
        assert_eq!(states(&store, None), [row("e-1", "dead", 2)]);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_waits_the_grace_period_then_puts_the_event_back() {
    let dir = temp_dir("work-sigterm");
    for store in stores("work-sigterm", &dir) {
        store_events(&store, &[("e-1", "FILE.UPLOADED")]);
        let mut child = boxhook()
            .args([
                "work",
                "--store",
                &store.arg,
                "--exec",
                "sleep 30",
                "--grace",
                "1",
                "--poll-ms",
                "50",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn work");
        let deadline = Instant::now() + LIMIT;
        while states(&store, Some("in_progress")).is_empty() {
            assert!(Instant::now() < deadline, "never claimed");
            std::thread::sleep(Duration::from_millis(50));
        }
        let signalled = Instant::now();
        let kill = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(kill.success());
        let status = common::wait_for(&mut child, Duration::from_secs(20)).expect("stopped");
        let waited = signalled.elapsed();
        assert_eq!(status.code(), Some(0));
        assert!(
            waited >= Duration::from_secs(1) && waited < Duration::from_secs(10),
            "{waited:?}"
        );
        // Back in the queue, ready at once, the attempt counted.
        assert_eq!(states(&store, None), [row("e-1", "pending", 1)]);
        let again = run(
            boxhook().args(["work", "--store", &store.arg, "--exec", "true", "--once"]),
            LIMIT,
        );
        assert_eq!(again.status.code(), Some(0));
        assert_eq!(states(&store, None), [row("e-1", "done", 2)]);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_puts_a_batch_s_unstarted_events_back_at_once() {
    let dir = temp_dir("work-batch-stop");
    for store in stores("work-batch-stop", &dir) {
        store_events(
            &store,
            &[
                ("e-1", "FILE.UPLOADED"),
                ("e-2", "FILE.UPLOADED"),
                ("e-3", "FILE.UPLOADED"),
            ],
        );
        let mut child = boxhook()
            .args(["work", "--store", &store.arg, "--exec", "sleep 30"])
            .args(["--batch", "3", "--grace", "8", "--poll-ms", "50"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn work");
        let deadline = Instant::now() + LIMIT;
        // One claim took all three; the first one runs.
        while states(&store, Some("in_progress")).len() < 3 {
            assert!(Instant::now() < deadline, "never claimed");
            std::thread::sleep(Duration::from_millis(50));
        }
        let kill = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(kill.success());
        // e-2 and e-3 are back well before the grace period ends; e-1 still
        // runs.
        let deadline = Instant::now() + Duration::from_secs(6);
        while states(&store, Some("pending")).len() < 2 {
            assert!(
                Instant::now() < deadline,
                "unstarted events not put back: {:?}",
                states(&store, None)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(
            states(&store, None),
            [
                row("e-1", "claimed", 1),
                row("e-2", "pending", 1),
                row("e-3", "pending", 1)
            ]
        );
        let status = common::wait_for(&mut child, Duration::from_secs(30)).expect("stopped");
        assert_eq!(status.code(), Some(0));
        assert_eq!(
            states(&store, None),
            [
                row("e-1", "pending", 1),
                row("e-2", "pending", 1),
                row("e-3", "pending", 1)
            ]
        );
        let again = run(
            boxhook().args(["work", "--store", &store.arg, "--exec", "true", "--once"]),
            LIMIT,
        );
        assert_eq!(again.status.code(), Some(0));
        assert_eq!(
            String::from_utf8_lossy(&again.stdout),
            "processed 3 event(s); 0 attempt(s) failed\n"
        );
        assert_eq!(
            states(&store, None),
            [
                row("e-1", "done", 2),
                row("e-2", "done", 2),
                row("e-3", "done", 2)
            ]
        );
    }
    let zero = run(
        boxhook()
            .args(["work", "--inbox", "unused.sqlite", "--exec", "true"])
            .args(["--batch", "0"]),
        LIMIT,
    );
    assert_eq!(zero.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&zero.stderr).contains("invalid value '0' for '--batch <N>'"),
        "{}",
        String::from_utf8_lossy(&zero.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn triggers_filter_what_a_worker_claims() {
    let dir = temp_dir("work-trigger");
    for store in stores("work-trigger", &dir) {
        store_events(
            &store,
            &[
                ("e-1", "FILE.UPLOADED"),
                ("e-2", "FILE.DELETED"),
                ("e-3", "FOLDER.CREATED"),
            ],
        );
        let out = run(
            boxhook().args([
                "work",
                "--store",
                &store.arg,
                "--exec",
                "true",
                "--once",
                "--trigger",
                "FILE.DELETED",
                "--trigger",
                "FOLDER.CREATED",
            ]),
            LIMIT,
        );
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(
            states(&store, None),
            [
                row("e-1", "pending", 0),
                row("e-2", "done", 1),
                row("e-3", "done", 1)
            ]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn forward_posts_each_event_signed_as_box_does() {
    use boxhook_core::Verifier;
    use boxhook_testkit::{sample_keys, ScriptedServer, SystemClock};
    let dir = temp_dir("work-forward");
    for store in stores("work-forward", &dir) {
        store_events(&store, &[("e-1", "FILE.UPLOADED"), ("e-2", "FILE.DELETED")]);
        let rt = runtime();
        let server = rt.block_on(async {
            ScriptedServer::builder()
                .script([503])
                .verify_with(Verifier::new(sample_keys()), SystemClock)
                .start()
                .await
                .expect("server")
        });
        let url = server.uri().to_string();
        let out = run(
            boxhook()
                .args(["--primary-key", boxhook_testkit::SAMPLE_PRIMARY_KEY])
                .args(["--secondary-key", boxhook_testkit::SAMPLE_SECONDARY_KEY])
                .args(["work", "--store", &store.arg, "--forward", &url, "--once"])
                .args(["--backoff", "0"]),
            LIMIT,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The first POST got 503: a failed attempt, retried at once.
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("the forward URL answered 503"), "{stderr}");
        let received = server.received();
        assert_eq!(received.len(), 3);
        let mut bodies: Vec<Vec<u8>> = Vec::new();
        for request in &received {
            assert!(
                matches!(request.verification(), Some(Ok(_))),
                "signed with the keys and a fresh timestamp: {:?}",
                request.verification()
            );
            bodies.push(request.body().to_vec());
        }
        // One claim took both (`--batch`): e-2 before e-1's retry.
        assert_eq!(
            bodies,
            [
                body("e-1", "FILE.UPLOADED").into_bytes(),
                body("e-2", "FILE.DELETED").into_bytes(),
                body("e-1", "FILE.UPLOADED").into_bytes(),
            ]
        );
        assert_eq!(
            states(&store, None),
            [row("e-1", "done", 2), row("e-2", "done", 1)]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn migrate_creates_the_schema_once_and_inbox_reads_without_migrating() {
    let Some(store) = postgres("migrate") else {
        return;
    };
    // Before any migration, reading refuses rather than creating tables.
    let early = run(
        boxhook().args(["inbox", "list", "--store", &store.arg]),
        LIMIT,
    );
    assert_eq!(early.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&early.stderr)
            .contains("older than this build's (2); run `boxhook migrate --store URL` first"),
        "{}",
        String::from_utf8_lossy(&early.stderr)
    );
    for _ in 0..2 {
        let out = run(boxhook().args(["migrate", "--store", &store.arg]), LIMIT);
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("schema version 2\n{} is up to date\n", store.arg)
        );
    }
    assert_eq!(states(&store, None), []);
}

#[test]
fn inbox_show_writes_the_stored_body_byte_for_byte_on_every_store() {
    let dir = temp_dir("work-show");
    for store in stores("work-show", &dir) {
        store_events(&store, &[("e-show", "FILE.UPLOADED")]);
        let out = run(
            boxhook().args(["inbox", "show", "e-show", "--store", &store.arg]),
            LIMIT,
        );
        assert!(
            out.status.success(),
            "{}: {}",
            store.arg,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            out.stdout,
            body("e-show", "FILE.UPLOADED").into_bytes(),
            "{}",
            store.arg
        );
        let out = run(
            boxhook().args(["inbox", "show", "e-none", "--store", &store.arg]),
            LIMIT,
        );
        assert_eq!(out.status.code(), Some(1), "{}", store.arg);
        assert!(out.stdout.is_empty(), "{}", store.arg);
    }
}
