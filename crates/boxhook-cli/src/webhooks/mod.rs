//! `boxhook webhooks`: keep a Box app's webhooks in the state a TOML file
//! declares (`plan`, `apply`), look at them (`list`) and remove one
//! (`delete`), through Box's webhooks API. The file is checked against
//! Box's rules first: any violation exits 2 before a single API call.

mod addresses;
mod demo;
mod output;
mod recreate;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use boxhook_admin::{
    apply, current_state, plan, BoxClient, Credentials, DesiredError, DesiredState, Error,
    RetryPolicy, DEFAULT_API_BASE,
};

pub(crate) use demo::run_step as demo_step;
pub(crate) use recreate::{ServeArgs, ServeWiring};

use crate::usage;

/// Arguments of `boxhook webhooks`.
#[derive(clap::Args)]
#[command(after_help = "\
Credentials come from the environment: BOX_ACCESS_TOKEN, or BOX_CLIENT_ID, \
BOX_CLIENT_SECRET, BOX_SUBJECT_TYPE (enterprise or user) and BOX_SUBJECT_ID \
for the Client Credentials Grant (token from {api-base}/oauth2/token, \
refreshed before it expires). Box's 429 and 5xx answers are retried with \
backoff, honouring Retry-After.

The file declares each webhook once:
  [[webhook]]
  target = \"folder:218730924451\"      # or \"file:ID\"
  address = \"https://hooks.example.com/box\"
  triggers = [\"FILE.UPLOADED\", \"FILE.TRASHED\"]

Exit status: 0 done (apply: everything converged), 1 a Box call failed \
(apply: some webhook failed, each named), 2 a usage error or a webhook Box \
would refuse (all listed, nothing sent).

Examples:
  boxhook webhooks plan --file webhooks.toml
  boxhook webhooks apply --file webhooks.toml
  boxhook webhooks list
  boxhook webhooks delete 1234567890")]
pub(crate) struct Args {
    /// Box's API root; the token URL is {URL}/oauth2/token. Plain http only
    /// to a loopback host (a fake API in tests).
    #[arg(long, value_name = "URL", default_value = DEFAULT_API_BASE, global = true)]
    api_base: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Show what `apply` would change: create, update (with the field
    /// diff), unchanged, and with --prune delete.
    #[command(after_help = "\
Every declared address is checked against Box's rules first, as \
`boxhook check-address` does, and shown above the plan: a failing one is a \
warning (--strict: an error, exit 2). --no-check-addresses skips the \
checks, e.g. offline.

Examples:
  boxhook webhooks plan --file webhooks.toml
  boxhook webhooks plan --file webhooks.toml --prune --json
  boxhook webhooks plan --file webhooks.toml --no-check-addresses")]
    Plan(PlanArgs),
    /// Make the changes `plan` shows. A 409 on create (a webhook is on the
    /// target already) updates that webhook instead; nothing is deleted to
    /// be re-created.
    #[command(after_help = "\
Every declared address is checked against Box's rules first, as \
`boxhook check-address` does: a failing one is a warning, and with --strict \
an error (exit 2, nothing changed at Box). --no-check-addresses skips the \
checks.

Examples:
  boxhook webhooks apply --file webhooks.toml
  boxhook webhooks apply --file webhooks.toml --prune
  boxhook webhooks apply --file webhooks.toml --strict")]
    Apply(PlanArgs),
    /// List this app and user's webhooks with address and triggers.
    #[command(after_help = "\
Examples:
  boxhook webhooks list
  BOX_ACCESS_TOKEN=... boxhook webhooks list --json")]
    List(ListArgs),
    /// Delete one webhook by id.
    #[command(after_help = "\
Examples:
  boxhook webhooks list
  boxhook webhooks delete 1234567890")]
    Delete(DeleteArgs),
}

#[derive(clap::Args)]
// Reason: each bool is an independent command-line switch.
#[allow(clippy::struct_excessive_bools)]
struct PlanArgs {
    /// The desired-state TOML file.
    #[arg(long, value_name = "F")]
    file: PathBuf,
    /// Also delete webhooks that deliver to one of the file's addresses but
    /// whose target the file does not declare.
    #[arg(long)]
    prune: bool,
    /// One JSON object instead of lines.
    #[arg(long)]
    json: bool,
    /// Do not check the declared addresses against Box's rules (they are
    /// checked by default, as `boxhook check-address` does, and shown with
    /// the plan): for a plan made offline, or addresses not yet live.
    #[arg(long, conflicts_with = "strict")]
    no_check_addresses: bool,
    /// The default since the checks run unless --no-check-addresses; still
    /// accepted so that older scripts keep working.
    #[arg(long, hide = true, conflicts_with = "no_check_addresses")]
    check_addresses: bool,
    /// Make a failing address an error: exit 2, nothing changed at Box
    /// (without it, a warning).
    #[arg(long)]
    strict: bool,
}

#[derive(clap::Args)]
struct ListArgs {
    /// One JSON object per webhook.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct DeleteArgs {
    /// The webhook's id (`boxhook webhooks list` shows it).
    #[arg(value_name = "ID")]
    id: String,
}

/// Runs a `webhooks` subcommand.
pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    // The file first: a webhook Box would refuse stops everything before
    // credentials are even read.
    let desired = match &args.command {
        Command::Plan(a) | Command::Apply(a) => Some(read_desired(&a.file)?),
        Command::List(_) | Command::Delete(_) => None,
    };
    let client = client(&args.api_base, RetryPolicy::default())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let checked = match (&args.command, &desired) {
            // Checked unless --no-check-addresses (--check-addresses asks for the default).
            (Command::Plan(a) | Command::Apply(a), Some(desired))
                if a.check_addresses || !a.no_check_addresses =>
            {
                let reports = addresses::check_all(desired).await?;
                if !a.json {
                    addresses::print(&reports, a.strict)?;
                }
                // Only `--json` shows the reports as JSON: built once, here.
                let json = a.json.then(|| addresses::json(&reports));
                if a.strict {
                    if let Some(err) = addresses::strict_failure(&reports) {
                        if let Some(json) = &json {
                            println!("{}", serde_json::json!({"addresses": json}));
                        }
                        return Err(err);
                    }
                }
                json
            }
            _ => None,
        };
        match (&args.command, desired) {
            (Command::Plan(a), Some(desired)) => {
                let changes = plan(
                    &desired,
                    &current(&client, &desired, a.prune).await?,
                    a.prune,
                );
                output::plan(&changes, a.json, checked)?;
                Ok(ExitCode::SUCCESS)
            }
            (Command::Apply(a), Some(desired)) => {
                let changes = plan(
                    &desired,
                    &current(&client, &desired, a.prune).await?,
                    a.prune,
                );
                let results = apply(&client, &desired, changes).await;
                let failed = output::applied(&results, a.json, checked)?;
                Ok(if failed == 0 {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                })
            }
            (Command::List(a), _) => {
                let all = client
                    .list_full()
                    .await
                    .map_err(|e| api_failure(e, "list the webhooks"))?;
                output::list(&all, a.json)?;
                Ok(ExitCode::SUCCESS)
            }
            (Command::Delete(a), _) => {
                client.delete(&a.id).await.map_err(|e| {
                    api_failure(
                        e,
                        &format!("delete webhook {}", boxhook_core::Printable(&a.id)),
                    )
                })?;
                println!("deleted webhook {}", a.id);
                Ok(ExitCode::SUCCESS)
            }
            (Command::Plan(_) | Command::Apply(_), None) => Err(usage("no desired state")),
        }
    })
}

/// Reads and checks the desired-state file; every violation is a usage
/// error (exit 2), all listed.
pub(crate) fn read_desired(path: &Path) -> anyhow::Result<DesiredState> {
    let bytes = crate::read_input(path, "desired-state file")?;
    let text = String::from_utf8(bytes)
        .map_err(|_| usage(format!("{} is not UTF-8 text", path.display())))?;
    // Several lines, one problem each: each escaped on its own when printed.
    DesiredState::parse(&text).map_err(|err| {
        let lines = match &err {
            DesiredError::Syntax(_) => err.to_string().lines().map(str::to_owned).collect(),
            DesiredError::Violations(all) => std::iter::once(format!(
                "{} problem(s), nothing was sent to Box:",
                all.len()
            ))
            .chain(all.iter().map(ToString::to_string))
            .collect(),
        };
        crate::shown::usage_lines(path.display().to_string(), lines)
    })
}

/// A client for `api_base` with the environment's credentials; missing or
/// contradictory credentials and a bad base are usage errors.
pub(crate) fn client(api_base: &str, retry: RetryPolicy) -> anyhow::Result<BoxClient> {
    let credentials = Credentials::from_vars(|name| std::env::var(name).ok()).map_err(usage)?;
    BoxClient::builder(credentials)
        .api_base(api_base)
        .retry(retry)
        .build()
        .map_err(|err| usage(err.to_string()))
}

async fn current(
    client: &BoxClient,
    desired: &DesiredState,
    prune: bool,
) -> anyhow::Result<Vec<boxhook_admin::Webhook>> {
    current_state(client, desired, prune)
        .await
        .map_err(|e| api_failure(e, "read the current webhooks"))
}

/// A failed Box call as the command's error (exit 1), or a usage error
/// (exit 2) when it is the client's configuration.
fn api_failure(err: Error, doing: &str) -> anyhow::Error {
    match err {
        Error::Config(detail) => usage(detail),
        other => anyhow::anyhow!("cannot {doing}: {other}"),
    }
}
