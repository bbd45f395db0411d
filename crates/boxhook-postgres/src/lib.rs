//! A PostgreSQL [`Inbox`](boxhook::inbox::Inbox) and
//! [`IdempotencyStore`](boxhook::idempotency::IdempotencyStore) for
//! boxhook: the store for receivers on several machines behind a load
//! balancer, and for workers on any number of machines.
//!
//! # API at a glance
//!
//! - [`PgInbox::connect`]`(url)` / [`PgInbox::connect_with`]`(url,
//!   &Options)`: a pool of connections (`deadpool-postgres`, 16 by
//!   default); the schema is migrated at start unless
//!   [`Options::migrate`]`(false)`. Cheap to clone.
//! - [`migrate`]`(url, &Options)`: apply the migrations explicitly (what
//!   `boxhook migrate --store URL` runs), e.g. from a deploy step, then start
//!   receivers with `migrate(false)`.
//! - [`PgInbox::idempotency_store`] / [`PgIdempotencyStore::connect`]: the
//!   idempotency store in the same database;
//!   [`PgIdempotencyStore::forget_before`] forgets settled keys.
//! - `Inbox::counts` and `Prune::prune`: counts from counters, and pruning
//!   by dropping whole day partitions (see docs/ARCHITECTURE.md, "PostgreSQL
//!   at volume"). Reads (`list`, `get`, `counts`) run on a read pool of
//!   their own ([`Options::read_pool_size`], [`Options::read_timeout`]).
//!
//! PostgreSQL 14 or newer: `events` is partitioned by day, and pruning
//! detaches partitions with `DETACH PARTITION … CONCURRENTLY`.
//!
//! # Which PostgreSQL guarantee backs which promise
//!
//! | promise | mechanism |
//! |---|---|
//! | an event is stored once, however many receivers get its deliveries, for as long as its key is kept (no time window; past its pruning, until `received_at + keys`) | the primary key `(webhook_id, event_id)` of `event_keys` and `INSERT … ON CONFLICT DO UPDATE SET deliveries = deliveries + n`, the event inserted in the same statement only when its key is new: concurrent stores of one key wait for each other, one inserts, the others count; the `n` deliveries of one key in one batch are one row of the statement |
//! | counts are exact and cost the same at any size | every statement that adds, moves or removes an event changes the counter rows of `event_counts` in the same statement (sharded by webhook and backend pid, summed on read); the oldest pending event is the first entry of an index per partition |
//! | pruning neither bloats the table nor holds a lock a store waits for | whole day partitions detached with `DETACH PARTITION … CONCURRENTLY` and dropped, counts subtracted in the same transaction; elsewhere `DELETE`s of at most `batch` events; one pruner per schema by `pg_try_advisory_lock` |
//! | admin reads never delay a delivery | `list`, `get` and `counts` on a read pool of their own, read-only, with a statement timeout |
//! | a 2xx means the event is on disk | the insert's COMMIT returns only after the WAL is flushed (`synchronous_commit = on`, PostgreSQL's default; do not turn it off for this database) |
//! | no event is handed to two live workers at once | the claim is one `UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1)`: the row lock lets one transaction claim a row, and the new `ready_at` (the lease's end) keeps it from being ready for anyone else until the lease ends |
//! | an expired lease is claimable again | a `claimed` row whose `ready_at` (lease end) has passed is ready, by the same query |
//! | a stale worker cannot settle an event another worker took over | `ack`/`requeue`/`bury` update only the row still `claimed` by the same worker id and attempt number; otherwise `LeaseLost` |
//! | idle workers wake when an event arrives | after a new event (or a requeue) is committed, the process sends `NOTIFY boxhook_events` in a transaction of its own (at most one in flight per process, later requests folded into one more); every `LISTEN`ing worker wakes; a worker also polls (`--poll-ms`), so a lost notification only delays |
//! | three receivers starting at once migrate once | migrations run in one transaction holding `pg_advisory_xact_lock`; the version table says what is applied |
//! | one concurrent idempotency claim wins | the `claims` primary key and `INSERT … ON CONFLICT DO UPDATE … WHERE lease ended` |
//!
//! Times are the callers' clocks (milliseconds since the epoch, as
//! `bigint`), like the SQLite inbox: keep the machines' clocks in sync
//! (NTP), since a lease is compared with the claiming worker's `now`.
//!
//! # Group commit
//!
//! Concurrent `store` calls in one process share one statement, so one
//! round trip, one commit and one WAL flush carry many deliveries. A store
//! that finds fewer than two store statements in flight goes at once,
//! alone, with the single-row statement; the stores that arrive while two
//! are in flight queue, and the first statement to finish takes the whole
//! queue (at most 64 records, 4 MiB of bodies) as its next statement: one
//! `INSERT … SELECT FROM unnest(…)` of the same three steps. Batches form
//! while statements run, never by waiting for more stores, so a store
//! without concurrency pays nothing for it.
//!
//! - Each caller is answered only after the COMMIT of the statement that
//!   holds its record.
//! - A batch whose statement fails (a record the database refuses, a day
//!   without a partition, a deadlock) is stored again one record at a
//!   time: one bad record fails only its own caller.
//! - Deduplication stays exact: the records of one event in a batch are
//!   one row of the statement that counts all of them (`ON CONFLICT DO
//!   UPDATE` may not touch a row twice in one statement); the first is
//!   `Stored::New` when the event is new, the others duplicates numbered
//!   in arrival order. Keys are inserted in key order, so batches sharing
//!   events never wait for each other in a cycle; pruning locks the keys
//!   it deletes in the same order.
//! - A statement waits for a row lock at most
//!   [`Options::lock_timeout`] (2 s): a lock held elsewhere (an open
//!   transaction on `event_keys`) fails that statement, its records are
//!   stored again one by one, and only the delivery of the locked event
//!   fails (503; Box retries it), not every delivery queued behind it.
//! - A statement that gets no answer for [`Options::store_timeout`] (20 s)
//!   fails its deliveries, and its connection is closed rather than
//!   returned to the pool: a connection that neither answers nor closes
//!   does not hold a flight until TCP gives up.
//! - A store waits in the queue at most 5 s (as long as for a pool
//!   connection), then fails with a message that says so. A store taken
//!   into a statement by then waits for that statement (and its wait for a
//!   pooled connection): about 10 s at worst before a slow database's
//!   answer, inside Box's 30 s.
//!
//! PostgreSQL also flushes the WAL of concurrent commits together (one
//! fsync for every transaction waiting when it starts), across receivers.
//! The wake-up `NOTIFY` is not sent inside the store's transaction:
//! PostgreSQL holds a database-wide lock from a notifying transaction's
//! pre-commit to its end, which serialized every store's WAL flush
//! (measured: one fsync per commit, 560 stores/s). See docs/PERFORMANCE.md
//! for the figures.
//!
//! # TLS
//!
//! With the `tls` feature (on in the `boxhook` command), connections can
//! use TLS: rustls with the ring provider (no OpenSSL, no cmake). The
//! connection string asks for it with libpq's names
//! ([libpq's SSL support](https://www.postgresql.org/docs/current/libpq-ssl.html)),
//! in either form:
//!
//! ```text
//! postgres://boxhook@db.example.com/boxhook?sslmode=verify-full&sslrootcert=/etc/boxhook/db-ca.pem
//! host=db.example.com user=boxhook dbname=boxhook sslmode=verify-full sslrootcert=/etc/boxhook/db-ca.pem
//! ```
//!
//! | in the connection string | boxhook | libpq, for comparison |
//! |---|---|---|
//! | no `sslmode`, `disable`, `allow`, `prefer` | plain text | `allow`/`prefer` may use TLS, unchecked unless a root certificate file exists |
//! | `require`, `verify-full` | TLS; the certificate must chain to the trusted CAs and name the host | `require` checks nothing (or the CA only, with a root certificate file) |
//! | `verify-ca` | TLS; the certificate must chain to `sslrootcert`'s CAs, the host name is not checked; refused without `sslrootcert` | the same, with `~/.postgresql/root.crt` by default |
//! | `sslrootcert=PATH` | a PEM file of CA certificates, trusted *instead of* the Mozilla roots; without `sslmode` it means `verify-full` | the same file (default `~/.postgresql/root.crt`) |
//! | `sslrootcert=system` | the Mozilla root store compiled in (`webpki-roots`, not the system's files) | the system's store (PostgreSQL 16+) |
//! | no `sslrootcert` | the Mozilla root store | `~/.postgresql/root.crt` |
//!
//! A managed database whose certificate a public CA signed needs only
//! `sslmode=verify-full`. One with its own CA (AWS RDS, Google Cloud SQL,
//! a self-hosted server) needs `sslrootcert` with the CA bundle the
//! provider publishes. From Rust, the bundle can also come from the
//! program: [`Options::root_certificates_pem`].
//!
//! Decisions, where boxhook differs from libpq:
//!
//! - **`require` checks the certificate and the host name.** An unchecked
//!   TLS connection stops a passive eavesdropper only; whoever can
//!   intercept the connection can answer with any certificate and read
//!   the password. boxhook never skips the check: a `require` URL copied
//!   from a provider's console works when the provider's CA is public,
//!   and otherwise fails with "unknown issuer", saying to pass
//!   `sslrootcert`.
//! - **`allow` and `prefer` are plain text.** boxhook never tries TLS with
//!   a fallback to plain text: a connection is checked TLS or, when asked,
//!   plain.
//!   `sslrootcert` with one of them, or with `disable`, is a contradiction
//!   and is refused.
//! - **`verify-ca` needs `sslrootcert`** (like libpq with
//!   `sslrootcert=system`): against public roots anyone can get a valid
//!   certificate for a name of their own. It is for private CAs whose
//!   server certificates do not name the address clients connect to (an
//!   IP address, an instance name). rustls still checks the chain, the
//!   validity dates and the signatures; only a wrong name is forgiven.
//! - A unix socket with TLS asked for is refused (PostgreSQL never speaks
//!   TLS there); client certificates (`sslcert`, `sslkey`, `sslpassword`)
//!   and revocation lists (`sslcrl`, `sslcrldir`) are refused as
//!   unsupported; `sslrootcert` and [`Options::root_certificates_pem`]
//!   together are refused. `sslnegotiation=direct` (PostgreSQL 17) is
//!   passed to tokio-postgres as it is.
//!
//! A connection that fails says why and what to do: the certificate's
//! issuer is unknown (pass `sslrootcert` with the provider's bundle), it
//! does not name the host (connect with a name it names, or use
//! `verify-ca`), it expired, the server has TLS off, or the `sslrootcert`
//! file is missing, unreadable, empty or not PEM. Passwords never appear
//! in messages (`postgres://user:***@…`, `password=***`). The pool's
//! connections and the workers' `LISTEN` connection are made alike.
//!
//! A build without the feature refuses a connection string that asks for
//! TLS, with a message, rather than connecting in plain text.

#![forbid(unsafe_code)]
#![warn(clippy::arithmetic_side_effects)]
#![allow(
    clippy::doc_markdown,
    reason = "PostgreSQL and SQLite are product names, not code"
)]

mod batch;
mod connect;
mod conninfo;
mod idempotency;
mod inbox;
mod options;
mod partitions;
mod prune;
mod schema;
#[cfg(feature = "tls")]
mod tls;
mod wake;

use boxhook::inbox::{ErrorKind, InboxError};

pub use idempotency::{PgIdempotencyStore, FORGET_BATCH};
pub use inbox::PgInbox;
pub use options::Options;

/// Applies the pending migrations to the database at `url` (in the schema
/// of `options`), under the advisory lock; returns the schema version.
///
/// # Errors
///
/// As [`PgInbox::connect`].
pub async fn migrate(url: &str, options: &Options) -> Result<i64, InboxError> {
    PgInbox::connect_with(url, &options.clone().migrate(true)).await?;
    Ok(schema::version())
}

/// `connection_string` (a `postgres://` URL or the `key=value` form) with
/// its password replaced by `***`, for messages and logs.
///
/// ```
/// use boxhook_postgres::redact;
/// assert_eq!(redact("postgres://boxhook:s3cret@db/boxhook"), "postgres://boxhook:***@db/boxhook");
/// assert_eq!(redact("postgres://db/boxhook?password=s3cret"), "postgres://db/boxhook?password=***");
/// assert_eq!(redact("host=db password='s3 cret'"), "host=db password=***");
/// ```
#[must_use]
pub fn redact(connection_string: &str) -> String {
    conninfo::redact(connection_string)
}

/// Whether `store` names a PostgreSQL database (`postgres://…` or
/// `postgresql://…`).
///
/// ```
/// assert!(boxhook_postgres::is_postgres_url("postgresql://db/boxhook"));
/// assert!(!boxhook_postgres::is_postgres_url("sqlite:inbox.sqlite"));
/// ```
#[must_use]
pub fn is_postgres_url(store: &str) -> bool {
    store.starts_with("postgres://") || store.starts_with("postgresql://")
}

/// Whether `store` is a PostgreSQL connection string: a `postgres://` or
/// `postgresql://` URL, or libpq's `key=value` form with at least one of
/// libpq's settings (`host`, `port`, `dbname`, `user`, `password`, …),
/// values quoted or not.
///
/// ```
/// use boxhook_postgres::is_connection_string;
///
/// assert!(is_connection_string("postgres://boxhook@db/boxhook"));
/// assert!(is_connection_string("host=db port=5432 user=boxhook password='s3 cret' dbname=boxhook"));
/// assert!(!is_connection_string("./boxhook-inbox.sqlite"));
/// assert!(!is_connection_string("sqlite:inbox.sqlite"));
/// assert!(!is_connection_string("run=3.sqlite"));
/// ```
#[must_use]
pub fn is_connection_string(store: &str) -> bool {
    is_postgres_url(store) || conninfo::is_keyword_form(store)
}

/// A storage error with the whole of `error` in its message.
pub(crate) fn storage(error: impl std::error::Error + 'static) -> InboxError {
    InboxError::new(ErrorKind::Storage, describe(&error))
}

/// `error` and its causes on one line: tokio-postgres shows a server's error
/// as `db error` and a failed connection as `error connecting to server`,
/// with the reason (`FATAL: the database system is starting up`, `No space
/// left on device`, `Connection refused`) and the SQLSTATE only among the
/// causes.
pub(crate) fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(current) = cause {
        let more = current.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        if let Some(db) = current.downcast_ref::<tokio_postgres::error::DbError>() {
            text.push_str(" (SQLSTATE ");
            text.push_str(db.code().code());
            text.push(')');
            if db.code() == &tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE {
                text.push_str(
                    ": another transaction held a row or table this statement needed for \
                     longer than lock_timeout; look in pg_stat_activity for a long \
                     transaction (state 'idle in transaction') on boxhook's tables",
                );
            }
        }
        cause = current.source();
    }
    text
}
