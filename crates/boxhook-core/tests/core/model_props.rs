//! Property tests for the event model: no input panics, the envelope and the
//! full event agree on every body (and so does the router's peek, whenever
//! the full parse succeeds), damage outside the envelope never stops an
//! event from routing, and trigger strings round-trip.

use std::path::PathBuf;

use boxhook_core::escaped_form;
use boxhook_core::model::{Envelope, ParseError, RoutingFields, Trigger, WebhookEvent};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Both parsers' view of a body, as comparable values.
fn both(
    body: &[u8],
) -> (
    Result<Envelope<'static>, ParseError>,
    Result<Envelope<'static>, ParseError>,
) {
    let envelope = Envelope::parse(body).map(Envelope::into_owned);
    let event = WebhookEvent::parse(body).map(|e| e.envelope().into_owned());
    // The router claims on a peek, then parses: whenever both succeed, the
    // peek read what the parse reads.
    if let (Some(peeked), Ok(event)) = (RoutingFields::peek(body), &event) {
        assert_eq!(peeked.id(), event.id());
        assert_eq!(peeked.trigger(), event.trigger());
        assert_eq!(Some(peeked.webhook_id()), event.webhook_id());
    }
    (envelope, event)
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "type",
            "id",
            "trigger",
            "webhook",
            "source",
            "additional_info",
            "created_at",
            "created_by",
            "name",
            "size",
            "parent",
            "old_name",
            "reason",
        ])
        .prop_map(str::to_owned),
        "[a-z_$]{0,8}",
        ".{0,4}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        ".{0,12}".prop_map(Value::String),
        Just(Value::String("webhook_event".to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// A value for an envelope field: usually a plausible string, sometimes anything.
fn field(plausible: impl Strategy<Value = String>) -> impl Strategy<Value = Option<Value>> {
    prop::option::weighted(
        0.85,
        prop_oneof![3 => plausible.prop_map(Value::String), 1 => json_value()],
    )
}

fn known_trigger() -> impl Strategy<Value = String> {
    prop::sample::select(Trigger::KNOWN).prop_map(|t| t.as_str().to_owned())
}

/// Objects shaped like events, with every envelope field possibly missing,
/// mistyped, escaped or odd.
fn event_like() -> impl Strategy<Value = Value> {
    let nested = |plausible_type: &'static str| {
        prop::option::weighted(
            0.85,
            prop_oneof![
                3 => (field("[0-9]{1,6}"), field(Just(plausible_type.to_owned())), json_value())
                    .prop_map(|(id, type_name, extra)| {
                        let mut map = Map::new();
                        map.extend(id.map(|v| ("id".to_owned(), v)));
                        map.extend(type_name.map(|v| ("type".to_owned(), v)));
                        map.insert("extra".to_owned(), extra);
                        Value::Object(map)
                    }),
                1 => json_value(),
            ],
        )
    };
    (
        field(prop_oneof![
            Just("webhook_event".to_owned()),
            ".{0,6}".boxed()
        ]),
        field("[0-9a-f-]{1,12}|.{0,6}"),
        field(prop_oneof![known_trigger(), ".{0,10}".boxed()]),
        nested("webhook"),
        nested("file"),
        prop::option::of(json_value()),
    )
        .prop_map(|(event_type, id, trigger, webhook, source, info)| {
            let mut map = Map::new();
            let fields = [
                ("type", event_type),
                ("id", id),
                ("trigger", trigger),
                ("webhook", webhook),
                ("source", source),
                ("additional_info", info),
            ];
            map.extend(
                fields
                    .into_iter()
                    .filter_map(|(k, v)| Some((k.to_owned(), v?))),
            );
            Value::Object(map)
        })
}

fn fixtures() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("fixtures/")
        .map(|entry| entry.expect("readable").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read(p).expect("readable"))
        .collect()
}

/// The router's fast path is real on Box's payloads: every fixture with a
/// string `webhook.id` is peeked (a numeric one is left to the full parse,
/// which reads no webhook id from it either), and reads what the full parse
/// reads.
#[test]
fn every_fixture_is_peeked_and_agrees_with_the_parse() {
    let fixtures = fixtures();
    assert!(fixtures.len() >= 30, "the fixtures are there");
    let mut peeked_count = 0;
    for body in &fixtures {
        let text = String::from_utf8_lossy(body);
        let event = WebhookEvent::parse(body).expect("a fixture parses");
        let Some(webhook_id) = event.envelope().webhook_id().map(str::to_owned) else {
            assert_eq!(RoutingFields::peek(body), None, "{text}");
            continue;
        };
        let peeked = RoutingFields::peek(body).unwrap_or_else(|| panic!("not peeked: {text}"));
        assert_eq!(peeked.id(), event.id());
        assert_eq!(peeked.trigger(), event.trigger());
        assert_eq!(peeked.webhook_id(), webhook_id);
        peeked_count += 1;
    }
    assert!(
        peeked_count * 10 >= fixtures.len() * 9,
        "{peeked_count} of {}",
        fixtures.len()
    );
}

/// Every JSON pointer into `value` except the root.
fn pointers(value: &Value, at: &str, out: &mut Vec<String>) {
    let children: Vec<(String, &Value)> = match value {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.replace('~', "~0").replace('/', "~1"), v))
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => return,
    };
    for (key, child) in children {
        let pointer = format!("{at}/{key}");
        pointers(child, &pointer, out);
        out.push(pointer);
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_both_parsers_agree(
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let (envelope, event) = both(&body);
        prop_assert_eq!(envelope, event);
    }

    #[test]
    fn json_ish_text_never_panics_and_both_parsers_agree(
        body in r#"[{}\[\]",:0-9a-z\\ .eE+-]{0,64}"#,
    ) {
        let (envelope, event) = both(body.as_bytes());
        prop_assert_eq!(envelope, event);
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        let body = serde_json::to_vec(&value).expect("serializes");
        let (envelope, event) = both(&body);
        prop_assert_eq!(envelope, event);
    }

    #[test]
    fn event_like_objects_agree_raw_and_escaped(value in event_like()) {
        let body = serde_json::to_vec(&value).expect("serializes");
        let (envelope, event) = both(&body);
        prop_assert_eq!(&envelope, &event);
        // Box's escaped form makes every string with `/` or non-ASCII an
        // escaped one: the envelope then copies instead of borrowing.
        let escaped = escaped_form(&body).expect("UTF-8").into_owned();
        let (escaped_envelope, escaped_event) = both(&escaped);
        prop_assert_eq!(&escaped_envelope, &escaped_event);
        prop_assert_eq!(escaped_envelope, envelope);
        if let Ok(event) = WebhookEvent::parse(&body) {
            prop_assert_eq!(event.raw().as_bytes(), body.as_slice());
        }
    }

    #[test]
    fn damage_outside_the_envelope_never_stops_routing(
        index in any::<prop::sample::Index>(),
        pick in any::<prop::sample::Index>(),
        replacement in json_value(),
    ) {
        let fixtures = fixtures();
        let body = index.get(&fixtures);
        let mut value: Value = serde_json::from_slice(body).expect("fixture is JSON");
        let mut all = Vec::new();
        pointers(&value, "", &mut all);
        all.retain(|p| !matches!(p.as_str(), "/id" | "/trigger" | "/type"));
        let pointer = pick.get(&all);
        *value.pointer_mut(pointer).expect("a pointer we listed") = replacement;
        let damaged = serde_json::to_vec(&value).expect("serializes");

        let original = WebhookEvent::parse(body).expect("fixture parses");
        let event = WebhookEvent::parse(&damaged).expect("damage outside the envelope");
        prop_assert_eq!(event.id(), original.id());
        prop_assert_eq!(event.trigger(), original.trigger());
        let envelope = Envelope::parse(&damaged).map(Envelope::into_owned);
        prop_assert_eq!(envelope, Ok(event.envelope().into_owned()));
    }

    #[test]
    fn flipped_bytes_in_fixtures_never_panic(
        index in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let fixtures = fixtures();
        let mut body = index.get(&fixtures).clone();
        let at = at.index(body.len());
        body[at] = byte;
        let (envelope, event) = both(&body);
        prop_assert_eq!(envelope, event);
    }

    #[test]
    fn any_trigger_string_round_trips(name in ".{0,40}") {
        let trigger = Trigger::from(name.as_str());
        prop_assert_eq!(trigger.as_str(), name.as_str());
        prop_assert_eq!(trigger.to_string(), name.clone());
        prop_assert_eq!(Trigger::from(name.clone()), trigger.clone());
        let parsed: Trigger = name.parse().unwrap_or_else(|never| match never {});
        prop_assert_eq!(parsed, trigger);
    }

    #[test]
    fn known_trigger_strings_map_to_their_variant(name in known_trigger()) {
        let trigger = Trigger::from(name.as_str());
        prop_assert!(trigger.is_known());
        prop_assert_eq!(trigger.as_str(), name.as_str());
        // Box's spelling only: any other case is a different (unknown) trigger.
        prop_assert!(!Trigger::from(name.to_lowercase()).is_known());
    }
}
