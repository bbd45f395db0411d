//! Why a delivery does not verify: the report of `boxhook verify`, built
//! from the core's [`boxhook_core::diagnose`], so the CLI, `serve`'s log and
//! the library share one implementation and one set of hint codes.

use boxhook_core::diagnose::{diagnose_with, header_error_hints, DiagnosisKeys, Hint};
use boxhook_core::{BodyForm, DeliveryHeaders, Freshness, KeySlot, VerifyError};
use chrono::{DateTime, Utc};

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
    /// What else was found out, each with its stable code.
    pub(crate) hints: Vec<Hint>,
    /// `BOX-DELIVERY-ID`, when captured.
    pub(crate) delivery_id: Option<String>,
}

impl Report {
    /// One JSON object; `hints` is a list of `{"code", "message"}`.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let hints: Vec<_> = self
            .hints
            .iter()
            .map(|h| serde_json::json!({"code": h.code().as_str(), "message": h.message()}))
            .collect();
        serde_json::json!({
            "valid": self.valid,
            "key": self.key.map(KeySlot::as_str),
            "form": self.form.map(BodyForm::as_str),
            "reason": self.reason,
            "message": self.message,
            "hints": hints,
            "delivery_id": self.delivery_id,
        })
    }
}

/// Verifies `pairs` + `body` at `now`, and explains a failure.
pub(crate) fn diagnose(
    keys: &DiagnosisKeys,
    pairs: &[(String, String)],
    body: &[u8],
    now: DateTime<Utc>,
    freshness: Freshness,
) -> Report {
    let headers = match DeliveryHeaders::from_pairs(pairs.iter().map(|(n, v)| (n, v))) {
        Ok(headers) => headers,
        Err(err) => return invalid(&err, None, header_error_hints(&err)),
    };
    let delivery_id = headers.delivery_id().map(str::to_owned);
    let diagnosis = diagnose_with(&headers, body, keys, now, freshness);
    let hints = diagnosis.hints().to_vec();
    match diagnosis.verdict() {
        Ok(verified) => {
            let (key, form) = (verified.key_slot(), verified.body_form());
            let age = verified.age().num_seconds();
            let when = if age >= 0 {
                format!("{age} s old")
            } else {
                format!("{} s ahead of now", age.saturating_neg())
            };
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
        Err(err) => invalid(err, delivery_id, hints),
    }
}

fn invalid(err: &VerifyError, delivery_id: Option<String>, hints: Vec<Hint>) -> Report {
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
