//! `MemoryStore` keeps every rule of the idempotency store contract.

use std::time::Duration;

use boxhook::idempotency::MemoryStore;
use boxhook_testkit::conformance;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_default_memory_store_conforms() {
    conformance::idempotency_store(MemoryStore::default).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_small_memory_store_conforms() {
    // The suite holds a few dozen keys at once and spans an hour.
    conformance::idempotency_store(|| MemoryStore::new(64, Duration::from_secs(2 * 3600))).await;
}
