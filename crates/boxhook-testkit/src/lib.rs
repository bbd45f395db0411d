//! Test kit for boxhook: test a Box webhook receiver without Box.
//!
//! - [`Delivery`]: a request exactly as Box sends it, signed with the core's
//!   signer, and its negative variants (tampered, stale, future, wrong key,
//!   missing or duplicated header, re-serialized body), each with the
//!   verifier's [`Expected`] answer; [`Delivery::at`] sends it to the path
//!   your app serves the webhooks at.
//! - [`fixtures`]: Box's wire-form payloads, one or more per trigger.
//! - A fixed clock: [`FixedClock`], [`Delivery::clock`], [`clock_at`].
//! - [`Simulator`]: delivers over HTTP like Box — retries anything but a 2xx
//!   on a [`RetrySchedule`], with a new delivery id, timestamp and signatures
//!   on every attempt — in real, compressed or virtual time.
//! - [`ScriptedServer`]: the far end for testing senders.
//! - [`conformance`]: the rules every idempotency store and every inbox must
//!   keep, as suites to run against your own (or a new backend's).
//! - [`worker_faults`]: the worker's promises (nothing `done` without a
//!   successful handler, one live holder per event, lost leases run again)
//!   checked while handlers fail and overrun, workers are aborted and the
//!   store misbehaves, for any inbox and worker configuration.
//!
//! The sender and the corpus live in `boxhook` (feature `runtime`,
//! [`boxhook::runtime`]); this crate re-exports them under the same names.
//! The fake of Box's webhooks API is `boxhook_admin::fake`.
//!
//! # Testing a handler or service
//!
//! Build the request, and give the service under test the delivery's keys and
//! clock:
//!
//! ```
//! use boxhook::{BodyForm, Clock, Verifier};
//! use boxhook_testkit::{fixtures, Delivery};
//!
//! let body = br#"{"type":"webhook_event","id":"e-1","trigger":"FILE.UPLOADED","source":{"id":"1","type":"file","name":"Report.pdf"}}"#;
//! let delivery = Delivery::new(&body[..]).at("/box/webhooks"); // where your app serves them
//! let request = delivery.to_request(); // http::Request<Full<Bytes>>, for tower/hyper services
//! assert_eq!(request.uri(), "/box/webhooks");
//!
//! // What the server under test would do:
//! let verifier = Verifier::new(delivery.key_ring().clone());
//! let clock = delivery.clock();
//! let verified = verifier.verify(request.headers(), body, clock.now())?;
//! assert_eq!(verified.body_form(), BodyForm::Raw);
//!
//! // Every payload of the corpus, through the same path:
//! for fixture in fixtures::all() {
//!     let delivery = fixture.delivery();
//!     assert!(verifier.verify(&delivery.headers(), &delivery.body(), delivery.now()).is_ok());
//! }
//! # Ok::<(), boxhook::VerifyError>(())
//! ```
//!
//! # Delivering to a running receiver
//!
//! ```
//! use boxhook_testkit::{sample_keys, RetrySchedule, ScriptedServer, Simulator};
//!
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! # rt.block_on(async {
//! let receiver = ScriptedServer::start([503]).await?; // stands in for yours
//! let simulator = Simulator::builder(receiver.uri(), sample_keys())
//!     .schedule(RetrySchedule::immediate(3))
//!     .build();
//! let report = simulator.send_body(r#"{"type":"webhook_event","id":"e-1"}"#).await;
//! print!("{report}"); // one line per attempt, then the outcome
//! assert_eq!(report.attempts().len(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(clippy::arithmetic_side_effects)]

pub mod conformance;
#[cfg(unix)]
pub mod fs;
pub mod pgproxy;
#[cfg(unix)]
pub mod postgres;
mod server;
pub mod worker_faults;

pub use boxhook::runtime::send::{
    sample_keys, AdvanceClock, Attempt, AttemptError, AttemptErrorKind, BoxHeader, CompressedSleep,
    Delivery, DeliveryIds, DeliveryOutcome, DeliveryReport, Expected, RealSleep, RetrySchedule,
    Simulator, SimulatorBuilder, SleepFuture, Sleeper, UnknownHeader, BOX_CONTENT_TYPE,
    BOX_TIMEOUT, BOX_USER_AGENT, DEFAULT_TIMESTAMP, FUTURE_SKEW, RESPONSE_BODY_TIMEOUT,
    SAMPLE_PRIMARY_KEY, SAMPLE_SECONDARY_KEY, STALE_AGE,
};
pub use boxhook::runtime::{fixtures, transit};
pub use boxhook_core::{Clock, FixedClock, SystemClock};
pub use server::{Received, ScriptedServer, ScriptedServerBuilder};

use boxhook_core::DeliveryTimestamp;

/// A [`FixedClock`] stopped at the instant `timestamp` names: a receiver's
/// clock at the moment a delivery arrives.
///
/// ```
/// use boxhook::runtime::send::DeliveryTimestamp;
/// use boxhook::Clock;
///
/// let ts = DeliveryTimestamp::parse("2016-07-11T10:10:33-07:00")?;
/// let clock = boxhook_testkit::clock_at(&ts);
/// assert_eq!(clock.now().to_rfc3339(), "2016-07-11T17:10:33+00:00");
/// # Ok::<(), boxhook::VerifyError>(())
/// ```
#[must_use]
pub fn clock_at(timestamp: &DeliveryTimestamp) -> FixedClock {
    FixedClock::at(timestamp.datetime().to_utc())
}
