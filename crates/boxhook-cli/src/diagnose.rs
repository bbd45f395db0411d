//! Why a delivery does not verify. Every hint here is computed: the core's
//! `Verifier` is run again on an alternative (swapped keys, a repaired
//! signature header, the body without a trailing line break, no freshness
//! limit), and the hint is given only when that alternative verifies.

use std::time::Duration;

use base64::Engine as _;
use boxhook_core::{
    headers, BodyForm, DeliveryHeaders, Freshness, HeaderProblem, KeyRing, KeySlot,
    SignatureProblem, Verified, Verifier, VerifyError,
};
use chrono::{DateTime, Utc};

use crate::keys::KeyArgs;

/// The verdict on one captured delivery.
pub(crate) struct Report {
    /// Whether the delivery is authentic and fresh.
    pub(crate) valid: bool,
    /// Which key matched.
    pub(crate) key: Option<KeySlot>,
    /// Which body form matched.
    pub(crate) form: Option<BodyForm>,
    /// The core's stable code when invalid.
    pub(crate) reason: Option<&'static str>,
    /// One sentence: what matched, or what failed and by how much.
    pub(crate) message: String,
    /// What else was found out, each one checked.
    pub(crate) hints: Vec<String>,
    /// `BOX-DELIVERY-ID`, when captured.
    pub(crate) delivery_id: Option<String>,
}

impl Report {
    /// One JSON object.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "valid": self.valid,
            "key": self.key.map(KeySlot::as_str),
            "form": self.form.map(BodyForm::as_str),
            "reason": self.reason,
            "message": self.message,
            "hints": self.hints,
            "delivery_id": self.delivery_id,
        })
    }
}

/// Verifies `pairs` + `body` at `now`, and explains a failure.
pub(crate) fn diagnose(
    keys: &KeyArgs,
    ring: KeyRing,
    pairs: &[(String, String)],
    body: &[u8],
    now: DateTime<Utc>,
    freshness: Freshness,
) -> Report {
    let check = Check {
        keys,
        ring,
        body,
        now,
        freshness,
    };
    let headers = match DeliveryHeaders::from_pairs(pairs.iter().map(|(n, v)| (n, v))) {
        Ok(headers) => headers,
        Err(err) => return check.invalid(&err, None, header_hints(&err)),
    };
    let delivery_id = headers.delivery_id().map(str::to_owned);
    match check.verify(pairs, body, freshness) {
        Ok(verified) => check.valid(&verified, &headers, delivery_id),
        Err(err) => {
            let hints = check.hints(&err, &headers, pairs);
            check.invalid(&err, delivery_id, hints)
        }
    }
}

struct Check<'a> {
    keys: &'a KeyArgs,
    ring: KeyRing,
    body: &'a [u8],
    now: DateTime<Utc>,
    freshness: Freshness,
}

/// No freshness limit: checks the signature alone.
const ANY_AGE: Freshness = Freshness::new(Duration::MAX, Duration::MAX);

impl Check<'_> {
    fn verify(
        &self,
        pairs: &[(String, String)],
        body: &[u8],
        freshness: Freshness,
    ) -> Result<Verified, VerifyError> {
        self.verify_with(self.ring.clone(), pairs, body, freshness)
    }

    fn verify_with(
        &self,
        ring: KeyRing,
        pairs: &[(String, String)],
        body: &[u8],
        freshness: Freshness,
    ) -> Result<Verified, VerifyError> {
        let headers = DeliveryHeaders::from_pairs(pairs.iter().map(|(n, v)| (n, v)))?;
        Verifier::builder(ring)
            .freshness(freshness)
            .build()
            .verify_headers(&headers, body, self.now)
    }

    fn valid(
        &self,
        verified: &Verified,
        headers: &DeliveryHeaders<'_>,
        delivery_id: Option<String>,
    ) -> Report {
        let (key, form) = (verified.key_slot(), verified.body_form());
        let age = verified.age().num_seconds();
        let when = if age >= 0 {
            format!("{age} s old")
        } else {
            format!("{} s ahead of now", -age)
        };
        let mut hints = Vec::new();
        if form == BodyForm::Escaped {
            hints.push(
                "the body as captured does not match; its escaped form (`\\/`, `\\uXXXX`, \
                 as Box writes JSON) does: something between Box and here re-serialized \
                 the JSON. Accepted, as Box's SDKs accept it; fix the hop \
                 that re-encodes the body"
                    .to_owned(),
            );
        }
        if key == KeySlot::Secondary && self.keys.has(KeySlot::Primary) {
            let why = if headers.signature(KeySlot::Primary).is_some() {
                "BOX-SIGNATURE-PRIMARY does not match the primary key"
            } else {
                "the capture has no BOX-SIGNATURE-PRIMARY"
            };
            hints.push(format!(
                "only the secondary key matched: {why} (expected while rotating keys; \
                 otherwise check the primary key)"
            ));
        }
        Report {
            valid: true,
            key: Some(key),
            form: Some(form),
            reason: None,
            message: format!("signed with the {key} key over the {form} body, {when}"),
            hints,
            delivery_id,
        }
    }

    fn invalid(
        &self,
        err: &VerifyError,
        delivery_id: Option<String>,
        hints: Vec<String>,
    ) -> Report {
        let _ = self;
        Report {
            valid: false,
            key: None,
            form: None,
            reason: Some(err.code()),
            message: err.to_string(),
            hints,
            delivery_id,
        }
    }

    fn hints(
        &self,
        err: &VerifyError,
        headers: &DeliveryHeaders<'_>,
        pairs: &[(String, String)],
    ) -> Vec<String> {
        match err {
            VerifyError::MissingHeader { name } => self.missing_hints(name, headers),
            VerifyError::Expired { .. } | VerifyError::Future { .. } => {
                let mut hints = vec![freshness_hint(err, headers)];
                match self.verify(pairs, self.body, ANY_AGE) {
                    Ok(v) => hints.push(format!(
                        "the signature itself is valid ({} key, {} body): only the timestamp fails",
                        v.key_slot(),
                        v.body_form()
                    )),
                    Err(sig_err) => {
                        hints.push(format!("the signature does not verify either: {sig_err}"));
                        hints.extend(self.signature_hints(&sig_err, headers, pairs, ANY_AGE));
                    }
                }
                hints
            }
            VerifyError::UnsupportedVersion { .. } | VerifyError::UnsupportedAlgorithm { .. } => {
                vec![
                    "Box sends BOX-SIGNATURE-VERSION: 1 and BOX-SIGNATURE-ALGORITHM: HmacSHA256 \
                      on every V2 delivery; this is not one (V1 webhooks are not signed at all: \
                      https://developer.box.com/guides/webhooks/)"
                        .to_owned(),
                ]
            }
            VerifyError::MalformedTimestamp { .. } => vec![
                "Box sends RFC 3339 with a numeric offset, e.g. 2016-07-11T10:10:33-07:00"
                    .to_owned(),
            ],
            VerifyError::InvalidHeader { .. } => header_hints(err),
            _ => self.signature_hints(err, headers, pairs, self.freshness),
        }
    }

    fn missing_hints(&self, name: &str, headers: &DeliveryHeaders<'_>) -> Vec<String> {
        let upper = name.to_ascii_uppercase();
        if name != headers::SIGNATURE_PRIMARY && name != headers::SIGNATURE_SECONDARY {
            return vec![format!(
                "Box sends {upper} on every delivery: the capture (or a proxy) dropped it"
            )];
        }
        let mut hints = Vec::new();
        for slot in KeySlot::BOTH {
            let header = slot.header_name().to_ascii_uppercase();
            match (headers.signature(slot).is_some(), self.keys.has(slot)) {
                (true, false) => hints.push(format!(
                    "the capture has {header}, but no {slot} key was given \
                     (--{slot}-key or BOX_{}_KEY)",
                    slot.as_str().to_ascii_uppercase()
                )),
                (false, true) => hints.push(format!("the capture has no {header}")),
                _ => {}
            }
        }
        if headers.signature_primary().is_none() && headers.signature_secondary().is_none() {
            hints.push(
                "no signature header at all: Box signs only once signature keys exist \
                 (Developer Console → Webhooks → Manage signature keys), or the capture dropped them"
                    .to_owned(),
            );
        }
        hints
    }

    /// Hints for a signature that does not match or does not decode.
    fn signature_hints(
        &self,
        err: &VerifyError,
        headers: &DeliveryHeaders<'_>,
        pairs: &[(String, String)],
        freshness: Freshness,
    ) -> Vec<String> {
        let mut hints = Vec::new();
        if let VerifyError::MalformedSignature { name, problem } = err {
            hints.extend(self.repair_hint(name, *problem, headers, pairs, freshness));
        }
        if let Some(swapped) = self.keys.swapped_ring() {
            if let Ok(v) = self.verify_with(swapped, pairs, self.body, freshness) {
                let slot = v.key_slot();
                let given = match slot {
                    KeySlot::Primary => KeySlot::Secondary,
                    KeySlot::Secondary => KeySlot::Primary,
                };
                hints.push(format!(
                    "the keys look swapped: {} matches the key given as the {given} key; \
                     swap --primary-key and --secondary-key",
                    slot.header_name().to_ascii_uppercase()
                ));
            }
        }
        let trimmed = trim_line_break(self.body);
        if trimmed.len() != self.body.len() {
            if let Ok(v) = self.verify(pairs, trimmed, freshness) {
                hints.push(format!(
                    "the body file ends with a line break the request did not have \
                     (an editor or `echo` added it); without it the {} key matches",
                    v.key_slot()
                ));
            }
        }
        if matches!(err, VerifyError::Mismatch { .. }) {
            for slot in KeySlot::BOTH {
                if headers.signature(slot).is_some() && !self.keys.has(slot) {
                    hints.push(format!(
                        "the capture also has {}: give the {slot} key too (--{slot}-key)",
                        slot.header_name().to_ascii_uppercase()
                    ));
                }
            }
            if hints.is_empty() {
                hints.push(
                    "no alternative matched either (swapped keys, trailing line break, \
                     escaped form): the key is not this app's, or the body is not the bytes \
                     Box sent"
                        .to_owned(),
                );
            }
        }
        hints
    }

    /// Rewrites a malformed signature header the way it was probably mangled
    /// and verifies again.
    fn repair_hint(
        &self,
        name: &str,
        problem: SignatureProblem,
        headers: &DeliveryHeaders<'_>,
        pairs: &[(String, String)],
        freshness: Freshness,
    ) -> Option<String> {
        let slot = KeySlot::BOTH
            .into_iter()
            .find(|s| s.header_name() == name)?;
        let value = headers.signature(slot)?;
        let upper = name.to_ascii_uppercase();
        let (repaired, how) = match problem {
            SignatureProblem::LooksHex => (
                base64::engine::general_purpose::STANDARD.encode(decode_hex(value)?),
                "as hex",
            ),
            SignatureProblem::Whitespace => (
                value.split_whitespace().collect::<String>(),
                "without its white space",
            ),
            SignatureProblem::NotBase64 => (
                base64::engine::general_purpose::STANDARD.encode(
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .decode(value.trim_end_matches('='))
                        .ok()?,
                ),
                "as URL-safe base64",
            ),
            SignatureProblem::WrongLength { decoded } => {
                return Some(format!(
                    "{upper} decodes to {decoded} bytes; an HMAC-SHA256 is 32 (44 base64 \
                     characters): it was truncated or is not Box's"
                ));
            }
            _ => return None,
        };
        let repaired_pairs: Vec<(String, String)> = pairs
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case(name))
            .cloned()
            .chain([(name.to_owned(), repaired)])
            .collect();
        Some(match self.verify(&repaired_pairs, self.body, freshness) {
            Ok(v) if v.key_slot() == slot => format!(
                "{upper} read {how} is the right HMAC: something re-encoded the header; \
                     Box sends 44 characters of standard base64"
            ),
            _ => format!(
                "{upper} read {how} still does not match: it is mangled and signed \
                     with another key or over other bytes"
            ),
        })
    }
}

fn freshness_hint(err: &VerifyError, headers: &DeliveryHeaders<'_>) -> String {
    let sent = headers.timestamp().unwrap_or("?");
    match err {
        VerifyError::Future { .. } => format!(
            "BOX-DELIVERY-TIMESTAMP {sent} is ahead of this clock: check that this machine's \
             clock is synchronised (NTP), or allow more with --max-future-skew"
        ),
        _ => format!(
            "BOX-DELIVERY-TIMESTAMP is {sent}; Box's limit is 600 s. To check a \
             capture as of when it arrived, pass --now {sent}"
        ),
    }
}

fn header_hints(err: &VerifyError) -> Vec<String> {
    match err {
        VerifyError::InvalidHeader {
            name,
            problem: HeaderProblem::Conflicting,
        } => vec![format!(
            "the capture has {} twice with different values: a proxy added one, or the file \
             holds two requests",
            name.to_ascii_uppercase()
        )],
        _ => Vec::new(),
    }
}

fn trim_line_break(body: &[u8]) -> &[u8] {
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    body.strip_suffix(b"\r").unwrap_or(body)
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if digits.len() % 2 != 0 {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| {
            let hi = char::from(pair[0]).to_digit(16)?;
            let lo = char::from(pair[1]).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}
