//! [`V1Rejection`]: why the V1 service turned a request away.

use std::fmt;

use http::StatusCode;

use super::{ParamsError, V1AuthFailure};

/// Why [`V1Service`](super::V1Service) rejected a request; the table of
/// answers is on `V1Service`. The peer gets the status and an empty body;
/// this value goes to the log and into the response's extensions.
///
/// ```
/// use boxhook::v1::V1Rejection;
///
/// let rejection = V1Rejection::SignedV2Delivery;
/// assert_eq!(rejection.status(), 400);
/// assert_eq!(rejection.code(), "v2_delivery_on_v1_endpoint");
/// assert!(rejection.to_string().contains("V2 endpoint"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum V1Rejection {
    /// The request carries V2 signature or timestamp headers: a V2
    /// webhook's address points at the V1 endpoint. 400.
    SignedV2Delivery,
    /// Neither `GET` nor `POST`: 405.
    MethodNotAllowed,
    /// A `POST` whose `Content-Type` is not a form: 415.
    UnsupportedMediaType,
    /// The body is over the limit: 413.
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body did not arrive in time: 408.
    Timeout,
    /// The body stream broke off: 400.
    BodyRead {
        /// The body's error, as text.
        message: String,
    },
    /// The parameters could not be decoded: 400.
    Params(ParamsError),
    /// The secret is missing, repeated or wrong: 401.
    Unauthorized(V1AuthFailure),
}

impl V1Rejection {
    /// The status the service answers with.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::SignedV2Delivery | Self::BodyRead { .. } | Self::Params(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        }
    }

    /// A stable snake-case code, for logs and metrics.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::SignedV2Delivery => "v2_delivery_on_v1_endpoint",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::UnsupportedMediaType => "v1_unsupported_media_type",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::Timeout => "timeout",
            Self::BodyRead { .. } => "body_read",
            Self::Params(error) => error.code(),
            Self::Unauthorized(failure) => failure.code(),
        }
    }
}

impl fmt::Display for V1Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SignedV2Delivery => f.write_str(
                "this request carries BOX-SIGNATURE / BOX-DELIVERY-TIMESTAMP headers, so it is a \
                 V2 webhook delivery sent to the V1 endpoint; point the V2 webhook's address at \
                 the V2 endpoint instead",
            ),
            Self::MethodNotAllowed => f.write_str("method is neither GET nor POST"),
            Self::UnsupportedMediaType => {
                f.write_str("a POST callback must be application/x-www-form-urlencoded")
            }
            Self::PayloadTooLarge { limit } => {
                write!(f, "body is larger than the limit of {limit} bytes")
            }
            Self::Timeout => f.write_str("body did not arrive before the read deadline"),
            Self::BodyRead { message } => write!(f, "body could not be read: {message}"),
            Self::Params(error) => write!(f, "{error}"),
            Self::Unauthorized(failure) => write!(f, "not authenticated: {failure}"),
        }
    }
}

impl std::error::Error for V1Rejection {}
