//! Items in a Box account: [`File`], [`Folder`], [`WebLink`].

use chrono::{DateTime, FixedOffset};
use serde_json::Value;

use crate::model::json::Obj;
use crate::model::refs::{FileVersion, FolderMini, SharedLink, UserMini};

/// A file source (`type: "file"`), as most `FILE.*` events send it.
///
/// `FILE.TRASHED` and `NO_ACTIVE_SESSION` send only `id` and `type`, so
/// everything else is optional (see "Payload shapes" in docs/PROTOCOL.md).
///
/// ```
/// use boxhook_core::model::{Source, WebhookEvent};
///
/// let event = WebhookEvent::parse(br#"{
///     "id": "1", "trigger": "FILE.UPLOADED",
///     "source": {"type": "file", "id": "5", "sha1": "ab12", "name": "Q1.pdf", "size": 629644}
/// }"#)?;
/// if let Some(Source::File(file)) = event.source() {
///     assert_eq!(file.name.as_deref(), Some("Q1.pdf"));
///     assert_eq!(file.size, Some(629_644));
///     assert!(file.trashed_at.is_none());
/// }
/// # Ok::<(), boxhook_core::model::ParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct File {
    /// The file's id.
    pub id: String,
    /// The file's name, with its extension.
    pub name: Option<String>,
    /// The file's description.
    pub description: Option<String>,
    /// The size in bytes.
    pub size: Option<u64>,
    /// The SHA-1 of the current version's content.
    pub sha1: Option<String>,
    /// The etag; changes with every change to the file.
    pub etag: Option<String>,
    /// The sequence id.
    pub sequence_id: Option<String>,
    /// The current version.
    pub file_version: Option<FileVersion>,
    /// The folder the file is in.
    pub parent: Option<FolderMini>,
    /// The folders from the root down to the parent (`path_collection.entries`).
    pub path_collection: Option<Vec<FolderMini>>,
    /// When the file was created in Box.
    pub created_at: Option<DateTime<FixedOffset>>,
    /// When the file was last changed in Box.
    pub modified_at: Option<DateTime<FixedOffset>>,
    /// When the content was created, as the uploader reported it.
    pub content_created_at: Option<DateTime<FixedOffset>>,
    /// When the content was last modified, as the uploader reported it.
    pub content_modified_at: Option<DateTime<FixedOffset>>,
    /// When the file was trashed (`null` unless it is in the trash).
    pub trashed_at: Option<DateTime<FixedOffset>>,
    /// When the file will be purged from the trash.
    pub purged_at: Option<DateTime<FixedOffset>>,
    /// Who created the file.
    pub created_by: Option<UserMini>,
    /// Who last changed the file.
    pub modified_by: Option<UserMini>,
    /// Who owns the file.
    pub owned_by: Option<UserMini>,
    /// The shared link (`null` when there is none).
    pub shared_link: Option<SharedLink>,
    /// `active`, `trashed` or `deleted`.
    pub item_status: Option<String>,
    /// The whole source object as sent.
    pub raw: Value,
}

impl File {
    pub(crate) fn from_json(id: String, raw: Value) -> Self {
        let o = Obj::new(&raw);
        Self {
            id,
            name: o.string("name"),
            description: o.string("description"),
            size: o.u64("size"),
            sha1: o.string("sha1"),
            etag: o.string("etag"),
            sequence_id: o.string("sequence_id"),
            file_version: o.with("file_version", FileVersion::from_json),
            parent: o.with("parent", FolderMini::from_json),
            path_collection: o.with("path_collection", FolderMini::path),
            created_at: o.time("created_at"),
            modified_at: o.time("modified_at"),
            content_created_at: o.time("content_created_at"),
            content_modified_at: o.time("content_modified_at"),
            trashed_at: o.time("trashed_at"),
            purged_at: o.time("purged_at"),
            created_by: o.with("created_by", UserMini::from_json),
            modified_by: o.with("modified_by", UserMini::from_json),
            owned_by: o.with("owned_by", UserMini::from_json),
            shared_link: o.with("shared_link", SharedLink::from_json),
            item_status: o.string("item_status"),
            raw,
        }
    }
}

/// A folder source (`type: "folder"`).
///
/// ```
/// use boxhook_core::model::{Source, WebhookEvent};
///
/// let event = WebhookEvent::parse(br#"{
///     "id": "1", "trigger": "FOLDER.CREATED",
///     "source": {
///         "type": "folder", "id": "8", "name": "Invoices",
///         "parent": {"type": "folder", "id": "0", "name": "All Files"}
///     }
/// }"#)?;
/// if let Some(Source::Folder(folder)) = event.source() {
///     assert_eq!(folder.name.as_deref(), Some("Invoices"));
///     assert_eq!(folder.parent.as_ref().map(|p| p.id.as_str()), Some("0"));
/// }
/// # Ok::<(), boxhook_core::model::ParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Folder {
    /// The folder's id.
    pub id: String,
    /// The folder's name.
    pub name: Option<String>,
    /// The folder's description.
    pub description: Option<String>,
    /// The size of everything in the folder, in bytes.
    pub size: Option<u64>,
    /// The etag.
    pub etag: Option<String>,
    /// The sequence id.
    pub sequence_id: Option<String>,
    /// The folder this folder is in.
    pub parent: Option<FolderMini>,
    /// The folders from the root down to the parent (`path_collection.entries`).
    pub path_collection: Option<Vec<FolderMini>>,
    /// When the folder was created in Box.
    pub created_at: Option<DateTime<FixedOffset>>,
    /// When the folder was last changed in Box.
    pub modified_at: Option<DateTime<FixedOffset>>,
    /// When the content was created.
    pub content_created_at: Option<DateTime<FixedOffset>>,
    /// When the content was last modified.
    pub content_modified_at: Option<DateTime<FixedOffset>>,
    /// When the folder was trashed.
    pub trashed_at: Option<DateTime<FixedOffset>>,
    /// When the folder will be purged from the trash.
    pub purged_at: Option<DateTime<FixedOffset>>,
    /// Who created the folder.
    pub created_by: Option<UserMini>,
    /// Who last changed the folder.
    pub modified_by: Option<UserMini>,
    /// Who owns the folder.
    pub owned_by: Option<UserMini>,
    /// The shared link (`null` when there is none).
    pub shared_link: Option<SharedLink>,
    /// `active`, `trashed` or `deleted`.
    pub item_status: Option<String>,
    /// The whole source object as sent.
    pub raw: Value,
}

impl Folder {
    pub(crate) fn from_json(id: String, raw: Value) -> Self {
        let o = Obj::new(&raw);
        Self {
            id,
            name: o.string("name"),
            description: o.string("description"),
            size: o.u64("size"),
            etag: o.string("etag"),
            sequence_id: o.string("sequence_id"),
            parent: o.with("parent", FolderMini::from_json),
            path_collection: o.with("path_collection", FolderMini::path),
            created_at: o.time("created_at"),
            modified_at: o.time("modified_at"),
            content_created_at: o.time("content_created_at"),
            content_modified_at: o.time("content_modified_at"),
            trashed_at: o.time("trashed_at"),
            purged_at: o.time("purged_at"),
            created_by: o.with("created_by", UserMini::from_json),
            modified_by: o.with("modified_by", UserMini::from_json),
            owned_by: o.with("owned_by", UserMini::from_json),
            shared_link: o.with("shared_link", SharedLink::from_json),
            item_status: o.string("item_status"),
            raw,
        }
    }
}

/// A web link (bookmark) source (`type: "web_link"`).
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
/// if let Some(Source::WebLink(link)) = event.source() {
///     assert_eq!(link.url.as_deref(), Some("https://example.com/"));
/// }
/// # Ok::<(), boxhook_core::model::ParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct WebLink {
    /// The web link's id.
    pub id: String,
    /// The web link's name.
    pub name: Option<String>,
    /// The address it points to.
    pub url: Option<String>,
    /// The web link's description.
    pub description: Option<String>,
    /// The etag.
    pub etag: Option<String>,
    /// The sequence id.
    pub sequence_id: Option<String>,
    /// The folder the web link is in.
    pub parent: Option<FolderMini>,
    /// The folders from the root down to the parent (`path_collection.entries`).
    pub path_collection: Option<Vec<FolderMini>>,
    /// When the web link was created.
    pub created_at: Option<DateTime<FixedOffset>>,
    /// When the web link was last changed.
    pub modified_at: Option<DateTime<FixedOffset>>,
    /// When the web link was trashed.
    pub trashed_at: Option<DateTime<FixedOffset>>,
    /// When the web link will be purged from the trash.
    pub purged_at: Option<DateTime<FixedOffset>>,
    /// Who created the web link.
    pub created_by: Option<UserMini>,
    /// Who last changed the web link.
    pub modified_by: Option<UserMini>,
    /// Who owns the web link.
    pub owned_by: Option<UserMini>,
    /// The shared link (`null` when there is none).
    pub shared_link: Option<SharedLink>,
    /// `active`, `trashed` or `deleted`.
    pub item_status: Option<String>,
    /// The whole source object as sent.
    pub raw: Value,
}

impl WebLink {
    pub(crate) fn from_json(id: String, raw: Value) -> Self {
        let o = Obj::new(&raw);
        Self {
            id,
            name: o.string("name"),
            url: o.string("url"),
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
            raw,
        }
    }
}
