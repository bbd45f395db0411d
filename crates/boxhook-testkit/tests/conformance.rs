//! The conformance suites pass a correct store and inbox, and fail broken
//! ones under the rule they break.

#![allow(clippy::unwrap_used, reason = "test doubles on uncontended locks")]

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::time::Duration;

use boxhook::idempotency::{Claim, EventKey, IdempotencyStore, MemoryStore, StoreError};
use boxhook::inbox::{
    Claimed, EntryState, ErrorKind, Inbox, InboxEntry, InboxError, ListFilter, NewRecord, Revive,
    Stored, StoredEvent,
};
use boxhook_testkit::conformance;
use chrono::{DateTime, TimeDelta, Utc};

/// Runs `suite` and returns its panic message; fails when it passed.
async fn failure(suite: impl Future<Output = ()>) -> String {
    // `catch_unwind` on a future: poll it inside the closure each time.
    let mut suite = std::pin::pin!(suite);
    let caught = std::future::poll_fn(|cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| suite.as_mut().poll(cx))) {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(())) => std::task::Poll::Ready(None),
            Err(panic) => std::task::Poll::Ready(Some(panic)),
        }
    })
    .await;
    let panic = caught.expect("the suite passed a broken implementation");
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

#[track_caller]
fn assert_rule(message: &str, rule: &str) {
    assert!(
        message.starts_with(&format!("conformance rule `{rule}` violated: ")),
        "expected rule {rule}, got: {message}"
    );
}

// ---------------------------------------------------------------- stores

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_conforms() {
    conformance::idempotency_store(MemoryStore::default).await;
}

/// Idempotency stores, each broken in one way.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Bug {
    AlwaysAcquired,
    ReleaseIgnored,
    CompleteIgnored,
    /// Keys joined as `webhook/event`.
    JoinedKeys,
    /// Looks, waits, then writes: two first claims both win.
    CheckThenSet,
    /// `now + lease` without saturation.
    LeaseOverflows,
    /// A lease that never ends.
    LeaseIgnored,
}

/// A `MemoryStore` with one bug.
struct Broken {
    bug: Bug,
    inner: MemoryStore,
    /// For `CheckThenSet`: the claim and the lease end of each key.
    racy: Mutex<HashMap<EventKey, (Claim, DateTime<Utc>)>>,
}

impl Broken {
    fn new(bug: Bug) -> Self {
        Self {
            bug,
            inner: MemoryStore::default(),
            racy: Mutex::default(),
        }
    }

    fn key(&self, key: &EventKey) -> EventKey {
        if self.bug == Bug::JoinedKeys {
            EventKey::new("", format!("{}/{}", key.webhook_id(), key.event_id()))
        } else {
            key.clone()
        }
    }
}

impl IdempotencyStore for Broken {
    async fn claim(
        &self,
        key: &EventKey,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let key = self.key(key);
        match self.bug {
            Bug::AlwaysAcquired => Ok(Claim::Acquired),
            Bug::CheckThenSet => {
                let seen = self.racy.lock().unwrap().get(&key).copied();
                tokio::time::sleep(Duration::from_millis(5)).await;
                match seen {
                    Some((Claim::Done, _)) => Ok(Claim::Done),
                    Some((_, until)) if until > now => Ok(Claim::InProgress),
                    _ => {
                        let until = now
                            .checked_add_signed(
                                TimeDelta::from_std(lease).unwrap_or(TimeDelta::MAX),
                            )
                            .unwrap_or(DateTime::<Utc>::MAX_UTC);
                        self.racy
                            .lock()
                            .unwrap()
                            .insert(key, (Claim::Acquired, until));
                        Ok(Claim::Acquired)
                    }
                }
            }
            Bug::LeaseOverflows => {
                let _until = now + TimeDelta::from_std(lease).unwrap_or(TimeDelta::MAX);
                self.inner.claim(&key, now, lease).await
            }
            Bug::LeaseIgnored => {
                self.inner
                    .claim(&key, now, Duration::from_secs(1 << 40))
                    .await
            }
            Bug::JoinedKeys | Bug::ReleaseIgnored | Bug::CompleteIgnored => {
                self.inner.claim(&key, now, lease).await
            }
        }
    }

    async fn complete(&self, key: &EventKey, now: DateTime<Utc>) -> Result<(), StoreError> {
        let key = self.key(key);
        match self.bug {
            Bug::CompleteIgnored => Ok(()),
            Bug::CheckThenSet => {
                self.racy.lock().unwrap().insert(key, (Claim::Done, now));
                Ok(())
            }
            _ => self.inner.complete(&key, now).await,
        }
    }

    async fn release(&self, key: &EventKey) -> Result<(), StoreError> {
        let key = self.key(key);
        match self.bug {
            Bug::ReleaseIgnored => Ok(()),
            Bug::CheckThenSet => {
                let mut racy = self.racy.lock().unwrap();
                if racy
                    .get(&key)
                    .is_some_and(|(claim, _)| *claim != Claim::Done)
                {
                    racy.remove(&key);
                }
                Ok(())
            }
            _ => self.inner.release(&key).await,
        }
    }
}

async fn broken_store_fails(bug: Bug, rule: &str) {
    let message = failure(conformance::idempotency_store(move || Broken::new(bug))).await;
    assert_rule(&message, rule);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_that_always_acquires_fails() {
    broken_store_fails(Bug::AlwaysAcquired, "held-claim-is-in-progress").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(
    expected = "conformance rule `held-claim-is-in-progress` violated: a second claim at the same instant: expected InProgress, got Acquired"
)]
async fn a_store_that_always_acquires_fails_with_the_rule_and_the_detail() {
    conformance::idempotency_store(|| Broken::new(Bug::AlwaysAcquired)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_whose_leases_never_end_fails() {
    broken_store_fails(Bug::LeaseIgnored, "lease-expiry-reacquires").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_that_ignores_release_fails() {
    broken_store_fails(Bug::ReleaseIgnored, "release-reacquires").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_that_ignores_complete_fails() {
    broken_store_fails(Bug::CompleteIgnored, "complete-is-done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_that_joins_keys_fails() {
    broken_store_fails(Bug::JoinedKeys, "keys-are-whole").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_that_checks_then_sets_fails() {
    let message = failure(conformance::idempotency_store(|| {
        Broken::new(Bug::CheckThenSet)
    }))
    .await;
    assert_rule(&message, "concurrent-first-claims");
    assert!(
        message.contains("expected 1 Acquired and 31 InProgress, got "),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_whose_lease_arithmetic_overflows_fails() {
    broken_store_fails(Bug::LeaseOverflows, "extreme-leases").await;
}

#[tokio::test(flavor = "current_thread")]
#[should_panic(expected = "run it on a multi-thread tokio runtime")]
async fn the_suites_refuse_a_single_threaded_runtime() {
    conformance::idempotency_store(MemoryStore::default).await;
}

// --------------------------------------------------------------- inboxes

#[derive(Debug, Clone, Copy, PartialEq)]
enum InboxBug {
    None,
    AlwaysNew,
    ClaimIgnoresLease,
    AckIgnored,
    RetryAtIgnored,
    /// Reads the count, waits, then writes it back plus one.
    LostUpdates,
    /// `bury` puts the event back in the queue instead.
    BuryRequeues,
    /// `revive` keeps the attempt count.
    ReviveKeepsAttempts,
    /// `claim_matching` claims any trigger.
    TriggersIgnored,
    /// `list` ignores the state filter.
    StateIgnored,
    /// Every entry reads back as a V2 event.
    KindLost,
}

/// A reference in-memory inbox, optionally broken.
struct MemInbox {
    bug: InboxBug,
    events: tokio::sync::Mutex<Vec<Slot>>,
}

struct Slot {
    record: NewRecord,
    deliveries: u64,
    attempts: u32,
    state: EntryState,
    worker: String,
    ready_at: DateTime<Utc>,
}

impl Slot {
    fn entry(&self, bug: InboxBug) -> InboxEntry {
        let mut entry = InboxEntry::new(&self.record, self.deliveries, self.attempts, self.state);
        if bug == InboxBug::KindLost {
            entry.kind = boxhook::inbox::RecordKind::V2;
        }
        entry
    }
}

impl MemInbox {
    fn new(bug: InboxBug) -> Self {
        Self {
            bug,
            events: tokio::sync::Mutex::default(),
        }
    }

    async fn settle(
        &self,
        claimed: &Claimed,
        state: EntryState,
        at: Option<DateTime<Utc>>,
    ) -> Result<(), InboxError> {
        let mut events = self.events.lock().await;
        let Some(slot) = events.iter_mut().find(|s| {
            s.record.key() == claimed.entry.key()
                && s.state == EntryState::Claimed
                && s.attempts == claimed.entry.attempts
                && s.worker == claimed.worker_id
        }) else {
            return Err(InboxError::new(ErrorKind::LeaseLost, "not held"));
        };
        slot.state = state;
        if let Some(at) = at {
            slot.ready_at = at;
        }
        Ok(())
    }
}

impl Inbox for MemInbox {
    async fn store(&self, record: NewRecord) -> Result<Stored, InboxError> {
        if self.bug == InboxBug::LostUpdates {
            let seen = {
                let events = self.events.lock().await;
                events
                    .iter()
                    .find(|s| s.record.key() == record.key())
                    .map(|s| s.deliveries)
            };
            tokio::time::sleep(Duration::from_millis(2)).await;
            let mut events = self.events.lock().await;
            if let (Some(seen), Some(slot)) = (
                seen,
                events.iter_mut().find(|s| s.record.key() == record.key()),
            ) {
                slot.deliveries = seen + 1;
                return Ok(Stored::Duplicate {
                    deliveries: slot.deliveries,
                });
            }
            if events.iter().any(|s| s.record.key() == record.key()) {
                return Ok(Stored::Duplicate { deliveries: 2 });
            }
            events.push(Slot {
                record,
                deliveries: 1,
                attempts: 0,
                state: EntryState::Pending,
                worker: String::new(),
                ready_at: DateTime::<Utc>::MIN_UTC,
            });
            return Ok(Stored::New);
        }
        let mut events = self.events.lock().await;
        if let Some(slot) = events.iter_mut().find(|s| s.record.key() == record.key()) {
            if self.bug == InboxBug::AlwaysNew {
                return Ok(Stored::New);
            }
            slot.deliveries += 1;
            return Ok(Stored::Duplicate {
                deliveries: slot.deliveries,
            });
        }
        events.push(Slot {
            record,
            deliveries: 1,
            attempts: 0,
            state: EntryState::Pending,
            worker: String::new(),
            ready_at: DateTime::<Utc>::MIN_UTC,
        });
        Ok(Stored::New)
    }

    async fn claim_next(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Claimed>, InboxError> {
        self.claim_matching(worker_id, lease, now, &[]).await
    }

    async fn claim_matching(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
        triggers: &[String],
    ) -> Result<Option<Claimed>, InboxError> {
        let bug = self.bug;
        let mut events = self.events.lock().await;
        let Some(slot) = events.iter_mut().find(|s| {
            matches!(s.state, EntryState::Pending | EntryState::Claimed)
                && (triggers.is_empty()
                    || bug == InboxBug::TriggersIgnored
                    || triggers.contains(&s.record.trigger))
                && (s.ready_at <= now
                    || bug == InboxBug::ClaimIgnoresLease
                    || (bug == InboxBug::RetryAtIgnored && s.state == EntryState::Pending))
        }) else {
            return Ok(None);
        };
        let lease_until = now
            .checked_add_signed(TimeDelta::from_std(lease).unwrap_or(TimeDelta::MAX))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        slot.state = EntryState::Claimed;
        slot.attempts += 1;
        worker_id.clone_into(&mut slot.worker);
        slot.ready_at = lease_until;
        Ok(Some(Claimed {
            entry: slot.entry(self.bug),
            body: slot.record.body.clone(),
            worker_id: worker_id.to_owned(),
            lease_until,
        }))
    }

    async fn ack(&self, claimed: &Claimed) -> Result<(), InboxError> {
        // The bug: a held claim is "acknowledged" by leaving it claimed.
        let state = if self.bug == InboxBug::AckIgnored {
            EntryState::Claimed
        } else {
            EntryState::Done
        };
        self.settle(claimed, state, None).await
    }

    async fn requeue(&self, claimed: &Claimed, retry_at: DateTime<Utc>) -> Result<(), InboxError> {
        self.settle(claimed, EntryState::Pending, Some(retry_at))
            .await
    }

    async fn bury(&self, claimed: &Claimed) -> Result<(), InboxError> {
        let state = if self.bug == InboxBug::BuryRequeues {
            EntryState::Pending
        } else {
            EntryState::Dead
        };
        self.settle(claimed, state, None).await
    }

    async fn revive(&self, which: Revive, now: DateTime<Utc>) -> Result<u64, InboxError> {
        let mut events = self.events.lock().await;
        let mut revived = 0;
        for slot in events.iter_mut() {
            let chosen = match &which {
                Revive::AllDead => slot.state == EntryState::Dead,
                Revive::Event(id) => {
                    slot.record.event_id == *id
                        && matches!(slot.state, EntryState::Dead | EntryState::Done)
                }
            };
            if chosen {
                slot.state = EntryState::Pending;
                if self.bug != InboxBug::ReviveKeepsAttempts {
                    slot.attempts = 0;
                }
                slot.ready_at = now;
                revived += 1;
            }
        }
        Ok(revived)
    }

    async fn list(&self, filter: ListFilter) -> Result<Vec<InboxEntry>, InboxError> {
        let events = self.events.lock().await;
        Ok(events
            .iter()
            .filter(|s| {
                filter
                    .trigger
                    .as_ref()
                    .is_none_or(|t| *t == s.record.trigger)
                    && (self.bug == InboxBug::StateIgnored
                        || filter.state.is_none_or(|state| state == s.state))
            })
            .take(filter.limit.unwrap_or(usize::MAX))
            .map(|s| s.entry(self.bug))
            .collect())
    }

    async fn get(&self, event_id: &str) -> Result<Option<StoredEvent>, InboxError> {
        let events = self.events.lock().await;
        Ok(events
            .iter()
            .find(|s| s.record.event_id == event_id)
            .map(|s| StoredEvent {
                entry: s.entry(self.bug),
                body: s.record.body.clone(),
            }))
    }
    // ISSUE-22-PLACEHOLDER: the reference inbox's counts; replaced with the
    // count and retention rules of issue 22.
    async fn counts(&self) -> Result<boxhook::inbox::Counts, InboxError> {
        let events = self.events.lock().await;
        let mut counts = boxhook::inbox::Counts::default();
        for s in events.iter() {
            match s.state {
                EntryState::Pending => counts.pending += 1,
                EntryState::Claimed => counts.claimed += 1,
                EntryState::Done => counts.done += 1,
                EntryState::Dead => counts.dead += 1,
            }
        }
        Ok(counts)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_correct_inbox_conforms() {
    conformance::inbox(|| MemInbox::new(InboxBug::None)).await;
}

async fn broken_inbox_fails(bug: InboxBug, rule: &str) {
    let message = failure(conformance::inbox(move || MemInbox::new(bug))).await;
    assert_rule(&message, rule);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(
    expected = "conformance rule `store-new-then-duplicate` violated: store number 2 of one event: expected Duplicate { deliveries: 2 }, got New"
)]
async fn an_inbox_that_always_answers_new_fails() {
    conformance::inbox(|| MemInbox::new(InboxBug::AlwaysNew)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_inbox_that_loses_concurrent_counts_fails() {
    broken_inbox_fails(InboxBug::LostUpdates, "concurrent-stores").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_inbox_that_hands_out_leased_events_fails() {
    broken_inbox_fails(InboxBug::ClaimIgnoresLease, "claim-next").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_inbox_that_ignores_ack_fails() {
    broken_inbox_fails(InboxBug::AckIgnored, "ack-is-final").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_inbox_that_ignores_retry_at_fails() {
    broken_inbox_fails(InboxBug::RetryAtIgnored, "requeue-respects-retry-at").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_inbox_whose_bury_requeues_fails() {
    broken_inbox_fails(InboxBug::BuryRequeues, "bury-is-dead").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_inbox_whose_revive_keeps_attempts_fails() {
    broken_inbox_fails(InboxBug::ReviveKeepsAttempts, "revive-requeues").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_inbox_that_ignores_triggers_fails() {
    broken_inbox_fails(InboxBug::TriggersIgnored, "claim-matching-triggers").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_inbox_that_ignores_the_state_filter_fails() {
    broken_inbox_fails(InboxBug::StateIgnored, "list-by-state").await;
    broken_inbox_fails(InboxBug::KindLost, "kind-round-trips").await;
}
