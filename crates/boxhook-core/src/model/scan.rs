//! Reads the envelope fields straight from the body with serde, borrowing
//! strings where the body has no escapes and keeping nothing else
//! (crate-private; the public face is [`super::Envelope`]).
//!
//! Skipped values still go through `deserialize_any`, not serde's
//! `IgnoredAny`: `serde_json`'s fast skip does not check number ranges, `\u`
//! surrogates or nesting depth, so a body it accepted could still fail
//! [`super::WebhookEvent::parse`]. Skipping this way allocates nothing and
//! makes both parsers accept exactly the same bodies.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, Error, MapAccess, SeqAccess, Visitor};

use super::error::Found;
use super::json::JsonKind;

/// A JSON value seen through `T`: objects are read by `T`, strings kept as
/// [`Cow`] when `T::KEEP_STR`, and everything else reduced to its kind.
pub(crate) enum Shape<'de, T> {
    Object(T),
    Str(Cow<'de, str>),
    Other(JsonKind),
}

/// How a [`Shape`] reads an object, and whether it keeps strings.
pub(crate) trait ReadObject<'de>: Sized {
    const KEEP_STR: bool;
    fn read<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error>;
}

/// A string field: the string, or the kind of value found instead.
pub(crate) type Text<'de> = Found<Cow<'de, str>>;

/// Any value, skipped without allocating.
type Skip<'de> = Shape<'de, Ignore>;

/// Any value, keeping it only if it is a string.
type Loose<'de> = Shape<'de, Ignore<true>>;

/// An object's contents, skipped.
pub(crate) struct Ignore<const KEEP_STR: bool = false>;

impl<'de, const KEEP: bool> ReadObject<'de> for Ignore<KEEP> {
    const KEEP_STR: bool = KEEP;

    fn read<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        while map.next_entry::<Skip<'de>, Skip<'de>>()?.is_some() {}
        Ok(Self)
    }
}

/// The envelope fields of the top-level object.
#[derive(Default)]
pub(crate) struct Fields<'de> {
    pub(crate) event_type: Option<Text<'de>>,
    pub(crate) id: Option<Text<'de>>,
    pub(crate) trigger: Option<Text<'de>>,
    /// `None` unless `webhook` is an object.
    pub(crate) webhook: Option<Inner<'de>>,
    /// `None` unless `source` is an object.
    pub(crate) source: Option<Inner<'de>>,
}

/// `id` and `type` of a nested object (`webhook`, `source`).
#[derive(Default)]
pub(crate) struct Inner<'de> {
    pub(crate) id: Option<Text<'de>>,
    pub(crate) type_name: Option<Text<'de>>,
}

impl<'de> ReadObject<'de> for Fields<'de> {
    const KEEP_STR: bool = false;

    // A repeated key overwrites the earlier one, as it does in `serde_json`'s
    // `Map`, so this agrees with `WebhookEvent::parse`.
    fn read<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut fields = Self::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Type => fields.event_type = Some(text(map.next_value()?)),
                Key::Id => fields.id = Some(text(map.next_value()?)),
                Key::Trigger => fields.trigger = Some(text(map.next_value()?)),
                Key::Webhook => fields.webhook = object(map.next_value()?),
                Key::Source => fields.source = object(map.next_value()?),
                Key::Other => drop(map.next_value::<Skip<'de>>()?),
            }
        }
        Ok(fields)
    }
}

impl<'de> ReadObject<'de> for Inner<'de> {
    const KEEP_STR: bool = false;

    fn read<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut inner = Self::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Id => inner.id = Some(text(map.next_value()?)),
                Key::Type => inner.type_name = Some(text(map.next_value()?)),
                _ => drop(map.next_value::<Skip<'de>>()?),
            }
        }
        Ok(inner)
    }
}

fn text(value: Loose<'_>) -> Text<'_> {
    match value {
        Shape::Str(s) => Found::Str(s),
        Shape::Object(_) => Found::Other(JsonKind::Object),
        Shape::Other(kind) => Found::Other(kind),
    }
}

fn object<'de>(value: Shape<'de, Inner<'de>>) -> Option<Inner<'de>> {
    match value {
        Shape::Object(inner) => Some(inner),
        Shape::Str(_) | Shape::Other(_) => None,
    }
}

/// The keys the envelope cares about.
enum Key {
    Type,
    Id,
    Trigger,
    Webhook,
    Source,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: Error>(self, key: &str) -> Result<Key, E> {
        Ok(match key {
            "type" => Key::Type,
            "id" => Key::Id,
            "trigger" => Key::Trigger,
            "webhook" => Key::Webhook,
            "source" => Key::Source,
            _ => Key::Other,
        })
    }
}

impl<'de, T: ReadObject<'de>> Deserialize<'de> for Shape<'de, T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ShapeVisitor(PhantomData))
    }
}

struct ShapeVisitor<T>(PhantomData<T>);

impl<'de, T: ReadObject<'de>> Visitor<'de> for ShapeVisitor<T> {
    type Value = Shape<'de, T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
        Ok(Shape::Other(JsonKind::Null))
    }

    fn visit_bool<E: Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Shape::Other(JsonKind::Bool))
    }

    fn visit_i64<E: Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Shape::Other(JsonKind::Number))
    }

    fn visit_u64<E: Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Shape::Other(JsonKind::Number))
    }

    fn visit_f64<E: Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Shape::Other(JsonKind::Number))
    }

    fn visit_borrowed_str<E: Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(if T::KEEP_STR {
            Shape::Str(Cow::Borrowed(s))
        } else {
            Shape::Other(JsonKind::String)
        })
    }

    // Only strings with escapes reach here: they have to be copied.
    fn visit_str<E: Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(if T::KEEP_STR {
            Shape::Str(Cow::Owned(s.to_owned()))
        } else {
            Shape::Other(JsonKind::String)
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<Skip<'de>>()?.is_some() {}
        Ok(Shape::Other(JsonKind::Array))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::read(map).map(Shape::Object)
    }
}
