//! Listing against an API whose pages never end or go round in a loop: the
//! client stops with an error naming the bound, after a bounded number of
//! requests, instead of growing without end.

use boxhook_admin::fake::{FakeBoxApi, Paging, FAKE_ACCESS_TOKEN};
use boxhook_admin::{BoxClient, Credentials, Error, RetryPolicy, MAX_LIST_ENTRIES, MAX_LIST_PAGES};

fn client(api: &FakeBoxApi) -> BoxClient {
    BoxClient::builder(Credentials::AccessToken(FAKE_ACCESS_TOKEN.into()))
        .api_base(api.uri())
        .retry(RetryPolicy::none())
        .build()
        .expect("client")
}

/// `call`, which must end within 30 s: a list that does not stop fails the
/// test instead of growing until the machine runs out of memory.
async fn bounded<T>(call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(30), call)
        .await
        .expect("the list did not stop within 30 s")
}

fn list_error(result: Result<Vec<boxhook_admin::WebhookMini>, Error>) -> String {
    match result {
        Err(
            err @ Error::Decode {
                what: "webhook list",
                ..
            },
        ) => err.to_string(),
        other => panic!("want a webhook list error, got {other:?}"),
    }
}

#[test]
fn the_bounds_follow_box_cap() {
    assert_eq!(MAX_LIST_ENTRIES, 10 * boxhook_admin::MAX_WEBHOOKS);
    assert_eq!(MAX_LIST_PAGES, 100);
}

#[tokio::test]
async fn an_endless_list_stops_past_the_entry_bound() {
    let api = FakeBoxApi::builder()
        .paging(Paging::Endless)
        .start()
        .await
        .expect("fake");
    let err = list_error(bounded(client(&api).list()).await);
    assert_eq!(
        err,
        "unexpected answer from the Box API (webhook list): page 11 would bring the list \
         past 10000 webhooks; Box keeps at most 1000 per app and user, so this API does not \
         page as Box's does: stopped"
    );
    assert_eq!(api.count("GET /2.0/webhooks"), 11);
}

#[tokio::test]
async fn an_endless_list_of_small_pages_stops_at_the_page_bound() {
    let api = FakeBoxApi::builder()
        .paging(Paging::Endless)
        .page_size(10)
        .start()
        .await
        .expect("fake");
    let err = list_error(bounded(client(&api).list()).await);
    assert_eq!(
        err,
        "unexpected answer from the Box API (webhook list): still a next page after 100 \
         pages (1000 webhooks); Box keeps at most 1000 webhooks per app and user, so this \
         API does not page as Box's does: stopped"
    );
    assert_eq!(api.count("GET /2.0/webhooks"), 100);
}

#[tokio::test]
async fn a_repeated_marker_is_a_loop() {
    for (pages, requests, repeated) in [
        (1, 2, "page 2 gives the same next_marker as page 1"),
        (3, 4, "page 4 gives the same next_marker as page 1"),
    ] {
        let api = FakeBoxApi::builder()
            .paging(Paging::Loop { pages })
            .page_size(2)
            .start()
            .await
            .expect("fake");
        let err = list_error(bounded(client(&api).list()).await);
        assert_eq!(
            err,
            format!(
                "unexpected answer from the Box API (webhook list): {repeated}, so the pages go \
                 round in a loop: stopped"
            ),
            "{pages}"
        );
        assert_eq!(api.count("GET /2.0/webhooks"), requests, "{pages}");
    }
}

#[tokio::test]
async fn every_caller_of_the_list_stops_too() {
    let api = FakeBoxApi::builder()
        .paging(Paging::Endless)
        .start()
        .await
        .expect("fake");
    let client = client(&api);
    list_error(bounded(client.list()).await);
    assert!(matches!(
        bounded(client.list_full()).await,
        Err(Error::Decode {
            what: "webhook list",
            ..
        })
    ));
    assert!(matches!(
        client
            .find_on_target(&boxhook_admin::Target::folder("5"))
            .await,
        Err(Error::Decode {
            what: "webhook list",
            ..
        })
    ));
    assert_eq!(api.count("GET /2.0/webhooks/{id}"), 0, "no GET per entry");
}

/// A full app (Box's 1,000) listed at Box's default page size of 100: ten
/// pages, well inside both bounds.
#[tokio::test]
async fn a_full_app_in_small_pages_is_listed() {
    let api = FakeBoxApi::builder()
        .page_size(100)
        .start()
        .await
        .expect("fake");
    for id in 1..=1000 {
        api.seed(
            FAKE_ACCESS_TOKEN,
            "folder",
            &id.to_string(),
            "https://h.example.com/",
            &["FILE.UPLOADED"],
        );
    }
    assert_eq!(client(&api).list().await.expect("list").len(), 1000);
    assert_eq!(api.count("GET /2.0/webhooks"), 10);
}
