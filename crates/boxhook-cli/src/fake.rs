//! A scripted [`Inbox`] for unit tests: counts that can be held back and
//! counted, prune batches given in advance, stores that fail on demand.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use boxhook::inbox::{
    Claimed, Counts, DeadLetters, ErrorKind, Inbox, InboxEntry, InboxError, ListFilter, NewRecord,
    Prune, Pruned, Retention, Revive, Stored, StoredEvent,
};
use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;

/// The test double. Everything it is not scripted for fails with
/// [`ErrorKind::Unsupported`], never panics.
#[derive(Default)]
pub(crate) struct Fake {
    /// What `counts` answers, unless `counts_error` says why it fails.
    pub(crate) counts: Mutex<Counts>,
    pub(crate) counts_error: Mutex<Option<String>>,
    /// When set, each `counts` waits for one permit, taken for good.
    pub(crate) gate: Option<Arc<Semaphore>>,
    /// `counts` calls started.
    pub(crate) counts_calls: AtomicUsize,
    /// `counts` calls running now, and the most ever at once.
    pub(crate) counts_running: AtomicUsize,
    pub(crate) counts_most: AtomicUsize,
    /// `counts` calls that ended or were dropped.
    pub(crate) counts_ended: AtomicUsize,
    /// What each `prune` answers, in turn; past the end, nothing is left.
    pub(crate) prunes: Mutex<VecDeque<Result<Pruned, InboxError>>>,
    /// The arguments of each `prune`.
    pub(crate) prune_calls: Mutex<Vec<(Retention, DateTime<Utc>, usize)>>,
    /// `Some(why)`: every write (`store`, `ack`, …) fails with why.
    pub(crate) failing: Mutex<Option<String>>,
    /// Events `list` pages through, newest first.
    pub(crate) entries: Mutex<Vec<InboxEntry>>,
    /// The filters `list` was called with.
    pub(crate) list_calls: Mutex<Vec<ListFilter>>,
}

/// Counts one running `counts` call, until dropped (finished or cancelled).
struct Running<'a>(&'a Fake);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.counts_running.fetch_sub(1, Ordering::SeqCst);
        self.0.counts_ended.fetch_add(1, Ordering::SeqCst);
    }
}

impl Fake {
    /// A fake whose `counts` answers `counts`.
    pub(crate) fn counting(counts: Counts) -> Self {
        Self {
            counts: Mutex::new(counts),
            ..Self::default()
        }
    }

    fn write(&self) -> Result<(), InboxError> {
        match self.failing.lock().expect("lock").clone() {
            Some(why) => Err(InboxError::new(ErrorKind::Storage, why)),
            None => Ok(()),
        }
    }
}

fn unsupported() -> InboxError {
    InboxError::new(ErrorKind::Unsupported, "not scripted")
}

impl Inbox for Fake {
    async fn store(&self, _: NewRecord) -> Result<Stored, InboxError> {
        self.write().map(|()| Stored::New)
    }

    async fn claim_next(
        &self,
        _: &str,
        _: Duration,
        _: DateTime<Utc>,
    ) -> Result<Option<Claimed>, InboxError> {
        self.write().map(|()| None)
    }

    async fn ack(&self, _: &Claimed) -> Result<(), InboxError> {
        self.write()
    }

    async fn requeue(&self, _: &Claimed, _: DateTime<Utc>) -> Result<(), InboxError> {
        self.write()
    }

    async fn list(&self, filter: ListFilter) -> Result<Vec<InboxEntry>, InboxError> {
        self.list_calls.lock().expect("lock").push(filter.clone());
        let entries = self.entries.lock().expect("lock");
        let start = match &filter.before {
            Some(id) => match entries.iter().position(|e| &e.event_id == id) {
                Some(at) => at.saturating_add(1),
                None => return Ok(Vec::new()),
            },
            None => 0,
        };
        Ok(entries
            .iter()
            .skip(start)
            .filter(|e| filter.state.is_none_or(|s| e.state == s))
            .filter(|e| filter.trigger.as_ref().is_none_or(|t| &e.trigger == t))
            .filter(|e| filter.since.is_none_or(|s| e.received_at >= s))
            .take(filter.limit.unwrap_or(usize::MAX))
            .cloned()
            .collect())
    }

    async fn get(&self, _: &str) -> Result<Option<StoredEvent>, InboxError> {
        Err(unsupported())
    }

    async fn counts(&self) -> Result<Counts, InboxError> {
        self.counts_calls.fetch_add(1, Ordering::SeqCst);
        let now = self.counts_running.fetch_add(1, Ordering::SeqCst) + 1;
        self.counts_most.fetch_max(now, Ordering::SeqCst);
        let _running = Running(self);
        if let Some(gate) = &self.gate {
            if let Ok(permit) = gate.acquire().await {
                permit.forget();
            }
        }
        match self.counts_error.lock().expect("lock").clone() {
            Some(why) => Err(InboxError::new(ErrorKind::Storage, why)),
            None => Ok(*self.counts.lock().expect("lock")),
        }
    }
}

impl Prune for Fake {
    async fn prune(
        &self,
        retention: &Retention,
        now: DateTime<Utc>,
        batch: usize,
    ) -> Result<Pruned, InboxError> {
        self.prune_calls
            .lock()
            .expect("lock")
            .push((*retention, now, batch));
        self.prunes
            .lock()
            .expect("lock")
            .pop_front()
            .unwrap_or(Ok(Pruned::default()))
    }
}

impl DeadLetters for Fake {
    async fn bury(&self, _: &Claimed) -> Result<(), InboxError> {
        self.write()
    }

    async fn revive(&self, _: Revive, _: DateTime<Utc>) -> Result<u64, InboxError> {
        Err(unsupported())
    }
}
