//! The rules for workers past the first claim: dead letters and requeueing
//! them, and lists by state ([`DeadLetters`]); claims filtered by trigger
//! ([`FilteredClaims`]).

use boxhook::inbox::{DeadLetters, EntryState, FilteredClaims, ListFilter, Revive};

use super::at;
use super::inbox::{claim_none, claim_some, expect, ok, record, state_of};

pub(super) async fn bury_is_dead<I: DeadLetters>(inbox: &I) {
    const RULE: &str = "bury-is-dead";
    ok(
        RULE,
        "store",
        inbox.store(record("e-1", "FILE.UPLOADED", "d-1", 0)),
    )
    .await;
    let claimed = claim_some(inbox, RULE, "w-1", at(0), "the first claim").await;
    ok(RULE, "bury", inbox.bury(&claimed)).await;
    expect(
        RULE,
        "the state after `bury`",
        state_of(inbox, RULE, "e-1").await,
        EntryState::Dead,
    );
    claim_none(inbox, RULE, "w-2", at(1), "claiming a dead event").await;
    claim_none(
        inbox,
        RULE,
        "w-2",
        at(100_000),
        "claiming a dead event long after its lease",
    )
    .await;
    for (call, result) in [
        ("a second `bury`", inbox.bury(&claimed).await),
        ("`ack` after `bury`", inbox.ack(&claimed).await),
    ] {
        match result {
            Err(error) if error.is_lease_lost() => {}
            other => violated_lease(RULE, call, &other),
        }
    }
    ok(
        RULE,
        "store",
        inbox.store(record("e-1", "FILE.UPLOADED", "d-2", 2)),
    )
    .await;
    expect(
        RULE,
        "the state after a duplicate delivery of a dead event",
        state_of(inbox, RULE, "e-1").await,
        EntryState::Dead,
    );
}

pub(super) async fn revive_requeues<I: DeadLetters>(inbox: &I) {
    const RULE: &str = "revive-requeues";
    for (n, id) in ["e-1", "e-2", "e-3", "e-4"].into_iter().enumerate() {
        let delivery = format!("d-{n}");
        ok(
            RULE,
            "store",
            inbox.store(record(id, "FILE.UPLOADED", &delivery, 0)),
        )
        .await;
    }
    // e-1 and e-2 dead after 2 attempts, e-3 done, e-4 left pending.
    for id in ["e-1", "e-2", "e-3"] {
        let first = claim_some(inbox, RULE, "w-1", at(0), "a first claim").await;
        expect(RULE, "the claimed event", first.entry.event_id.as_str(), id);
        ok(RULE, "requeue", inbox.requeue(&first, at(0))).await;
        let second = claim_some(inbox, RULE, "w-1", at(0), "a second claim").await;
        expect(RULE, "the second claim's attempt", second.attempt(), 2);
        if id == "e-3" {
            ok(RULE, "ack", inbox.ack(&second)).await;
        } else {
            ok(RULE, "bury", inbox.bury(&second)).await;
        }
    }
    let revived = ok(RULE, "revive", inbox.revive(Revive::AllDead, at(10))).await;
    expect(RULE, "events revived by `Revive::AllDead`", revived, 2);
    for id in ["e-1", "e-2"] {
        expect(
            RULE,
            "the state of a revived event",
            state_of(inbox, RULE, id).await,
            EntryState::Pending,
        );
    }
    let early = claim_some(inbox, RULE, "w-2", at(9), "claiming before the revive time").await;
    expect(
        RULE,
        "the event claimed before the revive time (the revived ones are not ready)",
        early.entry.event_id.as_str(),
        "e-4",
    );
    let again = claim_some(inbox, RULE, "w-2", at(10), "claiming a revived event").await;
    expect(
        RULE,
        "the first revived event claimed",
        again.entry.event_id.as_str(),
        "e-1",
    );
    expect(
        RULE,
        "a revived event's attempt (reset)",
        again.attempt(),
        1,
    );
    let again_none = ok(RULE, "revive", inbox.revive(Revive::AllDead, at(11))).await;
    expect(RULE, "events revived with none dead", again_none, 0);
    let for_claimed = ok(
        RULE,
        "revive",
        inbox.revive(Revive::Event("e-1".into()), at(11)),
    )
    .await;
    expect(RULE, "events revived by id while claimed", for_claimed, 0);
    let for_pending = ok(
        RULE,
        "revive",
        inbox.revive(Revive::Event("e-2".into()), at(11)),
    )
    .await;
    expect(RULE, "events revived by id while pending", for_pending, 0);
    let for_done = ok(
        RULE,
        "revive",
        inbox.revive(Revive::Event("e-3".into()), at(11)),
    )
    .await;
    expect(RULE, "events revived by id while done", for_done, 1);
    expect(
        RULE,
        "the state of a revived done event",
        state_of(inbox, RULE, "e-3").await,
        EntryState::Pending,
    );
    let unknown = ok(
        RULE,
        "revive",
        inbox.revive(Revive::Event("nope".into()), at(11)),
    )
    .await;
    expect(RULE, "events revived by an unknown id", unknown, 0);
}

pub(super) async fn claim_matching_triggers<I: FilteredClaims>(inbox: &I) {
    const RULE: &str = "claim-matching-triggers";
    for (n, (id, trigger)) in [
        ("e-1", "FILE.UPLOADED"),
        ("e-2", "FOLDER.CREATED"),
        ("e-3", "FILE.DELETED"),
        ("e-4", "FILE.UPLOADED"),
    ]
    .into_iter()
    .enumerate()
    {
        let delivery = format!("d-{n}");
        ok(
            RULE,
            "store",
            inbox.store(record(id, trigger, &delivery, 0)),
        )
        .await;
    }
    let only =
        |triggers: &[&str]| -> Vec<String> { triggers.iter().map(|t| (*t).to_owned()).collect() };
    let lease = std::time::Duration::from_secs(60);
    let mut claimed = Vec::new();
    let wanted = only(&["FILE.DELETED", "FOLDER.CREATED"]);
    while let Some(c) = ok(
        RULE,
        "claim_matching",
        inbox.claim_matching("w-1", lease, at(0), &wanted),
    )
    .await
    {
        claimed.push(c.entry.event_id);
    }
    expect(
        RULE,
        "events claimed with triggers FILE.DELETED and FOLDER.CREATED",
        claimed,
        vec!["e-2".to_owned(), "e-3".to_owned()],
    );
    let none = ok(
        RULE,
        "claim_matching",
        inbox.claim_matching("w-1", lease, at(0), &only(&["FILE.upLOADED"])),
    )
    .await;
    expect(
        RULE,
        "a claim with a trigger differing in case",
        none.map(|c| c.entry.event_id),
        None,
    );
    let any = ok(
        RULE,
        "claim_matching",
        inbox.claim_matching("w-1", lease, at(0), &[]),
    )
    .await;
    expect(
        RULE,
        "a claim with no trigger filter",
        any.map(|c| c.entry.event_id),
        Some("e-1".to_owned()),
    );
}

pub(super) async fn list_by_state<I: DeadLetters>(inbox: &I) {
    const RULE: &str = "list-by-state";
    for (n, id) in ["e-1", "e-2", "e-3", "e-4", "e-5"].into_iter().enumerate() {
        let delivery = format!("d-{n}");
        ok(
            RULE,
            "store",
            inbox.store(record(id, "FILE.UPLOADED", &delivery, 0)),
        )
        .await;
    }
    let done = claim_some(inbox, RULE, "w-1", at(0), "claim e-1").await;
    ok(RULE, "ack", inbox.ack(&done)).await;
    let dead = claim_some(inbox, RULE, "w-1", at(0), "claim e-2").await;
    ok(RULE, "bury", inbox.bury(&dead)).await;
    let _held = claim_some(inbox, RULE, "w-1", at(0), "claim e-3").await;
    let cases = [
        (EntryState::Done, vec!["e-1"]),
        (EntryState::Dead, vec!["e-2"]),
        (EntryState::Claimed, vec!["e-3"]),
        (EntryState::Pending, vec!["e-4", "e-5"]),
    ];
    for (state, want) in cases {
        let listed: Vec<String> = ok(RULE, "list", inbox.list(ListFilter::new().state(state)))
            .await
            .into_iter()
            .map(|entry| entry.event_id)
            .collect();
        expect(
            RULE,
            &format!("events listed in state {state}"),
            listed,
            want.into_iter().map(str::to_owned).collect(),
        );
    }
    let limited = ok(
        RULE,
        "list",
        inbox.list(
            ListFilter::new()
                .state(EntryState::Pending)
                .trigger("FILE.UPLOADED")
                .limit(1),
        ),
    )
    .await;
    expect(
        RULE,
        "pending FILE.UPLOADED events, limit 1",
        limited
            .into_iter()
            .map(|entry| entry.event_id)
            .collect::<Vec<_>>(),
        vec!["e-4".to_owned()],
    );
}

#[track_caller]
fn violated_lease<T: std::fmt::Debug>(rule: &str, call: &str, got: &T) -> ! {
    super::violated(
        rule,
        format!("{call}: expected a LeaseLost error, got {got:?}"),
    )
}
