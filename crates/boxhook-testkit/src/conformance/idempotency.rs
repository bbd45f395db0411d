//! The [`IdempotencyStore`] suite.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use boxhook::idempotency::{Claim, EventKey, IdempotencyStore, StoreError};
use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::Barrier;

use super::{at, require_multi_thread, violated};

/// The lease every case claims with, unless it tests leases.
const LEASE: Duration = Duration::from_secs(30);
/// How many tasks claim one key at once.
const CONTENDERS: usize = 32;
/// How many keys the concurrent case contends for, one after another.
const ROUNDS: usize = 4;

/// Runs every idempotency rule (listed in the [module docs](super)) against
/// fresh stores from `make`, and panics with the name of the first rule a
/// store breaks.
///
/// Call it from a multi-thread tokio runtime; it panics otherwise.
///
/// ```
/// use boxhook::idempotency::MemoryStore;
///
/// # tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(async {
/// // #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
/// // async fn my_store_conforms() {
///     boxhook_testkit::conformance::idempotency_store(|| MemoryStore::new(1_000, std::time::Duration::from_secs(3600))).await;
/// // }
/// # });
/// ```
///
/// # Panics
///
/// At the first broken rule: ``conformance rule `<rule>` violated: <what
/// happened>``; when a store call fails or panics (under the rule being
/// checked); and outside a multi-thread tokio runtime.
pub async fn idempotency_store<S, F>(make: F)
where
    S: IdempotencyStore,
    F: Fn() -> S,
{
    require_multi_thread("idempotency store");
    first_claim_acquires(&make()).await;
    held_claim_is_in_progress(&make()).await;
    lease_expiry_reacquires(&make()).await;
    release_reacquires(&make()).await;
    complete_is_done(&make()).await;
    keys_are_whole(&make()).await;
    concurrent_first_claims(make()).await;
    extreme_leases(make()).await;
}

fn key(event: &str) -> EventKey {
    EventKey::new("4133", event)
}

/// Claims, failing the rule when the store fails.
async fn claim<S: IdempotencyStore>(
    store: &S,
    rule: &str,
    key: &EventKey,
    now: DateTime<Utc>,
    lease: Duration,
) -> Claim {
    ok(rule, "claim", store.claim(key, now, lease)).await
}

async fn ok<T>(rule: &str, call: &str, f: impl Future<Output = Result<T, StoreError>>) -> T {
    match f.await {
        Ok(out) => out,
        Err(error) => violated(rule, format!("`{call}` failed: {error}")),
    }
}

#[track_caller]
fn expect(rule: &str, what: &str, got: Claim, want: Claim) {
    if got != want {
        violated(rule, format!("{what}: expected {want:?}, got {got:?}"));
    }
}

async fn first_claim_acquires<S: IdempotencyStore>(store: &S) {
    const RULE: &str = "first-claim-acquires";
    let got = claim(store, RULE, &key("e-1"), at(0), LEASE).await;
    expect(RULE, "the first claim of a key", got, Claim::Acquired);
}

async fn held_claim_is_in_progress<S: IdempotencyStore>(store: &S) {
    const RULE: &str = "held-claim-is-in-progress";
    let k = key("e-1");
    let got = claim(store, RULE, &k, at(0), LEASE).await;
    expect(RULE, "the first claim", got, Claim::Acquired);
    let got = claim(store, RULE, &k, at(0), LEASE).await;
    expect(
        RULE,
        "a second claim at the same instant",
        got,
        Claim::InProgress,
    );
    let got = claim(store, RULE, &k, at(29), LEASE).await;
    expect(
        RULE,
        "a claim 29 s into a 30 s lease",
        got,
        Claim::InProgress,
    );
}

async fn lease_expiry_reacquires<S: IdempotencyStore>(store: &S) {
    const RULE: &str = "lease-expiry-reacquires";
    let k = key("e-1");
    let got = claim(store, RULE, &k, at(0), LEASE).await;
    expect(RULE, "the first claim", got, Claim::Acquired);
    let got = claim(store, RULE, &k, at(31), LEASE).await;
    expect(
        RULE,
        "a claim 31 s after a 30 s lease began (its holder crashed)",
        got,
        Claim::Acquired,
    );
    let got = claim(store, RULE, &k, at(32), LEASE).await;
    expect(
        RULE,
        "a claim while the new lease is held",
        got,
        Claim::InProgress,
    );
}

async fn release_reacquires<S: IdempotencyStore>(store: &S) {
    const RULE: &str = "release-reacquires";
    let k = key("e-1");
    let got = claim(store, RULE, &k, at(0), LEASE).await;
    expect(RULE, "the first claim", got, Claim::Acquired);
    ok(RULE, "release", store.release(&k)).await;
    let got = claim(store, RULE, &k, at(1), LEASE).await;
    expect(
        RULE,
        "a claim after `release`, within the released lease",
        got,
        Claim::Acquired,
    );
    let got = claim(store, RULE, &k, at(2), LEASE).await;
    expect(
        RULE,
        "a claim while the new claim is held",
        got,
        Claim::InProgress,
    );
}

async fn complete_is_done<S: IdempotencyStore>(store: &S) {
    const RULE: &str = "complete-is-done";
    let k = key("e-1");
    let got = claim(store, RULE, &k, at(0), LEASE).await;
    expect(RULE, "the first claim", got, Claim::Acquired);
    ok(RULE, "complete", store.complete(&k, at(1))).await;
    let got = claim(store, RULE, &k, at(2), LEASE).await;
    expect(RULE, "a claim after `complete`", got, Claim::Done);
    let got = claim(store, RULE, &k, at(3), LEASE).await;
    expect(
        RULE,
        "a second claim after `complete` (done stays done)",
        got,
        Claim::Done,
    );
    let got = claim(store, RULE, &k, at(3600), LEASE).await;
    expect(
        RULE,
        "a claim an hour after `complete`, long after the lease would have ended",
        got,
        Claim::Done,
    );
    ok(RULE, "release", store.release(&k)).await;
    let got = claim(store, RULE, &k, at(3601), LEASE).await;
    expect(
        RULE,
        "a claim after `release` of a completed key",
        got,
        Claim::Done,
    );
}

async fn keys_are_whole<S: IdempotencyStore>(store: &S) {
    const RULE: &str = "keys-are-whole";
    let held = EventKey::new("4133", "e/1");
    let got = claim(store, RULE, &held, at(0), LEASE).await;
    expect(
        RULE,
        "the first claim of webhook \"4133\" event \"e/1\"",
        got,
        Claim::Acquired,
    );
    let others = [
        EventKey::new("4134", "e/1"),
        EventKey::new("", "e/1"),
        EventKey::new("4133", "e/2"),
        // A store that joins the ids into one string, with a `/` or with
        // nothing between them, would take one of these for 4133 + e/1.
        EventKey::new("4133/e", "1"),
        EventKey::new("4133e", "/1"),
        EventKey::new("4133/e/1", ""),
    ];
    for other in &others {
        let got = claim(store, RULE, other, at(1), LEASE).await;
        let what = format!(
            "the first claim of webhook {:?} event {:?} while webhook \"4133\" event \"e/1\" is held",
            other.webhook_id(),
            other.event_id()
        );
        expect(RULE, &what, got, Claim::Acquired);
    }
    ok(RULE, "complete", store.complete(&held, at(2))).await;
    for other in &others {
        let got = claim(store, RULE, other, at(3), LEASE).await;
        let what = format!(
            "a claim of webhook {:?} event {:?} after webhook \"4133\" event \"e/1\" completed",
            other.webhook_id(),
            other.event_id()
        );
        expect(RULE, &what, got, Claim::InProgress);
    }
}

async fn concurrent_first_claims<S: IdempotencyStore>(store: S) {
    const RULE: &str = "concurrent-first-claims";
    let store = Arc::new(store);
    for round in 0..ROUNDS {
        let k = key(&format!("contended-{round}"));
        let barrier = Arc::new(Barrier::new(CONTENDERS));
        let tasks: Vec<_> = (0..CONTENDERS)
            .map(|_| {
                let (store, barrier, k) = (Arc::clone(&store), Arc::clone(&barrier), k.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.claim(&k, at(0), LEASE).await
                })
            })
            .collect();
        let (mut acquired, mut in_progress) = (0_usize, 0_usize);
        for task in tasks {
            match task.await {
                Ok(Ok(Claim::Acquired)) => acquired = acquired.saturating_add(1),
                Ok(Ok(Claim::InProgress)) => in_progress = in_progress.saturating_add(1),
                Ok(Ok(Claim::Done)) => violated(RULE, "a first claim answered Done"),
                Ok(Err(error)) => violated(RULE, format!("`claim` failed: {error}")),
                Err(error) => violated(RULE, format!("`claim` panicked: {error}")),
            }
        }
        if (acquired, in_progress) != (1, CONTENDERS - 1) {
            violated(
                RULE,
                format!(
                    "{CONTENDERS} simultaneous first claims of one key: expected 1 Acquired and \
                     {} InProgress, got {acquired} Acquired and {in_progress} InProgress",
                    CONTENDERS - 1
                ),
            );
        }
    }
}

async fn extreme_leases<S: IdempotencyStore>(store: S) {
    const RULE: &str = "extreme-leases";
    let store = Arc::new(store);
    // Each call runs in its own task, so a panic in the store is reported
    // under this rule.
    let call = |k: EventKey, now: DateTime<Utc>, lease: Duration| {
        let store = Arc::clone(&store);
        async move {
            match tokio::spawn(async move { store.claim(&k, now, lease).await }).await {
                Ok(result) => result,
                Err(error) => violated(
                    RULE,
                    format!("`claim` at {now:?} with a {lease:?} lease panicked: {error}"),
                ),
            }
        }
    };
    let must = |result: Result<Claim, StoreError>, what: &str| match result {
        Ok(claim) => claim,
        Err(error) => violated(RULE, format!("{what}: `claim` failed: {error}")),
    };

    let got = must(
        call(key("zero"), at(0), Duration::ZERO).await,
        "a zero lease",
    );
    expect(
        RULE,
        "the first claim with a zero lease",
        got,
        Claim::Acquired,
    );
    let got = must(
        call(key("zero"), at(1), Duration::ZERO).await,
        "a zero lease, a second later",
    );
    expect(
        RULE,
        "a claim 1 s after a zero lease was taken",
        got,
        Claim::Acquired,
    );

    let got = must(
        call(key("max"), at(0), Duration::MAX).await,
        "a Duration::MAX lease",
    );
    expect(
        RULE,
        "the first claim with a Duration::MAX lease",
        got,
        Claim::Acquired,
    );
    let later = at(0)
        .checked_add_signed(TimeDelta::hours(1))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let got = must(
        call(key("max"), later, LEASE).await,
        "a claim an hour into a Duration::MAX lease",
    );
    expect(
        RULE,
        "a claim an hour into a Duration::MAX lease (its end must saturate, not wrap)",
        got,
        Claim::InProgress,
    );

    // At the edges of time a store may refuse (its clock type may not
    // reach them), but must not panic.
    for (i, now) in [DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC]
        .into_iter()
        .enumerate()
    {
        for lease in [Duration::ZERO, Duration::MAX] {
            let _ = call(key(&format!("edge-{i}")), now, lease).await;
        }
    }
}
