//! [`RequestClock`]: the one clock a receiver reads the time from.

use std::fmt;
use std::sync::Arc;

use boxhook_core::{Clock, SystemClock};
use chrono::{DateTime, Utc};

/// The receiver's clock, handed down the stack in each verified request's
/// extensions.
///
/// [`VerifyLayer::clock`](crate::VerifyLayer::clock) is the one place a
/// receiver's time is set. The layer checks freshness against it and then
/// inserts it into the request next to the
/// [`Verified`](crate::Verified) proof; everything behind the layer
/// reads the time from the request: the [`Router`](crate::Router) (claims and
/// their leases in the idempotency store, `received_at` for
/// [`Router::store_in`](crate::Router::store_in)) and handlers, through
/// [`DeliveryContext::now`](crate::DeliveryContext::now) (which
/// [`StoreInInbox`](crate::inbox::StoreInInbox) uses). So one delivery is
/// never verified at one time and claimed or stored at another.
///
/// A request that carries none (a service that inserts its own `Verified`
/// without the layer) is timed with the system clock.
///
/// Your own services behind [`VerifyLayer`](crate::VerifyLayer) can read it
/// the same way:
///
/// ```
/// use boxhook::RequestClock;
/// use boxhook::{Clock as _, FixedClock};
///
/// fn received_at<B>(request: &http::Request<B>) -> chrono::DateTime<chrono::Utc> {
///     request.extensions().get::<RequestClock>().cloned().unwrap_or_default().now()
/// }
///
/// let at = "2020-01-01T07:00:00Z".parse().unwrap();
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(RequestClock::new(FixedClock::at(at)));
/// assert_eq!(received_at(&request), at);
/// assert_ne!(received_at(&http::Request::new(())), at); // the system clock
/// ```
#[derive(Clone)]
pub struct RequestClock {
    clock: Arc<dyn Clock>,
}

impl RequestClock {
    /// Wraps `clock`.
    ///
    /// ```
    /// use boxhook::RequestClock;
    /// use boxhook::{Clock as _, FixedClock};
    ///
    /// let at = "2020-01-01T07:00:00Z".parse().unwrap();
    /// assert_eq!(RequestClock::new(FixedClock::at(at)).now(), at);
    /// ```
    #[must_use]
    pub fn new(clock: impl Clock) -> Self {
        Self {
            clock: Arc::new(clock),
        }
    }

    /// Wraps a clock that is shared already.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use boxhook::RequestClock;
    /// use boxhook::{Clock, FixedClock};
    ///
    /// let at = "2020-01-01T07:00:00Z".parse().unwrap();
    /// let shared: Arc<dyn Clock> = Arc::new(FixedClock::at(at));
    /// assert_eq!(RequestClock::from_shared(shared).now(), at);
    /// ```
    #[must_use]
    pub fn from_shared(clock: Arc<dyn Clock>) -> Self {
        Self { clock }
    }
}

impl Default for RequestClock {
    /// The system clock.
    fn default() -> Self {
        Self::new(SystemClock)
    }
}

impl Clock for RequestClock {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

impl fmt::Debug for RequestClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestClock")
            .field("now", &self.clock.now())
            .finish()
    }
}
