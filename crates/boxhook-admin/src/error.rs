//! What can go wrong talking to Box: Box's own error answers, typed, and
//! the failures around them.

use std::fmt;

use serde::Deserialize;

/// An error answer from Box: the HTTP status and the fields of its JSON
/// error body (`{"type":"error","status":409,"code":"conflict",...}`), or of
/// the token endpoint's OAuth 2.0 body (`{"error":..,"error_description":..}`).
///
/// ```
/// let err = boxhook_admin::ApiError::from_body(
///     409,
///     br#"{"type":"error","status":409,"code":"conflict","message":"Webhook:1 already exists on the specified target.","request_id":"abc"}"#,
/// );
/// assert_eq!(err.code, "conflict");
/// assert_eq!(err.request_id.as_deref(), Some("abc"));
/// assert_eq!(
///     err.to_string(),
///     "Box answered 409 conflict: Webhook:1 already exists on the specified target. (request id abc)"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status Box answered with.
    pub status: u16,
    /// Box's error code (`conflict`, `not_found`, `bad_request`,
    /// `invalid_grant`, ...); for an answer without a JSON body, a code
    /// derived from the status (`unauthorized`, `rate_limited`, ...).
    pub code: String,
    /// Box's message, or a description of the status.
    pub message: String,
    /// Box's request id, to quote to Box support.
    pub request_id: Option<String>,
}

#[derive(Deserialize)]
struct ClientErrorBody {
    code: Option<String>,
    message: Option<String>,
    request_id: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

impl ApiError {
    /// The error for an answer with `status` and `body`, reading Box's
    /// error JSON when there is one.
    #[must_use]
    pub fn from_body(status: u16, body: &[u8]) -> Self {
        let parsed: Option<ClientErrorBody> = serde_json::from_slice(body).ok();
        let (code, message, request_id) = match parsed {
            Some(b) => (
                b.code.or(b.error),
                b.message.or(b.error_description),
                b.request_id,
            ),
            None => (None, None, None),
        };
        Self {
            status,
            code: code.unwrap_or_else(|| default_code(status).to_owned()),
            message: message.unwrap_or_else(|| default_message(status).to_owned()),
            request_id,
        }
    }

    /// Whether Box refused because the item already has a webhook from this
    /// app and user (409).
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        self.status == 409
    }

    /// Whether the webhook (or item) does not exist (404).
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        self.status == 404
    }
}

fn default_code(status: u16) -> &'static str {
    match status {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        429 => "rate_limited",
        500..=599 => "server_error",
        _ => "unexpected_status",
    }
}

fn default_message(status: u16) -> &'static str {
    match status {
        401 => "the access token is invalid or expired",
        403 => "the app or user may not do this (is the Manage Webhooks scope enabled?)",
        429 => "too many requests",
        500..=599 => "Box had an internal error",
        _ => "no error body",
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Box answered {} {}: {}",
            self.status, self.code, self.message
        )?;
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// Any failure of a [`BoxClient`](crate::BoxClient) call.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Box answered with an error (after retries, for 429 and 5xx).
    Api(ApiError),
    /// Box could not be reached, or did not answer in time.
    Transport(String),
    /// Box answered 2xx with a body that is not what its API documents.
    Decode {
        /// Which answer.
        what: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// The client is misconfigured (API base, credentials).
    Config(String),
}

impl Error {
    /// Box's error, when Box answered with one.
    #[must_use]
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Self::Api(err) => Some(err),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Api(err) => {
                fmt::Display::fmt(err, f)?;
                match err.status {
                    401 => f.write_str(
                        "; check BOX_ACCESS_TOKEN (developer tokens expire after an hour) or \
                         the client id, secret and subject",
                    ),
                    403 => f.write_str(
                        "; enable the Manage Webhooks scope for the app and re-authorize it",
                    ),
                    _ => Ok(()),
                }
            }
            Self::Transport(detail) => write!(f, "cannot reach the Box API: {detail}"),
            Self::Decode { what, detail } => {
                write!(f, "unexpected answer from the Box API ({what}): {detail}")
            }
            Self::Config(detail) => f.write_str(detail),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Api(err) => Some(err),
            _ => None,
        }
    }
}

impl From<ApiError> for Error {
    fn from(err: ApiError) -> Self {
        Self::Api(err)
    }
}
