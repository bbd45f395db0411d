//! The stack in-process (tower `oneshot`): the typed values behind each status.

use crate::common;

use std::sync::{Arc, Mutex};

use boxhook::verify::Rejection;
use boxhook::{
    DeliveryContext, HandlerError, NoActiveSession, Outcome, Router, VerifyLayer, WebhookDeleted,
};
use boxhook_core::model::{DeletionReason, Trigger, TriggerFamily, WebhookEvent};
use boxhook_core::{BodyForm, KeySlot, Verified, Verifier};
use boxhook_testkit::{BoxHeader, Delivery};
use bytes::Bytes;
use common::{event, stack};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::ServiceExt as _;
use tower_layer::Layer as _;

async fn call(router: Router, delivery: &Delivery) -> Response<Full<Bytes>> {
    stack(router)
        .oneshot(delivery.to_request())
        .await
        .expect("infallible")
}

#[tokio::test]
async fn rejections_carry_their_reason() {
    let cases = [
        (
            Delivery::new(event("a", "FILE.UPLOADED")).tampered(),
            "mismatch",
        ),
        (
            Delivery::new(event("a", "FILE.UPLOADED")).stale(),
            "expired",
        ),
        (
            Delivery::new(event("a", "FILE.UPLOADED")).future(),
            "future",
        ),
        (
            Delivery::new(event("a", "FILE.UPLOADED")).without_header(BoxHeader::SignatureVersion),
            "missing_header",
        ),
        (
            Delivery::new(event("a", "FILE.UPLOADED"))
                .duplicate_header(BoxHeader::SignaturePrimary, "AAAA"),
            "invalid_header",
        ),
    ];
    for (delivery, code) in cases {
        let response = call(Router::new(), &delivery).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{code}");
        let rejection = response
            .extensions()
            .get::<Rejection>()
            .expect("rejection in extensions");
        assert_eq!(rejection.code(), code);
        assert!(
            response.extensions().get::<Outcome>().is_none(),
            "the router never ran"
        );
    }
}

#[tokio::test]
async fn the_layer_fronts_any_service() {
    let seen: Arc<Mutex<Option<(Verified, Bytes)>>> = Arc::default();
    let sink = seen.clone();
    let inner = tower::service_fn(move |request: Request<Full<Bytes>>| {
        let sink = sink.clone();
        async move {
            let verified = request
                .extensions()
                .get::<Verified>()
                .cloned()
                .expect("proof");
            let body = http_body_util::BodyExt::collect(request.into_body())
                .await
                .expect("body")
                .to_bytes();
            *sink.lock().expect("lock") = Some((verified, body));
            Ok::<_, std::convert::Infallible>(Response::new(Full::<Bytes>::default()))
        }
    });
    let service = VerifyLayer::new(Verifier::new(common::keys()))
        .clock(common::clock())
        .layer(inner);
    let delivery = Delivery::new(event("x", "FILE.UPLOADED")).delivery_id("d-42");
    let response = service
        .oneshot(delivery.to_request())
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let (verified, body) = seen
        .lock()
        .expect("lock")
        .take()
        .expect("inner service ran");
    assert_eq!(verified.delivery_id(), Some("d-42"));
    assert_eq!(verified.key_slot(), KeySlot::Primary);
    assert_eq!(verified.body_form(), BodyForm::Raw);
    assert_eq!(body, delivery.body());
}

#[tokio::test]
async fn routing_precedence() {
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = |tag: &'static str| {
        let log = log.clone();
        move |event: WebhookEvent, _: DeliveryContext| {
            let log = log.clone();
            async move {
                log.lock()
                    .expect("lock")
                    .push(format!("{tag}:{}", event.trigger()));
                Ok::<_, HandlerError>(())
            }
        }
    };
    let router = Router::new()
        .on(Trigger::FileUploaded, record("exact"))
        .on_family(TriggerFamily::File, record("family"))
        .fallback(record("fallback"));
    for (i, trigger) in [
        "FILE.UPLOADED",
        "FILE.TRASHED",
        "FOLDER.CREATED",
        "SOMETHING.NEW",
    ]
    .iter()
    .enumerate()
    {
        let response = call(
            router.clone(),
            &Delivery::new(event(&format!("e{i}"), trigger)),
        )
        .await;
        assert_eq!(
            response.extensions().get::<Outcome>(),
            Some(&Outcome::Handled)
        );
    }
    assert_eq!(
        *log.lock().expect("lock"),
        [
            "exact:FILE.UPLOADED",
            "family:FILE.TRASHED",
            "fallback:FOLDER.CREATED",
            "fallback:SOMETHING.NEW"
        ]
    );
}

#[tokio::test]
async fn webhook_deleted_gets_its_typed_reason() {
    let reasons: Arc<Mutex<Vec<Option<DeletionReason>>>> = Arc::default();
    let sink = reasons.clone();
    let router =
        Router::new().on_webhook_deleted(move |deleted: WebhookDeleted, _: DeliveryContext| {
            let sink = sink.clone();
            async move {
                assert_eq!(deleted.webhook_id(), Some("4133"));
                sink.lock().expect("lock").push(deleted.reason().cloned());
                Ok::<_, HandlerError>(())
            }
        });
    for (id, info) in [
        ("d1", r#"{"reason":"auto_cleanup"}"#),
        ("d2", r#"{"reason":"app_deleted"}"#),
        ("d3", "[]"),
    ] {
        let body = event(id, "WEBHOOK.DELETED").replace(
            r#""additional_info":[]"#,
            &format!(r#""additional_info":{info}"#),
        );
        let response = call(router.clone(), &Delivery::new(body)).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(
        *reasons.lock().expect("lock"),
        [
            Some(DeletionReason::AutoCleanup),
            Some(DeletionReason::Other("app_deleted".into())),
            None
        ]
    );
}

#[tokio::test]
async fn no_active_session_reaches_its_handler() {
    let alerts: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let sink = alerts.clone();
    let router =
        Router::new().on_no_active_session(move |alert: NoActiveSession, _: DeliveryContext| {
            let sink = sink.clone();
            async move {
                let (kind, id) = alert.source().expect("source");
                sink.lock()
                    .expect("lock")
                    .push((kind.to_owned(), id.to_owned()));
                Ok::<_, HandlerError>(())
            }
        });
    let body = r#"{"type":"webhook_event","id":"n1","created_at":"2019-12-31T23:59:58-07:00","trigger":"NO_ACTIVE_SESSION","webhook":{"id":"4133","type":"webhook"},"source":{"id":"987","type":"file"},"additional_info":[]}"#;
    let response = call(router, &Delivery::new(body)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        *alerts.lock().expect("lock"),
        [("file".to_owned(), "987".to_owned())]
    );
}

#[tokio::test]
async fn dedupe_keys_on_webhook_and_event_not_delivery() {
    let count = common::Count::default();
    let handled = count.clone();
    let router = Router::new().fallback(move |_: WebhookEvent, _: DeliveryContext| {
        let handled = handled.clone();
        async move {
            handled.bump();
            Ok::<_, HandlerError>(())
        }
    });
    let a = event("same", "FILE.UPLOADED");
    let other_webhook = a.replace(r#""webhook":{"id":"4133""#, r#""webhook":{"id":"9999""#);
    let outcomes = [
        call(router.clone(), &Delivery::new(a.clone()).delivery_id("1")).await,
        call(router.clone(), &Delivery::new(a).delivery_id("2")).await,
        call(router, &Delivery::new(other_webhook).delivery_id("3")).await,
    ]
    .map(|r| *r.extensions().get::<Outcome>().expect("outcome"));
    assert_eq!(
        outcomes,
        [Outcome::Handled, Outcome::Duplicate, Outcome::Handled]
    );
    assert_eq!(count.get(), 2);
}

#[tokio::test]
async fn router_without_the_layer_is_a_setup_error() {
    let response = Router::new()
        .oneshot(Request::new(Full::new(Bytes::from(event(
            "x",
            "FILE.UPLOADED",
        )))))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        response.extensions().get::<Outcome>(),
        Some(&Outcome::Unverified)
    );
}

#[tokio::test]
async fn a_body_repeating_a_key_is_not_an_event() {
    let ran = Arc::new(Mutex::new(0usize));
    let count = ran.clone();
    let router = Router::new().fallback(move |_: WebhookEvent, _: DeliveryContext| {
        let count = count.clone();
        async move {
            *count.lock().expect("lock") += 1;
            Ok::<_, HandlerError>(())
        }
    });
    let bodies = [
        r#"{"type":"webhook_event","id":"e1","trigger":"FILE.UPLOADED","id":"e2"}"#,
        r#"{"type":"webhook_event","id":"e1","trigger":"FILE.UPLOADED","source":{"id":"5","type":"file","id":"6"}}"#,
        r#"{"type":"webhook_event","id":"e1","trigger":"FILE.UPLOADED","\u0069d":"e2"}"#,
    ];
    for body in bodies {
        let response = call(router.clone(), &Delivery::new(body)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            response.extensions().get::<Outcome>(),
            Some(&Outcome::NotAnEvent),
            "{body}"
        );
        assert!(response
            .extensions()
            .get::<boxhook::RoutedEvent>()
            .is_none());
    }
    assert_eq!(*ran.lock().expect("lock"), 0, "no handler ran");
}

/// The router claims on the front of a body and parses the whole of it
/// after: a body whose front reads as an event but whose rest is broken is
/// still not an event, runs no handler, and leaves no claim behind, so the
/// intact event with the same id is handled when it comes.
#[tokio::test]
async fn a_body_broken_after_its_front_is_not_an_event_and_keeps_no_claim() {
    let ran = Arc::new(Mutex::new(Vec::new()));
    let seen = ran.clone();
    let router = Router::new()
        .idempotency(boxhook::idempotency::MemoryStore::new(
            100,
            std::time::Duration::from_secs(3600),
        ))
        .fallback(move |event: WebhookEvent, _: DeliveryContext| {
            let seen = seen.clone();
            async move {
                seen.lock().expect("lock").push(event.id().to_owned());
                Ok::<_, HandlerError>(())
            }
        });
    let front = r#"{"type":"webhook_event","id":"e1","created_at":"2024-01-01T00:00:00-08:00","trigger":"FILE.UPLOADED","webhook":{"id":"77","type":"webhook"}"#;
    let broken = [
        format!(r#"{front},"source":{{"id":"5","type":"file","id":"6"}}}}"#),
        format!(r#"{front},"source":{{"id":"5","type":"file"}}"#),
        format!(r#"{front},"source":{{"id":"5","type":"file"}},"trigger":"FILE.TRASHED"}}"#),
        format!(r#"{front},"type":"webhook"}}"#),
        format!(r#"{front},"created_by":[1,]}}"#),
    ];
    for body in &broken {
        let response = call(router.clone(), &Delivery::new(body.clone())).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            response.extensions().get::<Outcome>(),
            Some(&Outcome::NotAnEvent),
            "{body}"
        );
        assert!(response
            .extensions()
            .get::<boxhook::RoutedEvent>()
            .is_none());
    }
    assert!(ran.lock().expect("lock").is_empty(), "no handler ran");
    let intact = format!(r#"{front},"source":{{"id":"5","type":"file"}}}}"#);
    for expected in [Outcome::Handled, Outcome::Duplicate] {
        let response = call(router.clone(), &Delivery::new(intact.clone())).await;
        assert_eq!(response.extensions().get::<Outcome>(), Some(&expected));
    }
    assert_eq!(*ran.lock().expect("lock"), ["e1"], "handled once");
}
