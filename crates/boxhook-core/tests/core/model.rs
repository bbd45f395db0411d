//! The fixture corpus parsed end to end: every fixture to the values it
//! should have, byte-for-byte raw bodies, envelope/event agreement, and the
//! corpus itself in Box's wire form (see "The escaped form" in docs/PROTOCOL.md).

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use boxhook_core::escaped_form;
use boxhook_core::model::{
    DeletionReason, Envelope, File, Folder, Source, Trigger, TriggerFamily, WebhookEvent,
};

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn fixture_names() -> BTreeSet<String> {
    fs::read_dir(fixtures_dir())
        .expect("fixtures/ exists")
        .map(|entry| {
            entry
                .expect("readable")
                .file_name()
                .into_string()
                .expect("UTF-8 name")
        })
        .filter(|name| {
            std::path::Path::new(name)
                .extension()
                .is_some_and(|e| e == "json")
        })
        .collect()
}

fn body(name: &str) -> Vec<u8> {
    fs::read(fixtures_dir().join(name)).expect("fixture readable")
}

fn file(event: &WebhookEvent) -> &File {
    event
        .source()
        .and_then(Source::as_file)
        .expect("a file source")
}

fn folder(event: &WebhookEvent) -> &Folder {
    event
        .source()
        .and_then(Source::as_folder)
        .expect("a folder source")
}

/// A fixture and what it must parse to.
struct Case {
    file: &'static str,
    trigger: &'static str,
    /// `(type, id)` of the source.
    source: Option<(&'static str, &'static str)>,
    /// Further checks on selected fields.
    check: fn(&WebhookEvent),
}

const Q2: (&str, &str) = ("file", "1514863282731");
const NDA: (&str, &str) = ("file", "1515027745012");
const LEGAL: (&str, &str) = ("folder", "221873004415");
const COLLAB: (&str, &str) = ("collaboration", "31794860812");
const META: (&str, &str) = ("metadata_instance", "01729284-d9d5-4d5c-b9a6-65fcae2ee3d4");
const TEMPLATE: (&str, &str) = ("file", "1515101183340");

fn nothing(_: &WebhookEvent) {}

fn empty_info(event: &WebhookEvent) {
    assert!(event.additional_info().is_empty());
}

fn sign_block(event: &WebhookEvent) {
    let info = event.additional_info();
    assert_eq!(
        info.sign_request_id(),
        Some("6f1c2b7e-93a1-4f0d-b1e5-2a8c9d4e7b30")
    );
    assert_eq!(info.external_id(), Some("crm-opportunity-88213"));
    assert!(!info.signer_emails().is_empty());
}

fn collaboration(event: &WebhookEvent, status: &str, role: &str) {
    let Some(Source::Collaboration(collab)) = event.source() else {
        panic!("a collaboration source")
    };
    assert_eq!(collab.status.as_deref(), Some(status));
    assert_eq!(collab.role.as_deref(), Some(role));
    let item = collab.item.as_ref().expect("item");
    assert_eq!(
        (item.id.as_str(), item.type_name.as_str()),
        ("218731577810", "folder")
    );
    assert_eq!(
        collab.accessible_by.as_ref().map(|a| a.type_name.as_str()),
        Some("user")
    );
}

#[allow(clippy::too_many_lines)] // Reason: one table row per fixture reads best in one place.
fn cases() -> Vec<Case> {
    vec![
        Case {
            file: "collaboration.accepted.json",
            trigger: "COLLABORATION.ACCEPTED",
            source: Some(COLLAB),
            check: |e| {
                collaboration(e, "accepted", "viewer");
                let Some(Source::Collaboration(c)) = e.source() else {
                    unreachable!()
                };
                assert!(c.acknowledged_at.is_some());
                assert_eq!(c.expires_at, None);
            },
        },
        Case {
            file: "collaboration.created.json",
            trigger: "COLLABORATION.CREATED",
            source: Some(COLLAB),
            check: |e| collaboration(e, "pending", "viewer"),
        },
        Case {
            file: "collaboration.rejected.json",
            trigger: "COLLABORATION.REJECTED",
            source: Some(("collaboration", "31794871355")),
            check: |e| collaboration(e, "rejected", "editor"),
        },
        Case {
            file: "collaboration.removed.json",
            trigger: "COLLABORATION.REMOVED",
            source: Some(COLLAB),
            check: |e| collaboration(e, "accepted", "editor"),
        },
        Case {
            file: "collaboration.updated.json",
            trigger: "COLLABORATION.UPDATED",
            source: Some(COLLAB),
            check: |e| collaboration(e, "accepted", "editor"),
        },
        Case {
            file: "comment.created.json",
            trigger: "COMMENT.CREATED",
            source: Some(("comment", "491627365")),
            check: |e| {
                let Some(Source::Comment(c)) = e.source() else {
                    panic!("a comment")
                };
                // `\/` on the wire, `/` once parsed.
                let message = c.message.as_deref().expect("message");
                assert!(message.ends_with("https://intranet.northwind.example/kpi/2024"));
                assert_eq!(c.is_reply_comment, Some(false));
                assert_eq!(
                    c.item.as_ref().map(|i| i.id.as_str()),
                    Some("1514863282731")
                );
                assert_eq!(
                    c.created_by.as_ref().map(|u| u.id.as_str()),
                    Some("20571735")
                );
            },
        },
        Case {
            file: "comment.deleted.json",
            trigger: "COMMENT.DELETED",
            source: Some(("comment", "491628110")),
            check: |e| {
                let Some(Source::Comment(c)) = e.source() else {
                    panic!("a comment")
                };
                assert_eq!(c.message.as_deref(), Some("Done ✔"));
                assert_eq!(c.is_reply_comment, Some(true));
            },
        },
        Case {
            file: "comment.updated.json",
            trigger: "COMMENT.UPDATED",
            source: Some(("comment", "491627365")),
            check: |e| {
                let Some(Source::Comment(c)) = e.source() else {
                    panic!("a comment")
                };
                assert!(c.modified_at > c.created_at);
            },
        },
        Case {
            file: "docgen_document_generation_failed.json",
            trigger: "DOCGEN_DOCUMENT_GENERATION_FAILED",
            source: Some(TEMPLATE),
            check: empty_info,
        },
        Case {
            file: "docgen_document_generation_started.json",
            trigger: "DOCGEN_DOCUMENT_GENERATION_STARTED",
            source: Some(TEMPLATE),
            check: |e| assert_eq!(e.trigger().family(), TriggerFamily::DocGen),
        },
        Case {
            file: "docgen_document_generation_succeeded.json",
            trigger: "DOCGEN_DOCUMENT_GENERATION_SUCCEEDED",
            source: Some(("file", "1515101260871")),
            check: |e| {
                assert_eq!(
                    file(e).item.name.as_deref(),
                    Some("Offer letter - João Simões.pdf")
                );
            },
        },
        Case {
            file: "file.copied.json",
            trigger: "FILE.COPIED",
            source: Some(("file", "1514899302118")),
            check: |e| {
                let f = file(e);
                assert_eq!(
                    f.item.parent.as_ref().map(|p| p.id.as_str()),
                    Some("219004467120")
                );
                assert_eq!(
                    f.item.owned_by.as_ref().map(|u| u.id.as_str()),
                    Some("20571735")
                );
            },
        },
        Case {
            file: "file.deleted.json",
            trigger: "FILE.DELETED",
            source: Some(Q2),
            check: |e| {
                let f = file(e);
                assert_eq!(f.item.item_status.as_deref(), Some("deleted"));
                assert!(f.item.trashed_at.is_some() && f.item.purged_at.is_some());
            },
        },
        Case {
            file: "file.downloaded.json",
            trigger: "FILE.DOWNLOADED",
            source: Some(Q2),
            check: |e| assert_eq!(e.created_by().map(|u| u.id.as_str()), Some("20571735")),
        },
        Case {
            file: "file.locked.json",
            trigger: "FILE.LOCKED",
            source: Some(Q2),
            check: |e| {
                let by = file(e)
                    .item
                    .modified_by
                    .as_ref()
                    .and_then(|u| u.name.as_deref());
                assert_eq!(by, Some("Marco Rossi"));
            },
        },
        Case {
            file: "file.moved.json",
            trigger: "FILE.MOVED",
            source: Some(Q2),
            check: |e| {
                let f = file(e);
                assert_eq!(
                    f.item.parent.as_ref().map(|p| p.id.as_str()),
                    Some("219004467120")
                );
                assert_eq!(f.item.path_collection.as_ref().map(Vec::len), Some(2));
                assert!(e.additional_info().is_empty());
            },
        },
        Case {
            file: "file.previewed.json",
            trigger: "FILE.PREVIEWED",
            source: Some(Q2),
            check: empty_info,
        },
        Case {
            file: "file.renamed.json",
            trigger: "FILE.RENAMED",
            source: Some(Q2),
            check: |e| {
                assert_eq!(
                    e.additional_info().old_name(),
                    Some("Q2 revenue forecast.xlsx")
                );
                assert_eq!(
                    file(e).item.name.as_deref(),
                    Some("Q2 revenue forecast - final.xlsx")
                );
            },
        },
        Case {
            file: "file.renamed.non-ascii.json",
            trigger: "FILE.RENAMED",
            source: Some(("file", "1514911760093")),
            check: |e| {
                let f = file(e);
                assert_eq!(
                    f.item.name.as_deref(),
                    Some("スクリーンショット 2024-05-14.png")
                );
                assert_eq!(
                    e.additional_info().old_name(),
                    Some("Bildschirmfoto März № 3.png")
                );
                assert_eq!(
                    e.created_by().and_then(|u| u.name.as_deref()),
                    Some("山田 由紀")
                );
                let parent = f.item.parent.as_ref().and_then(|p| p.name.as_deref());
                assert_eq!(parent, Some("資料"));
            },
        },
        Case {
            file: "file.restored.json",
            trigger: "FILE.RESTORED",
            source: Some(Q2),
            check: |e| assert_eq!(file(e).item.trashed_at, None),
        },
        Case {
            file: "file.trashed.json",
            trigger: "FILE.TRASHED",
            source: Some(Q2),
            check: |e| {
                // A minimal source, `{"id", "type"}` only.
                let f = file(e);
                assert_eq!(
                    (f.item.name.as_deref(), f.size, f.item.parent.as_ref()),
                    (None, None, None)
                );
                assert_eq!(f.raw.as_object().map(serde_json::Map::len), Some(2));
            },
        },
        Case {
            file: "file.unlocked.json",
            trigger: "FILE.UNLOCKED",
            source: Some(Q2),
            check: |e| assert_eq!(file(e).item.sequence_id.as_deref(), Some("5")),
        },
        Case {
            file: "file.uploaded.deep-path.json",
            trigger: "FILE.UPLOADED",
            source: Some(("file", "1514880551929")),
            check: |e| {
                let f = file(e);
                let path = f.item.path_collection.as_ref().expect("path");
                assert_eq!(path.len(), 7);
                assert_eq!(
                    path.last().and_then(|p| p.name.as_deref()),
                    Some("Verträge 2024")
                );
                assert!(f
                    .item
                    .description
                    .as_deref()
                    .is_some_and(|d| d.contains(" / ")));
                let link = f.item.shared_link.as_ref().expect("shared link");
                assert_eq!(link.access.as_deref(), Some("collaborators"));
                assert_eq!(link.is_password_enabled, Some(false));
                assert_eq!(link.vanity_url, None);
            },
        },
        Case {
            file: "file.uploaded.emoji-name.json",
            trigger: "FILE.UPLOADED",
            source: Some(("file", "1514870019554")),
            check: |e| {
                let f = file(e);
                assert_eq!(f.item.name.as_deref(), Some("🎉 Launch plan v2.pptx"));
                assert_eq!(f.size, Some(3_145_728));
                let owner = f.item.owned_by.as_ref().and_then(|u| u.name.as_deref());
                assert_eq!(owner, Some("Zoë Ångström"));
            },
        },
        Case {
            file: "file.uploaded.json",
            trigger: "FILE.UPLOADED",
            source: Some(Q2),
            check: |e| {
                assert_eq!(e.id(), "df0b8e18-d430-5c05-a4ae-d0148b7a504d");
                let at = e.created_at().expect("created_at");
                assert_eq!(at.to_rfc3339(), "2024-05-14T08:02:14-07:00");
                assert_eq!(e.webhook().map(|w| w.id.as_str()), Some("1837162"));
                let f = file(e);
                assert_eq!(f.item.name.as_deref(), Some("Q2 revenue forecast.xlsx"));
                assert_eq!(f.size, Some(48213));
                assert_eq!(
                    f.sha1.as_deref(),
                    Some("2c26b46b68ffc68ff99b453c1d30413413422d70")
                );
                assert_eq!(
                    f.file_version.as_ref().map(|v| v.id.as_str()),
                    Some("1659205137731")
                );
                assert_eq!(
                    f.item.parent.as_ref().map(|p| p.id.as_str()),
                    Some("218731577810")
                );
                let path = f.item.path_collection.as_ref().expect("path");
                assert_eq!(path.len(), 3);
                // The root folder's etag and sequence_id are null.
                assert_eq!((path[0].id.as_str(), path[0].etag.as_deref()), ("0", None));
                assert_eq!(path[0].sequence_id, None);
                assert_eq!(
                    f.item.owned_by.as_ref().and_then(|u| u.login.as_deref()),
                    Some("ann.lee@northwind.example")
                );
                assert_eq!(
                    (
                        f.item.shared_link.as_ref(),
                        f.item.trashed_at,
                        f.item.purged_at
                    ),
                    (None, None, None)
                );
                assert_eq!(f.item.item_status.as_deref(), Some("active"));
                assert_eq!(f.item.description.as_deref(), Some(""));
                assert!(e.additional_info().is_empty());
            },
        },
        Case {
            file: "folder.copied.json",
            trigger: "FOLDER.COPIED",
            source: Some(("folder", "221880216690")),
            check: |e| {
                assert_eq!(
                    folder(e).item.parent.as_ref().map(|p| p.id.as_str()),
                    Some("219004467120")
                );
            },
        },
        Case {
            file: "folder.created.json",
            trigger: "FOLDER.CREATED",
            source: Some(LEGAL),
            check: |e| {
                let f = folder(e);
                assert_eq!(f.item.name.as_deref(), Some("Verträge — München"));
                assert_eq!(
                    f.item.created_by.as_ref().and_then(|u| u.name.as_deref()),
                    Some("Jürgen Weiß")
                );
                assert_eq!(f.size, Some(0));
            },
        },
        Case {
            file: "folder.deleted.json",
            trigger: "FOLDER.DELETED",
            source: Some(LEGAL),
            check: |e| assert_eq!(folder(e).item.item_status.as_deref(), Some("deleted")),
        },
        Case {
            file: "folder.downloaded.json",
            trigger: "FOLDER.DOWNLOADED",
            source: Some(LEGAL),
            check: |e| assert_eq!(folder(e).size, Some(1_830_244)),
        },
        Case {
            file: "folder.moved.json",
            trigger: "FOLDER.MOVED",
            source: Some(LEGAL),
            check: |e| {
                let info = e.additional_info();
                let (before, after) =
                    (info.before().expect("before"), info.after().expect("after"));
                assert_eq!(
                    (before.id.as_str(), before.type_name.as_str()),
                    ("218730924451", "folder")
                );
                assert_eq!(
                    (after.id.as_str(), after.type_name.as_str()),
                    ("218731577810", "folder")
                );
                assert_eq!(
                    folder(e).item.parent.as_ref().map(|p| p.id.as_str()),
                    Some(after.id.as_str())
                );
            },
        },
        Case {
            file: "folder.renamed.json",
            trigger: "FOLDER.RENAMED",
            source: Some(LEGAL),
            check: |e| assert_eq!(e.additional_info().old_name(), Some("Neuer Ordner")),
        },
        Case {
            file: "folder.restored.json",
            trigger: "FOLDER.RESTORED",
            source: Some(LEGAL),
            check: |e| assert_eq!(folder(e).item.trashed_at, None),
        },
        Case {
            file: "folder.trashed.json",
            trigger: "FOLDER.TRASHED",
            source: Some(LEGAL),
            check: |e| {
                let f = folder(e);
                assert_eq!(f.item.item_status.as_deref(), Some("trashed"));
                assert!(f.item.trashed_at.is_some() && f.item.purged_at > f.item.trashed_at);
            },
        },
        Case {
            file: "metadata_instance.created.json",
            trigger: "METADATA_INSTANCE.CREATED",
            source: Some(META),
            check: |e| {
                assert_eq!(
                    e.source().map(|s| &s.raw()["$template"]),
                    Some(&"contractDetails".into())
                );
            },
        },
        Case {
            file: "metadata_instance.deleted.json",
            trigger: "METADATA_INSTANCE.DELETED",
            source: Some(META),
            check: nothing,
        },
        Case {
            file: "metadata_instance.updated.json",
            trigger: "METADATA_INSTANCE.UPDATED",
            source: Some(META),
            check: |e| assert_eq!(e.source().map(|s| &s.raw()["$version"]), Some(&1.into())),
        },
        Case {
            file: "no_active_session.folder.json",
            trigger: "NO_ACTIVE_SESSION",
            source: Some(("folder", "218731577810")),
            check: |e| {
                assert!(e.created_by().is_none());
                assert_eq!(folder(e).item.name, None);
            },
        },
        Case {
            file: "no_active_session.json",
            trigger: "NO_ACTIVE_SESSION",
            source: Some(Q2),
            check: |e| {
                // NO_ACTIVE_SESSION: the source keeps type and id, not the name.
                assert_eq!(e.trigger().family(), TriggerFamily::Session);
                assert_eq!(e.source().and_then(Source::name), None);
            },
        },
        Case {
            file: "odd.ids-as-numbers.json",
            trigger: "FILE.PREVIEWED",
            source: Some(Q2),
            check: |e| {
                // Ids sent as numbers: those nested objects read as None ...
                assert!(e.webhook().is_none());
                assert!(e.created_by().is_none());
                let f = file(e);
                assert!(f.item.parent.is_none() && f.file_version.is_none());
                // ... everything else is intact, and the numbers are still there.
                assert_eq!(f.size, Some(48213));
                assert_eq!(f.raw["parent"]["id"], 218_731_577_810_u64);
                assert!(e.raw().contains(r#""webhook":{"id":1837162,"#));
            },
        },
        Case {
            file: "odd.size-as-string.json",
            trigger: "FILE.UPLOADED",
            source: Some(Q2),
            check: |e| {
                let f = file(e);
                assert_eq!((f.size, f.item.sequence_id.as_deref()), (None, None));
                assert_eq!(f.raw["size"], "48213");
                assert_eq!(f.raw["sequence_id"], 0);
                assert_eq!(f.item.name.as_deref(), Some("Q2 revenue forecast.xlsx"));
            },
        },
        Case {
            file: "reference-example.json",
            trigger: "FILE.UPLOADED",
            source: Some(("file", "12345")),
            check: |e| {
                let webhook = e.webhook().expect("webhook");
                assert_eq!(
                    webhook.address.as_deref(),
                    Some("https://example.com/webhooks")
                );
                assert_eq!(
                    webhook.target.as_ref().map(|t| t.id.as_str()),
                    Some("1231232")
                );
                assert_eq!(
                    webhook.triggers.as_deref(),
                    Some(&[Trigger::FileUploaded][..])
                );
                assert_eq!(
                    webhook.created_by.as_ref().map(|u| u.id.as_str()),
                    Some("11446498")
                );
                assert!(webhook.created_at.is_some());
                let f = file(e);
                assert_eq!(f.size, Some(629_644));
                let link = f.item.shared_link.as_ref().expect("shared link");
                assert_eq!(
                    link.vanity_url.as_deref(),
                    Some("https://acme.app.box.com/v/my_url/")
                );
                assert_eq!(link.effective_permission.as_deref(), Some("can_download"));
                assert!(link.unshared_at.is_some());
            },
        },
        Case {
            file: "shared_link.created.json",
            trigger: "SHARED_LINK.CREATED",
            source: Some(Q2),
            check: |e| {
                let url = file(e)
                    .item
                    .shared_link
                    .as_ref()
                    .and_then(|l| l.url.as_deref());
                assert_eq!(
                    url,
                    Some("https://northwind.app.box.com/s/vspke7y05sb214wjokpk")
                );
            },
        },
        Case {
            file: "shared_link.deleted.json",
            trigger: "SHARED_LINK.DELETED",
            source: Some(Q2),
            check: |e| assert!(file(e).item.shared_link.is_none()),
        },
        Case {
            file: "shared_link.updated.json",
            trigger: "SHARED_LINK.UPDATED",
            source: Some(("web_link", "12882021")),
            check: |e| {
                let Some(Source::WebLink(link)) = e.source() else {
                    panic!("a web link")
                };
                assert_eq!(
                    link.url.as_deref(),
                    Some("https://www.northwind.example/board/2024-q2?view=slides")
                );
                let shared = link.item.shared_link.as_ref().expect("shared link");
                assert_eq!(
                    shared.vanity_url.as_deref(),
                    Some("https://northwind.app.box.com/v/board-q2")
                );
                assert_eq!(shared.download_url, None);
            },
        },
        Case {
            file: "sign_request.completed.json",
            trigger: "SIGN_REQUEST.COMPLETED",
            source: Some(NDA),
            check: |e| {
                sign_block(e);
                let emails = e.additional_info().signer_emails();
                assert_eq!(
                    emails,
                    ["priya@contoso.example", "ann.lee@northwind.example"]
                );
                assert_eq!(
                    file(e).item.name.as_deref(),
                    Some("NDA Contoso (signed).pdf")
                );
            },
        },
        Case {
            file: "sign_request.declined.json",
            trigger: "SIGN_REQUEST.DECLINED",
            source: Some(("sign-request", "6f1c2b7e-93a1-4f0d-b1e5-2a8c9d4e7b30")),
            check: |e| {
                sign_block(e);
                let Some(Source::Unknown { raw, .. }) = e.source() else {
                    panic!("unknown source")
                };
                assert_eq!(raw["status"], "declined");
            },
        },
        Case {
            file: "sign_request.error_finalizing.json",
            trigger: "SIGN_REQUEST.ERROR_FINALIZING",
            source: Some(NDA),
            check: sign_block,
        },
        Case {
            file: "sign_request.expired.json",
            trigger: "SIGN_REQUEST.EXPIRED",
            source: Some(NDA),
            check: |e| {
                assert_eq!(
                    e.additional_info().signer_emails(),
                    ["legal@fabrikam.example"]
                );
            },
        },
        Case {
            file: "sign_request.sign_document_created.json",
            trigger: "SIGN_REQUEST.SIGN_DOCUMENT_CREATED",
            source: Some(NDA),
            check: sign_block,
        },
        Case {
            file: "sign_request.sign_error_finalizing.json",
            trigger: "SIGN_REQUEST.SIGN_ERROR_FINALIZING",
            source: Some(NDA),
            check: sign_block,
        },
        Case {
            file: "sign_request.sign_signer_signed.json",
            trigger: "SIGN_REQUEST.SIGN_SIGNER_SIGNED",
            source: Some(NDA),
            check: |e| {
                sign_block(e);
                assert_eq!(e.trigger(), &Trigger::SignRequestSignSignerSigned);
            },
        },
        Case {
            file: "sign_request.signature_requested.json",
            trigger: "SIGN_REQUEST.SIGNATURE_REQUESTED",
            source: Some(NDA),
            check: sign_block,
        },
        Case {
            file: "sign_request.signer_email_bounced.json",
            trigger: "SIGN_REQUEST.SIGNER_EMAIL_BOUNCED",
            source: Some(NDA),
            check: |e| {
                let emails = e.additional_info().signer_emails();
                assert_eq!(emails, ["no-such-person@tailspin.example"]);
            },
        },
        Case {
            file: "sign_request.signer_signed.json",
            trigger: "SIGN_REQUEST.SIGNER_SIGNED",
            source: Some(NDA),
            check: |e| {
                sign_block(e);
                assert_eq!(e.trigger(), &Trigger::SignRequestSignerSigned);
            },
        },
        Case {
            file: "task_assignment.created.json",
            trigger: "TASK_ASSIGNMENT.CREATED",
            source: Some(("task_assignment", "8018809384")),
            check: |e| {
                let Some(Source::TaskAssignment(t)) = e.source() else {
                    panic!("a task assignment")
                };
                assert_eq!(t.resolution_state.as_deref(), Some("incomplete"));
                assert_eq!(
                    t.assigned_to.as_ref().map(|u| u.id.as_str()),
                    Some("20571735")
                );
                assert_eq!(
                    t.item.as_ref().map(|i| i.id.as_str()),
                    Some("1514863282731")
                );
                assert_eq!((t.completed_at, t.reminded_at), (None, None));
            },
        },
        Case {
            file: "task_assignment.updated.json",
            trigger: "TASK_ASSIGNMENT.UPDATED",
            source: Some(("task_assignment", "8018809384")),
            check: |e| {
                let Some(Source::TaskAssignment(t)) = e.source() else {
                    panic!("a task assignment")
                };
                assert_eq!(t.resolution_state.as_deref(), Some("approved"));
                assert!(t.completed_at.is_some());
                assert_eq!(
                    t.assigned_by.as_ref().map(|u| u.id.as_str()),
                    Some("19098412")
                );
            },
        },
        Case {
            file: "unknown-trigger.file-archived.json",
            trigger: "FILE.ARCHIVED",
            source: Some(Q2),
            check: |e| {
                assert_eq!(e.trigger(), &Trigger::Other("FILE.ARCHIVED".to_owned()));
                assert_eq!(e.trigger().family(), TriggerFamily::File);
                assert_eq!(
                    e.additional_info().get("retention_days"),
                    Some(&3650.into())
                );
            },
        },
        Case {
            file: "unknown-trigger.hub-created.json",
            trigger: "HUB.CREATED",
            source: Some(("hubs", "7381524")),
            check: |e| {
                assert_eq!(e.trigger().family(), TriggerFamily::Other);
                let Some(Source::Unknown { type_name, raw, .. }) = e.source() else {
                    panic!("unknown source")
                };
                assert_eq!(type_name, "hubs");
                assert_eq!(raw["title"], "Sales enablement");
            },
        },
        Case {
            file: "webhook.deleted.json",
            trigger: "WEBHOOK.DELETED",
            source: Some(("folder", "218730924451")),
            check: |e| {
                let reason = e.additional_info().deletion_reason();
                assert_eq!(reason, Some(DeletionReason::AutoCleanup));
            },
        },
    ]
}

#[test]
fn every_fixture_has_a_case_and_every_case_a_fixture() {
    let listed: BTreeSet<String> = cases().iter().map(|c| c.file.to_owned()).collect();
    assert_eq!(listed, fixture_names());
}

#[test]
fn every_fixture_parses_to_its_expected_values() {
    for case in cases() {
        let event = WebhookEvent::parse(&body(case.file))
            .unwrap_or_else(|err| panic!("{}: {err}", case.file));
        assert_eq!(event.trigger().as_str(), case.trigger, "{}", case.file);
        let source = event.source().map(|s| (s.type_name(), s.id()));
        assert_eq!(source, case.source, "{}", case.file);
        assert!(!event.id().is_empty(), "{}", case.file);
        (case.check)(&event);
    }
}

#[test]
fn the_raw_body_is_kept_byte_for_byte() {
    for name in fixture_names() {
        let body = body(&name);
        let event = WebhookEvent::parse(&body).expect("parses");
        assert_eq!(event.raw().as_bytes(), body.as_slice(), "{name}");
    }
}

#[test]
fn the_envelope_agrees_with_the_event_on_every_fixture() {
    for name in fixture_names() {
        let body = body(&name);
        let event = WebhookEvent::parse(&body).expect("parses");
        let envelope = Envelope::parse(&body).expect("parses");
        assert_eq!(envelope, event.envelope(), "{name}");
        assert_eq!(envelope.id(), event.id());
        assert_eq!(envelope.trigger(), event.trigger());
        assert_eq!(
            envelope.webhook_id(),
            event.webhook().map(|w| w.id.as_str())
        );
        assert_eq!(
            envelope.source_type(),
            event.source().map(Source::type_name)
        );
        assert_eq!(envelope.source_id(), event.source().map(Source::id));
    }
}

#[test]
fn every_trigger_of_protocol_5_1_has_a_fixture() {
    let seen: BTreeSet<Trigger> = fixture_names()
        .iter()
        .map(|name| {
            WebhookEvent::parse(&body(name))
                .expect("parses")
                .trigger()
                .clone()
        })
        .collect();
    for trigger in Trigger::KNOWN {
        assert!(seen.contains(trigger), "no fixture for {trigger}");
    }
}

/// The corpus is what Box puts on the wire (see "The escaped form" in docs/PROTOCOL.md): ASCII with
/// `\/` and lowercase `\uXXXX`, compact, envelope keys in Box's order.
#[test]
fn fixtures_are_in_box_wire_form() {
    const ORDER: [&str; 8] = [
        "type",
        "id",
        "created_at",
        "trigger",
        "webhook",
        "created_by",
        "source",
        "additional_info",
    ];
    for name in fixture_names() {
        let body = body(&name);
        assert!(body.is_ascii(), "{name}: not ASCII");
        let escaped = escaped_form(&body).expect("UTF-8");
        assert!(
            matches!(escaped, Cow::Borrowed(_)),
            "{name}: not in the escaped form"
        );
        assert!(is_compact(&body), "{name}: not compact");
        assert!(
            hex_escapes_are_lowercase(&body),
            "{name}: uppercase \\u escape"
        );
        let keys = top_level_keys(&body);
        let positions: Vec<usize> = keys
            .iter()
            .map(|k| ORDER.iter().position(|o| o == k).expect("an envelope key"))
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "{name}: key order {keys:?}"
        );
    }
}

/// No whitespace outside strings.
fn is_compact(body: &[u8]) -> bool {
    let (mut in_string, mut escaped) = (false, false);
    for &b in body {
        match (in_string, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (_, false, b'"') => in_string = !in_string,
            (false, _, b' ' | b'\n' | b'\r' | b'\t') => return false,
            _ => {}
        }
    }
    true
}

fn hex_escapes_are_lowercase(body: &[u8]) -> bool {
    let text = std::str::from_utf8(body).expect("ASCII");
    text.split("\\u").skip(1).all(|rest| {
        rest.chars()
            .take(4)
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

/// The top-level keys in the order they appear.
fn top_level_keys(body: &[u8]) -> Vec<String> {
    struct Keys(Vec<String>);
    impl<'de> serde::Deserialize<'de> for Keys {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Keys;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Keys, A::Error> {
                    let mut keys = Vec::new();
                    while let Some((key, serde::de::IgnoredAny)) = map.next_entry::<String, _>()? {
                        keys.push(key);
                    }
                    Ok(Keys(keys))
                }
            }
            d.deserialize_map(V)
        }
    }
    serde_json::from_slice::<Keys>(body).expect("an object").0
}
