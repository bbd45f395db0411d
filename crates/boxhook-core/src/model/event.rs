//! [`WebhookEvent`]: a whole `webhook_event`, typed, with its raw body.

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};

use super::additional_info::AdditionalInfo;
use super::de::EventFields;
use super::envelope::Envelope;
use super::error::{check_envelope, ParseError};
use super::json::JsonKind;
use super::refs::UserMini;
use super::scan::Shape;
use super::source::Source;
use super::trigger::Trigger;
use super::webhook::WebhookRef;

/// A parsed `webhook_event` (see "Payload shapes" in docs/PROTOCOL.md), with the body it came from.
///
/// Only `id` and `trigger` are required; every other part is optional and
/// read leniently (see [the leniency rule](crate::model#leniency)).
///
/// ```
/// use boxhook_core::model::{Source, Trigger, WebhookEvent};
///
/// let body = br#"{
///     "type": "webhook_event", "id": "e-1", "created_at": "2024-05-14T09:12:31-07:00",
///     "trigger": "FILE.RENAMED", "webhook": {"id": "w-9", "type": "webhook"},
///     "created_by": {"type": "user", "id": "33", "name": "Ann Lee", "login": "ann@example.com"},
///     "source": {"id": "5", "type": "file", "name": "Q1 final.pdf"},
///     "additional_info": {"old_name": "Q1 draft.pdf"}
/// }"#;
/// let event = WebhookEvent::parse(body)?;
/// if let (Trigger::FileRenamed, Some(Source::File(file))) = (event.trigger(), event.source()) {
///     let old = event.additional_info().old_name().unwrap_or("?");
///     println!("{old} -> {}", file.item.name.as_deref().unwrap_or("?"));
/// }
/// assert_eq!(event.raw().as_bytes(), body);
/// # Ok::<(), boxhook_core::model::ParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookEvent {
    id: String,
    trigger: Trigger,
    created_at: Option<DateTime<FixedOffset>>,
    webhook: Option<WebhookRef>,
    created_by: Option<UserMini>,
    source: Option<Source>,
    additional_info: AdditionalInfo,
    /// The body; shared with the sources' [`RawJson`](super::RawJson).
    raw: Arc<str>,
}

impl WebhookEvent {
    /// Parses a body, keeping a copy of it byte for byte.
    ///
    /// Fails only when the body is not JSON, not an object, has a `type`
    /// other than `"webhook_event"`, or lacks a string `id` or `trigger`.
    ///
    /// ```
    /// use boxhook_core::model::{ParseErrorKind, WebhookEvent};
    ///
    /// let event = WebhookEvent::parse(br#"{"id":"1","trigger":"FILE.UPLOADED"}"#)?;
    /// assert!(event.source().is_none());
    ///
    /// let err = WebhookEvent::parse(b"{\"id\":").unwrap_err();
    /// assert_eq!(err.kind(), ParseErrorKind::NotJson);
    /// assert_eq!(
    ///     err.to_string(),
    ///     "body is not JSON: EOF while parsing a value at line 1 column 6",
    /// );
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    pub fn parse(body: &[u8]) -> Result<Self, ParseError> {
        let text = std::str::from_utf8(body).map_err(ParseError::not_utf8)?;
        match Self::read(text) {
            Ok(event) => event,
            // The scan of the whole body names the first fault and where it
            // is, as every parser of this crate does.
            Err(error) => Err(Envelope::parse(body)
                .err()
                .unwrap_or_else(|| ParseError::not_json(&error))),
        }
    }

    /// One pass over `text`: the typed fields as they come (see `de`). `Err` for any fault of
    /// the JSON; `Ok(Err)` for a body that is JSON but not an event.
    fn read(text: &str) -> Result<Result<Self, ParseError>, serde_json::Error> {
        let fields = match serde_json::from_str::<Shape<'_, EventFields<'_>>>(text)? {
            Shape::Object(fields) => fields,
            Shape::Str(_) => return Ok(Err(ParseError::not_an_object(JsonKind::String))),
            Shape::Other(kind) => return Ok(Err(ParseError::not_an_object(kind))),
        };
        let (id, trigger) = match check_envelope(fields.event_type, fields.id, fields.trigger) {
            Ok(found) => found,
            Err(error) => return Ok(Err(error)),
        };
        let trigger = match trigger {
            Cow::Borrowed(name) => Trigger::from(name),
            Cow::Owned(name) => Trigger::from(name),
        };
        let raw: Arc<str> = text.into();
        Ok(Ok(Self {
            id: id.into_owned(),
            trigger,
            created_at: fields.created_at,
            webhook: fields.webhook,
            created_by: fields.created_by,
            source: fields.source.and_then(|source| source.build(&raw)),
            additional_info: AdditionalInfo::from_map(fields.additional_info),
            raw,
        }))
    }

    /// The parser this crate had before `de`: a strict `Value` tree, then
    /// the model read out of it. The tests hold the new parser to it.
    #[cfg(test)]
    pub(crate) fn parse_reference(body: &[u8]) -> Result<Self, ParseError> {
        use super::error::Found;
        use super::json::Obj;
        use super::scan::Strict;
        use serde_json::Value;

        let text = std::str::from_utf8(body).map_err(ParseError::not_utf8)?;
        let Strict(value) = serde_json::from_str(text).map_err(|err| ParseError::not_json(&err))?;
        let mut map = match value {
            Value::Object(map) => map,
            other => return Err(ParseError::not_an_object(JsonKind::of(&other))),
        };
        let found = |key| map.get(key).map(Found::of);
        let (id, trigger) = check_envelope(found("type"), found("id"), found("trigger"))?;
        let (id, trigger) = (id.to_owned(), Trigger::from(trigger));
        let o = Obj::of_map(&map);
        let created_at = o.time("created_at");
        let webhook = o.with("webhook", WebhookRef::from_json);
        let created_by = o.with("created_by", UserMini::from_json);
        Ok(Self {
            id,
            trigger,
            created_at,
            webhook,
            created_by,
            source: map.get("source").and_then(Source::from_json),
            additional_info: AdditionalInfo::from_json(map.remove("additional_info")),
            raw: text.into(),
        })
    }

    /// The event id: stable across retries, unlike the delivery id header;
    /// deduplicate on it together with the webhook id (see "Retries and deduplication" in
    /// docs/PROTOCOL.md).
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let event = WebhookEvent::parse(br#"{"id":"e-1","trigger":"FILE.UPLOADED"}"#)?;
    /// assert_eq!(event.id(), "e-1");
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The trigger.
    ///
    /// ```
    /// use boxhook_core::model::{Trigger, WebhookEvent};
    ///
    /// let event = WebhookEvent::parse(br#"{"id":"e-1","trigger":"FILE.ARCHIVED"}"#)?;
    /// assert_eq!(event.trigger(), &Trigger::Other("FILE.ARCHIVED".to_owned()));
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn trigger(&self) -> &Trigger {
        &self.trigger
    }

    /// When the event happened, with the offset Box sent; `None` if absent or
    /// not RFC 3339. Never use it for freshness: it is not the send time
    /// (see "Freshness" in docs/PROTOCOL.md).
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let event = WebhookEvent::parse(br#"{
    ///     "id": "1", "trigger": "X", "created_at": "2024-05-14T09:12:31-07:00"
    /// }"#)?;
    /// let at = event.created_at().expect("sent");
    /// assert_eq!(at.offset().local_minus_utc(), -7 * 3600);
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn created_at(&self) -> Option<DateTime<FixedOffset>> {
        self.created_at
    }

    /// The webhook, when `webhook` is an object with a string `id`.
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let event = WebhookEvent::parse(br#"{
    ///     "id": "1", "trigger": "X", "webhook": {"id": "w-9", "type": "webhook"}
    /// }"#)?;
    /// assert_eq!(event.webhook().map(|w| w.id.as_str()), Some("w-9"));
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn webhook(&self) -> Option<&WebhookRef> {
        self.webhook.as_ref()
    }

    /// The user whose action fired the event.
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let event = WebhookEvent::parse(br#"{
    ///     "id": "1", "trigger": "X", "created_by": {"type": "user", "id": "33"}
    /// }"#)?;
    /// assert_eq!(event.created_by().map(|u| u.id.as_str()), Some("33"));
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn created_by(&self) -> Option<&UserMini> {
        self.created_by.as_ref()
    }

    /// The item the event is about; `None` when `source` is absent, or is not
    /// an object with a string `id` and a string `type` (then it is still in
    /// [`WebhookEvent::raw`]).
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let event = WebhookEvent::parse(br#"{
    ///     "id": "1", "trigger": "X", "source": {"id": 5, "type": "file"}
    /// }"#)?;
    /// assert!(event.source().is_none());
    /// assert!(event.raw().contains(r#""id": 5"#));
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn source(&self) -> Option<&Source> {
        self.source.as_ref()
    }

    /// The trigger-specific extras; empty when Box sent `[]`.
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let event = WebhookEvent::parse(br#"{
    ///     "id": "1", "trigger": "FILE.UPLOADED", "additional_info": []
    /// }"#)?;
    /// assert!(event.additional_info().is_empty());
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn additional_info(&self) -> &AdditionalInfo {
        &self.additional_info
    }

    /// The body exactly as received: every byte Box sent, including what the
    /// typed view leaves out or could not read.
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let body = br#"{"id":"1","trigger":"X","name":"caf\u00e9 \/ bar"}"#;
    /// assert_eq!(WebhookEvent::parse(body)?.raw().as_bytes(), body);
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The routing data of this event, as [`Envelope::parse`] reads it.
    ///
    /// ```
    /// use boxhook_core::model::{Envelope, WebhookEvent};
    ///
    /// let body = br#"{"id":"1","trigger":"FILE.TRASHED","source":{"id":"5","type":"file"}}"#;
    /// assert_eq!(WebhookEvent::parse(body)?.envelope(), Envelope::parse(body)?);
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn envelope(&self) -> Envelope<'_> {
        Envelope::from_parts(
            &self.id,
            &self.trigger,
            self.webhook.as_ref().map(|w| w.id.as_str()),
            self.source.as_ref().map(|s| (s.type_name(), s.id())),
        )
    }

    /// Takes the source out, e.g. to hand it to a task.
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let event = WebhookEvent::parse(br#"{
    ///     "id": "1", "trigger": "X", "source": {"id": "5", "type": "file"}
    /// }"#)?;
    /// assert_eq!(event.into_source().map(|s| s.id().to_owned()), Some("5".to_owned()));
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn into_source(self) -> Option<Source> {
        self.source
    }
}

impl FromStr for WebhookEvent {
    type Err = ParseError;

    fn from_str(body: &str) -> Result<Self, Self::Err> {
        Self::parse(body.as_bytes())
    }
}
