//! What the simulator reports: one [`Attempt`] per request sent, gathered in a
//! [`DeliveryReport`].

use std::fmt;
use std::time::Duration;

use boxhook_core::DeliveryTimestamp;
use http::StatusCode;

use crate::runtime::send::Expected;

/// One request the simulator sent.
///
/// Its `Display` is one line, for command-line output:
///
/// ```
/// use boxhook::runtime::send::*;
/// use boxhook_testkit::ScriptedServer; // stands in for your receiver
/// # use std::time::Duration;
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// # rt.block_on(async {
/// let server = ScriptedServer::start([503, 200]).await?;
/// let simulator = Simulator::builder(server.uri(), sample_keys())
///     .schedule(RetrySchedule::immediate(3))
///     .ids(DeliveryIds::seeded(1))
///     .build();
/// let report = simulator.send(Delivery::new("{}")).await;
/// let first = &report.attempts()[0];
/// assert_eq!(first.number(), 1);
/// assert_eq!(first.status().map(|s| s.as_u16()), Some(503));
/// assert!(first.to_string().starts_with("attempt 1: 503 Service Unavailable (delivery id "));
/// assert_eq!(report.attempts()[1].waited(), Duration::ZERO);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Attempt {
    pub(crate) number: usize,
    pub(crate) delivery_id: String,
    pub(crate) timestamp: DeliveryTimestamp,
    pub(crate) waited: Duration,
    pub(crate) elapsed: Duration,
    pub(crate) expected: Expected,
    pub(crate) result: Result<StatusCode, AttemptError>,
}

impl Attempt {
    /// 1 for the first attempt, 2 for the first retry, ...
    #[must_use]
    pub fn number(&self) -> usize {
        self.number
    }

    /// The `BOX-DELIVERY-ID` sent: new on every attempt.
    #[must_use]
    pub fn delivery_id(&self) -> &str {
        &self.delivery_id
    }

    /// The `BOX-DELIVERY-TIMESTAMP` sent: fresh on every attempt.
    #[must_use]
    pub fn timestamp(&self) -> &DeliveryTimestamp {
        &self.timestamp
    }

    /// The schedule's wait before this attempt (zero for the first).
    #[must_use]
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// Real time from sending the request to reading the whole response.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// What a default verifier with the simulator's keys should have answered
    /// at the attempt's time (see [`Delivery::expected`](crate::runtime::send::Delivery::expected)).
    #[must_use]
    pub fn expected(&self) -> Expected {
        self.expected
    }

    /// The response status, or why there was none.
    pub fn result(&self) -> Result<StatusCode, &AttemptError> {
        self.result.as_ref().copied()
    }

    /// The response status, if a response came.
    #[must_use]
    pub fn status(&self) -> Option<StatusCode> {
        self.result.as_ref().ok().copied()
    }

    /// Whether Box would count this attempt a success: a 2xx in time.
    #[must_use]
    pub fn succeeded(&self) -> bool {
        self.status().is_some_and(|s| s.is_success())
    }
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "attempt {}: ", self.number)?;
        match &self.result {
            Ok(status) => write!(f, "{status}")?,
            Err(err) => write!(f, "{err}")?,
        }
        write!(
            f,
            " (delivery id {}, timestamp {}",
            self.delivery_id, self.timestamp
        )?;
        if !self.waited.is_zero() {
            write!(f, ", after waiting {} s", self.waited.as_secs())?;
        }
        f.write_str(")")
    }
}

/// Why an attempt got no response.
///
/// ```
/// use boxhook::runtime::send::*;
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// # rt.block_on(async {
/// // A port nothing listens on.
/// let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
/// let target = format!("http://127.0.0.1:{port}/").parse()?;
/// let simulator = Simulator::builder(target, sample_keys()).schedule(RetrySchedule::none()).build();
/// let report = simulator.send(Delivery::new("{}")).await;
/// let err = report.attempts()[0].result().unwrap_err();
/// assert_eq!(err.kind(), AttemptErrorKind::Connect);
/// assert!(err.is_connect());
/// assert!(err.to_string().starts_with("could not connect"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptError {
    kind: AttemptErrorKind,
    detail: String,
}

/// The kinds of [`AttemptError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttemptErrorKind {
    /// No connection could be made (refused, unreachable, bad target URI).
    Connect,
    /// No complete response within the timeout (Box allows 30 s).
    Timeout,
    /// The connection failed after it was made (reset, malformed response).
    Request,
}

impl AttemptError {
    pub(crate) fn new(kind: AttemptErrorKind, detail: String) -> Self {
        Self { kind, detail }
    }

    /// The kind of failure.
    #[must_use]
    pub fn kind(&self) -> AttemptErrorKind {
        self.kind
    }

    /// Whether no connection could be made.
    #[must_use]
    pub fn is_connect(&self) -> bool {
        self.kind == AttemptErrorKind::Connect
    }

    /// Whether the response did not come in time.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        self.kind == AttemptErrorKind::Timeout
    }
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            AttemptErrorKind::Connect => write!(f, "could not connect: {}", self.detail),
            AttemptErrorKind::Timeout => write!(f, "no response: {}", self.detail),
            AttemptErrorKind::Request => write!(f, "request failed: {}", self.detail),
        }
    }
}

impl std::error::Error for AttemptError {}

/// Everything that happened to one delivery: each attempt, in order.
///
/// ```
/// use boxhook::runtime::send::*;
/// use boxhook_testkit::ScriptedServer; // stands in for your receiver
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// # rt.block_on(async {
/// let server = ScriptedServer::start([500, 200]).await?;
/// let simulator = Simulator::builder(server.uri(), sample_keys())
///     .schedule(RetrySchedule::immediate(5))
///     .build();
/// let report = simulator.send(Delivery::new("{}")).await;
/// assert!(report.delivered());
/// assert_eq!(report.attempts().len(), 2);
/// assert!(matches!(report.outcome(), DeliveryOutcome::Delivered { status } if status == 200));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct DeliveryReport {
    pub(crate) attempts: Vec<Attempt>,
}

/// How a delivery ended ([`DeliveryReport::outcome`]).
///
/// ```
/// use boxhook::runtime::send::*;
/// use boxhook_testkit::ScriptedServer; // stands in for your receiver
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// # rt.block_on(async {
/// let server = ScriptedServer::start([500, 500]).await?;
/// let simulator = Simulator::builder(server.uri(), sample_keys())
///     .schedule(RetrySchedule::immediate(1))
///     .build();
/// let report = simulator.send(Delivery::new("{}")).await;
/// assert_eq!(report.outcome(), DeliveryOutcome::GaveUp);
/// assert_eq!(report.to_string().lines().last(), Some("gave up after 2 attempt(s)"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// An attempt got this 2xx; no more were made.
    Delivered {
        /// The 2xx status.
        status: StatusCode,
    },
    /// Every attempt the schedule allows failed.
    GaveUp,
}

impl DeliveryReport {
    /// Every attempt, first to last.
    #[must_use]
    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }

    /// The last attempt.
    #[must_use]
    pub fn last(&self) -> Option<&Attempt> {
        self.attempts.last()
    }

    /// How the delivery ended.
    #[must_use]
    pub fn outcome(&self) -> DeliveryOutcome {
        match self.last().and_then(Attempt::status) {
            Some(status) if status.is_success() => DeliveryOutcome::Delivered { status },
            _ => DeliveryOutcome::GaveUp,
        }
    }

    /// Whether an attempt got a 2xx.
    #[must_use]
    pub fn delivered(&self) -> bool {
        matches!(self.outcome(), DeliveryOutcome::Delivered { .. })
    }
}

impl fmt::Display for DeliveryReport {
    /// One line per attempt, then the outcome.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for attempt in &self.attempts {
            writeln!(f, "{attempt}")?;
        }
        match self.outcome() {
            DeliveryOutcome::Delivered { status } => write!(
                f,
                "delivered ({status}) after {} attempt(s)",
                self.attempts.len()
            ),
            DeliveryOutcome::GaveUp => {
                write!(f, "gave up after {} attempt(s)", self.attempts.len())
            }
        }
    }
}
