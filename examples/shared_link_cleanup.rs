//! The workflow from Box's webhook guide: when a file is downloaded, delete
//! its shared link. A handler type holds its state (a Box API client behind a
//! trait, so it can be tested without Box) and implements `boxhook::Handler`.
//!
//! ```text
//! BOX_PRIMARY_KEY=... cargo run -p boxhook-examples --example shared_link_cleanup
//! cargo test -p boxhook-examples --example shared_link_cleanup
//! ```

use std::future::Future;
use std::sync::{Arc, Mutex};

use boxhook::{
    DeliveryContext, Handler, HandlerError, Layer as _, Router, Trigger, Verifier, VerifyLayer,
    WebhookEvent,
};

/// The slice of the Box API this workflow needs.
pub trait BoxFiles: Send + Sync + 'static {
    /// `PUT /files/{id}` with `{"shared_link": null}`.
    fn remove_shared_link(
        &self,
        file_id: &str,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
}

/// A failed Box API call.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status from Box.
    pub status: u16,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Box API answered {}", self.status)
    }
}

impl std::error::Error for ApiError {}

/// Deletes a file's shared link once it has been downloaded.
pub struct RevokeAfterDownload<C> {
    client: Arc<C>,
}

impl<C: BoxFiles> Handler for RevokeAfterDownload<C> {
    async fn call(&self, event: WebhookEvent, ctx: DeliveryContext) -> Result<(), HandlerError> {
        let Some(file) = event.source().and_then(|s| s.as_file()) else {
            // Not a file (or a reduced payload): nothing to revoke, acknowledge.
            return Ok(());
        };
        match self.client.remove_shared_link(&file.item.id).await {
            Ok(()) => Ok(()),
            // Rate limited or Box is down: ask Box to deliver the event again.
            Err(e) if e.status == 429 || e.status >= 500 => Err(HandlerError::retry_later(e)),
            // 404: the file is gone, there is no link left to revoke.
            Err(e) if e.status == 404 => Ok(()),
            Err(e) => {
                eprintln!(
                    "event {}: cannot revoke link of file {}: {e}",
                    ctx.event_id(),
                    file.item.id
                );
                Err(HandlerError::new(e))
            }
        }
    }
}

/// Builds the router for any client.
pub fn router<C: BoxFiles>(client: Arc<C>) -> Router {
    Router::new().on(Trigger::FileDownloaded, RevokeAfterDownload { client })
}

/// A stand-in client that prints what it would do: replace it with real
/// calls to `PUT https://api.box.com/2.0/files/{id}`.
#[derive(Default)]
struct PrintingClient {
    revoked: Mutex<Vec<String>>,
}

impl BoxFiles for PrintingClient {
    async fn remove_shared_link(&self, file_id: &str) -> Result<(), ApiError> {
        println!("would remove the shared link of file {file_id}");
        self.revoked
            .lock()
            .map_err(|_| ApiError { status: 500 })?
            .push(file_id.to_owned());
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    boxhook_examples::init_logging();
    let verifier = Verifier::new(boxhook_examples::keys_from_env()?);
    let service = VerifyLayer::new(verifier).layer(router(Arc::new(PrintingClient::default())));
    boxhook_examples::serve("127.0.0.1:8080".parse()?, service).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use boxhook::FixedClock;
    use boxhook::Outcome;
    use boxhook_testkit::Delivery;
    use tower::ServiceExt as _;

    /// Answers with a scripted status per call.
    struct FakeBox {
        statuses: Mutex<Vec<u16>>,
        calls: Mutex<Vec<String>>,
    }

    impl BoxFiles for FakeBox {
        async fn remove_shared_link(&self, file_id: &str) -> Result<(), ApiError> {
            self.calls.lock().expect("lock").push(file_id.to_owned());
            match self.statuses.lock().expect("lock").remove(0) {
                204 => Ok(()),
                status => Err(ApiError { status }),
            }
        }
    }

    fn downloaded(event_id: &str) -> String {
        format!(
            r#"{{"type":"webhook_event","id":"{event_id}","created_at":"2019-12-31T23:59:58-07:00","trigger":"FILE.DOWNLOADED","webhook":{{"id":"77","type":"webhook"}},"source":{{"id":"5551","type":"file","name":"contract.pdf"}},"additional_info":[]}}"#
        )
    }

    #[tokio::test]
    async fn revokes_once_and_retries_when_box_is_down() {
        let fake = Arc::new(FakeBox {
            statuses: Mutex::new(vec![503, 204]),
            calls: Mutex::default(),
        });
        let delivery = Delivery::new(downloaded("evt-1"));
        let clock = FixedClock::at(delivery.now());
        let service = VerifyLayer::new(Verifier::new(delivery.key_ring().clone()))
            .clock(clock)
            .layer(router(fake.clone()));
        let mut outcomes = Vec::new();
        for attempt in ["a", "b", "c"] {
            let request = delivery.clone().delivery_id(attempt).to_request();
            let response = service.clone().oneshot(request).await.expect("infallible");
            outcomes.push(*response.extensions().get::<Outcome>().expect("outcome"));
        }
        assert_eq!(
            outcomes,
            [
                Outcome::RetryRequested,
                Outcome::Handled,
                Outcome::Duplicate
            ]
        );
        assert_eq!(*fake.calls.lock().expect("lock"), ["5551", "5551"]);
    }
}
