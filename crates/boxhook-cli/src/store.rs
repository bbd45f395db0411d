//! `--store URL` / `--inbox FILE`: which inbox a command works on, SQLite
//! or PostgreSQL, behind one [`Inbox`] type.

use std::path::{Path, PathBuf};
use std::time::Duration;

use boxhook::inbox::{
    Claimed, Counts, DeadLetters, FilteredClaims, Inbox, InboxEntry, InboxError, ListFilter,
    NewRecord, Prune, Pruned, Retention, Revive, Stored, StoredEvent,
};
use boxhook_core::Printable;
use boxhook_postgres::{redact, Options, PgInbox};
use boxhook_sqlite::SqliteInbox;
use chrono::{DateTime, Utc};

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

/// A store named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Store {
    Sqlite(PathBuf),
    Postgres(String, PgSettings),
}

/// `--pool-size` and `--schema`: how to connect to a PostgreSQL store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PgSettings {
    pool_size: Option<usize>,
    schema: Option<String>,
}

impl PgSettings {
    /// The library's options with these settings.
    fn options(&self) -> Options {
        let mut options = Options::default();
        if let Some(size) = self.pool_size {
            options = options.pool_size(size);
        }
        if let Some(schema) = &self.schema {
            options = options.schema(schema.clone());
        }
        options
    }
}

impl StoreArgs {
    /// The store these arguments name.
    pub(crate) fn store(&self) -> anyhow::Result<Store> {
        let store = match &self.store {
            None => Store::Sqlite(self.inbox.clone()),
            Some(url) => parse(url)?,
        };
        match store {
            Store::Postgres(url, _) => {
                if GIVEN_AS_FLAG.load(std::sync::atomic::Ordering::Relaxed) && redact(&url) != url {
                    crate::logging::notice(
                        "WARN",
                        "warning: the password in --store shows in `ps` to every user of this \
                         machine, and stays in your shell history; put the connection string \
                         in BOXHOOK_STORE instead (export BOXHOOK_STORE='postgres://…')",
                    );
                }
                Ok(Store::Postgres(
                    url,
                    PgSettings {
                        pool_size: self.pool_size.map(usize::from),
                        schema: self.schema.clone(),
                    },
                ))
            }
            Store::Sqlite(path) => {
                let flag = (self.pool_size.map(|_| "--pool-size"))
                    .or(self.schema.as_ref().map(|_| "--schema"));
                match flag {
                    Some(flag) => Err(usage(format!(
                        "{flag} applies to a PostgreSQL store (--store postgres://…), not to \
                         the SQLite file {}; drop it (or unset BOXHOOK_POOL_SIZE / \
                         BOXHOOK_SCHEMA)",
                        path.display()
                    ))),
                    None => Ok(Store::Sqlite(path)),
                }
            }
        }
    }
}

/// Parses `--store`: a PostgreSQL connection string (a `postgres://` URL or
/// libpq's `key=value` form), `sqlite:PATH`, or a plain path. Anything else
/// (another scheme, a text with `=` that is no connection string) is
/// refused rather than taken for a file name. No message shows the text:
/// it may hold a password.
pub(crate) fn parse(url: &str) -> anyhow::Result<Store> {
    if boxhook_postgres::is_connection_string(url) {
        return Ok(Store::Postgres(url.to_owned(), PgSettings::default()));
    }
    let explicit = url.strip_prefix("sqlite:");
    let path = explicit.unwrap_or(url);
    let path = path.strip_prefix("//").unwrap_or(path);
    if path.is_empty() {
        return Err(usage(
            "--store names no file; give postgres://…, host=… dbname=…, sqlite:PATH or a path",
        ));
    }
    if let Some((scheme, _)) = url.split_once("://").filter(|_| explicit.is_none()) {
        return Err(usage(format!(
            "--store: unknown scheme {}://; give postgres://…, postgresql://…, host=… \
             dbname=… (PostgreSQL), sqlite:PATH or a path (SQLite)",
            Printable(scheme)
        )));
    }
    if explicit.is_none() && (url.contains('=') || url.trim() != url) {
        return Err(usage(
            "--store is neither a PostgreSQL connection string (postgres://… or libpq's \
             host=… port=… user=… dbname=…) nor a plain path; for a SQLite file whose name \
             holds '=' or starts or ends with a space, write sqlite:PATH",
        ));
    }
    Ok(Store::Sqlite(PathBuf::from(path)))
}

impl Store {
    /// For messages: the file, or the URL without its password.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Sqlite(path) => path.display().to_string(),
            Self::Postgres(url, _) => redact(url),
        }
    }

    /// Opens it for writing: SQLite creates and migrates the file,
    /// PostgreSQL migrates the schema under its advisory lock. Call it in
    /// the runtime that will use the inbox (PostgreSQL connections are
    /// driven by tasks on it).
    pub(crate) async fn open(&self) -> anyhow::Result<AnyInbox> {
        match self {
            Self::Sqlite(path) => SqliteInbox::open(path)
                .map(AnyInbox::Sqlite)
                .map_err(|err| anyhow::anyhow!("cannot open inbox {}: {err}", path.display())),
            Self::Postgres(url, settings) => PgInbox::connect_with(url, &settings.options())
                .await
                .map(AnyInbox::Postgres)
                .map_err(|err| anyhow::anyhow!("cannot open store {}: {err}", redact(url))),
        }
    }

    /// Opens it to read without changing anything: a SQLite file must
    /// exist and is opened read-only; PostgreSQL is not migrated.
    pub(crate) async fn open_existing(&self) -> anyhow::Result<AnyInbox> {
        match self {
            Self::Sqlite(path) => open_existing_sqlite(path).map(AnyInbox::Sqlite),
            Self::Postgres(url, settings) => {
                PgInbox::connect_with(url, &settings.options().migrate(false))
                    .await
                    .map(AnyInbox::Postgres)
                    .map_err(|err| anyhow::anyhow!("cannot open store {}: {err}", redact(url)))
            }
        }
    }
}

/// Opens a SQLite inbox that must exist already, read-only: reading must
/// not create, migrate or write anything.
fn open_existing_sqlite(path: &Path) -> anyhow::Result<SqliteInbox> {
    if !path.is_file() {
        return Err(usage(format!(
            "no inbox at {} (run `boxhook serve --inbox {}` first, or pass --inbox or --store)",
            path.display(),
            path.display()
        )));
    }
    SqliteInbox::open_read_only(path)
        .map_err(|err| anyhow::anyhow!("cannot open inbox {}: {err}", path.display()))
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
        match &store {
            Store::Sqlite(_) => drop(store.open().await?),
            Store::Postgres(url, settings) => {
                let version = boxhook_postgres::migrate(url, &settings.options())
                    .await
                    .map_err(|err| anyhow::anyhow!("cannot migrate {}: {err}", redact(url)))?;
                println!("schema version {version}");
            }
        }
        println!("{} is up to date", store.describe());
        anyhow::Ok(std::process::ExitCode::SUCCESS)
    })
}

/// The SQLite or the PostgreSQL inbox.
#[derive(Clone, Debug)]
pub(crate) enum AnyInbox {
    Sqlite(SqliteInbox),
    Postgres(PgInbox),
}

impl AnyInbox {
    /// How this store is pruned: the batch, and whether the background
    /// pruner cuts whole days (see [`crate::prune::Plan`]).
    pub(crate) fn prune_plan(&self) -> crate::prune::Plan {
        match self {
            Self::Sqlite(_) => crate::prune::SQLITE_PLAN,
            Self::Postgres(_) => crate::prune::POSTGRES_PLAN,
        }
    }
}

macro_rules! each {
    ($self:ident, $inbox:ident => $call:expr) => {
        match $self {
            AnyInbox::Sqlite($inbox) => $call.await,
            AnyInbox::Postgres($inbox) => $call.await,
        }
    };
}

impl Inbox for AnyInbox {
    async fn store(&self, record: NewRecord) -> Result<Stored, InboxError> {
        each!(self, inbox => inbox.store(record))
    }

    async fn claim_next(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Claimed>, InboxError> {
        each!(self, inbox => inbox.claim_next(worker_id, lease, now))
    }

    async fn ack(&self, claimed: &Claimed) -> Result<(), InboxError> {
        each!(self, inbox => inbox.ack(claimed))
    }

    async fn requeue(&self, claimed: &Claimed, retry_at: DateTime<Utc>) -> Result<(), InboxError> {
        each!(self, inbox => inbox.requeue(claimed, retry_at))
    }

    async fn list(&self, filter: ListFilter) -> Result<Vec<InboxEntry>, InboxError> {
        each!(self, inbox => inbox.list(filter))
    }

    async fn get(&self, event_id: &str) -> Result<Option<StoredEvent>, InboxError> {
        each!(self, inbox => inbox.get(event_id))
    }

    async fn counts(&self) -> Result<Counts, InboxError> {
        each!(self, inbox => inbox.counts())
    }

    async fn wait_for_work(&self, timeout: Duration) {
        each!(self, inbox => inbox.wait_for_work(timeout));
    }
}

impl DeadLetters for AnyInbox {
    async fn bury(&self, claimed: &Claimed) -> Result<(), InboxError> {
        each!(self, inbox => inbox.bury(claimed))
    }

    async fn revive(&self, which: Revive, now: DateTime<Utc>) -> Result<u64, InboxError> {
        each!(self, inbox => inbox.revive(which, now))
    }
}

impl FilteredClaims for AnyInbox {
    async fn claim_matching(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
        triggers: &[String],
    ) -> Result<Option<Claimed>, InboxError> {
        each!(self, inbox => inbox.claim_matching(worker_id, lease, now, triggers))
    }
}

impl Prune for AnyInbox {
    async fn prune(
        &self,
        retention: &Retention,
        now: DateTime<Utc>,
        batch: usize,
    ) -> Result<Pruned, InboxError> {
        each!(self, inbox => inbox.prune(retention, now, batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_parse() {
        let cases = [
            (
                "postgres://u@h/db",
                Store::Postgres("postgres://u@h/db".into(), PgSettings::default()),
            ),
            (
                "postgresql://h/db",
                Store::Postgres("postgresql://h/db".into(), PgSettings::default()),
            ),
            ("sqlite:inbox.sqlite", Store::Sqlite("inbox.sqlite".into())),
            (
                "sqlite:///var/x.sqlite",
                Store::Sqlite("/var/x.sqlite".into()),
            ),
            ("/var/x.sqlite", Store::Sqlite("/var/x.sqlite".into())),
            ("x.sqlite", Store::Sqlite("x.sqlite".into())),
            ("my inbox.sqlite", Store::Sqlite("my inbox.sqlite".into())),
            ("sqlite:run=3.sqlite", Store::Sqlite("run=3.sqlite".into())),
            (
                "host=127.0.0.1 port=55499 user=boxhook password=Pw-s3cr3t-Top dbname=boxhook",
                Store::Postgres(
                    "host=127.0.0.1 port=55499 user=boxhook password=Pw-s3cr3t-Top \
                     dbname=boxhook"
                        .into(),
                    PgSettings::default(),
                ),
            ),
            (
                "dbname = boxhook password='a b'",
                Store::Postgres(
                    "dbname = boxhook password='a b'".into(),
                    PgSettings::default(),
                ),
            ),
        ];
        for (url, want) in cases {
            assert_eq!(parse(url).expect(url), want, "{url}");
        }
        for bad in [
            "sqlite:",
            "",
            "mysql://u:s3cr3t@h/db",
            "run=3.sqlite",
            "hots=db pasword=s3cr3t",
            "password='s3cr3t",
            " inbox.sqlite",
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(err.is::<crate::UsageError>(), "{bad}: {err}");
            assert!(!err.to_string().contains("s3cr3t"), "{bad}: {err}");
        }
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(redact("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact("postgres://u@h/db?password=pw&sslmode=verify-full"),
            "postgres://u@h/db?password=***&sslmode=verify-full"
        );
    }
}
