//! [`AdditionalInfo`]: the trigger-specific extras, `[]` when there are none
//! (see "Payload shapes" in docs/PROTOCOL.md).

use serde_json::{Map, Value};

use super::refs::ItemRef;

/// The event's `additional_info`, with typed accessors for the shapes Box
/// documents and the raw map for everything else.
///
/// Box sends an empty array `[]` when there is nothing; `[]`,
/// `{}`, `null` and an absent field all read as empty. Any other non-object
/// value also reads as empty here and stays in [`WebhookEvent::raw`].
///
/// [`WebhookEvent::raw`]: super::WebhookEvent::raw
///
/// ```
/// use boxhook_core::model::WebhookEvent;
///
/// let event = WebhookEvent::parse(br#"{
///     "id": "1", "trigger": "FILE.RENAMED", "additional_info": {"old_name": "draft.docx"}
/// }"#)?;
/// assert_eq!(event.additional_info().old_name(), Some("draft.docx"));
///
/// let event = WebhookEvent::parse(br#"{
///     "id": "2", "trigger": "FILE.UPLOADED", "additional_info": []
/// }"#)?;
/// assert!(event.additional_info().is_empty());
/// # Ok::<(), boxhook_core::model::ParseError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AdditionalInfo {
    map: Map<String, Value>,
}

impl AdditionalInfo {
    pub(crate) fn from_map(map: Option<Map<String, Value>>) -> Self {
        Self {
            map: map.unwrap_or_default(),
        }
    }

    #[cfg(test)]
    pub(crate) fn from_json(value: Option<Value>) -> Self {
        match value {
            Some(Value::Object(map)) => Self { map },
            _ => Self::default(),
        }
    }

    /// Whether there is nothing (Box sent `[]`, `{}`, or no field).
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let event = WebhookEvent::parse(br#"{
    ///     "id": "1", "trigger": "FILE.UPLOADED", "additional_info": {}
    /// }"#)?;
    /// assert!(event.additional_info().is_empty());
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The whole object as sent (empty for `[]`).
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let event = WebhookEvent::parse(br#"{
    ///     "id": "1", "trigger": "FILE.COPIED", "additional_info": {"copied_from": "42"}
    /// }"#)?;
    /// assert_eq!(event.additional_info().raw()["copied_from"], "42");
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn raw(&self) -> &Map<String, Value> {
        &self.map
    }

    /// One field of the object, as sent.
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let event = WebhookEvent::parse(br#"{
    ///     "id": "1", "trigger": "X.Y", "additional_info": {"n": 3}
    /// }"#)?;
    /// assert_eq!(event.additional_info().get("n").and_then(|n| n.as_u64()), Some(3));
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key)
    }

    /// The name before a rename (`FILE.RENAMED`, `FOLDER.RENAMED`).
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let event = WebhookEvent::parse(br#"{
    ///     "id": "1", "trigger": "FOLDER.RENAMED", "additional_info": {"old_name": "Drafts"}
    /// }"#)?;
    /// assert_eq!(event.additional_info().old_name(), Some("Drafts"));
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn old_name(&self) -> Option<&str> {
        self.get("old_name")?.as_str()
    }

    /// Where a moved item was (`FOLDER.MOVED`): the old parent.
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let event = WebhookEvent::parse(br#"{
    ///     "id": "1", "trigger": "FOLDER.MOVED",
    ///     "additional_info": {
    ///         "before": {"id": "10", "type": "folder"}, "after": {"id": "20", "type": "folder"}
    ///     }
    /// }"#)?;
    /// assert_eq!(event.additional_info().before().map(|b| b.id), Some("10".to_owned()));
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn before(&self) -> Option<ItemRef> {
        ItemRef::from_json(self.get("before")?)
    }

    /// Where a moved item is now (`FOLDER.MOVED`): the new parent.
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let event = WebhookEvent::parse(br#"{
    ///     "id": "1", "trigger": "FOLDER.MOVED",
    ///     "additional_info": {
    ///         "before": {"id": "10", "type": "folder"}, "after": {"id": "20", "type": "folder"}
    ///     }
    /// }"#)?;
    /// assert_eq!(event.additional_info().after().map(|a| a.id), Some("20".to_owned()));
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn after(&self) -> Option<ItemRef> {
        ItemRef::from_json(self.get("after")?)
    }

    /// The Box Sign request behind a `SIGN_REQUEST.*` event.
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let event = WebhookEvent::parse(br#"{
    ///     "id": "1", "trigger": "SIGN_REQUEST.COMPLETED",
    ///     "additional_info": {
    ///         "sign_request_id": "sr-1", "signer_emails": ["a@example.com"],
    ///         "external_id": "deal-7"
    ///     }
    /// }"#)?;
    /// assert_eq!(event.additional_info().sign_request_id(), Some("sr-1"));
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn sign_request_id(&self) -> Option<&str> {
        self.get("sign_request_id")?.as_str()
    }

    /// The signers' addresses of a `SIGN_REQUEST.*` event, in Box's order;
    /// empty when absent. Entries that are not strings are skipped.
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let event = WebhookEvent::parse(br#"{
    ///     "id": "1", "trigger": "SIGN_REQUEST.COMPLETED",
    ///     "additional_info": {"signer_emails": ["a@example.com", "b@example.com"]}
    /// }"#)?;
    /// assert_eq!(event.additional_info().signer_emails(), ["a@example.com", "b@example.com"]);
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn signer_emails(&self) -> Vec<&str> {
        self.get("signer_emails")
            .and_then(Value::as_array)
            .map(|emails| emails.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// The requester's own id for a sign request (`external_id`).
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let event = WebhookEvent::parse(br#"{
    ///     "id": "1", "trigger": "SIGN_REQUEST.DECLINED",
    ///     "additional_info": {"external_id": "deal-7"}
    /// }"#)?;
    /// assert_eq!(event.additional_info().external_id(), Some("deal-7"));
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn external_id(&self) -> Option<&str> {
        self.get("external_id")?.as_str()
    }

    /// Why a webhook was deleted (see "`WEBHOOK.DELETED` and `NO_ACTIVE_SESSION`"
    /// in docs/PROTOCOL.md).
    ///
    /// ```
    /// use boxhook_core::model::{DeletionReason, WebhookEvent};
    ///
    /// let event = WebhookEvent::parse(br#"{
    ///     "id": "1", "trigger": "WEBHOOK.DELETED", "additional_info": {"reason": "auto_cleanup"}
    /// }"#)?;
    /// assert_eq!(event.additional_info().deletion_reason(), Some(DeletionReason::AutoCleanup));
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn deletion_reason(&self) -> Option<DeletionReason> {
        let reason = self.get("reason")?.as_str()?;
        Some(match reason {
            "auto_cleanup" => DeletionReason::AutoCleanup,
            other => DeletionReason::Other(other.to_owned()),
        })
    }

    /// Takes the raw map out.
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let event = WebhookEvent::parse(br#"{
    ///     "id": "1", "trigger": "X.Y", "additional_info": {"k": true}
    /// }"#)?;
    /// let map = event.additional_info().clone().into_raw();
    /// assert_eq!(map.len(), 1);
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn into_raw(self) -> Map<String, Value> {
        self.map
    }
}

/// Why Box deleted a webhook: `additional_info.reason` of `WEBHOOK.DELETED`.
///
/// Only `auto_cleanup` is documented; any other reason is
/// kept as sent.
///
/// ```
/// use boxhook_core::model::DeletionReason;
///
/// let reason = DeletionReason::Other("app_deleted".to_owned());
/// let alert = match &reason {
///     DeletionReason::AutoCleanup => "no successful delivery for 30 days",
///     DeletionReason::Other(why) => why.as_str(),
/// };
/// assert_eq!(alert, "app_deleted");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DeletionReason {
    /// `auto_cleanup`: Box removed a webhook whose deliveries kept failing or
    /// whose app or tokens were deleted.
    AutoCleanup,
    /// Any other reason, spelled as sent.
    Other(String),
}

impl DeletionReason {
    /// The reason as Box spells it.
    ///
    /// ```
    /// use boxhook_core::model::DeletionReason;
    ///
    /// assert_eq!(DeletionReason::AutoCleanup.as_str(), "auto_cleanup");
    /// ```
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::AutoCleanup => "auto_cleanup",
            Self::Other(reason) => reason,
        }
    }
}
