//! [`Expected`]: what the core's verifier should answer for a delivery.

use std::fmt;

use boxhook_core::{BodyForm, ErrorKind, Verified, VerifyError};

/// What a [`Verifier`](crate::Verifier) with default settings and the
/// delivery's own key ring should answer, at the delivery's
/// [`now`](crate::runtime::send::Delivery::now).
///
/// A receiver built on boxhook turns [`Accepted`](Self::Accepted) into a 2xx
/// and every [`Rejected`](Self::Rejected) into a 401.
///
/// ```
/// use boxhook::verify::ErrorKind;
/// use boxhook::{BodyForm, Verifier};
/// use boxhook::runtime::send::{Delivery, Expected};
///
/// let delivery = Delivery::new(r#"{"type":"webhook_event"}"#).stale();
/// assert_eq!(delivery.expected(), Expected::Rejected(ErrorKind::Expired));
///
/// let verifier = Verifier::new(delivery.key_ring().clone());
/// let result = verifier.verify(&delivery.headers(), &delivery.body(), delivery.now());
/// assert!(delivery.expected().matches(&result));
/// assert_eq!(Expected::Accepted(BodyForm::Raw).to_string(), "accepted (raw body)");
/// assert_eq!(delivery.expected().to_string(), "rejected: expired");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Expected {
    /// Verifies; the signature matches this form of the body.
    Accepted(BodyForm),
    /// Fails with an error of this kind.
    Rejected(ErrorKind),
}

impl Expected {
    /// Whether the delivery should verify.
    #[must_use]
    pub const fn is_accepted(self) -> bool {
        matches!(self, Self::Accepted(_))
    }

    /// Whether a verification result is this answer: same body form when
    /// accepted, same [`ErrorKind`] when rejected.
    #[must_use]
    pub fn matches(self, result: &Result<Verified, VerifyError>) -> bool {
        self == Self::from(result)
    }
}

impl From<&Result<Verified, VerifyError>> for Expected {
    /// The answer a verification result amounts to.
    fn from(result: &Result<Verified, VerifyError>) -> Self {
        match result {
            Ok(verified) => Self::Accepted(verified.body_form()),
            Err(err) => Self::Rejected(err.kind()),
        }
    }
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Accepted(form) => write!(f, "accepted ({form} body)"),
            Self::Rejected(kind) => write!(f, "rejected: {kind}"),
        }
    }
}
