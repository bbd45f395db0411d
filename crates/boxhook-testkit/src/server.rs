//! [`ScriptedServer`]: a receiver stand-in that answers from a script and
//! records what arrived, for testing senders (the simulator, the CLI).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use boxhook_core::{headers, Clock, Verified, Verifier, VerifyError};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// The largest request body the server reads.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// An HTTP/1 server on `127.0.0.1` and a free port that answers each request
/// with the next status of its script (then with a fixed status, 200 unless
/// told otherwise), and records every request. It optionally checks each one
/// with a core [`Verifier`] on arrival. It stops when dropped.
///
/// This is not a webhook receiver — it never answers from the verification —
/// but the far end for testing whatever sends deliveries.
///
/// ```
/// use boxhook_testkit::{sample_keys, RetrySchedule, ScriptedServer, Simulator};
///
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// # rt.block_on(async {
/// let server = ScriptedServer::start([500, 503]).await?; // then 200
/// let simulator = Simulator::builder(server.uri(), sample_keys())
///     .schedule(RetrySchedule::immediate(5))
///     .build();
/// simulator.send_body("{}").await;
///
/// let statuses: Vec<u16> = server.received().iter().map(|r| r.status().as_u16()).collect();
/// assert_eq!(statuses, [500, 503, 200]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ScriptedServer {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

struct State {
    script: Mutex<VecDeque<StatusCode>>,
    then: StatusCode,
    verify: Option<(Verifier, Box<dyn Clock>)>,
    received: Mutex<Vec<Received>>,
}

impl ScriptedServer {
    /// Starts a server answering `script`, then 200.
    ///
    /// # Panics
    ///
    /// When a status is not a valid HTTP status code (100–999).
    pub async fn start(script: impl IntoIterator<Item = u16>) -> std::io::Result<Self> {
        Self::builder().script(script).start().await
    }

    /// A builder, to also set the status after the script or a verifier.
    pub fn builder() -> ScriptedServerBuilder {
        ScriptedServerBuilder {
            script: VecDeque::new(),
            then: StatusCode::OK,
            verify: None,
        }
    }

    /// The address it listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/`.
    ///
    /// ```
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// # rt.block_on(async {
    /// let server = boxhook_testkit::ScriptedServer::start([]).await?;
    /// assert_eq!(server.uri().to_string(), format!("http://{}/", server.addr()));
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn uri(&self) -> Uri {
        format!("http://{}/", self.addr)
            .parse()
            .unwrap_or_else(|_| unreachable!("a socket address makes a valid authority"))
    }

    /// Every request so far, in order of arrival.
    #[must_use]
    pub fn received(&self) -> Vec<Received> {
        lock(&self.state.received).clone()
    }

    /// How many requests arrived so far.
    #[must_use]
    pub fn received_count(&self) -> usize {
        lock(&self.state.received).len()
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        // The accept task owns the connection tasks: aborting it ends them all.
        self.task.abort();
    }
}

impl fmt::Debug for ScriptedServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptedServer")
            .field("addr", &self.addr)
            .field("received", &self.received_count())
            .finish_non_exhaustive()
    }
}

/// Builds a [`ScriptedServer`].
///
/// ```
/// use boxhook::{FixedClock, Verifier};
/// use boxhook_testkit::{sample_keys, Delivery, RetrySchedule, ScriptedServer, Simulator};
///
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// # rt.block_on(async {
/// let delivery = Delivery::new("{}").stale();
/// let server = ScriptedServer::builder()
///     .then(401)
///     .verify_with(Verifier::new(sample_keys()), delivery.clock())
///     .start()
///     .await?;
/// let simulator = Simulator::builder(server.uri(), sample_keys())
///     .schedule(RetrySchedule::none())
///     .clock(delivery.clock())
///     .build();
/// assert!(!simulator.send(delivery).await.delivered());
/// let received = &server.received()[0];
/// assert_eq!(received.status(), 401);
/// assert_eq!(received.verification().unwrap().as_ref().unwrap_err().code(), "expired");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub struct ScriptedServerBuilder {
    script: VecDeque<StatusCode>,
    then: StatusCode,
    verify: Option<(Verifier, Box<dyn Clock>)>,
}

impl fmt::Debug for ScriptedServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptedServerBuilder")
            .field("script", &self.script)
            .field("then", &self.then)
            .finish_non_exhaustive()
    }
}

impl ScriptedServerBuilder {
    /// The statuses of the first requests, in order of arrival.
    ///
    /// # Panics
    ///
    /// When a status is not a valid HTTP status code (100–999).
    pub fn script(mut self, statuses: impl IntoIterator<Item = u16>) -> Self {
        self.script.extend(statuses.into_iter().map(status));
        self
    }

    /// The status once the script is used up (default 200).
    ///
    /// # Panics
    ///
    /// When `code` is not a valid HTTP status code (100–999).
    pub fn then(mut self, code: u16) -> Self {
        self.then = status(code);
        self
    }

    /// Verifies each request on arrival with `verifier` at `clock`'s time,
    /// and records the result ([`Received::verification`]). The answer still
    /// comes from the script.
    pub fn verify_with(mut self, verifier: Verifier, clock: impl Clock) -> Self {
        self.verify = Some((verifier, Box::new(clock)));
        self
    }

    /// Binds `127.0.0.1:0` and starts serving on the current tokio runtime.
    pub async fn start(self) -> std::io::Result<ScriptedServer> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            script: Mutex::new(self.script),
            then: self.then,
            verify: self.verify,
            received: Mutex::new(Vec::new()),
        });
        let task = tokio::spawn(serve(listener, Arc::clone(&state)));
        Ok(ScriptedServer { addr, state, task })
    }
}

async fn serve(listener: TcpListener, state: Arc<State>) {
    accept(listener, move |request| answer(Arc::clone(&state), request)).await;
}

/// Serves HTTP/1.1 on every connection `listener` accepts, answering each
/// request with `answer`, until the task is aborted.
async fn accept<F, Fut>(listener: TcpListener, answer: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, usually: let connections finish.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let answer = answer.clone();
        connections.spawn(async move {
            // A client that goes away mid-request is not the server's problem.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(answer))
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}

async fn answer(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let Ok(body) = Limited::new(body, MAX_BODY).collect().await else {
        return Ok(respond(StatusCode::BAD_REQUEST));
    };
    let body = body.to_bytes();
    let verification = state
        .verify
        .as_ref()
        .map(|(verifier, clock)| verifier.verify(&parts.headers, &body, clock.now()));
    let mut received = lock(&state.received);
    let status = lock(&state.script).pop_front().unwrap_or(state.then);
    received.push(Received {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body,
        status,
        verification,
    });
    Ok(respond(status))
}

fn respond(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or_else(|_| panic!("{code} is not an HTTP status code"))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing panics while holding these locks; a poisoned one still holds whole values.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One request a [`ScriptedServer`] received, and how it answered.
#[derive(Debug, Clone)]
pub struct Received {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    status: StatusCode,
    verification: Option<Result<Verified, VerifyError>>,
}

impl Received {
    /// The request method.
    #[must_use]
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request target, as sent.
    #[must_use]
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The request headers.
    #[must_use]
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The request body, as received.
    #[must_use]
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// `BOX-DELIVERY-ID`, when present and text.
    #[must_use]
    pub fn delivery_id(&self) -> Option<&str> {
        self.headers.get(headers::DELIVERY_ID)?.to_str().ok()
    }

    /// The status the server answered.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The verifier's answer on arrival, when the server has one
    /// ([`ScriptedServerBuilder::verify_with`]).
    #[must_use]
    pub fn verification(&self) -> Option<&Result<Verified, VerifyError>> {
        self.verification.as_ref()
    }
}
