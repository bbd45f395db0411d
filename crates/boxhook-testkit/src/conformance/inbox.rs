//! The inbox suites: [`inbox`] (every [`Inbox`]), [`InboxSuite`] and
//! [`full_inbox`] (with the optional traits).

use std::collections::BTreeSet;
use std::fmt::{self, Debug};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use boxhook::inbox::{
    BatchClaims, Claimed, DeadLetters, EntryState, FilteredClaims, Inbox, InboxEntry, InboxError,
    ListFilter, NewRecord, Prune, RecordKind, Stored,
};
use chrono::{DateTime, Utc};
use tokio::sync::Barrier;

use super::{
    at, inbox_batch, inbox_counts, inbox_list, inbox_prune, inbox_work, require_multi_thread,
    violated,
};

/// The lease every case claims with.
pub(super) const LEASE: Duration = Duration::from_secs(60);
/// How many tasks store one event at once.
const DELIVERIES: usize = 32;
/// [`DELIVERIES`], as a delivery count.
const DELIVERIES_COUNTED: u64 = 32;
/// How many workers claim at once, and how many events they share.
const WORKERS: usize = 16;
const EVENTS: usize = 8;

/// Runs the rules every [`Inbox`] must keep (those of trait `Inbox` in the
/// [module docs](super)) against fresh inboxes from `make`, and panics with
/// the name of the first rule an inbox breaks. An inbox that also
/// implements [`DeadLetters`], [`FilteredClaims`] or [`Prune`] runs their
/// rules too with [`InboxSuite`] or [`full_inbox`].
///
/// Call it from a multi-thread tokio runtime; it panics otherwise.
///
/// ```no_run
/// # struct MyInbox;
/// # impl boxhook::inbox::Inbox for MyInbox {
/// #   async fn store(&self, _: boxhook::inbox::NewRecord) -> Result<boxhook::inbox::Stored, boxhook::inbox::InboxError> { unimplemented!() }
/// #   async fn claim_next(&self, _: &str, _: std::time::Duration, _: chrono::DateTime<chrono::Utc>) -> Result<Option<boxhook::inbox::Claimed>, boxhook::inbox::InboxError> { unimplemented!() }
/// #   async fn ack(&self, _: &boxhook::inbox::Claimed) -> Result<(), boxhook::inbox::InboxError> { unimplemented!() }
/// #   async fn requeue(&self, _: &boxhook::inbox::Claimed, _: chrono::DateTime<chrono::Utc>) -> Result<(), boxhook::inbox::InboxError> { unimplemented!() }
/// #   async fn list(&self, _: boxhook::inbox::ListFilter) -> Result<Vec<boxhook::inbox::InboxEntry>, boxhook::inbox::InboxError> { unimplemented!() }
/// #   async fn get(&self, _: &str) -> Result<Option<boxhook::inbox::StoredEvent>, boxhook::inbox::InboxError> { unimplemented!() }
/// #   async fn counts(&self) -> Result<boxhook::inbox::Counts, boxhook::inbox::InboxError> { unimplemented!() }
/// # }
/// # impl MyInbox { fn connect() -> Self { MyInbox } }
/// #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
/// async fn my_inbox_conforms() {
///     boxhook_testkit::conformance::inbox(MyInbox::connect).await;
/// }
/// ```
///
/// # Panics
///
/// At the first broken rule: ``conformance rule `<rule>` violated: <what
/// happened>``; when an inbox call fails or panics (under the rule being
/// checked); and outside a multi-thread tokio runtime.
pub async fn inbox<I, F>(make: F)
where
    I: Inbox,
    F: Fn() -> I,
{
    InboxSuite::new(make).run().await;
}

/// Runs every inbox rule, of [`Inbox`], [`DeadLetters`], [`FilteredClaims`]
/// and [`Prune`], against fresh inboxes from `make`: the suite for an inbox
/// that implements all four, as those of `boxhook-sqlite` and
/// `boxhook-postgres` do.
/// Shorthand for
/// `InboxSuite::new(make).dead_letters().filtered_claims().prune().run()`.
///
/// ```no_run
/// # use boxhook::inbox::*;
/// # use chrono::{DateTime, Utc};
/// # use std::time::Duration;
/// # struct MyInbox;
/// # impl Inbox for MyInbox {
/// #   async fn store(&self, _: NewRecord) -> Result<Stored, InboxError> { unimplemented!() }
/// #   async fn claim_next(&self, _: &str, _: Duration, _: DateTime<Utc>) -> Result<Option<Claimed>, InboxError> { unimplemented!() }
/// #   async fn ack(&self, _: &Claimed) -> Result<(), InboxError> { unimplemented!() }
/// #   async fn requeue(&self, _: &Claimed, _: DateTime<Utc>) -> Result<(), InboxError> { unimplemented!() }
/// #   async fn list(&self, _: ListFilter) -> Result<Vec<InboxEntry>, InboxError> { unimplemented!() }
/// #   async fn get(&self, _: &str) -> Result<Option<StoredEvent>, InboxError> { unimplemented!() }
/// #   async fn counts(&self) -> Result<Counts, InboxError> { unimplemented!() }
/// # }
/// # impl DeadLetters for MyInbox {
/// #   async fn bury(&self, _: &Claimed) -> Result<(), InboxError> { unimplemented!() }
/// #   async fn revive(&self, _: Revive, _: DateTime<Utc>) -> Result<u64, InboxError> { unimplemented!() }
/// # }
/// # impl FilteredClaims for MyInbox {
/// #   async fn claim_matching(&self, _: &str, _: Duration, _: DateTime<Utc>, _: &[String]) -> Result<Option<Claimed>, InboxError> { unimplemented!() }
/// # }
/// # impl Prune for MyInbox {
/// #   async fn prune(&self, _: &Retention, _: DateTime<Utc>, _: usize) -> Result<Pruned, InboxError> { unimplemented!() }
/// # }
/// # impl MyInbox { fn connect() -> Self { MyInbox } }
/// #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
/// async fn my_inbox_conforms() {
///     boxhook_testkit::conformance::full_inbox(MyInbox::connect).await;
/// }
/// ```
///
/// The same on a store that exists, run as this example: the inbox of `boxhook-sqlite`
/// in memory, a fresh one for each rule.
///
/// ```
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 4)]
/// # async fn main() {
/// use boxhook_sqlite::SqliteInbox;
///
/// boxhook_testkit::conformance::full_inbox(|| SqliteInbox::in_memory().expect("an in-memory inbox"))
///     .await;
/// # }
/// ```
///
/// # Panics
///
/// As [`inbox`].
pub async fn full_inbox<I, F>(make: F)
where
    I: DeadLetters + FilteredClaims + Prune,
    F: Fn() -> I,
{
    InboxSuite::new(make)
        .dead_letters()
        .filtered_claims()
        .prune()
        .run()
        .await;
}

/// The rules of one optional inbox trait, run on inboxes from `make`.
type Group<F> = for<'a> fn(&'a F) -> Pin<Box<dyn Future<Output = ()> + 'a>>;

/// The inbox suite for the traits an inbox implements: the core rules of
/// [`inbox`], then those of each trait chosen. Each method is there only
/// when the inbox implements its trait, so a suite asks for no more than
/// the inbox does.
///
/// ```no_run
/// # use boxhook::inbox::*;
/// # use chrono::{DateTime, Utc};
/// # use std::time::Duration;
/// # struct MyInbox;
/// # impl Inbox for MyInbox {
/// #   async fn store(&self, _: NewRecord) -> Result<Stored, InboxError> { unimplemented!() }
/// #   async fn claim_next(&self, _: &str, _: Duration, _: DateTime<Utc>) -> Result<Option<Claimed>, InboxError> { unimplemented!() }
/// #   async fn ack(&self, _: &Claimed) -> Result<(), InboxError> { unimplemented!() }
/// #   async fn requeue(&self, _: &Claimed, _: DateTime<Utc>) -> Result<(), InboxError> { unimplemented!() }
/// #   async fn list(&self, _: ListFilter) -> Result<Vec<InboxEntry>, InboxError> { unimplemented!() }
/// #   async fn get(&self, _: &str) -> Result<Option<StoredEvent>, InboxError> { unimplemented!() }
/// #   async fn counts(&self) -> Result<Counts, InboxError> { unimplemented!() }
/// # }
/// # impl DeadLetters for MyInbox {
/// #   async fn bury(&self, _: &Claimed) -> Result<(), InboxError> { unimplemented!() }
/// #   async fn revive(&self, _: Revive, _: DateTime<Utc>) -> Result<u64, InboxError> { unimplemented!() }
/// # }
/// # impl MyInbox { fn connect() -> Self { MyInbox } }
/// use boxhook_testkit::conformance::InboxSuite;
///
/// // `MyInbox` has dead letters, but neither filters claims nor prunes.
/// #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
/// async fn my_inbox_conforms() {
///     InboxSuite::new(MyInbox::connect).dead_letters().run().await;
/// }
/// ```
#[must_use = "a suite does nothing until `run().await`"]
pub struct InboxSuite<I, F> {
    make: F,
    groups: Vec<Group<F>>,
    inbox: PhantomData<fn() -> I>,
}

impl<I, F> fmt::Debug for InboxSuite<I, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboxSuite")
            .field("groups", &self.groups.len())
            .finish_non_exhaustive()
    }
}

impl<I: Inbox, F: Fn() -> I> InboxSuite<I, F> {
    /// The core rules of [`inbox`], on fresh inboxes from `make`.
    pub fn new(make: F) -> Self {
        Self {
            make,
            groups: Vec::new(),
            inbox: PhantomData,
        }
    }

    /// Runs the rules chosen and panics with the name of the first rule an
    /// inbox breaks.
    ///
    /// # Panics
    ///
    /// As [`inbox`].
    pub async fn run(self) {
        require_multi_thread("inbox");
        core(&self.make).await;
        for group in &self.groups {
            group(&self.make).await;
        }
    }

    fn with(mut self, group: Group<F>) -> Self {
        self.groups.push(group);
        self
    }
}

impl<I: DeadLetters, F: Fn() -> I> InboxSuite<I, F> {
    /// Adds the [`DeadLetters`] rules: `bury-is-dead`, `revive-requeues`,
    /// `list-by-state`, `oldest-pending`.
    pub fn dead_letters(self) -> Self {
        self.with(|make| Box::pin(dead_letters(make)))
    }
}

impl<I: FilteredClaims, F: Fn() -> I> InboxSuite<I, F> {
    /// Adds the [`FilteredClaims`] rule: `claim-matching-triggers`.
    pub fn filtered_claims(self) -> Self {
        self.with(|make| Box::pin(filtered_claims(make)))
    }
}

impl<I: Prune + DeadLetters, F: Fn() -> I> InboxSuite<I, F> {
    /// Adds the [`Prune`] rules: `prune-keeps-pending-and-claimed`,
    /// `prune-respects-retention`, `prune-batch-bound`,
    /// `retry-after-prune-is-duplicate`, `keys-pruned-after-keys`, and
    /// `counts-match-list`. They bury events too, so they ask for
    /// [`DeadLetters`] as well.
    pub fn prune(self) -> Self {
        self.with(|make| Box::pin(prune(make)))
    }
}

impl<I: BatchClaims, F: Fn() -> I> InboxSuite<I, F> {
    /// Adds the [`BatchClaims`] rules: `batch-claim-ready`,
    /// `batch-claim-never-twice`, `batch-settle`, `batch-settle-lost-lease`.
    pub fn batch_claims(self) -> Self {
        self.with(|make| Box::pin(batch_claims(make)))
    }
}

/// The rules of trait [`Inbox`].
async fn core<I: Inbox, F: Fn() -> I>(make: &F) {
    store_new_then_duplicate(&make()).await;
    body_byte_for_byte(&make()).await;
    concurrent_stores(make()).await;
    claim_next(&make()).await;
    claimed_not_handed_out_twice(make()).await;
    lease_expiry_reclaims(&make()).await;
    ack_is_final(&make()).await;
    requeue_respects_retry_at(&make()).await;
    list_filters(&make()).await;
    get(&make()).await;
    kind_round_trips(&make()).await;
    inbox_counts::counts_core(&make()).await;
    inbox_counts::oldest_pending_core(&make()).await;
    inbox_list::list_paging(&make()).await;
}

/// The rules of trait [`DeadLetters`].
async fn dead_letters<I: DeadLetters, F: Fn() -> I>(make: &F) {
    inbox_work::bury_is_dead(&make()).await;
    inbox_work::revive_requeues(&make()).await;
    inbox_work::list_by_state(&make()).await;
    inbox_counts::oldest_pending(&make()).await;
}

/// The rules of trait [`FilteredClaims`].
async fn filtered_claims<I: FilteredClaims, F: Fn() -> I>(make: &F) {
    inbox_work::claim_matching_triggers(&make()).await;
}

/// The rules of trait [`BatchClaims`].
async fn batch_claims<I: BatchClaims, F: Fn() -> I>(make: &F) {
    inbox_batch::batch_claim_ready(&make()).await;
    inbox_batch::batch_claim_never_twice(make()).await;
    inbox_batch::batch_settle(&make()).await;
    inbox_batch::batch_settle_lost_lease(&make()).await;
}

/// The rules of trait [`Prune`] (with [`DeadLetters`]).
async fn prune<I: Prune + DeadLetters, F: Fn() -> I>(make: &F) {
    inbox_counts::counts_match_list(&make()).await;
    inbox_prune::prune_keeps_pending_and_claimed(&make()).await;
    inbox_prune::prune_respects_retention(&make()).await;
    inbox_prune::prune_batch_bound(&make()).await;
    inbox_prune::retry_after_prune_is_duplicate(&make()).await;
    inbox_prune::keys_pruned_after_keys(&make()).await;
}

/// A Box-shaped event body.
fn body(event_id: &str, trigger: &str) -> String {
    format!(
        r#"{{"type":"webhook_event","id":"{event_id}","created_at":"2020-01-01T00:00:00Z","trigger":"{trigger}","webhook":{{"id":"4133","type":"webhook"}},"source":{{"id":"5","type":"file"}}}}"#
    )
}

pub(super) fn record(event_id: &str, trigger: &str, delivery: &str, received: i64) -> NewRecord {
    record_of(body(event_id, trigger), delivery, received)
}

fn record_of(body: String, delivery: &str, received: i64) -> NewRecord {
    match NewRecord::parse(body, Some(delivery), at(received)) {
        Ok(record) => record,
        // The suite's own bodies are events: reaching this is a testkit bug.
        Err(error) => panic!("the conformance suite built a body that is not an event: {error}"),
    }
}

pub(super) async fn ok<T>(
    rule: &str,
    call: &str,
    f: impl Future<Output = Result<T, InboxError>>,
) -> T {
    match f.await {
        Ok(out) => out,
        Err(error) => violated(rule, format!("`{call}` failed: {error}")),
    }
}

#[track_caller]
#[allow(
    clippy::needless_pass_by_value,
    reason = "called with temporaries; taking them keeps every call site short"
)]
pub(super) fn expect<T: PartialEq + Debug>(rule: &str, what: &str, got: T, want: T) {
    if got != want {
        violated(rule, format!("{what}: expected {want:?}, got {got:?}"));
    }
}

pub(super) async fn claim_some<I: Inbox>(
    inbox: &I,
    rule: &str,
    worker: &str,
    now: DateTime<Utc>,
    what: &str,
) -> Claimed {
    match ok(rule, "claim_next", inbox.claim_next(worker, LEASE, now)).await {
        Some(claimed) => claimed,
        None => violated(rule, format!("{what}: expected an event, got None")),
    }
}

pub(super) async fn claim_none<I: Inbox>(
    inbox: &I,
    rule: &str,
    worker: &str,
    now: DateTime<Utc>,
    what: &str,
) {
    if let Some(claimed) = ok(rule, "claim_next", inbox.claim_next(worker, LEASE, now)).await {
        violated(
            rule,
            format!(
                "{what}: expected None, got event {:?} (attempt {})",
                claimed.entry.event_id,
                claimed.attempt()
            ),
        );
    }
}

async fn entries<I: Inbox>(inbox: &I, rule: &str, filter: ListFilter) -> Vec<InboxEntry> {
    ok(rule, "list", inbox.list(filter)).await
}

pub(super) async fn state_of<I: Inbox>(inbox: &I, rule: &str, event_id: &str) -> EntryState {
    match ok(rule, "get", inbox.get(event_id)).await {
        Some(stored) => stored.entry.state,
        None => violated(rule, format!("`get({event_id:?})` found nothing")),
    }
}

async fn store_new_then_duplicate<I: Inbox>(inbox: &I) {
    const RULE: &str = "store-new-then-duplicate";
    let stored = ok(
        RULE,
        "store",
        inbox.store(record("e-1", "FILE.UPLOADED", "d-1", 0)),
    )
    .await;
    expect(RULE, "the first store of an event", stored, Stored::New);
    for n in 2..=4 {
        let delivery = format!("d-{n}");
        let stored = ok(
            RULE,
            "store",
            inbox.store(record("e-1", "FILE.UPLOADED", &delivery, n)),
        )
        .await;
        expect(
            RULE,
            &format!("store number {n} of one event"),
            stored,
            Stored::Duplicate {
                deliveries: n.unsigned_abs(),
            },
        );
    }
    let listed = entries(inbox, RULE, ListFilter::new()).await;
    expect(
        RULE,
        "entries listed after four stores of one event",
        listed.len(),
        1,
    );
    let entry = &listed[0];
    expect(RULE, "the entry's deliveries", entry.deliveries, 4);
    expect(
        RULE,
        "the entry's delivery id (the first delivery's)",
        entry.delivery_id.as_deref(),
        Some("d-1"),
    );
    expect(
        RULE,
        "the entry's received_at (the first delivery's)",
        entry.received_at,
        at(0),
    );
    expect(
        RULE,
        "the entry's ids and trigger",
        (
            entry.webhook_id.as_str(),
            entry.event_id.as_str(),
            entry.trigger.as_str(),
        ),
        ("4133", "e-1", "FILE.UPLOADED"),
    );
    expect(
        RULE,
        "the entry's source",
        (entry.source_type.as_deref(), entry.source_id.as_deref()),
        (Some("file"), Some("5")),
    );
    expect(
        RULE,
        "the entry's state and attempts",
        (entry.state, entry.attempts),
        (EntryState::Pending, 0),
    );
}

async fn body_byte_for_byte<I: Inbox>(inbox: &I) {
    const RULE: &str = "body-byte-for-byte";
    // Spacing, escapes, key order and a trailing newline a re-serializer
    // would change.
    let raw = "{ \"id\" : \"e-\\u0031\",\"trigger\":\"FILE.UPLOADED\" ,\"type\":\"webhook_event\",\
               \"webhook\":{\"id\":\"4133\"},\"source\":{\"type\":\"file\",\"id\":\"5\",\
               \"name\":\"R\u{e9}sum\u{e9} \\ud83d\\ude00.pdf\"},\"additional_info\":[]}\n"
        .to_owned();
    let stored = ok(RULE, "store", inbox.store(record_of(raw.clone(), "d-1", 0))).await;
    expect(RULE, "the first store", stored, Stored::New);
    let Some(got) = ok(RULE, "get", inbox.get("e-1")).await else {
        violated(RULE, "`get(\"e-1\")` found nothing after a store");
    };
    expect(
        RULE,
        "the body `get` returns",
        &got.body[..],
        raw.as_bytes(),
    );
    let claimed = claim_some(inbox, RULE, "w-1", at(1), "claiming the stored event").await;
    expect(
        RULE,
        "the body `claim_next` returns",
        &claimed.body[..],
        raw.as_bytes(),
    );
}

async fn concurrent_stores<I: Inbox>(inbox: I) {
    const RULE: &str = "concurrent-stores";
    let inbox = Arc::new(inbox);
    let barrier = Arc::new(Barrier::new(DELIVERIES));
    let tasks: Vec<_> = (1..=DELIVERIES)
        .map(|n| {
            let (inbox, barrier) = (Arc::clone(&inbox), Arc::clone(&barrier));
            tokio::spawn(async move {
                let record = record("e-1", "FILE.UPLOADED", &format!("d-{n}"), 0);
                barrier.wait().await;
                inbox.store(record).await
            })
        })
        .collect();
    let mut new = 0_usize;
    let mut counts = BTreeSet::new();
    for task in tasks {
        match task.await {
            Ok(Ok(Stored::New)) => new = new.saturating_add(1),
            Ok(Ok(Stored::Duplicate { deliveries })) => {
                if !counts.insert(deliveries) {
                    violated(
                        RULE,
                        format!("two concurrent stores both answered Duplicate {{ deliveries: {deliveries} }}"),
                    );
                }
            }
            Ok(Err(error)) => violated(RULE, format!("`store` failed: {error}")),
            Err(error) => violated(RULE, format!("`store` panicked: {error}")),
        }
    }
    expect(
        RULE,
        &format!("New answers among {DELIVERIES} simultaneous stores of one event"),
        new,
        1,
    );
    expect(
        RULE,
        "the Duplicate answers' delivery counts",
        counts,
        (2..=DELIVERIES_COUNTED).collect(),
    );
    let listed = entries(&*inbox, RULE, ListFilter::new()).await;
    let counted: Vec<u64> = listed.iter().map(|e| e.deliveries).collect();
    expect(
        RULE,
        "the listed entries' deliveries",
        counted,
        vec![DELIVERIES_COUNTED],
    );
}

async fn claim_next<I: Inbox>(inbox: &I) {
    const RULE: &str = "claim-next";
    claim_none(inbox, RULE, "w-1", at(0), "claiming from an empty inbox").await;
    ok(
        RULE,
        "store",
        inbox.store(record("e-1", "FILE.UPLOADED", "d-1", 0)),
    )
    .await;
    ok(
        RULE,
        "store",
        inbox.store(record("e-2", "FILE.TRASHED", "d-2", 1)),
    )
    .await;
    let first = claim_some(inbox, RULE, "w-1", at(10), "the first claim").await;
    expect(
        RULE,
        "the event claimed first (the oldest)",
        first.entry.event_id.as_str(),
        "e-1",
    );
    expect(RULE, "the first claim's attempt", first.attempt(), 1);
    expect(
        RULE,
        "the first claim's state",
        first.entry.state,
        EntryState::Claimed,
    );
    expect(
        RULE,
        "the first claim's worker id",
        first.worker_id.as_str(),
        "w-1",
    );
    expect(
        RULE,
        "the first claim's lease end",
        first.lease_until,
        at(70),
    );
    expect(
        RULE,
        "the claimed entry's deliveries",
        first.entry.deliveries,
        1,
    );
    expect(
        RULE,
        "the state listed for a claimed event",
        state_of(inbox, RULE, "e-1").await,
        EntryState::Claimed,
    );
    let second = claim_some(inbox, RULE, "w-2", at(10), "the second claim").await;
    expect(
        RULE,
        "the event claimed second",
        second.entry.event_id.as_str(),
        "e-2",
    );
    expect(
        RULE,
        "the second claim's worker id",
        second.worker_id.as_str(),
        "w-2",
    );
}

async fn claimed_not_handed_out_twice<I: Inbox>(inbox: I) {
    const RULE: &str = "claimed-not-handed-out-twice";
    for i in 0..EVENTS {
        let id = format!("e-{i}");
        ok(
            RULE,
            "store",
            inbox.store(record(&id, "FILE.UPLOADED", "d-1", i as i64)),
        )
        .await;
    }
    let inbox = Arc::new(inbox);
    let barrier = Arc::new(Barrier::new(WORKERS));
    let tasks: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (inbox, barrier) = (Arc::clone(&inbox), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                inbox.claim_next(&format!("w-{w}"), LEASE, at(100)).await
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for task in tasks {
        match task.await {
            Ok(Ok(Some(c))) => claimed.push(c.entry.event_id),
            Ok(Ok(None)) => {}
            Ok(Err(error)) => violated(RULE, format!("`claim_next` failed: {error}")),
            Err(error) => violated(RULE, format!("`claim_next` panicked: {error}")),
        }
    }
    claimed.sort();
    let want: Vec<String> = {
        let mut ids: Vec<String> = (0..EVENTS).map(|i| format!("e-{i}")).collect();
        ids.sort();
        ids
    };
    expect(
        RULE,
        &format!("events claimed by {WORKERS} simultaneous workers from {EVENTS} pending (each exactly once)"),
        claimed,
        want,
    );
    claim_none(
        &*inbox,
        RULE,
        "w-late",
        at(159),
        "claiming while every event is leased",
    )
    .await;
}

async fn lease_expiry_reclaims<I: Inbox>(inbox: &I) {
    const RULE: &str = "lease-expiry-reclaims";
    ok(
        RULE,
        "store",
        inbox.store(record("e-1", "FILE.UPLOADED", "d-1", 0)),
    )
    .await;
    let crashed = claim_some(inbox, RULE, "w-1", at(0), "the first claim").await;
    claim_none(
        inbox,
        RULE,
        "w-2",
        at(59),
        "claiming 59 s into a 60 s lease",
    )
    .await;
    let retried = claim_some(inbox, RULE, "w-2", at(61), "claiming after the lease ended").await;
    expect(
        RULE,
        "the event claimed again",
        retried.entry.event_id.as_str(),
        "e-1",
    );
    expect(RULE, "the second claim's attempt", retried.attempt(), 2);
    expect(
        RULE,
        "the second claim's worker id",
        retried.worker_id.as_str(),
        "w-2",
    );
    match inbox.ack(&crashed).await {
        Err(error) if error.is_lease_lost() => {}
        other => violated(
            RULE,
            format!(
                "`ack` by the worker whose lease ended: expected a LeaseLost error, got {other:?}"
            ),
        ),
    }
    expect(
        RULE,
        "the state after the stale `ack`",
        state_of(inbox, RULE, "e-1").await,
        EntryState::Claimed,
    );
    ok(RULE, "ack", inbox.ack(&retried)).await;
}

async fn ack_is_final<I: Inbox>(inbox: &I) {
    const RULE: &str = "ack-is-final";
    ok(
        RULE,
        "store",
        inbox.store(record("e-1", "FILE.UPLOADED", "d-1", 0)),
    )
    .await;
    let claimed = claim_some(inbox, RULE, "w-1", at(0), "the first claim").await;
    ok(RULE, "ack", inbox.ack(&claimed)).await;
    expect(
        RULE,
        "the state after `ack`",
        state_of(inbox, RULE, "e-1").await,
        EntryState::Done,
    );
    claim_none(inbox, RULE, "w-2", at(1), "claiming after `ack`").await;
    claim_none(inbox, RULE, "w-2", at(100_000), "claiming long after `ack`").await;
    match inbox.ack(&claimed).await {
        Err(error) if error.is_lease_lost() => {}
        other => violated(
            RULE,
            format!("a second `ack`: expected a LeaseLost error, got {other:?}"),
        ),
    }
    match inbox.requeue(&claimed, at(2)).await {
        Err(error) if error.is_lease_lost() => {}
        other => violated(
            RULE,
            format!("`requeue` after `ack`: expected a LeaseLost error, got {other:?}"),
        ),
    }
    ok(
        RULE,
        "store",
        inbox.store(record("e-1", "FILE.UPLOADED", "d-2", 3)),
    )
    .await;
    expect(
        RULE,
        "the state after a duplicate delivery of a done event",
        state_of(inbox, RULE, "e-1").await,
        EntryState::Done,
    );
    claim_none(
        inbox,
        RULE,
        "w-2",
        at(4),
        "claiming after a duplicate delivery of a done event",
    )
    .await;
}

async fn requeue_respects_retry_at<I: Inbox>(inbox: &I) {
    const RULE: &str = "requeue-respects-retry-at";
    ok(
        RULE,
        "store",
        inbox.store(record("e-1", "FILE.UPLOADED", "d-1", 0)),
    )
    .await;
    let claimed = claim_some(inbox, RULE, "w-1", at(0), "the first claim").await;
    ok(RULE, "requeue", inbox.requeue(&claimed, at(30))).await;
    expect(
        RULE,
        "the state after `requeue`",
        state_of(inbox, RULE, "e-1").await,
        EntryState::Pending,
    );
    claim_none(
        inbox,
        RULE,
        "w-2",
        at(29),
        "claiming 1 s before the retry time",
    )
    .await;
    let retried = claim_some(inbox, RULE, "w-2", at(30), "claiming at the retry time").await;
    expect(RULE, "the retried claim's attempt", retried.attempt(), 2);
    ok(RULE, "requeue", inbox.requeue(&retried, at(30))).await;
    let again = claim_some(
        inbox,
        RULE,
        "w-3",
        at(30),
        "claiming after a requeue for now",
    )
    .await;
    expect(RULE, "the third claim's attempt", again.attempt(), 3);
}

async fn list_filters<I: Inbox>(inbox: &I) {
    const RULE: &str = "list-filters";
    expect(
        RULE,
        "entries in an empty inbox",
        entries(inbox, RULE, ListFilter::new()).await.len(),
        0,
    );
    for (i, (id, trigger)) in [
        ("e-1", "FILE.UPLOADED"),
        ("e-2", "FOLDER.CREATED"),
        ("e-3", "FILE.UPLOADED"),
        ("e-4", "FILE.UPLOADED.LATER"),
    ]
    .into_iter()
    .enumerate()
    {
        ok(
            RULE,
            "store",
            inbox.store(record(id, trigger, "d-1", i as i64)),
        )
        .await;
    }
    let ids = |listed: Vec<InboxEntry>| -> Vec<String> {
        listed.into_iter().map(|e| e.event_id).collect()
    };
    expect(
        RULE,
        "every entry, oldest first",
        ids(entries(inbox, RULE, ListFilter::new()).await),
        vec!["e-1".to_owned(), "e-2".into(), "e-3".into(), "e-4".into()],
    );
    expect(
        RULE,
        "entries with trigger FILE.UPLOADED (exactly)",
        ids(entries(inbox, RULE, ListFilter::new().trigger("FILE.UPLOADED")).await),
        vec!["e-1".to_owned(), "e-3".into()],
    );
    expect(
        RULE,
        "entries with an unknown trigger",
        ids(entries(inbox, RULE, ListFilter::new().trigger("FILE")).await),
        Vec::<String>::new(),
    );
    expect(
        RULE,
        "at most 2 entries",
        ids(entries(inbox, RULE, ListFilter::new().limit(2)).await),
        vec!["e-1".to_owned(), "e-2".into()],
    );
    expect(
        RULE,
        "at most 1 FILE.UPLOADED entry",
        ids(entries(
            inbox,
            RULE,
            ListFilter::new().trigger("FILE.UPLOADED").limit(1),
        )
        .await),
        vec!["e-1".to_owned()],
    );
    expect(
        RULE,
        "at most 0 entries",
        ids(entries(inbox, RULE, ListFilter::new().limit(0)).await),
        Vec::<String>::new(),
    );
}

async fn get<I: Inbox>(inbox: &I) {
    const RULE: &str = "get";
    expect(
        RULE,
        "`get` in an empty inbox",
        ok(RULE, "get", inbox.get("e-1")).await,
        None,
    );
    ok(
        RULE,
        "store",
        inbox.store(record("e-1", "FILE.UPLOADED", "d-1", 0)),
    )
    .await;
    ok(
        RULE,
        "store",
        inbox.store(record("e-2", "FOLDER.CREATED", "d-2", 1)),
    )
    .await;
    let Some(got) = ok(RULE, "get", inbox.get("e-2")).await else {
        violated(RULE, "`get(\"e-2\")` found nothing after a store");
    };
    expect(
        RULE,
        "the entry `get` returns",
        got.entry.event_id.as_str(),
        "e-2",
    );
    expect(
        RULE,
        "the trigger `get` returns",
        got.entry.trigger.as_str(),
        "FOLDER.CREATED",
    );
    expect(
        RULE,
        "the delivery id `get` returns",
        got.entry.delivery_id.as_deref(),
        Some("d-2"),
    );
    expect(
        RULE,
        "the body `get` returns",
        &got.body[..],
        body("e-2", "FOLDER.CREATED").as_bytes(),
    );
    expect(
        RULE,
        "`get` of an unknown id",
        ok(RULE, "get", inbox.get("e-3")).await,
        None,
    );
}

async fn kind_round_trips<I: Inbox>(inbox: &I) {
    const RULE: &str = "kind-round-trips";
    let v2 = record("e-1", "FILE.UPLOADED", "d-1", 0);
    let v1 = NewRecord {
        kind: RecordKind::V1,
        ..record("e-2", "uploaded", "d-2", 1)
    };
    ok(RULE, "store", inbox.store(v2)).await;
    ok(RULE, "store", inbox.store(v1)).await;
    let listed = entries(inbox, RULE, ListFilter::new()).await;
    expect(
        RULE,
        "the kinds `list` returns",
        listed.iter().map(|e| e.kind).collect::<Vec<_>>(),
        vec![RecordKind::V2, RecordKind::V1],
    );
    let Some(got) = ok(RULE, "get", inbox.get("e-2")).await else {
        violated(RULE, "`get(\"e-2\")` found nothing after a store");
    };
    expect(RULE, "the kind `get` returns", got.kind(), RecordKind::V1);
    let first = claim_some(inbox, RULE, "w-1", at(2), "claiming the V2 event").await;
    let second = claim_some(inbox, RULE, "w-1", at(2), "claiming the V1 event").await;
    expect(
        RULE,
        "the kinds `claim_next` returns",
        (first.entry.kind, second.entry.kind),
        (RecordKind::V2, RecordKind::V1),
    );
}
