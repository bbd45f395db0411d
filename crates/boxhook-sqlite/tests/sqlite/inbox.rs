//! `SqliteInbox`: storing, counting, claiming, listing, reopening.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use boxhook::idempotency::{Claim, EventKey};
use boxhook::inbox::{
    Claimed, Counts, DeadLetters, EntryState, ErrorKind, Inbox, ListFilter, NewRecord, Ran,
    RecordKind, Stored, Worker,
};
use boxhook::HandlerError;
use boxhook_core::model::WebhookEvent;
use boxhook_sqlite::SqliteInbox;
use bytes::Bytes;
use common::{event, t, TempDir};

const LEASE: Duration = Duration::from_secs(60);

fn record(webhook_id: &str, id: &str, trigger: &str, delivery: &str) -> NewRecord {
    NewRecord::parse(event(webhook_id, id, trigger), Some(delivery), t(0)).expect("valid event")
}

#[tokio::test]
async fn store_counts_duplicates_per_webhook_and_event() {
    let inbox = SqliteInbox::in_memory().expect("open");
    assert_eq!(
        inbox
            .store(record("w1", "e1", "FILE.UPLOADED", "d1"))
            .await
            .expect("store"),
        Stored::New
    );
    assert_eq!(
        inbox
            .store(record("w1", "e1", "FILE.UPLOADED", "d2"))
            .await
            .expect("store"),
        Stored::Duplicate { deliveries: 2 }
    );
    assert_eq!(
        inbox
            .store(record("w1", "e1", "FILE.UPLOADED", "d3"))
            .await
            .expect("store"),
        Stored::Duplicate { deliveries: 3 }
    );
    // Same event id under another webhook is another event.
    assert_eq!(
        inbox
            .store(record("w2", "e1", "FILE.UPLOADED", "d4"))
            .await
            .expect("store"),
        Stored::New
    );

    let listed = inbox.list(ListFilter::new()).await.expect("list");
    let summary: Vec<_> = listed
        .iter()
        .map(|e| {
            (
                e.webhook_id.as_str(),
                e.event_id.as_str(),
                e.deliveries,
                e.delivery_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [("w1", "e1", 3, Some("d1")), ("w2", "e1", 1, Some("d4"))]
    );
    let first = &listed[0];
    assert_eq!(first.trigger, "FILE.UPLOADED");
    assert_eq!(
        (first.source_type.as_deref(), first.source_id.as_deref()),
        (Some("file"), Some("1234567890"))
    );
    assert_eq!(first.received_at, t(0));
    assert_eq!((first.state, first.attempts), (EntryState::Pending, 0));
}

#[tokio::test]
async fn claim_ack_release_count_attempts() {
    let inbox = SqliteInbox::in_memory().expect("open");
    inbox
        .store(record("w", "a", "FILE.UPLOADED", "d1"))
        .await
        .expect("store");
    inbox
        .store(record("w", "b", "FILE.UPLOADED", "d2"))
        .await
        .expect("store");

    // Oldest first.
    let a = inbox
        .claim_next("w1", LEASE, t(1))
        .await
        .expect("claim")
        .expect("a");
    assert_eq!(
        (a.entry.event_id.as_str(), a.attempt(), a.entry.state),
        ("a", 1, EntryState::Claimed)
    );
    assert_eq!(a.lease_until, t(61));
    let b = inbox
        .claim_next("w2", LEASE, t(1))
        .await
        .expect("claim")
        .expect("b");
    assert_eq!(b.entry.event_id, "b");
    assert!(
        inbox
            .claim_next("w3", LEASE, t(2))
            .await
            .expect("claim")
            .is_none(),
        "both held"
    );

    inbox.ack(&a).await.expect("ack");
    // Released to retry at once: claimable again, second attempt.
    inbox.requeue(&b, t(2)).await.expect("release");
    let b2 = inbox
        .claim_next("w3", LEASE, t(2))
        .await
        .expect("claim")
        .expect("b again");
    assert_eq!((b2.entry.event_id.as_str(), b2.attempt()), ("b", 2));
    // The old claim is no longer the one held.
    let err = inbox.ack(&b).await.expect_err("stale claim");
    assert_eq!(err.kind(), ErrorKind::LeaseLost);
    inbox.ack(&b2).await.expect("ack");
    // Acking twice is a lost claim too: nothing to settle.
    assert!(inbox.ack(&b2).await.expect_err("settled").is_lease_lost());

    assert!(
        inbox
            .claim_next("w1", LEASE, t(1000))
            .await
            .expect("claim")
            .is_none(),
        "all done"
    );
    let states: Vec<_> = inbox
        .list(ListFilter::new())
        .await
        .expect("list")
        .into_iter()
        .map(|e| (e.event_id, e.state, e.attempts))
        .collect();
    assert_eq!(
        states,
        [
            ("a".to_owned(), EntryState::Done, 1),
            ("b".to_owned(), EntryState::Done, 2)
        ]
    );
}

#[tokio::test]
async fn an_expired_lease_returns_the_event_to_the_queue() {
    let inbox = SqliteInbox::in_memory().expect("open");
    inbox
        .store(record("w", "a", "FILE.UPLOADED", "d1"))
        .await
        .expect("store");
    let first = inbox
        .claim_next("crashed", LEASE, t(0))
        .await
        .expect("claim")
        .expect("a");
    assert!(
        inbox
            .claim_next("w2", LEASE, t(59))
            .await
            .expect("claim")
            .is_none(),
        "lease holds"
    );
    let second = inbox
        .claim_next("w2", LEASE, t(60))
        .await
        .expect("claim")
        .expect("lease ended");
    assert_eq!((second.attempt(), second.worker_id.as_str()), (2, "w2"));
    assert!(inbox
        .ack(&first)
        .await
        .expect_err("taken over")
        .is_lease_lost());
    inbox.ack(&second).await.expect("ack");
}

#[tokio::test]
async fn an_expired_but_untaken_claim_can_still_be_acked() {
    let inbox = SqliteInbox::in_memory().expect("open");
    inbox
        .store(record("w", "a", "X.Y", "d1"))
        .await
        .expect("store");
    let claimed = inbox
        .claim_next("slow", LEASE, t(0))
        .await
        .expect("claim")
        .expect("a");
    inbox.ack(&claimed).await.expect("nobody took it over");
}

#[tokio::test]
async fn release_with_a_retry_time_delays_the_event() {
    let inbox = SqliteInbox::in_memory().expect("open");
    inbox
        .store(record("w", "a", "FILE.UPLOADED", "d1"))
        .await
        .expect("store");
    inbox
        .store(record("w", "b", "FILE.UPLOADED", "d2"))
        .await
        .expect("store");
    let a = inbox
        .claim_next("w1", LEASE, t(0))
        .await
        .expect("claim")
        .expect("a");
    inbox.requeue(&a, t(30)).await.expect("release");
    let next = inbox
        .claim_next("w1", LEASE, t(1))
        .await
        .expect("claim")
        .expect("b");
    assert_eq!(next.entry.event_id, "b", "a waits until t(30)");
    let again = inbox
        .claim_next("w1", LEASE, t(30))
        .await
        .expect("claim")
        .expect("a");
    assert_eq!(again.entry.event_id, "a");
}

#[tokio::test]
async fn list_filters_by_exact_trigger_and_limits() {
    let inbox = SqliteInbox::in_memory().expect("open");
    for (i, trigger) in [
        "FILE.UPLOADED",
        "FOLDER.CREATED",
        "FILE.UPLOADED",
        "HUB.SOMETHING_NEW",
        "FILE.UPLOADED",
    ]
    .into_iter()
    .enumerate()
    {
        inbox
            .store(record("w", &format!("e{i}"), trigger, "d"))
            .await
            .expect("store");
    }
    let ids = |entries: Vec<boxhook::inbox::InboxEntry>| -> Vec<String> {
        entries.into_iter().map(|e| e.event_id).collect()
    };
    assert_eq!(
        ids(inbox
            .list(ListFilter::new().trigger("FILE.UPLOADED"))
            .await
            .expect("list")),
        ["e0", "e2", "e4"]
    );
    assert_eq!(
        ids(inbox
            .list(ListFilter::new().trigger("FILE.UPLOADED").limit(2))
            .await
            .expect("list")),
        ["e0", "e2"]
    );
    assert_eq!(
        ids(inbox
            .list(ListFilter::new().trigger("HUB.SOMETHING_NEW"))
            .await
            .expect("list")),
        ["e3"]
    );
    assert_eq!(
        ids(inbox
            .list(ListFilter::new().trigger("file.uploaded"))
            .await
            .expect("list")),
        Vec::<String>::new()
    );
    assert_eq!(inbox.list(ListFilter::new()).await.expect("list").len(), 5);
    assert_eq!(
        inbox
            .list(ListFilter::new().limit(0))
            .await
            .expect("list")
            .len(),
        0
    );
}

#[tokio::test]
async fn get_returns_the_raw_body_byte_for_byte() {
    let inbox = SqliteInbox::in_memory().expect("open");
    let body = event("w", "e1", "FILE.UPLOADED");
    inbox
        .store(NewRecord::parse(body.clone(), Some("d1"), t(0)).expect("valid"))
        .await
        .expect("store");
    let stored = inbox.get("e1").await.expect("get").expect("stored");
    assert_eq!(stored.body, Bytes::from(body.clone()));
    assert!(
        body.contains(r"Q1\/r\u00e9port.pdf"),
        "escapes kept as sent"
    );
    assert_eq!(stored.entry.delivery_id.as_deref(), Some("d1"));
    assert!(inbox.get("nope").await.expect("get").is_none());

    // Any bytes, not only UTF-8, round-trip.
    let mut odd = record("w", "bin", "X", "d2");
    odd.body = Bytes::from_static(b"\x00\xff{\"not\": utf8}\xfe");
    inbox.store(odd).await.expect("store");
    let stored = inbox.get("bin").await.expect("get").expect("stored");
    assert_eq!(&stored.body[..], b"\x00\xff{\"not\": utf8}\xfe");
}

#[tokio::test]
async fn data_survives_reopening_the_file() {
    let dir = TempDir::new("reopen");
    let path = dir.file("inbox.sqlite");
    {
        let inbox = SqliteInbox::open(&path).expect("open");
        inbox
            .store(record("w", "e1", "FILE.UPLOADED", "d1"))
            .await
            .expect("store");
        inbox
            .store(record("w", "e1", "FILE.UPLOADED", "d2"))
            .await
            .expect("store");
        let claimed = inbox
            .claim_next("w1", LEASE, t(0))
            .await
            .expect("claim")
            .expect("e1");
        inbox.ack(&claimed).await.expect("ack");
        inbox
            .store(record("w", "e2", "FOLDER.CREATED", "d3"))
            .await
            .expect("store");
    }
    let inbox = SqliteInbox::open(&path).expect("reopen");
    let listed = inbox.list(ListFilter::new()).await.expect("list");
    let summary: Vec<_> = listed
        .iter()
        .map(|e| (e.event_id.as_str(), e.deliveries, e.state))
        .collect();
    assert_eq!(
        summary,
        [("e1", 2, EntryState::Done), ("e2", 1, EntryState::Pending)]
    );
    assert_eq!(
        inbox
            .store(record("w", "e2", "FOLDER.CREATED", "d4"))
            .await
            .expect("store"),
        Stored::Duplicate { deliveries: 2 }
    );
    // The CLI may read while a receiver holds the file open.
    let reader = SqliteInbox::open(&path).expect("second connection");
    assert_eq!(reader.list(ListFilter::new()).await.expect("list").len(), 2);
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = TempDir::new("schema");
    let path = dir.file("inbox.sqlite");
    drop(SqliteInbox::open(&path).expect("create"));
    rusqlite::Connection::open(&path)
        .and_then(|conn| conn.pragma_update(None, "user_version", 99))
        .expect("set version");
    let err = SqliteInbox::open(&path).expect_err("too new");
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert_eq!(
        err.to_string(),
        "inbox data is unreadable: inbox schema version 99 is newer than this build reads (5)"
    );
}

/// The counts of an inbox with only done and dead events.
fn settled(done: u64, dead: u64) -> Counts {
    Counts {
        done,
        dead,
        ..Counts::default()
    }
}

#[tokio::test]
async fn a_version_1_inbox_upgrades_to_the_current_version_keeping_its_events() {
    use boxhook::idempotency::IdempotencyStore as _;
    let dir = TempDir::new("v1");
    let path = dir.file("inbox.sqlite");
    let body = event("w", "old", "FILE.UPLOADED");
    {
        let conn = rusqlite::Connection::open(&path).expect("create v1");
        conn.execute_batch(common::V1_SCHEMA).expect("v1 schema");
        conn.execute(
            "INSERT INTO events (webhook_id, event_id, trigger_name, received_at, body, \
             deliveries, state, attempts) VALUES ('w', 'old', 'FILE.UPLOADED', 0, ?1, 3, 'done', 1)",
            [body.as_bytes()],
        )
        .expect("a v1 event");
    }
    let version = |path: &std::path::Path| -> i64 {
        rusqlite::Connection::open(path)
            .and_then(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
            .expect("user_version")
    };

    // Reading does not migrate.
    // Reading does not migrate; a file from before the kind column reads as V2.
    let reader = SqliteInbox::open_read_only(&path).expect("a v1 file reads");
    let read = reader.list(ListFilter::new()).await.expect("list");
    assert_eq!(
        read.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [RecordKind::V2]
    );
    assert_eq!(
        reader.get("old").await.expect("get").map(|e| e.kind()),
        Some(RecordKind::V2)
    );
    drop(reader);
    assert_eq!(version(&path), 1);

    // Counted from its rows while it is read-only (no counters yet).
    let reader = SqliteInbox::open_read_only(&path).expect("a v1 file reads");
    assert_eq!(reader.counts().await.expect("counts"), settled(1, 0));
    drop(reader);

    let inbox = SqliteInbox::open(&path).expect("migrate");
    assert_eq!(version(&path), 5);
    // Version 5 counted the existing rows into its counters once.
    assert_eq!(inbox.counts().await.expect("counts"), settled(1, 0));
    let listed = inbox.list(ListFilter::new()).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].event_id.as_str(),
            listed[0].deliveries,
            listed[0].attempts,
            listed[0].state,
            listed[0].kind
        ),
        ("old", 3, 1, EntryState::Done, RecordKind::V2)
    );
    let got = inbox.get("old").await.expect("get").expect("kept");
    assert_eq!(got.body, body.as_bytes());
    assert_eq!(
        inbox
            .store(record("w", "old", "FILE.UPLOADED", "d9"))
            .await
            .expect("store"),
        Stored::Duplicate { deliveries: 4 }
    );
    let store = inbox.idempotency_store();
    let key = EventKey::new("w", "old");
    assert_eq!(
        store.claim(&key, t(0), LEASE).await.expect("claim"),
        Claim::Acquired
    );
    store.complete(&key, t(0)).await.expect("complete");
    drop(store);

    // Version 3's `dead` state: a new event is stored after the old one
    // (its `seq` kept), fails on its last attempt, and is listed dead.
    inbox
        .store(record("w", "new", "FILE.UPLOADED", "d10"))
        .await
        .expect("store");
    let claimed = inbox
        .claim_next("w-1", LEASE, t(0))
        .await
        .expect("claim")
        .expect("the new event");
    assert_eq!(claimed.entry.event_id, "new");
    inbox.bury(&claimed).await.expect("bury");
    let ids: Vec<(String, EntryState)> = inbox
        .list(ListFilter::new())
        .await
        .expect("list")
        .into_iter()
        .map(|e| (e.event_id, e.state))
        .collect();
    assert_eq!(
        ids,
        [
            ("old".to_owned(), EntryState::Done),
            ("new".to_owned(), EntryState::Dead)
        ]
    );
    assert_eq!(inbox.counts().await.expect("counts"), settled(1, 1));
    drop(inbox);

    // Opening again: still version 5, and the completion survived.
    let store = boxhook_sqlite::SqliteIdempotencyStore::open(&path).expect("reopen");
    assert_eq!(
        store.claim(&key, t(1), LEASE).await.expect("claim"),
        Claim::Done
    );
    drop(store);
    assert_eq!(version(&path), 5);
}

#[tokio::test]
async fn v1_callbacks_are_stored_each_on_its_own_and_read_back_as_v1() {
    use boxhook::v1::{Params, V1Callback, V1Fields};
    let dir = TempDir::new("kind");
    let path = dir.file("inbox.sqlite");
    let inbox = SqliteInbox::open(&path).expect("open");
    let params =
        Params::parse(b"event_type=uploaded&item_id=42&item_type=file&n=%C3%A9").expect("params");
    let at = t(5);
    // Two identical callbacks: two records, nothing deduplicated.
    for _ in 0..2 {
        let callback = V1Callback::new(
            V1Callback::new_id(at),
            at,
            params.clone(),
            &V1Fields::default(),
        );
        assert_eq!(
            inbox.store(callback.to_record()).await.expect("store"),
            Stored::New
        );
    }
    inbox
        .store(record("w", "e-2", "FILE.UPLOADED", "d1"))
        .await
        .expect("store v2");
    drop(inbox);

    let reader = SqliteInbox::open_read_only(&path).expect("read");
    let listed = reader.list(ListFilter::new()).await.expect("list");
    assert_eq!(
        listed
            .iter()
            .map(|e| (e.kind, e.trigger.as_str(), e.source_id.as_deref()))
            .collect::<Vec<_>>(),
        [
            (RecordKind::V1, "uploaded", Some("42")),
            (RecordKind::V1, "uploaded", Some("42")),
            (RecordKind::V2, "FILE.UPLOADED", Some("1234567890")),
        ]
    );
    assert_ne!(listed[0].event_id, listed[1].event_id);
    let stored = reader
        .get(&listed[0].event_id)
        .await
        .expect("get")
        .expect("there");
    let back = V1Callback::from_stored(&stored, &V1Fields::default()).expect("a V1 callback");
    assert_eq!(back.params(), &params);
    assert_eq!(back.received_at(), at);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_stores_of_one_event_store_it_once() {
    let dir = TempDir::new("concurrent");
    let inbox = SqliteInbox::open(dir.file("inbox.sqlite")).expect("open");
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let inbox = inbox.clone();
            tokio::spawn(async move {
                inbox
                    .store(record("w", "same", "FILE.UPLOADED", &format!("d{i}")))
                    .await
            })
        })
        .collect();
    let mut new = 0;
    for task in tasks {
        if task.await.expect("join").expect("store") == Stored::New {
            new += 1;
        }
    }
    assert_eq!(new, 1);
    let listed = inbox.list(ListFilter::new()).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].deliveries, 64);
}

#[tokio::test]
/// The inbox's idempotency store is its own table: storing an event does
/// not claim it, claiming does not count a delivery, and both are reached
/// by plain method calls with both traits in scope.
async fn the_idempotency_store_is_not_the_inbox() {
    use boxhook::idempotency::IdempotencyStore as _;
    let inbox = SqliteInbox::in_memory().expect("open");
    let store = inbox.idempotency_store();
    let key = EventKey::new("w", "e1");
    inbox
        .store(record("w", "e1", "FILE.UPLOADED", "d1"))
        .await
        .expect("store");
    assert_eq!(
        store.claim(&key, t(0), LEASE).await.expect("claim"),
        Claim::Acquired
    );
    assert_eq!(
        store.claim(&key, t(0), LEASE).await.expect("claim"),
        Claim::InProgress
    );
    store.complete(&key, t(1)).await.expect("complete");
    assert_eq!(
        store.claim(&key, t(2), LEASE).await.expect("claim"),
        Claim::Done
    );
    let listed = inbox.list(ListFilter::new()).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].deliveries, 1, "a claim is not a delivery");
    assert_eq!(
        listed[0].state,
        EntryState::Pending,
        "a claim is not an ack"
    );
    let claimed = inbox
        .claim_next("w1", LEASE, t(3))
        .await
        .expect("claim_next")
        .expect("still pending");
    assert_eq!(claimed.entry.event_id, "e1");
}

#[tokio::test]
async fn the_worker_acks_success_and_releases_failures() {
    let inbox = SqliteInbox::in_memory().expect("open");
    inbox
        .store(record("w", "ok", "FILE.UPLOADED", "d1"))
        .await
        .expect("store");
    inbox
        .store(record("w", "fails", "FILE.UPLOADED", "d2"))
        .await
        .expect("store");
    inbox
        .store(record("w", "panics", "FILE.UPLOADED", "d3"))
        .await
        .expect("store");
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let clock = boxhook_core::FixedClock::at(t(0));
    let worker = Worker::new(
        inbox.clone(),
        move |event: WebhookEvent, claimed: Claimed| {
            let log = Arc::clone(&log);
            async move {
                log.lock()
                    .expect("lock")
                    .push((event.id().to_owned(), claimed.attempt()));
                match event.id() {
                    "fails" => Err(HandlerError::new("thumbnail service down")),
                    "panics" => panic!("bug in handler"),
                    _ => Ok(()),
                }
            }
        },
    )
    .worker_id("test-worker")
    .retry_delay(Duration::from_secs(30))
    .clock(clock.clone());

    assert_eq!(worker.run_once().await.expect("run"), Ran::Acked);
    assert_eq!(worker.run_once().await.expect("run"), Ran::Released);
    assert_eq!(
        worker.run_once().await.expect("run"),
        Ran::Released,
        "a panic is a failure"
    );
    assert_eq!(
        worker.run_once().await.expect("run"),
        Ran::Idle,
        "failures wait 30 s"
    );
    clock.set(t(30));
    assert_eq!(worker.run_once().await.expect("run"), Ran::Released);
    assert_eq!(
        *seen.lock().expect("lock"),
        [
            ("ok".to_owned(), 1),
            ("fails".to_owned(), 1),
            ("panics".to_owned(), 1),
            ("fails".to_owned(), 2)
        ]
    );
    let states: Vec<_> = inbox
        .list(ListFilter::new())
        .await
        .expect("list")
        .into_iter()
        .map(|e| (e.event_id, e.state))
        .collect();
    assert_eq!(
        states,
        [
            ("ok".to_owned(), EntryState::Done),
            ("fails".to_owned(), EntryState::Pending),
            ("panics".to_owned(), EntryState::Pending)
        ]
    );
}

#[tokio::test]
async fn run_until_drains_then_stops() {
    let inbox = SqliteInbox::in_memory().expect("open");
    for i in 0..5 {
        inbox
            .store(record("w", &format!("e{i}"), "FILE.UPLOADED", "d"))
            .await
            .expect("store");
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let watcher = inbox.clone();
    let worker = Worker::new(inbox.clone(), |_: WebhookEvent, _: Claimed| async {
        Ok(())
    })
    .poll_interval(Duration::from_millis(10));
    let running = tokio::spawn(worker.run_until(async {
        let _ = stopped.await;
    }));
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let listed = watcher.list(ListFilter::new()).await.expect("list");
            if listed.iter().all(|e| e.state == EntryState::Done) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("all processed");
    stop.send(()).expect("worker running");
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("stops")
        .expect("join");
}

/// Many stores at once share transactions (group commit); each event is
/// still stored once, and of its two deliveries exactly one is `New` and
/// the other `Duplicate { deliveries: 2 }`, however the batches fall.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_stores_group_commit_and_count_exactly() {
    const EVENTS: usize = 64;
    let dir = TempDir::new("group-commit");
    let inbox = SqliteInbox::open(dir.path().join("inbox.sqlite")).expect("open");
    let tasks: Vec<_> = (0..EVENTS * 2)
        .map(|n| {
            let inbox = inbox.clone();
            tokio::spawn(async move {
                let id = format!("e{}", n % EVENTS);
                let stored = inbox
                    .store(record("w1", &id, "FILE.UPLOADED", &format!("d{n}")))
                    .await
                    .expect("store");
                (id, stored)
            })
        })
        .collect();
    let mut outcomes = std::collections::BTreeMap::<String, Vec<Stored>>::new();
    for task in tasks {
        let (id, stored) = task.await.expect("task");
        outcomes.entry(id).or_default().push(stored);
    }
    assert_eq!(outcomes.len(), EVENTS);
    for (id, mut stored) in outcomes {
        stored.sort_by_key(|s| matches!(s, Stored::Duplicate { .. }));
        assert_eq!(
            stored,
            vec![Stored::New, Stored::Duplicate { deliveries: 2 }],
            "{id}"
        );
    }
    drop(inbox);
    let reopened = SqliteInbox::open(dir.path().join("inbox.sqlite")).expect("reopen");
    let listed = reopened.list(ListFilter::new()).await.expect("list");
    assert_eq!(listed.len(), EVENTS);
    assert!(listed.iter().all(|entry| entry.deliveries == 2));
}

/// The worker's backoff doubles per failed attempt; after `max_attempts`
/// the event is dead; an event claimed past its last attempt (its workers
/// died holding it) is buried without running.
#[tokio::test]
async fn the_worker_backs_off_exponentially_then_buries() {
    let inbox = SqliteInbox::in_memory().expect("open");
    inbox
        .store(record("w", "fails", "FILE.UPLOADED", "d1"))
        .await
        .expect("store");
    let clock = boxhook_core::FixedClock::at(t(0));
    let runs = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = Arc::clone(&runs);
    let worker = Worker::new(inbox.clone(), move |_: WebhookEvent, _: Claimed| {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async { Err::<(), _>(HandlerError::new("down")) }
    })
    .backoff(boxhook::inbox::Backoff::exponential(
        Duration::from_secs(10),
        Duration::from_secs(15),
    ))
    .max_attempts(3)
    .clock(clock.clone());
    // Attempt 1 at 0 s, retried at 10 s; attempt 2 at 10 s, retried at
    // 10 + 15 (20 s capped at 15); attempt 3 at 25 s, then dead.
    let steps = [
        (0, Ran::Released),
        (9, Ran::Idle),
        (10, Ran::Released),
        (24, Ran::Idle),
        (25, Ran::Dead),
        (10_000, Ran::Idle),
    ];
    for (at, want) in steps {
        clock.set(t(at));
        assert_eq!(worker.run_once().await.expect("run"), want, "at {at} s");
    }
    assert_eq!(runs.load(std::sync::atomic::Ordering::Relaxed), 3);
    let dead = inbox
        .list(ListFilter::new().state(EntryState::Dead))
        .await
        .expect("list");
    assert_eq!((dead.len(), dead[0].attempts), (1, 3));

    // Requeued, then claimed by workers that die three times: the fourth
    // claim is past max_attempts, so it is buried without running.
    assert_eq!(
        inbox
            .revive(boxhook::inbox::Revive::AllDead, t(20_000))
            .await
            .expect("revive"),
        1
    );
    for n in 0..3 {
        let at = 20_000 + n * 100;
        assert!(inbox
            .claim_next("dies", LEASE, t(at))
            .await
            .expect("claim")
            .is_some());
    }
    clock.set(t(30_000));
    assert_eq!(worker.run_once().await.expect("run"), Ran::Dead);
    assert_eq!(
        runs.load(std::sync::atomic::Ordering::Relaxed),
        3,
        "not run again"
    );
}

#[tokio::test]
async fn a_batch_claim_with_a_row_that_does_not_read_back_hands_out_the_others() {
    use boxhook::inbox::BatchClaims;

    let dir = TempDir::new("batch-unreadable");
    let path = dir.path().join("inbox.sqlite");
    let inbox = SqliteInbox::open(&path).expect("open");
    for (n, id) in ["e-1", "e-2", "e-3"].into_iter().enumerate() {
        let delivery = format!("d-{n}");
        inbox
            .store(record("w1", id, "FILE.UPLOADED", &delivery))
            .await
            .expect("store");
    }
    // e-2's attempt count past what the inbox can read (a u32).
    rusqlite::Connection::open(&path)
        .expect("open directly")
        .execute(
            "UPDATE events SET attempts = 5000000000 WHERE event_id = 'e-2'",
            [],
        )
        .expect("corrupt one row");
    let claimed = inbox
        .claim_batch("w", Duration::from_secs(60), t(10), &[], 8)
        .await
        .expect("the others are handed out");
    let ids: Vec<&str> = claimed.iter().map(|c| c.entry.event_id.as_str()).collect();
    assert_eq!(ids, ["e-1", "e-3"]);
}
