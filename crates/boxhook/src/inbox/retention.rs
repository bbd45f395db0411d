//! Counting an inbox without listing it, and pruning what it no longer
//! needs: [`Counts`], [`Retention`], [`Pruned`].

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::EntryState;

/// How long a deduplication key outlives its event's body by default:
/// 7 days, far past Box's retry window (12 retries over about 2 hours).
pub const DEFAULT_KEEP_KEYS: Duration = Duration::from_secs(7 * 24 * 3600);

/// The shortest key retention a [`Retention`] accepts: 1 day, over ten
/// times Box's published retry window (about 2 hours, "may change").
pub const MIN_KEEP_KEYS: Duration = Duration::from_secs(24 * 3600);

/// How many events an inbox holds in each state, and the oldest pending
/// one: what [`Inbox::counts`](super::Inbox::counts) answers.
///
/// An inbox answers it from counters it keeps in the same transaction as
/// each change, or from an index, never by reading every row, so asking
/// costs the same with ten events stored or ten million.
///
/// ```
/// use boxhook::inbox::{Counts, EntryState};
///
/// let counts = Counts { pending: 3, done: 40, ..Counts::default() };
/// assert_eq!(counts.get(EntryState::Pending), 3);
/// assert_eq!(counts.total(), 43);
/// assert_eq!(counts.oldest_pending, None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Events waiting for a worker, ready or not (a requeued event waiting
    /// for its retry time is pending).
    pub pending: u64,
    /// Events held by a worker's claim, expired or not.
    pub claimed: u64,
    /// Events processed and acknowledged.
    pub done: u64,
    /// Events given up on.
    pub dead: u64,
    /// When the oldest pending event was received; `None` when none is.
    pub oldest_pending: Option<DateTime<Utc>>,
}

impl Counts {
    /// The count of one state.
    ///
    /// ```
    /// use boxhook::inbox::{Counts, EntryState};
    /// assert_eq!(Counts { dead: 2, ..Counts::default() }.get(EntryState::Dead), 2);
    /// ```
    #[must_use]
    pub const fn get(&self, state: EntryState) -> u64 {
        match state {
            EntryState::Pending => self.pending,
            EntryState::Claimed => self.claimed,
            EntryState::Done => self.done,
            EntryState::Dead => self.dead,
        }
    }

    /// Every stored event, whatever its state.
    ///
    /// ```
    /// use boxhook::inbox::Counts;
    /// assert_eq!(Counts { pending: 1, claimed: 2, done: 3, dead: 4, oldest_pending: None }.total(), 10);
    /// ```
    #[must_use]
    pub const fn total(&self) -> u64 {
        self.pending
            .saturating_add(self.claimed)
            .saturating_add(self.done)
            .saturating_add(self.dead)
    }
}

/// How long an inbox keeps what it has finished with: what one call of
/// [`Prune::prune`](super::Prune::prune) may remove.
///
/// Ages are measured from an event's `received_at` (when the receiver
/// first stored it). `None` keeps that kind of event forever. Pending and
/// claimed events are never pruned, whatever their age.
///
/// - `done`: V2 events processed and acknowledged.
/// - `dead`: V2 events given up on.
/// - `v1`: V1 callbacks that are done or dead (Box does not retry V1).
/// - `keys`: how long the deduplication key of a pruned event outlives its
///   body, counted from `received_at` as well: a retry of a pruned event
///   that arrives within it is still a duplicate (stored nowhere, answered
///   2xx). Never shorter than [`MIN_KEEP_KEYS`].
///
/// ```
/// use std::time::Duration;
/// use boxhook::inbox::Retention;
///
/// let day = Duration::from_secs(86_400);
/// let retention = Retention::default();
/// assert_eq!(retention.done, Some(30 * day));
/// assert_eq!(retention.dead, Some(90 * day));
/// assert_eq!(retention.v1, Some(30 * day));
/// assert_eq!(retention.keys, 7 * day);
///
/// // Only done events older than an hour, for `boxhook inbox prune`:
/// let by_hand = Retention::nothing().done(Some(Duration::from_secs(3600)));
/// assert_eq!((by_hand.done, by_hand.dead, by_hand.v1), (Some(Duration::from_secs(3600)), None, None));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// How long done V2 events are kept; `None`: forever.
    pub done: Option<Duration>,
    /// How long dead V2 events are kept; `None`: forever.
    pub dead: Option<Duration>,
    /// How long done or dead V1 callbacks are kept; `None`: forever.
    pub v1: Option<Duration>,
    /// How long a pruned event's deduplication key is kept, from its
    /// `received_at`; at least [`MIN_KEEP_KEYS`].
    pub keys: Duration,
}

impl Default for Retention {
    /// 30 days for done events, 90 for dead ones, 30 for V1 callbacks,
    /// keys 7 days ([`DEFAULT_KEEP_KEYS`]).
    fn default() -> Self {
        const DAY: u64 = 24 * 3600;
        Self {
            done: Some(Duration::from_secs(30 * DAY)),
            dead: Some(Duration::from_secs(90 * DAY)),
            v1: Some(Duration::from_secs(30 * DAY)),
            keys: DEFAULT_KEEP_KEYS,
        }
    }
}

impl Retention {
    /// Keeps every event forever, keys [`DEFAULT_KEEP_KEYS`]: a start for
    /// pruning one kind of event by hand.
    ///
    /// ```
    /// let keep_all = boxhook::inbox::Retention::nothing();
    /// assert_eq!((keep_all.done, keep_all.dead, keep_all.v1), (None, None, None));
    /// ```
    #[must_use]
    pub const fn nothing() -> Self {
        Self {
            done: None,
            dead: None,
            v1: None,
            keys: DEFAULT_KEEP_KEYS,
        }
    }

    /// With `done` as the retention of done V2 events.
    #[must_use]
    pub const fn done(mut self, done: Option<Duration>) -> Self {
        self.done = done;
        self
    }

    /// With `dead` as the retention of dead V2 events.
    #[must_use]
    pub const fn dead(mut self, dead: Option<Duration>) -> Self {
        self.dead = dead;
        self
    }

    /// With `v1` as the retention of done or dead V1 callbacks.
    #[must_use]
    pub const fn v1(mut self, v1: Option<Duration>) -> Self {
        self.v1 = v1;
        self
    }

    /// With `keys` as the retention of deduplication keys, raised to
    /// [`MIN_KEEP_KEYS`] when shorter.
    ///
    /// ```
    /// use std::time::Duration;
    /// use boxhook::inbox::{Retention, MIN_KEEP_KEYS};
    /// assert_eq!(Retention::default().keys(Duration::from_secs(1)).keys, MIN_KEEP_KEYS);
    /// ```
    #[must_use]
    pub fn keys(mut self, keys: Duration) -> Self {
        self.keys = keys.max(MIN_KEEP_KEYS);
        self
    }

    /// Whether this retention prunes nothing at all (every event kept
    /// forever); keys are pruned only when their events are.
    ///
    /// ```
    /// use boxhook::inbox::Retention;
    /// assert!(Retention::nothing().keeps_everything());
    /// assert!(!Retention::default().keeps_everything());
    /// ```
    #[must_use]
    pub const fn keeps_everything(&self) -> bool {
        self.done.is_none() && self.dead.is_none() && self.v1.is_none()
    }

    /// The `received_at` before which an event kept for `age` is pruned at
    /// `now`; `None` when `age` is `None` (kept forever).
    ///
    /// ```
    /// use std::time::Duration;
    /// use boxhook::inbox::Retention;
    /// let now = chrono::Utc::now();
    /// assert_eq!(Retention::cutoff(now, Some(Duration::from_secs(60))), Some(now - chrono::TimeDelta::seconds(60)));
    /// assert_eq!(Retention::cutoff(now, None), None);
    /// ```
    #[must_use]
    pub fn cutoff(now: DateTime<Utc>, age: Option<Duration>) -> Option<DateTime<Utc>> {
        let age = TimeDelta::from_std(age?).unwrap_or(TimeDelta::MAX);
        Some(
            now.checked_sub_signed(age)
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
        )
    }
}

/// What one call of [`Prune::prune`](super::Prune::prune) removed.
///
/// ```
/// use boxhook::inbox::Pruned;
/// let pruned = Pruned { done: 1000, dead: 2, v1: 0, keys: 10, more: true };
/// assert_eq!(pruned.events(), 1002);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Done V2 events removed.
    pub done: u64,
    /// Dead V2 events removed.
    pub dead: u64,
    /// Done or dead V1 callbacks removed.
    pub v1: u64,
    /// Deduplication keys of earlier pruned events removed.
    pub keys: u64,
    /// Whether more is left to prune under the same retention: call again.
    pub more: bool,
}

impl Pruned {
    /// Events removed, of every state and kind (keys not counted).
    #[must_use]
    pub const fn events(&self) -> u64 {
        self.done.saturating_add(self.dead).saturating_add(self.v1)
    }

    /// Adds another batch's counts to these; `more` is the later batch's.
    ///
    /// ```
    /// use boxhook::inbox::Pruned;
    /// let mut total = Pruned::default();
    /// total.add(Pruned { done: 3, more: true, ..Pruned::default() });
    /// total.add(Pruned { done: 1, keys: 2, ..Pruned::default() });
    /// assert_eq!(total, Pruned { done: 4, keys: 2, ..Pruned::default() });
    /// ```
    pub fn add(&mut self, batch: Pruned) {
        self.done = self.done.saturating_add(batch.done);
        self.dead = self.dead.saturating_add(batch.dead);
        self.v1 = self.v1.saturating_add(batch.v1);
        self.keys = self.keys.saturating_add(batch.keys);
        self.more = batch.more;
    }
}
