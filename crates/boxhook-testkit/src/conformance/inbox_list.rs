//! The [`Inbox`] rule of listing a big inbox a page at a time: newest
//! first, before a cursor, since a time, by trigger and state.

use boxhook::inbox::{EntryState, Inbox, ListFilter};

use super::at;
use super::inbox::{claim_some, expect, ok, record};
use super::violated;

async fn ids<I: Inbox>(inbox: &I, rule: &str, filter: ListFilter) -> Vec<String> {
    ok(rule, "list", inbox.list(filter))
        .await
        .into_iter()
        .map(|entry| entry.event_id)
        .collect()
}

fn strings(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|id| (*id).to_owned()).collect()
}

/// Pages through `filter` newest first, `page` entries at a time, each page
/// before the last one's final event, until a page comes back short; every
/// event visited, in order.
async fn walk<I: Inbox>(inbox: &I, rule: &str, filter: &ListFilter, page: usize) -> Vec<String> {
    let mut visited: Vec<String> = Vec::new();
    // A correct inbox needs at most one page per event and one short page;
    // an inbox whose cursor goes nowhere would loop forever.
    for _ in 0..=20 {
        let mut next = filter.clone().newest_first().limit(page);
        if let Some(last) = visited.last() {
            next = next.before(last.clone());
        }
        let got = ids(inbox, rule, next).await;
        let short = got.len() < page;
        visited.extend(got);
        if short {
            return visited;
        }
    }
    violated(
        rule,
        format!(
            "paging newest first {page} at a time never came to a short page; visited {visited:?}"
        ),
    )
}

pub(super) async fn list_paging<I: Inbox>(inbox: &I) {
    const RULE: &str = "list-paging";
    expect(
        RULE,
        "the newest entries of an empty inbox",
        ids(inbox, RULE, ListFilter::new().newest_first().limit(50)).await,
        Vec::<String>::new(),
    );
    // e-n received at 10 × (n - 1) s; odd ones FILE.UPLOADED, even ones
    // FOLDER.CREATED.
    for n in 1..=7_i64 {
        let trigger = if n % 2 == 1 {
            "FILE.UPLOADED"
        } else {
            "FOLDER.CREATED"
        };
        ok(
            RULE,
            "store",
            inbox.store(record(
                &format!("e-{n}"),
                trigger,
                "d-1",
                n.saturating_sub(1).saturating_mul(10),
            )),
        )
        .await;
    }
    let done = claim_some(inbox, RULE, "w-1", at(100), "claim e-1").await;
    ok(RULE, "ack", inbox.ack(&done)).await;
    newest_first_before(inbox).await;
    since(inbox).await;
}

/// The paging half of `list-paging`, on its seven events.
async fn newest_first_before<I: Inbox>(inbox: &I) {
    const RULE: &str = "list-paging";

    let newest = strings(&["e-7", "e-6", "e-5", "e-4", "e-3", "e-2", "e-1"]);
    expect(
        RULE,
        "every entry, newest first",
        ids(inbox, RULE, ListFilter::new().newest_first()).await,
        newest.clone(),
    );
    expect(
        RULE,
        "the newest 3",
        ids(inbox, RULE, ListFilter::new().newest_first().limit(3)).await,
        strings(&["e-7", "e-6", "e-5"]),
    );
    expect(
        RULE,
        "the newest 3 before e-5",
        ids(
            inbox,
            RULE,
            ListFilter::new().newest_first().before("e-5").limit(3),
        )
        .await,
        strings(&["e-4", "e-3", "e-2"]),
    );
    for page in [1, 2, 3, 7, 50] {
        expect(
            RULE,
            &format!("every event visited once, paging newest first {page} at a time"),
            walk(inbox, RULE, &ListFilter::new(), page).await,
            newest.clone(),
        );
    }
    expect(
        RULE,
        "FOLDER.CREATED events visited paging newest first 1 at a time",
        walk(inbox, RULE, &ListFilter::new().trigger("FOLDER.CREATED"), 1).await,
        strings(&["e-6", "e-4", "e-2"]),
    );
    expect(
        RULE,
        "pending events visited paging newest first 4 at a time",
        walk(
            inbox,
            RULE,
            &ListFilter::new().state(EntryState::Pending),
            4,
        )
        .await,
        strings(&["e-7", "e-6", "e-5", "e-4", "e-3", "e-2"]),
    );
    expect(
        RULE,
        "FILE.UPLOADED events before e-5, newest first",
        ids(
            inbox,
            RULE,
            ListFilter::new()
                .trigger("FILE.UPLOADED")
                .newest_first()
                .before("e-5"),
        )
        .await,
        strings(&["e-3", "e-1"]),
    );
    expect(
        RULE,
        "done events, newest first",
        ids(
            inbox,
            RULE,
            ListFilter::new().state(EntryState::Done).newest_first(),
        )
        .await,
        strings(&["e-1"]),
    );
}

/// `before` oldest first, and `since`: the rest of `list-paging`.
async fn since<I: Inbox>(inbox: &I) {
    const RULE: &str = "list-paging";
    expect(
        RULE,
        "entries before e-4, oldest first",
        ids(inbox, RULE, ListFilter::new().before("e-4")).await,
        strings(&["e-1", "e-2", "e-3"]),
    );
    expect(
        RULE,
        "at most 2 entries before e-4, oldest first",
        ids(inbox, RULE, ListFilter::new().before("e-4").limit(2)).await,
        strings(&["e-1", "e-2"]),
    );
    for filter in [
        ListFilter::new().before("e-404"),
        ListFilter::new().newest_first().before("e-404").limit(3),
        ListFilter::new().before("e-1"),
    ] {
        expect(
            RULE,
            &format!("entries before an unknown or the first event ({filter:?})"),
            ids(inbox, RULE, filter).await,
            Vec::<String>::new(),
        );
    }
    expect(
        RULE,
        "entries received at or after 30 s (e-4's time)",
        ids(inbox, RULE, ListFilter::new().since(at(30))).await,
        strings(&["e-4", "e-5", "e-6", "e-7"]),
    );
    expect(
        RULE,
        "entries received at or after 31 s",
        ids(inbox, RULE, ListFilter::new().since(at(31))).await,
        strings(&["e-5", "e-6", "e-7"]),
    );
    expect(
        RULE,
        "the newest 2 received at or after 30 s",
        ids(
            inbox,
            RULE,
            ListFilter::new().since(at(30)).newest_first().limit(2),
        )
        .await,
        strings(&["e-7", "e-6"]),
    );
    expect(
        RULE,
        "entries received at or after 10 s and before e-4",
        ids(inbox, RULE, ListFilter::new().since(at(10)).before("e-4")).await,
        strings(&["e-2", "e-3"]),
    );
    expect(
        RULE,
        "FOLDER.CREATED entries received at or after 20 s, newest first",
        ids(
            inbox,
            RULE,
            ListFilter::new()
                .trigger("FOLDER.CREATED")
                .since(at(20))
                .newest_first(),
        )
        .await,
        strings(&["e-6", "e-4"]),
    );
    expect(
        RULE,
        "entries received after the newest",
        ids(inbox, RULE, ListFilter::new().since(at(61))).await,
        Vec::<String>::new(),
    );
}
