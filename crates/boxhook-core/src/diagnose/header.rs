//! Checks of the headers: what is missing or malformed, signature headers
//! re-encoded, the timestamp rewritten, and signatures made the wrong way.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chrono::{DateTime, FixedOffset, SecondsFormat};
use hmac::Mac as _;

use super::check::Check;
use super::{Hint, HintCode};
use crate::headers;
use crate::signature::{self, Digest};
use crate::time::parse_rfc3339;
use crate::{Freshness, HeaderProblem, KeySlot, SignatureProblem, Verified, VerifyError};

pub(super) fn missing_hints(check: &Check<'_, '_>, name: &str) -> Vec<Hint> {
    let upper = name.to_ascii_uppercase();
    if name != headers::SIGNATURE_PRIMARY && name != headers::SIGNATURE_SECONDARY {
        return vec![Hint::new(
            HintCode::MissingHeader,
            format!("Box sends {upper} on every delivery: the capture (or a proxy) dropped it"),
        )];
    }
    let mut hints = missing_key_hints(check);
    let given: Vec<String> = KeySlot::BOTH
        .into_iter()
        .filter(|&slot| check.keys.has(slot) && check.headers.signature(slot).is_none())
        .map(|slot| slot.header_name().to_ascii_uppercase())
        .collect();
    let message = if check.headers.signature_primary().is_none()
        && check.headers.signature_secondary().is_none()
    {
        "no signature header at all: Box signs only once signature keys exist \
         (Developer Console → Webhooks → Manage signature keys), or the capture or a \
         proxy dropped them"
            .to_owned()
    } else {
        format!(
            "the delivery has no {} for the key given",
            given.join(" or ")
        )
    };
    hints.push(Hint::new(HintCode::MissingHeader, message));
    hints
}

/// A signature header present for a slot whose key was not given.
pub(super) fn missing_key_hints(check: &Check<'_, '_>) -> Vec<Hint> {
    KeySlot::BOTH
        .into_iter()
        .filter(|&slot| check.headers.signature(slot).is_some() && !check.keys.has(slot))
        .map(|slot| {
            Hint::new(
                HintCode::MissingKey,
                format!(
                    "the delivery has {}, but no {slot} key was given: give it too \
                     (--{slot}-key or BOX_{}_KEY)",
                    slot.header_name().to_ascii_uppercase(),
                    slot.as_str().to_ascii_uppercase()
                ),
            )
        })
        .collect()
}

pub(super) fn unsupported_hint() -> Hint {
    Hint::new(
        HintCode::UnsupportedSignature,
        "Box sends BOX-SIGNATURE-VERSION: 1 and BOX-SIGNATURE-ALGORITHM: HmacSHA256 on \
         every V2 delivery; this is not one (V1 webhooks are not signed at all: \
         https://developer.box.com/guides/webhooks/)",
    )
}

pub(super) fn timestamp_format_hint() -> Hint {
    Hint::new(
        HintCode::TimestampFormat,
        "Box sends RFC 3339 with a numeric offset, e.g. 2016-07-11T10:10:33-07:00",
    )
}

pub(super) fn error_hints(err: &VerifyError) -> Vec<Hint> {
    match err {
        VerifyError::InvalidHeader {
            name,
            problem: HeaderProblem::Conflicting,
        } => vec![Hint::new(
            HintCode::ConflictingHeader,
            format!(
                "the capture has {} twice with different values: a proxy added one, or \
                 the capture holds two requests",
                name.to_ascii_uppercase()
            ),
        )],
        _ => Vec::new(),
    }
}

pub(super) fn freshness_hint(
    check: &Check<'_, '_>,
    err: &VerifyError,
    signature: Option<&Verified>,
) -> Hint {
    let sent = check.headers.timestamp().unwrap_or("?");
    let signed = match signature {
        Some(v) => format!(
            "the signature itself verifies ({} key, {} body): only the time fails",
            v.key_slot(),
            v.body_form()
        ),
        None => "the signature does not verify either (see the other hints)".to_owned(),
    };
    match err {
        VerifyError::Future { .. } => Hint::new(
            HintCode::Future,
            format!(
                "BOX-DELIVERY-TIMESTAMP {sent} is ahead of this clock: check that this \
                 machine's clock is synchronised (NTP), or allow more skew; {signed}"
            ),
        ),
        _ => Hint::new(
            HintCode::Expired,
            format!(
                "BOX-DELIVERY-TIMESTAMP is {sent}, older than the limit (Box's is 600 s): a \
                 replay, a request queued too long, or a capture checked later (check it as \
                 of its arrival, e.g. `--now {sent}`); {signed}"
            ),
        ),
    }
}

/// Malformed signature headers, read the way they were probably mangled.
pub(super) fn signature_repairs(check: &Check<'_, '_>, freshness: Freshness) -> Vec<Hint> {
    let mut hints = Vec::new();
    for slot in KeySlot::BOTH {
        let Some(value) = check.headers.signature(slot) else {
            continue;
        };
        if !check.keys.has(slot) {
            continue;
        }
        let Err(problem) = signature::decode(value) else {
            continue;
        };
        let upper = slot.header_name().to_ascii_uppercase();
        let (repaired, code, how) = match problem {
            SignatureProblem::LooksHex => {
                let Some(bytes) = decode_hex(value) else {
                    continue;
                };
                (STANDARD.encode(bytes), HintCode::HexSignature, "as hex")
            }
            SignatureProblem::Whitespace => (
                value.split_ascii_whitespace().collect::<String>(),
                HintCode::WrappedBase64,
                "without its white space (wrapped base64)",
            ),
            SignatureProblem::NotBase64 => {
                let Ok(bytes) = URL_SAFE_NO_PAD.decode(value.trim_end_matches('=')) else {
                    continue;
                };
                (
                    STANDARD.encode(bytes),
                    HintCode::UrlSafeBase64,
                    "as URL-safe or unpadded base64",
                )
            }
            SignatureProblem::WrongLength { decoded } => {
                if hints
                    .iter()
                    .any(|h: &Hint| h.code() == HintCode::SignatureLength)
                {
                    continue;
                }
                hints.push(Hint::new(
                    HintCode::SignatureLength,
                    format!(
                        "{upper} decodes to {decoded} bytes; an HMAC-SHA256 is 32 (44 base64 \
                         characters): it was truncated or is not Box's"
                    ),
                ));
                continue;
            }
        };
        let headers = check.headers.with_value(slot.header_name(), Some(repaired));
        if !hints.iter().any(|h: &Hint| h.code() == code)
            && check
                .verifies(&check.ring, &headers, check.body, freshness)
                .is_some_and(|v| v.key_slot() == slot)
        {
            hints.push(Hint::new(
                code,
                format!(
                    "{upper} read {how} verifies: something re-encoded the header (Box \
                     sends 44 characters of standard base64); send or forward it unchanged"
                ),
            ));
        }
    }
    hints
}

/// The same instant in other RFC 3339 spellings: a proxy that normalised
/// the header.
pub(super) fn timestamp_repair(check: &Check<'_, '_>, freshness: Freshness) -> Option<Hint> {
    let sent = check.headers.timestamp()?;
    let instant = parse_rfc3339(sent).ok()?;
    for slot in KeySlot::BOTH {
        let (Some(key), Some(value)) = (check.ring.key(slot), check.headers.signature(slot)) else {
            continue;
        };
        let Ok(want) = signature::decode(value) else {
            continue;
        };
        let mut after_body = key.mac();
        after_body.update(check.body);
        for candidate in spellings(instant) {
            if candidate == sent {
                continue;
            }
            let mut mac = after_body.clone();
            mac.update(candidate.as_bytes());
            let got: Digest = mac.finalize().into_bytes().into();
            if got != want {
                continue;
            }
            let headers = check
                .headers
                .with_value(headers::DELIVERY_TIMESTAMP, Some(candidate.clone()));
            if check
                .verifies(&check.ring, &headers, check.body, freshness)
                .is_some()
            {
                return Some(Hint::new(
                    HintCode::TimestampAltered,
                    format!(
                        "BOX-DELIVERY-TIMESTAMP arrived as {sent} but was signed as \
                         {candidate} (the same instant): a proxy or framework rewrote the \
                         header; forward it unchanged"
                    ),
                ));
            }
        }
    }
    None
}

/// `instant` written with every quarter-hour offset from -12:00 to +14:00,
/// `Z` for UTC, and whole, milli-, micro- and nanosecond precision.
fn spellings(instant: DateTime<FixedOffset>) -> Vec<String> {
    let mut out = Vec::new();
    let formats = [
        SecondsFormat::Secs,
        SecondsFormat::Millis,
        SecondsFormat::Micros,
        SecondsFormat::Nanos,
        SecondsFormat::AutoSi,
    ];
    let mut quarter = -48_i32;
    while quarter <= 56 {
        let offset = quarter.checked_mul(900).and_then(FixedOffset::east_opt);
        if let Some(offset) = offset {
            let local = instant.with_timezone(&offset);
            for format in formats {
                if format == SecondsFormat::Secs && local.timestamp_subsec_nanos() != 0 {
                    continue;
                }
                out.push(local.to_rfc3339_opts(format, false));
                if quarter == 0 {
                    out.push(local.to_rfc3339_opts(format, true));
                }
            }
        }
        quarter = quarter.saturating_add(1);
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The signature is the HMAC of the body alone, or of the timestamp then
/// the body.
pub(super) fn body_only(check: &Check<'_, '_>) -> Option<Hint> {
    let sent = check.headers.timestamp().unwrap_or("");
    for slot in KeySlot::BOTH {
        let (Some(key), Some(value)) = (check.ring.key(slot), check.headers.signature(slot)) else {
            continue;
        };
        let Ok(want) = signature::decode(value) else {
            continue;
        };
        let upper = slot.header_name().to_ascii_uppercase();
        let how = if signature::digest(key, check.body, b"") == want {
            "the body alone"
        } else if !sent.is_empty() && signature::digest(key, sent.as_bytes(), check.body) == want {
            "the timestamp then the body (the wrong order)"
        } else {
            continue;
        };
        return Some(Hint::new(
            HintCode::BodyOnlyHmac,
            format!(
                "{upper} is the HMAC of {how}, not of the body then BOX-DELIVERY-TIMESTAMP \
                 as Box signs: the sender is not Box, or a hand-written signer made it; \
                 sign body bytes followed by the timestamp header's bytes"
            ),
        ));
    }
    None
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks_exact(2)
        .map(|pair| {
            let hi = char::from(pair[0]).to_digit(16)?;
            let lo = char::from(pair[1]).to_digit(16)?;
            u8::try_from(hi.checked_mul(16)?.checked_add(lo)?).ok()
        })
        .collect()
}
