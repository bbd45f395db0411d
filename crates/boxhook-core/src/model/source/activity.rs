//! Sources that are activity on items rather than items: [`Comment`],
//! [`TaskAssignment`], [`MetadataInstance`], [`Collaboration`].
//!
//! Box publishes a payload only for comments; the others follow the shape of
//! the same objects in Box's API, and what they lack stays in `raw`
//! (Box leaves these payloads unspecified: see "Payload shapes" in
//! docs/PROTOCOL.md).

use chrono::{DateTime, FixedOffset};
#[cfg(test)]
use serde_json::Value;

#[cfg(test)]
use crate::model::json::Obj;
use crate::model::refs::{ItemRef, UserMini};
use crate::model::RawJson;

/// A comment source (`type: "comment"`, the `COMMENT.*` events).
///
/// ```
/// use boxhook_core::model::{Source, WebhookEvent};
///
/// let event = WebhookEvent::parse(br#"{
///     "id": "1", "trigger": "COMMENT.CREATED",
///     "source": {
///         "id": "4", "type": "comment", "is_reply_comment": false, "message": "Looks good",
///         "item": {"id": "5", "type": "file"}
///     }
/// }"#)?;
/// if let Some(Source::Comment(comment)) = event.source() {
///     assert_eq!(comment.message.as_deref(), Some("Looks good"));
///     assert_eq!(comment.item.as_ref().map(|i| i.id.as_str()), Some("5"));
/// }
/// # Ok::<(), boxhook_core::model::ParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Comment {
    /// The comment's id.
    pub id: String,
    /// The text of the comment.
    pub message: Option<String>,
    /// The text with `@mentions` in Box's tagged form.
    pub tagged_message: Option<String>,
    /// Whether the comment answers another comment.
    pub is_reply_comment: Option<bool>,
    /// The file (or comment) the comment is on.
    pub item: Option<ItemRef>,
    /// Who wrote the comment.
    pub created_by: Option<UserMini>,
    /// When the comment was written.
    pub created_at: Option<DateTime<FixedOffset>>,
    /// When the comment was last edited.
    pub modified_at: Option<DateTime<FixedOffset>>,
    /// The whole source object as sent.
    pub raw: RawJson,
}

impl Comment {
    #[cfg(test)]
    pub(crate) fn from_json(id: String, raw: &Value) -> Self {
        let o = Obj::new(raw);
        Self {
            id,
            message: o.string("message"),
            tagged_message: o.string("tagged_message"),
            is_reply_comment: o.bool("is_reply_comment"),
            item: o.with("item", ItemRef::from_json),
            created_by: o.with("created_by", UserMini::from_json),
            created_at: o.time("created_at"),
            modified_at: o.time("modified_at"),
            raw: RawJson::from_value(raw),
        }
    }
}

/// A task assignment source (`type: "task_assignment"`).
///
/// ```
/// use boxhook_core::model::{Source, WebhookEvent};
///
/// let event = WebhookEvent::parse(br#"{
///     "id": "1", "trigger": "TASK_ASSIGNMENT.UPDATED",
///     "source": {"id": "6", "type": "task_assignment", "resolution_state": "completed"}
/// }"#)?;
/// if let Some(Source::TaskAssignment(task)) = event.source() {
///     assert_eq!(task.resolution_state.as_deref(), Some("completed"));
/// }
/// # Ok::<(), boxhook_core::model::ParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TaskAssignment {
    /// The assignment's id.
    pub id: String,
    /// The file the task is on.
    pub item: Option<ItemRef>,
    /// Who the task is assigned to.
    pub assigned_to: Option<UserMini>,
    /// Who assigned it.
    pub assigned_by: Option<UserMini>,
    /// The assignee's message.
    pub message: Option<String>,
    /// `incomplete`, `completed`, `approved` or `rejected`.
    pub resolution_state: Option<String>,
    /// When the task was assigned.
    pub assigned_at: Option<DateTime<FixedOffset>>,
    /// When the assignee completed it.
    pub completed_at: Option<DateTime<FixedOffset>>,
    /// When the assignee was last reminded.
    pub reminded_at: Option<DateTime<FixedOffset>>,
    /// The whole source object as sent.
    pub raw: RawJson,
}

impl TaskAssignment {
    #[cfg(test)]
    pub(crate) fn from_json(id: String, raw: &Value) -> Self {
        let o = Obj::new(raw);
        Self {
            id,
            item: o.with("item", ItemRef::from_json),
            assigned_to: o.with("assigned_to", UserMini::from_json),
            assigned_by: o.with("assigned_by", UserMini::from_json),
            message: o.string("message"),
            resolution_state: o.string("resolution_state"),
            assigned_at: o.time("assigned_at"),
            completed_at: o.time("completed_at"),
            reminded_at: o.time("reminded_at"),
            raw: RawJson::from_value(raw),
        }
    }
}

/// A metadata instance source (`type: "metadata_instance"`).
///
/// No public payload exists for it, so only the `id` is typed; read the
/// template, scope and values from `raw`.
///
/// ```
/// use boxhook_core::model::{Source, WebhookEvent};
///
/// let event = WebhookEvent::parse(br#"{
///     "id": "1", "trigger": "METADATA_INSTANCE.CREATED",
///     "source": {"id": "m1", "type": "metadata_instance", "$template": "contract"}
/// }"#)?;
/// if let Some(Source::MetadataInstance(instance)) = event.source() {
///     assert_eq!(instance.raw["$template"], "contract");
/// }
/// # Ok::<(), boxhook_core::model::ParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct MetadataInstance {
    /// The instance's id.
    pub id: String,
    /// The whole source object as sent.
    pub raw: RawJson,
}

impl MetadataInstance {
    #[cfg(test)]
    pub(crate) fn from_json(id: String, raw: &Value) -> Self {
        Self {
            id,
            raw: RawJson::from_value(raw),
        }
    }
}

/// A collaboration source (`type: "collaboration"`): someone's access to a
/// file or folder.
///
/// ```
/// use boxhook_core::model::{Source, WebhookEvent};
///
/// let event = WebhookEvent::parse(br#"{
///     "id": "1", "trigger": "COLLABORATION.CREATED",
///     "source": {"id": "c1", "type": "collaboration", "role": "editor", "status": "pending"}
/// }"#)?;
/// if let Some(Source::Collaboration(collab)) = event.source() {
///     assert_eq!(collab.role.as_deref(), Some("editor"));
/// }
/// # Ok::<(), boxhook_core::model::ParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Collaboration {
    /// The collaboration's id.
    pub id: String,
    /// The role granted: `editor`, `viewer`, `co-owner`, ...
    pub role: Option<String>,
    /// `accepted`, `pending` or `rejected`.
    pub status: Option<String>,
    /// The file or folder collaborated on.
    pub item: Option<ItemRef>,
    /// The user or group granted access (`type` tells which).
    pub accessible_by: Option<ItemRef>,
    /// The address invited, for someone without a Box account yet.
    pub invite_email: Option<String>,
    /// Who created the collaboration.
    pub created_by: Option<UserMini>,
    /// When it was created.
    pub created_at: Option<DateTime<FixedOffset>>,
    /// When it was last changed.
    pub modified_at: Option<DateTime<FixedOffset>>,
    /// When the access expires.
    pub expires_at: Option<DateTime<FixedOffset>>,
    /// When the invitation was accepted.
    pub acknowledged_at: Option<DateTime<FixedOffset>>,
    /// The whole source object as sent.
    pub raw: RawJson,
}

impl Collaboration {
    #[cfg(test)]
    pub(crate) fn from_json(id: String, raw: &Value) -> Self {
        let o = Obj::new(raw);
        Self {
            id,
            role: o.string("role"),
            status: o.string("status"),
            item: o.with("item", ItemRef::from_json),
            accessible_by: o.with("accessible_by", ItemRef::from_json),
            invite_email: o.string("invite_email"),
            created_by: o.with("created_by", UserMini::from_json),
            created_at: o.time("created_at"),
            modified_at: o.time("modified_at"),
            expires_at: o.time("expires_at"),
            acknowledged_at: o.time("acknowledged_at"),
            raw: RawJson::from_value(raw),
        }
    }
}
