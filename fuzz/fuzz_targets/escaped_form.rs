//! The escaped form: never panics; output is ASCII and
//! idempotent (a second application borrows); a body that needed no change
//! comes back as it was; and valid JSON keeps its meaning.
#![no_main]

use std::borrow::Cow;

use boxhook_core::escaped_form;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(escaped) = escaped_form(data) else {
        assert!(std::str::from_utf8(data).is_err(), "valid UTF-8 refused");
        return;
    };
    assert!(escaped.is_ascii(), "non-ASCII output");
    if let Cow::Borrowed(same) = &escaped {
        assert_eq!(*same, data);
    }
    match escaped_form(&escaped) {
        Ok(Cow::Borrowed(again)) => assert_eq!(again, &*escaped),
        Ok(Cow::Owned(again)) => panic!(
            "not idempotent: {:?} -> {:?}",
            String::from_utf8_lossy(&escaped),
            String::from_utf8_lossy(&again)
        ),
        Err(err) => panic!("escaped output refused: {err}"),
    }
    // `\/` means `/` and `\uXXXX` the character: JSON values are unchanged.
    if let Ok(before) = serde_json::from_slice::<serde_json::Value>(data) {
        let after = serde_json::from_slice::<serde_json::Value>(&escaped)
            .expect("escaped form of valid JSON is valid JSON");
        assert_eq!(before, after);
    }
});
