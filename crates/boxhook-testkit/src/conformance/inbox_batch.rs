//! The rules of [`BatchClaims`]: claims of many events at once keep every
//! rule of `claim_next`, settles of many keep those of `ack`, `requeue` and
//! `bury`, and the counts stay exact.

use std::collections::BTreeSet;
use std::sync::Arc;

use boxhook::inbox::{BatchClaims, Claimed, EntryState, SettleAs};
use tokio::sync::Barrier;

use super::inbox::{claim_none, claim_some, expect, ok, record, state_of, LEASE};
use super::inbox_counts::tally;
use super::{at, violated};

/// How many workers claim batches at once, how many events they share,
/// and how many each batch claims at most.
const WORKERS: usize = 8;
const EVENTS: usize = 60;
const BATCH: usize = 7;

/// The lease's end, in the suite's seconds, of a claim made at `seconds`.
fn lease_end(seconds: i64) -> i64 {
    seconds.saturating_add(i64::try_from(LEASE.as_secs()).unwrap_or(i64::MAX))
}

fn ids(claimed: &[Claimed]) -> Vec<&str> {
    claimed
        .iter()
        .map(|claimed| claimed.entry.event_id.as_str())
        .collect()
}

async fn store_all<I: BatchClaims>(inbox: &I, rule: &str, events: &[(&str, &str)]) {
    for (n, (id, trigger)) in events.iter().enumerate() {
        let delivery = format!("d-{n}");
        let received = i64::try_from(n).unwrap_or(i64::MAX);
        ok(
            rule,
            "store",
            inbox.store(record(id, trigger, &delivery, received)),
        )
        .await;
    }
}

#[allow(
    clippy::too_many_lines,
    reason = "one rule's steps, each depending on the one before"
)]
pub(super) async fn batch_claim_ready<I: BatchClaims>(inbox: &I) {
    const RULE: &str = "batch-claim-ready";
    let any: &[String] = &[];
    store_all(
        inbox,
        RULE,
        &[
            ("e-1", "FILE.UPLOADED"),
            ("e-2", "FILE.UPLOADED"),
            ("e-3", "FOLDER.CREATED"),
            ("e-4", "FILE.UPLOADED"),
            ("e-5", "FILE.UPLOADED"),
        ],
    )
    .await;
    let none = ok(
        RULE,
        "claim_batch",
        inbox.claim_batch("w-1", LEASE, at(10), any, 0),
    )
    .await;
    expect(RULE, "events claimed with `max` 0", ids(&none), vec![]);
    let first = ok(
        RULE,
        "claim_batch",
        inbox.claim_batch("w-1", LEASE, at(10), any, 2),
    )
    .await;
    expect(
        RULE,
        "the first batch of 2 (oldest first)",
        ids(&first),
        vec!["e-1", "e-2"],
    );
    for claimed in &first {
        expect(RULE, "a batch claim's attempt", claimed.attempt(), 1);
        expect(
            RULE,
            "a batch claim's state",
            claimed.entry.state,
            EntryState::Claimed,
        );
        expect(
            RULE,
            "a batch claim's worker",
            claimed.worker_id.as_str(),
            "w-1",
        );
        expect(
            RULE,
            "a batch claim's lease end",
            claimed.lease_until,
            at(lease_end(10)),
        );
        let want = format!(
            r#"{{"type":"webhook_event","id":"{}","#,
            claimed.entry.event_id
        );
        if !claimed.body.starts_with(want.as_bytes()) {
            violated(
                RULE,
                format!(
                    "the body of batch-claimed {} is not the one stored",
                    claimed.entry.event_id
                ),
            );
        }
    }
    tally(inbox, RULE, "after a batch claim of 2", (3, 2, 0, 0)).await;
    let uploads = ["FILE.UPLOADED".to_owned()];
    let filtered = ok(
        RULE,
        "claim_batch",
        inbox.claim_batch("w-2", LEASE, at(11), &uploads, 10),
    )
    .await;
    expect(
        RULE,
        "a batch of FILE.UPLOADED only, while e-1 and e-2 are leased",
        ids(&filtered),
        vec!["e-4", "e-5"],
    );
    // e-5 back in the queue for later: not ready before its retry time.
    let e5 = filtered
        .iter()
        .find(|claimed| claimed.entry.event_id == "e-5")
        .cloned()
        .unwrap_or_else(|| violated(RULE, "e-5 was not claimed"));
    ok(RULE, "requeue", inbox.requeue(&e5, at(30))).await;
    let rest = ok(
        RULE,
        "claim_batch",
        inbox.claim_batch("w-3", LEASE, at(29), any, 10),
    )
    .await;
    expect(
        RULE,
        "a batch claim of any trigger before e-5's retry time",
        ids(&rest),
        vec!["e-3"],
    );
    let nothing = ok(
        RULE,
        "claim_batch",
        inbox.claim_batch("w-3", LEASE, at(29), any, 10),
    )
    .await;
    expect(
        RULE,
        "a batch claim with every event leased or not ready",
        ids(&nothing),
        vec![],
    );
    let retried = ok(
        RULE,
        "claim_batch",
        inbox.claim_batch("w-3", LEASE, at(30), any, 10),
    )
    .await;
    expect(
        RULE,
        "a batch claim at e-5's retry time",
        ids(&retried),
        vec!["e-5"],
    );
    expect(RULE, "e-5's second attempt", retried[0].attempt(), 2);
    // At the end of the first batch's leases, its events are claimed again.
    let reclaimed = ok(
        RULE,
        "claim_batch",
        inbox.claim_batch("w-4", LEASE, at(lease_end(10)), any, 10),
    )
    .await;
    expect(
        RULE,
        "a batch claim once the first batch's leases ended",
        ids(&reclaimed),
        vec!["e-1", "e-2"],
    );
    for claimed in &reclaimed {
        expect(
            RULE,
            "an expired claim's next attempt",
            claimed.attempt(),
            2,
        );
    }
    tally(inbox, RULE, "after claims of expired claims", (0, 5, 0, 0)).await;
}

pub(super) async fn batch_claim_never_twice<I: BatchClaims>(inbox: I) {
    const RULE: &str = "batch-claim-never-twice";
    for i in 0..EVENTS {
        let id = format!("e-{i:02}");
        let received = i64::try_from(i).unwrap_or(i64::MAX);
        ok(
            RULE,
            "store",
            inbox.store(record(&id, "FILE.UPLOADED", "d-1", received)),
        )
        .await;
    }
    let inbox = Arc::new(inbox);
    let barrier = Arc::new(Barrier::new(WORKERS));
    let tasks: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (inbox, barrier) = (Arc::clone(&inbox), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                let mut mine = Vec::new();
                loop {
                    let batch = inbox
                        .claim_batch(&format!("w-{w}"), LEASE, at(100), &[], BATCH)
                        .await?;
                    if batch.is_empty() {
                        return Ok::<_, boxhook::inbox::InboxError>(mine);
                    }
                    mine.extend(batch.into_iter().map(|claimed| claimed.entry.event_id));
                }
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for task in tasks {
        match task.await {
            Ok(Ok(ids)) => claimed.extend(ids),
            Ok(Err(error)) => violated(RULE, format!("`claim_batch` failed: {error}")),
            Err(error) => violated(RULE, format!("`claim_batch` panicked: {error}")),
        }
    }
    let distinct: BTreeSet<&String> = claimed.iter().collect();
    expect(
        RULE,
        &format!(
            "events claimed by {WORKERS} workers taking batches of {BATCH} at once (distinct, all)"
        ),
        (claimed.len(), distinct.len()),
        (EVENTS, EVENTS),
    );
    claim_none(
        &*inbox,
        RULE,
        "w-late",
        at(100),
        "claiming while every event is leased",
    )
    .await;
    let events = u64::try_from(EVENTS).unwrap_or(u64::MAX);
    tally(
        &*inbox,
        RULE,
        "after concurrent batch claims",
        (0, events, 0, 0),
    )
    .await;
}

pub(super) async fn batch_settle<I: BatchClaims>(inbox: &I) {
    const RULE: &str = "batch-settle";
    let any: &[String] = &[];
    store_all(
        inbox,
        RULE,
        &[
            ("e-1", "FILE.UPLOADED"),
            ("e-2", "FILE.UPLOADED"),
            ("e-3", "FILE.UPLOADED"),
            ("e-4", "FILE.UPLOADED"),
            ("e-5", "FILE.UPLOADED"),
        ],
    )
    .await;
    let batch = ok(
        RULE,
        "claim_batch",
        inbox.claim_batch("w-1", LEASE, at(10), any, 4),
    )
    .await;
    expect(
        RULE,
        "the batch claimed",
        ids(&batch),
        vec!["e-1", "e-2", "e-3", "e-4"],
    );
    let hows = [
        SettleAs::Done,
        SettleAs::Pending(at(50)),
        SettleAs::Dead,
        SettleAs::Done,
    ];
    let settles: Vec<(Claimed, SettleAs)> = batch.iter().cloned().zip(hows).collect();
    let settled = ok(RULE, "settle_batch", inbox.settle_batch(&settles, at(20))).await;
    expect(
        RULE,
        "claims settled by one `settle_batch` (all held)",
        settled,
        vec![true; 4],
    );
    for (id, state) in [
        ("e-1", EntryState::Done),
        ("e-2", EntryState::Pending),
        ("e-3", EntryState::Dead),
        ("e-4", EntryState::Done),
        ("e-5", EntryState::Pending),
    ] {
        expect(
            RULE,
            &format!("the state of {id} after the batch settle"),
            state_of(inbox, RULE, id).await,
            state,
        );
    }
    tally(inbox, RULE, "after a batch settle", (2, 0, 2, 1)).await;
    let again = ok(RULE, "settle_batch", inbox.settle_batch(&settles, at(21))).await;
    expect(
        RULE,
        "a second settle of the same claims (none held)",
        again,
        vec![false; 4],
    );
    tally(inbox, RULE, "after settling settled claims", (2, 0, 2, 1)).await;
    let early = claim_some(inbox, RULE, "w-2", at(49), "a claim before e-2's retry").await;
    expect(
        RULE,
        "the event claimed before e-2's retry time",
        early.entry.event_id.as_str(),
        "e-5",
    );
    let late = ok(
        RULE,
        "claim_batch",
        inbox.claim_batch("w-2", LEASE, at(1000), any, 10),
    )
    .await;
    expect(
        RULE,
        "a batch claim long after (e-2 requeued, e-5's lease over; done and dead events stay)",
        ids(&late),
        vec!["e-2", "e-5"],
    );
    let empty = ok(RULE, "settle_batch", inbox.settle_batch(&[], at(1000))).await;
    expect(RULE, "an empty settle", empty, vec![]);
}

pub(super) async fn batch_settle_lost_lease<I: BatchClaims>(inbox: &I) {
    const RULE: &str = "batch-settle-lost-lease";
    let any: &[String] = &[];
    store_all(
        inbox,
        RULE,
        &[
            ("e-1", "FILE.UPLOADED"),
            ("e-2", "FILE.UPLOADED"),
            ("e-3", "FILE.UPLOADED"),
        ],
    )
    .await;
    let batch = ok(
        RULE,
        "claim_batch",
        inbox.claim_batch("w-1", LEASE, at(10), any, 2),
    )
    .await;
    expect(RULE, "w-1's batch", ids(&batch), vec!["e-1", "e-2"]);
    // w-2 claims e-3 while w-1's leases last; at their end, w-2 takes e-1
    // over, and e-2 is left claimed by w-1, its lease over.
    let e3 = claim_some(inbox, RULE, "w-2", at(11), "a claim during the leases").await;
    expect(RULE, "w-2's first event", e3.entry.event_id.as_str(), "e-3");
    let end = lease_end(10);
    let taken = claim_some(inbox, RULE, "w-2", at(end), "a claim at the lease's end").await;
    expect(
        RULE,
        "the event w-2 takes over",
        taken.entry.event_id.as_str(),
        "e-1",
    );
    tally(inbox, RULE, "before the late settle", (0, 3, 0, 0)).await;
    let settles: Vec<(Claimed, SettleAs)> = batch
        .iter()
        .cloned()
        .map(|claimed| (claimed, SettleAs::Done))
        .collect();
    let late = ok(RULE, "settle_batch", inbox.settle_batch(&settles, at(end))).await;
    expect(
        RULE,
        "w-1's settle once its leases ended (e-1 taken over, e-2 not)",
        late,
        vec![false, false],
    );
    tally(inbox, RULE, "after a settle of lost leases", (0, 3, 0, 0)).await;
    // w-2's claim is untouched: it settles, in a batch with w-1's stale
    // claim of e-2 (lost) and its own e-3 requeued.
    let mixed = vec![
        (taken, SettleAs::Done),
        (batch[1].clone(), SettleAs::Dead),
        (e3, SettleAs::Pending(at(end))),
    ];
    let settled = ok(RULE, "settle_batch", inbox.settle_batch(&mixed, at(end))).await;
    expect(
        RULE,
        "a batch of two held claims and one lost",
        settled,
        vec![true, false, true],
    );
    for (id, state) in [
        ("e-1", EntryState::Done),
        ("e-2", EntryState::Claimed),
        ("e-3", EntryState::Pending),
    ] {
        expect(
            RULE,
            &format!("the state of {id} after the mixed settle"),
            state_of(inbox, RULE, id).await,
            state,
        );
    }
    tally(inbox, RULE, "after the mixed settle", (1, 1, 1, 0)).await;
}
