//! What a [`Worker`] does while its inbox is unreachable (a database
//! restarting): it keeps running, waits longer after each failure in a row,
//! and retries the settle of an event it processed for as long as the
//! event's lease lasts, so a short outage does not run the event twice. A
//! claim that never answers (a database cut off by the network) fails
//! after 30 s instead of holding the worker.
//! Time is tokio's paused clock: every wait is exact.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use boxhook::inbox::{
    Claimed, EntryState, ErrorKind, Inbox, InboxEntry, InboxError, ListFilter, NewRecord, Ran,
    Stored, StoredEvent, Worker,
};
use boxhook::model::WebhookEvent;
use boxhook::HandlerError;
use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// An inbox holding at most one event, that fails every call while `down`.
#[derive(Default)]
struct Flaky {
    inner: Mutex<Inner>,
}

#[derive(Default)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "a test double's switches and what it saw"
)]
struct Inner {
    down: bool,
    /// Claims never answer (a database cut off by the network).
    hung: bool,
    pending: Option<NewRecord>,
    claimed: bool,
    acked: bool,
    /// The next ack commits, then loses its answer (the connection breaks
    /// after COMMIT): it reports a storage error, and the claim is gone.
    ack_answer_lost: bool,
    /// `(what, when)` for every call: claim, ack, requeue.
    calls: Vec<(&'static str, Instant)>,
}

fn down() -> InboxError {
    InboxError::new(
        ErrorKind::Storage,
        "no PostgreSQL connection: connection refused",
    )
}

impl Flaky {
    fn with_event() -> Arc<Self> {
        let body = br#"{"type":"webhook_event","id":"e-1","trigger":"FILE.UPLOADED","webhook":{"id":"w-1"}}"#;
        let flaky = Self::default();
        flaky.lock().pending =
            Some(NewRecord::parse(&body[..], Some("d-1"), Utc::now()).expect("record"));
        Arc::new(flaky)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("lock")
    }

    fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// The gaps between the calls named `what`.
    fn gaps(&self, what: &str) -> Vec<Duration> {
        let times: Vec<Instant> = self
            .lock()
            .calls
            .iter()
            .filter(|(w, _)| *w == what)
            .map(|(_, t)| *t)
            .collect();
        times.windows(2).map(|w| w[1] - w[0]).collect()
    }

    fn call(&self, what: &'static str) -> Result<std::sync::MutexGuard<'_, Inner>, InboxError> {
        let mut inner = self.lock();
        inner.calls.push((what, Instant::now()));
        if inner.down {
            return Err(down());
        }
        Ok(inner)
    }
}

impl Inbox for Flaky {
    async fn store(&self, _: NewRecord) -> Result<Stored, InboxError> {
        Ok(Stored::New)
    }

    async fn claim_next(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Claimed>, InboxError> {
        if self.lock().hung {
            std::future::pending::<()>().await;
        }
        let mut inner = self.call("claim")?;
        if inner.claimed {
            return Ok(None);
        }
        let Some(record) = inner.pending.clone() else {
            return Ok(None);
        };
        inner.claimed = true;
        Ok(Some(Claimed {
            entry: InboxEntry::new(&record, 1, 1, EntryState::Claimed),
            body: record.body.clone(),
            worker_id: worker_id.to_owned(),
            lease_until: now + lease,
        }))
    }

    async fn ack(&self, _: &Claimed) -> Result<(), InboxError> {
        let mut inner = self.call("ack")?;
        if inner.acked {
            return Err(InboxError::new(
                ErrorKind::LeaseLost,
                "event w-1/e-1 attempt 1 is no longer claimed",
            ));
        }
        inner.acked = true;
        if std::mem::take(&mut inner.ack_answer_lost) {
            return Err(down());
        }
        Ok(())
    }

    async fn requeue(&self, _: &Claimed, _: DateTime<Utc>) -> Result<(), InboxError> {
        self.call("requeue").map(drop)
    }

    async fn list(&self, _: ListFilter) -> Result<Vec<InboxEntry>, InboxError> {
        Ok(Vec::new())
    }

    async fn get(&self, _: &str) -> Result<Option<StoredEvent>, InboxError> {
        Ok(None)
    }

    async fn counts(&self) -> Result<boxhook::inbox::Counts, InboxError> {
        Ok(boxhook::inbox::Counts::default())
    }
}

type Run = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), HandlerError>> + Send>>;

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// A handler that takes the database down while it runs, and brings it
/// back `outage` later.
fn outage_during_handler(
    inbox: &Arc<Flaky>,
    outage: Duration,
) -> impl Fn(WebhookEvent, Claimed) -> Run + Send + Sync + 'static + use<> {
    let inbox = Arc::clone(inbox);
    move |_, _| {
        let inbox = Arc::clone(&inbox);
        Box::pin(async move {
            inbox.set_down(true);
            let back = Arc::clone(&inbox);
            tokio::spawn(async move {
                tokio::time::sleep(outage).await;
                back.set_down(false);
            });
            Ok(())
        })
    }
}

#[tokio::test(start_paused = true)]
async fn an_ack_that_fails_is_retried_until_the_database_is_back() {
    let inbox = Flaky::with_event();
    let worker = Worker::new(Arc::clone(&inbox), outage_during_handler(&inbox, ms(2_000)))
        .lease(Duration::from_secs(60));
    assert_eq!(worker.run_once().await.expect("settled"), Ran::Acked);
    assert!(inbox.lock().acked);
    // Down for 2 s: tries at 0, 0.1, 0.3, 0.7, 1.5 s fail, the one at
    // 3.1 s succeeds.
    assert_eq!(
        inbox.gaps("ack"),
        [ms(100), ms(200), ms(400), ms(800), ms(1_600)]
    );
}

#[tokio::test(start_paused = true)]
async fn an_ack_is_given_up_when_the_lease_would_end_first() {
    let inbox = Flaky::with_event();
    let worker = Worker::new(
        Arc::clone(&inbox),
        outage_during_handler(&inbox, Duration::MAX),
    )
    .lease(Duration::from_secs(1));
    let error = worker.run_once().await.expect_err("the inbox stays down");
    assert_eq!(error.kind(), ErrorKind::Storage);
    assert!(!inbox.lock().acked);
    // 100 + 200 + 400 + 800 ms waited; the next wait (1.6 s) would pass
    // the lease's end (1 s after the claim, by the system clock, which a
    // paused tokio clock does not move): the event is left to return to the
    // queue when its lease ends.
    assert_eq!(inbox.gaps("ack"), [ms(100), ms(200), ms(400), ms(800)]);
}

#[tokio::test(start_paused = true)]
async fn claims_back_off_while_the_inbox_is_down_and_resume_when_it_is_back() {
    let inbox = Arc::new(Flaky::default());
    inbox.set_down(true);
    let back = Arc::clone(&inbox);
    tokio::spawn(async move {
        tokio::time::sleep(ms(40_500)).await;
        back.set_down(false);
    });
    let worker = Worker::new(Arc::clone(&inbox), |_: WebhookEvent, _: Claimed| async {
        Ok::<_, HandlerError>(())
    })
    .poll_interval(ms(1_000));
    worker.run_until(tokio::time::sleep(ms(49_500))).await;
    // Failures at 0, 1, 3, 7, 15, 25 and 35 s (waits doubling from the poll
    // interval up to 10 s); back at 40.5 s, found at 45 s, then the poll
    // interval again.
    assert_eq!(
        inbox.gaps("claim"),
        [
            ms(1_000),
            ms(2_000),
            ms(4_000),
            ms(8_000),
            ms(10_000),
            ms(10_000),
            ms(10_000),
            ms(1_000),
            ms(1_000),
            ms(1_000),
            ms(1_000),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_claim_that_never_answers_fails_after_30_s() {
    let inbox = Flaky::with_event();
    inbox.lock().hung = true;
    let worker = Worker::new(Arc::clone(&inbox), |_: WebhookEvent, _: Claimed| async {
        Ok::<_, HandlerError>(())
    });
    let started = Instant::now();
    let error = worker.run_once().await.expect_err("no answer");
    assert_eq!(started.elapsed(), Duration::from_secs(30));
    assert_eq!(error.kind(), ErrorKind::Storage);
    assert_eq!(
        error.to_string(),
        "inbox storage failed: the inbox did not answer a claim within 30 s"
    );
    inbox.lock().hung = false;
    assert_eq!(worker.run_once().await.expect("answers"), Ran::Acked);
}

#[tokio::test(start_paused = true)]
async fn an_ack_whose_answer_was_lost_is_not_blamed_on_another_worker() {
    let (captured, _guard) = common::capture_logs(tracing::Level::INFO);
    let inbox = Flaky::with_event();
    inbox.lock().ack_answer_lost = true;
    let handler = |_: WebhookEvent, _: Claimed| async { Ok::<_, HandlerError>(()) };
    let worker = Worker::new(Arc::clone(&inbox), handler).lease(Duration::from_secs(60));
    // The first ack stored the event as done; the retry finds no claim.
    assert_eq!(worker.run_once().await.expect("settled"), Ran::LeaseLost);
    assert!(inbox.lock().acked);
    assert_eq!(inbox.gaps("ack"), [ms(100)]);
    let text = captured.text();
    let line = text
        .lines()
        .find(|l| l.contains("inbox claim no longer held when settling the event"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains(
            "error=inbox claim is no longer held: event w-1/e-1 attempt 1 is no longer claimed; an earlier \
             try lost its connection and may have settled it already (boxhook inbox show e-1)"
        ),
        "{line}"
    );
}
