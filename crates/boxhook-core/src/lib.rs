//! The IO-free core of boxhook: decide whether a Box webhook delivery really
//! came from Box, sign deliveries exactly as Box does, and parse the
//! `webhook_event` payload.
//!
//! No sockets, no async runtime, no HTTP status codes: bytes and headers in,
//! a [`Verified`] proof or a typed [`VerifyError`] out. The `boxhook` crate
//! puts this behind a tower middleware.
//!
//! # Verifying a delivery
//!
//! ```
//! use boxhook_core::{KeyRing, Verifier, KeySlot, BodyForm};
//!
//! // The two keys from the Developer Console (either may be absent, not both).
//! let keys = KeyRing::from_strs(Some("SamplePrimaryKey"), Some("SampleSecondaryKey"))?;
//! let verifier = Verifier::new(keys);
//!
//! // What arrived: the raw body, untouched, and the headers.
//! let body = br#"{"type":"webhook_event","webhook":{"id":"1234567890"},"trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file","name":"Test.txt"}}"#;
//! let mut headers = http::HeaderMap::new();
//! headers.insert("BOX-DELIVERY-TIMESTAMP", "2020-01-01T00:00:00-07:00".parse()?);
//! headers.insert("BOX-SIGNATURE-PRIMARY", "6TfeAW3A1PASkgboxxA5yqHNKOwFyMWuEXny/FPD5hI=".parse()?);
//! headers.insert("BOX-SIGNATURE-SECONDARY", "v+1CD1Jdo3muIcbpv5lxxgPglOqMfsNHPV899xWYydo=".parse()?);
//! headers.insert("BOX-SIGNATURE-VERSION", "1".parse()?);
//! headers.insert("BOX-SIGNATURE-ALGORITHM", "HmacSHA256".parse()?);
//!
//! let now = "2020-01-01T07:02:00Z".parse()?; // in a server: SystemClock.now()
//! let verified = verifier.verify(&headers, body, now)?;
//! assert_eq!(verified.key_slot(), KeySlot::Primary);
//! assert_eq!(verified.body_form(), BodyForm::Raw);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Verify the bytes as received. Parsing the JSON and serialising it again
//! changes the bytes Box signed (see "The escaped form" in docs/PROTOCOL.md).
//!
//! # The escaped form
//!
//! Box writes JSON the way PHP's `json_encode` does: `/` as `\/`, non-ASCII as
//! `\uXXXX`, and signs that text. Anything that re-encodes the body on its way
//! (a proxy, a framework that decodes and re-serialises) breaks the raw match.
//! Like Box's newer SDKs, the verifier then tries the [`escaped_form`] of the
//! body, and reports which form matched ([`BodyForm`]), so an operator can find
//! and fix the re-encoding hop. Turn the fallback off with
//! [`VerifierBuilder::escaped_fallback`].
//!
//! ```
//! use boxhook_core::{escaped_form, BodyForm, KeyRing, Verifier};
//!
//! // Box signed `\u30b9...`; a proxy delivered raw UTF-8 instead.
//! let received = r#"{"webhook":{"id":"1234567890"},"trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file","name":"スクリーンショット 2020-08-05.txt"}}"#;
//! let mut headers = http::HeaderMap::new();
//! headers.insert("box-delivery-timestamp", "2020-01-01T00:00:00-07:00".parse()?);
//! headers.insert("box-signature-primary", "LV2uCu+5NJtIHrCXDYgZ0v/PP5THGRuegw3RtdnEyuE=".parse()?);
//! headers.insert("box-signature-version", "1".parse()?);
//! headers.insert("box-signature-algorithm", "HmacSHA256".parse()?);
//!
//! let verifier = Verifier::new(KeyRing::from_strs(Some("SamplePrimaryKey"), None)?);
//! let verified = verifier.verify(&headers, received.as_bytes(), "2020-01-01T07:00:00Z".parse()?)?;
//! assert_eq!(verified.body_form(), BodyForm::Escaped);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Freshness
//!
//! A delivery older than 600 s is [`VerifyError::Expired`]; one more than 60 s
//! ahead of the receiver's clock is [`VerifyError::Future`] (see "Freshness" in docs/PROTOCOL.md).
//! Both are configurable; time always comes from the caller (a [`Clock`] in
//! servers), never from a hidden global.
//!
//! ```
//! use std::time::Duration;
//! use boxhook_core::{ErrorKind, Freshness, KeyRing, Verifier};
//!
//! let verifier = Verifier::builder(KeyRing::from_strs(Some("k"), None)?)
//!     .freshness(Freshness::new(Duration::from_secs(300), Duration::from_secs(5)))
//!     .build();
//! let mut headers = http::HeaderMap::new();
//! headers.insert("box-delivery-timestamp", "2020-01-01T00:00:00Z".parse()?);
//! headers.insert("box-signature-primary", "6TfeAW3A1PASkgboxxA5yqHNKOwFyMWuEXny/FPD5hI=".parse()?);
//! headers.insert("box-signature-version", "1".parse()?);
//! headers.insert("box-signature-algorithm", "HmacSHA256".parse()?);
//!
//! let err = verifier.verify(&headers, b"{}", "2020-01-01T00:05:01Z".parse()?).unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Expired);
//! assert_eq!(err.to_string(), "timestamp is 301 s old, limit 300 s");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Rotating keys
//!
//! Keys belong to the Box application; rotation resets one at a time, so both
//! stay live. A [`SharedKeyRing`] lets a running server swap
//! keys without a restart; [`Verified::key_slot`] tells when the old key has
//! stopped matching.
//!
//! ```
//! use boxhook_core::{KeyRing, SharedKeyRing, Verifier};
//!
//! let keys = SharedKeyRing::new(KeyRing::from_strs(Some("old-primary"), Some("old-secondary"))?);
//! let verifier = Verifier::new(keys.clone()); // handed to the server
//!
//! // Step 1: the owner resets the secondary key in the Developer Console.
//! keys.replace(KeyRing::from_strs(Some("old-primary"), Some("new-secondary"))?);
//! // Step 2, once no delivery can still carry the old primary: reset it too.
//! keys.replace(KeyRing::from_strs(Some("new-primary"), Some("new-secondary"))?);
//! # let _ = verifier;
//! # Ok::<(), boxhook_core::KeyError>(())
//! ```
//!
//! # Where boxhook differs from Box's SDKs
//!
//! The interop suite (`tests/interop.rs`) checks boxhook against Box's
//! official Python (`box-sdk-gen` 1.17.0) and Node (`box-node-sdk` 10.12.0)
//! SDKs over 243 bodies: every signature either side makes verifies on the
//! other. Where they deliberately differ, a test pins the SDKs' behaviour:
//!
//! | case | Python SDK | Node SDK | boxhook |
//! |---|---|---|---|
//! | timestamp 15–60 s ahead of the receiver's clock | rejected | rejected | accepted (60 s skew) |
//! | header names in upper case | raises `AttributeError` | rejected | accepted (names are case-insensitive) |
//! | unpadded base64 signature | rejected | accepted | `malformed_signature` |
//! | unparseable timestamp | raises `ValueError` | **accepted** (`NaN` comparison) | `malformed_timestamp` |
//! | re-encoded body with a bare `/` or a backslash escape | escaped form wrong: rejected | accepted | accepted as escaped |
//! | re-encoded body with `\/` or DEL (U+007F) | rejected | escaped form wrong: rejected | accepted as escaped |
//!
//! boxhook's escaped form is PHP's `json_encode`: `/` inside
//! strings unless already escaped — including right after an escaped
//! backslash — and every non-ASCII character. DEL is ASCII and left alone.
//!
//! # Security properties
//!
//! - Signatures are compared in constant time ([`subtle`]); base64 is decoded
//!   strictly (standard alphabet, canonical padding, exactly 32 bytes).
//! - The HMAC runs over body then timestamp incrementally: on the raw path the
//!   body is neither copied nor allocated.
//! - Unsupported versions and algorithms, unparseable timestamps and stale or
//!   far-future deliveries are rejected before any key is used.
//! - Key material never appears in `Debug` or `Display` output, and signature
//!   headers built by the [`Signer`] are marked sensitive.
//! - [`Verified`] can only be made by [`Verifier`]: code that takes it cannot
//!   receive an unverified body by mistake. Errors are values, not `bool`s
//!   to forget.
//! - Nothing here panics on input: every header, body and timestamp is either
//!   accepted or turned into a [`VerifyError`].
//!
//! ```
//! use boxhook_core::SigningKey;
//! let key = SigningKey::new("do-not-print-me")?;
//! assert!(!format!("{key:?} {key}").contains("do-not-print-me"));
//! # Ok::<(), boxhook_core::KeyError>(())
//! ```

#![warn(clippy::arithmetic_side_effects)]

pub mod diagnose;
mod error;
mod escape;
pub mod headers;
mod key;
pub mod model;
mod printable;
mod sign;
mod signature;
mod time;
mod verify;

pub use error::{ErrorKind, HeaderProblem, SignatureProblem, VerifyError};
pub use escape::{escaped_form, EscapeError};
pub use headers::DeliveryHeaders;
pub use key::{KeyError, KeyRing, KeySlot, SharedKeyRing, SigningKey};
pub use printable::{printable_bytes, Printable};
pub use sign::{SignedHeaders, Signer};
pub use time::{Clock, DeliveryTimestamp, FixedClock, Freshness, SystemClock};
pub use verify::{
    BodyForm, Verified, Verifier, VerifierBuilder, SIGNATURE_ALGORITHM, SIGNATURE_VERSION,
};
