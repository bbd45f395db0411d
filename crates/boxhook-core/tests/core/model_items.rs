//! Files, folders and web links read their common fields through one
//! `ItemFields`, under the same leniency rule: the same JSON gives the same
//! `ItemFields` whatever the item's type, a wrong-typed field reads as `None`,
//! and unknown or unread fields stay in the raw JSON.

use boxhook_core::model::{ItemFields, Source, WebhookEvent};

const COMMON: &str = r#""id": "42", "name": "Plans", "description": "d", "etag": "7",
    "sequence_id": "3", "item_status": "trashed",
    "parent": {"type": "folder", "id": "0", "name": "All Files", "etag": null, "sequence_id": null},
    "path_collection": {"total_count": 1, "entries": [{"type": "folder", "id": "0", "name": "All Files"}]},
    "created_at": "2024-05-14T09:12:31-07:00", "modified_at": "2024-05-15T10:00:00-07:00",
    "trashed_at": "2024-05-16T11:00:00-07:00", "purged_at": "2024-06-15T11:00:00-07:00",
    "created_by": {"type": "user", "id": "1", "name": "Ann"},
    "modified_by": {"type": "user", "id": "2", "name": "Bo"},
    "owned_by": {"type": "user", "id": "3", "name": "Cy"},
    "shared_link": {"url": "https:\/\/app.box.com\/s\/abc", "access": "open"},
    "color": "teal""#;

fn source(type_name: &str, extra: &str) -> Source {
    let body = format!(
        r#"{{"id": "e", "trigger": "FILE.TRASHED", "source": {{"type": "{type_name}", {COMMON}{extra}}}}}"#
    );
    WebhookEvent::parse(body.as_bytes())
        .expect("parses")
        .into_source()
        .expect("a source")
}

fn item(source: &Source) -> &ItemFields {
    source.item().expect("an item")
}

#[test]
fn the_three_item_types_read_the_same_common_fields() {
    let file = source("file", r#", "size": 10, "sha1": "ab""#);
    let folder = source("folder", r#", "size": 20"#);
    let link = source("web_link", r#", "url": "https:\/\/example.com\/""#);

    let common = item(&file);
    assert_eq!(item(&folder), common);
    assert_eq!(item(&link), common);

    assert_eq!(common.id, "42");
    assert_eq!(common.name.as_deref(), Some("Plans"));
    assert_eq!(common.description.as_deref(), Some("d"));
    assert_eq!(common.etag.as_deref(), Some("7"));
    assert_eq!(common.sequence_id.as_deref(), Some("3"));
    assert_eq!(common.item_status.as_deref(), Some("trashed"));
    let parent = common.parent.as_ref().expect("parent");
    assert_eq!((parent.id.as_str(), parent.etag.as_deref()), ("0", None));
    let path: Vec<&str> = common
        .path_collection
        .iter()
        .flatten()
        .map(|p| p.id.as_str())
        .collect();
    assert_eq!(path, ["0"]);
    assert_eq!(
        common.created_at.map(|t| t.to_rfc3339()).as_deref(),
        Some("2024-05-14T09:12:31-07:00")
    );
    assert_eq!(
        common.modified_at.map(|t| t.to_rfc3339()).as_deref(),
        Some("2024-05-15T10:00:00-07:00")
    );
    assert!(common.trashed_at < common.purged_at);
    let users = [&common.created_by, &common.modified_by, &common.owned_by]
        .map(|u| u.as_ref().map(|u| u.id.as_str()));
    assert_eq!(users, [Some("1"), Some("2"), Some("3")]);
    assert_eq!(
        common.shared_link.as_ref().and_then(|l| l.url.as_deref()),
        Some("https://app.box.com/s/abc")
    );

    assert_eq!(file.name(), Some("Plans"));
    assert_eq!(folder.id(), "42");
    let Source::File(file) = &file else {
        panic!("a file")
    };
    assert_eq!((file.size, file.sha1.as_deref()), (Some(10), Some("ab")));
    let Source::Folder(folder) = &folder else {
        panic!("a folder")
    };
    assert_eq!(folder.size, Some(20));
    let Source::WebLink(link) = &link else {
        panic!("a web link")
    };
    assert_eq!(link.url.as_deref(), Some("https://example.com/"));
}

#[test]
fn unknown_fields_stay_raw_and_wrong_types_read_as_none() {
    let file = source("file", r#", "size": "10""#);
    let Source::File(file) = &file else {
        panic!("a file")
    };
    assert_eq!(file.raw["color"], "teal");
    assert_eq!(file.size, None);
    assert_eq!(file.raw["size"], "10");

    let odd = source("folder", "")
        .raw()
        .to_string()
        .replace(r#""name":"Plans""#, r#""name":5"#);
    let body = format!(r#"{{"id": "e", "trigger": "FOLDER.RENAMED", "source": {odd}}}"#);
    let event = WebhookEvent::parse(body.as_bytes()).expect("parses");
    let folder = event
        .source()
        .and_then(Source::as_folder)
        .expect("a folder");
    assert_eq!(folder.item.name, None);
    assert_eq!(folder.raw["name"], 5);
    assert_eq!(folder.item.id, "42");
}

#[test]
fn sources_that_are_not_items_have_no_item_fields() {
    for type_name in [
        "comment",
        "task_assignment",
        "metadata_instance",
        "collaboration",
        "hubs",
    ] {
        let body = format!(
            r#"{{"id": "e", "trigger": "X", "source": {{"type": "{type_name}", "id": "9", "name": "n"}}}}"#
        );
        let event = WebhookEvent::parse(body.as_bytes()).expect("parses");
        let source = event.source().expect("a source");
        assert_eq!(source.item(), None, "{type_name}");
        assert_eq!(source.name(), None, "{type_name}");
    }
}
