//! What a `--pipe` handler's `retry SECONDS` and `dead` change in how the
//! worker settles a failed event: the worker requeues it after its backoff
//! (or buries it after `--max-attempts`), and [`Settling`] turns that
//! requeue into a requeue after SECONDS, or into a bury.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use boxhook::inbox::{
    Claimed, Counts, DeadLetters, FilteredClaims, Inbox, InboxEntry, InboxError, ListFilter,
    NewRecord, Revive, Stored, StoredEvent,
};
use boxhook_core::Printable;
use chrono::{DateTime, Utc};

/// How a handler asked its failed event to be settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// `retry SECONDS`: claimable again after exactly this long.
    RetryIn(Duration),
    /// `dead [REASON]`: dead now, whatever attempts are left.
    Dead(String),
}

/// One worker slot's verdict on the event it holds (one at a time), until
/// that event is settled.
#[derive(Default)]
pub(super) struct Verdicts {
    held: Mutex<Option<(String, u32, Verdict)>>,
}

impl Verdicts {
    /// Records `verdict` for `claimed`'s attempt.
    pub(super) fn set(&self, claimed: &Claimed, verdict: Verdict) {
        *self.lock() = Some((claimed.entry.event_id.clone(), claimed.attempt(), verdict));
    }

    /// The verdict recorded for `claimed`'s attempt, if any.
    fn get(&self, claimed: &Claimed) -> Option<Verdict> {
        self.lock()
            .as_ref()
            .filter(|(id, attempt, _)| {
                *id == claimed.entry.event_id && *attempt == claimed.attempt()
            })
            .map(|(_, _, verdict)| verdict.clone())
    }

    /// Forgets the verdict: its event is settled.
    fn clear(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(String, u32, Verdict)>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The inbox as one worker slot settles through it: every call passed on,
/// except a requeue of an event its handler gave a verdict on.
#[derive(Clone)]
pub(super) struct Settling<I> {
    inbox: I,
    verdicts: Arc<Verdicts>,
}

impl<I> Settling<I> {
    pub(super) fn new(inbox: I, verdicts: Arc<Verdicts>) -> Self {
        Self { inbox, verdicts }
    }
}

/// `now + wait`, or the latest instant there is.
fn after(now: DateTime<Utc>, wait: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(wait)
        .ok()
        .and_then(|wait| now.checked_add_signed(wait))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl<I: DeadLetters> Inbox for Settling<I> {
    async fn store(&self, record: NewRecord) -> Result<Stored, InboxError> {
        self.inbox.store(record).await
    }

    async fn claim_next(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Claimed>, InboxError> {
        self.inbox.claim_next(worker_id, lease, now).await
    }

    async fn ack(&self, claimed: &Claimed) -> Result<(), InboxError> {
        let acked = self.inbox.ack(claimed).await;
        self.verdicts.clear();
        acked
    }

    async fn requeue(&self, claimed: &Claimed, retry_at: DateTime<Utc>) -> Result<(), InboxError> {
        // Cleared only once settled: a settle the worker tries again (the
        // database was away) must keep the verdict.
        match self.verdicts.get(claimed) {
            None => self.inbox.requeue(claimed, retry_at).await?,
            Some(Verdict::RetryIn(wait)) => {
                self.inbox.requeue(claimed, after(Utc::now(), wait)).await?;
            }
            Some(Verdict::Dead(reason)) => {
                self.inbox.bury(claimed).await?;
                let event = Printable(&claimed.entry.event_id);
                let why = if reason.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", Printable(&reason))
                };
                crate::logging::notice(
                    "ERROR",
                    &format!(
                        "event {event} attempt {} is dead: the --pipe handler answered \
                         `dead`{why}; not retried. Once the cause is fixed: boxhook inbox \
                         requeue {event}",
                        claimed.attempt()
                    ),
                );
            }
        }
        self.verdicts.clear();
        Ok(())
    }

    async fn list(&self, filter: ListFilter) -> Result<Vec<InboxEntry>, InboxError> {
        self.inbox.list(filter).await
    }

    async fn get(&self, event_id: &str) -> Result<Option<StoredEvent>, InboxError> {
        self.inbox.get(event_id).await
    }

    async fn counts(&self) -> Result<Counts, InboxError> {
        self.inbox.counts().await
    }

    async fn wait_for_work(&self, timeout: Duration) {
        self.inbox.wait_for_work(timeout).await;
    }
}

impl<I: DeadLetters> DeadLetters for Settling<I> {
    async fn bury(&self, claimed: &Claimed) -> Result<(), InboxError> {
        let buried = self.inbox.bury(claimed).await;
        self.verdicts.clear();
        buried
    }

    async fn revive(&self, which: Revive, now: DateTime<Utc>) -> Result<u64, InboxError> {
        self.inbox.revive(which, now).await
    }
}

impl<I: DeadLetters + FilteredClaims> FilteredClaims for Settling<I> {
    async fn claim_matching(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
        triggers: &[String],
    ) -> Result<Option<Claimed>, InboxError> {
        self.inbox
            .claim_matching(worker_id, lease, now, triggers)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_past_the_end_of_time_saturates() {
        let now = Utc::now();
        assert_eq!(
            after(now, Duration::from_secs(30)),
            now + chrono::Duration::seconds(30)
        );
        assert_eq!(after(now, Duration::MAX), DateTime::<Utc>::MAX_UTC);
    }
}
