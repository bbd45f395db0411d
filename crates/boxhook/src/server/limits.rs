//! [`Limits`]: the bounds on each connection, and on how many are held.

use std::time::Duration;

/// How many connections are held at once unless told otherwise.
///
/// ```
/// assert_eq!(boxhook::server::DEFAULT_MAX_CONNECTIONS, 1024);
/// ```
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// How long a request head may take to arrive unless told otherwise: 5 s,
/// well under the 30 s Box waits for an answer.
///
/// ```
/// assert_eq!(boxhook::server::DEFAULT_HEADER_TIMEOUT.as_secs(), 5);
/// ```
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a connection may go with no request in flight unless told
/// otherwise: 5 s.
///
/// ```
/// assert_eq!(boxhook::server::DEFAULT_IDLE_TIMEOUT.as_secs(), 5);
/// ```
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a connection may stay open in all unless told otherwise: 300 s.
///
/// ```
/// assert_eq!(boxhook::server::DEFAULT_MAX_AGE.as_secs(), 300);
/// ```
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);

/// How many requests one connection may make unless told otherwise.
///
/// ```
/// assert_eq!(boxhook::server::DEFAULT_MAX_REQUESTS, 1000);
/// ```
pub const DEFAULT_MAX_REQUESTS: u64 = 1000;

/// How many body bytes the server's [`BodyBudget`](crate::verify::BodyBudget)
/// lets the verify layers behind it buffer at once, across all connections,
/// unless told otherwise: 64 MiB, 64 bodies at the 1 MiB body limit,
/// thousands of real 1–8 KB deliveries.
///
/// ```
/// assert_eq!(boxhook::server::DEFAULT_BODY_BUDGET, 64 * 1024 * 1024);
/// ```
pub const DEFAULT_BODY_BUDGET: usize = 64 * 1024 * 1024;

/// hyper's per-connection buffer bound, in bytes: a request head must fit
/// in it, and body bytes pass through it on their way to the service.
///
/// ```
/// assert_eq!(boxhook::server::MAX_BUF_SIZE, 16 * 1024);
/// ```
pub const MAX_BUF_SIZE: usize = 16 * 1024;

/// How long a new connection that has not yet made a request is safe from
/// being shed for a newcomer: time to send its request head.
///
/// Without it, clients reconnecting in a loop (each shed connection coming
/// straight back and shedding the next) cut every other connection within
/// a few connection-times of its accept, before its request could be read:
/// a health probe, or Box's delivery, got a reset. With it, at the limit
/// newcomers wait in the listen backlog, first come first served, while
/// the connections ahead of them have their chance.
///
/// ```
/// assert_eq!(boxhook::server::SHED_GRACE.as_millis(), 200);
/// ```
pub const SHED_GRACE: Duration = Duration::from_millis(200);

/// The bounds on each connection, and on how many are held at once; see the
/// [module docs](super) for how each is applied.
///
/// Every field is public, so a set of limits can be a `const`; the
/// [`Default`] is [`Limits::DEFAULT`]. A `max_connections` or
/// `max_requests` of 0 is taken as 1.
///
/// ```
/// use std::time::Duration;
/// use boxhook::server::Limits;
///
/// const ADMIN: Limits = Limits {
///     max_connections: 32,
///     header_timeout: Duration::from_secs(2),
///     ..Limits::DEFAULT
/// };
/// assert_eq!(ADMIN.idle_timeout, Duration::from_secs(5));
/// assert_eq!(Limits::default(), Limits::DEFAULT);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Connections held at once before the oldest idle one is closed to
    /// make room for a new one (default [`DEFAULT_MAX_CONNECTIONS`]).
    pub max_connections: usize,
    /// How long a request head may take to arrive, counted from when the
    /// connection is accepted or its previous answer was made (default
    /// [`DEFAULT_HEADER_TIMEOUT`]).
    pub header_timeout: Duration,
    /// How long a connection may go with no request in flight (default
    /// [`DEFAULT_IDLE_TIMEOUT`]).
    pub idle_timeout: Duration,
    /// How long a connection may stay open in all; it closes once its
    /// request in flight, if any, is answered (default [`DEFAULT_MAX_AGE`]).
    pub max_age: Duration,
    /// How many requests a connection may make; the answer to the last one
    /// closes it (default [`DEFAULT_MAX_REQUESTS`]).
    pub max_requests: u64,
}

impl Limits {
    /// The defaults: [`DEFAULT_MAX_CONNECTIONS`], [`DEFAULT_HEADER_TIMEOUT`],
    /// [`DEFAULT_IDLE_TIMEOUT`], [`DEFAULT_MAX_AGE`] and
    /// [`DEFAULT_MAX_REQUESTS`].
    ///
    /// ```
    /// use boxhook::server::Limits;
    ///
    /// assert_eq!(Limits::DEFAULT.max_connections, 1024);
    /// assert_eq!(Limits::DEFAULT.max_requests, 1000);
    /// ```
    pub const DEFAULT: Self = Self {
        max_connections: DEFAULT_MAX_CONNECTIONS,
        header_timeout: DEFAULT_HEADER_TIMEOUT,
        idle_timeout: DEFAULT_IDLE_TIMEOUT,
        max_age: DEFAULT_MAX_AGE,
        max_requests: DEFAULT_MAX_REQUESTS,
    };

    /// These limits with a `max_connections` and `max_requests` of at least 1.
    pub(super) fn at_least_one(self) -> Self {
        Self {
            max_connections: self.max_connections.max(1),
            max_requests: self.max_requests.max(1),
            ..self
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
