//! axum glue (feature `axum`).
//!
//! Two ways in:
//!
//! - **Mount the router** as a service at a path, beside your other routes;
//!   you keep boxhook's idempotency and status table:
//!
//!   ```
//!   use boxhook::{Router as Webhooks, VerifyLayer};
//!   use boxhook::{KeyRing, Verifier};
//!   use boxhook::Layer as _;
//!
//!   let verifier = Verifier::new(KeyRing::from_strs(Some("primary-key"), None)?);
//!   let webhooks = VerifyLayer::new(verifier).layer(Webhooks::new());
//!   let app: axum::Router = axum::Router::new()
//!       .route("/health", axum::routing::get(|| async { "ok" }))
//!       .route_service("/box/webhooks", webhooks);
//!   # let _ = app;
//!   # Ok::<(), boxhook::KeyError>(())
//!   ```
//!
//! - **Write an axum handler** with the [`BoxEvent`] extractor, behind
//!   [`verify_layer`]. You then own the status codes and deduplication (use
//!   [`idempotency`](crate::idempotency) yourself): return 2xx only once the
//!   event is safely handled, and 2xx for events you ignore.
//!
//!   ```
//!   use axum::http::StatusCode;
//!   use boxhook::axum::{verify_layer, BoxEvent};
//!   use boxhook::{KeyRing, Verifier};
//!
//!   async fn receive(BoxEvent { event, verified, .. }: BoxEvent) -> StatusCode {
//!       println!("{} via {} key", event.trigger(), verified.key_slot());
//!       StatusCode::OK
//!   }
//!
//!   let verifier = Verifier::new(KeyRing::from_strs(Some("primary-key"), None)?);
//!   let app: axum::Router = axum::Router::new()
//!       .route("/box/webhooks", axum::routing::post(receive).layer(verify_layer(verifier)));
//!   # let _ = app;
//!   # Ok::<(), boxhook::KeyError>(())
//!   ```

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use boxhook_core::model::WebhookEvent;
use boxhook_core::{Verified, Verifier};
use bytes::Bytes;

use crate::{escaped, VerifyLayer};

/// A [`VerifyLayer`] whose inner service receives axum's [`Body`], for use
/// with `MethodRouter::layer` or `Router::layer`.
///
/// ```
/// use boxhook::{KeyRing, Verifier};
/// let layer = boxhook::axum::verify_layer(Verifier::new(KeyRing::from_strs(Some("k"), None)?));
/// # let _ = layer;
/// # Ok::<(), boxhook::KeyError>(())
/// ```
#[must_use]
pub fn verify_layer(verifier: Verifier) -> VerifyLayer<Body> {
    VerifyLayer::new(verifier).with_body()
}

/// A verified, parsed Box event: the extractor for axum handlers behind
/// [`verify_layer`]. See the [module docs](self).
///
/// Rejections: 500 when the route has no verify layer (a setup error, logged
/// at `error`), 400 when the verified body is not a `webhook_event`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BoxEvent {
    /// The event.
    pub event: WebhookEvent,
    /// The verification proof.
    pub verified: Verified,
    /// The body exactly as received.
    pub body: Bytes,
}

/// Why [`BoxEvent`] could not be extracted.
///
/// ```
/// use axum::response::IntoResponse;
/// use boxhook::axum::BoxEventRejection;
/// assert_eq!(BoxEventRejection::NotVerified.into_response().status(), 500);
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum BoxEventRejection {
    /// No [`Verified`] proof: the route lacks [`verify_layer`].
    NotVerified,
    /// The body could not be read.
    Body,
    /// The verified body is not a `webhook_event`.
    NotAnEvent(boxhook_core::model::ParseError),
}

impl IntoResponse for BoxEventRejection {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::NotVerified => {
                tracing::error!("BoxEvent extracted on a route without boxhook's verify layer");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Self::Body => StatusCode::BAD_REQUEST,
            Self::NotAnEvent(error) => {
                tracing::error!(
                    error = escaped::shown(&error),
                    "verified body is not a webhook_event"
                );
                StatusCode::BAD_REQUEST
            }
        };
        status.into_response()
    }
}

impl<S: Send + Sync> FromRequest<S> for BoxEvent {
    type Rejection = BoxEventRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let verified = request
            .extensions()
            .get::<Verified>()
            .cloned()
            .ok_or(BoxEventRejection::NotVerified)?;
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|_| BoxEventRejection::Body)?;
        let event = WebhookEvent::parse(&body).map_err(BoxEventRejection::NotAnEvent)?;
        Ok(Self {
            event,
            verified,
            body,
        })
    }
}
