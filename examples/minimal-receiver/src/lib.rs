//! The smallest complete Box webhook receiver: one dependency on `boxhook`
//! (feature `server`), plus tokio and axum, and no other boxhook crate.
//!
//! It serves an axum app with [`boxhook::server`], so it holds connections
//! as `boxhook serve` does (request head and idle deadlines, a connection
//! cap that sheds the oldest idle connection, one 64 MiB budget for all
//! bodies), verifies every delivery to `/box/webhooks` on 127.0.0.1, logs each
//! event to stdout once (duplicates of a handled event are acknowledged
//! without running the handler again), and stops gracefully — finishing the
//! requests in flight — on Ctrl-C, after the first handled event (`--once`),
//! or after a time limit (`--for SECONDS`).
//!
//! ```text
//! BOX_PRIMARY_KEY=... BOX_SECONDARY_KEY=... cargo run -p boxhook-minimal-receiver -- --port 8080
//! ```
//!
//! Box only delivers to HTTPS on port 443: put a TLS-terminating proxy in
//! front of it.

use std::future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use boxhook::server::Server;
use boxhook::verify::BodyBudget;
use boxhook::{
    DeliveryContext, HandlerError, KeyRing, Layer as _, Router, Trigger, Verifier, VerifyLayer,
    WebhookEvent,
};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// The path Box delivers to (the webhook's address ends with it).
///
/// ```
/// assert_eq!(boxhook_minimal_receiver::PATH, "/box/webhooks");
/// ```
pub const PATH: &str = "/box/webhooks";

/// The usage line printed for a bad command line.
///
/// ```
/// assert!(boxhook_minimal_receiver::USAGE.contains("--once"));
/// ```
pub const USAGE: &str = "usage: boxhook-minimal-receiver [--port PORT] [--once] [--for SECONDS]
  keys: BOX_PRIMARY_KEY and/or BOX_SECONDARY_KEY (the app's signature keys)";

/// One event the handler ran for, in the order they ran.
///
/// ```
/// use boxhook::Trigger;
/// use boxhook_minimal_receiver::Received;
///
/// let received = Received {
///     event_id: "e-1".into(),
///     trigger: Trigger::FileUploaded,
///     source_name: Some("Q1.pdf".into()),
/// };
/// assert_eq!(received.trigger.as_str(), "FILE.UPLOADED");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The event's `id`.
    pub event_id: String,
    /// The event's trigger.
    pub trigger: Trigger,
    /// The name of the file, folder or web link, when Box sent one.
    pub source_name: Option<String>,
}

/// When [`run`] stops, besides Ctrl-C (which always stops it).
///
/// (How connections are held is [`boxhook::server::Limits`]: see [`run_within`].)
///
/// ```
/// use std::time::Duration;
/// use boxhook_minimal_receiver::Limits;
///
/// let until_first_event = Limits { once: true, max_run: Some(Duration::from_secs(60)) };
/// assert_ne!(until_first_event, Limits::default()); // the default runs until Ctrl-C
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Stop after the first event the handler ran for.
    pub once: bool,
    /// Stop after this long.
    pub max_run: Option<Duration>,
}

/// The command line: the port to listen on (on 127.0.0.1) and the limits.
///
/// ```
/// use std::time::Duration;
/// use boxhook_minimal_receiver::{Limits, Options};
///
/// let args = ["--port", "9000", "--once", "--for", "30"].map(String::from);
/// let options = Options::parse(args)?;
/// assert_eq!(options.port, 9000);
/// assert_eq!(options.limits, Limits { once: true, max_run: Some(Duration::from_secs(30)) });
/// assert_eq!(options.addr().to_string(), "127.0.0.1:9000");
/// # Ok::<(), String>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// The port on 127.0.0.1 (default 8080; 0 picks a free one).
    pub port: u16,
    /// When to stop.
    pub limits: Limits,
}

impl Options {
    /// Reads the arguments after the program name; the error says which one
    /// is wrong.
    ///
    /// ```
    /// use boxhook_minimal_receiver::Options;
    ///
    /// assert_eq!(Options::parse(Vec::<String>::new())?.port, 8080);
    /// let err = Options::parse(["--for".to_owned(), "soon".to_owned()]).unwrap_err();
    /// assert_eq!(err, "--for takes a whole number of seconds, not `soon`");
    /// # Ok::<(), String>(())
    /// ```
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut options = Self {
            port: 8080,
            limits: Limits::default(),
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--once" => options.limits.once = true,
                "--port" => {
                    let value = args.next().ok_or("--port takes a port number")?;
                    options.port = value
                        .parse()
                        .map_err(|_| format!("--port takes a port number, not `{value}`"))?;
                }
                "--for" => {
                    let value = args.next().ok_or("--for takes a number of seconds")?;
                    let seconds = value.parse().map_err(|_| {
                        format!("--for takes a whole number of seconds, not `{value}`")
                    })?;
                    options.limits.max_run = Some(Duration::from_secs(seconds));
                }
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        Ok(options)
    }

    /// The address to listen on: always 127.0.0.1.
    ///
    /// ```
    /// let options = boxhook_minimal_receiver::Options::parse(Vec::<String>::new())?;
    /// assert_eq!(options.addr().to_string(), "127.0.0.1:8080");
    /// # Ok::<(), String>(())
    /// ```
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }
}

/// The events handled so far, and a signal for the first one.
#[derive(Clone, Default)]
struct Log {
    events: Arc<Mutex<Vec<Received>>>,
    first: Arc<Notify>,
}

impl Log {
    fn push(&self, received: Received) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(received);
        // Stores a permit when nobody waits yet, so `--once` cannot miss it.
        self.first.notify_one();
    }

    fn take(&self) -> Vec<Received> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The axum app: boxhook's router behind its verify layer, at [`PATH`].
fn app(keys: KeyRing, log: Log) -> axum::Router {
    let record = move |event: WebhookEvent, ctx: DeliveryContext| {
        let log = log.clone();
        async move {
            let source_name = event.source().and_then(|s| s.name()).map(str::to_owned);
            println!(
                "{} {} {}",
                ctx.event_id(),
                event.trigger(),
                source_name.as_deref().unwrap_or("-")
            );
            log.push(Received {
                event_id: ctx.event_id().to_owned(),
                trigger: event.trigger().clone(),
                source_name,
            });
            Ok::<(), HandlerError>(())
        }
    };
    // Route the triggers you handle with `.on`; the fallback gets the rest.
    let router = Router::new()
        .on(Trigger::FileUploaded, record.clone())
        .fallback(record);
    let webhooks = VerifyLayer::new(Verifier::new(keys)).layer(router);
    axum::Router::new().route_service(PATH, webhooks)
}

/// Serves Box deliveries on `listener` until Ctrl-C or `limits` say stop,
/// then finishes the requests in flight and returns the events handled.
///
/// ```no_run
/// use boxhook::KeyRing;
/// use boxhook_minimal_receiver::{run, Limits};
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let keys = KeyRing::from_strs(Some("primary-key"), None)?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// let received = run(listener, keys, Limits { once: true, max_run: None }).await?;
/// assert!(received.len() <= 1);
/// # Ok(())
/// # }
/// ```
pub async fn run(
    listener: TcpListener,
    keys: KeyRing,
    limits: Limits,
) -> io::Result<Vec<Received>> {
    let log = Log::default();
    let stop = stop_signal(limits, Arc::clone(&log.first));
    boxhook::server::serve(listener, app(keys, log.clone()))
        .with_graceful_shutdown(stop)
        .await;
    Ok(log.take())
}

/// [`run`], holding connections within `connections` and buffering at most
/// `body_budget` bytes of bodies at once, instead of
/// [`boxhook::server`]'s defaults (what `boxhook serve`'s `--max-connections`,
/// `--header-timeout`, ... and `--body-budget` set).
///
/// ```no_run
/// use std::time::Duration;
/// use boxhook::server::Limits as Connections;
/// use boxhook::verify::BodyBudget;
/// use boxhook::KeyRing;
/// use boxhook_minimal_receiver::{run_within, Limits};
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let keys = KeyRing::from_strs(Some("primary-key"), None)?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// let connections = Connections { max_connections: 64, ..Connections::DEFAULT };
/// let budget = BodyBudget::new(8 * 1024 * 1024);
/// run_within(listener, keys, Limits::default(), connections, budget).await?;
/// # Ok(())
/// # }
/// ```
pub async fn run_within(
    listener: TcpListener,
    keys: KeyRing,
    limits: Limits,
    connections: boxhook::server::Limits,
    body_budget: BodyBudget,
) -> io::Result<Vec<Received>> {
    let log = Log::default();
    let stop = stop_signal(limits, Arc::clone(&log.first));
    Server::new(listener, app(keys, log.clone()))
        .limits(connections)
        .body_budget(body_budget)
        .with_graceful_shutdown(stop)
        .await;
    Ok(log.take())
}

/// Completes on Ctrl-C, on the first event (`once`), or at `max_run`.
async fn stop_signal(limits: Limits, first: Arc<Notify>) {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No signal handler (unusual): rely on the other limits.
            future::pending::<()>().await;
        }
    };
    let first_event = async {
        if limits.once {
            first.notified().await;
        } else {
            future::pending::<()>().await;
        }
    };
    let deadline = async {
        match limits.max_run {
            Some(max_run) => tokio::time::sleep(max_run).await,
            None => future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = first_event => {}
        () = deadline => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(args.iter().map(|&a| a.to_owned()))
    }

    #[test]
    fn every_bad_argument_is_named() {
        let cases: &[(&[&str], &str)] = &[
            (&["--port"], "--port takes a port number"),
            (
                &["--port", "65536"],
                "--port takes a port number, not `65536`",
            ),
            (&["--for"], "--for takes a number of seconds"),
            (
                &["--for", "-1"],
                "--for takes a whole number of seconds, not `-1`",
            ),
            (&["--forever"], "unknown argument `--forever`"),
            (&["--once", "x"], "unknown argument `x`"),
        ];
        for (args, want) in cases {
            assert_eq!(parse(args), Err((*want).to_owned()), "{args:?}");
        }
    }

    #[test]
    fn the_last_value_of_a_repeated_option_counts() {
        let options = parse(&["--port", "1", "--port", "0", "--for", "5"]).expect("valid");
        assert_eq!(options.addr(), SocketAddr::from(([127, 0, 0, 1], 0)));
        assert_eq!(
            options.limits,
            Limits {
                once: false,
                max_run: Some(Duration::from_secs(5)),
            }
        );
    }
}
