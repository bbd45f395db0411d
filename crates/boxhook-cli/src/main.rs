//! `boxhook`: sign and verify Box webhook deliveries, send them the way Box
//! does, and run a receiver that stores every event in a durable inbox.
//!
//! Exit codes: 0 success, 1 the thing checked failed (an invalid delivery, a
//! delivery that never got a 2xx, a server error), 2 a usage error (bad
//! arguments, an unreadable file, no signature key).

#![forbid(unsafe_code)]
// Reason: doc comments on clap items are the --help text users read; code
// backticks would show up literally there.
#![allow(clippy::doc_markdown)]

mod admin;
mod capture;
mod demo;
mod demo_v1;
mod diagnose;
#[cfg(test)]
mod fake;
mod health;
mod inbox;
mod keys;
mod list;
mod prune;
mod replay;
mod retention;
mod send;
mod send_v1;
mod serve;
mod shown;
mod sign;
mod store;
mod verify;
mod webhooks;
mod work;

use std::fmt;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Sign, verify, send and receive Box webhooks (V2 signatures).
///
/// Keys come from --primary-key / --secondary-key or the environment
/// variables BOX_PRIMARY_KEY / BOX_SECONDARY_KEY; either may be absent, not
/// both. Start with `boxhook demo`.
#[derive(Parser)]
#[command(name = "boxhook", version, about, long_about)]
struct Cli {
    #[command(flatten)]
    keys: keys::KeyArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the headers Box would send for a body.
    Sign(sign::Args),
    /// Check a captured delivery, and say why it fails if it does.
    Verify(verify::Args),
    /// Deliver a webhook to a URL the way Box does.
    Send(send::Args),
    /// Run a receiver that stores every verified event in a SQLite or
    /// PostgreSQL inbox.
    Serve(Box<serve::Args>),
    /// Look at the events a receiver stored.
    #[command(subcommand)]
    Inbox(inbox::Command),
    /// Run a receiver and a simulated Box against it, end to end.
    Demo(demo::Args),
    /// Create, check and reconcile Box webhooks from a TOML file.
    Webhooks(webhooks::Args),
    /// Process stored events: run a command or POST to a URL for each.
    Work(work::Args),
    /// Create or upgrade the tables of a store (done at start by `serve`
    /// and `work` too).
    Migrate(store::MigrateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sign(args) => sign::run(&cli.keys, &args),
        Command::Verify(args) => verify::run(&cli.keys, &args),
        Command::Send(args) => send::run(&cli.keys, &args),
        Command::Serve(args) => serve::run(&cli.keys, &args),
        Command::Inbox(command) => inbox::run(&cli.keys, &command),
        Command::Demo(args) => demo::run(&args),
        Command::Webhooks(args) => webhooks::run(&args),
        Command::Work(args) => work::run(&cli.keys, &args),
        Command::Migrate(args) => store::migrate(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // The chain can quote the network: escaped whole (shown.rs).
            eprintln!("boxhook: {}", shown::error_chain(&err));
            if err.is::<UsageError>() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// A mistake in how boxhook was called (exit code 2), as opposed to a
/// failure of what it was asked to do (exit code 1).
#[derive(Debug)]
pub(crate) struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A usage error with `message`.
pub(crate) fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// Reads a file named on the command line; failing to is a usage error.
pub(crate) fn read_input(path: &std::path::Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|err| usage(format!("cannot read {what} {}: {err}", path.display())))
}

/// Output piped into `head` and closed early: not worth an error message.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
