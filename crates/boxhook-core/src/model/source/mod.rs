//! [`Source`]: the item an event is about, tagged by its `type`.

mod activity;
mod items;

use serde_json::Value;

pub use activity::{Collaboration, Comment, MetadataInstance, TaskAssignment};
pub use items::{File, Folder, ItemFields, WebLink};

#[cfg(test)]
use super::json::Obj;
use super::RawJson;

/// The event's `source`: the item the event is about, by its `type`.
///
/// Only `id` and `type` are required; every other field is optional, so the
/// minimal sources of `FILE.TRASHED` and `NO_ACTIVE_SESSION` parse (see
/// "Payload shapes" in docs/PROTOCOL.md). A `type` this version does not model becomes
/// [`Source::Unknown`]. Every variant keeps the source's raw JSON.
///
/// ```
/// use boxhook_core::model::{Source, WebhookEvent};
///
/// let event = WebhookEvent::parse(br#"{
///     "id": "1", "trigger": "FILE.UPLOADED",
///     "source": {"id": "5", "type": "file", "name": "Q1.pdf", "size": 1024}
/// }"#)?;
/// match event.source() {
///     Some(Source::File(file)) => assert_eq!(file.size, Some(1024)),
///     Some(Source::Folder(folder)) => println!("folder {}", folder.item.id),
///     Some(Source::Unknown { type_name, raw, .. }) => println!("{type_name}: {raw}"),
///     Some(other) => println!("{} {}", other.type_name(), other.id()),
///     None => println!("no usable source"),
/// }
/// # Ok::<(), boxhook_core::model::ParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Source {
    /// `type: "file"`
    File(File),
    /// `type: "folder"`
    Folder(Folder),
    /// `type: "web_link"`
    WebLink(WebLink),
    /// `type: "comment"`
    Comment(Comment),
    /// `type: "task_assignment"`
    TaskAssignment(TaskAssignment),
    /// `type: "metadata_instance"`
    MetadataInstance(MetadataInstance),
    /// `type: "collaboration"`
    Collaboration(Collaboration),
    /// Any other `type`, kept whole.
    #[non_exhaustive]
    Unknown {
        /// The `type` as sent.
        type_name: String,
        /// The `id` as sent.
        id: String,
        /// The whole source object, as sent.
        raw: RawJson,
    },
}

impl Source {
    /// Reads a source; `None` unless `value` is an object with a string `id`
    /// and a string `type`.
    #[cfg(test)]
    pub(crate) fn from_json(value: &Value) -> Option<Self> {
        let o = Obj::new(value);
        let id = o.string("id")?;
        Some(match o.str("type")? {
            "file" => Self::File(File::from_json(id, value)),
            "folder" => Self::Folder(Folder::from_json(id, value)),
            "web_link" => Self::WebLink(WebLink::from_json(id, value)),
            "comment" => Self::Comment(Comment::from_json(id, value)),
            "task_assignment" => Self::TaskAssignment(TaskAssignment::from_json(id, value)),
            "metadata_instance" => Self::MetadataInstance(MetadataInstance::from_json(id, value)),
            "collaboration" => Self::Collaboration(Collaboration::from_json(id, value)),
            other => Self::Unknown {
                type_name: other.to_owned(),
                id,
                raw: RawJson::from_value(value),
            },
        })
    }

    /// The source's `type` as sent (`"file"`, `"folder"`, ...).
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let event = WebhookEvent::parse(br#"{
    ///     "id": "1", "trigger": "HUB.CREATED", "source": {"id": "9", "type": "hubs"}
    /// }"#)?;
    /// assert_eq!(event.source().map(|s| s.type_name()), Some("hubs"));
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn type_name(&self) -> &str {
        match self {
            Self::File(_) => "file",
            Self::Folder(_) => "folder",
            Self::WebLink(_) => "web_link",
            Self::Comment(_) => "comment",
            Self::TaskAssignment(_) => "task_assignment",
            Self::MetadataInstance(_) => "metadata_instance",
            Self::Collaboration(_) => "collaboration",
            Self::Unknown { type_name, .. } => type_name,
        }
    }

    /// The source's `id`.
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let event = WebhookEvent::parse(br#"{
    ///     "id": "1", "trigger": "FILE.TRASHED", "source": {"id": "5", "type": "file"}
    /// }"#)?;
    /// assert_eq!(event.source().map(|s| s.id()), Some("5"));
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn id(&self) -> &str {
        match self {
            Self::File(s) => &s.item.id,
            Self::Folder(s) => &s.item.id,
            Self::WebLink(s) => &s.item.id,
            Self::Comment(s) => &s.id,
            Self::TaskAssignment(s) => &s.id,
            Self::MetadataInstance(s) => &s.id,
            Self::Collaboration(s) => &s.id,
            Self::Unknown { id, .. } => id,
        }
    }

    /// The whole source object as sent, including fields the typed view
    /// leaves out or could not read.
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let event = WebhookEvent::parse(br#"{
    ///     "id": "1", "trigger": "FILE.UPLOADED",
    ///     "source": {"id": "5", "type": "file", "size": "12"}
    /// }"#)?;
    /// let source = event.source().expect("sent");
    /// assert_eq!(source.as_file().and_then(|f| f.size), None);
    /// assert_eq!(source.raw()["size"], "12");
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn raw(&self) -> &Value {
        self.raw_json().value()
    }

    /// The whole source object as sent, as text with its tree built on
    /// demand: [`RawJson::json`] reads the text without building one.
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let event = WebhookEvent::parse(br#"{
    ///     "id": "1", "trigger": "FILE.UPLOADED", "source": {"id": "5", "type": "file"}
    /// }"#)?;
    /// let source = event.source().expect("sent");
    /// assert_eq!(source.raw_json().json(), r#"{"id": "5", "type": "file"}"#);
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn raw_json(&self) -> &RawJson {
        match self {
            Self::File(s) => &s.raw,
            Self::Folder(s) => &s.raw,
            Self::WebLink(s) => &s.raw,
            Self::Comment(s) => &s.raw,
            Self::TaskAssignment(s) => &s.raw,
            Self::MetadataInstance(s) => &s.raw,
            Self::Collaboration(s) => &s.raw,
            Self::Unknown { raw, .. } => raw,
        }
    }

    /// The item's name, for the sources that have one (file, folder, web
    /// link) when Box sent it: `NO_ACTIVE_SESSION` sources have none.
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let event = WebhookEvent::parse(br#"{
    ///     "id": "1", "trigger": "FOLDER.CREATED",
    ///     "source": {"id": "5", "type": "folder", "name": "Invoices"}
    /// }"#)?;
    /// assert_eq!(event.source().and_then(|s| s.name()), Some("Invoices"));
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.item()?.name.as_deref()
    }

    /// The fields every item has, for the sources that are items (file,
    /// folder, web link); `None` for the others.
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let event = WebhookEvent::parse(br#"{
    ///     "id": "1", "trigger": "FILE.MOVED",
    ///     "source": {"id": "5", "type": "file", "parent": {"type": "folder", "id": "77"}}
    /// }"#)?;
    /// let item = event.source().and_then(|s| s.item()).expect("an item");
    /// assert_eq!(item.parent.as_ref().map(|p| p.id.as_str()), Some("77"));
    ///
    /// let comment = WebhookEvent::parse(br#"{
    ///     "id": "2", "trigger": "COMMENT.CREATED", "source": {"id": "6", "type": "comment"}
    /// }"#)?;
    /// assert!(comment.source().is_some_and(|s| s.item().is_none()));
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn item(&self) -> Option<&ItemFields> {
        match self {
            Self::File(s) => Some(&s.item),
            Self::Folder(s) => Some(&s.item),
            Self::WebLink(s) => Some(&s.item),
            _ => None,
        }
    }

    /// The file, if the source is one.
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let event = WebhookEvent::parse(br#"{
    ///     "id": "1", "trigger": "FILE.LOCKED", "source": {"id": "5", "type": "file", "sha1": "ab"}
    /// }"#)?;
    /// let file = event.source().and_then(|s| s.as_file()).expect("a file");
    /// assert_eq!(file.sha1.as_deref(), Some("ab"));
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn as_file(&self) -> Option<&File> {
        match self {
            Self::File(file) => Some(file),
            _ => None,
        }
    }

    /// The folder, if the source is one.
    ///
    /// ```
    /// use boxhook_core::model::WebhookEvent;
    ///
    /// let event = WebhookEvent::parse(br#"{
    ///     "id": "1", "trigger": "FOLDER.TRASHED", "source": {"id": "5", "type": "folder"}
    /// }"#)?;
    /// assert!(event.source().and_then(|s| s.as_folder()).is_some());
    /// # Ok::<(), boxhook_core::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn as_folder(&self) -> Option<&Folder> {
        match self {
            Self::Folder(folder) => Some(folder),
            _ => None,
        }
    }
}
