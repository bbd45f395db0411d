//! The verify layer: admits only authentic, fresh Box deliveries.
//!
//! [`VerifyLayer`] wraps any tower service. For each request it
//!
//! 1. answers 405 to anything but `POST`;
//! 2. answers 413 when `Content-Length` is over the body limit, before reading
//!    a byte;
//! 3. with a [`BodyBudget`], reserves the declared `Content-Length` from it,
//!    answering 503 when the budget cannot cover it;
//! 4. collects the body with the limit enforced while streaming (413), a
//!    read deadline (408), and each frame covered by the budget (503);
//! 5. verifies the headers and the raw bytes with the core's
//!    [`Verifier`], at the time its [`Clock`] gives (401
//!    on any failure);
//! 6. calls the inner service with the collected body, and the
//!    [`Verified`](crate::Verified) proof and the layer's
//!    [`RequestClock`] in the request's extensions.
//!
//! # Memory: one budget for all bodies
//!
//! The body limit bounds one request; the memory held by bodies is the limit
//! times the requests in flight, and a crowd of slow clients can make that
//! large. A [`BodyBudget`] bounds the total: every clone of the layer shares
//! it, each request holds its body's bytes in it from the first byte read
//! until the inner service's response is ready, and a request it cannot
//! cover gets an immediate 503 ([`Rejection::Overloaded`], code
//! `overloaded`), which Box retries; nothing waits for the budget. Without a
//! budget of its own, the layer uses the [`BodyBudget`] a server such as
//! `boxhook::server` puts in the request's extensions; without either, only
//! the per-request limit applies.
//!
//! ```
//! use boxhook::verify::{BodyBudget, VerifyLayer};
//! use boxhook::{KeyRing, Verifier};
//! use boxhook::Layer;
//!
//! let verifier = Verifier::new(KeyRing::from_strs(Some("primary-key"), None)?);
//! // At most 64 MiB of bodies at once, each at most 1 MiB.
//! let layer = VerifyLayer::new(verifier)
//!     .body_limit(1024 * 1024)
//!     .body_budget(BodyBudget::new(64 * 1024 * 1024));
//! let service = layer.layer(boxhook::Router::new());
//! # let _ = service;
//! # Ok::<(), boxhook::KeyError>(())
//! ```
//!
//! Every rejection has an empty body; the reason is a [`Rejection`] in the
//! response's extensions and a `tracing` event at `warn` (with the delivery
//! id, never a secret or the body).
//!
//! ```
//! use std::time::Duration;
//! use boxhook::verify::VerifyLayer;
//! use boxhook::{KeyRing, Verifier};
//! use boxhook::Layer;
//!
//! let verifier = Verifier::new(KeyRing::from_strs(Some("primary-key"), Some("secondary-key"))?);
//! let layer = VerifyLayer::new(verifier)
//!     .body_limit(256 * 1024)
//!     .read_timeout(Duration::from_secs(5));
//! // Any service taking `http::Request<http_body_util::Full<bytes::Bytes>>`:
//! let service = layer.layer(tower_service_fn());
//! # fn tower_service_fn() -> boxhook::Router { boxhook::Router::new() }
//! # let _ = service;
//! # Ok::<(), boxhook::KeyError>(())
//! ```

mod body;
mod budget;
mod rejection;
mod service;

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use boxhook_core::{Clock, Verifier};
use bytes::Bytes;
use http_body_util::Full;

use crate::RequestClock;

/// What kind of verification failure a [`VerifyError`](crate::VerifyError)
/// is ([`VerifyError::kind`](crate::VerifyError::kind)), each with a stable
/// code for logs and metrics.
///
/// ```
/// use boxhook::verify::ErrorKind;
///
/// assert_eq!(ErrorKind::Mismatch.code(), "mismatch");
/// ```
pub use boxhook_core::ErrorKind;
pub use budget::BodyBudget;
pub use rejection::{RejectedDelivery, Rejection};
pub use service::{ResponseFuture, Verify};

/// The default body limit: 1 MiB. Real payloads are 1–8 KB (see "Retries and deduplication" in
/// docs/PROTOCOL.md).
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;
/// The default read deadline for the whole body: 10 s.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A [`Layer`](crate::Layer) that puts [`Verify`] in front of a service.
///
/// `B` is the request body type the inner service receives; it is built from
/// the collected bytes. The default, [`Full<Bytes>`], suits boxhook's
/// [`Router`](crate::Router) and most services; use
/// [`VerifyLayer::with_body`] for another (for instance axum's `Body`).
pub struct VerifyLayer<B = Full<Bytes>> {
    config: Arc<Config>,
    _body: PhantomData<fn() -> B>,
}

pub(crate) struct Config {
    pub(crate) verifier: Verifier,
    pub(crate) clock: RequestClock,
    pub(crate) body_limit: usize,
    pub(crate) read_timeout: Duration,
    pub(crate) budget: Option<BodyBudget>,
    pub(crate) keep_rejected: bool,
}

impl VerifyLayer {
    /// A layer verifying with `verifier`, the system clock, a 1 MiB body
    /// limit and a 10 s read deadline.
    #[must_use]
    pub fn new(verifier: Verifier) -> Self {
        Self {
            config: Arc::new(Config {
                verifier,
                clock: RequestClock::default(),
                body_limit: DEFAULT_BODY_LIMIT,
                read_timeout: DEFAULT_READ_TIMEOUT,
                budget: None,
                keep_rejected: false,
            }),
            _body: PhantomData,
        }
    }
}

impl<B> VerifyLayer<B> {
    fn map_config(self, f: impl FnOnce(&mut Config)) -> Self {
        let mut config = Arc::try_unwrap(self.config).unwrap_or_else(|shared| Config {
            verifier: shared.verifier.clone(),
            clock: shared.clock.clone(),
            body_limit: shared.body_limit,
            read_timeout: shared.read_timeout,
            budget: shared.budget.clone(),
            keep_rejected: shared.keep_rejected,
        });
        f(&mut config);
        Self {
            config: Arc::new(config),
            _body: PhantomData,
        }
    }

    /// The largest body accepted, in bytes (default [`DEFAULT_BODY_LIMIT`]).
    #[must_use]
    pub fn body_limit(self, bytes: usize) -> Self {
        self.map_config(|c| c.body_limit = bytes)
    }

    /// How long the whole body may take to arrive (default [`DEFAULT_READ_TIMEOUT`]).
    #[must_use]
    pub fn read_timeout(self, timeout: Duration) -> Self {
        self.map_config(|c| c.read_timeout = timeout)
    }

    /// Bounds the bytes of all bodies held at once, across every request this
    /// layer and its clones serve (default: no bound beyond
    /// [`body_limit`](Self::body_limit) per request, or the [`BodyBudget`] a
    /// server such as `boxhook::server` puts in the request's extensions). See the
    /// [module docs](self#memory-one-budget-for-all-bodies).
    ///
    /// A request reserves its `Content-Length` before reading (or, without
    /// one, each frame as it arrives) and keeps the reservation until the
    /// inner service's response is ready; when the budget cannot cover it,
    /// the answer is 503 with [`Rejection::Overloaded`] at once. Pass a clone
    /// of one budget to several layers to bound them together.
    ///
    /// ```
    /// use boxhook::verify::{BodyBudget, VerifyLayer};
    /// use boxhook::{KeyRing, Verifier};
    ///
    /// let budget = BodyBudget::new(32 * 1024 * 1024);
    /// let layer = VerifyLayer::new(Verifier::new(KeyRing::from_strs(Some("k"), None)?))
    ///     .body_budget(budget.clone());
    /// assert_eq!(budget.in_use(), 0); // nothing in flight yet
    /// # let _ = layer;
    /// # Ok::<(), boxhook::KeyError>(())
    /// ```
    #[must_use]
    pub fn body_budget(self, budget: BodyBudget) -> Self {
        self.map_config(|c| c.budget = Some(budget))
    }

    /// Whether a 401's response extensions also carry the delivery's headers
    /// and body as a [`RejectedDelivery`] (default off), for a
    /// [`diagnose`](crate::diagnose) of why it failed. The network peer never
    /// sees it; take it out of the extensions before the response is written.
    ///
    /// ```
    /// use boxhook::verify::VerifyLayer;
    /// use boxhook::{KeyRing, Verifier};
    ///
    /// let layer = VerifyLayer::new(Verifier::new(KeyRing::from_strs(Some("k"), None)?))
    ///     .keep_rejected_delivery(true);
    /// # let _ = layer;
    /// # Ok::<(), boxhook::KeyError>(())
    /// ```
    #[must_use]
    pub fn keep_rejected_delivery(self, keep: bool) -> Self {
        self.map_config(|c| c.keep_rejected = keep)
    }

    /// The receiver's clock (default the system clock): the one place its
    /// time is set.
    ///
    /// Freshness is checked against it, and it travels on in each verified
    /// request's extensions as a [`RequestClock`], which is what the
    /// [`Router`](crate::Router) claims, leases and stores with and what
    /// [`DeliveryContext::now`](crate::DeliveryContext::now) reads. A test
    /// therefore sets its fixed clock here and nowhere else.
    ///
    /// ```
    /// use boxhook::verify::VerifyLayer;
    /// use boxhook::{FixedClock, KeyRing, Verifier};
    /// use boxhook::Layer as _;
    ///
    /// let clock = FixedClock::at("2020-01-01T07:00:00Z".parse().unwrap());
    /// let service = VerifyLayer::new(Verifier::new(KeyRing::from_strs(Some("k"), None)?))
    ///     .clock(clock)
    ///     .layer(boxhook::Router::new()); // claims and leases on the same clock
    /// # let _ = service;
    /// # Ok::<(), boxhook::KeyError>(())
    /// ```
    #[must_use]
    pub fn clock(self, clock: impl Clock) -> Self {
        self.map_config(|c| c.clock = RequestClock::new(clock))
    }

    /// Hands the inner service a request body of type `B2`, built from the
    /// collected bytes.
    ///
    /// ```
    /// use boxhook::verify::VerifyLayer;
    /// use boxhook::{KeyRing, Verifier};
    ///
    /// let layer = VerifyLayer::new(Verifier::new(KeyRing::from_strs(Some("k"), None)?))
    ///     .with_body::<String>();
    /// # let _ = layer;
    /// # Ok::<(), boxhook::KeyError>(())
    /// ```
    #[must_use]
    pub fn with_body<B2>(self) -> VerifyLayer<B2> {
        VerifyLayer {
            config: self.config,
            _body: PhantomData,
        }
    }

    /// The verifier, whose [`keys`](Verifier::keys) handle rotates keys live.
    #[must_use]
    pub fn verifier(&self) -> &Verifier {
        &self.config.verifier
    }
}

impl<B> Clone for VerifyLayer<B> {
    fn clone(&self) -> Self {
        Self {
            config: Arc::clone(&self.config),
            _body: PhantomData,
        }
    }
}

impl<B> std::fmt::Debug for VerifyLayer<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyLayer")
            .field("verifier", &self.config.verifier)
            .field("body_limit", &self.config.body_limit)
            .field("read_timeout", &self.config.read_timeout)
            .field("body_budget", &self.config.budget)
            .finish_non_exhaustive()
    }
}

impl<S, B> tower_layer::Layer<S> for VerifyLayer<B> {
    type Service = Verify<S, B>;

    fn layer(&self, inner: S) -> Self::Service {
        Verify::new(inner, Arc::clone(&self.config))
    }
}
