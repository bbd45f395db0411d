//! The sending side, for tools and tests (feature `runtime`): deliver
//! webhooks the way Box does, from Box's own payloads or from an inbox.
//!
//! - [`send`]: a [`Delivery`](send::Delivery) is one request exactly as Box
//!   sends it, with its negative variants (tampered, stale, wrong key, ...)
//!   and what the verifier answers; the [`Simulator`](send::Simulator)
//!   `POST`s it and retries anything but a 2xx on Box's
//!   [schedule](send::RetrySchedule), with a new delivery id, timestamp and
//!   signatures on every attempt.
//! - [`fixtures`]: Box's wire-form payloads, one or more per trigger.
//! - [`replay`]: re-send stored events from an [`Inbox`](crate::inbox::Inbox).
//! - [`transit`]: what proxies and frameworks do to a body on the way (for
//!   testing the [`diagnose`](crate::diagnose) hints).
//!
//! The test kit (`boxhook-testkit`) re-exports [`send`] and [`fixtures`] at
//! its root, beside a scripted receiver and the conformance suites.
//!
//! ```
//! use boxhook::runtime::fixtures;
//! use boxhook::runtime::send::{sample_keys, RetrySchedule, Simulator};
//! use boxhook_testkit::ScriptedServer; // stands in for your receiver
//!
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! # rt.block_on(async {
//! let receiver = ScriptedServer::start([]).await?;
//! let simulator = Simulator::builder(receiver.uri(), sample_keys())
//!     .schedule(RetrySchedule::box_like().compressed(60_000)) // 7 h 15 min in 435 ms
//!     .build();
//! let upload = fixtures::get("file.uploaded").expect("in the corpus");
//! let report = simulator.send(upload.delivery()).await;
//! assert!(report.delivered());
//! assert_eq!(&receiver.received()[0].body()[..], upload.body());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod fixtures;
pub mod replay;
pub mod send;
pub mod transit;
