//! Opening SQLite files: `open` creates and migrates, `open_existing` reads
//! what exists without creating anything, `migrate` only migrates; the
//! failures' kinds and messages.

use boxhook::inbox::{ErrorKind, Inbox as _, ListFilter};
use boxhook_store::{Backend, OpenErrorKind, Store};
use boxhook_testkit::fs::TempDir;

#[tokio::test]
async fn open_creates_a_writable_inbox() {
    let dir = TempDir::new("store-open");
    let path = dir.file("new.sqlite");
    let store = Store::parse(&format!("sqlite:{}", path.display())).expect("parse");
    let inbox = store.open().await.expect("open");
    assert_eq!(inbox.backend(), Backend::Sqlite);
    let sqlite = inbox.as_sqlite().expect("a SQLite inbox");
    assert_eq!(sqlite.path(), Some(path.as_path()));
    assert!(!sqlite.is_read_only());
    assert!(path.is_file());
    assert_eq!(inbox.counts().await.expect("counts").pending, 0);
}

#[tokio::test]
async fn open_existing_creates_nothing_and_reads_only() {
    let dir = TempDir::new("store-open-existing");
    let path = dir.file("inbox.sqlite");
    let store = Store::sqlite(&path);

    let err = store.open_existing().await.expect_err("no file yet");
    assert_eq!(err.kind(), OpenErrorKind::NotFound);
    assert!(err.inbox_error().is_none());
    assert_eq!(err.to_string(), format!("no inbox at {}", path.display()));
    assert_eq!(
        err.named("--store").to_string(),
        format!("no inbox at {}", path.display())
    );
    assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);

    drop(store.open().await.expect("open"));
    let inbox = store.open_existing().await.expect("open_existing");
    assert!(inbox
        .as_sqlite()
        .is_some_and(boxhook_store::sqlite::SqliteInbox::is_read_only));
    assert!(inbox
        .list(ListFilter::default())
        .await
        .expect("list")
        .is_empty());
}

#[tokio::test]
async fn what_is_no_inbox_is_refused_with_the_inboxs_reason() {
    let dir = TempDir::new("store-not-an-inbox");
    let empty = dir.file("empty.sqlite");
    std::fs::write(&empty, b"").expect("write");
    let err = Store::sqlite(&empty)
        .open_existing()
        .await
        .expect_err("an empty file is no inbox");
    assert_eq!(err.kind(), OpenErrorKind::Open);
    assert_eq!(
        err.inbox_error().map(boxhook::inbox::InboxError::kind),
        Some(ErrorKind::Corrupt)
    );
    assert_eq!(
        err.to_string(),
        format!(
            "cannot open inbox {0}: inbox data is unreadable: {0} is not a boxhook inbox (an \
             SQLite database without its events table)",
            empty.display()
        )
    );
    assert_eq!(
        std::fs::read(&empty).expect("read"),
        b"",
        "not one byte written"
    );

    // A directory cannot be opened, for writing or for reading.
    let store = Store::sqlite(dir.path());
    for err in [
        store
            .open()
            .await
            .expect_err("open: a directory is no inbox"),
        store
            .migrate()
            .await
            .expect_err("migrate: a directory is no inbox"),
    ] {
        assert_eq!(err.kind(), OpenErrorKind::Open);
        let inbox_error = err.inbox_error().expect("the inbox's error");
        assert_eq!(
            err.to_string(),
            format!("cannot open inbox {}: {inbox_error}", dir.path().display())
        );
    }
}

#[tokio::test]
async fn migrate_creates_the_file_and_has_no_postgres_version() {
    let dir = TempDir::new("store-migrate");
    let path = dir.file("inbox.sqlite");
    let store = Store::parse(&path.display().to_string()).expect("parse");
    assert_eq!(store.migrate().await.expect("migrate"), None);
    assert!(path.is_file());
    let inbox = store.open_existing().await.expect("migrated");
    assert_eq!(inbox.counts().await.expect("counts").dead, 0);
}
