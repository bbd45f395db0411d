//! Conformance suites: the rules every [`IdempotencyStore`] and every
//! [`Inbox`] must keep (and each optional inbox trait), as test helpers any
//! implementation can run.
//!
//! Each suite takes a `make` function that returns a fresh, empty store or
//! inbox (it is called once per case), runs every case, and panics at the
//! first broken rule with a message naming it:
//! ``conformance rule `held-claim-is-in-progress` violated: …``. Run them
//! from a multi-thread tokio runtime: some cases make concurrent calls from
//! many tasks, and a single-threaded runtime would never make them overlap
//! (the suites refuse to run there rather than pass vacuously).
//!
//! ```
//! use boxhook::idempotency::MemoryStore;
//!
//! # tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(async {
//! // In a test: #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
//! boxhook_testkit::conformance::idempotency_store(MemoryStore::default).await;
//! # });
//! ```
//!
//! # Idempotency store rules
//!
//! | rule | what is checked |
//! |---|---|
//! | `first-claim-acquires` | the first claim of a key is `Acquired` |
//! | `held-claim-is-in-progress` | a second claim while the first is held (same instant, or just before the lease ends) is `InProgress` |
//! | `lease-expiry-reacquires` | a claim after the lease ended is `Acquired` |
//! | `release-reacquires` | after `release`, the next claim is `Acquired` |
//! | `complete-is-done` | after `complete`, claims are `Done`, also long after the lease would have ended, and after a `release` |
//! | `keys-are-whole` | keys differing only in the webhook id, or only in the event id, or split differently around a `/`, are independent |
//! | `concurrent-first-claims` | of 32 simultaneous first claims of a key from 32 tasks, exactly one is `Acquired` and 31 are `InProgress` |
//! | `extreme-leases` | leases of zero and of `Duration::MAX`, and claims at the edges of time, never panic; a `Duration::MAX` lease is held an hour later |
//!
//! The suite spans at most an hour of its own clock (which starts at
//! 2020-01-01T00:00:00Z, whatever the wall clock says): a store that
//! forgets completed keys after a retention period (like
//! [`MemoryStore`](boxhook::idempotency::MemoryStore)'s TTL) must keep them
//! longer than that.
//!
//! # Inbox rules
//!
//! Each rule belongs to the trait whose methods it checks. [`inbox`] runs
//! the rules of [`Inbox`], which every inbox implements;
//! [`InboxSuite`] adds the rules of each optional trait an inbox implements
//! (its methods exist only for an inbox that does), and [`full_inbox`] runs
//! those of `Inbox`, `DeadLetters`, `FilteredClaims` and `Prune`. An inbox
//! that also claims in batches (boxhook's own, in `boxhook-sqlite` and
//! `boxhook-postgres`) adds the `BatchClaims` rules with
//! `InboxSuite::new(make).dead_letters().filtered_claims().prune().batch_claims().run()`.
//!
//! | rule | trait | what is checked |
//! |---|---|---|
//! | `store-new-then-duplicate` | `Inbox` | the first store of an event is `New`, later ones `Duplicate { deliveries: 2, 3, … }`; the entry keeps the first delivery's id and time |
//! | `body-byte-for-byte` | `Inbox` | `get` and `claim_next` return the body exactly as stored |
//! | `concurrent-stores` | `Inbox` | of 32 simultaneous stores of one event, exactly one is `New`, the others are `Duplicate` with deliveries 2 to 32 each once, and 32 are counted |
//! | `claim-next` | `Inbox` | the oldest ready event is claimed, with its attempt counted, state `claimed`, the worker id and the lease's end; `None` when nothing is ready |
//! | `claimed-not-handed-out-twice` | `Inbox` | a claimed event is not claimed again while leased, also under 16 concurrent `claim_next` calls |
//! | `lease-expiry-reclaims` | `Inbox` | a claim whose lease ended is claimed again (one more attempt), and the old holder's `ack` fails with `LeaseLost` |
//! | `ack-is-final` | `Inbox` | an acknowledged event is `done`, never claimed again, and a second `ack` fails with `LeaseLost` |
//! | `requeue-respects-retry-at` | `Inbox` | a requeued event is `pending` and claimable from `retry_at` on, not before |
//! | `list-filters` | `Inbox` | `list` returns every entry oldest first, by exact trigger, and at most `limit` |
//! | `get` | `Inbox` | `get` finds a stored event by id with its entry, and `None` for an unknown id |
//! | `bury-is-dead` | `DeadLetters` | a buried event is `dead`, never claimed again (however late), stays dead on a duplicate delivery, and a second `bury` or an `ack` fails with `LeaseLost` |
//! | `revive-requeues` | `DeadLetters` | `Revive::AllDead` requeues exactly the dead events, ready at the given time with attempts reset; `Revive::Event` requeues a done or dead event by id, and leaves pending and claimed ones alone |
//! | `claim-matching-triggers` | `FilteredClaims` | `claim_matching` claims only events whose trigger is exactly one of those given, oldest first; an empty list claims any |
//! | `list-by-state` | `DeadLetters` | `list` with a state returns exactly the events in it, combined with trigger and limit |
//! | `kind-round-trips` | `Inbox` | a record's kind (`v2` or `v1`) comes back as stored from `list`, `get` and `claim_next` |
//! | `counts-core` | `Inbox` | `counts` is all zeros for an empty inbox, then says exactly how many events `list` shows in each state after stores, a duplicate delivery, claims (also of an expired claim), `ack` and `requeue` |
//! | `oldest-pending-core` | `Inbox` | `counts().oldest_pending` is the `received_at` of the oldest pending event: claimed and done events are not pending, a requeued one is even before its retry time, `None` when none is |
//! | `counts-match-list` | `Prune` + `DeadLetters` | `counts` is all zeros for an empty inbox, then says exactly how many events `list` shows in each state after stores, duplicate deliveries, claims, `ack`, `bury`, `requeue`, both kinds of `revive`, and `prune` |
//! | `oldest-pending` | `DeadLetters` | `counts().oldest_pending` is the `received_at` of the oldest pending event (events are stored in the order they were received): claimed, done and dead events are not pending, a requeued one is even before its retry time, `None` when none is |
//! | `prune-keeps-pending-and-claimed` | `Prune` + `DeadLetters` | a prune keeping every kind of event for a second, months later, removes no pending event (new, or requeued for later) and no claimed one (leased, or its lease over), and the claim goes on as before |
//! | `prune-respects-retention` | `Prune` + `DeadLetters` | `prune` removes done V2 events by `done`, dead V2 events by `dead`, done or dead V1 callbacks by `v1`, each measured from `received_at` (an event received exactly at the cut-off stays), `None` keeps that kind forever, and `Pruned` counts each exactly |
//! | `prune-batch-bound` | `Prune` + `DeadLetters` | `prune` removes at most `batch` events per call, oldest first, says `more: true` when it stopped at the bound and `false` once nothing is left |
//! | `retry-after-prune-is-duplicate` | `Prune` + `DeadLetters` | after its done or dead event was pruned with a 1 s retention, a retry of it up to the last second of `keys` is `Duplicate { deliveries: 2 or more }`, and stores nothing: not listed, not counted, not claimed, `get` finds nothing |
//! | `keys-pruned-after-keys` | `Prune` + `DeadLetters` | a pruned event's key is removed by the first `prune` after `received_at + keys` (counted in `Pruned::keys`, one key at a time as each one's time comes), and a delivery of that event is then `New` again |
//! | `batch-claim-ready` | `BatchClaims` | `claim_batch` claims at most `max` ready events (none for 0), oldest first, each with its attempt counted, state `claimed`, the worker id, the lease's end and its body; it skips leased events, events requeued for later and other triggers, and takes expired claims again; counts follow |
//! | `batch-claim-never-twice` | `BatchClaims` | 8 workers claiming batches of 7 at once from 60 pending events claim each exactly once, and the counts say 60 claimed |
//! | `batch-settle` | `BatchClaims` | one `settle_batch` settles claims as `done`, `pending` (ready from its retry time) and `dead`, says `true` for each, and counts them exactly; the same settle again says `false` for each and changes nothing |
//! | `batch-settle-lost-lease` | `BatchClaims` | a settle of claims whose lease ended (taken over by another worker, or not) says `false` for each and changes nothing; in a batch mixing held and lost claims, exactly the held ones are settled, and the counts stay exact |
//! | `list-paging` | `Inbox` | `list` newest first, with `limit` and `before` (the cursor), visits every event exactly once whatever the page size, also by trigger or state; `before` an unknown id or the first event lists nothing; `since` keeps events received at or after it, and combines with the rest |
//!
//! The `BatchClaims` rules settle claims as `dead` too: an inbox that
//! implements it keeps dead letters.
//!
//! The `Prune` rules bury events as well as prune them, so
//! [`InboxSuite::prune`] asks for [`DeadLetters`] too.
//! A retry of a pruned event may count its deliveries from 2 again (an
//! inbox that keeps only the key of a pruned event does not know how many
//! came before); everything else is exact.
//!
//! [`IdempotencyStore`]: boxhook::idempotency::IdempotencyStore
//! [`Inbox`]: boxhook::inbox::Inbox
//! [`DeadLetters`]: boxhook::inbox::DeadLetters

mod idempotency;
mod inbox;
mod inbox_batch;
mod inbox_counts;
mod inbox_list;
mod inbox_prune;
mod inbox_work;

pub use idempotency::idempotency_store;
pub use inbox::{full_inbox, inbox, InboxSuite};

use std::fmt::Display;

use chrono::{DateTime, Utc};

/// Panics with the rule's name and what went wrong.
#[track_caller]
fn violated(rule: &str, detail: impl Display) -> ! {
    panic!("conformance rule `{rule}` violated: {detail}")
}

/// Refuses to run where concurrent cases could not overlap.
#[track_caller]
fn require_multi_thread(suite: &str) {
    match tokio::runtime::Handle::try_current().map(|handle| handle.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {}
        _ => panic!(
            "the {suite} conformance suite makes concurrent calls: run it on a multi-thread \
             tokio runtime, e.g. #[tokio::test(flavor = \"multi_thread\", worker_threads = 4)]"
        ),
    }
}

/// The suites' clock: 2020-01-01T00:00:00Z plus `seconds`.
fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_577_836_800_i64.saturating_add(seconds), 0)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}
