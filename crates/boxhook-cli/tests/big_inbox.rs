//! A big inbox slows nothing down: CI's version of `benches/load/scale.sh`,
//! asserted by counts, not times.
//!
//! An inbox is filled with 200,000 events by bulk SQL (copies of the
//! fixture payloads, each with an event id of its own; the newest 200
//! pending, the others done, as `serve` stores and `work` acknowledges
//! them), then `boxhook serve --admin` runs on it while 32 readers ask its
//! admin listener for `/metrics`, `/` and `/summary.json` as fast as it
//! answers and 4 senders post signed deliveries of new events. Asserted:
//!
//! - `/metrics` reports the filled counts exactly, and afterwards exactly
//!   those plus the deliveries accepted;
//! - no delivery was answered anything but 2xx, and none took a second or
//!   more (counted: 0);
//! - serve's peak memory (VmHWM) stayed within its idle size plus 80 MiB,
//!   serve's own bound for bodies and connection buffers;
//! - no scan: SQLite, the bytes serve read from files during the storm
//!   (`/proc/PID/io` `rchar`) are under a tenth of the inbox file (one
//!   pass over the events would read all of it); PostgreSQL, no sequential
//!   scan read a row of an events partition (`pg_stat_user_tables`), and
//!   the inbox was counted at most once per 2 s of serve's life, however
//!   many reads asked (each count is one scan of the tiny `event_counts`
//!   table, so `seq_scan` of `event_counts` counts them).
//!
//! The PostgreSQL test runs when PostgreSQL is installed, and must when
//! `BOXHOOK_POSTGRES=required` (it says `skipped` otherwise).

#![cfg(unix)]
#![allow(
    clippy::doc_markdown,
    reason = "SQLite and PostgreSQL are product names, not code"
)]

#[path = "cli/common/mod.rs"]
mod common;

use std::io::{BufReader, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use boxhook::inbox::NewRecord;
use boxhook_testkit::postgres::Cluster;
use chrono::{DurationRound, TimeDelta, Utc};

use common::admin::{admin_addr, get};
use common::{boxhook, read_response, run, signed_request, temp_dir, Server};

/// Events filled.
const EVENTS: u64 = 200_000;
/// The newest of them, pending; the others are done.
const PENDING: u64 = 200;
/// Admin readers, as fast as they are answered.
const READERS: usize = 32;
/// Senders of deliveries, one after the other each.
const SENDERS: usize = 4;
/// How long the readers and senders run.
const STORM: Duration = Duration::from_secs(6);
/// A delivery answered this late counts as a stall.
const STALL: Duration = Duration::from_secs(1);
/// How much serve's peak RSS may exceed its idle RSS: serve's documented
/// bound for bodies (`--body-budget`, 64 MiB) and connection buffers
/// (16 KiB each), with room to spare.
const MEMORY_BOUND_KIB: u64 = 80 * 1024;

/// The two tests share the machine's cores: one storm at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A fixture split around its event id, with the fields `serve` stores.
struct Template {
    webhook_id: String,
    trigger: String,
    source_type: Option<String>,
    source_id: Option<String>,
    head: String,
    tail: String,
}

/// Every fixture the inbox stores, split around its event id.
fn templates() -> Vec<Template> {
    let mut templates = Vec::new();
    for fixture in boxhook_testkit::fixtures::all() {
        let Ok(record) = NewRecord::parse(fixture.body(), None, Utc::now()) else {
            continue;
        };
        let body = std::str::from_utf8(fixture.body()).expect("fixtures are ASCII");
        let needle = format!("\"id\":\"{}\"", record.event_id);
        let Some(at) = body.find(&needle) else {
            continue;
        };
        let start = at + "\"id\":\"".len();
        templates.push(Template {
            webhook_id: record.webhook_id,
            trigger: record.trigger,
            source_type: record.source_type,
            source_id: record.source_id,
            head: body[..start].to_owned(),
            tail: body[start + record.event_id.len()..].to_owned(),
        });
    }
    assert!(templates.len() > 40, "only {} templates", templates.len());
    templates
}

/// When the events were received: one every `step` ms from `from` (the
/// start of yesterday, UTC, so that PostgreSQL's partitions made at
/// migration hold them) to 10 minutes ago.
fn layout() -> (i64, i64) {
    let now = Utc::now();
    let from = now.duration_trunc(TimeDelta::days(1)).expect("a day") - TimeDelta::days(1);
    let to = now - TimeDelta::minutes(10);
    let step = (to - from).num_milliseconds() / i64::try_from(EVENTS).expect("small");
    (from.timestamp_millis(), step.max(1))
}

/// Fills a new SQLite inbox at `path` in one statement: the rows `serve`
/// writes when it stores an event, and `work` when it acknowledges one
/// (claimed 2 s after arriving, lease 300 s). The schema's triggers keep
/// the counters.
fn fill_sqlite(path: &Path) {
    drop(boxhook_sqlite::SqliteInbox::open(path).expect("create the inbox"));
    let mut conn = rusqlite::Connection::open(path).expect("open");
    conn.pragma_update(None, "synchronous", "OFF")
        .expect("pragma");
    conn.pragma_update(None, "cache_size", -262_144)
        .expect("pragma");
    conn.execute_batch(
        "CREATE TEMP TABLE templates (k INTEGER PRIMARY KEY, webhook_id TEXT, trigger_name TEXT, \
         source_type TEXT, source_id TEXT, head TEXT, tail TEXT)",
    )
    .expect("templates");
    let templates = templates();
    for (k, t) in templates.iter().enumerate() {
        conn.execute(
            "INSERT INTO templates VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params![
                i64::try_from(k).expect("small"),
                t.webhook_id,
                t.trigger,
                t.source_type,
                t.source_id,
                t.head,
                t.tail
            ],
        )
        .expect("a template");
    }
    let (from, step) = layout();
    let tx = conn.transaction().expect("begin");
    let inserted = tx
        .execute(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1) \
             INSERT INTO events (webhook_id, event_id, trigger_name, source_type, source_id, \
                                 delivery_id, received_at, body, kind, deliveries, state, \
                                 attempts, worker_id, ready_at) \
             SELECT t.webhook_id, e.id, t.trigger_name, t.source_type, t.source_id, \
                    'd-' || e.id, ?2 + e.i * ?3, CAST(t.head || e.id || t.tail AS BLOB), 'v2', 1, \
                    CASE WHEN e.i >= ?4 THEN 'pending' ELSE 'done' END, \
                    CASE WHEN e.i >= ?4 THEN 0 ELSE 1 END, \
                    CASE WHEN e.i >= ?4 THEN NULL ELSE 'big-inbox-1-' || (e.i % 8) END, \
                    CASE WHEN e.i >= ?4 THEN 0 ELSE ?2 + e.i * ?3 + 302000 END \
             FROM (SELECT i, printf('b16b16b1-0000-4000-8000-%012x', i) AS id FROM n) AS e \
             JOIN templates t ON t.k = e.i % ?5",
            rusqlite::params![
                i64::try_from(EVENTS).expect("small"),
                from,
                step,
                i64::try_from(EVENTS - PENDING).expect("small"),
                i64::try_from(templates.len()).expect("small"),
            ],
        )
        .expect("fill");
    tx.commit().expect("commit");
    assert_eq!(inserted, usize::try_from(EVENTS).expect("small"));
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("pragma");
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
}

/// `psql` of `cluster` on `url`, running `sql` (or the file `-f PATH`);
/// its output.
fn psql(cluster: &Cluster, url: &str, args: &[&str]) -> String {
    let out = Command::new(cluster.bindir().join("psql"))
        .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", url])
        .args(args)
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Fills the migrated PostgreSQL inbox at `url` in one statement: the rows,
/// keys and counters `serve` and `work` write (as [`fill_sqlite`]); then
/// vacuums and analyzes, as autovacuum leaves a long-running database.
fn fill_postgres(cluster: &Cluster, url: &str, dir: &Path) {
    let templates = templates();
    let quote = |text: &str| {
        assert!(!text.contains("$f$"), "a fixture holds $f$");
        format!("$f${text}$f$")
    };
    let optional = |text: &Option<String>| text.as_deref().map_or("NULL".to_owned(), quote);
    let values: Vec<String> = templates
        .iter()
        .enumerate()
        .map(|(k, t)| {
            format!(
                "({k}, {}, {}, {}, {}, {}, {})",
                quote(&t.webhook_id),
                quote(&t.trigger),
                optional(&t.source_type),
                optional(&t.source_id),
                quote(&t.head),
                quote(&t.tail)
            )
        })
        .collect();
    let (from, step) = layout();
    let sql = format!(
        "CREATE TEMP TABLE templates (k int PRIMARY KEY, webhook_id text, trigger_name text, \
           source_type text, source_id text, head text, tail text);
         INSERT INTO templates VALUES {values};
         WITH rows AS MATERIALIZED (
           SELECT i, t.*, 'b16b16b1-0000-4000-8000-' || lpad(to_hex(i), 12, '0') AS e,
                  {from}::bigint + i * {step} AS r, i >= {pending_from} AS p
           FROM generate_series(0, {last}) i JOIN templates t ON t.k = i % {count}),
         keys AS (
           INSERT INTO event_keys (webhook_id, event_id, received_at)
           SELECT webhook_id, e, r FROM rows),
         added AS (
           INSERT INTO events (webhook_id, event_id, trigger_name, source_type, source_id,
                               delivery_id, received_at, body, kind, state, attempts, worker_id,
                               ready_at)
           SELECT webhook_id, e, trigger_name, source_type, source_id, 'd-' || e, r,
                  convert_to(head || e || tail, 'UTF8'), 'v2',
                  CASE WHEN p THEN 'pending' ELSE 'done' END, CASE WHEN p THEN 0 ELSE 1 END,
                  CASE WHEN p THEN NULL ELSE 'big-inbox-1-' || (i % 8) END,
                  CASE WHEN p THEN 0 ELSE r + 302000 END
           FROM rows ORDER BY i)
         INSERT INTO event_counts AS c (webhook_id, shard, pending, done, deliveries)
         SELECT webhook_id, 0, count(*) FILTER (WHERE p), count(*) FILTER (WHERE NOT p), count(*)
         FROM rows GROUP BY webhook_id
         ON CONFLICT (webhook_id, shard) DO UPDATE SET pending = c.pending + EXCLUDED.pending,
           done = c.done + EXCLUDED.done, deliveries = c.deliveries + EXCLUDED.deliveries;
         VACUUM ANALYZE events, event_keys, event_counts;
        ",
        values = values.join(", "),
        pending_from = EVENTS - PENDING,
        last = EVENTS - 1,
        count = templates.len(),
    );
    let file = dir.join("fill.sql");
    std::fs::write(&file, sql).expect("write fill.sql");
    psql(cluster, url, &["-f", file.to_str().expect("utf-8 path")]);
}

/// (seq_tup_read of every events partition, seq_scan of event_counts).
fn scans(cluster: &Cluster, url: &str) -> (u64, u64) {
    let out = psql(
        cluster,
        url,
        &[
            "-c",
            "SELECT (SELECT coalesce(sum(seq_tup_read), 0) FROM pg_stat_user_tables \
                     WHERE relid IN (SELECT relid FROM pg_partition_tree('events') WHERE isleaf)) \
                    || ' ' || \
                    (SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'event_counts')",
        ],
    );
    let mut numbers = out.split_whitespace().map(|n| n.parse().expect("a number"));
    (
        numbers.next().expect("rows read"),
        numbers.next().expect("scans"),
    )
}

/// Events per state (pending, done, claimed, dead) from `/metrics`.
fn metrics_counts(admin: &str) -> (u64, u64, u64, u64) {
    let (status, _, body) = get(admin, "/metrics", None);
    assert_eq!(status, 200, "{body}");
    let state = |name: &str| -> u64 {
        let prefix = format!("boxhook_inbox_events{{state=\"{name}\"}} ");
        body.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {body}"))
            .trim()
            .parse()
            .expect("a count")
    };
    (
        state("pending"),
        state("done"),
        state("claimed"),
        state("dead"),
    )
}

/// A field of `/proc/PID/status` (VmRSS, VmHWM), in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|rest| rest.trim().strip_suffix(" kB"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}

/// Bytes `pid` read with read(2) and kin (`rchar` of `/proc/PID/io`).
fn rchar(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).expect("proc io");
    io.lines()
        .find_map(|line| line.strip_prefix("rchar: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no rchar in {io}"))
}

/// What the readers and senders saw.
#[derive(Debug, Default)]
struct Storm {
    /// Deliveries answered 2xx.
    accepted: u64,
    /// Deliveries answered otherwise, or not at all.
    failed: u64,
    /// Deliveries answered after [`STALL`] or later.
    stalled: u64,
    slowest: Duration,
    /// Admin answers 200, and others (or none: a connection the admin
    /// listener closed under the reader, at its bound of 32).
    reads: u64,
    reads_other: u64,
}

/// The status code of a lowercased response head.
fn status_of(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// One reader: `/metrics`, `/`, `/summary.json` in turn on a keep-alive
/// connection (a new one when the listener closes it) until `stop`.
fn reader(admin: &str, stop: &AtomicBool) -> (u64, u64) {
    let (mut ok, mut other) = (0, 0);
    let mut connection: Option<BufReader<TcpStream>> = None;
    for path in ["/metrics", "/", "/summary.json"].iter().cycle() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if connection.is_none() {
            let Ok(stream) = TcpStream::connect(admin) else {
                other += 1;
                continue;
            };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
            connection = Some(BufReader::new(stream));
        }
        let Some(reader) = connection.as_mut() else {
            continue;
        };
        let request = format!("GET {path} HTTP/1.1\r\nhost: {admin}\r\n\r\n");
        let head = reader
            .get_mut()
            .write_all(request.as_bytes())
            .ok()
            .and_then(|()| read_response(reader));
        match head {
            Some(head) if status_of(&head) == 200 => {
                ok += 1;
                if head.contains("connection: close") {
                    connection = None;
                }
            }
            _ => {
                other += 1;
                connection = None;
            }
        }
    }
    (ok, other)
}

/// One sender: new events, each signed now, one after the other on a
/// keep-alive connection (a new one after serve closes it), until `stop`.
fn sender(port: u16, n: usize, stop: &AtomicBool) -> Storm {
    let fixture =
        boxhook_testkit::fixtures::get("file.uploaded").expect("the file.uploaded fixture");
    let body = std::str::from_utf8(fixture.body()).expect("ASCII");
    let id = NewRecord::parse(fixture.body(), None, Utc::now())
        .expect("a record")
        .event_id;
    let mut storm = Storm::default();
    let mut connection: Option<BufReader<TcpStream>> = None;
    let mut k = 0u64;
    while !stop.load(Ordering::Relaxed) {
        k += 1;
        let request = signed_request(&body.replacen(&id, &format!("storm-{n}-{k}"), 1));
        let started = Instant::now();
        if connection.is_none() {
            let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to serve");
            // A delivery unanswered for 30 s is a failure, not a hang.
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .expect("read timeout");
            connection = Some(BufReader::new(stream));
        }
        let Some(reader) = connection.as_mut() else {
            continue;
        };
        let head = reader
            .get_mut()
            .write_all(&request)
            .ok()
            .and_then(|()| read_response(reader));
        let took = started.elapsed();
        storm.slowest = storm.slowest.max(took);
        if took >= STALL {
            storm.stalled += 1;
        }
        match head {
            Some(head) if (200..300).contains(&status_of(&head)) => {
                storm.accepted += 1;
                if head.contains("connection: close") {
                    connection = None;
                }
            }
            _ => {
                storm.failed += 1;
                connection = None;
            }
        }
    }
    storm
}

/// Runs [`READERS`] readers and [`SENDERS`] senders for [`STORM`].
fn storm(server: &Server, admin: &str) -> Storm {
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (admin, stop) = (admin.to_owned(), Arc::clone(&stop));
            std::thread::spawn(move || reader(&admin, &stop))
        })
        .collect();
    let senders: Vec<_> = (0..SENDERS)
        .map(|n| {
            let (port, stop) = (server.port, Arc::clone(&stop));
            std::thread::spawn(move || sender(port, n, &stop))
        })
        .collect();
    std::thread::sleep(STORM);
    stop.store(true, Ordering::Relaxed);
    let mut total = Storm::default();
    for sender in senders {
        let storm = sender.join().expect("a sender");
        total.accepted += storm.accepted;
        total.failed += storm.failed;
        total.stalled += storm.stalled;
        total.slowest = total.slowest.max(storm.slowest);
    }
    for reader in readers {
        let (ok, other) = reader.join().expect("a reader");
        total.reads += ok;
        total.reads_other += other;
    }
    eprintln!("storm: {total:?}");
    total
}

/// What both stores must show: the filled counts, a storm that stalls and
/// fails no delivery, the counts after it, and bounded memory. Returns the
/// storm.
fn filled_then_storm(server: &Server) -> Storm {
    let admin = admin_addr(server);
    assert_eq!(
        metrics_counts(&admin),
        (PENDING, EVENTS - PENDING, 0, 0),
        "/metrics must report the filled counts exactly"
    );
    let pid = server.child.id();
    let idle = status_kib(pid, "VmRSS");
    let storm = storm(server, &admin);
    assert!(storm.accepted > 0 && storm.reads > 0, "{storm:?}");
    assert_eq!(
        (storm.failed, storm.stalled),
        (0, 0),
        "deliveries failed or took {STALL:?} or more while {READERS} readers read: {storm:?}"
    );
    // The admin listener counts again once its last count is 2 s old.
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(
        metrics_counts(&admin),
        (PENDING + storm.accepted, EVENTS - PENDING, 0, 0),
        "/metrics after {} accepted deliveries",
        storm.accepted
    );
    let peak = status_kib(pid, "VmHWM");
    assert!(
        peak <= idle + MEMORY_BOUND_KIB,
        "serve's peak RSS {peak} KiB passed its idle {idle} KiB + {MEMORY_BOUND_KIB} KiB"
    );
    storm
}

#[test]
fn sqlite_200k_events_no_scan_no_stall() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = temp_dir("big-inbox");
    let path = dir.join("inbox.sqlite");
    fill_sqlite(&path);
    let size = std::fs::metadata(&path).expect("the inbox").len();
    let server = Server::start(&path, &["--admin", "127.0.0.1:0"]);
    let pid = server.child.id();
    let read_before = rchar(pid);
    filled_then_storm(&server);
    let read = rchar(pid) - read_before;
    eprintln!("serve read {read} bytes from files during the storm; the inbox is {size} bytes");
    assert!(
        read < size / 10,
        "serve read {read} bytes from files during the storm: the inbox ({size} bytes) was scanned"
    );
    server.terminate(Duration::from_secs(30));
}

#[test]
fn postgres_200k_events_no_scan_no_stall() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(cluster) = Cluster::start("big-inbox") else {
        return;
    };
    let url = cluster.url();
    let out = run(
        boxhook().args(["migrate", "--store", &url]),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = temp_dir("big-inbox-pg");
    fill_postgres(&cluster, &url, &dir);
    let (rows_before, counts_before) = scans(&cluster, &url);
    let started = Instant::now();
    let server = Server::start_on(&["--store", &url], &["--admin", "127.0.0.1:0"], &[]);
    filled_then_storm(&server);
    // Stopped: its connections end, and flush their statistics.
    server.terminate(Duration::from_secs(30));
    let lived = started.elapsed().as_secs();
    std::thread::sleep(Duration::from_millis(500));
    let (rows_after, counts_after) = scans(&cluster, &url);
    eprintln!(
        "while serve ran ({lived} s): {} events rows read by sequential scans, {} counts",
        rows_after - rows_before,
        counts_after - counts_before
    );
    assert_eq!(
        rows_after - rows_before,
        0,
        "sequential scans read events rows while serve ran"
    );
    let counted = counts_after - counts_before;
    assert!(
        (1..=lived / 2 + lived / 10 + 3).contains(&counted),
        "the inbox was counted {counted} times in {lived} s of serve"
    );
}
