//! Why the receiver answered 401: the core's diagnosis of the rejected
//! delivery, logged at debug level. The network peer only ever gets the
//! empty 401.
//!
//! A diagnosis costs up to about thirty HMAC passes over a body of at most
//! 1 MiB, so it runs only when asked for: when debug logging is on for
//! [`TARGET`] (`RUST_LOG=boxhook::serve=debug`), or, at most
//! [`MAX_DIAGNOSES_PER_SECOND`] a second, in the demo and for the dashboard.

use std::sync::Arc;

use boxhook::verify::RejectedDelivery;
use boxhook::Layer as _;
use boxhook_core::diagnose::{diagnose, DiagnosisKeys, Hint};
use boxhook_core::{Clock as _, DeliveryHeaders, Printable, SystemClock};
use bytes::Bytes;
use http::Response;
use http_body_util::Full;

use super::App;

/// The `tracing` target of the diagnoses: the one operators have been
/// told to turn on (`RUST_LOG=boxhook::serve=debug`), whichever module
/// makes them.
const TARGET: &str = "boxhook::serve::diagnosis";

/// How many 401s a second are diagnosed without debug logging (for the
/// dashboard): a flood of bad deliveries must not turn into a flood of
/// HMAC passes. Past it, a 401 is logged and shown without a hint.
pub(crate) const MAX_DIAGNOSES_PER_SECOND: u32 = 50;

/// The keys to diagnose 401s with, and whether to do it without debug logging.
#[derive(Clone)]
pub(crate) struct Diagnoser {
    keys: Arc<DiagnosisKeys>,
    always: bool,
    /// The second (since the Unix epoch) and how many diagnoses it had.
    budget: Arc<std::sync::Mutex<(i64, u32)>>,
}

impl Diagnoser {
    /// Takes one diagnosis from this second's [`MAX_DIAGNOSES_PER_SECOND`].
    fn take(&self, now: i64) -> bool {
        let Ok(mut budget) = self.budget.lock() else {
            return false;
        };
        if budget.0 != now {
            *budget = (now, 0);
        }
        if budget.1 >= MAX_DIAGNOSES_PER_SECOND {
            return false;
        }
        budget.1 = budget.1.saturating_add(1);
        true
    }
}

impl App {
    /// Diagnoses each 401 with `keys`: logged at debug level when that is
    /// enabled, and always computed into the log when `always` (the demo).
    ///
    /// When neither is the case (debug logging is decided once, at start),
    /// nothing is diagnosed and the verify layer does not keep rejected
    /// deliveries, so a flood of 401s costs no copies of their headers.
    pub(crate) fn diagnose_rejections(mut self, keys: DiagnosisKeys, always: bool) -> Self {
        if !always && !tracing::enabled!(target: TARGET, tracing::Level::DEBUG) {
            self.diagnoser = None;
            return self;
        }
        let router = self.service.get_ref().clone();
        self.service = self
            .layer
            .clone()
            .keep_rejected_delivery(true)
            .layer(router);
        self.diagnoser = Some(Diagnoser {
            keys: Arc::new(keys),
            always,
            budget: Arc::default(),
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
    let debug = tracing::enabled!(target: TARGET, tracing::Level::DEBUG);
    let now = SystemClock.now();
    let wanted = debug || (diagnoser.always && diagnoser.take(now.timestamp()));
    if !wanted {
        return Vec::new();
    }
    let Ok(headers) = DeliveryHeaders::from_header_map(rejected.headers()) else {
        return Vec::new();
    };
    let diagnosis = diagnose(&headers, rejected.body(), &diagnoser.keys, now);
    let hints = diagnosis.hints().to_vec();
    if debug {
        let codes: Vec<&str> = hints.iter().map(|h| h.code().as_str()).collect();
        let messages: Vec<&str> = hints.iter().map(Hint::message).collect();
        tracing::debug!(
            target: TARGET,
            delivery_id = %Printable(delivery_id.unwrap_or("-")),
            hints = %codes.join(","),
            "why the delivery was rejected: {}",
            Printable(&messages.join(" | "))
        );
    }
    hints
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_the_budget_per_second() {
        let Ok(keys) = DiagnosisKeys::new(Some("k"), None) else {
            panic!("diagnosis keys");
        };
        let diagnoser = Diagnoser {
            keys: Arc::new(keys),
            always: true,
            budget: Arc::default(),
        };
        let taken = (0..MAX_DIAGNOSES_PER_SECOND + 10)
            .filter(|_| diagnoser.take(100))
            .count();
        assert_eq!(taken, MAX_DIAGNOSES_PER_SECOND as usize);
        assert!(diagnoser.take(101), "a new second, a new budget");
    }
}
