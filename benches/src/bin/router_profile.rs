//! The router alone, for a profiler: `--events` new 3 KiB `FILE.UPLOADED`
//! deliveries, each already carrying the verifier's proof, sent one after
//! another through `Router` with a `MemoryStore` and a no-op handler, as
//! `stack/router_only/3KiB` does, without criterion around it.
//!
//! The requests are built first (signed and verified, outside the part to
//! profile); only `drive` runs the router. Under callgrind, count `drive`
//! alone:
//!
//! ```text
//! cargo build --profile bench -p boxhook-benches --bin router_profile
//! valgrind --tool=callgrind --collect-atstart=no \
//!     --toggle-collect='*router_profile::drive*' \
//!     target/release/router_profile --events 2000
//! ```
//!
//! It also prints the wall time per event of `drive`, for scale. With
//! `--duplicates`, one event is sent `--events` times: the duplicate path.

use std::convert::Infallible;
use std::hint::black_box;
use std::time::{Duration, Instant};

use boxhook::idempotency::MemoryStore;
use boxhook::{DeliveryContext, HandlerError, Outcome, RequestClock, Router, Verifier};
use boxhook_benches::{file_uploaded, keys, now, signed_headers, Encoding};
use boxhook_core::model::WebhookEvent;
use boxhook_core::FixedClock;
use bytes::Bytes;
use clap::Parser;
use http::{header, HeaderValue, Method, Request, Response};
use http_body_util::Full;
use tower_service::Service;

/// The event id `file_uploaded` writes, replaced to make each event new.
const TEMPLATE_EVENT_ID: &str = "f8a3c7e2-7b1d-4c5e-9f2a-3d6e8b1c0a94";

/// The router alone on new events, for a profiler.
#[derive(Parser, Debug)]
struct Cli {
    /// New events sent through the router.
    #[arg(long, default_value_t = 2_000)]
    events: usize,
    /// Body size in bytes.
    #[arg(long, default_value_t = 3 * 1024)]
    size: usize,
    /// Send one event `--events` times instead: the first is handled, the
    /// rest are duplicates (the duplicate path's cost).
    #[arg(long)]
    duplicates: bool,
}

async fn noop(event: WebhookEvent, _ctx: DeliveryContext) -> Result<(), HandlerError> {
    black_box(event);
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let template = String::from_utf8(file_uploaded(cli.size, Encoding::Wire)).expect("ASCII");
    assert!(
        template.contains(TEMPLATE_EVENT_ID),
        "the template has the id"
    );
    let verifier = Verifier::new(keys());
    let clock = RequestClock::new(FixedClock::at(now()));
    let requests: Vec<_> = (0..cli.events)
        .map(|n| {
            let n = if cli.duplicates { 0 } else { n };
            let id = format!("00000000-0000-4000-8000-{n:012x}");
            let body = Bytes::from(template.replacen(TEMPLATE_EVENT_ID, &id, 1));
            let mut headers = signed_headers(&body);
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
            let proof = verifier
                .verify(&headers, &body, now())
                .expect("a signed request verifies");
            let mut request = Request::new(Full::new(body));
            *request.method_mut() = Method::POST;
            *request.headers_mut() = headers;
            request.extensions_mut().insert(proof);
            request.extensions_mut().insert(clock.clone());
            request
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    let mut router = Router::new()
        .idempotency(MemoryStore::new(
            cli.events.saturating_mul(2).max(1),
            Duration::from_secs(24 * 3600),
        ))
        .fallback(noop);
    let started = Instant::now();
    let handled = drive(&runtime, &mut router, requests);
    let elapsed = started.elapsed();
    let expected = if cli.duplicates { 1 } else { cli.events };
    assert_eq!(handled, expected, "every new event is handled");
    let per_event =
        elapsed.as_secs_f64() * 1e6 / f64::from(u32::try_from(cli.events).unwrap_or(u32::MAX));
    println!("{} events, {per_event:.2} µs per event", cli.events);
}

/// Sends every request through the router, one after another, on
/// `runtime`; returns how many were handled.
#[inline(never)]
fn drive<S>(
    runtime: &tokio::runtime::Runtime,
    router: &mut S,
    requests: Vec<Request<Full<Bytes>>>,
) -> usize
where
    S: Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>, Error = Infallible>,
{
    runtime.block_on(async {
        let mut handled = 0;
        for request in requests {
            std::future::poll_fn(|cx| router.poll_ready(cx))
                .await
                .unwrap_or_else(|never| match never {});
            let Ok(response) = router.call(request).await;
            handled +=
                usize::from(response.extensions().get::<Outcome>() == Some(&Outcome::Handled));
            black_box(response);
        }
        handled
    })
}
