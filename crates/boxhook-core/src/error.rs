//! [`VerifyError`]: why a delivery was not accepted, with a stable code per kind.

use std::fmt;
use std::time::Duration;

/// Why a delivery failed verification.
///
/// Each variant carries the detail an operator needs ("which header", "how old,
/// and the limit"). [`VerifyError::code`] gives a stable string per
/// [`ErrorKind`] for logs, metrics and JSON. None of this should be sent back to
/// the network peer: the HTTP layer answers with a generic body.
///
/// ```
/// use std::time::Duration;
/// use boxhook_core::{ErrorKind, VerifyError};
///
/// let err = VerifyError::Expired { age: Duration::from_secs(742), limit: Duration::from_secs(600) };
/// assert_eq!(err.kind(), ErrorKind::Expired);
/// assert_eq!(err.code(), "expired");
/// assert_eq!(err.to_string(), "timestamp is 742 s old, limit 600 s");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// A required header is absent. For signatures this is reported only when
    /// no configured key has its header.
    MissingHeader {
        /// The header's lower-case name.
        name: &'static str,
    },
    /// A Box header is present but unusable before any meaning is read into it.
    InvalidHeader {
        /// The header's lower-case name.
        name: &'static str,
        /// What is wrong with it.
        problem: HeaderProblem,
    },
    /// `BOX-SIGNATURE-VERSION` is not `1`.
    UnsupportedVersion {
        /// The value received.
        found: String,
    },
    /// `BOX-SIGNATURE-ALGORITHM` is not `HmacSHA256`.
    UnsupportedAlgorithm {
        /// The value received.
        found: String,
    },
    /// `BOX-DELIVERY-TIMESTAMP` is not RFC 3339.
    MalformedTimestamp {
        /// The value received.
        found: String,
    },
    /// The delivery is older than the maximum age.
    Expired {
        /// How old the timestamp is.
        age: Duration,
        /// The configured maximum age.
        limit: Duration,
    },
    /// The timestamp is further in the future than the allowed clock skew.
    Future {
        /// How far ahead of the receiver's clock the timestamp is.
        skew: Duration,
        /// The configured maximum future skew.
        limit: Duration,
    },
    /// No signature matched and at least one configured signature header
    /// could not be decoded as 32 bytes of standard base64.
    MalformedSignature {
        /// The header's lower-case name.
        name: &'static str,
        /// What is wrong with it.
        problem: SignatureProblem,
    },
    /// Well-formed signatures, but none matches the body under any key.
    Mismatch {
        /// Whether the escaped form (see "The escaped form" in docs/PROTOCOL.md) was tried as well.
        escaped_form_tried: bool,
    },
}

impl VerifyError {
    /// The kind of failure, without its detail.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::MissingHeader { .. } => ErrorKind::MissingHeader,
            Self::InvalidHeader { .. } => ErrorKind::InvalidHeader,
            Self::UnsupportedVersion { .. } => ErrorKind::UnsupportedVersion,
            Self::UnsupportedAlgorithm { .. } => ErrorKind::UnsupportedAlgorithm,
            Self::MalformedTimestamp { .. } => ErrorKind::MalformedTimestamp,
            Self::Expired { .. } => ErrorKind::Expired,
            Self::Future { .. } => ErrorKind::Future,
            Self::MalformedSignature { .. } => ErrorKind::MalformedSignature,
            Self::Mismatch { .. } => ErrorKind::Mismatch,
        }
    }

    /// The stable code of this error's kind, e.g. `"mismatch"`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingHeader { name } => write!(f, "header {name} is missing"),
            Self::InvalidHeader { name, problem } => write!(f, "header {name} {problem}"),
            Self::UnsupportedVersion { found } => {
                write!(
                    f,
                    "signature version {found:?} is not supported, expected \"1\""
                )
            }
            Self::UnsupportedAlgorithm { found } => write!(
                f,
                "signature algorithm {found:?} is not supported, expected \"HmacSHA256\""
            ),
            Self::MalformedTimestamp { found } => {
                write!(f, "timestamp {found:?} is not an RFC 3339 date-time")
            }
            Self::Expired { age, limit } => write!(
                f,
                "timestamp is {} s old, limit {} s",
                age.as_secs(),
                limit.as_secs()
            ),
            Self::Future { skew, limit } => write!(
                f,
                "timestamp is {} s in the future, limit {} s",
                skew.as_secs(),
                limit.as_secs()
            ),
            Self::MalformedSignature { name, problem } => write!(f, "header {name} {problem}"),
            Self::Mismatch {
                escaped_form_tried: true,
            } => f.write_str(
                "no signature matches the body under any key, as received or in escaped form",
            ),
            Self::Mismatch {
                escaped_form_tried: false,
            } => f.write_str("no signature matches the body under any key"),
        }
    }
}

impl std::error::Error for VerifyError {}

/// The kinds of [`VerifyError`], each with a stable [`code`](ErrorKind::code).
///
/// ```
/// use boxhook_core::ErrorKind;
///
/// let codes: Vec<_> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
/// assert_eq!(codes, [
///     "missing_header", "invalid_header", "unsupported_version", "unsupported_algorithm",
///     "malformed_timestamp", "expired", "future", "malformed_signature", "mismatch",
/// ]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// See [`VerifyError::MissingHeader`].
    MissingHeader,
    /// See [`VerifyError::InvalidHeader`].
    InvalidHeader,
    /// See [`VerifyError::UnsupportedVersion`].
    UnsupportedVersion,
    /// See [`VerifyError::UnsupportedAlgorithm`].
    UnsupportedAlgorithm,
    /// See [`VerifyError::MalformedTimestamp`].
    MalformedTimestamp,
    /// See [`VerifyError::Expired`].
    Expired,
    /// See [`VerifyError::Future`].
    Future,
    /// See [`VerifyError::MalformedSignature`].
    MalformedSignature,
    /// See [`VerifyError::Mismatch`].
    Mismatch,
}

impl ErrorKind {
    /// Every kind, in the order verification can produce them.
    pub const ALL: [ErrorKind; 9] = [
        Self::MissingHeader,
        Self::InvalidHeader,
        Self::UnsupportedVersion,
        Self::UnsupportedAlgorithm,
        Self::MalformedTimestamp,
        Self::Expired,
        Self::Future,
        Self::MalformedSignature,
        Self::Mismatch,
    ];

    /// The stable code: lower-case, underscore-separated, never changed once released.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::MissingHeader => "missing_header",
            Self::InvalidHeader => "invalid_header",
            Self::UnsupportedVersion => "unsupported_version",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::MalformedTimestamp => "malformed_timestamp",
            Self::Expired => "expired",
            Self::Future => "future",
            Self::MalformedSignature => "malformed_signature",
            Self::Mismatch => "mismatch",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// What is wrong with a Box header, for [`VerifyError::InvalidHeader`].
///
/// ```
/// use boxhook_core::HeaderProblem;
///
/// assert_eq!(HeaderProblem::Conflicting.to_string(), "appears more than once with different values");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderProblem {
    /// The header appears twice or more with different values. Identical
    /// repeats (some proxies duplicate headers) are accepted.
    Conflicting,
    /// The value has a byte outside visible ASCII, space and tab.
    NotAscii,
    /// The value is longer than [`MAX_HEADER_LEN`](crate::headers::MAX_HEADER_LEN).
    TooLong {
        /// The value's length in bytes.
        len: usize,
    },
}

impl fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Conflicting => f.write_str("appears more than once with different values"),
            Self::NotAscii => f.write_str("has a byte that is not visible ASCII"),
            Self::TooLong { len } => write!(
                f,
                "is {len} bytes long, limit {}",
                crate::headers::MAX_HEADER_LEN
            ),
        }
    }
}

/// What is wrong with a signature header, for [`VerifyError::MalformedSignature`].
///
/// Box sends 44 characters of standard, padded base64; the
/// variants name the usual ways a copied signature goes wrong (see "Pitfalls seen in the wild" in
/// docs/PROTOCOL.md).
///
/// ```
/// use boxhook_core::SignatureProblem;
///
/// assert_eq!(
///     SignatureProblem::LooksHex.to_string(),
///     "looks like hex; Box sends standard base64",
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureProblem {
    /// 64 hex digits: an HMAC printed as hex instead of base64.
    LooksHex,
    /// Contains white space, as wrapped base64 does.
    Whitespace,
    /// Not standard padded base64 (URL-safe alphabet, missing padding, stray characters).
    NotBase64,
    /// Valid base64, but not of a 32-byte HMAC-SHA256.
    WrongLength {
        /// How many bytes it decodes to.
        decoded: usize,
    },
}

impl fmt::Display for SignatureProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LooksHex => f.write_str("looks like hex; Box sends standard base64"),
            Self::Whitespace => f.write_str("contains white space (wrapped base64?)"),
            Self::NotBase64 => f.write_str("is not standard padded base64"),
            Self::WrongLength { decoded } => {
                write!(f, "decodes to {decoded} bytes, expected 32")
            }
        }
    }
}
