//! `boxhook inbox list|show|requeue`: read what a receiver stored, and put
//! dead (or done) events back in the queue. Reading is safe while `serve`
//! is writing (the SQLite inbox runs in WAL mode), and changes nothing: a
//! SQLite inbox is opened read-only, so pointing `--inbox` at the wrong file
//! neither creates a schema in it nor leaves `-wal`/`-shm` files next to
//! it, and a PostgreSQL schema is not migrated.
//!
//! Everything an event's sender chose (ids, triggers, source names) is
//! written through [`Printable`] in the table and in messages, so a control
//! sequence in it cannot act on the terminal. `--json` is escaped by JSON.
//! `show` writes the stored body byte for byte, unescaped: it is the
//! evidence of what Box sent.

mod list;
mod replay;

use std::io::Write as _;
use std::process::ExitCode;

use boxhook::inbox::{DeadLetters as _, EntryState, Inbox as _, InboxEntry, Revive};
use boxhook_core::Printable;
use chrono::SecondsFormat;

use crate::keys::KeyArgs;
use crate::store::StoreArgs;

/// `boxhook inbox` subcommands.
#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// List stored events, newest first: the last 50 unless --limit or
    /// --all, with how many there are and the next page's cursor.
    List(list::Args),
    /// Print a stored event's raw body, byte for byte as Box sent it
    /// (unescaped: redirect it to a file or a JSON tool rather than reading
    /// it on a terminal).
    Show(ShowArgs),
    /// Put events back in the queue, ready at once, with their attempts
    /// reset: one event by id (if it is dead or done), or every dead event.
    Requeue(RequeueArgs),
    /// Re-send stored events to a receiver, signed as Box signs them, with
    /// fresh timestamps (keys from the environment, as for `send`).
    Replay(replay::Args),
    /// Remove done (or dead) events older than a duration, in batches, and
    /// say how many were removed.
    Prune(crate::prune::Args),
}

/// Arguments of `boxhook inbox show`.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  boxhook inbox show 2c3c7e8a-1b5e-4e6c-9c3f-0c2d8d1b4a11 > event.json
  boxhook inbox show 2c3c7e8a-1b5e-4e6c-9c3f-0c2d8d1b4a11 --store postgres://boxhook@db/boxhook | jq .")]
pub(crate) struct ShowArgs {
    /// The event's `id` (the same on every retry).
    event_id: String,
    #[command(flatten)]
    store: StoreArgs,
}

/// Arguments of `boxhook inbox requeue`.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  boxhook inbox requeue --dead
  boxhook inbox requeue 2c3c7e8a-1b5e-4e6c-9c3f-0c2d8d1b4a11 --store postgres://boxhook@db/boxhook")]
#[command(group(clap::ArgGroup::new("which").required(true).args(["event_id", "dead"])))]
pub(crate) struct RequeueArgs {
    /// The event's `id`: requeued if it is dead or done (processed again).
    event_id: Option<String>,
    /// Every dead event.
    #[arg(long)]
    dead: bool,
    #[command(flatten)]
    store: StoreArgs,
}

/// `--state`: the states as `list` prints them (`in_progress`, the name
/// older versions took for `claimed`, still works).
pub(crate) fn parse_state(name: &str) -> Result<EntryState, String> {
    match name {
        "in_progress" => Ok(EntryState::Claimed),
        other => EntryState::parse(other)
            .ok_or_else(|| format!("unknown state {other:?}; one of pending, claimed, done, dead")),
    }
}

/// Runs an inbox subcommand.
///
/// `keys` resolves `replay`'s keys (see [`KeyArgs::or_global`]).
///
/// [`KeyArgs::or_global`]: crate::keys::KeyArgs::or_global
pub(crate) fn run(
    keys: impl FnOnce(&KeyArgs) -> KeyArgs,
    command: &Command,
) -> anyhow::Result<ExitCode> {
    match command {
        Command::Replay(args) => return replay::run(&keys(&args.keys), args),
        Command::Prune(args) => return crate::prune::run(args),
        Command::List(args) => return list::run(args),
        Command::Show(_) | Command::Requeue(_) => {}
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match command {
        Command::Show(args) => {
            let store = args.store.store()?;
            let inbox = runtime.block_on(crate::store::open_existing(&store))?;
            let Some(stored) = runtime.block_on(inbox.get(&args.event_id))? else {
                eprintln!(
                    "no event \"{}\" in {}",
                    Printable(&args.event_id),
                    store.describe()
                );
                return Ok(ExitCode::FAILURE);
            };
            let mut out = std::io::stdout().lock();
            out.write_all(&stored.body)?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Requeue(args) => {
            let store = args.store.store()?;
            let which = match &args.event_id {
                Some(id) => Revive::Event(id.clone()),
                None => Revive::AllDead,
            };
            let requeued = runtime.block_on(async {
                let inbox = store.open().await.map_err(crate::store::failure)?;
                anyhow::Ok(inbox.revive(which.clone(), chrono::Utc::now()).await?)
            })?;
            println!("requeued {requeued} event(s)");
            match which {
                Revive::Event(id) if requeued == 0 => {
                    eprintln!(
                        "event \"{}\" was not requeued: it is not in {}, or it is pending or \
                         being processed (only dead and done events are requeued)",
                        Printable(&id),
                        store.describe()
                    );
                    Ok(ExitCode::FAILURE)
                }
                _ => Ok(ExitCode::SUCCESS),
            }
        }
        // Handled above, before a runtime is built.
        Command::Replay(_) | Command::Prune(_) | Command::List(_) => Ok(ExitCode::SUCCESS),
    }
}

/// One entry as a JSON object.
pub(crate) fn entry_json(entry: &InboxEntry) -> serde_json::Value {
    serde_json::json!({
        "event_id": entry.event_id,
        "webhook_id": entry.webhook_id,
        "trigger": entry.trigger,
        "source_type": entry.source_type,
        "source_id": entry.source_id,
        "delivery_id": entry.delivery_id,
        "received_at": entry.received_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "deliveries": entry.deliveries,
        "attempts": entry.attempts,
        "state": entry.state.as_str(),
        "kind": entry.kind.as_str(),
    })
}

/// The entries as an aligned text table, every field a sender chose
/// written through [`Printable`], then how many there are.
pub(crate) fn table(entries: &[InboxEntry]) -> String {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = list::Table::default().write(entries, &mut out);
    let _ = writeln!(out, "{} event(s)", entries.len());
    String::from_utf8_lossy(&out).into_owned()
}
