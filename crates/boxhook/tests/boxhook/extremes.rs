//! Settings at their extremes never crash the receiver: every builder this
//! crate offers, given 0, 1 ns, `Duration::MAX`, `usize::MAX` (and budgets
//! of 0, 1 and `usize::MAX`), answers a signed delivery with a documented
//! outcome.
//!
//! The handler sleeps [`HANDLER_RUNS`] (10 ms); the body is about 400
//! bytes and already in memory when the layer reads it.
//!
//! | setting | value | status | outcome / rejection |
//! |---|---|---|---|
//! | `Router::handler_timeout` | 0, 1 ns | 503 | `timed_out` (the handler is cancelled) |
//! | `Router::handler_timeout` | `Duration::MAX` | 200 | `handled` (the deadline never fires) |
//! | `Router::claim_lease` | 0, 1 ns, `Duration::MAX` | 200 | `handled` (a lease only matters to a concurrent attempt) |
//! | `Router::handler_timeout` + default lease | `Duration::MAX` | 200 | `handled` (the lease saturates at `Duration::MAX`) |
//! | `VerifyLayer::body_limit` | 0, 1 | 413 | `payload_too_large` |
//! | `VerifyLayer::body_limit` | `usize::MAX` | 200 | `handled` |
//! | `VerifyLayer::read_timeout` | 0, 1 ns, `Duration::MAX` | 200 | `handled` (a body in memory is read on the first poll, before any deadline) |
//! | `VerifyLayer::body_budget` | 0, 1 | 503 | `overloaded` |
//! | `VerifyLayer::body_budget` | `usize::MAX` | 200 | `handled` |
//! | `Worker::lease` | 0 | - | `Released` (the handler is cancelled at once) |
//! | `Worker::lease` | `Duration::MAX` | - | `Acked` |
//! | `Worker::retry_delay` | `Duration::MAX` | - | `Released`, retry at `DateTime::<Utc>::MAX_UTC` |
//! | `Worker::poll_interval` | `Duration::MAX` | - | `run_until` still stops at shutdown |
//!
//! The property test draws every combination of these values and checks
//! the outcome the table predicts. The router is given a store that
//! records the lease it is handed; `MemoryStore` gets the same table in
//! `the_default_store_takes_extreme_leases`.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use boxhook::idempotency::{Claim, EventKey, IdempotencyStore, MemoryStore, StoreError};
use boxhook::inbox::{
    Claimed, EntryState, Inbox, InboxEntry, InboxError, ListFilter, NewRecord, Ran, Stored,
    StoredEvent, Worker,
};
use boxhook::verify::{BodyBudget, Rejection};
use boxhook::{HandlerError, Outcome, Router, VerifyLayer};
use boxhook_core::model::WebhookEvent;
use boxhook_core::{FixedClock, Verifier};
use boxhook_testkit::Delivery;
use chrono::{DateTime, Utc};
use http::StatusCode;
use proptest::prelude::*;
use tower::ServiceExt as _;
use tower_layer::Layer as _;

/// How long the test handler runs.
const HANDLER_RUNS: Duration = Duration::from_millis(10);

const DURATIONS: [Duration; 4] = [
    Duration::ZERO,
    Duration::from_nanos(1),
    Duration::from_secs(1),
    Duration::MAX,
];
const SIZES: [usize; 4] = [0, 1, 64 * 1024, usize::MAX];

/// One receiver's settings; `None` keeps the default.
#[derive(Debug, Clone, Copy)]
struct Settings {
    handler_timeout: Option<Duration>,
    claim_lease: Option<Duration>,
    body_limit: Option<usize>,
    read_timeout: Option<Duration>,
    body_budget: Option<usize>,
}

impl Settings {
    const DEFAULT: Self = Self {
        handler_timeout: None,
        claim_lease: None,
        body_limit: None,
        read_timeout: None,
        body_budget: None,
    };

    /// What the table says the answer is, for a body of `len` bytes.
    fn expected(self, len: usize) -> (StatusCode, &'static str) {
        if self.body_limit.is_some_and(|limit| len > limit) {
            (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
        } else if self.body_budget.is_some_and(|budget| len > budget) {
            (StatusCode::SERVICE_UNAVAILABLE, "overloaded")
        } else if self.handler_timeout.is_some_and(|t| t < HANDLER_RUNS) {
            (StatusCode::SERVICE_UNAVAILABLE, "timed_out")
        } else {
            (StatusCode::OK, "handled")
        }
    }
}

/// An idempotency store that records the lease it is handed and always
/// grants the claim.
#[derive(Default)]
struct Leases(Mutex<Vec<Duration>>);

impl IdempotencyStore for Leases {
    async fn claim(
        &self,
        _: &EventKey,
        _: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        self.0.lock().expect("lock").push(lease);
        Ok(Claim::Acquired)
    }
    async fn complete(&self, _: &EventKey, _: DateTime<Utc>) -> Result<(), StoreError> {
        Ok(())
    }
    async fn release(&self, _: &EventKey) -> Result<(), StoreError> {
        Ok(())
    }
}

fn router(settings: Settings) -> Router {
    let mut router = Router::new().fallback(|_: WebhookEvent| async {
        tokio::time::sleep(HANDLER_RUNS).await;
        Ok::<_, HandlerError>(())
    });
    if let Some(timeout) = settings.handler_timeout {
        router = router.handler_timeout(timeout);
    }
    if let Some(lease) = settings.claim_lease {
        router = router.claim_lease(lease);
    }
    router
}

fn layer(settings: Settings) -> VerifyLayer {
    let mut layer = VerifyLayer::new(Verifier::new(common::keys())).clock(common::clock());
    if let Some(limit) = settings.body_limit {
        layer = layer.body_limit(limit);
    }
    if let Some(timeout) = settings.read_timeout {
        layer = layer.read_timeout(timeout);
    }
    if let Some(budget) = settings.body_budget {
        layer = layer.body_budget(BodyBudget::new(budget));
    }
    layer
}

/// Sends one signed delivery through the stack; the status and the
/// outcome's or rejection's code.
async fn deliver(router: Router, settings: Settings) -> (StatusCode, &'static str) {
    let delivery = Delivery::new(common::event("e-1", "FILE.UPLOADED"));
    let response = layer(settings)
        .layer(router)
        .oneshot(delivery.to_request())
        .await
        .expect("infallible");
    let code = response
        .extensions()
        .get::<Outcome>()
        .map(|o| o.as_str())
        .or_else(|| {
            response
                .extensions()
                .get::<Rejection>()
                .map(Rejection::code)
        })
        .expect("an outcome or a rejection");
    (response.status(), code)
}

fn body_len() -> usize {
    common::event("e-1", "FILE.UPLOADED").len()
}

/// The table's rows, one setting at a time.
fn rows() -> Vec<(Settings, StatusCode, &'static str)> {
    let d = Settings::DEFAULT;
    let ok = (StatusCode::OK, "handled");
    let unavailable = |code| (StatusCode::SERVICE_UNAVAILABLE, code);
    let too_large = (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let mut rows = Vec::new();
    let mut row = |settings: Settings, (status, code): (StatusCode, &'static str)| {
        rows.push((settings, status, code));
    };
    for (timeout, want) in [
        (Duration::ZERO, unavailable("timed_out")),
        (Duration::from_nanos(1), unavailable("timed_out")),
        (Duration::MAX, ok),
    ] {
        row(
            Settings {
                handler_timeout: Some(timeout),
                ..d
            },
            want,
        );
    }
    for lease in [Duration::ZERO, Duration::from_nanos(1), Duration::MAX] {
        row(
            Settings {
                claim_lease: Some(lease),
                ..d
            },
            ok,
        );
    }
    for (limit, want) in [(0, too_large), (1, too_large), (usize::MAX, ok)] {
        row(
            Settings {
                body_limit: Some(limit),
                ..d
            },
            want,
        );
    }
    for timeout in [Duration::ZERO, Duration::from_nanos(1), Duration::MAX] {
        row(
            Settings {
                read_timeout: Some(timeout),
                ..d
            },
            ok,
        );
    }
    for (budget, want) in [
        (0, unavailable("overloaded")),
        (1, unavailable("overloaded")),
        (usize::MAX, ok),
    ] {
        row(
            Settings {
                body_budget: Some(budget),
                ..d
            },
            want,
        );
    }
    row(
        Settings {
            handler_timeout: Some(Duration::MAX),
            claim_lease: None,
            body_limit: Some(usize::MAX),
            read_timeout: Some(Duration::MAX),
            body_budget: Some(usize::MAX),
        },
        ok,
    );
    rows
}

// Paused time (it advances only when the runtime is idle, to the next
// timer): a 1 ns handler deadline always fires before the handler's 10 ms,
// even when a loaded machine stalls the thread past both.
#[tokio::test(start_paused = true)]
async fn each_extreme_setting_has_its_documented_outcome() {
    for (settings, status, code) in rows() {
        assert_eq!(
            settings.expected(body_len()),
            (status, code),
            "{settings:?}: the table and the predictor agree"
        );
        let leases = Arc::new(Leases::default());
        let router = router(settings).idempotency(Arc::clone(&leases));
        assert_eq!(
            deliver(router, settings).await,
            (status, code),
            "{settings:?}"
        );
        let handed = leases.0.lock().expect("lock").clone();
        if status == StatusCode::OK {
            let want = settings.claim_lease.unwrap_or_else(|| {
                settings
                    .handler_timeout
                    .unwrap_or(boxhook::DEFAULT_HANDLER_TIMEOUT)
                    .saturating_add(Duration::from_secs(5))
            });
            assert_eq!(
                handed,
                [want],
                "{settings:?}: the lease the store is handed"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_default_store_takes_extreme_leases() {
    for (settings, status, code) in rows() {
        let router = router(settings).idempotency(MemoryStore::default());
        assert_eq!(
            deliver(router, settings).await,
            (status, code),
            "{settings:?}"
        );
    }
}

fn duration() -> impl Strategy<Value = Option<Duration>> {
    proptest::option::of(proptest::sample::select(DURATIONS.to_vec()))
}

fn size() -> impl Strategy<Value = Option<usize>> {
    proptest::option::of(proptest::sample::select(SIZES.to_vec()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_combination_answers_as_the_table_says(
        handler_timeout in duration(),
        claim_lease in duration(),
        body_limit in size(),
        read_timeout in duration(),
        body_budget in size(),
    ) {
        let settings = Settings { handler_timeout, claim_lease, body_limit, read_timeout, body_budget };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().expect("runtime");
        let router = router(settings).idempotency(Leases::default());
        let got = runtime.block_on(deliver(router, settings));
        prop_assert_eq!(got, settings.expected(body_len()));
    }
}

/// An inbox holding one event, recording how it was settled.
#[derive(Default)]
struct OneEvent {
    event: Mutex<Option<NewRecord>>,
    settled: Mutex<Vec<Option<DateTime<Utc>>>>,
}

impl OneEvent {
    fn holding() -> Arc<Self> {
        let inbox = Self::default();
        *inbox.event.lock().expect("lock") = Some(
            NewRecord::parse(
                common::event("e-1", "FILE.UPLOADED").into_bytes(),
                None,
                common::now(),
            )
            .expect("a webhook_event"),
        );
        Arc::new(inbox)
    }
}

impl Inbox for OneEvent {
    async fn store(&self, _: NewRecord) -> Result<Stored, InboxError> {
        Ok(Stored::New)
    }
    async fn claim_next(
        &self,
        worker: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Claimed>, InboxError> {
        // The lease's end as the real inboxes count it, saturating at the
        // end of time.
        let lease_until = chrono::TimeDelta::from_std(lease)
            .ok()
            .and_then(|lease| now.checked_add_signed(lease))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        Ok(self
            .event
            .lock()
            .expect("lock")
            .take()
            .map(|record| Claimed {
                entry: InboxEntry::new(&record, 1, 1, EntryState::Claimed),
                body: record.body.clone(),
                worker_id: worker.to_owned(),
                lease_until,
            }))
    }
    async fn ack(&self, _: &Claimed) -> Result<(), InboxError> {
        self.settled.lock().expect("lock").push(None);
        Ok(())
    }
    async fn requeue(&self, _: &Claimed, retry_at: DateTime<Utc>) -> Result<(), InboxError> {
        self.settled.lock().expect("lock").push(Some(retry_at));
        Ok(())
    }
    async fn list(&self, _: ListFilter) -> Result<Vec<InboxEntry>, InboxError> {
        Ok(Vec::new())
    }
    async fn get(&self, _: &str) -> Result<Option<StoredEvent>, InboxError> {
        Ok(None)
    }

    async fn counts(&self) -> Result<boxhook::inbox::Counts, InboxError> {
        Ok(boxhook::inbox::Counts::default())
    }
}

// Paused time: on a busy machine a real-time runtime may wake only after
// both the lease's timer and the handler's sleep are due, and then the
// handler is polled first and finishes (seen under load). Paused, the
// clock jumps to each timer in turn, so a zero lease ends first.
#[tokio::test(start_paused = true)]
async fn the_worker_takes_extreme_settings() {
    let end = DateTime::<Utc>::MAX_UTC;
    // (lease, retry_delay, handler fails, ran, settled with)
    let cases = [
        (
            Duration::ZERO,
            Duration::ZERO,
            false,
            Ran::Released,
            Some(common::now()),
        ),
        (
            Duration::from_nanos(1),
            Duration::from_nanos(1),
            false,
            Ran::Released,
            Some(common::now() + chrono::TimeDelta::nanoseconds(1)),
        ),
        (Duration::MAX, Duration::MAX, false, Ran::Acked, None),
        (Duration::MAX, Duration::MAX, true, Ran::Released, Some(end)),
        (
            Duration::MAX,
            Duration::from_secs(1),
            true,
            Ran::Released,
            Some(common::now() + chrono::TimeDelta::seconds(1)),
        ),
    ];
    for (lease, retry_delay, fails, ran, settled) in cases {
        let inbox = OneEvent::holding();
        let worker = Worker::new(
            Arc::clone(&inbox),
            move |_: WebhookEvent, _: Claimed| async move {
                tokio::time::sleep(HANDLER_RUNS).await;
                if fails {
                    Err(HandlerError::new("failed"))
                } else {
                    Ok(())
                }
            },
        )
        .lease(lease)
        .retry_delay(retry_delay)
        .poll_interval(Duration::MAX)
        .clock(FixedClock::at(common::now()));
        let case = format!("lease {lease:?}, retry {retry_delay:?}, fails {fails}");
        assert_eq!(worker.run_once().await.expect("inbox"), ran, "{case}");
        assert_eq!(*inbox.settled.lock().expect("lock"), [settled], "{case}");
        // Nothing left: with a poll interval of Duration::MAX, run_until
        // waits "forever", and still stops when shutdown completes.
        let stop = tokio::time::sleep(Duration::from_millis(20));
        tokio::time::timeout(Duration::from_secs(5), worker.run_until(stop))
            .await
            .expect("run_until stops at shutdown");
    }
}
