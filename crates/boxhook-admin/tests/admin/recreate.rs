//! The `WEBHOOK.DELETED` handler behind the verify layer and the router,
//! against the fake Box API.

use std::sync::{Arc, Mutex};

use boxhook::verify::Verify;
use boxhook::{Layer as _, Outcome, Router, Verifier, VerifyLayer};
use boxhook_admin::fake::{FakeBoxApi, FAKE_ACCESS_TOKEN};
use boxhook_admin::{
    AuthKind, BoxClient, Credentials, DesiredState, Recreate, RecreateStats, RetryPolicy,
    SessionAlert, Target,
};
use boxhook_testkit::Delivery;
use tower::ServiceExt as _;

const HOOK: &str = "https://hooks.example.com/box";

fn client(api: &FakeBoxApi) -> BoxClient {
    BoxClient::builder(Credentials::AccessToken(FAKE_ACCESS_TOKEN.into()))
        .api_base(api.uri())
        .retry(RetryPolicy::none())
        .build()
        .expect("client")
}

fn desired() -> DesiredState {
    DesiredState::parse(&format!(
        r#"
        [[webhook]]
        target = "folder:218730924451"
        address = "{HOOK}"
        triggers = ["FILE.UPLOADED", "FILE.TRASHED"]
        "#
    ))
    .expect("desired")
}

/// A `WEBHOOK.DELETED` for webhook `id`, with `source` (JSON) and `reason`.
fn deleted(event_id: &str, id: &str, source: &str, reason: &str) -> Delivery {
    Delivery::new(format!(
        r#"{{"type":"webhook_event","id":"{event_id}","created_at":"2026-11-30T03:00:12-07:00","trigger":"WEBHOOK.DELETED","webhook":{{"id":"{id}","type":"webhook"}},"source":{source},"additional_info":{{"reason":"{reason}"}}}}"#
    ))
}

const FOLDER: &str = r#"{"id":"218730924451","type":"folder"}"#;

type Seen = Arc<Mutex<Vec<(String, RecreateStats)>>>;

fn handler(api: &FakeBoxApi, seen: &Seen) -> Recreate {
    let seen = Arc::clone(seen);
    Recreate::observed(client(api), desired(), move |outcome, stats| {
        seen.lock()
            .expect("lock")
            .push((outcome.to_string(), stats));
    })
}

/// A receiver whose router has `recreate` as its `WEBHOOK.DELETED` handler
/// (and its own idempotency store).
fn receiver(recreate: &Recreate) -> Verify<Router> {
    let keys = Delivery::new(&b"{}"[..]);
    VerifyLayer::new(Verifier::new(keys.key_ring().clone()))
        .clock(keys.clock())
        .layer(Router::new().on_webhook_deleted(recreate.clone()))
}

async fn deliver(recreate: &Recreate, delivery: &Delivery) -> (u16, Option<Outcome>) {
    deliver_to(&receiver(recreate), delivery).await
}

async fn deliver_to(service: &Verify<Router>, delivery: &Delivery) -> (u16, Option<Outcome>) {
    let response = service
        .clone()
        .oneshot(delivery.to_request())
        .await
        .expect("infallible");
    (
        response.status().as_u16(),
        response.extensions().get::<Outcome>().copied(),
    )
}

#[tokio::test]
async fn auto_cleanup_of_a_declared_webhook_puts_it_back() {
    let api = FakeBoxApi::start().await.expect("fake");
    let old = api.seed(
        FAKE_ACCESS_TOKEN,
        "folder",
        "218730924451",
        HOOK,
        &["FILE.UPLOADED", "FILE.TRASHED"],
    );
    api.auto_cleanup(&old.id).expect("removed");
    let seen = Seen::default();
    let recreate = handler(&api, &seen);

    let receiver = receiver(&recreate);
    let delivery = deleted("e-1", &old.id, FOLDER, "auto_cleanup");
    assert_eq!(
        deliver_to(&receiver, &delivery).await,
        (200, Some(Outcome::Handled))
    );
    let now = api.webhooks();
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].target(), "folder:218730924451");
    assert_eq!(now[0].address, HOOK);
    assert_eq!(now[0].triggers, ["FILE.UPLOADED", "FILE.TRASHED"]);
    assert_ne!(now[0].id, old.id);
    assert_eq!(
        seen.lock().expect("lock").clone(),
        [(
            format!(
                "re-created the webhook on folder:218730924451 (new id {})",
                now[0].id
            ),
            RecreateStats {
                recreated: 1,
                ..RecreateStats::default()
            }
        )]
    );

    // Box delivers the same event again: the router's idempotency store
    // answers it, nothing is called.
    api.reset_calls();
    let retry = delivery.clone().delivery_id("retry-1");
    assert_eq!(
        deliver_to(&receiver, &retry).await,
        (200, Some(Outcome::Duplicate))
    );
    assert_eq!(api.calls().len(), 0);
}

#[tokio::test]
async fn a_second_receiver_finds_it_back_and_writes_nothing() {
    let api = FakeBoxApi::start().await.expect("fake");
    let seen = Seen::default();
    // Two receivers, each with its own idempotency store, get the event.
    let first = handler(&api, &seen);
    let second = handler(&api, &seen);
    let delivery = deleted("e-2", "4000", FOLDER, "auto_cleanup");
    assert_eq!(deliver(&first, &delivery).await.0, 200);
    api.reset_calls();
    assert_eq!(deliver(&second, &delivery).await.0, 200);
    assert_eq!(api.webhooks().len(), 1, "never a duplicate");
    // The 409 path: create refused, list, get, compare, done.
    assert_eq!(api.count("POST /2.0/webhooks"), 1);
    assert_eq!(api.count("GET /2.0/webhooks"), 1);
    assert_eq!(api.count("GET /2.0/webhooks/{id}"), 1);
    assert_eq!(api.write_calls(), 1);
    assert!(matches!(
        second.stats(),
        RecreateStats {
            already_back: 1,
            recreated: 0,
            ..
        }
    ));
}

#[tokio::test]
async fn undeclared_targets_and_other_reasons_are_alerted_not_acted_on() {
    let api = FakeBoxApi::start().await.expect("fake");
    let seen = Seen::default();
    let recreate = handler(&api, &seen);
    let table = [
        (
            deleted("e-3", "41", r#"{"id":"999","type":"folder"}"#, "auto_cleanup"),
            "ALERT: Box deleted webhook 41 on folder:999, which is not declared: not re-created",
        ),
        (
            deleted("e-4", "42", FOLDER, "app_deleted"),
            "ALERT: webhook 42 was deleted (reason app_deleted), not by auto_cleanup: not re-created",
        ),
        (
            deleted("e-5", "43", r#"{"id":"43","type":"webhook"}"#, "auto_cleanup"),
            "ALERT: Box deleted webhook 43, whose target is unknown here: not re-created; run \
             `boxhook webhooks apply` to restore the declared state",
        ),
    ];
    for (delivery, line) in &table {
        assert_eq!(
            deliver(&recreate, delivery).await,
            (200, Some(Outcome::Handled))
        );
        assert_eq!(seen.lock().expect("lock").last().expect("seen").0, *line);
    }
    assert_eq!(api.calls().len(), 0, "no API call");
    assert_eq!(recreate.stats().alerted, 3);
}

#[tokio::test]
async fn a_source_that_is_not_the_item_falls_back_to_the_learned_ids() {
    let api = FakeBoxApi::start().await.expect("fake");
    let old = api.seed(
        FAKE_ACCESS_TOKEN,
        "folder",
        "218730924451",
        HOOK,
        &["FILE.UPLOADED"],
    );
    let seen = Seen::default();
    let recreate = handler(&api, &seen);
    assert_eq!(recreate.learn().await.expect("learn"), 1);
    api.auto_cleanup(&old.id);
    let delivery = deleted(
        "e-6",
        &old.id,
        &format!(r#"{{"id":"{}","type":"webhook"}}"#, old.id),
        "auto_cleanup",
    );
    assert_eq!(deliver(&recreate, &delivery).await.0, 200);
    let now = api.webhooks();
    assert_eq!(now.len(), 1);
    // Re-created as declared, with both triggers, not as it was.
    assert_eq!(now[0].triggers, ["FILE.UPLOADED", "FILE.TRASHED"]);
    assert_eq!(recreate.stats().recreated, 1);
    // The new id is remembered too.
    recreate.remember("1", Target::folder("1"));
}

#[tokio::test]
async fn a_failed_re_create_asks_box_to_retry() {
    let api = FakeBoxApi::start().await.expect("fake");
    api.fail_call(1, 503);
    let seen = Seen::default();
    let recreate = handler(&api, &seen);
    let receiver = receiver(&recreate);
    let delivery = deleted("e-7", "4000", FOLDER, "auto_cleanup");
    assert_eq!(
        deliver_to(&receiver, &delivery).await,
        (503, Some(Outcome::RetryRequested))
    );
    assert_eq!(
        seen.lock().expect("lock")[0].0,
        "ALERT: could not re-create the webhook on folder:218730924451: Box answered 503 \
         internal_server_error: Internal Server Error (request id fakereq00000001); Box will \
         retry the event"
    );
    assert_eq!(recreate.stats().failed, 1);
    // Box's retry (the claim was released) succeeds.
    let retry = delivery.clone().delivery_id("retry-1");
    assert_eq!(
        deliver_to(&receiver, &retry).await,
        (200, Some(Outcome::Handled))
    );
    assert_eq!(api.webhooks().len(), 1);
}

#[tokio::test]
async fn no_active_session_alerts_with_the_remedy() {
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let alert = SessionAlert::new(AuthKind::Jwt, {
        let lines = Arc::clone(&lines);
        move |line: &str| lines.lock().expect("lock").push(line.to_owned())
    });
    let delivery = Delivery::new(
        &br#"{"type":"webhook_event","id":"e-8","trigger":"NO_ACTIVE_SESSION","webhook":{"id":"77","type":"webhook"},"source":{"id":"5","type":"file"},"additional_info":[]}"#[..],
    );
    let service = VerifyLayer::new(Verifier::new(delivery.key_ring().clone()))
        .clock(delivery.clock())
        .layer(Router::new().on_no_active_session(alert));
    let response = service
        .oneshot(delivery.to_request())
        .await
        .expect("infallible");
    assert_eq!(response.status(), 200);
    assert_eq!(
        lines.lock().expect("lock").clone(),
        [
            "ALERT: NO_ACTIVE_SESSION for webhook 77: the app's authorization was removed: an \
          enterprise admin must re-authorize the app in the Admin Console (Apps > Custom Apps \
          Manager)"
        ]
    );
}
