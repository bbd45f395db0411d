//! One clock for the whole receiver: the time set with `VerifyLayer::clock`
//! is the time the router claims, settles and stores with, and the time
//! handlers see, with nothing else to set.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use boxhook::idempotency::{Claim, EventKey, IdempotencyStore, StoreError};
use boxhook::inbox::{
    Claimed, Inbox, InboxEntry, InboxError, ListFilter, NewRecord, StoreInInbox, Stored,
    StoredEvent,
};
use boxhook::{DeliveryContext, Outcome, Router, VerifyLayer};
use boxhook_core::model::{Trigger, WebhookEvent};
use boxhook_core::{FixedClock, Verifier};
use boxhook_testkit::Delivery;
use chrono::{DateTime, Utc};
use common::event;
use tower::ServiceExt as _;
use tower_layer::Layer as _;

/// Records the time of every call the router makes.
#[derive(Default)]
struct Times(Mutex<Vec<(&'static str, DateTime<Utc>)>>);

impl Times {
    fn push(&self, what: &'static str, at: DateTime<Utc>) {
        self.0.lock().expect("lock").push((what, at));
    }
    fn take(&self) -> Vec<(&'static str, DateTime<Utc>)> {
        std::mem::take(&mut *self.0.lock().expect("lock"))
    }
}

impl IdempotencyStore for Times {
    async fn claim(
        &self,
        _key: &EventKey,
        now: DateTime<Utc>,
        _lease: Duration,
    ) -> Result<Claim, StoreError> {
        self.push("claim", now);
        Ok(Claim::Acquired)
    }
    async fn complete(&self, _key: &EventKey, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.push("complete", now);
        Ok(())
    }
    async fn release(&self, _key: &EventKey) -> Result<(), StoreError> {
        Ok(())
    }
}

impl Inbox for Times {
    async fn store(&self, record: NewRecord) -> Result<Stored, InboxError> {
        self.push("received_at", record.received_at);
        Ok(Stored::New)
    }
    async fn claim_next(
        &self,
        _: &str,
        _: Duration,
        _: DateTime<Utc>,
    ) -> Result<Option<Claimed>, InboxError> {
        Ok(None)
    }
    async fn ack(&self, _: &Claimed) -> Result<(), InboxError> {
        Ok(())
    }
    async fn requeue(&self, _: &Claimed, _: DateTime<Utc>) -> Result<(), InboxError> {
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

#[tokio::test]
async fn the_layer_clock_times_the_whole_stack() {
    // Far from both the delivery's timestamp and the system clock: a
    // component reading any other clock would record another instant.
    let delivery = Delivery::new(event("e-1", "FILE.UPLOADED"));
    let at = delivery.now() + chrono::TimeDelta::seconds(42);
    let times = Arc::new(Times::default());
    let inbox = Arc::new(Times::default());
    let seen = Arc::clone(&times);
    let router = Router::new()
        .idempotency(Arc::clone(&times))
        .on(
            Trigger::FileUploaded,
            move |_: WebhookEvent, ctx: DeliveryContext| {
                let seen = Arc::clone(&seen);
                async move {
                    seen.push("handler", ctx.now());
                    Ok::<_, boxhook::HandlerError>(())
                }
            },
        )
        .on(Trigger::FileDeleted, StoreInInbox::new(Arc::clone(&inbox)))
        .store_in(Arc::clone(&inbox));
    let service = VerifyLayer::new(Verifier::new(common::keys()))
        .clock(FixedClock::at(at))
        .layer(router);

    let cases = [
        (
            "FILE.UPLOADED",
            &times,
            vec!["claim", "handler", "complete"],
        ),
        ("FILE.DELETED", &inbox, vec!["received_at"]),
        ("FOLDER.CREATED", &inbox, vec!["received_at"]),
    ];
    for (trigger, recorder, calls) in cases {
        let delivery = Delivery::new(event("e-1", trigger));
        let response = service
            .clone()
            .oneshot(delivery.to_request())
            .await
            .expect("infallible");
        assert_eq!(
            response.extensions().get::<Outcome>(),
            Some(&Outcome::Handled),
            "{trigger}"
        );
        let recorded = recorder.take();
        let expected: Vec<_> = calls.into_iter().map(|what| (what, at)).collect();
        assert_eq!(recorded, expected, "{trigger}");
    }
    // The claim for FILE.DELETED went to the idempotency store, on the same clock.
    assert_eq!(times.take(), [("claim", at), ("complete", at)]);
}
