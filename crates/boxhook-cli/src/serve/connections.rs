//! Connection management for `serve`: how many connections are held, for
//! how long, and which one gives way when a new one arrives at the limit.
//!
//! A connection is *busy* while a request is in flight: from the moment its
//! head has been read and handed to the service until the service answers.
//! Otherwise it is *idle*: waiting for or reading a request head, or writing
//! out an answer already made. Only idle connections are ever cut short:
//!
//! - at the connection limit, a new connection is still accepted, and the
//!   oldest idle connection is closed to make room; only when every
//!   connection is busy does a new one wait in the listen backlog (busy ones
//!   finish within the body read deadline and the handler deadline);
//! - a connection idle for `idle_timeout` is closed, as is one that has not
//!   sent a complete request head within `header_timeout` (hyper's timer,
//!   started when the connection is accepted and after each answer);
//! - a connection older than `max_age`, or that has made `max_requests`
//!   requests, closes once its request in flight (if any) is answered;
//! - every answer other than a 2xx closes its connection;
//! - on stop, idle connections close at once, busy ones after their answer.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION};
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::App;

/// hyper's per-connection buffer bound, in bytes: a request head must fit
/// in it, and body bytes pass through it on their way to the verify layer.
pub(crate) const MAX_BUF_SIZE: usize = 16 * 1024;

/// The bounds on each connection, and on how many are held at once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Connections held at once before the oldest idle one is closed.
    pub(crate) max_connections: usize,
    /// How long a request head may take to arrive, counted from when the
    /// connection is accepted or its previous answer was made.
    pub(crate) header_timeout: Duration,
    /// How long a connection may go with no request in flight.
    pub(crate) idle_timeout: Duration,
    /// How long a connection may stay open in all.
    pub(crate) max_age: Duration,
    /// How many requests a connection may make; the last answer closes it.
    pub(crate) max_requests: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: super::DEFAULT_MAX_CONNECTIONS,
            header_timeout: Duration::from_secs(super::DEFAULT_HEADER_TIMEOUT_SECS),
            idle_timeout: Duration::from_secs(super::DEFAULT_IDLE_TIMEOUT_SECS),
            max_age: Duration::from_secs(super::DEFAULT_MAX_AGE_SECS),
            max_requests: super::DEFAULT_MAX_REQUESTS,
        }
    }
}

/// Locks `mutex`, going on with the data if a holder panicked: every update
/// below is a single assignment, so the data is never half-written.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where one connection is in its life.
#[derive(Debug)]
struct Phase {
    /// A request has been handed to the service and not yet answered.
    in_flight: bool,
    /// Requests handed to the service so far.
    requests: u64,
    /// When the connection last became idle (accepted, or last answer made).
    idle_since: Instant,
    /// Asked to close (shed to make room, or stopping).
    close: bool,
}

/// One accepted connection, shared by its task, its service and the tracker.
#[derive(Debug)]
struct Conn {
    accepted_at: Instant,
    phase: Mutex<Phase>,
    /// Wakes the connection's task to look at its phase again.
    wake: Notify,
}

impl Conn {
    fn new(now: Instant) -> Self {
        Self {
            accepted_at: now,
            phase: Mutex::new(Phase {
                in_flight: false,
                requests: 0,
                idle_since: now,
                close: false,
            }),
            wake: Notify::new(),
        }
    }

    /// Marks a request in flight; returns its number on this connection.
    fn begin(&self) -> u64 {
        let mut phase = lock(&self.phase);
        phase.in_flight = true;
        phase.requests = phase.requests.saturating_add(1);
        phase.requests
    }

    /// Marks the request answered (or abandoned).
    fn end(&self) {
        let mut phase = lock(&self.phase);
        phase.in_flight = false;
        phase.idle_since = Instant::now();
        drop(phase);
        self.wake.notify_one();
    }

    fn is_idle(&self) -> bool {
        !lock(&self.phase).in_flight
    }

    fn ask_to_close(&self) {
        lock(&self.phase).close = true;
        self.wake.notify_one();
    }

    fn asked_to_close(&self) -> bool {
        lock(&self.phase).close
    }

    /// Whether the connection should close now; if not, when to look again.
    fn check(&self, limits: &Limits, now: Instant) -> Check {
        let phase = lock(&self.phase);
        let aged_at = self.accepted_at.checked_add(limits.max_age);
        let idle_at = if phase.in_flight {
            None
        } else {
            phase.idle_since.checked_add(limits.idle_timeout)
        };
        if phase.close || aged_at.is_some_and(|at| at <= now) || idle_at.is_some_and(|at| at <= now)
        {
            return Check::Close {
                // Nothing was ever handed to the service, so nothing is owed:
                // a half-sent first head need not hold up the close.
                drop_now: !phase.in_flight && phase.requests == 0,
            };
        }
        Check::Later(match (aged_at, idle_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }
}

enum Check {
    Close { drop_now: bool },
    Later(Option<Instant>),
}

/// Marks a request answered when dropped, so a cancelled request counts too.
struct InFlight {
    conn: Arc<Conn>,
    tracker: Arc<Tracker>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.conn.end();
        self.tracker.changed.notify_one();
    }
}

/// Whether a new connection can be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Room {
    /// Below the limit.
    Free,
    /// At the limit, with an idle connection to close to make room.
    Shed,
    /// At the limit, every connection busy: new ones wait.
    Full,
}

/// Every open connection, in the order they were accepted.
#[derive(Debug, Default)]
struct Tracker {
    conns: Mutex<BTreeMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    /// A connection closed, or a request began or ended: the room changed.
    changed: Notify,
}

impl Tracker {
    fn add(&self, conn: Arc<Conn>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.conns).insert(id, conn);
        id
    }

    fn remove(&self, id: u64) {
        lock(&self.conns).remove(&id);
        self.changed.notify_one();
    }

    /// Whether a new connection can be taken: fewer than `max` are held (not
    /// counting those already closing), or one of them is idle and can be
    /// shed, or neither.
    fn room(&self, max: usize) -> Room {
        let conns = lock(&self.conns);
        let mut held = 0usize;
        let mut idle = false;
        for conn in conns.values().filter(|c| !c.asked_to_close()) {
            held += 1;
            idle = idle || conn.is_idle();
        }
        if held < max {
            Room::Free
        } else if idle {
            Room::Shed
        } else {
            Room::Full
        }
    }

    /// While more than `max` connections are held, asks the oldest idle one
    /// other than `newest` to close. Returns how many were shed.
    fn shed(&self, max: usize, newest: u64) -> usize {
        let conns = lock(&self.conns);
        let mut held = conns.values().filter(|c| !c.asked_to_close()).count();
        let mut shed = 0;
        for (_, conn) in conns.iter().filter(|(id, _)| **id != newest) {
            if held <= max {
                break;
            }
            if !conn.asked_to_close() && conn.is_idle() {
                conn.ask_to_close();
                held -= 1;
                shed += 1;
            }
        }
        shed
    }

    fn close_all(&self) {
        for conn in lock(&self.conns).values() {
            conn.ask_to_close();
        }
    }

    fn is_empty(&self) -> bool {
        lock(&self.conns).is_empty()
    }
}

/// What answers the requests of a listener served by [`serve_with`]: the
/// delivery listener's [`App`], or the admin listener.
pub(crate) trait Respond: Clone + Send + Sync + 'static {
    /// The answer to `request`.
    fn respond(
        &self,
        request: Request<Incoming>,
    ) -> impl Future<Output = Response<Full<Bytes>>> + Send;
}

impl Respond for App {
    fn respond(
        &self,
        request: Request<Incoming>,
    ) -> impl Future<Output = Response<Full<Bytes>>> + Send {
        self.handle(request)
    }
}

/// Accepts connections until `stop` resolves, then stops accepting, closes
/// idle connections at once and lets in-flight deliveries finish, for at
/// most `grace`. See the module documentation for the limits applied.
pub(crate) async fn serve(
    listener: TcpListener,
    app: App,
    stop: impl Future<Output = ()>,
    grace: Duration,
) {
    let limits = app.limits;
    serve_with(listener, limits, app, stop, grace).await;
}

/// [`serve`] for any [`Respond`], within `limits`.
pub(crate) async fn serve_with(
    listener: TcpListener,
    limits: Limits,
    app: impl Respond,
    stop: impl Future<Output = ()>,
    grace: Duration,
) {
    let tracker = Arc::new(Tracker::default());
    let mut stop = std::pin::pin!(stop);
    loop {
        let room = tracker.room(limits.max_connections);
        if room == Room::Full {
            tokio::select! {
                () = tracker.changed.notified() => continue,
                () = &mut stop => break,
            }
        }
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    super::notice(
                        "WARN",
                        &format!(
                            "accept failed: {err}; retrying (if out of file descriptors, \
                             raise `ulimit -n` or lower --max-connections)"
                        ),
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            // At the limit, the idle connection that would give way may have
            // become busy meanwhile: look again (accepting is cancel-safe).
            () = tracker.changed.notified(), if room == Room::Shed => continue,
            () = &mut stop => break,
        };
        let conn = Arc::new(Conn::new(Instant::now()));
        let id = tracker.add(Arc::clone(&conn));
        tracker.shed(limits.max_connections, id);
        tokio::spawn(drive(
            stream,
            limits,
            app.clone(),
            conn,
            id,
            Arc::clone(&tracker),
        ));
    }
    drop(listener);
    tracker.close_all();
    let drained = async {
        while !tracker.is_empty() {
            tracker.changed.notified().await;
        }
    };
    if tokio::time::timeout(grace, drained).await.is_err() {
        super::notice(
            "WARN",
            &format!(
                "in-flight deliveries still running after {} s; stopping anyway \
                 (Box retries them; raise --grace to wait longer)",
                grace.as_secs()
            ),
        );
    }
}

/// Serves one connection until it closes, enforcing its limits.
async fn drive(
    stream: TcpStream,
    limits: Limits,
    app: impl Respond,
    conn: Arc<Conn>,
    id: u64,
    tracker: Arc<Tracker>,
) {
    let service = {
        let conn = Arc::clone(&conn);
        let tracker = Arc::clone(&tracker);
        hyper::service::service_fn(move |request| {
            let number = conn.begin();
            tracker.changed.notify_one();
            let in_flight = InFlight {
                conn: Arc::clone(&conn),
                tracker: Arc::clone(&tracker),
            };
            let app = app.clone();
            async move {
                let mut response = app.respond(request).await;
                if !response.status().is_success() || number >= limits.max_requests {
                    // hyper closes the connection once this answer is written.
                    response
                        .headers_mut()
                        .insert(CONNECTION, HeaderValue::from_static("close"));
                }
                drop(in_flight);
                Ok::<_, Infallible>(response)
            }
        })
    };
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_BUF_SIZE)
        .serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    let mut closing = false;
    loop {
        if closing {
            let _ = connection.as_mut().await;
            break;
        }
        let next = match conn.check(&limits, Instant::now()) {
            Check::Close { drop_now } => {
                // Closes an idle connection at once; a busy one after its answer.
                connection.as_mut().graceful_shutdown();
                closing = true;
                if drop_now {
                    break;
                }
                continue;
            }
            Check::Later(next) => next,
        };
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = connection.as_mut() => break,
            () = conn.wake.notified() => {}
            () = sleep => {}
        }
    }
    tracker.remove(id);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_connections: 2,
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(5),
            max_age: Duration::from_secs(300),
            max_requests: 10,
        }
    }

    #[test]
    fn an_idle_connection_closes_after_the_idle_timeout() {
        let now = Instant::now();
        let conn = Conn::new(now);
        assert!(matches!(
            conn.check(&limits(), now),
            Check::Later(Some(at)) if at == now + Duration::from_secs(5)
        ));
        assert!(matches!(
            conn.check(&limits(), now + Duration::from_secs(5)),
            Check::Close { drop_now: true }
        ));
    }

    #[test]
    fn a_busy_connection_is_only_bounded_by_its_age() {
        let now = Instant::now();
        let conn = Conn::new(now);
        assert_eq!(conn.begin(), 1);
        assert!(matches!(
            conn.check(&limits(), now + Duration::from_secs(60)),
            Check::Later(Some(at)) if at == now + Duration::from_secs(300)
        ));
        assert!(matches!(
            conn.check(&limits(), now + Duration::from_secs(300)),
            Check::Close { drop_now: false }
        ));
    }

    #[test]
    fn huge_limits_do_not_overflow() {
        let now = Instant::now();
        let conn = Conn::new(now);
        let huge = Limits {
            idle_timeout: Duration::MAX,
            max_age: Duration::MAX,
            ..limits()
        };
        assert!(matches!(conn.check(&huge, now), Check::Later(_)));
    }

    #[test]
    fn shedding_picks_the_oldest_idle_connection() {
        let tracker = Tracker::default();
        assert_eq!(tracker.room(2), Room::Free);
        let now = Instant::now();
        let conns: Vec<Arc<Conn>> = (0..3).map(|_| Arc::new(Conn::new(now))).collect();
        let ids: Vec<u64> = conns.iter().map(|c| tracker.add(Arc::clone(c))).collect();
        conns[0].begin(); // the oldest is busy
        assert_eq!(
            tracker.room(2),
            Room::Shed,
            "an idle connection can give way"
        );
        assert_eq!(tracker.shed(2, ids[2]), 1);
        assert!(!conns[0].asked_to_close(), "busy: kept");
        assert!(conns[1].asked_to_close(), "the oldest idle one");
        assert!(!conns[2].asked_to_close(), "the new one");
        conns[2].begin();
        assert_eq!(tracker.room(2), Room::Full, "every held connection is busy");
        assert_eq!(tracker.shed(2, ids[2]), 0);
    }
}
