//! The one-pass parser against the tree-based parser it replaced
//! ([`WebhookEvent::parse_reference`]): the same event, or the same error,
//! on every fixture and on generated bodies.

use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::{Trigger, WebhookEvent};

fn agree(body: &[u8]) -> Result<(), TestCaseError> {
    let new = WebhookEvent::parse(body);
    let old = WebhookEvent::parse_reference(body);
    prop_assert_eq!(&new, &old, "body: {}", String::from_utf8_lossy(body));
    if let (Ok(new), Ok(old)) = (&new, &old) {
        // Field by field too: `RawJson` equality is semantic, so also compare
        // what the text reads as, and that it is the body's own text.
        prop_assert_eq!(
            new.source().map(super::Source::raw),
            old.source().map(super::Source::raw)
        );
        if let Some(source) = new.source() {
            prop_assert!(new.raw().contains(source.raw_json().json()));
        }
    }
    Ok(())
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

#[test]
fn every_fixture_parses_as_the_tree_parser_read_it() {
    let fixtures = fixtures();
    assert!(fixtures.len() > 40);
    for body in &fixtures {
        agree(body).expect("agree");
        // And in Box's escaped form, where every string copies.
        let escaped = crate::escaped_form(body).expect("UTF-8");
        agree(&escaped).expect("agree escaped");
    }
}

#[test]
fn sources_at_the_depth_limit_agree() {
    for depth in 95..=135 {
        for (open, close) in [("[", "]"), ("{\"k\":", "}")] {
            let body = format!(
                r#"{{"id":"1","trigger":"X","source":{{"id":"5","type":"file","deep":{}0{}}}}}"#,
                open.repeat(depth),
                close.repeat(depth)
            );
            agree(body.as_bytes()).expect("agree");
        }
    }
}

/// Every key a modelled object reads, and a few it does not.
const KEYS: &[&str] = &[
    "id",
    "type",
    "name",
    "description",
    "etag",
    "sequence_id",
    "item_status",
    "sha1",
    "url",
    "message",
    "tagged_message",
    "resolution_state",
    "role",
    "status",
    "invite_email",
    "created_at",
    "modified_at",
    "trashed_at",
    "purged_at",
    "content_created_at",
    "content_modified_at",
    "assigned_at",
    "completed_at",
    "reminded_at",
    "expires_at",
    "acknowledged_at",
    "size",
    "is_reply_comment",
    "parent",
    "path_collection",
    "entries",
    "created_by",
    "modified_by",
    "owned_by",
    "assigned_to",
    "assigned_by",
    "shared_link",
    "file_version",
    "item",
    "accessible_by",
    "login",
    "download_url",
    "vanity_url",
    "access",
    "effective_access",
    "effective_permission",
    "is_password_enabled",
    "unshared_at",
    "address",
    "target",
    "triggers",
    "old_name",
    "x",
    "i\u{0064}",
];

const TYPES: &[&str] = &[
    "file",
    "folder",
    "web_link",
    "comment",
    "task_assignment",
    "metadata_instance",
    "collaboration",
    "hubs",
    "user",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        ".{0,8}".prop_map(Value::String),
        "[0-9]{1,6}".prop_map(Value::String),
        Just(Value::String("2024-05-14T09:12:31-07:00".to_owned())),
        Just(Value::String("2024-05-14 09:12".to_owned())),
        prop::sample::select(TYPES).prop_map(Value::from),
        prop::sample::select(Trigger::KNOWN).prop_map(|t| Value::from(t.as_str())),
    ]
}

/// Objects built from the keys the model reads, nested, with values of
/// every type: the shapes the typed readers must read exactly as before.
fn model_like() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(|entries| {
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                )
            }),
        ]
    })
}

fn event_like() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(TYPES),
        "[0-9]{1,4}",
        prop::collection::vec((prop::sample::select(KEYS), model_like()), 0..12),
        prop::option::of(model_like()),
        prop::option::of(model_like()),
        prop::option::of(model_like()),
        prop::option::of(model_like()),
    )
        .prop_map(|(kind, id, fields, webhook, user, info, at)| {
            let mut source: Map<String, Value> =
                fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            source.entry("id").or_insert_with(|| Value::from(id));
            source.entry("type").or_insert_with(|| Value::from(kind));
            let mut event = Map::new();
            event.insert("type".into(), "webhook_event".into());
            event.insert("id".into(), "e-1".into());
            event.insert("trigger".into(), "FILE.UPLOADED".into());
            event.insert("source".into(), Value::Object(source));
            for (key, value) in [
                ("webhook", webhook),
                ("created_by", user),
                ("additional_info", info),
                ("created_at", at),
            ] {
                if let Some(value) = value {
                    event.insert(key.into(), value);
                }
            }
            Value::Object(event)
        })
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
    fn generated_events_agree(value in event_like()) {
        let body = serde_json::to_vec(&value).expect("serializes");
        agree(&body)?;
        let escaped = crate::escaped_form(&body).expect("UTF-8");
        agree(&escaped)?;
    }

    #[test]
    fn damaged_fixtures_agree(
        index in any::<prop::sample::Index>(),
        pick in any::<prop::sample::Index>(),
        replacement in model_like(),
    ) {
        let fixtures = fixtures();
        let body = index.get(&fixtures);
        let mut value: Value = serde_json::from_slice(body).expect("fixture is JSON");
        let mut all = Vec::new();
        pointers(&value, "", &mut all);
        let pointer = pick.get(&all);
        *value.pointer_mut(pointer).expect("a pointer we listed") = replacement;
        agree(&serde_json::to_vec(&value).expect("serializes"))?;
    }

    #[test]
    fn flipped_bytes_agree(
        index in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let fixtures = fixtures();
        let mut body = index.get(&fixtures).clone();
        let at = at.index(body.len());
        body[at] = byte;
        agree(&body)?;
    }

    #[test]
    fn json_ish_text_agrees(body in r#"[{}\[\]",:0-9a-z\\ .eE+-]{0,64}"#) {
        agree(body.as_bytes())?;
    }

    #[test]
    fn repeated_keys_agree(
        index in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        key in prop::sample::select(KEYS),
    ) {
        // A key inserted right after an object's `{`: a repeat whenever that
        // object has it already, anywhere in the body.
        let fixtures = fixtures();
        let body = index.get(&fixtures);
        let opens: Vec<usize> = body.iter().enumerate().filter(|&(_, &b)| b == b'{').map(|(i, _)| i).collect();
        let at = *at.get(&opens);
        let mut damaged = body[..=at].to_vec();
        damaged.extend_from_slice(format!(r#""{key}":1,"#).as_bytes());
        damaged.extend_from_slice(&body[at.saturating_add(1)..]);
        agree(&damaged)?;
    }
}
