//! The [`Signer`]: the headers Box would send for a body. The test kit and the
//! CLI sign with this, so there is one implementation of Box's signature.

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::escape::{escaped_form, EscapeError};
use crate::headers;
use crate::key::{KeyRing, KeySlot};
use crate::signature;
use crate::time::DeliveryTimestamp;
use crate::verify::{SIGNATURE_ALGORITHM, SIGNATURE_VERSION};

/// Signs bodies as Box does (see "The signed bytes" in docs/PROTOCOL.md), with the keys of a
/// [`KeyRing`].
///
/// ```
/// use boxhook_core::{DeliveryTimestamp, KeyRing, Signer};
///
/// let signer = Signer::new(KeyRing::from_strs(Some("SamplePrimaryKey"), Some("SampleSecondaryKey"))?);
/// let body = br#"{"type":"webhook_event","webhook":{"id":"1234567890"},"trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file","name":"Test.txt"}}"#;
/// let ts = DeliveryTimestamp::parse("2020-01-01T00:00:00-07:00")?;
/// let signed = signer.sign(body, &ts, "f96bb54b-ee16-4fc5-aa65-8c2d9e5b546f");
///
/// assert_eq!(signed.primary(), Some("6TfeAW3A1PASkgboxxA5yqHNKOwFyMWuEXny/FPD5hI="));
/// assert_eq!(signed.secondary(), Some("v+1CD1Jdo3muIcbpv5lxxgPglOqMfsNHPV899xWYydo="));
/// for (name, value) in signed.iter() {
///     println!("{name}: {value}");
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Signer {
    keys: KeyRing,
}

impl Signer {
    /// A signer with the keys of `keys`; an empty slot's header is not sent.
    #[must_use]
    pub fn new(keys: KeyRing) -> Self {
        Self { keys }
    }

    /// The headers Box would send for `body` exactly as given.
    #[must_use]
    pub fn sign(
        &self,
        body: &[u8],
        timestamp: &DeliveryTimestamp,
        delivery_id: &str,
    ) -> SignedHeaders {
        SignedHeaders {
            delivery_id: delivery_id.to_owned(),
            timestamp: timestamp.as_str().to_owned(),
            primary: self.signature(KeySlot::Primary, body, timestamp),
            secondary: self.signature(KeySlot::Secondary, body, timestamp),
        }
    }

    /// The headers Box would send for `body` after PHP's `json_encode` wrote
    /// it: signed over [`escaped_form`]`(body)`. Use it to reproduce a delivery
    /// whose body was later re-encoded (for instance as raw UTF-8).
    ///
    /// ```
    /// use boxhook_core::{DeliveryTimestamp, KeyRing, Signer};
    ///
    /// let signer = Signer::new(KeyRing::from_strs(Some("SamplePrimaryKey"), None)?);
    /// let ts = DeliveryTimestamp::parse("2020-01-01T00:00:00-07:00")?;
    /// let raw_utf8 = r#"{"webhook":{"id":"1234567890"},"trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file","name":"スクリーンショット 2020-08-05.txt"}}"#;
    /// let signed = signer.sign_escaped(raw_utf8.as_bytes(), &ts, "d-1")?;
    /// assert_eq!(signed.primary(), Some("LV2uCu+5NJtIHrCXDYgZ0v/PP5THGRuegw3RtdnEyuE="));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sign_escaped(
        &self,
        body: &[u8],
        timestamp: &DeliveryTimestamp,
        delivery_id: &str,
    ) -> Result<SignedHeaders, EscapeError> {
        Ok(self.sign(&escaped_form(body)?, timestamp, delivery_id))
    }

    /// One signature, as it would appear in the slot's header; `None` when
    /// the slot has no key.
    #[must_use]
    pub fn signature(
        &self,
        slot: KeySlot,
        body: &[u8],
        timestamp: &DeliveryTimestamp,
    ) -> Option<String> {
        let key = self.keys.key(slot)?;
        Some(signature::encode(&signature::digest(
            key,
            body,
            timestamp.as_str().as_bytes(),
        )))
    }
}

/// The Box headers of one signed delivery, in the order Box lists them.
///
/// ```
/// use boxhook_core::{DeliveryTimestamp, KeyRing, Signer};
///
/// let signer = Signer::new(KeyRing::from_strs(Some("k"), None)?);
/// let ts = DeliveryTimestamp::parse("2020-01-01T00:00:00Z")?;
/// let signed = signer.sign(b"{}", &ts, "d-1");
/// let names: Vec<_> = signed.iter().map(|(name, _)| name).collect();
/// assert_eq!(names, [
///     "box-delivery-id", "box-delivery-timestamp", "box-signature-primary",
///     "box-signature-version", "box-signature-algorithm",
/// ]);
/// assert_eq!(signed.to_header_map().len(), 5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    delivery_id: String,
    timestamp: String,
    primary: Option<String>,
    secondary: Option<String>,
}

impl SignedHeaders {
    /// `BOX-DELIVERY-ID`.
    #[must_use]
    pub fn delivery_id(&self) -> &str {
        &self.delivery_id
    }
    /// `BOX-DELIVERY-TIMESTAMP`.
    #[must_use]
    pub fn timestamp(&self) -> &str {
        &self.timestamp
    }
    /// `BOX-SIGNATURE-PRIMARY`, absent when the ring has no primary key.
    #[must_use]
    pub fn primary(&self) -> Option<&str> {
        self.primary.as_deref()
    }
    /// `BOX-SIGNATURE-SECONDARY`, absent when the ring has no secondary key.
    #[must_use]
    pub fn secondary(&self) -> Option<&str> {
        self.secondary.as_deref()
    }

    /// `(lower-case name, value)` for every header, in Box's order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            (headers::DELIVERY_ID, Some(self.delivery_id.as_str())),
            (headers::DELIVERY_TIMESTAMP, Some(self.timestamp.as_str())),
            (headers::SIGNATURE_PRIMARY, self.primary.as_deref()),
            (headers::SIGNATURE_SECONDARY, self.secondary.as_deref()),
            (headers::SIGNATURE_VERSION, Some(SIGNATURE_VERSION)),
            (headers::SIGNATURE_ALGORITHM, Some(SIGNATURE_ALGORITHM)),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
    }

    /// The headers as an [`HeaderMap`], signatures marked sensitive.
    ///
    /// The delivery id is the one value a caller chooses freely; one that is
    /// not a valid header value is left out (the verifier does not need it).
    #[must_use]
    pub fn to_header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(6);
        for (name, value) in self.iter() {
            let Ok(mut value) = HeaderValue::from_str(value) else {
                continue;
            };
            value.set_sensitive(
                name == headers::SIGNATURE_PRIMARY || name == headers::SIGNATURE_SECONDARY,
            );
            map.insert(HeaderName::from_static(name), value);
        }
        map
    }
}
