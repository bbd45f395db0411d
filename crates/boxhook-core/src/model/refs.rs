//! Small objects nested in events and sources: users, item references,
//! folder minis, file versions, shared links.
//!
//! Each requires its `id` (a string); without one the nested object reads as
//! `None` where it appears. Every other field is optional (see "Payload shapes" in
//! docs/PROTOCOL.md).

use chrono::{DateTime, FixedOffset};
use serde_json::Value;

#[cfg(test)]
use super::json::Obj;

/// A user mini: `{type:"user", id, name, login}` (`created_by`, `owned_by`, ...).
///
/// ```
/// use boxhook_core::model::WebhookEvent;
///
/// let event = WebhookEvent::parse(br#"{
///     "id": "1", "trigger": "FILE.UPLOADED",
///     "created_by": {"type": "user", "id": "33", "name": "Ann Lee", "login": "ann@example.com"}
/// }"#)?;
/// let user = event.created_by().expect("sent");
/// assert_eq!(user.id, "33");
/// assert_eq!(user.login.as_deref(), Some("ann@example.com"));
/// # Ok::<(), boxhook_core::model::ParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserMini {
    /// The user's id.
    pub id: String,
    /// The user's display name.
    pub name: Option<String>,
    /// The user's login (an email address).
    pub login: Option<String>,
}

impl UserMini {
    #[cfg(test)]
    pub(crate) fn from_json(value: &Value) -> Option<Self> {
        let o = Obj::new(value);
        Some(Self {
            id: o.string("id")?,
            name: o.string("name"),
            login: o.string("login"),
        })
    }
}

/// A reference to an item: `{id, type}` (a move's `before`/`after`, a
/// comment's `item`, a webhook's `target`).
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
/// let after = event.additional_info().after().expect("sent");
/// assert_eq!((after.id.as_str(), after.type_name.as_str()), ("20", "folder"));
/// # Ok::<(), boxhook_core::model::ParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ItemRef {
    /// The item's id.
    pub id: String,
    /// The item's `type` (`"file"`, `"folder"`, ...).
    pub type_name: String,
}

impl ItemRef {
    /// Reads a reference out of a tree (`additional_info` stays one).
    pub(crate) fn from_json(value: &Value) -> Option<Self> {
        Some(Self {
            id: value.get("id")?.as_str()?.to_owned(),
            type_name: value.get("type")?.as_str()?.to_owned(),
        })
    }
}

/// A folder mini: a `parent`, or an entry of a `path_collection`.
///
/// `etag` and `sequence_id` are `None` for the root "All Files" folder, where
/// Box sends `null`.
///
/// ```
/// use boxhook_core::model::{Source, WebhookEvent};
///
/// let event = WebhookEvent::parse(br#"{
///     "id": "1", "trigger": "FILE.UPLOADED",
///     "source": {
///         "id": "5", "type": "file",
///         "parent": {
///             "type": "folder", "id": "0", "sequence_id": null, "etag": null, "name": "All Files"
///         }
///     }
/// }"#)?;
/// let Some(Source::File(file)) = event.source() else { panic!("a file") };
/// let parent = file.item.parent.as_ref().expect("sent");
/// assert_eq!(parent.name.as_deref(), Some("All Files"));
/// assert_eq!(parent.etag, None);
/// # Ok::<(), boxhook_core::model::ParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FolderMini {
    /// The folder's id (`"0"` for the root).
    pub id: String,
    /// The folder's name.
    pub name: Option<String>,
    /// The folder's etag.
    pub etag: Option<String>,
    /// The folder's sequence id.
    pub sequence_id: Option<String>,
}

impl FolderMini {
    #[cfg(test)]
    pub(crate) fn from_json(value: &Value) -> Option<Self> {
        let o = Obj::new(value);
        Some(Self {
            id: o.string("id")?,
            name: o.string("name"),
            etag: o.string("etag"),
            sequence_id: o.string("sequence_id"),
        })
    }

    /// The `entries` of a `path_collection`; entries without an id are skipped.
    #[cfg(test)]
    pub(crate) fn path(value: &Value) -> Option<Vec<Self>> {
        let entries = value.get("entries")?.as_array()?;
        Some(entries.iter().filter_map(Self::from_json).collect())
    }
}

/// A file's current version: `{type:"file_version", id, sha1}`.
///
/// ```
/// use boxhook_core::model::{Source, WebhookEvent};
///
/// let event = WebhookEvent::parse(br#"{
///     "id": "1", "trigger": "FILE.UPLOADED",
///     "source": {
///         "id": "5", "type": "file",
///         "file_version": {"type": "file_version", "id": "77", "sha1": "ab12"}
///     }
/// }"#)?;
/// let Some(Source::File(file)) = event.source() else { panic!("a file") };
/// assert_eq!(file.file_version.as_ref().map(|v| v.id.as_str()), Some("77"));
/// # Ok::<(), boxhook_core::model::ParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileVersion {
    /// The version's id.
    pub id: String,
    /// The SHA-1 of this version's content.
    pub sha1: Option<String>,
}

impl FileVersion {
    #[cfg(test)]
    pub(crate) fn from_json(value: &Value) -> Option<Self> {
        let o = Obj::new(value);
        Some(Self {
            id: o.string("id")?,
            sha1: o.string("sha1"),
        })
    }
}

/// An item's shared link. Box sends `null` when there is none; the full
/// object (permissions, counts, ...) stays in the source's raw JSON.
///
/// ```
/// use boxhook_core::model::{Source, WebhookEvent};
///
/// let event = WebhookEvent::parse(br#"{
///     "id": "1", "trigger": "SHARED_LINK.CREATED",
///     "source": {
///         "id": "5", "type": "file",
///         "shared_link": {"url": "https:\/\/app.box.com\/s\/abc", "access": "company"}
///     }
/// }"#)?;
/// let Some(Source::File(file)) = event.source() else { panic!("a file") };
/// let link = file.item.shared_link.as_ref().expect("sent");
/// assert_eq!(link.url.as_deref(), Some("https://app.box.com/s/abc"));
/// # Ok::<(), boxhook_core::model::ParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SharedLink {
    /// The link itself.
    pub url: Option<String>,
    /// The direct download link, for files.
    pub download_url: Option<String>,
    /// The custom (vanity) link.
    pub vanity_url: Option<String>,
    /// Who the link was set up for: `open`, `company` or `collaborators`.
    pub access: Option<String>,
    /// Who can use the link after enterprise policy is applied.
    pub effective_access: Option<String>,
    /// What the link allows after policy, e.g. `can_download`.
    pub effective_permission: Option<String>,
    /// Whether the link asks for a password.
    pub is_password_enabled: Option<bool>,
    /// When the link expires.
    pub unshared_at: Option<DateTime<FixedOffset>>,
}

impl SharedLink {
    #[cfg(test)]
    pub(crate) fn from_json(value: &Value) -> Option<Self> {
        let o = Obj::new(value);
        value.is_object().then(|| Self {
            url: o.string("url"),
            download_url: o.string("download_url"),
            vanity_url: o.string("vanity_url"),
            access: o.string("access"),
            effective_access: o.string("effective_access"),
            effective_permission: o.string("effective_permission"),
            is_password_enabled: o.bool("is_password_enabled"),
            unshared_at: o.time("unshared_at"),
        })
    }
}
