//! JSON evidence: insignificant white space (compaction), and whether a
//! body is JSON written by something other than Box.

use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

use super::{Hint, HintCode};
use crate::escaped_form;

/// The order Box writes a `webhook_event`'s top-level members in, as far as
/// every payload seen agrees (`webhook` is left out: Box's documentation
/// sample has it before `trigger`, real deliveries after).
const BOX_ORDER: [&str; 7] = [
    "type",
    "id",
    "created_at",
    "trigger",
    "created_by",
    "source",
    "additional_info",
];

/// `body` without the white space between JSON tokens, strings untouched;
/// `None` unless `body` is valid JSON with white space between its tokens
/// (white space only before or after the value is a line-break matter).
pub(super) fn compacted(body: &[u8]) -> Option<Vec<u8>> {
    let inner = body.trim_ascii();
    let mut out = Vec::with_capacity(inner.len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in inner {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            in_string = b == b'"';
            out.push(b);
        }
    }
    (out.len() != inner.len() && is_json(&out)).then_some(out)
}

fn is_json(body: &[u8]) -> bool {
    serde_json::from_slice::<IgnoredAny>(body).is_ok()
}

/// What shows that `body` was written by something other than Box.
pub(super) struct Evidence {
    spaced: bool,
    unescaped: bool,
    reordered: bool,
}

/// `Some` when `body` is valid JSON that Box cannot have written as it is:
/// white space between tokens, or top-level members out of Box's order.
///
/// `/` or non-ASCII text written raw is not evidence on its own: the
/// verifier has already tried the body's escaped form, which undoes exactly
/// that, so a body that only lost its escapes verifies (`escaped_form`), and
/// one that does not, in Box's order and compact, most likely met a wrong
/// key. It is named beside real evidence, as part of the picture.
pub(super) fn reserialized_evidence(body: &[u8]) -> Option<Evidence> {
    if !is_json(body) {
        return None;
    }
    let evidence = Evidence {
        spaced: compacted(body).is_some(),
        unescaped: escaped_form(body).is_ok_and(|e| *e != *body),
        reordered: top_level_keys(body).is_some_and(|keys| !in_box_order(&keys)),
    };
    (evidence.spaced || evidence.reordered).then_some(evidence)
}

pub(super) fn reserialized_hint(evidence: &Evidence) -> Hint {
    let mut seen = Vec::new();
    if evidence.reordered {
        seen.push("its members are not in Box's order");
    }
    if evidence.spaced {
        seen.push("it has white space Box never sends");
    }
    if evidence.unescaped {
        seen.push("it holds `/` or non-ASCII characters Box writes escaped");
    }
    Hint::new(
        HintCode::Reserialized,
        format!(
            "the body is JSON, but not as Box writes it ({}), and no repair verifies: most \
             likely a JSON body parser (Express's express.json(), Flask's request.json, \
             Spring's @RequestBody, JSON.stringify) parsed and re-wrote it, which cannot be \
             undone; or the sender is not Box. The signature was NOT verified. Verify the \
             raw bytes before parsing (docs/DIAGNOSIS.md shows how in axum, hyper, Express, \
             Flask and Spring)",
            seen.join("; ")
        ),
    )
}

fn in_box_order(keys: &[String]) -> bool {
    let ranks: Vec<usize> = keys
        .iter()
        .filter_map(|k| BOX_ORDER.iter().position(|b| b == k))
        .collect();
    ranks.windows(2).all(|w| w[0] < w[1])
}

/// The member names of a top-level object, in order.
fn top_level_keys(body: &[u8]) -> Option<Vec<String>> {
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
            let mut keys = Vec::new();
            while let Some((key, IgnoredAny)) = map.next_entry::<String, IgnoredAny>()? {
                keys.push(key);
            }
            Ok(keys)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    de.deserialize_map(Keys).ok()
}

#[cfg(test)]
mod tests {
    use super::{compacted, reserialized_evidence};

    #[test]
    fn compaction_keeps_strings_and_needs_inner_space() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "{\n  \"a\": \"x y\",\n  \"b\": [1, 2]\n}",
                Some(r#"{"a":"x y","b":[1,2]}"#),
            ),
            (r#"{"a" : "q\" :", "b":1}"#, Some(r#"{"a":"q\" :","b":1}"#)),
            ("{\"a\":1}\n", None),
            ("{\"a\":1}", None),
            ("not json at all", None),
        ];
        for (input, want) in cases {
            let got = compacted(input.as_bytes()).map(|v| String::from_utf8(v).expect("utf-8"));
            assert_eq!(got.as_deref(), *want, "{input}");
        }
    }

    #[test]
    fn evidence_needs_json_not_as_box_writes_it() {
        let cases: &[(&str, bool)] = &[
            (r#"{"type":"webhook_event","id":"1","trigger":"X"}"#, false),
            (r#"{"trigger":"X","id":"1","type":"webhook_event"}"#, true),
            (r#"{"type":"webhook_event", "id":"1"}"#, true),
            // Raw `/` or non-ASCII alone: the escaped form was tried already.
            (r#"{"type":"a/b"}"#, false),
            (
                r#"{"type":"webhook_event","id":"1","name":"Café/ス"}"#,
                false,
            ),
            (r#"{"id":"1","type":"a/b"}"#, true),
            (r#"{"type":"a\/b"}"#, false),
            ("{\"type\":\"webhook_event\"", false),
        ];
        for (input, want) in cases {
            assert_eq!(
                reserialized_evidence(input.as_bytes()).is_some(),
                *want,
                "{input}"
            );
        }
    }
}
