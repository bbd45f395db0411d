//! Why `serve` answered 401: the core's diagnosis of the rejected delivery,
//! logged at debug level. The network peer only ever gets the empty 401.
//!
//! A diagnosis costs up to about thirty HMAC passes over a body of at most
//! 1 MiB, so it runs only when asked for: when debug logging is on for this
//! module (`RUST_LOG=boxhook::serve=debug`), or always in the demo.

use std::sync::Arc;

use boxhook::verify::RejectedDelivery;
use boxhook_core::diagnose::{diagnose, DiagnosisKeys, Hint};
use boxhook_core::{Clock as _, DeliveryHeaders, Printable, SystemClock};
use bytes::Bytes;
use http::Response;
use http_body_util::Full;

use super::App;

/// The keys to diagnose 401s with, and whether to do it without debug logging.
#[derive(Clone)]
pub(crate) struct Diagnoser {
    keys: Arc<DiagnosisKeys>,
    always: bool,
}

impl App {
    /// Diagnoses each 401 with `keys`: logged at debug level when that is
    /// enabled, and always computed into the log when `always` (the demo).
    pub(crate) fn diagnose_rejections(mut self, keys: DiagnosisKeys, always: bool) -> Self {
        self.diagnoser = Some(Diagnoser {
            keys: Arc::new(keys),
            always,
        });
        self
    }
}

/// Takes the rejected delivery out of `response` (it must not travel on) and,
/// when a diagnosis is wanted, returns its hints.
pub(super) fn hints(
    diagnoser: Option<&Diagnoser>,
    response: &mut Response<Full<Bytes>>,
    delivery_id: Option<&str>,
) -> Vec<Hint> {
    let Some(rejected) = response.extensions_mut().remove::<RejectedDelivery>() else {
        return Vec::new();
    };
    let Some(diagnoser) = diagnoser else {
        return Vec::new();
    };
    let debug = tracing::enabled!(tracing::Level::DEBUG);
    if !debug && !diagnoser.always {
        return Vec::new();
    }
    let Ok(headers) = DeliveryHeaders::from_header_map(rejected.headers()) else {
        return Vec::new();
    };
    let diagnosis = diagnose(
        &headers,
        rejected.body(),
        &diagnoser.keys,
        SystemClock.now(),
    );
    let hints = diagnosis.hints().to_vec();
    if debug {
        let codes: Vec<&str> = hints.iter().map(|h| h.code().as_str()).collect();
        let messages: Vec<&str> = hints.iter().map(Hint::message).collect();
        tracing::debug!(
            delivery_id = %Printable(delivery_id.unwrap_or("-")),
            hints = %codes.join(","),
            "why the delivery was rejected: {}",
            Printable(&messages.join(" | "))
        );
    }
    hints
}
