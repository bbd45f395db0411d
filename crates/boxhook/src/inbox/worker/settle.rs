//! Settling a claimed event (ack, requeue, bury), tried again while the
//! inbox is away and the claim's lease lasts; every inbox call bounded.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::Duration;

use super::{Dead, InboxHandler, Ran, Settle, Worker};
use crate::escaped;
use crate::inbox::{Backoff, Claimed, ErrorKind, Inbox, InboxError};

/// The first wait before settling an event again after the inbox failed to
/// (the database is away), doubled after each failure up to
/// [`SETTLE_RETRY_MAX`], for as long as the claim's lease lasts.
const SETTLE_RETRY_FIRST: Duration = Duration::from_millis(100);
/// The longest wait between two tries at settling one event.
const SETTLE_RETRY_MAX: Duration = Duration::from_secs(5);
/// How long one call to the inbox (a claim, one try at a settle) may take
/// before the worker counts it as failed: a database cut off by the network
/// may not answer until the kernel gives up on the connection, many minutes
/// later.
const INBOX_CALL_TIMEOUT: Duration = Duration::from_secs(30);

impl<I: Inbox, H: InboxHandler> Worker<I, H> {
    /// Marks `claimed` dead, `why` and with `error`, in one log line; or,
    /// when this worker keeps no dead letters, releases it for a retry.
    pub(super) async fn settle_dead(
        &self,
        claimed: &Claimed,
        error: &str,
        why: Dead,
        stop: Pin<&mut impl Future<Output = ()>>,
    ) -> Result<Ran, super::InboxError> {
        let key = claimed.entry.key();
        let attempt = claimed.attempt();
        let kind = claimed.entry.kind.as_str();
        if self.bury.is_none() {
            // `max_attempts` sets `bury`, so this is an event that can never
            // be processed, on a worker without dead letters.
            let retry_at = self.retry_at(attempt);
            return match self.settle(claimed, Settle::Requeue(retry_at), stop).await {
                Ok(()) => {
                    tracing::error!(event = %key, kind, attempt, error = escaped::shown(error), reason = ?why, "inbox event cannot be processed; this worker keeps no dead letters (Worker::dead_letters), so it is released for a retry");
                    Ok(Ran::Released)
                }
                Err(error) if error.is_lease_lost() => Ok(Ran::LeaseLost),
                Err(error) => Err(error),
            };
        }
        match self.settle(claimed, Settle::Bury, stop).await {
            Ok(()) => {
                match why {
                    Dead::LastAttempt => {
                        tracing::error!(event = %key, kind, attempt, error = escaped::shown(error), "inbox event failed on its last attempt; it is dead until requeued");
                    }
                    Dead::Unreadable => {
                        tracing::error!(event = %key, kind, attempt, error = escaped::shown(error), "inbox event can never be processed: its stored body does not read back; it is dead at once, not retried");
                    }
                    Dead::NoV1Handler => {
                        tracing::error!(event = %key, kind, attempt, error = escaped::shown(error), "inbox V1 callback cannot be processed by this worker; it is dead at once, not retried");
                    }
                    Dead::GaveUp => {
                        tracing::error!(event = %key, kind, attempt, error = escaped::shown(error), "inbox event given up by its handler; it is dead at once until requeued, not retried");
                    }
                }
                Ok(Ran::Dead)
            }
            Err(error) if error.is_lease_lost() => Ok(Ran::LeaseLost),
            Err(error) => Err(error),
        }
    }

    /// Acknowledges, requeues or buries `claimed`. When the inbox fails
    /// ([`ErrorKind::Storage`]: the database is away, the disk is full), it
    /// tries again, waiting [`SETTLE_RETRY_FIRST`] and then twice as long
    /// each time up to [`SETTLE_RETRY_MAX`], for as long as the claim's
    /// lease lasts and `stop` has not completed: an event whose handler
    /// succeeded while the database restarted is acknowledged once it is
    /// back, not run again. Past that the error is returned, and the event
    /// returns to the queue when its lease ends.
    pub(super) async fn settle(
        &self,
        claimed: &Claimed,
        how: Settle,
        mut stop: Pin<&mut impl Future<Output = ()>>,
    ) -> Result<(), InboxError> {
        // Storage failures so far; the wait after the n-th is the n-th delay.
        let retries = Backoff::exponential(SETTLE_RETRY_FIRST, SETTLE_RETRY_MAX);
        let mut failures: u32 = 0;
        loop {
            let settled = match how {
                Settle::Ack => bounded("ack", self.inbox.ack(claimed)).await,
                Settle::Requeue(at) => bounded("requeue", self.inbox.requeue(claimed, at)).await,
                Settle::Bury => match self.bury {
                    Some(bury) => bounded("bury", bury(&self.inbox, claimed)).await,
                    // `settle_dead` requeues instead when there is no `bury`.
                    None => Err(InboxError::new(
                        ErrorKind::Unsupported,
                        "this worker keeps no dead letters: set Worker::dead_letters \
                         (or max_attempts) on an inbox that implements DeadLetters",
                    )),
                },
            };
            let error = match settled {
                Err(error) if error.kind() == ErrorKind::Storage => error,
                // An earlier try failed, so it may have settled the event
                // and lost only its answer (a connection that broke after
                // COMMIT): say so rather than blame another worker.
                Err(error) if error.is_lease_lost() && failures > 0 => {
                    return Err(InboxError::new(
                        ErrorKind::LeaseLost,
                        format!(
                            "{}; an earlier try lost its connection and may have \
                             settled it already (boxhook inbox show {})",
                            std::error::Error::source(&error)
                                .map_or_else(String::new, ToString::to_string),
                            claimed.entry.event_id
                        ),
                    ));
                }
                settled => return settled,
            };
            failures = failures.saturating_add(1);
            let wait = retries.delay(failures);
            if lease_left(claimed, self.clock.now()) <= wait {
                return Err(error);
            }
            tracing::warn!(
                event = %claimed.entry.key(),
                attempt = claimed.attempt(),
                error = escaped::shown(&error),
                retry_in = ?wait,
                "cannot settle the inbox event; trying again while its lease lasts"
            );
            if !sleep_unless_stopped(wait, stop.as_mut()).await {
                return Err(error);
            }
        }
    }
}

/// What is left of `claimed`'s lease at `now` (zero once it ended).
pub(super) fn lease_left(claimed: &Claimed, now: chrono::DateTime<chrono::Utc>) -> Duration {
    claimed
        .lease_until
        .signed_duration_since(now)
        .to_std()
        .unwrap_or(Duration::ZERO)
}

/// Waits `wait`, unless `stop` completes first: whether the wait ran out
/// (`false`: stopped), for a retry that must not outlive the worker.
pub(super) async fn sleep_unless_stopped(
    wait: Duration,
    mut stop: Pin<&mut impl Future<Output = ()>>,
) -> bool {
    let mut sleep = pin!(tokio::time::sleep(wait));
    poll_fn(|cx| {
        if sleep.as_mut().poll(cx).is_ready() {
            Poll::Ready(true)
        } else {
            stop.as_mut().poll(cx).map(|()| false)
        }
    })
    .await
}

/// `call`, or a [`ErrorKind::Storage`] error when it takes longer than
/// [`INBOX_CALL_TIMEOUT`].
pub(super) async fn bounded<T>(
    what: &str,
    call: impl Future<Output = Result<T, InboxError>>,
) -> Result<T, InboxError> {
    tokio::time::timeout(INBOX_CALL_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| {
            Err(InboxError::new(
                ErrorKind::Storage,
                format!(
                    "the inbox did not answer a {what} within {} s",
                    INBOX_CALL_TIMEOUT.as_secs()
                ),
            ))
        })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use boxhook_core::model::WebhookEvent;
    use boxhook_core::FixedClock;
    use chrono::{DateTime, Utc};

    use crate::inbox::{
        Claimed, Counts, DeadLetters, EntryState, Inbox, InboxEntry, InboxError, ListFilter,
        NewRecord, Ran, Revive, Stored, StoredEvent, Worker,
    };

    /// One stored event whose body is not an event, and what was done to it.
    struct Unreadable {
        record: NewRecord,
        claimed: Mutex<bool>,
        done: Mutex<Vec<String>>,
    }

    impl Unreadable {
        fn new() -> Self {
            let mut record = NewRecord::parse(
                &br#"{"type":"webhook_event","id":"e-1","trigger":"FILE.UPLOADED","webhook":{"id":"4133"}}"#[..],
                Some("d-1"),
                at(0),
            )
            .expect("an event");
            record.body = bytes::Bytes::from_static(b"not json at all");
            Self {
                record,
                claimed: Mutex::new(false),
                done: Mutex::new(Vec::new()),
            }
        }

        fn done(&self) -> Vec<String> {
            self.done.lock().expect("lock").clone()
        }
    }

    impl Inbox for Unreadable {
        async fn store(&self, _: NewRecord) -> Result<Stored, InboxError> {
            Ok(Stored::New)
        }

        async fn claim_next(
            &self,
            worker_id: &str,
            lease: Duration,
            now: DateTime<Utc>,
        ) -> Result<Option<Claimed>, InboxError> {
            let mut claimed = self.claimed.lock().expect("lock");
            if *claimed {
                return Ok(None);
            }
            *claimed = true;
            Ok(Some(Claimed {
                entry: InboxEntry::new(&self.record, 1, 1, EntryState::Claimed),
                body: self.record.body.clone(),
                worker_id: worker_id.to_owned(),
                lease_until: now
                    .checked_add_signed(chrono::TimeDelta::from_std(lease).expect("lease"))
                    .expect("a lease within chrono's range"),
            }))
        }

        async fn ack(&self, _: &Claimed) -> Result<(), InboxError> {
            self.done.lock().expect("lock").push("ack".to_owned());
            Ok(())
        }

        async fn requeue(&self, _: &Claimed, retry_at: DateTime<Utc>) -> Result<(), InboxError> {
            self.done
                .lock()
                .expect("lock")
                .push(format!("requeue {retry_at}"));
            Ok(())
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

    impl DeadLetters for Unreadable {
        async fn bury(&self, _: &Claimed) -> Result<(), InboxError> {
            self.done.lock().expect("lock").push("bury".to_owned());
            Ok(())
        }

        async fn revive(&self, _: Revive, _: DateTime<Utc>) -> Result<u64, InboxError> {
            Ok(0)
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000_i64.saturating_add(seconds), 0).expect("a time")
    }

    fn worker(
        inbox: &std::sync::Arc<Unreadable>,
    ) -> Worker<std::sync::Arc<Unreadable>, impl crate::inbox::InboxHandler + use<>> {
        Worker::new(
            std::sync::Arc::clone(inbox),
            |_: WebhookEvent, _: Claimed| async { Ok(()) },
        )
        .clock(FixedClock::at(at(100)))
    }

    #[tokio::test]
    async fn without_dead_letters_an_unreadable_event_is_released_for_a_retry() {
        let inbox = std::sync::Arc::new(Unreadable::new());
        let worker = worker(&inbox);
        assert_eq!(worker.run_once().await.expect("run"), Ran::Released);
        // The default backoff: 30 s after the first attempt.
        assert_eq!(inbox.done(), ["requeue 2023-11-14 22:15:30 UTC"]);
        assert_eq!(worker.run_once().await.expect("run"), Ran::Idle);
    }

    #[tokio::test]
    async fn with_dead_letters_an_unreadable_event_is_dead_at_once() {
        let inbox = std::sync::Arc::new(Unreadable::new());
        let worker = worker(&inbox).dead_letters();
        assert_eq!(worker.run_once().await.expect("run"), Ran::Dead);
        assert_eq!(inbox.done(), ["bury"]);
    }
}
