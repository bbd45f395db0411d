//! The metrics the layer and router record: every name and label in
//! `boxhook::metrics`'s table, with the exact counts a known set of
//! deliveries produces, read back from a recorder.

use crate::common;

use std::collections::BTreeMap;

use boxhook::metrics::{
    ALERTS_TOTAL, DELIVERIES_TOTAL, EVENTS_TOTAL, HANDLER_SECONDS, REJECTIONS_TOTAL,
    VERIFIED_TOTAL, VERIFY_SECONDS,
};
use boxhook::{HandlerError, KeyRing, Router, Trigger, WebhookEvent};
use boxhook_testkit::{Delivery, SAMPLE_SECONDARY_KEY};
use common::{event, stack};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tower::ServiceExt as _;

/// `name{label=value,…}` → counter value, or sample count for histograms.
type Readings = BTreeMap<String, u64>;

fn read(recorder: &DebuggingRecorder) -> Readings {
    let mut readings = Readings::new();
    for (key, _, _, value) in recorder.snapshotter().snapshot().into_vec() {
        let key = key.key();
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let name = if labels.is_empty() {
            key.name().to_owned()
        } else {
            format!("{}{{{}}}", key.name(), labels.join(","))
        };
        let value = match value {
            DebugValue::Counter(n) => n,
            DebugValue::Histogram(samples) => u64::try_from(samples.len()).expect("fits"),
            DebugValue::Gauge(_) => panic!("the library sets no gauge: {name}"),
        };
        readings.insert(name, value);
    }
    readings
}

#[test]
#[allow(clippy::too_many_lines, reason = "one table of expected readings")]
fn a_known_mix_of_deliveries_records_exact_counts() {
    let recorder = DebuggingRecorder::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let router = Router::new()
        .on(Trigger::FileUploaded, |_: WebhookEvent| async {
            Ok::<_, HandlerError>(())
        })
        .on(Trigger::FileTrashed, |_: WebhookEvent| async {
            Err::<(), _>(HandlerError::new("downstream is down"))
        })
        .on(Trigger::WebhookDeleted, |_: WebhookEvent| async {
            Ok::<_, HandlerError>(())
        });
    let secondary_only =
        KeyRing::from_strs(Some("an-old-primary"), Some(SAMPLE_SECONDARY_KEY)).expect("keys");
    let deliveries = [
        // new, handled (peek path); then the same event again: duplicate
        Delivery::new(event("e1", "FILE.UPLOADED")),
        Delivery::new(event("e1", "FILE.UPLOADED")),
        // matched by the secondary key; in the escaped form
        Delivery::new(event("e2", "FILE.UPLOADED")).keys(secondary_only),
        Delivery::new(event("e3", "FILE.UPLOADED")).reserialized(),
        // the handler fails
        Delivery::new(event("e4", "FILE.TRASHED")),
        // no handler, an unknown trigger: unhandled, label "other"
        Delivery::new(event("e5", "FILE.ARCHIVED_BY_A_NEW_BOX_FEATURE")),
        // an alert trigger, handled; and one nobody handles
        Delivery::new(event("e6", "WEBHOOK.DELETED")),
        Delivery::new(event("e7", "NO_ACTIVE_SESSION")),
        // rejected
        Delivery::new(event("e8", "FILE.UPLOADED")).tampered(),
        Delivery::new(event("e9", "FILE.UPLOADED")).tampered(),
        Delivery::new(event("e10", "FILE.UPLOADED")).stale(),
        // verified, but not an event
        Delivery::new(r#"{"type":"webhook_event","id":"e11"}"#),
    ];
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            for delivery in &deliveries {
                let response = stack(router.clone())
                    .oneshot(delivery.to_request())
                    .await
                    .expect("infallible");
                drop(response);
            }
        });
    });
    let expected: Readings = [
        (format!("{DELIVERIES_TOTAL}{{status=200}}"), 7),
        (format!("{DELIVERIES_TOTAL}{{status=400}}"), 1),
        (format!("{DELIVERIES_TOTAL}{{status=401}}"), 3),
        (format!("{DELIVERIES_TOTAL}{{status=500}}"), 1),
        (format!("{REJECTIONS_TOTAL}{{reason=mismatch}}"), 2),
        (format!("{REJECTIONS_TOTAL}{{reason=expired}}"), 1),
        (format!("{VERIFIED_TOTAL}{{form=raw,key=primary}}"), 7),
        (format!("{VERIFIED_TOTAL}{{form=raw,key=secondary}}"), 1),
        (format!("{VERIFIED_TOTAL}{{form=escaped,key=primary}}"), 1),
        (
            format!("{EVENTS_TOTAL}{{outcome=handled,trigger=FILE.UPLOADED}}"),
            3,
        ),
        (
            format!("{EVENTS_TOTAL}{{outcome=duplicate,trigger=FILE.UPLOADED}}"),
            1,
        ),
        (
            format!("{EVENTS_TOTAL}{{outcome=failed,trigger=FILE.TRASHED}}"),
            1,
        ),
        (
            format!("{EVENTS_TOTAL}{{outcome=unhandled,trigger=other}}"),
            1,
        ),
        (
            format!("{EVENTS_TOTAL}{{outcome=handled,trigger=WEBHOOK.DELETED}}"),
            1,
        ),
        (
            format!("{EVENTS_TOTAL}{{outcome=unhandled,trigger=NO_ACTIVE_SESSION}}"),
            1,
        ),
        (format!("{ALERTS_TOTAL}{{kind=webhook_deleted}}"), 1),
        (format!("{ALERTS_TOTAL}{{kind=no_active_session}}"), 1),
        // every delivery reached the verifier, the refused ones too
        (VERIFY_SECONDS.to_owned(), 12),
        // the handler ran on e1, e2, e3, e4 and e6
        (HANDLER_SECONDS.to_owned(), 5),
    ]
    .into_iter()
    .collect();
    assert_eq!(read(&recorder), expected);
}

#[test]
fn no_label_carries_an_id() {
    let recorder = DebuggingRecorder::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let router = Router::new();
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            for n in 0..50 {
                let body = event(&format!("event-{n}"), &format!("CUSTOM.TRIGGER_{n}"));
                let delivery = Delivery::new(body).delivery_id(format!("delivery-{n}"));
                drop(stack(router.clone()).oneshot(delivery.to_request()).await);
            }
        });
    });
    let readings = read(&recorder);
    assert!(readings.len() <= 4, "{readings:#?}");
    for name in readings.keys() {
        for id in ["event-", "delivery-", "4133", "CUSTOM"] {
            assert!(!name.contains(id), "{name} carries {id}");
        }
    }
}
