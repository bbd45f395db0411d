//! What a typical framework or proxy does to a body: parse the JSON and write
//! it again with `serde_json`. Key order and duplicate keys are kept (as most
//! order-preserving JSON libraries do), so the only change is the encoding:
//! compact, raw UTF-8, bare `/` — Box's `\/` and `\uXXXX` escapes are lost
//! (see "The escaped form" in docs/PROTOCOL.md).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// `body` parsed and written again, or `None` when it is not JSON.
pub(crate) fn reserialize(body: &[u8]) -> Option<Vec<u8>> {
    let value: Ordered = serde_json::from_slice(body).ok()?;
    serde_json::to_vec(&value).ok()
}

/// `body` parsed and written again compactly with its top-level object's
/// members in reverse order; `None` unless it is a JSON object of two or
/// more members.
pub(crate) fn reordered(body: &[u8]) -> Option<Vec<u8>> {
    let Ordered::Object(mut members) = serde_json::from_slice(body).ok()? else {
        return None;
    };
    if members.len() < 2 {
        return None;
    }
    members.reverse();
    serde_json::to_vec(&Ordered::Object(members)).ok()
}

/// A JSON value that remembers its object members' order.
enum Ordered {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Ordered>),
    Object(Vec<(String, Ordered)>),
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OrderedVisitor)
    }
}

struct OrderedVisitor;

impl<'de> Visitor<'de> for OrderedVisitor {
    type Value = Ordered;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Ordered, E> {
        Ok(Ordered::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Ordered, E> {
        Ok(Ordered::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Ordered, E> {
        Ok(Ordered::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Ordered, E> {
        Ok(Ordered::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Ordered, E> {
        serde_json::Number::from_f64(v)
            .map(Ordered::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Ordered, E> {
        Ok(Ordered::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Ordered, E> {
        Ok(Ordered::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Ordered::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
        let mut members = Vec::new();
        while let Some(member) = map.next_entry()? {
            members.push(member);
        }
        Ok(Ordered::Object(members))
    }
}

impl Serialize for Ordered {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Null => serializer.serialize_unit(),
            Self::Bool(v) => serializer.serialize_bool(*v),
            Self::Number(v) => v.serialize(serializer),
            Self::String(v) => serializer.serialize_str(v),
            Self::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Self::Object(members) => {
                let mut map = serializer.serialize_map(Some(members.len()))?;
                for (key, value) in members {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::reserialize;

    #[test]
    fn escapes_are_lost_order_is_kept() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                r#"{"z":1,"a":"http:\/\/x\/y","n":"\u30b9\ud83d\ude00","e":[],"o":{}}"#,
                Some(r#"{"z":1,"a":"http://x/y","n":"ス😀","e":[],"o":{}}"#),
            ),
            (
                "{ \"a\" : [ 1 , -2 , true , null ] }",
                Some(r#"{"a":[1,-2,true,null]}"#),
            ),
            (r#"{"a":1,"a":2}"#, Some(r#"{"a":1,"a":2}"#)),
            (r#""x\/y""#, Some(r#""x/y""#)),
            ("not json", None),
            ("", None),
        ];
        for (input, want) in cases {
            let got = reserialize(input.as_bytes()).map(|v| String::from_utf8(v).expect("utf-8"));
            assert_eq!(got.as_deref(), *want, "{input}");
        }
    }
}
