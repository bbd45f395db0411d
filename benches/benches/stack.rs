//! Cost per request of boxhook's tower stack in process, with no network:
//! a 3 KiB `FILE.UPLOADED` delivery through `VerifyLayer` + `Router` with a
//! handler that does nothing, on a fixed clock.
//!
//! - `stack/new_event`: a new event each iteration (its own event id and
//!   signature), so it is claimed, parsed, handled and completed;
//! - `stack/duplicate`: the same delivery again, acknowledged as a duplicate;
//! - `stack/new_event_recorded`: `new_event` with the metrics recorded into
//!   a Prometheus recorder (metrics' overhead on the request path);
//! - `stack/router_only`: the router alone on a request that already carries
//!   the `Verified` proof (verified once, outside the timing), new events;
//! - `stack/verify_only`: `Verifier::verify` on the same 3 KiB, for scale.
//!
//! Requests are built before each timed batch; only the service call is timed.
//!
//! `cargo bench -p boxhook-benches --bench stack`
#![allow(
    missing_docs,
    reason = "criterion_group! defines an undocumented pub fn; a bench has no API"
)]

use std::cell::Cell;
use std::convert::Infallible;
use std::hint::black_box;
use std::time::{Duration, Instant};

use boxhook::idempotency::MemoryStore;
use boxhook::{DeliveryContext, HandlerError, Outcome, Router, VerifyLayer};
use boxhook_benches::{file_uploaded, keys, now, signed_headers, Encoding};
use boxhook_core::model::WebhookEvent;
use boxhook_core::{FixedClock, Verifier};
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http::{header, HeaderValue, Method, Request, Response};
use http_body_util::Full;
use tower::{Service, ServiceExt as _};
use tower_layer::Layer as _;

const SIZE: usize = 3 * 1024;

/// The event id `file_uploaded` writes, replaced to make each event new.
const TEMPLATE_EVENT_ID: &str = "f8a3c7e2-7b1d-4c5e-9f2a-3d6e8b1c0a94";

thread_local! {
    static NEXT_ID: Cell<u64> = const { Cell::new(0) };
}

/// The 3 KiB body with an event id never used before in this process.
fn new_event_body(template: &str) -> Bytes {
    let n = NEXT_ID.with(|next| {
        let n = next.get();
        next.set(n + 1);
        n
    });
    let id = format!("00000000-0000-4000-8000-{n:012x}");
    Bytes::from(template.replacen(TEMPLATE_EVENT_ID, &id, 1))
}

/// A POST as Box sends it: signed headers, `Content-Length`, the body.
fn request(body: Bytes) -> Request<Full<Bytes>> {
    let mut headers = signed_headers(&body);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = Method::POST;
    *request.headers_mut() = headers;
    request
}

/// One request through `service`, as hyper would drive it: ready, then call.
async fn call<S>(service: &mut S, request: Request<Full<Bytes>>) -> Response<Full<Bytes>>
where
    S: Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>, Error = Infallible>,
{
    let Ok(ready) = service.ready().await;
    let Ok(response) = ready.call(request).await;
    response
}

/// Sends `requests` through `service` one after another, timing only that,
/// and checks each got `expected`.
fn timed<S>(
    runtime: &tokio::runtime::Runtime,
    service: &mut S,
    requests: Vec<Request<Full<Bytes>>>,
    expected: Outcome,
) -> Duration
where
    S: Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>, Error = Infallible>,
{
    let count = requests.len();
    runtime.block_on(async {
        let mut matched = 0;
        let started = Instant::now();
        for request in requests {
            let response = call(service, request).await;
            matched += usize::from(response.extensions().get::<Outcome>() == Some(&expected));
            black_box(response);
        }
        let elapsed = started.elapsed();
        assert_eq!(matched, count, "every response is {expected}");
        elapsed
    })
}

async fn noop(event: WebhookEvent, _ctx: DeliveryContext) -> Result<(), HandlerError> {
    black_box(event);
    Ok(())
}

fn router() -> Router {
    // Room for every event one run creates, so nothing is evicted mid-run.
    Router::new()
        .idempotency(MemoryStore::new(20_000_000, Duration::from_secs(24 * 3600)))
        .fallback(noop)
}

fn stack(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    let template = String::from_utf8(file_uploaded(SIZE, Encoding::Wire)).expect("ASCII");
    assert!(template.contains(TEMPLATE_EVENT_ID));
    let clock = FixedClock::at(now());
    let verifier = Verifier::new(keys());
    let mut service = VerifyLayer::new(verifier.clone())
        .clock(clock.clone())
        .layer(router());

    let mut group = c.benchmark_group("stack");
    group.throughput(Throughput::Elements(1));

    group.bench_function("new_event/3KiB", |b| {
        b.iter_custom(|iters| {
            let requests = (0..iters)
                .map(|_| request(new_event_body(&template)))
                .collect();
            timed(&runtime, &mut service, requests, Outcome::Handled)
        });
    });

    // The same, recording every metric into the Prometheus recorder that
    // `boxhook serve --admin` installs: the cost of metrics on the path.
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    group.bench_function("new_event_recorded/3KiB", |b| {
        b.iter_custom(|iters| {
            let requests = (0..iters)
                .map(|_| request(new_event_body(&template)))
                .collect();
            metrics::with_local_recorder(&recorder, || {
                timed(&runtime, &mut service, requests, Outcome::Handled)
            })
        });
    });
    let rendered = recorder.handle().render();
    assert!(rendered.contains("boxhook_events_total"), "{rendered}");

    let repeated = new_event_body(&template);
    let first = runtime
        .block_on(service.clone().oneshot(request(repeated.clone())))
        .expect("infallible");
    assert_eq!(first.extensions().get::<Outcome>(), Some(&Outcome::Handled));
    group.bench_function("duplicate/3KiB", |b| {
        b.iter_custom(|iters| {
            let requests = (0..iters).map(|_| request(repeated.clone())).collect();
            timed(&runtime, &mut service, requests, Outcome::Duplicate)
        });
    });

    let mut router = router();
    // What the verify layer would hand down: the proof and its clock.
    let request_clock = boxhook::RequestClock::new(clock.clone());
    group.bench_function("router_only/3KiB", |b| {
        b.iter_custom(|iters| {
            // `Verified` only comes from the verifier: verify each request
            // once here, outside the timing, and hand the proof along.
            let requests = (0..iters)
                .map(|_| {
                    let body = new_event_body(&template);
                    let mut request = request(body.clone());
                    let proof = verifier
                        .verify(request.headers(), &body, now())
                        .expect("valid");
                    request.extensions_mut().insert(proof);
                    request.extensions_mut().insert(request_clock.clone());
                    request
                })
                .collect();
            timed(&runtime, &mut router, requests, Outcome::Handled)
        });
    });

    let body = new_event_body(&template);
    let headers = signed_headers(&body);
    let at = now();
    group.bench_function("verify_only/3KiB", |b| {
        b.iter(|| {
            verifier
                .verify(black_box(&headers), black_box(&body), black_box(at))
                .expect("valid")
        });
    });
    group.finish();
}

criterion_group!(benches, stack);
criterion_main!(benches);
