//! Which triggers a V2 webhook may ask for, and on which target type: the
//! table of Box's "Webhook Event Triggers" guide
//! (<https://developer.box.com/guides/webhooks/triggers/>).

use crate::model::TargetType;

/// `(trigger, on a file, on a folder)`, as Box's trigger guide lists them.
/// `SIGN_REQUEST.SIGN_SIGNER_SIGNED`, `SIGN_DOCUMENT_CREATED` and
/// `SIGN_ERROR_FINALIZING` are the API specification's spellings of three
/// of the guide's sign triggers. `WEBHOOK.DELETED` is sent to every webhook
/// and cannot be asked for.
pub const TRIGGERS: &[(&str, bool, bool)] = &[
    ("COLLABORATION.CREATED", false, true),
    ("COLLABORATION.ACCEPTED", false, true),
    ("COLLABORATION.REJECTED", false, true),
    ("COLLABORATION.REMOVED", false, true),
    ("COLLABORATION.UPDATED", false, true),
    ("COMMENT.CREATED", true, true),
    ("COMMENT.UPDATED", true, true),
    ("COMMENT.DELETED", true, true),
    ("FILE.UPLOADED", false, true),
    ("FILE.PREVIEWED", true, true),
    ("FILE.DOWNLOADED", true, true),
    ("FILE.TRASHED", true, true),
    ("FILE.DELETED", true, true),
    ("FILE.RESTORED", true, true),
    ("FILE.COPIED", true, true),
    ("FILE.MOVED", true, true),
    ("FILE.LOCKED", true, true),
    ("FILE.UNLOCKED", true, true),
    ("FILE.RENAMED", true, true),
    ("FOLDER.CREATED", false, true),
    ("FOLDER.RENAMED", false, true),
    ("FOLDER.DOWNLOADED", false, true),
    ("FOLDER.RESTORED", false, true),
    ("FOLDER.DELETED", false, true),
    ("FOLDER.COPIED", false, true),
    ("FOLDER.MOVED", false, true),
    ("FOLDER.TRASHED", false, true),
    ("METADATA_INSTANCE.CREATED", true, true),
    ("METADATA_INSTANCE.UPDATED", true, true),
    ("METADATA_INSTANCE.DELETED", true, true),
    ("SHARED_LINK.DELETED", true, true),
    ("SHARED_LINK.CREATED", true, true),
    ("SHARED_LINK.UPDATED", true, true),
    ("TASK_ASSIGNMENT.CREATED", true, true),
    ("TASK_ASSIGNMENT.UPDATED", true, true),
    ("SIGN_REQUEST.COMPLETED", true, true),
    ("SIGN_REQUEST.DECLINED", true, true),
    ("SIGN_REQUEST.EXPIRED", true, true),
    ("SIGN_REQUEST.SIGNER_EMAIL_BOUNCED", true, true),
    ("SIGN_REQUEST.SIGNER_SIGNED", true, true),
    ("SIGN_REQUEST.SIGNATURE_REQUESTED", true, true),
    ("SIGN_REQUEST.ERROR_FINALIZING", true, true),
    ("SIGN_REQUEST.SIGN_SIGNER_SIGNED", true, true),
    ("SIGN_REQUEST.SIGN_DOCUMENT_CREATED", true, true),
    ("SIGN_REQUEST.SIGN_ERROR_FINALIZING", true, true),
    ("WEBHOOK.DELETED", false, false),
];

/// Why `trigger` cannot be asked for on a `target` item, or `None` when it
/// can.
///
/// ```
/// use boxhook_admin::triggers::problem;
/// use boxhook_admin::TargetType;
///
/// assert_eq!(problem("FILE.UPLOADED", TargetType::Folder), None);
/// assert_eq!(
///     problem("FILE.UPLOADED", TargetType::File).as_deref(),
///     Some("FILE.UPLOADED only applies to folders (a file is never uploaded into a file)")
/// );
/// assert_eq!(
///     problem("FILE.UPLOAD", TargetType::Folder).as_deref(),
///     Some("FILE.UPLOAD is not a Box trigger; did you mean FILE.UPLOADED?")
/// );
/// ```
#[must_use]
pub fn problem(trigger: &str, target: TargetType) -> Option<String> {
    let Some(&(_, file, folder)) = TRIGGERS.iter().find(|(t, _, _)| *t == trigger) else {
        return Some(unknown(trigger));
    };
    match (target, file, folder) {
        (TargetType::File, true, _) | (TargetType::Folder, _, true) => None,
        (_, false, false) => Some(format!(
            "{trigger} cannot be asked for: Box sends it to every webhook on its own"
        )),
        (TargetType::File, false, true) => Some(format!(
            "{trigger} only applies to folders{}",
            if trigger == "FILE.UPLOADED" {
                " (a file is never uploaded into a file)"
            } else {
                "; put the webhook on the file's folder"
            }
        )),
        (TargetType::Folder, true, false) => Some(format!("{trigger} only applies to files")),
    }
}

fn unknown(trigger: &str) -> String {
    let upper = trigger.to_ascii_uppercase();
    let guess = TRIGGERS
        .iter()
        .map(|(t, _, _)| *t)
        .find(|t| *t == upper || (upper.len() >= 6 && t.starts_with(upper.as_str())));
    match guess {
        Some(t) => format!("{trigger} is not a Box trigger; did you mean {t}?"),
        None => format!(
            "{trigger} is not a Box trigger (see https://developer.box.com/guides/webhooks/triggers/)"
        ),
    }
}
