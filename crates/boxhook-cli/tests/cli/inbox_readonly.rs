//! Inboxes that must not be written: `serve` refuses a read-only inbox
//! before listening; `inbox list` and `inbox show` open read-only and
//! change nothing on disk, whatever file they are pointed at; and what a
//! sender chose reaches the terminal escaped.

#![cfg(unix)] // Reason: tmpfs mounts, permission bits, inodes and `kill`.
#![allow(
    clippy::too_many_lines,
    clippy::unwrap_used,
    reason = "tests: long literal tables, and a panic is the failure report"
)]

use crate::common;
use crate::small_fs;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use boxhook::inbox::{Inbox as _, NewRecord, Stored};
use boxhook_sqlite::SqliteInbox;
use boxhook_testkit::{sample_keys, Delivery, RetrySchedule, Simulator};
use common::{boxhook, run, Server};
use small_fs::{as_unprivileged, on_small_fs, remount_read_only, snapshot, TempDir};

const LIMIT: Duration = Duration::from_secs(30);

fn serve(inbox: &Path) -> Output {
    run(
        boxhook()
            .env("BOX_PRIMARY_KEY", boxhook_testkit::SAMPLE_PRIMARY_KEY)
            .args(["serve", "--listen", "127.0.0.1:0", "--inbox"])
            .arg(inbox),
        LIMIT,
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn read_only_refusal(inbox: &Path) -> String {
    format!(
        "boxhook: cannot open inbox {0}: inbox storage failed: inbox {0} is read-only (file, \
         directory or mount): storing events needs to write to it and to create its -wal and \
         -shm files next to it; check its permissions and mount, or use a writable path\n",
        inbox.display()
    )
}

/// Waits until no connection holds `inbox` open (its -wal is gone).
fn wait_until_closed(inbox: &Path) {
    let wal = format!("{}-wal", inbox.display());
    for _ in 0..250 {
        if !Path::new(&wal).exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{wal} is still there");
}

#[test]
fn serve_refuses_an_inbox_on_a_read_only_mount_before_listening() {
    on_small_fs(
        "serve_refuses_an_inbox_on_a_read_only_mount_before_listening",
        "1m",
        |dir| {
            let inbox = dir.join("inbox.sqlite");
            drop(SqliteInbox::open(&inbox).unwrap());
            wait_until_closed(&inbox);
            remount_read_only(dir);
            let out = serve(&inbox);
            assert_eq!(
                (out.status.code(), text(&out.stdout), text(&out.stderr)),
                (Some(1), String::new(), read_only_refusal(&inbox))
            );
        },
    );
}

#[test]
fn serve_refuses_a_read_only_inbox_file_before_listening() {
    // Root ignores permission bits: as root, the test runs again as nobody.
    let boxhook = Path::new(env!("CARGO_BIN_EXE_boxhook"));
    as_unprivileged(
        "serve_refuses_a_read_only_inbox_file_before_listening",
        &[boxhook],
        || {
            let dir = TempDir::new("ro-file");
            let inbox = dir.path().join("inbox.sqlite");
            drop(SqliteInbox::open(&inbox).unwrap());
            wait_until_closed(&inbox);
            std::fs::set_permissions(&inbox, std::fs::Permissions::from_mode(0o444)).unwrap();
            let out = serve(&inbox);
            assert_eq!(
                (out.status.code(), text(&out.stdout), text(&out.stderr)),
                (Some(1), String::new(), read_only_refusal(&inbox))
            );
        },
    );
}

/// `inbox list` and `inbox show` on files that are not inboxes: a specific
/// message, a failing exit code, and not one byte changed in the directory.
#[test]
fn inbox_commands_on_what_is_not_an_inbox_change_nothing() {
    let dir = TempDir::new("not-an-inbox");
    let empty = dir.path().join("empty.sqlite");
    let other = dir.path().join("other.sqlite");
    let missing = dir.path().join("missing.sqlite");
    std::fs::write(&empty, b"").unwrap();
    // An unrelated database, as another tool would leave it.
    rusqlite::Connection::open(&other)
        .and_then(|conn| {
            conn.execute_batch(
                "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me');",
            )
        })
        .unwrap();
    let not_inbox = |path: &Path| {
        format!(
            "boxhook: cannot open inbox {0}: inbox data is unreadable: {0} is not a boxhook inbox \
             (an SQLite database without its events table)\n",
            path.display()
        )
    };
    let missing_message = format!(
        "boxhook: no inbox at {0} (run `boxhook serve --inbox {0}` first, or pass --inbox or --store)\n",
        missing.display()
    );
    let cases: Vec<(&str, &Path, i32, String)> = vec![
        ("list", &empty, 1, not_inbox(&empty)),
        ("show", &empty, 1, not_inbox(&empty)),
        ("list", &other, 1, not_inbox(&other)),
        ("show", &other, 1, not_inbox(&other)),
        ("list", &missing, 2, missing_message.clone()),
        ("show", &missing, 2, missing_message.clone()),
    ];
    let before = snapshot(dir.path());
    for (command, path, code, message) in cases {
        let mut args = vec!["inbox", command];
        if command == "show" {
            args.push("e-1");
        }
        let out = run(boxhook().args(&args).arg("--inbox").arg(path), LIMIT);
        assert_eq!(
            (out.status.code(), text(&out.stdout), text(&out.stderr)),
            (Some(code), String::new(), message),
            "{command} {}",
            path.display()
        );
        assert_eq!(
            snapshot(dir.path()),
            before,
            "{command} {} changed the directory",
            path.display()
        );
    }
}

fn event(id: &str, trigger: &str, source_id: &str) -> String {
    format!(
        r#"{{"type":"webhook_event","id":"{id}","trigger":"{trigger}","webhook":{{"id":"4133","type":"webhook"}},"source":{{"id":"{source_id}","type":"file","name":"x"}}}}"#
    )
}

/// A stored id, trigger and source id with ESC, BEL, a newline and a bidi
/// override: the table shows them escaped, `show` prints the body exactly,
/// and a closed inbox is read without a byte changing.
#[test]
fn inbox_list_escapes_what_the_sender_chose_and_show_prints_the_body_exactly() {
    let dir = TempDir::new("escape");
    let inbox = dir.path().join("inbox.sqlite");
    // JSON escapes in the body: the decoded id is "e\x1b]0;x\x07\n1".
    let body = event(
        r"e\u001b]0;x\u0007\n1",
        r"FILE.\u001b]0;x\u0007\nUPLOADED",
        "f\u{202e}gpj.exe",
    );
    let received = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let writer = SqliteInbox::open(&inbox).unwrap();
    let record = NewRecord::parse(body.clone(), Some("d-1"), received).unwrap();
    assert_eq!(record.event_id, "e\u{1b}]0;x\u{7}\n1");
    assert_eq!(runtime.block_on(writer.store(record)).unwrap(), Stored::New);
    drop(writer);
    wait_until_closed(&inbox);

    let before = snapshot(dir.path());
    let list = run(
        boxhook().args(["inbox", "list", "--inbox"]).arg(&inbox),
        LIMIT,
    );
    assert_eq!(list.status.code(), Some(0), "{}", text(&list.stderr));
    assert_eq!(
        text(&list.stdout),
        concat!(
            "RECEIVED              KIND  EVENT ID             TRIGGER                         SOURCE                 DELIVERIES  STATE\n",
            r"2023-11-14T22:13:20Z  v2    e\u{1b}]0;x\u{7}\n1  FILE.\u{1b}]0;x\u{7}\nUPLOADED  file:f\u{202e}gpj.exe  1           pending",
            "\n1 event(s)\n"
        )
    );
    let json = run(
        boxhook()
            .args(["inbox", "list", "--json", "--inbox"])
            .arg(&inbox),
        LIMIT,
    );
    assert!(
        text(&json.stdout).contains(r#""event_id":"e\u001b]0;x\u0007\n1""#),
        "{}",
        text(&json.stdout)
    );

    let show = run(
        boxhook()
            .args(["inbox", "show", "e\u{1b}]0;x\u{7}\n1", "--inbox"])
            .arg(&inbox),
        LIMIT,
    );
    assert_eq!(show.status.code(), Some(0), "{}", text(&show.stderr));
    assert_eq!(
        show.stdout,
        body.as_bytes(),
        "the stored body, byte for byte"
    );

    let missing = run(
        boxhook()
            .args(["inbox", "show", "nope\u{1b}[2J\n", "--inbox"])
            .arg(&inbox),
        LIMIT,
    );
    assert_eq!(
        (missing.status.code(), text(&missing.stderr)),
        (
            Some(1),
            format!(r#"no event "nope\u{{1b}}[2J\n" in {}"#, inbox.display()) + "\n"
        )
    );
    assert_eq!(snapshot(dir.path()), before, "reading changed the inbox");
}

/// While `serve` holds the inbox open in WAL mode, `list` and `show` read
/// what it stored.
#[test]
fn inbox_list_and_show_read_an_inbox_serve_has_open() {
    let dir = TempDir::new("while-serving");
    let inbox = dir.path().join("inbox.sqlite");
    let server = Server::start(&inbox, &[]);
    let body = event("e-1", "FILE.UPLOADED", "f-1");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = runtime.block_on(async {
        let sim = Simulator::builder(server.url.parse().unwrap(), sample_keys())
            .schedule(RetrySchedule::none())
            .timeout(Duration::from_secs(10))
            .build();
        let report = sim.send(Delivery::new(body.clone())).await;
        report
            .last()
            .and_then(boxhook_testkit::Attempt::status)
            .map_or(0, |s| s.as_u16())
    });
    assert_eq!(status, 200);
    let files = |dir: &Path| -> Vec<_> { snapshot(dir).into_keys().collect() };
    let before = files(dir.path());
    assert_eq!(before.len(), 3, "the inbox, its -wal and -shm: {before:?}");

    let listed = common::inbox_list(&inbox);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["event_id"], "e-1");
    let show = run(
        boxhook()
            .args(["inbox", "show", "e-1", "--inbox"])
            .arg(&inbox)
            .stdin(Stdio::null()),
        LIMIT,
    );
    assert_eq!(show.status.code(), Some(0), "{}", text(&show.stderr));
    assert_eq!(show.stdout, body.as_bytes());
    assert_eq!(files(dir.path()), before);
    assert_eq!(server.terminate(LIMIT).code(), Some(0));
}
