//! Why a delivery does not verify: [`diagnose`] runs the [`Verifier`], and
//! when it fails, repairs the body, the headers or the keys one way at a time
//! and verifies again. Each [`Hint`] carries a stable [`HintCode`].
//!
//! The rule: a repair is named only when the repaired delivery really
//! verifies ([`HintCode::is_repair`]); the other hints state what the
//! headers or the body show for certain (a missing header, a body that is
//! JSON but not as Box writes it), and never claim a verification.
//!
//! Pure: no IO, time from the caller. Its cost is bounded: the repairs run
//! only after a failed verification, only one at a time (about thirty HMAC
//! passes over the body in all), and not at all on a body over
//! [`MAX_REPAIR_BODY`] bytes.
//!
//! ```
//! use boxhook_core::diagnose::{diagnose, DiagnosisKeys, HintCode};
//! use boxhook_core::{DeliveryHeaders, DeliveryTimestamp, KeyRing, Signer};
//!
//! let keys = DiagnosisKeys::new(Some("SamplePrimaryKey"), None)?;
//! let ts = DeliveryTimestamp::parse("2020-01-01T00:00:00-07:00")?;
//! let sent = br#"{"type":"webhook_event","id":"1"}"#;
//! let signed = Signer::new(KeyRing::from_strs(Some("SamplePrimaryKey"), None)?).sign(sent, &ts, "d-1");
//! let headers = DeliveryHeaders::from_pairs(signed.iter())?;
//!
//! // A framework parsed the JSON and wrote it again, indented.
//! let received = b"{\n  \"type\": \"webhook_event\",\n  \"id\": \"1\"\n}";
//! let diagnosis = diagnose(&headers, received, &keys, ts.datetime().to_utc());
//! assert!(!diagnosis.is_valid());
//! assert_eq!(diagnosis.codes(), [HintCode::ReserializedWhitespace]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod body;
mod charset;
mod check;
mod code;
mod header;
mod json;
mod keys;

use std::fmt;

use chrono::{DateTime, Utc};

pub use code::HintCode;

use crate::{DeliveryHeaders, Freshness, KeyRing, KeySlot, Verified, Verifier, VerifyError};

/// The largest body the diagnosis repairs and re-verifies, in bytes: 1 MiB.
/// Box's payloads are a few KiB; above this the diagnosis reports
/// [`HintCode::BodyTooLarge`] instead of hashing the body dozens of times.
pub const MAX_REPAIR_BODY: usize = 1 << 20;

/// The keys as the operator gave them, text and all: the key checks
/// ([`HintCode::KeyWhitespace`], [`HintCode::KeyEncoding`],
/// [`HintCode::KeysSwapped`]) need the text, which a [`KeyRing`] does not
/// keep.
///
/// `Debug` never shows the keys.
///
/// ```
/// use boxhook_core::diagnose::DiagnosisKeys;
///
/// use boxhook_core::KeyError;
///
/// let keys = DiagnosisKeys::new(Some("secret\n"), None)?;
/// assert_eq!(format!("{keys:?}"), "DiagnosisKeys { primary: true, secondary: false, .. }");
/// assert_eq!(DiagnosisKeys::new(Some(""), None).unwrap_err(), KeyError::NoKeys);
/// # Ok::<(), KeyError>(())
/// ```
#[derive(Clone)]
pub struct DiagnosisKeys {
    primary: Option<Vec<u8>>,
    secondary: Option<Vec<u8>>,
    /// The ring of the keys as given.
    ring: KeyRing,
}

impl DiagnosisKeys {
    /// The keys exactly as given; an empty key counts as absent, and
    /// having neither is [`KeyError::NoKeys`](crate::KeyError::NoKeys).
    pub fn new(primary: Option<&str>, secondary: Option<&str>) -> Result<Self, crate::KeyError> {
        let keep = |key: Option<&str>| key.filter(|k| !k.is_empty()).map(|k| k.as_bytes().to_vec());
        let (primary, secondary) = (keep(primary), keep(secondary));
        let ring = ring_of(primary.as_deref(), secondary.as_deref())?;
        Ok(Self {
            primary,
            secondary,
            ring,
        })
    }

    /// The key given for `slot`.
    pub(crate) fn text(&self, slot: KeySlot) -> Option<&[u8]> {
        match slot {
            KeySlot::Primary => self.primary.as_deref(),
            KeySlot::Secondary => self.secondary.as_deref(),
        }
    }

    /// Whether a key was given for `slot`.
    #[must_use]
    pub fn has(&self, slot: KeySlot) -> bool {
        self.text(slot).is_some()
    }

    /// The key ring of these keys, used as given.
    #[must_use]
    pub fn ring(&self) -> &KeyRing {
        &self.ring
    }
}

pub(crate) fn ring_of(
    primary: Option<&[u8]>,
    secondary: Option<&[u8]>,
) -> Result<KeyRing, crate::KeyError> {
    let key = |k: Option<&[u8]>| k.and_then(|k| crate::SigningKey::new(k).ok());
    KeyRing::new(key(primary), key(secondary))
}

impl fmt::Debug for DiagnosisKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiagnosisKeys")
            .field("primary", &self.primary.is_some())
            .field("secondary", &self.secondary.is_some())
            .finish_non_exhaustive()
    }
}

/// One finding: a stable code and a sentence for the operator saying what
/// happened and what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    code: HintCode,
    message: String,
}

impl Hint {
    /// A hint with `code` and `message` (for reports that merge their own
    /// findings with the diagnosis's).
    ///
    /// ```
    /// use boxhook_core::diagnose::{Hint, HintCode};
    /// let hint = Hint::new(HintCode::Crlf, "line endings changed");
    /// assert_eq!((hint.code().as_str(), hint.message()), ("crlf", "line endings changed"));
    /// ```
    pub fn new(code: HintCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The stable code.
    #[must_use]
    pub fn code(&self) -> HintCode {
        self.code
    }

    /// The sentence. It may quote the capture's headers: print it through
    /// [`Printable`](crate::Printable).
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The verdict on one delivery and what was found out about it.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    verdict: Result<Verified, VerifyError>,
    hints: Vec<Hint>,
}

impl Diagnosis {
    /// Whether the delivery verified as received.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.verdict.is_ok()
    }

    /// The verifier's answer for the delivery as received.
    pub fn verdict(&self) -> Result<&Verified, &VerifyError> {
        self.verdict.as_ref()
    }

    /// The findings, in [`HintCode::ALL`] order.
    #[must_use]
    pub fn hints(&self) -> &[Hint] {
        &self.hints
    }

    /// The findings' codes.
    #[must_use]
    pub fn codes(&self) -> Vec<HintCode> {
        self.hints.iter().map(Hint::code).collect()
    }
}

/// Verifies a delivery with Box's default freshness (600 s old, 60 s ahead)
/// and explains a failure. See [`diagnose_with`].
#[must_use]
pub fn diagnose(
    headers: &DeliveryHeaders<'_>,
    body: &[u8],
    keys: &DiagnosisKeys,
    now: DateTime<Utc>,
) -> Diagnosis {
    diagnose_with(headers, body, keys, now, Freshness::default())
}

/// Verifies a delivery under `freshness` at `now` with `keys`, and when it
/// fails, says why.
///
/// A valid delivery gets at most [`HintCode::EscapedForm`] and
/// [`HintCode::SecondaryOnly`]; a failed one gets every repair that
/// verifies, or else the evidence found, or else [`HintCode::Unexplained`].
#[must_use]
pub fn diagnose_with(
    headers: &DeliveryHeaders<'_>,
    body: &[u8],
    keys: &DiagnosisKeys,
    now: DateTime<Utc>,
    freshness: Freshness,
) -> Diagnosis {
    let ring = keys.ring().clone();
    let verdict = Verifier::builder(ring.clone())
        .freshness(freshness)
        .build()
        .verify_headers(headers, body, now);
    let check = check::Check {
        headers,
        body,
        keys,
        ring,
        now,
    };
    let mut hints = match &verdict {
        Ok(verified) => check.valid_hints(verified),
        Err(err) => check.failure_hints(err, freshness),
    };
    hints.sort_by_key(Hint::code);
    Diagnosis { verdict, hints }
}

/// A hint for headers that could not be read at all
/// ([`DeliveryHeaders::from_pairs`] or `from_header_map` failed).
///
/// ```
/// use boxhook_core::diagnose::{header_error_hints, HintCode};
/// use boxhook_core::DeliveryHeaders;
///
/// let err = DeliveryHeaders::from_pairs([("box-signature-version", "1"), ("BOX-SIGNATURE-VERSION", "2")]).unwrap_err();
/// let hints = header_error_hints(&err);
/// assert_eq!(hints[0].code(), HintCode::ConflictingHeader);
/// ```
#[must_use]
pub fn header_error_hints(err: &VerifyError) -> Vec<Hint> {
    header::error_hints(err)
}
