//! A full disk, for real: the inbox on a 2 MiB tmpfs, filled with distinct
//! ~30 KB events. Every store that returned `Stored::New` is on disk, byte
//! for byte, after the inbox is dropped and opened again; every other
//! store failed with `ErrorKind::Storage` and SQLite's reason; and once
//! space is freed the same inbox stores again.

#![cfg(unix)] // Reason: tmpfs mounts, permission bits, inodes and `kill`.
#![allow(clippy::doc_markdown, reason = "SQLite is a product name, not code")]

use crate::common;

use boxhook::inbox::{ErrorKind, Inbox, ListFilter, NewRecord, Stored};
use boxhook_sqlite::SqliteInbox;
use common::{big_event, on_small_fs, t};

const EVENT_SIZE: usize = 30 * 1024;

#[test]
fn a_full_disk_fails_stores_and_loses_no_stored_event() {
    on_small_fs(
        "a_full_disk_fails_stores_and_loses_no_stored_event",
        "2m",
        |dir| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime");
            runtime.block_on(fill(dir));
        },
    );
}

async fn fill(dir: &std::path::Path) {
    let path = dir.join("inbox.sqlite");
    // Room to free later, to show the inbox recovers.
    let ballast = dir.join("ballast");
    std::fs::write(&ballast, vec![0_u8; 256 * 1024]).expect("write ballast");

    let inbox = SqliteInbox::open(&path).expect("open on the small filesystem");
    let mut stored: Vec<(String, String)> = Vec::new();
    let mut failures = Vec::new();
    for n in 0..200_u64 {
        let body = big_event(n, EVENT_SIZE);
        let record = NewRecord::parse(body.clone().into_bytes(), Some(&format!("d-{n}")), t(0))
            .expect("a webhook_event");
        match inbox.store(record).await {
            Ok(Stored::New) => stored.push((format!("e-{n}"), body)),
            Ok(other) => panic!("event e-{n} is new, but store said {other:?}"),
            Err(err) => failures.push(err),
        }
        // Keep going a little after the first failure: later stores must
        // fail the same way, not succeed into a broken file.
        if failures.len() == 5 {
            break;
        }
    }
    assert_eq!(failures.len(), 5, "2 MiB never filled up");
    assert!(stored.len() >= 10, "only {} events fit", stored.len());
    for err in &failures {
        assert_eq!(err.kind(), ErrorKind::Storage, "{err}");
        assert_eq!(
            err.to_string(),
            "inbox storage failed: database or disk is full"
        );
    }
    // Failed stores stored nothing: the list is exactly the successes.
    let listed = inbox.list(ListFilter::new()).await.expect("list");
    let ids: Vec<&str> = listed.iter().map(|e| e.event_id.as_str()).collect();
    let want: Vec<&str> = stored.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, want);
    drop(inbox);

    // Reopened (read-only: a receiver's open writes, and the disk is still
    // full), every stored event is there, byte for byte.
    let reader = SqliteInbox::open_read_only(&path).expect("reopen read-only");
    assert_eq!(
        reader.list(ListFilter::new()).await.expect("list").len(),
        stored.len()
    );
    for (id, body) in &stored {
        let event = reader.get(id).await.expect("get").expect("stored event");
        assert_eq!(event.body, body.as_bytes(), "{id}");
    }
    drop(reader);

    // Space freed: the receiver opens and stores again, and keeps the rest.
    std::fs::remove_file(&ballast).expect("free space");
    let inbox = SqliteInbox::open(&path).expect("reopen with free space");
    let body = big_event(1000, 1024);
    let record = NewRecord::parse(body.clone().into_bytes(), Some("d-1000"), t(1)).expect("event");
    assert_eq!(inbox.store(record).await.expect("store"), Stored::New);
    let listed = inbox.list(ListFilter::new()).await.expect("list");
    assert_eq!(listed.len(), stored.len() + 1);
    assert_eq!(listed.last().map(|e| e.event_id.as_str()), Some("e-1000"));
}
