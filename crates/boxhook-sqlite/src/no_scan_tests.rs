//! With 200,000 events stored, `counts`, a page of `list` and a batch of
//! `prune` do the same work as with 2,000: counted in SQLite's virtual
//! machine steps (`sqlite3_stmt_status`), never timed.
//!
//! Each measure is checked to be able to fail: the same counters on a
//! query that does read every row show at least one step per row.

use boxhook::inbox::{Counts, EntryState, ListFilter, Pruned, Retention};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, StatementStatus};

use crate::{prune, read, schema};

/// The suite's clock: event `i` is received at `T0 + i` seconds.
const T0_MS: i64 = 1_577_836_800_000;

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(T0_MS.saturating_add(seconds.saturating_mul(1000)))
        .expect("in range")
}

/// An inbox of `n` events as a receiver running for a while leaves it:
/// event `i` received at `i` s, four triggers in turn, every 1,000th dead,
/// every 5,000th a V1 callback, the newest 1,000 not processed yet (the
/// oldest 10 of them claimed), the rest done. Stored with the same
/// INSERT a receiver's rows go through (the triggers count them).
fn filled(n: i64) -> Connection {
    let mut conn = Connection::open_in_memory().expect("open");
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
        .expect("auto_vacuum");
    schema::migrate(&mut conn).expect("schema");
    conn.set_prepared_statement_cache_capacity(64);
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
         INSERT INTO events (webhook_id, event_id, trigger_name, source_type, source_id, \
                             delivery_id, received_at, body, state, attempts, kind) \
         SELECT '4133', 'e-' || i, \
                CASE i % 4 WHEN 0 THEN 'FILE.UPLOADED' WHEN 1 THEN 'FILE.TRASHED' \
                           WHEN 2 THEN 'FOLDER.CREATED' ELSE 'COMMENT.CREATED' END, \
                'file', 'f-' || i, 'd-' || i, ?2 + i * 1000, randomblob(120), \
                CASE WHEN i > ?1 - 990 THEN 'pending' \
                     WHEN i > ?1 - 1000 THEN 'claimed' \
                     WHEN i % 1000 = 7 THEN 'dead' ELSE 'done' END, \
                CASE WHEN i > ?1 - 990 THEN 0 ELSE 1 END, \
                CASE WHEN i % 5000 = 3 THEN 'v1' ELSE 'v2' END \
         FROM n",
        [n, T0_MS],
    )
    .expect("fill");
    conn
}

/// What the statements `sqls` did while `f` ran: virtual machine steps,
/// and steps of full table scans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Work {
    vm: i32,
    fullscan: i32,
}

fn work<R>(
    conn: &mut Connection,
    sqls: &[&str],
    f: impl FnOnce(&mut Connection) -> R,
) -> (R, Work) {
    for sql in sqls {
        let stmt = conn.prepare_cached(sql).expect("prepare");
        stmt.reset_status(StatementStatus::VmStep);
        stmt.reset_status(StatementStatus::FullscanStep);
    }
    let out = f(conn);
    let mut total = Work { vm: 0, fullscan: 0 };
    for sql in sqls {
        let stmt = conn.prepare_cached(sql).expect("prepare");
        total.vm = total
            .vm
            .saturating_add(stmt.get_status(StatementStatus::VmStep));
        total.fullscan = total
            .fullscan
            .saturating_add(stmt.get_status(StatementStatus::FullscanStep));
    }
    (out, total)
}

fn counts_work(conn: &mut Connection) -> (Counts, Work) {
    work(
        conn,
        &[read::COUNTS_SQL, read::OLDEST_PENDING_SQL],
        |conn| read::counts(conn, true).expect("counts"),
    )
}

fn list_work(conn: &mut Connection, filter: &ListFilter) -> (Vec<String>, Work) {
    let (sql, _) = read::list_sql(filter, "kind");
    work(conn, &[&sql], |conn| {
        read::list(conn, filter, "kind")
            .expect("list")
            .into_iter()
            .map(|entry| entry.event_id)
            .collect()
    })
}

/// The query plan's lines.
fn plan(conn: &Connection, sql: &str) -> Vec<String> {
    plan_with(conn, sql, Vec::new())
}

fn plan_with(conn: &Connection, sql: &str, values: Vec<rusqlite::types::Value>) -> Vec<String> {
    let mut stmt = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .expect("explain");
    stmt.query_map(rusqlite::params_from_iter(values), |row| {
        row.get::<_, String>(3)
    })
    .expect("plan")
    .collect::<Result<_, _>>()
    .expect("plan rows")
}

/// The measure can fail: a query that reads every row shows a full-scan
/// step per row and more virtual machine steps than rows.
#[test]
fn the_measure_sees_a_scan() {
    let mut conn = filled(200_000);
    let sql = "SELECT count(*) FROM events WHERE deliveries > 0";
    let (n, scan) = work(&mut conn, &[sql], |conn| {
        conn.prepare_cached(sql)
            .and_then(|mut stmt| stmt.query_row([], |row| row.get::<_, i64>(0)))
            .expect("count")
    });
    assert_eq!(n, 200_000);
    assert!(scan.fullscan >= 199_999, "{scan:?}");
    assert!(scan.vm > 200_000, "{scan:?}");
}

#[test]
fn counts_cost_the_same_with_200_000_events_as_with_2_000() {
    let mut small = filled(2_000);
    let mut big = filled(200_000);
    let (counted, big_work) = counts_work(&mut big);
    assert_eq!(
        counted,
        Counts {
            pending: 990,
            claimed: 10,
            done: 198_801,
            dead: 199,
            oldest_pending: Some(at(199_011)),
        }
    );
    let (small_counted, small_work) = counts_work(&mut small);
    assert_eq!(
        (
            small_counted.pending,
            small_counted.claimed,
            small_counted.total()
        ),
        (990, 10, 2_000)
    );
    assert_eq!(big_work, small_work);
    // Four counters, and the oldest pending past the 10 claimed before it
    // (a "full scan" step is a step of any scan, of an index too: here 4
    // rows of `counts` and 11 of the queue index).
    assert!(big_work.vm < 200, "{big_work:?}");
    assert!(big_work.fullscan < 20, "{big_work:?}");
    assert_eq!(plan(&big, read::COUNTS_SQL), ["SCAN counts"]);
    assert_eq!(
        plan(&big, read::OLDEST_PENDING_SQL),
        ["SCAN events USING INDEX events_queue"]
    );
}

#[test]
fn the_newest_page_costs_the_same_with_200_000_events_as_with_2_000() {
    let mut small = filled(2_000);
    let mut big = filled(200_000);
    let newest = ListFilter::new().newest_first().limit(50);
    let filters = [
        newest.clone(),
        newest.clone().trigger("FILE.UPLOADED"),
        newest.clone().state(EntryState::Pending),
        newest.clone().state(EntryState::Claimed),
        ListFilter::new().state(EntryState::Pending).limit(50),
    ];
    for filter in &filters {
        let (big_ids, big_work) = list_work(&mut big, filter);
        let (small_ids, small_work) = list_work(&mut small, filter);
        assert_eq!(big_ids.len(), small_ids.len().min(50), "{filter:?}");
        // At most the backlog of 1,000 walked (claimed events are behind
        // the 990 pending ones, newest first).
        assert!(big_work.vm < 5_000, "{filter:?}: {big_work:?}");
        assert!(
            small_work.vm.abs_diff(big_work.vm) <= 20,
            "{filter:?}: {small_work:?} against {big_work:?}"
        );
    }
    // The newest since a recent time: walked from the newest, it stops at
    // the limit.
    let (recent, work) = list_work(&mut big, &newest.clone().since(at(199_900)));
    assert_eq!(recent.len(), 50);
    assert!(work.vm < 1_500, "{work:?}");
    // A page past a cursor: the cursor found through the event-id index.
    let page = newest.clone().before("e-150000");
    let (ids, cursor) = list_work(&mut big, &page);
    assert_eq!(ids.first().map(String::as_str), Some("e-149999"));
    assert_eq!(ids.len(), 50);
    assert!(cursor.vm < 1_500, "{cursor:?}");
    let (sql, values) = read::list_sql(&page, "kind");
    let lines = plan_with(&big, &sql, values);
    assert!(
        lines
            .iter()
            .any(|line| line.contains("INDEX events_event_id")),
        "{lines:?}"
    );
}

#[test]
fn pages_of_dead_and_done_events_walk_their_state_only() {
    let mut big = filled(200_000);
    let (dead, work) = list_work(
        &mut big,
        &ListFilter::new()
            .state(EntryState::Dead)
            .newest_first()
            .limit(50),
    );
    assert_eq!(dead.first().map(String::as_str), Some("e-198007"));
    assert_eq!(dead.len(), 50);
    assert!(work.vm < 1_500, "{work:?}");
    let (sql, values) = read::list_sql(&ListFilter::new().state(EntryState::Dead), "kind");
    assert_eq!(
        plan_with(&big, &sql, values),
        ["SCAN events USING INDEX events_dead"]
    );
    // Done events: walked from the newest, past the 1,000 not processed.
    let (done, work) = list_work(
        &mut big,
        &ListFilter::new()
            .state(EntryState::Done)
            .newest_first()
            .limit(50),
    );
    assert_eq!(done.first().map(String::as_str), Some("e-199000"));
    assert!(work.vm < 5_000, "{work:?}");
}

#[test]
fn a_prune_batch_visits_what_it_removes_and_no_more() {
    let mut big = filled(200_000);
    let done_only = Retention::nothing().done(Some(std::time::Duration::from_secs(3_600)));
    // An hour after the newest event: every done event is old. One batch
    // of 1,000 walks about 1,000 rows (and the one dead event among them).
    let now = at(200_000 + 3_600);
    let walks = [
        prune::DONE_WALK_SQL,
        prune::DEAD_WALK_SQL,
        prune::V1_WALK_SQL,
    ];
    let (pruned, batch) = work(&mut big, &walks, |conn| {
        prune::prune(conn, &done_only, now, 1_000, true).expect("prune")
    });
    assert_eq!(
        pruned,
        Pruned {
            done: 1_000,
            more: true,
            ..Pruned::default()
        }
    );
    assert!(batch.vm < 15_000, "{batch:?}");
    // Nothing old enough: the walk stops at the first row.
    let early = at(10);
    let (pruned, idle) = work(&mut big, &walks, |conn| {
        prune::prune(conn, &done_only, early, 1_000, true).expect("prune")
    });
    assert_eq!(pruned, Pruned::default());
    assert!(idle.vm < 100, "{idle:?}");
    // Dead events and V1 callbacks: their own indexes, never the table.
    for (sql, index) in [
        (prune::DEAD_WALK_SQL, "events_dead"),
        (prune::V1_WALK_SQL, "events_v1_settled"),
    ] {
        assert_eq!(
            plan(&big, sql),
            [format!("SCAN events USING COVERING INDEX {index}")]
        );
    }
    let counts = read::counts(&big, true).expect("counts");
    assert_eq!((counts.done, counts.dead), (197_801, 199));
}
