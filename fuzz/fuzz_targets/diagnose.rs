//! The diagnosis: never panics, whatever the body and however the headers
//! and keys are spoiled; it agrees with the verifier on validity; codes come
//! once each, in order; a repair is only ever named for a delivery that
//! failed; a body over the cap gets no repair at all. Its time is bounded by
//! the smoke's `-timeout` (docs/FUZZING.md).
#![no_main]

use base64::Engine as _;
use boxhook_core::diagnose::{diagnose, DiagnosisKeys, HintCode, MAX_REPAIR_BODY};
use boxhook_core::{DeliveryHeaders, DeliveryTimestamp, KeyRing, Signer};
use boxhook_fuzz::{verifier, PRIMARY_KEY, SECONDARY_KEY, TIMESTAMP};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // The first half of the rest is what was signed, the second what arrived
    // (mode bit 7: both the same, so only headers and keys differ).
    let (signed, received) = if mode & 0x80 != 0 {
        (rest, rest)
    } else {
        rest.split_at(rest.len() / 2)
    };
    let huge;
    let received = if mode == 0xFF {
        huge = received.repeat(MAX_REPAIR_BODY / received.len().max(1) + 2);
        &huge[..]
    } else {
        received
    };

    let ts = DeliveryTimestamp::parse(TIMESTAMP).expect("timestamp");
    let signer_keys = match mode & 3 {
        // A hand-written signer that decoded the key first.
        3 => base64::engine::general_purpose::STANDARD
            .decode(PRIMARY_KEY)
            .ok()
            .and_then(|k| KeyRing::new(boxhook_core::SigningKey::new(k).ok(), None).ok())
            .expect("decoded key"),
        _ => boxhook_fuzz::keys(),
    };
    let sent = Signer::new(signer_keys).sign(signed, &ts, "d-1");
    let mut pairs: Vec<(String, String)> = sent
        .iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    for (name, value) in &mut pairs {
        if name.starts_with("box-signature-p") || name.starts_with("box-signature-s") {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value.as_str())
                .unwrap_or_default();
            *value = match (mode >> 2) & 3 {
                1 => bytes.iter().map(|b| format!("{b:02x}")).collect(),
                2 => format!("{} {}", &value[..20], &value[20..]),
                3 => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes),
                _ => value.clone(),
            };
        }
        if mode & 0x10 != 0 && name == "box-delivery-timestamp" {
            *value = "2020-01-01T07:00:00Z".to_owned();
        }
    }
    let keys = match mode & 3 {
        1 => DiagnosisKeys::new(Some(SECONDARY_KEY), Some(PRIMARY_KEY)),
        2 => DiagnosisKeys::new(Some("SamplePrimaryKey\n"), Some(" SampleSecondaryKey")),
        _ => DiagnosisKeys::new(Some(PRIMARY_KEY), Some(SECONDARY_KEY)),
    }
    .expect("keys");
    let headers = DeliveryHeaders::from_pairs(pairs.iter().map(|(n, v)| (n, v))).expect("headers");
    let now = "2020-01-01T07:00:30Z".parse().expect("now");
    let when = if mode & 0x20 != 0 {
        "2020-01-01T08:00:00Z".parse().expect("late")
    } else {
        now
    };

    let diagnosis = diagnose(&headers, received, &keys, when);
    let codes = diagnosis.codes();
    assert!(codes.windows(2).all(|w| w[0] < w[1]), "codes once each, in order: {codes:?}");
    for hint in diagnosis.hints() {
        assert!(!hint.message().is_empty());
        assert!(HintCode::from_code(hint.code().as_str()) == Some(hint.code()));
    }
    if diagnosis.is_valid() {
        assert!(codes.iter().all(|c| !c.is_repair()), "a repair on a valid delivery: {codes:?}");
    }
    if received.len() > MAX_REPAIR_BODY {
        assert!(codes.iter().all(|c| !c.is_repair()), "a repair over the cap: {codes:?}");
    }
    if mode & 3 == 0 && mode & 0x20 == 0 {
        // Keys as given and Box's default freshness: the verifier agrees.
        let plain = verifier().verify_headers(&headers, received, when);
        assert_eq!(plain.is_ok(), diagnosis.is_valid());
    }
});
