//! [`Trigger`]: the event name, open to names Box adds later (see "Payload shapes" in
//! docs/PROTOCOL.md).

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use super::family::TriggerFamily;

/// Declares `Trigger` and its tables from one list, so the variant, its wire
/// string and its family cannot drift apart.
macro_rules! triggers {
    ($($variant:ident => $wire:literal, $family:ident;)+) => {
        /// The event that fired a webhook.
        ///
        /// Every trigger Box documents has a variant; any other string parses
        /// to [`Trigger::Other`] and keeps its exact spelling, so a new Box
        /// trigger still reaches a fallback handler. Both spellings of the
        /// Sign triggers are distinct variants (Box's docs and its API spec
        /// disagree); match them together with `|`.
        ///
        /// Build one with [`str::parse`] or [`From`]; a hand-made
        /// `Other("FILE.UPLOADED".into())` would not equal
        /// [`Trigger::FileUploaded`].
        ///
        /// ```
        /// use boxhook_core::model::Trigger;
        ///
        /// let trigger: Trigger = "SIGN_REQUEST.SIGN_SIGNER_SIGNED".parse().unwrap();
        /// let what = match &trigger {
        ///     Trigger::FileUploaded | Trigger::FileCopied => "new file",
        ///     Trigger::SignRequestSignerSigned | Trigger::SignRequestSignSignerSigned => "signed",
        ///     Trigger::NoActiveSession => "re-authorize the app",
        ///     Trigger::Other(name) => name.as_str(),
        ///     _ => "something else",
        /// };
        /// assert_eq!(what, "signed");
        /// ```
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Trigger {
            $(
                #[doc = concat!("`", $wire, "`")]
                $variant,
            )+
            /// A trigger this version does not know, spelled exactly as sent.
            Other(String),
        }

        impl Trigger {
            /// Every known trigger (all variants but [`Trigger::Other`]),
            /// grouped by family.
            ///
            /// ```
            /// use boxhook_core::model::Trigger;
            ///
            /// assert!(Trigger::KNOWN.contains(&Trigger::NoActiveSession));
            /// assert!(Trigger::KNOWN.iter().all(Trigger::is_known));
            /// ```
            pub const KNOWN: &'static [Trigger] = &[$(Trigger::$variant),+];

            /// The trigger as Box spells it on the wire.
            ///
            /// ```
            /// use boxhook_core::model::Trigger;
            ///
            /// assert_eq!(Trigger::FolderMoved.as_str(), "FOLDER.MOVED");
            /// assert_eq!(Trigger::from("HUB.CREATED").as_str(), "HUB.CREATED");
            /// ```
            #[must_use]
            pub fn as_str(&self) -> &str {
                match self {
                    $(Trigger::$variant => $wire,)+
                    Trigger::Other(name) => name,
                }
            }

            /// The wire name of a known trigger, borrowed for as long as the
            /// program runs (a metric label, a map key), or `None` for
            /// [`Trigger::Other`]. One `match`, no search.
            ///
            /// ```
            /// use boxhook_core::model::Trigger;
            ///
            /// assert_eq!(Trigger::FileLocked.known_name(), Some("FILE.LOCKED"));
            /// assert_eq!(Trigger::from("HUB.CREATED").known_name(), None);
            /// ```
            #[must_use]
            pub fn known_name(&self) -> Option<&'static str> {
                match self {
                    $(Trigger::$variant => Some($wire),)+
                    Trigger::Other(_) => None,
                }
            }

            /// The family this trigger belongs to, for wildcard routing
            /// (`FILE.*`). An unknown trigger takes the family its prefix
            /// names (`FILE.ARCHIVED` is a file trigger), else
            /// [`TriggerFamily::Other`].
            ///
            /// ```
            /// use boxhook_core::model::{Trigger, TriggerFamily};
            ///
            /// assert_eq!(Trigger::FileLocked.family(), TriggerFamily::File);
            /// assert_eq!(Trigger::from("FILE.ARCHIVED").family(), TriggerFamily::File);
            /// assert_eq!(Trigger::from("HUB.CREATED").family(), TriggerFamily::Other);
            /// ```
            #[must_use]
            pub fn family(&self) -> TriggerFamily {
                match self {
                    $(Trigger::$variant => TriggerFamily::$family,)+
                    Trigger::Other(name) => TriggerFamily::of_unknown(name),
                }
            }

            fn lookup(name: &str) -> Option<Self> {
                match name {
                    $($wire => Some(Trigger::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

triggers! {
    FileUploaded => "FILE.UPLOADED", File;
    FilePreviewed => "FILE.PREVIEWED", File;
    FileDownloaded => "FILE.DOWNLOADED", File;
    FileTrashed => "FILE.TRASHED", File;
    FileDeleted => "FILE.DELETED", File;
    FileRestored => "FILE.RESTORED", File;
    FileCopied => "FILE.COPIED", File;
    FileMoved => "FILE.MOVED", File;
    FileLocked => "FILE.LOCKED", File;
    FileUnlocked => "FILE.UNLOCKED", File;
    FileRenamed => "FILE.RENAMED", File;
    FolderCreated => "FOLDER.CREATED", Folder;
    FolderRenamed => "FOLDER.RENAMED", Folder;
    FolderDownloaded => "FOLDER.DOWNLOADED", Folder;
    FolderRestored => "FOLDER.RESTORED", Folder;
    FolderDeleted => "FOLDER.DELETED", Folder;
    FolderCopied => "FOLDER.COPIED", Folder;
    FolderMoved => "FOLDER.MOVED", Folder;
    FolderTrashed => "FOLDER.TRASHED", Folder;
    CommentCreated => "COMMENT.CREATED", Comment;
    CommentUpdated => "COMMENT.UPDATED", Comment;
    CommentDeleted => "COMMENT.DELETED", Comment;
    TaskAssignmentCreated => "TASK_ASSIGNMENT.CREATED", TaskAssignment;
    TaskAssignmentUpdated => "TASK_ASSIGNMENT.UPDATED", TaskAssignment;
    MetadataInstanceCreated => "METADATA_INSTANCE.CREATED", MetadataInstance;
    MetadataInstanceUpdated => "METADATA_INSTANCE.UPDATED", MetadataInstance;
    MetadataInstanceDeleted => "METADATA_INSTANCE.DELETED", MetadataInstance;
    CollaborationCreated => "COLLABORATION.CREATED", Collaboration;
    CollaborationAccepted => "COLLABORATION.ACCEPTED", Collaboration;
    CollaborationRejected => "COLLABORATION.REJECTED", Collaboration;
    CollaborationRemoved => "COLLABORATION.REMOVED", Collaboration;
    CollaborationUpdated => "COLLABORATION.UPDATED", Collaboration;
    SharedLinkDeleted => "SHARED_LINK.DELETED", SharedLink;
    SharedLinkCreated => "SHARED_LINK.CREATED", SharedLink;
    SharedLinkUpdated => "SHARED_LINK.UPDATED", SharedLink;
    SignRequestCompleted => "SIGN_REQUEST.COMPLETED", SignRequest;
    SignRequestDeclined => "SIGN_REQUEST.DECLINED", SignRequest;
    SignRequestExpired => "SIGN_REQUEST.EXPIRED", SignRequest;
    SignRequestSignerEmailBounced => "SIGN_REQUEST.SIGNER_EMAIL_BOUNCED", SignRequest;
    // The docs' spellings ...
    SignRequestSignerSigned => "SIGN_REQUEST.SIGNER_SIGNED", SignRequest;
    SignRequestSignatureRequested => "SIGN_REQUEST.SIGNATURE_REQUESTED", SignRequest;
    SignRequestErrorFinalizing => "SIGN_REQUEST.ERROR_FINALIZING", SignRequest;
    // ... and the API spec's and newer SDKs' spellings of the same events.
    SignRequestSignSignerSigned => "SIGN_REQUEST.SIGN_SIGNER_SIGNED", SignRequest;
    SignRequestSignDocumentCreated => "SIGN_REQUEST.SIGN_DOCUMENT_CREATED", SignRequest;
    SignRequestSignErrorFinalizing => "SIGN_REQUEST.SIGN_ERROR_FINALIZING", SignRequest;
    WebhookDeleted => "WEBHOOK.DELETED", Webhook;
    DocGenDocumentGenerationStarted => "DOCGEN_DOCUMENT_GENERATION_STARTED", DocGen;
    DocGenDocumentGenerationSucceeded => "DOCGEN_DOCUMENT_GENERATION_SUCCEEDED", DocGen;
    DocGenDocumentGenerationFailed => "DOCGEN_DOCUMENT_GENERATION_FAILED", DocGen;
    // In no list at all: sent once the webhook's authorization died.
    NoActiveSession => "NO_ACTIVE_SESSION", Session;
}

impl Trigger {
    /// Every known trigger; the same list as [`Trigger::KNOWN`].
    ///
    /// ```
    /// use boxhook_core::model::Trigger;
    ///
    /// assert_eq!(Trigger::known().len(), Trigger::KNOWN.len());
    /// ```
    #[must_use]
    pub fn known() -> &'static [Trigger] {
        Self::KNOWN
    }

    /// Whether this is a trigger this version knows (not [`Trigger::Other`]).
    ///
    /// ```
    /// use boxhook_core::model::Trigger;
    ///
    /// assert!(Trigger::WebhookDeleted.is_known());
    /// assert!(!Trigger::from("FILE.ARCHIVED").is_known());
    /// ```
    #[must_use]
    pub fn is_known(&self) -> bool {
        !matches!(self, Self::Other(_))
    }
}

impl FromStr for Trigger {
    type Err = Infallible;

    /// Never fails: an unknown name becomes [`Trigger::Other`].
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Ok(Self::from(name))
    }
}

impl From<&str> for Trigger {
    fn from(name: &str) -> Self {
        Self::lookup(name).unwrap_or_else(|| Self::Other(name.to_owned()))
    }
}

impl From<String> for Trigger {
    /// Reuses the string's buffer when the trigger is unknown.
    fn from(name: String) -> Self {
        Self::lookup(&name).unwrap_or(Self::Other(name))
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for Trigger {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl serde::Serialize for Trigger {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Trigger {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_known_trigger_round_trips_to_itself() {
        for trigger in Trigger::KNOWN {
            let parsed = Trigger::from(trigger.as_str());
            assert_eq!(&parsed, trigger);
            assert_eq!(parsed.to_string(), trigger.as_str());
            assert_eq!(trigger.known_name(), Some(trigger.as_str()));
        }
    }

    #[test]
    fn wire_strings_are_unique_and_the_list_is_complete() {
        let names: HashSet<&str> = Trigger::KNOWN.iter().map(Trigger::as_str).collect();
        assert_eq!(names.len(), Trigger::KNOWN.len());
        // 40 listed, 6 Sign spellings, 3 DocGen, NO_ACTIVE_SESSION (see "Triggers" in
        // docs/PROTOCOL.md).
        assert_eq!(Trigger::KNOWN.len(), 40 + 6 + 3 + 1);
    }

    #[test]
    fn unknown_names_keep_their_exact_spelling() {
        for name in ["file.uploaded", "FILE.UPLOADED ", "", "HUB.CREATED", "É"] {
            let trigger = Trigger::from(name);
            assert_eq!(trigger, Trigger::Other(name.to_owned()));
            assert_eq!(trigger.as_str(), name);
            assert_eq!(trigger.known_name(), None);
        }
    }

    #[test]
    fn triggers_key_a_hash_map() {
        let mut seen = HashSet::new();
        assert!(seen.insert(Trigger::FileUploaded));
        assert!(!seen.insert(Trigger::from("FILE.UPLOADED")));
        assert!(seen.insert(Trigger::from("FILE.ARCHIVED")));
    }

    #[test]
    fn serde_uses_the_wire_string() {
        let json = serde_json::to_string(&Trigger::SharedLinkCreated).expect("serializes");
        assert_eq!(json, r#""SHARED_LINK.CREATED""#);
        let back: Trigger = serde_json::from_str(r#""X.Y""#).expect("a string");
        assert_eq!(back, Trigger::Other("X.Y".to_owned()));
    }
}
