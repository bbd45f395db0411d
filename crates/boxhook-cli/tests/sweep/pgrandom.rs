//! The PostgreSQL half's randomized runs: random proxy cuts under
//! concurrent deliveries; `pg_ctl stop -m immediate` and a restart at
//! random moments under load; and the cluster's data directory on a small
//! tmpfs, filled up and freed. The same invariants as the sweep's after
//! each.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boxhook_testkit::pgproxy::{Fault, Scope};
use boxhook_testkit::postgres::Cluster;

use crate::pg::{Bench, PgTarget};
use crate::wire::{Answer, Item};

/// What a randomized run saw.
#[derive(Debug, Default)]
pub struct Run {
    pub name: String,
    pub seed: u64,
    pub deliveries: usize,
    pub acknowledged: usize,
    pub refused: usize,
    pub closed: usize,
    pub lost: usize,
    pub hangs: usize,
    /// Faults the proxy applied, or server stops.
    pub faults: u64,
    pub problems: Vec<String>,
    pub log: Vec<String>,
    pub seconds: f64,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} (seed {}): {} deliveries, {} faults, {} acknowledged, {} answered 5xx, {} closed, \
             {} lost, {} hangs, {:.1} s",
            self.name,
            self.seed,
            self.deliveries,
            self.faults,
            self.acknowledged,
            self.refused,
            self.closed,
            self.lost,
            self.hangs,
            self.seconds
        )?;
        let mut lines: Vec<&String> = self.log.iter().collect();
        lines.sort();
        lines.dedup();
        for line in lines.iter().take(12) {
            writeln!(f, "    {line}")?;
        }
        for problem in self.problems.iter().take(20) {
            writeln!(f, "  PROBLEM: {problem}")?;
        }
        Ok(())
    }
}

/// A small seeded generator (splitmix64) for the runs' choices.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n.max(1)
    }
}

/// The seed: `BOXHOOK_SWEEP_SEED`, or the clock's.
pub fn seed() -> u64 {
    std::env::var("BOXHOOK_SWEEP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs())
        })
}

/// The `n`-th delivery of a run: every fifth a retry of an earlier event.
fn item(prefix: &str, n: usize) -> Item {
    if n % 5 == 4 {
        Item::v2(&format!("{prefix}-{}", n / 2))
    } else {
        Item::v2(&format!("{prefix}-{n}"))
    }
}

/// Sends `items` from `threads` threads at once (item i from thread i mod
/// `threads`), until done or `stop`; returns each sent item's answer.
fn load(
    port: u16,
    items: Vec<Item>,
    threads: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<(Item, Answer)> {
    let items = Arc::new(items);
    let senders: Vec<_> = (0..threads)
        .map(|t| {
            let items = Arc::clone(&items);
            let stop = Arc::clone(stop);
            std::thread::spawn(move || {
                let mut out = Vec::new();
                for item in items.iter().skip(t).step_by(threads) {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let answer = item.send(port, None);
                    if !answer.acknowledged() {
                        // No storm while the database is away.
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    out.push((item.clone(), answer));
                }
                out
            })
        })
        .collect();
    senders
        .into_iter()
        .flat_map(|s| s.join().unwrap_or_default())
        .collect()
}

fn tally(run: &mut Run, bench: &mut Bench, answers: Vec<(Item, Answer)>) {
    for (item, answer) in answers {
        run.deliveries += 1;
        bench.sent.note(&item, answer.acknowledged());
        match answer {
            Answer::Status(200) => run.acknowledged += 1,
            Answer::Status(500..=599) => run.refused += 1,
            Answer::Closed => run.closed += 1,
            Answer::Hung => {
                run.hangs += 1;
                run.problems.push(format!("{item:?}: no answer in time"));
            }
            Answer::Status(other) => run.problems.push(format!("{item:?}: {other}")),
        }
    }
}

/// Once the fault is gone: the same process stores a new event (within
/// `limit`, for a database that is still starting).
fn serves_again(run: &mut Run, bench: &mut Bench, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut n = 0;
    loop {
        let answer = bench.deliver(&Item::v2(&format!("{}-after-{n}", run.seed)));
        if answer == Answer::Status(200) {
            return;
        }
        n += 1;
        if Instant::now() >= deadline {
            run.problems.push(format!(
                "after the faults: {answer:?} for a new event for {limit:?} (serves again \
                 without a restart)"
            ));
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn finish(run: &mut Run, mut bench: Bench, started: Instant) {
    if let Some(status) = bench.process.wait(Duration::ZERO) {
        run.problems
            .push(format!("the receiver exited ({status}) under the faults"));
    }
    let (problems, lost) = bench.check();
    run.lost = lost;
    run.problems.extend(problems);
    run.faults = run.faults.max(bench.proxy.faults());
    let (status, stderr) = bench.process.stop();
    if status.and_then(|s| s.code()) != Some(0) {
        run.problems
            .push(format!("SIGTERM: exit {status:?} (0 expected): {stderr}"));
    }
    run.log = crate::sweep::error_lines(&stderr);
    run.seconds = started.elapsed().as_secs_f64();
}

/// `deliveries` deliveries from 4 threads, with every connection cut at
/// random after a message with `probability`.
pub fn random_cuts(
    cluster: &Cluster,
    target: &PgTarget,
    probability: f64,
    deliveries: usize,
    seed: u64,
) -> Run {
    let started = Instant::now();
    let mut run = Run {
        name: format!("random cuts at {:.0} % per message", probability * 100.0),
        seed,
        ..Run::default()
    };
    let schema = format!("random_{}", (probability * 100.0).round());
    let mut bench = match Bench::start(cluster, target, &schema, 4) {
        Ok(bench) => bench,
        Err(e) => {
            run.problems.push(format!("start: {e}"));
            return run;
        }
    };
    bench
        .proxy
        .set(Scope::All, Fault::CutAtRandom { probability, seed });
    let prefix = format!("random-{schema}");
    let items = (0..deliveries).map(|n| item(&prefix, n)).collect();
    let answers = load(
        bench.process.port,
        items,
        4,
        &Arc::new(AtomicBool::new(false)),
    );
    tally(&mut run, &mut bench, answers);
    bench.proxy.clear();
    serves_again(&mut run, &mut bench, Duration::from_secs(10));
    finish(&mut run, bench, started);
    run
}

/// Deliveries from 4 threads while the (durable) server is stopped with
/// `pg_ctl stop -m immediate` and started again, `rounds` times, at
/// random moments.
pub fn immediate_stops(cluster: &Cluster, target: &PgTarget, rounds: usize, seed: u64) -> Run {
    let started = Instant::now();
    let mut run = Run {
        name: format!("pg_ctl stop -m immediate + start, {rounds} rounds"),
        seed,
        ..Run::default()
    };
    let mut bench = match Bench::start(cluster, target, "restarts", 4) {
        Ok(bench) => bench,
        Err(e) => {
            run.problems.push(format!("start: {e}"));
            return run;
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let port = bench.process.port;
    let items: Vec<Item> = (0..100_000).map(|n| item("restart", n)).collect();
    let loader = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || load(port, items, 4, &stop))
    };
    let mut rng = Rng::new(seed);
    for _ in 0..rounds {
        std::thread::sleep(Duration::from_millis(300 + rng.below(700)));
        cluster.crash();
        std::thread::sleep(Duration::from_millis(rng.below(500)));
        cluster.start_again();
        run.faults += 1;
    }
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::SeqCst);
    let answers = loader.join().unwrap_or_default();
    tally(&mut run, &mut bench, answers);
    serves_again(&mut run, &mut bench, Duration::from_secs(15));
    finish(&mut run, bench, started);
    run
}

/// Unmounts a directory when dropped.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

fn sh(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Kibibytes used under `dir`.
fn used_kib(dir: &std::path::Path) -> u64 {
    std::process::Command::new("du")
        .arg("-sk")
        .arg(dir)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Whether this process may mount a tmpfs (root, and mount allowed).
pub fn can_mount() -> Result<(), String> {
    let dir = crate::temp_dir("mount-probe");
    let path = dir.path().to_string_lossy().into_owned();
    sh(&["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", &path])?;
    sh(&["umount", &path])
}

/// The cluster's data directory on a small tmpfs: deliveries until it is
/// full (none may be 2xx unless stored), then space freed: the same
/// receiver stores again.
#[allow(
    clippy::too_many_lines,
    reason = "one scenario in order: move, fill, deliver, free, deliver, check"
)]
pub fn full_data_directory(cluster: &Cluster, target: &PgTarget) -> Run {
    let started = Instant::now();
    let mut run = Run {
        name: "data directory on a full tmpfs".to_owned(),
        ..Run::default()
    };
    let data = cluster.data_dir();
    let moved = data.with_file_name("data.orig");
    let used = used_kib(&data);
    let (data_s, moved_s) = (
        data.to_string_lossy().into_owned(),
        moved.to_string_lossy().into_owned(),
    );
    // Room for the cluster, its next WAL segment and the schema, no more.
    let size = format!("size={}k,mode=0700", used + 24 * 1024);
    let owner = {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::metadata(&data).map(|m| format!("{}:{}", m.uid(), m.gid()))
    };
    let mounted = (|| {
        let owner = owner.map_err(|e| e.to_string())?;
        cluster.stop();
        std::fs::rename(&data, &moved).map_err(|e| format!("rename: {e}"))?;
        std::fs::create_dir(&data).map_err(|e| format!("mkdir: {e}"))?;
        sh(&["mount", "-t", "tmpfs", "-o", &size, "tmpfs", &data_s])?;
        let guard = Unmount(data.clone());
        sh(&["chown", &owner, &data_s])?;
        sh(&["cp", "-a", &format!("{moved_s}/."), &data_s])?;
        cluster.start_again();
        Ok::<_, String>(guard)
    })();
    let unmount = match mounted {
        Ok(guard) => guard,
        Err(e) => {
            run.problems
                .push(format!("cannot put the data directory on a tmpfs: {e}"));
            return run;
        }
    };
    let mut bench = match Bench::start(cluster, target, "disk_full", 2) {
        Ok(bench) => bench,
        Err(e) => {
            run.problems.push(format!("start: {e}"));
            return run;
        }
    };
    if bench.deliver(&Item::v2("full-before")) != Answer::Status(200) {
        run.problems
            .push("the first delivery was not stored".to_owned());
    }
    // Fill the file system (a root-owned file: tmpfs keeps nothing back).
    let filler = data.join("filler");
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=1M"])
        .arg(format!("of={}", filler.display()))
        .output();
    let mut refused_in_a_row = 0;
    let mut n = 0;
    while refused_in_a_row < 5 && n < 400 {
        let item = Item::v2(&format!("full-{n}"));
        n += 1;
        let answer = bench.deliver(&item);
        run.deliveries += 1;
        match answer {
            Answer::Status(200) => {
                run.acknowledged += 1;
                refused_in_a_row = 0;
            }
            Answer::Status(503) => {
                run.refused += 1;
                refused_in_a_row += 1;
            }
            Answer::Hung => {
                run.hangs += 1;
                run.problems.push(format!("full-{n}: no answer in time"));
            }
            other => {
                run.problems.push(format!("full-{n}: {other:?} while full"));
                refused_in_a_row += 1;
            }
        }
    }
    if refused_in_a_row < 5 {
        run.problems.push(format!(
            "{n} deliveries on a full disk and no run of five 503s"
        ));
    }
    let _ = std::fs::remove_file(&filler);
    serves_again(&mut run, &mut bench, Duration::from_secs(15));
    run.faults = 1;
    finish(&mut run, bench, started);
    let server_log = std::fs::read_to_string(
        data.parent()
            .map(|p| p.join("server.log"))
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    if let Some(line) = server_log
        .lines()
        .find(|l| l.contains("No space left on device"))
    {
        run.log.push(format!("server: {line}"));
    }
    cluster.stop();
    drop(unmount);
    run
}
