//! The rules of counting: [`Inbox::counts`] agrees with what `list` shows
//! after every kind of change, and names the oldest pending event; the
//! `-core` rules check the changes every [`Inbox`] makes, the others those
//! of [`DeadLetters`] and [`Prune`] too.

use std::time::Duration;

use boxhook::inbox::{
    Claimed, Counts, DeadLetters, EntryState, Inbox, ListFilter, NewRecord, Prune, RecordKind,
    Retention,
};

use super::at;
use super::inbox::{claim_some, expect, ok, record};

/// The four state counts of `counts`, without the oldest pending time.
type Tally = (u64, u64, u64, u64);

/// Checks that `counts` says `want` (pending, claimed, done, dead) and that
/// `list` shows the same.
pub(super) async fn tally<I: Inbox>(inbox: &I, rule: &str, after: &str, want: Tally) {
    let counts = ok(rule, "counts", inbox.counts()).await;
    expect(
        rule,
        &format!("counts (pending, claimed, done, dead) {after}"),
        (counts.pending, counts.claimed, counts.done, counts.dead),
        want,
    );
    let listed = ok(rule, "list", inbox.list(ListFilter::new())).await;
    let shown = |state: EntryState| -> u64 {
        let n = listed.iter().filter(|entry| entry.state == state).count();
        u64::try_from(n).unwrap_or(u64::MAX)
    };
    expect(
        rule,
        &format!("states `list` shows (pending, claimed, done, dead) {after}"),
        (
            shown(EntryState::Pending),
            shown(EntryState::Claimed),
            shown(EntryState::Done),
            shown(EntryState::Dead),
        ),
        want,
    );
    expect(
        rule,
        &format!("counts' total against the entries listed {after}"),
        counts.total(),
        u64::try_from(listed.len()).unwrap_or(u64::MAX),
    );
}

/// `counts-match-list` for an inbox with no dead letters and no pruning:
/// stores, a duplicate delivery, claims, `ack` and `requeue`.
/// The start both counts rules share, checked as it goes: an empty inbox,
/// five V2 events and a V1 callback stored, a duplicate delivery of e-1,
/// e-1 to e-4 claimed at 10 s and e-1 acknowledged. Returns the claims of
/// e-2, e-3 and e-4.
async fn stored_claimed_acked<I: Inbox>(inbox: &I, rule: &str) -> [Claimed; 3] {
    expect(
        rule,
        "counts of an empty inbox",
        ok(rule, "counts", inbox.counts()).await,
        Counts::default(),
    );
    for (n, id) in ["e-1", "e-2", "e-3", "e-4", "e-5"].into_iter().enumerate() {
        let delivery = format!("d-{n}");
        let received = i64::try_from(n).unwrap_or(i64::MAX);
        ok(
            rule,
            "store",
            inbox.store(record(id, "FILE.UPLOADED", &delivery, received)),
        )
        .await;
    }
    let v1 = NewRecord {
        kind: RecordKind::V1,
        ..record("e-6", "uploaded", "d-6", 5)
    };
    ok(rule, "store", inbox.store(v1)).await;
    tally(inbox, rule, "after 6 stores", (6, 0, 0, 0)).await;
    ok(
        rule,
        "store",
        inbox.store(record("e-1", "FILE.UPLOADED", "d-7", 6)),
    )
    .await;
    tally(inbox, rule, "after a duplicate delivery", (6, 0, 0, 0)).await;

    let e1 = claim_some(inbox, rule, "w-1", at(10), "claim e-1").await;
    let e2 = claim_some(inbox, rule, "w-1", at(10), "claim e-2").await;
    let e3 = claim_some(inbox, rule, "w-1", at(10), "claim e-3").await;
    let e4 = claim_some(inbox, rule, "w-1", at(10), "claim e-4").await;
    tally(inbox, rule, "after 4 claims", (2, 4, 0, 0)).await;
    ok(rule, "ack", inbox.ack(&e1)).await;
    tally(inbox, rule, "after an ack", (2, 3, 1, 0)).await;
    [e2, e3, e4]
}

pub(super) async fn counts_core<I: Inbox>(inbox: &I) {
    const RULE: &str = "counts-core";
    let [_e2, e3, _e4] = stored_claimed_acked(inbox, RULE).await;
    ok(RULE, "requeue", inbox.requeue(&e3, at(100))).await;
    tally(inbox, RULE, "after a requeue", (3, 2, 1, 0)).await;
    // The leases of e-2 and e-4 ended at 70 s, yet they count as claimed
    // until claimed again; the requeued e-3 comes first in stored order
    // after e-2.
    let reclaimed = claim_some(inbox, RULE, "w-2", at(100), "claim at the retry time").await;
    expect(
        RULE,
        "the event claimed at the retry time",
        reclaimed.entry.event_id.as_str(),
        "e-2",
    );
    tally(inbox, RULE, "after claiming an expired claim", (3, 2, 1, 0)).await;
    let retried = claim_some(inbox, RULE, "w-2", at(100), "claim the requeued event").await;
    expect(
        RULE,
        "the event claimed after it",
        retried.entry.event_id.as_str(),
        "e-3",
    );
    tally(inbox, RULE, "after claiming a requeued event", (2, 3, 1, 0)).await;
    ok(RULE, "ack", inbox.ack(&retried)).await;
    tally(inbox, RULE, "after a second ack", (2, 2, 2, 0)).await;
}

pub(super) async fn counts_match_list<I: DeadLetters + Prune>(inbox: &I) {
    const RULE: &str = "counts-match-list";
    let [e2, e3, _e4] = stored_claimed_acked(inbox, RULE).await;
    ok(RULE, "bury", inbox.bury(&e2)).await;
    tally(inbox, RULE, "after a bury", (2, 2, 1, 1)).await;
    ok(RULE, "requeue", inbox.requeue(&e3, at(100))).await;
    tally(inbox, RULE, "after a requeue", (3, 1, 1, 1)).await;
    // e-4's lease ended at 70 s, yet it counts as claimed until claimed
    // again; the requeued e-3 comes first in stored order.
    let retried = claim_some(inbox, RULE, "w-2", at(100), "claim at the retry time").await;
    expect(
        RULE,
        "the event claimed at its retry time",
        retried.entry.event_id.as_str(),
        "e-3",
    );
    tally(inbox, RULE, "after claiming a requeued event", (2, 2, 1, 1)).await;
    ok(RULE, "ack", inbox.ack(&retried)).await;
    tally(inbox, RULE, "after a second ack", (2, 1, 2, 1)).await;

    let revived = ok(
        RULE,
        "revive",
        inbox.revive(boxhook::inbox::Revive::AllDead, at(200)),
    )
    .await;
    expect(RULE, "events revived", revived, 1);
    tally(inbox, RULE, "after reviving the dead event", (3, 1, 2, 0)).await;
    let again = ok(
        RULE,
        "revive",
        inbox.revive(boxhook::inbox::Revive::Event("e-1".into()), at(200)),
    )
    .await;
    expect(RULE, "done events revived by id", again, 1);
    tally(inbox, RULE, "after reviving a done event", (4, 1, 1, 0)).await;

    // e-3 (received at 2 s) is the only done event left; pruning it is
    // counted. Done events are kept 997 s: at 1,000 s, the cut-off is 3 s.
    let retention = Retention::nothing().done(Some(Duration::from_secs(997)));
    let pruned = ok(RULE, "prune", inbox.prune(&retention, at(1000), 100)).await;
    expect(RULE, "done events pruned", pruned.done, 1);
    tally(inbox, RULE, "after pruning the done event", (4, 1, 0, 0)).await;
}

/// `oldest-pending` for an inbox with no dead letters: claims, `requeue`
/// and `ack` only.
pub(super) async fn oldest_pending_core<I: Inbox>(inbox: &I) {
    const RULE: &str = "oldest-pending-core";
    let check = |after: &'static str, want: Option<i64>| oldest_is(inbox, RULE, after, want);
    check("in an empty inbox", None).await;
    // Stored in the order they were received, as a receiver stores them.
    for (id, received) in [("e-1", 10), ("e-2", 20), ("e-3", 30)] {
        ok(
            RULE,
            "store",
            inbox.store(record(id, "FILE.UPLOADED", "d-1", received)),
        )
        .await;
    }
    check("after 3 stores", Some(10)).await;
    let e1 = claim_some(inbox, RULE, "w-1", at(40), "claim e-1").await;
    check("while the oldest is claimed", Some(20)).await;
    ok(RULE, "requeue", inbox.requeue(&e1, at(500))).await;
    check(
        "after the oldest was requeued for later (pending, not ready)",
        Some(10),
    )
    .await;
    let e2 = claim_some(inbox, RULE, "w-1", at(40), "claim e-2").await;
    expect(RULE, "the event claimed", e2.entry.event_id.as_str(), "e-2");
    ok(RULE, "ack", inbox.ack(&e2)).await;
    check("after the second was done", Some(10)).await;
    let e1 = claim_some(inbox, RULE, "w-1", at(500), "claim e-1 again").await;
    expect(RULE, "the event claimed", e1.entry.event_id.as_str(), "e-1");
    ok(RULE, "ack", inbox.ack(&e1)).await;
    check("after the oldest was done", Some(30)).await;
    let e3 = claim_some(inbox, RULE, "w-1", at(500), "claim e-3").await;
    check("while the only pending event is claimed", None).await;
    ok(RULE, "ack", inbox.ack(&e3)).await;
    check("with done events only", None).await;
}

pub(super) async fn oldest_pending<I: DeadLetters>(inbox: &I) {
    const RULE: &str = "oldest-pending";
    let check = |after: &'static str, want: Option<i64>| oldest_is(inbox, RULE, after, want);
    check("in an empty inbox", None).await;
    // Stored in the order they were received, as a receiver stores them.
    for (id, received) in [("e-1", 10), ("e-2", 20), ("e-3", 30)] {
        ok(
            RULE,
            "store",
            inbox.store(record(id, "FILE.UPLOADED", "d-1", received)),
        )
        .await;
    }
    check("after 3 stores", Some(10)).await;
    let e1 = claim_some(inbox, RULE, "w-1", at(40), "claim e-1").await;
    check("while the oldest is claimed", Some(20)).await;
    ok(RULE, "requeue", inbox.requeue(&e1, at(500))).await;
    check(
        "after the oldest was requeued for later (pending, not ready)",
        Some(10),
    )
    .await;
    let e2 = claim_some(inbox, RULE, "w-1", at(40), "claim e-2").await;
    expect(RULE, "the event claimed", e2.entry.event_id.as_str(), "e-2");
    ok(RULE, "ack", inbox.ack(&e2)).await;
    check("after the second was done", Some(10)).await;
    let e1 = claim_some(inbox, RULE, "w-1", at(500), "claim e-1 again").await;
    expect(RULE, "the event claimed", e1.entry.event_id.as_str(), "e-1");
    ok(RULE, "bury", inbox.bury(&e1)).await;
    check("after the oldest was buried", Some(30)).await;
    let e3 = claim_some(inbox, RULE, "w-1", at(500), "claim e-3").await;
    check("while the only pending event is claimed", None).await;
    ok(RULE, "ack", inbox.ack(&e3)).await;
    check("with events done and dead only", None).await;
    ok(
        RULE,
        "revive",
        inbox.revive(boxhook::inbox::Revive::AllDead, at(600)),
    )
    .await;
    check("after the buried one was revived", Some(10)).await;
}

async fn oldest_is<I: Inbox>(inbox: &I, rule: &str, after: &str, want: Option<i64>) {
    expect(
        rule,
        &format!("the oldest pending event's received_at {after}"),
        ok(rule, "counts", inbox.counts()).await.oldest_pending,
        want.map(at),
    );
}
