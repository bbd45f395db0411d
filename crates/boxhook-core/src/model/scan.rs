//! Reads the envelope fields straight from the body with serde, borrowing
//! strings where the body has no escapes and keeping nothing else
//! (crate-private; the public face is [`super::Envelope`]).
//!
//! Skipped values still go through `deserialize_any`, not serde's
//! `IgnoredAny`: `serde_json`'s fast skip does not check number ranges, `\u`
//! surrogates or nesting depth, so a body it accepted could still fail
//! [`super::WebhookEvent::parse`]. Skipping this way allocates nothing and
//! makes both parsers accept exactly the same bodies.
//!
//! Every object's keys, at every depth, go through a [`KeySet`]: a key seen
//! twice in one object (compared after unescaping, so `"id"` and
//! `"\u0069d"` are the same key) fails the parse, as it fails
//! [`super::WebhookEvent::parse`]. A body whose duplicates a first-wins
//! parser and a last-wins parser would read differently never gets through.

use std::borrow::Cow;
use std::collections::HashSet;
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
pub(crate) type Skip<'de> = Shape<'de, Ignore>;

/// Any value, keeping it only if it is a string.
pub(crate) type Loose<'de> = Shape<'de, Ignore<true>>;

/// An object's contents, skipped.
pub(crate) struct Ignore<const KEEP_STR: bool = false>;

impl<'de, const KEEP: bool> ReadObject<'de> for Ignore<KEEP> {
    const KEEP_STR: bool = KEEP;

    fn read<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut keys = KeySet::new();
        while let Some(key) = map.next_key::<KeyText<'de>>()? {
            keys.insert(key.0)?;
            drop(map.next_value::<Skip<'de>>()?);
        }
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

    // A repeated key fails the parse (see the module docs), so each field is
    // set at most once.
    fn read<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut fields = Self::default();
        let mut keys = KeySet::new();
        while let Some(KeyText(name)) = map.next_key()? {
            let key = Key::of(&name);
            keys.insert(name)?;
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
        let mut keys = KeySet::new();
        while let Some(KeyText(name)) = map.next_key()? {
            let key = Key::of(&name);
            keys.insert(name)?;
            match key {
                Key::Id => inner.id = Some(text(map.next_value()?)),
                Key::Type => inner.type_name = Some(text(map.next_value()?)),
                _ => drop(map.next_value::<Skip<'de>>()?),
            }
        }
        Ok(inner)
    }
}

pub(crate) fn text(value: Loose<'_>) -> Text<'_> {
    match value {
        Shape::Str(s) => Found::Str(s),
        Shape::Object(_) => Found::Other(JsonKind::Object),
        Shape::Other(kind) => Found::Other(kind),
    }
}

/// The object `value` is, read by `T`; `None` for any other value.
pub(crate) fn object<T>(value: Shape<'_, T>) -> Option<T> {
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

impl Key {
    fn of(name: &str) -> Self {
        match name {
            "type" => Self::Type,
            "id" => Self::Id,
            "trigger" => Self::Trigger,
            "webhook" => Self::Webhook,
            "source" => Self::Source,
            _ => Self::Other,
        }
    }
}

/// An object key, borrowed from the body unless it has escapes.
pub(crate) struct KeyText<'de>(pub(crate) Cow<'de, str>);

impl<'de> Deserialize<'de> for KeyText<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = KeyText<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: Error>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(KeyText(Cow::Borrowed(key)))
    }

    fn visit_str<E: Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(KeyText(Cow::Owned(key.to_owned())))
    }
}

/// How many keys an object may have before [`KeySet`] switches from a
/// linear scan to a hash set (which keeps a huge object from costing
/// quadratic time).
const INLINE_KEYS: usize = 32;

/// The keys of one object seen so far. The first [`INLINE_KEYS`] keys that
/// borrow from the body (every key without escapes) sit in an inline array
/// behind a 64-bit filter, so a new key usually costs one bit test and the
/// objects Box sends (a file source has 22 keys) no allocation; a longer object or an escaped key moves
/// them all to a hash set.
pub(crate) struct KeySet<'de> {
    /// One bit per [`slot`] of the inline keys: a clear bit means "new".
    filter: u64,
    inline: [&'de str; INLINE_KEYS],
    len: usize,
    spilled: Option<HashSet<Cow<'de, str>>>,
}

impl<'de> KeySet<'de> {
    pub(crate) fn new() -> Self {
        Self {
            filter: 0,
            inline: [""; INLINE_KEYS],
            len: 0,
            spilled: None,
        }
    }

    /// Records `key`; fails when the object had it already.
    #[inline]
    pub(crate) fn insert<E: Error>(&mut self, key: Cow<'de, str>) -> Result<(), E> {
        if self.spilled.is_none()
            && let Cow::Borrowed(borrowed) = key
        {
            let bit = 1u64 << slot(borrowed);
            if self.filter & bit != 0 && self.inline[..self.len].contains(&borrowed) {
                return Err(duplicate_key(borrowed));
            }
            if self.len < INLINE_KEYS {
                self.filter |= bit;
                self.inline[self.len] = borrowed;
                #[allow(
                    clippy::arithmetic_side_effects,
                    reason = "`len < INLINE_KEYS` was checked just above, so `len + 1` fits"
                )]
                {
                    self.len += 1;
                }
                return Ok(());
            }
        }
        let len = self.len;
        let inline = &self.inline;
        let set = self
            .spilled
            .get_or_insert_with(|| inline[..len].iter().map(|&k| Cow::Borrowed(k)).collect());
        if set.contains(&*key) {
            return Err(duplicate_key(&key));
        }
        set.insert(key);
        Ok(())
    }
}

/// Which of 64 filter bits `key` maps to: a hash of its length and first
/// and last bytes, which tells most distinct keys apart.
fn slot(key: &str) -> u32 {
    let bytes = key.as_bytes();
    let first = u32::from(bytes.first().copied().unwrap_or(0));
    let last = u32::from(bytes.last().copied().unwrap_or(0));
    let len = u32::try_from(bytes.len() & 0xff).unwrap_or(0);
    ((first << 16) | (last << 8) | len).wrapping_mul(0x9E37_79B1) >> 26
}

/// The error for a repeated key; [`super::error::ParseError`] recognises it
/// by its prefix.
#[cold]
#[inline(never)]
pub(crate) fn duplicate_key<E: Error>(key: &str) -> E {
    E::custom(format_args!(
        "{DUPLICATE_KEY_PREFIX}{} in an object",
        super::error::quote_str(key)
    ))
}

/// How every duplicate-key error message starts.
pub(crate) const DUPLICATE_KEY_PREFIX: &str = "duplicate key ";

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

/// A whole JSON value, built as `serde_json::Value` is, except that an
/// object with a repeated key fails with the same error, at the same place,
/// as the envelope scan: [`super::WebhookEvent::parse`] reads through it.
pub(crate) struct Strict(pub(crate) serde_json::Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: Error>(self) -> Result<Strict, E> {
        Ok(Strict(serde_json::Value::Null))
    }

    fn visit_none<E: Error>(self) -> Result<Strict, E> {
        Ok(Strict(serde_json::Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Strict, D::Error> {
        Strict::deserialize(deserializer)
    }

    fn visit_bool<E: Error>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(serde_json::Value::Bool(v)))
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(serde_json::Value::Number(v.into())))
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(serde_json::Value::Number(v.into())))
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<Strict, E> {
        Ok(Strict(serde_json::Number::from_f64(v).map_or(
            serde_json::Value::Null,
            serde_json::Value::Number,
        )))
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(serde_json::Value::String(v.to_owned())))
    }

    fn visit_string<E: Error>(self, v: String) -> Result<Strict, E> {
        Ok(Strict(serde_json::Value::String(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Strict(serde_json::Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut object = serde_json::Map::new();
        // Checked before the value is read, as the scan does, so both report
        // the same key at the same place.
        while let Some(key) = map.next_key::<String>()? {
            match object.entry(key) {
                serde_json::map::Entry::Occupied(seen) => return Err(duplicate_key(seen.key())),
                serde_json::map::Entry::Vacant(slot) => {
                    let Strict(value) = map.next_value()?;
                    slot.insert(value);
                }
            }
        }
        Ok(Strict(serde_json::Value::Object(object)))
    }
}
