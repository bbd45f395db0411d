//! The client against the fake Box API: each endpoint, Box's errors typed,
//! pagination, retries and both kinds of credentials.

use std::time::{Duration, Instant};

use boxhook_admin::fake::{FakeBoxApi, FAKE_ACCESS_TOKEN, FAKE_CLIENT_ID, FAKE_CLIENT_SECRET};
use boxhook_admin::{
    ApiError, BoxClient, Credentials, Error, NewWebhook, RetryPolicy, SubjectType, Target,
    WebhookUpdate,
};

/// Retries that wait at most 5 ms, whatever `Retry-After` says.
fn fast() -> RetryPolicy {
    RetryPolicy::default()
        .base(Duration::from_millis(1))
        .max_delay(Duration::from_millis(5))
}

fn client(api: &FakeBoxApi) -> BoxClient {
    BoxClient::builder(Credentials::AccessToken(FAKE_ACCESS_TOKEN.into()))
        .api_base(api.uri())
        .retry(fast())
        .build()
        .expect("client")
}

fn ccg(api: &FakeBoxApi, secret: &str) -> BoxClient {
    BoxClient::builder(Credentials::client_credentials(
        FAKE_CLIENT_ID,
        secret,
        SubjectType::Enterprise,
        "777",
    ))
    .api_base(api.uri())
    .retry(fast())
    .build()
    .expect("client")
}

fn new(target: Target, address: &str) -> NewWebhook {
    NewWebhook {
        target,
        address: address.into(),
        triggers: vec!["FILE.UPLOADED".into(), "FILE.TRASHED".into()],
    }
}

fn api_err(result: Result<impl std::fmt::Debug, Error>) -> ApiError {
    match result {
        Err(Error::Api(err)) => err,
        other => panic!("want a Box error, got {other:?}"),
    }
}

#[tokio::test]
async fn create_get_update_delete_round_trip() {
    let api = FakeBoxApi::start().await.expect("fake");
    let client = client(&api);
    let created = client
        .create(&new(Target::folder("11"), "https://hooks.example.com/box"))
        .await
        .expect("create");
    assert_eq!(created.target, Target::folder("11"));
    assert_eq!(created.address, "https://hooks.example.com/box");
    assert_eq!(created.triggers, ["FILE.UPLOADED", "FILE.TRASHED"]);
    assert!(created.created_at.is_some());

    assert_eq!(client.get(&created.id).await.expect("get"), created);
    let updated = client
        .update(
            &created.id,
            &WebhookUpdate {
                address: None,
                triggers: Some(vec!["FILE.DOWNLOADED".into()]),
            },
        )
        .await
        .expect("update");
    assert_eq!(updated.triggers, ["FILE.DOWNLOADED"]);
    assert_eq!(updated.address, created.address);

    client.delete(&created.id).await.expect("delete");
    let gone = api_err(client.get(&created.id).await);
    assert_eq!((gone.status, gone.code.as_str()), (404, "not_found"));
    assert!(gone.request_id.is_some_and(|id| id.starts_with("fakereq")));
    assert!(api_err(client.delete(&created.id).await).is_not_found());
    assert_eq!(api.webhooks(), []);
}

#[tokio::test]
async fn box_refusals_come_back_typed() {
    let api = FakeBoxApi::start().await.expect("fake");
    let client = client(&api);
    client
        .create(&new(Target::folder("11"), "https://hooks.example.com/box"))
        .await
        .expect("create");
    let table = [
        (
            new(Target::folder("11"), "https://other.example.com/"),
            409,
            "conflict",
        ),
        (
            new(Target::folder("0"), "https://hooks.example.com/box"),
            400,
            "bad_request",
        ),
        (
            new(Target::folder("12"), "http://hooks.example.com/box"),
            400,
            "bad_request",
        ),
        (
            new(Target::folder("13"), "https://hooks.example.com:8443/"),
            400,
            "bad_request",
        ),
        (
            new(Target::folder("14"), "https://app.box.com/hook"),
            400,
            "bad_request",
        ),
    ];
    for (webhook, status, code) in table {
        let err = api_err(client.create(&webhook).await);
        assert_eq!(
            (err.status, err.code.as_str()),
            (status, code),
            "{webhook:?}"
        );
    }
    let conflict = api_err(
        client
            .create(&new(Target::folder("11"), "https://other.example.com/"))
            .await,
    );
    assert!(conflict.is_conflict());
    assert!(conflict
        .message
        .ends_with("already exists on the specified target."));
    assert_eq!(api.webhooks().len(), 1);
    // An id that is not digits never reaches Box.
    let calls = api.calls();
    assert!(matches!(client.get("1/../2").await, Err(Error::Config(_))));
    assert_eq!(api.calls(), calls);
}

#[tokio::test]
async fn the_cap_is_one_thousand_per_app_and_user() {
    let api = FakeBoxApi::start().await.expect("fake");
    for id in 1..=1000 {
        api.seed(
            FAKE_ACCESS_TOKEN,
            "file",
            &id.to_string(),
            "https://h.example.com/",
            &["FILE.PREVIEWED"],
        );
    }
    let client = client(&api);
    let err = api_err(
        client
            .create(&new(
                Target::folder("5000"),
                "https://hooks.example.com/box",
            ))
            .await,
    );
    assert_eq!((err.status, err.code.as_str()), (400, "bad_request"));
    // The list follows the markers through all 1000, one page of 1000.
    assert_eq!(client.list().await.expect("list").len(), 1000);
    assert_eq!(api.count("GET /2.0/webhooks"), 1);
}

#[tokio::test]
async fn list_pages_by_marker_with_mini_objects() {
    let api = FakeBoxApi::start().await.expect("fake");
    for id in 1..=5 {
        api.seed(
            FAKE_ACCESS_TOKEN,
            "folder",
            &id.to_string(),
            "https://h.example.com/",
            &["FILE.UPLOADED"],
        );
    }
    let client = client(&api);
    let first = client.list_page(None, 2).await.expect("page 1");
    assert_eq!(first.entries.len(), 2);
    let second = client
        .list_page(first.next_marker.as_deref(), 2)
        .await
        .expect("page 2");
    let third = client
        .list_page(second.next_marker.as_deref(), 2)
        .await
        .expect("page 3");
    assert_eq!(third.entries.len(), 1);
    assert_eq!(third.next_marker, None);
    let ids: Vec<String> = [first, second, third]
        .into_iter()
        .flat_map(|p| p.entries)
        .map(|w| w.target.id)
        .collect();
    assert_eq!(ids, ["1", "2", "3", "4", "5"]);
    // list_full: the list, then one GET per webhook for address and triggers.
    api.reset_calls();
    let full = client.list_full().await.expect("full");
    assert_eq!(full.len(), 5);
    assert!(full.iter().all(|w| w.address == "https://h.example.com/"));
    assert_eq!(api.count("GET /2.0/webhooks"), 1);
    assert_eq!(api.count("GET /2.0/webhooks/{id}"), 5);
}

#[tokio::test]
async fn a_bad_token_is_401_with_the_remedy() {
    let api = FakeBoxApi::start().await.expect("fake");
    let client = BoxClient::builder(Credentials::AccessToken("expired".into()))
        .api_base(api.uri())
        .build()
        .expect("client");
    let err = client.list().await.expect_err("401");
    let box_err = err.api().expect("Box error");
    assert_eq!(
        (box_err.status, box_err.code.as_str()),
        (401, "unauthorized")
    );
    assert!(err
        .to_string()
        .contains("developer tokens expire after an hour"));
    assert_eq!(api.count("GET /2.0/webhooks"), 1, "401 is not retried");
}

#[tokio::test]
async fn client_credentials_fetch_one_token_and_refresh_it() {
    let api = FakeBoxApi::start().await.expect("fake");
    let client = ccg(&api, FAKE_CLIENT_SECRET);
    client.list().await.expect("list");
    client.list().await.expect("list again");
    assert_eq!(api.count("POST /oauth2/token"), 1, "the token is cached");
    // Box stops taking it (expired or revoked): one new token, one retry.
    api.expire_tokens();
    client.list().await.expect("list after expiry");
    assert_eq!(api.count("POST /oauth2/token"), 2);
    assert_eq!(api.count("GET /2.0/webhooks"), 4);
    // Webhooks belong to the app and user: the static token's user sees none of them.
    client
        .create(&new(Target::folder("11"), "https://hooks.example.com/box"))
        .await
        .expect("create as the service account");
    let other = BoxClient::builder(Credentials::AccessToken(FAKE_ACCESS_TOKEN.into()))
        .api_base(api.uri())
        .build()
        .expect("client");
    assert_eq!(other.list().await.expect("list"), []);
    other
        .create(&new(Target::folder("11"), "https://hooks.example.com/box"))
        .await
        .expect("another user may watch the same folder");
}

#[tokio::test]
async fn a_wrong_client_secret_is_the_token_endpoints_error() {
    let api = FakeBoxApi::start().await.expect("fake");
    let err = api_err(ccg(&api, "wrong").list().await);
    assert_eq!(
        (err.status, err.code.as_str(), err.message.as_str()),
        (400, "invalid_client", "The client credentials are invalid")
    );
    assert_eq!(api.count("GET /2.0/webhooks"), 0);
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried() {
    let api = FakeBoxApi::start().await.expect("fake");
    api.rate_limit_call(1, 30);
    api.fail_call(2, 503);
    let client = client(&api);
    let started = Instant::now();
    assert_eq!(client.list().await.expect("third attempt"), []);
    assert_eq!(api.count("GET /2.0/webhooks"), 3);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "Retry-After is capped by max_delay"
    );

    // Retry-After is honoured: a 1 s Retry-After under a 2 s cap waits 1 s.
    let api = FakeBoxApi::start().await.expect("fake");
    api.rate_limit_call(1, 1);
    let patient = BoxClient::builder(Credentials::AccessToken(FAKE_ACCESS_TOKEN.into()))
        .api_base(api.uri())
        .retry(
            RetryPolicy::default()
                .base(Duration::from_millis(1))
                .max_delay(Duration::from_secs(2)),
        )
        .build()
        .expect("client");
    let started = Instant::now();
    patient.list().await.expect("after Retry-After");
    assert!(started.elapsed() >= Duration::from_secs(1));

    // Out of retries: the last answer, typed.
    let api = FakeBoxApi::start().await.expect("fake");
    for n in 1..=5 {
        api.rate_limit_call(n, 1);
    }
    let err = api_err(client_for(&api, fast().retries(4)).list().await);
    assert_eq!(
        (err.status, err.code.as_str()),
        (429, "rate_limit_exceeded")
    );
    assert_eq!(api.count("GET /2.0/webhooks"), 5);
    // A 429 of the token endpoint is retried the same way.
    let api = FakeBoxApi::start().await.expect("fake");
    api.rate_limit_call(1, 1);
    ccg(&api, FAKE_CLIENT_SECRET).list().await.expect("list");
    assert_eq!(api.count("POST /oauth2/token"), 2);
}

fn client_for(api: &FakeBoxApi, retry: RetryPolicy) -> BoxClient {
    BoxClient::builder(Credentials::AccessToken(FAKE_ACCESS_TOKEN.into()))
        .api_base(api.uri())
        .retry(retry)
        .build()
        .expect("client")
}

#[tokio::test]
async fn an_unreachable_api_is_a_transport_error() {
    let api = FakeBoxApi::start().await.expect("fake");
    let base = api.uri();
    drop(api);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let client = BoxClient::builder(Credentials::AccessToken("t".into()))
        .api_base(base)
        .retry(RetryPolicy::none())
        .build()
        .expect("client");
    match client.list().await {
        Err(Error::Transport(detail)) => assert!(!detail.is_empty()),
        other => panic!("want a transport error, got {other:?}"),
    }
}

#[test]
fn an_https_client_builds_with_the_ring_provider() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = BoxClient::builder(Credentials::AccessToken("t".into()))
            .build()
            .expect("https client");
        assert_eq!(client.api_base(), "https://api.box.com");
    });
}
