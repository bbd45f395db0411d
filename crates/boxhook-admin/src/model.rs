//! The webhook objects of Box's API, as sent and received.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kind of item a webhook watches: Box allows files and folders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetType {
    /// A file.
    File,
    /// A folder (and everything below it).
    Folder,
}

impl TargetType {
    /// Box's spelling: `file` or `folder`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Folder => "folder",
        }
    }
}

/// The item a webhook is attached to, written `folder:ID` or `file:ID`.
///
/// ```
/// use boxhook_admin::{Target, TargetType};
///
/// let target: Target = "folder:218730924451".parse()?;
/// assert_eq!(target.kind, TargetType::Folder);
/// assert_eq!(target.id, "218730924451");
/// assert_eq!(target.to_string(), "folder:218730924451");
/// assert!("drive:1".parse::<Target>().is_err());
/// # Ok::<(), boxhook_admin::TargetParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Target {
    /// `file` or `folder`.
    #[serde(rename = "type")]
    pub kind: TargetType,
    /// The item's id, digits only.
    pub id: String,
}

impl Target {
    /// A folder target.
    #[must_use]
    pub fn folder(id: impl Into<String>) -> Self {
        Self {
            kind: TargetType::Folder,
            id: id.into(),
        }
    }

    /// A file target.
    #[must_use]
    pub fn file(id: impl Into<String>) -> Self {
        Self {
            kind: TargetType::File,
            id: id.into(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.id)
    }
}

/// Why a `TYPE:ID` target did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetParseError(String);

impl fmt::Display for TargetParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TargetParseError {}

impl FromStr for Target {
    type Err = TargetParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((kind, id)) = s.split_once(':') else {
            return Err(TargetParseError(
                "a target is written folder:ID or file:ID, e.g. folder:218730924451".to_owned(),
            ));
        };
        let kind =
            match kind {
                "folder" => TargetType::Folder,
                "file" => TargetType::File,
                _ => return Err(TargetParseError(
                    "the target type must be folder or file (lower case), e.g. folder:218730924451"
                        .to_owned(),
                )),
            };
        if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TargetParseError(
                "the target id must be Box's numeric item id (the digits at the end of the item's \
                 URL in the Box web app)"
                    .to_owned(),
            ));
        }
        Ok(Self {
            kind,
            id: id.to_owned(),
        })
    }
}

/// A webhook as `GET /2.0/webhooks/{id}`, `POST` and `PUT` return it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// Box's id of the webhook.
    pub id: String,
    /// The watched item.
    pub target: Target,
    /// The HTTPS URL Box delivers to.
    pub address: String,
    /// The triggers, as Box spells them (`FILE.UPLOADED`).
    pub triggers: Vec<String>,
    /// When it was created, as Box wrote it, if it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

/// A webhook as the list endpoint returns it: id and target only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookMini {
    /// Box's id of the webhook.
    pub id: String,
    /// The watched item.
    pub target: Target,
}

/// The body of `POST /2.0/webhooks`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NewWebhook {
    /// The item to watch.
    pub target: Target,
    /// The HTTPS URL Box will deliver to.
    pub address: String,
    /// The triggers to deliver.
    pub triggers: Vec<String>,
}

/// The body of `PUT /2.0/webhooks/{id}`: only the fields that change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WebhookUpdate {
    /// A new address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// A new trigger list (replaces the old one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triggers: Option<Vec<String>>,
}

/// One page of `GET /2.0/webhooks`.
#[derive(Debug, Deserialize)]
pub(crate) struct WebhookPage {
    #[serde(default)]
    pub(crate) entries: Vec<WebhookMini>,
    #[serde(default)]
    pub(crate) next_marker: Option<String>,
}
