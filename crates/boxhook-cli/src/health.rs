//! Whether the store takes writes, as `/readyz` reports it: the outcome of
//! the last write `serve` or `work` made (a delivery stored, an event
//! claimed, acknowledged, requeued or buried), recorded by [`Watched`], an
//! [`Inbox`] wrapper around the store they use.
//!
//! A read alone cannot tell: on a full disk every store fails while reads
//! still answer. So after a failed write `/readyz` answers 503 with the
//! store's error, and 200 again once a write succeeds. A load balancer that
//! takes the receiver out of rotation on that 503 stops sending the very
//! deliveries that would show the store is back; so when no write has been
//! tried for [`RETRY_AFTER`] since the failure, `/readyz` answers 200 again
//! (if the store still answers reads), and the next delivery tests it: a
//! failure makes it 503 again for as long.
//!
//! Only failures of the store itself count ([`ErrorKind::Storage`],
//! [`ErrorKind::Closed`]); a lost lease is the normal life of a claim. A
//! write that is given up on after [`SLOW`] (the handler deadline cancels
//! a store that hangs) counts as failed too.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use boxhook::inbox::{
    BatchClaims, Claimed, Counts, DeadLetters, ErrorKind, FilteredClaims, Inbox, InboxEntry,
    InboxError, ListFilter, NewRecord, Prune, Pruned, Retention, Revive, SettleAs, Stored,
    StoredEvent,
};
use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::prune::PruneStatus;

/// How long after the last failed write, with no write since, `/readyz`
/// lets deliveries in again to find out whether the store is back.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(30);

/// A write cancelled after running this long counts as failed.
pub(crate) const SLOW: Duration = Duration::from_secs(5);

/// The last write's outcome.
#[derive(Debug, Clone)]
struct Last {
    at: Instant,
    /// `None`: it succeeded; else the error.
    failed: Option<String>,
}

/// The outcome of the store's last write, shared by the wrapper that
/// records it and `/readyz` that reads it.
#[derive(Debug, Default)]
pub(crate) struct StoreHealth {
    last: Mutex<Option<Last>>,
}

/// What `/readyz` makes of the last write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The last write succeeded, or none was made yet.
    Writes,
    /// The last write failed `ago`, with this error.
    Failing { ago: Duration, why: String },
    /// The last write failed `ago` (at least [`RETRY_AFTER`]) and none was
    /// tried since: let deliveries in to try again.
    Retrying { ago: Duration, why: String },
}

impl StoreHealth {
    fn set(&self, failed: Option<String>) {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        *last = Some(Last {
            at: Instant::now(),
            failed,
        });
    }

    /// Records a write's result.
    fn record<T>(&self, result: &Result<T, InboxError>) {
        match result {
            Ok(_) => self.set(None),
            Err(err) if matches!(err.kind(), ErrorKind::Storage | ErrorKind::Closed) => {
                self.set(Some(err.to_string()));
            }
            // A lost lease, an unsupported call: the store itself is fine.
            Err(_) => {}
        }
    }

    /// What the last write says at `now`.
    pub(crate) fn verdict(&self, now: Instant) -> Verdict {
        let last = self
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match last {
            Some(Last {
                at,
                failed: Some(why),
            }) => {
                let ago = now.saturating_duration_since(at);
                if ago >= RETRY_AFTER {
                    Verdict::Retrying { ago, why }
                } else {
                    Verdict::Failing { ago, why }
                }
            }
            _ => Verdict::Writes,
        }
    }
}

/// Records a write as failed if it is dropped after [`SLOW`] unfinished.
struct Pending<'a> {
    health: &'a StoreHealth,
    started: Instant,
    what: &'static str,
    done: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.done && self.started.elapsed() >= SLOW {
            self.health.set(Some(format!(
                "{} did not finish within {} s and was cancelled (the store hangs: a lock, a \
                 stalled disk or network)",
                self.what,
                self.started.elapsed().as_secs()
            )));
        }
    }
}

/// An inbox whose writes are recorded in a [`StoreHealth`].
#[derive(Clone)]
pub(crate) struct Watched<I> {
    inbox: I,
    health: Arc<StoreHealth>,
}

impl<I> Watched<I> {
    pub(crate) fn new(inbox: I, health: Arc<StoreHealth>) -> Self {
        Self { inbox, health }
    }

    /// How `serve` and `work` use their store: the background pruner
    /// started on it when `prune` gives a retention (on the current
    /// runtime, as its plan says), and the store watched for `/readyz`.
    pub(crate) fn start(
        inbox: I,
        prune: Option<(Retention, crate::prune::Plan)>,
    ) -> (Self, Arc<StoreHealth>, Option<Arc<PruneStatus>>)
    where
        I: Prune + Clone,
    {
        let prune =
            prune.map(|(retention, plan)| crate::prune::start(inbox.clone(), retention, plan));
        let health = Arc::new(StoreHealth::default());
        (Self::new(inbox, Arc::clone(&health)), health, prune)
    }

    async fn watch<T>(
        &self,
        what: &'static str,
        write: impl std::future::Future<Output = Result<T, InboxError>>,
    ) -> Result<T, InboxError> {
        let mut pending = Pending {
            health: &self.health,
            started: Instant::now(),
            what,
            done: false,
        };
        let result = write.await;
        pending.done = true;
        self.health.record(&result);
        result
    }
}

impl<I: Inbox> Inbox for Watched<I> {
    async fn store(&self, record: NewRecord) -> Result<Stored, InboxError> {
        self.watch("a store", self.inbox.store(record)).await
    }

    async fn claim_next(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Claimed>, InboxError> {
        self.watch("a claim", self.inbox.claim_next(worker_id, lease, now))
            .await
    }

    async fn ack(&self, claimed: &Claimed) -> Result<(), InboxError> {
        self.watch("an acknowledgement", self.inbox.ack(claimed))
            .await
    }

    async fn requeue(&self, claimed: &Claimed, retry_at: DateTime<Utc>) -> Result<(), InboxError> {
        self.watch("a requeue", self.inbox.requeue(claimed, retry_at))
            .await
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

impl<I: DeadLetters> DeadLetters for Watched<I> {
    async fn bury(&self, claimed: &Claimed) -> Result<(), InboxError> {
        self.watch("a bury", self.inbox.bury(claimed)).await
    }

    async fn revive(&self, which: Revive, now: DateTime<Utc>) -> Result<u64, InboxError> {
        self.inbox.revive(which, now).await
    }
}

impl<I: FilteredClaims> FilteredClaims for Watched<I> {
    async fn claim_matching(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
        triggers: &[String],
    ) -> Result<Option<Claimed>, InboxError> {
        self.watch(
            "a claim",
            self.inbox.claim_matching(worker_id, lease, now, triggers),
        )
        .await
    }
}

impl<I: BatchClaims> BatchClaims for Watched<I> {
    async fn claim_batch(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
        triggers: &[String],
        max: usize,
    ) -> Result<Vec<Claimed>, InboxError> {
        self.watch(
            "a batch claim",
            self.inbox.claim_batch(worker_id, lease, now, triggers, max),
        )
        .await
    }

    async fn settle_batch(
        &self,
        settles: &[(Claimed, SettleAs)],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, InboxError> {
        self.watch("a batch settle", self.inbox.settle_batch(settles, now))
            .await
    }
}

impl<I: Prune> Prune for Watched<I> {
    async fn prune(
        &self,
        retention: &Retention,
        now: DateTime<Utc>,
        batch: usize,
    ) -> Result<Pruned, InboxError> {
        // Its failures are the pruner's to report, not a delivery's.
        self.inbox.prune(retention, now, batch).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::Fake;

    fn record() -> NewRecord {
        NewRecord::parse(
            r#"{"type":"webhook_event","id":"e-1","trigger":"FILE.UPLOADED","webhook":{"id":"w-1","type":"webhook"},"source":{"id":"f-1","type":"file"}}"#,
            Some("d-1"),
            Utc::now(),
        )
        .expect("a record")
    }

    fn watched() -> (Arc<Fake>, Arc<StoreHealth>, Watched<Arc<Fake>>) {
        let fake = Arc::new(Fake::default());
        let health = Arc::new(StoreHealth::default());
        let watched = Watched::new(Arc::clone(&fake), Arc::clone(&health));
        (fake, health, watched)
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_store_fails_readiness_until_a_store_succeeds() {
        let (fake, health, inbox) = watched();
        assert_eq!(health.verdict(Instant::now()), Verdict::Writes);
        *fake.failing.lock().expect("lock") = Some("database or disk is full".to_owned());
        assert!(inbox.store(record()).await.is_err());
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(
            health.verdict(Instant::now()),
            Verdict::Failing {
                ago: Duration::from_secs(3),
                why: "inbox storage failed: database or disk is full".to_owned()
            }
        );
        // Reads do not count.
        let _ = inbox.counts().await;
        let _ = inbox.list(ListFilter::new()).await;
        assert!(matches!(
            health.verdict(Instant::now()),
            Verdict::Failing { .. }
        ));
        *fake.failing.lock().expect("lock") = None;
        assert_eq!(inbox.store(record()).await.ok(), Some(Stored::New));
        assert_eq!(health.verdict(Instant::now()), Verdict::Writes);
    }

    #[tokio::test(start_paused = true)]
    async fn with_no_write_since_the_failure_deliveries_are_let_in_to_retry() {
        let (fake, health, inbox) = watched();
        *fake.failing.lock().expect("lock") = Some("disk I/O error".to_owned());
        assert!(inbox.claim_next("w", SLOW, Utc::now()).await.is_err());
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(matches!(
            health.verdict(Instant::now()),
            Verdict::Failing { .. }
        ));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            health.verdict(Instant::now()),
            Verdict::Retrying {
                ago: RETRY_AFTER,
                why: "inbox storage failed: disk I/O error".to_owned()
            }
        );
        // The retry fails: failing again, for another RETRY_AFTER.
        assert!(inbox.store(record()).await.is_err());
        assert!(matches!(
            health.verdict(Instant::now()),
            Verdict::Failing { ago, .. } if ago == Duration::ZERO
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_cancelled_after_hanging_counts_as_failed() {
        let (_, health, inbox) = watched();
        let hung = inbox.watch("a store", std::future::pending::<Result<(), InboxError>>());
        assert!(tokio::time::timeout(Duration::from_secs(1), hung)
            .await
            .is_err());
        assert_eq!(
            health.verdict(Instant::now()),
            Verdict::Writes,
            "cut short quickly: not evidence"
        );
        let hung = inbox.watch("a store", std::future::pending::<Result<(), InboxError>>());
        assert!(tokio::time::timeout(Duration::from_secs(25), hung)
            .await
            .is_err());
        assert_eq!(
            health.verdict(Instant::now()),
            Verdict::Failing {
                ago: Duration::ZERO,
                why: "a store did not finish within 25 s and was cancelled (the store hangs: a \
                      lock, a stalled disk or network)"
                    .to_owned()
            }
        );
    }

    #[tokio::test]
    async fn a_lost_lease_says_nothing_about_the_store() {
        let health = StoreHealth::default();
        health.record::<()>(&Err(InboxError::new(ErrorKind::LeaseLost, "taken")));
        health.record::<()>(&Err(InboxError::new(ErrorKind::Unsupported, "no")));
        assert_eq!(health.verdict(Instant::now()), Verdict::Writes);
        health.record::<()>(&Err(InboxError::new(ErrorKind::Closed, "gone")));
        assert!(matches!(
            health.verdict(Instant::now()),
            Verdict::Failing { .. }
        ));
    }
}
