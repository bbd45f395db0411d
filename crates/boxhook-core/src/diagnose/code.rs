//! [`HintCode`]: the stable name of each cause the diagnosis recognises.

use std::fmt;

/// What a [`Hint`](super::Hint) found, as a stable code for scripts, logs and
/// JSON. The table in docs/DIAGNOSIS.md gives each code's cause, fix and an
/// example.
///
/// Codes are never renamed or reused; new ones may be added.
///
/// ```
/// use boxhook_core::diagnose::HintCode;
///
/// assert_eq!(HintCode::ReserializedWhitespace.as_str(), "reserialized_whitespace");
/// assert_eq!(HintCode::ALL.len(), 27);
/// assert_eq!(HintCode::from_code("crlf"), Some(HintCode::Crlf));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum HintCode {
    /// Verified, over the body's escaped form: a hop re-encoded the JSON.
    EscapedForm,
    /// Verified, but only with the secondary key although a primary was given.
    SecondaryOnly,
    /// A Box header is absent.
    MissingHeader,
    /// The capture has a signature header for a key that was not given.
    MissingKey,
    /// A Box header appears twice with different values.
    ConflictingHeader,
    /// The signature version or algorithm is not Box's V2 one.
    UnsupportedSignature,
    /// `BOX-DELIVERY-TIMESTAMP` is not RFC 3339.
    TimestampFormat,
    /// The delivery is older than the maximum age.
    Expired,
    /// The timestamp is further ahead than the allowed skew.
    Future,
    /// The signature header is the HMAC written as hex; as base64 it verifies.
    HexSignature,
    /// The signature header holds white space (wrapped base64); without it, it verifies.
    WrappedBase64,
    /// The signature header is URL-safe or unpadded base64; re-encoded, it verifies.
    UrlSafeBase64,
    /// The signature header decodes to a length other than 32 bytes.
    SignatureLength,
    /// The keys were given in each other's slots.
    KeysSwapped,
    /// A key has leading or trailing white space; trimmed, it verifies.
    KeyWhitespace,
    /// The signature was made with the key's base64-decoded bytes, or the
    /// key given is the base64 encoding of the one that signed.
    KeyEncoding,
    /// The body ends with a line break the request did not have.
    TrailingNewline,
    /// A UTF-8 byte-order mark was added in front of the body.
    Bom,
    /// Line feeds were turned into CR LF, or the reverse.
    Crlf,
    /// Insignificant JSON white space was added; compacted, the body verifies.
    ReserializedWhitespace,
    /// The body was decoded as Latin-1 / Windows-1252 and re-encoded as UTF-8.
    Charset,
    /// The body's Unicode normalization form (NFC/NFD) was changed.
    UnicodeNormalized,
    /// The body is JSON written by something other than Box (key order,
    /// spacing or escapes differ) and cannot be repaired.
    Reserialized,
    /// The signature is the HMAC of the body alone, or of the timestamp then
    /// the body: not Box's signing.
    BodyOnlyHmac,
    /// The timestamp header was rewritten: the same instant in another
    /// RFC 3339 form verifies.
    TimestampAltered,
    /// No repair verified and no evidence pointed anywhere.
    Unexplained,
    /// The body is over the diagnosis's size cap: repairs were not tried.
    BodyTooLarge,
}

impl HintCode {
    /// Every code, in the order hints are given.
    pub const ALL: [HintCode; 27] = [
        Self::EscapedForm,
        Self::SecondaryOnly,
        Self::MissingHeader,
        Self::MissingKey,
        Self::ConflictingHeader,
        Self::UnsupportedSignature,
        Self::TimestampFormat,
        Self::Expired,
        Self::Future,
        Self::HexSignature,
        Self::WrappedBase64,
        Self::UrlSafeBase64,
        Self::SignatureLength,
        Self::KeysSwapped,
        Self::KeyWhitespace,
        Self::KeyEncoding,
        Self::TrailingNewline,
        Self::Bom,
        Self::Crlf,
        Self::ReserializedWhitespace,
        Self::Charset,
        Self::UnicodeNormalized,
        Self::Reserialized,
        Self::BodyOnlyHmac,
        Self::TimestampAltered,
        Self::Unexplained,
        Self::BodyTooLarge,
    ];

    /// The stable `snake_case` code, e.g. `"keys_swapped"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::EscapedForm => "escaped_form",
            Self::SecondaryOnly => "secondary_only",
            Self::MissingHeader => "missing_header",
            Self::MissingKey => "missing_key",
            Self::ConflictingHeader => "conflicting_header",
            Self::UnsupportedSignature => "unsupported_signature",
            Self::TimestampFormat => "timestamp_format",
            Self::Expired => "expired",
            Self::Future => "future",
            Self::HexSignature => "hex_signature",
            Self::WrappedBase64 => "wrapped_base64",
            Self::UrlSafeBase64 => "url_safe_base64",
            Self::SignatureLength => "signature_length",
            Self::KeysSwapped => "keys_swapped",
            Self::KeyWhitespace => "key_whitespace",
            Self::KeyEncoding => "key_encoding",
            Self::TrailingNewline => "trailing_newline",
            Self::Bom => "bom",
            Self::Crlf => "crlf",
            Self::ReserializedWhitespace => "reserialized_whitespace",
            Self::Charset => "charset",
            Self::UnicodeNormalized => "unicode_normalized",
            Self::Reserialized => "reserialized",
            Self::BodyOnlyHmac => "body_only_hmac",
            Self::TimestampAltered => "timestamp_altered",
            Self::Unexplained => "unexplained",
            Self::BodyTooLarge => "body_too_large",
        }
    }

    /// The code for a string given by [`as_str`](Self::as_str).
    #[must_use]
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == code)
    }

    /// Whether this code says that a repaired form of the delivery verified
    /// (as opposed to reporting evidence or a header's state).
    #[must_use]
    pub const fn is_repair(self) -> bool {
        matches!(
            self,
            Self::HexSignature
                | Self::WrappedBase64
                | Self::UrlSafeBase64
                | Self::KeysSwapped
                | Self::KeyWhitespace
                | Self::KeyEncoding
                | Self::TrailingNewline
                | Self::Bom
                | Self::Crlf
                | Self::ReserializedWhitespace
                | Self::Charset
                | Self::UnicodeNormalized
                | Self::BodyOnlyHmac
                | Self::TimestampAltered
        )
    }
}

impl fmt::Display for HintCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::HintCode;

    #[test]
    fn codes_are_unique_snake_case_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for code in HintCode::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} twice");
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{text}"
            );
            assert_eq!(HintCode::from_code(text), Some(code));
        }
        assert_eq!(HintCode::from_code("nope"), None);
    }
}
