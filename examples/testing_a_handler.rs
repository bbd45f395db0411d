//! Testing your own handlers with `boxhook-testkit`: requests exactly as Box
//! sends them, and every way a delivery goes wrong. The tests are the point:
//!
//! ```text
//! cargo test -p boxhook-examples --example testing_a_handler
//! ```

use std::sync::{Arc, Mutex};

use boxhook::{DeliveryContext, HandlerError, Router};
use boxhook::{Trigger, WebhookEvent};

/// The application's router: indexes uploaded files by name.
pub fn my_router(index: Arc<Mutex<Vec<String>>>) -> Router {
    Router::new().on(
        Trigger::FileUploaded,
        move |event: WebhookEvent, _ctx: DeliveryContext| {
            let index = index.clone();
            async move {
                let name = event
                    .source()
                    .and_then(|s| s.name())
                    .ok_or("upload without a name")?;
                index
                    .lock()
                    .map_err(|_| "index lock poisoned")?
                    .push(name.to_owned());
                Ok::<_, HandlerError>(())
            }
        },
    )
}

fn main() {
    println!("run the tests: cargo test -p boxhook-examples --example testing_a_handler");
}

#[cfg(test)]
mod tests {
    use super::*;
    use boxhook::{Layer as _, Outcome, Verifier, VerifyLayer};
    use boxhook_testkit::{fixtures, Delivery};
    use tower::ServiceExt as _;

    fn service(
        delivery: &Delivery,
        index: Arc<Mutex<Vec<String>>>,
    ) -> boxhook::verify::Verify<Router> {
        VerifyLayer::new(Verifier::new(delivery.key_ring().clone()))
            .clock(delivery.clock())
            .layer(my_router(index))
    }

    #[tokio::test]
    async fn uploads_are_indexed_once_and_forgeries_never() {
        let index = Arc::default();
        let delivery = fixtures::get("file.uploaded").expect("fixture").delivery();
        let service = service(&delivery, Arc::clone(&index));

        let response = service
            .clone()
            .oneshot(delivery.to_request())
            .await
            .expect("infallible");
        assert_eq!(
            response.extensions().get::<Outcome>(),
            Some(&Outcome::Handled)
        );
        // Box retries with a new delivery id: acknowledged, not handled again.
        let retry = delivery.clone().delivery_id("retry-1").to_request();
        let response = service.clone().oneshot(retry).await.expect("infallible");
        assert_eq!(
            response.extensions().get::<Outcome>(),
            Some(&Outcome::Duplicate)
        );

        for forged in [
            delivery.clone().tampered(),
            delivery.clone().stale(),
            delivery.clone().wrong_key(),
        ] {
            let response = service
                .clone()
                .oneshot(forged.to_request())
                .await
                .expect("infallible");
            assert_eq!(response.status(), 401);
        }
        assert_eq!(index.lock().expect("lock").len(), 1);
    }
}
