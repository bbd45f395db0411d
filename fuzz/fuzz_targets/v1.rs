//! The V1 callback parser: never panics; what it decodes encodes and
//! decodes back to the same parameters; the secret check accepts exactly
//! one matching secret parameter and always removes it; the typed callback
//! and its inbox record agree with the parameters.
#![no_main]

use boxhook::inbox::RecordKind;
use boxhook::v1::{Params, ParamsError, V1Auth, V1Callback, V1Fields, V1Trigger, MAX_PARAMS};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzz-secret-0123456789";

fuzz_target!(|data: &[u8]| {
    let params = match Params::parse(data) {
        Ok(params) => params,
        Err(ParamsError::NotUtf8 { .. }) => return,
        Err(ParamsError::TooMany { max }) => {
            assert_eq!(max, MAX_PARAMS);
            assert!(data.split(|&b| b == b'&').filter(|p| !p.is_empty()).count() > MAX_PARAMS);
            return;
        }
        Err(other) => panic!("unexpected error {other:?}"),
    };
    assert!(params.len() <= MAX_PARAMS);
    // Text with no escapes decodes to itself, pair by pair.
    if let Ok(text) = std::str::from_utf8(data) {
        if !text.contains(['%', '+']) {
            let expected: Vec<&str> = text.split('&').filter(|p| !p.is_empty()).collect();
            assert_eq!(expected.len(), params.len());
        }
    }
    let encoded = params.encode();
    assert!(encoded.is_ascii());
    assert_eq!(Params::parse(encoded.as_bytes()).as_ref(), Ok(&params), "round trip");

    let tokens: Vec<&str> = params.get_all("token").collect();
    let auth = V1Auth::secret("token", SECRET).expect("secret");
    let mut checked = params.clone();
    let accepted = auth.check(&mut checked).is_ok();
    assert_eq!(accepted, tokens == [SECRET]);
    assert_eq!(checked.get("token"), None);
    assert_eq!(checked.len(), params.len() - tokens.len());

    let at = "2024-05-14T09:12:31Z".parse().expect("time");
    let callback = V1Callback::new("v1-fuzz", at, checked.clone(), &V1Fields::default());
    let trigger = callback.trigger();
    assert_eq!(&V1Trigger::parse(trigger.as_str()), trigger);
    assert_eq!(callback.item_id(), checked.get("item_id"));
    let record = callback.to_record();
    assert_eq!(record.kind, RecordKind::V1);
    assert_eq!(Params::parse(&record.body).as_ref(), Ok(&checked));
});
