//! Replay: re-send stored events to a receiver, each signed as Box signs it
//! (a fresh timestamp and delivery id, the stored body byte for byte), one
//! at a time, at a pace, until done or told to stop.
//!
//! [`Replay::select`] lists what to send ([`ListFilter`]); V1 callbacks are
//! left out and counted, as they carry no signature to re-create.
//! [`Selection::send`] then sends each event with a [`Simulator`], reports
//! each [`Step`] as it happens and returns the [`Tally`]. A receiver that
//! deduplicates by event id (as boxhook's router and inbox do) stores each
//! event at most once, however often it is replayed.
//!
//! ```
//! use std::time::Duration;
//!
//! use boxhook::inbox::{Inbox, ListFilter};
//! use boxhook::runtime::replay::{Replay, Step, Tally};
//! use boxhook::runtime::send::{RetrySchedule, Simulator};
//! use boxhook::KeyRing;
//!
//! /// Re-sends the stored uploads to `to` (`http://127.0.0.1:8080/box/webhooks`),
//! /// once each, at most 20 a second, until done or `stop` (Ctrl-C) finishes.
//! async fn replay_uploads(
//!     inbox: &impl Inbox,
//!     to: &str,
//!     keys: KeyRing,
//!     stop: impl std::future::Future,
//! ) -> Result<Tally, Box<dyn std::error::Error>> {
//!     let selection = Replay::new(ListFilter::new().trigger("FILE.UPLOADED"))
//!         .every(Duration::from_millis(50))
//!         .select(inbox)
//!         .await?;
//!     eprintln!("replaying {} event(s), {} V1 callback(s) left out", selection.len(), selection.skipped_v1());
//!     let simulator = Simulator::builder(to.parse()?, keys)
//!         .schedule(RetrySchedule::none())
//!         .build();
//!     let tally = selection
//!         .send(inbox, &simulator, stop, |step| {
//!             if let Step::Sent { entry, report, tally } = step {
//!                 if let Some(attempt) = report.last() {
//!                     eprintln!("event {}: {attempt} ({tally})", entry.event_id);
//!                 }
//!             }
//!         })
//!         .await?;
//!     Ok(tally)
//! }
//! ```

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::Duration;

use crate::inbox::{Inbox, InboxEntry, InboxError, ListFilter, RecordKind};
use crate::runtime::send::{Delivery, DeliveryReport, Simulator};

/// What to replay, and how fast: the entries a [`ListFilter`] selects, in
/// its order, at most one every [`every`](Self::every).
///
/// ```
/// use std::time::Duration;
/// use boxhook::inbox::{EntryState, ListFilter};
/// use boxhook::runtime::replay::Replay;
///
/// let replay = Replay::new(ListFilter::new().state(EntryState::Dead)).every(Duration::from_secs(1));
/// assert_eq!(replay.gap(), Some(Duration::from_secs(1)));
/// assert_eq!(replay.filter().state, Some(EntryState::Dead));
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Replay {
    filter: ListFilter,
    gap: Option<Duration>,
}

impl Replay {
    /// Replays what `filter` lists, as fast as the receiver answers.
    pub fn new(filter: ListFilter) -> Self {
        Self { filter, gap: None }
    }

    /// At most one delivery every `gap` (20 a second: 50 ms). The pace is
    /// kept from the first send on: a slow answer is made up by sending
    /// the next ones without waiting, never faster than the pace on
    /// average.
    pub fn every(mut self, gap: Duration) -> Self {
        self.gap = Some(gap);
        self
    }

    /// What is listed.
    #[must_use]
    pub fn filter(&self) -> &ListFilter {
        &self.filter
    }

    /// The pace, when there is one.
    #[must_use]
    pub fn gap(&self) -> Option<Duration> {
        self.gap
    }

    /// Lists the events to send: the V2 events the filter selects; the V1
    /// callbacks among them are counted ([`Selection::skipped_v1`]) and
    /// left out.
    ///
    /// # Errors
    ///
    /// The inbox's error, when listing fails.
    pub async fn select<I: Inbox>(&self, inbox: &I) -> Result<Selection, InboxError> {
        let (v1, events): (Vec<InboxEntry>, Vec<InboxEntry>) = inbox
            .list(self.filter.clone())
            .await?
            .into_iter()
            .partition(|entry| entry.kind == RecordKind::V1);
        Ok(Selection {
            events,
            skipped_v1: v1.len(),
            gap: self.gap,
        })
    }
}

/// The events a [`Replay`] selected, ready to [`send`](Self::send).
#[derive(Debug, Clone)]
pub struct Selection {
    events: Vec<InboxEntry>,
    skipped_v1: usize,
    gap: Option<Duration>,
}

/// One thing that happened during [`Selection::send`], reported as it
/// happens (for progress output).
#[derive(Debug)]
#[non_exhaustive]
pub enum Step<'a> {
    /// The event's delivery is about to go out.
    Sending(&'a InboxEntry),
    /// The event was listed but is no longer stored (pruned since): nothing
    /// sent, nothing counted.
    Gone(&'a InboxEntry),
    /// The event was sent; `tally` counts it already.
    Sent {
        /// The event.
        entry: &'a InboxEntry,
        /// Every attempt the simulator made; the last one decides.
        report: &'a DeliveryReport,
        /// Everything so far.
        tally: &'a Tally,
    },
}

/// What a replay did: deliveries sent and how they were answered.
///
/// Its `Display` is the summary line `sent 3, 2xx 2, other 1, failed 0`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tally {
    /// Deliveries sent (answered or failed).
    pub sent: u64,
    /// Answered with a 2xx.
    pub ok: u64,
    /// Answered with another status.
    pub other: u64,
    /// Not answered: no connection, no status line in time, a broken
    /// connection.
    pub failed: u64,
    /// Whether the `stop` future ended the replay before every event was sent.
    pub stopped: bool,
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sent {}, 2xx {}, other {}, failed {}",
            self.sent, self.ok, self.other, self.failed
        )
    }
}

impl Selection {
    /// The events to send, in the filter's order.
    #[must_use]
    pub fn events(&self) -> &[InboxEntry] {
        &self.events
    }

    /// How many events will be sent.
    #[must_use]
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether there is nothing to send.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// How many V1 callbacks the filter listed and the replay left out.
    #[must_use]
    pub fn skipped_v1(&self) -> usize {
        self.skipped_v1
    }

    /// Sends each event, in order: waits for the pace, reads its body
    /// ([`Inbox::get`]), delivers it with `simulator` (whose keys sign it and
    /// whose schedule retries it: [`RetrySchedule::none`] sends each event
    /// once), and counts the last attempt's answer. `on_step` hears of each
    /// step as it happens.
    ///
    /// When `stop` finishes first (Ctrl-C, a deadline), the delivery in
    /// flight is dropped uncounted and the tally so far comes back with
    /// [`stopped`](Tally::stopped) set.
    ///
    /// # Errors
    ///
    /// The inbox's error, when reading an event fails; what was sent before
    /// is lost with the tally.
    ///
    /// [`RetrySchedule::none`]: crate::runtime::send::RetrySchedule::none
    pub async fn send<I, S, P>(
        &self,
        inbox: &I,
        simulator: &Simulator,
        stop: S,
        mut on_step: P,
    ) -> Result<Tally, InboxError>
    where
        I: Inbox,
        S: Future,
        P: FnMut(Step<'_>),
    {
        let mut stop = pin!(stop);
        let mut tally = Tally::default();
        let mut next_at = tokio::time::Instant::now();
        for entry in &self.events {
            let pace = tokio::time::sleep_until(next_at);
            if unless(stop.as_mut(), pace).await.is_none() {
                tally.stopped = true;
                break;
            }
            if let Some(gap) = self.gap {
                next_at = next_at.checked_add(gap).unwrap_or(next_at);
            }
            let Some(stored) = inbox.get(&entry.event_id).await? else {
                on_step(Step::Gone(entry));
                continue;
            };
            on_step(Step::Sending(entry));
            let send = simulator.send(Delivery::new(stored.body));
            let Some(report) = unless(stop.as_mut(), send).await else {
                tally.stopped = true;
                break;
            };
            tally.sent = tally.sent.saturating_add(1);
            let counter = match report.last().map(|attempt| attempt.result()) {
                Some(Ok(status)) if status.is_success() => &mut tally.ok,
                Some(Ok(_)) => &mut tally.other,
                Some(Err(_)) | None => &mut tally.failed,
            };
            *counter = counter.saturating_add(1);
            on_step(Step::Sent {
                entry,
                report: &report,
                tally: &tally,
            });
        }
        Ok(tally)
    }
}

/// `work`'s output, or `None` when `stop` finishes first. `stop` is not
/// polled again once it has finished: the caller stops at `None`.
async fn unless<S: Future + ?Sized, F: Future>(
    mut stop: Pin<&mut S>,
    work: F,
) -> Option<F::Output> {
    let mut work = pin!(work);
    poll_fn(|cx| {
        if stop.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        work.as_mut().poll(cx).map(Some)
    })
    .await
}

#[cfg(test)]
mod tests;
