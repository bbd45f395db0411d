//! `--forward`: POST each event, signed as Box signs it.

use std::time::Duration;

use boxhook::runtime::send::{Delivery, RetrySchedule, Simulator};
use boxhook::HandlerError;
use boxhook_core::KeyRing;
use bytes::Bytes;

/// A one-attempt sender to the forward URL: each attempt gets a fresh
/// timestamp, signature and delivery id, exactly as `boxhook send` makes
/// them.
pub(super) struct Forward {
    simulator: Simulator,
}

impl Forward {
    pub(super) fn new(url: &str, keys: KeyRing, timeout: Duration) -> anyhow::Result<Self> {
        let target = crate::send::target_uri(url).map_err(|err| {
            crate::usage(format!(
                "--forward: {}",
                err.to_string().trim_start_matches("--to ")
            ))
        })?;
        Ok(Self {
            simulator: Simulator::builder(target, keys)
                .schedule(RetrySchedule::none())
                .timeout(timeout)
                .build(),
        })
    }

    /// Sends `body` (a V2 event's stored body, or a V1 callback's JSON
    /// document): Ok when the endpoint answered 2xx. The status line
    /// decides: the answer's body is read for at most
    /// [`RESPONSE_BODY_TIMEOUT`](boxhook::runtime::send::RESPONSE_BODY_TIMEOUT)
    /// more, and a slow or endless one is dropped, never retried.
    pub(super) async fn run(&self, body: Bytes) -> Result<(), HandlerError> {
        let report = self.simulator.send(Delivery::new(body)).await;
        match report.last().map(boxhook::runtime::send::Attempt::result) {
            Some(Ok(status)) if status.is_success() => Ok(()),
            Some(Ok(status)) => Err(HandlerError::new(format!(
                "the forward URL answered {status}"
            ))),
            Some(Err(err)) => Err(HandlerError::new(format!("forwarding failed: {err}"))),
            None => Err(HandlerError::new("forwarding made no attempt")),
        }
    }
}
