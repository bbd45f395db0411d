//! The six Box delivery headers (see "A delivery on the wire" in docs/PROTOCOL.md), read
//! case-insensitively from an
//! [`http::HeaderMap`] or from any list of `(name, value)` pairs.

use std::borrow::Cow;
use std::fmt;

use http::{HeaderMap, HeaderValue};

use crate::error::{HeaderProblem, VerifyError};

/// `BOX-DELIVERY-ID`: unique per delivery attempt, changes on every retry.
pub const DELIVERY_ID: &str = "box-delivery-id";
/// `BOX-DELIVERY-TIMESTAMP`: RFC 3339, part of the signed bytes.
pub const DELIVERY_TIMESTAMP: &str = "box-delivery-timestamp";
/// `BOX-SIGNATURE-PRIMARY`: base64 HMAC under the primary key.
pub const SIGNATURE_PRIMARY: &str = "box-signature-primary";
/// `BOX-SIGNATURE-SECONDARY`: base64 HMAC under the secondary key.
pub const SIGNATURE_SECONDARY: &str = "box-signature-secondary";
/// `BOX-SIGNATURE-VERSION`: always `1`.
pub const SIGNATURE_VERSION: &str = "box-signature-version";
/// `BOX-SIGNATURE-ALGORITHM`: always `HmacSHA256`.
pub const SIGNATURE_ALGORITHM: &str = "box-signature-algorithm";

/// The longest Box header value accepted, in bytes. Box's longest value is a
/// 44-character signature; anything far beyond that is not from Box.
pub const MAX_HEADER_LEN: usize = 256;

const NAMES: [&str; 6] = [
    DELIVERY_ID,
    DELIVERY_TIMESTAMP,
    SIGNATURE_PRIMARY,
    SIGNATURE_SECONDARY,
    SIGNATURE_VERSION,
    SIGNATURE_ALGORITHM,
];

/// The Box headers of one delivery, each checked for shape but not yet for
/// meaning. Absent headers are `None`; the [`Verifier`](crate::Verifier)
/// decides which absences matter.
///
/// Values borrow from a [`HeaderMap`] and are copied from other sources.
/// Surrounding spaces and tabs are trimmed. A header repeated with the same
/// value is accepted once; repeated with different values, or holding a
/// non-ASCII byte, or longer than [`MAX_HEADER_LEN`], it is rejected with
/// [`VerifyError::InvalidHeader`].
///
/// ```
/// use boxhook_core::DeliveryHeaders;
///
/// let captured = [
///     ("Box-Delivery-Id", "f96bb54b-ee16-4fc5-aa65-8c2d9e5b546f"),
///     ("BOX-DELIVERY-TIMESTAMP", "2020-01-01T00:00:00-07:00"),
///     ("box-signature-primary", "6TfeAW3A1PASkgboxxA5yqHNKOwFyMWuEXny/FPD5hI="),
///     ("content-type", "application/json"),
/// ];
/// let headers = DeliveryHeaders::from_pairs(captured)?;
/// assert_eq!(headers.timestamp(), Some("2020-01-01T00:00:00-07:00"));
/// assert_eq!(headers.signature_secondary(), None);
/// # Ok::<(), boxhook_core::VerifyError>(())
/// ```
#[derive(Clone, Default)]
pub struct DeliveryHeaders<'a> {
    values: [Option<Cow<'a, str>>; 6],
    /// The `BOX-DELIVERY-ID` value in the map it was read from, so that
    /// [`Verified`](crate::Verified) can share its bytes instead of copying.
    delivery_id: Option<&'a HeaderValue>,
}

// By hand: where the values were read from does not make two sets of
// headers different.
impl PartialEq for DeliveryHeaders<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.values == other.values
    }
}

impl Eq for DeliveryHeaders<'_> {}

impl fmt::Debug for DeliveryHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryHeaders")
            .field("values", &self.values)
            .finish()
    }
}

impl<'a> DeliveryHeaders<'a> {
    /// Reads the Box headers from a [`HeaderMap`], borrowing the values.
    ///
    /// ```
    /// use boxhook_core::{DeliveryHeaders, ErrorKind};
    /// use http::HeaderMap;
    ///
    /// let mut map = HeaderMap::new();
    /// map.append("box-signature-version", "1".parse().unwrap());
    /// map.append("box-signature-version", "2".parse().unwrap());
    /// let err = DeliveryHeaders::from_header_map(&map).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidHeader);
    /// assert_eq!(err.to_string(), "header box-signature-version appears more than once with different values");
    /// ```
    pub fn from_header_map(map: &'a HeaderMap) -> Result<Self, VerifyError> {
        let mut headers = Self::default();
        // One pass over the map: comparing each name (already lower case)
        // with the six is cheaper than six hashed look-ups.
        for (name, value) in map {
            let Some(slot) = NAMES.iter().position(|n| *n == name.as_str()) else {
                continue;
            };
            let text = check_header_value(NAMES[slot], value)?;
            if slot == 0 && headers.values[0].is_none() {
                headers.delivery_id = Some(value);
            }
            headers.set(slot, NAMES[slot], Cow::Borrowed(text))?;
        }
        Ok(headers)
    }

    /// Reads the Box headers from `(name, value)` pairs, matching names
    /// case-insensitively and ignoring every other header.
    pub fn from_pairs<I, N, V>(pairs: I) -> Result<DeliveryHeaders<'static>, VerifyError>
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<str>,
        V: AsRef<[u8]>,
    {
        let mut headers = DeliveryHeaders::default();
        for (name, value) in pairs {
            let name = name.as_ref().trim();
            let Some(slot) = NAMES.iter().position(|n| n.eq_ignore_ascii_case(name)) else {
                continue;
            };
            let text = check_value(NAMES[slot], value.as_ref())?;
            headers.set(slot, NAMES[slot], Cow::Owned(text.to_owned()))?;
        }
        Ok(headers)
    }

    fn set(
        &mut self,
        slot: usize,
        name: &'static str,
        value: Cow<'a, str>,
    ) -> Result<(), VerifyError> {
        match &self.values[slot] {
            Some(existing) if *existing != value => Err(VerifyError::InvalidHeader {
                name,
                problem: HeaderProblem::Conflicting,
            }),
            Some(_) => Ok(()),
            None => {
                self.values[slot] = Some(value);
                Ok(())
            }
        }
    }

    /// `BOX-DELIVERY-ID` as an [`HeaderValue`]: the map's own value when it
    /// was read from one and needed no trimming (a reference-count increment),
    /// else a new one.
    pub(crate) fn delivery_id_value(&self) -> Option<HeaderValue> {
        let text = self.delivery_id()?;
        match self.delivery_id {
            // `text` is the value trimmed: equal lengths mean nothing was trimmed.
            Some(value) if value.len() == text.len() => Some(value.clone()),
            // Checked visible ASCII, which every `HeaderValue` accepts.
            _ => HeaderValue::from_str(text).ok(),
        }
    }

    /// An owned copy with `name`'s value replaced, or removed when `value`
    /// is `None`: the diagnosis's repaired headers.
    pub(crate) fn with_value(
        &self,
        name: &'static str,
        value: Option<String>,
    ) -> DeliveryHeaders<'static> {
        let mut values = self
            .values
            .clone()
            .map(|v| v.map(|text| Cow::Owned(text.into_owned())));
        if let Some(slot) = NAMES.iter().position(|n| *n == name) {
            values[slot] = value.map(Cow::Owned);
        }
        DeliveryHeaders {
            values,
            delivery_id: None,
        }
    }

    fn get(&self, slot: usize) -> Option<&str> {
        self.values[slot].as_deref()
    }

    /// `BOX-DELIVERY-ID`.
    #[must_use]
    pub fn delivery_id(&self) -> Option<&str> {
        self.get(0)
    }
    /// `BOX-DELIVERY-TIMESTAMP`, exactly as received (minus surrounding white space).
    #[must_use]
    pub fn timestamp(&self) -> Option<&str> {
        self.get(1)
    }
    /// `BOX-SIGNATURE-PRIMARY`.
    #[must_use]
    pub fn signature_primary(&self) -> Option<&str> {
        self.get(2)
    }
    /// `BOX-SIGNATURE-SECONDARY`.
    #[must_use]
    pub fn signature_secondary(&self) -> Option<&str> {
        self.get(3)
    }
    /// `BOX-SIGNATURE-VERSION`.
    #[must_use]
    pub fn version(&self) -> Option<&str> {
        self.get(4)
    }
    /// `BOX-SIGNATURE-ALGORITHM`.
    #[must_use]
    pub fn algorithm(&self) -> Option<&str> {
        self.get(5)
    }

    /// The signature header for a key slot.
    #[must_use]
    pub fn signature(&self, slot: crate::KeySlot) -> Option<&str> {
        match slot {
            crate::KeySlot::Primary => self.signature_primary(),
            crate::KeySlot::Secondary => self.signature_secondary(),
        }
    }
}

/// [`check_value`] for a value from an [`HeaderMap`]. `HeaderValue::to_str`
/// accepts exactly the bytes `check_value` does (tab and visible ASCII) and
/// skips the second, UTF-8 pass; anything it refuses gets `check_value`'s
/// own answer.
fn check_header_value<'v>(
    name: &'static str,
    value: &'v HeaderValue,
) -> Result<&'v str, VerifyError> {
    match value.to_str() {
        Ok(text) => {
            let text = text.trim_ascii();
            if text.len() > MAX_HEADER_LEN {
                return Err(VerifyError::InvalidHeader {
                    name,
                    problem: HeaderProblem::TooLong { len: text.len() },
                });
            }
            Ok(text)
        }
        Err(_) => check_value(name, value.as_bytes()),
    }
}

fn check_value<'v>(name: &'static str, value: &'v [u8]) -> Result<&'v str, VerifyError> {
    let value = value.trim_ascii();
    if value.len() > MAX_HEADER_LEN {
        return Err(VerifyError::InvalidHeader {
            name,
            problem: HeaderProblem::TooLong { len: value.len() },
        });
    }
    if !value
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        return Err(VerifyError::InvalidHeader {
            name,
            problem: HeaderProblem::NotAscii,
        });
    }
    // Visible ASCII is always UTF-8.
    std::str::from_utf8(value).map_err(|_| VerifyError::InvalidHeader {
        name,
        problem: HeaderProblem::NotAscii,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn names_match_case_insensitively() {
        let h = DeliveryHeaders::from_pairs([
            ("BOX-SIGNATURE-VERSION", "1"),
            ("Box-Signature-Algorithm", " HmacSHA256 "),
            ("bOx-DeLiVeRy-Id", "abc"),
        ])
        .expect("valid");
        assert_eq!(h.version(), Some("1"));
        assert_eq!(h.algorithm(), Some("HmacSHA256"));
        assert_eq!(h.delivery_id(), Some("abc"));
    }

    type Pairs<'p> = Vec<(&'p str, &'p [u8])>;

    #[test]
    fn shape_errors() {
        let long = "a".repeat(MAX_HEADER_LEN + 1);
        let cases: Vec<(Pairs<'_>, VerifyError)> = vec![
            (
                vec![
                    ("box-delivery-timestamp", b"a"),
                    ("BOX-DELIVERY-TIMESTAMP", b"b"),
                ],
                VerifyError::InvalidHeader {
                    name: DELIVERY_TIMESTAMP,
                    problem: HeaderProblem::Conflicting,
                },
            ),
            (
                vec![("box-signature-primary", "é".as_bytes())],
                VerifyError::InvalidHeader {
                    name: SIGNATURE_PRIMARY,
                    problem: HeaderProblem::NotAscii,
                },
            ),
            (
                vec![("box-signature-secondary", b"a\x00b")],
                VerifyError::InvalidHeader {
                    name: SIGNATURE_SECONDARY,
                    problem: HeaderProblem::NotAscii,
                },
            ),
            (
                vec![("box-delivery-id", long.as_bytes())],
                VerifyError::InvalidHeader {
                    name: DELIVERY_ID,
                    problem: HeaderProblem::TooLong {
                        len: MAX_HEADER_LEN + 1,
                    },
                },
            ),
        ];
        for (pairs, want) in cases {
            let got = DeliveryHeaders::from_pairs(pairs.clone()).expect_err("must fail");
            assert_eq!(got, want, "pairs {pairs:?}");
            assert_eq!(got.kind(), ErrorKind::InvalidHeader);
        }
    }

    #[test]
    fn identical_repeats_are_accepted() {
        let h = DeliveryHeaders::from_pairs([
            ("box-signature-version", "1"),
            ("box-signature-version", "1"),
        ])
        .expect("identical repeats");
        assert_eq!(h.version(), Some("1"));
    }

    #[test]
    fn delivery_id_value_shares_the_map_value_unless_trimmed() {
        let mut map = HeaderMap::new();
        map.insert("box-delivery-id", HeaderValue::from_static("d-1"));
        let h = DeliveryHeaders::from_header_map(&map).expect("valid");
        assert_eq!(h.delivery_id_value(), Some(HeaderValue::from_static("d-1")));
        map.insert("box-delivery-id", HeaderValue::from_static(" d-2\t"));
        let h = DeliveryHeaders::from_header_map(&map).expect("valid");
        assert_eq!(h.delivery_id_value(), Some(HeaderValue::from_static("d-2")));
        let h = DeliveryHeaders::from_pairs([("box-delivery-id", "d-3")]).expect("valid");
        assert_eq!(h.delivery_id_value(), Some(HeaderValue::from_static("d-3")));
        assert_eq!(DeliveryHeaders::default().delivery_id_value(), None);
    }

    #[test]
    fn header_map_borrows() {
        let mut map = HeaderMap::new();
        map.insert(
            "box-delivery-timestamp",
            "2020-01-01T00:00:00Z".parse().expect("value"),
        );
        map.insert("x-other", "ignored".parse().expect("value"));
        let h = DeliveryHeaders::from_header_map(&map).expect("valid");
        assert!(matches!(
            h.values[1],
            Some(Cow::Borrowed("2020-01-01T00:00:00Z"))
        ));
    }
}
