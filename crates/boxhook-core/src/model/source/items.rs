//! Items in a Box account: [`File`], [`Folder`], [`WebLink`], and the
//! [`ItemFields`] all three share.

use chrono::{DateTime, FixedOffset};
#[cfg(test)]
use serde_json::Value;

#[cfg(test)]
use crate::model::json::Obj;
use crate::model::refs::{FileVersion, FolderMini, SharedLink, UserMini};
use crate::model::RawJson;

/// The fields every item (file, folder, web link) has, read once for all
/// three: [`File::item`], [`Folder::item`] and [`WebLink::item`].
///
/// Only `id` is required; the rest is `None` when Box leaves it out, sends
/// `null`, or sends a value of another type (the raw JSON keeps it, see [the
/// leniency rule](crate::model#leniency)).
///
/// ```
/// use boxhook_core::model::WebhookEvent;
///
/// let event = WebhookEvent::parse(br#"{
///     "id": "1", "trigger": "FOLDER.RENAMED",
///     "source": {
///         "type": "folder", "id": "8", "name": "Invoices", "etag": "3",
///         "owned_by": {"type": "user", "id": "33", "login": "ann@example.com"},
///         "item_status": "active"
///     }
/// }"#)?;
/// let item = event.source().and_then(|s| s.item()).expect("an item");
/// assert_eq!(item.id, "8");
/// assert_eq!(item.name.as_deref(), Some("Invoices"));
/// assert_eq!(item.etag.as_deref(), Some("3"));
/// assert_eq!(item.owned_by.as_ref().map(|u| u.id.as_str()), Some("33"));
/// assert_eq!(item.item_status.as_deref(), Some("active"));
/// assert_eq!(item.trashed_at, None);
/// # Ok::<(), boxhook_core::model::ParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ItemFields {
    /// The item's id.
    pub id: String,
    /// The item's name (a file's with its extension).
    pub name: Option<String>,
    /// The item's description.
    pub description: Option<String>,
    /// The etag; changes with every change to the item.
    pub etag: Option<String>,
    /// The sequence id.
    pub sequence_id: Option<String>,
    /// The folder the item is in.
    pub parent: Option<FolderMini>,
    /// The folders from the root down to the parent (`path_collection.entries`).
    pub path_collection: Option<Vec<FolderMini>>,
    /// When the item was created in Box.
    pub created_at: Option<DateTime<FixedOffset>>,
    /// When the item was last changed in Box.
    pub modified_at: Option<DateTime<FixedOffset>>,
    /// When the item was trashed (`null` unless it is in the trash).
    pub trashed_at: Option<DateTime<FixedOffset>>,
    /// When the item will be purged from the trash.
    pub purged_at: Option<DateTime<FixedOffset>>,
    /// Who created the item.
    pub created_by: Option<UserMini>,
    /// Who last changed the item.
    pub modified_by: Option<UserMini>,
    /// Who owns the item.
    pub owned_by: Option<UserMini>,
    /// The shared link (`null` when there is none).
    pub shared_link: Option<SharedLink>,
    /// `active`, `trashed` or `deleted`.
    pub item_status: Option<String>,
}

impl ItemFields {
    #[cfg(test)]
    fn from_json(id: String, o: Obj<'_>) -> Self {
        Self {
            id,
            name: o.string("name"),
            description: o.string("description"),
            etag: o.string("etag"),
            sequence_id: o.string("sequence_id"),
            parent: o.with("parent", FolderMini::from_json),
            path_collection: o.with("path_collection", FolderMini::path),
            created_at: o.time("created_at"),
            modified_at: o.time("modified_at"),
            trashed_at: o.time("trashed_at"),
            purged_at: o.time("purged_at"),
            created_by: o.with("created_by", UserMini::from_json),
            modified_by: o.with("modified_by", UserMini::from_json),
            owned_by: o.with("owned_by", UserMini::from_json),
            shared_link: o.with("shared_link", SharedLink::from_json),
            item_status: o.string("item_status"),
        }
    }
}

/// A file source (`type: "file"`), as most `FILE.*` events send it.
///
/// `FILE.TRASHED` and `NO_ACTIVE_SESSION` send only `id` and `type`, so
/// everything else is optional (see "Payload shapes" in docs/PROTOCOL.md).
/// The fields every item has are in [`item`](File::item); the file's own
/// are here.
///
/// ```
/// use boxhook_core::model::{Source, WebhookEvent};
///
/// let event = WebhookEvent::parse(br#"{
///     "id": "1", "trigger": "FILE.UPLOADED",
///     "source": {"type": "file", "id": "5", "sha1": "ab12", "name": "Q1.pdf", "size": 629644}
/// }"#)?;
/// let Some(Source::File(file)) = event.source() else { panic!("a file") };
/// assert_eq!(file.item.id, "5");
/// assert_eq!(file.item.name.as_deref(), Some("Q1.pdf"));
/// assert_eq!(file.size, Some(629_644));
/// assert_eq!(file.sha1.as_deref(), Some("ab12"));
/// assert!(file.item.trashed_at.is_none());
/// # Ok::<(), boxhook_core::model::ParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct File {
    /// The fields every item has: id, name, parent, owner, timestamps, ...
    pub item: ItemFields,
    /// The size in bytes.
    pub size: Option<u64>,
    /// The SHA-1 of the current version's content.
    pub sha1: Option<String>,
    /// The current version.
    pub file_version: Option<FileVersion>,
    /// When the content was created, as the uploader reported it.
    pub content_created_at: Option<DateTime<FixedOffset>>,
    /// When the content was last modified, as the uploader reported it.
    pub content_modified_at: Option<DateTime<FixedOffset>>,
    /// The whole source object as sent.
    pub raw: RawJson,
}

impl File {
    #[cfg(test)]
    pub(crate) fn from_json(id: String, raw: &Value) -> Self {
        let o = Obj::new(raw);
        Self {
            item: ItemFields::from_json(id, o),
            size: o.u64("size"),
            sha1: o.string("sha1"),
            file_version: o.with("file_version", FileVersion::from_json),
            content_created_at: o.time("content_created_at"),
            content_modified_at: o.time("content_modified_at"),
            raw: RawJson::from_value(raw),
        }
    }
}

/// A folder source (`type: "folder"`). The fields every item has are in
/// [`item`](Folder::item); the folder's own are here.
///
/// ```
/// use boxhook_core::model::{Source, WebhookEvent};
///
/// let event = WebhookEvent::parse(br#"{
///     "id": "1", "trigger": "FOLDER.CREATED",
///     "source": {
///         "type": "folder", "id": "8", "name": "Invoices", "size": 2048,
///         "parent": {"type": "folder", "id": "0", "name": "All Files"}
///     }
/// }"#)?;
/// let Some(Source::Folder(folder)) = event.source() else { panic!("a folder") };
/// assert_eq!(folder.item.name.as_deref(), Some("Invoices"));
/// assert_eq!(folder.item.parent.as_ref().map(|p| p.id.as_str()), Some("0"));
/// assert_eq!(folder.size, Some(2048));
/// # Ok::<(), boxhook_core::model::ParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Folder {
    /// The fields every item has: id, name, parent, owner, timestamps, ...
    pub item: ItemFields,
    /// The size of everything in the folder, in bytes.
    pub size: Option<u64>,
    /// When the content was created.
    pub content_created_at: Option<DateTime<FixedOffset>>,
    /// When the content was last modified.
    pub content_modified_at: Option<DateTime<FixedOffset>>,
    /// The whole source object as sent.
    pub raw: RawJson,
}

impl Folder {
    #[cfg(test)]
    pub(crate) fn from_json(id: String, raw: &Value) -> Self {
        let o = Obj::new(raw);
        Self {
            item: ItemFields::from_json(id, o),
            size: o.u64("size"),
            content_created_at: o.time("content_created_at"),
            content_modified_at: o.time("content_modified_at"),
            raw: RawJson::from_value(raw),
        }
    }
}

/// A web link (bookmark) source (`type: "web_link"`). The fields every item
/// has are in [`item`](WebLink::item); the link's own are here.
///
/// ```
/// use boxhook_core::model::{Source, WebhookEvent};
///
/// let event = WebhookEvent::parse(br#"{
///     "id": "1", "trigger": "SHARED_LINK.CREATED",
///     "source": {
///         "type": "web_link", "id": "3", "url": "https:\/\/example.com\/", "name": "Example"
///     }
/// }"#)?;
/// let Some(Source::WebLink(link)) = event.source() else { panic!("a web link") };
/// assert_eq!(link.url.as_deref(), Some("https://example.com/"));
/// assert_eq!(link.item.name.as_deref(), Some("Example"));
/// # Ok::<(), boxhook_core::model::ParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct WebLink {
    /// The fields every item has: id, name, parent, owner, timestamps, ...
    pub item: ItemFields,
    /// The address it points to.
    pub url: Option<String>,
    /// The whole source object as sent.
    pub raw: RawJson,
}

impl WebLink {
    #[cfg(test)]
    pub(crate) fn from_json(id: String, raw: &Value) -> Self {
        let o = Obj::new(raw);
        Self {
            item: ItemFields::from_json(id, o),
            url: o.string("url"),
            raw: RawJson::from_value(raw),
        }
    }
}
