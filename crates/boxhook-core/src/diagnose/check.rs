//! The diagnosis's flow: which checks run for which failure.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{body, header, json, keys, DiagnosisKeys, Hint, HintCode, MAX_REPAIR_BODY};
use crate::{
    BodyForm, DeliveryHeaders, Freshness, KeyRing, KeySlot, Verified, Verifier, VerifyError,
};

/// No freshness limit: checks the signature alone.
pub(super) const ANY_AGE: Freshness = Freshness::new(Duration::MAX, Duration::MAX);

/// One delivery under diagnosis.
pub(super) struct Check<'a, 'h> {
    pub(super) headers: &'a DeliveryHeaders<'h>,
    pub(super) body: &'a [u8],
    pub(super) keys: &'a DiagnosisKeys,
    /// The keys as given.
    pub(super) ring: KeyRing,
    pub(super) now: DateTime<Utc>,
}

impl Check<'_, '_> {
    /// Whether `headers` + `body` verify under `ring`.
    pub(super) fn verifies(
        &self,
        ring: &KeyRing,
        headers: &DeliveryHeaders<'_>,
        body: &[u8],
        freshness: Freshness,
    ) -> Option<Verified> {
        Verifier::builder(ring.clone())
            .freshness(freshness)
            .build()
            .verify_headers(headers, body, self.now)
            .ok()
    }

    /// Whether `body` verifies with the headers and keys as given.
    pub(super) fn body_verifies(&self, body: &[u8], freshness: Freshness) -> Option<Verified> {
        self.verifies(&self.ring, self.headers, body, freshness)
    }

    pub(super) fn valid_hints(&self, verified: &Verified) -> Vec<Hint> {
        let mut hints = Vec::new();
        if verified.body_form() == BodyForm::Escaped {
            hints.push(Hint::new(
                HintCode::EscapedForm,
                "the body as received does not match; its escaped form (`\\/`, `\\uXXXX`, \
                 as Box writes JSON) does: something between Box and here re-encoded the \
                 JSON. Accepted, as Box's SDKs accept it; fix the hop that re-encodes the body",
            ));
        }
        if verified.key_slot() == KeySlot::Secondary && self.keys.has(KeySlot::Primary) {
            let why = if self.headers.signature(KeySlot::Primary).is_some() {
                "BOX-SIGNATURE-PRIMARY does not match the primary key"
            } else {
                "the delivery has no BOX-SIGNATURE-PRIMARY"
            };
            hints.push(Hint::new(
                HintCode::SecondaryOnly,
                format!(
                    "only the secondary key matched: {why} (expected while rotating keys; \
                     otherwise check the primary key)"
                ),
            ));
        }
        hints
    }

    pub(super) fn failure_hints(&self, err: &VerifyError, freshness: Freshness) -> Vec<Hint> {
        match err {
            VerifyError::MissingHeader { name } => header::missing_hints(self, name),
            VerifyError::UnsupportedVersion { .. } | VerifyError::UnsupportedAlgorithm { .. } => {
                vec![header::unsupported_hint()]
            }
            VerifyError::MalformedTimestamp { .. } => vec![header::timestamp_format_hint()],
            VerifyError::InvalidHeader { .. } => header::error_hints(err),
            VerifyError::Expired { .. } | VerifyError::Future { .. } => {
                let signature = self.body_verifies(self.body, ANY_AGE);
                let mut hints = vec![header::freshness_hint(self, err, signature.as_ref())];
                if signature.is_none() {
                    hints.extend(self.signature_hints(ANY_AGE));
                }
                hints
            }
            _ => self.signature_hints(freshness),
        }
    }

    /// Every repair that verifies; else the evidence; else `unexplained`.
    fn signature_hints(&self, freshness: Freshness) -> Vec<Hint> {
        let mut hints = Vec::new();
        if self.body.len() > MAX_REPAIR_BODY {
            hints.push(Hint::new(
                HintCode::BodyTooLarge,
                format!(
                    "the body is {} bytes, over the diagnosis's {MAX_REPAIR_BODY}-byte cap: \
                     no repair was tried (Box's payloads are a few KiB)",
                    self.body.len()
                ),
            ));
        } else {
            hints.extend(header::signature_repairs(self, freshness));
            hints.extend(keys::repairs(self, freshness));
            hints.extend(body::repairs(self, freshness));
            hints.extend(header::timestamp_repair(self, freshness));
            hints.extend(header::body_only(self));
        }
        let explained = hints.iter().any(|h| h.code().is_repair());
        hints.extend(header::missing_key_hints(self));
        if !explained && self.body.len() <= MAX_REPAIR_BODY {
            match json::reserialized_evidence(self.body) {
                Some(evidence) => hints.push(json::reserialized_hint(&evidence)),
                None if hints.is_empty() => hints.push(Hint::new(
                    HintCode::Unexplained,
                    "no repair verifies: check the keys. Nothing in the delivery shows \
                     a change in transit (tried: the keys' slots, white space and \
                     encoding, the signature header, the timestamp, line breaks, a \
                     byte-order mark, JSON white space, the escaped form, the charset and \
                     Unicode normalization), so the key given is most likely not the one \
                     that signed (Developer Console, Webhooks, Manage signature keys), or \
                     the body's content changed after signing",
                )),
                None => {}
            }
        }
        hints
    }
}
