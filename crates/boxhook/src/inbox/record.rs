//! What an inbox stores and hands back: records, entries, claims, filters.

use std::fmt;

use boxhook_core::model::WebhookEvent;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::context::DeliveryContext;
use crate::idempotency::EventKey;

/// An accepted event, ready to be stored: the raw body exactly as received
/// and what the CLI and workers look it up by.
///
/// ```
/// use boxhook::inbox::NewRecord;
///
/// let body = br#"{"type":"webhook_event","id":"e-1","trigger":"FILE.UPLOADED","webhook":{"id":"4133","type":"webhook"}}"#;
/// let record = NewRecord::parse(&body[..], Some("d-1"), chrono::Utc::now())?;
/// assert_eq!((record.webhook_id.as_str(), record.event_id.as_str()), ("4133", "e-1"));
/// assert_eq!(record.trigger, "FILE.UPLOADED");
/// assert_eq!(record.source_type, None);
/// # Ok::<(), boxhook::model::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    /// `webhook.id`; the empty string when the event has none.
    pub webhook_id: String,
    /// The event's `id`, stable across retries.
    pub event_id: String,
    /// The trigger, exactly as sent (unknown triggers included).
    pub trigger: String,
    /// `source.type`, when the source has a string `type` and `id`.
    pub source_type: Option<String>,
    /// `source.id`, under the same rule.
    pub source_id: Option<String>,
    /// `BOX-DELIVERY-ID` of the delivery that brought it.
    pub delivery_id: Option<String>,
    /// When the receiver accepted it.
    pub received_at: DateTime<Utc>,
    /// The body, byte for byte as received (for a V1 callback: its
    /// parameters, form-encoded, without the secret).
    pub body: Bytes,
    /// A V2 event or a V1 callback (whose record
    /// [`V1Callback::to_record`](crate::v1::V1Callback::to_record) builds).
    pub kind: RecordKind,
}

impl NewRecord {
    /// The record of an event the router parsed, from its delivery.
    ///
    /// ```
    /// use boxhook::inbox::NewRecord;
    /// use boxhook::{DeliveryContext, HandlerError};
    /// use boxhook::model::WebhookEvent;
    ///
    /// async fn log(event: WebhookEvent, ctx: DeliveryContext) -> Result<(), HandlerError> {
    ///     let record = NewRecord::from_delivery(&event, &ctx, chrono::Utc::now());
    ///     println!("{} {} ({} bytes)", record.event_id, record.trigger, record.body.len());
    ///     Ok(())
    /// }
    /// # let _ = boxhook::Router::new().fallback(log);
    /// ```
    #[must_use]
    pub fn from_delivery(
        event: &WebhookEvent,
        ctx: &DeliveryContext,
        received_at: DateTime<Utc>,
    ) -> Self {
        let source = event.source();
        Self {
            webhook_id: ctx.webhook_id().unwrap_or_default().to_owned(),
            event_id: ctx.event_id().to_owned(),
            trigger: event.trigger().as_str().to_owned(),
            source_type: source.map(|s| s.type_name().to_owned()),
            source_id: source.map(|s| s.id().to_owned()),
            delivery_id: ctx.delivery_id().map(str::to_owned),
            received_at,
            body: ctx.raw_body().clone(),
            kind: RecordKind::V2,
        }
    }

    /// The record of a raw body, reading its envelope (for stores fed from
    /// elsewhere than the router: imports, replays).
    ///
    /// # Errors
    ///
    /// When `body` is not a `webhook_event`: the model's parse error.
    pub fn parse(
        body: impl Into<Bytes>,
        delivery_id: Option<&str>,
        received_at: DateTime<Utc>,
    ) -> Result<Self, boxhook_core::model::ParseError> {
        let body = body.into();
        let envelope = boxhook_core::model::Envelope::parse(&body)?;
        let record = Self::from_envelope(&envelope, delivery_id, received_at, Bytes::new());
        drop(envelope);
        Ok(Self { body, ..record })
    }

    /// The record of a body whose envelope is read already: the same fields
    /// [`from_delivery`](Self::from_delivery) takes from the typed event
    /// (`source` needs a string `type` and `id` in both).
    pub(crate) fn from_envelope(
        envelope: &boxhook_core::model::Envelope<'_>,
        delivery_id: Option<&str>,
        received_at: DateTime<Utc>,
        body: Bytes,
    ) -> Self {
        Self {
            webhook_id: envelope.webhook_id().unwrap_or_default().to_owned(),
            event_id: envelope.id().to_owned(),
            trigger: envelope.trigger().as_str().to_owned(),
            source_type: envelope.source_type().map(str::to_owned),
            source_id: envelope.source_id().map(str::to_owned),
            delivery_id: delivery_id.map(str::to_owned),
            received_at,
            body,
            kind: RecordKind::V2,
        }
    }

    /// The key the record is deduplicated on.
    ///
    /// ```
    /// let record = boxhook::inbox::NewRecord::parse(
    ///     &br#"{"id":"e-1","trigger":"X","webhook":{"id":"w"}}"#[..], None, chrono::Utc::now())?;
    /// assert_eq!(record.key().to_string(), "w/e-1");
    /// # Ok::<(), boxhook::model::ParseError>(())
    /// ```
    #[must_use]
    pub fn key(&self) -> EventKey {
        EventKey::new(self.webhook_id.clone(), self.event_id.clone())
    }
}

/// What [`Inbox::store`](super::Inbox::store) did.
///
/// ```
/// use boxhook::inbox::Stored;
/// assert_eq!(Stored::New.deliveries(), 1);
/// assert_eq!(Stored::Duplicate { deliveries: 3 }.deliveries(), 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The event was not in the inbox; it is now, durably.
    New,
    /// The event was stored before (same `webhook.id` and event `id`); only
    /// its delivery count went up.
    Duplicate {
        /// How many deliveries of the event the inbox has counted, this one
        /// included.
        deliveries: u64,
    },
}

impl Stored {
    /// How many deliveries of the event the inbox has counted now.
    #[must_use]
    pub fn deliveries(self) -> u64 {
        match self {
            Self::New => 1,
            Self::Duplicate { deliveries } => deliveries,
        }
    }
}

/// What a stored record is: a V2 event (a JSON body, deduplicated on
/// `webhook.id` + event `id`) or a V1 callback (form-encoded parameters,
/// each callback its own record).
///
/// ```
/// use boxhook::inbox::RecordKind;
/// assert_eq!(RecordKind::default(), RecordKind::V2);
/// assert_eq!(RecordKind::parse("v1"), Some(RecordKind::V1));
/// assert_eq!(RecordKind::V1.to_string(), "v1");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// A signed V2 webhook event.
    #[default]
    V2,
    /// A V1 callback.
    V1,
}

impl RecordKind {
    /// `v2` or `v1`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::V2 => "v2",
            Self::V1 => "v1",
        }
    }

    /// The kind named `name` (as [`as_str`](Self::as_str) spells it).
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "v2" => Some(Self::V2),
            "v1" => Some(Self::V1),
            _ => None,
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an event is in its processing.
///
/// ```
/// use boxhook::inbox::EntryState;
/// assert_eq!(EntryState::parse("done"), Some(EntryState::Done));
/// assert_eq!(EntryState::Claimed.to_string(), "claimed");
/// assert_eq!(EntryState::parse("dead"), Some(EntryState::Dead));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryState {
    /// Waiting for a worker (new, or requeued after a failure).
    Pending,
    /// Claimed by a worker. A claim whose lease has ended may be claimed
    /// again.
    Claimed,
    /// Processed and acknowledged.
    Done,
    /// Given up on: it failed on every one of the worker's `max_attempts`.
    /// Never claimed again until requeued
    /// ([`DeadLetters::revive`](super::DeadLetters::revive)).
    Dead,
}

impl EntryState {
    /// `pending`, `claimed`, `done` or `dead`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Claimed => "claimed",
            Self::Done => "done",
            Self::Dead => "dead",
        }
    }

    /// The state named `name` (as [`as_str`](Self::as_str) spells it).
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "pending" => Some(Self::Pending),
            "claimed" => Some(Self::Claimed),
            "done" => Some(Self::Done),
            "dead" => Some(Self::Dead),
            _ => None,
        }
    }
}

impl fmt::Display for EntryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stored event as listed: everything but the body.
///
/// ```
/// use boxhook::inbox::{EntryState, InboxEntry, NewRecord};
///
/// let record = NewRecord::parse(&br#"{"id":"e-1","trigger":"FILE.UPLOADED"}"#[..], Some("d-1"), chrono::Utc::now())?;
/// let entry = InboxEntry::new(&record, 1, 0, EntryState::Pending);
/// assert_eq!((entry.event_id.as_str(), entry.delivery_id.as_deref()), ("e-1", Some("d-1")));
/// # Ok::<(), boxhook::model::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEntry {
    /// `webhook.id`; the empty string when the event has none.
    pub webhook_id: String,
    /// The event's `id`.
    pub event_id: String,
    /// The trigger, exactly as sent.
    pub trigger: String,
    /// `source.type`.
    pub source_type: Option<String>,
    /// `source.id`.
    pub source_id: Option<String>,
    /// `BOX-DELIVERY-ID` of the first delivery stored.
    pub delivery_id: Option<String>,
    /// When the first delivery was accepted.
    pub received_at: DateTime<Utc>,
    /// How many accepted deliveries of this event the inbox counted.
    pub deliveries: u64,
    /// How many times a worker claimed it.
    pub attempts: u32,
    /// Where it is in its processing.
    pub state: EntryState,
    /// A V2 event or a V1 callback.
    pub kind: RecordKind,
}

impl InboxEntry {
    /// The entry for `record` with these counters (for inbox backends).
    #[must_use]
    pub fn new(record: &NewRecord, deliveries: u64, attempts: u32, state: EntryState) -> Self {
        Self {
            webhook_id: record.webhook_id.clone(),
            event_id: record.event_id.clone(),
            trigger: record.trigger.clone(),
            source_type: record.source_type.clone(),
            source_id: record.source_id.clone(),
            delivery_id: record.delivery_id.clone(),
            received_at: record.received_at,
            deliveries,
            attempts,
            state,
            kind: record.kind,
        }
    }

    /// The key the event is deduplicated on.
    #[must_use]
    pub fn key(&self) -> EventKey {
        EventKey::new(self.webhook_id.clone(), self.event_id.clone())
    }
}

/// A stored event with its raw body, as [`Inbox::get`](super::Inbox::get)
/// returns it.
///
/// ```
/// use boxhook::inbox::{EntryState, InboxEntry, NewRecord, StoredEvent};
///
/// let record = NewRecord::parse(&br#"{"id":"e-1","trigger":"X"}"#[..], None, chrono::Utc::now())?;
/// let stored = StoredEvent { entry: InboxEntry::new(&record, 1, 0, EntryState::Pending), body: record.body.clone() };
/// assert_eq!(&stored.body[..], br#"{"id":"e-1","trigger":"X"}"#);
/// # Ok::<(), boxhook::model::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// What the event is and where it stands.
    pub entry: InboxEntry,
    /// The body, byte for byte as received.
    pub body: Bytes,
}

impl StoredEvent {
    /// A V2 event or a V1 callback (the entry's [`kind`](InboxEntry::kind)).
    #[must_use]
    pub fn kind(&self) -> RecordKind {
        self.entry.kind
    }
}

/// An event a worker claimed with [`claim_next`](super::Inbox::claim_next):
/// process it, then
/// [`ack`](super::Inbox::ack) or [`requeue`](super::Inbox::requeue) it
/// before `lease_until`.
///
/// `entry.attempts` counts this claim; `entry.state` is
/// [`EntryState::Claimed`].
///
/// ```
/// use boxhook::inbox::{Claimed, EntryState, InboxEntry, NewRecord};
///
/// let now = chrono::Utc::now();
/// let record = NewRecord::parse(&br#"{"id":"e-1","trigger":"X"}"#[..], None, now)?;
/// let claimed = Claimed {
///     entry: InboxEntry::new(&record, 1, 1, EntryState::Claimed),
///     body: record.body.clone(),
///     worker_id: "worker-1".into(),
///     lease_until: now + chrono::TimeDelta::seconds(60),
/// };
/// assert_eq!(claimed.attempt(), 1);
/// # Ok::<(), boxhook::model::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The event, its counters and state.
    pub entry: InboxEntry,
    /// The body, byte for byte as received.
    pub body: Bytes,
    /// Who holds the claim.
    pub worker_id: String,
    /// When the claim ends unless acknowledged or requeued.
    pub lease_until: DateTime<Utc>,
}

impl Claimed {
    /// Which attempt this is, from 1.
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.entry.attempts
    }

    /// The event, parsed from the stored body.
    ///
    /// # Errors
    ///
    /// When the stored body is not a `webhook_event` (it was stored by
    /// something other than the router).
    pub fn event(&self) -> Result<WebhookEvent, boxhook_core::model::ParseError> {
        WebhookEvent::parse(&self.body)
    }
}

/// What [`Inbox::list`](super::Inbox::list) returns: oldest first (or
/// newest first), optionally one trigger only, optionally in one state
/// only, optionally only events received at or after a time, optionally
/// only those stored before a given event (a cursor for paging), optionally
/// at most `limit` entries.
///
/// Stored order is the order the inbox stored events in (the first
/// delivery of each). Paging through a big inbox, newest first:
/// list with `newest_first().limit(n)`, then again with
/// `.before(last_page_entry.event_id)` until a page comes back short.
///
/// ```
/// use boxhook::inbox::{EntryState, ListFilter};
///
/// let filter = ListFilter::new().trigger("FILE.UPLOADED").state(EntryState::Dead).limit(50);
/// assert_eq!(filter.trigger.as_deref(), Some("FILE.UPLOADED"));
/// assert_eq!(filter.state, Some(EntryState::Dead));
/// assert_eq!(filter.limit, Some(50));
/// assert_eq!(ListFilter::default().limit, None);
///
/// let page_two = ListFilter::new().newest_first().before("e-1050").limit(50);
/// assert!(page_two.newest_first);
/// assert_eq!(page_two.before.as_deref(), Some("e-1050"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only events with exactly this trigger string.
    pub trigger: Option<String>,
    /// Only events in this state. A claim whose lease ended is still
    /// `claimed` until another worker claims it.
    pub state: Option<EntryState>,
    /// At most this many entries (all when `None`).
    pub limit: Option<usize>,
    /// Newest first instead of oldest first.
    pub newest_first: bool,
    /// Only events received at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events stored before the event with this event `id` (the
    /// oldest stored one with it, as [`Inbox::get`](super::Inbox::get)
    /// finds it); nothing when no event has it.
    pub before: Option<String>,
}

impl ListFilter {
    /// Every entry, oldest first.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Only events whose trigger is exactly `trigger`.
    #[must_use]
    pub fn trigger(mut self, trigger: impl Into<String>) -> Self {
        self.trigger = Some(trigger.into());
        self
    }

    /// Only events in `state`.
    #[must_use]
    pub fn state(mut self, state: EntryState) -> Self {
        self.state = Some(state);
        self
    }

    /// At most `limit` entries.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Newest first.
    #[must_use]
    pub fn newest_first(mut self) -> Self {
        self.newest_first = true;
        self
    }

    /// Only events received at or after `since`.
    #[must_use]
    pub fn since(mut self, since: DateTime<Utc>) -> Self {
        self.since = Some(since);
        self
    }

    /// Only events stored before the event with this `event_id`.
    #[must_use]
    pub fn before(mut self, event_id: impl Into<String>) -> Self {
        self.before = Some(event_id.into());
        self
    }
}

/// Which events [`DeadLetters::revive`](super::DeadLetters::revive) puts back in the
/// queue.
///
/// ```
/// use boxhook::inbox::Revive;
/// assert_ne!(Revive::AllDead, Revive::Event("e-1".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revive {
    /// Every event in the `dead` state.
    AllDead,
    /// Every event with this event `id` (one per webhook) that is `dead` or
    /// `done`: a dead event gets another round of attempts, a done one is
    /// processed again. `pending` and `claimed` ones are left as they are.
    Event(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use boxhook_core::model::Envelope;
    use boxhook_core::Verifier;
    use boxhook_testkit::Delivery;

    /// `Router::store_in` builds its record from the envelope it read; it
    /// must be the record `from_delivery` builds from the typed event.
    #[test]
    fn the_envelope_record_is_the_delivery_record() {
        let bodies = [
            r#"{"type":"webhook_event","id":"e-1","trigger":"FILE.UPLOADED","webhook":{"id":"4133"},"source":{"id":"5","type":"file"}}"#,
            r#"{"id":"e-2","trigger":"NO_ACTIVE_SESSION","source":{"id":"5","type":"folder"}}"#,
            r#"{"id":"e\u002d3","trigger":"SOMETHING.NEW","webhook":{"id":7},"source":{"id":5,"type":"file"}}"#,
            r#"{"id":"e-4","trigger":"WEBHOOK.DELETED","webhook":{"id":"w"},"source":{"type":"file"}}"#,
        ];
        let at = "2020-01-01T07:00:00Z".parse().expect("time");
        for body in bodies {
            let delivery = Delivery::new(body).delivery_id("d-1");
            let request = delivery.to_bytes_request();
            let verified = Verifier::new(boxhook_testkit::sample_keys())
                .verify(request.headers(), request.body(), delivery.now())
                .expect("signed");
            let bytes = request.body().clone();
            let event = WebhookEvent::parse(&bytes).expect("event");
            let envelope = Envelope::parse(&bytes).expect("envelope");
            let ctx = DeliveryContext::new(
                verified,
                event.id().to_owned(),
                envelope.webhook_id().map(str::to_owned),
                bytes.clone(),
            );
            assert_eq!(
                NewRecord::from_envelope(&envelope, Some("d-1"), at, bytes.clone()),
                NewRecord::from_delivery(&event, &ctx, at),
                "{body}"
            );
        }
    }
}
