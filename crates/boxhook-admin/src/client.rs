//! The HTTP side of the client: one hyper client over rustls, the bearer
//! token, and the retry loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Mutex;

use crate::auth::{CachedToken, TokenAnswer};
use crate::error::{ApiError, Error};
use crate::retry::{retry_after, retryable, RetryPolicy};
use crate::Credentials;

/// Box's API, where every path (`/2.0/webhooks`, `/oauth2/token`) hangs off.
pub const DEFAULT_API_BASE: &str = "https://api.box.com";

/// The most bytes read from one answer: Box's webhook answers are small.
const MAX_ANSWER: usize = 8 * 1024 * 1024;

/// How long one attempt may take, connection included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

type Http = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A client of Box's webhooks API. Cheap to clone: clones share the
/// connection pool and the token.
///
/// ```no_run
/// use boxhook_admin::{BoxClient, Credentials};
///
/// # async fn run() -> Result<(), boxhook_admin::Error> {
/// let client = BoxClient::builder(Credentials::AccessToken("token".into())).build()?;
/// for webhook in client.list_full().await? {
///     println!("{} on {} -> {}", webhook.id, webhook.target, webhook.address);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct BoxClient {
    inner: Arc<Inner>,
}

struct Inner {
    base: String,
    http: Http,
    credentials: Credentials,
    token: Mutex<Option<CachedToken>>,
    retry: RetryPolicy,
}

/// Builds a [`BoxClient`].
#[derive(Clone, Debug)]
pub struct BoxClientBuilder {
    base: String,
    credentials: Credentials,
    retry: RetryPolicy,
}

impl BoxClientBuilder {
    /// Where Box's API is (default [`DEFAULT_API_BASE`]); the token URL is
    /// `{base}/oauth2/token`. Plain `http` is accepted only for a loopback
    /// host (a fake API in tests), so a token never crosses a network in
    /// the clear.
    #[must_use]
    pub fn api_base(mut self, base: impl Into<String>) -> Self {
        self.base = base.into();
        self
    }

    /// How 429 and 5xx answers are retried (default [`RetryPolicy::default`]).
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The client; [`Error::Config`] when the API base is not usable.
    pub fn build(self) -> Result<BoxClient, Error> {
        let base = check_base(&self.base)?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        let http = Client::builder(TokioExecutor::new()).build(https);
        Ok(BoxClient {
            inner: Arc::new(Inner {
                base,
                http,
                credentials: self.credentials,
                token: Mutex::new(None),
                retry: self.retry,
            }),
        })
    }
}

fn check_base(base: &str) -> Result<String, Error> {
    let bad = |why: &str| {
        Error::Config(format!(
            "--api-base {base:?} {why}; it is Box's API root, e.g. {DEFAULT_API_BASE}"
        ))
    };
    let trimmed = base.trim_end_matches('/');
    let uri: Uri = trimmed.parse().map_err(|_| bad("is not a URL"))?;
    let host = uri.host().ok_or_else(|| bad("has no host"))?;
    if uri.query().is_some() {
        return Err(bad("must not have a query"));
    }
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if matches!(host, "127.0.0.1" | "localhost" | "[::1]") => {}
        Some("http") => return Err(bad("must be https (plain http only to a loopback host)")),
        _ => return Err(bad("must start with https://")),
    }
    Ok(trimmed.to_owned())
}

/// A 2xx answer.
pub(crate) struct Answer {
    pub(crate) body: Bytes,
}

/// One request, repeatable.
struct Call<'a> {
    method: Method,
    url: String,
    content_type: Option<&'static str>,
    body: Bytes,
    bearer: Option<&'a str>,
}

impl BoxClient {
    /// A builder acting as `credentials`.
    #[must_use]
    pub fn builder(credentials: Credentials) -> BoxClientBuilder {
        BoxClientBuilder {
            base: DEFAULT_API_BASE.to_owned(),
            credentials,
            retry: RetryPolicy::default(),
        }
    }

    /// The API base this client talks to.
    #[must_use]
    pub fn api_base(&self) -> &str {
        &self.inner.base
    }

    /// The credentials this client acts with.
    #[must_use]
    pub fn credentials(&self) -> &Credentials {
        &self.inner.credentials
    }

    /// `method path` with an optional JSON body, authorized, retried; the
    /// answer when it is a 2xx.
    pub(crate) async fn api(
        &self,
        method: Method,
        path_and_query: &str,
        json: Option<Vec<u8>>,
    ) -> Result<Answer, Error> {
        let url = format!("{}{path_and_query}", self.inner.base);
        let body = Bytes::from(json.unwrap_or_default());
        let content_type = (!body.is_empty()).then_some("application/json");
        let mut refreshed = false;
        loop {
            let token = self.token().await?;
            let call = Call {
                method: method.clone(),
                url: url.clone(),
                content_type,
                body: body.clone(),
                bearer: Some(&token),
            };
            match self.send(&call).await {
                // A fetched token Box no longer takes (revoked, or expired
                // early): fetch a new one, once.
                Err(Error::Api(err))
                    if err.status == 401
                        && !refreshed
                        && matches!(self.inner.credentials, Credentials::ClientCredentials(_)) =>
                {
                    refreshed = true;
                    *self.inner.token.lock().await = None;
                }
                other => return other,
            }
        }
    }

    /// The bearer token: the static one, or a cached grant refreshed before
    /// it expires.
    async fn token(&self) -> Result<String, Error> {
        let ccg = match &self.inner.credentials {
            Credentials::AccessToken(token) => return Ok(token.clone()),
            Credentials::ClientCredentials(ccg) => ccg,
        };
        let mut cached = self.inner.token.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| t.fresh(Instant::now())) {
            return Ok(token.token.clone());
        }
        let call = Call {
            method: Method::POST,
            url: format!("{}/oauth2/token", self.inner.base),
            content_type: Some("application/x-www-form-urlencoded"),
            body: Bytes::from(ccg.form()),
            bearer: None,
        };
        let answer = self.send(&call).await?;
        let token: TokenAnswer =
            serde_json::from_slice(&answer.body).map_err(|err| Error::Decode {
                what: "token",
                detail: err.to_string(),
            })?;
        let fresh = CachedToken::new(token.access_token.clone(), token.expires_in, Instant::now());
        *cached = Some(fresh);
        Ok(token.access_token)
    }

    /// Sends `call`, retrying 429, 5xx and failed connections per the
    /// policy; a non-2xx final answer is an [`Error::Api`].
    async fn send(&self, call: &Call<'_>) -> Result<Answer, Error> {
        let retry = self.inner.retry;
        let mut attempt = 0_u32;
        loop {
            let (wait, last_error) = match self.send_once(call).await {
                Ok((status, _, body)) if (200..300).contains(&status) => {
                    return Ok(Answer { body });
                }
                Ok((status, headers, body)) => {
                    let err = Error::Api(ApiError::from_body(status, &body));
                    if !retryable(status) {
                        return Err(err);
                    }
                    (retry_after(headers.get(header::RETRY_AFTER)), err)
                }
                Err(err) => (None, err),
            };
            if attempt >= retry.max_retries() {
                return Err(last_error);
            }
            let delay = retry.delay(attempt, wait);
            // Box's answer can carry any text: escaped.
            tracing::debug!(
                target: "boxhook_admin",
                "retrying {} {} in {delay:?}: {}",
                call.method,
                call.url,
                boxhook::Printable(&last_error.to_string())
            );
            tokio::time::sleep(delay).await;
            attempt = attempt.saturating_add(1);
        }
    }

    async fn send_once(&self, call: &Call<'_>) -> Result<(u16, HeaderMap, Bytes), Error> {
        let mut request = Request::builder()
            .method(call.method.clone())
            .uri(&call.url)
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("boxhook-admin/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(content_type) = call.content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        if let Some(token) = call.bearer {
            let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                Error::Config("the access token has characters a header cannot carry".to_owned())
            })?;
            request = request.header(header::AUTHORIZATION, value);
        }
        let request = request.body(Full::new(call.body.clone())).map_err(|err| {
            Error::Config(format!("cannot build a request to {}: {err}", call.url))
        })?;
        let exchange = async {
            let response = self
                .inner
                .http
                .request(request)
                .await
                .map_err(|err| Error::Transport(transport_detail(&err)))?;
            let status = response.status().as_u16();
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_ANSWER)
                .collect()
                .await
                .map_err(|err| Error::Transport(format!("reading the answer: {err}")))?
                .to_bytes();
            Ok((status, parts.headers, body))
        };
        tokio::time::timeout(ATTEMPT_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(Error::Transport(format!(
                    "no answer from {} within {}s",
                    call.url,
                    ATTEMPT_TIMEOUT.as_secs()
                )))
            })
    }
}

/// The innermost cause of a hyper client error (connection refused, TLS,
/// DNS), which its own text hides.
fn transport_detail(err: &hyper_util::client::legacy::Error) -> String {
    let mut detail = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        detail = format!("{detail}: {cause}");
        source = cause.source();
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::check_base;

    #[test]
    fn api_bases() {
        let table = [
            ("https://api.box.com", Ok("https://api.box.com")),
            ("https://api.box.com/", Ok("https://api.box.com")),
            ("http://127.0.0.1:8080", Ok("http://127.0.0.1:8080")),
            ("http://localhost:1/", Ok("http://localhost:1")),
            ("http://api.box.com", Err("must be https")),
            ("ftp://api.box.com", Err("must start with https://")),
            ("api.box.com", Err("must start with https://")),
            ("https://api.box.com/?x=1", Err("must not have a query")),
            ("not a url", Err("is not a URL")),
        ];
        for (base, want) in table {
            match (check_base(base), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want),
                (Err(err), Err(want)) => assert!(err.to_string().contains(want), "{base}: {err}"),
                (got, want) => panic!("{base}: got {got:?}, want {want:?}"),
            }
        }
    }
}
