//! The randomized run: the receiver started under libfiu's POSIX preload
//! (`fiu-run -x`), then, once it listens, `fiu-ctrl` makes the calls the
//! store makes (`pread`, `pwrite`, `ftruncate`, `fsync`, `fdatasync`,
//! `open`, `unlink`) fail at random with probability P, in every thread,
//! for a run of deliveries (a fifth of them retries of an earlier event).
//! Then the faults are turned off and the same invariants are checked as
//! after each point of the sweep.
//!
//! Plain `read` and `write` are not failed: they are the sockets', and
//! tokio's wake-ups (an eventfd), whose failure tokio treats as impossible
//! (`failed to wake I/O driver` panics in a worker, and a second panic
//! aborts the process), which no disk fault can cause.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::check::{check, Sent};
use crate::process::{Process, Target, BOUND};
use crate::wire::{Answer, Item};

/// The failure points enabled, each at the run's probability.
const POINTS: [&str; 7] = [
    "posix/io/rw/pread",
    "posix/io/rw/pwrite",
    "posix/io/rw/ftruncate",
    "posix/io/sync/fsync",
    "posix/io/sync/fdatasync",
    "posix/io/oc/open",
    "posix/io/dir/unlink",
];

/// What a randomized run saw.
#[derive(Debug, Default)]
pub struct Randomized {
    pub probability: f64,
    pub deliveries: usize,
    pub acknowledged: usize,
    pub refused: usize,
    pub closed: usize,
    pub lost: usize,
    pub hangs: usize,
    pub problems: Vec<String>,
}

impl std::fmt::Display for Randomized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "libfiu at {:.0} %: {} deliveries, {} acknowledged, {} answered 5xx, {} closed, \
             {} lost, {} hangs",
            self.probability * 100.0,
            self.deliveries,
            self.acknowledged,
            self.refused,
            self.closed,
            self.lost,
            self.hangs
        )?;
        for problem in self.problems.iter().take(20) {
            writeln!(f, "  PROBLEM: {problem}")?;
        }
        Ok(())
    }
}

/// `fiu-ctrl -f BASE -c COMMAND… PID`.
fn control(base: &Path, pid: u32, commands: &[String]) -> Result<(), String> {
    let mut command = Command::new("fiu-ctrl");
    command.arg("-f").arg(base);
    for c in commands {
        command.args(["-c", c]);
    }
    let mut child = command
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run fiu-ctrl: {e}"))?;
    // fiu-ctrl waits for the process's answer: bounded, in case it died.
    let deadline = std::time::Instant::now() + BOUND;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("fiu-ctrl {commands:?}: {status}")),
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "fiu-ctrl {commands:?} got no answer within {BOUND:?}"
                ));
            }
        }
    }
}

/// `deliveries` deliveries to `target` under faults at `probability`.
pub fn run(target: &Target, probability: f64, deliveries: usize, dir: &Path) -> Randomized {
    let mut out = Randomized {
        probability,
        deliveries,
        ..Randomized::default()
    };
    let inbox = dir.join("inbox.sqlite");
    let base = dir.join("fiu-ctrl");
    let inner = (target.command)(&inbox);
    let mut command = Command::new("fiu-run");
    command
        .arg("-x")
        .arg("-f")
        .arg(&base)
        .arg(inner.get_program());
    command.args(inner.get_args());
    for (name, value) in inner.get_envs() {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let mut process = match Process::start_command(command) {
        Ok(process) => process,
        Err(e) => {
            out.problems.push(format!("start under fiu-run: {e}"));
            return out;
        }
    };
    let enable: Vec<String> = POINTS
        .iter()
        .map(|p| format!("enable_random name={p},probability={probability}"))
        .collect();
    if let Err(e) = control(&base, process.pid(), &enable) {
        out.problems.push(e);
        return out;
    }
    let mut sent = Sent::default();
    let items: Vec<Item> = (0..deliveries)
        .map(|n| {
            if n % 5 == 4 {
                Item::v2(&format!("random-{}", n / 2))
            } else {
                Item::v2(&format!("random-{n}"))
            }
        })
        .collect();
    for item in &items {
        let answer = item.send(process.port, target.v1);
        sent.note(item, answer.acknowledged());
        match answer {
            Answer::Status(200) => {}
            Answer::Status(500..=599) => out.refused += 1,
            Answer::Closed => out.closed += 1,
            Answer::Hung => {
                out.hangs += 1;
                out.problems.push(format!("{item:?}: no answer in time"));
            }
            Answer::Status(other) => out.problems.push(format!("{item:?}: {other}")),
        }
    }
    out.acknowledged = sent.acknowledged();
    if let Some(status) = process.wait(std::time::Duration::ZERO) {
        out.problems.push(format!(
            "the receiver exited ({status}) under the faults: {}",
            process.stderr()
        ));
    }
    let disable: Vec<String> = POINTS.iter().map(|p| format!("disable name={p}")).collect();
    if let Err(e) = control(&base, process.pid(), &disable) {
        out.problems.push(e);
    }
    // Faults off: the same process serves again.
    let probe = Item::v2("random-after");
    let answer = probe.send(process.port, target.v1);
    sent.note(&probe, answer.acknowledged());
    if answer != Answer::Status(200) {
        out.problems.push(format!(
            "after the faults were turned off: {answer:?} (serves again without a restart)"
        ));
    }
    let (status, stderr) = process.stop();
    if status.and_then(|s| s.code()) != Some(0) {
        out.problems
            .push(format!("SIGTERM: exit {status:?} (0 expected): {stderr}"));
    }
    let (problems, lost) = check(&inbox, &sent);
    out.lost = lost;
    out.problems.extend(problems);
    out
}
