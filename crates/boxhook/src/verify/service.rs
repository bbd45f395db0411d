//! [`Verify`], the service [`VerifyLayer`](super::VerifyLayer) makes.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use boxhook_core::printable_bytes;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response};
use http_body::Body;
use http_body_util::Full;
use tower_service::Service;

use super::body::{collect, CollectError};
use super::{BodyBudget, Config, RejectedDelivery, Rejection};
use crate::{escaped, metrics};

/// Verifies Box deliveries before they reach `S`; see [`VerifyLayer`](super::VerifyLayer).
///
/// `S` receives `Request<B>` with the whole body and the
/// [`Verified`](crate::Verified) proof in the extensions. Rejections
/// are responses (with an empty `ResBody::default()` body), never errors: the
/// error type is `S::Error`.
///
/// Bodies are reserved in the layer's own
/// [`body_budget`](super::VerifyLayer::body_budget) when it has one, or else
/// in a [`BodyBudget`] found in the request's extensions, as `boxhook::server`
/// (feature `server`) puts there: one budget for every request the server
/// takes, with no code in the app.
pub struct Verify<S, B = Full<Bytes>> {
    inner: S,
    config: Arc<Config>,
    _body: PhantomData<fn() -> B>,
}

impl<S, B> Verify<S, B> {
    pub(super) fn new(inner: S, config: Arc<Config>) -> Self {
        Self {
            inner,
            config,
            _body: PhantomData,
        }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: Clone, B> Clone for Verify<S, B> {
    fn clone(&self) -> Self {
        Self::new(self.inner.clone(), Arc::clone(&self.config))
    }
}

impl<S: fmt::Debug, B> fmt::Debug for Verify<S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verify")
            .field("inner", &self.inner)
            .field("body_limit", &self.config.body_limit)
            .finish_non_exhaustive()
    }
}

impl<S, B, ReqBody, ResBody> Service<Request<ReqBody>> for Verify<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: From<Bytes> + Send + 'static,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: fmt::Display,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The body is awaited before the inner service is called, so take the
        // service that was driven to readiness and leave a clone in its place
        // (tower's `Service` docs, "Be careful when cloning inner services").
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let config = Arc::clone(&self.config);
        ResponseFuture {
            inner: Box::pin(verify_then_call(inner, config, request)),
        }
    }
}

async fn verify_then_call<S, B, ReqBody, ResBody>(
    mut inner: S,
    config: Arc<Config>,
    request: Request<ReqBody>,
) -> Result<Response<ResBody>, S::Error>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    B: From<Bytes>,
    ReqBody: Body,
    ReqBody::Error: fmt::Display,
    ResBody: Default,
{
    // Only rejections log it (a verified delivery carries it in `Verified`):
    // keep the header value, a reference-counted handle, not a copy.
    let delivery_id = request
        .headers()
        .get(boxhook_core::headers::DELIVERY_ID)
        .cloned();
    let reject = |rejection: Rejection| Ok(rejected(rejection, delivery_id.as_ref()));

    if looks_like_v1(&request) {
        return reject(Rejection::V1Callback);
    }
    if request.method() != Method::POST {
        return reject(Rejection::MethodNotAllowed);
    }
    let limit = config.body_limit;
    let declared = declared_length(&request);
    if declared.is_some_and(|n| n > limit as u64)
        || request.body().size_hint().lower() > limit as u64
    {
        return reject(Rejection::PayloadTooLarge { limit });
    }

    // The layer's own budget, else the one a server put in the extensions.
    let budget = config
        .budget
        .clone()
        .or_else(|| request.extensions().get::<BodyBudget>().cloned());
    // Held until the inner service's response is ready: the body's bytes
    // live until then. Given back on every return (and on cancellation).
    let mut reservation = budget.as_ref().map(BodyBudget::reservation);
    if let Some(reservation) = reservation.as_mut() {
        // At most `limit` here: over it was answered 413 above.
        let upfront = declared.unwrap_or_else(|| request.body().size_hint().lower());
        if !reservation.cover(usize::try_from(upfront).unwrap_or(usize::MAX)) {
            return reject(overloaded(budget.as_ref()));
        }
    }

    let (parts, body) = request.into_parts();
    let collected = collect(
        body,
        limit,
        declared,
        config.read_timeout,
        reservation.as_mut(),
    );
    let bytes = match collected.await {
        Ok(bytes) => bytes,
        Err(CollectError::TooLarge) => return reject(Rejection::PayloadTooLarge { limit }),
        Err(CollectError::TimedOut) => return reject(Rejection::Timeout),
        Err(CollectError::Read(message)) => return reject(Rejection::BodyRead { message }),
        Err(CollectError::Overloaded) => return reject(overloaded(budget.as_ref())),
    };

    let started = Instant::now();
    let result = config.verifier.verify(
        &parts.headers,
        &bytes,
        boxhook_core::Clock::now(&config.clock),
    );
    metrics::verify_time(started.elapsed());
    let verified = match result {
        Ok(verified) => verified,
        Err(error) => {
            let mut response = rejected(Rejection::Unauthorized(error), delivery_id.as_ref());
            if config.keep_rejected {
                let delivery = RejectedDelivery::new(parts.headers, bytes);
                response.extensions_mut().insert(delivery);
            }
            return Ok(response);
        }
    };
    metrics::verified(verified.key_slot(), verified.body_form());
    tracing::debug!(
        delivery_id = escaped::opt(verified.delivery_id()),
        key = verified.key_slot().as_str(),
        form = verified.body_form().as_str(),
        age_s = verified.age().num_seconds(),
        "verified Box delivery"
    );
    let mut request = Request::from_parts(parts, B::from(bytes));
    request.extensions_mut().insert(verified);
    // Everything behind the layer reads the time from here: one clock.
    request.extensions_mut().insert(config.clock.clone());
    let response = inner.call(request).await;
    drop(reservation);
    if let Ok(response) = &response {
        metrics::delivery(response.status());
    }
    response
}

/// An unsigned `GET` with a query, or an unsigned form `POST`: what a V1
/// webhook sends.
fn looks_like_v1<T>(request: &Request<T>) -> bool {
    !crate::v1::has_v2_headers(request.headers())
        && ((request.method() == Method::GET && request.uri().query().is_some())
            || (request.method() == Method::POST && crate::v1::is_form(request.headers())))
}

fn overloaded(budget: Option<&BodyBudget>) -> Rejection {
    Rejection::Overloaded {
        budget: budget.map_or(0, BodyBudget::capacity),
    }
}

fn declared_length<T>(request: &Request<T>) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn rejected<ResBody: Default>(
    rejection: Rejection,
    delivery_id: Option<&HeaderValue>,
) -> Response<ResBody> {
    let delivery_id = delivery_id.map(|v| tracing::field::display(printable_bytes(v.as_bytes())));
    match &rejection {
        Rejection::Unauthorized(error) => tracing::warn!(
            delivery_id,
            code = error.code(),
            "rejected Box delivery: {}",
            escaped::shown(error)
        ),
        Rejection::Overloaded { .. } | Rejection::V1Callback => tracing::warn!(
            delivery_id,
            code = rejection.code(),
            "rejected request: {rejection}"
        ),
        other => tracing::info!(
            delivery_id,
            code = other.code(),
            "rejected request: {}",
            escaped::shown(other)
        ),
    }
    metrics::rejection(rejection.code());
    metrics::delivery(rejection.status());
    let mut response = Response::new(ResBody::default());
    *response.status_mut() = rejection.status();
    response.extensions_mut().insert(rejection);
    response
}

/// The future [`Verify`] returns.
pub struct ResponseFuture<ResBody, E> {
    inner: Pin<Box<dyn Future<Output = Result<Response<ResBody>, E>> + Send>>,
}

impl<ResBody, E> Future for ResponseFuture<ResBody, E> {
    type Output = Result<Response<ResBody>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<ResBody, E> fmt::Debug for ResponseFuture<ResBody, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
