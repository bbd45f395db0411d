//! [`TriggerFamily`]: triggers grouped for wildcard routing (`FILE.*`).

use std::fmt;

/// The group a [`Trigger`](super::Trigger) belongs to, e.g. every `FILE.*`.
///
/// ```
/// use boxhook_core::model::{Trigger, TriggerFamily};
///
/// // A router keyed by pattern: "FILE.*" names the file family.
/// let pattern = "FILE.*";
/// let family = TriggerFamily::from_name(pattern.trim_end_matches(".*"));
/// assert_eq!(family, Some(TriggerFamily::File));
/// assert_eq!(Trigger::FileRenamed.family(), TriggerFamily::File);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum TriggerFamily {
    /// `FILE.*`
    File,
    /// `FOLDER.*`
    Folder,
    /// `COMMENT.*`
    Comment,
    /// `TASK_ASSIGNMENT.*`
    TaskAssignment,
    /// `METADATA_INSTANCE.*`
    MetadataInstance,
    /// `COLLABORATION.*`
    Collaboration,
    /// `SHARED_LINK.*`
    SharedLink,
    /// `SIGN_REQUEST.*`, in both spellings.
    SignRequest,
    /// `WEBHOOK.*`
    Webhook,
    /// `DOCGEN_*` (Box writes these with an underscore, not a dot).
    DocGen,
    /// `NO_ACTIVE_SESSION`: the webhook's authorization died (see "`WEBHOOK.DELETED` and
    /// `NO_ACTIVE_SESSION`" in docs/PROTOCOL.md).
    Session,
    /// A trigger whose prefix names no family above.
    Other,
}

impl TriggerFamily {
    /// Every family, [`TriggerFamily::Other`] last.
    ///
    /// ```
    /// use boxhook_core::model::TriggerFamily;
    ///
    /// assert_eq!(TriggerFamily::ALL.len(), 12);
    /// ```
    pub const ALL: &'static [TriggerFamily] = &[
        Self::File,
        Self::Folder,
        Self::Comment,
        Self::TaskAssignment,
        Self::MetadataInstance,
        Self::Collaboration,
        Self::SharedLink,
        Self::SignRequest,
        Self::Webhook,
        Self::DocGen,
        Self::Session,
        Self::Other,
    ];

    /// The family's name: what a wildcard pattern writes before `.*`.
    ///
    /// ```
    /// use boxhook_core::model::TriggerFamily;
    ///
    /// assert_eq!(TriggerFamily::SharedLink.as_str(), "SHARED_LINK");
    /// assert_eq!(TriggerFamily::DocGen.as_str(), "DOCGEN");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "FILE",
            Self::Folder => "FOLDER",
            Self::Comment => "COMMENT",
            Self::TaskAssignment => "TASK_ASSIGNMENT",
            Self::MetadataInstance => "METADATA_INSTANCE",
            Self::Collaboration => "COLLABORATION",
            Self::SharedLink => "SHARED_LINK",
            Self::SignRequest => "SIGN_REQUEST",
            Self::Webhook => "WEBHOOK",
            Self::DocGen => "DOCGEN",
            Self::Session => "SESSION",
            Self::Other => "OTHER",
        }
    }

    /// The text every trigger of the family starts with on the wire
    /// (`"FILE."`, `"DOCGEN_"`, `"NO_ACTIVE_SESSION"`); `None` for
    /// [`TriggerFamily::Other`], which has no common prefix.
    ///
    /// ```
    /// use boxhook_core::model::{Trigger, TriggerFamily};
    ///
    /// let prefix = TriggerFamily::File.prefix().unwrap();
    /// assert!(Trigger::FileUploaded.as_str().starts_with(prefix));
    /// assert_eq!(TriggerFamily::Other.prefix(), None);
    /// ```
    #[must_use]
    pub fn prefix(self) -> Option<&'static str> {
        Some(match self {
            Self::File => "FILE.",
            Self::Folder => "FOLDER.",
            Self::Comment => "COMMENT.",
            Self::TaskAssignment => "TASK_ASSIGNMENT.",
            Self::MetadataInstance => "METADATA_INSTANCE.",
            Self::Collaboration => "COLLABORATION.",
            Self::SharedLink => "SHARED_LINK.",
            Self::SignRequest => "SIGN_REQUEST.",
            Self::Webhook => "WEBHOOK.",
            Self::DocGen => "DOCGEN_",
            Self::Session => "NO_ACTIVE_SESSION",
            Self::Other => return None,
        })
    }

    /// The family named `name` (as [`TriggerFamily::as_str`] spells it).
    ///
    /// ```
    /// use boxhook_core::model::TriggerFamily;
    ///
    /// assert_eq!(TriggerFamily::from_name("SIGN_REQUEST"), Some(TriggerFamily::SignRequest));
    /// assert_eq!(TriggerFamily::from_name("file"), None);
    /// ```
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|family| family.as_str() == name)
    }

    /// The family of a trigger this version does not know, by its prefix.
    pub(crate) fn of_unknown(trigger: &str) -> Self {
        Self::ALL
            .iter()
            .copied()
            .find(|family| family.prefix().is_some_and(|p| trigger.starts_with(p)))
            .unwrap_or(Self::Other)
    }
}

impl fmt::Display for TriggerFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Trigger;
    use super::*;

    #[test]
    fn every_known_trigger_starts_with_its_family_prefix() {
        for trigger in Trigger::KNOWN {
            let prefix = trigger.family().prefix().expect("known families have one");
            assert!(trigger.as_str().starts_with(prefix), "{trigger}");
        }
    }

    #[test]
    fn unknown_triggers_take_the_family_their_prefix_names() {
        let cases = [
            ("FILE.ARCHIVED", TriggerFamily::File),
            ("SIGN_REQUEST.VIEWED", TriggerFamily::SignRequest),
            ("DOCGEN_BATCH_DONE", TriggerFamily::DocGen),
            ("FILE", TriggerFamily::Other),
            ("FILES.X", TriggerFamily::Other),
            ("HUB.CREATED", TriggerFamily::Other),
            ("", TriggerFamily::Other),
        ];
        for (name, family) in cases {
            assert_eq!(Trigger::from(name).family(), family, "{name}");
        }
    }

    #[test]
    fn names_round_trip() {
        for family in TriggerFamily::ALL {
            assert_eq!(TriggerFamily::from_name(family.as_str()), Some(*family));
            assert_eq!(family.to_string(), family.as_str());
        }
    }
}
