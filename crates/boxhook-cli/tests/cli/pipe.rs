//! `boxhook work --pipe` as a process, on a `SQLite` file: the README's
//! Python handler (`examples/pipe_handler.py`) answering `ok`, `retry
//! SECONDS`, `retry` and `dead REASON`; the exact line a handler reads; and
//! handlers that crash, hang, answer slowly or answer garbage.

#![cfg(unix)]

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use boxhook::inbox::{Inbox, NewRecord};
use boxhook_sqlite::SqliteInbox;
use common::{boxhook, run, temp_dir};

const LIMIT: Duration = Duration::from_secs(60);

/// The README's handler, run by the first test as the README runs it.
fn example_handler() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/pipe_handler.py")
}

fn body(event_id: &str, trigger: &str, source: &str) -> String {
    format!(
        r#"{{"type":"webhook_event","id":"{event_id}","trigger":"{trigger}","webhook":{{"id":"4133","type":"webhook"}},"source":{source}}}"#
    )
}

const FILE: &str = r#"{"id":"5","type":"file"}"#;

/// Stores `(event id, trigger, source)` events, received at `received_at`.
fn store(inbox: &Path, events: &[(&str, &str, &str)], received_at: &str) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let inbox = SqliteInbox::open(inbox).expect("open sqlite");
            for (id, trigger, source) in events {
                let record = NewRecord::parse(
                    body(id, trigger, source),
                    Some("d-1"),
                    received_at.parse().expect("time"),
                )
                .expect("event");
                inbox.store(record).await.expect("store");
            }
        });
}

/// (event id, state, attempts), oldest first.
fn states(inbox: &Path) -> Vec<(String, String, u64)> {
    common::inbox_list(inbox)
        .iter()
        .rev()
        .map(|v| {
            (
                v["event_id"].as_str().expect("id").to_owned(),
                v["state"].as_str().expect("state").to_owned(),
                v["attempts"].as_u64().expect("attempts"),
            )
        })
        .collect()
}

fn row(id: &str, state: &str, attempts: u64) -> (String, String, u64) {
    (id.to_owned(), state.to_owned(), attempts)
}

/// When `event_id` may be claimed again, in milliseconds from now.
fn ready_in_ms(inbox: &Path, event_id: &str) -> i64 {
    let db = rusqlite::Connection::open(inbox).expect("open");
    let ready: i64 = db
        .query_row(
            "SELECT ready_at FROM events WHERE event_id = ?1",
            [event_id],
            |row| row.get(0),
        )
        .expect("ready_at");
    ready - chrono::Utc::now().timestamp_millis()
}

/// The pids in `pipe handler … (pid N) stderr:` lines.
fn handler_pids(stderr: &str) -> BTreeSet<String> {
    stderr
        .lines()
        .filter_map(|line| line.split_once("(pid ")?.1.split_once(") stderr:"))
        .map(|(pid, _)| pid.to_owned())
        .collect()
}

#[test]
fn the_readme_shows_the_example_handler_as_it_is() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .expect("README.md");
    let example = std::fs::read_to_string(example_handler()).expect("pipe_handler.py");
    assert!(
        readme.contains(&format!("```python\n{example}```\n")),
        "README.md's `work --pipe` handler differs from examples/pipe_handler.py"
    );
}

#[test]
fn the_example_handler_answers_ok_retry_and_dead_and_each_is_settled_so() {
    let dir = temp_dir("pipe-example");
    let inbox = dir.join("inbox.sqlite");
    store(
        &inbox,
        &[
            ("e-1", "FILE.UPLOADED", FILE),
            ("e-2", "FILE.DELETED", FILE),
            ("e-3", "FOLDER.CREATED", r#"{"id":"6","type":"folder"}"#),
            // `body["source"]["type"]` raises: the handler answers `retry`.
            ("e-4", "FILE.UPLOADED", "null"),
        ],
        "2024-05-01T12:00:00Z",
    );
    let command = format!("python3 {}", example_handler().display());
    let store_arg = format!("sqlite:{}", inbox.display());
    let out = run(
        boxhook()
            .args(["work", "--store", &store_arg, "--pipe", &command])
            .args(["--once", "--max-attempts", "2", "--backoff", "0"]),
        LIMIT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "processed 1 event(s); 4 attempt(s) failed\n",
        "{stderr}"
    );
    assert_eq!(
        states(&inbox),
        [
            row("e-1", "done", 1),
            row("e-2", "dead", 1),
            row("e-3", "pending", 1),
            row("e-4", "dead", 2),
        ],
        "{stderr}"
    );
    // `retry 60`: claimable again in a minute, not after --backoff 0.
    let ready = ready_in_ms(&inbox, "e-3");
    assert!((50_000..=60_000).contains(&ready), "{ready} ms");
    for needle in [
        "stderr: e-1 attempt 1\n",
        "inbox event given up by its handler; it is dead at once until requeued, not retried \
         event=4133/e-2 kind=\"v2\" attempt=1 error=the --pipe handler answered `dead deleted \
         files have nothing to process`\n",
        // The released event's line says when it is ready again.
        "error=the --pipe handler answered `retry 60` retry_at=\"",
        "stderr: failed: TypeError(\"'NoneType' object is not subscriptable\")\n",
        "error=the --pipe handler answered `retry` retry_at=\"",
    ] {
        assert!(stderr.contains(needle), "{needle:?} in {stderr}");
    }
    // One process answered all five attempts.
    assert_eq!(handler_pids(&stderr).len(), 1, "{stderr}");
}

#[test]
fn the_handler_reads_one_json_line_per_event_with_the_body_as_a_value() {
    let dir = temp_dir("pipe-line");
    let inbox = dir.join("inbox.sqlite");
    // A body with line breaks between its tokens, and one inside a string
    // (escaped, as JSON requires).
    let pretty = "{\n  \"type\": \"webhook_event\",\r\n  \"id\": \"e-1\",\n  \"trigger\": \"FILE.UPLOADED\",\n  \"webhook\": {\"id\": \"4133\", \"type\": \"webhook\"},\n  \"source\": {\"id\": \"5\", \"type\": \"file\", \"name\": \"a\\nb \u{e9}\"}\n}";
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let db = SqliteInbox::open(&inbox).expect("open sqlite");
            let at = "2024-05-01T12:00:00Z".parse().expect("time");
            db.store(NewRecord::parse(pretty, None, at).expect("event"))
                .await
                .expect("store");
        });
    let lines = dir.join("lines");
    let command = format!(
        "while IFS= read -r line; do printf '%s\\n' \"$line\" >> {}; echo ok; done",
        lines.display()
    );
    let out = run(
        boxhook().args([
            "work",
            "--inbox",
            inbox.to_str().expect("utf-8"),
            "--pipe",
            &command,
            "--once",
        ]),
        LIMIT,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = concat!(
        r#"{"attempt":1,"delivery_id":null,"event_id":"e-1","kind":"v2","received_at":"2024-05-01T12:00:00.000Z","trigger":"FILE.UPLOADED","webhook_id":"4133","#,
        "\"body\":{   \"type\": \"webhook_event\",    \"id\": \"e-1\",   \"trigger\": \"FILE.UPLOADED\",   \"webhook\": {\"id\": \"4133\", \"type\": \"webhook\"},   \"source\": {\"id\": \"5\", \"type\": \"file\", \"name\": \"a\\nb \u{e9}\"} }}\n"
    );
    assert_eq!(std::fs::read_to_string(&lines).expect("lines"), expected);
    let line: serde_json::Value =
        serde_json::from_str(expected.trim_end()).expect("the line is JSON");
    assert_eq!(line["body"]["source"]["name"], "a\nb \u{e9}");
    assert_eq!(states(&inbox), [row("e-1", "done", 1)]);
}

/// A Python handler that records `event_id attempt pid` for each event it
/// reads and then answers `ok`, except as `mode` says for e-2's first
/// attempt (`slow`: every answer after two seconds).
const MISBEHAVING: &str = r#"
import json, os, sys, time
mode, log = sys.argv[1], sys.argv[2]
for line in sys.stdin:
    event = json.loads(line)
    with open(log, "a") as f:
        f.write(f"{event['event_id']} {event['attempt']} {os.getpid()}\n")
    first_e2 = event["event_id"] == "e-2" and event["attempt"] == 1
    if mode == "crash" and first_e2:
        sys.exit(3)
    if mode == "silent" and first_e2:
        time.sleep(60)
    if mode == "garbage" and first_e2:
        print("OK, done", flush=True)
        continue
    if mode == "too-long" and first_e2:
        print("x" * 70000, flush=True)
        continue
    if mode == "slow":
        time.sleep(2)
    print("ok", flush=True)
"#;

/// Whether `pid` is a live process (not gone, not a zombie).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some(state != 'Z' && state != 'X')
        })
        .unwrap_or(false)
}

/// The `event attempt pid` lines the handler recorded.
fn calls(log: &Path) -> Vec<(String, u64, u32)> {
    std::fs::read_to_string(log)
        .expect("log")
        .lines()
        .map(|line| {
            let mut parts = line.split(' ');
            let mut next = || parts.next().expect("part").to_owned();
            (
                next(),
                next().parse().expect("attempt"),
                next().parse().expect("pid"),
            )
        })
        .collect()
}

#[test]
fn a_crashed_silent_or_garbled_handler_fails_its_event_and_is_started_again() {
    let cases = [
        (
            "crash",
            "exited with status 3 before answering; it is started again for the next event",
        ),
        (
            "silent",
            "no answer from the --pipe handler within --timeout 5s; it was killed and is \
             started again for the next event",
        ),
        (
            "garbage",
            "the --pipe handler answered \"OK, done\" for event e-2 attempt 1, which is not \
             `ok`, `retry [seconds]` or `dead [reason]`; it was killed and is started again for \
             the next event",
        ),
        (
            "too-long",
            "the --pipe handler answered a line longer than 65536 bytes; it was killed and is \
             started again for the next event",
        ),
    ];
    for (mode, error) in cases {
        let dir = temp_dir("pipe-misbehaving");
        let inbox = dir.join("inbox.sqlite");
        let events = [
            ("e-1", "FILE.UPLOADED", FILE),
            ("e-2", "FILE.UPLOADED", FILE),
            ("e-3", "FILE.UPLOADED", FILE),
        ];
        store(&inbox, &events, "2024-05-01T12:00:00Z");
        let script = dir.join("handler.py");
        std::fs::write(&script, MISBEHAVING).expect("script");
        let log = dir.join("calls");
        let command = format!("python3 {} {mode} {}", script.display(), log.display());
        let started = Instant::now();
        let out = run(
            boxhook()
                .args(["work", "--inbox", inbox.to_str().expect("utf-8")])
                .args(["--pipe", &command, "--once", "--backoff", "0"])
                .args(["--timeout", "5", "--lease", "20", "--max-attempts", "3"]),
            LIMIT,
        );
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{mode}: {stderr}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "processed 3 event(s); 1 attempt(s) failed\n",
            "{mode}: {stderr}"
        );
        assert_eq!(stderr.matches(error).count(), 1, "{mode}: {stderr}");
        assert_eq!(
            states(&inbox),
            [
                row("e-1", "done", 1),
                row("e-2", "done", 2),
                row("e-3", "done", 1)
            ],
            "{mode}"
        );
        // e-3 and e-2's second attempt went to a new process: one claim
        // took all three (`--batch`), so e-3 ran before e-2's retry.
        let calls = calls(&log);
        let seen: Vec<(&str, u64)> = calls.iter().map(|(id, n, _)| (id.as_str(), *n)).collect();
        assert_eq!(
            seen,
            [("e-1", 1), ("e-2", 1), ("e-3", 1), ("e-2", 2)],
            "{mode}"
        );
        let pids: Vec<u32> = calls.iter().map(|(_, _, pid)| *pid).collect();
        assert_eq!(pids[0], pids[1], "{mode}: one process until e-2");
        assert_ne!(pids[1], pids[2], "{mode}: started again");
        assert_eq!(pids[2], pids[3], "{mode}: kept after the restart");
        // The hung process was killed, not left behind (a zombie waiting
        // for a reaper counts as gone).
        assert!(!running(pids[1]), "{mode}: pid {} still runs", pids[1]);
        assert!(took < Duration::from_secs(30), "{mode}: {took:?}");
    }
}

#[test]
fn a_slow_handler_answering_within_the_timeout_is_waited_for() {
    let dir = temp_dir("pipe-slow");
    let inbox = dir.join("inbox.sqlite");
    store(
        &inbox,
        &[
            ("e-1", "FILE.UPLOADED", FILE),
            ("e-2", "FILE.UPLOADED", FILE),
        ],
        "2024-05-01T12:00:00Z",
    );
    let script = dir.join("handler.py");
    std::fs::write(&script, MISBEHAVING).expect("script");
    let log = dir.join("calls");
    let command = format!("python3 {} slow {}", script.display(), log.display());
    let out = run(
        boxhook()
            .args(["work", "--inbox", inbox.to_str().expect("utf-8")])
            .args(["--pipe", &command, "--once", "--timeout", "10"]),
        LIMIT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "processed 2 event(s); 0 attempt(s) failed\n"
    );
    assert_eq!(
        states(&inbox),
        [row("e-1", "done", 1), row("e-2", "done", 1)]
    );
    let pids: BTreeSet<u32> = calls(&log).into_iter().map(|(_, _, pid)| pid).collect();
    assert_eq!(pids.len(), 1, "one process: {pids:?}");
}

#[test]
fn a_handler_that_exits_at_start_is_started_again_with_a_growing_wait() {
    let dir = temp_dir("pipe-exit");
    let inbox = dir.join("inbox.sqlite");
    store(
        &inbox,
        &[("e-1", "FILE.UPLOADED", FILE)],
        "2024-05-01T12:00:00Z",
    );
    let started = Instant::now();
    let out = run(
        boxhook()
            .args(["work", "--inbox", inbox.to_str().expect("utf-8")])
            .args(["--pipe", "echo cannot start >&2; exit 7", "--once"])
            .args(["--backoff", "0", "--max-attempts", "4"]),
        LIMIT,
    );
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "processed 0 event(s); 4 attempt(s) failed\n"
    );
    assert_eq!(
        stderr
            .matches("exited with status 7 before answering; it is started again")
            .count(),
        4,
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("stderr: cannot start\n").count(),
        4,
        "{stderr}"
    );
    assert_eq!(states(&inbox), [row("e-1", "dead", 4)]);
    // Waits of 0.1, 0.2 and 0.4 s before the second, third and fourth start.
    assert!(took >= Duration::from_millis(700), "{took:?}");
}

#[test]
fn pipe_needs_a_command_and_takes_env() {
    let dir = temp_dir("pipe-usage");
    let inbox = dir.join("inbox.sqlite");
    let out = run(
        boxhook().args([
            "work",
            "--inbox",
            inbox.to_str().expect("utf-8"),
            "--pipe",
            " ",
        ]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("--pipe needs a command, e.g. --pipe 'python3 pipe_handler.py'"));
    assert!(!inbox.exists(), "nothing created on a usage error");

    store(
        &inbox,
        &[("e-1", "FILE.UPLOADED", FILE)],
        "2024-05-01T12:00:00Z",
    );
    let seen = dir.join("env");
    let command = format!(
        "env | grep -E '^(BOXHOOK_|PIPE_TOKEN=|BOX_PRIMARY_KEY=)' | sed 's/-[0-9]*-0$/-N-0/' | sort > {}; read -r line; echo ok",
        seen.display()
    );
    let out = run(
        boxhook()
            .env("PIPE_TOKEN", "t-1")
            .env("BOX_PRIMARY_KEY", "k")
            .args(["work", "--inbox", inbox.to_str().expect("utf-8")])
            .args(["--pipe", &command, "--env", "PIPE_TOKEN", "--once"]),
        LIMIT,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "worker".to_owned());
    assert_eq!(
        std::fs::read_to_string(&seen).expect("env"),
        format!("BOXHOOK_WORKER_ID={host}-N-0\nPIPE_TOKEN=t-1\n")
    );
}

#[test]
fn on_sigterm_the_handler_sees_its_stdin_close_and_exits() {
    let dir = temp_dir("pipe-stop");
    let inbox = dir.join("inbox.sqlite");
    store(
        &inbox,
        &[("e-1", "FILE.UPLOADED", FILE)],
        "2024-05-01T12:00:00Z",
    );
    let said = dir.join("said");
    // Answers each line, then, at the end of its input, says so and exits.
    let command = format!(
        "while IFS= read -r line; do echo ok; done; echo 'stdin closed' > {}",
        said.display()
    );
    let mut child = boxhook()
        .args(["work", "--inbox", inbox.to_str().expect("utf-8")])
        .args(["--pipe", &command, "--poll-ms", "50"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn work");
    let deadline = Instant::now() + LIMIT;
    while states(&inbox) != [row("e-1", "done", 1)] {
        assert!(Instant::now() < deadline, "never done");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!said.exists(), "the process is kept between events");
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let status = common::wait_for(&mut child, Duration::from_secs(20)).expect("stopped");
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&said).expect("the handler saw its stdin close"),
        "stdin closed\n"
    );
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert!(!stderr.contains("killed"), "{stderr}");
}

#[test]
fn a_v1_callback_goes_to_the_handler_as_its_json_document() {
    use boxhook::v1::{Params, V1Callback, V1Fields};
    let dir = temp_dir("pipe-v1");
    let inbox = dir.join("inbox.sqlite");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let db = SqliteInbox::open(&inbox).expect("open sqlite");
            let at = "2024-05-14T09:12:31Z".parse().expect("time");
            let params =
                Params::parse(b"event_type=uploaded&item_id=42&item_type=file").expect("params");
            let record = V1Callback::new("v1-x", at, params, &V1Fields::default()).to_record();
            db.store(record).await.expect("store");
        });
    let lines = dir.join("lines");
    let command = format!(
        "while IFS= read -r line; do printf '%s\\n' \"$line\" >> {}; echo ok; done",
        lines.display()
    );
    let out = run(
        boxhook()
            .args(["work", "--inbox", inbox.to_str().expect("utf-8")])
            .args(["--pipe", &command, "--once"]),
        LIMIT,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&lines).expect("lines"),
        concat!(
            r#"{"attempt":1,"delivery_id":null,"event_id":"v1-x","kind":"v1","received_at":"2024-05-14T09:12:31.000Z","trigger":"uploaded","webhook_id":"","#,
            r#""body":{"id":"v1-x","item_id":"42","item_name":null,"item_type":"file","params":[["event_type","uploaded"],["item_id","42"],["item_type","file"]],"received_at":"2024-05-14T09:12:31.000Z","trigger":"uploaded","type":"v1_callback","user_id":null}}"#,
            "\n"
        )
    );
    assert_eq!(states(&inbox), [row("v1-x", "done", 1)]);
}

#[test]
fn a_handler_that_ends_itself_between_events_is_started_again_without_a_failure() {
    let dir = temp_dir("pipe-recycle");
    let inbox = dir.join("inbox.sqlite");
    let events = [
        ("e-1", "FILE.UPLOADED", FILE),
        ("e-2", "FILE.UPLOADED", FILE),
        ("e-3", "FILE.UPLOADED", FILE),
    ];
    store(&inbox, &events, "2024-05-01T12:00:00Z");
    // One event per process: it closes its stdin, answers, and exits 0
    // (closing first, so that the next line finds no reader whether or
    // not the shell has exited yet).
    let out = run(
        boxhook()
            .args(["work", "--inbox", inbox.to_str().expect("utf-8")])
            .args(["--pipe", "read -r line; exec 0<&-; echo ok", "--once"])
            .args(["--max-attempts", "1"]),
        LIMIT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "processed 3 event(s); 0 attempt(s) failed\n"
    );
    assert_eq!(
        stderr
            .matches(" after answering 1 event(s); starting it again\n")
            .count(),
        2,
        "{stderr}"
    );
    assert_eq!(
        states(&inbox),
        [
            row("e-1", "done", 1),
            row("e-2", "done", 1),
            row("e-3", "done", 1)
        ]
    );
}

/// Runs `work --pipe COMMAND --once` on three new events; its stderr.
fn three_events_through(name: &str, command: &str) -> (common::TestDir, String) {
    let dir = temp_dir(name);
    let inbox = dir.join("inbox.sqlite");
    store(
        &inbox,
        &[
            ("e-1", "FILE.UPLOADED", FILE),
            ("e-2", "FILE.UPLOADED", FILE),
            ("e-3", "FILE.UPLOADED", FILE),
        ],
        "2024-05-01T12:00:00Z",
    );
    let out = run(
        boxhook()
            .args(["work", "--inbox", inbox.to_str().expect("utf-8")])
            .args(["--pipe", command, "--once", "--backoff", "0"]),
        LIMIT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "processed 3 event(s); 0 attempt(s) failed\n",
        "{stderr}"
    );
    assert_eq!(
        states(&inbox),
        [
            row("e-1", "done", 1),
            row("e-2", "done", 1),
            row("e-3", "done", 1)
        ],
        "{stderr}"
    );
    (dir, stderr)
}

#[test]
fn a_handler_writing_two_lines_for_an_event_is_replaced_before_the_next() {
    // One write, two lines: the second would answer the next event.
    let (_dir, stderr) = three_events_through(
        "pipe-two-lines",
        r"while read -r line; do printf 'ok\nstray line\n'; done",
    );
    assert_eq!(
        stderr
            .matches(
                "wrote more than one line for its last event (then \"stray line\\n\"); stdout \
                 is for answers only, one line per event (log to stderr): it was killed and is \
                 started again"
            )
            .count(),
        2,
        "{stderr}"
    );
}

#[test]
fn a_handler_that_exits_0_after_each_answer_costs_no_attempt() {
    // No stdin closed first: the exit may come after the next event was
    // written into its pipe.
    let (_dir, stderr) =
        three_events_through("pipe-exit-0", "read -r line; echo ok; sleep 0.05; exit 0");
    assert!(!stderr.contains("before answering"), "{stderr}");
}

#[test]
fn a_handlers_stderr_is_read_to_its_end_whatever_its_bytes() {
    // Bytes that are not UTF-8, then a 9,000-byte line: logged (U+FFFD,
    // pieces of 8 KiB), and the handler is never cut off by a closed pipe.
    // (Small enough that boxhook's whole stderr fits the test's pipe.)
    let (_dir, stderr) = three_events_through(
        "pipe-stderr",
        r"while read -r line; do printf '\377\376 bad bytes\n' >&2; head -c 9000 /dev/zero | tr '\0' x >&2; printf '\r\n' >&2; echo ok; done",
    );
    assert_eq!(
        stderr
            .matches("stderr: \u{fffd}\u{fffd} bad bytes\n")
            .count(),
        3,
        "{stderr}"
    );
    let pieces: Vec<usize> = stderr
        .lines()
        .filter_map(|line| line.split_once(" stderr: x"))
        .map(|(_, xs)| xs.len() + 1)
        .collect();
    assert_eq!(pieces, [8192, 808].repeat(3), "{stderr}");
}
