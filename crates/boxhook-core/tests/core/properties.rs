//! Property tests: sign → verify round trips, every flipped byte fails, and
//! the escaped form's invariants.

use boxhook_core::{escaped_form, BodyForm, DeliveryTimestamp, KeyRing, KeySlot, Signer, Verifier};
use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;

fn key_strategy() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[ -~]{1,64}")
}

fn ring(primary: Option<&str>, secondary: Option<&str>) -> Option<KeyRing> {
    KeyRing::from_strs(primary, secondary).ok()
}

fn timestamp_strategy() -> impl Strategy<Value = DateTime<Utc>> {
    // 1990..2100, with arbitrary offsets applied when formatting.
    (631_152_000i64..4_102_444_800).prop_map(|s| DateTime::from_timestamp(s, 0).expect("in range"))
}

fn offset_strategy() -> impl Strategy<Value = chrono::FixedOffset> {
    (-14 * 4..=14 * 4i32)
        .prop_map(|q| chrono::FixedOffset::east_opt(q * 15 * 60).expect("in range"))
}

/// JSON-ish text rich in the characters the escaped form cares about.
fn jsonish() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("\"".to_owned()),
            Just("\\".to_owned()),
            Just("/".to_owned()),
            Just("\\/".to_owned()),
            Just("\\\\/".to_owned()),
            Just("\\u00e9".to_owned()),
            "[a-z:{},]{1,4}",
            any::<char>().prop_map(String::from),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn sign_then_verify_round_trips(
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        primary in key_strategy(),
        secondary in key_strategy(),
        sent in timestamp_strategy(),
        offset in offset_strategy(),
        delay in 0i64..=600,
    ) {
        let Some(keys) = ring(primary.as_deref(), secondary.as_deref()) else { return Ok(()) };
        let ts = DeliveryTimestamp::from_datetime(sent.with_timezone(&offset));
        let headers = Signer::new(keys.clone()).sign(&body, &ts, "id").to_header_map();
        let now = sent + TimeDelta::seconds(delay);
        let verified = Verifier::new(keys).verify(&headers, &body, now).expect("round trip");
        let want = if primary.is_some() { KeySlot::Primary } else { KeySlot::Secondary };
        prop_assert_eq!(verified.key_slot(), want);
        prop_assert_eq!(verified.body_form(), BodyForm::Raw);
        prop_assert_eq!(verified.age().num_seconds(), delay);
    }

    #[test]
    fn flipping_any_byte_fails(
        body in proptest::collection::vec(any::<u8>(), 1..512),
        which in 0usize..3,
        index in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let keys = ring(Some("SamplePrimaryKey"), Some("SampleSecondaryKey")).expect("keys");
        let sent: DateTime<Utc> = "2020-01-01T07:00:00Z".parse().expect("valid");
        let ts = DeliveryTimestamp::from_utc(sent);
        let signed = Signer::new(keys.clone()).sign(&body, &ts, "id");
        let mut body = body;
        let mut timestamp = signed.timestamp().as_bytes().to_vec();
        let mut primary = signed.primary().expect("primary").as_bytes().to_vec();
        let target = match which { 0 => &mut body, 1 => &mut timestamp, _ => &mut primary };
        let i = index.index(target.len());
        target[i] ^= 1 << bit;
        let (Ok(timestamp), Ok(primary)) = (String::from_utf8(timestamp), String::from_utf8(primary)) else {
            return Ok(());
        };
        let pairs = [
            ("box-delivery-timestamp", timestamp.as_str()),
            ("box-signature-primary", primary.as_str()),
            ("box-signature-version", "1"),
            ("box-signature-algorithm", "HmacSHA256"),
        ];
        let Ok(headers) = boxhook_core::DeliveryHeaders::from_pairs(pairs) else { return Ok(()) };
        // Only the primary key, so the untouched secondary cannot rescue it.
        let verifier = Verifier::new(ring(Some("SamplePrimaryKey"), None).expect("keys"));
        prop_assert!(verifier.verify_headers(&headers, &body, sent).is_err());
    }

    #[test]
    fn escaped_form_is_ascii_and_idempotent(text in jsonish()) {
        let once = escaped_form(text.as_bytes()).expect("UTF-8").into_owned();
        prop_assert!(once.is_ascii());
        let twice = escaped_form(&once).expect("ASCII is UTF-8");
        prop_assert!(matches!(twice, std::borrow::Cow::Borrowed(_)), "second pass must not change anything");
    }

    #[test]
    fn escaped_form_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(out) = escaped_form(&bytes) {
            prop_assert!(out.is_ascii());
        }
    }

    #[test]
    fn escaped_form_matches_serde_json_strings(s in any::<String>()) {
        // serde_json writes raw UTF-8 and bare `/`; escaping that must give
        // what json_encode writes, which decodes back to the same string.
        let json = serde_json::to_string(&s).expect("string");
        let escaped = escaped_form(json.as_bytes()).expect("UTF-8");
        let back: String = serde_json::from_slice(&escaped).expect("still JSON");
        prop_assert_eq!(back, s);
    }

    #[test]
    fn raw_utf8_body_signed_over_escaped_form_verifies_as_escaped(name in "\\PC{1,40}") {
        let keys = ring(Some("SamplePrimaryKey"), None).expect("keys");
        let body = serde_json::json!({"trigger": "FILE.UPLOADED", "source": {"type": "file", "name": name}}).to_string();
        let sent: DateTime<Utc> = "2020-01-01T07:00:00Z".parse().expect("valid");
        let ts = DeliveryTimestamp::from_utc(sent);
        let headers = Signer::new(keys.clone()).sign_escaped(body.as_bytes(), &ts, "id").expect("UTF-8").to_header_map();
        let verified = Verifier::new(keys).verify(&headers, body.as_bytes(), sent).expect("verifies");
        let changed = escaped_form(body.as_bytes()).expect("UTF-8").as_ref() != body.as_bytes();
        let want = if changed { BodyForm::Escaped } else { BodyForm::Raw };
        prop_assert_eq!(verified.body_form(), want);
    }
}
