//! The deterministic sweep: count the writer thread's system calls for one
//! path, then fail each I/O call in turn (`ENOSPC`, then `EIO`) and kill
//! the process right after each, checking the invariants after every run.
//!
//! Mechanism: `strace -p TID` attached to the store's writer thread only,
//! after start-up. strace counts `when=K` per system call and per thread
//! (checked: a second thread's calls do not move the first's counter), so
//! `-e inject=pwrite64:error=ENOSPC:when=K` fails exactly the writer's
//! K-th `pwrite64` since the attach, and nothing in any other thread.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::check::{check, Sent};
use crate::process::{Call, Process, Target, Tracer, BOUND};
use crate::wire::{Answer, Item};

/// The system calls that are faulted: the ones SQLite's unix VFS makes to
/// open, write, read, sync, truncate and delete its files. Plain `read`
/// and `write` are left out: on the writer thread they are not the store's
/// (SQLite uses `pread64`/`pwrite64`) but tokio's wake-up of a parked
/// worker (an eventfd), which happens only when a worker is parked, so at
/// no fixed point.
pub const IO_CALLS: [&str; 13] = [
    "openat",
    "open",
    "creat",
    "pwrite64",
    "pwrite",
    "pwritev",
    "pread64",
    "preadv",
    "fsync",
    "fdatasync",
    "ftruncate",
    "unlink",
    "unlinkat",
];

/// The errors injected into each I/O call.
pub const ERRORS: [&str; 2] = ["ENOSPC", "EIO"];

/// The group path holds the writer this long at the first store's first
/// lock (`fcntl`), so the next deliveries queue behind it and are
/// committed together.
const HOLD: &str = "fcntl:delay_enter=700000:when=1";

/// SQLite's default `wal_autocheckpoint`, in pages (boxhook keeps it).
const AUTO_CHECKPOINT: u64 = 1000;

/// The WAL's state from its index (the `-shm` file SQLite maps): the
/// frames it holds (`mxFrame`) and whether a checkpoint has copied any of
/// them back (`nBackfill` > 0). Both are native-endian `u32`s, at bytes 16
/// and 96 (SQLite's file format, "WAL-index format").
fn wal_state(inbox: &Path) -> (u64, bool) {
    let mut shm = inbox.as_os_str().to_owned();
    shm.push("-shm");
    let bytes = std::fs::read(shm).unwrap_or_default();
    let word = |at: usize| {
        bytes
            .get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(0, |b| u64::from(u32::from_ne_bytes(b)))
    };
    (word(16), word(96) > 0)
}

/// Builds, in `dir`, an inbox whose WAL the first delivery after a start
/// takes past the automatic checkpoint: filled with small events by the
/// receiver, which is then killed (a clean stop would checkpoint), and
/// measured on a copy, started, so that the start-up's own write counts.
/// The events it holds, each answered 200.
fn checkpoint_template(target: &Target, dir: &Path) -> Result<Sent, String> {
    let inbox = dir.join("inbox.sqlite");
    let mut sent = Sent::default();
    // The fewest and most frames one event added, and a restart's own.
    let (mut least, mut most, mut restart) = (u64::MAX, 0, 0);
    let mut n = 0;
    for _ in 0..10 {
        let process = Process::start(target, &inbox)?;
        loop {
            let (frames, _) = wal_state(&inbox);
            if least != u64::MAX
                && (frames + restart + least >= AUTO_CHECKPOINT || frames + most >= AUTO_CHECKPOINT)
            {
                break;
            }
            let item = Item::v2(&format!("fill-{n}"));
            n += 1;
            let answer = item.send(process.port, None);
            sent.note(&item, answer.acknowledged());
            if answer != Answer::Status(200) {
                return Err(format!("filling the WAL: {answer:?}"));
            }
            let (after, backfilled) = wal_state(&inbox);
            if backfilled || after >= AUTO_CHECKPOINT {
                return Err("filling the WAL checkpointed it: the template overshot".to_owned());
            }
            if n > 1 {
                least = least.min(after - frames);
                most = most.max(after - frames);
            }
        }
        drop(process);
        let (frames, _) = wal_state(&inbox);
        let probe = crate::temp_dir("probe");
        copy_inbox(dir, probe.path())?;
        let copy = probe.path().join("inbox.sqlite");
        let started = Process::start(target, &copy)?;
        let (at_start, backfilled) = wal_state(&copy);
        drop(started);
        if backfilled || at_start >= AUTO_CHECKPOINT {
            return Err("the start-up checkpointed the WAL: the template overshot".to_owned());
        }
        if at_start + least >= AUTO_CHECKPOINT {
            return Ok(sent);
        }
        restart = at_start.saturating_sub(frames);
        if frames + most >= AUTO_CHECKPOINT {
            return Err(format!(
                "cannot place the WAL just below the checkpoint: {frames} frames, events add \
                 {least} to {most}, a start {restart}"
            ));
        }
    }
    Err("the WAL did not reach the checkpoint in 10 rounds".to_owned())
}

/// Copies `from`'s `inbox.sqlite` and its `-wal` and `-shm` into `to`.
fn copy_inbox(from: &Path, to: &Path) -> Result<(), String> {
    for name in ["inbox.sqlite", "inbox.sqlite-wal", "inbox.sqlite-shm"] {
        if from.join(name).exists() {
            std::fs::copy(from.join(name), to.join(name))
                .map_err(|e| format!("cannot copy {name}: {e}"))?;
        }
    }
    Ok(())
}

/// A path through the store, as one delivery (or one group) takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A new V2 event.
    New,
    /// A V2 event stored before (a retry): counted, not stored again.
    Duplicate,
    /// A V1 callback (`serve --v1-path`).
    V1,
    /// Three new events committed in one transaction (group commit).
    Group,
    /// A new event whose commit takes the WAL past SQLite's automatic
    /// checkpoint (1000 pages): the checkpoint reads the WAL and writes and
    /// syncs the database file, in the delivery's store.
    Checkpoint,
}

impl Route {
    pub fn name(self) -> &'static str {
        match self {
            Self::New => "new event",
            Self::Duplicate => "duplicate",
            Self::V1 => "V1 callback",
            Self::Group => "group commit of 3",
            Self::Checkpoint => "new event + checkpoint",
        }
    }

    /// Delivered (and answered 2xx) before the tracer attaches.
    fn before(self) -> Vec<Item> {
        match self {
            Self::Duplicate => vec![Item::v2("sweep-1")],
            _ => Vec::new(),
        }
    }

    /// The store the group path holds the writer in: delivered first,
    /// traced but not swept.
    fn held(self) -> Option<Item> {
        (self == Self::Group).then(|| Item::v2("held-1"))
    }

    /// The deliveries whose store is swept.
    fn swept(self) -> Vec<Item> {
        match self {
            Self::New | Self::Duplicate | Self::Checkpoint => vec![Item::v2("sweep-1")],
            Self::V1 => vec![Item::v1("sweep-v1-1")],
            Self::Group => ["group-1", "group-2", "group-3"].map(Item::v2).to_vec(),
        }
    }

    /// The system call the path itself injects into (the hold), which a
    /// kill point cannot use.
    fn hold(self) -> Option<&'static str> {
        (self == Self::Group).then_some(HOLD)
    }
}

/// What one run does to the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Nothing: the counting run.
    None,
    /// The `when`-th call `call` fails with `errno`.
    Error {
        call: String,
        when: usize,
        errno: &'static str,
    },
    /// SIGKILL at the entry of the `when`-th `call`, the first call after
    /// `after` (the I/O call this point follows) returned.
    Kill {
        call: String,
        when: usize,
        after: String,
    },
}

impl Fault {
    fn inject(&self) -> Option<String> {
        match self {
            Self::None => None,
            Self::Error { call, when, errno } => Some(format!("{call}:error={errno}:when={when}")),
            Self::Kill { call, when, .. } => Some(format!("{call}:signal=SIGKILL:when={when}")),
        }
    }

    /// Its class in the report: `ENOSPC`, `EIO`, `SIGKILL`.
    pub fn class(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Error { errno, .. } => errno,
            Self::Kill { .. } => "SIGKILL",
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::None => "no fault".to_owned(),
            Self::Error { call, when, errno } => format!("{errno} on {call} #{when}"),
            Self::Kill { call, when, after } => {
                format!("SIGKILL after {after} (at the entry of {call} #{when})")
            }
        }
    }
}

/// What one run saw.
#[derive(Debug, Default)]
pub struct Outcome {
    pub calls: Vec<Call>,
    pub answers: Vec<Answer>,
    /// The deliveries sent under the fault that were answered 2xx.
    pub acknowledged: usize,
    /// Every delivery answered 2xx in the run (set-up, fault, probe after):
    /// each is checked in the inbox.
    pub checked: usize,
    pub lost: usize,
    pub hangs: usize,
    /// Broken expectations and invariants, each a line.
    pub problems: Vec<String>,
    /// The receiver's error lines (not its access lines), numbers blanked.
    pub log: Vec<String>,
    /// The pruner ran during the traced part: its calls were counted.
    pub disturbed: bool,
}

/// One run of `route` under `fault`, in `dir`.
#[allow(
    clippy::too_many_lines,
    reason = "one run read top to bottom: start, attach, deliver, fault, probe, stop, check"
)]
pub fn run_once(
    target: &Target,
    route: Route,
    fault: &Fault,
    dir: &Path,
    template: Option<(&Path, &Sent)>,
) -> Outcome {
    let mut out = Outcome::default();
    let inbox = dir.join("inbox.sqlite");
    let mut sent = Sent::default();
    if let Some((from, held)) = template {
        if let Err(e) = copy_inbox(from, dir) {
            out.problems.push(e);
            return out;
        }
        sent = held.clone();
    }
    let mut process = match Process::start(target, &inbox) {
        Ok(process) => process,
        Err(e) => {
            out.problems.push(format!("start: {e}"));
            return out;
        }
    };
    for item in route.before() {
        let answer = item.send(process.port, target.v1);
        sent.note(&item, answer.acknowledged());
        if answer != Answer::Status(200) {
            out.problems.push(format!("before the fault: {answer:?}"));
        }
    }
    let Some(tid) = process.writer_thread() else {
        out.problems
            .push("no thread named boxhook-sqlite: is this a boxhook-sqlite store?".to_owned());
        return out;
    };
    let injects: Vec<String> = route
        .hold()
        .map(str::to_owned)
        .into_iter()
        .chain(fault.inject())
        .collect();
    let tracer = match Tracer::attach(tid, &injects, &dir.join("trace")) {
        Ok(tracer) => tracer,
        Err(e) => {
            out.problems.push(e);
            return out;
        }
    };
    let answers = exchange(route, process.port, target.v1);
    for (item, answer) in &answers {
        sent.note(item, answer.acknowledged());
    }
    out.answers = answers.iter().map(|(_, a)| *a).collect();
    let killed = matches!(fault, Fault::Kill { .. });
    let exit = if killed {
        process.wait(BOUND)
    } else {
        // An error must not stop the process: give it a moment to.
        process.wait(Duration::from_millis(50))
    };
    out.calls = tracer.detach();
    out.disturbed = process.stderr().contains("pruning every");
    if matches!(fault, Fault::Error { .. }) && !out.calls.iter().any(|c| c.injected) {
        out.problems.push(format!(
            "{} never happened: the writer made other calls this time",
            fault.describe()
        ));
    }
    for answer in &out.answers {
        match answer {
            Answer::Hung => {
                out.hangs += 1;
                out.problems.push(format!("no answer within {BOUND:?}"));
            }
            Answer::Status(200 | 503) => {}
            Answer::Closed if killed => {}
            other => out.problems.push(format!("unexpected answer {other:?}")),
        }
    }
    // The receiver after the fault: an I/O error leaves it serving, with no
    // restart; a kill leaves it dead by SIGKILL, and a restart serves.
    let mut log_text = process.stderr();
    let probe = Item::v2("after-1");
    if killed {
        match exit {
            Some(status) if status.signal() == Some(9) => {}
            other => out
                .problems
                .push(format!("expected death by SIGKILL, got {other:?}")),
        }
        drop(process);
        process = match Process::start(target, &inbox) {
            Ok(process) => process,
            Err(e) => {
                out.problems.push(format!("restart after the kill: {e}"));
                return out;
            }
        };
    } else if let Some(status) = exit {
        out.problems.push(format!(
            "the receiver exited ({status}) instead of serving on: {}",
            process.stderr()
        ));
        return out;
    }
    let answer = probe.send(process.port, target.v1);
    sent.note(&probe, answer.acknowledged());
    if answer != Answer::Status(200) {
        if answer == Answer::Hung {
            out.hangs += 1;
        }
        out.problems.push(format!(
            "after the fault: {answer:?} for a new event (serves again {})",
            if killed {
                "after a restart"
            } else {
                "without a restart"
            }
        ));
    }
    let (status, stderr) = process.stop();
    if killed {
        log_text.push_str(&stderr);
    } else {
        log_text = stderr;
    }
    if status.and_then(|s| s.code()) != Some(0) {
        out.problems
            .push(format!("SIGTERM: exit {status:?} (0 expected): {log_text}"));
    }
    out.log = error_lines(&log_text);
    out.acknowledged = out.answers.iter().filter(|a| a.acknowledged()).count();
    out.checked = sent.acknowledged();
    let (problems, lost) = check(&inbox, &sent);
    out.lost = lost;
    out.problems.extend(problems);
    out
}

/// Sends the route's deliveries: the swept ones, after the held one for
/// the group (sent while the writer is held, so they queue together).
fn exchange(route: Route, port: u16, v1: Option<(&str, &str)>) -> Vec<(Item, Answer)> {
    let v1 = v1.map(|(p, s)| (p.to_owned(), s.to_owned()));
    let send = move |item: Item| {
        let v1 = v1.clone();
        std::thread::spawn(move || {
            let answer = item.send(port, v1.as_ref().map(|(p, s)| (p.as_str(), s.as_str())));
            (item, answer)
        })
    };
    let mut threads = Vec::new();
    if let Some(held) = route.held() {
        threads.push(send(held));
        std::thread::sleep(Duration::from_millis(200));
    }
    threads.extend(route.swept().into_iter().map(&send));
    threads
        .into_iter()
        .map(|t| t.join().expect("a sender thread"))
        .collect()
}

/// The receiver's lines that are neither its start and stop lines nor its
/// access lines for 2xx, with timestamps, delivery ids and durations
/// blanked (so equal lines of different runs compare equal).
pub fn error_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| {
            !(l.starts_with("listening on")
                || l.starts_with("inbox: ")
                || l.starts_with("V1 callbacks on")
                || l.starts_with("pruning every")
                || l.starts_with("stopping: ")
                || l.starts_with("stopped")
                || l.contains(" 200 "))
        })
        .map(|l| {
            l.split(' ')
                .enumerate()
                .filter(|(i, word)| !(*i == 0 && word.starts_with("20")))
                .map(|(_, word)| {
                    if let Some((name, value)) = word.split_once('=') {
                        if name.starts_with("delivery") || name == "callback_id" {
                            return format!("{name}=…");
                        }
                        if value.starts_with("v1-") {
                            return format!("{name}=v1-…");
                        }
                    }
                    if word.ends_with("ms") && word.trim_end_matches("ms").parse::<u64>().is_ok() {
                        return "…ms".to_owned();
                    }
                    word.to_owned()
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// The sweep's points for `route`, from its counting run's calls.
pub fn points(route: Route, calls: &[Call]) -> Vec<Fault> {
    let skip = usize::from(route == Route::Group);
    // The swept segment starts after the held store's two identity checks.
    let mut start = 0;
    let mut statx = 0;
    for (i, call) in calls.iter().enumerate() {
        if statx == 2 * skip {
            start = i;
            break;
        }
        // The identity check's `stat`s of the inbox and its -wal (`statx`
        // where the kernel has it, as std asks for it first).
        if matches!(
            call.name.as_str(),
            "statx" | "newfstatat" | "stat" | "fstatat64"
        ) {
            statx += 1;
        }
    }
    let hold = route.hold().and_then(|h| h.split(':').next());
    let mut ordinal: BTreeMap<&str, usize> = BTreeMap::new();
    let ordinals: Vec<usize> = calls
        .iter()
        .map(|c| {
            let n = ordinal.entry(c.name.as_str()).or_default();
            *n += 1;
            *n
        })
        .collect();
    let mut faults = Vec::new();
    for i in start..calls.len() {
        let call = &calls[i];
        if !IO_CALLS.contains(&call.name.as_str()) {
            continue;
        }
        for errno in ERRORS {
            faults.push(Fault::Error {
                call: call.name.clone(),
                when: ordinals[i],
                errno,
            });
        }
        if let Some(j) = (i + 1..calls.len()).find(|&j| Some(calls[j].name.as_str()) != hold) {
            faults.push(Fault::Kill {
                call: calls[j].name.clone(),
                when: ordinals[j],
                after: format!("{} #{}", call.name, ordinals[i]),
            });
        }
    }
    faults
}

/// The sweep of one route: its figures and every problem found.
#[derive(Debug, Default)]
pub struct Report {
    pub target: String,
    pub route: String,
    /// I/O calls swept, by name.
    pub calls: BTreeMap<String, usize>,
    pub runs: usize,
    /// Deliveries sent under a fault and answered 2xx.
    pub acknowledged: usize,
    /// Acknowledged deliveries checked in the inbox after the runs.
    pub checked: usize,
    pub lost: usize,
    pub hangs: usize,
    /// Runs redone because the pruner ran during them.
    pub redone: usize,
    /// Per fault class: the answers seen (`200`, `503`, `closed`), counted.
    pub answers: BTreeMap<&'static str, BTreeMap<String, usize>>,
    /// Per fault class: the distinct error lines the receiver wrote, how
    /// many runs wrote each, and the faults of those runs.
    pub log: BTreeMap<&'static str, BTreeMap<String, (usize, Vec<String>)>>,
    pub problems: Vec<String>,
}

impl Report {
    /// Points swept (I/O calls of the counted delivery).
    pub fn points(&self) -> usize {
        self.calls.values().sum()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let calls: Vec<String> = self.calls.iter().map(|(k, v)| format!("{v} {k}")).collect();
        writeln!(
            f,
            "{} / {}: {} points ({}), {} runs, {} acknowledged under a fault ({} checked in \
             all), {} lost, {} hangs, {} redone",
            self.target,
            self.route,
            self.points(),
            calls.join(", "),
            self.runs,
            self.acknowledged,
            self.checked,
            self.lost,
            self.hangs,
            self.redone
        )?;
        for (class, answers) in &self.answers {
            let seen: Vec<String> = answers.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
            writeln!(f, "  {class}: answers {}", seen.join(", "))?;
            for (line, (n, faults)) in self.log.get(class).into_iter().flatten() {
                writeln!(f, "    ×{n} {line}")?;
                writeln!(f, "       at: {}", faults.join("; "))?;
            }
        }
        for problem in self.problems.iter().take(20) {
            writeln!(f, "  PROBLEM: {problem}")?;
        }
        Ok(())
    }
}

/// Counts `route`'s calls, then runs every point, `jobs` at a time.
pub fn sweep(target: &Target, route: Route, jobs: usize) -> Report {
    let mut report = Report {
        target: target.name.to_owned(),
        route: route.name().to_owned(),
        ..Report::default()
    };
    let template_dir = crate::temp_dir("template");
    let template = if route == Route::Checkpoint {
        match checkpoint_template(target, template_dir.path()) {
            Ok(sent) => Some(sent),
            Err(e) => {
                report.problems.push(e);
                return report;
            }
        }
    } else {
        None
    };
    let template = template.as_ref().map(|sent| (template_dir.path(), sent));
    let dir = crate::temp_dir("count");
    let counted = run_once(target, route, &Fault::None, dir.path(), template);
    if !counted.problems.is_empty() || counted.disturbed {
        report.problems.extend(counted.problems);
        if counted.disturbed {
            report
                .problems
                .push("the counting run was disturbed by the pruner".to_owned());
        }
        return report;
    }
    let faults = points(route, &counted.calls);
    for fault in &faults {
        if let Fault::Error { call, errno, .. } = fault {
            if *errno == ERRORS[0] {
                *report.calls.entry(call.clone()).or_default() += 1;
            }
        }
    }
    if route == Route::Checkpoint && !counted.calls.iter().any(|c| c.name == "pread64") {
        report
            .problems
            .push("the counted delivery did not checkpoint (no pread64)".to_owned());
    }
    if route == Route::Group {
        let commits = counted.calls.iter().filter(|c| c.name == "fsync").count();
        if commits != 2 {
            report.problems.push(format!(
                "the group was not committed together: {commits} fsync calls for 2 batches"
            ));
        }
    }
    let queue = Arc::new(Mutex::new(faults.into_iter()));
    let shared = Arc::new(Mutex::new(report));
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            let queue = Arc::clone(&queue);
            let shared = Arc::clone(&shared);
            scope.spawn(move || loop {
                let Some(fault) = queue.lock().expect("queue").next() else {
                    break;
                };
                let mut outcome = run_point(target, route, &fault, template);
                let mut redone = 0;
                while outcome.disturbed && redone < 2 {
                    redone += 1;
                    outcome = run_point(target, route, &fault, template);
                }
                let mut report = shared.lock().expect("report");
                report.redone += redone;
                report.add(&fault, &outcome);
            });
        }
    });
    let report = std::mem::take(&mut *shared.lock().expect("report"));
    report
}

fn run_point(
    target: &Target,
    route: Route,
    fault: &Fault,
    template: Option<(&Path, &Sent)>,
) -> Outcome {
    let dir = crate::temp_dir("point");
    run_once(target, route, fault, dir.path(), template)
}

impl Report {
    fn add(&mut self, fault: &Fault, outcome: &Outcome) {
        self.runs += 1;
        self.acknowledged += outcome.acknowledged;
        self.checked += outcome.checked;
        self.lost += outcome.lost;
        self.hangs += outcome.hangs;
        let class = fault.class();
        let answers = self.answers.entry(class).or_default();
        for answer in &outcome.answers {
            let name = match answer {
                Answer::Status(s) => s.to_string(),
                Answer::Closed => "closed".to_owned(),
                Answer::Hung => "hung".to_owned(),
            };
            *answers.entry(name).or_default() += 1;
        }
        let log = self.log.entry(class).or_default();
        for line in &outcome.log {
            let (n, faults) = log.entry(line.clone()).or_default();
            *n += 1;
            faults.push(fault.describe());
        }
        if outcome.disturbed {
            self.problems.push(format!(
                "{}: the pruner ran during it three times",
                fault.describe()
            ));
        }
        for problem in &outcome.problems {
            self.problems
                .push(format!("{}: {problem}", fault.describe()));
        }
    }
}
