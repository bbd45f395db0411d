//! The framework under load: boxhook's verify layer and router (in-memory
//! idempotency store, a handler that does nothing) behind the same hyper
//! server as `bare_server`, verifying with the sample keys and the system
//! clock. This is `examples/hyper_server.rs` without its printing handlers.
//!
//! With `--metrics`, a Prometheus recorder is installed first, as `boxhook
//! serve --admin` does, so the run measures what recording costs.
//!
//! ```text
//! boxhook_server --listen 127.0.0.1:0 --for-seconds 15 [--metrics]
//! ```

mod common;

use std::time::Duration;

use boxhook::idempotency::MemoryStore;
use boxhook::{DeliveryContext, HandlerError, Router, VerifyLayer};
use boxhook_core::model::WebhookEvent;
use boxhook_core::Verifier;
use clap::Parser;
use http::Request;
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
    let store = MemoryStore::new(cli.store_entries.max(1), Duration::from_secs(24 * 3600));
    let router = Router::new().idempotency(store).fallback(noop);
    let stack = VerifyLayer::new(Verifier::new(boxhook_benches::keys())).layer(router);
    common::serve("boxhook_server", &cli.server, move |request| {
        let mut service = stack.clone();
        async move {
            // The router is always ready (its poll_ready is Ready(Ok)), and
            // the verify layer forwards that.
            std::future::poll_fn(|cx| Service::<Request<Incoming>>::poll_ready(&mut service, cx))
                .await
                .unwrap_or_else(|never| match never {});
            service
                .call(request)
                .await
                .unwrap_or_else(|never| match never {})
        }
    })
}
