//! [`WebhookRef`]: the webhook an event was delivered for.

use chrono::{DateTime, FixedOffset};
#[cfg(test)]
use serde_json::Value;

#[cfg(test)]
use super::json::Obj;
use super::refs::{ItemRef, UserMini};
use super::trigger::Trigger;

/// The event's `webhook`: `{id, type:"webhook"}` in real deliveries; Box's
/// reference page shows a fuller object, whose fields are read when present
/// (see "Payload shapes" in docs/PROTOCOL.md).
///
/// ```
/// use boxhook_core::model::{Trigger, WebhookEvent};
///
/// let event = WebhookEvent::parse(br#"{
///     "id": "1", "trigger": "FILE.UPLOADED",
///     "webhook": {
///         "id": "w-9", "type": "webhook", "address": "https:\/\/example.com\/hooks",
///         "target": {"id": "123", "type": "folder"}, "triggers": ["FILE.UPLOADED"]
///     }
/// }"#)?;
/// let webhook = event.webhook().expect("sent");
/// assert_eq!(webhook.id, "w-9");
/// assert_eq!(webhook.address.as_deref(), Some("https://example.com/hooks"));
/// assert_eq!(webhook.triggers.as_deref(), Some(&[Trigger::FileUploaded][..]));
/// # Ok::<(), boxhook_core::model::ParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookRef {
    /// The webhook's id.
    pub id: String,
    /// The URL deliveries are sent to.
    pub address: Option<String>,
    /// The file or folder the webhook watches.
    pub target: Option<ItemRef>,
    /// The triggers the webhook was created for; `None` unless every entry
    /// is a string.
    pub triggers: Option<Vec<Trigger>>,
    /// Who created the webhook.
    pub created_by: Option<UserMini>,
    /// When the webhook was created.
    pub created_at: Option<DateTime<FixedOffset>>,
}

impl WebhookRef {
    #[cfg(test)]
    pub(crate) fn from_json(value: &Value) -> Option<Self> {
        let o = Obj::new(value);
        Some(Self {
            id: o.string("id")?,
            address: o.string("address"),
            target: o.with("target", ItemRef::from_json),
            triggers: o.de("triggers"),
            created_by: o.with("created_by", UserMini::from_json),
            created_at: o.time("created_at"),
        })
    }
}
