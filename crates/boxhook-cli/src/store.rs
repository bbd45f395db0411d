//! `--store URL` / `--inbox FILE`: which inbox a command works on, as the
//! user names it. [`boxhook_store`] parses the text, opens the SQLite or
//! PostgreSQL inbox behind one type ([`AnyInbox`]) and names it without its
//! password; here are the flags, the warning about a password given as a
//! flag, and the CLI's messages and exit codes for the library's errors.

use std::path::{Path, PathBuf};

use boxhook_store::postgres::Options;
use boxhook_store::{AnyInbox, Backend, OpenError, OpenErrorKind, Store};

use crate::usage;

/// Where `serve`, `work` and `inbox` keep events unless told otherwise.
pub(crate) const DEFAULT_INBOX: &str = "./boxhook-inbox.sqlite";

/// Whether `--store` was given on the command line (see [`given_as_flag`]).
static GIVEN_AS_FLAG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records that `--store` came from the command line, not from
/// `BOXHOOK_STORE`: a password in it is then visible to `ps`, and
/// [`StoreArgs::store`] says so.
pub(crate) fn given_as_flag() {
    GIVEN_AS_FLAG.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// `--store` and `--inbox`, shared by every command that opens an inbox.
#[derive(clap::Args, Clone)]
#[command(next_help_heading = "Store")]
pub(crate) struct StoreArgs {
    /// The store: postgres://… or postgresql://…, or libpq's key=value form
    /// ('host=db port=5432 user=boxhook dbname=boxhook'): a PostgreSQL
    /// database shared by many receivers and workers, over TLS with
    /// sslmode=verify-full, and sslrootcert=CA.pem for a private CA; or
    /// sqlite:PATH, or a plain path (a SQLite file). Anything else is
    /// refused. Put a connection string with a password in BOXHOOK_STORE
    /// rather than here: a flag shows in `ps`.
    #[arg(
        long,
        value_name = "URL",
        conflicts_with = "inbox",
        env = "BOXHOOK_STORE",
        hide_env_values = true
    )]
    pub(crate) store: Option<String>,
    /// The SQLite inbox file (same as --store sqlite:FILE).
    #[arg(long, value_name = "FILE", default_value = DEFAULT_INBOX)]
    pub(crate) inbox: PathBuf,
    /// PostgreSQL only: the most connections this process opens (default
    /// 16), besides a worker's one LISTEN connection. Every receiver and
    /// worker has its own pool: keep their sum under the server's
    /// max_connections (100 by default).
    #[arg(
        long,
        value_name = "N",
        env = "BOXHOOK_POOL_SIZE",
        hide_env_values = true,
        value_parser = clap::value_parser!(u16).range(1..=1000)
    )]
    pub(crate) pool_size: Option<u16>,
    /// PostgreSQL only: keep boxhook's tables in this schema (created if
    /// missing) instead of the connection's default (public), e.g. to give
    /// several inboxes one database. A lower-case identifier.
    #[arg(
        long,
        value_name = "NAME",
        env = "BOXHOOK_SCHEMA",
        hide_env_values = true
    )]
    pub(crate) schema: Option<String>,
}

impl StoreArgs {
    /// The store these arguments name, with `--pool-size` and `--schema`
    /// for PostgreSQL (a usage error for a SQLite file).
    pub(crate) fn store(&self) -> anyhow::Result<Store> {
        let store = match &self.store {
            None => Store::sqlite(self.inbox.clone()),
            Some(url) => Store::parse(url).map_err(|err| failure(err.named("--store")))?,
        };
        if let Some(path) = store.sqlite_path() {
            let flag = (self.pool_size.map(|_| "--pool-size"))
                .or(self.schema.as_ref().map(|_| "--schema"));
            return match flag {
                Some(flag) => Err(usage(format!(
                    "{flag} applies to a PostgreSQL store (--store postgres://…), not to \
                     the SQLite file {}; drop it (or unset BOXHOOK_POOL_SIZE / \
                     BOXHOOK_SCHEMA)",
                    path.display()
                ))),
                None => Ok(store),
            };
        }
        if GIVEN_AS_FLAG.load(std::sync::atomic::Ordering::Relaxed) && store.has_password() {
            crate::logging::notice(
                "WARN",
                "warning: the password in --store shows in `ps` to every user of this \
                 machine, and stays in your shell history; put the connection string \
                 in BOXHOOK_STORE instead (export BOXHOOK_STORE='postgres://…')",
            );
        }
        let mut options = Options::default();
        if let Some(size) = self.pool_size {
            options = options.pool_size(usize::from(size));
        }
        if let Some(schema) = &self.schema {
            options = options.schema(schema.clone());
        }
        store.with_options(options).map_err(failure)
    }
}

/// Opens `store` to read without changing anything (a SQLite file must
/// exist and is opened read-only; PostgreSQL is not migrated); no file
/// there is a usage error that says how to make one.
pub(crate) async fn open_existing(store: &Store) -> anyhow::Result<AnyInbox> {
    store
        .open_existing()
        .await
        .map_err(|err| match (err.kind(), store.sqlite_path()) {
            (OpenErrorKind::NotFound, Some(path)) => no_inbox(path),
            _ => failure(err),
        })
}

/// `no inbox at PATH`, with what to run first.
fn no_inbox(path: &Path) -> anyhow::Error {
    usage(format!(
        "no inbox at {} (run `boxhook serve --inbox {}` first, or pass --inbox or --store)",
        path.display(),
        path.display()
    ))
}

/// The library's error as the CLI reports it: a usage error (exit 2) when
/// the store was named wrong or is not there, else a failure (exit 1); the
/// message is the library's, which never shows a password.
pub(crate) fn failure(err: OpenError) -> anyhow::Error {
    match err.kind() {
        OpenErrorKind::Usage | OpenErrorKind::NotFound => usage(err.to_string()),
        OpenErrorKind::Open => err.into(),
    }
}

/// How `inbox`'s store is pruned: the batch, and whether the background
/// pruner cuts whole days (see [`crate::prune::Plan`]).
pub(crate) fn prune_plan(inbox: &AnyInbox) -> crate::prune::Plan {
    match inbox.backend() {
        Backend::Sqlite => crate::prune::SQLITE_PLAN,
        Backend::Postgres => crate::prune::POSTGRES_PLAN,
    }
}

/// Arguments of `boxhook migrate`.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  boxhook migrate --inbox ./boxhook-inbox.sqlite
  BOXHOOK_STORE=postgres://boxhook@db/boxhook boxhook migrate --schema webhooks")]
pub(crate) struct MigrateArgs {
    #[command(flatten)]
    store: StoreArgs,
}

/// Creates or upgrades the store's tables and prints the schema version.
pub(crate) fn migrate(args: &MigrateArgs) -> anyhow::Result<std::process::ExitCode> {
    let store = args.store.store()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        if let Some(version) = store.migrate().await.map_err(failure)? {
            println!("schema version {version}");
        }
        println!("{} is up to date", store.describe());
        anyhow::Ok(std::process::ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(store: &str) -> StoreArgs {
        StoreArgs {
            store: Some(store.to_owned()),
            inbox: PathBuf::from(DEFAULT_INBOX),
            pool_size: None,
            schema: None,
        }
    }

    /// What names no store is a usage error about `--store`, and never
    /// shows the text (it may hold a password).
    #[test]
    fn a_bad_store_is_a_usage_error_about_the_flag() {
        for (bad, message) in [
            (
                "sqlite:",
                "--store names no file; give postgres://…, host=… dbname=…, sqlite:PATH or a \
                 path",
            ),
            (
                "mysql://u:s3cr3t@h/db",
                "--store: unknown scheme mysql://; give postgres://…, postgresql://…, host=… \
                 dbname=… (PostgreSQL), sqlite:PATH or a path (SQLite)",
            ),
            (
                "run=3.sqlite",
                "--store is neither a PostgreSQL connection string (postgres://… or libpq's \
                 host=… port=… user=… dbname=…) nor a plain path; for a SQLite file whose name \
                 holds '=' or starts or ends with a space, write sqlite:PATH",
            ),
        ] {
            let err = args(bad).store().expect_err(bad);
            assert!(err.is::<crate::UsageError>(), "{bad}: {err}");
            assert_eq!(err.to_string(), message);
        }
        for bad in [
            "hots=db pasword=s3cr3t",
            "password='s3cr3t",
            " inbox.sqlite",
            "",
        ] {
            let err = args(bad).store().expect_err(bad);
            assert!(err.is::<crate::UsageError>(), "{bad}: {err}");
            assert!(!err.to_string().contains("s3cr3t"), "{bad}: {err}");
        }
    }

    #[test]
    fn postgres_settings_apply_to_postgres_only() {
        let mut sqlite = args("sqlite:inbox.sqlite");
        sqlite.schema = Some("hooks".to_owned());
        let err = sqlite.store().expect_err("--schema on SQLite");
        assert!(err.is::<crate::UsageError>(), "{err}");
        assert_eq!(
            err.to_string(),
            "--schema applies to a PostgreSQL store (--store postgres://…), not to the SQLite \
             file inbox.sqlite; drop it (or unset BOXHOOK_POOL_SIZE / BOXHOOK_SCHEMA)"
        );
        let mut pg = args("postgres://u@h/db");
        pg.pool_size = Some(4);
        pg.schema = Some("hooks".to_owned());
        let store = pg.store().expect("PostgreSQL settings");
        assert_eq!(store.backend(), Backend::Postgres);
        assert_eq!(store.describe(), "postgres://u@h/db");
        let default = StoreArgs {
            store: None,
            ..args("")
        };
        let store = default.store().expect("the default inbox");
        assert_eq!(store.sqlite_path(), Some(Path::new(DEFAULT_INBOX)));
    }
}
