//! What `apply` would change: the desired state against the webhooks Box
//! has for this app and user.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::client::BoxClient;
use crate::desired::{DesiredState, DesiredWebhook};
use crate::error::Error;
use crate::model::{Target, Webhook};

/// How a webhook's address changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AddressChange {
    /// The address Box has.
    pub from: String,
    /// The declared one.
    pub to: String,
}

/// How an existing webhook differs from its declaration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    /// The address, when it changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<AddressChange>,
    /// Triggers declared but not on the webhook.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub add_triggers: Vec<String>,
    /// Triggers on the webhook but not declared.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remove_triggers: Vec<String>,
}

impl Diff {
    /// The difference between what Box has and what is declared; empty when
    /// they agree (trigger order does not count).
    #[must_use]
    pub fn between(current: &Webhook, desired: &DesiredWebhook) -> Self {
        let have: BTreeSet<&str> = current.triggers.iter().map(String::as_str).collect();
        let want: BTreeSet<&str> = desired.triggers.iter().map(String::as_str).collect();
        Self {
            address: (current.address != desired.address).then(|| AddressChange {
                from: current.address.clone(),
                to: desired.address.clone(),
            }),
            add_triggers: want.difference(&have).map(|t| (*t).to_owned()).collect(),
            remove_triggers: have.difference(&want).map(|t| (*t).to_owned()).collect(),
        }
    }

    /// Whether nothing differs.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.address.is_none() && self.add_triggers.is_empty() && self.remove_triggers.is_empty()
    }
}

/// One step of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Change {
    /// No webhook on the target: create it.
    Create {
        /// The webhook to create.
        #[serde(flatten)]
        webhook: Planned,
    },
    /// A webhook on the target differs: update it in place.
    Update {
        /// Its id.
        id: String,
        /// The declared webhook.
        #[serde(flatten)]
        webhook: Planned,
        /// What changes.
        diff: Diff,
    },
    /// The webhook on the target is as declared.
    Unchanged {
        /// Its id.
        id: String,
        /// The declared webhook.
        #[serde(flatten)]
        webhook: Planned,
    },
    /// With `--prune`: a webhook to one of the declared addresses on a
    /// target that is not declared.
    Delete {
        /// Its id.
        id: String,
        /// Its target.
        target: String,
        /// Its address.
        address: String,
    },
}

/// A declared webhook, as a plan shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Planned {
    /// `folder:ID` or `file:ID`.
    pub target: String,
    /// The address.
    pub address: String,
    /// The triggers.
    pub triggers: Vec<String>,
}

impl From<&DesiredWebhook> for Planned {
    fn from(w: &DesiredWebhook) -> Self {
        Self {
            target: w.target.to_string(),
            address: w.address.clone(),
            triggers: w.triggers.clone(),
        }
    }
}

/// The changes that take Box from `current` to `desired`, in the file's
/// order, deletions last.
///
/// ```
/// use boxhook_admin::{plan::{plan, Change}, DesiredState, Target, Webhook};
///
/// let desired = DesiredState::parse(r#"
///     [[webhook]]
///     target = "folder:1"
///     address = "https://hooks.example.com/box"
///     triggers = ["FILE.UPLOADED"]
/// "#)?;
/// let current = [Webhook {
///     id: "9".into(),
///     target: Target::folder("2"),
///     address: "https://hooks.example.com/box".into(),
///     triggers: vec!["FILE.UPLOADED".into()],
///     created_at: None,
/// }];
/// let changes = plan(&desired, &current, true);
/// assert!(matches!(&changes[0], Change::Create { .. }));
/// assert!(matches!(&changes[1], Change::Delete { id, .. } if id == "9"));
/// assert_eq!(plan(&desired, &current, false).len(), 1);
/// # Ok::<(), boxhook_admin::DesiredError>(())
/// ```
#[must_use]
pub fn plan(desired: &DesiredState, current: &[Webhook], prune: bool) -> Vec<Change> {
    let mut changes: Vec<Change> = desired
        .webhooks()
        .iter()
        .map(
            |want| match current.iter().find(|w| w.target == want.target) {
                None => Change::Create {
                    webhook: want.into(),
                },
                Some(have) => {
                    let diff = Diff::between(have, want);
                    if diff.is_empty() {
                        Change::Unchanged {
                            id: have.id.clone(),
                            webhook: want.into(),
                        }
                    } else {
                        Change::Update {
                            id: have.id.clone(),
                            webhook: want.into(),
                            diff,
                        }
                    }
                }
            },
        )
        .collect();
    if prune {
        changes.extend(
            current
                .iter()
                .filter(|w| {
                    desired.on_target(&w.target).is_none() && desired.has_address(&w.address)
                })
                .map(|w| Change::Delete {
                    id: w.id.clone(),
                    target: w.target.to_string(),
                    address: w.address.clone(),
                }),
        );
    }
    changes
}

/// Reads what Box has, with the fewest calls: the list, then a `GET` for
/// each webhook on a declared target, and, with `prune`, for every other
/// one too (its address decides whether it is pruned).
pub async fn current_state(
    client: &BoxClient,
    desired: &DesiredState,
    prune: bool,
) -> Result<Vec<Webhook>, Error> {
    let mut current = Vec::new();
    for mini in client.list().await? {
        if !prune && desired.on_target(&mini.target).is_none() {
            continue;
        }
        current.extend(client.get_if_exists(&mini.id).await?);
    }
    Ok(current)
}

/// The target a [`Change`] is about, parsed back.
pub(crate) fn target_of(change: &Change) -> Option<Target> {
    let text = match change {
        Change::Create { webhook }
        | Change::Update { webhook, .. }
        | Change::Unchanged { webhook, .. } => &webhook.target,
        Change::Delete { target, .. } => target,
    };
    text.parse().ok()
}
