//! [`RawJson`]: a source object exactly as sent, found in the kept body and
//! built into a tree only when read.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// A JSON object as Box sent it (the `raw` of every [`Source`](super::Source)):
/// its text, a slice of the body the event keeps, and a [`Value`] tree built
/// from it the first time it is read.
///
/// Parsing keeps neither: the body is shared with
/// [`WebhookEvent::raw`](super::WebhookEvent::raw) (no copy), the source's
/// place in it is found on the first read of the text, and the tree on the
/// first read of a field, so an event whose handler never looks at `raw`
/// never pays for either. `RawJson` dereferences to [`Value`], so
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
    /// The whole body, shared with the event.
    body: Arc<str>,
    /// Where the source's text is in `body`, found on first use.
    span: OnceLock<(usize, usize)>,
    tree: OnceLock<Value>,
}

impl RawJson {
    /// The `source` of `body`, a body the parser has already read (valid
    /// JSON, an object, no repeated key).
    pub(crate) fn source_of(body: Arc<str>) -> Self {
        Self {
            body,
            span: OnceLock::new(),
            tree: OnceLock::new(),
        }
    }

    /// For the reference parser of the tests: a tree written back as text.
    #[cfg(test)]
    pub(crate) fn from_value(value: &Value) -> Self {
        let text: Arc<str> = value.to_string().into();
        let span = OnceLock::from((0, text.len()));
        Self {
            body: text,
            span,
            tree: OnceLock::new(),
        }
    }

    /// The object's text, byte for byte as it appears in the body: e.g. to
    /// deserialize a type of your own from it, with no tree in between.
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
    /// let raw = event.source().expect("a source").raw_json();
    /// let mine: Mine = serde_json::from_str(raw.json()).expect("my shape");
    /// assert_eq!((mine.id.as_str(), mine.color.as_str()), ("5", "teal"));
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
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
        let &(start, end) = self
            .span
            .get_or_init(|| locate(&self.body).unwrap_or((0, 0)));
        // Never empty for a body that parsed; "null" keeps it JSON if it were.
        self.body
            .get(start..end)
            .filter(|s| !s.is_empty())
            .unwrap_or("null")
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
            .get_or_init(|| serde_json::from_str(self.json()).unwrap_or(Value::Null))
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
            body: Arc::clone(&self.body),
            span: self.span.clone(),
            tree: self.tree.clone(),
        }
    }
}

/// The top-level object of a body, reading only `source`'s text.
#[derive(Deserialize)]
struct Located<'a> {
    #[serde(borrow)]
    source: Option<&'a RawValue>,
}

/// Where `source`'s text starts and ends in `body`.
fn locate(body: &str) -> Option<(usize, usize)> {
    let located: Located<'_> = serde_json::from_str(body).ok()?;
    let text = located.source?.get();
    let start = text.as_ptr().addr().checked_sub(body.as_ptr().addr())?;
    Some((start, start.checked_add(text.len())?))
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
