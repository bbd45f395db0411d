//! [`Delivery`]: a request exactly as Box sends it, and its negative variants.

use std::borrow::Cow;
use std::time::Duration;

use boxhook_core::{
    escaped_form, BodyForm, DeliveryHeaders, DeliveryTimestamp, ErrorKind, FixedClock, Freshness,
    KeyRing, KeySlot, Signer, SigningKey,
};
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, TimeDelta, Timelike as _, Utc};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::Full;

use super::expected::Expected;
use super::header::BoxHeader;
use super::ids::{mix, DeliveryIds};
use super::reserialize::reserialize;

/// The timestamp a [`Delivery`] carries unless told otherwise: the one of
/// Box's published test vectors (see "Known-answer vectors" in docs/PROTOCOL.md).
pub const DEFAULT_TIMESTAMP: &str = "2020-01-01T00:00:00-07:00";
/// The primary key of Box's published test vectors, the kit's default.
pub const SAMPLE_PRIMARY_KEY: &str = "SamplePrimaryKey";
/// The secondary key of Box's published test vectors, the kit's default.
pub const SAMPLE_SECONDARY_KEY: &str = "SampleSecondaryKey";
/// The `User-Agent` of Box's example delivery.
pub const BOX_USER_AGENT: &str = "Box-WH-Client/0.1";
/// The `Content-Type` the kit sends. Box does not document one, and receivers
/// must not require it (see "A delivery on the wire" in docs/PROTOCOL.md).
pub const BOX_CONTENT_TYPE: &str = "application/json; charset=UTF-8";
/// How old [`Delivery::stale`] makes a delivery: one second past the default
/// maximum age of 600 s (see "Freshness" in docs/PROTOCOL.md).
pub const STALE_AGE: Duration = Duration::from_secs(601);
/// How far ahead [`Delivery::future`] puts a delivery: one second past the
/// default future skew of 60 s.
pub const FUTURE_SKEW: Duration = Duration::from_secs(61);

/// Box's sample key ring: primary `SamplePrimaryKey`, secondary
/// `SampleSecondaryKey`. Every [`Delivery`] signs with it
/// unless given [`keys`](Delivery::keys).
///
/// ```
/// use boxhook::KeySlot;
/// let keys = boxhook::runtime::send::sample_keys();
/// assert!(keys.key(KeySlot::Primary).is_some() && keys.key(KeySlot::Secondary).is_some());
/// ```
#[must_use]
pub fn sample_keys() -> KeyRing {
    KeyRing::new(
        SigningKey::new(SAMPLE_PRIMARY_KEY).ok(),
        SigningKey::new(SAMPLE_SECONDARY_KEY).ok(),
    )
    .unwrap_or_else(|_| unreachable!("both sample keys are non-empty"))
}

/// A webhook delivery exactly as Box sends it, signed with the core's
/// [`Signer`], optionally spoiled in one or more ways.
///
/// The request is a `POST` with `Content-Type: application/json;
/// charset=UTF-8`, `User-Agent: Box-WH-Client/0.1`, `Content-Length`, and the
/// six Box headers: `BOX-DELIVERY-ID`, `BOX-DELIVERY-TIMESTAMP`,
/// `BOX-SIGNATURE-PRIMARY` and `-SECONDARY` (one per filled key slot),
/// `BOX-SIGNATURE-VERSION: 1` and `BOX-SIGNATURE-ALGORITHM: HmacSHA256`.
///
/// Defaults: Box's sample keys ([`sample_keys`]), the timestamp
/// [`DEFAULT_TIMESTAMP`], the URI `/` (another path: [`at`](Self::at)), and a
/// delivery id derived from the body and timestamp (UUID-shaped,
/// deterministic).
///
/// # Time
///
/// A delivery has a *now*: the receiver's time that its answer is predicted
/// for. Unless shifted by [`stale`](Self::stale), [`aged`](Self::aged),
/// [`future`](Self::future) or [`ahead`](Self::ahead), the timestamp sent is
/// that instant. [`clock`](Self::clock) gives a [`FixedClock`] stopped at it,
/// for the server under test.
///
/// # Negative variants
///
/// Each builder method spoils one thing; they combine. What a default
/// [`Verifier`](crate::Verifier) holding the same keys answers, at
/// [`now`](Self::now), is [`expected`](Self::expected):
///
/// | builder | what is sent | verifier answers |
/// |---|---|---|
/// | (none) | Box's request | accepted, raw body |
/// | [`tampered`](Self::tampered) | one body byte changed after signing | `mismatch` |
/// | [`stale`](Self::stale) | timestamp 601 s before now | `expired` |
/// | [`future`](Self::future) | timestamp 61 s after now | `future` |
/// | [`wrong_key`](Self::wrong_key) | signed with other keys | `mismatch` |
/// | [`without_header`](Self::without_header) | one Box header left out | `missing_header` for the timestamp, version and algorithm; for a signature header only when no other configured key's header is left (else accepted); accepted for the delivery id |
/// | [`duplicate_header`](Self::duplicate_header) | the header sent twice | `invalid_header` when the values differ; accepted when identical |
/// | [`reserialized`](Self::reserialized) | the body parsed and re-serialized: escapes lost | accepted, **escaped** body form, when the body was Box's compact escaped JSON; `mismatch` if it was not |
///
/// ```
/// use boxhook::verify::ErrorKind;
/// use boxhook::{BodyForm, Verifier};
/// use boxhook::runtime::send::{BoxHeader, Delivery, Expected};
///
/// let body = br#"{"type":"webhook_event","id":"e-1","trigger":"FILE.UPLOADED","source":{"id":"1","type":"file","name":"a\/b \u00e9.txt"}}"#;
/// let delivery = Delivery::new(&body[..]).delivery_id("d-1");
/// let verifier = Verifier::new(delivery.key_ring().clone());
///
/// let cases = [
///     (delivery.clone(), Expected::Accepted(BodyForm::Raw)),
///     (delivery.clone().tampered(), Expected::Rejected(ErrorKind::Mismatch)),
///     (delivery.clone().stale(), Expected::Rejected(ErrorKind::Expired)),
///     (delivery.clone().future(), Expected::Rejected(ErrorKind::Future)),
///     (delivery.clone().wrong_key(), Expected::Rejected(ErrorKind::Mismatch)),
///     (delivery.clone().without_header(BoxHeader::DeliveryTimestamp), Expected::Rejected(ErrorKind::MissingHeader)),
///     (delivery.clone().duplicate_header(BoxHeader::SignatureVersion, "2"), Expected::Rejected(ErrorKind::InvalidHeader)),
///     (delivery.clone().reserialized(), Expected::Accepted(BodyForm::Escaped)),
/// ];
/// for (delivery, want) in cases {
///     let got = verifier.verify(&delivery.headers(), &delivery.body(), delivery.now());
///     assert!(want.matches(&got), "{got:?}");
///     assert_eq!(delivery.expected(), want);
/// }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Delivery {
    body: Bytes,
    keys: KeyRing,
    timestamp: DeliveryTimestamp,
    shift: TimeDelta,
    id: Option<String>,
    uri: Uri,
    wrong_key: bool,
    tampered: bool,
    reserialized: bool,
    removed: Vec<BoxHeader>,
    duplicates: Vec<(BoxHeader, HeaderValue)>,
}

/// What one build of a delivery sends, and what the verifier should say.
pub(crate) struct Prepared {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) delivery_id: String,
    pub(crate) timestamp: DeliveryTimestamp,
    pub(crate) expected: Expected,
}

impl Delivery {
    /// A delivery of `body`, which is sent and signed byte for byte.
    ///
    /// ```
    /// use boxhook::runtime::send::Delivery;
    ///
    /// let request = Delivery::new(r#"{"type":"webhook_event"}"#).to_request();
    /// assert_eq!(request.method(), "POST");
    /// assert_eq!(request.headers()["user-agent"], "Box-WH-Client/0.1");
    /// assert_eq!(request.headers()["box-delivery-timestamp"], "2020-01-01T00:00:00-07:00");
    /// assert_eq!(request.headers()["box-signature-version"], "1");
    /// assert_eq!(request.headers()["box-signature-algorithm"], "HmacSHA256");
    /// ```
    pub fn new(body: impl Into<Bytes>) -> Self {
        Self {
            body: body.into(),
            keys: sample_keys(),
            timestamp: DeliveryTimestamp::parse(DEFAULT_TIMESTAMP)
                .unwrap_or_else(|_| unreachable!("the default timestamp is RFC 3339")),
            shift: TimeDelta::zero(),
            id: None,
            uri: Uri::from_static("/"),
            wrong_key: false,
            tampered: false,
            reserialized: false,
            removed: Vec::new(),
            duplicates: Vec::new(),
        }
    }

    /// Signs with `keys`: one signature header per filled slot.
    ///
    /// ```
    /// use boxhook::KeyRing;
    /// use boxhook::runtime::send::Delivery;
    ///
    /// let keys = KeyRing::from_strs(Some("my-primary"), None)?;
    /// let request = Delivery::new("{}").keys(keys).to_request();
    /// assert!(request.headers().contains_key("box-signature-primary"));
    /// assert!(!request.headers().contains_key("box-signature-secondary"));
    /// # Ok::<(), boxhook::KeyError>(())
    /// ```
    pub fn keys(mut self, keys: KeyRing) -> Self {
        self.keys = keys;
        self
    }

    /// Sets *now*, and with it the timestamp sent (shifted if the delivery
    /// is [`stale`](Self::stale) or [`future`](Self::future)). The text is
    /// signed and sent exactly as given.
    ///
    /// ```
    /// use boxhook::runtime::send::DeliveryTimestamp;
    /// use boxhook::runtime::send::Delivery;
    ///
    /// let ts = DeliveryTimestamp::parse("2016-07-11T10:10:33-07:00")?;
    /// let delivery = Delivery::new("{}").timestamp(ts.clone());
    /// assert_eq!(delivery.sent_timestamp(), ts);
    /// assert_eq!(delivery.now().to_rfc3339(), "2016-07-11T17:10:33+00:00");
    /// # Ok::<(), boxhook::VerifyError>(())
    /// ```
    pub fn timestamp(mut self, timestamp: DeliveryTimestamp) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// Sets *now* from an instant, written in Box's form (whole seconds, numeric offset).
    ///
    /// ```
    /// use boxhook::{Clock, SystemClock};
    /// use boxhook::runtime::send::Delivery;
    ///
    /// // For a server running on the real clock:
    /// let delivery = Delivery::new("{}").sent_at(SystemClock.now());
    /// assert!(delivery.sent_timestamp().as_str().ends_with("+00:00"));
    /// ```
    pub fn sent_at(self, at: DateTime<Utc>) -> Self {
        self.timestamp(DeliveryTimestamp::from_utc(at))
    }

    /// Sets `BOX-DELIVERY-ID` (default: derived from the body and timestamp).
    ///
    /// ```
    /// let request = boxhook::runtime::send::Delivery::new("{}").delivery_id("d-1").to_request();
    /// assert_eq!(request.headers()["box-delivery-id"], "d-1");
    /// ```
    pub fn delivery_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sends the request to `path` instead of `/`: the path your app serves
    /// the webhooks at. An app that mounts them at `/box/webhooks` has no
    /// route at `/` and answers a delivery sent there 404, before boxhook
    /// sees it.
    ///
    /// Box signs the body and timestamp, not the path, so nothing else
    /// changes. A path without a leading `/` gets one; a query (`?a=b`) is
    /// kept.
    ///
    /// # Panics
    ///
    /// When `path` cannot be a request path (it holds a space or a control
    /// character, or is longer than 64 KiB): a mistake in the test, not in
    /// the code under test.
    ///
    /// ```
    /// use boxhook::runtime::send::Delivery;
    /// use boxhook::{Layer as _, Router, Verifier, VerifyLayer};
    /// use tower::ServiceExt as _; // `oneshot`: tower with its `util` feature
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// let delivery = Delivery::new(r#"{"type":"webhook_event","id":"e-1","trigger":"FILE.UPLOADED"}"#);
    /// let webhooks = VerifyLayer::new(Verifier::new(delivery.key_ring().clone()))
    ///     .clock(delivery.clock())
    ///     .layer(Router::new());
    /// let app = axum::Router::new().route_service("/box/webhooks", webhooks);
    ///
    /// let request = delivery.clone().at("/box/webhooks").to_request();
    /// assert_eq!(request.uri(), "/box/webhooks");
    /// assert_eq!(app.clone().oneshot(request).await?.status(), 200);
    ///
    /// // Sent to `/`, the default: no route there.
    /// assert_eq!(app.oneshot(delivery.to_request()).await?.status(), 404);
    /// # Ok::<(), std::convert::Infallible>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn at(self, path: &str) -> Self {
        let target = if path.starts_with('/') {
            Cow::Borrowed(path)
        } else {
            Cow::Owned(format!("/{path}"))
        };
        let uri = target
            .parse()
            .unwrap_or_else(|_| panic!("{path:?} is not a valid request path"));
        self.uri(uri)
    }

    /// Sets the whole request URI (default `/`); [`at`](Self::at) is the
    /// short way to set a path.
    ///
    /// ```
    /// use boxhook::runtime::send::Delivery;
    ///
    /// let request = Delivery::new("{}").uri("http://127.0.0.1:8080/box/webhooks".parse()?).to_request();
    /// assert_eq!(request.uri().host(), Some("127.0.0.1"));
    /// assert_eq!(request.uri().path(), "/box/webhooks");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn uri(mut self, uri: Uri) -> Self {
        self.uri = uri;
        self
    }

    /// Sends a timestamp [`STALE_AGE`] (601 s) before *now*: the verifier
    /// answers `expired`.
    ///
    /// ```
    /// use boxhook::verify::ErrorKind;
    /// use boxhook::runtime::send::{Delivery, Expected};
    ///
    /// let delivery = Delivery::new("{}").stale();
    /// assert_eq!(delivery.sent_timestamp().as_str(), "2019-12-31T23:49:59-07:00");
    /// assert_eq!(delivery.expected(), Expected::Rejected(ErrorKind::Expired));
    /// ```
    pub fn stale(self) -> Self {
        self.aged(STALE_AGE)
    }

    /// Sends a timestamp `age` before *now*: `expired` when `age` exceeds the
    /// default maximum age of 600 s, accepted otherwise.
    ///
    /// ```
    /// use std::time::Duration;
    /// use boxhook::runtime::send::Delivery;
    ///
    /// assert!(Delivery::new("{}").aged(Duration::from_secs(600)).expected().is_accepted());
    /// assert!(!Delivery::new("{}").aged(Duration::from_secs(601)).expected().is_accepted());
    /// ```
    pub fn aged(mut self, age: Duration) -> Self {
        self.shift = TimeDelta::from_std(age)
            .ok()
            .and_then(|age| TimeDelta::zero().checked_sub(&age))
            .unwrap_or(TimeDelta::MIN);
        self
    }

    /// Sends a timestamp [`FUTURE_SKEW`] (61 s) after *now*: the verifier
    /// answers `future`.
    ///
    /// ```
    /// use boxhook::verify::ErrorKind;
    /// use boxhook::runtime::send::{Delivery, Expected};
    ///
    /// let delivery = Delivery::new("{}").future();
    /// assert_eq!(delivery.sent_timestamp().as_str(), "2020-01-01T00:01:01-07:00");
    /// assert_eq!(delivery.expected(), Expected::Rejected(ErrorKind::Future));
    /// ```
    pub fn future(self) -> Self {
        self.ahead(FUTURE_SKEW)
    }

    /// Sends a timestamp `skew` after *now*: `future` when `skew` exceeds the
    /// default allowance of 60 s, accepted otherwise.
    ///
    /// ```
    /// use std::time::Duration;
    /// use boxhook::runtime::send::Delivery;
    ///
    /// assert!(Delivery::new("{}").ahead(Duration::from_secs(60)).expected().is_accepted());
    /// ```
    pub fn ahead(mut self, skew: Duration) -> Self {
        self.shift = TimeDelta::from_std(skew).unwrap_or(TimeDelta::MAX);
        self
    }

    /// Changes one byte of the body after signing: the verifier answers
    /// `mismatch`, in raw and escaped form alike.
    ///
    /// The byte is the first ASCII letter or digit at or after the middle of
    /// the body (else the first in the body), moved to the next one (`a`→`b`, `9`→`0`),
    /// so a JSON body usually stays JSON. A body with no letter or digit has
    /// its middle byte's lowest bit flipped; an empty body gets one space.
    ///
    /// ```
    /// use boxhook::runtime::send::Delivery;
    ///
    /// let delivery = Delivery::new(r#"{"id":"12345"}"#).tampered();
    /// assert_eq!(&delivery.body()[..], br#"{"id":"22345"}"#);
    /// assert_eq!(&delivery.signed_body()[..], br#"{"id":"12345"}"#);
    /// ```
    pub fn tampered(mut self) -> Self {
        self.tampered = true;
        self
    }

    /// Signs with keys other than the delivery's (same slots filled): the
    /// verifier answers `mismatch`.
    ///
    /// ```
    /// use boxhook::verify::ErrorKind;
    /// use boxhook::runtime::send::{Delivery, Expected};
    /// assert_eq!(Delivery::new("{}").wrong_key().expected(), Expected::Rejected(ErrorKind::Mismatch));
    /// ```
    pub fn wrong_key(mut self) -> Self {
        self.wrong_key = true;
        self
    }

    /// Leaves a Box header out. The verifier answers `missing_header` for the
    /// timestamp, version and algorithm headers; for a signature header only
    /// when no other configured key's signature is left (Box may not send the
    /// secondary); and nothing for the delivery id, which is not
    /// signed or needed.
    ///
    /// ```
    /// use boxhook::verify::ErrorKind;
    /// use boxhook::BodyForm;
    /// use boxhook::runtime::send::{BoxHeader, Delivery, Expected};
    ///
    /// let delivery = Delivery::new("{}");
    /// let no_primary = delivery.clone().without_header(BoxHeader::SignaturePrimary);
    /// assert_eq!(no_primary.expected(), Expected::Accepted(BodyForm::Raw)); // the secondary matches
    /// let no_signature = no_primary.without_header(BoxHeader::SignatureSecondary);
    /// assert_eq!(no_signature.expected(), Expected::Rejected(ErrorKind::MissingHeader));
    /// assert!(!no_signature.headers().contains_key("box-signature-primary"));
    /// ```
    pub fn without_header(mut self, header: BoxHeader) -> Self {
        self.removed.push(header);
        self
    }

    /// Sends `header` a second time, with `value`. Values that differ (after
    /// trimming spaces) make the verifier answer `invalid_header`; identical
    /// repeats are accepted, as some proxies duplicate headers. A header that
    /// is not sent (left out, or its key slot empty) is not added.
    ///
    /// # Panics
    ///
    /// When `value` cannot be an HTTP header value (it holds a control
    /// character): a mistake in the test, not in the code under test.
    ///
    /// ```
    /// use boxhook::verify::ErrorKind;
    /// use boxhook::runtime::send::{BoxHeader, Delivery, Expected};
    ///
    /// let delivery = Delivery::new("{}").duplicate_header(BoxHeader::SignatureAlgorithm, "HmacSHA1");
    /// let values: Vec<_> = delivery.headers().get_all("box-signature-algorithm").iter().cloned().collect();
    /// assert_eq!(values, ["HmacSHA256", "HmacSHA1"]);
    /// assert_eq!(delivery.expected(), Expected::Rejected(ErrorKind::InvalidHeader));
    /// ```
    pub fn duplicate_header(mut self, header: BoxHeader, value: &str) -> Self {
        let value = HeaderValue::from_str(value)
            .unwrap_or_else(|_| panic!("{value:?} is not a valid HTTP header value"));
        self.duplicates.push((header, value));
        self
    }

    /// Sends the body parsed and re-serialized, as a framework or proxy
    /// between Box and the receiver might: compact, raw UTF-8, `/` unescaped
    /// (see "The escaped form" in docs/PROTOCOL.md). Key order is kept. The signature still covers
    /// the
    /// original body.
    ///
    /// The verifier **accepts** it through the escaped form
    /// ([`BodyForm::Escaped`]) when the original was Box's own compact,
    /// `json_encode`-escaped JSON, which every fixture is; it answers
    /// `mismatch` when re-serializing changed more than the escapes
    /// (whitespace, number spelling). A body that is not JSON is sent as is.
    ///
    /// ```
    /// use boxhook::BodyForm;
    /// use boxhook::runtime::send::{Delivery, Expected};
    ///
    /// let delivery = Delivery::new(r#"{"name":"\u30b9 a\/b.txt"}"#).reserialized();
    /// assert_eq!(std::str::from_utf8(&delivery.body())?, r#"{"name":"ス a/b.txt"}"#);
    /// assert_eq!(delivery.expected(), Expected::Accepted(BodyForm::Escaped));
    /// # Ok::<(), std::str::Utf8Error>(())
    /// ```
    pub fn reserialized(mut self) -> Self {
        self.reserialized = true;
        self
    }

    /// The key ring the verifier under test should hold: the delivery's own
    /// keys (with [`wrong_key`](Self::wrong_key), not the ones it is signed with).
    ///
    /// ```
    /// use boxhook::Verifier;
    /// use boxhook::runtime::send::Delivery;
    ///
    /// let delivery = Delivery::new("{}");
    /// let verifier = Verifier::new(delivery.key_ring().clone());
    /// assert!(verifier.verify(&delivery.headers(), &delivery.body(), delivery.now()).is_ok());
    /// ```
    #[must_use]
    pub fn key_ring(&self) -> &KeyRing {
        &self.keys
    }

    /// *Now*: the receiver's time the delivery's [`expected`](Self::expected)
    /// answer holds for. Without a time shift, the instant of the timestamp sent.
    #[must_use]
    pub fn now(&self) -> DateTime<Utc> {
        self.timestamp.datetime().to_utc()
    }

    /// A [`FixedClock`] stopped at [`now`](Self::now), for the server under test.
    ///
    /// ```
    /// use boxhook::Clock;
    /// use boxhook::runtime::send::Delivery;
    ///
    /// let delivery = Delivery::new("{}").stale();
    /// assert_eq!(delivery.clock().now().to_rfc3339(), "2020-01-01T07:00:00+00:00");
    /// ```
    #[must_use]
    pub fn clock(&self) -> FixedClock {
        FixedClock::at(self.now())
    }

    /// The `BOX-DELIVERY-TIMESTAMP` sent: *now*, shifted by
    /// [`stale`](Self::stale), [`aged`](Self::aged), [`future`](Self::future)
    /// or [`ahead`](Self::ahead).
    #[must_use]
    pub fn sent_timestamp(&self) -> DeliveryTimestamp {
        if self.shift.is_zero() {
            return self.timestamp.clone();
        }
        let nominal = self.timestamp.datetime();
        let at = nominal.checked_add_signed(self.shift).unwrap_or_else(|| {
            let bound = if self.shift < TimeDelta::zero() {
                DateTime::<Utc>::MIN_UTC
            } else {
                DateTime::<Utc>::MAX_UTC
            };
            bound.with_timezone(nominal.offset())
        });
        if at.nanosecond() == 0 {
            DeliveryTimestamp::from_datetime(at)
        } else {
            // Keep a fractional *now* exact, so the age is exactly the shift.
            DeliveryTimestamp::parse(&at.to_rfc3339_opts(SecondsFormat::AutoSi, false))
                .unwrap_or_else(|_| DeliveryTimestamp::from_datetime(at))
        }
    }

    /// The `BOX-DELIVERY-ID` sent.
    ///
    /// ```
    /// use boxhook::runtime::send::Delivery;
    ///
    /// let id = Delivery::new("{}").sent_delivery_id();
    /// assert_eq!(id.len(), 36);
    /// assert_eq!(Delivery::new("{}").sent_delivery_id(), id, "deterministic");
    /// assert_ne!(Delivery::new("[]").sent_delivery_id(), id);
    /// ```
    #[must_use]
    pub fn sent_delivery_id(&self) -> String {
        self.resolved_id(&self.sent_timestamp())
    }

    /// The body as given, which is what is signed.
    #[must_use]
    pub fn signed_body(&self) -> &Bytes {
        &self.body
    }

    /// The body sent: the signed body unless
    /// [`reserialized`](Self::reserialized) or [`tampered`](Self::tampered).
    #[must_use]
    pub fn body(&self) -> Bytes {
        let mut body = self.body.clone();
        if self.reserialized
            && let Some(text) = reserialize(&body)
        {
            body = Bytes::from(text);
        }
        if self.tampered {
            body = tamper(&body);
        }
        body
    }

    /// The request headers, in the order Box lists them; signature values
    /// are marked sensitive.
    ///
    /// ```
    /// let headers = boxhook::runtime::send::Delivery::new("{}").headers();
    /// let names: Vec<_> = headers.keys().map(|n| n.as_str()).collect();
    /// assert_eq!(names, [
    ///     "box-delivery-id", "box-delivery-timestamp", "box-signature-primary",
    ///     "box-signature-secondary", "box-signature-version", "box-signature-algorithm",
    ///     "content-type", "user-agent", "content-length",
    /// ]);
    /// ```
    #[must_use]
    pub fn headers(&self) -> HeaderMap {
        self.prepare().headers
    }

    /// What a default verifier holding [`key_ring`](Self::key_ring) answers
    /// at [`now`](Self::now) (see the table on [`Delivery`]).
    ///
    /// Worked out from what is sent, in the verifier's order: header shape,
    /// version and algorithm present, timestamp present and fresh, a
    /// signature header for a configured key, then the body.
    #[must_use]
    pub fn expected(&self) -> Expected {
        self.prepare().expected
    }

    /// The request as Box sends it, with a body `hyper` and `tower` services
    /// take directly.
    ///
    /// ```
    /// let request = boxhook::runtime::send::Delivery::new("{}").to_request();
    /// assert_eq!(request.headers()["content-type"], "application/json; charset=UTF-8");
    /// assert_eq!(request.headers()["content-length"], "2");
    /// ```
    #[must_use]
    pub fn to_request(&self) -> Request<Full<Bytes>> {
        self.to_bytes_request().map(Full::new)
    }

    /// The request as Box sends it, with the body as plain [`Bytes`].
    ///
    /// ```
    /// let request = boxhook::runtime::send::Delivery::new("{}").to_bytes_request();
    /// assert_eq!(&request.body()[..], b"{}");
    /// ```
    #[must_use]
    pub fn to_bytes_request(&self) -> Request<Bytes> {
        let prepared = self.prepare();
        let mut request = Request::new(prepared.body);
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = prepared.headers;
        request
    }

    fn resolved_id(&self, sent: &DeliveryTimestamp) -> String {
        self.id.clone().unwrap_or_else(|| {
            let seed = fnv1a(fnv1a(FNV_OFFSET, &self.body), sent.as_str().as_bytes());
            DeliveryIds::seeded(mix(seed)).next_id()
        })
    }

    pub(crate) fn prepare(&self) -> Prepared {
        let timestamp = self.sent_timestamp();
        let delivery_id = self.resolved_id(&timestamp);
        let signing_keys = if self.wrong_key {
            wrong_keys(&self.keys)
        } else {
            self.keys.clone()
        };
        let mut headers = Signer::new(signing_keys)
            .sign(&self.body, &timestamp, &delivery_id)
            .to_header_map();
        for header in &self.removed {
            headers.remove(header.name());
        }
        for (header, value) in &self.duplicates {
            if headers.contains_key(header.name()) {
                let mut value = value.clone();
                value.set_sensitive(matches!(
                    header,
                    BoxHeader::SignaturePrimary | BoxHeader::SignatureSecondary
                ));
                headers.append(HeaderName::from_static(header.name()), value);
            }
        }
        let body = self.body();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(BOX_CONTENT_TYPE));
        headers.insert(USER_AGENT, HeaderValue::from_static(BOX_USER_AGENT));
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        let expected = self.predict(&headers, &body);
        Prepared {
            headers,
            body,
            delivery_id,
            timestamp,
            expected,
        }
    }

    /// The verifier's answer, step by step in its order.
    fn predict(&self, headers: &HeaderMap, body: &[u8]) -> Expected {
        let missing = Expected::Rejected(ErrorKind::MissingHeader);
        let parsed = match DeliveryHeaders::from_header_map(headers) {
            Ok(parsed) => parsed,
            Err(err) => return Expected::Rejected(err.kind()),
        };
        if parsed.version().is_none() || parsed.algorithm().is_none() {
            return missing;
        }
        let Some(timestamp) = parsed.timestamp() else {
            return missing;
        };
        let fresh = DeliveryTimestamp::parse(timestamp)
            .and_then(|ts| Freshness::default().check(ts.datetime(), self.now()));
        if let Err(err) = fresh {
            return Expected::Rejected(err.kind());
        }
        let signed_slots = KeySlot::BOTH
            .into_iter()
            .filter(|&slot| self.keys.key(slot).is_some() && parsed.signature(slot).is_some());
        if signed_slots.count() == 0 {
            return missing;
        }
        if self.wrong_key {
            return Expected::Rejected(ErrorKind::Mismatch);
        }
        if body == &self.body[..] {
            return Expected::Accepted(BodyForm::Raw);
        }
        match escaped_form(body) {
            Ok(escaped) if *escaped == self.body[..] => Expected::Accepted(BodyForm::Escaped),
            _ => Expected::Rejected(ErrorKind::Mismatch),
        }
    }
}

/// Keys that are not `keys`, in the same slots.
fn wrong_keys(keys: &KeyRing) -> KeyRing {
    let wrong = |slot: KeySlot, text: &str| keys.key(slot).and_then(|_| SigningKey::new(text).ok());
    KeyRing::new(
        wrong(KeySlot::Primary, "boxhook-testkit-wrong-primary-key"),
        wrong(KeySlot::Secondary, "boxhook-testkit-wrong-secondary-key"),
    )
    .unwrap_or_else(|_| keys.clone())
}

/// The body with one byte changed (see [`Delivery::tampered`]).
fn tamper(body: &[u8]) -> Bytes {
    if body.is_empty() {
        return Bytes::from_static(b" ");
    }
    let mut out = body.to_vec();
    let middle = out.len() / 2;
    let position = (middle..out.len())
        .chain(0..middle)
        .find(|&i| out[i].is_ascii_alphanumeric());
    match position {
        Some(i) => {
            out[i] = match out[i] {
                b'9' => b'0',
                b'z' => b'a',
                b'Z' => b'A',
                b => b.saturating_add(1), // alphanumeric, below z: no overflow
            };
        }
        None => out[middle] ^= 1,
    }
    Bytes::from(out)
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}
