//! The framework under load: boxhook's verify layer and router (in-memory
//! idempotency store, a handler that does nothing) behind the same hyper
//! server as `bare_server`, verifying with the sample keys and the system
//! clock. This is `examples/hyper_server.rs` without its printing handlers.
//!
//! With `--metrics`, a Prometheus recorder is installed first, as `boxhook
//! serve --admin` does, so the run measures what recording costs.
//!
//! With `--stage`, the server stops part way along the event path, so that
//! `benches/load/profile.sh` can measure what each part costs per request
//! in the real server, under the same load (each stage is the one before
//! plus one step):
//!
//! | stage | what answers 200 |
//! |---|---|
//! | `verify` | the verify layer (body read to its bound, headers, timestamp, HMAC), then a service that answers at once |
//! | `peek` | the router too, with no handler: the envelope peek, then "no handler" |
//! | `parse` | a no-op fallback handler: the typed parse, the handler's task and deadline; an idempotency store that remembers nothing |
//! | `full` (default) | the in-memory idempotency store too (claim, complete) |
//!
//! ```text
//! boxhook_server --listen 127.0.0.1:0 --for-seconds 15 [--metrics] [--stage full]
//! ```

mod common;

use std::time::Duration;

use boxhook::idempotency::{Claim, EventKey, IdempotencyStore, MemoryStore, StoreError};
use boxhook::{DeliveryContext, HandlerError, Router, VerifyLayer};
use boxhook_core::model::WebhookEvent;
use boxhook_core::Verifier;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use clap::Parser;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use tower_layer::Layer as _;
use tower_service::Service;

/// boxhook's verify layer + router with a no-op handler.
#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    server: common::ServerArgs,
    /// Events the idempotency store remembers; above what one run sends, so
    /// every new event is handled and nothing is evicted mid-run.
    #[arg(long, value_name = "N", default_value_t = 4_000_000)]
    store_entries: usize,
    /// Record boxhook's metrics into a Prometheus recorder (as `serve
    /// --admin` does), rendering nothing; off, recording is a no-op.
    #[arg(long)]
    metrics: bool,
    /// Where along the event path to stop (see the module docs).
    #[arg(long, value_enum, default_value_t = Stage::Full)]
    stage: Stage,
}

/// How much of the event path runs.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Stage {
    Verify,
    Peek,
    Parse,
    Full,
}

/// A service that answers 200 with no body at once.
#[derive(Clone, Copy)]
struct Answer;

impl<B> Service<Request<B>> for Answer {
    type Response = Response<Full<Bytes>>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        std::future::ready(Ok(Response::new(Full::new(Bytes::new()))))
    }
}

/// An idempotency store that remembers nothing: every event is new.
struct Forgetful;

impl IdempotencyStore for Forgetful {
    async fn claim(
        &self,
        _: &EventKey,
        _: DateTime<Utc>,
        _: Duration,
    ) -> Result<Claim, StoreError> {
        Ok(Claim::Acquired)
    }

    async fn complete(&self, _: &EventKey, _: DateTime<Utc>) -> Result<(), StoreError> {
        Ok(())
    }

    async fn release(&self, _: &EventKey) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Serves `service` (always ready, never failing) with the shared loop.
fn run<S>(cli: &Cli, service: S) -> std::io::Result<()>
where
    S: Service<
            Request<Incoming>,
            Response = Response<Full<Bytes>>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
{
    common::serve("boxhook_server", &cli.server, move |request| {
        let mut service = service.clone();
        async move {
            // boxhook's services are always ready (poll_ready is
            // Ready(Ok)), and the verify layer forwards that.
            std::future::poll_fn(|cx| service.poll_ready(cx))
                .await
                .unwrap_or_else(|never| match never {});
            service
                .call(request)
                .await
                .unwrap_or_else(|never| match never {})
        }
    })
}

async fn noop(event: WebhookEvent, _ctx: DeliveryContext) -> Result<(), HandlerError> {
    std::hint::black_box(event);
    Ok(())
}

fn main() -> std::io::Result<()> {
    let cli = Cli::parse();
    if cli.metrics {
        let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .map_err(std::io::Error::other)?;
        boxhook::metrics::describe();
        // As serve's admin listener does: fold histogram samples every 5 s.
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_secs(5));
            handle.run_upkeep();
        });
    }
    let verify = VerifyLayer::new(Verifier::new(boxhook_benches::keys()));
    match cli.stage {
        Stage::Verify => run(&cli, verify.layer(Answer)),
        Stage::Peek => run(&cli, verify.layer(Router::new().idempotency(Forgetful))),
        Stage::Parse => run(
            &cli,
            verify.layer(Router::new().idempotency(Forgetful).fallback(noop)),
        ),
        Stage::Full => {
            let store = MemoryStore::new(cli.store_entries.max(1), Duration::from_secs(24 * 3600));
            run(
                &cli,
                verify.layer(Router::new().idempotency(store).fallback(noop)),
            )
        }
    }
}
