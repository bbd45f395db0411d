//! `boxhook work` processes SIGKILLed mid-handler and started again, three
//! at a time on one PostgreSQL store with a 2 s `--lease`: every event the
//! killed processes were running is run again once its lease has ended,
//! nothing is `done` without a successful run of its last claim, and no
//! two live processes run one event at once. The `--exec` handler appends
//! a `start` and an `end` line per run to a log, which is checked against
//! the store once every event is done.
//!
//! Skipped with a message when PostgreSQL is not installed, unless
//! `BOXHOOK_POSTGRES=required` (CI).

#![cfg(unix)]
#![allow(
    clippy::doc_markdown,
    reason = "PostgreSQL is a product name, not code"
)]

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use boxhook::inbox::{EntryState, Inbox, ListFilter, NewRecord};
use boxhook_postgres::PgInbox;
use boxhook_testkit::postgres::Cluster;
use common::{boxhook, temp_dir};

/// Events stored before the workers start.
const EVENTS: u32 = 90;
/// `--lease`, in seconds.
const LEASE_S: u64 = 2;
/// How long after its claim a rerun may start at the earliest, allowing
/// for the time between a claim and its handler's start.
const RERUN_AFTER: Duration = Duration::from_millis(1500);

/// A running `boxhook work`, its stderr collected.
struct Work {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Work {
    fn start(url: &str, handler: &Path) -> Self {
        let mut child = boxhook()
            .args(["work", "--store", url, "--exec"])
            .arg(handler)
            .args(["--concurrency", "3", "--lease", "2", "--timeout", "1"])
            .args(["--backoff", "0", "--max-attempts", "6", "--poll-ms", "50"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn boxhook work");
        let stderr = common::collect_lines(child.stderr.take().expect("piped stderr"));
        Self { child, stderr }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One handler run, from its log lines.
#[derive(Debug, Clone)]
struct Run {
    event: String,
    attempt: u32,
    worker: String,
    /// The pid of the `boxhook work` process (from the worker id,
    /// `host-pid-slot`).
    pid: u32,
    start: u128,
    end: Option<u128>,
    ok: bool,
}

/// Nanoseconds since the epoch, as the handler's `date +%s%N` writes.
fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos())
}

/// The runs in the handler's log: `start EVENT ATTEMPT WORKER NS` and
/// `end EVENT ATTEMPT WORKER NS ok|fail` lines.
fn runs(log: &Path) -> Vec<Run> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut runs: Vec<Run> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let parsed = match fields.as_slice() {
            [kind, event, attempt, worker, ns, rest @ ..] => (|| {
                let pid = worker.rsplit('-').nth(1)?.parse().ok()?;
                Some((
                    *kind,
                    (*event).to_owned(),
                    attempt.parse::<u32>().ok()?,
                    (*worker).to_owned(),
                    pid,
                    ns.parse::<u128>().ok()?,
                    rest.first() == Some(&"ok"),
                ))
            })(),
            _ => None,
        };
        let Some((kind, event, attempt, worker, pid, ns, ok)) = parsed else {
            panic!("an unreadable line in the handler's log: {line:?}");
        };
        if kind == "start" {
            runs.push(Run {
                event,
                attempt,
                worker,
                pid,
                start: ns,
                end: None,
                ok: false,
            });
        } else if let Some(run) = runs.iter_mut().find(|run| {
            run.event == event
                && run.attempt == attempt
                && run.worker == worker
                && run.end.is_none()
        }) {
            run.end = Some(ns);
            run.ok = ok;
        } else {
            panic!("an end without its start in the handler's log: {line:?}");
        }
    }
    runs
}

/// Waits up to `limit` for `done()`; panics with `what` otherwise.
fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGKILLs `work` once one of its handlers is in the middle of a run;
/// returns when (ns since the epoch).
fn kill_mid_handler(work: &mut Work, log: &Path) -> u128 {
    let pid = work.pid();
    wait_until(
        Duration::from_secs(10),
        "a handler of the victim running",
        || {
            runs(log)
                .iter()
                .any(|run| run.pid == pid && run.end.is_none())
        },
    );
    work.child.kill().expect("SIGKILL");
    let at = now_ns();
    let _ = work.child.wait();
    at
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one scenario in order: store, run, kill twice, drain, then every check"
)]
fn sigkilled_workers_lose_no_event_and_never_share_one() {
    let Some(cluster) = Cluster::start("work-faults") else {
        return;
    };
    let began = Instant::now();
    let url = cluster.tcp_url();
    let dir = temp_dir("work-faults");
    let log = dir.join("runs.log");
    let handler = dir.join("handle.sh");
    // 0.2–0.6 s per run; every fifth event fails its first attempt.
    common::write_script(
        &handler,
        &format!(
            "cat > /dev/null\n\
             n=${{BOXHOOK_EVENT_ID#e-}}\n\
             run=\"$BOXHOOK_EVENT_ID $BOXHOOK_ATTEMPT $BOXHOOK_WORKER_ID\"\n\
             echo \"start $run $(date +%s%N)\" >> {log}\n\
             sleep 0.$(( (n * 7 + BOXHOOK_ATTEMPT * 3) % 5 + 2 ))\n\
             if [ $((n % 5)) -eq 0 ] && [ \"$BOXHOOK_ATTEMPT\" -eq 1 ]; then\n\
             echo \"end $run $(date +%s%N) fail\" >> {log}\n\
             exit 1\n\
             fi\n\
             echo \"end $run $(date +%s%N) ok\" >> {log}\n",
            log = log.display()
        ),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let inbox = runtime.block_on(async {
        let inbox = PgInbox::connect(&url).await.expect("connect");
        for n in 1..=EVENTS {
            let body = format!(
                r#"{{"type":"webhook_event","id":"e-{n}","trigger":"FILE.UPLOADED","webhook":{{"id":"w-1"}}}}"#
            );
            let record =
                NewRecord::parse(body, Some("d-1"), chrono::Utc::now()).expect("a record");
            inbox.store(record).await.expect("store");
        }
        inbox
    });

    let mut works: Vec<Work> = (0..3).map(|_| Work::start(&url, &handler)).collect();
    // Two processes killed, each in the middle of a handler, and each
    // replaced at once by a new one.
    let mut kills: BTreeMap<u32, u128> = BTreeMap::new();
    for victim in [0, 1] {
        std::thread::sleep(Duration::from_millis(800));
        let pid = works[victim].pid();
        let at = kill_mid_handler(&mut works[victim], &log);
        kills.insert(pid, at);
        works[victim] = Work::start(&url, &handler);
    }
    wait_until(Duration::from_secs(30), "every event done", || {
        runtime
            .block_on(inbox.counts())
            .is_ok_and(|counts| counts.done == u64::from(EVENTS))
    });
    for work in &mut works {
        let pid = work.pid().to_string();
        common::run(
            std::process::Command::new("kill").args(["-TERM", &pid]),
            Duration::from_secs(5),
        );
        let status = common::wait_for(&mut work.child, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("work {pid} did not stop on SIGTERM"));
        let stderr = work.stderr.lock().expect("stderr lock").clone();
        assert!(status.success(), "work {pid}: {status}\n{stderr}");
    }
    // A killed process's handlers live on in their own process groups
    // and finish; their ends are in the log.
    wait_until(Duration::from_secs(5), "every handler run ended", || {
        runs(&log).iter().all(|run| run.end.is_some())
    });

    let runs = runs(&log);
    let (listed, counts) = runtime.block_on(async {
        (
            inbox.list(ListFilter::new()).await.expect("list"),
            inbox.counts().await.expect("counts"),
        )
    });
    assert_eq!(listed.len(), EVENTS as usize);
    assert_eq!(
        (counts.pending, counts.claimed, counts.done, counts.dead),
        (0, 0, u64::from(EVENTS), 0),
        "{counts:?}"
    );
    let mut by_event: BTreeMap<&str, Vec<&Run>> = BTreeMap::new();
    for run in &runs {
        by_event.entry(&run.event).or_default().push(run);
    }
    let mut in_flight_at_kill = 0;
    let mut orphans_after_kill = 0;
    for entry in &listed {
        assert_eq!(entry.state, EntryState::Done, "{entry:?}");
        let mut runs = by_event.remove(entry.event_id.as_str()).unwrap_or_default();
        runs.sort_by_key(|run| run.start);
        // Done only after a successful run of the claim the store counted last.
        assert!(
            runs.iter()
                .any(|run| run.attempt == entry.attempts && run.ok),
            "{} is done without a successful run of attempt {}: {runs:?}",
            entry.event_id,
            entry.attempts
        );
        for (i, earlier) in runs.iter().enumerate() {
            for later in &runs[i + 1..] {
                assert!(
                    later.attempt > earlier.attempt,
                    "{}: attempt {} ran again: {runs:?}",
                    entry.event_id,
                    later.attempt
                );
                // Overlapping runs: only when the earlier one's process
                // was dead by then.
                if earlier.end.is_some_and(|end| end > later.start) {
                    let killed = kills.get(&earlier.pid);
                    assert!(
                        killed.is_some_and(|at| *at <= later.start),
                        "{}: two live processes ran it at once: {runs:?}",
                        entry.event_id
                    );
                }
            }
            // A run the kill cut off: run again once its lease had ended.
            let cut_off = kills.get(&earlier.pid).copied().filter(|&killed| {
                earlier.start < killed && earlier.end.is_none_or(|end| end > killed)
            });
            if let Some(killed) = cut_off {
                in_flight_at_kill += 1;
                if earlier.end.is_some_and(|end| end > killed) {
                    orphans_after_kill += 1;
                }
                let rerun = runs[i + 1..].first().unwrap_or_else(|| {
                    panic!(
                        "{}: its run by killed process {} was never run again: {runs:?}",
                        entry.event_id, earlier.pid
                    )
                });
                let gap = Duration::from_nanos(
                    u64::try_from(rerun.start - earlier.start).unwrap_or(u64::MAX),
                );
                assert!(
                    gap >= RERUN_AFTER,
                    "{}: run again {gap:?} after the killed run started, within its \
                     {LEASE_S} s lease: {runs:?}",
                    entry.event_id
                );
            }
        }
    }
    assert!(by_event.is_empty(), "runs of unknown events: {by_event:?}");
    assert!(
        in_flight_at_kill >= 2,
        "each kill cut off a handler: {in_flight_at_kill} cut off"
    );
    eprintln!(
        "work faults: {EVENTS} events, {} runs, {} processes SIGKILLed with {in_flight_at_kill} \
         handlers in flight ({orphans_after_kill} finished after their worker died), every event \
         done, in {:.1} s",
        runs.len(),
        kills.len(),
        began.elapsed().as_secs_f64()
    );
}
