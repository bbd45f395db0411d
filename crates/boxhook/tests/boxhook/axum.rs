//! boxhook inside an axum app, over real HTTP: mounted beside other routes,
//! and through the `BoxEvent` extractor.
#![cfg(feature = "axum")]

use crate::common;

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use boxhook::axum::{verify_layer, BoxEvent};
use boxhook::{DeliveryContext, HandlerError, Router as Webhooks, VerifyLayer};
use boxhook_core::model::WebhookEvent;
use boxhook_core::Verifier;
use boxhook_testkit::Delivery;
use common::{client, deliver, event};
use http::Uri;
use tower_layer::Layer as _;

async fn serve_axum(app: axum::Router) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    (addr, task)
}

#[tokio::test]
async fn mounted_at_a_path_beside_other_routes() {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = seen.clone();
    let webhooks = VerifyLayer::new(Verifier::new(common::keys()))
        .clock(common::clock())
        .layer(
            Webhooks::new().fallback(move |event: WebhookEvent, _: DeliveryContext| {
                let sink = sink.clone();
                async move {
                    sink.lock().expect("lock").push(event.id().to_owned());
                    Ok::<_, HandlerError>(())
                }
            }),
        );
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .route_service("/box/webhooks", webhooks);
    let (addr, task) = serve_axum(app).await;
    let client = client();
    let to = |path: &'static str, delivery: Delivery| delivery.uri(Uri::from_static(path));

    let health = client
        .get(format!("http://{addr}/health").parse().expect("uri"))
        .await
        .expect("health");
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(
        deliver(
            &client,
            addr,
            &to("/box/webhooks", Delivery::new(event("e1", "FILE.UPLOADED")))
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        deliver(
            &client,
            addr,
            &to(
                "/box/webhooks",
                Delivery::new(event("e2", "FILE.UPLOADED")).tampered()
            )
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        deliver(
            &client,
            addr,
            &to("/elsewhere", Delivery::new(event("e3", "FILE.UPLOADED")))
        )
        .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(*seen.lock().expect("lock"), ["e1"]);
    task.abort();
}

#[tokio::test]
async fn the_extractor_hands_over_a_verified_event() {
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let sink = seen.clone();
    let handler = move |BoxEvent {
                            event, verified, ..
                        }: BoxEvent| {
        let sink = sink.clone();
        async move {
            sink.lock()
                .expect("lock")
                .push((event.trigger().to_string(), verified.key_slot().to_string()));
            StatusCode::NO_CONTENT
        }
    };
    let layer = verify_layer(Verifier::new(common::keys())).clock(common::clock());
    let app = axum::Router::new().route("/box", axum::routing::post(handler).layer(layer));
    let (addr, task) = serve_axum(app).await;
    let client = client();
    let to_box = |d: Delivery| d.uri(Uri::from_static("/box"));
    assert_eq!(
        deliver(
            &client,
            addr,
            &to_box(Delivery::new(event("e1", "FOLDER.MOVED")))
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        deliver(
            &client,
            addr,
            &to_box(Delivery::new(event("e2", "FOLDER.MOVED")).stale())
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        deliver(&client, addr, &to_box(Delivery::new("[1,2]"))).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        *seen.lock().expect("lock"),
        [("FOLDER.MOVED".to_owned(), "primary".to_owned())]
    );
    task.abort();
}
