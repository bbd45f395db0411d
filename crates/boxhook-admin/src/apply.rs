//! Making a plan's changes, without ever creating a duplicate or deleting a
//! webhook to re-create it.

use crate::client::BoxClient;
use crate::desired::{DesiredState, DesiredWebhook};
use crate::error::Error;
use crate::model::{Webhook, WebhookUpdate};
use crate::plan::{target_of, Change, Diff};

/// What was done for one change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Created; the new webhook's id.
    Created(String),
    /// Updated in place.
    Updated(String),
    /// Already as declared: no call written.
    Unchanged(String),
    /// Deleted.
    Deleted(String),
    /// Deleting found it gone already (404).
    AlreadyGone(String),
    /// Creating got 409: the target had a webhook already (another
    /// receiver, a concurrent apply). It was found, compared, and updated
    /// when it differed (`true`) or left alone (`false`).
    Existed(String, bool),
}

impl Applied {
    /// A stable snake-case name, for output and logs.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Created(_) => "created",
            Self::Updated(_) => "updated",
            Self::Unchanged(_) => "unchanged",
            Self::Deleted(_) => "deleted",
            Self::AlreadyGone(_) => "already_gone",
            Self::Existed(_, true) => "existed_updated",
            Self::Existed(_, false) => "existed_unchanged",
        }
    }

    /// The webhook's id.
    #[must_use]
    pub fn id(&self) -> &str {
        match self {
            Self::Created(id)
            | Self::Updated(id)
            | Self::Unchanged(id)
            | Self::Deleted(id)
            | Self::AlreadyGone(id)
            | Self::Existed(id, _) => id,
        }
    }
}

/// One change and what became of it.
#[derive(Debug)]
pub struct ApplyResult {
    /// The planned change.
    pub change: Change,
    /// What was done, or why it failed.
    pub result: Result<Applied, Error>,
}

/// Makes `changes` (from [`plan`](crate::plan::plan) over `desired`), one
/// at a time, and reports each. A failure does not stop the others.
pub async fn apply(
    client: &BoxClient,
    desired: &DesiredState,
    changes: Vec<Change>,
) -> Vec<ApplyResult> {
    let mut results = Vec::with_capacity(changes.len());
    for change in changes {
        let declared = target_of(&change).and_then(|t| desired.on_target(&t));
        let result = match (&change, declared) {
            (Change::Unchanged { id, .. }, _) => Ok(Applied::Unchanged(id.clone())),
            (Change::Create { .. }, Some(want)) => ensure(client, want).await,
            (Change::Update { id, diff, .. }, Some(want)) => update(client, id, diff, want).await,
            (Change::Delete { id, .. }, _) => match client.delete(id).await {
                Ok(()) => Ok(Applied::Deleted(id.clone())),
                Err(Error::Api(err)) if err.is_not_found() => Ok(Applied::AlreadyGone(id.clone())),
                Err(err) => Err(err),
            },
            (Change::Create { .. } | Change::Update { .. }, None) => Err(Error::Config(
                "the change is not in the desired state it was planned from".to_owned(),
            )),
        };
        results.push(ApplyResult { change, result });
    }
    results
}

/// Makes sure `want` exists as declared: creates it, and on 409 (a webhook
/// is on the target already) finds that one and updates it if it differs.
/// Never creates a second webhook, never deletes one.
pub async fn ensure(client: &BoxClient, want: &DesiredWebhook) -> Result<Applied, Error> {
    match client.create(&want.to_new()).await {
        Ok(created) => Ok(Applied::Created(created.id)),
        Err(Error::Api(err)) if err.is_conflict() => {
            // The list only shows webhooks on items the user owns; Box's
            // 409 message names the webhook ("Webhook:ID already exists..."),
            // which covers the others.
            let found = match client.find_on_target(&want.target).await? {
                Some(existing) => Some(existing),
                None => match conflicting_id(&err.message) {
                    Some(id) => client
                        .get(id)
                        .await
                        .ok()
                        .filter(|w| w.target == want.target),
                    None => None,
                },
            };
            let Some(existing) = found else {
                // Box said there is one, the list says there is not (it was
                // deleted in between): one more create settles it.
                return client
                    .create(&want.to_new())
                    .await
                    .map(|created| Applied::Created(created.id));
            };
            converge(client, &existing, want)
                .await
                .map(|updated| Applied::Existed(existing.id.clone(), updated))
        }
        Err(err) => Err(err),
    }
}

/// The webhook id in Box's 409 message, `Webhook:12345 already exists...`.
fn conflicting_id(message: &str) -> Option<&str> {
    let rest = message.split_once("Webhook:")?.1;
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest.get(..end).filter(|id| !id.is_empty())
}

/// Updates `existing` to `want` if they differ; whether it wrote.
async fn converge(
    client: &BoxClient,
    existing: &Webhook,
    want: &DesiredWebhook,
) -> Result<bool, Error> {
    let diff = Diff::between(existing, want);
    if diff.is_empty() {
        return Ok(false);
    }
    client
        .update(&existing.id, &update_body(&diff, want))
        .await?;
    Ok(true)
}

async fn update(
    client: &BoxClient,
    id: &str,
    diff: &Diff,
    want: &DesiredWebhook,
) -> Result<Applied, Error> {
    match client.update(id, &update_body(diff, want)).await {
        Ok(_) => Ok(Applied::Updated(id.to_owned())),
        // Deleted since the plan was made (Box's clean-up, a colleague).
        Err(Error::Api(err)) if err.is_not_found() => ensure(client, want).await,
        Err(err) => Err(err),
    }
}

fn update_body(diff: &Diff, want: &DesiredWebhook) -> WebhookUpdate {
    WebhookUpdate {
        address: diff.address.as_ref().map(|a| a.to.clone()),
        triggers: (!diff.add_triggers.is_empty() || !diff.remove_triggers.is_empty())
            .then(|| want.triggers.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::conflicting_id;

    #[test]
    fn the_409_message_names_the_webhook() {
        let table = [
            (
                "Webhook:12345 already exists on the specified target.",
                Some("12345"),
            ),
            ("Webhook:77", Some("77")),
            ("Webhook: 1 exists", None),
            ("Conflict", None),
            ("", None),
        ];
        for (message, want) in table {
            assert_eq!(conflicting_id(message), want, "{message}");
        }
    }
}
