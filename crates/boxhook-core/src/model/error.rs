//! [`ParseError`]: why a body is not a usable `webhook_event`.

use std::fmt;

use super::json::JsonKind;

/// What kind of failure a [`ParseError`] is.
///
/// ```
/// use boxhook_core::model::{ParseErrorKind, WebhookEvent};
///
/// let err = WebhookEvent::parse(b"not json").unwrap_err();
/// assert_eq!(err.kind(), ParseErrorKind::NotJson);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The body is not JSON (a syntax error, or bytes that are not UTF-8).
    NotJson,
    /// The body is JSON but not an object.
    NotAnObject,
    /// The body's `type` is present and is not `"webhook_event"`.
    NotAWebhookEvent,
    /// A required envelope field (`id` or `trigger`) is absent.
    MissingField,
    /// A required envelope field is present with a type other than string.
    InvalidField,
    /// An object of the body, at any depth, has the same key twice (compared
    /// after unescaping). Box never sends one, and parsers disagree on which
    /// value counts, so the body is refused rather than read one way here
    /// and another way downstream.
    ///
    /// ```
    /// use boxhook_core::model::{Envelope, ParseErrorKind, WebhookEvent};
    ///
    /// let body = br#"{"id":"e-1","trigger":"FILE.UPLOADED","source":{"id":"5","type":"file","id":"6"}}"#;
    /// let err = Envelope::parse(body).unwrap_err();
    /// assert_eq!(err.kind(), ParseErrorKind::DuplicateKey);
    /// assert_eq!(err.to_string(), r#"duplicate key "id" in an object at line 1 column 75"#);
    /// assert_eq!(WebhookEvent::parse(body).unwrap_err(), err);
    /// ```
    DuplicateKey,
}

/// Why a body could not be parsed as a `webhook_event`.
///
/// Only the envelope can fail a parse (see the leniency rule in
/// [`crate::model`]); the message names the field and what was found.
/// Messages are lowercase and may be logged: they quote at most a short,
/// escaped prefix of the offending value.
///
/// ```
/// use boxhook_core::model::{ParseErrorKind, WebhookEvent};
///
/// let err = WebhookEvent::parse(br#"{"id":42,"trigger":"FILE.UPLOADED"}"#).unwrap_err();
/// assert_eq!(err.kind(), ParseErrorKind::InvalidField);
/// assert_eq!(err.field(), Some("id"));
/// assert_eq!(err.to_string(), "`id` is a number, expected a string");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    kind: ParseErrorKind,
    field: Option<&'static str>,
    message: String,
}

/// The longest prefix of a foreign string quoted in a message.
const QUOTE_LIMIT: usize = 40;

impl ParseError {
    /// The kind of failure.
    ///
    /// ```
    /// use boxhook_core::model::{Envelope, ParseErrorKind};
    ///
    /// let err = Envelope::parse(b"[]").unwrap_err();
    /// assert_eq!(err.kind(), ParseErrorKind::NotAnObject);
    /// ```
    #[must_use]
    pub fn kind(&self) -> ParseErrorKind {
        self.kind
    }

    /// The envelope field at fault (`"id"`, `"trigger"` or `"type"`), if any.
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let err = WebhookEvent::parse(br#"{"id":"1"}"#).unwrap_err();
    /// assert_eq!(err.field(), Some("trigger"));
    /// assert_eq!(err.to_string(), "`trigger` is missing");
    /// ```
    #[must_use]
    pub fn field(&self) -> Option<&'static str> {
        self.field
    }

    /// Whether the body is JSON of another kind than a `webhook_event`: a
    /// receiver may want to answer it differently from a malformed event.
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let err = WebhookEvent::parse(br#"{"type":"file","id":"1"}"#).unwrap_err();
    /// assert!(err.is_not_a_webhook_event());
    /// assert_eq!(err.to_string(), r#"`type` is "file", expected "webhook_event""#);
    /// ```
    #[must_use]
    pub fn is_not_a_webhook_event(&self) -> bool {
        self.kind == ParseErrorKind::NotAWebhookEvent
    }

    pub(crate) fn not_utf8(err: std::str::Utf8Error) -> Self {
        Self::new(
            ParseErrorKind::NotJson,
            None,
            format!(
                "body is not JSON: invalid UTF-8 at byte {}",
                err.valid_up_to()
            ),
        )
    }

    pub(crate) fn not_json(err: &serde_json::Error) -> Self {
        let message = err.to_string();
        // The scanners' own error: see `scan::duplicate_key`.
        if err.classify() == serde_json::error::Category::Data
            && message.starts_with(super::scan::DUPLICATE_KEY_PREFIX)
        {
            return Self::new(ParseErrorKind::DuplicateKey, None, message);
        }
        Self::new(
            ParseErrorKind::NotJson,
            None,
            format!("body is not JSON: {message}"),
        )
    }

    pub(crate) fn not_an_object(found: JsonKind) -> Self {
        Self::new(
            ParseErrorKind::NotAnObject,
            None,
            format!("body is {}, expected an object", found.describe()),
        )
    }

    fn new(kind: ParseErrorKind, field: Option<&'static str>, message: String) -> Self {
        Self {
            kind,
            field,
            message,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Quoted input is escaped already; this keeps any control character
        // that could slip into a message out of logs and terminals too.
        fmt::Display::fmt(&crate::Printable(&self.message), f)
    }
}

impl std::error::Error for ParseError {}

/// An envelope field as found in the body, before it is checked: a string
/// (borrowed or owned, `S`) or the JSON type it had instead.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Found<S> {
    Str(S),
    Other(JsonKind),
}

#[cfg(test)]
impl<'a> Found<&'a str> {
    pub(crate) fn of(value: &'a serde_json::Value) -> Self {
        match value.as_str() {
            Some(s) => Self::Str(s),
            None => Self::Other(JsonKind::of(value)),
        }
    }
}

impl<S> Found<S> {
    /// The string, if the field was one.
    pub(crate) fn into_str(self) -> Option<S> {
        match self {
            Self::Str(s) => Some(s),
            Self::Other(_) => None,
        }
    }
}

/// The envelope's required fields, checked the same way whether they were
/// read by [`super::Envelope`] or [`super::WebhookEvent`], so both agree on
/// every body. Returns `(id, trigger)`.
pub(crate) fn check_envelope<S: AsRef<str>>(
    event_type: Option<Found<S>>,
    id: Option<Found<S>>,
    trigger: Option<Found<S>>,
) -> Result<(S, S), ParseError> {
    // A missing `type` is tolerated (Box's own SDK test vector has none,
    // see "Known-answer vectors" in docs/PROTOCOL.md); a present one other than "webhook_event" is
    // some other
    // JSON document, not an event.
    match event_type {
        None => {}
        Some(Found::Str(s)) if s.as_ref() == "webhook_event" => {}
        Some(found) => {
            return Err(ParseError::new(
                ParseErrorKind::NotAWebhookEvent,
                Some("type"),
                format!("`type` is {}, expected \"webhook_event\"", quote(&found)),
            ))
        }
    }
    Ok((required("id", id)?, required("trigger", trigger)?))
}

fn required<S>(field: &'static str, found: Option<Found<S>>) -> Result<S, ParseError> {
    match found {
        Some(Found::Str(s)) => Ok(s),
        None => Err(ParseError::new(
            ParseErrorKind::MissingField,
            Some(field),
            format!("`{field}` is missing"),
        )),
        Some(Found::Other(kind)) => Err(ParseError::new(
            ParseErrorKind::InvalidField,
            Some(field),
            format!("`{field}` is {}, expected a string", kind.describe()),
        )),
    }
}

/// `"file"` for a string (escaped, at most [`QUOTE_LIMIT`] chars), else the kind.
fn quote<S: AsRef<str>>(found: &Found<S>) -> String {
    match found {
        Found::Str(s) => quote_str(s.as_ref()),
        Found::Other(kind) => kind.describe().to_owned(),
    }
}

/// `"file"`: a foreign string quoted and escaped, at most [`QUOTE_LIMIT`]
/// chars of it.
pub(crate) fn quote_str(s: &str) -> String {
    if s.chars().count() > QUOTE_LIMIT {
        let head: String = s.chars().take(QUOTE_LIMIT).collect();
        format!("{head:?}...")
    } else {
        format!("{s:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_field_and_what_was_found() {
        type Field = Option<Found<&'static str>>;
        let cases: &[(Field, Field, Field, &str)] = &[
            (None, None, Some(Found::Str("X")), "`id` is missing"),
            (None, Some(Found::Str("1")), None, "`trigger` is missing"),
            (
                None,
                Some(Found::Other(JsonKind::Number)),
                None,
                "`id` is a number, expected a string",
            ),
            (
                None,
                Some(Found::Str("1")),
                Some(Found::Other(JsonKind::Null)),
                "`trigger` is null, expected a string",
            ),
            (
                Some(Found::Other(JsonKind::Array)),
                None,
                None,
                "`type` is an array, expected \"webhook_event\"",
            ),
        ];
        for (event_type, id, trigger, want) in cases {
            let err = check_envelope(*event_type, *id, *trigger).expect_err(want);
            assert_eq!(err.to_string(), *want);
        }
    }

    #[test]
    fn long_foreign_strings_are_cut_and_escaped() {
        let long = format!("\"{}", "a".repeat(100));
        let err =
            check_envelope(Some(Found::Str(long.as_str())), None, None).expect_err("bad type");
        assert_eq!(
            err.to_string(),
            format!(
                "`type` is \"\\\"{}\"..., expected \"webhook_event\"",
                "a".repeat(39)
            )
        );
    }

    #[test]
    fn a_valid_envelope_yields_id_and_trigger() {
        let ok = check_envelope(
            Some(Found::Str("webhook_event")),
            Some(Found::Str("7")),
            Some(Found::Str("FILE.UPLOADED")),
        );
        assert_eq!(ok, Ok(("7", "FILE.UPLOADED")));
    }
}
