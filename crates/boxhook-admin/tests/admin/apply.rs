//! Plan and apply against the fake Box API: creates, updates with their
//! diff, the 409 path, pruning, and a second apply that writes nothing.

use std::time::Duration;

use boxhook_admin::fake::{FakeBoxApi, FAKE_ACCESS_TOKEN};
use boxhook_admin::{
    apply, current_state, ensure, plan, Applied, BoxClient, Change, Credentials, DesiredState,
    RetryPolicy,
};

const HOOK: &str = "https://hooks.example.com/box";

fn client(api: &FakeBoxApi) -> BoxClient {
    BoxClient::builder(Credentials::AccessToken(FAKE_ACCESS_TOKEN.into()))
        .api_base(api.uri())
        .retry(
            RetryPolicy::default()
                .base(Duration::from_millis(1))
                .max_delay(Duration::from_millis(5)),
        )
        .build()
        .expect("client")
}

fn desired() -> DesiredState {
    DesiredState::parse(&format!(
        r#"
        [[webhook]]
        target = "folder:11"
        address = "{HOOK}"
        triggers = ["FILE.UPLOADED", "FILE.TRASHED"]

        [[webhook]]
        target = "file:22"
        address = "{HOOK}"
        triggers = ["FILE.PREVIEWED"]

        [[webhook]]
        target = "folder:33"
        address = "{HOOK}"
        triggers = ["FOLDER.CREATED"]
        "#
    ))
    .expect("desired state")
}

async fn plan_now(client: &BoxClient, desired: &DesiredState, prune: bool) -> Vec<Change> {
    plan(
        desired,
        &current_state(client, desired, prune).await.expect("read"),
        prune,
    )
}

#[tokio::test]
async fn apply_converges_and_a_second_apply_writes_nothing() {
    let api = FakeBoxApi::start().await.expect("fake");
    // folder:11 exists with other triggers; file:22 exists as declared
    // (triggers in another order); folder:33 is missing; folder:44 is ours
    // but undeclared; folder:55 goes elsewhere.
    let eleven = api.seed(
        FAKE_ACCESS_TOKEN,
        "folder",
        "11",
        HOOK,
        &["FILE.UPLOADED", "FILE.DOWNLOADED"],
    );
    let twenty_two = api.seed(FAKE_ACCESS_TOKEN, "file", "22", HOOK, &["FILE.PREVIEWED"]);
    let forty_four = api.seed(FAKE_ACCESS_TOKEN, "folder", "44", HOOK, &["FILE.UPLOADED"]);
    api.seed(
        FAKE_ACCESS_TOKEN,
        "folder",
        "55",
        "https://elsewhere.example.com/",
        &["FILE.UPLOADED"],
    );
    let client = client(&api);
    let desired = desired();

    let changes = plan_now(&client, &desired, true).await;
    let json = serde_json::to_value(&changes).expect("json");
    assert_eq!(
        json,
        serde_json::json!([
            {"action": "update", "id": eleven.id, "target": "folder:11", "address": HOOK,
             "triggers": ["FILE.UPLOADED", "FILE.TRASHED"],
             "diff": {"add_triggers": ["FILE.TRASHED"], "remove_triggers": ["FILE.DOWNLOADED"]}},
            {"action": "unchanged", "id": twenty_two.id, "target": "file:22", "address": HOOK,
             "triggers": ["FILE.PREVIEWED"]},
            {"action": "create", "target": "folder:33", "address": HOOK, "triggers": ["FOLDER.CREATED"]},
            {"action": "delete", "id": forty_four.id, "target": "folder:44", "address": HOOK},
        ])
    );
    assert_eq!(api.write_calls(), 0, "planning writes nothing");

    let results = apply(&client, &desired, changes).await;
    let done: Vec<&str> = results
        .iter()
        .map(|r| r.result.as_ref().expect("applied").name())
        .collect();
    assert_eq!(done, ["updated", "unchanged", "created", "deleted"]);
    assert_eq!(api.count("PUT /2.0/webhooks/{id}"), 1);
    assert_eq!(api.count("POST /2.0/webhooks"), 1);
    assert_eq!(api.count("DELETE /2.0/webhooks/{id}"), 1);
    let mut targets: Vec<String> = api
        .webhooks()
        .iter()
        .map(boxhook_admin::fake::FakeWebhook::target)
        .collect();
    targets.sort();
    assert_eq!(targets, ["file:22", "folder:11", "folder:33", "folder:55"]);

    // Nothing changed since: the second run reads and writes nothing.
    api.reset_calls();
    let again = plan_now(&client, &desired, true).await;
    assert!(
        again.iter().all(|c| matches!(c, Change::Unchanged { .. })),
        "{again:?}"
    );
    let results = apply(&client, &desired, again).await;
    assert!(results
        .iter()
        .all(|r| matches!(r.result, Ok(Applied::Unchanged(_)))));
    assert_eq!(api.write_calls(), 0);
    assert_eq!(api.count("GET /2.0/webhooks"), 1);
    // One GET per webhook: the three declared and, for --prune, folder:55.
    assert_eq!(api.count("GET /2.0/webhooks/{id}"), 4);
}

#[tokio::test]
async fn without_prune_only_declared_targets_are_read() {
    let api = FakeBoxApi::start().await.expect("fake");
    api.seed(FAKE_ACCESS_TOKEN, "folder", "44", HOOK, &["FILE.UPLOADED"]);
    api.seed(
        FAKE_ACCESS_TOKEN,
        "folder",
        "11",
        HOOK,
        &["FILE.UPLOADED", "FILE.TRASHED"],
    );
    let client = client(&api);
    let changes = plan_now(&client, &desired(), false).await;
    assert_eq!(
        changes
            .iter()
            .map(|c| serde_json::to_value(c).expect("json")["action"].clone())
            .collect::<Vec<_>>(),
        ["unchanged", "create", "create"]
    );
    assert_eq!(api.count("GET /2.0/webhooks/{id}"), 1);
}

#[tokio::test]
async fn a_409_on_create_updates_the_webhook_already_there() {
    let api = FakeBoxApi::start().await.expect("fake");
    let client = client(&api);
    let desired = desired();
    // The plan says create, but by the time it is applied another run has
    // put a webhook on folder:11 with other triggers.
    let changes = plan_now(&client, &desired, false).await;
    let existing = api.seed(
        FAKE_ACCESS_TOKEN,
        "folder",
        "11",
        HOOK,
        &["FILE.DOWNLOADED"],
    );
    let results = apply(&client, &desired, changes).await;
    assert_eq!(
        results[0].result.as_ref().expect("applied"),
        &Applied::Existed(existing.id.clone(), true)
    );
    let on_eleven: Vec<_> = api
        .webhooks()
        .into_iter()
        .filter(|w| w.target() == "folder:11")
        .collect();
    assert_eq!(on_eleven.len(), 1, "no duplicate");
    assert_eq!(
        on_eleven[0].id, existing.id,
        "updated in place, not re-created"
    );
    assert_eq!(on_eleven[0].triggers, ["FILE.UPLOADED", "FILE.TRASHED"]);
    assert_eq!(api.count("DELETE /2.0/webhooks/{id}"), 0);

    // The same, with the existing one already as declared: found, compared, done.
    api.reset_calls();
    let want = &desired.webhooks()[0];
    assert_eq!(
        ensure(&client, want).await.expect("ensure"),
        Applied::Existed(existing.id.clone(), false)
    );
    assert_eq!(api.count("POST /2.0/webhooks"), 1);
    assert_eq!(api.count("PUT /2.0/webhooks/{id}"), 0);
}

#[tokio::test]
async fn a_409_on_an_item_the_user_does_not_own_is_found_by_the_id_in_the_message() {
    let api = FakeBoxApi::start().await.expect("fake");
    let client = client(&api);
    let desired = desired();
    let existing = api.seed(
        FAKE_ACCESS_TOKEN,
        "folder",
        "11",
        HOOK,
        &["FILE.DOWNLOADED"],
    );
    api.not_owned("folder:11");
    assert_eq!(
        client.list().await.expect("list"),
        [],
        "the list leaves it out"
    );
    assert_eq!(
        ensure(&client, &desired.webhooks()[0])
            .await
            .expect("ensure"),
        Applied::Existed(existing.id.clone(), true)
    );
    assert_eq!(api.webhooks().len(), 1);
    assert_eq!(
        api.webhooks()[0].triggers,
        ["FILE.UPLOADED", "FILE.TRASHED"]
    );
}

#[tokio::test]
async fn one_failure_is_named_and_the_others_still_apply() {
    let api = FakeBoxApi::start().await.expect("fake");
    let client = BoxClient::builder(Credentials::AccessToken(FAKE_ACCESS_TOKEN.into()))
        .api_base(api.uri())
        .retry(RetryPolicy::none())
        .build()
        .expect("client");
    let desired = desired();
    let changes = plan_now(&client, &desired, false).await;
    // Calls so far: the list. Call 2 creates folder:11: make it fail.
    api.fail_call(2, 500);
    let results = apply(&client, &desired, changes).await;
    let err = results[0].result.as_ref().expect_err("failed");
    assert_eq!(err.api().map(|e| e.status), Some(500));
    assert!(results[1..]
        .iter()
        .all(|r| matches!(r.result, Ok(Applied::Created(_)))));
    assert_eq!(api.webhooks().len(), 2);
}
