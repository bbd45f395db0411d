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
    Claimed, Counts, DeadLetters, EntryState, ErrorKind, FilteredClaims, Inbox, InboxEntry,
    InboxError, ListFilter, NewRecord, Prune, Pruned, Retention, Revive, Stored, StoredEvent,
};
use boxhook_testkit::conformance::{self, InboxSuite};
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
    /// `prune` fails with `Unsupported`.
    NoPrune,
    /// `counts` counts claimed events as pending.
    ClaimedCountedPending,
    /// `oldest_pending` looks at claimed events too.
    OldestIncludesClaimed,
    /// `prune` removes claimed events like done ones.
    PrunesClaimed,
    /// `prune` keeps dead events as long as done ones.
    DeadKeptAsDone,
    /// `prune` removes every prunable event at once.
    BatchIgnored,
    /// `prune` keeps no key of what it removed.
    KeysForgotten,
    /// `prune` never removes a key.
    KeysKeptForever,
    /// `list` ignores `before`.
    BeforeIgnored,
    /// `list` ignores `since`.
    SinceIgnored,
}

/// A reference in-memory inbox, optionally broken.
///
/// Its `counts` looks at every event: it is a reference for the rules,
/// not a store that must answer without reading every row.
struct MemInbox {
    bug: InboxBug,
    events: tokio::sync::Mutex<Vec<Slot>>,
    /// The keys of pruned events still kept, in the order they were
    /// pruned. Locked after `events`, never alone before it.
    keys: tokio::sync::Mutex<Vec<Kept>>,
}

/// The key of a pruned event, kept until `until`.
struct Kept {
    key: EventKey,
    until: DateTime<Utc>,
    deliveries: u64,
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
            keys: tokio::sync::Mutex::default(),
        }
    }

    /// How long `retention` keeps a slot; `None` when it is never pruned
    /// (kept forever, or pending or claimed).
    fn kept_for(&self, slot: &Slot, retention: &Retention) -> Option<Duration> {
        use boxhook::inbox::RecordKind;
        match (slot.record.kind, slot.state) {
            (RecordKind::V1, EntryState::Done | EntryState::Dead) => retention.v1,
            (RecordKind::V2, EntryState::Done) => retention.done,
            (RecordKind::V2, EntryState::Dead) if self.bug == InboxBug::DeadKeptAsDone => {
                retention.done
            }
            (RecordKind::V2, EntryState::Dead) => retention.dead,
            (_, EntryState::Claimed) if self.bug == InboxBug::PrunesClaimed => retention.done,
            (_, EntryState::Pending | EntryState::Claimed) => None,
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
        if let Some(kept) = self
            .keys
            .lock()
            .await
            .iter_mut()
            .find(|k| k.key == record.key())
        {
            kept.deliveries += 1;
            return Ok(Stored::Duplicate {
                deliveries: kept.deliveries,
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

    async fn list(&self, filter: ListFilter) -> Result<Vec<InboxEntry>, InboxError> {
        let events = self.events.lock().await;
        // Stored before the oldest event with the cursor's id; none when
        // no event has it.
        let end = match &filter.before {
            Some(_) if self.bug == InboxBug::BeforeIgnored => events.len(),
            Some(id) => events
                .iter()
                .position(|s| s.record.event_id == *id)
                .unwrap_or(0),
            None => events.len(),
        };
        let stored = &events[..end];
        let in_order: Box<dyn Iterator<Item = &Slot>> = if filter.newest_first {
            Box::new(stored.iter().rev())
        } else {
            Box::new(stored.iter())
        };
        Ok(in_order
            .filter(|s| {
                filter
                    .trigger
                    .as_ref()
                    .is_none_or(|t| *t == s.record.trigger)
                    && (self.bug == InboxBug::StateIgnored
                        || filter.state.is_none_or(|state| state == s.state))
                    && (self.bug == InboxBug::SinceIgnored
                        || filter
                            .since
                            .is_none_or(|since| s.record.received_at >= since))
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

    async fn counts(&self) -> Result<Counts, InboxError> {
        let events = self.events.lock().await;
        let mut counts = Counts::default();
        for s in events.iter() {
            match s.state {
                EntryState::Claimed if self.bug == InboxBug::ClaimedCountedPending => {
                    counts.pending += 1;
                }
                EntryState::Pending => counts.pending += 1,
                EntryState::Claimed => counts.claimed += 1,
                EntryState::Done => counts.done += 1,
                EntryState::Dead => counts.dead += 1,
            }
            let waiting = s.state == EntryState::Pending
                || (self.bug == InboxBug::OldestIncludesClaimed && s.state == EntryState::Claimed);
            if waiting
                && counts
                    .oldest_pending
                    .is_none_or(|oldest| s.record.received_at < oldest)
            {
                counts.oldest_pending = Some(s.record.received_at);
            }
        }
        Ok(counts)
    }
}

impl FilteredClaims for MemInbox {
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
}

impl DeadLetters for MemInbox {
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
}

impl Prune for MemInbox {
    async fn prune(
        &self,
        retention: &Retention,
        now: DateTime<Utc>,
        batch: usize,
    ) -> Result<Pruned, InboxError> {
        if self.bug == InboxBug::NoPrune {
            return Err(InboxError::new(
                ErrorKind::Unsupported,
                "this inbox cannot prune old events",
            ));
        }
        let mut events = self.events.lock().await;
        let mut keys = self.keys.lock().await;
        let mut pruned = Pruned::default();
        // Keys whose time has passed go first; then the oldest prunable
        // events, at most `batch` of them.
        if self.bug != InboxBug::KeysKeptForever {
            let before = keys.len();
            keys.retain(|kept| kept.until > now);
            pruned.keys = u64::try_from(before - keys.len()).unwrap();
        }
        let prunable: Vec<usize> = events
            .iter()
            .enumerate()
            .filter(|(_, slot)| {
                self.kept_for(slot, retention)
                    .and_then(|age| Retention::cutoff(now, Some(age)))
                    .is_some_and(|cutoff| slot.record.received_at < cutoff)
            })
            .map(|(i, _)| i)
            .collect();
        let take = if self.bug == InboxBug::BatchIgnored {
            prunable.len()
        } else {
            prunable.len().min(batch)
        };
        pruned.more = take < prunable.len();
        for &i in prunable[..take].iter().rev() {
            let slot = events.remove(i);
            match (slot.record.kind, slot.state) {
                (boxhook::inbox::RecordKind::V1, _) => pruned.v1 += 1,
                (_, EntryState::Dead) => pruned.dead += 1,
                _ => pruned.done += 1,
            }
            let until = slot.record.received_at
                + TimeDelta::from_std(retention.keys).unwrap_or(TimeDelta::MAX);
            if until > now && self.bug != InboxBug::KeysForgotten {
                keys.push(Kept {
                    key: slot.record.key(),
                    until,
                    deliveries: slot.deliveries,
                });
            }
        }
        Ok(pruned)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_correct_inbox_conforms() {
    conformance::full_inbox(|| MemInbox::new(InboxBug::None)).await;
}

/// [`MemInbox`] with only what every inbox has: no dead letters, no
/// filtered claims, no pruning.
struct CoreOnly(MemInbox);

impl Inbox for CoreOnly {
    async fn store(&self, record: NewRecord) -> Result<Stored, InboxError> {
        self.0.store(record).await
    }

    async fn claim_next(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Claimed>, InboxError> {
        self.0.claim_next(worker_id, lease, now).await
    }

    async fn ack(&self, claimed: &Claimed) -> Result<(), InboxError> {
        self.0.ack(claimed).await
    }

    async fn requeue(&self, claimed: &Claimed, retry_at: DateTime<Utc>) -> Result<(), InboxError> {
        self.0.requeue(claimed, retry_at).await
    }

    async fn list(&self, filter: ListFilter) -> Result<Vec<InboxEntry>, InboxError> {
        self.0.list(filter).await
    }

    async fn get(&self, event_id: &str) -> Result<Option<StoredEvent>, InboxError> {
        self.0.get(event_id).await
    }

    async fn counts(&self) -> Result<Counts, InboxError> {
        self.0.counts().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_inbox_with_only_the_core_trait_conforms() {
    conformance::inbox(|| CoreOnly(MemInbox::new(InboxBug::None))).await;
    InboxSuite::new(|| CoreOnly(MemInbox::new(InboxBug::None)))
        .run()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_core_suite_catches_a_broken_core_only_inbox() {
    let message = failure(conformance::inbox(|| {
        CoreOnly(MemInbox::new(InboxBug::AckIgnored))
    }))
    .await;
    assert_rule(&message, "ack-is-final");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_suite_runs_the_groups_it_was_given_only() {
    // `bury` is broken: the core rules and those of `FilteredClaims` never
    // bury, so they pass ...
    InboxSuite::new(|| MemInbox::new(InboxBug::BuryRequeues))
        .filtered_claims()
        .run()
        .await;
    // ... and the `DeadLetters` rules catch it.
    let message = failure(
        InboxSuite::new(|| MemInbox::new(InboxBug::BuryRequeues))
            .dead_letters()
            .run(),
    )
    .await;
    assert_rule(&message, "bury-is-dead");
    // A broken `claim_matching` likewise passes without `filtered_claims`.
    InboxSuite::new(|| MemInbox::new(InboxBug::TriggersIgnored))
        .dead_letters()
        .prune()
        .run()
        .await;
}

async fn broken_inbox_fails(bug: InboxBug, rule: &str) {
    let message = failure(conformance::full_inbox(move || MemInbox::new(bug))).await;
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
    // `list-paging` pages by state too: a core rule, so even the core
    // suite catches it, before `list-by-state` (a `DeadLetters` rule) runs.
    broken_inbox_fails(InboxBug::StateIgnored, "list-paging").await;
    let message = failure(conformance::inbox(|| {
        CoreOnly(MemInbox::new(InboxBug::StateIgnored))
    }))
    .await;
    assert_rule(&message, "list-paging");
    broken_inbox_fails(InboxBug::KindLost, "kind-round-trips").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_inbox_that_cannot_prune_fails() {
    let message = failure(conformance::full_inbox(|| MemInbox::new(InboxBug::NoPrune))).await;
    assert_rule(&message, "counts-match-list");
    assert!(
        message
            .ends_with("`prune` failed: inbox cannot do this: this inbox cannot prune old events"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_inbox_that_counts_claimed_events_as_pending_fails() {
    // `counts-core`, a core rule, runs first.
    broken_inbox_fails(InboxBug::ClaimedCountedPending, "counts-core").await;
    let message = failure(conformance::inbox(|| {
        CoreOnly(MemInbox::new(InboxBug::ClaimedCountedPending))
    }))
    .await;
    assert_rule(&message, "counts-core");
    assert!(
        message.ends_with(
            "counts (pending, claimed, done, dead) after 4 claims: expected (2, 4, 0, 0), got (6, 0, 0, 0)"
        ),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(
    expected = "conformance rule `oldest-pending-core` violated: the oldest pending event's received_at while the oldest is claimed: expected Some(2020-01-01T00:00:20Z), got Some(2020-01-01T00:00:10Z)"
)]
async fn an_inbox_whose_oldest_pending_may_be_claimed_fails() {
    conformance::inbox(|| CoreOnly(MemInbox::new(InboxBug::OldestIncludesClaimed))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_inbox_that_prunes_claimed_events_fails() {
    broken_inbox_fails(InboxBug::PrunesClaimed, "prune-keeps-pending-and-claimed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_inbox_that_keeps_dead_events_as_long_as_done_ones_fails() {
    broken_inbox_fails(InboxBug::DeadKeptAsDone, "prune-respects-retention").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(
    expected = "conformance rule `prune-batch-bound` violated: prune call 1 with a batch of 2 (of 5 done events, oldest first): expected Pruned { done: 2, dead: 0, v1: 0, keys: 0, more: true }, got Pruned { done: 5, dead: 0, v1: 0, keys: 0, more: false }"
)]
async fn an_inbox_whose_prune_ignores_the_batch_fails() {
    conformance::full_inbox(|| MemInbox::new(InboxBug::BatchIgnored)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(
    expected = "conformance rule `retry-after-prune-is-duplicate` violated: a retry of a pruned done event: expected Duplicate { deliveries: 2 or more } (the event was pruned, its key kept), got New"
)]
async fn an_inbox_that_forgets_pruned_keys_fails() {
    conformance::full_inbox(|| MemInbox::new(InboxBug::KeysForgotten)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_inbox_that_keeps_keys_forever_fails() {
    broken_inbox_fails(InboxBug::KeysKeptForever, "keys-pruned-after-keys").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_inbox_whose_list_ignores_the_cursor_fails() {
    let message = failure(conformance::inbox(|| {
        MemInbox::new(InboxBug::BeforeIgnored)
    }))
    .await;
    assert_rule(&message, "list-paging");
    assert!(
        message.contains("the newest 3 before e-5: expected "),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_inbox_whose_list_ignores_since_fails() {
    broken_inbox_fails(InboxBug::SinceIgnored, "list-paging").await;
}
