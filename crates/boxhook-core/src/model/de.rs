//! Reads the typed event straight from the body, in one pass and without a
//! JSON tree (crate-private; the public face is
//! [`super::WebhookEvent::parse`]).
//!
//! Every object is read by a [`ReadObject`] that picks the fields it knows
//! and skips the rest through the same checking skip as the envelope scan
//! (every key of every object goes through a [`KeySet`]). Each field is read
//! leniently: a value of the expected JSON type becomes `Some`, any other
//! value `None` (the leniency rule in [`super`]). Strings borrow from the
//! body until the model needs an owned copy.
//!
//! The source is also kept whole ([`RawJson`]), but not read twice: it holds
//! the body the event keeps and finds the source's text there when first
//! asked. Any failure at all is answered by the envelope scan of the whole
//! body, so the errors are the envelope's, word for word and at the same
//! place.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use serde::de::{Deserialize, Deserializer, Error, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::refs::{FileVersion, FolderMini, ItemRef, SharedLink, UserMini};
use super::scan::{
    object, text, Ignore, KeySet, KeyText, Loose, ReadObject, Shape, Skip, Strict, Text,
};
use super::source::{
    Collaboration, Comment, File, Folder, ItemFields, MetadataInstance, Source, TaskAssignment,
    WebLink,
};
use super::trigger::Trigger;
use super::webhook::WebhookRef;
use super::RawJson;

/// Reads the fields of an object with a `match` on each key; any other key
/// is skipped (and checked). Every key goes through a [`KeySet`].
macro_rules! read_fields {
    ($map:ident, $out:ident, { $($key:literal => $field:ident : $how:expr),* $(,)? }) => {{
        let mut keys = KeySet::new();
        while let Some(KeyText(name)) = $map.next_key()? {
            match &*name {
                $($key => $out.$field = $how($map.next_value()?),)*
                _ => drop($map.next_value::<Skip<'de>>()?),
            }
            keys.insert(name)?;
        }
    }};
}

/// A scalar as the model reads it: a string, an unsigned integer, a boolean,
/// or anything else (checked, then forgotten).
pub(crate) enum Leaf<'de> {
    Str(Cow<'de, str>),
    U64(u64),
    Bool(bool),
    Other,
}

impl<'de> Leaf<'de> {
    fn str(self) -> Option<Cow<'de, str>> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    fn u64(self) -> Option<u64> {
        match self {
            Self::U64(n) => Some(n),
            _ => None,
        }
    }

    fn bool(self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(b),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Leaf<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LeafVisitor)
    }
}

struct LeafVisitor;

impl<'de> Visitor<'de> for LeafVisitor {
    type Value = Leaf<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
        Ok(Leaf::Other)
    }

    fn visit_bool<E: Error>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Leaf::Bool(b))
    }

    fn visit_i64<E: Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Leaf::Other)
    }

    fn visit_u64<E: Error>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Leaf::U64(n))
    }

    fn visit_f64<E: Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Leaf::Other)
    }

    fn visit_borrowed_str<E: Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Leaf::Str(Cow::Borrowed(s)))
    }

    fn visit_str<E: Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Leaf::Str(Cow::Owned(s.to_owned())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<Skip<'de>>()?.is_some() {}
        Ok(Leaf::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ignore::<false>::read(map).map(|_| Leaf::Other)
    }
}

/// An array read element by element as `T`, or `None` for any other value.
pub(crate) struct List<T>(Option<Vec<T>>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ListVisitor(PhantomData))
    }
}

struct ListVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
    type Value = List<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
        Ok(List(None))
    }

    fn visit_bool<E: Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(List(None))
    }

    fn visit_i64<E: Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(List(None))
    }

    fn visit_u64<E: Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(List(None))
    }

    fn visit_f64<E: Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(List(None))
    }

    fn visit_str<E: Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(List(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(List(Some(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ignore::<false>::read(map).map(|_| List(None))
    }
}

fn string(s: Option<Cow<'_, str>>) -> Option<String> {
    s.map(Cow::into_owned)
}

fn time(s: Option<&Cow<'_, str>>) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s?).ok()
}

fn str_leaf(leaf: Leaf<'_>) -> Option<Cow<'_, str>> {
    leaf.str()
}

fn string_leaf(leaf: Leaf<'_>) -> Option<String> {
    string(leaf.str())
}

fn time_leaf(leaf: Leaf<'_>) -> Option<DateTime<FixedOffset>> {
    time(leaf.str().as_ref())
}

fn u64_leaf(leaf: Leaf<'_>) -> Option<u64> {
    leaf.u64()
}

fn bool_leaf(leaf: Leaf<'_>) -> Option<bool> {
    leaf.bool()
}

/// The value of an object read by `T`, built; `None` for anything else or
/// when `T` lacks what it needs (its `id`).
fn nested<'de, T: ReadObject<'de> + Build>(shape: Shape<'de, T>) -> Option<T::Output> {
    object(shape)?.build()
}

/// Turns what an object reader collected into the model type.
pub(crate) trait Build {
    type Output;
    fn build(self) -> Option<Self::Output>;
}

/// `{id, name, login}`.
#[derive(Default)]
pub(crate) struct UserFields {
    id: Option<String>,
    name: Option<String>,
    login: Option<String>,
}

impl<'de> ReadObject<'de> for UserFields {
    const KEEP_STR: bool = false;

    fn read<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut out = Self::default();
        read_fields!(map, out, {
            "id" => id: string_leaf,
            "name" => name: string_leaf,
            "login" => login: string_leaf,
        });
        Ok(out)
    }
}

impl Build for UserFields {
    type Output = UserMini;
    fn build(self) -> Option<UserMini> {
        Some(UserMini {
            id: self.id?,
            name: self.name,
            login: self.login,
        })
    }
}

/// `{id, type}`.
#[derive(Default)]
pub(crate) struct RefFields {
    id: Option<String>,
    type_name: Option<String>,
}

impl<'de> ReadObject<'de> for RefFields {
    const KEEP_STR: bool = false;

    fn read<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut out = Self::default();
        read_fields!(map, out, {
            "id" => id: string_leaf,
            "type" => type_name: string_leaf,
        });
        Ok(out)
    }
}

impl Build for RefFields {
    type Output = ItemRef;
    fn build(self) -> Option<ItemRef> {
        Some(ItemRef {
            id: self.id?,
            type_name: self.type_name?,
        })
    }
}

/// A folder mini.
#[derive(Default)]
pub(crate) struct FolderFields {
    id: Option<String>,
    name: Option<String>,
    etag: Option<String>,
    sequence_id: Option<String>,
}

impl<'de> ReadObject<'de> for FolderFields {
    const KEEP_STR: bool = false;

    fn read<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut out = Self::default();
        read_fields!(map, out, {
            "id" => id: string_leaf,
            "name" => name: string_leaf,
            "etag" => etag: string_leaf,
            "sequence_id" => sequence_id: string_leaf,
        });
        Ok(out)
    }
}

impl Build for FolderFields {
    type Output = FolderMini;
    fn build(self) -> Option<FolderMini> {
        Some(FolderMini {
            id: self.id?,
            name: self.name,
            etag: self.etag,
            sequence_id: self.sequence_id,
        })
    }
}

/// `path_collection`: its `entries`, those without an id skipped.
#[derive(Default)]
pub(crate) struct PathFields {
    entries: Option<Vec<FolderMini>>,
}

fn entries(list: List<Shape<'_, FolderFields>>) -> Option<Vec<FolderMini>> {
    Some(list.0?.into_iter().filter_map(nested).collect())
}

impl<'de> ReadObject<'de> for PathFields {
    const KEEP_STR: bool = false;

    fn read<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut out = Self::default();
        read_fields!(map, out, { "entries" => entries: entries });
        Ok(out)
    }
}

impl Build for PathFields {
    type Output = Vec<FolderMini>;
    fn build(self) -> Option<Vec<FolderMini>> {
        self.entries
    }
}

/// `{type:"file_version", id, sha1}`.
#[derive(Default)]
pub(crate) struct VersionFields {
    id: Option<String>,
    sha1: Option<String>,
}

impl<'de> ReadObject<'de> for VersionFields {
    const KEEP_STR: bool = false;

    fn read<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut out = Self::default();
        read_fields!(map, out, {
            "id" => id: string_leaf,
            "sha1" => sha1: string_leaf,
        });
        Ok(out)
    }
}

impl Build for VersionFields {
    type Output = FileVersion;
    fn build(self) -> Option<FileVersion> {
        Some(FileVersion {
            id: self.id?,
            sha1: self.sha1,
        })
    }
}

/// A shared link: any object is one.
#[derive(Default)]
pub(crate) struct LinkFields(SharedLinkParts);

#[derive(Default)]
struct SharedLinkParts {
    url: Option<String>,
    download_url: Option<String>,
    vanity_url: Option<String>,
    access: Option<String>,
    effective_access: Option<String>,
    effective_permission: Option<String>,
    is_password_enabled: Option<bool>,
    unshared_at: Option<DateTime<FixedOffset>>,
}

impl<'de> ReadObject<'de> for LinkFields {
    const KEEP_STR: bool = false;

    fn read<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut out = SharedLinkParts::default();
        read_fields!(map, out, {
            "url" => url: string_leaf,
            "download_url" => download_url: string_leaf,
            "vanity_url" => vanity_url: string_leaf,
            "access" => access: string_leaf,
            "effective_access" => effective_access: string_leaf,
            "effective_permission" => effective_permission: string_leaf,
            "is_password_enabled" => is_password_enabled: bool_leaf,
            "unshared_at" => unshared_at: time_leaf,
        });
        Ok(Self(out))
    }
}

impl Build for LinkFields {
    type Output = SharedLink;
    fn build(self) -> Option<SharedLink> {
        let p = self.0;
        Some(SharedLink {
            url: p.url,
            download_url: p.download_url,
            vanity_url: p.vanity_url,
            access: p.access,
            effective_access: p.effective_access,
            effective_permission: p.effective_permission,
            is_password_enabled: p.is_password_enabled,
            unshared_at: p.unshared_at,
        })
    }
}

/// `webhook`.
#[derive(Default)]
pub(crate) struct WebhookFields {
    id: Option<String>,
    address: Option<String>,
    target: Option<ItemRef>,
    triggers: Option<Vec<Trigger>>,
    created_by: Option<UserMini>,
    created_at: Option<DateTime<FixedOffset>>,
}

/// `None` unless an array of strings only.
fn triggers(list: List<Leaf<'_>>) -> Option<Vec<Trigger>> {
    list.0?
        .into_iter()
        .map(|leaf| {
            leaf.str().map(|name| match name {
                Cow::Borrowed(name) => Trigger::from(name),
                Cow::Owned(name) => Trigger::from(name),
            })
        })
        .collect()
}

impl<'de> ReadObject<'de> for WebhookFields {
    const KEEP_STR: bool = false;

    fn read<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut out = Self::default();
        read_fields!(map, out, {
            "id" => id: string_leaf,
            "address" => address: string_leaf,
            "target" => target: nested::<RefFields>,
            "triggers" => triggers: triggers,
            "created_by" => created_by: nested::<UserFields>,
            "created_at" => created_at: time_leaf,
        });
        Ok(out)
    }
}

impl Build for WebhookFields {
    type Output = WebhookRef;
    fn build(self) -> Option<WebhookRef> {
        Some(WebhookRef {
            id: self.id?,
            address: self.address,
            target: self.target,
            triggers: self.triggers,
            created_by: self.created_by,
            created_at: self.created_at,
        })
    }
}

/// Every field any modelled source reads, collected before the `type` is
/// known (it may come last). Strings and times stay borrowed text until the
/// variant is built, so fields its type does not use cost nothing.
#[derive(Default)]
pub(crate) struct SourceFields<'de> {
    id: Option<Cow<'de, str>>,
    type_name: Option<Cow<'de, str>>,
    name: Option<Cow<'de, str>>,
    description: Option<Cow<'de, str>>,
    etag: Option<Cow<'de, str>>,
    sequence_id: Option<Cow<'de, str>>,
    item_status: Option<Cow<'de, str>>,
    sha1: Option<Cow<'de, str>>,
    url: Option<Cow<'de, str>>,
    message: Option<Cow<'de, str>>,
    tagged_message: Option<Cow<'de, str>>,
    resolution_state: Option<Cow<'de, str>>,
    role: Option<Cow<'de, str>>,
    status: Option<Cow<'de, str>>,
    invite_email: Option<Cow<'de, str>>,
    created_at: Option<Cow<'de, str>>,
    modified_at: Option<Cow<'de, str>>,
    trashed_at: Option<Cow<'de, str>>,
    purged_at: Option<Cow<'de, str>>,
    content_created_at: Option<Cow<'de, str>>,
    content_modified_at: Option<Cow<'de, str>>,
    assigned_at: Option<Cow<'de, str>>,
    completed_at: Option<Cow<'de, str>>,
    reminded_at: Option<Cow<'de, str>>,
    expires_at: Option<Cow<'de, str>>,
    acknowledged_at: Option<Cow<'de, str>>,
    size: Option<u64>,
    is_reply_comment: Option<bool>,
    parent: Option<FolderMini>,
    path_collection: Option<Vec<FolderMini>>,
    created_by: Option<UserMini>,
    modified_by: Option<UserMini>,
    owned_by: Option<UserMini>,
    assigned_to: Option<UserMini>,
    assigned_by: Option<UserMini>,
    shared_link: Option<SharedLink>,
    file_version: Option<FileVersion>,
    item: Option<ItemRef>,
    accessible_by: Option<ItemRef>,
}

impl<'de> ReadObject<'de> for SourceFields<'de> {
    const KEEP_STR: bool = false;

    fn read<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut out = Self::default();
        read_fields!(map, out, {
            "id" => id: str_leaf,
            "type" => type_name: str_leaf,
            "name" => name: str_leaf,
            "description" => description: str_leaf,
            "etag" => etag: str_leaf,
            "sequence_id" => sequence_id: str_leaf,
            "item_status" => item_status: str_leaf,
            "sha1" => sha1: str_leaf,
            "url" => url: str_leaf,
            "message" => message: str_leaf,
            "tagged_message" => tagged_message: str_leaf,
            "resolution_state" => resolution_state: str_leaf,
            "role" => role: str_leaf,
            "status" => status: str_leaf,
            "invite_email" => invite_email: str_leaf,
            "created_at" => created_at: str_leaf,
            "modified_at" => modified_at: str_leaf,
            "trashed_at" => trashed_at: str_leaf,
            "purged_at" => purged_at: str_leaf,
            "content_created_at" => content_created_at: str_leaf,
            "content_modified_at" => content_modified_at: str_leaf,
            "assigned_at" => assigned_at: str_leaf,
            "completed_at" => completed_at: str_leaf,
            "reminded_at" => reminded_at: str_leaf,
            "expires_at" => expires_at: str_leaf,
            "acknowledged_at" => acknowledged_at: str_leaf,
            "size" => size: u64_leaf,
            "is_reply_comment" => is_reply_comment: bool_leaf,
            "parent" => parent: nested::<FolderFields>,
            "path_collection" => path_collection: nested::<PathFields>,
            "created_by" => created_by: nested::<UserFields>,
            "modified_by" => modified_by: nested::<UserFields>,
            "owned_by" => owned_by: nested::<UserFields>,
            "assigned_to" => assigned_to: nested::<UserFields>,
            "assigned_by" => assigned_by: nested::<UserFields>,
            "shared_link" => shared_link: nested::<LinkFields>,
            "file_version" => file_version: nested::<VersionFields>,
            "item" => item: nested::<RefFields>,
            "accessible_by" => accessible_by: nested::<RefFields>,
        });
        Ok(out)
    }
}

impl SourceFields<'_> {
    /// The source, `None` without a string `id` and `type`; `body` is the
    /// body it was read from, where [`RawJson`] finds its text on demand.
    pub(crate) fn build(mut self, body: &Arc<str>) -> Option<Source> {
        let id = self.id.take()?.into_owned();
        let type_name = self.type_name.take()?;
        let raw = RawJson::source_of(Arc::clone(body));
        Some(match &*type_name {
            "file" => Source::File(File {
                size: self.size,
                sha1: string(self.sha1.take()),
                file_version: self.file_version.take(),
                content_created_at: time(self.content_created_at.as_ref()),
                content_modified_at: time(self.content_modified_at.as_ref()),
                item: self.item_fields(id),
                raw,
            }),
            "folder" => Source::Folder(Folder {
                size: self.size,
                content_created_at: time(self.content_created_at.as_ref()),
                content_modified_at: time(self.content_modified_at.as_ref()),
                item: self.item_fields(id),
                raw,
            }),
            "web_link" => Source::WebLink(WebLink {
                url: string(self.url.take()),
                item: self.item_fields(id),
                raw,
            }),
            "comment" => Source::Comment(Comment {
                id,
                message: string(self.message),
                tagged_message: string(self.tagged_message),
                is_reply_comment: self.is_reply_comment,
                item: self.item,
                created_by: self.created_by,
                created_at: time(self.created_at.as_ref()),
                modified_at: time(self.modified_at.as_ref()),
                raw,
            }),
            "task_assignment" => Source::TaskAssignment(TaskAssignment {
                id,
                item: self.item,
                assigned_to: self.assigned_to,
                assigned_by: self.assigned_by,
                message: string(self.message),
                resolution_state: string(self.resolution_state),
                assigned_at: time(self.assigned_at.as_ref()),
                completed_at: time(self.completed_at.as_ref()),
                reminded_at: time(self.reminded_at.as_ref()),
                raw,
            }),
            "metadata_instance" => Source::MetadataInstance(MetadataInstance { id, raw }),
            "collaboration" => Source::Collaboration(Collaboration {
                id,
                role: string(self.role),
                status: string(self.status),
                item: self.item,
                accessible_by: self.accessible_by,
                invite_email: string(self.invite_email),
                created_by: self.created_by,
                created_at: time(self.created_at.as_ref()),
                modified_at: time(self.modified_at.as_ref()),
                expires_at: time(self.expires_at.as_ref()),
                acknowledged_at: time(self.acknowledged_at.as_ref()),
                raw,
            }),
            other => Source::Unknown {
                type_name: other.to_owned(),
                id,
                raw,
            },
        })
    }

    fn item_fields(self, id: String) -> ItemFields {
        ItemFields {
            id,
            name: string(self.name),
            description: string(self.description),
            etag: string(self.etag),
            sequence_id: string(self.sequence_id),
            parent: self.parent,
            path_collection: self.path_collection,
            created_at: time(self.created_at.as_ref()),
            modified_at: time(self.modified_at.as_ref()),
            trashed_at: time(self.trashed_at.as_ref()),
            purged_at: time(self.purged_at.as_ref()),
            created_by: self.created_by,
            modified_by: self.modified_by,
            owned_by: self.owned_by,
            shared_link: self.shared_link,
            item_status: string(self.item_status),
        }
    }
}

/// The top-level object: the envelope fields, the typed parts, and the
/// source's text (read in a second step, see the module docs).
#[derive(Default)]
pub(crate) struct EventFields<'de> {
    pub(crate) event_type: Option<Text<'de>>,
    pub(crate) id: Option<Text<'de>>,
    pub(crate) trigger: Option<Text<'de>>,
    pub(crate) created_at: Option<DateTime<FixedOffset>>,
    pub(crate) webhook: Option<WebhookRef>,
    pub(crate) created_by: Option<UserMini>,
    pub(crate) source: Option<SourceFields<'de>>,
    pub(crate) additional_info: Option<Map<String, Value>>,
}

fn envelope_text(value: Loose<'_>) -> Text<'_> {
    text(value)
}

fn additional_info(Strict(value): Strict) -> Option<Map<String, Value>> {
    match value {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

impl<'de> ReadObject<'de> for EventFields<'de> {
    const KEEP_STR: bool = false;

    fn read<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut out = Self::default();
        read_fields!(map, out, {
            "type" => event_type: |v| Some(envelope_text(v)),
            "id" => id: |v| Some(envelope_text(v)),
            "trigger" => trigger: |v| Some(envelope_text(v)),
            "created_at" => created_at: time_leaf,
            "webhook" => webhook: nested::<WebhookFields>,
            "created_by" => created_by: nested::<UserFields>,
            "source" => source: object,
            "additional_info" => additional_info: additional_info,
        });
        Ok(out)
    }
}
