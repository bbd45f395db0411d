//! The signature itself: `base64(HMAC-SHA256(key, body ‖ timestamp))`.
//! The one place it is computed, for the verifier and the signer alike.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::Mac as _;

use crate::error::SignatureProblem;
use crate::headers::MAX_HEADER_LEN;
use crate::key::SigningKey;

/// An HMAC-SHA256 digest.
pub(crate) type Digest = [u8; 32];

/// The digest of `body` then `timestamp`, fed incrementally: the body is
/// never copied.
pub(crate) fn digest(key: &SigningKey, body: &[u8], timestamp: &[u8]) -> Digest {
    let mut mac = key.mac();
    mac.update(body);
    mac.update(timestamp);
    mac.finalize().into_bytes().into()
}

/// Standard padded base64, as Box writes it: 44 characters.
pub(crate) fn encode(digest: &Digest) -> String {
    STANDARD.encode(digest)
}

/// Decodes a signature header strictly: standard alphabet, canonical padding,
/// exactly 32 bytes.
///
/// Box's 44 characters decode straight into the digest; only a header that
/// fails that is examined again to say what is wrong with it.
pub(crate) fn decode(text: &str) -> Result<Digest, SignatureProblem> {
    let mut out = [0u8; 32];
    // `decode_slice` fails rather than truncate when the output would not
    // fit, so `Ok(32)` means exactly 32 bytes.
    match STANDARD.decode_slice(text, &mut out) {
        Ok(32) => Ok(out),
        _ => Err(problem(text)),
    }
}

/// What is wrong with a header that does not decode to 32 bytes.
#[cold]
fn problem(text: &str) -> SignatureProblem {
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return SignatureProblem::LooksHex;
    }
    if text.bytes().any(|b| b.is_ascii_whitespace()) {
        return SignatureProblem::Whitespace;
    }
    // Header values are capped at MAX_HEADER_LEN, so this buffer holds any
    // decodable value and the true decoded length can be reported.
    let mut buf = [0u8; MAX_HEADER_LEN];
    match STANDARD.decode_slice(text, &mut buf) {
        Ok(decoded) => SignatureProblem::WrongLength { decoded },
        Err(_) => SignatureProblem::NotBase64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_table() {
        let good = "6TfeAW3A1PASkgboxxA5yqHNKOwFyMWuEXny/FPD5hI=";
        assert!(decode(good).is_ok());
        let cases: &[(&str, SignatureProblem)] = &[
            (
                "e937de016dc0d4f5129206e8c71039caa1cd28ec05c8c5ae1179f2fc53c3e612",
                SignatureProblem::LooksHex,
            ),
            (
                "6TfeAW3A1PASkgboxxA5yqHNKOwF\n yMWuEXny/FPD5hI=",
                SignatureProblem::Whitespace,
            ),
            (
                "6TfeAW3A1PASkgboxxA5yqHNKOwFyMWuEXny_FPD5hI=",
                SignatureProblem::NotBase64,
            ),
            (
                "6TfeAW3A1PASkgboxxA5yqHNKOwFyMWuEXny/FPD5hI",
                SignatureProblem::NotBase64,
            ),
            // Non-canonical trailing bits.
            (
                "6TfeAW3A1PASkgboxxA5yqHNKOwFyMWuEXny/FPD5hJ=",
                SignatureProblem::NotBase64,
            ),
            ("", SignatureProblem::WrongLength { decoded: 0 }),
            ("AAAA", SignatureProblem::WrongLength { decoded: 3 }),
            (
                "6TfeAW3A1PASkgboxxA5yqHNKOwFyMWuEXny/FPD5hIA",
                SignatureProblem::WrongLength { decoded: 33 },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(decode(text), Err(*want), "{text:?}");
        }
    }
}
