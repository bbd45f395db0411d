//! [`RawJson`]: a source object exactly as sent, its tree built only when read.

use std::fmt;
use std::ops::Deref;
use std::sync::OnceLock;

use serde_json::value::RawValue;
use serde_json::Value;

/// A JSON object as Box sent it (the `raw` of every [`Source`](super::Source)):
/// the text, copied once from the body, and a [`Value`] tree built from it
/// the first time it is read.
///
/// Parsing keeps only the text, so an event whose handler never looks at
/// `raw` never pays for a tree. `RawJson` dereferences to [`Value`], so
/// `raw["size"]`, `raw.as_object()`, `raw.get("color")` read it as before;
/// [`RawJson::json`] gives the text without building anything.
///
/// ```
/// use boxhook_core::model::WebhookEvent;
///
/// let event = WebhookEvent::parse(br#"{
///     "id": "1", "trigger": "FILE.UPLOADED",
///     "source": {"id": "5", "type": "file", "size": "12", "color": "teal"}
/// }"#)?;
/// let file = event.source().and_then(|s| s.as_file()).expect("a file");
/// assert_eq!(file.raw.json(), r#"{"id": "5", "type": "file", "size": "12", "color": "teal"}"#);
/// assert_eq!(file.raw["color"], "teal"); // the tree, built on this first read
/// assert_eq!(file.raw.as_object().map(|o| o.len()), Some(4));
/// # Ok::<(), boxhook_core::model::ParseError>(())
/// ```
pub struct RawJson {
    text: Box<RawValue>,
    tree: OnceLock<Value>,
}

impl RawJson {
    /// Keeps `text`, which the parser has already checked (valid JSON, no
    /// repeated key).
    pub(crate) fn new(text: Box<RawValue>) -> Self {
        Self {
            text,
            tree: OnceLock::new(),
        }
    }

    /// For the reference parser of the tests: a tree written back as text.
    #[cfg(test)]
    pub(crate) fn from_value(value: &Value) -> Self {
        let text = serde_json::value::to_raw_value(value).unwrap_or_else(|_| Self::null());
        Self::new(text)
    }

    #[cfg(test)]
    fn null() -> Box<RawValue> {
        RawValue::from_string("null".to_owned()).unwrap_or_else(|_| unreachable!())
    }

    /// The object's text, byte for byte as it appears in the body.
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let event = WebhookEvent::parse(br#"{"id":"1","trigger":"X","source":{"id":"5","type":"hub"}}"#)?;
    /// let source = event.source().expect("a source");
    /// assert_eq!(source.raw_json().json(), r#"{"id":"5","type":"hub"}"#);
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn json(&self) -> &str {
        self.text.get()
    }

    /// The text as a [`RawValue`], e.g. to deserialize your own type from it
    /// with `serde_json::from_str(raw.raw_value().get())`.
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Mine { id: String, color: String }
    ///
    /// let event = WebhookEvent::parse(br#"{
    ///     "id": "1", "trigger": "X", "source": {"id": "5", "type": "file", "color": "teal"}
    /// }"#)?;
    /// let raw = event.source().expect("a source").raw_json().raw_value();
    /// let mine: Mine = serde_json::from_str(raw.get()).expect("my shape");
    /// assert_eq!((mine.id.as_str(), mine.color.as_str()), ("5", "teal"));
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn raw_value(&self) -> &RawValue {
        &self.text
    }

    /// The object as a [`Value`] tree, built on the first call (also what
    /// `*raw` and `raw["key"]` read).
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let event = WebhookEvent::parse(br#"{
    ///     "id": "1", "trigger": "X", "source": {"id": "5", "type": "file", "size": 3}
    /// }"#)?;
    /// let raw = event.source().expect("a source").raw_json();
    /// assert_eq!(raw.value()["size"], 3);
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn value(&self) -> &Value {
        // The text was checked by the parser, so this cannot fail; `Null`
        // keeps it from panicking if it ever did.
        self.tree
            .get_or_init(|| serde_json::from_str(self.text.get()).unwrap_or(Value::Null))
    }
}

impl Deref for RawJson {
    type Target = Value;

    fn deref(&self) -> &Value {
        self.value()
    }
}

impl Clone for RawJson {
    fn clone(&self) -> Self {
        Self {
            text: self.text.clone(),
            tree: self.tree.clone(),
        }
    }
}

/// Equal when the texts are, or else when they read as the same JSON value
/// (`{"a":1}` equals `{ "a" : 1 }`).
impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json() || self.value() == other.value()
    }
}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RawJson").field(&self.json()).finish()
    }
}

/// The text as sent.
impl fmt::Display for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.json())
    }
}
