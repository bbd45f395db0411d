//! `boxhook inbox list|show`: read what a receiver stored. Reading is safe
//! while `serve` is writing (the inbox runs in WAL mode), and changes
//! nothing on disk: the inbox is opened read-only, so pointing `--inbox` at
//! the wrong file neither creates a schema in it nor leaves `-wal`/`-shm`
//! files next to it.
//!
//! Everything an event's sender chose (ids, triggers, source names) is
//! written through [`Printable`] in the table and in messages, so a control
//! sequence in it cannot act on the terminal. `--json` is escaped by JSON.
//! `show` writes the stored body byte for byte, unescaped: it is the
//! evidence of what Box sent.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use boxhook::inbox::{Inbox as _, InboxEntry, ListFilter};
use boxhook_core::Printable;
use boxhook_sqlite::SqliteInbox;
use chrono::SecondsFormat;

use crate::serve::DEFAULT_INBOX;
use crate::usage;

/// `boxhook inbox` subcommands.
#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// List stored events, oldest first.
    List(ListArgs),
    /// Print a stored event's raw body, byte for byte as Box sent it
    /// (unescaped: redirect it to a file or a JSON tool rather than reading
    /// it on a terminal).
    Show(ShowArgs),
    /// Re-send stored events to a receiver, signed as Box signs them, with
    /// fresh timestamps (keys from the environment, as for `send`).
    Replay(crate::replay::Args),
}

/// Arguments of `boxhook inbox list`.
#[derive(clap::Args)]
pub(crate) struct ListArgs {
    /// The SQLite inbox file.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_INBOX)]
    inbox: PathBuf,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Only events with exactly this trigger, e.g. FILE.UPLOADED.
    #[arg(long, value_name = "T")]
    trigger: Option<String>,
    /// At most this many events.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
}

/// Arguments of `boxhook inbox show`.
#[derive(clap::Args)]
pub(crate) struct ShowArgs {
    /// The event's `id` (the same on every retry).
    event_id: String,
    /// The SQLite inbox file.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_INBOX)]
    inbox: PathBuf,
}

/// Runs an inbox subcommand.
pub(crate) fn run(keys: &crate::keys::KeyArgs, command: &Command) -> anyhow::Result<ExitCode> {
    if let Command::Replay(args) = command {
        return crate::replay::run(keys, args);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match command {
        Command::List(args) => {
            let inbox = open_existing(&args.inbox)?;
            let mut filter = ListFilter::new();
            if let Some(trigger) = &args.trigger {
                filter = filter.trigger(trigger.clone());
            }
            if let Some(limit) = args.limit {
                filter = filter.limit(limit);
            }
            let entries = runtime.block_on(inbox.list(filter))?;
            let mut out = std::io::stdout().lock();
            if args.json {
                for entry in &entries {
                    writeln!(out, "{}", entry_json(entry))?;
                }
            } else {
                write!(out, "{}", table(&entries))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show(args) => {
            let inbox = open_existing(&args.inbox)?;
            let Some(stored) = runtime.block_on(inbox.get(&args.event_id))? else {
                eprintln!(
                    "no event \"{}\" in {}",
                    Printable(&args.event_id),
                    args.inbox.display()
                );
                return Ok(ExitCode::FAILURE);
            };
            let mut out = std::io::stdout().lock();
            out.write_all(&stored.body)?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        // Handled above, before a runtime is built.
        Command::Replay(_) => Ok(ExitCode::SUCCESS),
    }
}

/// Opens an inbox that must exist already, read-only: reading must not
/// create, migrate or write anything.
pub(crate) fn open_existing(path: &Path) -> anyhow::Result<SqliteInbox> {
    if !path.is_file() {
        return Err(usage(format!(
            "no inbox at {} (run `boxhook serve --inbox {}` first, or pass --inbox)",
            path.display(),
            path.display()
        )));
    }
    SqliteInbox::open_read_only(path)
        .map_err(|err| anyhow::anyhow!("cannot open inbox {}: {err}", path.display()))
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
/// written through [`Printable`].
pub(crate) fn table(entries: &[InboxEntry]) -> String {
    use std::fmt::Write as _;
    let rows: Vec<[String; 7]> = entries
        .iter()
        .map(|e| {
            [
                e.received_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                e.kind.as_str().to_owned(),
                Printable(&e.event_id).to_string(),
                Printable(&e.trigger).to_string(),
                format!(
                    "{}:{}",
                    Printable(e.source_type.as_deref().unwrap_or("-")),
                    Printable(e.source_id.as_deref().unwrap_or("-"))
                ),
                e.deliveries.to_string(),
                e.state.as_str().to_owned(),
            ]
        })
        .collect();
    let header = [
        "RECEIVED",
        "KIND",
        "EVENT ID",
        "TRIGGER",
        "SOURCE",
        "DELIVERIES",
        "STATE",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let text: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", text.join("  ").trim_end());
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    let _ = writeln!(out, "{} event(s)", rows.len());
    out
}
