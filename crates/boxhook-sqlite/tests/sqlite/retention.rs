//! Retention in the inbox files: the space pruning gives back (measured in
//! bytes on disk), files made before it, keys kept across a restart, and
//! the idempotency store's `forget_before`.

use crate::common;

use std::path::Path;
use std::time::Duration;

use boxhook::idempotency::{Claim, EventKey, IdempotencyStore as _};
use boxhook::inbox::{Counts, ErrorKind, Inbox, NewRecord, Prune, Pruned, Retention, Stored};
use boxhook_sqlite::{SqliteIdempotencyStore, SqliteInbox};
use common::{big_event, t, TempDir};

/// Events of about 3 KiB, as `benches/load/run.sh` sends.
const SIZE: usize = 3 * 1024;

fn record(n: u64) -> NewRecord {
    NewRecord::parse(big_event(n, SIZE), Some("d-1"), t(0)).expect("valid event")
}

/// Stores events `from..to` concurrently (so they share commits).
async fn store(inbox: &SqliteInbox, from: u64, to: u64) {
    let stores: Vec<_> = (from..to)
        .map(|n| {
            let inbox = inbox.clone();
            tokio::spawn(async move { inbox.store(record(n)).await })
        })
        .collect();
    for stored in stores {
        assert_eq!(stored.await.expect("joined").expect("stored"), Stored::New);
    }
}

/// Marks every pending event done. Setup only, through SQL: a worker
/// would take one transaction per claim and per ack; the triggers keep
/// the counters either way.
fn all_done(path: &Path) {
    rusqlite::Connection::open(path)
        .and_then(|conn| conn.execute("UPDATE events SET state = 'done', attempts = 1", []))
        .expect("mark done");
}

/// Bytes on disk once every connection is closed: the file, and its -wal
/// if one is left.
fn bytes_on_disk(path: &Path) -> u64 {
    let wal = common::sibling_wal(path);
    std::fs::metadata(path).map_or(0, |m| m.len()) + std::fs::metadata(wal).map_or(0, |m| m.len())
}

fn pragma(path: &Path, name: &str) -> i64 {
    rusqlite::Connection::open(path)
        .and_then(|conn| conn.query_row(&format!("PRAGMA {name}"), [], |row| row.get(0)))
        .expect("pragma")
}

/// Prunes every done event (kept a second), `batch` at a time, a day
/// after `t(0)`.
async fn prune_all_done(inbox: &SqliteInbox, batch: usize) -> Pruned {
    let retention = Retention::nothing().done(Some(Duration::from_secs(1)));
    let mut total = Pruned::default();
    for _ in 0..1_000 {
        let pruned = inbox
            .prune(&retention, t(86_400), batch)
            .await
            .expect("prune");
        total.add(pruned);
        if !pruned.more {
            return total;
        }
    }
    panic!("pruning never finished: {total:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_a_new_file_gives_its_space_back() {
    const EVENTS: u64 = 2_000;
    let dir = TempDir::new("prune-space");
    let path = dir.file("inbox.sqlite");
    let inbox = SqliteInbox::open(&path).expect("open");
    store(&inbox, 0, EVENTS).await;
    drop(inbox);
    common::wait_until_closed(&path);
    assert_eq!(
        pragma(&path, "auto_vacuum"),
        2,
        "a new file vacuums incrementally"
    );
    all_done(&path);
    common::wait_until_closed(&path);
    let before = bytes_on_disk(&path);

    let inbox = SqliteInbox::open(&path).expect("reopen");
    let pruned = prune_all_done(&inbox, 500).await;
    assert_eq!((pruned.done, pruned.events()), (EVENTS, EVENTS));
    assert_eq!(inbox.counts().await.expect("counts"), Counts::default());
    drop(inbox);
    common::wait_until_closed(&path);
    let after = bytes_on_disk(&path);
    eprintln!(
        "{EVENTS} events of {SIZE} B: {before} B on disk ({} B per event); after pruning them \
         all (their keys kept): {after} B",
        before / EVENTS
    );
    // What is left: the schema and 2,000 kept keys (about 100 B each).
    assert!(before > EVENTS * 3_000, "{before}");
    assert!(after < before / 10, "{after} of {before}");
    assert_eq!(pragma(&path, "freelist_count"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_file_reuses_pruned_space_and_converts_with_one_vacuum() {
    const EVENTS: u64 = 1_000;
    let dir = TempDir::new("prune-old-file");
    let path = dir.file("inbox.sqlite");
    rusqlite::Connection::open(&path)
        .and_then(|conn| conn.execute_batch(common::V1_SCHEMA))
        .expect("a version 1 file");
    let inbox = SqliteInbox::open(&path).expect("migrate");
    store(&inbox, 0, EVENTS).await;
    drop(inbox);
    common::wait_until_closed(&path);
    assert_eq!(
        pragma(&path, "auto_vacuum"),
        0,
        "made before: no incremental vacuum"
    );
    all_done(&path);
    common::wait_until_closed(&path);
    let full = bytes_on_disk(&path);

    // Pruned: the file keeps its size, its pages free inside it...
    let inbox = SqliteInbox::open(&path).expect("reopen");
    assert_eq!(prune_all_done(&inbox, 500).await.done, EVENTS);
    drop(inbox);
    common::wait_until_closed(&path);
    let pruned = bytes_on_disk(&path);
    assert!(pruned >= full, "{pruned} < {full}");
    let free = pragma(&path, "freelist_count");
    assert!(free > 900, "{free} free pages");

    // ...which the next events fill before the file grows.
    let inbox = SqliteInbox::open(&path).expect("reopen");
    store(&inbox, EVENTS, 2 * EVENTS).await;
    drop(inbox);
    common::wait_until_closed(&path);
    let refilled = bytes_on_disk(&path);
    assert!(
        refilled <= pruned + pruned / 20,
        "{refilled} against {pruned}"
    );

    // The operator's conversion, receivers stopped: one VACUUM.
    rusqlite::Connection::open(&path)
        .and_then(|conn| conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;"))
        .expect("convert");
    assert_eq!(pragma(&path, "auto_vacuum"), 2);
    all_done(&path);
    common::wait_until_closed(&path);
    let converted = bytes_on_disk(&path);
    let inbox = SqliteInbox::open(&path).expect("reopen");
    assert_eq!(prune_all_done(&inbox, 500).await.done, EVENTS);
    drop(inbox);
    common::wait_until_closed(&path);
    let after = bytes_on_disk(&path);
    eprintln!(
        "older file: {full} B full, {pruned} B pruned, {refilled} B refilled, {converted} B \
         converted, {after} B pruned after converting"
    );
    assert!(after < converted / 5, "{after} of {converted}");
}

#[tokio::test]
async fn a_pruned_events_key_survives_a_restart_and_counts_its_deliveries() {
    let dir = TempDir::new("prune-keys");
    let path = dir.file("inbox.sqlite");
    let inbox = SqliteInbox::open(&path).expect("open");
    for _ in 1..=3 {
        inbox.store(record(7)).await.expect("store");
    }
    let claimed = inbox
        .claim_next("w-1", Duration::from_secs(60), t(1))
        .await
        .expect("claim")
        .expect("e-7");
    inbox.ack(&claimed).await.expect("ack");
    let by_hand = Retention::nothing().done(Some(Duration::from_secs(1)));
    assert_eq!(
        inbox.prune(&by_hand, t(2), 100).await.expect("prune"),
        Pruned {
            done: 1,
            ..Pruned::default()
        }
    );
    drop(inbox);

    let inbox = SqliteInbox::open(&path).expect("reopen");
    // Three deliveries before, this retry the fourth; nothing stored.
    assert_eq!(
        inbox.store(record(7)).await.expect("retry"),
        Stored::Duplicate { deliveries: 4 }
    );
    assert_eq!(inbox.counts().await.expect("counts"), Counts::default());
    assert!(inbox.get("e-7").await.expect("get").is_none());

    // Read-only: pruning is refused, and says why.
    drop(inbox);
    let reader = SqliteInbox::open_read_only(&path).expect("read-only");
    let refused = reader
        .prune(&by_hand, t(3), 100)
        .await
        .expect_err("read-only");
    assert_eq!(refused.kind(), ErrorKind::Storage);
    assert_eq!(
        refused.to_string(),
        format!(
            "inbox storage failed: inbox {} was opened read-only, so it cannot prune events; \
             open it with SqliteInbox::open to write",
            path.display()
        )
    );
}

#[tokio::test]
async fn forget_before_removes_exactly_what_was_settled_before_it_in_batches() {
    let store = SqliteIdempotencyStore::in_memory().expect("open");
    let lease = Duration::from_secs(100);
    let key = |id: &str| EventKey::new("4133", id);
    // Done at 0 s and at 10 s; abandoned at 1 s (its lease ended at 3 s);
    // held from 5 s (until 105 s).
    store
        .claim(&key("done-0"), t(0), lease)
        .await
        .expect("claim");
    store
        .complete(&key("done-0"), t(0))
        .await
        .expect("complete");
    store
        .claim(&key("done-10"), t(10), lease)
        .await
        .expect("claim");
    store
        .complete(&key("done-10"), t(10))
        .await
        .expect("complete");
    store
        .claim(&key("abandoned"), t(1), Duration::from_secs(2))
        .await
        .expect("claim");
    store.claim(&key("held"), t(5), lease).await.expect("claim");

    assert_eq!(store.forget_before(t(10)).await.expect("forget"), 2);
    assert_eq!(store.forget_before(t(10)).await.expect("forget"), 0);
    for (id, want) in [
        ("done-0", Claim::Acquired),
        ("abandoned", Claim::Acquired),
        ("done-10", Claim::Done),
        ("held", Claim::InProgress),
    ] {
        assert_eq!(
            store.claim(&key(id), t(11), lease).await.expect("claim"),
            want,
            "{id}"
        );
    }

    // More than a batch: every one of them, counted exactly.
    let many = 2 * SqliteIdempotencyStore::FORGET_BATCH + 500;
    for n in 0..many {
        let k = key(&format!("many-{n}"));
        store.claim(&k, t(20), lease).await.expect("claim");
        store.complete(&k, t(20)).await.expect("complete");
    }
    assert_eq!(
        store.forget_before(t(21)).await.expect("forget"),
        // done-10 too; done-0 and abandoned are held again since 11 s.
        u64::try_from(many).expect("fits") + 1
    );
}
