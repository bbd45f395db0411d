//! `SqliteIdempotencyStore` and `SqliteInbox` keep every rule of their
//! traits, in memory and in files, and the store's claims hold across
//! connections sharing a file (as across processes).

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use boxhook::idempotency::{Claim, EventKey, IdempotencyStore as _};
use boxhook_sqlite::{SqliteIdempotencyStore, SqliteInbox};
use boxhook_testkit::conformance;
use common::{t, TempDir};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_in_memory_idempotency_store_conforms() {
    conformance::idempotency_store(|| SqliteIdempotencyStore::in_memory().expect("open")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_file_idempotency_store_conforms() {
    let dir = TempDir::new("conformance-claims");
    let n = AtomicUsize::new(0);
    conformance::idempotency_store(|| {
        let file = dir.file(&format!(
            "claims-{}.sqlite",
            n.fetch_add(1, Ordering::SeqCst)
        ));
        SqliteIdempotencyStore::open(file).expect("open")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_inbox_files_idempotency_store_conforms() {
    let dir = TempDir::new("conformance-inbox-claims");
    let n = AtomicUsize::new(0);
    conformance::idempotency_store(|| {
        let file = dir.file(&format!(
            "inbox-{}.sqlite",
            n.fetch_add(1, Ordering::SeqCst)
        ));
        SqliteInbox::open(file).expect("open").idempotency_store()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_in_memory_inbox_conforms() {
    // Every rule, batch claims' included.
    conformance::InboxSuite::new(|| SqliteInbox::in_memory().expect("open"))
        .dead_letters()
        .filtered_claims()
        .prune()
        .batch_claims()
        .run()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_file_inbox_conforms() {
    let dir = TempDir::new("conformance-inbox");
    let n = AtomicUsize::new(0);
    conformance::InboxSuite::new(|| {
        let file = dir.file(&format!(
            "inbox-{}.sqlite",
            n.fetch_add(1, Ordering::SeqCst)
        ));
        SqliteInbox::open(file).expect("open")
    })
    .dead_letters()
    .filtered_claims()
    .prune()
    .batch_claims()
    .run()
    .await;
}

/// Each `open` is its own connection on its own thread, as another process
/// would have: of 32 first claims spread over 4 of them, exactly one wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_are_exclusive_across_connections_to_one_file() {
    let dir = TempDir::new("conformance-shared");
    let path = dir.file("claims.sqlite");
    let stores: Vec<_> = (0..4)
        .map(|_| SqliteIdempotencyStore::open(&path).expect("open"))
        .collect();
    for round in 0..4 {
        let key = EventKey::new("4133", format!("shared-{round}"));
        let barrier = Arc::new(tokio::sync::Barrier::new(32));
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let (store, barrier, key) =
                    (stores[i % 4].clone(), Arc::clone(&barrier), key.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.claim(&key, t(0), Duration::from_secs(30)).await
                })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.expect("join").expect("claim"));
        }
        let acquired = answers.iter().filter(|c| **c == Claim::Acquired).count();
        let in_progress = answers.iter().filter(|c| **c == Claim::InProgress).count();
        assert_eq!((acquired, in_progress), (1, 31), "round {round}");
        // Completed through one connection: done through every other.
        stores[0].complete(&key, t(1)).await.expect("complete");
        for store in &stores {
            assert_eq!(
                store
                    .claim(&key, t(2), Duration::from_secs(30))
                    .await
                    .expect("claim"),
                Claim::Done
            );
        }
    }
}
