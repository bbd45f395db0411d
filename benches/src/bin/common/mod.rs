//! What the two load-test servers share, so that they differ only in the
//! service answering each request: the runtime, the accept loop, the HTTP/1
//! settings, the tally, and the self-imposed deadline.

use std::convert::Infallible;
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// `--listen` and `--for-seconds`, the flags both servers take.
#[derive(clap::Args, Debug)]
pub(crate) struct ServerArgs {
    /// Where to listen; must be a loopback address (port 0 picks a free one).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub(crate) listen: SocketAddr,
    /// Exit by itself after this many seconds, whatever the load.
    #[arg(long, value_name = "S", default_value_t = 60)]
    pub(crate) for_seconds: u64,
}

/// Counts of what a server answered, printed when it exits.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    ok: AtomicU64,
    other: AtomicU64,
    handled: AtomicU64,
    duplicate: AtomicU64,
}

impl Tally {
    /// Counts one response by status, and by outcome when the router set one.
    pub(crate) fn record(&self, response: &Response<Full<Bytes>>) {
        let counter = if response.status().is_success() {
            &self.ok
        } else {
            &self.other
        };
        counter.fetch_add(1, Ordering::Relaxed);
        match response.extensions().get::<boxhook::Outcome>() {
            Some(boxhook::Outcome::Handled) => {
                self.handled.fetch_add(1, Ordering::Relaxed);
            }
            Some(boxhook::Outcome::Duplicate) => {
                self.duplicate.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

/// Serves `handle` on `args.listen` over HTTP/1.1 keep-alive for
/// `args.for_seconds` or until SIGTERM, then prints the tally on stderr and
/// returns.
///
/// Prints `listening on http://ADDR` on stdout first, for the script.
pub(crate) fn serve<F, Fut>(name: &str, args: &ServerArgs, handle: F) -> std::io::Result<()>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    if !args.listen.ip().is_loopback() {
        return Err(std::io::Error::other(format!(
            "{name}: refusing to listen on {}: loopback only",
            args.listen
        )));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    runtime.block_on(async {
        let listener = TcpListener::bind(args.listen).await?;
        println!("listening on http://{}", listener.local_addr()?);
        std::io::stdout().flush()?;
        let deadline = tokio::time::sleep(Duration::from_secs(args.for_seconds));
        let mut deadline = std::pin::pin!(deadline);
        // The script stops a server with SIGTERM once the load is over; end
        // as on the deadline, so the tally is still printed.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(err) => {
                        eprintln!("{name}: accept failed: {err}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                },
                () = &mut deadline => break,
                _ = term.recv() => break,
            };
            let handle = handle.clone();
            let tally = Arc::clone(&tally);
            let service = hyper::service::service_fn(move |request| {
                let response = handle(request);
                let tally = Arc::clone(&tally);
                async move {
                    let response = response.await;
                    tally.record(&response);
                    Ok::<_, Infallible>(response)
                }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
        Ok::<_, std::io::Error>(())
    })?;
    // Open keep-alive connections are simply dropped with the runtime.
    runtime.shutdown_background();
    eprintln!(
        "{name}: exiting after {:.1} s: {} answered 2xx ({} handled, {} duplicate), {} other",
        started.elapsed().as_secs_f64(),
        tally.ok.load(Ordering::Relaxed),
        tally.handled.load(Ordering::Relaxed),
        tally.duplicate.load(Ordering::Relaxed),
        tally.other.load(Ordering::Relaxed),
    );
    Ok(())
}
