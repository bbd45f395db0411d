//! The worker's loop: claim, run, settle, until shut down or idle, waiting
//! longer while the inbox keeps failing.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use super::batch::HardStop;
use super::{InboxHandler, Ran, Worker};
use crate::escaped;
use crate::inbox::{Backoff, Inbox};

/// The longest wait between two claims while the inbox keeps failing: the
/// poll interval, doubled after each failure in a row up to this (or the
/// poll interval, if longer). An inbox that can tell when it is back (the
/// PostgreSQL one, when its `LISTEN` connection reconnects) wakes the
/// worker sooner.
const UNREACHABLE_MAX_WAIT: Duration = Duration::from_secs(10);

impl<I: Inbox, H: InboxHandler> Worker<I, H> {
    /// Processes events until `shutdown` completes. The event in progress
    /// is finished and settled first; inbox failures are logged and retried
    /// (see [`run_until_within`](Self::run_until_within)).
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        self.run_until_within(shutdown, Duration::MAX).await;
    }

    /// Processes events until `shutdown` completes; the event in progress
    /// then has `grace` to finish, after which its handler is cancelled
    /// (dropped) and the event is put back in the queue, ready at once for
    /// another worker ([`Ran::Stopped`]).
    ///
    /// While idle, the worker waits with [`Inbox::wait_for_work`] for at
    /// most the poll interval. When the inbox fails (to claim, or to settle
    /// within the lease, see [`Ran`]), the worker logs it at `error` and
    /// waits the poll interval, then twice as long after each failure in a
    /// row, up to 10 s (or the poll interval, if longer); the first success
    /// after failures is logged at `warn` (`inbox worker reached the inbox
    /// again`). It never stops because of an inbox failure.
    pub async fn run_until_within(self, shutdown: impl Future<Output = ()>, grace: Duration) {
        self.drive(shutdown, grace, false, |_| {}).await;
    }

    /// Processes events until none is ready (or `shutdown` completes, with
    /// `grace` as in [`run_until_within`](Self::run_until_within)), calling
    /// `observe` with the outcome of each claimed event: for batch runs
    /// that must say whether anything failed. Stops at the first inbox
    /// error, which `observe` gets too.
    ///
    /// Events retried with a backoff are not ready yet, so they do not keep
    /// it running; an event that fails on its last attempt is `dead`.
    pub async fn run_until_idle(
        &self,
        shutdown: impl Future<Output = ()>,
        grace: Duration,
        observe: impl FnMut(&Result<Ran, super::InboxError>),
    ) {
        self.drive(shutdown, grace, true, observe).await;
    }

    async fn drive(
        &self,
        shutdown: impl Future<Output = ()>,
        grace: Duration,
        until_idle: bool,
        mut observe: impl FnMut(&Result<Ran, super::InboxError>),
    ) {
        let mut shutdown = pin!(shutdown);
        let (stopping, stopped) = tokio::sync::watch::channel(false);
        // Inbox failures in a row; the wait after the n-th is the n-th
        // delay (the poll interval while there are none).
        let mut failures: u32 = 0;
        let unreachable = Backoff::exponential(
            self.poll_interval,
            self.poll_interval.max(UNREACHABLE_MAX_WAIT),
        );
        loop {
            if *stopping.borrow()
                || poll_fn(|cx| Poll::Ready(shutdown.as_mut().poll(cx).is_ready())).await
            {
                return;
            }
            let hard = HardStop::new(stopped.clone(), grace);
            let mut work = pin!(self.round(&hard));
            let round = poll_fn(|cx| {
                if !*stopping.borrow() && shutdown.as_mut().poll(cx).is_ready() {
                    stopping.send_replace(true);
                }
                work.as_mut().poll(cx)
            })
            .await;
            for ran in &round.ran {
                observe(&Ok(*ran));
            }
            if round.error.is_none() && failures > 0 {
                tracing::warn!(
                    worker_id = escaped::text(&self.id),
                    failures,
                    "inbox worker reached the inbox again"
                );
                failures = 0;
            }
            let wait = match round.error {
                None if round.ran.is_empty() && until_idle => return,
                None => round.ran.is_empty(),
                Some(error) => {
                    failures = failures.saturating_add(1);
                    tracing::error!(
                        error = escaped::shown(&error),
                        worker_id = escaped::text(&self.id),
                        failures,
                        retry_in = ?unreachable.delay(failures),
                        "inbox worker cannot reach the inbox"
                    );
                    observe(&Err(error));
                    if until_idle {
                        return;
                    }
                    true
                }
            };
            if wait && !*stopping.borrow() {
                let mut sleep = pin!(self.inbox.wait_for_work(unreachable.delay(failures)));
                let stopped = poll_fn(|cx| {
                    if shutdown.as_mut().poll(cx).is_ready() {
                        Poll::Ready(true)
                    } else if sleep.as_mut().poll(cx).is_ready() {
                        Poll::Ready(false)
                    } else {
                        Poll::Pending
                    }
                })
                .await;
                if stopped {
                    return;
                }
            }
        }
    }
}
