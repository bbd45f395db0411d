//! A signed delivery through the real server, in-process: a delivery signed
//! with the wrong key is refused, a signed one reaches the handler once, and
//! `--once` then stops the server gracefully.

use std::time::Duration;

use boxhook::{KeyRing, Trigger};
use boxhook_minimal_receiver::{run, Limits, Received, PATH};
use boxhook_testkit::{sample_keys, RetrySchedule, Simulator};

const BODY: &str = r#"{"type":"webhook_event","id":"e-1","created_at":"2024-05-14T09:12:31-07:00","trigger":"FILE.UPLOADED","webhook":{"id":"w-1","type":"webhook"},"source":{"id":"5","type":"file","name":"Q1.pdf"}}"#;

/// Sends [`BODY`] once, signed with `keys`, and returns each attempt's status.
async fn deliver(uri: &axum::http::Uri, keys: KeyRing) -> Vec<Option<u16>> {
    let report = Simulator::builder(uri.clone(), keys)
        .schedule(RetrySchedule::none())
        .build()
        .send_body(BODY)
        .await;
    report
        .attempts()
        .iter()
        .map(|a| a.status().map(|s| s.as_u16()))
        .collect()
}

#[tokio::test]
async fn one_signed_delivery_is_handled_and_once_stops_the_server() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let uri: axum::http::Uri = format!("http://{}{PATH}", listener.local_addr().expect("bound"))
        .parse()
        .expect("a valid uri");
    let limits = Limits {
        once: true,
        max_run: Some(Duration::from_secs(60)),
    };
    let server = tokio::spawn(run(listener, sample_keys(), limits));

    let wrong = KeyRing::from_strs(Some("not-the-app-key"), None).expect("a key");
    assert_eq!(deliver(&uri, wrong).await, [Some(401)]);
    assert_eq!(deliver(&uri, sample_keys()).await, [Some(200)]);

    let received = tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("--once stops the server after the first event")
        .expect("the server task does not panic")
        .expect("serving succeeds");
    assert_eq!(
        received,
        [Received {
            event_id: "e-1".to_owned(),
            trigger: Trigger::FileUploaded,
            source_name: Some("Q1.pdf".to_owned()),
        }]
    );
}

#[tokio::test]
async fn the_time_limit_stops_an_idle_server() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let limits = Limits {
        once: false,
        max_run: Some(Duration::from_millis(100)),
    };
    let received = tokio::time::timeout(
        Duration::from_secs(30),
        run(listener, sample_keys(), limits),
    )
    .await
    .expect("--for stops the server")
    .expect("serving succeeds");
    assert_eq!(received, []);
}
