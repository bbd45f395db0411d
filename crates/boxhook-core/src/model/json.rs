//! The JSON kinds of error messages, and lenient reads out of a parsed
//! `serde_json::Value` (crate-private).
//!
//! `Obj` is the reader of the tree-based parser the tests keep as the
//! reference for `de`, which reads the same rule straight from the body:
//! a value of the
//! expected JSON type becomes `Some`, anything else (absent, `null`, or a
//! value of another type) becomes `None`. No coercion: a size sent as the
//! string `"12"` is not a number, and stays reachable only in the raw JSON.

#[cfg(test)]
use chrono::{DateTime, FixedOffset};
#[cfg(test)]
use serde::Deserialize;
#[cfg(test)]
use serde_json::Map;
#[cfg(test)]
use serde_json::Value;

/// The JSON type of a value, for error messages ("`id` is a number").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JsonKind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl JsonKind {
    #[cfg(test)]
    pub(crate) fn of(value: &Value) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::Bool(_) => Self::Bool,
            Value::Number(_) => Self::Number,
            Value::String(_) => Self::String,
            Value::Array(_) => Self::Array,
            Value::Object(_) => Self::Object,
        }
    }

    /// The kind with its article, as it reads in a message.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool => "a boolean",
            Self::Number => "a number",
            Self::String => "a string",
            Self::Array => "an array",
            Self::Object => "an object",
        }
    }
}

/// A read-only view of a JSON object; reads on a non-object find nothing.
#[cfg(test)]
#[derive(Clone, Copy)]
pub(crate) struct Obj<'a>(Option<&'a Map<String, Value>>);

#[cfg(test)]
impl<'a> Obj<'a> {
    pub(crate) fn new(value: &'a Value) -> Self {
        Self(value.as_object())
    }

    pub(crate) fn of_map(map: &'a Map<String, Value>) -> Self {
        Self(Some(map))
    }

    pub(crate) fn get(self, key: &str) -> Option<&'a Value> {
        self.0?.get(key)
    }

    pub(crate) fn str(self, key: &str) -> Option<&'a str> {
        self.get(key)?.as_str()
    }

    pub(crate) fn string(self, key: &str) -> Option<String> {
        self.str(key).map(str::to_owned)
    }

    pub(crate) fn u64(self, key: &str) -> Option<u64> {
        self.get(key)?.as_u64()
    }

    pub(crate) fn bool(self, key: &str) -> Option<bool> {
        self.get(key)?.as_bool()
    }

    /// An RFC 3339 timestamp, keeping its offset; unparseable is `None`.
    pub(crate) fn time(self, key: &str) -> Option<DateTime<FixedOffset>> {
        DateTime::parse_from_rfc3339(self.str(key)?).ok()
    }

    /// A nested value read by `read`, e.g. `UserMini::from_json`.
    pub(crate) fn with<T>(self, key: &str, read: impl FnOnce(&'a Value) -> Option<T>) -> Option<T> {
        read(self.get(key)?)
    }

    /// A value of any shape serde can read from a `&Value` (`Vec<String>`, ...).
    pub(crate) fn de<T: Deserialize<'a>>(self, key: &str) -> Option<T> {
        T::deserialize(self.get(key)?).ok()
    }
}
