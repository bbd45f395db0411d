//! `Router::store_in`: the inbox's own answer is the outcome, with no
//! idempotency claim, so concurrent deliveries of one event are labelled
//! truly (one `handled`, the rest `duplicate`) and counted once each.

use crate::common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use boxhook::idempotency::{Claim, EventKey, IdempotencyStore, StoreError};
use boxhook::inbox::{
    Claimed, EntryState, ErrorKind, Inbox, InboxEntry, InboxError, ListFilter, NewRecord, Stored,
    StoredEvent,
};
use boxhook::{DeliveryContext, NoActiveSession, Outcome, Router, WebhookDeleted};
use boxhook_core::model::{Trigger, WebhookEvent};
use boxhook_testkit::Delivery;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use common::{event, stack, StoreWith};
use http::{Response, StatusCode};
use http_body_util::Full;
use tower::ServiceExt as _;

/// A concurrent in-memory inbox: atomic per key under one lock, with a yield
/// before it so concurrent stores really interleave.
#[derive(Default)]
struct MemInbox {
    events: Mutex<HashMap<(String, String), (NewRecord, u64)>>,
    order: Mutex<Vec<(String, String)>>,
}

impl MemInbox {
    fn snapshot(&self) -> Vec<(NewRecord, u64)> {
        let events = self.events.lock().expect("lock");
        self.order
            .lock()
            .expect("lock")
            .iter()
            .map(|k| events[k].clone())
            .collect()
    }
}

impl Inbox for MemInbox {
    async fn store(&self, record: NewRecord) -> Result<Stored, InboxError> {
        tokio::task::yield_now().await;
        let key = (record.webhook_id.clone(), record.event_id.clone());
        let mut events = self.events.lock().expect("lock");
        if let Some((_, deliveries)) = events.get_mut(&key) {
            *deliveries += 1;
            return Ok(Stored::Duplicate {
                deliveries: *deliveries,
            });
        }
        events.insert(key.clone(), (record, 1));
        self.order.lock().expect("lock").push(key);
        Ok(Stored::New)
    }

    async fn claim_next(
        &self,
        _worker_id: &str,
        _lease: Duration,
        _now: DateTime<Utc>,
    ) -> Result<Option<Claimed>, InboxError> {
        Err(InboxError::new(
            ErrorKind::Closed,
            "this test inbox only stores",
        ))
    }

    async fn ack(&self, _claimed: &Claimed) -> Result<(), InboxError> {
        Err(InboxError::new(
            ErrorKind::LeaseLost,
            "nothing is ever claimed",
        ))
    }

    async fn requeue(&self, _claimed: &Claimed, _at: DateTime<Utc>) -> Result<(), InboxError> {
        Err(InboxError::new(
            ErrorKind::LeaseLost,
            "nothing is ever claimed",
        ))
    }

    async fn list(&self, _filter: ListFilter) -> Result<Vec<InboxEntry>, InboxError> {
        Ok(self
            .snapshot()
            .iter()
            .map(|(r, n)| InboxEntry::new(r, *n, 0, EntryState::Pending))
            .collect())
    }

    async fn get(&self, event_id: &str) -> Result<Option<StoredEvent>, InboxError> {
        Ok(self
            .snapshot()
            .into_iter()
            .find(|(r, _)| r.event_id == event_id)
            .map(|(r, n)| StoredEvent {
                entry: InboxEntry::new(&r, n, 0, EntryState::Pending),
                body: r.body,
            }))
    }

    async fn counts(&self) -> Result<boxhook::inbox::Counts, InboxError> {
        Ok(boxhook::inbox::Counts {
            pending: self.snapshot().len() as u64,
            ..boxhook::inbox::Counts::default()
        })
    }
}

/// An idempotency store that counts every call: `store_in` must make none.
#[derive(Default)]
struct CountingStore(AtomicUsize);

impl IdempotencyStore for CountingStore {
    async fn claim(
        &self,
        _key: &EventKey,
        _now: DateTime<Utc>,
        _lease: Duration,
    ) -> Result<Claim, StoreError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(Claim::Acquired)
    }
    async fn complete(&self, _key: &EventKey, _now: DateTime<Utc>) -> Result<(), StoreError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn release(&self, _key: &EventKey) -> Result<(), StoreError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

async fn call(router: Router, delivery: &Delivery) -> Response<Full<Bytes>> {
    stack(router)
        .oneshot(delivery.to_request())
        .await
        .expect("infallible")
}

fn outcome(response: &Response<Full<Bytes>>) -> Outcome {
    *response.extensions().get::<Outcome>().expect("an outcome")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_of_one_event_are_one_handled_and_the_rest_duplicates() {
    const N: usize = 50;
    let inbox = Arc::new(MemInbox::default());
    let claims = Arc::new(CountingStore::default());
    let service = stack(
        Router::new()
            .idempotency(Arc::clone(&claims))
            .store_in(Arc::clone(&inbox)),
    );
    let body = event("e-concurrent", "FILE.UPLOADED");
    let barrier = Arc::new(tokio::sync::Barrier::new(N));
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let service = service.clone();
            let request = Delivery::new(body.clone())
                .delivery_id(format!("d-{i}"))
                .to_request();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                service.oneshot(request).await.expect("infallible")
            })
        })
        .collect();
    let mut counts: HashMap<Outcome, usize> = HashMap::new();
    for task in tasks {
        let response = task.await.expect("no panic");
        assert_eq!(response.status(), StatusCode::OK);
        *counts.entry(outcome(&response)).or_default() += 1;
    }
    assert_eq!(
        counts,
        HashMap::from([(Outcome::Handled, 1), (Outcome::Duplicate, N - 1)])
    );
    let stored = inbox.snapshot();
    assert_eq!(stored.len(), 1, "the event is stored once");
    assert_eq!(stored[0].0.event_id, "e-concurrent");
    assert_eq!(stored[0].1, N as u64, "every delivery is counted");
    assert_eq!(claims.0.load(Ordering::SeqCst), 0, "no idempotency claim");
}

#[tokio::test]
async fn the_router_builds_the_record_with_its_clock() {
    let inbox = Arc::new(MemInbox::default());
    let router = Router::new().store_in(Arc::clone(&inbox));
    let delivery = Delivery::new(event("e-1", "FILE.UPLOADED")).delivery_id("d-7");
    let response = call(router.clone(), &delivery).await;
    assert_eq!(
        (response.status(), outcome(&response)),
        (StatusCode::OK, Outcome::Handled)
    );

    let stored = inbox.snapshot();
    let (record, deliveries) = &stored[0];
    assert_eq!(
        record,
        &NewRecord {
            webhook_id: "4133".into(),
            event_id: "e-1".into(),
            trigger: "FILE.UPLOADED".into(),
            source_type: Some("file".into()),
            source_id: Some("1234567890".into()),
            delivery_id: Some("d-7".into()),
            received_at: common::now(),
            body: delivery.body(),
            kind: boxhook::inbox::RecordKind::V2,
        }
    );
    assert_eq!(*deliveries, 1);

    // A later retry: a duplicate, counted.
    let retry = call(router, &delivery.clone().delivery_id("d-8")).await;
    assert_eq!(
        (retry.status(), outcome(&retry)),
        (StatusCode::OK, Outcome::Duplicate)
    );
    assert_eq!(inbox.snapshot()[0].1, 2);
}

#[tokio::test]
async fn store_in_takes_what_no_handler_takes() {
    let handled: Arc<Mutex<Vec<String>>> = Arc::default();
    let exact = {
        let handled = Arc::clone(&handled);
        move |event: WebhookEvent, _: DeliveryContext| {
            let handled = Arc::clone(&handled);
            async move {
                handled.lock().expect("lock").push(event.id().to_owned());
                Ok::<_, boxhook::HandlerError>(())
            }
        }
    };
    let deleted = {
        let handled = Arc::clone(&handled);
        move |input: WebhookDeleted, _: DeliveryContext| {
            let handled = Arc::clone(&handled);
            async move {
                handled
                    .lock()
                    .expect("lock")
                    .push(input.event().id().to_owned());
                Ok::<_, boxhook::HandlerError>(())
            }
        }
    };
    let inbox = Arc::new(MemInbox::default());
    let with_dedicated = Router::new()
        .on(Trigger::FileDeleted, exact.clone())
        .on_webhook_deleted(deleted)
        .store_in(Arc::clone(&inbox));
    let without_dedicated = Router::new()
        .on(Trigger::FileDeleted, exact)
        .store_in(Arc::clone(&inbox));
    // (router, event id, trigger, stored in the inbox?)
    let cases = [
        (&with_dedicated, "a1", "FILE.DELETED", false),
        (&with_dedicated, "a2", "FILE.UPLOADED", true),
        (&with_dedicated, "a3", "WEBHOOK.DELETED", false),
        (&with_dedicated, "a4", "NO_ACTIVE_SESSION", true),
        (&with_dedicated, "a5", "SOMETHING.NEW", true),
        (&without_dedicated, "b1", "WEBHOOK.DELETED", true),
        (&without_dedicated, "b2", "NO_ACTIVE_SESSION", true),
    ];
    for (router, id, trigger, _) in cases {
        let response = call(router.clone(), &Delivery::new(event(id, trigger))).await;
        assert_eq!(
            (response.status(), outcome(&response)),
            (StatusCode::OK, Outcome::Handled),
            "{id} {trigger}"
        );
    }
    let stored: Vec<String> = inbox
        .snapshot()
        .into_iter()
        .map(|(r, _)| format!("{}:{}", r.event_id, r.trigger))
        .collect();
    let want: Vec<String> = cases
        .iter()
        .filter(|c| c.3)
        .map(|(_, id, trigger, _)| format!("{id}:{trigger}"))
        .collect();
    assert_eq!(stored, want);
    assert_eq!(*handled.lock().expect("lock"), ["a1", "a3"]);
}

/// An inbox that fails, panics or hangs, by event id.
/// An inbox that fails, panics or never answers, by event id.
fn bad_inbox() -> impl Inbox {
    StoreWith(|record: NewRecord| async move {
        match record.event_id.as_str() {
            "fail" => Err(InboxError::new(ErrorKind::Storage, "database is locked")),
            "panic" => panic!("inbox bug"),
            _ => std::future::pending().await,
        }
    })
}

#[tokio::test]
async fn an_inbox_that_cannot_store_makes_box_retry() {
    let router = Router::new()
        .handler_timeout(Duration::from_millis(50))
        .store_in(bad_inbox());
    let cases = [
        (
            "fail",
            Outcome::InboxFailed,
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        (
            "panic",
            Outcome::Panicked,
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        ("hang", Outcome::TimedOut, StatusCode::SERVICE_UNAVAILABLE),
    ];
    for (id, want, status) in cases {
        let response = call(router.clone(), &Delivery::new(event(id, "FILE.UPLOADED"))).await;
        assert_eq!(
            (response.status(), outcome(&response)),
            (status, want),
            "{id}"
        );
    }
    assert_eq!(Outcome::InboxFailed.as_str(), "inbox_failed");
}

#[test]
#[should_panic(expected = "either a fallback or store_in, not both")]
fn store_in_after_fallback_is_a_setup_error() {
    let _ = Router::new()
        .fallback(|_: WebhookEvent, _: DeliveryContext| async {
            Ok::<_, boxhook::HandlerError>(())
        })
        .store_in(MemInbox::default());
}

#[test]
#[should_panic(expected = "either a fallback or store_in, not both")]
fn fallback_after_store_in_is_a_setup_error() {
    let _ = Router::new().store_in(MemInbox::default()).fallback(
        |_: WebhookEvent, _: DeliveryContext| async { Ok::<_, boxhook::HandlerError>(()) },
    );
}

#[test]
#[should_panic(expected = "store_in is set already")]
fn store_in_twice_is_a_setup_error() {
    let _ = Router::new()
        .store_in(MemInbox::default())
        .store_in(MemInbox::default());
}

#[tokio::test]
async fn no_active_session_with_a_dedicated_handler_is_not_stored() {
    let inbox = Arc::new(MemInbox::default());
    let router = Router::new()
        .on_no_active_session(|_: NoActiveSession, _: DeliveryContext| async {
            Ok::<_, boxhook::HandlerError>(())
        })
        .store_in(Arc::clone(&inbox));
    let response = call(router, &Delivery::new(event("n1", "NO_ACTIVE_SESSION"))).await;
    assert_eq!(outcome(&response), Outcome::Handled);
    assert!(inbox.snapshot().is_empty());
}
