//! The worker's promises on a SQLite inbox file while workers are aborted
//! in the middle of a handler (their tasks cancelled, their claims left
//! held until the lease ends) and started again, and handlers fail, panic
//! and run past a 1.5 s lease: nothing is `done` without a successful
//! handler, no event has two live holders, every lost lease is claimed
//! again, and the counts agree with the list. The seed is printed with the
//! report; `BOXHOOK_SEED=<seed>` repeats the handler's choices.

use std::time::Duration;

use boxhook::inbox::{
    Claimed, Counts, DeadLetters, Inbox, InboxEntry, InboxError, ListFilter, NewRecord, Revive,
    Stored, StoredEvent,
};
use boxhook_sqlite::SqliteInbox;
use boxhook_testkit::worker_faults::{check_worker_invariants, Plan};
use chrono::{DateTime, Utc};

use crate::common::TempDir;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_aborted_mid_handler_settle_nothing_twice_and_lose_nothing() {
    aborted_mid_handler("sqlite", 1, 12).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batched_workers_aborted_mid_handler_keep_the_same_promises() {
    // Batches drain faster: fewer aborts, so that each can still find a
    // handler running before the drain ends.
    aborted_mid_handler("sqlite-batched", 8, 6).await;
}

/// Drains 300 events with six workers claiming `batch` at a time
/// (`Worker::batch`; 1: one at a time), `aborts` of them aborted
/// mid-handler, and checks the worker's promises.
async fn aborted_mid_handler(name: &str, batch: usize, aborts: usize) {
    let dir = TempDir::new(&format!("worker-faults-{name}"));
    let inbox = SqliteInbox::open(dir.path().join("inbox.db")).expect("open");
    let plan = Plan::new(name)
        .events(300)
        .workers(6)
        .lease(Duration::from_millis(1500))
        .max_attempts(3)
        .aborts(aborts);
    let report = check_worker_invariants(
        inbox,
        plan,
        move |worker| worker.batch(batch),
        |_rng| async {},
    )
    .await;
    eprintln!("{report}");
    assert_eq!(report.done + report.dead, 300);
    assert_eq!(
        report.aborted_workers, aborts,
        "every planned abort hit a handler"
    );
    assert!(report.aborted >= aborts, "{report}");
    assert!(
        report.cancelled > 0,
        "no handler ran past its lease: {report}"
    );
}

/// A SQLite inbox whose claims come back late, as from a database under
/// load: the claim is taken (its lease counted from the time given) and
/// answered `delay` later.
#[derive(Clone)]
struct SlowClaims {
    inner: SqliteInbox,
    delay: Duration,
}

impl Inbox for SlowClaims {
    async fn store(&self, record: NewRecord) -> Result<Stored, InboxError> {
        self.inner.store(record).await
    }

    async fn claim_next(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Claimed>, InboxError> {
        let claimed = self.inner.claim_next(worker_id, lease, now).await?;
        if claimed.is_some() {
            tokio::time::sleep(self.delay).await;
        }
        Ok(claimed)
    }

    async fn ack(&self, claimed: &Claimed) -> Result<(), InboxError> {
        self.inner.ack(claimed).await
    }

    async fn requeue(&self, claimed: &Claimed, retry_at: DateTime<Utc>) -> Result<(), InboxError> {
        self.inner.requeue(claimed, retry_at).await
    }

    async fn list(&self, filter: ListFilter) -> Result<Vec<InboxEntry>, InboxError> {
        self.inner.list(filter).await
    }

    async fn get(&self, event_id: &str) -> Result<Option<StoredEvent>, InboxError> {
        self.inner.get(event_id).await
    }

    async fn counts(&self) -> Result<Counts, InboxError> {
        self.inner.counts().await
    }
}

impl DeadLetters for SlowClaims {
    async fn bury(&self, claimed: &Claimed) -> Result<(), InboxError> {
        self.inner.bury(claimed).await
    }

    async fn revive(&self, which: Revive, now: DateTime<Utc>) -> Result<u64, InboxError> {
        self.inner.revive(which, now).await
    }
}

/// A claim that comes back 1 s late leaves its handler 1 s less of
/// the lease: the worker cancels the handler when the lease ends, not a
/// whole lease after the claim came back, so no handler goes on while
/// another worker may already run the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_claim_does_not_stretch_the_lease() {
    let dir = TempDir::new("worker-slow-claims");
    let inbox = SlowClaims {
        inner: SqliteInbox::open(dir.path().join("inbox.db")).expect("open"),
        delay: Duration::from_secs(1),
    };
    let plan = Plan::new("slow-claims")
        .events(40)
        .workers(4)
        .lease(Duration::from_millis(1500))
        .aborts(0);
    let report = check_worker_invariants(inbox, plan, |worker| worker, |_rng| async {}).await;
    eprintln!("{report}");
    assert_eq!(report.done + report.dead, 40);
    assert!(
        report.cancelled > 0,
        "no handler ran past its lease: {report}"
    );
}
