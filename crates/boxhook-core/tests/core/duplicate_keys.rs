//! A key repeated in one object, at any depth, fails both parsers with
//! `DuplicateKey` and the same message; the same key in different objects
//! is fine; and no arrangement of repeated keys makes either parser panic.

use boxhook_core::model::{Envelope, ParseErrorKind, WebhookEvent};
use proptest::prelude::*;

#[test]
fn a_key_repeated_in_one_object_is_refused_by_both_parsers() {
    // (case, body, key named in the message)
    let cases: &[(&str, &str, &str)] = &[
        ("top-level id", r#"{"id":"1","trigger":"X","id":"2"}"#, "id"),
        (
            "top-level trigger",
            r#"{"trigger":"FILE.UPLOADED","id":"1","trigger":"FILE.DELETED"}"#,
            "trigger",
        ),
        (
            "top-level type",
            r#"{"type":"webhook_event","id":"1","trigger":"X","type":"webhook_event"}"#,
            "type",
        ),
        (
            "a key the model ignores",
            r#"{"id":"1","trigger":"X","extra":1,"extra":2}"#,
            "extra",
        ),
        (
            "webhook.id",
            r#"{"id":"1","trigger":"X","webhook":{"id":"w1","type":"webhook","id":"w2"}}"#,
            "id",
        ),
        (
            "the webhook object twice",
            r#"{"id":"1","trigger":"X","webhook":{"id":"w1"},"webhook":{"id":"w2"}}"#,
            "webhook",
        ),
        (
            "source.id",
            r#"{"id":"1","trigger":"X","source":{"id":"5","type":"file","id":"6"}}"#,
            "id",
        ),
        (
            "source.type",
            r#"{"id":"1","trigger":"X","source":{"type":"file","id":"5","type":"folder"}}"#,
            "type",
        ),
        (
            "source.parent.id",
            r#"{"id":"1","trigger":"X","source":{"id":"5","type":"file","parent":{"id":"0","id":"9"}}}"#,
            "id",
        ),
        (
            "deep in additional_info",
            r#"{"id":"1","trigger":"X","additional_info":{"a":[{"b":{"c":1,"d":2,"c":3}}]}}"#,
            "c",
        ),
        (
            "in an object inside an array",
            r#"{"id":"1","trigger":"X","list":[{"k":1},{"k":1,"k":2}]}"#,
            "k",
        ),
        (
            "equal after unescaping",
            r#"{"id":"1","trigger":"X","\u0069d":"2"}"#,
            "id",
        ),
        (
            "both spellings escaped",
            r#"{"\u0069d":"1","trigger":"X","i\u0064":"2"}"#,
            "id",
        ),
        (
            "an escaped slash",
            r#"{"id":"1","trigger":"X","a/b":1,"a\/b":2}"#,
            "a/b",
        ),
        ("the empty key", r#"{"id":"1","trigger":"X","":1,"":2}"#, ""),
        (
            "a control character in the key is quoted escaped",
            r#"{"id":"1","trigger":"X","a\nb":1,"a\u000ab":2}"#,
            "a\\nb",
        ),
        ("before the envelope is complete", r#"{"x":1,"x":2}"#, "x"),
    ];
    for (case, body, key) in cases {
        let envelope = Envelope::parse(body.as_bytes()).expect_err(case);
        let event = WebhookEvent::parse(body.as_bytes()).expect_err(case);
        assert_eq!(envelope.kind(), ParseErrorKind::DuplicateKey, "{case}");
        assert_eq!(envelope.field(), None, "{case}");
        let message = envelope.to_string();
        assert!(
            message.starts_with(&format!(
                "duplicate key \"{key}\" in an object at line 1 column "
            )),
            "{case}: {message}"
        );
        assert_eq!(event, envelope, "{case}: both parsers report the same");
    }
}

#[test]
fn the_message_names_where_the_repeat_is() {
    let body = br#"{"id":"1","trigger":"X","id":"2"}"#;
    assert_eq!(
        Envelope::parse(body).expect_err("repeated").to_string(),
        r#"duplicate key "id" in an object at line 1 column 28"#
    );
    let long = format!(
        r#"{{"id":"1","trigger":"X","{k}":1,"{k}":2}}"#,
        k = "k".repeat(100)
    );
    assert_eq!(
        WebhookEvent::parse(long.as_bytes())
            .expect_err("repeated")
            .to_string(),
        format!(
            r#"duplicate key "{}"... in an object at line 1 column 231"#,
            "k".repeat(40)
        )
    );
}

#[test]
fn the_same_key_in_different_objects_is_fine() {
    let bodies = [
        r#"{"id":"1","trigger":"X","webhook":{"id":"w"},"source":{"id":"5","type":"file"}}"#,
        r#"{"id":"1","trigger":"X","source":{"id":"5","type":"file","parent":{"id":"0","type":"folder"}}}"#,
        r#"{"id":"1","trigger":"X","list":[{"k":1},{"k":2}],"k":3}"#,
        r#"{"id":"1","trigger":"X","additional_info":{"id":"1","trigger":"X"}}"#,
        r#"{"id":"1","trigger":"X","Id":"2","ID":"3"}"#,
    ];
    for body in bodies {
        let event = WebhookEvent::parse(body.as_bytes()).expect(body);
        assert_eq!(
            Envelope::parse(body.as_bytes()).expect(body),
            event.envelope()
        );
        assert_eq!(event.id(), "1");
    }
}

#[test]
fn objects_with_many_keys_are_checked_past_the_inline_set() {
    for keys in [15, 16, 17, 100, 5_000] {
        let fields = (0..keys).fold(String::new(), |mut out, i| {
            use std::fmt::Write as _;
            let _ = write!(out, r#","k{i}":{i}"#);
            out
        });
        let ok = format!(r#"{{"id":"1","trigger":"X"{fields}}}"#);
        assert!(
            Envelope::parse(ok.as_bytes()).is_ok(),
            "{keys} distinct keys"
        );
        assert!(
            WebhookEvent::parse(ok.as_bytes()).is_ok(),
            "{keys} distinct keys"
        );
        for repeat in [0, keys / 2, keys - 1] {
            let bad = format!(r#"{{"id":"1","trigger":"X"{fields},"k{repeat}":0}}"#);
            let err = Envelope::parse(bad.as_bytes()).expect_err("repeat");
            assert_eq!(err.kind(), ParseErrorKind::DuplicateKey, "{keys}/{repeat}");
            assert!(err
                .to_string()
                .starts_with(&format!("duplicate key \"k{repeat}\"")));
            assert_eq!(
                WebhookEvent::parse(bad.as_bytes()).expect_err("repeat"),
                err
            );
        }
    }
}

/// A JSON object text whose keys come from a tiny alphabet (so repeats are
/// common), some of them escaped, nested up to a few levels.
fn object(depth: u32) -> BoxedStrategy<String> {
    let key = prop::sample::select(vec!["id", "\\u0069d", "i\\u0064", "type", "a", "b", ""]);
    let leaf = prop_oneof![
        Just("1".to_owned()),
        Just("\"s\"".to_owned()),
        Just("null".to_owned()),
        Just("[]".to_owned()),
    ];
    let value = if depth == 0 {
        leaf.boxed()
    } else {
        prop_oneof![
            3 => leaf,
            1 => object(depth - 1),
            1 => object(depth - 1).prop_map(|o| format!("[{o},{o}]")),
        ]
        .boxed()
    };
    prop::collection::vec((key, value), 0..6)
        .prop_map(|entries| {
            let body: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("\"{k}\":{v}"))
                .collect();
            format!("{{{}}}", body.join(","))
        })
        .boxed()
}

/// Whether any object in `value` repeats a key (what the parsers must refuse).
fn has_duplicate(text: &str) -> bool {
    // serde_json's Value keeps the last of repeated keys; count raw keys per
    // object with a tiny recursive reader instead.
    fn walk(v: &mut std::iter::Peekable<std::str::Chars<'_>>) -> bool {
        let mut dup = false;
        match v.peek() {
            Some('{') => {
                v.next();
                let mut seen: Vec<String> = Vec::new();
                loop {
                    match v.next() {
                        Some('}') | None => break,
                        Some('"') => {
                            let raw: String = v.by_ref().take_while(|&c| c != '"').collect();
                            let key: String =
                                serde_json::from_str(&format!("\"{raw}\"")).unwrap_or_default();
                            dup |= seen.contains(&key);
                            seen.push(key);
                            v.next(); // ':'
                            dup |= walk(v);
                        }
                        Some(_) => {}
                    }
                }
            }
            Some('[') => {
                v.next();
                loop {
                    match v.peek() {
                        Some(']') => {
                            v.next();
                            break;
                        }
                        Some(',') => {
                            v.next();
                        }
                        None => break,
                        Some(_) => dup |= walk(v),
                    }
                }
            }
            Some('"') => {
                v.next();
                v.by_ref().take_while(|&c| c != '"').for_each(drop);
            }
            _ => {
                while v.peek().is_some_and(|c| !matches!(c, ',' | '}' | ']')) {
                    v.next();
                }
            }
        }
        dup
    }
    walk(&mut text.chars().peekable())
}

proptest! {
    #[test]
    fn repeated_keys_never_panic_and_both_parsers_agree(inner in object(3), tail in object(2)) {
        let body = format!(r#"{{"id":"1","trigger":"X","n":{inner},"t":{tail}}}"#);
        let envelope = Envelope::parse(body.as_bytes()).map(Envelope::into_owned);
        let event = WebhookEvent::parse(body.as_bytes()).map(|e| e.envelope().into_owned());
        prop_assert_eq!(&envelope, &event, "{}", body);
        let refused = envelope.as_ref().err().map(boxhook_core::model::ParseError::kind);
        let want = has_duplicate(&body).then_some(ParseErrorKind::DuplicateKey);
        prop_assert_eq!(refused, want, "{}", body);
    }

    #[test]
    fn arbitrary_bodies_with_repeats_never_panic(
        body in prop::collection::vec(prop::sample::select(br#"{}[]",:\u0069d1 "#.to_vec()), 0..80)
    ) {
        let envelope = Envelope::parse(&body).map(Envelope::into_owned);
        let event = WebhookEvent::parse(&body).map(|e| e.envelope().into_owned());
        prop_assert_eq!(envelope, event);
    }
}
