//! [`BatchClaims`]: claiming and settling many events per round trip.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Claimed, Inbox, InboxError};

/// How [`BatchClaims::settle_batch`] settles one claim: what
/// [`ack`](Inbox::ack), [`requeue`](Inbox::requeue) and
/// [`bury`](super::DeadLetters::bury) do for one.
///
/// ```
/// use boxhook::inbox::SettleAs;
/// let retry_at = chrono::Utc::now();
/// assert_ne!(SettleAs::Done, SettleAs::Pending(retry_at));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettleAs {
    /// Processed: `done`, as [`ack`](Inbox::ack).
    Done,
    /// Back in the queue, claimable from this time on, as
    /// [`requeue`](Inbox::requeue).
    Pending(DateTime<Utc>),
    /// `dead`, as [`bury`](super::DeadLetters::bury). An inbox that keeps
    /// no dead letters fails the whole call with
    /// [`ErrorKind::Unsupported`](super::ErrorKind::Unsupported).
    Dead,
}

/// An [`Inbox`] that claims up to `max` events in one call and settles
/// many claims in one call, each one round trip to its storage (one
/// statement in PostgreSQL, one transaction in SQLite), for
/// [`Worker::batch`](super::Worker::batch). `boxhook_testkit::conformance`
/// checks its rules (`batch-*`) with `InboxSuite::batch_claims`.
///
/// The rules are those of the one-at-a-time calls, for every event of the
/// batch: a batch claim takes only ready events (pending and ready by
/// `now`, or claimed under a lease that ended by `now`), oldest first, each
/// held by one claim at a time however many workers claim at once, and
/// counts one more attempt for each; a batch settle changes only the events
/// whose claim is still the one held, and keeps the counts exact.
///
/// ```
/// # use std::time::Duration;
/// # use chrono::{DateTime, Utc};
/// use boxhook::inbox::*;
///
/// /// Never has anything to claim, so never anything to settle.
/// struct Empty;
/// # impl Inbox for Empty {
/// #     async fn store(&self, _: NewRecord) -> Result<Stored, InboxError> { Ok(Stored::New) }
/// #     async fn claim_next(&self, _: &str, _: Duration, _: DateTime<Utc>) -> Result<Option<Claimed>, InboxError> { Ok(None) }
/// #     async fn ack(&self, _: &Claimed) -> Result<(), InboxError> { Ok(()) }
/// #     async fn requeue(&self, _: &Claimed, _: DateTime<Utc>) -> Result<(), InboxError> { Ok(()) }
/// #     async fn list(&self, _: ListFilter) -> Result<Vec<InboxEntry>, InboxError> { Ok(vec![]) }
/// #     async fn get(&self, _: &str) -> Result<Option<StoredEvent>, InboxError> { Ok(None) }
/// #     async fn counts(&self) -> Result<Counts, InboxError> { Ok(Counts::default()) }
/// # }
///
/// impl BatchClaims for Empty {
///     async fn claim_batch(&self, _: &str, _: Duration, _: DateTime<Utc>, _: &[String], _: usize)
///         -> Result<Vec<Claimed>, InboxError> { Ok(Vec::new()) }
///     async fn settle_batch(&self, settles: &[(Claimed, SettleAs)], _: DateTime<Utc>)
///         -> Result<Vec<bool>, InboxError> { Ok(vec![false; settles.len()]) }
/// }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let claimed = Empty.claim_batch("w", Duration::from_secs(60), Utc::now(), &[], 64).await?;
/// assert!(claimed.is_empty());
/// # Ok::<(), InboxError>(())
/// # }).unwrap();
/// ```
pub trait BatchClaims: Inbox {
    /// Claims up to `max` events, oldest first, as
    /// [`claim_next`](Inbox::claim_next) claims one: among those whose
    /// trigger is exactly one of `triggers` (every event when it is empty),
    /// each for `lease` from `now`, each with one more attempt counted.
    /// Fewer (none) when fewer are ready; none when `max` is 0.
    fn claim_batch(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
        triggers: &[String],
        max: usize,
    ) -> impl Future<Output = Result<Vec<Claimed>, InboxError>> + Send;

    /// Settles each claim as its [`SettleAs`] says, all at once, and says
    /// for each, in the same order, whether it was settled (`true`) or its
    /// claim was no longer held (`false`: another worker or attempt holds
    /// it, it was settled already, or its lease ended by `now`, which
    /// [`ack`](Inbox::ack) alone does not check). A claim not held is left
    /// exactly as it was. Each claim appears at most once.
    ///
    /// # Errors
    ///
    /// When the storage fails; then nothing was settled.
    fn settle_batch(
        &self,
        settles: &[(Claimed, SettleAs)],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<bool>, InboxError>> + Send;
}

impl<I: BatchClaims> BatchClaims for Arc<I> {
    fn claim_batch(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
        triggers: &[String],
        max: usize,
    ) -> impl Future<Output = Result<Vec<Claimed>, InboxError>> + Send {
        (**self).claim_batch(worker_id, lease, now, triggers, max)
    }

    fn settle_batch(
        &self,
        settles: &[(Claimed, SettleAs)],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<bool>, InboxError>> + Send {
        (**self).settle_batch(settles, now)
    }
}
