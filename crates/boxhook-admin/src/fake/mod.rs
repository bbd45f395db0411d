//! A fake of Box's webhooks API and token endpoint, on `127.0.0.1`, for
//! testing code that manages webhooks without Box.
//!
//! It keeps Box's documented rules: `201` with the full webhook object on
//! create; `409 conflict` for a second webhook on an item by the same app
//! and user; `400` for folder `0`, a non-HTTPS address, a port other than
//! 443 or a `box.com` host; a cap of 1,000 webhooks per app and user
//! (`400`); `404` for an id it does not hold; mini objects (id, type,
//! target) in the list, with `limit` (default 100, at most 1000) and
//! `marker` pagination; `401` with `WWW-Authenticate` for a bad token; the
//! Client Credentials Grant at `POST /oauth2/token`. On request it answers
//! the Nth call with a 429 and `Retry-After` (or a 5xx, or an error whose
//! text the test chooses), pages its list without end ([`Paging`]), and it
//! counts every call by route.
//!
//! ```
//! use boxhook_admin::fake::{FakeBoxApi, FAKE_ACCESS_TOKEN};
//!
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! # rt.block_on(async {
//! let api = FakeBoxApi::start().await?;
//! let uri = api.uri(); // http://127.0.0.1:PORT, the API base for the client under test
//! api.seed(FAKE_ACCESS_TOKEN, "folder", "11", "https://hooks.example.com/box", &["FILE.UPLOADED"]);
//! assert_eq!(api.webhooks().len(), 1);
//! assert_eq!(api.count("POST /2.0/webhooks"), 0);
//! # let _ = uri;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod rules;
mod state;
mod webhook;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use state::{App, Failure, State};
pub use webhook::FakeWebhook;

/// The static access token the fake accepts by default.
pub const FAKE_ACCESS_TOKEN: &str = "fake-access-token";
/// The client id of the fake's Client Credentials app.
pub const FAKE_CLIENT_ID: &str = "fake-client-id";
/// Its client secret.
pub const FAKE_CLIENT_SECRET: &str = "fake-client-secret";

/// The routes that write: create, update, delete.
pub const WRITE_ROUTES: [&str; 3] = [
    "POST /2.0/webhooks",
    "PUT /2.0/webhooks/{id}",
    "DELETE /2.0/webhooks/{id}",
];

/// How the fake's list endpoint (`GET /2.0/webhooks`) pages: as Box does,
/// or broken in a way a client must survive.
///
/// ```
/// use boxhook_admin::fake::{FakeBoxApi, Paging};
///
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// # rt.block_on(async {
/// // Every page full, every page naming a next one: a list without end.
/// let api = FakeBoxApi::builder().paging(Paging::Endless).start().await?;
/// # let _ = api;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Paging {
    /// Box's paging over the webhooks held (the default).
    #[default]
    Box,
    /// Every page is full (`limit` made-up webhooks) and names a new
    /// `next_marker`: the list never ends.
    Endless,
    /// Every page is full, and the markers go round a loop of `pages`
    /// pages: the page after the last one has the first page's marker.
    Loop {
        /// How many pages the loop has (at least 1).
        pages: usize,
    },
}

/// A running fake Box API; it stops when dropped.
pub struct FakeBoxApi {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

/// Configures a [`FakeBoxApi`].
pub struct FakeBoxApiBuilder {
    state: State,
}

impl FakeBoxApiBuilder {
    /// Also accepts `token`, acting as `user` (tokens of one user share
    /// webhooks).
    #[must_use]
    pub fn access_token(mut self, token: &str, user: &str) -> Self {
        self.state
            .static_tokens
            .insert(token.to_owned(), user.to_owned());
        self
    }

    /// How long granted tokens live, in seconds (default 3600).
    #[must_use]
    pub fn token_ttl(mut self, secs: u64) -> Self {
        self.state.token_ttl = secs;
        self
    }

    /// The cap per app and user (default 1000, Box's).
    #[must_use]
    pub fn cap(mut self, cap: usize) -> Self {
        self.state.cap = cap;
        self
    }

    /// How the list endpoint pages (default [`Paging::Box`]).
    #[must_use]
    pub fn paging(mut self, paging: Paging) -> Self {
        self.state.paging = paging;
        self
    }

    /// The most webhooks one list page holds, whatever `limit` asks
    /// (default 1000, Box's maximum; Box's default `limit` is 100).
    #[must_use]
    pub fn page_size(mut self, size: usize) -> Self {
        self.state.page_size = size;
        self
    }

    /// Binds `127.0.0.1:0` and serves on the current tokio runtime.
    pub async fn start(self) -> std::io::Result<FakeBoxApi> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(self.state));
        let task = tokio::spawn(serve(listener, Arc::clone(&state)));
        Ok(FakeBoxApi { addr, state, task })
    }
}

impl FakeBoxApi {
    /// A fake accepting [`FAKE_ACCESS_TOKEN`] (user `fake-user`) and the
    /// Client Credentials app [`FAKE_CLIENT_ID`] / [`FAKE_CLIENT_SECRET`].
    #[must_use]
    pub fn builder() -> FakeBoxApiBuilder {
        FakeBoxApiBuilder {
            state: State {
                static_tokens: HashMap::from([(
                    FAKE_ACCESS_TOKEN.to_owned(),
                    "fake-user".to_owned(),
                )]),
                apps: vec![App {
                    client_id: FAKE_CLIENT_ID.to_owned(),
                    client_secret: FAKE_CLIENT_SECRET.to_owned(),
                }],
                token_ttl: 3600,
                cap: 1000,
                issued: HashMap::new(),
                webhooks: BTreeMap::new(),
                next_id: 4_000_000,
                calls: BTreeMap::new(),
                total_calls: 0,
                failures: HashMap::new(),
                paging: Paging::Box,
                page_size: 1000,
                not_owned: HashSet::new(),
            },
        }
    }

    /// [`builder`](Self::builder)`().start()`.
    pub async fn start() -> std::io::Result<Self> {
        Self::builder().start().await
    }

    /// `http://127.0.0.1:PORT`: the API base (`/2.0/...`, `/oauth2/token`).
    #[must_use]
    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Answers call number `n` (counting every request from 1, the token
    /// endpoint's included) with 429 and `Retry-After: retry_after` seconds.
    pub fn rate_limit_call(&self, n: u64, retry_after: u64) {
        let failure = Failure {
            status: 429,
            retry_after: Some(retry_after),
            text: None,
        };
        self.state().failures.insert(n, failure);
    }

    /// Answers call number `n` with `status` (a 5xx) and no `Retry-After`.
    pub fn fail_call(&self, n: u64, status: u16) {
        let failure = Failure {
            status,
            retry_after: None,
            text: None,
        };
        self.state().failures.insert(n, failure);
    }

    /// Answers call number `n` with `status` and a Box error body whose
    /// `code` and `message` are exactly the text given, as a hostile or
    /// broken API could send: terminal escapes, line breaks and all.
    ///
    /// ```
    /// use boxhook_admin::fake::FakeBoxApi;
    ///
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// # rt.block_on(async {
    /// let api = FakeBoxApi::start().await?;
    /// api.fail_call_with(1, 400, "bad_request", "\u{1b}[2Jcleared\nboxhook: all good");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fail_call_with(&self, n: u64, status: u16, code: &str, message: &str) {
        let failure = Failure {
            status,
            retry_after: None,
            text: Some((code.to_owned(), message.to_owned())),
        };
        self.state().failures.insert(n, failure);
    }

    /// Calls so far by route, e.g. `"GET /2.0/webhooks/{id}" → 3`.
    #[must_use]
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.state().calls.clone()
    }

    /// Calls so far to `route` (`"POST /2.0/webhooks"`, `"POST /oauth2/token"`, ...).
    #[must_use]
    pub fn count(&self, route: &str) -> u64 {
        self.state().calls.get(route).copied().unwrap_or(0)
    }

    /// Calls so far to the [`WRITE_ROUTES`].
    #[must_use]
    pub fn write_calls(&self) -> u64 {
        WRITE_ROUTES.iter().map(|r| self.count(r)).sum()
    }

    /// Calls so far, of every route: the number the next call's `n` follows
    /// ([`rate_limit_call`](Self::rate_limit_call)); never reset.
    #[must_use]
    pub fn total_calls(&self) -> u64 {
        self.state().total_calls
    }

    /// Forgets the counts by route (the webhooks stay, and
    /// [`total_calls`](Self::total_calls) keeps counting).
    pub fn reset_calls(&self) {
        let mut state = self.state();
        state.calls.clear();
    }

    /// Every webhook held, of every owner, by id.
    #[must_use]
    pub fn webhooks(&self) -> Vec<FakeWebhook> {
        self.state().webhooks.values().cloned().collect()
    }

    /// Adds a webhook as the holder of static `token` would have created it
    /// (no rule checked, no call counted): for state set up before a test.
    ///
    /// # Panics
    ///
    /// When `token` is not one of the fake's static tokens.
    #[allow(
        clippy::must_use_candidate,
        reason = "seeding is the point; the webhook is there for tests that want its id"
    )]
    pub fn seed(
        &self,
        token: &str,
        target_type: &str,
        target_id: &str,
        address: &str,
        triggers: &[&str],
    ) -> FakeWebhook {
        let mut state = self.state();
        let user = state.static_tokens.get(token).cloned();
        let Some(user) = user else {
            panic!("seed: {token:?} is not a static token of this fake");
        };
        let triggers = triggers.iter().map(|t| (*t).to_owned()).collect();
        state.insert(
            &format!("token:{user}"),
            target_type,
            target_id,
            address,
            triggers,
        )
    }

    /// Removes webhook `id` as Box's `auto_cleanup` does (no call counted);
    /// the removed webhook, if it was there.
    #[allow(
        clippy::must_use_candidate,
        reason = "removing is the point; the webhook is there for tests that check it"
    )]
    pub fn auto_cleanup(&self, id: &str) -> Option<FakeWebhook> {
        let key: u64 = id.parse().ok()?;
        self.state().webhooks.remove(&key)
    }

    /// Marks the item `target` (`folder:ID`, `file:ID`) as owned by someone
    /// else, collaborated to the acting user: Box's list only returns
    /// webhooks on items the user owns, so webhooks on it are left out of
    /// the list (a `GET` by id still finds them).
    pub fn not_owned(&self, target: &str) {
        self.state().not_owned.insert(target.to_owned());
    }

    /// Expires every granted token now, as if their hour had passed.
    pub fn expire_tokens(&self) {
        let now = std::time::Instant::now();
        for (_, expires) in self.state().issued.values_mut() {
            *expires = now;
        }
    }
}

impl Drop for FakeBoxApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The most body bytes read from one request.
const MAX_BODY: usize = 1024 * 1024;

async fn serve(listener: TcpListener, state: Arc<Mutex<State>>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, usually: let connections finish.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let state = Arc::clone(&state);
        let service = service_fn(move |request| answer(Arc::clone(&state), request));
        connections.spawn(async move {
            // A client that goes away mid-request is not the fake's problem.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}

async fn answer(
    state: Arc<Mutex<State>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let Ok(body) = Limited::new(body, MAX_BODY).collect().await else {
        return Ok(respond(413, None));
    };
    let body = body.to_bytes();
    let auth = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let answer = lock(&state).answer(
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query().unwrap_or_default(),
        auth,
        &body,
    );
    let mut response = respond(
        answer.status,
        answer.body.map(|b| Bytes::from(b.to_string())),
    );
    if let Some(secs) = answer.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if answer.www_authenticate {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(
                "Bearer realm=\"Service\", error=\"invalid_token\", error_description=\"The access token provided is invalid.\"",
            ),
        );
    }
    Ok(response)
}

fn respond(status: u16, body: Option<Bytes>) -> Response<Full<Bytes>> {
    let json = body.is_some();
    let mut response = Response::new(Full::new(body.unwrap_or_default()));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if json {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    response
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
