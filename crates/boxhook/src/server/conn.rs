//! One connection's life: hyper serves it while [`drive`] enforces its
//! limits and reports when it is busy.

use std::error::Error as StdError;
use std::future::poll_fn;
use std::sync::Arc;

use http::header::{HeaderValue, CONNECTION};
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tower_service::Service;

use super::limits::{Limits, MAX_BUF_SIZE};
use super::tracker::{Check, Conn, InFlight, Registered};
use crate::verify::BodyBudget;

/// Serves one connection until it closes, enforcing its limits; the
/// connection leaves its tracker when this ends (or is aborted).
pub(super) async fn drive<I, S, B>(
    stream: I,
    limits: Limits,
    service: S,
    budget: Option<BodyBudget>,
    conn: Arc<Conn>,
    registered: Registered,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let handler = {
        let conn = Arc::clone(&conn);
        let tracker = Arc::clone(&registered.tracker);
        hyper::service::service_fn(move |mut request: Request<Incoming>| {
            let number = conn.begin();
            tracker.changed.notify_one();
            let in_flight = InFlight {
                conn: Arc::clone(&conn),
                tracker: Arc::clone(&tracker),
            };
            if let Some(budget) = &budget {
                request.extensions_mut().insert(budget.clone());
            }
            let mut service = service.clone();
            async move {
                poll_fn(|cx| service.poll_ready(cx)).await?;
                let mut response = service.call(request).await?;
                if !response.status().is_success() || number >= limits.max_requests {
                    // hyper closes the connection once this answer is written.
                    response
                        .headers_mut()
                        .insert(CONNECTION, HeaderValue::from_static("close"));
                }
                drop(in_flight);
                Ok::<_, S::Error>(response)
            }
        })
    };
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_BUF_SIZE)
        .serve_connection(TokioIo::new(stream), handler);
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
        let sleep = super::sleep_until(next);
        tokio::select! {
            _ = connection.as_mut() => break,
            () = conn.wake.notified() => {}
            () = sleep => {}
        }
    }
    drop(registered);
}
