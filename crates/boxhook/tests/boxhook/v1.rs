//! The V1 service end to end through `tower::ServiceExt::oneshot`: the
//! secret, GET and POST forms, decoding, limits, routing, store-then-ack,
//! and the wrong-endpoint answers on both sides.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use boxhook::inbox::{InboxError, NewRecord, RecordKind, Stored};
use boxhook::v1::{
    Params, V1Auth, V1AuthFailure, V1Callback, V1Fields, V1Rejection, V1Router, V1Service,
    V1Trigger,
};
use boxhook::verify::Rejection;
use boxhook::{HandlerError, Outcome};
use boxhook_testkit::Delivery;
use bytes::Bytes;
use common::StoreWith;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use tower::ServiceExt as _;

const OLD: &str = "old-secret-0123456789";
const NEW: &str = "new-secret-0123456789";

type Stored1 = Arc<Mutex<Vec<NewRecord>>>;

/// A service storing into a shared vector, accepting `secrets` under `token`.
fn service(secrets: &[&str]) -> (V1Service, Stored1) {
    let stored = Stored1::default();
    let sink = Arc::clone(&stored);
    let inbox = StoreWith(move |record: NewRecord| {
        let sink = Arc::clone(&sink);
        async move {
            sink.lock().expect("lock").push(record);
            Ok::<_, InboxError>(Stored::New)
        }
    });
    let mut auth = V1Auth::secret("token", secrets[0]).expect("secret");
    for more in &secrets[1..] {
        auth = auth.or_secret(more).expect("secret");
    }
    let service = V1Service::new(auth, V1Router::new().store_in(inbox)).clock(common::clock());
    (service, stored)
}

fn get(uri: &str) -> Request<Full<Bytes>> {
    Request::get(uri).body(Full::default()).expect("request")
}

fn post_form(uri: &str, body: &str) -> Request<Full<Bytes>> {
    Request::post(uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::from(body.to_owned()))
        .expect("request")
}

async fn call(service: &V1Service, request: Request<Full<Bytes>>) -> Response<Full<Bytes>> {
    service.clone().oneshot(request).await.expect("infallible")
}

async fn empty_body(response: Response<Full<Bytes>>) -> Bytes {
    response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
}

fn rejection(response: &Response<Full<Bytes>>) -> Option<&V1Rejection> {
    response.extensions().get::<V1Rejection>()
}

#[tokio::test]
async fn the_secret_is_required_and_rotates() {
    let cases: &[(&[&str], &str, StatusCode, Option<&str>)] = &[
        (
            &[OLD],
            "token=old-secret-0123456789&event_type=uploaded",
            StatusCode::OK,
            None,
        ),
        (
            &[OLD],
            "event_type=uploaded",
            StatusCode::UNAUTHORIZED,
            Some("v1_secret_missing"),
        ),
        (
            &[OLD],
            "token=&event_type=uploaded",
            StatusCode::UNAUTHORIZED,
            Some("v1_secret_wrong"),
        ),
        (
            &[OLD],
            "token=old-secret-012345678",
            StatusCode::UNAUTHORIZED,
            Some("v1_secret_wrong"),
        ),
        (
            &[OLD],
            "token=old-secret-01234567890",
            StatusCode::UNAUTHORIZED,
            Some("v1_secret_wrong"),
        ),
        (
            &[OLD],
            "token=OLD-SECRET-0123456789",
            StatusCode::UNAUTHORIZED,
            Some("v1_secret_wrong"),
        ),
        (
            &[OLD],
            "Token=old-secret-0123456789",
            StatusCode::UNAUTHORIZED,
            Some("v1_secret_missing"),
        ),
        (
            &[OLD],
            "token=old-secret-0123456789&token=old-secret-0123456789",
            StatusCode::UNAUTHORIZED,
            Some("v1_secret_repeated"),
        ),
        (
            &[OLD],
            "token=guess&token=old-secret-0123456789",
            StatusCode::UNAUTHORIZED,
            Some("v1_secret_repeated"),
        ),
        // Percent-encoded, the secret is the same secret.
        (
            &[OLD],
            "token=old%2Dsecret%2D0123456789",
            StatusCode::OK,
            None,
        ),
        // Rotation: both live secrets are accepted, a dropped one is not.
        (
            &[OLD, NEW],
            "token=old-secret-0123456789",
            StatusCode::OK,
            None,
        ),
        (
            &[OLD, NEW],
            "token=new-secret-0123456789",
            StatusCode::OK,
            None,
        ),
        (
            &[NEW],
            "token=old-secret-0123456789",
            StatusCode::UNAUTHORIZED,
            Some("v1_secret_wrong"),
        ),
    ];
    for (secrets, query, status, code) in cases {
        let (service, stored) = service(secrets);
        let response = call(&service, get(&format!("/v1?{query}"))).await;
        assert_eq!(response.status(), *status, "{query}");
        assert_eq!(
            rejection(&response).map(V1Rejection::code),
            *code,
            "{query}"
        );
        let accepted = *status == StatusCode::OK;
        assert_eq!(
            stored.lock().expect("lock").len(),
            usize::from(accepted),
            "{query}"
        );
        assert_eq!(empty_body(response).await, Bytes::new(), "{query}");
    }
}

#[tokio::test]
async fn the_secret_never_reaches_the_store() {
    let (service, stored) = service(&[OLD]);
    let response = call(
        &service,
        get("/v1?event_type=moved&token=old-secret-0123456789&item_id=7"),
    )
    .await;
    assert_eq!(
        response.extensions().get::<Outcome>(),
        Some(&Outcome::Handled)
    );
    let record = stored.lock().expect("lock")[0].clone();
    assert_eq!(&record.body[..], b"event_type=moved&item_id=7");
    assert_eq!(
        (
            record.kind,
            record.trigger.as_str(),
            record.source_id.as_deref()
        ),
        (RecordKind::V1, "moved", Some("7"))
    );
    assert_eq!(record.webhook_id, "");
    assert_eq!(record.received_at, common::now());
    assert!(
        record.event_id.starts_with("v1-1577862000000-"),
        "{}",
        record.event_id
    );
}

#[tokio::test]
async fn get_and_post_forms_carry_the_same_callback() {
    let expected = "event_type=uploaded&item_id=42&item_name=Q1+report.pdf";
    let requests = [
        get("/v1?token=old-secret-0123456789&event_type=uploaded&item_id=42&item_name=Q1+report.pdf"),
        post_form(
            "/v1",
            "token=old-secret-0123456789&event_type=uploaded&item_id=42&item_name=Q1%20report.pdf",
        ),
        // The secret in the URL, the parameters in the body (query first).
        post_form(
            "/v1?token=old-secret-0123456789&event_type=uploaded",
            "item_id=42&item_name=Q1+report.pdf",
        ),
        // A form type with a charset parameter, and no type at all.
        Request::post("/v1?token=old-secret-0123456789")
            .header("content-type", "Application/X-WWW-Form-Urlencoded; charset=UTF-8")
            .body(Full::from("event_type=uploaded&item_id=42&item_name=Q1+report.pdf"))
            .expect("request"),
        Request::post("/v1?token=old-secret-0123456789&event_type=uploaded&item_id=42&item_name=Q1+report.pdf")
            .body(Full::default())
            .expect("request"),
    ];
    for request in requests {
        let (service, stored) = service(&[OLD]);
        let uri = request.uri().clone();
        let response = call(&service, request).await;
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        let body = stored.lock().expect("lock")[0].body.clone();
        assert_eq!(body, expected.as_bytes(), "{uri}");
    }
}

#[tokio::test]
async fn percent_encoding_non_ascii_and_repeated_parameters_are_kept() {
    let router_seen = Arc::new(Mutex::new(Vec::<V1Callback>::new()));
    let seen = Arc::clone(&router_seen);
    let router = V1Router::new().fallback(move |callback: V1Callback| {
        let seen = Arc::clone(&seen);
        async move {
            seen.lock().expect("lock").push(callback);
            Ok::<_, HandlerError>(())
        }
    });
    let service = V1Service::new(V1Auth::secret("t", OLD).expect("secret"), router)
        .fields(V1Fields::default().trigger("event").item_name("name"));
    let query =
        "t=old-secret-0123456789&event=Shared-Link&name=%E6%97%A5%E6%9C%AC+%C3%A9%26%3D%2B.pdf\
                 &tag=a&tag=b&x=%zz&tag=&raw=\u{e9}";
    let uri = format!("/v1?{}", query.replace('\u{e9}', "%C3%A9"));
    let response = call(&service, get(&uri)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let callback = router_seen.lock().expect("lock")[0].clone();
    assert_eq!(callback.trigger(), &V1Trigger::SharedLink);
    assert_eq!(callback.item_name(), Some("日本 é&=+.pdf"));
    assert_eq!(
        callback.params().iter().collect::<Vec<_>>(),
        [
            ("event", "Shared-Link"),
            ("name", "日本 é&=+.pdf"),
            ("tag", "a"),
            ("tag", "b"),
            ("x", "%zz"),
            ("tag", ""),
            ("raw", "é"),
        ]
    );
    assert_eq!(
        callback.params().get_all("tag").collect::<Vec<_>>(),
        ["a", "b", ""]
    );
}

#[tokio::test]
async fn requests_that_are_not_callbacks_are_refused_with_their_own_code() {
    let big = format!("token=old-secret-0123456789&pad={}", "x".repeat(16 * 1024));
    let cases: Vec<(Request<Full<Bytes>>, StatusCode, &str)> = vec![
        (
            Request::put("/v1?token=old-secret-0123456789")
                .body(Full::default())
                .expect("r"),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Request::post("/v1?token=old-secret-0123456789")
                .header("content-type", "application/json")
                .body(Full::from("{}"))
                .expect("r"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "v1_unsupported_media_type",
        ),
        (
            post_form("/v1", &big),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            Request::post("/v1")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("content-length", "999999")
                .body(Full::from("token=old-secret-0123456789"))
                .expect("r"),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            get("/v1?token=old-secret-0123456789&n=%FF"),
            StatusCode::BAD_REQUEST,
            "v1_params_not_utf8",
        ),
        (
            get(&format!(
                "/v1?token=old-secret-0123456789{}",
                "&a=1".repeat(256)
            )),
            StatusCode::BAD_REQUEST,
            "v1_too_many_params",
        ),
    ];
    for (request, status, code) in cases {
        let (service, stored) = service(&[OLD]);
        let what = format!("{} {}", request.method(), request.uri());
        let response = call(&service, request).await;
        assert_eq!(response.status(), status, "{what}");
        assert_eq!(
            rejection(&response).map(V1Rejection::code),
            Some(code),
            "{what}"
        );
        assert!(stored.lock().expect("lock").is_empty(), "{what}");
        assert_eq!(empty_body(response).await, Bytes::new(), "{what}");
    }
}

#[tokio::test]
async fn a_body_limit_is_enforced_while_streaming() {
    let (service, _) = service(&[OLD]);
    let service = service.body_limit(64);
    let at_limit = format!("token=old-secret-0123456789&p={}", "x".repeat(64 - 30));
    assert_eq!(at_limit.len(), 64);
    let ok = call(&service, post_form("/v1", &at_limit)).await;
    assert_eq!(ok.status(), StatusCode::OK);
    // No Content-Length: the limit applies to the bytes as they arrive.
    let over = format!("{at_limit}y");
    let request = Request::post("/v1")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Trickle(over.into_bytes()))
        .expect("r");
    let response: Response<Full<Bytes>> = service.clone().oneshot(request).await.expect("ok");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

/// A body sent one byte per frame, with no size hint.
struct Trickle(Vec<u8>);

impl http_body::Body for Trickle {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.0.is_empty() {
            return std::task::Poll::Ready(None);
        }
        let first = self.0.remove(0);
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(vec![first])))))
    }
}

#[tokio::test]
async fn a_v2_delivery_sent_to_the_v1_endpoint_is_named() {
    let (service, stored) = service(&[OLD]);
    let delivery = Delivery::new(common::event("e-1", "FILE.UPLOADED"));
    let request = delivery.to_bytes_request().map(Full::new);
    let response = call(&service, request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(rejection(&response), Some(&V1Rejection::SignedV2Delivery));
    assert_eq!(
        rejection(&response).map(V1Rejection::code),
        Some("v2_delivery_on_v1_endpoint")
    );
    assert!(stored.lock().expect("lock").is_empty());
    // Even with the right secret: a timestamp header alone is V2's.
    let request = Request::get("/v1?token=old-secret-0123456789")
        .header("box-delivery-timestamp", "2020-01-01T00:00:00-07:00")
        .body(Full::default())
        .expect("r");
    let response = call(&service, request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_v1_callback_sent_to_the_v2_endpoint_is_named() {
    let stack = common::stack(boxhook::Router::new());
    let cases = [
        get("/?token=old-secret-0123456789&event_type=uploaded"),
        post_form("/", "token=old-secret-0123456789&event_type=uploaded"),
    ];
    for request in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let response = stack.clone().oneshot(request).await.expect("ok");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{what}");
        let rejection = response.extensions().get::<Rejection>();
        assert_eq!(rejection, Some(&Rejection::V1Callback), "{what}");
        assert_eq!(
            rejection.map(Rejection::code),
            Some("v1_callback_on_v2_endpoint")
        );
    }
    // A plain GET without a query stays a 405, a signed POST is verified.
    let response = stack.clone().oneshot(get("/")).await.expect("ok");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let delivery = Delivery::new(common::event("e-1", "FILE.UPLOADED"));
    let response = stack
        .oneshot(delivery.to_bytes_request().map(Full::new))
        .await
        .expect("ok");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn routing_and_failures_answer_with_the_router_outcomes() {
    let failing_inbox = StoreWith(|_record: NewRecord| async {
        Err::<Stored, _>(InboxError::new(
            boxhook::inbox::ErrorKind::Storage,
            "disk full",
        ))
    });
    let router = V1Router::new()
        .on(V1Trigger::Uploaded, |_cb: V1Callback| async {
            Ok::<_, HandlerError>(())
        })
        .on(V1Trigger::Deleted, |_cb: V1Callback| async {
            Err::<(), _>(HandlerError::new("downstream is down"))
        })
        .on(V1Trigger::Other("boom".into()), |_cb: V1Callback| async {
            panic!("handler bug");
            #[allow(unreachable_code, reason = "the handler's type")]
            Ok::<_, HandlerError>(())
        })
        .store_in(failing_inbox);
    let service = V1Service::new(V1Auth::allow_unauthenticated(), router);
    let cases = [
        ("uploaded", StatusCode::OK, Outcome::Handled),
        (
            "deleted",
            StatusCode::INTERNAL_SERVER_ERROR,
            Outcome::Failed,
        ),
        ("boom", StatusCode::INTERNAL_SERVER_ERROR, Outcome::Panicked),
        (
            "moved",
            StatusCode::SERVICE_UNAVAILABLE,
            Outcome::InboxFailed,
        ),
    ];
    for (trigger, status, outcome) in cases {
        let response = call(&service, get(&format!("/v1?event_type={trigger}"))).await;
        assert_eq!(response.status(), status, "{trigger}");
        assert_eq!(
            response.extensions().get::<Outcome>(),
            Some(&outcome),
            "{trigger}"
        );
    }
    let bare = V1Service::new(V1Auth::allow_unauthenticated(), V1Router::new());
    let response = call(&bare, get("/v1?event_type=moved")).await;
    assert_eq!(
        response.extensions().get::<Outcome>(),
        Some(&Outcome::Unhandled)
    );
}

/// A handler, or an inbox, slower than the router's deadline is cancelled
/// and answered 503 `timed_out`, as on the V2 router; a fast one within the
/// same deadline is not. Paused time: the deadline fires first, always.
#[tokio::test(start_paused = true)]
async fn a_handler_or_store_past_the_deadline_is_cancelled() {
    let slow_inbox = StoreWith(|_record: NewRecord| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok::<_, InboxError>(Stored::New)
    });
    let router = V1Router::new()
        .on(V1Trigger::Uploaded, |_cb: V1Callback| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<_, HandlerError>(())
        })
        .on(V1Trigger::Deleted, |_cb: V1Callback| async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok::<_, HandlerError>(())
        })
        .store_in(slow_inbox)
        .handler_timeout(Duration::from_secs(1));
    let service = V1Service::new(V1Auth::allow_unauthenticated(), router);
    let cases = [
        (
            "uploaded",
            StatusCode::SERVICE_UNAVAILABLE,
            Outcome::TimedOut,
        ),
        ("moved", StatusCode::SERVICE_UNAVAILABLE, Outcome::TimedOut),
        ("deleted", StatusCode::OK, Outcome::Handled),
    ];
    for (trigger, status, outcome) in cases {
        let response = call(&service, get(&format!("/v1?event_type={trigger}"))).await;
        assert_eq!(response.status(), status, "{trigger}");
        assert_eq!(
            response.extensions().get::<Outcome>(),
            Some(&outcome),
            "{trigger}"
        );
    }
}

#[test]
fn weak_configurations_are_refused_when_built() {
    assert_eq!(
        V1Auth::secret("token", "fifteen-bytes!!").map(|_| ()),
        Err(boxhook::v1::V1AuthError::ShortSecret { len: 15, min: 16 })
    );
    assert_eq!(
        V1Auth::secret("", OLD).map(|_| ()),
        Err(boxhook::v1::V1AuthError::EmptyParam)
    );
    let auth = V1Auth::secret("token", OLD).expect("ok");
    assert_eq!(
        auth.or_secret("short").map(|_| ()),
        Err(boxhook::v1::V1AuthError::ShortSecret { len: 5, min: 16 })
    );
    // Debug output never shows a secret.
    let shown = format!("{:?}", V1Auth::secret("token", OLD).expect("ok"));
    assert!(!shown.contains(OLD), "{shown}");
}

#[test]
fn an_auth_check_removes_every_copy_of_the_secret_parameter() {
    let auth = V1Auth::secret("token", OLD).expect("ok");
    let mut params = Params::parse(b"a=1&token=x&b=2&token=y").expect("params");
    assert_eq!(
        auth.check(&mut params),
        Err(V1AuthFailure::Repeated { count: 2 })
    );
    assert_eq!(params.encode(), "a=1&b=2");
}

#[tokio::test]
async fn the_operator_log_says_why_and_never_shows_the_secret_or_raw_controls() {
    let (captured, _guard) = common::capture_logs(tracing::Level::DEBUG);

    let open = V1Service::new(
        V1Auth::allow_unauthenticated(),
        V1Router::new().fallback(|_cb: V1Callback| async {
            Err::<(), _>(HandlerError::new("downstream refused"))
        }),
    );
    let hostile = "/v1?event_type=up%1B%5D0%3Bx%07loaded%0AINFO+forged";
    assert_eq!(
        call(&open, get(hostile)).await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let (closed, _) = service(&[OLD]);
    let guess = "guessed-secret-value-0123";
    let response = call(&closed, get(&format!("/v1?token={guess}"))).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = call(&closed, get(&format!("/v1?token={OLD}&event_type=moved"))).await;
    assert_eq!(response.status(), StatusCode::OK);

    let text = captured.text();
    assert!(
        text.contains("WARN") && text.contains("WITHOUT a secret"),
        "{text}"
    );
    assert!(text.contains("code=\"v1_secret_wrong\""), "{text}");
    assert!(text.contains("Box does not retry V1 callbacks"), "{text}");
    assert!(!text.contains(guess) && !text.contains(OLD), "{text}");
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text}"
    );
    assert!(
        text.contains(r"up\u{1b}]0;x\u{7}loaded\nINFO forged"),
        "{text}"
    );
    assert!(
        !text.lines().any(|line| line.starts_with("INFO forged")),
        "{text}"
    );
}

/// A body that never sends anything.
struct Stalled;

impl http_body::Body for Stalled {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Pending
    }
}

#[tokio::test]
async fn a_body_slower_than_the_read_timeout_is_refused() {
    let (service, stored) = service(&[OLD]);
    let service = service.read_timeout(std::time::Duration::from_millis(50));
    let request = Request::post("/v1?token=old-secret-0123456789&event_type=uploaded")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Stalled)
        .expect("r");
    let response: Response<Full<Bytes>> = service.oneshot(request).await.expect("ok");
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    assert_eq!(rejection(&response), Some(&V1Rejection::Timeout));
    assert!(stored.lock().expect("lock").is_empty());
}
