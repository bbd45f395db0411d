//! Handler shapes: with or without the delivery context, returning any
//! error that converts into `HandlerError`, the dedicated `WEBHOOK.DELETED`
//! and `NO_ACTIVE_SESSION` inputs; each answered with the status its result
//! calls for.

use crate::common;

use std::sync::{Arc, Mutex};

use boxhook::{DeliveryContext, HandlerError, NoActiveSession, Outcome, Router, WebhookDeleted};
use boxhook_core::model::{Trigger, WebhookEvent};
use boxhook_testkit::Delivery;
use common::{event, stack};
use http::StatusCode;
use tower::ServiceExt as _;

#[derive(Debug)]
struct MyError;

impl std::fmt::Display for MyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("my error")
    }
}

impl std::error::Error for MyError {}

async fn io_error(_: WebhookEvent) -> Result<(), std::io::Error> {
    Err(std::io::Error::other("disk full"))
}

async fn own_error(_: WebhookEvent, _: DeliveryContext) -> Result<(), MyError> {
    Err(MyError)
}

async fn boxed_error(_: WebhookEvent) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Err("boxed".into())
}

async fn string_error(_: WebhookEvent) -> Result<(), String> {
    Err("a string".to_owned())
}

async fn retry(_: WebhookEvent) -> Result<(), HandlerError> {
    Err(HandlerError::retry_later("index rebuilding"))
}

async fn fine(_: WebhookEvent) -> Result<(), std::io::Error> {
    Ok(())
}

#[tokio::test]
async fn every_handler_shape_answers_by_its_result() {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let (deleted, session, uploaded) = (seen.clone(), seen.clone(), seen.clone());
    let router = Router::new()
        .on(Trigger::FileUploaded, move |event: WebhookEvent| {
            let seen = uploaded.clone();
            async move {
                seen.lock()
                    .expect("lock")
                    .push(format!("event-only {}", event.id()));
                Ok::<_, HandlerError>(())
            }
        })
        .on(Trigger::FileCopied, fine)
        .on(Trigger::FileTrashed, io_error)
        .on(Trigger::FileDeleted, own_error)
        .on(Trigger::FileRestored, boxed_error)
        .on(Trigger::FileMoved, string_error)
        .on(Trigger::FileLocked, retry)
        .on_webhook_deleted(move |input: WebhookDeleted| {
            let seen = deleted.clone();
            async move {
                let id = input.webhook_id().unwrap_or("-").to_owned();
                seen.lock().expect("lock").push(format!("deleted {id}"));
                Ok::<_, std::io::Error>(())
            }
        })
        .on_no_active_session(move |input: NoActiveSession, ctx: DeliveryContext| {
            let seen = session.clone();
            async move {
                let line = format!("session {:?} {}", input.source(), ctx.event_id());
                seen.lock().expect("lock").push(line);
                Ok::<_, HandlerError>(())
            }
        });
    let service = stack(router);

    // (trigger, status, outcome)
    let cases = [
        ("FILE.UPLOADED", StatusCode::OK, Outcome::Handled),
        ("FILE.COPIED", StatusCode::OK, Outcome::Handled),
        (
            "FILE.TRASHED",
            StatusCode::INTERNAL_SERVER_ERROR,
            Outcome::Failed,
        ),
        (
            "FILE.DELETED",
            StatusCode::INTERNAL_SERVER_ERROR,
            Outcome::Failed,
        ),
        (
            "FILE.RESTORED",
            StatusCode::INTERNAL_SERVER_ERROR,
            Outcome::Failed,
        ),
        (
            "FILE.MOVED",
            StatusCode::INTERNAL_SERVER_ERROR,
            Outcome::Failed,
        ),
        (
            "FILE.LOCKED",
            StatusCode::SERVICE_UNAVAILABLE,
            Outcome::RetryRequested,
        ),
        ("WEBHOOK.DELETED", StatusCode::OK, Outcome::Handled),
        ("NO_ACTIVE_SESSION", StatusCode::OK, Outcome::Handled),
    ];
    for (i, (trigger, status, outcome)) in cases.into_iter().enumerate() {
        let delivery = Delivery::new(event(&format!("e-{i}"), trigger));
        let response = service
            .clone()
            .oneshot(delivery.to_request())
            .await
            .expect("infallible");
        assert_eq!(response.status(), status, "{trigger}");
        assert_eq!(
            response.extensions().get::<Outcome>(),
            Some(&outcome),
            "{trigger}"
        );
    }
    assert_eq!(
        *seen.lock().expect("lock"),
        [
            "event-only e-0",
            "deleted 4133",
            r#"session Some(("file", "1234567890")) e-8"#,
        ]
    );
}

#[test]
#[should_panic(expected = "boxhook: WEBHOOK.DELETED has a handler already")]
fn a_dedicated_handler_and_an_exact_one_collide() {
    let _ = Router::new()
        .on(Trigger::WebhookDeleted, fine)
        .on_webhook_deleted(|_: WebhookDeleted| async { Ok::<_, HandlerError>(()) });
}

#[test]
#[should_panic(expected = "boxhook: NO_ACTIVE_SESSION has a handler already")]
fn two_dedicated_handlers_for_one_trigger_collide() {
    let _ = Router::new()
        .on_no_active_session(|_: NoActiveSession| async { Ok::<_, HandlerError>(()) })
        .on(Trigger::NoActiveSession, fine);
}
