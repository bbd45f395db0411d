//! Replay against an in-memory inbox and a receiver on 127.0.0.1.

use std::convert::Infallible;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{Replay, Step, Tally};
use crate::inbox::{
    Claimed, Counts, EntryState, Inbox, InboxEntry, InboxError, ListFilter, NewRecord, RecordKind,
    Stored, StoredEvent,
};
use crate::runtime::send::{sample_keys, Attempt, RetrySchedule, Simulator};
use crate::Verifier;

/// Listed entries and their bodies; an entry without a body was removed
/// after the list (as a prune does).
#[derive(Default)]
struct MemInbox(Mutex<Vec<(InboxEntry, Option<Bytes>)>>);

impl MemInbox {
    fn with(events: &[(&str, &str, RecordKind, bool)]) -> Self {
        let inbox = Self::default();
        let now: DateTime<Utc> = "2026-01-31T12:00:00Z".parse().expect("a time");
        for &(id, trigger, kind, stored) in events {
            let body = format!(
                r#"{{"type":"webhook_event","id":"{id}","trigger":"{trigger}","webhook":{{"id":"77"}}}}"#
            );
            let record = NewRecord::parse(body.clone(), Some("d-1"), now).expect("an event");
            let mut entry = InboxEntry::new(&record, 1, 0, EntryState::Done);
            entry.kind = kind;
            let body = stored.then(|| Bytes::from(body));
            inbox.0.lock().expect("not poisoned").push((entry, body));
        }
        inbox
    }
}

impl Inbox for MemInbox {
    async fn store(&self, _: NewRecord) -> Result<Stored, InboxError> {
        unreachable!("replay only reads")
    }

    async fn claim_next(
        &self,
        _: &str,
        _: Duration,
        _: DateTime<Utc>,
    ) -> Result<Option<Claimed>, InboxError> {
        unreachable!("replay only reads")
    }

    async fn ack(&self, _: &Claimed) -> Result<(), InboxError> {
        unreachable!("replay only reads")
    }

    async fn requeue(&self, _: &Claimed, _: DateTime<Utc>) -> Result<(), InboxError> {
        unreachable!("replay only reads")
    }

    async fn list(&self, filter: ListFilter) -> Result<Vec<InboxEntry>, InboxError> {
        let events = self.0.lock().expect("not poisoned");
        Ok(events
            .iter()
            .map(|(entry, _)| entry)
            .filter(|e| filter.trigger.as_ref().is_none_or(|t| *t == e.trigger))
            .filter(|e| filter.state.is_none_or(|s| s == e.state))
            .cloned()
            .collect())
    }

    async fn get(&self, event_id: &str) -> Result<Option<StoredEvent>, InboxError> {
        let events = self.0.lock().expect("not poisoned");
        Ok(events.iter().find_map(|(entry, body)| {
            let body = body.clone().filter(|_| entry.event_id == event_id)?;
            Some(StoredEvent {
                entry: entry.clone(),
                body,
            })
        }))
    }

    async fn counts(&self) -> Result<Counts, InboxError> {
        unreachable!("replay does not count")
    }
}

/// What the receiver saw: the path, the body, and whether it verified.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Arrived {
    path: String,
    body: Bytes,
    verified: bool,
}

/// A receiver on 127.0.0.1 that verifies every request with the sample
/// keys, answers 418 to bodies naming `e-teapot` and 200 to the rest.
struct Receiver {
    uri: Uri,
    arrived: Arc<Mutex<Vec<Arrived>>>,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receiver() -> Receiver {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("a free port");
    let uri = format!(
        "http://{}/box/webhooks",
        listener.local_addr().expect("bound")
    )
    .parse()
    .expect("a URI");
    let arrived = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&arrived);
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = Arc::clone(&log);
            let answer = service_fn(move |request: Request<Incoming>| {
                let log = Arc::clone(&log);
                async move {
                    let (parts, body) = request.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(http_body_util::Collected::to_bytes)
                        .unwrap_or_default();
                    let verified = Verifier::new(sample_keys())
                        .verify(&parts.headers, &body, Utc::now())
                        .is_ok();
                    let status = if body.windows(8).any(|w| w == b"e-teapot") {
                        StatusCode::IM_A_TEAPOT
                    } else {
                        StatusCode::OK
                    };
                    log.lock().expect("not poisoned").push(Arrived {
                        path: parts.uri.path().to_owned(),
                        body,
                        verified,
                    });
                    let mut response = Response::new(Full::new(Bytes::new()));
                    *response.status_mut() = status;
                    Ok::<_, Infallible>(response)
                }
            });
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), answer));
        }
    });
    Receiver { uri, arrived, task }
}

fn once(target: Uri) -> Simulator {
    Simulator::builder(target, sample_keys())
        .schedule(RetrySchedule::none())
        .timeout(Duration::from_secs(5))
        .build()
}

/// Each step as a line.
fn line(step: &Step<'_>) -> String {
    match step {
        Step::Sending(entry) => format!("sending {}", entry.event_id),
        Step::Gone(entry) => format!("gone {}", entry.event_id),
        Step::Sent {
            entry,
            report,
            tally,
        } => format!(
            "sent {}: {:?} [{tally}]",
            entry.event_id,
            report.last().and_then(Attempt::status).map(|s| s.as_u16())
        ),
    }
}

#[tokio::test]
async fn sends_each_selected_v2_event_once_and_tallies_the_answers() {
    let inbox = MemInbox::with(&[
        ("e-1", "FILE.UPLOADED", RecordKind::V2, true),
        ("e-folder", "FOLDER.CREATED", RecordKind::V2, true),
        ("e-v1", "FILE.UPLOADED", RecordKind::V1, true),
        ("e-teapot", "FILE.UPLOADED", RecordKind::V2, true),
        ("e-gone", "FILE.UPLOADED", RecordKind::V2, false),
        ("e-3", "FILE.UPLOADED", RecordKind::V2, true),
    ]);
    let receiver = receiver().await;

    let selection = Replay::new(ListFilter::new().trigger("FILE.UPLOADED"))
        .select(&inbox)
        .await
        .expect("listed");
    let ids: Vec<_> = selection
        .events()
        .iter()
        .map(|e| e.event_id.as_str())
        .collect();
    assert_eq!(ids, ["e-1", "e-teapot", "e-gone", "e-3"]);
    assert_eq!((selection.len(), selection.skipped_v1()), (4, 1));

    let mut steps = Vec::new();
    let tally = selection
        .send(
            &inbox,
            &once(receiver.uri.clone()),
            std::future::pending::<()>(),
            |step| steps.push(line(&step)),
        )
        .await
        .expect("replayed");

    let want = Tally {
        sent: 3,
        ok: 2,
        other: 1,
        failed: 0,
        stopped: false,
    };
    assert_eq!(tally, want);
    assert_eq!(tally.to_string(), "sent 3, 2xx 2, other 1, failed 0");
    assert_eq!(
        steps,
        [
            "sending e-1",
            "sent e-1: Some(200) [sent 1, 2xx 1, other 0, failed 0]",
            "sending e-teapot",
            "sent e-teapot: Some(418) [sent 2, 2xx 1, other 1, failed 0]",
            "gone e-gone",
            "sending e-3",
            "sent e-3: Some(200) [sent 3, 2xx 2, other 1, failed 0]",
        ]
    );
    let arrived = receiver.arrived.lock().expect("not poisoned").clone();
    let stored = inbox.0.lock().expect("not poisoned").clone();
    let body = |id: &str| {
        stored
            .iter()
            .find(|(e, _)| e.event_id == id)
            .and_then(|(_, b)| b.clone())
            .expect("stored")
    };
    let want: Vec<_> = ["e-1", "e-teapot", "e-3"]
        .map(|id| Arrived {
            path: "/box/webhooks".to_owned(),
            body: body(id),
            verified: true,
        })
        .into();
    assert_eq!(arrived, want, "byte for byte, signed, at the target's path");
}

#[tokio::test]
async fn a_delivery_without_an_answer_counts_as_failed() {
    let inbox = MemInbox::with(&[("e-1", "FILE.UPLOADED", RecordKind::V2, true)]);
    // A port nothing listens on.
    let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let target = format!("http://127.0.0.1:{port}/").parse().expect("a URI");

    let mut steps = Vec::new();
    let tally = Replay::new(ListFilter::new())
        .select(&inbox)
        .await
        .expect("listed")
        .send(
            &inbox,
            &once(target),
            std::future::pending::<()>(),
            |step| {
                steps.push(line(&step));
            },
        )
        .await
        .expect("replayed");

    assert_eq!(tally.to_string(), "sent 1, 2xx 0, other 0, failed 1");
    assert!(!tally.stopped);
    assert_eq!(
        steps,
        [
            "sending e-1",
            "sent e-1: None [sent 1, 2xx 0, other 0, failed 1]"
        ]
    );
}

#[tokio::test]
async fn deliveries_keep_the_pace() {
    let inbox = MemInbox::with(&[
        ("e-1", "FILE.UPLOADED", RecordKind::V2, true),
        ("e-2", "FILE.UPLOADED", RecordKind::V2, true),
        ("e-3", "FILE.UPLOADED", RecordKind::V2, true),
    ]);
    let receiver = receiver().await;
    let gap = Duration::from_millis(150);

    let started = Instant::now();
    let mut sent_at = Vec::new();
    let tally = Replay::new(ListFilter::new())
        .every(gap)
        .select(&inbox)
        .await
        .expect("listed")
        .send(
            &inbox,
            &once(receiver.uri.clone()),
            std::future::pending::<()>(),
            |step| {
                if let Step::Sending(_) = step {
                    sent_at.push(started.elapsed());
                }
            },
        )
        .await
        .expect("replayed");

    assert_eq!(tally.to_string(), "sent 3, 2xx 3, other 0, failed 0");
    assert_eq!(sent_at.len(), 3);
    assert!(sent_at[0] < gap, "the first goes at once: {sent_at:?}");
    assert!(sent_at[1] >= gap, "{sent_at:?}");
    assert!(sent_at[2] >= gap * 2, "{sent_at:?}");
}

#[tokio::test]
async fn stop_ends_the_replay_with_the_tally_so_far() {
    let inbox = MemInbox::with(&[
        ("e-1", "FILE.UPLOADED", RecordKind::V2, true),
        ("e-2", "FILE.UPLOADED", RecordKind::V2, true),
    ]);
    let receiver = receiver().await;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut stop_tx = Some(stop_tx);

    // An hour between deliveries: only the stop ends this in time.
    let started = Instant::now();
    let tally = Replay::new(ListFilter::new())
        .every(Duration::from_secs(3600))
        .select(&inbox)
        .await
        .expect("listed")
        .send(&inbox, &once(receiver.uri.clone()), stop_rx, |step| {
            if let Step::Sent { .. } = step
                && let Some(tx) = stop_tx.take()
            {
                tx.send(()).expect("the replay listens");
            }
        })
        .await
        .expect("replayed");

    assert!(started.elapsed() < Duration::from_secs(60));
    let want = Tally {
        sent: 1,
        ok: 1,
        other: 0,
        failed: 0,
        stopped: true,
    };
    assert_eq!(tally, want);
    assert_eq!(receiver.arrived.lock().expect("not poisoned").len(), 1);
}

#[tokio::test]
async fn a_stop_already_done_sends_nothing() {
    let inbox = MemInbox::with(&[("e-1", "FILE.UPLOADED", RecordKind::V2, true)]);
    let receiver = receiver().await;
    let mut steps = 0;
    let tally = Replay::new(ListFilter::new())
        .select(&inbox)
        .await
        .expect("listed")
        .send(
            &inbox,
            &once(receiver.uri.clone()),
            std::future::ready(()),
            |_| steps += 1,
        )
        .await
        .expect("replayed");
    assert_eq!(
        tally,
        Tally {
            stopped: true,
            ..Tally::default()
        }
    );
    assert_eq!(steps, 0);
    assert!(receiver.arrived.lock().expect("not poisoned").is_empty());
}
