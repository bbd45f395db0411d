//! The whole tower stack, `VerifyLayer` + `Router`, driven with arbitrary
//! method, headers and body chunks.
//!
//! Half the inputs are signed by the harness with the core's `Signer` (the
//! fuzzer cannot forge an HMAC), so arbitrary bodies reach the router; the
//! rest carry whatever headers the fuzzer wrote. Properties:
//! - nothing panics, and every answer is a status from the documented table;
//! - an unsigned input is never accepted (no 2xx, no 5xx from a handler);
//! - a signed `POST` within the body limit always passes verification.
#![no_main]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use arbitrary::Arbitrary;
use boxhook::verify::Verify;
use boxhook::{DeliveryContext, HandlerError, Outcome, Router, VerifyLayer};
use boxhook_core::model::WebhookEvent;
use boxhook_core::{DeliveryTimestamp, FixedClock, Signer, Verifier};
use boxhook_fuzz::{keys, NOW, TIMESTAMP};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use tower_layer::Layer as _;
use tower_service::Service as _;

const BODY_LIMIT: usize = 4096;

#[derive(Debug, Arbitrary)]
struct Input {
    method: u8,
    sign: bool,
    /// Start from a real payload (then `chunks` only set where it is cut
    /// into frames) and overwrite some of its bytes.
    fixture: Option<u8>,
    edits: Vec<(u16, u8)>,
    headers: Vec<(u8, String)>,
    content_length: Option<u16>,
    chunks: Vec<Vec<u8>>,
}

/// Real payloads, so signed inputs reach every router branch.
const FIXTURES: [&[u8]; 6] = [
    include_bytes!("../../crates/boxhook-core/fixtures/file.uploaded.json"),
    include_bytes!("../../crates/boxhook-core/fixtures/webhook.deleted.json"),
    include_bytes!("../../crates/boxhook-core/fixtures/no_active_session.json"),
    include_bytes!("../../crates/boxhook-core/fixtures/file.renamed.non-ascii.json"),
    include_bytes!("../../crates/boxhook-core/fixtures/unknown-trigger.hub-created.json"),
    include_bytes!("../../crates/boxhook-core/fixtures/odd.ids-as-numbers.json"),
];

/// Cuts `body` into frames whose lengths follow `chunks` (the rest in one).
fn frames(body: &[u8], chunks: &[Vec<u8>]) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut rest = body;
    for chunk in chunks {
        let n = chunk.len().min(rest.len());
        let (head, tail) = rest.split_at(n);
        out.push(Bytes::copy_from_slice(head));
        rest = tail;
    }
    out.push(Bytes::copy_from_slice(rest));
    out
}

const NAMES: [&str; 9] = [
    "box-delivery-id",
    "box-delivery-timestamp",
    "box-signature-primary",
    "box-signature-secondary",
    "box-signature-version",
    "box-signature-algorithm",
    "BOX-SIGNATURE-PRIMARY",
    "content-type",
    "x-other",
];

/// A body that yields the fuzzer's chunks one frame at a time.
struct Chunks(VecDeque<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|c| Ok(http_body::Frame::data(c))))
    }
}

struct Fixed {
    runtime: tokio::runtime::Runtime,
    service: Verify<Router>,
    signer: Signer,
}

fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| {
        let clock = FixedClock::at(NOW.parse().expect("valid instant"));
        // Handlers answer by the event id so every router outcome is reached
        // (no panicking handler: libFuzzer aborts on any panic).
        let router = Router::new().fallback(|event: WebhookEvent, _: DeliveryContext| async move {
            match event.id().len() % 3 {
                0 => Ok(()),
                1 => Err(HandlerError::new("fuzz handler failure")),
                _ => Err(HandlerError::retry_later("fuzz handler retry")),
            }
        });
        Fixed {
            runtime: tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime"),
            service: VerifyLayer::new(Verifier::new(keys())).clock(clock).body_limit(BODY_LIMIT).layer(router),
            signer: Signer::new(keys()),
        }
    })
}

fuzz_target!(|input: Input| {
    let fixed = fixed();
    let method = [Method::POST, Method::GET, Method::PUT, Method::DELETE][usize::from(input.method % 4)].clone();
    let mut body: Vec<u8> = match input.fixture {
        Some(i) => FIXTURES[usize::from(i) % FIXTURES.len()].to_vec(),
        None => input.chunks.concat(),
    };
    for &(at, byte) in input.edits.iter().take(8) {
        if !body.is_empty() {
            let at = usize::from(at) % body.len();
            body[at] = byte;
        }
    }
    let mut builder = Request::builder().method(method.clone()).uri("/");
    for (name, value) in input.headers.iter().take(16) {
        builder = builder.header(NAMES[usize::from(*name) % NAMES.len()], value.as_str());
    }
    if let Some(length) = input.content_length {
        builder = builder.header("content-length", length.to_string());
    }
    let signed = input.sign;
    if signed {
        let ts = DeliveryTimestamp::parse(TIMESTAMP).expect("valid timestamp");
        for (name, value) in fixed.signer.sign(&body, &ts, "fuzz-delivery").iter() {
            builder = builder.header(name, value);
        }
    }
    let chunks = Chunks(frames(&body, &input.chunks).into());
    // Arbitrary header values may be invalid: then there is no request.
    let Ok(request) = builder.body(chunks) else { return };
    let clean_headers = signed && input.headers.is_empty() && input.content_length.is_none();

    let mut service = fixed.service.clone();
    let response = fixed.runtime.block_on(service.call(request)).expect("infallible");
    let status = response.status();
    let outcome = response.extensions().get::<Outcome>().copied();

    let table = [
        StatusCode::OK,
        StatusCode::BAD_REQUEST,
        StatusCode::UNAUTHORIZED,
        StatusCode::METHOD_NOT_ALLOWED,
        StatusCode::REQUEST_TIMEOUT,
        StatusCode::PAYLOAD_TOO_LARGE,
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::SERVICE_UNAVAILABLE,
    ];
    assert!(table.contains(&status), "status {status} is not in the table");
    if let Some(outcome) = outcome {
        assert_eq!(outcome.status(), status);
    }
    if !signed {
        assert!(outcome.is_none(), "an unsigned request reached the router: {status}");
        assert!(!status.is_success(), "an unsigned request was accepted");
    }
    if clean_headers && method == Method::POST && body.len() <= BODY_LIMIT {
        assert_ne!(status, StatusCode::UNAUTHORIZED, "a correctly signed delivery was refused");
        assert!(outcome.is_some(), "a correctly signed delivery did not reach the router");
    }
});
