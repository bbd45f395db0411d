//! The fault sweep of the store paths of `boxhook serve` (issue 25),
//! as a test binary of its own with its own runner (`harness = false`):
//! it is also the broken receiver the sweep must catch
//! (`sweep broken-receiver --inbox FILE`, see `double.rs`).
//!
//! - Deterministic (`sweep.rs`): for each path a delivery takes through
//!   the store (a new event, a duplicate, a V1 callback, a group commit of
//!   three), a counting run lists the system calls of SQLite's writer
//!   thread; then for each I/O call k of that list, one run fails it with
//!   `ENOSPC`, one with `EIO`, and one kills the process with SIGKILL at the
//!   entry of the writer's next system call (right after call k returned).
//!   Faults are injected with `strace -p WRITER -e inject=…`.
//! - Randomized (`random.rs`): libfiu's POSIX preload at 2, 10 and 30 %.
//! - After every run, the receiver stopped and the inbox reopened:
//!   `PRAGMA integrity_check` is `ok`; every delivery answered 2xx is
//!   stored exactly once, byte for byte; every request got an answer or a
//!   closed connection within 10 s; after an I/O error the same process
//!   serves a new event with `200`, after a kill a restarted one does.
//!
//! - PostgreSQL (`pgtests.rs`): `serve --store postgres://…` through the
//!   test kit's fault proxy (`boxhook_testkit::pgproxy`): every protocol
//!   message of a store cut in turn, each way (`pgsweep.rs`, `pggroup.rs`),
//!   stalls past the queue, pool, connect and handler timeouts, random
//!   cuts, `pg_ctl stop -m immediate` under load and a full data directory
//!   (`pgrandom.rs`); the same invariants read on a direct connection
//!   (`pg.rs`); its broken double is `pgdouble.rs`. They need PostgreSQL
//!   (`BOXHOOK_POSTGRES=required` in CI makes its absence a failure).
//!
//! The tools are strace (ptrace allowed on the receiver's threads) and
//! Debian's fiu-utils. Without them the tests print `skipped: …` and pass,
//! unless `BOXHOOK_FAULTS=required` (CI), where they fail.
//! `BOXHOOK_SWEEP_JOBS` (default 2) runs that many points at once.
//!
//! `cargo test -p boxhook-cli --test sweep -- [FILTER] [--list]`

#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]
#![allow(
    clippy::doc_markdown,
    reason = "SQLite, PostgreSQL: product names, not code"
)]
#![allow(
    unreachable_pub,
    reason = "a test binary: `pub` marks what its other modules use"
)]

#[cfg(unix)]
mod check;
#[cfg(unix)]
mod double;
#[cfg(unix)]
mod pg;
#[cfg(unix)]
mod pgdouble;
#[cfg(unix)]
mod pggroup;
#[cfg(unix)]
mod pgrandom;
#[cfg(unix)]
mod pgsweep;
#[cfg(unix)]
mod pgtests;
#[cfg(unix)]
mod process;
#[cfg(unix)]
mod random;
#[cfg(unix)]
mod sweep;
#[cfg(unix)]
mod wire;

use std::process::ExitCode;

/// The environment variable that makes missing fault tools a failure:
/// the test kit's, shared with the other fault tests.
pub const REQUIRED_ENV: &str = boxhook_testkit::fs::FAULTS_ENV;

#[cfg(not(unix))]
fn main() -> ExitCode {
    eprintln!("skipped: the fault sweep needs strace and libfiu (Linux)");
    ExitCode::SUCCESS
}

#[cfg(unix)]
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(double::ARG) {
        return double::main(&args[1..]);
    }
    if args.first().map(String::as_str) == Some(pgdouble::ARG) {
        return pgdouble::main(&args[1..]);
    }
    tests::run(&args)
}

/// A fresh directory under the system temp dir, removed when dropped.
#[cfg(unix)]
#[must_use]
pub fn temp_dir(name: &str) -> boxhook_testkit::fs::TempDir {
    boxhook_testkit::fs::TempDir::new(&format!("sweep-{name}"))
}

#[cfg(unix)]
mod tests {
    use std::process::{Command, ExitCode, Stdio};
    use std::time::Instant;

    use crate::process::Call;
    use crate::process::{Process, Target, Tracer};
    use crate::sweep::{points, sweep, Fault, Report, Route};
    use crate::REQUIRED_ENV;

    type Test = (&'static str, fn() -> Result<(), String>);

    const TESTS: [Test; 14] = [
        (
            "points_are_each_io_call_and_a_kill_after_it",
            points_of_a_log,
        ),
        (
            "serve_stops_cleanly_on_a_sigterm_right_after_listening",
            sigterm_at_start,
        ),
        ("sweep_new_event", || route(Route::New)),
        ("sweep_duplicate", || route(Route::Duplicate)),
        ("sweep_v1_callback", || route(Route::V1)),
        ("sweep_group_commit", || route(Route::Group)),
        ("sweep_checkpoint", || route(Route::Checkpoint)),
        (
            "sweep_catches_a_receiver_that_answers_before_its_commit",
            broken_double,
        ),
        ("randomized_libfiu_at_2_10_and_30_percent", randomized),
        (
            "pg_sweep_every_message_cut_and_stalls_past_the_timeouts",
            crate::pgtests::sweep,
        ),
        (
            "pg_sweep_catches_a_receiver_that_answers_before_its_commit",
            crate::pgtests::broken_double,
        ),
        ("pg_randomized_proxy_cuts", crate::pgtests::randomized),
        (
            "pg_immediate_stops_under_concurrent_load",
            crate::pgtests::immediate_stops,
        ),
        (
            "pg_data_directory_on_a_full_tmpfs",
            crate::pgtests::full_disk,
        ),
    ];

    /// Runs the tests whose names contain one of the free arguments (all
    /// when there is none) and none of the `--skip` ones; `--list` lists
    /// them. libtest's other flags are accepted and ignored.
    pub fn run(args: &[String]) -> ExitCode {
        let mut filters = Vec::new();
        let mut skips = Vec::new();
        let mut words = args.iter();
        while let Some(word) = words.next() {
            match word.as_str() {
                "--skip" => skips.extend(words.next()),
                // libtest's flags that take the next word as their value.
                "--test-threads" | "--color" | "--format" | "--logfile" | "--shuffle-seed"
                | "-Z" => {
                    words.next();
                }
                flag if flag.starts_with('-') => {}
                filter => filters.push(filter),
            }
        }
        // None of these tests is ignored: `--ignored` runs none of them.
        let ignored_only = args.iter().any(|a| a == "--ignored");
        let chosen: Vec<&Test> = TESTS
            .iter()
            .filter(|(name, _)| {
                !ignored_only
                    && (filters.is_empty() || filters.iter().any(|f| name.contains(f)))
                    && !skips.iter().any(|s| name.contains(s.as_str()))
            })
            .collect();
        if args.iter().any(|a| a == "--list") {
            for (name, _) in &chosen {
                println!("{name}: test");
            }
            return ExitCode::SUCCESS;
        }
        println!("\nrunning {} tests", chosen.len());
        let mut failed = Vec::new();
        for (name, test) in chosen {
            let started = Instant::now();
            let result =
                std::panic::catch_unwind(test).unwrap_or_else(|_| Err("panicked".to_owned()));
            match result {
                Ok(()) => println!(
                    "test {name} ... ok ({:.1} s)",
                    started.elapsed().as_secs_f64()
                ),
                Err(why) => {
                    println!("test {name} ... FAILED\n{why}");
                    failed.push(*name);
                }
            }
        }
        if failed.is_empty() {
            println!("\ntest result: ok");
            ExitCode::SUCCESS
        } else {
            println!("\ntest result: FAILED: {}", failed.join(", "));
            ExitCode::FAILURE
        }
    }

    /// Whether `tool args` runs and exits 0 (`args` empty: whether it
    /// starts at all); otherwise skip loudly, or fail under
    /// `BOXHOOK_FAULTS=required`.
    fn have(tool: &str, args: &[&str], package: &str) -> Result<bool, String> {
        let status = Command::new(tool)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let ok = status.is_ok_and(|s| args.is_empty() || s.success());
        if ok {
            return Ok(true);
        }
        if std::env::var(REQUIRED_ENV).is_ok_and(|v| v == "required") {
            return Err(format!(
                "{REQUIRED_ENV}=required but `{tool}` cannot run here: install {package}"
            ));
        }
        eprintln!(
            "skipped: no {tool} (install {package}; {REQUIRED_ENV}=required makes this fail)"
        );
        Ok(false)
    }

    /// Whether strace may attach to a running process of ours, as the
    /// sweep does (`strace -p`: ptrace allowed on a process that is not
    /// strace's child).
    fn can_trace() -> Result<bool, String> {
        if !have("strace", &["-V"], "strace")? {
            return Ok(false);
        }
        let mut sleeper = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run sleep: {e}"))?;
        let dir = crate::temp_dir("ptrace");
        let attached = Tracer::attach(sleeper.id(), &[], &dir.path().join("trace"));
        let _ = sleeper.kill();
        let _ = sleeper.wait();
        match attached {
            Ok(tracer) => {
                drop(tracer.detach());
                Ok(true)
            }
            Err(why) if std::env::var(REQUIRED_ENV).is_ok_and(|v| v == "required") => Err(format!(
                "{REQUIRED_ENV}=required but strace cannot attach to a running process \
                 ({why}): run as root, or allow ptrace (kernel.yama.ptrace_scope=0, \
                 CAP_SYS_PTRACE in a container)"
            )),
            Err(why) => {
                eprintln!(
                    "skipped: strace cannot attach to a running process ({why}); allow ptrace \
                     to run the sweep ({REQUIRED_ENV}=required makes this fail)"
                );
                Ok(false)
            }
        }
    }

    fn jobs() -> usize {
        std::env::var("BOXHOOK_SWEEP_JOBS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2)
    }

    fn route(route: Route) -> Result<(), String> {
        if !can_trace()? {
            return Ok(());
        }
        let report = sweep(&Target::serve(), route, jobs());
        print!("{report}");
        expect_clean(&report)
    }

    fn expect_clean(report: &Report) -> Result<(), String> {
        let mut why = Vec::new();
        if report.points() == 0 {
            why.push("no I/O call was counted".to_owned());
        }
        if report.runs != 3 * report.points() {
            why.push(format!(
                "{} runs for {} points",
                report.runs,
                report.points()
            ));
        }
        if report.lost != 0 {
            why.push(format!("{} acknowledged deliveries lost", report.lost));
        }
        if report.hangs != 0 {
            why.push(format!("{} hangs", report.hangs));
        }
        why.extend(report.problems.iter().cloned());
        if why.is_empty() {
            Ok(())
        } else {
            Err(why.join("\n"))
        }
    }

    /// A writer's log as strace writes it (shortened from a real counting
    /// run of the group path): the points are each I/O call after the held
    /// store, failed twice, and a kill at the entry of the next call that
    /// is not the hold's `fcntl`; on the new event path, every I/O call.
    fn points_of_a_log() -> Result<(), String> {
        const LOG: &str = r#"futex(0x1, FUTEX_WAIT_BITSET_PRIVATE, 4294967295, NULL, FUTEX_BITSET_MATCH_ANY) = 0
fcntl(13, F_SETLK, {l_type=F_WRLCK, l_whence=SEEK_SET, l_start=120, l_len=1}) = 0
pwrite64(12, "\0\0", 24, 61832) = 24
fsync(12)                               = 0
fcntl(13, F_SETLK, {l_type=F_UNLCK, l_whence=SEEK_SET, l_start=120, l_len=1}) = 0
statx(AT_FDCWD, "/tmp/inbox.sqlite", AT_STATX_SYNC_AS_STAT, STATX_ALL, {}) = 0
statx(AT_FDCWD, "/tmp/inbox.sqlite-wal", AT_STATX_SYNC_AS_STAT, STATX_ALL, {}) = 0
futex(0x2, FUTEX_WAKE_PRIVATE, 1)       = 1
fcntl(13, F_SETLK, {l_type=F_WRLCK, l_whence=SEEK_SET, l_start=120, l_len=1}) = 0
pread64(12, "\0", 4096, 32) = -1 ENOSPC (No space left on device) (INJECTED)
pwrite64(12, "\0\0", 24, 65952) = 24
fsync(12)                               = 0
fcntl(13, F_SETLK, {l_type=F_UNLCK, l_whence=SEEK_SET, l_start=120, l_len=1}) = 0
statx(AT_FDCWD, "/tmp/inbox.sqlite", AT_STATX_SYNC_AS_STAT, STATX_ALL, {}) = 0
+++ killed by SIGKILL +++
"#;
        let calls = Call::parse_log(LOG);
        let names: Vec<&str> = calls.iter().map(|c| c.name.as_str()).collect();
        let want = [
            "fcntl", "pwrite64", "fsync", "fcntl", "statx", "statx", "futex", "fcntl", "pread64",
            "pwrite64", "fsync", "fcntl", "statx",
        ];
        if names != want {
            return Err(format!("parsed {names:?}"));
        }
        let injected: Vec<usize> = (0..calls.len()).filter(|&i| calls[i].injected).collect();
        if injected != [8] {
            return Err(format!("injected calls at {injected:?}, not [8]"));
        }
        let error = |call: &str, when, errno| Fault::Error {
            call: call.to_owned(),
            when,
            errno,
        };
        let kill = |call: &str, when, after: &str| Fault::Kill {
            call: call.to_owned(),
            when,
            after: after.to_owned(),
        };
        let cases = [
            (
                Route::Group,
                vec![
                    error("pread64", 1, "ENOSPC"),
                    error("pread64", 1, "EIO"),
                    kill("pwrite64", 2, "pread64 #1"),
                    error("pwrite64", 2, "ENOSPC"),
                    error("pwrite64", 2, "EIO"),
                    kill("fsync", 2, "pwrite64 #2"),
                    error("fsync", 2, "ENOSPC"),
                    error("fsync", 2, "EIO"),
                    // The next call is the hold's fcntl: the kill waits for statx.
                    kill("statx", 3, "fsync #2"),
                ],
            ),
            (
                Route::New,
                vec![
                    error("pwrite64", 1, "ENOSPC"),
                    error("pwrite64", 1, "EIO"),
                    kill("fsync", 1, "pwrite64 #1"),
                    error("fsync", 1, "ENOSPC"),
                    error("fsync", 1, "EIO"),
                    kill("fcntl", 2, "fsync #1"),
                    error("pread64", 1, "ENOSPC"),
                    error("pread64", 1, "EIO"),
                    kill("pwrite64", 2, "pread64 #1"),
                    error("pwrite64", 2, "ENOSPC"),
                    error("pwrite64", 2, "EIO"),
                    kill("fsync", 2, "pwrite64 #2"),
                    error("fsync", 2, "ENOSPC"),
                    error("fsync", 2, "EIO"),
                    kill("fcntl", 4, "fsync #2"),
                ],
            ),
        ];
        for (route, want) in cases {
            let got = points(route, &calls);
            if got != want {
                return Err(format!("{route:?}: got {got:#?}"));
            }
        }
        Ok(())
    }

    /// Found by the sweep (a SIGTERM to a restarted `serve` right after its
    /// first delivery): the handlers were installed only when the server
    /// first polled its stop future, after `listening on` was printed, so a
    /// supervisor's SIGTERM sent on that line killed it (exit by signal 15,
    /// in 4 of 30 starts on a loaded machine) instead of stopping it.
    fn sigterm_at_start() -> Result<(), String> {
        for n in 0..20 {
            let dir = crate::temp_dir("sigterm");
            let process = Process::start(&Target::serve(), &dir.path().join("inbox.sqlite"))?;
            let (status, stderr) = process.stop();
            if status.and_then(|s| s.code()) != Some(0) || !stderr.contains("stopped") {
                return Err(format!(
                    "start {n}: SIGTERM right after `listening on` gave {status:?}: {stderr}"
                ));
            }
        }
        Ok(())
    }

    fn broken_double() -> Result<(), String> {
        if !can_trace()? {
            return Ok(());
        }
        let report = sweep(&Target::broken_double(), Route::New, jobs());
        print!("{report}");
        if report.points() == 0 {
            return Err("the double's store made no I/O call to sweep".to_owned());
        }
        // Its 2xx before the COMMIT must show as loss of the swept event
        // at the points that fail the transaction.
        let caught = report
            .problems
            .iter()
            .filter(|p| p.contains("LOST: v2:sweep-1 answered 2xx"))
            .count();
        if report.lost == 0 || caught == 0 {
            return Err(format!(
                "the sweep did not catch the double: {} lost, {caught} loss reports",
                report.lost
            ));
        }
        Ok(())
    }

    fn randomized() -> Result<(), String> {
        if !have("fiu-run", &[], "fiu-utils")? {
            return Ok(());
        }
        let mut why = Vec::new();
        for probability in [0.02, 0.10, 0.30] {
            let dir = crate::temp_dir("random");
            let run = crate::random::run(&Target::serve(), probability, 100, dir.path());
            print!("{run}");
            // At 30 % a delivery's ~15 calls all succeed about once in 200
            // tries: that run checks that the store survives and recovers.
            if run.acknowledged == 0 && probability < 0.3 {
                why.push(format!("{probability}: nothing acknowledged"));
            }
            if run.lost != 0 || run.hangs != 0 {
                why.push(format!(
                    "{probability}: {} lost, {} hangs",
                    run.lost, run.hangs
                ));
            }
            why.extend(run.problems.iter().map(|p| format!("{probability}: {p}")));
        }
        if why.is_empty() {
            Ok(())
        } else {
            Err(why.join("\n"))
        }
    }
}
