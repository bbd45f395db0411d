//! [`Envelope`]: the routing data of an event, read without building it.

use std::borrow::Cow;

use super::error::{check_envelope, ParseError};
use super::json::JsonKind;
use super::scan::{Fields, Shape};
use super::trigger::Trigger;

/// What a router needs from a body: `id`, `trigger`, `webhook.id` and the
/// source's `type` and `id`, read without building the typed event.
///
/// Strings borrow from the body unless they contain escapes. Everything else
/// is skipped, yet checked: `Envelope::parse` accepts exactly the bodies
/// [`WebhookEvent::parse`](super::WebhookEvent::parse) accepts, with the same
/// errors, and reads the same values. That includes refusing a key repeated
/// within any object ([`ParseErrorKind::DuplicateKey`](super::ParseErrorKind::DuplicateKey));
/// the check allocates nothing for objects of up to 32 keys without escapes.
///
/// ```
/// use boxhook_core::model::{Envelope, Trigger};
///
/// let body = br#"{
///     "type": "webhook_event", "id": "e-1", "trigger": "FILE.UPLOADED",
///     "webhook": {"id": "w-9", "type": "webhook"},
///     "source": {"id": "5", "type": "file", "name": "a.txt"}
/// }"#;
/// let envelope = Envelope::parse(body)?;
/// assert_eq!(envelope.trigger(), &Trigger::FileUploaded);
/// assert_eq!((envelope.id(), envelope.webhook_id()), ("e-1", Some("w-9")));
/// assert_eq!((envelope.source_type(), envelope.source_id()), (Some("file"), Some("5")));
/// # Ok::<(), boxhook_core::model::ParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    id: Cow<'a, str>,
    trigger: Trigger,
    webhook_id: Option<Cow<'a, str>>,
    /// `(type, id)`: both strings, or no source at all.
    source: Option<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Envelope<'a> {
    /// Reads the envelope of `body`.
    ///
    /// The errors are those of [`WebhookEvent::parse`](super::WebhookEvent::parse).
    ///
    /// ```
    /// use boxhook_core::model::Envelope;
    ///
    /// let err = Envelope::parse(br#"{"id":"1","trigger":7}"#).unwrap_err();
    /// assert_eq!(err.to_string(), "`trigger` is a number, expected a string");
    /// ```
    pub fn parse(body: &'a [u8]) -> Result<Self, ParseError> {
        let text = std::str::from_utf8(body).map_err(ParseError::not_utf8)?;
        let top: Shape<'a, Fields<'a>> =
            serde_json::from_str(text).map_err(|err| ParseError::not_json(&err))?;
        let fields = match top {
            Shape::Object(fields) => fields,
            Shape::Str(_) => return Err(ParseError::not_an_object(JsonKind::String)),
            Shape::Other(kind) => return Err(ParseError::not_an_object(kind)),
        };
        let (id, trigger) = check_envelope(fields.event_type, fields.id, fields.trigger)?;
        let trigger = match trigger {
            Cow::Borrowed(name) => Trigger::from(name),
            Cow::Owned(name) => Trigger::from(name),
        };
        let webhook_id = fields.webhook.and_then(|w| w.id?.into_str());
        let source = fields
            .source
            .and_then(|s| Some((s.type_name?.into_str()?, s.id?.into_str()?)));
        Ok(Self {
            id,
            trigger,
            webhook_id,
            source,
        })
    }

    pub(crate) fn from_parts(
        id: &'a str,
        trigger: &Trigger,
        webhook_id: Option<&'a str>,
        source: Option<(&'a str, &'a str)>,
    ) -> Self {
        Self {
            id: Cow::Borrowed(id),
            trigger: trigger.clone(),
            webhook_id: webhook_id.map(Cow::Borrowed),
            source: source.map(|(t, i)| (Cow::Borrowed(t), Cow::Borrowed(i))),
        }
    }

    /// The event id: stable across retries, the key to deduplicate on
    /// together with [`Envelope::webhook_id`] (see "Retries and deduplication" in
    /// docs/PROTOCOL.md).
    ///
    /// ```
    /// use boxhook_core::model::Envelope;
    ///
    /// let envelope = Envelope::parse(br#"{"id":"e-1","trigger":"FILE.UPLOADED"}"#)?;
    /// assert_eq!(envelope.id(), "e-1");
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The trigger.
    ///
    /// ```
    /// use boxhook_core::model::{Envelope, TriggerFamily};
    ///
    /// let envelope = Envelope::parse(br#"{"id":"e-1","trigger":"FOLDER.MOVED"}"#)?;
    /// assert_eq!(envelope.trigger().family(), TriggerFamily::Folder);
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn trigger(&self) -> &Trigger {
        &self.trigger
    }

    /// `webhook.id`, when `webhook` is an object with a string `id`.
    ///
    /// ```
    /// use boxhook_core::model::Envelope;
    ///
    /// let envelope = Envelope::parse(br#"{"id":"e-1","trigger":"X","webhook":{"id":42}}"#)?;
    /// assert_eq!(envelope.webhook_id(), None);
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn webhook_id(&self) -> Option<&str> {
        self.webhook_id.as_deref()
    }

    /// `source.type`, when the source has a string `type` and a string `id`
    /// (the rule that makes [`WebhookEvent::source`](super::WebhookEvent::source) `Some`).
    ///
    /// ```
    /// use boxhook_core::model::Envelope;
    ///
    /// let envelope = Envelope::parse(br#"{
    ///     "id": "e-1", "trigger": "NO_ACTIVE_SESSION", "source": {"id": "5", "type": "folder"}
    /// }"#)?;
    /// assert_eq!(envelope.source_type(), Some("folder"));
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn source_type(&self) -> Option<&str> {
        self.source.as_ref().map(|(type_name, _)| &**type_name)
    }

    /// `source.id`, under the same rule as [`Envelope::source_type`].
    ///
    /// ```
    /// use boxhook_core::model::Envelope;
    ///
    /// let envelope = Envelope::parse(br#"{
    ///     "id": "e-1", "trigger": "FILE.TRASHED", "source": {"id": "5", "type": "file"}
    /// }"#)?;
    /// assert_eq!(envelope.source_id(), Some("5"));
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn source_id(&self) -> Option<&str> {
        self.source.as_ref().map(|(_, id)| &**id)
    }

    /// Copies what still borrows from the body, to keep the envelope longer.
    ///
    /// ```
    /// use boxhook_core::model::Envelope;
    ///
    /// let envelope: Envelope<'static> = {
    ///     let body = br#"{"id":"e-1","trigger":"FILE.UPLOADED"}"#.to_vec();
    ///     Envelope::parse(&body)?.into_owned()
    /// };
    /// assert_eq!(envelope.id(), "e-1");
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn into_owned(self) -> Envelope<'static> {
        let owned = |s: Cow<'_, str>| Cow::Owned(s.into_owned());
        Envelope {
            id: owned(self.id),
            trigger: self.trigger,
            webhook_id: self.webhook_id.map(owned),
            source: self.source.map(|(t, i)| (owned(t), owned(i))),
        }
    }
}
