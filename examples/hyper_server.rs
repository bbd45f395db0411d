//! A receiver on plain hyper: verify layer + router, served by hyper-util.
//!
//! ```text
//! BOX_PRIMARY_KEY=... BOX_SECONDARY_KEY=... cargo run -p boxhook-examples --example hyper_server
//! ```

use boxhook::model::TriggerFamily;
use boxhook::{
    DeliveryContext, HandlerError, Layer as _, NoActiveSession, Router, Trigger, Verifier,
    VerifyLayer, WebhookDeleted, WebhookEvent,
};

async fn uploaded(event: WebhookEvent, ctx: DeliveryContext) -> Result<(), HandlerError> {
    let name = event.source().and_then(|s| s.name()).unwrap_or("(unnamed)");
    println!(
        "uploaded {name} (event {}, delivery {:?})",
        ctx.event_id(),
        ctx.delivery_id()
    );
    Ok(())
}

async fn any_folder_event(event: WebhookEvent, _ctx: DeliveryContext) -> Result<(), HandlerError> {
    println!("folder event {}", event.trigger());
    Ok(())
}

async fn deleted(deleted: WebhookDeleted, _ctx: DeliveryContext) -> Result<(), HandlerError> {
    eprintln!(
        "webhook {:?} deleted by Box ({:?}): recreate it",
        deleted.webhook_id(),
        deleted.reason()
    );
    Ok(())
}

async fn no_session(alert: NoActiveSession, _ctx: DeliveryContext) -> Result<(), HandlerError> {
    eprintln!(
        "NO_ACTIVE_SESSION for webhook {:?}: re-authorize the app",
        alert.webhook_id()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    boxhook_examples::init_logging();
    let verifier = Verifier::new(boxhook_examples::keys_from_env()?);
    let router = Router::new()
        .on(Trigger::FileUploaded, uploaded)
        .on_family(TriggerFamily::Folder, any_folder_event)
        .on_webhook_deleted(deleted)
        .on_no_active_session(no_session);
    let service = VerifyLayer::new(verifier).layer(router);
    boxhook_examples::serve("127.0.0.1:8080".parse()?, service).await?;
    Ok(())
}
