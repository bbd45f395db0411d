//! A [`Worker`] reads each claimed record as its kind says: a V2 event goes
//! to [`InboxHandler::call`], a V1 callback to [`InboxHandler::call_v1`]. A
//! record that can never be read back (a body that is not a `webhook_event`,
//! V1 parameters that do not decode), or a V1 callback for a handler that
//! takes none, is dead on its first attempt with one log line, not retried
//! until `max_attempts`.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use boxhook::inbox::{
    Claimed, Counts, DeadLetters, EntryState, Inbox, InboxEntry, InboxError, InboxHandler,
    ListFilter, NewRecord, Ran, Revive, Stored, StoredEvent, Worker,
};
use boxhook::model::WebhookEvent;
use boxhook::v1::{Params, V1Callback, V1Fields};
use boxhook::HandlerError;
use bytes::Bytes;
use chrono::{DateTime, Utc};

/// Records in the order stored, with their state and attempts; and the
/// time of each requeue.
#[derive(Clone, Default)]
struct Records(
    Arc<Mutex<Vec<(NewRecord, EntryState, u32)>>>,
    Arc<Mutex<Vec<DateTime<Utc>>>>,
);

impl Records {
    fn states(&self) -> Vec<(String, EntryState, u32)> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .map(|(r, state, attempts)| (r.event_id.clone(), *state, *attempts))
            .collect()
    }

    fn set(&self, claimed: &Claimed, state: EntryState) {
        for (record, have, _) in self.0.lock().expect("lock").iter_mut() {
            if record.event_id == claimed.entry.event_id {
                *have = state;
            }
        }
    }
}

impl Inbox for Records {
    async fn store(&self, record: NewRecord) -> Result<Stored, InboxError> {
        self.0
            .lock()
            .expect("lock")
            .push((record, EntryState::Pending, 0));
        Ok(Stored::New)
    }

    async fn claim_next(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Claimed>, InboxError> {
        let mut records = self.0.lock().expect("lock");
        let Some((record, state, attempts)) = records
            .iter_mut()
            .find(|(_, state, _)| *state == EntryState::Pending)
        else {
            return Ok(None);
        };
        *state = EntryState::Claimed;
        *attempts += 1;
        Ok(Some(Claimed {
            entry: InboxEntry::new(record, 1, *attempts, EntryState::Claimed),
            body: record.body.clone(),
            worker_id: worker_id.to_owned(),
            lease_until: now + chrono::TimeDelta::from_std(lease).expect("lease"),
        }))
    }

    async fn ack(&self, claimed: &Claimed) -> Result<(), InboxError> {
        self.set(claimed, EntryState::Done);
        Ok(())
    }

    async fn requeue(&self, claimed: &Claimed, at: DateTime<Utc>) -> Result<(), InboxError> {
        self.set(claimed, EntryState::Pending);
        self.1.lock().expect("lock").push(at);
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

impl DeadLetters for Records {
    async fn bury(&self, claimed: &Claimed) -> Result<(), InboxError> {
        self.set(claimed, EntryState::Dead);
        Ok(())
    }

    async fn revive(&self, which: Revive, _: DateTime<Utc>) -> Result<u64, InboxError> {
        let mut revived = 0;
        for (record, state, attempts) in self.0.lock().expect("lock").iter_mut() {
            let chosen = match &which {
                Revive::AllDead => *state == EntryState::Dead,
                Revive::Event(id) => {
                    record.event_id == *id && matches!(*state, EntryState::Dead | EntryState::Done)
                }
            };
            if chosen {
                *state = EntryState::Pending;
                *attempts = 0;
                revived += 1;
            }
        }
        Ok(revived)
    }
}

fn at() -> DateTime<Utc> {
    "2024-05-14T09:12:31.250Z".parse().expect("time")
}

fn v1_record(id: &str, query: &[u8]) -> NewRecord {
    let params = Params::parse(query).expect("params");
    V1Callback::new(id, at(), params, &V1Fields::default()).to_record()
}

fn v2_record(id: &str) -> NewRecord {
    let body = format!(
        r#"{{"type":"webhook_event","id":"{id}","trigger":"FILE.UPLOADED","webhook":{{"id":"w-1"}}}}"#
    );
    NewRecord::parse(body, Some("d-1"), at()).expect("event")
}

/// A handler for both kinds that writes down what it got.
#[derive(Clone, Default)]
struct Both(Arc<Mutex<Vec<String>>>);

impl InboxHandler for Both {
    async fn call(&self, event: WebhookEvent, claimed: Claimed) -> Result<(), HandlerError> {
        self.0.lock().expect("lock").push(format!(
            "v2 {} {} attempt {}",
            event.id(),
            event.trigger(),
            claimed.attempt()
        ));
        Ok(())
    }

    async fn call_v1(&self, callback: V1Callback, claimed: Claimed) -> Result<(), HandlerError> {
        let params: Vec<String> = callback
            .params()
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        self.0.lock().expect("lock").push(format!(
            "v1 {} {} item {:?} at {} [{}] attempt {}",
            callback.id(),
            callback.trigger(),
            callback.item_id(),
            callback.received_at().to_rfc3339(),
            params.join(" "),
            claimed.attempt()
        ));
        Ok(())
    }
}

#[tokio::test]
async fn v1_records_go_to_call_v1_and_v2_events_to_call() {
    let (captured, _guard) = common::capture_logs(tracing::Level::WARN);
    let inbox = Records::default();
    inbox.store(v2_record("e-1")).await.expect("store");
    inbox
        .store(v1_record(
            "v1-1",
            b"event_type=uploaded&item_id=42&item_name=Q1+%C3%A9t%C3%A9.pdf",
        ))
        .await
        .expect("store");
    let handler = Both::default();
    let worker = Worker::new(inbox.clone(), handler.clone()).max_attempts(3);
    assert_eq!(worker.run_once().await.expect("run"), Ran::Acked);
    assert_eq!(worker.run_once().await.expect("run"), Ran::Acked);
    assert_eq!(worker.run_once().await.expect("run"), Ran::Idle);
    assert_eq!(
        *handler.0.lock().expect("lock"),
        [
            "v2 e-1 FILE.UPLOADED attempt 1",
            "v1 v1-1 uploaded item Some(\"42\") at 2024-05-14T09:12:31.250+00:00 \
             [event_type=uploaded item_id=42 item_name=Q1 été.pdf] attempt 1",
        ]
    );
    assert_eq!(
        inbox.states(),
        [
            ("e-1".to_owned(), EntryState::Done, 1),
            ("v1-1".to_owned(), EntryState::Done, 1)
        ]
    );
    assert_eq!(captured.text(), "", "no warning or error for either");
}

#[tokio::test]
async fn the_worker_reads_v1_callbacks_with_its_own_field_names() {
    let inbox = Records::default();
    inbox
        .store(v1_record("v1-1", b"event=deleted&item=7"))
        .await
        .expect("store");
    let handler = Both::default();
    let worker = Worker::new(inbox.clone(), handler.clone())
        .v1_fields(V1Fields::default().trigger("event").item_id("item"));
    assert_eq!(worker.run_once().await.expect("run"), Ran::Acked);
    assert!(
        handler.0.lock().expect("lock")[0].starts_with("v1 v1-1 deleted item Some(\"7\")"),
        "{:?}",
        handler.0.lock().expect("lock")
    );
}

/// One claim of a record that can never be processed: `Ran::Dead`, the
/// record dead after one attempt, and exactly one log line, an error that
/// says why and that it is not retried.
async fn dead_at_once(
    record: NewRecord,
    handler: impl InboxHandler,
    want_message: &str,
    want_error: &str,
) {
    let (captured, _guard) = common::capture_logs(tracing::Level::TRACE);
    let inbox = Records::default();
    let id = record.event_id.clone();
    inbox.store(record).await.expect("store");
    let worker = Worker::new(inbox.clone(), handler).max_attempts(10);
    assert_eq!(worker.run_once().await.expect("run"), Ran::Dead);
    assert_eq!(worker.run_once().await.expect("run"), Ran::Idle);
    assert_eq!(inbox.states(), [(id, EntryState::Dead, 1)]);
    let logged = captured.text();
    let lines: Vec<&str> = logged.lines().collect();
    assert_eq!(lines.len(), 1, "{logged}");
    assert!(lines[0].contains("ERROR"), "{logged}");
    assert!(lines[0].contains(want_message), "{logged}");
    assert!(lines[0].contains(want_error), "{logged}");
}

#[tokio::test]
async fn a_body_that_is_not_a_webhook_event_is_dead_on_its_first_attempt() {
    let mut record = v2_record("e-1");
    record.body = Bytes::from_static(b"not json at all");
    dead_at_once(
        record,
        Both::default(),
        "inbox event can never be processed: its stored body does not read back; it is dead \
         at once, not retried",
        "error=the stored body is not a webhook_event: body is not JSON",
    )
    .await;
}

#[tokio::test]
async fn v1_parameters_that_do_not_decode_are_dead_on_their_first_attempt() {
    let mut record = v1_record("v1-1", b"event_type=uploaded");
    record.body = Bytes::from_static(b"event_type=%FF");
    dead_at_once(
        record,
        Both::default(),
        "inbox event can never be processed",
        "error=the stored V1 callback is unreadable",
    )
    .await;
}

#[tokio::test]
async fn a_handler_that_takes_no_v1_callbacks_has_them_dead_at_once() {
    let only_v2 = |_: WebhookEvent, _: Claimed| async { Ok::<_, HandlerError>(()) };
    dead_at_once(
        v1_record("v1-1", b"event_type=uploaded&item_id=42"),
        only_v2,
        "inbox V1 callback cannot be processed by this worker; it is dead at once, not retried",
        "error=this worker's handler takes V2 events only (it does not implement \
         InboxHandler::call_v1); requeue the callback once one does",
    )
    .await;
}

#[tokio::test]
async fn a_handler_that_gives_up_has_its_event_dead_at_once() {
    let gives_up = |_: WebhookEvent, _: Claimed| async {
        Err::<(), _>(HandlerError::give_up("the folder it names was deleted"))
    };
    dead_at_once(
        v2_record("e-1"),
        gives_up,
        "inbox event given up by its handler; it is dead at once until requeued, not retried",
        "error=the folder it names was deleted",
    )
    .await;
}

#[tokio::test]
async fn a_retry_in_comes_back_after_exactly_its_wait_not_the_backoff() {
    let at = DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z")
        .expect("a time")
        .with_timezone(&Utc);
    let inbox = Records::default();
    inbox.store(v2_record("e-1")).await.expect("store");
    let later = |_: WebhookEvent, claimed: Claimed| async move {
        Err::<(), _>(match claimed.attempt() {
            1 => HandlerError::retry_in(Duration::from_secs(90), "rate limited for 90 s"),
            _ => HandlerError::retry_later("busy"),
        })
    };
    let worker = Worker::new(inbox.clone(), later)
        .clock(boxhook::FixedClock::at(at))
        .backoff(boxhook::inbox::Backoff::exponential(
            Duration::from_secs(5),
            Duration::from_secs(5),
        ))
        .max_attempts(3);
    assert_eq!(worker.run_once().await.expect("run"), Ran::Released);
    assert_eq!(worker.run_once().await.expect("run"), Ran::Released);
    // Its last attempt: dead, whatever the handler asked.
    assert_eq!(worker.run_once().await.expect("run"), Ran::Dead);
    assert_eq!(
        *inbox.1.lock().expect("lock"),
        [
            at + chrono::TimeDelta::seconds(90),
            at + chrono::TimeDelta::seconds(5)
        ]
    );
    assert_eq!(inbox.states(), [("e-1".to_owned(), EntryState::Dead, 3)]);
}
