//! `boxhook serve --webhooks F`: the receiver re-creates the declared
//! webhooks Box removes with `auto_cleanup`, and alerts `NO_ACTIVE_SESSION`
//! with the remedy for the app's kind of authentication.

use std::path::PathBuf;
use std::time::Duration;

use boxhook::Router;
use boxhook_admin::{AuthKind, Credentials, Recreate, RetryPolicy, SessionAlert, DEFAULT_API_BASE};

use crate::usage;

/// Retries inside the `WEBHOOK.DELETED` handler: 3 retries, waits of at most
/// 4 s (Retry-After included), so a re-create ends well inside the router's
/// 25 s handler deadline; past them the event is answered 503 and Box
/// delivers it again later.
const IN_HANDLER_RETRY: RetryPolicy =
    RetryPolicy::bounded(3, Duration::from_secs(1), Duration::from_secs(4));

/// The `serve` flags for managed webhooks.
#[derive(clap::Args)]
#[command(next_help_heading = "Managed webhooks")]
pub(crate) struct ServeArgs {
    /// Re-create the webhooks declared in this desired-state file (see
    /// `boxhook webhooks --help`) when Box deletes them with auto_cleanup.
    /// Box credentials come from the environment, as for `boxhook webhooks`.
    /// WEBHOOK.DELETED and NO_ACTIVE_SESSION are then handled (re-created or
    /// alerted, one `webhooks:` line each) instead of stored in the inbox.
    #[arg(long, value_name = "F")]
    webhooks: Option<PathBuf>,
    /// Box's API root for --webhooks.
    #[arg(long, value_name = "URL", default_value = DEFAULT_API_BASE, requires = "webhooks")]
    api_base: String,
    /// How the Box app authenticates, for the NO_ACTIVE_SESSION remedy: jwt,
    /// oauth2, developer-token or client-credentials (default: from the
    /// credentials, client-credentials for BOX_CLIENT_ID, every remedy for a
    /// token).
    #[arg(long, value_name = "KIND", requires = "webhooks")]
    box_auth: Option<String>,
}

/// The handlers `serve` adds when --webhooks is given.
pub(crate) struct ServeWiring {
    recreate: Recreate,
    auth: AuthKind,
    declared: usize,
}

impl ServeWiring {
    /// Reads the file and the credentials; `None` without --webhooks. Every
    /// problem is a usage error, before the receiver starts.
    pub(crate) fn from_args(args: &ServeArgs) -> anyhow::Result<Option<Self>> {
        let Some(path) = &args.webhooks else {
            return Ok(None);
        };
        let desired = super::read_desired(path)?;
        let client = super::client(&args.api_base, IN_HANDLER_RETRY)?;
        let auth = match args.box_auth.as_deref() {
            Some(kind) => AuthKind::parse(kind).ok_or_else(|| {
                usage(format!(
                    "--box-auth {:?} is not one of jwt, oauth2, developer-token, client-credentials",
                    boxhook_core::Printable(kind)
                ))
            })?,
            None => match client.credentials() {
                Credentials::ClientCredentials(_) => AuthKind::ClientCredentials,
                Credentials::AccessToken(_) => AuthKind::Unknown,
            },
        };
        let declared = desired.webhooks().len();
        let recreate = Recreate::observed(client, desired, |outcome, stats| {
            crate::logging::notice("WARN", &format!("webhooks: {outcome} [{stats}]"));
        });
        Ok(Some(Self {
            recreate,
            auth,
            declared,
        }))
    }

    /// `router` with the `WEBHOOK.DELETED` and `NO_ACTIVE_SESSION` handlers.
    pub(crate) fn route(wiring: Option<&Self>, router: Router) -> Router {
        match wiring {
            None => router,
            Some(w) => router
                .on_webhook_deleted(w.recreate.clone())
                .on_no_active_session(SessionAlert::new(w.auth, |line: &str| {
                    crate::logging::notice("WARN", &format!("webhooks: {line}"));
                })),
        }
    }

    /// Says what is managed, and learns the ids of the webhooks that exist
    /// now in the background (a failure is logged; the receiver runs on).
    pub(crate) fn start(&self) {
        crate::logging::notice(
            "INFO",
            &format!(
                "webhooks: {} declared; re-created on auto_cleanup",
                self.declared
            ),
        );
        let recreate = self.recreate.clone();
        tokio::spawn(async move {
            match recreate.learn().await {
                Ok(n) => crate::logging::notice(
                    "INFO",
                    &format!("webhooks: {n} webhook(s) exist for this app and user"),
                ),
                Err(err) => crate::logging::notice(
                    "WARN",
                    &format!(
                        "webhooks: cannot list the current webhooks ({err}); a \
                         WEBHOOK.DELETED without its item as source cannot be matched until \
                         the next restart"
                    ),
                ),
            }
        });
    }

    /// The counts, for the last line before the receiver exits.
    pub(crate) fn stop(&self) {
        crate::logging::notice("INFO", &format!("webhooks: {}", self.recreate.stats()));
    }
}
