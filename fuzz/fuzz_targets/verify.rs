//! Header reading plus verification with arbitrary headers and body.
//! Never panics; and when a delivery verifies, the
//! core's `Signer` reproduces the exact signature header that matched.
#![no_main]

use std::sync::OnceLock;

use boxhook_core::{BodyForm, DeliveryHeaders, DeliveryTimestamp, Signer, Verifier};
use boxhook_fuzz::{keys, verifier, VerifyInput, NOW};
use libfuzzer_sys::fuzz_target;

struct Fixed {
    default: Verifier,
    raw_only: Verifier,
    signer: Signer,
    now: chrono::DateTime<chrono::Utc>,
}

fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| Fixed {
        default: verifier(),
        raw_only: Verifier::builder(keys()).escaped_fallback(false).build(),
        signer: Signer::new(keys()),
        now: NOW.parse().expect("valid instant"),
    })
}

fuzz_target!(|input: VerifyInput| {
    let fixed = fixed();
    let Ok(headers) = DeliveryHeaders::from_pairs(input.pairs()) else {
        return;
    };
    let raw_only = fixed
        .raw_only
        .verify_headers(&headers, &input.body, fixed.now);
    match fixed
        .default
        .verify_headers(&headers, &input.body, fixed.now)
    {
        Err(err) => {
            // Formatting the detail must not panic either.
            let _ = (err.to_string(), err.code(), err.kind());
            assert!(
                raw_only.is_err(),
                "raw-only verifier accepted what the default refused"
            );
        }
        Ok(verified) => {
            let slot = verified.key_slot();
            let header = headers
                .signature(slot)
                .expect("the matched slot has a header");
            let text = headers
                .timestamp()
                .expect("a verified delivery has a timestamp");
            let timestamp = DeliveryTimestamp::parse(text).expect("a verified timestamp parses");
            let resigned = match verified.body_form() {
                BodyForm::Raw => fixed.signer.signature(slot, &input.body, &timestamp),
                BodyForm::Escaped => fixed
                    .signer
                    .sign_escaped(&input.body, &timestamp, "d")
                    .expect("an escaped match had an escaped form")
                    .to_header_map()
                    .get(slot.header_name())
                    .map(|v| v.to_str().expect("ASCII").to_owned()),
            };
            assert_eq!(
                resigned.as_deref(),
                Some(header),
                "{:?}",
                verified.body_form()
            );
            // The raw-only verifier agrees exactly on raw matches.
            match (verified.body_form(), raw_only) {
                (BodyForm::Raw, Ok(raw)) => assert_eq!(raw.key_slot(), slot),
                (BodyForm::Raw, Err(err)) => panic!("raw match refused without fallback: {err}"),
                (_, _) => {}
            }
            let _ = format!("{verified:?}");
        }
    }
});
