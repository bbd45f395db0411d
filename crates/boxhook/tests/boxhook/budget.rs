//! The verify layer's shared body budget: a request it cannot cover gets 503
//! `overloaded` at once; bytes are held until the inner response is ready.

use crate::common;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use boxhook::verify::{BodyBudget, Rejection, Verify, VerifyLayer};
use boxhook::{Outcome, Router};
use boxhook_core::Verifier;
use boxhook_testkit::Delivery;
use bytes::Bytes;
use common::{clock, event, keys};
use http::{header, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::Full;
use tokio::sync::{oneshot, Mutex};
use tower::ServiceExt as _;
use tower_layer::Layer as _;

fn layer(budget: &BodyBudget) -> VerifyLayer {
    VerifyLayer::new(Verifier::new(keys()))
        .clock(clock())
        .body_budget(budget.clone())
}

fn with_router(budget: &BodyBudget) -> Verify<Router> {
    layer(budget).layer(Router::new().fallback(
        |_: boxhook_core::model::WebhookEvent, _: boxhook::DeliveryContext| async {
            Ok::<_, boxhook::HandlerError>(())
        },
    ))
}

fn code<B>(response: &Response<B>) -> Option<&'static str> {
    response
        .extensions()
        .get::<Rejection>()
        .map(Rejection::code)
}

/// A body that yields its chunks one frame at a time, with no size hint
/// (as a chunked request without `Content-Length` arrives).
struct Chunked(VecDeque<Bytes>);

impl Chunked {
    fn new(body: &Bytes, chunk: usize) -> Self {
        Self(body.chunks(chunk).map(Bytes::copy_from_slice).collect())
    }
}

impl Body for Chunked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|c| Ok(Frame::data(c))))
    }
}

/// The delivery as a chunked request: no `Content-Length`, no size hint.
fn chunked(delivery: &Delivery, chunk: usize) -> Request<Chunked> {
    let request = delivery.to_bytes_request();
    let (mut parts, body) = request.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    Request::from_parts(parts, Chunked::new(&body, chunk))
}

#[tokio::test]
async fn in_flight_bodies_exhaust_the_budget_until_their_response_is_ready() {
    let first = Delivery::new(event("e-1", "FILE.UPLOADED"));
    let size = first.body().len();
    // Room for one body, not two.
    let budget = BodyBudget::new(size + size / 2);

    // An inner service that holds the first request until the test lets go.
    let (release, held) = oneshot::channel::<()>();
    let held = Arc::new(Mutex::new(Some(held)));
    let (entered_tx, entered) = oneshot::channel::<()>();
    let entered_tx = Arc::new(Mutex::new(Some(entered_tx)));
    let inner = tower::service_fn(move |_: Request<Full<Bytes>>| {
        let held = Arc::clone(&held);
        let entered_tx = Arc::clone(&entered_tx);
        async move {
            if let Some(tx) = entered_tx.lock().await.take() {
                let _ = tx.send(());
            }
            if let Some(rx) = held.lock().await.take() {
                let _ = rx.await;
            }
            Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))
        }
    });
    let service = layer(&budget).layer(inner);

    let in_flight = tokio::spawn(service.clone().oneshot(first.to_request()));
    entered
        .await
        .expect("the first request reached the inner service");
    assert_eq!(budget.in_use(), size, "held while the inner service runs");

    let newcomer = Delivery::new(event("e-2", "FILE.UPLOADED"));
    let response = service
        .clone()
        .oneshot(newcomer.to_request())
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(code(&response), Some("overloaded"));
    assert_eq!(
        response.extensions().get::<Rejection>(),
        Some(&Rejection::Overloaded {
            budget: size + size / 2
        })
    );
    assert_eq!(budget.in_use(), size, "a refused request takes nothing");

    release.send(()).expect("the first request is waiting");
    let first_response = in_flight.await.expect("no panic").expect("infallible");
    assert_eq!(first_response.status(), StatusCode::OK);
    assert_eq!(budget.in_use(), 0, "given back once the response is ready");

    let next = service
        .oneshot(newcomer.to_request())
        .await
        .expect("infallible");
    assert_eq!((next.status(), code(&next)), (StatusCode::OK, None));
    assert_eq!(budget.in_use(), 0);
}

#[tokio::test]
async fn a_body_without_length_that_grows_past_the_budget_is_refused() {
    let delivery = Delivery::new(event("e-3", "FILE.UPLOADED"));
    let size = delivery.body().len();
    // (budget, chunk size, status, rejection code, outcome)
    let cases = [
        (
            size - 1,
            64,
            StatusCode::SERVICE_UNAVAILABLE,
            Some("overloaded"),
            None,
        ),
        (
            size - 1,
            size,
            StatusCode::SERVICE_UNAVAILABLE,
            Some("overloaded"),
            None,
        ),
        (size, 64, StatusCode::OK, None, Some(Outcome::Handled)),
        (usize::MAX, 7, StatusCode::OK, None, Some(Outcome::Handled)),
    ];
    for (capacity, chunk, status, rejection, outcome) in cases {
        let budget = BodyBudget::new(capacity);
        let response = with_router(&budget)
            .oneshot(chunked(&delivery, chunk))
            .await
            .expect("infallible");
        let got = (
            response.status(),
            code(&response),
            response.extensions().get::<Outcome>().copied(),
        );
        assert_eq!(
            got,
            (status, rejection, outcome),
            "budget {capacity}, chunks of {chunk}"
        );
        assert_eq!(budget.in_use(), 0, "budget {capacity}: all given back");
    }
}

#[tokio::test]
async fn a_declared_length_over_what_is_left_is_refused_before_reading() {
    let delivery = Delivery::new(event("e-4", "FILE.UPLOADED"));
    let size = delivery.body().len();
    let budget = BodyBudget::new(size - 1);
    // A body that would fail if it were read: refused on the header alone.
    let mut request = chunked(&delivery, 16).map(|_| FailingBody);
    request
        .headers_mut()
        .insert(header::CONTENT_LENGTH, size.into());
    let response = with_router(&budget)
        .oneshot(request)
        .await
        .expect("infallible");
    assert_eq!(
        (response.status(), code(&response)),
        (StatusCode::SERVICE_UNAVAILABLE, Some("overloaded"))
    );
}

struct FailingBody;

impl Body for FailingBody {
    type Data = Bytes;
    type Error = &'static str;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, &'static str>>> {
        Poll::Ready(Some(Err("the body was read")))
    }
}

#[tokio::test]
async fn a_zero_budget_refuses_every_non_empty_body() {
    let budget = BodyBudget::new(0);
    for body in ["{}", "x", &event("e-5", "FILE.UPLOADED")] {
        let delivery = Delivery::new(body.to_owned());
        for (how, response) in [
            (
                "content-length",
                with_router(&budget).oneshot(delivery.to_request()).await,
            ),
            (
                "chunked",
                with_router(&budget).oneshot(chunked(&delivery, 1)).await,
            ),
        ] {
            let response = response.expect("infallible");
            assert_eq!(
                (response.status(), code(&response)),
                (StatusCode::SERVICE_UNAVAILABLE, Some("overloaded")),
                "{how}: {body}"
            );
        }
    }
    // An empty body needs nothing from the budget: it reaches the router,
    // which finds no event in it.
    let empty = with_router(&budget)
        .oneshot(Delivery::new("").to_request())
        .await
        .expect("infallible");
    assert_eq!(
        (empty.status(), empty.extensions().get::<Outcome>()),
        (StatusCode::BAD_REQUEST, Some(&Outcome::NotAnEvent))
    );
    assert_eq!(budget.in_use(), 0);
}

#[test]
fn overloaded_is_a_retryable_503() {
    let rejection = Rejection::Overloaded { budget: 1024 };
    assert_eq!(rejection.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(rejection.code(), "overloaded");
    assert_eq!(
        rejection.to_string(),
        "the body budget of 1024 bytes is taken by requests in flight"
    );
}
