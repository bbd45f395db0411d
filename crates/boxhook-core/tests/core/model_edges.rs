//! The edges of the leniency rule: which bodies fail, with which message,
//! and the odd-but-valid JSON both parsers must read the same way.

use boxhook_core::model::{Envelope, ParseErrorKind, Trigger, WebhookEvent};

fn nested(depth: usize) -> String {
    format!(
        r#"{{"id":"1","trigger":"X","deep":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

#[test]
fn only_the_envelope_fails_a_parse_with_a_specific_message() {
    use ParseErrorKind::{InvalidField, MissingField, NotAWebhookEvent, NotAnObject, NotJson};
    let deep = nested(200);
    let cases: Vec<(&[u8], ParseErrorKind, &str)> = vec![
        (
            b"",
            NotJson,
            "body is not JSON: EOF while parsing a value at line 1 column 0",
        ),
        (
            b"not json",
            NotJson,
            "body is not JSON: expected ident at line 1 column 2",
        ),
        (
            b"\xff{}",
            NotJson,
            "body is not JSON: invalid UTF-8 at byte 0",
        ),
        (
            br#"{"id":"1","trigger":"X"} x"#,
            NotJson,
            "body is not JSON: trailing characters at line 1 column 26",
        ),
        (
            br#"{"id":"1","trigger":"X","n":1e400}"#,
            NotJson,
            "body is not JSON: number out of range at line 1 column 33",
        ),
        (
            br#"{"id":"1","trigger":"X","s":"\ud800"}"#,
            NotJson,
            "body is not JSON: unexpected end of hex escape at line 1 column 36",
        ),
        (
            deep.as_bytes(),
            NotJson,
            "body is not JSON: recursion limit exceeded at line 1 column 158",
        ),
        (b"[]", NotAnObject, "body is an array, expected an object"),
        (
            br#""x""#,
            NotAnObject,
            "body is a string, expected an object",
        ),
        (b"null", NotAnObject, "body is null, expected an object"),
        (
            br#"{"type":"file","id":"1","trigger":"X"}"#,
            NotAWebhookEvent,
            r#"`type` is "file", expected "webhook_event""#,
        ),
        (
            br#"{"type":null}"#,
            NotAWebhookEvent,
            r#"`type` is null, expected "webhook_event""#,
        ),
        (
            br#"{"trigger":"FILE.UPLOADED"}"#,
            MissingField,
            "`id` is missing",
        ),
        (br#"{"id":"1"}"#, MissingField, "`trigger` is missing"),
        (
            br#"{"id":42,"trigger":"X"}"#,
            InvalidField,
            "`id` is a number, expected a string",
        ),
        (
            br#"{"id":"1","trigger":["FILE.UPLOADED"]}"#,
            InvalidField,
            "`trigger` is an array, expected a string",
        ),
        (
            br#"{"id":"1","trigger":{"name":"X"}}"#,
            InvalidField,
            "`trigger` is an object, expected a string",
        ),
        (
            br#"{"id":true,"trigger":"X"}"#,
            InvalidField,
            "`id` is a boolean, expected a string",
        ),
    ];
    for (body, kind, message) in cases {
        let shown = String::from_utf8_lossy(body);
        let err = WebhookEvent::parse(body).expect_err(&shown);
        assert_eq!(
            (err.kind(), err.to_string().as_str()),
            (kind, message),
            "{shown}"
        );
        assert_eq!(Envelope::parse(body).expect_err(&shown), err, "{shown}");
    }
}

#[test]
fn a_missing_type_is_tolerated() {
    let event = WebhookEvent::parse(br#"{"id":"1","trigger":"FILE.UPLOADED"}"#).expect("no type");
    assert_eq!(event.trigger(), &Trigger::FileUploaded);
    assert!(event.webhook().is_none() && event.source().is_none());
    assert!(event.created_at().is_none() && event.created_by().is_none());
    assert!(event.additional_info().is_empty());
}

#[test]
fn odd_but_valid_json_reads_the_same_in_both_parsers() {
    let cases: &[(&[u8], &str, &str, Option<&str>)] = &[
        // Escaped keys and values mean what they spell.
        (
            br#"{"i\u0064":"1","trigger":"FILE\u002eUPLOADED"}"#,
            "1",
            "FILE.UPLOADED",
            None,
        ),
        // The same key in different objects is no repetition (a repeated key
        // in one object is refused: see tests/duplicate_keys.rs).
        (
            br#"{"id":"1","trigger":"X","webhook":{"id":"w1"},"source":{"id":"5","type":"file"}}"#,
            "1",
            "X",
            Some("w1"),
        ),
        // Whitespace and non-ASCII are fine: the body need not be Box's form.
        (
            " {\n \"id\" : \"\u{e9}\" , \"trigger\" : \"X\" ,\"webhook\":{\"id\":\"9\"}}\n"
                .as_bytes(),
            "\u{e9}",
            "X",
            Some("9"),
        ),
    ];
    for (body, id, trigger, webhook_id) in cases {
        let shown = String::from_utf8_lossy(body);
        let event = WebhookEvent::parse(body).expect(&shown);
        let envelope = Envelope::parse(body).expect(&shown);
        assert_eq!(
            (event.id(), event.trigger().as_str()),
            (*id, *trigger),
            "{shown}"
        );
        assert_eq!(
            event.webhook().map(|w| w.id.as_str()),
            *webhook_id,
            "{shown}"
        );
        assert_eq!(envelope, event.envelope(), "{shown}");
        assert_eq!(event.raw().as_bytes(), *body);
    }
}

#[test]
fn sources_without_a_string_id_and_type_are_no_source() {
    for source in [
        r#"{"id":"5"}"#,
        r#"{"type":"file"}"#,
        r#"{"id":5,"type":"file"}"#,
        r#"{"id":"5","type":7}"#,
        r#""file_5""#,
        "null",
        "[]",
    ] {
        let body = format!(r#"{{"id":"1","trigger":"FILE.UPLOADED","source":{source}}}"#);
        let event = WebhookEvent::parse(body.as_bytes()).expect("still an event");
        assert!(event.source().is_none(), "{source}");
        assert_eq!(event.trigger(), &Trigger::FileUploaded);
        let envelope = Envelope::parse(body.as_bytes()).expect("still an event");
        assert_eq!((envelope.source_type(), envelope.source_id()), (None, None));
    }
}

#[test]
fn additional_info_that_is_not_an_object_reads_as_empty() {
    for info in ["[]", "{}", "null", r#"["x"]"#, "7", r#""reason""#] {
        let body = format!(r#"{{"id":"1","trigger":"WEBHOOK.DELETED","additional_info":{info}}}"#);
        let event = WebhookEvent::parse(body.as_bytes()).expect("still an event");
        assert!(event.additional_info().is_empty(), "{info}");
        assert_eq!(event.additional_info().deletion_reason(), None);
    }
}

#[test]
fn the_envelope_borrows_unless_a_string_is_escaped() {
    let body = br#"{"id":"e-1","trigger":"FILE.UPLOADED","webhook":{"id":"w\/1"}}"#;
    let envelope = Envelope::parse(body).expect("parses");
    let start = body.as_ptr() as usize;
    let id = envelope.id().as_ptr() as usize;
    assert!(
        (start..start + body.len()).contains(&id),
        "id borrowed from the body"
    );
    assert_eq!(envelope.webhook_id(), Some("w/1"));
}
