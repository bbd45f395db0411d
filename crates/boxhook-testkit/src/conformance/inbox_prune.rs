//! The [`Prune`] rules: what [`Prune::prune`] removes, what it
//! never removes, its batches, and the deduplication keys that outlive the
//! events they belonged to.

use std::time::Duration;

use boxhook::inbox::{
    Counts, DeadLetters, EntryState, Inbox, ListFilter, NewRecord, Prune, Pruned, RecordKind,
    Retention, Stored, MIN_KEEP_KEYS,
};
use chrono::{DateTime, Utc};

use super::at;
use super::inbox::{claim_none, claim_some, expect, ok, record};
use super::violated;

/// What each stored event of a case becomes before pruning.
#[derive(Clone, Copy)]
enum Then {
    Pending,
    Done,
    Dead,
}

/// A V1 callback's record.
fn v1(event_id: &str, received: i64) -> NewRecord {
    NewRecord {
        kind: RecordKind::V1,
        ..record(event_id, "uploaded", "d-v1", received)
    }
}

/// Stores `records` in order, then claims them in that order at `now` and
/// acknowledges or buries each as `then` says (pending ones are left).
async fn fill<I: Prune + DeadLetters>(
    inbox: &I,
    rule: &str,
    records: Vec<(NewRecord, Then)>,
    now: i64,
) {
    let mut plan = Vec::with_capacity(records.len());
    for (record, then) in records {
        plan.push((record.event_id.clone(), then));
        ok(rule, "store", inbox.store(record)).await;
    }
    for (id, then) in plan {
        if matches!(then, Then::Pending) {
            continue;
        }
        let claimed = claim_some(inbox, rule, "w-1", at(now), &format!("claiming {id}")).await;
        expect(
            rule,
            "the event claimed (the oldest not yet settled)",
            claimed.entry.event_id.as_str(),
            id.as_str(),
        );
        match then {
            Then::Done => ok(rule, "ack", inbox.ack(&claimed)).await,
            Then::Dead => ok(rule, "bury", inbox.bury(&claimed)).await,
            Then::Pending => {}
        }
    }
}

async fn ids<I: Inbox>(inbox: &I, rule: &str) -> Vec<String> {
    ok(rule, "list", inbox.list(ListFilter::new()))
        .await
        .into_iter()
        .map(|entry| entry.event_id)
        .collect()
}

fn strings(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|id| (*id).to_owned()).collect()
}

async fn prune<I: Prune + DeadLetters>(
    inbox: &I,
    rule: &str,
    retention: &Retention,
    now: DateTime<Utc>,
    batch: usize,
) -> Pruned {
    ok(rule, "prune", inbox.prune(retention, now, batch)).await
}

/// Every kind of event kept for a second only, keys for a day.
fn prune_everything() -> Retention {
    let second = Some(Duration::from_secs(1));
    Retention::nothing()
        .done(second)
        .dead(second)
        .v1(second)
        .keys(MIN_KEEP_KEYS)
}

pub(super) async fn prune_keeps_pending_and_claimed<I: Prune + DeadLetters>(inbox: &I) {
    const RULE: &str = "prune-keeps-pending-and-claimed";
    fill(
        inbox,
        RULE,
        vec![
            (record("e-1", "FILE.UPLOADED", "d-1", 0), Then::Pending),
            (record("e-2", "FILE.UPLOADED", "d-2", 1), Then::Pending),
            (record("e-3", "FILE.UPLOADED", "d-3", 2), Then::Pending),
            (v1("e-4", 3), Then::Pending),
        ],
        0,
    )
    .await;
    // e-1 claimed under a lease long over, e-2 requeued for much later,
    // e-3 and the V1 callback e-4 never claimed.
    let _crashed = claim_some(inbox, RULE, "w-1", at(10), "claim e-1").await;
    let failed = claim_some(inbox, RULE, "w-1", at(10), "claim e-2").await;
    ok(RULE, "requeue", inbox.requeue(&failed, at(20_000_000))).await;
    let before = ok(RULE, "list", inbox.list(ListFilter::new())).await;
    // About 115 days later, every kind of event kept for a second.
    let pruned = prune(inbox, RULE, &prune_everything(), at(10_000_000), 100).await;
    expect(
        RULE,
        "what a prune removed from pending and claimed events only",
        pruned,
        Pruned::default(),
    );
    expect(
        RULE,
        "the entries after pruning pending and claimed events",
        ok(RULE, "list", inbox.list(ListFilter::new())).await,
        before,
    );
    let counts = ok(RULE, "counts", inbox.counts()).await;
    expect(
        RULE,
        "counts (pending, claimed) after the prune",
        (counts.pending, counts.claimed, counts.done, counts.dead),
        (3, 1, 0, 0),
    );
    // Still processed as before: the claim whose lease ended is claimed.
    let reclaimed = claim_some(inbox, RULE, "w-2", at(10_000_000), "claim after prune").await;
    expect(
        RULE,
        "the event claimed after the prune",
        reclaimed.entry.event_id.as_str(),
        "e-1",
    );
}

pub(super) async fn prune_respects_retention<I: Prune + DeadLetters>(inbox: &I) {
    const RULE: &str = "prune-respects-retention";
    // At 10,000 s: done V2 events kept 1,000 s (cut-off 9,000), dead V2
    // events 2,000 s (8,000), V1 callbacks 3,000 s (7,000). An event
    // received exactly at a cut-off is kept.
    fill(
        inbox,
        RULE,
        vec![
            (v1("v1-old-dead", 6_500), Then::Dead),
            (v1("v1-old-done", 6_999), Then::Done),
            (v1("v1-young", 7_500), Then::Done),
            (
                record("dead-old", "FILE.UPLOADED", "d-1", 7_999),
                Then::Dead,
            ),
            (
                record("dead-young", "FILE.UPLOADED", "d-2", 8_500),
                Then::Dead,
            ),
            (
                record("done-old", "FILE.UPLOADED", "d-3", 8_999),
                Then::Done,
            ),
            (
                record("done-edge", "FILE.UPLOADED", "d-4", 9_000),
                Then::Done,
            ),
            (
                record("pending", "FILE.UPLOADED", "d-5", 9_500),
                Then::Pending,
            ),
        ],
        9_999,
    )
    .await;
    let retention = Retention::nothing()
        .done(Some(Duration::from_secs(1_000)))
        .dead(Some(Duration::from_secs(2_000)))
        .v1(Some(Duration::from_secs(3_000)));
    let pruned = prune(inbox, RULE, &retention, at(10_000), 100).await;
    expect(
        RULE,
        "what the prune removed",
        pruned,
        Pruned {
            done: 1,
            dead: 1,
            v1: 2,
            keys: 0,
            more: false,
        },
    );
    expect(
        RULE,
        "the events left",
        ids(inbox, RULE).await,
        strings(&["v1-young", "dead-young", "done-edge", "pending"]),
    );
    let counts = ok(RULE, "counts", inbox.counts()).await;
    expect(
        RULE,
        "counts (pending, claimed, done, dead) after the prune",
        (counts.pending, counts.claimed, counts.done, counts.dead),
        (1, 0, 2, 1),
    );
    expect(
        RULE,
        "what a second prune at the same time removed",
        prune(inbox, RULE, &retention, at(10_000), 100).await,
        Pruned::default(),
    );
    expect(
        RULE,
        "what a prune keeping everything removed, much later",
        prune(inbox, RULE, &Retention::nothing(), at(10_001), 100).await,
        Pruned::default(),
    );
    // Dead events kept a second, done events and V1 callbacks forever.
    let dead_only = Retention::nothing().dead(Some(Duration::from_secs(1)));
    expect(
        RULE,
        "what a prune of dead events only removed",
        prune(inbox, RULE, &dead_only, at(20_000), 100).await,
        Pruned {
            dead: 1,
            ..Pruned::default()
        },
    );
    expect(
        RULE,
        "the events left after pruning dead events only",
        ids(inbox, RULE).await,
        strings(&["v1-young", "done-edge", "pending"]),
    );
}

pub(super) async fn prune_batch_bound<I: Prune + DeadLetters>(inbox: &I) {
    const RULE: &str = "prune-batch-bound";
    let mut records: Vec<(NewRecord, Then)> = (1..=5)
        .map(|n| {
            let id = format!("e-{n}");
            (record(&id, "FILE.UPLOADED", "d-1", n), Then::Done)
        })
        .collect();
    records.push((record("e-6", "FILE.UPLOADED", "d-1", 6), Then::Pending));
    fill(inbox, RULE, records, 10).await;
    let retention = Retention::nothing().done(Some(Duration::from_secs(1)));
    let steps = [
        (2, true, vec!["e-3", "e-4", "e-5", "e-6"]),
        (2, true, vec!["e-5", "e-6"]),
        (1, false, vec!["e-6"]),
        (0, false, vec!["e-6"]),
    ];
    for (n, (done, more, left)) in steps.into_iter().enumerate() {
        let call = n.saturating_add(1);
        expect(
            RULE,
            &format!("prune call {call} with a batch of 2 (of 5 done events, oldest first)"),
            prune(inbox, RULE, &retention, at(1_000), 2).await,
            Pruned {
                done,
                more,
                ..Pruned::default()
            },
        );
        expect(
            RULE,
            &format!("the events left after prune call {call}"),
            ids(inbox, RULE).await,
            strings(&left),
        );
    }
    let counts = ok(RULE, "counts", inbox.counts()).await;
    expect(
        RULE,
        "counts after pruning every done event",
        counts,
        Counts {
            pending: 1,
            oldest_pending: Some(at(6)),
            ..Counts::default()
        },
    );
}

/// Stores `event_id` again, as Box's retry, and checks that it is a
/// duplicate that stored nothing.
async fn retry_is_duplicate<I: Prune + DeadLetters>(
    inbox: &I,
    rule: &str,
    event_id: &str,
    received: i64,
    what: &str,
) {
    let stored = ok(
        rule,
        "store",
        inbox.store(record(event_id, "FILE.UPLOADED", "d-retry", received)),
    )
    .await;
    match stored {
        Stored::Duplicate { deliveries } if deliveries >= 2 => {}
        other => violated(
            rule,
            format!(
                "{what}: expected Duplicate {{ deliveries: 2 or more }} (the event was pruned, \
                 its key kept), got {other:?}"
            ),
        ),
    }
    expect(
        rule,
        &format!("`get({event_id:?})` after {what}"),
        ok(rule, "get", inbox.get(event_id))
            .await
            .map(|stored| stored.entry.event_id),
        None,
    );
}

pub(super) async fn retry_after_prune_is_duplicate<I: Prune + DeadLetters>(inbox: &I) {
    const RULE: &str = "retry-after-prune-is-duplicate";
    ok(
        RULE,
        "store",
        inbox.store(record("e-1", "FILE.UPLOADED", "d-0", 0)),
    )
    .await;
    fill(
        inbox,
        RULE,
        vec![
            (record("e-1", "FILE.UPLOADED", "d-1", 0), Then::Done),
            (record("e-2", "FILE.UPLOADED", "d-2", 1), Then::Dead),
            (record("e-3", "FILE.UPLOADED", "d-3", 2), Then::Pending),
        ],
        2,
    )
    .await;
    // `boxhook inbox prune --older-than 1s`, two seconds later.
    let second = Some(Duration::from_secs(1));
    let by_hand = Retention::nothing().done(second).dead(second);
    expect(
        RULE,
        "what a prune with a 1 s retention removed",
        prune(inbox, RULE, &by_hand, at(3), 100).await,
        Pruned {
            done: 1,
            dead: 1,
            ..Pruned::default()
        },
    );
    retry_is_duplicate(inbox, RULE, "e-1", 4, "a retry of a pruned done event").await;
    retry_is_duplicate(inbox, RULE, "e-2", 5, "a retry of a pruned dead event").await;
    retry_is_duplicate(inbox, RULE, "e-1", 6, "a second retry of a pruned event").await;
    // The last moment of the default key retention (7 days).
    let last = i64::try_from(by_hand.keys.as_secs())
        .unwrap_or(i64::MAX)
        .saturating_sub(1);
    retry_is_duplicate(
        inbox,
        RULE,
        "e-1",
        last,
        "a retry a second before its key's retention ends",
    )
    .await;
    expect(
        RULE,
        "the events left after the retries",
        ids(inbox, RULE).await,
        strings(&["e-3"]),
    );
    let counts = ok(RULE, "counts", inbox.counts()).await;
    expect(
        RULE,
        "counts (pending, claimed, done, dead) after the retries",
        (counts.pending, counts.claimed, counts.done, counts.dead),
        (1, 0, 0, 0),
    );
    let only = claim_some(inbox, RULE, "w-1", at(last), "claim after the retries").await;
    expect(
        RULE,
        "the event claimed after the retries",
        only.entry.event_id.as_str(),
        "e-3",
    );
    claim_none(
        inbox,
        RULE,
        "w-1",
        at(last),
        "claiming when only retries of pruned events arrived",
    )
    .await;
}

pub(super) async fn keys_pruned_after_keys<I: Prune + DeadLetters>(inbox: &I) {
    const RULE: &str = "keys-pruned-after-keys";
    const DAY: i64 = 86_400;
    fill(
        inbox,
        RULE,
        vec![
            (record("e-1", "FILE.UPLOADED", "d-1", 0), Then::Done),
            (record("e-2", "FILE.UPLOADED", "d-2", 1_000), Then::Done),
        ],
        1_000,
    )
    .await;
    let retention = Retention::nothing()
        .done(Some(Duration::from_secs(1)))
        .keys(MIN_KEEP_KEYS);
    expect(
        RULE,
        "what the first prune removed",
        prune(inbox, RULE, &retention, at(2_000), 100).await,
        Pruned {
            done: 2,
            ..Pruned::default()
        },
    );
    expect(
        RULE,
        "what a prune just before the first key's retention ends removed",
        prune(inbox, RULE, &retention, at(DAY - 1), 100).await,
        Pruned::default(),
    );
    // e-1's key (received at 0, kept a day) is past; e-2's is not.
    expect(
        RULE,
        "what a prune after the first key's retention removed",
        prune(inbox, RULE, &retention, at(DAY + 500), 100).await,
        Pruned {
            keys: 1,
            ..Pruned::default()
        },
    );
    retry_is_duplicate(
        inbox,
        RULE,
        "e-2",
        DAY + 501,
        "a retry of the event whose key is still kept",
    )
    .await;
    expect(
        RULE,
        "a delivery of the event whose key was pruned (a new event again)",
        ok(
            RULE,
            "store",
            inbox.store(record("e-1", "FILE.UPLOADED", "d-3", DAY + 502)),
        )
        .await,
        Stored::New,
    );
    expect(
        RULE,
        "what a prune after the second key's retention removed",
        prune(inbox, RULE, &retention, at(DAY + 1_001), 100).await,
        Pruned {
            keys: 1,
            ..Pruned::default()
        },
    );
    expect(
        RULE,
        "a delivery of the second event after its key was pruned",
        ok(
            RULE,
            "store",
            inbox.store(record("e-2", "FILE.UPLOADED", "d-4", DAY + 1_002)),
        )
        .await,
        Stored::New,
    );
    expect(
        RULE,
        "the states after both events came back",
        ok(RULE, "list", inbox.list(ListFilter::new()))
            .await
            .into_iter()
            .map(|entry| (entry.event_id, entry.state))
            .collect::<Vec<_>>(),
        vec![
            ("e-1".to_owned(), EntryState::Pending),
            ("e-2".to_owned(), EntryState::Pending),
        ],
    );
}
