//! A batching worker's round ([`Worker::batch`]): claim up to n events in
//! one call, run the handler on each in turn, settle the finished ones
//! together.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::settle::{bounded, lease_left, sleep_unless_stopped};
use super::{Batch, Dead, Failure, InboxHandler, Ran, Settle, Worker};
use crate::escaped;
use crate::inbox::{Backoff, Claimed, ErrorKind, Inbox, InboxError, SettleAs};

/// How long a finished event may wait for the rest of its batch before
/// the finished ones are settled without them.
const FLUSH_AFTER: Duration = Duration::from_millis(200);
/// The first wait before settling a batch again after the inbox failed to,
/// doubled up to [`SETTLE_RETRY_MAX`] while every claim's lease lasts.
const SETTLE_RETRY_FIRST: Duration = Duration::from_millis(100);
const SETTLE_RETRY_MAX: Duration = Duration::from_secs(5);

/// What one round of a worker did: an outcome per event claimed (none when
/// idle), and the inbox error that ended it, if any.
#[derive(Debug, Default)]
pub(super) struct Round {
    pub(super) ran: Vec<Ran>,
    pub(super) error: Option<InboxError>,
}

impl From<Result<Ran, InboxError>> for Round {
    fn from(ran: Result<Ran, InboxError>) -> Self {
        match ran {
            Ok(Ran::Idle) => Self::default(),
            Ok(ran) => Self {
                ran: vec![ran],
                error: None,
            },
            Err(error) => Self {
                ran: Vec::new(),
                error: Some(error),
            },
        }
    }
}

/// How an event of a batch is to be settled, and what to log once it is.
struct Planned {
    claimed: Claimed,
    how: Settle,
    why: Why,
}

/// When the worker stops for good: asked to stop, then the grace period
/// (never, with an unbounded grace).
pub(super) struct HardStop {
    stopping: watch::Receiver<bool>,
    grace: Duration,
}

impl HardStop {
    pub(super) fn new(stopping: watch::Receiver<bool>, grace: Duration) -> Self {
        Self { stopping, grace }
    }

    pub(super) async fn fired(&self) {
        let mut stopping = self.stopping.clone();
        let _ = stopping.wait_for(|stopping| *stopping).await;
        if self.grace == Duration::MAX {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(self.grace).await;
    }
}

/// What happened to a planned event, for its [`Ran`] and its log line.
enum Why {
    /// The handler succeeded.
    Processed,
    /// It failed and is released for a retry.
    Failed(String),
    /// It is dead (buried), or, on a worker without dead letters, released.
    Dead(Dead, String),
    /// The handler ran past the grace period while the worker stopped.
    Stopped,
    /// Not started before the worker stopped.
    PutBack,
}

impl<I: Inbox, H: InboxHandler> Worker<I, H> {
    /// One round: one claim, or one batch claim when [`batch`](Self::batch)
    /// is set. `hard` says when the worker was asked to stop, and cancels
    /// the handler running once the grace period after that is over.
    pub(super) async fn round(&self, hard: &HardStop) -> Round {
        match &self.batch {
            Some(batch) => {
                self.run_batch_until(batch, hard.fired(), hard.stopping.clone(), hard)
                    .await
            }
            None => self.run_once_until(hard.fired()).await.into(),
        }
    }

    async fn run_batch_until(
        &self,
        batch: &Batch<I>,
        stop: impl Future<Output = ()>,
        mut stopping: watch::Receiver<bool>,
        hard: &HardStop,
    ) -> Round {
        let claim = (batch.claim)(
            &self.inbox,
            &self.id,
            self.lease,
            self.clock.now(),
            &self.triggers,
            batch.max,
        );
        let mut queue: VecDeque<Claimed> = match bounded("batch claim", claim).await {
            Ok(claimed) => claimed.into(),
            Err(error) => return Round::from(Err(error)),
        };
        let mut round = Round::default();
        let mut planned: Vec<Planned> = Vec::new();
        let mut oldest: Option<Instant> = None;
        let mut stop = pin!(stop);
        // Whether the worker was asked to stop: the events not started are
        // then put back at once.
        let mut asked = *stopping.borrow();
        let mut asked_signal = pin!(async move {
            let _ = stopping.wait_for(|stopping| *stopping).await;
        });
        while let Some(claimed) = queue.pop_front() {
            if !asked && poll_fn(|cx| Poll::Ready(asked_signal.as_mut().poll(cx).is_ready())).await
            {
                asked = true;
            }
            if asked {
                queue.push_front(claimed);
                break;
            }
            if lease_left(&claimed, self.clock.now()).is_zero() {
                // Its turn came after its lease: another worker may hold it.
                tracing::warn!(event = %claimed.entry.key(), attempt = claimed.attempt(), "inbox event's lease ended while it waited in its batch; not run here, it is processed again where it is claimed next");
                round.ran.push(Ran::LeaseLost);
                continue;
            }
            let (plan, back) = self
                .plan_watching(
                    batch,
                    claimed,
                    stop.as_mut(),
                    &mut queue,
                    (&mut asked, asked_signal.as_mut()),
                    (&mut planned, &mut oldest, hard),
                )
                .await;
            if let Some(back) = back {
                merge(&mut round, back);
            }
            let hard_stopped = matches!(plan.why, Why::Stopped);
            planned.push(plan);
            let first = *oldest.get_or_insert_with(Instant::now);
            if hard_stopped || asked || first.elapsed() >= FLUSH_AFTER {
                merge(
                    &mut round,
                    self.flush(batch, std::mem::take(&mut planned), hard).await,
                );
                oldest = None;
            }
            if hard_stopped {
                break;
            }
        }
        // Asked to stop between two events, or stopped hard: what was not
        // started goes back, ready at once.
        planned.extend(self.put_back(&mut queue));
        merge(&mut round, self.flush(batch, planned, hard).await);
        round
    }

    /// The events of `queue`, to be put back ready now.
    fn put_back(&self, queue: &mut VecDeque<Claimed>) -> Vec<Planned> {
        let now = self.clock.now();
        queue
            .drain(..)
            .map(|claimed| Planned {
                claimed,
                how: Settle::Requeue(now),
                why: Why::PutBack,
            })
            .collect()
    }

    /// [`plan`](Self::plan) for `claimed`, cancelled by `stop`. Meanwhile:
    /// when `asked` (to stop) completes, the events still in `queue` are
    /// put back at once; and once the oldest finished event of `planned`
    /// has waited [`FLUSH_AFTER`], the finished events are settled, without
    /// waiting for this handler (which may run to the batch's lease end,
    /// after which their settle would be refused). The outcomes of both
    /// are the round returned with the plan.
    async fn plan_watching(
        &self,
        batch: &Batch<I>,
        claimed: Claimed,
        stop: Pin<&mut impl Future<Output = ()>>,
        queue: &mut VecDeque<Claimed>,
        (asked, mut asked_signal): (&mut bool, Pin<&mut impl Future<Output = ()>>),
        (planned, oldest, hard): (&mut Vec<Planned>, &mut Option<Instant>, &HardStop),
    ) -> (Planned, Option<Round>) {
        let mut call = pin!(self.plan(claimed, stop));
        let mut side: Vec<Pin<Box<dyn Future<Output = Round> + Send + '_>>> = Vec::new();
        let mut done: Option<Round> = None;
        let mut flush_at = oldest.map(|at| {
            let due = at.checked_add(FLUSH_AFTER).unwrap_or(at);
            Box::pin(tokio::time::sleep_until(due))
        });
        let plan = poll_fn(|cx| {
            if !*asked && asked_signal.as_mut().poll(cx).is_ready() {
                *asked = true;
                if !queue.is_empty() {
                    let back = self.put_back(queue);
                    side.push(Box::pin(self.flush(batch, back, hard)));
                }
            }
            if let Some(timer) = flush_at.as_mut()
                && timer.as_mut().poll(cx).is_ready()
            {
                flush_at = None;
                if !planned.is_empty() {
                    *oldest = None;
                    side.push(Box::pin(self.flush(batch, std::mem::take(planned), hard)));
                }
            }
            side.retain_mut(|future| match future.as_mut().poll(cx) {
                Poll::Ready(round) => {
                    merge(done.get_or_insert_with(Round::default), round);
                    false
                }
                Poll::Pending => true,
            });
            call.as_mut().poll(cx)
        })
        .await;
        // The handler finished first: the settles started go on.
        for future in side {
            merge(done.get_or_insert_with(Round::default), future.await);
        }
        (plan, done)
    }

    /// Reads `claimed`, runs the handler within what is left of its lease,
    /// and says how to settle it: what [`run_once`](Self::run_once) does
    /// before its settle.
    async fn plan(&self, claimed: Claimed, stop: Pin<&mut impl Future<Output = ()>>) -> Planned {
        let attempt = claimed.attempt();
        let dead = |claimed: Claimed, why: Dead, error: String| Planned {
            claimed,
            how: Settle::Bury,
            why: Why::Dead(why, error),
        };
        if self.max_attempts.is_some_and(|max| attempt > max) {
            return dead(
                claimed,
                Dead::LastAttempt,
                "earlier attempts never finished (their workers stopped)".to_owned(),
            );
        }
        let input = match self.read(&claimed) {
            Ok(input) => input,
            Err(error) => return dead(claimed, Dead::Unreadable, error),
        };
        let Some(failure) = self.call(input, &claimed, stop).await else {
            return Planned {
                how: Settle::Requeue(self.clock.now()),
                claimed,
                why: Why::Stopped,
            };
        };
        match failure {
            None => Planned {
                claimed,
                how: Settle::Ack,
                why: Why::Processed,
            },
            Some(Failure::Never(error)) => dead(claimed, Dead::NoV1Handler, error),
            Some(Failure::GaveUp(error)) => dead(claimed, Dead::GaveUp, error),
            Some(Failure::Once(error, _)) if self.is_last(attempt) => {
                dead(claimed, Dead::LastAttempt, error)
            }
            Some(Failure::Once(error, wait)) => Planned {
                how: Settle::Requeue(match wait {
                    Some(wait) => crate::inbox::backend::lease_end(self.clock.now(), wait),
                    None => self.retry_at(attempt),
                }),
                claimed,
                why: Why::Failed(error),
            },
        }
    }

    /// Settles `planned` in one call, tried again while the inbox fails
    /// ([`ErrorKind::Storage`]), every lease lasts and `hard` has not
    /// stopped the worker (asked to stop, then the grace period), as a
    /// single settle is; then logs each event as [`run_once`](Self::run_once)
    /// would.
    async fn flush(&self, batch: &Batch<I>, planned: Vec<Planned>, hard: &HardStop) -> Round {
        if planned.is_empty() {
            return Round::default();
        }
        let settles: Vec<(Claimed, SettleAs)> = planned
            .iter()
            .map(|plan| {
                let how = match plan.how {
                    Settle::Ack => SettleAs::Done,
                    Settle::Requeue(at) => SettleAs::Pending(at),
                    // Without dead letters, what would be buried is
                    // released for a retry after the backoff.
                    Settle::Bury if self.bury.is_none() => {
                        SettleAs::Pending(self.retry_at(plan.claimed.attempt()))
                    }
                    Settle::Bury => SettleAs::Dead,
                };
                (plan.claimed.clone(), how)
            })
            .collect();
        let retries = Backoff::exponential(SETTLE_RETRY_FIRST, SETTLE_RETRY_MAX);
        let mut failures: u32 = 0;
        let mut stopped = pin!(hard.fired());
        let settled = loop {
            let call = (batch.settle)(&self.inbox, &settles, self.clock.now());
            let error = match bounded("batch settle", call).await {
                Ok(settled) if settled.len() == settles.len() => break settled,
                Ok(settled) => {
                    return Round::from(Err(InboxError::new(
                        ErrorKind::Corrupt,
                        format!(
                            "the inbox answered {} settles for {} claims",
                            settled.len(),
                            settles.len()
                        ),
                    )))
                }
                Err(error) if error.kind() == ErrorKind::Storage => error,
                Err(error) => return Round::from(Err(error)),
            };
            failures = failures.saturating_add(1);
            let wait = retries.delay(failures);
            let now = self.clock.now();
            let left = settles
                .iter()
                .map(|(claimed, _)| lease_left(claimed, now))
                .min()
                .unwrap_or(Duration::ZERO);
            if left <= wait {
                return Round::from(Err(error));
            }
            // The line a worker without batches logs, once per event.
            for (claimed, _) in &settles {
                tracing::warn!(
                    event = %claimed.entry.key(),
                    attempt = claimed.attempt(),
                    error = escaped::shown(&error),
                    retry_in = ?wait,
                    "cannot settle the inbox event; trying again while its lease lasts"
                );
            }
            if !sleep_unless_stopped(wait, stopped.as_mut()).await {
                return Round::from(Err(error));
            }
        };
        let mut round = Round::default();
        for (plan, settled) in planned.into_iter().zip(settled) {
            round.ran.push(self.report(plan, settled, failures > 0));
        }
        round
    }

    /// The outcome of a planned event once its settle answered, logged.
    fn report(&self, plan: Planned, settled: bool, retried: bool) -> Ran {
        let key = plan.claimed.entry.key();
        let attempt = plan.claimed.attempt();
        let kind = plan.claimed.entry.kind.as_str();
        if !settled {
            let earlier = if retried {
                "; an earlier try lost its connection and may have settled it already"
            } else {
                ""
            };
            tracing::warn!(event = %key, attempt, "inbox claim no longer held when settling the event; its lease expired and another attempt owns it, or an earlier try settled it{earlier}");
            return Ran::LeaseLost;
        }
        match plan.why {
            Why::Processed => {
                tracing::info!(event = %key, attempt, "inbox event processed");
                Ran::Acked
            }
            Why::Failed(error) => {
                let retry_at = super::requeued_at(plan.how);
                tracing::warn!(event = %key, attempt, error = escaped::shown(&error), retry_at, "inbox event failed; released for a retry");
                Ran::Released
            }
            Why::Stopped => {
                tracing::warn!(event = %key, attempt, "worker stopping: event cancelled after the grace period and put back");
                Ran::Stopped
            }
            Why::PutBack => {
                tracing::info!(event = %key, attempt, "worker stopping: event of the batch not started, put back");
                Ran::PutBack
            }
            Why::Dead(why, error) if self.bury.is_none() => {
                tracing::error!(event = %key, kind, attempt, error = escaped::shown(&error), reason = ?why, "inbox event cannot be processed; this worker keeps no dead letters (Worker::dead_letters), so it is released for a retry");
                Ran::Released
            }
            Why::Dead(why, error) => {
                match why {
                    Dead::LastAttempt => {
                        tracing::error!(event = %key, kind, attempt, error = escaped::shown(&error), "inbox event failed on its last attempt; it is dead until requeued");
                    }
                    Dead::Unreadable => {
                        tracing::error!(event = %key, kind, attempt, error = escaped::shown(&error), "inbox event can never be processed: its stored body does not read back; it is dead at once, not retried");
                    }
                    Dead::NoV1Handler => {
                        tracing::error!(event = %key, kind, attempt, error = escaped::shown(&error), "inbox V1 callback cannot be processed by this worker; it is dead at once, not retried");
                    }
                    Dead::GaveUp => {
                        tracing::error!(event = %key, kind, attempt, error = escaped::shown(&error), "inbox event given up by its handler; it is dead at once until requeued, not retried");
                    }
                }
                Ran::Dead
            }
        }
    }
}

/// Adds `more` to `round`; the first error is kept.
fn merge(round: &mut Round, more: Round) {
    round.ran.extend(more.ran);
    if round.error.is_none() {
        round.error = more.error;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use boxhook_core::model::WebhookEvent;
    use boxhook_core::Clock;
    use chrono::{DateTime, Utc};
    use tokio::sync::Notify;

    use crate::inbox::{
        BatchClaims, Claimed, Counts, EntryState, Inbox, InboxEntry, InboxError, ListFilter,
        NewRecord, Ran, SettleAs, Stored, StoredEvent, Worker,
    };
    use crate::HandlerError;

    /// A clock the test moves.
    #[derive(Clone)]
    struct Manual(Arc<Mutex<DateTime<Utc>>>);

    impl Manual {
        fn advance(&self, seconds: i64) {
            let mut now = self.0.lock().expect("lock");
            *now = now
                .checked_add_signed(chrono::TimeDelta::seconds(seconds))
                .expect("in range");
        }
    }

    impl Clock for Manual {
        fn now(&self) -> DateTime<Utc> {
            *self.0.lock().expect("lock")
        }
    }

    /// Events by id: (record, state, attempts, worker, ready or lease end);
    /// and every batch call made, in order.
    #[derive(Default)]
    struct Mem {
        events: Mutex<BTreeMap<String, Row>>,
        calls: Mutex<Vec<String>>,
    }

    struct Row {
        record: NewRecord,
        state: EntryState,
        attempts: u32,
        worker: String,
        ready_at: DateTime<Utc>,
    }

    impl Mem {
        fn with(ids: &[&str]) -> Arc<Self> {
            let mem = Self::default();
            for id in ids {
                let body = format!(
                    r#"{{"type":"webhook_event","id":"{id}","trigger":"FILE.UPLOADED","webhook":{{"id":"4133"}}}}"#
                );
                let record = NewRecord::parse(body, None, at(0)).expect("an event");
                mem.events.lock().expect("lock").insert(
                    (*id).to_owned(),
                    Row {
                        record,
                        state: EntryState::Pending,
                        attempts: 0,
                        worker: String::new(),
                        ready_at: at(0),
                    },
                );
            }
            Arc::new(mem)
        }

        fn calls(&self) -> Vec<String> {
            self.calls.lock().expect("lock").clone()
        }

        fn states(&self) -> Vec<(String, EntryState)> {
            self.events
                .lock()
                .expect("lock")
                .iter()
                .map(|(id, row)| (id.clone(), row.state))
                .collect()
        }
    }

    impl Inbox for Mem {
        async fn store(&self, _: NewRecord) -> Result<Stored, InboxError> {
            Ok(Stored::New)
        }
        async fn claim_next(
            &self,
            _: &str,
            _: Duration,
            _: DateTime<Utc>,
        ) -> Result<Option<Claimed>, InboxError> {
            panic!("a batching worker claims in batches")
        }
        async fn ack(&self, _: &Claimed) -> Result<(), InboxError> {
            panic!("a batching worker settles in batches")
        }
        async fn requeue(&self, _: &Claimed, _: DateTime<Utc>) -> Result<(), InboxError> {
            panic!("a batching worker settles in batches")
        }
        async fn list(&self, _: ListFilter) -> Result<Vec<InboxEntry>, InboxError> {
            Ok(Vec::new())
        }
        async fn get(&self, _: &str) -> Result<Option<StoredEvent>, InboxError> {
            Ok(None)
        }
        async fn counts(&self) -> Result<Counts, InboxError> {
            Ok(Counts::default())
        }
    }

    impl crate::inbox::DeadLetters for Mem {
        async fn bury(&self, _: &Claimed) -> Result<(), InboxError> {
            panic!("a batching worker settles in batches")
        }
        async fn revive(
            &self,
            _: crate::inbox::Revive,
            _: DateTime<Utc>,
        ) -> Result<u64, InboxError> {
            Ok(0)
        }
    }

    impl BatchClaims for Mem {
        async fn claim_batch(
            &self,
            worker_id: &str,
            lease: Duration,
            now: DateTime<Utc>,
            _: &[String],
            max: usize,
        ) -> Result<Vec<Claimed>, InboxError> {
            let lease_until = crate::inbox::backend::lease_end(now, lease);
            let mut events = self.events.lock().expect("lock");
            let claimed: Vec<Claimed> = events
                .values_mut()
                .filter(|row| {
                    matches!(row.state, EntryState::Pending | EntryState::Claimed)
                        && row.ready_at <= now
                })
                .take(max)
                .map(|row| {
                    row.state = EntryState::Claimed;
                    row.attempts = row.attempts.saturating_add(1);
                    row.worker = worker_id.to_owned();
                    row.ready_at = lease_until;
                    Claimed {
                        entry: InboxEntry::new(&row.record, 1, row.attempts, row.state),
                        body: row.record.body.clone(),
                        worker_id: worker_id.to_owned(),
                        lease_until,
                    }
                })
                .collect();
            let ids: Vec<&str> = claimed.iter().map(|c| c.entry.event_id.as_str()).collect();
            self.calls
                .lock()
                .expect("lock")
                .push(format!("claim {}", ids.join(" ")));
            Ok(claimed)
        }

        async fn settle_batch(
            &self,
            settles: &[(Claimed, SettleAs)],
            now: DateTime<Utc>,
        ) -> Result<Vec<bool>, InboxError> {
            let mut events = self.events.lock().expect("lock");
            let mut said = Vec::new();
            let settled = settles
                .iter()
                .map(|(claimed, how)| {
                    let row = events.get_mut(&claimed.entry.event_id).expect("known");
                    let held = row.state == EntryState::Claimed
                        && row.attempts == claimed.attempt()
                        && row.worker == claimed.worker_id
                        && row.ready_at > now;
                    said.push(format!("{}={how:?}/{held}", claimed.entry.event_id));
                    if held {
                        (row.state, row.ready_at) = match how {
                            SettleAs::Done => (EntryState::Done, row.ready_at),
                            SettleAs::Pending(at) => (EntryState::Pending, *at),
                            SettleAs::Dead => (EntryState::Dead, row.ready_at),
                        };
                    }
                    held
                })
                .collect();
            self.calls
                .lock()
                .expect("lock")
                .push(format!("settle {}", said.join(" ")));
            Ok(settled)
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000_i64.saturating_add(seconds), 0).expect("a time")
    }

    async fn run(worker: &Worker<Arc<Mem>, impl crate::inbox::InboxHandler>) -> Vec<Ran> {
        let mut ran = Vec::new();
        worker
            .run_until_idle(std::future::pending(), Duration::MAX, |outcome| {
                ran.push(*outcome.as_ref().expect("no inbox error"));
            })
            .await;
        ran
    }

    #[tokio::test]
    async fn claims_once_runs_each_and_settles_together() {
        let mem = Mem::with(&["e-1", "e-2", "e-3", "e-4"]);
        let clock = Manual(Arc::new(Mutex::new(at(10))));
        let worker = Worker::new(
            Arc::clone(&mem),
            |event: WebhookEvent, _: Claimed| async move {
                match event.id() {
                    "e-2" => Err(HandlerError::new("flaky")),
                    "e-3" => Err(HandlerError::give_up("never")),
                    _ => Ok(()),
                }
            },
        )
        .clock(clock)
        .dead_letters()
        .batch(3);
        assert_eq!(
            run(&worker).await,
            [Ran::Acked, Ran::Released, Ran::Dead, Ran::Acked]
        );
        assert_eq!(
            mem.calls(),
            [
                "claim e-1 e-2 e-3",
                "settle e-1=Done/true e-2=Pending(2023-11-14T22:14:00Z)/true e-3=Dead/true",
                "claim e-4",
                "settle e-4=Done/true",
                "claim ",
            ]
        );
    }

    #[tokio::test]
    async fn an_event_whose_lease_ends_is_neither_run_nor_settled() {
        let mem = Mem::with(&["e-1", "e-2"]);
        let clock = Manual(Arc::new(Mutex::new(at(10))));
        let ran = Arc::new(Mutex::new(Vec::new()));
        let (moved, seen) = (clock.clone(), Arc::clone(&ran));
        let worker = Worker::new(Arc::clone(&mem), move |event: WebhookEvent, _: Claimed| {
            let (moved, seen) = (moved.clone(), Arc::clone(&seen));
            async move {
                let mut seen = seen.lock().expect("lock");
                if seen.is_empty() {
                    // The first call outlives the lease on the worker's
                    // clock.
                    moved.advance(61);
                }
                seen.push(event.id().to_owned());
                Ok(())
            }
        })
        .clock(clock)
        .lease(Duration::from_secs(60))
        .batch(2);
        // e-2's turn came after its lease: not run. e-1 finished after its
        // lease: the inbox refused its settle. The next claim takes both
        // again, their leases over.
        assert_eq!(
            run(&worker).await,
            [Ran::LeaseLost, Ran::LeaseLost, Ran::Acked, Ran::Acked]
        );
        assert_eq!(*ran.lock().expect("lock"), ["e-1", "e-1", "e-2"]);
        assert_eq!(
            mem.calls(),
            [
                "claim e-1 e-2",
                "settle e-1=Done/false",
                "claim e-1 e-2",
                "settle e-1=Done/true e-2=Done/true",
                "claim ",
            ]
        );
    }

    #[tokio::test]
    async fn finished_events_are_settled_while_a_long_handler_still_runs() {
        let mem = Mem::with(&["e-1", "e-2"]);
        let release = Arc::new(Notify::new());
        let on_release = Arc::clone(&release);
        let worker = Worker::new(Arc::clone(&mem), move |event: WebhookEvent, _: Claimed| {
            let on_release = Arc::clone(&on_release);
            async move {
                if event.id() == "e-2" {
                    // Runs until the test lets it go: as long as its lease
                    // allows, for all the worker knows.
                    on_release.notified().await;
                }
                Ok(())
            }
        })
        .clock(Manual(Arc::new(Mutex::new(at(10)))))
        .batch(2);
        let settled_meanwhile = async {
            // e-1 finished first: its settle must not wait for e-2's end
            // (which may come at the lease's end, too late to settle).
            let settled = tokio::time::timeout(Duration::from_secs(10), async {
                while !mem
                    .calls()
                    .iter()
                    .any(|call| call == "settle e-1=Done/true")
                {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await
            .is_ok();
            release.notify_one();
            settled
        };
        let (ran, settled) = tokio::join!(run(&worker), settled_meanwhile);
        assert!(settled, "e-1 was settled only after e-2: {:?}", mem.calls());
        assert_eq!(ran, [Ran::Acked, Ran::Acked]);
        assert_eq!(
            mem.calls(),
            [
                "claim e-1 e-2",
                "settle e-1=Done/true",
                "settle e-2=Done/true",
                "claim ",
            ]
        );
    }

    #[tokio::test]
    async fn a_shutdown_puts_the_unstarted_events_back_at_once() {
        let mem = Mem::with(&["e-1", "e-2", "e-3"]);
        let started = Arc::new(Notify::new());
        let release = Arc::new(Notify::new());
        let (on_start, on_release) = (Arc::clone(&started), Arc::clone(&release));
        let worker = Worker::new(Arc::clone(&mem), move |_: WebhookEvent, _: Claimed| {
            let (on_start, on_release) = (Arc::clone(&on_start), Arc::clone(&on_release));
            async move {
                on_start.notify_one();
                on_release.notified().await;
                Ok(())
            }
        })
        .clock(Manual(Arc::new(Mutex::new(at(10)))))
        .batch(8);
        let mut outcomes = Vec::new();
        let shutdown = async { started.notified().await };
        let put_back_while_running = async {
            // The handler of e-1 is still running: the others must be back
            // in the queue before it is let go.
            let back = tokio::time::timeout(Duration::from_secs(10), async {
                while !mem
                    .calls()
                    .iter()
                    .any(|call| call.starts_with("settle e-2"))
                {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
            .await
            .is_ok();
            release.notify_one();
            back
        };
        let ((), back) = tokio::join!(
            worker.run_until_idle(shutdown, Duration::from_secs(600), |outcome| {
                outcomes.push(*outcome.as_ref().expect("no inbox error"));
            }),
            put_back_while_running
        );
        assert!(back, "the unstarted events were not put back while e-1 ran");
        assert_eq!(outcomes, [Ran::PutBack, Ran::PutBack, Ran::Acked]);
        assert_eq!(
            mem.calls(),
            [
                "claim e-1 e-2 e-3",
                "settle e-2=Pending(2023-11-14T22:13:30Z)/true e-3=Pending(2023-11-14T22:13:30Z)/true",
                "settle e-1=Done/true",
            ]
        );
        assert_eq!(
            mem.states(),
            [
                ("e-1".to_owned(), EntryState::Done),
                ("e-2".to_owned(), EntryState::Pending),
                ("e-3".to_owned(), EntryState::Pending),
            ]
        );
    }
}
