//! [`Rejection`]: why the verify layer turned a request away, and the status
//! it answered with.

use std::fmt;

use boxhook_core::VerifyError;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};

/// Why [`Verify`](super::Verify) rejected a request.
///
/// | rejection | status | code |
/// |---|---|---|
/// | [`MethodNotAllowed`](Rejection::MethodNotAllowed) | 405 | `method_not_allowed` |
/// | [`PayloadTooLarge`](Rejection::PayloadTooLarge) | 413 | `payload_too_large` |
/// | [`Timeout`](Rejection::Timeout) | 408 | `timeout` |
/// | [`BodyRead`](Rejection::BodyRead) | 400 | `body_read` |
/// | [`Overloaded`](Rejection::Overloaded) | 503 | `overloaded`: the shared [`BodyBudget`](super::BodyBudget) is taken; Box retries |
/// | [`V1Callback`](Rejection::V1Callback) | 400 | `v1_callback_on_v2_endpoint`: an unsigned form or query request, as V1 webhooks send; point the V1 webhook at the V1 endpoint ([`crate::v1`]) |
/// | [`Unauthorized`](Rejection::Unauthorized) | 401 | the core's [`VerifyError::code`] (`mismatch`, `expired`, ...) |
///
/// The HTTP response carries only the status and an empty body, so the
/// receiver is no oracle for attackers; this value, placed in the response's
/// extensions and logged through `tracing`, carries the detail.
///
/// ```
/// use boxhook::verify::Rejection;
/// use http::StatusCode;
///
/// # fn inspect(response: http::Response<()>) {
/// if let Some(rejection) = response.extensions().get::<Rejection>() {
///     eprintln!("{} ({}): {rejection}", rejection.status(), rejection.code());
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// The method was not `POST`: 405.
    MethodNotAllowed,
    /// `Content-Length` or the bytes received passed the body limit: 413.
    PayloadTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The body did not arrive within the read deadline: 408.
    Timeout,
    /// The body stream broke off: 400.
    BodyRead {
        /// The body's error, as text.
        message: String,
    },
    /// The shared [`BodyBudget`](super::BodyBudget) could not cover the
    /// body, up front from `Content-Length` or as it arrived: 503, which Box
    /// retries.
    Overloaded {
        /// The configured budget in bytes.
        budget: usize,
    },
    /// The delivery failed verification: 401.
    Unauthorized(VerifyError),
    /// A V1 callback sent to the V2 endpoint: no signature or timestamp
    /// header, and a query string on a `GET` or a form body on a `POST`.
    /// 400; the V1 webhook's address should be the V1 endpoint
    /// ([`crate::v1`]).
    V1Callback,
}

impl Rejection {
    /// The status the layer answers with.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::BodyRead { .. } | Self::V1Callback => StatusCode::BAD_REQUEST,
            Self::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        }
    }

    /// A stable code: the core's [`VerifyError::code`] for verification
    /// failures, else `method_not_allowed`, `payload_too_large`, `timeout`,
    /// `body_read`, `overloaded` or `v1_callback_on_v2_endpoint`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::Timeout => "timeout",
            Self::BodyRead { .. } => "body_read",
            Self::Overloaded { .. } => "overloaded",
            Self::Unauthorized(e) => e.code(),
            Self::V1Callback => "v1_callback_on_v2_endpoint",
        }
    }

    /// The verification error, when that is the reason.
    #[must_use]
    pub fn verify_error(&self) -> Option<&VerifyError> {
        match self {
            Self::Unauthorized(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MethodNotAllowed => f.write_str("method is not POST"),
            Self::PayloadTooLarge { limit } => {
                write!(f, "body is larger than the limit of {limit} bytes")
            }
            Self::Timeout => f.write_str("body did not arrive before the read deadline"),
            Self::BodyRead { message } => write!(f, "body could not be read: {message}"),
            Self::Overloaded { budget } => write!(
                f,
                "the body budget of {budget} bytes is taken by requests in flight"
            ),
            Self::Unauthorized(e) => write!(f, "verification failed: {e}"),
            Self::V1Callback => f.write_str(
                "this unsigned query/form request looks like a V1 webhook callback sent to the \
                 V2 endpoint; point the V1 webhook (Developer Console) at the V1 endpoint \
                 (`boxhook serve --v1-path`, or boxhook::v1::V1Service)",
            ),
        }
    }
}

impl std::error::Error for Rejection {}

/// The headers and body of a delivery that failed verification, in the
/// 401's response extensions when the layer was built with
/// [`keep_rejected_delivery`](super::VerifyLayer::keep_rejected_delivery):
/// what [`diagnose`](crate::diagnose) needs to say why.
#[derive(Debug, Clone)]
pub struct RejectedDelivery {
    headers: HeaderMap,
    body: Bytes,
}

impl RejectedDelivery {
    pub(crate) fn new(headers: HeaderMap, body: Bytes) -> Self {
        Self { headers, body }
    }

    /// The request's headers.
    #[must_use]
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body, as received.
    #[must_use]
    pub fn body(&self) -> &Bytes {
        &self.body
    }
}
