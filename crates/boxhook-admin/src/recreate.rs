//! Putting a webhook back after Box's `auto_cleanup`: a `WEBHOOK.DELETED`
//! handler for the router.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use boxhook::model::DeletionReason;
use boxhook::{DeliveryContext, Handler, HandlerError, Printable, WebhookDeleted};

use crate::apply::{ensure, Applied};
use crate::client::BoxClient;
use crate::desired::DesiredState;
use crate::error::Error;
use crate::model::{Target, TargetType};

/// What the handler did with one `WEBHOOK.DELETED`.
#[derive(Debug)]
pub enum RecreateOutcome {
    /// `auto_cleanup` of a declared webhook: it was created again.
    Recreated {
        /// Its target.
        target: Target,
        /// The new webhook's id.
        id: String,
    },
    /// `auto_cleanup` of a declared webhook, but Box answered 409: it is
    /// back already (another receiver got the event too). It was compared
    /// with the declaration and updated if it differed.
    AlreadyBack {
        /// Its target.
        target: Target,
        /// The existing webhook's id.
        id: String,
        /// Whether it had to be updated.
        updated: bool,
    },
    /// The deleted webhook's target is not declared, or could not be told:
    /// alerted, nothing done.
    NotDeclared {
        /// The deleted webhook's id.
        webhook_id: Option<String>,
        /// Its target, when known.
        target: Option<Target>,
    },
    /// Deleted for another reason than `auto_cleanup` (or none given):
    /// alerted, nothing done.
    OtherReason {
        /// The reason Box gave.
        reason: Option<String>,
        /// The deleted webhook's id.
        webhook_id: Option<String>,
    },
    /// Re-creating failed; the event is answered 503 so Box retries it.
    Failed {
        /// The target.
        target: Target,
        /// Why.
        error: Error,
    },
}

impl fmt::Display for RecreateOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = |w: &Option<String>| w.clone().unwrap_or_else(|| "?".to_owned());
        match self {
            Self::Recreated { target, id } => {
                write!(f, "re-created the webhook on {target} (new id {id})")
            }
            Self::AlreadyBack { target, id, updated } => write!(
                f,
                "the webhook on {target} is back already (id {id}){}",
                if *updated { "; updated to match the declaration" } else { "" }
            ),
            Self::NotDeclared { webhook_id, target: Some(target) } => write!(
                f,
                "ALERT: Box deleted webhook {} on {target}, which is not declared: not re-created",
                id(webhook_id)
            ),
            Self::NotDeclared { webhook_id, target: None } => write!(
                f,
                "ALERT: Box deleted webhook {}, whose target is unknown here: not re-created; \
                 run `boxhook webhooks apply` to restore the declared state",
                id(webhook_id)
            ),
            Self::OtherReason { reason, webhook_id } => write!(
                f,
                "ALERT: webhook {} was deleted (reason {}), not by auto_cleanup: not re-created",
                id(webhook_id),
                reason.as_deref().unwrap_or("not given")
            ),
            Self::Failed { target, error } => write!(
                f,
                "ALERT: could not re-create the webhook on {target}: {error}; Box will retry the event"
            ),
        }
    }
}

/// Counts of [`RecreateOutcome`]s since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecreateStats {
    /// [`RecreateOutcome::Recreated`].
    pub recreated: u64,
    /// [`RecreateOutcome::AlreadyBack`].
    pub already_back: u64,
    /// [`RecreateOutcome::NotDeclared`] and [`RecreateOutcome::OtherReason`].
    pub alerted: u64,
    /// [`RecreateOutcome::Failed`].
    pub failed: u64,
}

impl fmt::Display for RecreateStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "webhooks_recreated={} webhooks_already_back={} webhooks_alerted={} webhooks_recreate_failed={}",
            self.recreated, self.already_back, self.alerted, self.failed
        )
    }
}

/// `boxhook_webhook_recreations_total{result}`, counted by [`Recreate`]
/// through the `metrics` facade (see `boxhook::metrics`): `result` is
/// `recreated`, `already_back`, `alerted` (not declared, or deleted for
/// another reason) or `failed`.
pub const RECREATIONS_TOTAL: &str = "boxhook_webhook_recreations_total";

/// The `result` label of [`RECREATIONS_TOTAL`] for an outcome.
///
/// ```
/// use boxhook_admin::{recreation_label, RecreateOutcome};
/// let outcome = RecreateOutcome::NotDeclared { webhook_id: Some("1".into()), target: None };
/// assert_eq!(recreation_label(&outcome), "alerted");
/// ```
#[must_use]
pub fn recreation_label(outcome: &RecreateOutcome) -> &'static str {
    RESULTS[slot(outcome)]
}

/// The `result` labels, in the order of [`slot`].
const RESULTS: [&str; 4] = ["recreated", "already_back", "alerted", "failed"];

/// Which of the four results an outcome counts as: its index in
/// [`RESULTS`] and in the handler's counters.
fn slot(outcome: &RecreateOutcome) -> usize {
    match outcome {
        RecreateOutcome::Recreated { .. } => 0,
        RecreateOutcome::AlreadyBack { .. } => 1,
        RecreateOutcome::NotDeclared { .. } | RecreateOutcome::OtherReason { .. } => 2,
        RecreateOutcome::Failed { .. } => 3,
    }
}

fn record_metric(outcome: &RecreateOutcome) {
    metrics::counter!(RECREATIONS_TOTAL, "result" => recreation_label(outcome)).increment(1);
}

type Observer = Box<dyn Fn(&RecreateOutcome, RecreateStats) + Send + Sync>;

/// The `WEBHOOK.DELETED` handler that re-creates declared webhooks Box
/// removed with `auto_cleanup`, through the API; anything else is alerted
/// and left alone. Cheap to clone (clones share counts and memory).
///
/// Which target the deleted webhook had: the event's `source` when it is a
/// file or folder, otherwise what [`learn`](Recreate::learn) (or an earlier
/// re-create) remembered for its id.
///
/// ```no_run
/// use boxhook::{KeyRing, Layer as _, Router, Verifier, VerifyLayer};
/// use boxhook_admin::{BoxClient, Credentials, DesiredState, Recreate};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = BoxClient::builder(Credentials::from_vars(|n| std::env::var(n).ok())?).build()?;
/// let desired = DesiredState::parse(&std::fs::read_to_string("webhooks.toml")?)?;
/// let recreate = Recreate::new(client, desired);
/// recreate.learn().await?; // ids of the webhooks that exist now
/// let router = Router::new().on_webhook_deleted(recreate.clone());
/// # let _ = router;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Recreate {
    inner: Arc<Inner>,
}

struct Inner {
    client: BoxClient,
    desired: DesiredState,
    known: Mutex<HashMap<String, Target>>,
    counts: [AtomicU64; 4],
    observers: Vec<Observer>,
}

impl Recreate {
    /// A handler acting through `client`, re-creating what `desired` holds.
    #[must_use]
    pub fn new(client: BoxClient, desired: DesiredState) -> Self {
        Self::with_observers(client, desired, Vec::new())
    }

    /// As [`new`](Self::new), also calling `observer` with each outcome and
    /// the counts after it (for a log line or metrics).
    #[must_use]
    pub fn observed(
        client: BoxClient,
        desired: DesiredState,
        observer: impl Fn(&RecreateOutcome, RecreateStats) + Send + Sync + 'static,
    ) -> Self {
        Self::with_observers(client, desired, vec![Box::new(observer)])
    }

    fn with_observers(client: BoxClient, desired: DesiredState, observers: Vec<Observer>) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                desired,
                known: Mutex::new(HashMap::new()),
                counts: Default::default(),
                observers,
            }),
        }
    }

    /// Lists the webhooks that exist now and remembers each one's target,
    /// for `WEBHOOK.DELETED` events that carry no usable `source`. Returns
    /// how many.
    pub async fn learn(&self) -> Result<usize, Error> {
        let all = self.inner.client.list().await?;
        let count = all.len();
        let mut known = self.known();
        for webhook in all {
            known.insert(webhook.id, webhook.target);
        }
        Ok(count)
    }

    /// Remembers that webhook `id` watches `target`.
    pub fn remember(&self, id: impl Into<String>, target: Target) {
        self.known().insert(id.into(), target);
    }

    /// The counts so far.
    #[must_use]
    pub fn stats(&self) -> RecreateStats {
        let [recreated, already_back, alerted, failed] = self
            .inner
            .counts
            .each_ref()
            .map(|c| c.load(Ordering::Relaxed));
        RecreateStats {
            recreated,
            already_back,
            alerted,
            failed,
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<String, Target>> {
        self.inner
            .known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Decides and acts on one deletion.
    pub async fn handle(&self, deleted: &WebhookDeleted) -> RecreateOutcome {
        let webhook_id = deleted.webhook_id().map(str::to_owned);
        let outcome = match deleted.reason() {
            Some(DeletionReason::AutoCleanup) => self.auto_cleanup(deleted, webhook_id).await,
            other => RecreateOutcome::OtherReason {
                reason: other.map(|r| r.as_str().to_owned()),
                webhook_id,
            },
        };
        self.inner.counts[slot(&outcome)].fetch_add(1, Ordering::Relaxed);
        record_metric(&outcome);
        let stats = self.stats();
        // The line quotes the delivery and Box's answer: escaped.
        let line = outcome.to_string();
        let line = Printable(&line);
        match &outcome {
            RecreateOutcome::Failed { .. } => tracing::error!(target: "boxhook_admin", "{line}"),
            RecreateOutcome::Recreated { .. } | RecreateOutcome::AlreadyBack { .. } => {
                tracing::info!(target: "boxhook_admin", "{line}");
            }
            _ => tracing::warn!(target: "boxhook_admin", "{line}"),
        }
        for observe in &self.inner.observers {
            observe(&outcome, stats);
        }
        outcome
    }

    async fn auto_cleanup(
        &self,
        deleted: &WebhookDeleted,
        webhook_id: Option<String>,
    ) -> RecreateOutcome {
        let from_source = deleted.event().source().and_then(|s| {
            let kind = match s.type_name() {
                "folder" => TargetType::Folder,
                "file" => TargetType::File,
                _ => return None,
            };
            Some(Target {
                kind,
                id: s.id().to_owned(),
            })
        });
        let target = from_source.or_else(|| {
            webhook_id
                .as_ref()
                .and_then(|id| self.known().get(id).cloned())
        });
        let Some(want) = target
            .as_ref()
            .and_then(|t| self.inner.desired.on_target(t))
        else {
            return RecreateOutcome::NotDeclared { webhook_id, target };
        };
        let target = want.target.clone();
        match ensure(&self.inner.client, want).await {
            Ok(applied) => {
                self.remember(applied.id(), target.clone());
                match applied {
                    Applied::Existed(id, updated) => RecreateOutcome::AlreadyBack {
                        target,
                        id,
                        updated,
                    },
                    other => RecreateOutcome::Recreated {
                        target,
                        id: other.id().to_owned(),
                    },
                }
            }
            Err(error) => RecreateOutcome::Failed { target, error },
        }
    }
}

impl Handler<WebhookDeleted> for Recreate {
    async fn call(
        &self,
        deleted: WebhookDeleted,
        _ctx: DeliveryContext,
    ) -> Result<(), HandlerError> {
        match self.handle(&deleted).await {
            RecreateOutcome::Failed { target, error } => Err(HandlerError::retry_later(format!(
                "could not re-create the webhook on {target}: {error}"
            ))),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod metric_tests {
    use super::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    /// Each outcome counts once under its own `result` label.
    #[test]
    fn each_outcome_is_counted_under_its_label() {
        let recorder = DebuggingRecorder::new();
        let target = || crate::model::Target {
            kind: crate::model::TargetType::Folder,
            id: "7".into(),
        };
        let outcomes = [
            RecreateOutcome::Recreated {
                target: target(),
                id: "2".into(),
            },
            RecreateOutcome::AlreadyBack {
                target: target(),
                id: "2".into(),
                updated: false,
            },
            RecreateOutcome::NotDeclared {
                webhook_id: Some("1".into()),
                target: None,
            },
            RecreateOutcome::OtherReason {
                reason: None,
                webhook_id: None,
            },
        ];
        metrics::with_local_recorder(&recorder, || {
            for outcome in &outcomes {
                record_metric(outcome);
            }
        });
        let counted: Vec<(String, String, u64)> = recorder
            .snapshotter()
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let label = key
                    .labels()
                    .map(|l| [l.key(), "=", l.value()].concat())
                    .collect::<Vec<_>>()
                    .join(",");
                let DebugValue::Counter(n) = value else {
                    panic!("a counter");
                };
                (key.name().to_owned(), label, n)
            })
            .collect();
        let mut counted = counted;
        counted.sort();
        let want = |label: &str, n| (RECREATIONS_TOTAL.to_owned(), format!("result={label}"), n);
        assert_eq!(
            counted,
            [
                want("alerted", 2),
                want("already_back", 1),
                want("recreated", 1)
            ]
        );
    }
}
