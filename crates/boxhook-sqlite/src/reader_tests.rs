//! A file inbox reads on a connection and a thread of its own: a read in
//! progress never delays a store, and a read nobody waits for any more is
//! cancelled. Shown by ordering (what completes while what is held), not
//! by timing.

use std::future::Future as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use boxhook::inbox::{Inbox as _, ListFilter, NewRecord, Stored};
use boxhook_testkit::fs::TempDir;
use chrono::DateTime;
use rusqlite::ErrorCode;
use tokio::sync::oneshot;

use crate::SqliteInbox;

fn record(event_id: &str) -> NewRecord {
    let body = format!(
        r#"{{"type":"webhook_event","id":"{event_id}","trigger":"FILE.UPLOADED","webhook":{{"id":"4133"}}}}"#
    );
    let at = DateTime::from_timestamp(1_700_000_000, 0).expect("in range");
    NewRecord::parse(body.into_bytes(), Some("d-1"), at).expect("a webhook_event")
}

/// Holds the reader's thread in the middle of a read until `release`:
/// one row of a listing stepped, its snapshot open. Answers the ids it
/// read, the first one before the hold.
fn held_read(
    inbox: &SqliteInbox,
    started: oneshot::Sender<()>,
    release: Arc<Barrier>,
) -> tokio::task::JoinHandle<Result<Vec<String>, boxhook::inbox::InboxError>> {
    let inbox = inbox.clone();
    tokio::spawn(async move {
        inbox
            .db
            .read(move |conn| {
                let mut stmt = conn
                    .prepare("SELECT event_id FROM events ORDER BY seq")
                    .map_err(crate::storage)?;
                let mut rows = stmt.query([]).map_err(crate::storage)?;
                let mut ids = Vec::new();
                if let Some(row) = rows.next().map_err(crate::storage)? {
                    ids.push(row.get::<_, String>(0).map_err(crate::storage)?);
                }
                let _ = started.send(());
                release.wait();
                while let Some(row) = rows.next().map_err(crate::storage)? {
                    ids.push(row.get::<_, String>(0).map_err(crate::storage)?);
                }
                Ok(ids)
            })
            .await
    })
}

async fn release(barrier: &Arc<Barrier>) {
    let barrier = Arc::clone(barrier);
    tokio::task::spawn_blocking(move || barrier.wait())
        .await
        .expect("released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_in_progress_does_not_delay_a_store() {
    let dir = TempDir::new("reader-store");
    let inbox = SqliteInbox::open(dir.file("inbox.sqlite")).expect("open");
    for id in ["e-1", "e-2", "e-3"] {
        assert_eq!(inbox.store(record(id)).await.expect("store"), Stored::New);
    }
    let (started, is_started) = oneshot::channel();
    let barrier = Arc::new(Barrier::new(2));
    let read = held_read(&inbox, started, Arc::clone(&barrier));
    is_started.await.expect("the read started");

    // The reader's thread is held with a snapshot open: a store, and a
    // claim and its ack, all complete meanwhile.
    assert_eq!(
        inbox.store(record("e-4")).await.expect("store"),
        Stored::New
    );
    let claimed = inbox
        .claim_next("w-1", Duration::from_secs(60), DateTime::UNIX_EPOCH)
        .await
        .expect("claim")
        .expect("e-1");
    inbox.ack(&claimed).await.expect("ack");
    assert!(!read.is_finished(), "the read was still held");
    // A listing queued behind the held read waits for it, not the store.
    let queued = {
        let inbox = inbox.clone();
        tokio::spawn(async move { inbox.list(ListFilter::new()).await })
    };

    release(&barrier).await;
    // The held read saw its own snapshot: from before the store.
    assert_eq!(
        read.await.expect("joined").expect("read"),
        ["e-1", "e-2", "e-3"]
    );
    let listed: Vec<String> = queued
        .await
        .expect("joined")
        .expect("list")
        .into_iter()
        .map(|entry| entry.event_id)
        .collect();
    assert_eq!(listed, ["e-1", "e-2", "e-3", "e-4"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_nobody_waits_for_is_skipped_or_interrupted() {
    let dir = TempDir::new("reader-cancel");
    let inbox = SqliteInbox::open(dir.file("inbox.sqlite")).expect("open");
    inbox.store(record("e-1")).await.expect("store");

    // Queued behind a held read, then given up on: never run.
    let (started, is_started) = oneshot::channel();
    let barrier = Arc::new(Barrier::new(2));
    let held = held_read(&inbox, started, Arc::clone(&barrier));
    is_started.await.expect("the read started");
    let ran = Arc::new(AtomicBool::new(false));
    {
        let ran = Arc::clone(&ran);
        let mut queued = Box::pin(inbox.db.read(move |_| {
            ran.store(true, Ordering::SeqCst);
            Ok(())
        }));
        // Polled once: the read is sent to the reader's queue (and waits
        // there behind the held one); then given up on.
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(queued.as_mut().poll(&mut cx).is_pending());
    }
    release(&barrier).await;
    held.await.expect("joined").expect("held read");
    // The reader's queue is in order: once this read is answered, the
    // given-up one had its turn.
    assert_eq!(inbox.list(ListFilter::new()).await.expect("list").len(), 1);
    assert!(!ran.load(Ordering::SeqCst), "a read nobody waited for ran");

    // Running, then given up on: interrupted. The query never ends by
    // itself (it counts forever).
    let (started, is_started) = oneshot::channel();
    let (outcome, what_happened) = std::sync::mpsc::channel();
    let endless = {
        let inbox = inbox.clone();
        tokio::spawn(async move {
            inbox
                .db
                .read(move |conn| {
                    let _ = started.send(());
                    let result = conn.query_row(
                        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                         SELECT count(*) FROM c",
                        [],
                        |row| row.get::<_, i64>(0),
                    );
                    let _ = outcome.send(result.map_err(|e| e.sqlite_error_code()));
                    Ok(())
                })
                .await
        })
    };
    is_started.await.expect("the endless read started");
    endless.abort();
    let result = tokio::task::spawn_blocking(move || {
        // A bound for a hang, not a measure: the interrupt comes within
        // a few thousand SQLite instructions.
        what_happened.recv_timeout(Duration::from_secs(120))
    })
    .await
    .expect("joined")
    .expect("the endless read ended");
    assert_eq!(result, Err(Some(ErrorCode::OperationInterrupted)));
    // The reader serves the next read.
    assert_eq!(inbox.counts().await.expect("counts").pending, 1);
}
