//! The store as the admin listener sees it: events per state and the
//! oldest pending one, from [`Inbox::counts`] (never by listing rows), for
//! `/readyz`, the dashboard, `/summary.json` and the gauges
//! `boxhook_inbox_events{state}` and
//! `boxhook_inbox_oldest_pending_age_seconds`.
//!
//! Counting is single-flight: at most one count runs at a time, whatever
//! the number of requests, and every request that wants a fresh count while
//! one runs waits for that one and shares its answer. The count runs in a
//! task of its own, so a request that goes away (a closed connection) only
//! stops waiting: it leaves no work behind, and the count it was waiting for
//! is the one the next request shares. A count that does not answer within
//! [`STORE_TIMEOUT`] is dropped (the store cancels it) and reported as a
//! failure. What is kept between counts is one [`InboxSummary`]: memory
//! does not grow with the inbox or with the requests.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use boxhook::inbox::{Counts, EntryState, Inbox};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// How often the gauges are refreshed in the background.
pub(super) const REFRESH: Duration = Duration::from_secs(10);

/// How long one look at the store may take before it counts as unreachable.
pub(super) const STORE_TIMEOUT: Duration = Duration::from_secs(5);

/// The states, in the order they are shown.
const STATES: [EntryState; 4] = [
    EntryState::Pending,
    EntryState::Claimed,
    EntryState::Done,
    EntryState::Dead,
];

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The last count: the counts (kept when a later count fails), when it was
/// made, and why the last count failed if it did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct InboxSummary {
    pub(crate) counts: Option<Counts>,
    pub(crate) checked_at: Option<DateTime<Utc>>,
    /// Why the last count failed, if it did.
    pub(crate) error: Option<String>,
}

impl InboxSummary {
    /// Events per state, every state, in [`STATES`] order; empty before the
    /// first successful count.
    pub(crate) fn states(&self) -> Vec<(&'static str, u64)> {
        self.counts
            .map(|counts| {
                STATES
                    .iter()
                    .map(|state| (state.as_str(), counts.get(*state)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether this is a successful count younger than `max_age` (a failed
    /// one is never reused: the next request counts again, single-flight).
    fn is_younger_than(&self, max_age: Duration, now: DateTime<Utc>) -> bool {
        self.error.is_none()
            && self.checked_at.is_some_and(|at| {
                now.signed_duration_since(at)
                    .to_std()
                    .is_ok_and(|age| age < max_age)
            })
    }
}

/// Any inbox, behind one object-safe face.
pub(crate) trait InboxProbe: Send + Sync + 'static {
    /// [`Inbox::counts`], within [`STORE_TIMEOUT`]; the error says why not.
    fn counts(&self) -> BoxFuture<'_, Result<Counts, String>>;
    /// A stored event's body.
    fn body<'a>(&'a self, event_id: &'a str) -> BoxFuture<'a, Option<Bytes>>;
}

/// An [`Inbox`] as an [`InboxProbe`].
pub(crate) struct Probe<I>(I);

impl<I> Probe<I> {
    pub(crate) fn new(inbox: I) -> Self {
        Self(inbox)
    }
}

impl<I: Inbox> InboxProbe for Probe<I> {
    fn counts(&self) -> BoxFuture<'_, Result<Counts, String>> {
        Box::pin(async move {
            match tokio::time::timeout(STORE_TIMEOUT, self.0.counts()).await {
                Ok(Ok(counts)) => Ok(counts),
                Ok(Err(err)) => Err(format!("the store failed: {err}")),
                Err(_) => Err(format!(
                    "the store did not answer within {} s",
                    STORE_TIMEOUT.as_secs()
                )),
            }
        })
    }

    fn body<'a>(&'a self, event_id: &'a str) -> BoxFuture<'a, Option<Bytes>> {
        Box::pin(async move {
            match tokio::time::timeout(STORE_TIMEOUT, self.0.get(event_id)).await {
                Ok(Ok(Some(stored))) => Some(stored.body),
                _ => None,
            }
        })
    }
}

/// The count in flight, if any, and the last one.
#[derive(Default)]
struct Flight {
    last: InboxSummary,
    /// Receives the running count's summary; `None` when none runs.
    running: Option<watch::Receiver<Option<InboxSummary>>>,
}

/// Counts the inbox single-flight and keeps the last count.
pub(crate) struct Counter {
    probe: Arc<dyn InboxProbe>,
    flight: Mutex<Flight>,
}

/// Marks the count finished when its task ends, however it ends.
struct Landing(Arc<Counter>);

impl Drop for Landing {
    fn drop(&mut self) {
        self.0.lock().running = None;
    }
}

impl Counter {
    pub(crate) fn new(probe: Arc<dyn InboxProbe>) -> Arc<Self> {
        Arc::new(Self {
            probe,
            flight: Mutex::new(Flight::default()),
        })
    }

    /// The store's probe (for an alert's stored body).
    pub(crate) fn probe(&self) -> &dyn InboxProbe {
        &*self.probe
    }

    fn lock(&self) -> MutexGuard<'_, Flight> {
        self.flight.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The last count, whatever its age.
    pub(crate) fn last(&self) -> InboxSummary {
        self.lock().last.clone()
    }

    /// A count no older than `max_age`: the last one if it is young
    /// enough, else the one running (joined), else a new one.
    pub(crate) async fn fresh(self: &Arc<Self>, max_age: Duration) -> InboxSummary {
        let mut answer = {
            let mut flight = self.lock();
            if flight.last.is_younger_than(max_age, Utc::now()) {
                return flight.last.clone();
            }
            if let Some(running) = &flight.running {
                running.clone()
            } else {
                let (send, answer) = watch::channel(None);
                flight.running = Some(answer.clone());
                let landing = Landing(Arc::clone(self));
                tokio::spawn(async move {
                    let counter = Arc::clone(&landing.0);
                    let summary = counter.count().await;
                    counter.keep(summary.clone());
                    drop(landing);
                    send.send_replace(Some(summary));
                });
                answer
            }
        };
        let summary = answer
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|s| s.clone());
        summary.unwrap_or_else(|| self.last())
    }

    /// One count, with the last counts kept beside the error on failure.
    async fn count(&self) -> InboxSummary {
        let result = self.probe.counts().await;
        let checked_at = Some(Utc::now());
        match result {
            Ok(counts) => InboxSummary {
                counts: Some(counts),
                checked_at,
                error: None,
            },
            Err(error) => InboxSummary {
                checked_at,
                error: Some(error),
                ..self.last()
            },
        }
    }

    /// Keeps `summary` as the last count and sets the gauges from it.
    fn keep(&self, summary: InboxSummary) {
        if summary.error.is_none() {
            set_gauges(&summary);
        }
        self.lock().last = summary;
    }
}

/// `boxhook_inbox_events{state}` for every state and
/// `boxhook_inbox_oldest_pending_age_seconds` (0 when nothing is pending).
fn set_gauges(summary: &InboxSummary) {
    let (Some(counts), Some(at)) = (summary.counts, summary.checked_at) else {
        return;
    };
    for (state, count) in summary.states() {
        // Reason: an event count is far below 2^53.
        #[allow(clippy::cast_precision_loss)]
        let value = count as f64;
        metrics::gauge!(boxhook::metrics::INBOX_EVENTS, "state" => state).set(value);
    }
    metrics::gauge!(boxhook::metrics::INBOX_OLDEST_PENDING_AGE).set(oldest_age(&counts, at));
}

/// How old the oldest pending event was at `at`, in seconds; 0 when none
/// is pending.
pub(crate) fn oldest_age(counts: &Counts, at: DateTime<Utc>) -> f64 {
    counts.oldest_pending.map_or(0.0, |oldest| {
        let millis = at.signed_duration_since(oldest).num_milliseconds().max(0);
        // Reason: milliseconds since an event was received are far below 2^53.
        #[allow(clippy::cast_precision_loss)]
        let secs = millis as f64 / 1000.0;
        secs
    })
}

/// Keeps the gauges at most [`REFRESH`] old, through the single flight.
pub(super) async fn refresh_loop(counter: Arc<Counter>) {
    loop {
        counter.fresh(super::http::FRESH).await;
        tokio::time::sleep(REFRESH).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use tokio::sync::Semaphore;

    use super::*;
    use crate::fake::Fake;

    fn gated(counts: Counts) -> (Arc<Fake>, Arc<Semaphore>, Arc<Counter>) {
        let gate = Arc::new(Semaphore::new(0));
        let fake = Arc::new(Fake {
            gate: Some(Arc::clone(&gate)),
            ..Fake::counting(counts)
        });
        let counter = Counter::new(Arc::new(Probe::new(Arc::clone(&fake))));
        (fake, gate, counter)
    }

    const COUNTS: Counts = Counts {
        pending: 3,
        claimed: 1,
        done: 999_000,
        dead: 2,
        oldest_pending: None,
    };

    #[tokio::test]
    async fn concurrent_requests_share_one_count() {
        let (fake, gate, counter) = gated(COUNTS);
        let waiting: Vec<_> = (0..50)
            .map(|_| {
                let counter = Arc::clone(&counter);
                tokio::spawn(async move { counter.fresh(Duration::from_secs(2)).await })
            })
            .collect();
        while fake.counts_calls.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        assert_eq!(fake.counts_calls.load(Ordering::SeqCst), 1);
        gate.add_permits(1);
        for task in waiting {
            let summary = task.await.expect("task");
            assert_eq!(summary.counts, Some(COUNTS));
            assert_eq!(summary.error, None);
        }
        assert_eq!(
            fake.counts_calls.load(Ordering::SeqCst),
            1,
            "one count for 50 requests"
        );
        assert_eq!(
            fake.counts_most.load(Ordering::SeqCst),
            1,
            "never two at once"
        );
        assert!(
            fake.list_calls.lock().expect("lock").is_empty(),
            "counted without listing a row"
        );
        // Fresh enough: answered from memory, no new count.
        assert_eq!(
            counter.fresh(Duration::from_secs(2)).await.counts,
            Some(COUNTS)
        );
        assert_eq!(fake.counts_calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn cancelled_requests_leave_no_work_queued() {
        let (fake, gate, counter) = gated(COUNTS);
        // A hundred requests that give up while the count is held back.
        for _ in 0..100 {
            let waited = tokio::time::timeout(
                Duration::from_millis(1),
                counter.fresh(Duration::from_secs(2)),
            )
            .await;
            assert!(waited.is_err(), "still counting");
        }
        assert_eq!(fake.counts_calls.load(Ordering::SeqCst), 1);
        assert_eq!(fake.counts_running.load(Ordering::SeqCst), 1);
        gate.add_permits(1);
        // The one count finishes on its own, and the next request uses it.
        while fake.counts_ended.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            counter.fresh(Duration::from_secs(2)).await.counts,
            Some(COUNTS)
        );
        assert_eq!(fake.counts_calls.load(Ordering::SeqCst), 1);
        assert_eq!(fake.counts_running.load(Ordering::SeqCst), 0);
        // A stale count is counted again, once.
        gate.add_permits(1);
        assert_eq!(counter.fresh(Duration::ZERO).await.counts, Some(COUNTS));
        assert_eq!(fake.counts_calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_count_that_hangs_times_out_and_the_next_one_runs() {
        let (fake, gate, counter) = gated(COUNTS);
        let summary = counter.fresh(Duration::from_secs(2)).await;
        assert_eq!(
            summary.error.as_deref(),
            Some("the store did not answer within 5 s")
        );
        assert_eq!(summary.counts, None);
        assert_eq!(fake.counts_running.load(Ordering::SeqCst), 0, "dropped");
        gate.add_permits(1);
        let summary = counter.fresh(Duration::from_secs(2)).await;
        assert_eq!((summary.counts, summary.error), (Some(COUNTS), None));
    }

    #[tokio::test]
    async fn a_failed_count_keeps_the_last_counts_beside_the_error() {
        let fake = Arc::new(Fake::counting(COUNTS));
        let counter = Counter::new(Arc::new(Probe::new(Arc::clone(&fake))));
        assert_eq!(counter.fresh(Duration::ZERO).await.counts, Some(COUNTS));
        *fake.counts_error.lock().expect("lock") = Some("database is locked".to_owned());
        let summary = counter.fresh(Duration::ZERO).await;
        assert_eq!(summary.counts, Some(COUNTS));
        assert_eq!(
            summary.error.as_deref(),
            Some("the store failed: inbox storage failed: database is locked")
        );
        assert_eq!(
            summary.states(),
            [
                ("pending", 3),
                ("claimed", 1),
                ("done", 999_000),
                ("dead", 2)
            ]
        );
    }

    #[test]
    fn the_oldest_pending_age_is_in_seconds_and_zero_without_one() {
        let at = Utc::now();
        let counts = Counts {
            oldest_pending: Some(at - chrono::TimeDelta::milliseconds(90_500)),
            ..Counts::default()
        };
        assert!((oldest_age(&counts, at) - 90.5).abs() < f64::EPSILON);
        assert!(oldest_age(&Counts::default(), at).abs() < f64::EPSILON);
        // A clock that went back: never negative.
        let future = Counts {
            oldest_pending: Some(at + chrono::TimeDelta::seconds(5)),
            ..Counts::default()
        };
        assert!(oldest_age(&future, at).abs() < f64::EPSILON);
    }
}
