//! `boxhook`: sign and verify Box webhook deliveries, send them the way Box
//! does, and run a receiver that stores every event in a durable inbox
//! (SQLite or PostgreSQL).
//!
//! Exit status: 0 success, 1 the thing checked failed (an invalid delivery, a
//! delivery that never got a 2xx, a server error), 2 a usage error (bad
//! arguments, an unreadable file, no signature key).

#![forbid(unsafe_code)]
// Reason: doc comments on clap items are the --help text users read; code
// backticks would show up literally there.
#![allow(clippy::doc_markdown)]

mod admin;
mod ca_file;
mod capture;
mod check_address;
mod demo;
mod demo_v1;
mod diagnose;
#[cfg(test)]
mod fake;
mod health;
mod inbox;
mod keys;
mod logging;
mod prune;
mod receiver;
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

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

/// Sign, verify and send Box webhooks (V2 signatures), and receive them
/// into a durable inbox in SQLite or PostgreSQL.
///
/// The commands that sign or verify (sign, verify, send, serve, work, inbox
/// replay, check-address --send) take the keys from --primary-key / --secondary-key or the
/// environment variables BOX_PRIMARY_KEY / BOX_SECONDARY_KEY; either may be
/// absent, not both. Start with `boxhook demo`.
#[derive(Parser)]
#[command(
    name = "boxhook",
    version,
    after_help = "\
Exit status: 0 success, 1 the thing checked failed (an invalid delivery, a \
delivery that never got a 2xx, a server error), 2 usage error; each \
command's --help says more.

Examples:
  boxhook demo
  boxhook serve --primary-key \"$KEY\" --inbox ./boxhook-inbox.sqlite
  boxhook work --primary-key \"$KEY\" --inbox ./boxhook-inbox.sqlite --exec ./handle.sh
  boxhook inbox list --inbox ./boxhook-inbox.sqlite"
)]
struct Cli {
    #[command(flatten)]
    keys: keys::GlobalKeyArgs,
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
    #[command(
        subcommand,
        after_help = "\
Examples:
  boxhook inbox list --state dead
  boxhook inbox show EVENT_ID > event.json
  boxhook inbox requeue --dead
  boxhook inbox replay --to http://127.0.0.1:8080/ --since 2h
  boxhook inbox prune --older-than 30d"
    )]
    Inbox(inbox::Command),
    /// Run a receiver and a simulated Box against it, end to end.
    Demo(demo::Args),
    /// Create, check and reconcile Box webhooks from a TOML file.
    Webhooks(webhooks::Args),
    /// Process stored events: run a command for each, hand each to a
    /// long-lived process, or POST each to a URL.
    Work(Box<work::Args>),
    /// Create or upgrade the tables of a store (done at start by `serve`
    /// and `work` too).
    Migrate(store::MigrateArgs),
    /// Check a notification URL against Box's rules (HTTPS on 443, a
    /// public address, a CA-signed certificate, FIPS TLS 1.2/1.3), before
    /// `webhooks apply`.
    CheckAddress(check_address::Args),
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches)
        .unwrap_or_else(|err| err.format(&mut Cli::command()).exit());
    if given_as_flag(&matches, "store") {
        store::given_as_flag();
    }
    let flagged = keys::KEY_IDS.map(|id| given_as_flag(&matches, id));
    let keys = |own: &keys::KeyArgs| own.or_global(&cli.keys, flagged);
    let result = match &cli.command {
        Command::Sign(args) => sign::run(&keys(&args.keys), args),
        Command::Verify(args) => verify::run(&keys(&args.keys), args),
        Command::Send(args) => send::run(&keys(&args.keys), args),
        Command::Serve(args) => serve::run(&keys(&args.keys), args),
        Command::Inbox(command) => inbox::run(keys, command),
        Command::Demo(args) => demo::run(args),
        Command::Webhooks(args) => webhooks::run(args),
        Command::Work(args) => work::run(&keys(&args.keys), args),
        Command::Migrate(args) => store::migrate(args),
        Command::CheckAddress(args) => check_address::run(&keys(&args.keys), args),
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

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM. The handlers are
/// installed when this is called, not when the future is first polled: a
/// process that says it is ready only after calling it stops cleanly on a
/// signal sent right after that line.
pub(crate) fn stop_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            match (term, interrupt) {
                (Ok(mut term), Ok(mut interrupt)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Whether the (sub)command run was given the argument `id` (`store`,
/// `primary_key`, ...) on its command line, rather than through its
/// environment variable.
fn given_as_flag(matches: &ArgMatches, id: &str) -> bool {
    let mut current = matches;
    loop {
        if current.ids().any(|known| known.as_str() == id) {
            return current.value_source(id) == Some(ValueSource::CommandLine);
        }
        match current.subcommand() {
            Some((_, sub)) => current = sub,
            None => return false,
        }
    }
}

/// Output piped into `head` and closed early: not worth an error message.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every argument read from the environment keeps its value out of
    /// `--help` (`[env: NAME]`, never `[env: NAME=value]` nor `[env: NAME=]`),
    /// in every subcommand, however deep.
    #[test]
    fn no_help_shows_an_environment_value() {
        fn check(command: &clap::Command, path: &str, seen: &mut usize) {
            for arg in command.get_arguments() {
                if let Some(name) = arg.get_env() {
                    *seen += 1;
                    assert!(
                        arg.is_hide_env_values_set(),
                        "{path} --{}: [env: {}] shows its value in --help; add hide_env_values",
                        arg.get_id(),
                        name.to_string_lossy()
                    );
                }
            }
            for sub in command.get_subcommands() {
                check(sub, &format!("{path} {}", sub.get_name()), seen);
            }
        }
        let mut seen = 0;
        check(&Cli::command(), "boxhook", &mut seen);
        assert!(seen >= 6, "only {seen} env-backed arguments found");
    }
}
