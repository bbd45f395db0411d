//! The [`Verifier`] and its proof, [`Verified`].

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use http::{HeaderMap, HeaderValue};
use subtle::ConstantTimeEq as _;

use crate::error::{SignatureProblem, VerifyError};
use crate::escape::escaped_form;
use crate::headers::{self, DeliveryHeaders};
use crate::key::{KeyRing, KeySlot, SharedKeyRing};
use crate::signature::{self, Digest};
use crate::time::{parse_rfc3339, Freshness};

/// The only signature version Box sends.
pub const SIGNATURE_VERSION: &str = "1";
/// The only signature algorithm Box sends.
pub const SIGNATURE_ALGORITHM: &str = "HmacSHA256";

/// Which bytes a signature matched (see "The escaped form" in docs/PROTOCOL.md).
///
/// ```
/// use boxhook_core::BodyForm;
/// assert_eq!(BodyForm::Escaped.as_str(), "escaped");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyForm {
    /// The body exactly as received.
    Raw,
    /// The body's [escaped form](crate::escaped_form): something between Box
    /// and the verifier re-encoded it.
    Escaped,
}

impl BodyForm {
    /// `"raw"` or `"escaped"`: stable, for logs and JSON.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Escaped => "escaped",
        }
    }
}

impl fmt::Display for BodyForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Proof that a delivery's body was signed by Box and is fresh.
///
/// Only [`Verifier`] can make one, so a function that takes `&Verified` cannot
/// be handed an unchecked body by mistake.
///
/// ```
/// # use boxhook_core::*;
/// # let keys = KeyRing::from_strs(Some("SamplePrimaryKey"), None)?;
/// # let now = "2020-01-01T07:00:05Z".parse().unwrap();
/// # let ts = DeliveryTimestamp::parse("2020-01-01T00:00:00-07:00")?;
/// # let headers = Signer::new(keys.clone()).sign(b"{}", &ts, "d-1").to_header_map();
/// let verified = Verifier::new(keys).verify(&headers, b"{}", now)?;
/// assert_eq!(verified.delivery_id(), Some("d-1"));
/// assert_eq!(verified.age().num_seconds(), 5);
/// assert_eq!(verified.key_slot(), KeySlot::Primary);
/// assert_eq!(verified.body_form(), BodyForm::Raw);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The header's own value: cloning shares its bytes, so verifying
    /// allocates nothing for the id.
    delivery_id: Option<HeaderValue>,
    timestamp: DateTime<FixedOffset>,
    age: TimeDelta,
    key_slot: KeySlot,
    body_form: BodyForm,
}

impl Verified {
    /// `BOX-DELIVERY-ID`, if sent. It is not signed and changes on every
    /// retry: use it for logs, never for deduplication (see "Retries and deduplication" in
    /// docs/PROTOCOL.md).
    #[must_use]
    pub fn delivery_id(&self) -> Option<&str> {
        // Only values that passed the header checks (visible ASCII, trimmed)
        // are kept, so `to_str` never fails here.
        self.delivery_id.as_ref()?.to_str().ok()
    }

    /// When Box sent the delivery (`BOX-DELIVERY-TIMESTAMP`).
    #[must_use]
    pub fn timestamp(&self) -> DateTime<FixedOffset> {
        self.timestamp
    }

    /// How old the delivery was when verified; negative when its timestamp
    /// was ahead of the receiver's clock (within the allowed skew).
    #[must_use]
    pub fn age(&self) -> TimeDelta {
        self.age
    }

    /// Which key matched. Once the old key never matches, it can be retired.
    #[must_use]
    pub fn key_slot(&self) -> KeySlot {
        self.key_slot
    }

    /// Which form of the body matched.
    #[must_use]
    pub fn body_form(&self) -> BodyForm {
        self.body_form
    }
}

/// Decides whether a delivery really came from Box (see "The signed bytes" and
/// "Freshness" in docs/PROTOCOL.md).
///
/// The checks, in order: the signature version is `1` and the algorithm
/// `HmacSHA256`; the timestamp parses and is fresh; then each configured key is
/// tried against its own header, primary then secondary, over the raw body and
/// then (unless disabled) over its [escaped form](crate::escaped_form). Either
/// key suffices. A signature header whose key slot is empty is ignored; a
/// missing or malformed signature header only counts as "no match" for its
/// slot, and is reported when nothing matched.
///
/// Cloning is cheap and clones share the key ring (see [`SharedKeyRing`]).
///
/// ```
/// use std::time::Duration;
/// use boxhook_core::*;
///
/// let keys = SharedKeyRing::new(KeyRing::from_strs(Some("SamplePrimaryKey"), Some("SampleSecondaryKey"))?);
/// let verifier = Verifier::builder(keys.clone())
///     .max_age(Duration::from_secs(300))
///     .escaped_fallback(true)
///     .build();
///
/// let body = br#"{"type":"webhook_event","webhook":{"id":"1234567890"},"trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file","name":"Test.txt"}}"#;
/// let mut headers = http::HeaderMap::new();
/// headers.insert("box-delivery-timestamp", "2020-01-01T00:00:00-07:00".parse()?);
/// headers.insert("box-signature-primary", "6TfeAW3A1PASkgboxxA5yqHNKOwFyMWuEXny/FPD5hI=".parse()?);
/// headers.insert("box-signature-version", "1".parse()?);
/// headers.insert("box-signature-algorithm", "HmacSHA256".parse()?);
///
/// let now = "2020-01-01T07:01:00Z".parse()?;
/// assert!(verifier.verify(&headers, body, now).is_ok());
///
/// let err = verifier.verify(&headers, b"{}", now).unwrap_err();
/// assert_eq!(err.code(), "mismatch");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Verifier {
    keys: SharedKeyRing,
    freshness: Freshness,
    escaped_fallback: bool,
}

impl Verifier {
    /// A verifier with the defaults: 600 s maximum age, 60 s future skew,
    /// escaped-form fallback on.
    #[must_use]
    pub fn new(keys: impl Into<SharedKeyRing>) -> Self {
        Self::builder(keys).build()
    }

    /// A builder starting from the defaults.
    pub fn builder(keys: impl Into<SharedKeyRing>) -> VerifierBuilder {
        VerifierBuilder {
            verifier: Self {
                keys: keys.into(),
                freshness: Freshness::default(),
                escaped_fallback: true,
            },
        }
    }

    /// The key ring handle: [`SharedKeyRing::replace`] rotates keys for this
    /// verifier and every clone of it.
    #[must_use]
    pub fn keys(&self) -> &SharedKeyRing {
        &self.keys
    }

    /// The freshness policy in force.
    #[must_use]
    pub fn freshness(&self) -> Freshness {
        self.freshness
    }

    /// Verifies a delivery whose headers are in an [`HeaderMap`].
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Verified, VerifyError> {
        self.verify_headers(&DeliveryHeaders::from_header_map(headers)?, body, now)
    }

    /// Verifies a delivery whose Box headers were already read.
    pub fn verify_headers(
        &self,
        headers: &DeliveryHeaders<'_>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Verified, VerifyError> {
        let version = headers.version().ok_or(VerifyError::MissingHeader {
            name: headers::SIGNATURE_VERSION,
        })?;
        if version != SIGNATURE_VERSION {
            return Err(VerifyError::UnsupportedVersion {
                found: version.to_owned(),
            });
        }
        let algorithm = headers.algorithm().ok_or(VerifyError::MissingHeader {
            name: headers::SIGNATURE_ALGORITHM,
        })?;
        if algorithm != SIGNATURE_ALGORITHM {
            return Err(VerifyError::UnsupportedAlgorithm {
                found: algorithm.to_owned(),
            });
        }
        let timestamp_text = headers.timestamp().ok_or(VerifyError::MissingHeader {
            name: headers::DELIVERY_TIMESTAMP,
        })?;
        let timestamp = parse_rfc3339(timestamp_text)?;
        let age = self.freshness.check(timestamp, now)?;

        let ring = self.keys.load();
        let mut candidates = Candidates::collect(&ring, headers)?;
        let (key_slot, body_form) =
            self.match_body(&ring, &mut candidates, body, timestamp_text.as_bytes())?;
        Ok(Verified {
            delivery_id: headers.delivery_id_value(),
            timestamp,
            age,
            key_slot,
            body_form,
        })
    }

    fn match_body(
        &self,
        ring: &KeyRing,
        candidates: &mut Candidates<'_>,
        body: &[u8],
        timestamp: &[u8],
    ) -> Result<(KeySlot, BodyForm), VerifyError> {
        if let Some(slot) = candidates.matching(ring, body, timestamp) {
            return Ok((slot, BodyForm::Raw));
        }
        let mut escaped_form_tried = false;
        if self.escaped_fallback && candidates.any() {
            // Borrowed means the escaped form is the raw body: nothing new to try.
            if let Ok(Cow::Owned(escaped)) = escaped_form(body) {
                escaped_form_tried = true;
                if let Some(slot) = candidates.matching(ring, &escaped, timestamp) {
                    return Ok((slot, BodyForm::Escaped));
                }
            }
        }
        Err(candidates.failure(escaped_form_tried))
    }
}

/// The signature header of each slot that has a key, decoded only when its
/// key is first tried: a delivery that matches its primary key never has
/// its secondary header decoded.
struct Candidates<'h> {
    signatures: [Signature<'h>; 2],
    malformed: Option<(&'static str, SignatureProblem)>,
}

/// One slot's signature header, as far as it has been looked at.
#[derive(Clone, Copy)]
enum Signature<'h> {
    /// No key in the slot, or no header for it: nothing to try.
    Absent,
    /// Not decoded yet.
    Text(&'h str),
    Decoded(Digest),
    Malformed,
}

impl<'h> Candidates<'h> {
    fn collect(ring: &KeyRing, headers: &'h DeliveryHeaders<'_>) -> Result<Self, VerifyError> {
        let mut out = Self {
            signatures: [Signature::Absent; 2],
            malformed: None,
        };
        let mut missing = None;
        let mut present = false;
        for (i, slot) in KeySlot::BOTH.into_iter().enumerate() {
            if ring.key(slot).is_none() {
                continue;
            }
            match headers.signature(slot) {
                None => missing = missing.or(Some(slot.header_name())),
                Some(text) => {
                    out.signatures[i] = Signature::Text(text);
                    present = true;
                }
            }
        }
        if !present {
            // A ring always has a key, so some slot reported its header missing.
            let name = missing.unwrap_or(headers::SIGNATURE_PRIMARY);
            return Err(VerifyError::MissingHeader { name });
        }
        Ok(out)
    }

    /// Whether some slot's signature decoded. Meaningful once every slot
    /// was tried, as it has been when nothing matched.
    fn any(&self) -> bool {
        self.signatures
            .iter()
            .any(|s| matches!(s, Signature::Decoded(_)))
    }

    /// Slot `i`'s decoded signature, decoding it on first use and noting the
    /// first malformed header, in slot order.
    fn digest(&mut self, i: usize, slot: KeySlot) -> Option<&Digest> {
        if let Signature::Text(text) = self.signatures[i] {
            self.signatures[i] = match signature::decode(text) {
                Ok(digest) => Signature::Decoded(digest),
                Err(problem) => {
                    self.malformed = self.malformed.or(Some((slot.header_name(), problem)));
                    Signature::Malformed
                }
            };
        }
        match &self.signatures[i] {
            Signature::Decoded(digest) => Some(digest),
            _ => None,
        }
    }

    /// The first slot whose signature matches, comparing in constant time.
    fn matching(&mut self, ring: &KeyRing, body: &[u8], timestamp: &[u8]) -> Option<KeySlot> {
        for (i, slot) in KeySlot::BOTH.into_iter().enumerate() {
            let Some(key) = ring.key(slot) else { continue };
            let Some(expected) = self.digest(i, slot) else {
                continue;
            };
            let actual = signature::digest(key, body, timestamp);
            if bool::from(actual.ct_eq(expected)) {
                return Some(slot);
            }
        }
        None
    }

    fn failure(&self, escaped_form_tried: bool) -> VerifyError {
        match self.malformed {
            Some((name, problem)) => VerifyError::MalformedSignature { name, problem },
            None => VerifyError::Mismatch { escaped_form_tried },
        }
    }
}

/// Builds a [`Verifier`]; see [`Verifier::builder`].
///
/// ```
/// use std::time::Duration;
/// use boxhook_core::{KeyRing, Verifier};
///
/// let verifier = Verifier::builder(KeyRing::from_strs(Some("k"), None)?)
///     .max_age(Duration::from_secs(120))
///     .max_future_skew(Duration::from_secs(5))
///     .escaped_fallback(false)
///     .build();
/// assert_eq!(verifier.freshness().max_age(), Duration::from_secs(120));
/// # Ok::<(), boxhook_core::KeyError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct VerifierBuilder {
    verifier: Verifier,
}

impl VerifierBuilder {
    /// The maximum age of a delivery (default 600 s; see "Freshness" in docs/PROTOCOL.md).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.verifier.freshness =
            Freshness::new(max_age, self.verifier.freshness.max_future_skew());
        self
    }

    /// How far ahead of this machine's clock a timestamp may be (default 60 s).
    pub fn max_future_skew(mut self, skew: Duration) -> Self {
        self.verifier.freshness = Freshness::new(self.verifier.freshness.max_age(), skew);
        self
    }

    /// The whole freshness policy at once.
    pub fn freshness(mut self, freshness: Freshness) -> Self {
        self.verifier.freshness = freshness;
        self
    }

    /// Whether to try the escaped form when the raw body does not match
    /// (default on, as Box's newer SDKs do; see "The escaped form" in docs/PROTOCOL.md). Switch it
    /// off when
    /// nothing between Box and the receiver can re-encode the body and the
    /// second HMAC on a failing request is unwanted.
    pub fn escaped_fallback(mut self, enabled: bool) -> Self {
        self.verifier.escaped_fallback = enabled;
        self
    }

    /// The verifier.
    #[must_use]
    pub fn build(self) -> Verifier {
        self.verifier
    }
}
