//! The [`Simulator`]: delivers webhooks over HTTP the way Box does
//! (see "Retries and deduplication" in docs/PROTOCOL.md).

mod report;
mod schedule;
mod sleep;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use boxhook_core::{Clock, FixedClock, KeyRing, SystemClock};
use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::task::JoinSet;

use super::{Delivery, DeliveryIds};

pub use report::{Attempt, AttemptError, AttemptErrorKind, DeliveryOutcome, DeliveryReport};
pub use schedule::RetrySchedule;
pub use sleep::{AdvanceClock, CompressedSleep, RealSleep, SleepFuture, Sleeper};

/// How long Box waits for a response.
pub const BOX_TIMEOUT: Duration = Duration::from_secs(30);

/// The most response body the simulator reads (and discards) per attempt, so
/// that the connection can be reused; a larger body is dropped with its
/// connection.
const MAX_RESPONSE_BODY: usize = 1024 * 1024;

/// How long the simulator reads a response's body after its status line,
/// on top of the attempt's [timeout](SimulatorBuilder::timeout). The status
/// decides the attempt: the body is read (and discarded) only so that the
/// connection can be reused, and a body that is slower than this, or never
/// ends, is dropped with its connection. It never turns a 2xx into a
/// failure.
///
/// One second: a receiver's answer body is a few bytes sent with its
/// status, so anything still arriving a second later is not worth holding
/// the attempt (and, in `boxhook work --forward`, the event's lease) for.
///
/// ```
/// assert_eq!(boxhook::runtime::send::RESPONSE_BODY_TIMEOUT.as_secs(), 1);
/// ```
pub const RESPONSE_BODY_TIMEOUT: Duration = Duration::from_secs(1);

/// Delivers webhooks like Box: `POST`s a signed [`Delivery`], reads the
/// status, and retries anything but a 2xx — other statuses, connection
/// errors, no status line within the timeout — on a [`RetrySchedule`]. The
/// status decides: a slow or endless body after a 2xx is cut, not retried
/// ([`RESPONSE_BODY_TIMEOUT`]). Every
/// attempt has a new `BOX-DELIVERY-ID`, a fresh timestamp from the
/// simulator's [`Clock`], and fresh signatures; the body is byte-identical.
///
/// The simulator signs with its own keys, replacing the delivery's; the
/// delivery's negative variants ([`stale`](Delivery::stale),
/// [`tampered`](Delivery::tampered), ...) apply to every attempt.
///
/// Cloning is cheap and clones share one HTTP client (connection pool), id
/// source and clock: one simulator can drive thousands of concurrent
/// deliveries ([`send_many`](Self::send_many)). Plain HTTP only: point it at
/// the receiver itself, not at the TLS proxy in front of it.
///
/// # Time
///
/// Tests should not wait Box's hours. Either keep real time and shorten the
/// schedule ([`RetrySchedule::immediate`], [`RetrySchedule::compressed`],
/// [`CompressedSleep`]), or use [virtual time](SimulatorBuilder::virtual_time):
/// a [`FixedClock`] shared with the server under test, which each wait moves
/// forward instead of sleeping.
///
/// ```
/// use boxhook::{FixedClock, Verifier};
/// use boxhook::runtime::send::{sample_keys, Delivery, RetrySchedule, Simulator};
/// use boxhook_testkit::ScriptedServer; // stands in for your receiver
///
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// # rt.block_on(async {
/// let clock = FixedClock::at("2024-05-01T12:00:00Z".parse()?);
/// // A receiver that fails twice, checking every request against the shared clock.
/// let server = ScriptedServer::builder()
///     .script([500, 503])
///     .verify_with(Verifier::new(sample_keys()), clock.clone())
///     .start()
///     .await?;
///
/// let simulator = Simulator::builder(server.uri(), sample_keys())
///     .schedule(RetrySchedule::box_like())
///     .virtual_time(clock.clone())
///     .build();
/// let report = simulator.send(Delivery::new(r#"{"type":"webhook_event","id":"e-1"}"#)).await;
///
/// assert!(report.delivered());
/// let stamps: Vec<_> = report.attempts().iter().map(|a| a.timestamp().to_string()).collect();
/// assert_eq!(stamps, [
///     "2024-05-01T12:00:00+00:00", // 500
///     "2024-05-01T12:05:00+00:00", // 503, 5 min later
///     "2024-05-01T12:15:00+00:00", // 200, 10 min after that
/// ]);
/// assert!(server.received().iter().all(|r| r.verification().is_some_and(|v| v.is_ok())));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

struct Inner {
    target: Uri,
    keys: KeyRing,
    schedule: RetrySchedule,
    timeout: Duration,
    clock: Arc<dyn Clock>,
    sleeper: Arc<dyn Sleeper>,
    ids: DeliveryIds,
    on_attempt: Option<AttemptObserver>,
    client: Client<HttpConnector, Full<Bytes>>,
}

type AttemptObserver = Arc<dyn Fn(&Attempt) + Send + Sync>;

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("target", &self.inner.target)
            .field("keys", &self.inner.keys)
            .field("schedule", &self.inner.schedule)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// A simulator delivering to `target` (an `http://` URI) with `keys`, on
    /// Box's defaults: [`RetrySchedule::box_like`], a 30 s timeout, the
    /// system clock, real sleeps and random delivery ids.
    ///
    /// ```
    /// use boxhook::runtime::send::{sample_keys, Simulator};
    /// let simulator = Simulator::new("http://127.0.0.1:8080/".parse()?, sample_keys());
    /// assert_eq!(simulator.schedule().retries(), 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn new(target: Uri, keys: KeyRing) -> Self {
        Self::builder(target, keys).build()
    }

    /// A builder starting from [`new`](Self::new)'s defaults.
    pub fn builder(target: Uri, keys: KeyRing) -> SimulatorBuilder {
        SimulatorBuilder {
            target,
            keys,
            schedule: RetrySchedule::box_like(),
            timeout: BOX_TIMEOUT,
            clock: Arc::new(SystemClock),
            sleeper: Arc::new(RealSleep),
            ids: None,
            on_attempt: None,
        }
    }

    /// Where deliveries go.
    #[must_use]
    pub fn target(&self) -> &Uri {
        &self.inner.target
    }

    /// The retry schedule.
    #[must_use]
    pub fn schedule(&self) -> &RetrySchedule {
        &self.inner.schedule
    }

    /// Delivers `body` as Box would (see [`send`](Self::send)).
    ///
    /// ```
    /// use boxhook::runtime::send::*;
    /// use boxhook_testkit::ScriptedServer; // stands in for your receiver
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// # rt.block_on(async {
    /// let server = ScriptedServer::start([]).await?; // always 200
    /// let simulator = Simulator::new(server.uri(), sample_keys());
    /// assert!(simulator.send_body(r#"{"type":"webhook_event"}"#).await.delivered());
    /// assert_eq!(&server.received()[0].body()[..], br#"{"type":"webhook_event"}"#);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn send_body(&self, body: impl Into<Bytes>) -> DeliveryReport {
        self.send(Delivery::new(body)).await
    }

    /// Delivers `delivery`: attempts until one gets a 2xx or the schedule is
    /// exhausted, and reports each attempt. Never panics on network trouble:
    /// failures are in the report.
    ///
    /// The delivery's keys, URI, timestamp and delivery id are replaced by the
    /// simulator's for every attempt (Box chooses those); everything else —
    /// body, negative variants — is kept.
    ///
    /// ```
    /// use boxhook::runtime::send::*;
    /// use boxhook_testkit::ScriptedServer; // stands in for your receiver
    /// # use boxhook::verify::ErrorKind;
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// # rt.block_on(async {
    /// let server = ScriptedServer::start([401]).await?;
    /// let simulator = Simulator::builder(server.uri(), sample_keys())
    ///     .schedule(RetrySchedule::none())
    ///     .build();
    /// let report = simulator.send(Delivery::new("{}").tampered()).await;
    /// assert_eq!(report.outcome(), DeliveryOutcome::GaveUp);
    /// assert_eq!(report.attempts()[0].expected(), Expected::Rejected(ErrorKind::Mismatch));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn send(&self, delivery: Delivery) -> DeliveryReport {
        let inner = &*self.inner;
        let template = delivery.keys(inner.keys.clone()).uri(inner.target.clone());
        let mut attempts = Vec::with_capacity(inner.schedule.attempts());
        for number in 1..=inner.schedule.attempts() {
            let waited = inner
                .schedule
                .delay_before_retry(number.saturating_sub(1))
                .unwrap_or_default();
            if number > 1 {
                inner.sleeper.sleep(waited).await;
            }
            let prepared = template
                .clone()
                .sent_at(inner.clock.now())
                .delivery_id(inner.ids.next_id())
                .prepare();
            let mut request = Request::new(Full::new(prepared.body));
            *request.method_mut() = Method::POST;
            *request.uri_mut() = inner.target.clone();
            *request.headers_mut() = prepared.headers;

            let started = Instant::now();
            let result = inner.attempt(request).await;
            let done = result.as_ref().is_ok_and(StatusCode::is_success);
            let attempt = Attempt {
                number,
                delivery_id: prepared.delivery_id,
                timestamp: prepared.timestamp,
                waited,
                elapsed: started.elapsed(),
                expected: prepared.expected,
                result,
            };
            if let Some(observe) = &inner.on_attempt {
                observe(&attempt);
            }
            attempts.push(attempt);
            if done {
                break;
            }
        }
        DeliveryReport { attempts }
    }

    /// Delivers every delivery, at most `concurrency` at a time (0 counts as
    /// 1), each on its own task with its own retries. Reports come back in
    /// the order of `deliveries`. Needs a tokio runtime; connections are
    /// pooled and reused.
    ///
    /// # Panics
    ///
    /// Only if a delivery task panics, which would be a bug in the kit; the
    /// panic is passed on.
    ///
    /// ```
    /// use boxhook::runtime::send::*;
    /// use boxhook_testkit::ScriptedServer; // stands in for your receiver
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// # rt.block_on(async {
    /// let server = ScriptedServer::start([]).await?;
    /// let simulator = Simulator::new(server.uri(), sample_keys());
    /// let bodies = (0..100).map(|i| Delivery::new(format!(r#"{{"id":"{i}"}}"#)));
    /// let reports = simulator.send_many(bodies, 16).await;
    /// assert_eq!(reports.len(), 100);
    /// assert!(reports.iter().all(DeliveryReport::delivered));
    /// assert_eq!(server.received().len(), 100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn send_many(
        &self,
        deliveries: impl IntoIterator<Item = Delivery>,
        concurrency: usize,
    ) -> Vec<DeliveryReport> {
        let limit = concurrency.max(1);
        let mut tasks = JoinSet::new();
        let mut reports: Vec<Option<DeliveryReport>> = Vec::new();
        let store = |joined: Result<(usize, DeliveryReport), tokio::task::JoinError>,
                     reports: &mut Vec<Option<DeliveryReport>>| {
            match joined {
                Ok((index, report)) => reports[index] = Some(report),
                Err(err) => std::panic::resume_unwind(err.into_panic()),
            }
        };
        for (index, delivery) in deliveries.into_iter().enumerate() {
            reports.push(None);
            while tasks.len() >= limit {
                if let Some(joined) = tasks.join_next().await {
                    store(joined, &mut reports);
                }
            }
            let simulator = self.clone();
            tasks.spawn(async move { (index, simulator.send(delivery).await) });
        }
        while let Some(joined) = tasks.join_next().await {
            store(joined, &mut reports);
        }
        reports.into_iter().flatten().collect()
    }
}

impl Inner {
    /// One request: the status, or why there was none.
    ///
    /// The status line and headers must arrive within the timeout; the
    /// body then has its own bounds ([`MAX_RESPONSE_BODY`],
    /// [`RESPONSE_BODY_TIMEOUT`]) and does not change the result.
    async fn attempt(&self, request: Request<Full<Bytes>>) -> Result<StatusCode, AttemptError> {
        let response = match tokio::time::timeout(self.timeout, self.client.request(request)).await
        {
            Ok(Ok(response)) => response,
            Ok(Err(err)) => {
                let kind = if err.is_connect() {
                    AttemptErrorKind::Connect
                } else {
                    AttemptErrorKind::Request
                };
                return Err(AttemptError::new(kind, describe(&err)));
            }
            Err(_) => {
                return Err(AttemptError::new(
                    AttemptErrorKind::Timeout,
                    format!("no response within {} ms", self.timeout.as_millis()),
                ))
            }
        };
        let status = response.status();
        // Read the body so the connection returns to the pool; its content
        // does not matter to Box. Too large or too slow: dropped, and the
        // connection with it.
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BODY).collect();
        let _ = tokio::time::timeout(RESPONSE_BODY_TIMEOUT, body).await;
        Ok(status)
    }
}

/// An error and its sources, joined: hyper's top-level messages alone
/// ("client error (Connect)") do not say what happened.
fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Builds a [`Simulator`]; see [`Simulator::builder`].
///
/// ```
/// use std::time::Duration;
/// use boxhook::FixedClock;
/// use boxhook::runtime::send::{sample_keys, DeliveryIds, RetrySchedule, Simulator};
///
/// let simulator = Simulator::builder("http://127.0.0.1:8080/".parse()?, sample_keys())
///     .schedule(RetrySchedule::fixed(3, Duration::from_secs(60)))
///     .timeout(Duration::from_secs(2))
///     .virtual_time(FixedClock::at("2024-01-01T00:00:00Z".parse()?))
///     .ids(DeliveryIds::seeded(42))
///     .build();
/// assert_eq!(simulator.schedule().attempts(), 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub struct SimulatorBuilder {
    target: Uri,
    keys: KeyRing,
    schedule: RetrySchedule,
    timeout: Duration,
    clock: Arc<dyn Clock>,
    sleeper: Arc<dyn Sleeper>,
    ids: Option<DeliveryIds>,
    on_attempt: Option<AttemptObserver>,
}

impl fmt::Debug for SimulatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatorBuilder")
            .field("target", &self.target)
            .field("keys", &self.keys)
            .field("schedule", &self.schedule)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SimulatorBuilder {
    /// The retry schedule (default [`RetrySchedule::box_like`]).
    pub fn schedule(mut self, schedule: RetrySchedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// How long an attempt may take until the response's status line and
    /// headers, connecting included, before it counts as failed (default
    /// [`BOX_TIMEOUT`], 30 s). Real time, whatever the sleeper. The body
    /// after them is read for at most [`RESPONSE_BODY_TIMEOUT`] more and
    /// never fails the attempt.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Where timestamps come from (default the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How the schedule's waits are spent (default [`RealSleep`]).
    pub fn sleeper(mut self, sleeper: impl Sleeper) -> Self {
        self.sleeper = Arc::new(sleeper);
        self
    }

    /// Virtual time: timestamps from `clock`, and each wait advances `clock`
    /// instead of sleeping ([`AdvanceClock`]). Share the clock with the server
    /// under test.
    pub fn virtual_time(self, clock: FixedClock) -> Self {
        self.sleeper(AdvanceClock::new(clock.clone())).clock(clock)
    }

    /// Where delivery ids come from (default [`DeliveryIds::random`]); a
    /// seeded source makes runs repeatable.
    pub fn ids(mut self, ids: DeliveryIds) -> Self {
        self.ids = Some(ids);
        self
    }

    /// Calls `observer` after every attempt, as it happens: for progress
    /// output while a real-time schedule runs for hours.
    ///
    /// ```
    /// use boxhook::runtime::send::*;
    /// use boxhook_testkit::ScriptedServer; // stands in for your receiver
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// # rt.block_on(async {
    /// let server = ScriptedServer::start([500]).await?;
    /// let simulator = Simulator::builder(server.uri(), sample_keys())
    ///     .schedule(RetrySchedule::immediate(1))
    ///     .on_attempt(|attempt| eprintln!("{attempt}"))
    ///     .build();
    /// simulator.send_body("{}").await;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_attempt(mut self, observer: impl Fn(&Attempt) + Send + Sync + 'static) -> Self {
        self.on_attempt = Some(Arc::new(observer));
        self
    }

    /// The simulator, with a fresh connection pool.
    pub fn build(self) -> Simulator {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(self.timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Simulator {
            inner: Arc::new(Inner {
                target: self.target,
                keys: self.keys,
                schedule: self.schedule,
                timeout: self.timeout,
                clock: self.clock,
                sleeper: self.sleeper,
                ids: self.ids.unwrap_or_else(DeliveryIds::random),
                on_attempt: self.on_attempt,
                client,
            }),
        }
    }
}
