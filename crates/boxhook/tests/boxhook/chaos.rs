//! The chaos delivery run: 10,000 deliveries of mixed triggers from the test
//! kit's Box-like simulator to a live server on 127.0.0.1 — 5 % tampered,
//! 5 % stale, 10 % retried duplicates with new delivery ids, and a handler
//! that fails 10 % of first attempts. Nothing forged or stale may be accepted,
//! every valid event must be handled exactly once, every failure retried.

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use boxhook::{DeliveryContext, HandlerError, Router};
use boxhook_core::model::{Trigger, WebhookEvent};
use boxhook_testkit::{Delivery, RetrySchedule, Simulator};
use http::{StatusCode, Uri};

const UNIQUE: usize = 8_000;
const TAMPERED: usize = 500;
const STALE: usize = 500;
const DUPLICATES: usize = 1_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Valid,
    Duplicate,
    Tampered,
    Stale,
}

/// Per event id: how many times the handler ran, and how many runs succeeded.
type Ledger = Arc<Mutex<HashMap<String, (usize, usize)>>>;

fn fails_first_attempt(event_id: &str) -> bool {
    event_id
        .strip_prefix("evt-")
        .and_then(|n| n.parse::<usize>().ok())
        .is_some_and(|n| n % 10 == 7)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_deliveries() {
    tokio::time::timeout(Duration::from_secs(300), run())
        .await
        .expect("the chaos run is bounded to 300 s");
}

#[allow(
    clippy::too_many_lines,
    reason = "one scenario, set up, run and checked in order"
)]
async fn run() {
    let ledger: Ledger = Arc::default();
    let book = ledger.clone();
    let router = Router::new().fallback(move |event: WebhookEvent, _: DeliveryContext| {
        let book = book.clone();
        async move {
            let first = {
                let mut book = book.lock().expect("ledger");
                let entry = book.entry(event.id().to_owned()).or_default();
                entry.0 += 1;
                entry.0 == 1
            };
            if first && fails_first_attempt(event.id()) {
                return Err(HandlerError::new("injected failure on the first attempt"));
            }
            book.lock()
                .expect("ledger")
                .get_mut(event.id())
                .expect("entry")
                .1 += 1;
            Ok(())
        }
    });
    let server = common::serve(common::stack(router)).await;
    let simulator = Simulator::builder(
        Uri::try_from(format!("http://{}/", server.addr)).expect("uri"),
        common::keys(),
    )
    .clock(common::clock())
    .schedule(RetrySchedule::fixed(10, Duration::from_millis(20)))
    .build();

    // Mixed triggers, every kind interleaved in a fixed pseudo-random order.
    let triggers = Trigger::known();
    let body = |i: usize| common::event(&format!("evt-{i}"), triggers[i % triggers.len()].as_str());
    let mut plan: Vec<(Kind, Delivery, String)> = Vec::new();
    for i in 0..UNIQUE {
        plan.push((Kind::Valid, Delivery::new(body(i)), format!("evt-{i}")));
    }
    for i in 0..DUPLICATES {
        let n = i * (UNIQUE / DUPLICATES);
        plan.push((Kind::Duplicate, Delivery::new(body(n)), format!("evt-{n}")));
    }
    for i in 0..TAMPERED {
        let n = UNIQUE + i;
        plan.push((
            Kind::Tampered,
            Delivery::new(body(n)).tampered(),
            format!("evt-{n}"),
        ));
    }
    for i in 0..STALE {
        let n = UNIQUE + TAMPERED + i;
        plan.push((
            Kind::Stale,
            Delivery::new(body(n)).stale(),
            format!("evt-{n}"),
        ));
    }
    let total = plan.len();
    let mut order: Vec<usize> = (0..total).collect();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for i in (1..total).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        order.swap(i, usize::try_from(state >> 33).expect("fits") % (i + 1));
    }
    let plan: Vec<_> = order.into_iter().map(|i| plan[i].clone()).collect();

    let reports = simulator
        .send_many(plan.iter().map(|(_, d, _)| d.clone()), 64)
        .await;
    assert_eq!(reports.len(), total);

    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for ((kind, _, event_id), report) in plan.iter().zip(&reports) {
        let attempts: Vec<Option<StatusCode>> = report
            .attempts()
            .iter()
            .map(boxhook_testkit::Attempt::status)
            .collect();
        for status in &attempts {
            *statuses
                .entry(status.map_or(0, |s| s.as_u16()))
                .or_default() += 1;
        }
        match kind {
            Kind::Tampered | Kind::Stale => {
                assert!(
                    !report.delivered(),
                    "{kind:?} {event_id} was accepted: {attempts:?}"
                );
                assert!(
                    attempts
                        .iter()
                        .all(|s| *s == Some(StatusCode::UNAUTHORIZED)),
                    "{kind:?} {event_id}: {attempts:?}"
                );
                *counts
                    .entry(if *kind == Kind::Tampered {
                        "tampered rejected"
                    } else {
                        "stale rejected"
                    })
                    .or_default() += 1;
            }
            Kind::Valid | Kind::Duplicate => {
                assert!(
                    report.delivered(),
                    "{kind:?} {event_id} was never acknowledged: {attempts:?}"
                );
                if attempts.len() > 1 {
                    *counts.entry("valid deliveries retried").or_default() += 1;
                }
            }
        }
    }

    let ledger = ledger.lock().expect("ledger");
    for i in 0..UNIQUE {
        let id = format!("evt-{i}");
        let (runs, successes) = ledger.get(&id).copied().unwrap_or_default();
        assert_eq!(successes, 1, "{id} handled {successes} times");
        if fails_first_attempt(&id) {
            assert_eq!(runs, 2, "{id} failed once, then was retried and handled");
            *counts
                .entry("failed first attempts retried and handled")
                .or_default() += 1;
        } else {
            assert_eq!(runs, 1, "{id} ran {runs} times");
        }
    }
    for i in UNIQUE..UNIQUE + TAMPERED + STALE {
        assert!(
            !ledger.contains_key(&format!("evt-{i}")),
            "a forged or stale event reached the handler"
        );
    }
    let handled: usize = ledger.values().map(|(_, ok)| ok).sum();
    println!("chaos: {total} deliveries ({UNIQUE} unique valid events, {DUPLICATES} duplicates, {TAMPERED} tampered, {STALE} stale)");
    println!("chaos: attempts by status: {statuses:?}");
    println!("chaos: {counts:?}");
    println!("chaos: handled {handled} events exactly once each");
    assert_eq!(handled, UNIQUE);
    assert_eq!(
        counts.get("failed first attempts retried and handled"),
        Some(&(UNIQUE / 10))
    );
}
