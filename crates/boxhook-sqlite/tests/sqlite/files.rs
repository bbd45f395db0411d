//! The inbox file itself: read-only files and mounts refused at open,
//! `open_read_only` changing nothing on disk, and a file deleted or
//! replaced under an open inbox turning stores into errors.

#![cfg(unix)] // Reason: tmpfs mounts, permission bits, inodes and `kill`.
#![allow(clippy::doc_markdown, reason = "SQLite is a product name, not code")]

use crate::common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use boxhook::idempotency::{EventKey, IdempotencyStore};
use boxhook::inbox::{ErrorKind, Inbox, InboxError, ListFilter, NewRecord, Stored};
use boxhook_sqlite::SqliteInbox;
use common::{
    as_unprivileged, event, on_small_fs, remount_read_only, snapshot, t, wait_until_closed, TempDir,
};

fn record(id: &str) -> NewRecord {
    NewRecord::parse(event("4133", id, "FILE.UPLOADED"), Some("d-1"), t(0)).expect("an event")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

fn read_only_message(path: &Path) -> String {
    format!(
        "inbox storage failed: inbox {} is read-only (file, directory or mount): storing events \
         needs to write to it and to create its -wal and -shm files next to it; check its \
         permissions and mount, or use a writable path",
        path.display()
    )
}

#[test]
fn open_refuses_an_inbox_on_a_read_only_mount() {
    on_small_fs("open_refuses_an_inbox_on_a_read_only_mount", "1m", |dir| {
        let path = dir.join("inbox.sqlite");
        let inbox = SqliteInbox::open(&path).expect("create");
        assert_eq!(
            runtime()
                .block_on(inbox.store(record("e-1")))
                .expect("store"),
            Stored::New
        );
        drop(inbox);
        // The connection thread closes the file after the last clone is
        // dropped; a mount with a file open for writing cannot go read-only.
        wait_until_closed(&path);
        remount_read_only(dir);

        let err = SqliteInbox::open(&path).expect_err("read-only mount");
        assert_eq!(err.kind(), ErrorKind::Storage);
        assert_eq!(err.to_string(), read_only_message(&path));

        let missing = dir.join("new.sqlite");
        let err = SqliteInbox::open(&missing).expect_err("cannot create");
        assert_eq!(err.kind(), ErrorKind::Storage);
        assert_eq!(
            err.to_string(),
            format!(
                "inbox storage failed: cannot open or create {0}: unable to open database file: \
                 {0}; check that its directory exists and that this process may read and write it",
                missing.display()
            )
        );

        // Reading still works, and changes nothing.
        let before = snapshot(dir);
        let reader = SqliteInbox::open_read_only(&path).expect("open read-only");
        let listed = runtime()
            .block_on(reader.list(ListFilter::new()))
            .expect("list");
        assert_eq!(listed.len(), 1);
        drop(reader);
        assert_eq!(snapshot(dir), before);
    });
}

#[test]
fn open_refuses_read_only_permissions() {
    // Root ignores permission bits: as root, the test runs again as nobody.
    as_unprivileged("open_refuses_read_only_permissions", &[], || {
        let set_mode = |path: &Path, mode: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        };
        // A read-only file.
        let dir = TempDir::new("ro-file");
        let path = dir.file("inbox.sqlite");
        drop(SqliteInbox::open(&path).expect("create"));
        wait_until_closed(&path);
        set_mode(&path, 0o444);
        let err = SqliteInbox::open(&path).expect_err("read-only file");
        assert_eq!(err.kind(), ErrorKind::Storage);
        assert_eq!(err.to_string(), read_only_message(&path));

        // A writable file in a read-only directory: SQLite cannot create the
        // -wal next to it.
        let dir = TempDir::new("ro-dir");
        let path = dir.file("inbox.sqlite");
        drop(SqliteInbox::open(&path).expect("create"));
        // With the -wal gone: while it exists (and is writable), SQLite
        // writes through it, and the inbox is writable indeed.
        wait_until_closed(&path);
        set_mode(dir.path(), 0o555);
        let result = SqliteInbox::open(&path);
        set_mode(dir.path(), 0o755); // before any assertion, so TempDir can clean up
        let err = result.expect_err("read-only directory");
        assert_eq!(err.kind(), ErrorKind::Storage);
        assert!(
            err.to_string().starts_with(&format!(
                "inbox storage failed: inbox {} is read-only",
                path.display()
            )),
            "{err}"
        );
    });
}

/// What `open_read_only` says about files that are not an inbox.
#[test]
fn open_read_only_refuses_what_is_not_an_inbox_and_changes_nothing() {
    let dir = TempDir::new("not-an-inbox");
    std::fs::write(dir.file("empty.sqlite"), b"").expect("write");
    std::fs::write(
        dir.file("text.sqlite"),
        b"hello, not a database\n".repeat(100),
    )
    .expect("write");
    rusqlite::Connection::open(dir.file("other.sqlite"))
        .and_then(|conn| {
            conn.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('x');")
        })
        .expect("an unrelated database");
    rusqlite::Connection::open(dir.file("versioned.sqlite"))
        .and_then(|conn| {
            conn.execute_batch("CREATE TABLE notes (body TEXT); PRAGMA user_version = 1;")
        })
        .expect("an unrelated database with a user_version");
    drop(SqliteInbox::open(dir.file("newer.sqlite")).expect("create"));
    wait_until_closed(&dir.file("newer.sqlite"));
    rusqlite::Connection::open(dir.file("newer.sqlite"))
        .and_then(|conn| conn.pragma_update(None, "user_version", 7))
        .expect("set version");
    std::fs::create_dir(dir.file("a-dir")).expect("mkdir");

    let not_inbox = |name: &str| {
        format!(
            "inbox data is unreadable: {} is not a boxhook inbox (an SQLite database without its \
             events table)",
            dir.file(name).display()
        )
    };
    let cases: Vec<(&str, ErrorKind, String)> =
        vec![
        (
            "missing.sqlite",
            ErrorKind::Storage,
            format!(
                "inbox storage failed: no inbox at {}: there is no such file (No such file or \
                 directory (os error 2))",
                dir.file("missing.sqlite").display()
            ),
        ),
        (
            "a-dir",
            ErrorKind::Storage,
            format!(
                "inbox storage failed: no inbox at {}: it is not a file",
                dir.file("a-dir").display()
            ),
        ),
        ("empty.sqlite", ErrorKind::Corrupt, not_inbox("empty.sqlite")),
        ("other.sqlite", ErrorKind::Corrupt, not_inbox("other.sqlite")),
        ("versioned.sqlite", ErrorKind::Corrupt, not_inbox("versioned.sqlite")),
        (
            "text.sqlite",
            ErrorKind::Corrupt,
            format!(
                "inbox data is unreadable: {} is not an SQLite database, so not a boxhook inbox \
                 (file is not a database)",
                dir.file("text.sqlite").display()
            ),
        ),
        (
            "newer.sqlite",
            ErrorKind::Corrupt,
            "inbox data is unreadable: inbox schema version 7 is newer than this build reads (5)"
                .to_owned(),
        ),
    ];
    let before = snapshot(dir.path());
    for (name, kind, message) in cases {
        let err = SqliteInbox::open_read_only(dir.file(name)).expect_err(name);
        assert_eq!((err.kind(), err.to_string()), (kind, message), "{name}");
        assert_eq!(snapshot(dir.path()), before, "{name} changed the directory");
    }
}

fn assert_read_only_error(
    result: Result<impl std::fmt::Debug, InboxError>,
    path: &Path,
    what: &str,
) {
    let err = result.expect_err(what);
    assert_eq!(err.kind(), ErrorKind::Storage);
    assert_eq!(
        err.to_string(),
        format!(
            "inbox storage failed: inbox {} was opened read-only, so it cannot {what}; open it \
             with SqliteInbox::open to write",
            path.display()
        )
    );
}

#[test]
fn a_read_only_inbox_reads_and_refuses_every_write() {
    let dir = TempDir::new("read-only");
    let path = dir.file("inbox.sqlite");
    let rt = runtime();
    let writer = SqliteInbox::open(&path).expect("create");
    rt.block_on(writer.store(record("e-1"))).expect("store");
    rt.block_on(writer.store(record("e-2"))).expect("store");
    let claimed = rt
        .block_on(writer.claim_next("w", Duration::from_secs(60), t(0)))
        .expect("claim")
        .expect("an event");

    // While the writer has it open (WAL): the reader sees its commits.
    let reader = SqliteInbox::open_read_only(&path).expect("open read-only");
    assert!(reader.is_read_only());
    assert_eq!(reader.path(), Some(path.as_path()));
    let listed = rt.block_on(reader.list(ListFilter::new())).expect("list");
    assert_eq!(listed.len(), 2);
    let got = rt.block_on(reader.get("e-2")).expect("get").expect("e-2");
    assert_eq!(got.body, event("4133", "e-2", "FILE.UPLOADED").as_bytes());

    assert_read_only_error(
        rt.block_on(reader.store(record("e-3"))),
        &path,
        "store an event",
    );
    assert_read_only_error(
        rt.block_on(reader.claim_next("w", Duration::from_secs(60), t(0))),
        &path,
        "claim an event",
    );
    assert_read_only_error(
        rt.block_on(reader.ack(&claimed)),
        &path,
        "acknowledge an event",
    );
    assert_read_only_error(
        rt.block_on(reader.requeue(&claimed, t(5))),
        &path,
        "requeue an event",
    );
    let claims = reader.idempotency_store();
    let refused = rt
        .block_on(claims.claim(&EventKey::new("4133", "e-1"), t(0), Duration::from_secs(1)))
        .expect_err("a read-only store claims nothing");
    assert_eq!(
        refused.to_string(),
        format!(
            "idempotency store failed: inbox storage failed: inbox {} was opened read-only, so \
             it cannot claim an event; open it with SqliteInbox::open to write",
            path.display()
        )
    );
    drop(claims);

    // Nothing changed: the writer still holds its claim.
    rt.block_on(writer.ack(&claimed)).expect("ack");
    drop(reader);
    drop(writer);
    wait_until_closed(&path);

    // Closed: no -wal left, and reading creates none.
    let before = snapshot(dir.path());
    assert_eq!(before.len(), 1, "{:?}", before.keys());
    let reader = SqliteInbox::open_read_only(&path).expect("open read-only");
    let listed = rt.block_on(reader.list(ListFilter::new())).expect("list");
    assert_eq!(listed.len(), 2);
    assert_eq!(snapshot(dir.path()), before, "while open");
    drop(reader);
    assert_eq!(snapshot(dir.path()), before, "after close");
}

fn deleted_message(path: &Path) -> String {
    format!(
        "inbox storage failed: inbox file {} was deleted or replaced while open, so what was just \
         written went to a file nobody will read; restart the receiver so it opens the file again",
        path.display()
    )
}

#[test]
fn a_deleted_or_replaced_inbox_file_fails_every_store() {
    type Tamper = fn(&Path, &Path);
    let rt = runtime();
    let cases: [(&str, Tamper, &str); 4] = [
        (
            "deleted with its -wal and -shm",
            |path, _| {
                for suffix in ["", "-wal", "-shm"] {
                    std::fs::remove_file(format!("{}{suffix}", path.display())).expect("rm");
                }
            },
            "",
        ),
        (
            "another file renamed over it",
            |path, dir| {
                let other = dir.join("other.sqlite");
                drop(SqliteInbox::open(&other).expect("create another"));
                std::fs::rename(&other, path).expect("rename");
            },
            "",
        ),
        (
            "its -wal deleted",
            |path, _| std::fs::remove_file(format!("{}-wal", path.display())).expect("rm"),
            "-wal",
        ),
        (
            "only its -shm deleted (SQLite keeps its mapping; nothing is lost)",
            |path, _| std::fs::remove_file(format!("{}-shm", path.display())).expect("rm"),
            "ok",
        ),
    ];
    for (name, tamper, named) in cases {
        let dir = TempDir::new("deleted");
        let path = dir.file("inbox.sqlite");
        let inbox = SqliteInbox::open(&path).expect("open");
        assert_eq!(
            rt.block_on(inbox.store(record("e-1"))).expect("store"),
            Stored::New
        );
        let canonical = std::fs::canonicalize(&path).expect("canonical path");
        tamper(&path, dir.path());
        let result = rt.block_on(inbox.store(record("e-2")));
        if named == "ok" {
            assert_eq!(result.expect(name), Stored::New, "{name}");
            continue;
        }
        let err = result.expect_err(name);
        assert_eq!(err.kind(), ErrorKind::Storage, "{name}");
        let file = PathBuf::from(format!("{}{named}", canonical.display()));
        assert_eq!(err.to_string(), deleted_message(&file), "{name}");
        // And the next one too: the receiver must be restarted.
        let again = rt.block_on(inbox.store(record("e-3"))).expect_err(name);
        assert_eq!(again.to_string(), deleted_message(&file), "{name}");
    }
}
