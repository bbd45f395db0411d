//! The store as the admin listener sees it: reachable or not (/readyz),
//! events per state and the oldest pending one (the dashboard and the
//! `boxhook_inbox_events{state}` gauge, refreshed every [`REFRESH`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use boxhook::inbox::{EntryState, Inbox, ListFilter};
use bytes::Bytes;
use chrono::{DateTime, Utc};

/// How often the inbox counts and the gauge are refreshed.
pub(super) const REFRESH: Duration = Duration::from_secs(10);

/// How long one look at the store may take before it counts as unreachable.
pub(super) const STORE_TIMEOUT: Duration = Duration::from_secs(5);

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Events per state at one moment.
#[derive(Debug, Clone, Default)]
pub(crate) struct InboxSummary {
    pub(crate) states: BTreeMap<&'static str, u64>,
    pub(crate) oldest_pending: Option<DateTime<Utc>>,
    pub(crate) checked_at: Option<DateTime<Utc>>,
    /// Why the last look failed, if it did.
    pub(crate) error: Option<String>,
}

/// Any inbox, behind one object-safe face.
pub(crate) trait InboxProbe: Send + Sync + 'static {
    /// Lists one event: the store answers, or says why not.
    fn ping(&self) -> BoxFuture<'_, Result<(), String>>;
    /// Counts events per state (reads every entry: the inbox has no count
    /// query, so this runs every [`REFRESH`], not per page view).
    fn count(&self) -> BoxFuture<'_, Result<InboxSummary, String>>;
    /// A stored event's body.
    fn body<'a>(&'a self, event_id: &'a str) -> BoxFuture<'a, Option<Bytes>>;
    /// The last [`InboxProbe::count`], kept by the refresh loop.
    fn last(&self) -> InboxSummary;
    /// Keeps `summary` as the last one.
    fn keep(&self, summary: InboxSummary);
}

/// An [`Inbox`] with room for its last count.
pub(crate) struct Probe<I> {
    inbox: I,
    last: Mutex<InboxSummary>,
}

impl<I> Probe<I> {
    pub(crate) fn new(inbox: I) -> Self {
        Self {
            inbox,
            last: Mutex::new(InboxSummary::default()),
        }
    }
}

impl<I: Inbox> InboxProbe for Probe<I> {
    fn ping(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            match tokio::time::timeout(STORE_TIMEOUT, self.inbox.list(ListFilter::new().limit(1)))
                .await
            {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(err)) => Err(format!("the store failed: {err}")),
                Err(_) => Err(format!(
                    "the store did not answer within {} s",
                    STORE_TIMEOUT.as_secs()
                )),
            }
        })
    }

    fn count(&self) -> BoxFuture<'_, Result<InboxSummary, String>> {
        Box::pin(async move {
            let entries =
                match tokio::time::timeout(STORE_TIMEOUT, self.inbox.list(ListFilter::new())).await
                {
                    Ok(Ok(entries)) => entries,
                    Ok(Err(err)) => return Err(format!("the store failed: {err}")),
                    Err(_) => {
                        return Err(format!(
                            "the store did not answer within {} s",
                            STORE_TIMEOUT.as_secs()
                        ))
                    }
                };
            let mut summary = InboxSummary {
                checked_at: Some(Utc::now()),
                ..InboxSummary::default()
            };
            // Always shown, at 0 too: it is what workers drain.
            summary.states.insert(EntryState::Pending.as_str(), 0);
            for entry in &entries {
                *summary.states.entry(entry.state.as_str()).or_insert(0) += 1;
                if entry.state == EntryState::Pending
                    && summary.oldest_pending.is_none_or(|t| entry.received_at < t)
                {
                    summary.oldest_pending = Some(entry.received_at);
                }
            }
            Ok(summary)
        })
    }

    fn body<'a>(&'a self, event_id: &'a str) -> BoxFuture<'a, Option<Bytes>> {
        Box::pin(async move {
            match tokio::time::timeout(STORE_TIMEOUT, self.inbox.get(event_id)).await {
                Ok(Ok(Some(stored))) => Some(stored.body),
                _ => None,
            }
        })
    }

    fn last(&self) -> InboxSummary {
        self.last.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn keep(&self, summary: InboxSummary) {
        if let Ok(mut last) = self.last.lock() {
            *last = summary;
        }
    }
}

/// Counts the inbox every [`REFRESH`] (see [`refresh`]).
pub(super) async fn refresh_loop(probe: Arc<dyn InboxProbe>) {
    loop {
        refresh(&*probe).await;
        tokio::time::sleep(REFRESH).await;
    }
}

/// [`refresh`]es unless the last count is younger than `max_age`: a page
/// view or a scrape sees a fresh count without counting on every request.
pub(super) async fn refresh_if_older(probe: &dyn InboxProbe, max_age: Duration) {
    let fresh = probe.last().checked_at.is_some_and(|at| {
        Utc::now()
            .signed_duration_since(at)
            .to_std()
            .is_ok_and(|age| age < max_age)
    });
    if !fresh {
        refresh(probe).await;
    }
}

/// Counts the inbox, keeps the count for the dashboard and sets
/// `boxhook_inbox_events{state}` (a state counted before and now empty is
/// set to 0). On failure the last counts stay, with the error beside them.
pub(super) async fn refresh(probe: &dyn InboxProbe) {
    let last = probe.last();
    let summary = match probe.count().await {
        Ok(summary) => {
            for state in last.states.keys() {
                if !summary.states.contains_key(state) {
                    metrics::gauge!(boxhook::metrics::INBOX_EVENTS, "state" => *state).set(0.0);
                }
            }
            for (state, count) in &summary.states {
                // Reason: an event count is far below 2^53.
                #[allow(clippy::cast_precision_loss)]
                let value = *count as f64;
                metrics::gauge!(boxhook::metrics::INBOX_EVENTS, "state" => *state).set(value);
            }
            let mut summary = summary;
            // Keep the emptied states, at 0, so they stay on the page.
            for state in last.states.keys() {
                summary.states.entry(state).or_insert(0);
            }
            summary
        }
        Err(error) => InboxSummary {
            error: Some(error),
            checked_at: Some(Utc::now()),
            ..last
        },
    };
    probe.keep(summary);
}
