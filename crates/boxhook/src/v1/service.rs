//! [`V1Service`]: the tower service that receives V1 callbacks.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use boxhook_core::{Clock, SystemClock};
use bytes::Bytes;
use http::{header, HeaderMap, Method, Request, Response};
use http_body::Body;
use http_body_util::{BodyExt as _, Full, Limited};
use tower_service::Service;

use super::{Params, V1Auth, V1Callback, V1Fields, V1Rejection, V1Router};
use crate::{escaped, Outcome, RequestClock};

/// The default body limit: 16 KiB, far above a console-configured set of
/// parameters.
pub const DEFAULT_V1_BODY_LIMIT: usize = 16 * 1024;

/// The default time a callback's body has to arrive.
pub const DEFAULT_V1_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Receives V1 callbacks: checks the request, the secret ([`V1Auth`]),
/// decodes the parameters into a [`V1Callback`] and hands it to a
/// [`V1Router`].
///
/// | request | answer | code (logged, and [`V1Rejection`] in the response's extensions) |
/// |---|---|---|
/// | carries `BOX-SIGNATURE-*` or `BOX-DELIVERY-TIMESTAMP` | 400 | `v2_delivery_on_v1_endpoint`: a V2 webhook points at the V1 address |
/// | not `GET` or `POST` | 405 | `method_not_allowed` |
/// | `POST` not `application/x-www-form-urlencoded` | 415 | `v1_unsupported_media_type` |
/// | body over the limit | 413 | `payload_too_large` |
/// | body slower than the read timeout | 408 | `timeout` |
/// | parameters not decodable | 400 | [`ParamsError::code`](super::ParamsError::code) |
/// | secret missing, repeated or wrong | 401 | [`V1AuthFailure::code`](super::V1AuthFailure::code) |
/// | accepted | the [`Outcome`]'s status | (the `Outcome` and a [`V1Accepted`] are in the extensions) |
///
/// Every rejection has an empty body. Parameters come from the query
/// string, then (for `POST`) from the form body, in that order.
///
/// ```
/// use boxhook::v1::{V1Auth, V1Router, V1Service};
///
/// let auth = V1Auth::secret("token", std::env::var("BOX_V1_SECRET").unwrap_or_default());
/// # let auth = V1Auth::secret("token", "a-secret-of-16-bytes-at-least");
/// let service = V1Service::new(auth?, V1Router::new());
/// // axum: app.route_service("/box/v1", service)
/// # let _ = service;
/// # Ok::<(), boxhook::v1::V1AuthError>(())
/// ```
///
/// `ResBody` is the response body type (default `Full<Bytes>`; see
/// [`with_body`](Self::with_body)); every response's body is empty.
pub struct V1Service<ResBody = Full<Bytes>> {
    config: Arc<Config>,
    _body: PhantomData<fn() -> ResBody>,
}

impl<ResBody> Clone for V1Service<ResBody> {
    fn clone(&self) -> Self {
        Self {
            config: Arc::clone(&self.config),
            _body: PhantomData,
        }
    }
}

#[derive(Clone)]
struct Config {
    auth: V1Auth,
    router: V1Router,
    fields: V1Fields,
    body_limit: usize,
    read_timeout: Duration,
    clock: RequestClock,
}

impl V1Service {
    /// A service accepting what `auth` accepts and routing it with
    /// `router`. With [`V1Auth::allow_unauthenticated`] it logs a warning
    /// here, once.
    #[must_use]
    pub fn new(auth: V1Auth, router: V1Router) -> Self {
        if auth.is_unauthenticated() {
            tracing::warn!(
                "V1 callbacks are accepted WITHOUT a secret (allow_unauthenticated): anyone \
                 who learns the URL can add events; configure a secret parameter instead"
            );
        }
        Self {
            config: Arc::new(Config {
                auth,
                router,
                fields: V1Fields::default(),
                body_limit: DEFAULT_V1_BODY_LIMIT,
                read_timeout: DEFAULT_V1_READ_TIMEOUT,
                clock: RequestClock::new(SystemClock),
            }),
            _body: PhantomData,
        }
    }
}

impl<ResBody> V1Service<ResBody> {
    /// The same service, answering with another (empty) body type.
    #[must_use]
    pub fn with_body<B2>(self) -> V1Service<B2> {
        V1Service {
            config: self.config,
            _body: PhantomData,
        }
    }

    fn with(self, change: impl FnOnce(&mut Config)) -> Self {
        let mut config = Arc::unwrap_or_clone(self.config);
        change(&mut config);
        Self {
            config: Arc::new(config),
            _body: PhantomData,
        }
    }

    /// Which parameters carry the typed fields (default
    /// [`V1Fields::default`]).
    #[must_use]
    pub fn fields(self, fields: V1Fields) -> Self {
        self.with(|c| c.fields = fields)
    }

    /// The largest body accepted (default [`DEFAULT_V1_BODY_LIMIT`]).
    #[must_use]
    pub fn body_limit(self, bytes: usize) -> Self {
        self.with(|c| c.body_limit = bytes)
    }

    /// How long a body may take to arrive (default
    /// [`DEFAULT_V1_READ_TIMEOUT`]).
    #[must_use]
    pub fn read_timeout(self, timeout: Duration) -> Self {
        self.with(|c| c.read_timeout = timeout)
    }

    /// The clock that dates callbacks (default [`SystemClock`]).
    #[must_use]
    pub fn clock(self, clock: impl Clock) -> Self {
        let clock = RequestClock::new(clock);
        self.with(|c| c.clock = clock)
    }
}

impl<ResBody> fmt::Debug for V1Service<ResBody> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V1Service")
            .field("auth", &self.config.auth)
            .field("router", &self.config.router)
            .field("body_limit", &self.config.body_limit)
            .finish_non_exhaustive()
    }
}

impl<B, ResBody> Service<Request<B>> for V1Service<ResBody>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let config = Arc::clone(&self.config);
        Box::pin(async move {
            let response = match receive(&config, request).await {
                Ok((outcome, accepted)) => {
                    let mut response = Response::new(ResBody::default());
                    *response.status_mut() = outcome.status();
                    response.extensions_mut().insert(outcome);
                    response.extensions_mut().insert(accepted);
                    response
                }
                Err(rejection) => rejected(rejection),
            };
            Ok(response)
        })
    }
}

/// Whether `headers` carry what only a V2 delivery carries.
pub(crate) fn has_v2_headers(headers: &HeaderMap) -> bool {
    [
        boxhook_core::headers::SIGNATURE_PRIMARY,
        boxhook_core::headers::SIGNATURE_SECONDARY,
        boxhook_core::headers::DELIVERY_TIMESTAMP,
    ]
    .iter()
    .any(|name| headers.contains_key(*name))
}

/// Whether the request's `Content-Type` is a form.
pub(crate) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Which callback a response answered: put in the extensions of every
/// response to an accepted callback, for logs.
///
/// ```
/// # use boxhook::v1::{V1Accepted, V1Trigger};
/// # fn log(response: &http::Response<()>) {
/// if let Some(accepted) = response.extensions().get::<V1Accepted>() {
///     println!("{} {}", accepted.id, accepted.trigger);
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Accepted {
    /// The id the receiver gave the callback.
    pub id: String,
    /// Its trigger.
    pub trigger: super::V1Trigger,
}

async fn receive<B>(
    config: &Config,
    request: Request<B>,
) -> Result<(Outcome, V1Accepted), V1Rejection>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if has_v2_headers(request.headers()) {
        return Err(V1Rejection::SignedV2Delivery);
    }
    let method = request.method().clone();
    if method != Method::GET && method != Method::POST {
        return Err(V1Rejection::MethodNotAllowed);
    }
    let mut params = Params::parse(request.uri().query().unwrap_or_default().as_bytes())
        .map_err(V1Rejection::Params)?;
    if method == Method::POST {
        let body = read_body(config, request).await?;
        if !body.is_empty() {
            let from_body = Params::parse(&body).map_err(V1Rejection::Params)?;
            let total = params.len().saturating_add(from_body.len());
            if total > super::MAX_PARAMS {
                return Err(V1Rejection::Params(super::ParamsError::TooMany {
                    max: super::MAX_PARAMS,
                }));
            }
            params = Params::from_pairs(params.iter().chain(from_body.iter()));
        }
    }
    config
        .auth
        .check(&mut params)
        .map_err(V1Rejection::Unauthorized)?;
    let now = config.clock.now();
    let callback = V1Callback::new(V1Callback::new_id(now), now, params, &config.fields);
    tracing::debug!(
        callback_id = callback.id(),
        trigger = escaped::text(callback.trigger().as_str()),
        "accepted V1 callback"
    );
    let accepted = V1Accepted {
        id: callback.id().to_owned(),
        trigger: callback.trigger().clone(),
    };
    Ok((config.router.dispatch(callback).await, accepted))
}

async fn read_body<B>(config: &Config, request: Request<B>) -> Result<Bytes, V1Rejection>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let limit = config.body_limit;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(V1Rejection::PayloadTooLarge { limit });
    }
    // A form, or a body without a type (read as a form).
    if request.headers().contains_key(header::CONTENT_TYPE) && !is_form(request.headers()) {
        return Err(V1Rejection::UnsupportedMediaType);
    }
    let collected = tokio::time::timeout(
        config.read_timeout,
        Limited::new(request.into_body(), limit).collect(),
    )
    .await
    .map_err(|_| V1Rejection::Timeout)?;
    match collected {
        Ok(body) => Ok(body.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            Err(V1Rejection::PayloadTooLarge { limit })
        }
        Err(error) => Err(V1Rejection::BodyRead {
            message: error.to_string(),
        }),
    }
}

fn rejected<ResBody: Default>(rejection: V1Rejection) -> Response<ResBody> {
    match &rejection {
        V1Rejection::Unauthorized(_) | V1Rejection::SignedV2Delivery => tracing::warn!(
            code = rejection.code(),
            "rejected V1 callback: {}",
            escaped::shown(&rejection)
        ),
        other => tracing::info!(
            code = other.code(),
            "rejected V1 callback: {}",
            escaped::shown(other)
        ),
    }
    let mut response = Response::new(ResBody::default());
    *response.status_mut() = rejection.status();
    response.extensions_mut().insert(rejection);
    response
}
