//! Known-answer vectors (see "Known-answer vectors" in docs/PROTOCOL.md) and one negative case per
//! error kind.
#![allow(
    clippy::too_many_lines,
    clippy::similar_names,
    clippy::type_complexity,
    reason = "table-driven tests: long literal tables with primary/secondary pairs"
)]

use std::time::Duration;

use boxhook_core::{
    BodyForm, DeliveryHeaders, DeliveryTimestamp, ErrorKind, HeaderProblem, KeyRing, KeySlot,
    SharedKeyRing, SignatureProblem, Signer, Verifier, VerifyError,
};
use chrono::{DateTime, Utc};

const TS: &str = "2020-01-01T00:00:00-07:00";
const BODY_1: &str = r#"{"type":"webhook_event","webhook":{"id":"1234567890"},"trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file","name":"Test.txt"}}"#;
const SIG_1_PRIMARY: &str = "6TfeAW3A1PASkgboxxA5yqHNKOwFyMWuEXny/FPD5hI=";
const SIG_1_SECONDARY: &str = "v+1CD1Jdo3muIcbpv5lxxgPglOqMfsNHPV899xWYydo=";
const BODY_2: &str = r#"{"webhook":{"id":"1234567890"},"trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file","name":"\u30b9\u30af\u30ea\u30fc\u30f3\u30b7\u30e7\u30c3\u30c8 2020-08-05.txt"}}"#;
const BODY_2_UTF8: &str = r#"{"webhook":{"id":"1234567890"},"trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file","name":"スクリーンショット 2020-08-05.txt"}}"#;
const SIG_2_PRIMARY: &str = "LV2uCu+5NJtIHrCXDYgZ0v/PP5THGRuegw3RtdnEyuE=";

fn now() -> DateTime<Utc> {
    "2020-01-01T07:00:30Z".parse().expect("valid")
}

fn sample_keys() -> KeyRing {
    KeyRing::from_strs(Some("SamplePrimaryKey"), Some("SampleSecondaryKey")).expect("keys")
}

fn headers(pairs: &[(&str, &str)]) -> DeliveryHeaders<'static> {
    DeliveryHeaders::from_pairs(pairs.iter().copied()).expect("well-formed headers")
}

fn box_headers<'a>(
    ts: &'a str,
    primary: Option<&'a str>,
    secondary: Option<&'a str>,
) -> Vec<(&'a str, &'a str)> {
    let mut out = vec![
        ("BOX-DELIVERY-ID", "462fc1b2-7bc5-4e50-a8fa-f0c2ff1d9c8e"),
        ("BOX-DELIVERY-TIMESTAMP", ts),
        ("BOX-SIGNATURE-VERSION", "1"),
        ("BOX-SIGNATURE-ALGORITHM", "HmacSHA256"),
    ];
    out.extend(primary.map(|p| ("BOX-SIGNATURE-PRIMARY", p)));
    out.extend(secondary.map(|s| ("BOX-SIGNATURE-SECONDARY", s)));
    out
}

#[test]
fn box_sdk_vectors_verify() {
    let both = sample_keys();
    let primary_only = KeyRing::from_strs(Some("SamplePrimaryKey"), None).expect("keys");
    let secondary_only = KeyRing::from_strs(None, Some("SampleSecondaryKey")).expect("keys");
    // (keys, body, primary header, secondary header, expected slot, expected form)
    let cases = [
        (
            &both,
            BODY_1,
            Some(SIG_1_PRIMARY),
            Some(SIG_1_SECONDARY),
            KeySlot::Primary,
            BodyForm::Raw,
        ),
        (
            &both,
            BODY_1,
            Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            Some(SIG_1_SECONDARY),
            KeySlot::Secondary,
            BodyForm::Raw,
        ),
        (
            &secondary_only,
            BODY_1,
            Some(SIG_1_PRIMARY),
            Some(SIG_1_SECONDARY),
            KeySlot::Secondary,
            BodyForm::Raw,
        ),
        (
            &primary_only,
            BODY_1,
            Some(SIG_1_PRIMARY),
            None,
            KeySlot::Primary,
            BodyForm::Raw,
        ),
        (
            &both,
            BODY_1,
            None,
            Some(SIG_1_SECONDARY),
            KeySlot::Secondary,
            BodyForm::Raw,
        ),
        (
            &primary_only,
            BODY_2,
            Some(SIG_2_PRIMARY),
            None,
            KeySlot::Primary,
            BodyForm::Raw,
        ),
        (
            &primary_only,
            BODY_2_UTF8,
            Some(SIG_2_PRIMARY),
            None,
            KeySlot::Primary,
            BodyForm::Escaped,
        ),
    ];
    for (keys, body, primary, secondary, slot, form) in cases {
        let verified = Verifier::new(keys.clone())
            .verify_headers(
                &headers(&box_headers(TS, primary, secondary)),
                body.as_bytes(),
                now(),
            )
            .unwrap_or_else(|e| panic!("{body}: {e}"));
        assert_eq!(
            (verified.key_slot(), verified.body_form()),
            (slot, form),
            "{body}"
        );
        assert_eq!(
            verified.delivery_id(),
            Some("462fc1b2-7bc5-4e50-a8fa-f0c2ff1d9c8e")
        );
        assert_eq!(verified.age().num_seconds(), 30);
        assert_eq!(verified.timestamp().to_rfc3339(), TS);
    }
}

#[test]
fn java_sdk_vector_signs_and_verifies() {
    let keys = KeyRing::from_strs(
        Some("faqZQdZ2dbNVaFdPWRsVMjZOC4nVwgp0"),
        Some("4SidLLVJLIx3L3RAvMhybvvpmJHUd4iD"),
    )
    .expect("keys");
    let ts = DeliveryTimestamp::parse("2016-07-08T01:20:32-07:00").expect("timestamp");
    let body = br#"{ "payload" : "test" }"#;
    let signed = Signer::new(keys.clone()).sign(body, &ts, "id");
    assert_eq!(
        signed.primary(),
        Some("R54s9jpedqP/Og92+77Ip8hVtfWjR4pnaJXcvRGafCQ=")
    );
    assert_eq!(
        signed.secondary(),
        Some("V4b6jfPoCaTpcPvUDaaYLfVC4+DUZ3/B6F0pz44shEE=")
    );
    let now = "2016-07-08T08:20:40Z".parse().expect("valid");
    let verified = Verifier::new(keys)
        .verify(&signed.to_header_map(), body, now)
        .expect("valid");
    assert_eq!(verified.key_slot(), KeySlot::Primary);
}

#[test]
fn signer_reproduces_the_vectors() {
    let ts = DeliveryTimestamp::parse(TS).expect("timestamp");
    let signer = Signer::new(sample_keys());
    let signed = signer.sign(BODY_1.as_bytes(), &ts, "d");
    assert_eq!(
        (signed.primary(), signed.secondary()),
        (Some(SIG_1_PRIMARY), Some(SIG_1_SECONDARY))
    );
    assert_eq!(
        signer.sign(BODY_2.as_bytes(), &ts, "d").primary(),
        Some(SIG_2_PRIMARY)
    );
    let escaped = signer
        .sign_escaped(BODY_2_UTF8.as_bytes(), &ts, "d")
        .expect("UTF-8");
    assert_eq!(escaped.primary(), Some(SIG_2_PRIMARY));
}

#[test]
fn every_error_kind() {
    let keys = sample_keys();
    let verifier = Verifier::new(keys.clone());
    let good = box_headers(TS, Some(SIG_1_PRIMARY), Some(SIG_1_SECONDARY));
    let with =
        |name: &'static str, value: Option<&'static str>| -> Vec<(&'static str, &'static str)> {
            let mut out: Vec<_> = good
                .iter()
                .copied()
                .filter(|(n, _)| !n.eq_ignore_ascii_case(name))
                .collect();
            out.extend(value.map(|v| (name, v)));
            out
        };
    let hex = "e937de016dc0d4f5129206e8c71039caa1cd28ec05c8c5ae1179f2fc53c3e612";
    let cases: Vec<(&str, Vec<(&str, &str)>, &str, VerifyError)> = vec![
        (
            "no version",
            with("BOX-SIGNATURE-VERSION", None),
            BODY_1,
            VerifyError::MissingHeader {
                name: "box-signature-version",
            },
        ),
        (
            "no algorithm",
            with("BOX-SIGNATURE-ALGORITHM", None),
            BODY_1,
            VerifyError::MissingHeader {
                name: "box-signature-algorithm",
            },
        ),
        (
            "no timestamp",
            with("BOX-DELIVERY-TIMESTAMP", None),
            BODY_1,
            VerifyError::MissingHeader {
                name: "box-delivery-timestamp",
            },
        ),
        (
            "no signatures",
            with("BOX-SIGNATURE-PRIMARY", None)
                .into_iter()
                .filter(|(n, _)| *n != "BOX-SIGNATURE-SECONDARY")
                .collect(),
            BODY_1,
            VerifyError::MissingHeader {
                name: "box-signature-primary",
            },
        ),
        (
            "version 2",
            with("BOX-SIGNATURE-VERSION", Some("2")),
            BODY_1,
            VerifyError::UnsupportedVersion { found: "2".into() },
        ),
        (
            "sha1",
            with("BOX-SIGNATURE-ALGORITHM", Some("HmacSHA1")),
            BODY_1,
            VerifyError::UnsupportedAlgorithm {
                found: "HmacSHA1".into(),
            },
        ),
        (
            "algorithm case",
            with("BOX-SIGNATURE-ALGORITHM", Some("hmacsha256")),
            BODY_1,
            VerifyError::UnsupportedAlgorithm {
                found: "hmacsha256".into(),
            },
        ),
        (
            "bad timestamp",
            with("BOX-DELIVERY-TIMESTAMP", Some("2020-01-01 noon")),
            BODY_1,
            VerifyError::MalformedTimestamp {
                found: "2020-01-01 noon".into(),
            },
        ),
        (
            "stale",
            with("BOX-DELIVERY-TIMESTAMP", Some("2020-01-01T06:49:00Z")),
            BODY_1,
            VerifyError::Expired {
                age: Duration::from_secs(690),
                limit: Duration::from_secs(600),
            },
        ),
        (
            "future",
            with("BOX-DELIVERY-TIMESTAMP", Some("2020-01-01T07:02:00Z")),
            BODY_1,
            VerifyError::Future {
                skew: Duration::from_secs(90),
                limit: Duration::from_secs(60),
            },
        ),
        (
            "hex signature",
            with("BOX-SIGNATURE-PRIMARY", Some(hex))
                .into_iter()
                .filter(|(n, _)| *n != "BOX-SIGNATURE-SECONDARY")
                .collect(),
            BODY_1,
            VerifyError::MalformedSignature {
                name: "box-signature-primary",
                problem: SignatureProblem::LooksHex,
            },
        ),
        (
            "tampered body",
            good.clone(),
            r#"{"type":"webhook_event","webhook":{"id":"1234567890"},"trigger":"FILE.DELETED","source":{"id":"1234567890","type":"file","name":"Test.txt"}}"#,
            VerifyError::Mismatch {
                escaped_form_tried: false,
            },
        ),
        (
            "tampered non-ASCII body",
            with("BOX-SIGNATURE-SECONDARY", None),
            r#"{"name":"Tést"}"#,
            VerifyError::Mismatch {
                escaped_form_tried: true,
            },
        ),
        (
            "signatures swapped",
            box_headers(TS, Some(SIG_1_SECONDARY), Some(SIG_1_PRIMARY)),
            BODY_1,
            VerifyError::Mismatch {
                escaped_form_tried: false,
            },
        ),
    ];
    let mut kinds_seen = std::collections::HashSet::new();
    for (name, pairs, body, want) in cases {
        let got = verifier
            .verify_headers(&headers(&pairs), body.as_bytes(), now())
            .expect_err(name);
        assert_eq!(got, want, "{name}");
        kinds_seen.insert(got.kind());
    }
    // Shape errors come from reading the headers.
    let conflicting = DeliveryHeaders::from_pairs(
        good.iter()
            .copied()
            .chain([("box-signature-primary", SIG_1_SECONDARY)]),
    )
    .expect_err("conflicting duplicate");
    assert_eq!(
        conflicting,
        VerifyError::InvalidHeader {
            name: "box-signature-primary",
            problem: HeaderProblem::Conflicting
        }
    );
    kinds_seen.insert(conflicting.kind());
    assert_eq!(
        kinds_seen.len(),
        ErrorKind::ALL.len(),
        "every kind has a case"
    );
}

#[test]
fn malformed_signature_does_not_hide_a_good_one() {
    let pairs = box_headers(TS, Some("not base64!"), Some(SIG_1_SECONDARY));
    let verified = Verifier::new(sample_keys())
        .verify_headers(&headers(&pairs), BODY_1.as_bytes(), now())
        .expect("the secondary matches");
    assert_eq!(verified.key_slot(), KeySlot::Secondary);
}

#[test]
fn escaped_fallback_can_be_switched_off() {
    let verifier = Verifier::builder(sample_keys())
        .escaped_fallback(false)
        .build();
    let err = verifier
        .verify_headers(
            &headers(&box_headers(TS, Some(SIG_2_PRIMARY), None)),
            BODY_2_UTF8.as_bytes(),
            now(),
        )
        .expect_err("raw only");
    assert_eq!(
        err,
        VerifyError::Mismatch {
            escaped_form_tried: false
        }
    );
}

#[test]
fn rotation_takes_effect_for_every_clone() {
    let shared = SharedKeyRing::new(KeyRing::from_strs(Some("old"), None).expect("keys"));
    let verifier = Verifier::new(shared.clone());
    let pairs = box_headers(TS, Some(SIG_1_PRIMARY), Some(SIG_1_SECONDARY));
    assert_eq!(
        verifier
            .verify_headers(&headers(&pairs), BODY_1.as_bytes(), now())
            .expect_err("old key")
            .kind(),
        ErrorKind::Mismatch
    );
    shared.replace(KeyRing::from_strs(Some("old"), Some("SampleSecondaryKey")).expect("keys"));
    let verified = verifier
        .clone()
        .verify_headers(&headers(&pairs), BODY_1.as_bytes(), now())
        .expect("rotated");
    assert_eq!(verified.key_slot(), KeySlot::Secondary);
}
