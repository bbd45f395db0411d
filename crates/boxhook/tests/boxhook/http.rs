//! The framework over real HTTP on 127.0.0.1: every row of the status table,
//! exactly-once handling under concurrency, retries, live key rotation, and
//! bounded bodies.
#![allow(
    clippy::too_many_lines,
    reason = "the status table is one long literal table"
)]

use crate::common;

use std::fmt::Write as _;
use std::time::Duration;

use boxhook::{DeliveryContext, HandlerError, Router, VerifyLayer};
use boxhook_core::model::{Trigger, WebhookEvent};
use boxhook_core::{KeyRing, SharedKeyRing, Verifier};
use boxhook_testkit::{BoxHeader, Delivery};
use common::{client, deliver, event, send, serve, stack, Count};
use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tower_layer::Layer as _;

const LIMIT: Duration = Duration::from_secs(30);

/// A router whose handler behaves according to the event id.
fn scripted(count: &Count) -> Router {
    let count = count.clone();
    Router::new()
        .handler_timeout(Duration::from_millis(300))
        .on(
            Trigger::FileUploaded,
            move |event: WebhookEvent, _ctx: DeliveryContext| {
                let count = count.clone();
                async move {
                    count.bump();
                    match event.id() {
                        "fail" => Err(HandlerError::new("database is down")),
                        "retry" => Err(HandlerError::retry_later("rate limited")),
                        "panic" => panic!("handler bug"),
                        "slow" => {
                            tokio::time::sleep(Duration::from_secs(10)).await;
                            Ok(())
                        }
                        _ => Ok(()),
                    }
                }
            },
        )
}

#[tokio::test]
async fn status_table() {
    tokio::time::timeout(LIMIT, async {
        let count = Count::default();
        let server = serve(stack(scripted(&count))).await;
        let client = client();
        let ok = Delivery::new(event("ok", "FILE.UPLOADED"));
        let get = {
            let mut r = ok.to_request();
            *r.method_mut() = Method::GET;
            r
        };
        let cases: Vec<(&str, http::Request<_>, StatusCode)> = vec![
            ("handled", ok.to_request(), StatusCode::OK),
            (
                "duplicate",
                ok.clone().delivery_id("another").to_request(),
                StatusCode::OK,
            ),
            (
                "unhandled trigger",
                Delivery::new(event("u", "FOLDER.CREATED")).to_request(),
                StatusCode::OK,
            ),
            (
                "unknown trigger",
                Delivery::new(event("u2", "FILE.TELEPORTED")).to_request(),
                StatusCode::OK,
            ),
            (
                "handler error",
                Delivery::new(event("fail", "FILE.UPLOADED")).to_request(),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
            (
                "retry requested",
                Delivery::new(event("retry", "FILE.UPLOADED")).to_request(),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                "panic",
                Delivery::new(event("panic", "FILE.UPLOADED")).to_request(),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
            (
                "after a panic the server still serves",
                Delivery::new(event("ok2", "FILE.UPLOADED")).to_request(),
                StatusCode::OK,
            ),
            (
                "deadline",
                Delivery::new(event("slow", "FILE.UPLOADED")).to_request(),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                "not a webhook_event",
                Delivery::new(r#"{"type":"file","id":"1"}"#).to_request(),
                StatusCode::BAD_REQUEST,
            ),
            (
                "not JSON",
                Delivery::new("hello").to_request(),
                StatusCode::BAD_REQUEST,
            ),
            ("GET", get, StatusCode::METHOD_NOT_ALLOWED),
            (
                "tampered",
                Delivery::new(event("t", "FILE.UPLOADED"))
                    .tampered()
                    .to_request(),
                StatusCode::UNAUTHORIZED,
            ),
            (
                "stale",
                Delivery::new(event("s", "FILE.UPLOADED"))
                    .stale()
                    .to_request(),
                StatusCode::UNAUTHORIZED,
            ),
            (
                "future",
                Delivery::new(event("f", "FILE.UPLOADED"))
                    .future()
                    .to_request(),
                StatusCode::UNAUTHORIZED,
            ),
            (
                "wrong key",
                Delivery::new(event("w", "FILE.UPLOADED"))
                    .wrong_key()
                    .to_request(),
                StatusCode::UNAUTHORIZED,
            ),
            (
                "missing timestamp",
                Delivery::new(event("m", "FILE.UPLOADED"))
                    .without_header(BoxHeader::DeliveryTimestamp)
                    .to_request(),
                StatusCode::UNAUTHORIZED,
            ),
            (
                "reserialized body",
                Delivery::new(event("r", "FILE.UPLOADED"))
                    .reserialized()
                    .to_request(),
                StatusCode::OK,
            ),
        ];
        for (name, request, want) in cases {
            assert_eq!(send(&client, server.addr, request).await, want, "{name}");
        }
        // ok, ok2, r and each failing id ran once; the duplicate did not run.
        assert_eq!(count.get(), 7);
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn fifty_concurrent_duplicates_are_handled_once() {
    tokio::time::timeout(LIMIT, async {
        let count = Count::default();
        let handled = count.clone();
        let router = Router::new().on(
            Trigger::FileUploaded,
            move |_: WebhookEvent, _: DeliveryContext| {
                let handled = handled.clone();
                async move {
                    handled.bump();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok::<_, boxhook::HandlerError>(())
                }
            },
        );
        let server = serve(stack(router)).await;
        let client = client();
        let body = event("same-event", "FILE.UPLOADED");
        let mut tasks = Vec::new();
        for i in 0..50 {
            let (client, addr, body) = (client.clone(), server.addr, body.clone());
            tasks.push(tokio::spawn(async move {
                // Like Box: retry anything but 2xx, each time with a new delivery id.
                for attempt in 0.. {
                    let delivery =
                        Delivery::new(body.clone()).delivery_id(format!("d-{i}-{attempt}"));
                    let status = deliver(&client, addr, &delivery).await;
                    if status.is_success() {
                        return attempt;
                    }
                    assert_eq!(
                        status,
                        StatusCode::SERVICE_UNAVAILABLE,
                        "only in-progress may fail"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                unreachable!()
            }));
        }
        let mut retried = 0;
        for task in tasks {
            retried += usize::from(task.await.expect("task") > 0);
        }
        assert_eq!(count.get(), 1, "handled exactly once");
        assert!(
            retried > 0,
            "some concurrent duplicates saw the claim in progress"
        );
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_retry_after_a_failure_is_handled() {
    tokio::time::timeout(LIMIT, async {
        let attempts = Count::default();
        let seen = attempts.clone();
        let router = Router::new().on(
            Trigger::FileUploaded,
            move |_: WebhookEvent, _: DeliveryContext| {
                let seen = seen.clone();
                async move {
                    if seen.bump() == 1 {
                        Err(HandlerError::new("first attempt fails"))
                    } else {
                        Ok(())
                    }
                }
            },
        );
        let server = serve(stack(router)).await;
        let client = client();
        let body = event("evt-7", "FILE.UPLOADED");
        let statuses = [
            deliver(
                &client,
                server.addr,
                &Delivery::new(body.clone()).delivery_id("a"),
            )
            .await,
            deliver(
                &client,
                server.addr,
                &Delivery::new(body.clone()).delivery_id("b"),
            )
            .await,
            deliver(&client, server.addr, &Delivery::new(body).delivery_id("c")).await,
        ];
        assert_eq!(
            statuses,
            [
                StatusCode::INTERNAL_SERVER_ERROR,
                StatusCode::OK,
                StatusCode::OK
            ]
        );
        assert_eq!(
            attempts.get(),
            2,
            "failed once, handled once, then acknowledged as a duplicate"
        );
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn keys_rotated_mid_traffic_lose_no_valid_delivery() {
    tokio::time::timeout(LIMIT, async {
        let ring = |p: &str, s: &str| KeyRing::from_strs(Some(p), Some(s)).expect("keys");
        let receiver_keys = SharedKeyRing::new(ring("old-p", "old-s"));
        let box_keys = SharedKeyRing::new(ring("old-p", "old-s"));
        let count = Count::default();
        let handled = count.clone();
        let router = Router::new().fallback(move |_: WebhookEvent, _: DeliveryContext| {
            let handled = handled.clone();
            async move {
                handled.bump();
                Ok::<_, boxhook::HandlerError>(())
            }
        });
        let service = VerifyLayer::new(Verifier::new(receiver_keys.clone()))
            .clock(common::clock())
            .layer(router);
        let server = serve(service).await;
        let client = client();

        let sender = {
            let (client, box_keys, addr) = (client.clone(), box_keys.clone(), server.addr);
            tokio::spawn(async move {
                let mut sent = 0usize;
                for i in 0..400 {
                    let keys = (*box_keys.load()).clone();
                    let delivery =
                        Delivery::new(event(&format!("e{i}"), "FILE.UPLOADED")).keys(keys);
                    assert_eq!(
                        deliver(&client, addr, &delivery).await,
                        StatusCode::OK,
                        "delivery {i}"
                    );
                    sent += 1;
                }
                sent
            })
        };
        // The documented order: Box resets one key, the receiver deploys it,
        // then the other.
        let steps = [
            (&box_keys, ring("old-p", "new-s")),
            (&receiver_keys, ring("old-p", "new-s")),
            (&box_keys, ring("new-p", "new-s")),
            (&receiver_keys, ring("new-p", "new-s")),
        ];
        for (handle, keys) in steps {
            tokio::time::sleep(Duration::from_millis(40)).await;
            handle.replace(keys);
        }
        assert_eq!(sender.await.expect("sender"), 400);
        assert_eq!(count.get(), 400);
    })
    .await
    .expect("bounded");
}

/// Writes a raw HTTP/1.1 request head, then whatever `body` does, and reads the status.
async fn raw_exchange(
    addr: std::net::SocketAddr,
    head: String,
    body: impl AsyncFnOnce(&mut tokio::net::tcp::OwnedWriteHalf) -> usize,
) -> (u16, usize) {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(head.as_bytes()).await.expect("head");
    let read = tokio::spawn(async move {
        let mut buf = vec![0u8; 1024];
        let n = reader.read(&mut buf).await.expect("read");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        text.split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0u16)
    });
    let written = body(&mut writer).await;
    (read.await.expect("reader"), written)
}

fn head(delivery: &Delivery, extra: &str) -> String {
    let mut head = String::from("POST / HTTP/1.1\r\nhost: 127.0.0.1\r\n");
    for (name, value) in &delivery.headers() {
        if name == http::header::CONTENT_LENGTH {
            continue; // each case declares its own framing
        }
        let _ = write!(head, "{name}: {}\r\n", value.to_str().expect("ascii"));
    }
    head.push_str(extra);
    head.push_str("\r\n");
    head
}

#[tokio::test]
async fn oversize_and_slow_bodies_are_cut_off() {
    tokio::time::timeout(LIMIT, async {
        let router = Router::new();
        let service = VerifyLayer::new(Verifier::new(common::keys()))
            .clock(common::clock())
            .body_limit(64 * 1024)
            .read_timeout(Duration::from_millis(300))
            .layer(router);
        let server = serve(service).await;
        let delivery = Delivery::new(event("big", "FILE.UPLOADED"));

        // A declared length over the limit: 413 before a byte of body is read.
        let (status, _) = raw_exchange(
            server.addr,
            head(&delivery, "content-length: 10000000\r\n"),
            async |_| 0,
        )
        .await;
        assert_eq!(status, 413);

        // No length, a chunked stream that never ends: 413 once 64 KiB have
        // arrived, long before the client is done.
        let (status, written) = raw_exchange(
            server.addr,
            head(&delivery, "transfer-encoding: chunked\r\n"),
            async |w| {
                let chunk = format!("4000\r\n{}\r\n", "x".repeat(0x4000));
                let mut written = 0;
                for _ in 0..4096 {
                    if w.write_all(chunk.as_bytes()).await.is_err() {
                        break;
                    }
                    written += 0x4000;
                }
                written
            },
        )
        .await;
        assert_eq!(status, 413);
        assert!(
            written < 4096 * 0x4000,
            "the server stopped reading early ({written} bytes written)"
        );

        // A body that trickles: 408 at the read deadline.
        let started = std::time::Instant::now();
        let (status, _) = raw_exchange(
            server.addr,
            head(&delivery, "content-length: 100\r\n"),
            async |w| {
                w.write_all(b"{\"type\":").await.expect("partial body");
                tokio::time::sleep(Duration::from_secs(1)).await;
                0
            },
        )
        .await;
        assert_eq!(status, 408);
        assert!(started.elapsed() >= Duration::from_millis(300));
    })
    .await
    .expect("bounded");
}
