//! [`V1Trigger`]: the V1 event types, open-ended.

use std::fmt;

/// What happened, as a V1 callback's trigger parameter says.
///
/// Box's Developer Console offers 14 event triggers for V1 webhooks. Box's
/// current public documentation names neither the triggers nor the text
/// the console substitutes for the trigger placeholder, so these variants
/// are boxhook's names for them, matched case-insensitively, with `_`,
/// `-` and spaces treated alike. Anything else is [`Other`](Self::Other),
/// with the text exactly as received; nothing is refused.
///
/// ```
/// use boxhook::v1::V1Trigger;
///
/// assert_eq!(V1Trigger::parse("uploaded"), V1Trigger::Uploaded);
/// assert_eq!(V1Trigger::parse("Shared-Link"), V1Trigger::SharedLink);
/// assert_eq!(V1Trigger::parse("tagged"), V1Trigger::Other("tagged".into()));
/// assert_eq!(V1Trigger::SharedLink.as_str(), "shared_link");
/// assert_eq!(V1Trigger::ALL.len(), 14);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum V1Trigger {
    /// A file was uploaded (a new file or a new version).
    Uploaded,
    /// A file was downloaded.
    Downloaded,
    /// A file was previewed.
    Previewed,
    /// A folder was created.
    Created,
    /// An item was moved.
    Moved,
    /// An item was copied.
    Copied,
    /// An item was deleted (moved to the trash).
    Deleted,
    /// An item was restored from the trash.
    Restored,
    /// An item was renamed.
    Renamed,
    /// A comment was added.
    Commented,
    /// A file was locked.
    Locked,
    /// A file was unlocked.
    Unlocked,
    /// A shared link was created or changed.
    SharedLink,
    /// A collaborator was invited.
    Collaborated,
    /// Any other text, exactly as received (the empty string when the
    /// parameter was missing).
    Other(String),
}

impl V1Trigger {
    /// The 14 known triggers, in the order above.
    pub const ALL: [Self; 14] = [
        Self::Uploaded,
        Self::Downloaded,
        Self::Previewed,
        Self::Created,
        Self::Moved,
        Self::Copied,
        Self::Deleted,
        Self::Restored,
        Self::Renamed,
        Self::Commented,
        Self::Locked,
        Self::Unlocked,
        Self::SharedLink,
        Self::Collaborated,
    ];

    /// The trigger `text` names (see the type's docs for the matching).
    #[must_use]
    pub fn parse(text: &str) -> Self {
        let normalized: String = text
            .chars()
            .map(|c| match c {
                '-' | ' ' => '_',
                other => other.to_ascii_lowercase(),
            })
            .collect();
        Self::ALL
            .into_iter()
            .find(|known| known.as_str() == normalized)
            .unwrap_or_else(|| Self::Other(text.to_owned()))
    }

    /// boxhook's snake-case name, or the text of [`Other`](Self::Other).
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Uploaded => "uploaded",
            Self::Downloaded => "downloaded",
            Self::Previewed => "previewed",
            Self::Created => "created",
            Self::Moved => "moved",
            Self::Copied => "copied",
            Self::Deleted => "deleted",
            Self::Restored => "restored",
            Self::Renamed => "renamed",
            Self::Commented => "commented",
            Self::Locked => "locked",
            Self::Unlocked => "unlocked",
            Self::SharedLink => "shared_link",
            Self::Collaborated => "collaborated",
            Self::Other(text) => text,
        }
    }
}

impl fmt::Display for V1Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_trigger_round_trips_through_its_name() {
        for known in V1Trigger::ALL {
            assert_eq!(V1Trigger::parse(known.as_str()), known);
            assert_eq!(V1Trigger::parse(&known.as_str().to_uppercase()), known);
        }
    }

    #[test]
    fn unknown_text_is_kept_exactly() {
        for text in ["", "FILE.UPLOADED", "uploaded ", "Ünïcode", "shared__link"] {
            assert_eq!(V1Trigger::parse(text), V1Trigger::Other(text.to_owned()));
            assert_eq!(V1Trigger::parse(text).as_str(), text);
        }
    }
}
