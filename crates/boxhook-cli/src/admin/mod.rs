//! `--admin ADDR`: a second listener, separate from the one Box delivers
//! to, for the people and programs that watch the receiver: `/metrics`
//! (Prometheus text), `/healthz`, `/readyz`, `/` (the dashboard) and
//! `/summary.json` (what the dashboard refreshes itself from).
//!
//! Off by default. On any address other than loopback it refuses to start
//! without `--admin-token`, and then every request must carry the token.

mod auth;
mod certificates;
mod host;
mod http;
mod inbox;
mod metrics_text;
mod page;
mod state;
mod summary;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::health::StoreHealth;
use crate::prune::PruneStatus;

pub(crate) use certificates::{Certificates, Source as CertificateSource};
pub(crate) use inbox::{InboxProbe, Probe};
pub(crate) use state::Dashboard;

use crate::usage;

/// `--admin` and `--admin-token`, shared by `serve` and `work`.
#[derive(clap::Args, Clone, Default)]
#[command(next_help_heading = "Admin")]
pub(crate) struct AdminArgs {
    /// Also listen on ADDR for /metrics (Prometheus), /healthz, /readyz and
    /// the dashboard at /. Off by default; never on the delivery listener.
    /// Anything but a loopback address needs --admin-token.
    #[arg(long, value_name = "ADDR")]
    admin: Option<SocketAddr>,
    /// The bearer token every admin request must carry (Authorization:
    /// Bearer TOKEN; a browser may give it as the password of a basic
    /// login). Prefer the environment variable: a flag shows in `ps`.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "BOXHOOK_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
}

/// What the admin listener needs from the program it watches.
pub(crate) struct Wiring {
    /// The receiver's deliveries, for the dashboard (absent in `work`).
    pub(crate) dashboard: Option<Arc<Dashboard>>,
    /// The store, for /readyz, the inbox card and the inbox gauges.
    pub(crate) inbox: Arc<dyn InboxProbe>,
    /// The outcome of the store's last write, for /readyz.
    pub(crate) health: Option<Arc<StoreHealth>>,
    /// The background pruner, for the retention card.
    pub(crate) prune: Option<Arc<PruneStatus>>,
    /// How many signature keys are loaded (`None`: the program verifies
    /// nothing, as `work`).
    pub(crate) keys: Option<usize>,
    /// The delivery listener's certificates, for the dashboard's
    /// certificate card (absent in `work`).
    pub(crate) certificates: Option<Arc<Certificates>>,
}

/// A checked `--admin` configuration, with the Prometheus recorder
/// installed.
pub(crate) struct Admin {
    addr: SocketAddr,
    token: Option<auth::Token>,
    metrics: PrometheusHandle,
}

impl AdminArgs {
    /// `None` without `--admin`. Checks the token rule and installs the
    /// process's metrics recorder (so call it once, before serving).
    pub(crate) fn prepare(&self) -> anyhow::Result<Option<Admin>> {
        let Some(addr) = self.admin else {
            if self.admin_token.is_some() {
                return Err(usage(
                    "--admin-token without --admin: add --admin ADDR, e.g. --admin 127.0.0.1:9090",
                ));
            }
            return Ok(None);
        };
        let token = match self.admin_token.as_deref() {
            Some(token) => Some(auth::Token::new(token)?),
            None => None,
        };
        if token.is_none() && !addr.ip().is_loopback() {
            return Err(usage(format!(
                "--admin {addr} is reachable from other machines: set --admin-token (or \
                 BOXHOOK_ADMIN_TOKEN) to a long random secret, or listen on loopback, e.g. \
                 --admin 127.0.0.1:{}",
                addr.port()
            )));
        }
        let metrics = PrometheusBuilder::new()
            .install_recorder()
            .map_err(|err| anyhow::anyhow!("cannot install the metrics recorder: {err}"))?;
        boxhook::metrics::describe();
        // Shown from the start, at count 0, like the counters once they move.
        let _ = metrics::histogram!(boxhook::metrics::VERIFY_SECONDS);
        let _ = metrics::histogram!(boxhook::metrics::HANDLER_SECONDS);
        crate::prune::register_metrics();
        Ok(Some(Admin {
            addr,
            token,
            metrics,
        }))
    }
}

impl Admin {
    /// [`Admin::start`] for `boxhook work`: the inbox alone (no deliveries,
    /// no keys), announced on stderr.
    pub(crate) async fn start_for_worker(
        self,
        inbox: impl boxhook::inbox::Inbox,
        health: Arc<StoreHealth>,
        prune: Option<Arc<PruneStatus>>,
    ) -> anyhow::Result<SocketAddr> {
        let wiring = Wiring {
            dashboard: None,
            inbox: Arc::new(Probe::new(inbox)),
            health: Some(health),
            prune,
            keys: None,
            certificates: None,
        };
        let addr = self.start(wiring).await?;
        crate::logging::notice(
            "INFO",
            &format!("admin on http://{addr}/ (metrics, healthz, readyz, inbox)"),
        );
        Ok(addr)
    }

    /// Binds the admin address and serves it on the current runtime until
    /// the program ends; also refreshes the inbox gauges every
    /// [`inbox::REFRESH`]. Returns the address bound.
    pub(crate) async fn start(self, wiring: Wiring) -> anyhow::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .map_err(|err| {
                anyhow::anyhow!(
                    "cannot listen on --admin {}: {err}; is another process using it? pick \
                 another address",
                    self.addr
                )
            })?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(http::Shared {
            token: self.token,
            metrics: self.metrics,
            dashboard: wiring.dashboard,
            counter: inbox::Counter::new(wiring.inbox),
            health: wiring.health,
            prune: wiring.prune,
            keys: wiring.keys,
            certificates: wiring.certificates,
        });
        tokio::spawn(inbox::refresh_loop(Arc::clone(&shared.counter)));
        let upkeep = shared.metrics.clone();
        tokio::spawn(async move {
            // Histograms keep their samples until upkeep folds them in.
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                upkeep.run_upkeep();
            }
        });
        tokio::spawn(http::serve(listener, shared));
        Ok(addr)
    }
}
