//! The library's own log lines: every value a delivery carries is escaped,
//! so a forged event id cannot add a log line and no control sequence
//! reaches a terminal.

use crate::common;

use boxhook::idempotency::MemoryStore;
use boxhook::inbox::{Inbox, InboxError, NewRecord, Stored};
use boxhook::{DeliveryContext, HandlerError, Outcome, Router};
use boxhook_core::model::WebhookEvent;
use boxhook_core::Printable;
use boxhook_testkit::Delivery;
use common::stack;
use http::StatusCode;
use tower::ServiceExt as _;

const FORGED_ID: &str = "e1\n2026-11-30T00:00:00Z  INFO forged";
const FORGED_TRIGGER: &str = "FILE.\u{1b}]0;x\u{7}UPLOADED";

/// A body in Box's form with the given hostile fields.
fn body(id: &str, trigger: &str, source_id: &str) -> String {
    serde_json::json!({
        "type": "webhook_event",
        "id": id,
        "trigger": trigger,
        "webhook": {"id": "w\r\n1", "type": "webhook"},
        "source": {"id": source_id, "type": "file"},
        "additional_info": []
    })
    .to_string()
}

/// An inbox that stores nothing and says so, quoting the event id.
fn refusing() -> impl Inbox {
    common::StoreWith(|record: NewRecord| async move {
        Err::<Stored, _>(InboxError::new(
            boxhook::inbox::ErrorKind::Storage,
            format!("cannot store {}", record.event_id),
        ))
    })
}

#[tokio::test]
async fn untrusted_values_are_escaped_in_every_log_line() {
    let (captured, _guard) = common::capture_logs(tracing::Level::TRACE);

    // A handler whose error quotes the event id, as handlers' errors do.
    let failing = |event: WebhookEvent, _: DeliveryContext| async move {
        Err::<(), _>(HandlerError::new(format!(
            "no such item for {}",
            event.id()
        )))
    };
    let hostile = body(FORGED_ID, FORGED_TRIGGER, "5\u{1b}[2J");
    let session = body(FORGED_ID, "NO_ACTIVE_SESSION", "5\u{1b}[2J\u{202e}");
    let duplicate = format!(
        r#"{{"id":"1","trigger":"X","source":{{"{k}":1,"{k}":2}}}}"#,
        k = r"a\u001b]0;x\u0007"
    );
    // (router, body, delivery changes, status, outcome)
    let cases: Vec<(Router, String, Delivery, StatusCode, Option<Outcome>)> = vec![
        // No handler: "no handler for this trigger" with id and trigger.
        (
            Router::new(),
            hostile.clone(),
            Delivery::new(hostile.clone()),
            StatusCode::OK,
            Some(Outcome::Unhandled),
        ),
        // A failing handler: key, trigger and the error text.
        (
            Router::new().fallback(failing),
            hostile.clone(),
            Delivery::new(hostile.clone()),
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(Outcome::Failed),
        ),
        // An inbox that fails: its error quotes the id.
        (
            Router::new().store_in(refusing()),
            hostile.clone(),
            Delivery::new(hostile.clone()),
            StatusCode::SERVICE_UNAVAILABLE,
            Some(Outcome::InboxFailed),
        ),
        // The operator alert: webhook id, source type and id.
        (
            Router::new(),
            session.clone(),
            Delivery::new(session.clone()),
            StatusCode::OK,
            Some(Outcome::Unhandled),
        ),
        // A repeated key: the error names it.
        (
            Router::new(),
            duplicate.clone(),
            Delivery::new(duplicate.clone()),
            StatusCode::BAD_REQUEST,
            Some(Outcome::NotAnEvent),
        ),
        // A rejection: the delivery id header, with a C1 control.
        (
            Router::new(),
            hostile.clone(),
            Delivery::new(hostile.clone())
                .delivery_id("d-\u{9b}2J")
                .tampered(),
            StatusCode::UNAUTHORIZED,
            None,
        ),
    ];
    for (i, (router, _, delivery, status, outcome)) in cases.into_iter().enumerate() {
        let router = router.idempotency(MemoryStore::default());
        let response = stack(router)
            .oneshot(delivery.to_request())
            .await
            .expect("infallible");
        assert_eq!(response.status(), status, "case {i}");
        assert_eq!(
            response.extensions().get::<Outcome>().copied(),
            outcome,
            "case {i}"
        );
    }

    assert_escaped(&captured.text());
}

fn assert_escaped(logs: &str) {
    for line in logs.lines() {
        assert!(
            !line.chars().any(Printable::escapes),
            "raw control character in {line:?}"
        );
        assert!(
            !line.starts_with("2026-11-30T00:00:00Z"),
            "forged line: {line:?}"
        );
    }
    let lines = logs.lines().count();
    assert!(lines >= 6, "one line or more per case:\n{logs}");
    for escaped in [
        // event id and trigger (event_id= field, and inside the key)
        r"e1\n2026-11-30T00:00:00Z  INFO forged",
        r"trigger=FILE.\u{1b}]0;x\u{7}UPLOADED",
        r"event=w\r\n1/e1\n2026-11-30T00:00:00Z  INFO forged",
        // the handler's and the inbox's error text
        r"no such item for e1\n2026-11-30T00:00:00Z  INFO forged",
        r"cannot store e1\n2026-11-30T00:00:00Z  INFO forged",
        // the alert's source id and webhook id
        r"source_id=5\u{1b}[2J\u{202e}",
        r"webhook_id=w\r\n1",
        // the repeated key, quoted
        r#"duplicate key "a\u{1b}]0;x\u{7}" in an object"#,
        // the delivery id of a rejection
        r"delivery_id=d-\u{9b}2J",
    ] {
        assert!(logs.contains(escaped), "{escaped} missing from:\n{logs}");
    }
}
