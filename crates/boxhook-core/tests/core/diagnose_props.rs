//! The diagnosis names a cause only on evidence. A genuine Box body, compact
//! and in Box's member order, checked with a key that did not sign it, is
//! `unexplained` ("no repair verifies: check the keys"), whether its `/` and
//! non-ASCII text arrive escaped (as Box writes them) or raw (as a hop that
//! re-encoded the JSON leaves them): raw text alone is no evidence of a
//! JSON parser, since the verifier already tries the escaped form.

use boxhook_core::diagnose::{diagnose, DiagnosisKeys, HintCode};
use boxhook_core::{escaped_form, DeliveryHeaders, DeliveryTimestamp, KeyRing, Signer};
use proptest::prelude::*;

const SENT: &str = "2024-05-01T12:00:00-07:00";

/// What the diagnosis says when nothing verifies and nothing points elsewhere.
const CHECK_THE_KEYS: &str = "no repair verifies: check the keys";

/// A string value: words of ASCII, accented Latin, Japanese, emoji and
/// path separators, as Box file names, paths and descriptions hold them.
fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            "[A-Za-z0-9 ._-]{1,8}",
            Just("/".to_owned()),
            Just("Café".to_owned()),
            Just("déjà vu".to_owned()),
            Just("Grüße".to_owned()),
            Just("スクリーンショット".to_owned()),
            Just("😀".to_owned()),
            Just("–".to_owned()),
            Just("\"quoted\"".to_owned()),
            Just("back\\slash".to_owned()),
        ],
        1..8,
    )
    .prop_map(|parts| parts.concat())
}

fn digits() -> impl Strategy<Value = String> {
    "[1-9][0-9]{5,11}"
}

/// A key as the Developer Console shows one: 32 letters and digits.
fn key() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]{32}"
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// A `webhook_event` as Box writes it (members in Box's order, no white
/// space), with strings written raw: `/` and non-ASCII as they are.
fn raw_event() -> impl Strategy<Value = String> {
    (
        digits(),
        digits(),
        digits(),
        text(),
        text(),
        text(),
        prop_oneof![Just("FILE.UPLOADED"), Just("FILE.RENAMED"), Just("FOLDER.CREATED")],
    )
        .prop_map(|(event, webhook, file, user, name, description, trigger)| {
            format!(
                concat!(
                    r#"{{"type":"webhook_event","id":"{event}","created_at":"{sent}","#,
                    r#""trigger":"{trigger}","webhook":{{"id":"{webhook}","type":"webhook"}},"#,
                    r#""created_by":{{"type":"user","id":"{file}","name":{user},"login":"u@example.com"}},"#,
                    r#""source":{{"id":"{file}","type":"file","name":{name},"description":{description},"#,
                    r#""path_collection":{{"total_count":1,"entries":[{{"type":"folder","id":"0","name":"All Files"}}]}}}},"#,
                    r#""additional_info":[]}}"#
                ),
                event = event,
                sent = SENT,
                trigger = trigger,
                webhook = webhook,
                file = file,
                user = quoted(&user),
                name = quoted(&name),
                description = quoted(&description),
            )
        })
}

/// The codes and the first hint's message for `received`, signed over
/// `signed` with `signing` keys, diagnosed with `given` keys.
fn diagnosed(
    signed: &[u8],
    received: &[u8],
    signing: (&str, Option<&str>),
    given: (&str, Option<&str>),
) -> (Vec<HintCode>, String) {
    let ts = DeliveryTimestamp::parse(SENT).expect("timestamp");
    let ring = KeyRing::from_strs(Some(signing.0), signing.1).expect("keys");
    let signed = Signer::new(ring).sign(signed, &ts, "d-1");
    let headers = DeliveryHeaders::from_pairs(signed.iter()).expect("headers");
    let keys = DiagnosisKeys::new(Some(given.0), given.1).expect("keys");
    let diagnosis = diagnose(&headers, received, &keys, ts.datetime().to_utc());
    let message = diagnosis
        .hints()
        .first()
        .map(|h| h.message().to_owned())
        .unwrap_or_default();
    (diagnosis.codes(), message)
}

/// The case the issue found: Box's escaped JSON arrived with its
/// non-ASCII text raw, and the key given is not the one that signed.
#[test]
fn a_raw_non_ascii_body_checked_with_a_wrong_key_is_unexplained() {
    let raw = r#"{"type":"webhook_event","id":"9f3a","created_at":"2024-05-01T12:00:00-07:00","trigger":"FILE.UPLOADED","webhook":{"id":"4133","type":"webhook"},"source":{"id":"5","type":"file","name":"Café/スクリーン.txt"}}"#;
    let escaped = escaped_form(raw.as_bytes()).expect("utf-8").into_owned();
    assert_ne!(escaped, raw.as_bytes(), "the body has text Box escapes");
    let (codes, message) = diagnosed(
        &escaped,
        raw.as_bytes(),
        ("SamplePrimaryKey", None),
        ("NotTheKeyThatSignedThisDelivery", None),
    );
    assert_eq!(codes, [HintCode::Unexplained]);
    assert!(message.starts_with(CHECK_THE_KEYS), "{message}");

    // With the right key, the same bytes verify through the escaped form.
    let (codes, _) = diagnosed(
        &escaped,
        raw.as_bytes(),
        ("SamplePrimaryKey", None),
        ("SamplePrimaryKey", None),
    );
    assert_eq!(codes, [HintCode::EscapedForm]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Box's bodies with non-ASCII text and `/`, arrived escaped or raw,
    /// one or two keys: a wrong key never yields a
    /// repair code, nor `reserialized`: only `unexplained`.
    #[test]
    fn a_wrong_key_on_a_realistic_body_is_only_unexplained(
        raw in raw_event(),
        route in 0..3usize,
        primary in key(),
        secondary in proptest::option::of(key()),
        wrong_primary in key(),
        wrong_secondary in key(),
    ) {
        let signing_keys = [Some(&primary), secondary.as_ref()];
        prop_assume!(!signing_keys.contains(&Some(&wrong_primary)));
        prop_assume!(!signing_keys.contains(&Some(&wrong_secondary)));
        let escaped = escaped_form(raw.as_bytes()).expect("utf-8").into_owned();
        // Box's escaped bytes as sent; Box's bytes with the escapes lost on
        // the way; a sender that signs and sends raw text.
        let (signed, received) = match route {
            0 => (&escaped[..], &escaped[..]),
            1 => (&escaped[..], raw.as_bytes()),
            _ => (raw.as_bytes(), raw.as_bytes()),
        };
        let given_secondary = secondary.as_ref().map(|_| wrong_secondary.as_str());
        let (codes, message) = diagnosed(
            signed,
            received,
            (&primary, secondary.as_deref()),
            (&wrong_primary, given_secondary),
        );
        prop_assert!(codes.iter().all(|c| !c.is_repair()), "{:?} for {}", codes, raw);
        prop_assert_eq!(&codes, &[HintCode::Unexplained], "{}", raw);
        prop_assert!(message.starts_with(CHECK_THE_KEYS), "{}", message);

        // The same delivery with the keys that signed it verifies: the bodies
        // are ones the verifier accepts, not ones any key would fail.
        let (codes, _) = diagnosed(
            signed,
            received,
            (&primary, secondary.as_deref()),
            (&primary, secondary.as_deref()),
        );
        prop_assert!(
            codes.is_empty() || codes == [HintCode::EscapedForm],
            "{:?} for {}", codes, raw
        );
    }
}
