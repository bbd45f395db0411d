//! The Box-like sender: a [`Delivery`] is one request exactly as Box sends
//! it (signed with the core's signer, the six Box headers, Box's
//! `User-Agent`), with its negative variants and the verifier's
//! [`Expected`] answer; the [`Simulator`] delivers it over HTTP and retries
//! like Box on a [`RetrySchedule`], with a new delivery id, timestamp and
//! signatures on every attempt.
//!
//! ```
//! use boxhook::runtime::send::{sample_keys, Delivery, RetrySchedule, Simulator};
//! use boxhook_testkit::ScriptedServer; // stands in for your receiver
//!
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! # rt.block_on(async {
//! let receiver = ScriptedServer::start([503]).await?; // 503, then 200
//! let simulator = Simulator::builder(receiver.uri(), sample_keys())
//!     .schedule(RetrySchedule::immediate(3))
//!     .build();
//! let report = simulator.send(Delivery::new(r#"{"type":"webhook_event","id":"e-1"}"#)).await;
//! print!("{report}"); // one line per attempt, then the outcome
//! assert_eq!(report.attempts().len(), 2);
//! assert!(report.delivered());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod delivery;
mod expected;
mod header;
mod ids;
pub(crate) mod reserialize;
mod simulator;

/// The `BOX-DELIVERY-TIMESTAMP` value, as [`Delivery::timestamp`] takes it
/// and [`Attempt::timestamp`] reports it.
///
/// ```
/// use boxhook::runtime::send::DeliveryTimestamp;
///
/// let ts = DeliveryTimestamp::parse("2016-07-11T10:10:33-07:00")?;
/// assert_eq!(ts.datetime().to_utc().to_rfc3339(), "2016-07-11T17:10:33+00:00");
/// # Ok::<(), boxhook::VerifyError>(())
/// ```
pub use boxhook_core::DeliveryTimestamp;
pub use delivery::{
    sample_keys, Delivery, BOX_CONTENT_TYPE, BOX_USER_AGENT, DEFAULT_TIMESTAMP, FUTURE_SKEW,
    SAMPLE_PRIMARY_KEY, SAMPLE_SECONDARY_KEY, STALE_AGE,
};
pub use expected::Expected;
pub use header::{BoxHeader, UnknownHeader};
pub use ids::DeliveryIds;
pub use simulator::{
    AdvanceClock, Attempt, AttemptError, AttemptErrorKind, CompressedSleep, DeliveryOutcome,
    DeliveryReport, RealSleep, RetrySchedule, Simulator, SimulatorBuilder, SleepFuture, Sleeper,
    BOX_TIMEOUT, RESPONSE_BODY_TIMEOUT,
};
