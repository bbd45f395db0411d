//! boxhook inside an axum app: the router mounted at `/box/webhooks` beside
//! the app's own routes, and an axum handler using the `BoxEvent` extractor
//! at `/box/audit`.
//!
//! ```text
//! BOX_PRIMARY_KEY=... cargo run -p boxhook-examples --example axum_app
//! ```

use axum::http::StatusCode;
use axum::routing::{get, post};
use boxhook::axum::{verify_layer, BoxEvent};
use boxhook::{
    DeliveryContext, HandlerError, Layer as _, Router as Webhooks, Verifier, VerifyLayer,
    WebhookEvent,
};

async fn log_event(event: WebhookEvent, ctx: DeliveryContext) -> Result<(), HandlerError> {
    println!(
        "{} {} (matched the {} key)",
        ctx.event_id(),
        event.trigger(),
        ctx.key_slot()
    );
    Ok(())
}

/// An axum handler owns its status codes: 2xx only once the event is safe.
async fn audit(
    BoxEvent {
        event, verified, ..
    }: BoxEvent,
) -> StatusCode {
    println!("audit: {} at {}", event.trigger(), verified.timestamp());
    StatusCode::OK
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    boxhook_examples::init_logging();
    let verifier = Verifier::new(boxhook_examples::keys_from_env()?);
    let webhooks = VerifyLayer::new(verifier.clone()).layer(Webhooks::new().fallback(log_event));
    let app = axum::Router::new()
        .route("/health", get(|| async { "ok" }))
        .route_service("/box/webhooks", webhooks)
        .route("/box/audit", post(audit).layer(verify_layer(verifier)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    eprintln!("listening on http://{}/", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
