//! `boxhook serve`: a standalone receiver built on the framework — the
//! verify layer, the router, and the SQLite inbox as its only handler — with
//! one log line per delivery, the framework's warnings and errors on stderr,
//! bounded connections, HTTPS with a certificate reloaded on SIGHUP
//! (`--tls-cert`, `--tls-key`), and a graceful stop on SIGINT/SIGTERM.

mod acme;
mod tls;
mod v1;

use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use boxhook::server::{Limits, Server, Tls, DEFAULT_BODY_BUDGET, DEFAULT_GRACE};
use boxhook::verify::DEFAULT_BODY_LIMIT;
use boxhook::Router;
use boxhook_core::{KeyRing, KeySlot, Printable};
use tokio::net::{TcpListener, TcpSocket};

use crate::keys::KeyArgs;
use crate::logging::{self, notice, LogFormat};
use crate::receiver::App;
use crate::usage;

/// How many connections may wait to be accepted (capped by the system,
/// `net.core.somaxconn` on Linux).
const DEFAULT_BACKLOG: u32 = 1024;

/// The largest `--body-budget`: 16 GiB.
const MAX_BODY_BUDGET: u64 = 16 * 1024 * 1024 * 1024;

/// The largest `--max-body`: far above any real payload, low enough that
/// `--max-connections` bodies stay a number a machine can hold.
const MAX_BODY_LIMIT: u64 = 64 * 1024 * 1024;

/// Arguments of `boxhook serve`.
#[derive(clap::Args)]
#[command(after_help = "\
Answers: 200 stored or duplicate (counted), 401 any verification failure, \
413 body over --max-body, 405 not POST, 400 a verified body that is not a \
webhook_event, 404 any other path, 500/503 the inbox failed (Box retries). \
Every answer other than a 2xx closes its connection.

V1 callbacks (--v1-path P, Box's root-folder webhooks): GET with a query or \
POST with a form, accepted when the secret parameter (--v1-param, default \
token) appears once and equals a secret from --v1-secret-env; each is stored \
as its own event of kind v1 (no event id, no deduplication, no retries), \
without the secret. Answers: 200 stored, 401 secret missing, repeated or \
wrong, 400 a signed V2 delivery sent to P (or undecodable parameters), 405, \
413, 415 a POST that is not a form, 503 the inbox failed. A V1 callback sent \
to the V2 path is answered 400 (v1_callback_on_v2_endpoint).

Connections: a connection is busy while a request is being answered, idle \
otherwise (before its first request, between requests, while a request head \
is still arriving). At --max-connections a new connection is still accepted \
and the oldest idle one is closed to make room; only when every connection \
is busy do new ones wait in the listen backlog (--backlog), and busy ones \
finish within the 10 s body read deadline and the handler deadline. \
On SIGINT/SIGTERM idle connections close at once and busy ones get --grace.

Memory: bodies being read share one budget (--body-budget, 64 MiB by \
default) whatever the number of connections: a delivery whose body does not \
fit in what is left is answered 503 at once, and Box retries it. On top of \
that each connection holds at most 16 KiB of HTTP read buffer (a request \
head must fit in it): about --body-budget + --max-connections × 16 KiB, \
80 MiB with the defaults.

Log: on stderr, first where it listens (`listening on URL`), the admin and \
V1 addresses and the store (`inbox: …`, never with a password); then one \
line per request, with text from the request escaped, \
and the framework's warnings and errors (e.g. why the inbox failed to store \
an event). RUST_LOG overrides the filter (default \"warn\"), e.g. \
RUST_LOG=boxhook=info for a line per handled event. --log-format json \
writes each line as one JSON object instead. When stdout is not a \
terminal, it carries the `listening on URL` line alone, for scripts.

Admin (--admin ADDR, off by default): a second listener serving GET \
/metrics (Prometheus text), /healthz (alive), /readyz (200 when the inbox \
answers, its last write succeeded and keys are loaded, else 503 with the \
reason) and / (a dashboard that refreshes itself). The delivery listener \
never serves these paths. Any address but loopback needs --admin-token or \
BOXHOOK_ADMIN_TOKEN (Authorization: Bearer TOKEN); without a token only \
requests addressed to localhost, 127.0.0.1 or [::1] are answered (421 \
otherwise). With --admin, 401s are diagnosed for the dashboard, at most 50 \
a second.

Retention: done events are pruned 30 days after they were received, dead \
ones after 90, V1 callbacks after 30 (--retain-done, --retain-dead, \
--retain-v1: 90s, 30m, 12h, 30d, or forever), in paced batches (25 events on \
SQLite, 100 on PostgreSQL) every 5 minutes; on PostgreSQL whole UTC days at a \
time (its partitions), so an event may stay up to a day past its retention; a pruned event's deduplication key is kept 7 days (--retain-keys, \
at least 1d), so Box's late retries are still answered as duplicates. \
Pending and claimed events are never pruned.

TLS: Box only delivers to HTTPS on port 443, over TLS 1.2 or 1.3 with \
FIPS-compliant cipher suites. With --tls-cert and --tls-key the listener \
speaks HTTPS itself: TLS 1.2 and 1.3 only, ALPN http/1.1, only the \
FIPS-approved suites Box's client offers (NIST SP 800-52r2: \
TLS13_AES_128_GCM_SHA256, TLS13_AES_256_GCM_SHA384, \
TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, \
TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, \
TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384; \
groups secp256r1 and secp384r1; no ChaCha20, no X25519). The certificate \
must be signed by a public CA (Box refuses self-signed ones). On SIGHUP \
both files are read again: new handshakes get the new certificate, open \
connections keep theirs, and a pair that does not load is logged \
(`certificate reload failed: …; keeping the old one`) while the old one \
stays. A connection in its handshake counts against --max-connections; \
the handshake must finish within --tls-handshake-timeout. For example:
  boxhook serve --listen 0.0.0.0:443 --tls-cert /etc/boxhook/fullchain.pem \\
      --tls-key /etc/boxhook/privkey.pem --inbox /var/lib/boxhook/inbox.sqlite
  kill -HUP $(pidof boxhook)    # after renewing the files

Or let it get and renew its certificate itself with --acme DOMAIN (ACME, \
Let's Encrypt by default): the TLS-ALPN-01 challenge is answered on the \
same listener, so DOMAIN must reach it on port 443. The account key and \
the certificate are kept in --acme-cache (created private to the owner), \
so a restart orders nothing; the certificate is renewed in the background \
once two thirds of its validity have passed (30 days before a 90-day one \
expires), and a failed order is logged (`ACME: certificate for …: …; \
retrying with backoff`) and retried after 1, 2, 4, … s, at most about 18 h \
apart. For example:
  boxhook serve --listen 0.0.0.0:443 --acme hooks.example.com \\
      --acme-cache /var/lib/boxhook/acme --acme-contact mailto:ops@example.com \\
      --inbox /var/lib/boxhook/inbox.sqlite

Or run it behind a TLS-terminating proxy or tunnel that forwards the body \
untouched, e.g. with Caddy:
  webhooks.example.com {
      reverse_proxy 127.0.0.1:8080
  }

Exit status: 0 stopped by SIGINT/SIGTERM, 1 it could not start (the \
address in use, the store unreachable), 2 usage error (including a TLS \
certificate or key that does not load).

Examples:
  boxhook serve --primary-key \"$KEY\" --inbox ./boxhook-inbox.sqlite
  BOXHOOK_STORE=postgres://boxhook@db/boxhook boxhook serve --listen 0.0.0.0:8080 \\
      --path /box/webhooks --admin 127.0.0.1:9090")]
pub(crate) struct Args {
    /// Address to listen on (port 0 picks a free one; the address is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The one path deliveries are accepted on.
    #[arg(long, value_name = "P", default_value = "/")]
    path: String,
    /// The largest body accepted, in bytes, 1 to 67108864 (real payloads are
    /// 1–8 KB).
    #[arg(long, help_heading = "Limits", value_name = "BYTES", default_value_t = DEFAULT_BODY_LIMIT as u64,
          value_parser = clap::value_parser!(u64).range(1..=MAX_BODY_LIMIT))]
    max_body: u64,
    /// How many body bytes may be buffered at once across all connections,
    /// 0 to 17179869184 (16 GiB); a delivery that does not fit is answered
    /// 503 at once (Box retries). Memory for bodies stays under this,
    /// whatever the number of connections.
    #[arg(long, help_heading = "Limits", value_name = "BYTES", default_value_t = DEFAULT_BODY_BUDGET as u64,
          value_parser = clap::value_parser!(u64).range(0..=MAX_BODY_BUDGET))]
    body_budget: u64,
    /// After SIGINT/SIGTERM, how long in-flight deliveries may take, in
    /// seconds, 0 to 3600; idle connections close at once.
    #[arg(long, help_heading = "Limits", value_name = "S", default_value_t = DEFAULT_GRACE.as_secs(),
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    grace: u64,
    /// The most connections held at once, 1 to 1000000. At the limit a new
    /// connection still gets in and the oldest idle one is closed; only when
    /// all are busy do new ones wait in the listen backlog.
    #[arg(long, help_heading = "Limits", value_name = "N", default_value_t = Limits::DEFAULT.max_connections as u64,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections: u64,
    /// How long a request head may take to arrive, in seconds, 1 to 300,
    /// counted from when the connection opens or its last answer was sent.
    #[arg(long, help_heading = "Limits", value_name = "S", default_value_t = Limits::DEFAULT.header_timeout.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=300))]
    header_timeout: u64,
    /// How long a connection may go without a request being answered
    /// (keep-alive idle time), in seconds, 1 to 3600.
    #[arg(long, help_heading = "Limits", value_name = "S", default_value_t = Limits::DEFAULT.idle_timeout.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    idle_timeout: u64,
    /// How long a connection may stay open in all, in seconds, 1 to 86400; it
    /// closes after its request in flight, if any, is answered.
    #[arg(long, help_heading = "Limits", value_name = "S", default_value_t = Limits::DEFAULT.max_age.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    max_connection_age: u64,
    /// How many requests one connection may make, 1 to 1000000; the answer
    /// to the last one closes it.
    #[arg(long, help_heading = "Limits", value_name = "N", default_value_t = Limits::DEFAULT.max_requests,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_requests_per_connection: u64,
    /// How many connections may wait to be accepted, 1 to 65535 (the system
    /// may cap it lower: net.core.somaxconn on Linux).
    #[arg(long, help_heading = "Limits", value_name = "N", default_value_t = DEFAULT_BACKLOG,
          value_parser = clap::value_parser!(u32).range(1..=65_535))]
    backlog: u32,
    /// How stderr's log is written: text (a line per request) or json (one
    /// JSON object per line, with the text line's fields under their names,
    /// and the framework's own events too).
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Where events are stored: --store URL (postgres://…, host=… dbname=…,
    /// sqlite:PATH, a path) or --inbox FILE (a SQLite file, created if
    /// missing).
    #[command(flatten)]
    store: crate::store::StoreArgs,
    #[command(flatten)]
    webhooks: crate::webhooks::ServeArgs,
    #[command(flatten)]
    v1: v1::V1Args,
    #[command(flatten)]
    tls: tls::TlsArgs,
    #[command(flatten)]
    acme: acme::AcmeArgs,
    #[command(flatten)]
    admin: crate::admin::AdminArgs,
    #[command(flatten)]
    retention: crate::retention::RetentionArgs,
    #[command(flatten)]
    pub(crate) keys: crate::keys::KeyArgs,
}

impl Args {
    fn limits(&self) -> Limits {
        Limits {
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
            header_timeout: Duration::from_secs(self.header_timeout),
            idle_timeout: Duration::from_secs(self.idle_timeout),
            max_age: Duration::from_secs(self.max_connection_age),
            max_requests: self.max_requests_per_connection,
        }
    }
}

/// Serves until SIGINT or SIGTERM, then stops gracefully and exits 0.
/// How many of the two signature keys `ring` holds, for `/readyz`.
fn loaded_keys(ring: &KeyRing) -> usize {
    KeySlot::BOTH
        .into_iter()
        .filter(|slot| ring.key(*slot).is_some())
        .count()
}

pub(crate) fn run(keys: &KeyArgs, args: &Args) -> anyhow::Result<ExitCode> {
    let ring = keys.ring()?;
    if !args.path.starts_with('/') {
        return Err(usage(format!(
            "--path {} must start with /, e.g. --path /box-webhooks",
            Printable(&args.path)
        )));
    }
    // Every flag is checked before anything is created or opened: a
    // mistake leaves no store file behind and no schema migrated.
    let managed = crate::webhooks::ServeWiring::from_args(&args.webhooks)?;
    let v1 = v1::prepare(&args.v1, &args.path)?;
    let certificates = Arc::new(crate::admin::Certificates::default());
    let tls = Https::prepare(args, &certificates)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let diagnosis_keys = keys.diagnosis_keys()?;
    logging::init_tracing_as(args.log_format)?;
    // Before the first delivery: the recorder must see every count.
    let admin = args.admin.prepare()?;
    let max_body = usize::try_from(args.max_body).unwrap_or(usize::MAX);
    let store = args.store.store()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // The address before the store: a port in use leaves nothing
        // created either.
        let listener = listen(args.listen, args.backlog).map_err(|err| {
            anyhow::anyhow!(
                "cannot listen on {}: {err}; is another process using it? pick another \
                 --listen address",
                args.listen
            )
        })?;
        let addr = listener.local_addr()?;
        if let Some(Https::Files(tls)) = &tls {
            // Before the admin listener answers: its first scrape sees it.
            tls.record_expiry();
            // Before the address is printed: a SIGHUP from then on reloads.
            #[cfg(unix)]
            tls.reload_on_sighup()?;
        }
        // The inbox's errors say what to check (permissions, mount, schema,
        // the database's address). Opened on this runtime: PostgreSQL
        // connections are driven by its tasks.
        let inbox = store.open().await.map_err(crate::store::failure)?;
        // Pruned in the background; every write watched, for /readyz.
        let prune = Some((args.retention.retention(), crate::store::prune_plan(&inbox)));
        let (inbox, health, prune) = crate::health::Watched::start(inbox, prune);
        let budget = usize::try_from(args.body_budget).unwrap_or(usize::MAX);
        let v1 = v1.map(|v1| v1.service(&inbox));
        let router = crate::webhooks::ServeWiring::route(managed.as_ref(), Router::new());
        let key_count = loaded_keys(&ring);
        let probe = Arc::new(crate::admin::Probe::new(inbox.clone()));
        let mut app = App::with_router(ring, router.store_in(inbox), &args.path, max_body, budget)
            .v1(v1.clone())
            .log_as(args.log_format)
            // With the dashboard on, 401s are diagnosed for it (50 a second at most).
            .diagnose_rejections(diagnosis_keys, admin.is_some());
        let admin_addr = match admin {
            Some(admin) => {
                let dashboard = Arc::new(crate::admin::Dashboard::default());
                let seen = Arc::clone(&dashboard);
                let path = args.path.clone();
                app = app.observe(move |log| {
                    if log.path == path {
                        seen.record(log);
                    }
                });
                let wiring = crate::admin::Wiring {
                    dashboard: Some(dashboard),
                    inbox: probe,
                    health: Some(health),
                    prune,
                    keys: Some(key_count),
                    certificates: Some(Arc::clone(&certificates)),
                };
                Some(admin.start(wiring).await?)
            }
            None => None,
        };
        // SIGINT and SIGTERM are caught from here on: a supervisor may send
        // one as soon as it reads the `listening on` line.
        let stop = crate::stop_signal();
        let url = format!("{scheme}://{addr}");
        announce(
            &url,
            &args.path,
            admin_addr,
            v1.as_ref().map(|(path, _)| path.as_str()),
        );
        notice("INFO", &format!("inbox: {}", store.describe()));
        if let Some(managed) = &managed {
            managed.start();
        }
        std::io::stdout().flush()?;
        let tls = tls.map(|https| https.start(args)).transpose()?;
        serve_until_stopped(listener, app, args, tls, stop).await;
        if let Some(managed) = &managed {
            managed.stop();
        }
        notice("INFO", "stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// The operator's lines, all on stderr, in this order: listening, admin,
/// V1 (the inbox line follows). stdout carries the address line alone, for
/// scripts and supervisors (`--listen 127.0.0.1:0` picks the port); on a
/// terminal it would only repeat stderr's first line.
fn announce(url: &str, path: &str, admin: Option<SocketAddr>, v1: Option<&str>) {
    if !std::io::stdout().is_terminal() {
        println!("listening on {url}{path}");
    }
    notice("INFO", &format!("listening on {url}{}", Printable(path)));
    if let Some(admin) = admin {
        notice(
            "INFO",
            &format!("admin on http://{admin}/ (metrics, healthz, readyz, dashboard)"),
        );
    }
    if let Some(path) = v1 {
        notice("INFO", &format!("V1 callbacks on {url}{}", Printable(path)));
    }
}

/// Where the listener's certificate comes from when it speaks HTTPS.
enum Https {
    /// `--tls-cert` and `--tls-key`, reloaded on SIGHUP.
    Files(tls::Prepared),
    /// `--acme`: obtained and renewed in the background.
    Acme(acme::Prepared),
}

impl Https {
    /// The certificate source the flags name, checked; `None` for plain
    /// HTTP.
    /// The certificate in use is recorded in `in_use`.
    fn prepare(
        args: &Args,
        in_use: &Arc<crate::admin::Certificates>,
    ) -> anyhow::Result<Option<Self>> {
        if let Some(acme) = acme::prepare(&args.acme, in_use)? {
            return Ok(Some(Self::Acme(acme)));
        }
        Ok(tls::prepare(&args.tls, in_use)?.map(Self::Files))
    }

    /// The server's TLS settings; `--acme` starts ordering on the current
    /// runtime.
    fn start(self, args: &Args) -> anyhow::Result<Tls> {
        match self {
            Self::Files(files) => Ok(files.tls()),
            Self::Acme(acme) => acme.start(args.tls.handshake_timeout()),
        }
    }
}

/// Serves `app` on `listener` (over `tls` if given) within `args`' limits
/// until `signal` (SIGINT or SIGTERM, see [`crate::stop_signal`]), then
/// lets in-flight deliveries finish for `--grace`.
async fn serve_until_stopped(
    listener: TcpListener,
    app: App,
    args: &Args,
    tls: Option<Tls>,
    signal: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let stop = async {
        signal.await;
        notice(
            "INFO",
            "stopping: no new connections; finishing in-flight deliveries",
        );
    };
    // The verify layer holds the --body-budget: none from the server.
    let server = Server::new(listener, app);
    let server = match tls {
        Some(tls) => server.tls(tls),
        None => server,
    };
    server
        .limits(args.limits())
        .grace(Duration::from_secs(args.grace))
        .without_body_budget()
        .on_notice(logging::server_notice)
        .with_graceful_shutdown(stop)
        .await;
}

/// A listener on `addr` with room for `backlog` connections waiting to be
/// accepted.
fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As std's and tokio's `bind` do on Unix: a restart can reuse the port
    // while old connections linger in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}
