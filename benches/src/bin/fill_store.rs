//! Fills an inbox (SQLite or PostgreSQL) with many stored events, fast, for
//! `benches/load/scale.sh`: the rows `boxhook serve` writes when it stores
//! an event and `boxhook work` writes when it acknowledges one.
//!
//! ```text
//! fill_store --store sqlite:big.sqlite --events 1000000 --pending 1000 \
//!     --from-ms 1790000000000 --step-ms 2419 --gap-after 100000 --gap-ms 120000
//! fill_store --store 'postgres://postgres@localhost/big?host=/tmp/pg&port=5432' ...
//! ```
//!
//! Event `i` (from 0) is a copy of one of the fixture payloads in
//! `crates/boxhook-core/fixtures` (Box's real shapes, 0.25–2.5 KB), taken in
//! turn, with its event id replaced by a random-looking UUID of its own
//! (every row is a distinct event) and a delivery id of its own, received
//! at `from + i × step` (plus `gap` from event `gap_after` on: a pause in
//! the traffic, so a prune by age can cut exactly between two events). The
//! last `pending` events are pending (not processed yet); the others are
//! done: claimed by a worker 2 s after they arrived, with `work`'s default
//! 300 s lease and a worker id like `work`'s (`HOST-PID-N`), and
//! acknowledged.
//!
//! How the rows are written, and why they are what `serve` writes:
//!
//! - The first event of each UTC day goes through the store itself:
//!   `Inbox::store` of the record `serve` makes from that delivery
//!   (`NewRecord::parse`), then, for a done one, `Inbox::claim_next` and
//!   `Inbox::ack` as a worker does. On PostgreSQL that store also creates
//!   the day's partition, as a live receiver's first event of a day does.
//! - The rest of the day goes in bulk, in transactions of `--chunk` events:
//!   SQLite, one prepared `INSERT` per event into `events` (the schema's
//!   triggers keep the counters, as for every store); PostgreSQL, binary
//!   `COPY` into `events` and `event_keys`, and the chunk's counts added to
//!   `event_counts` in the same transaction.
//! - At the end, the row of the first event (written by the store) and of a
//!   bulk-written event of the same fixture are read back and compared,
//!   column by column, with what this program computed for them: the bulk
//!   rows are checked to be the rows the store writes. Then
//!   `Inbox::counts` must say exactly `pending` pending and the rest done,
//!   with the oldest pending event's time, or the program fails.
//!
//! On PostgreSQL the fill ends with `VACUUM (ANALYZE)` of the tables, the
//! state autovacuum leaves a long-running database in (otherwise it would
//! run during the measurements that follow).
//!
//! Progress goes to stderr; the last line on stdout is
//! `FILL_RESULT events=… pending=… done=… seconds=… per_second=…`.

#![allow(
    clippy::doc_markdown,
    reason = "SQLite, PostgreSQL and SplitMix64 are names, not code"
)]
#![allow(
    clippy::cast_precision_loss,
    reason = "event counts shown as rates and percentages"
)]

use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use boxhook::inbox::{Counts, Inbox, NewRecord, Stored};
use boxhook_postgres::{Options, PgInbox};
use boxhook_sqlite::SqliteInbox;
use chrono::{DateTime, Utc};
use clap::Parser;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// One day in milliseconds.
const DAY_MS: i64 = 86_400_000;
/// `boxhook work`'s default lease.
const LEASE: Duration = Duration::from_secs(300);
/// [`LEASE`] in milliseconds.
const LEASE_MS: i64 = 300_000;
const _: () = assert!(LEASE.as_millis() == 300_000);
/// How long after arriving a done event was claimed.
const CLAIMED_AFTER_MS: i64 = 2_000;
/// How many workers the done events are spread over (`HOST-PID-0` …).
const WORKERS: u64 = 8;

/// Fills an inbox with many stored events.
#[derive(Parser, Debug)]
struct Cli {
    /// The store: sqlite:PATH (created if missing) or a postgres:// URL
    /// (its database must exist; the schema is created or migrated).
    #[arg(long)]
    store: String,
    /// How many events in all.
    #[arg(long)]
    events: u64,
    /// How many of them (the newest) are pending; the others are done.
    #[arg(long, default_value_t = 0)]
    pending: u64,
    /// When the first event was received, in ms since the Unix epoch.
    #[arg(long)]
    from_ms: i64,
    /// Milliseconds between two events.
    #[arg(long)]
    step_ms: i64,
    /// Events from this index on are received `--gap-ms` later.
    #[arg(long, default_value_t = u64::MAX)]
    gap_after: u64,
    /// The pause in the traffic at `--gap-after`, in ms.
    #[arg(long, default_value_t = 0)]
    gap_ms: i64,
    /// Events per bulk transaction.
    #[arg(long, default_value_t = 50_000)]
    chunk: u64,
    /// Seed of the event and delivery ids (default: from the clock, so
    /// that no two fills share an id).
    #[arg(long)]
    seed: Option<u64>,
}

/// A fixture split around its event id.
struct Template {
    name: &'static str,
    /// The body up to and including `"id":"`.
    head: &'static [u8],
    /// The body from the id's closing quote on.
    tail: &'static [u8],
    webhook_id: String,
    trigger: String,
    source_type: Option<String>,
    source_id: Option<String>,
}

/// What event `i` is: every column of its row follows from `i`.
struct Layout {
    templates: Vec<Template>,
    events: u64,
    pending: u64,
    from_ms: i64,
    step_ms: i64,
    gap_after: u64,
    gap_ms: i64,
    seed: u64,
    host: String,
    pid: u32,
}

/// A row of `events` as written for one event (without `seq`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    webhook_id: String,
    event_id: String,
    trigger: String,
    source_type: Option<String>,
    source_id: Option<String>,
    delivery_id: Option<String>,
    received_at: i64,
    body: Vec<u8>,
    kind: String,
    deliveries: i64,
    state: String,
    attempts: i64,
    worker_id: Option<String>,
    ready_at: i64,
}

/// SplitMix64: a bijection of `u64`, well mixed.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A version-4-shaped UUID from 128 mixed bits. The first 64 bits are a
/// bijection of `n`, so distinct `n` give distinct ids.
fn uuid(seed: u64, n: u64) -> String {
    let a = mix(seed ^ mix(n));
    let b = mix(a ^ seed.rotate_left(17));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:x}{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        8 | (b >> 62),
        (b >> 48) & 0xfff,
        b & 0xffff_ffff_ffff
    )
}

impl Layout {
    fn template(&self, i: u64) -> &Template {
        let n = self.templates.len() as u64;
        &self.templates[usize::try_from(i % n).unwrap_or(0)]
    }

    fn is_pending(&self, i: u64) -> bool {
        i >= self.events - self.pending
    }

    fn received_at(&self, i: u64) -> i64 {
        let at = self.from_ms + self.step_ms * i64::try_from(i).unwrap_or(i64::MAX);
        if i >= self.gap_after {
            at + self.gap_ms
        } else {
            at
        }
    }

    fn event_id(&self, i: u64) -> String {
        uuid(self.seed, i.wrapping_mul(2))
    }

    fn delivery_id(&self, i: u64) -> String {
        uuid(self.seed, i.wrapping_mul(2) | 1)
    }

    fn worker_id(&self, i: u64) -> String {
        format!("{}-{}-{}", self.host, self.pid, i % WORKERS)
    }

    fn body(&self, i: u64, event_id: &str) -> Vec<u8> {
        let t = self.template(i);
        let mut body = Vec::with_capacity(t.head.len() + event_id.len() + t.tail.len());
        body.extend_from_slice(t.head);
        body.extend_from_slice(event_id.as_bytes());
        body.extend_from_slice(t.tail);
        body
    }

    fn row(&self, i: u64) -> Row {
        let t = self.template(i);
        let event_id = self.event_id(i);
        let body = self.body(i, &event_id);
        let received_at = self.received_at(i);
        let pending = self.is_pending(i);
        Row {
            webhook_id: t.webhook_id.clone(),
            event_id,
            trigger: t.trigger.clone(),
            source_type: t.source_type.clone(),
            source_id: t.source_id.clone(),
            delivery_id: Some(self.delivery_id(i)),
            received_at,
            body,
            kind: "v2".to_owned(),
            deliveries: 1,
            state: if pending { "pending" } else { "done" }.to_owned(),
            attempts: i64::from(!pending),
            worker_id: (!pending).then(|| self.worker_id(i)),
            ready_at: if pending {
                0
            } else {
                received_at + CLAIMED_AFTER_MS + LEASE_MS
            },
        }
    }

    /// `[a, b)` ranges of events, one per UTC day of `received_at`.
    fn days(&self) -> Vec<(u64, u64)> {
        let mut days = Vec::new();
        let mut start = 0;
        while start < self.events {
            let day_end = (self.received_at(start).div_euclid(DAY_MS) + 1) * DAY_MS;
            // The first event at or after the next day (received_at grows with i).
            let (mut lo, mut hi) = (start + 1, self.events);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if self.received_at(mid) < day_end {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            days.push((start, lo));
            start = lo;
        }
        days
    }
}

/// The fixtures the store accepts, split around their event ids.
fn templates() -> Result<Vec<Template>> {
    let mut templates = Vec::new();
    for fixture in boxhook_testkit::fixtures::all() {
        let body = fixture.body();
        let Ok(record) = NewRecord::parse(body, None, Utc::now()) else {
            continue;
        };
        let needle = format!("\"id\":\"{}\"", record.event_id);
        let Some(at) = find(body, needle.as_bytes()) else {
            continue;
        };
        let id_start = at + "\"id\":\"".len();
        templates.push(Template {
            name: fixture.name(),
            head: &body[..id_start],
            tail: &body[id_start + record.event_id.len()..],
            webhook_id: record.webhook_id,
            trigger: record.trigger,
            source_type: record.source_type,
            source_id: record.source_id,
        });
    }
    if templates.is_empty() {
        return Err("no fixture could be used as a template".into());
    }
    Ok(templates)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "worker".to_owned())
}

fn at(ms: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| format!("{ms} ms is out of range").into())
}

/// Stores event `i` as `serve` does and, when it is done, claims and
/// acknowledges it as `work` does.
async fn through_the_store(inbox: &impl Inbox, layout: &Layout, i: u64) -> Result<()> {
    let row = layout.row(i);
    let record = NewRecord::parse(
        row.body.clone(),
        row.delivery_id.as_deref(),
        at(row.received_at)?,
    )?;
    let stored = inbox.store(record).await?;
    if stored != Stored::New {
        return Err(format!("event {i} ({}) was not new: {stored:?}", row.event_id).into());
    }
    if !layout.is_pending(i) {
        let claimed = inbox
            .claim_next(
                &layout.worker_id(i),
                LEASE,
                at(row.received_at + CLAIMED_AFTER_MS)?,
            )
            .await?
            .ok_or_else(|| format!("event {i} was stored but nothing could be claimed"))?;
        if claimed.entry.event_id != row.event_id {
            return Err(format!(
                "claimed {} instead of event {i} ({}): the store was not empty",
                claimed.entry.event_id, row.event_id
            )
            .into());
        }
        inbox.ack(&claimed).await?;
    }
    Ok(())
}

/// Shows progress on stderr at most every 2 s, and at the end.
struct Progress {
    started: Instant,
    shown: Instant,
    total: u64,
}

impl Progress {
    fn new(total: u64) -> Self {
        let now = Instant::now();
        Self {
            started: now,
            shown: now,
            total,
        }
    }

    fn show(&mut self, done: u64, force: bool) {
        if !force && self.shown.elapsed() < Duration::from_secs(2) {
            return;
        }
        self.shown = Instant::now();
        let seconds = self.started.elapsed().as_secs_f64();
        let rate = done as f64 / seconds.max(1e-3);
        let left = (self.total - done) as f64 / rate.max(1.0);
        eprintln!(
            "fill_store: {} of {} events ({:.1} %) in {seconds:.0} s, {rate:.0} events/s, about {left:.0} s left",
            thousands(done),
            thousands(self.total),
            100.0 * done as f64 / self.total.max(1) as f64,
        );
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (k, c) in digits.chars().enumerate() {
        if k > 0 && (digits.len() - k).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The two stores, each with the inbox and a plain connection for bulk
/// writes.
enum Target {
    Sqlite {
        inbox: SqliteInbox,
        conn: rusqlite::Connection,
        path: PathBuf,
    },
    Postgres {
        inbox: PgInbox,
        client: tokio_postgres::Client,
    },
}

const SQLITE_INSERT: &str = "INSERT INTO events (webhook_id, event_id, trigger_name, source_type, \
     source_id, delivery_id, received_at, body, kind, deliveries, state, attempts, worker_id, \
     ready_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

const SQLITE_SELECT: &str = "SELECT webhook_id, event_id, trigger_name, source_type, source_id, \
     delivery_id, received_at, body, kind, deliveries, state, attempts, worker_id, ready_at \
     FROM events WHERE event_id = ?1";

const PG_SELECT: &str = "SELECT e.webhook_id, e.event_id, e.trigger_name, e.source_type, \
     e.source_id, e.delivery_id, e.received_at, e.body, e.kind, k.deliveries, e.state, \
     e.attempts::bigint, e.worker_id, e.ready_at, k.received_at, k.gone \
     FROM events e JOIN event_keys k USING (webhook_id, event_id) WHERE e.event_id = $1";

impl Target {
    async fn open(store: &str) -> Result<Self> {
        if let Some(path) = store.strip_prefix("sqlite:") {
            let path = PathBuf::from(path);
            // Creates the file with the schema `serve` would, then closes
            // nothing: the inbox stays open for the per-day stores.
            let inbox = SqliteInbox::open(&path)?;
            let conn = rusqlite::Connection::open(&path)?;
            // This connection only: fsync once at the end, a big page cache
            // for the indexes. The file keeps its own settings (WAL).
            conn.pragma_update(None, "synchronous", "OFF")?;
            conn.pragma_update(None, "cache_size", -1_048_576)?;
            conn.busy_timeout(Duration::from_secs(30))?;
            Ok(Self::Sqlite { inbox, conn, path })
        } else if boxhook_postgres::is_postgres_url(store) {
            let inbox = PgInbox::connect_with(store, &Options::default()).await?;
            let (client, connection) =
                tokio_postgres::connect(store, tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            // The fill's own commits need not wait for the disk; the
            // VACUUM at the end and the server's checkpoints make it
            // durable before anything is measured.
            client.batch_execute("SET synchronous_commit = off").await?;
            Ok(Self::Postgres { inbox, client })
        } else {
            Err(format!("--store {store:?}: give sqlite:PATH or a postgres:// URL").into())
        }
    }

    async fn through_the_store(&self, layout: &Layout, i: u64) -> Result<()> {
        match self {
            Self::Sqlite { inbox, .. } => through_the_store(inbox, layout, i).await,
            Self::Postgres { inbox, .. } => through_the_store(inbox, layout, i).await,
        }
    }

    /// Writes events `[a, b)` in one transaction.
    async fn bulk(&mut self, layout: &Layout, a: u64, b: u64) -> Result<()> {
        match self {
            Self::Sqlite { conn, .. } => {
                let tx = conn.transaction()?;
                {
                    let mut insert = tx.prepare_cached(SQLITE_INSERT)?;
                    for i in a..b {
                        let r = layout.row(i);
                        insert.execute(rusqlite::params![
                            r.webhook_id,
                            r.event_id,
                            r.trigger,
                            r.source_type,
                            r.source_id,
                            r.delivery_id,
                            r.received_at,
                            r.body,
                            r.kind,
                            r.deliveries,
                            r.state,
                            r.attempts,
                            r.worker_id,
                            r.ready_at,
                        ])?;
                    }
                }
                tx.commit()?;
                Ok(())
            }
            Self::Postgres { client, .. } => bulk_postgres(client, layout, a, b).await,
        }
    }

    /// Event `i`'s row as stored, with its key's `deliveries`.
    async fn read_back(&self, layout: &Layout, i: u64) -> Result<Row> {
        let event_id = layout.event_id(i);
        match self {
            Self::Sqlite { conn, .. } => Ok(conn.query_row(SQLITE_SELECT, [&event_id], |r| {
                Ok(Row {
                    webhook_id: r.get(0)?,
                    event_id: r.get(1)?,
                    trigger: r.get(2)?,
                    source_type: r.get(3)?,
                    source_id: r.get(4)?,
                    delivery_id: r.get(5)?,
                    received_at: r.get(6)?,
                    body: r.get(7)?,
                    kind: r.get(8)?,
                    deliveries: r.get(9)?,
                    state: r.get(10)?,
                    attempts: r.get(11)?,
                    worker_id: r.get(12)?,
                    ready_at: r.get(13)?,
                })
            })?),
            Self::Postgres { client, .. } => {
                let r = client.query_one(PG_SELECT, &[&event_id]).await?;
                let key_received: i64 = r.try_get(14)?;
                let gone: bool = r.try_get(15)?;
                let row = Row {
                    webhook_id: r.try_get(0)?,
                    event_id: r.try_get(1)?,
                    trigger: r.try_get(2)?,
                    source_type: r.try_get(3)?,
                    source_id: r.try_get(4)?,
                    delivery_id: r.try_get(5)?,
                    received_at: r.try_get(6)?,
                    body: r.try_get(7)?,
                    kind: r.try_get(8)?,
                    deliveries: r.try_get(9)?,
                    state: r.try_get(10)?,
                    attempts: r.try_get(11)?,
                    worker_id: r.try_get(12)?,
                    ready_at: r.try_get(13)?,
                };
                if key_received != row.received_at || gone {
                    return Err(format!(
                        "event {i}'s key says received_at {key_received}, gone {gone}; its row \
                         says {}",
                        row.received_at
                    )
                    .into());
                }
                Ok(row)
            }
        }
    }

    async fn counts(&self) -> Result<Counts> {
        Ok(match self {
            Self::Sqlite { inbox, .. } => inbox.counts().await?,
            Self::Postgres { inbox, .. } => inbox.counts().await?,
        })
    }

    /// Leaves the store as a long-running one would be: SQLite's WAL
    /// checkpointed into the file; PostgreSQL's tables vacuumed and
    /// analyzed.
    async fn finish(&mut self) -> Result<()> {
        match self {
            Self::Sqlite { conn, path, .. } => {
                conn.pragma_update(None, "synchronous", "FULL")?;
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
                eprintln!(
                    "fill_store: {} is {} bytes",
                    path.display(),
                    file_size(path)
                );
            }
            Self::Postgres { client, .. } => {
                let started = Instant::now();
                client
                    .batch_execute("VACUUM (ANALYZE) events, event_keys, event_counts")
                    .await?;
                client.batch_execute("CHECKPOINT").await?;
                eprintln!(
                    "fill_store: VACUUM (ANALYZE) and CHECKPOINT in {:.0} s",
                    started.elapsed().as_secs_f64()
                );
            }
        }
        Ok(())
    }
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

const PG_EVENTS_COPY: &str = "COPY events (webhook_id, event_id, trigger_name, source_type, \
     source_id, delivery_id, received_at, body, kind, state, attempts, worker_id, ready_at) \
     FROM STDIN (FORMAT binary)";

const PG_KEYS_COPY: &str =
    "COPY event_keys (webhook_id, event_id, received_at, deliveries) FROM STDIN (FORMAT binary)";

/// Adds a chunk's events to shard 0 of its webhooks' counters, as the
/// store's statements add theirs to their own shard.
const PG_COUNTS: &str = "INSERT INTO event_counts AS c (webhook_id, shard, pending, done, \
     deliveries) VALUES ($1, 0, $2, $3, $4) ON CONFLICT (webhook_id, shard) DO UPDATE SET \
     pending = c.pending + EXCLUDED.pending, done = c.done + EXCLUDED.done, \
     deliveries = c.deliveries + EXCLUDED.deliveries";

async fn bulk_postgres(
    client: &mut tokio_postgres::Client,
    layout: &Layout,
    a: u64,
    b: u64,
) -> Result<()> {
    let tx = client.transaction().await?;
    {
        let sink = tx.copy_in(PG_EVENTS_COPY).await?;
        let types = [
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::INT8,
            Type::BYTEA,
            Type::TEXT,
            Type::TEXT,
            Type::INT4,
            Type::TEXT,
            Type::INT8,
        ];
        let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &types));
        for i in a..b {
            let r = layout.row(i);
            let attempts = i32::try_from(r.attempts)?;
            let values: [&(dyn ToSql + Sync); 13] = [
                &r.webhook_id,
                &r.event_id,
                &r.trigger,
                &r.source_type,
                &r.source_id,
                &r.delivery_id,
                &r.received_at,
                &r.body,
                &r.kind,
                &r.state,
                &attempts,
                &r.worker_id,
                &r.ready_at,
            ];
            writer.as_mut().write(&values).await?;
        }
        writer.finish().await?;
    }
    {
        let sink = tx.copy_in(PG_KEYS_COPY).await?;
        let types = [Type::TEXT, Type::TEXT, Type::INT8, Type::INT8];
        let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &types));
        for i in a..b {
            let t = layout.template(i);
            let event_id = layout.event_id(i);
            let received_at = layout.received_at(i);
            let values: [&(dyn ToSql + Sync); 4] = [&t.webhook_id, &event_id, &received_at, &1_i64];
            writer.as_mut().write(&values).await?;
        }
        writer.finish().await?;
    }
    let mut by_webhook: std::collections::BTreeMap<&str, (i64, i64)> =
        std::collections::BTreeMap::new();
    for i in a..b {
        let entry = by_webhook
            .entry(layout.template(i).webhook_id.as_str())
            .or_default();
        if layout.is_pending(i) {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    }
    let counts = tx.prepare(PG_COUNTS).await?;
    for (webhook_id, (pending, done)) in by_webhook {
        tx.execute(&counts, &[&webhook_id, &pending, &done, &(pending + done)])
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Checks that event `i`'s stored row is the row computed for it.
async fn check_row(target: &Target, layout: &Layout, i: u64, how: &str) -> Result<()> {
    let stored = target.read_back(layout, i).await?;
    let expected = layout.row(i);
    if stored != expected {
        let mut diff = String::new();
        let _ = write!(
            diff,
            "event {i} ({how}, fixture {}) is not the row computed for it:\n  stored   \
             {stored:?}\n  computed {expected:?}",
            layout.template(i).name
        );
        return Err(diff.into());
    }
    Ok(())
}

async fn run(cli: Cli) -> Result<()> {
    if cli.events == 0 || cli.pending > cli.events || cli.step_ms < 0 || cli.chunk == 0 {
        return Err("need --events > 0, --pending <= --events, --step-ms >= 0, --chunk > 0".into());
    }
    let seed = cli.seed.unwrap_or_else(|| {
        mix(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() ^ u64::from(d.subsec_nanos()) << 32))
    });
    let layout = Layout {
        templates: templates()?,
        events: cli.events,
        pending: cli.pending,
        from_ms: cli.from_ms,
        step_ms: cli.step_ms,
        gap_after: cli.gap_after,
        gap_ms: cli.gap_ms,
        seed,
        host: hostname(),
        pid: std::process::id(),
    };
    let sizes: Vec<usize> = (0..layout.templates.len() as u64)
        .map(|i| layout.body(i, &layout.event_id(i)).len())
        .collect();
    eprintln!(
        "fill_store: {} events ({} pending) from {} fixtures of {}..{} bytes (mean {:.0}), \
         received {} to {}",
        thousands(cli.events),
        thousands(cli.pending),
        layout.templates.len(),
        sizes.iter().min().copied().unwrap_or(0),
        sizes.iter().max().copied().unwrap_or(0),
        sizes.iter().sum::<usize>() as f64 / sizes.len().max(1) as f64,
        at(layout.received_at(0))?.to_rfc3339(),
        at(layout.received_at(cli.events - 1))?.to_rfc3339(),
    );
    let mut target = Target::open(&cli.store).await?;
    if target.counts().await? != Counts::default() {
        return Err(format!("{} is not empty: fill only a new store", cli.store).into());
    }
    let started = Instant::now();
    let mut progress = Progress::new(cli.events);
    let mut written = 0;
    for (a, b) in layout.days() {
        target.through_the_store(&layout, a).await?;
        written += 1;
        let mut lo = a + 1;
        while lo < b {
            let hi = (lo + cli.chunk).min(b);
            target.bulk(&layout, lo, hi).await?;
            written += hi - lo;
            lo = hi;
            progress.show(written, false);
        }
    }
    progress.show(written, true);
    let seconds = started.elapsed().as_secs_f64();

    // The first event went through the store; a bulk one of the same
    // fixture (if there is one) must be the same row but for its own id.
    check_row(&target, &layout, 0, "stored by Inbox::store")
        .await
        .map_err(|e| format!("{e}\n(the computed row does not match the store's)"))?;
    let twin = layout.templates.len() as u64;
    if twin < cli.events && layout.days().iter().all(|(a, _)| *a != twin) {
        check_row(&target, &layout, twin, "written in bulk").await?;
    }
    target.finish().await?;

    let counts = target.counts().await?;
    let expected = Counts {
        pending: cli.pending,
        claimed: 0,
        done: cli.events - cli.pending,
        dead: 0,
        oldest_pending: if cli.pending > 0 {
            Some(at(layout.received_at(cli.events - cli.pending))?)
        } else {
            None
        },
    };
    if counts != expected {
        return Err(
            format!("Inbox::counts says {counts:?} after the fill, not {expected:?}").into(),
        );
    }
    eprintln!(
        "fill_store: Inbox::counts: {} pending, {} done, 0 claimed, 0 dead, oldest pending {} \
         (as filled)",
        thousands(counts.pending),
        thousands(counts.done),
        expected
            .oldest_pending
            .map_or_else(|| "none".to_owned(), |t| t.to_rfc3339())
    );
    println!(
        "FILL_RESULT events={} pending={} done={} seconds={seconds:.1} per_second={:.0}",
        cli.events,
        cli.pending,
        cli.events - cli.pending,
        cli.events as f64 / seconds.max(1e-3)
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("fill_store: cannot start a runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fill_store: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
