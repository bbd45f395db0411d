//! Pruning the inbox: the background pruner of `serve` and `work`, and
//! `boxhook inbox prune`.
//!
//! Both call [`Prune::prune`] in bounded batches ([`SQLITE_BATCH`] or
//! [`POSTGRES_BATCH`] events at most), so no batch holds the store for
//! long, and pause after each for [`PACE`] times as long as it took (at
//! least [`PAUSE`]): pruning takes at most a fifth of the store's time, and
//! a delivery waits for one small batch at most. Every batch of a round cuts at the same time, the round's
//! start, so `--older-than 1h` means the hour before the command ran. The
//! background pruner runs a round [`FIRST`] after start, then every
//! [`EVERY`]; a round goes on while the store says more is left. A failed
//! round is logged with what to do and tried again at the next one: the
//! pruner never stops the process. On PostgreSQL the store itself lets
//! only one process prune at a time.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use boxhook::inbox::{ErrorKind, InboxError, Prune, Pruned, Retention};
use chrono::{DateTime, DurationRound as _, SecondsFormat, TimeDelta, Utc};

use crate::retention::{describe, parse_duration};
use crate::store::StoreArgs;
use crate::usage;

/// The most events one call of [`Prune::prune`] removes from an SQLite
/// inbox.
///
/// SQLite has one writer: a batch holds every delivery that arrives while
/// it runs. Measured on a 2,000,000-event file with the `sqlite3` shell
/// (`synchronous=FULL`, the batch's deletes, kept keys and incremental
/// vacuum in one transaction): 100 events took 15–16 ms a batch, 25 took
/// 4.7 ms. With batches of 100, `benches/load/scale.sh` measured the p99
/// of paced deliveries at 38 ms during a prune against 4 ms without it; 25
/// keeps a delivery's extra wait near one commit.
pub(crate) const SQLITE_BATCH: usize = 25;

/// The most events one call of [`Prune::prune`] removes from a PostgreSQL
/// inbox. Its deletes lock rows no store writes, so a batch delays no
/// delivery by its length; it bounds the transaction, and each call pays
/// a few round trips (the pruners' lock, the coming days' partitions, the
/// probes for more).
pub(crate) const POSTGRES_BATCH: usize = 100;

/// The shortest pause between two batches while more is left.
pub(crate) const PAUSE: Duration = Duration::from_millis(10);

/// The pause after a batch, in multiples of the time the batch took (when
/// that is longer than [`PAUSE`]): pruning takes at most a fifth of the
/// store's time, and deliveries come first.
///
/// Measured with `benches/load/scale.sh` on a 2,000,000-event SQLite inbox
/// (batches of 25, deliveries paced at 1,000/s, their p99 about 4.5 ms
/// without a prune): a pause as long as the batch gave a p99 of 21 ms
/// during a prune of 200,000 events, pruning 1,590 events/s; four times as
/// long, 15 ms, pruning 1,220 events/s. On SQLite what delays a delivery
/// during a prune is mostly the disk: every pruned event dirties about
/// three pages at random in the file (its two keys' index entries and the
/// key kept in `pruned_keys`), written to the WAL and then, at the next
/// checkpoint, to the file.
pub(crate) const PACE: u32 = 4;
/// When the first background round runs, after start.
pub(crate) const FIRST: Duration = Duration::from_secs(5);
/// How often the background pruner runs a round.
pub(crate) const EVERY: Duration = Duration::from_secs(300);

/// What the background pruner has done, for the dashboard.
#[derive(Debug)]
pub(crate) struct PruneStatus {
    retention: Retention,
    inner: Mutex<Last>,
}

/// The last round's outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Last {
    /// When the last round ended.
    pub(crate) at: Option<DateTime<Utc>>,
    /// What it removed.
    pub(crate) pruned: Pruned,
    /// Why it failed, if it did.
    pub(crate) error: Option<String>,
    /// Why the pruner stopped for good (the store cannot prune).
    pub(crate) off: Option<String>,
}

impl PruneStatus {
    pub(crate) fn new(retention: Retention) -> Self {
        Self {
            retention,
            inner: Mutex::new(Last::default()),
        }
    }

    /// The retention in force.
    pub(crate) fn retention(&self) -> Retention {
        self.retention
    }

    /// The last round.
    pub(crate) fn last(&self) -> Last {
        self.inner.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn set(&self, last: Last) {
        if let Ok(mut inner) = self.inner.lock() {
            *inner = last;
        }
    }
}

/// Counts one batch in `boxhook_pruned_total{state}`.
fn count(pruned: &Pruned) {
    for (state, n) in [
        ("done", pruned.done),
        ("dead", pruned.dead),
        ("v1", pruned.v1),
        ("keys", pruned.keys),
    ] {
        metrics::counter!(boxhook::metrics::PRUNED_TOTAL, "state" => state).increment(n);
    }
}

/// Shows `boxhook_pruned_total{state}` at 0 from the start.
pub(crate) fn register_metrics() {
    count(&Pruned::default());
}

/// How long `inbox prune` waits, one [`RETRY`] at a time, while the store
/// says more is left but removes nothing (another process is pruning it,
/// or workers hold what is left), before it gives up.
pub(crate) const STUCK_FOR: Duration = Duration::from_secs(60);
/// How often `inbox prune` tries again while it waits.
pub(crate) const RETRY: Duration = Duration::from_secs(1);

/// How [`prune_all`] goes: its batches, its pauses, and how long it waits
/// while the store removes nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pacing {
    /// The most events one call of [`Prune::prune`] removes.
    pub(crate) batch: usize,
    /// The shortest pause between two batches ([`PAUSE`]).
    pub(crate) pause: Duration,
    /// How long to keep trying, every [`RETRY`], while the store says more
    /// is left but removes nothing: zero for a background round (its next
    /// round comes anyway), [`STUCK_FOR`] for `inbox prune`.
    pub(crate) patience: Duration,
}

/// Prunes batch after batch while the store says more is left under
/// `retention` at `now` (the same cut for every batch), calling `after`
/// with each batch's removals and pausing between batches for [`PACE`]
/// times as long as the batch took, and at least `pacing.pause`. When a
/// call removes nothing yet says more (another process is pruning, or
/// workers hold what is left), it tries again every [`RETRY`], calling
/// `waiting` with how long it has waited, until something is removed again
/// or `pacing.patience` has passed; then the total says `more`. Stops early
/// when `stop` says so (checked between calls). On failure, returns what
/// was removed before it with the error.
pub(crate) async fn prune_all(
    inbox: &impl Prune,
    retention: &Retention,
    now: DateTime<Utc>,
    pacing: Pacing,
    stop: &AtomicBool,
    mut after: impl FnMut(&Pruned),
    mut waiting: impl FnMut(Duration),
) -> Result<Pruned, (Pruned, InboxError)> {
    let mut total = Pruned::default();
    let mut waited = Duration::ZERO;
    loop {
        let started = tokio::time::Instant::now();
        let pruned = match inbox.prune(retention, now, pacing.batch).await {
            Ok(pruned) => pruned,
            Err(err) => return Err((total, err)),
        };
        total.add(pruned);
        after(&pruned);
        if !pruned.more || stop.load(Ordering::Relaxed) {
            return Ok(total);
        }
        if pruned.events() > 0 || pruned.keys > 0 {
            waited = Duration::ZERO;
            tokio::time::sleep(pacing.pause.max(started.elapsed() * PACE)).await;
        } else if waited < pacing.patience {
            waiting(waited);
            tokio::time::sleep(RETRY).await;
            waited += RETRY;
        } else {
            return Ok(total);
        }
    }
}

/// How a store is pruned: see [`crate::store::prune_plan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The most events one call of [`Prune::prune`] removes.
    pub(crate) batch: usize,
    /// Whether the background pruner cuts at UTC midnight (see
    /// [`whole_days`]).
    pub(crate) whole_days: bool,
}

/// An SQLite inbox: batches of [`SQLITE_BATCH`], cut where the retention
/// says, so each round removes the few minutes of events that came of age
/// since the last.
pub(crate) const SQLITE_PLAN: Plan = Plan {
    batch: SQLITE_BATCH,
    whole_days: false,
};

/// A PostgreSQL inbox: batches of [`POSTGRES_BATCH`], and whole UTC days,
/// which are its partitions: each day goes by a partition dropped, never
/// by its rows deleted (no dead rows, next to no WAL).
pub(crate) const POSTGRES_PLAN: Plan = Plan {
    batch: POSTGRES_BATCH,
    whole_days: true,
};

const DAY: Duration = Duration::from_secs(24 * 3600);

/// `retention` with every age of a day or more lengthened so that its cut
/// falls on the UTC midnight at or before `now - age`: an event is kept at
/// least its retention, and less than a day more, and a day's events all
/// come of age at once. Ages under a day, and the keys' retention, are
/// left as they are.
pub(crate) fn whole_days(retention: &Retention, now: DateTime<Utc>) -> Retention {
    let align = |age: Option<Duration>| {
        age.map(|age| {
            if age < DAY {
                return age;
            }
            let Some(cut) = Retention::cutoff(now, Some(age)) else {
                return age;
            };
            let midnight = cut.duration_trunc(TimeDelta::days(1)).unwrap_or(cut);
            now.signed_duration_since(midnight)
                .to_std()
                .map_or(age, |aligned| aligned.max(age))
        })
    };
    Retention {
        done: align(retention.done),
        dead: align(retention.dead),
        v1: align(retention.v1),
        keys: retention.keys,
    }
}

/// Starts the background pruner of `inbox` under `retention`, as `plan`
/// says, on the current runtime; returns its status, for the dashboard.
pub(crate) fn start(inbox: impl Prune, retention: Retention, plan: Plan) -> Arc<PruneStatus> {
    let status = Arc::new(PruneStatus::new(retention));
    tokio::spawn(Pruner::new(inbox, Arc::clone(&status), plan).run());
    status
}

/// The background pruner of `serve` and `work`.
pub(crate) struct Pruner<I> {
    inbox: I,
    status: Arc<PruneStatus>,
    plan: Plan,
    first: Duration,
    every: Duration,
    pause: Duration,
}

impl<I: Prune> Pruner<I> {
    /// A pruner of `inbox` under `status`'s retention, as `plan` says, on
    /// the default schedule.
    pub(crate) fn new(inbox: I, status: Arc<PruneStatus>, plan: Plan) -> Self {
        Self {
            inbox,
            status,
            plan,
            first: FIRST,
            every: EVERY,
            pause: PAUSE,
        }
    }

    /// Runs rounds until the runtime ends, or until the store says it
    /// cannot prune; says the retention in force with the first round.
    pub(crate) async fn run(self) {
        // Said with the first round, not at once: the program's own start
        // lines come first, in their order.
        tokio::time::sleep(self.first).await;
        crate::logging::notice(
            "INFO",
            &format!(
                "pruning every {} s in batches of {}{}; retention {}",
                self.every.as_secs(),
                self.plan.batch,
                if self.plan.whole_days {
                    ", whole UTC days"
                } else {
                    ""
                },
                describe(&self.status.retention)
            ),
        );
        while self.round().await {
            tokio::time::sleep(self.every).await;
        }
    }

    /// One round; false when pruning is off for good.
    async fn round(&self) -> bool {
        let started = Instant::now();
        let retention = self.status.retention;
        let now = Utc::now();
        let cut = if self.plan.whole_days {
            whole_days(&retention, now)
        } else {
            retention
        };
        let never = AtomicBool::new(false);
        let result = prune_all(
            &self.inbox,
            &cut,
            now,
            Pacing {
                batch: self.plan.batch,
                pause: self.pause,
                patience: Duration::ZERO,
            },
            &never,
            count,
            |_| {},
        )
        .await;
        let at = Some(Utc::now());
        match result {
            Ok(pruned) => {
                if pruned.events() > 0 || pruned.keys > 0 {
                    crate::logging::notice(
                        "INFO",
                        &format!(
                            "pruned {} in {:.1} s (retention {})",
                            removed(&pruned),
                            started.elapsed().as_secs_f64(),
                            describe(&retention)
                        ),
                    );
                }
                self.status.set(Last {
                    at,
                    pruned,
                    error: None,
                    off: None,
                });
                true
            }
            Err((pruned, err)) if err.kind() == ErrorKind::Unsupported => {
                let off = format!("this store cannot prune ({err}); nothing will be pruned");
                crate::logging::notice("WARN", &off);
                self.status.set(Last {
                    at,
                    pruned,
                    error: None,
                    off: Some(off),
                });
                false
            }
            Err((pruned, err)) => {
                let error = format!(
                    "pruning the inbox failed: {err}; {} removed before the failure; trying \
                     again in {} s. Events waiting for a worker are not affected, but the inbox \
                     grows until pruning succeeds: check the store (disk space, permissions, \
                     locks); `boxhook inbox prune --older-than 30d` run by hand shows the error \
                     at once",
                    removed(&pruned),
                    self.every.as_secs(),
                );
                crate::logging::notice("WARN", &error);
                self.status.set(Last {
                    at,
                    pruned,
                    error: Some(err.to_string()),
                    off: None,
                });
                true
            }
        }
    }
}

/// What a round removed, in words.
fn removed(pruned: &Pruned) -> String {
    format!(
        "{} event(s) ({} done, {} dead, {} v1) and {} expired deduplication key(s)",
        pruned.events(),
        pruned.done,
        pruned.dead,
        pruned.v1,
        pruned.keys
    )
}

/// Which finished events `boxhook inbox prune` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prunable {
    Done,
    Dead,
}

fn parse_prunable(text: &str) -> Result<Prunable, String> {
    match text {
        "done" => Ok(Prunable::Done),
        "dead" => Ok(Prunable::Dead),
        "pending" | "claimed" | "in_progress" => Err(format!(
            "{text} events are never pruned (a worker still has to process them); give done \
             or dead"
        )),
        other => Err(format!("unknown state {other:?}; give done or dead")),
    }
}

/// Arguments of `boxhook inbox prune`.
#[derive(clap::Args)]
#[command(after_help = "\
Removes, in batches (25 events on SQLite, 100 on PostgreSQL) with a pause four \
times as long as each batch took, the done (or, with --state dead, the dead) V2 \
events received more than --older-than ago, and with --v1 the V1 callbacks \
(done or dead) as old. Pending and claimed events are never removed. A \
pruned event's deduplication key is kept until --retain-keys (7d) after it \
was received, so a late retry from Box is still answered as a duplicate and \
not stored again. Safe while serve and work run; `serve` and `work` also \
prune on their own (--retain-done, --retain-dead, --retain-v1).

Progress is shown on a terminal. Ctrl-C stops after the batch in flight.

Exit status: 0 pruned (also when nothing was old enough), 1 the store \
failed (what was removed before stays removed), 2 usage error, 3 more is \
left but the store removed nothing for 60 s (another process is pruning \
it, or workers hold those events; it tries again every second meanwhile), \
130 stopped by Ctrl-C.

Examples:
  boxhook inbox prune --older-than 7d
  boxhook inbox prune --older-than 30d --state dead --store postgres://boxhook@db/boxhook")]
pub(crate) struct Args {
    /// Remove events received more than DURATION ago: 90s, 30m, 12h, 30d.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    older_than: Duration,
    /// Which events: done (the default) or dead.
    #[arg(long, value_name = "STATE", value_parser = parse_prunable)]
    state: Option<Prunable>,
    /// Also remove V1 callbacks (done or dead) received more than
    /// --older-than ago.
    #[arg(long)]
    v1: bool,
    #[command(flatten)]
    keys: KeysArg,
    #[command(flatten)]
    store: StoreArgs,
}

/// `--retain-keys` for `inbox prune`.
#[derive(clap::Args)]
struct KeysArg {
    /// How long the deduplication key of a pruned event is kept, from when
    /// it was received: at least 1d.
    #[arg(long, value_name = "DURATION", default_value = "7d",
          value_parser = crate::retention::parse_keys)]
    retain_keys: Duration,
}

impl Args {
    /// The retention that prunes exactly what these flags ask for.
    fn retention(&self) -> Retention {
        let older = Some(self.older_than);
        let base = Retention::nothing().keys(self.keys.retain_keys);
        let base = match self.state.unwrap_or(Prunable::Done) {
            Prunable::Done => base.done(older),
            Prunable::Dead => base.dead(older),
        };
        if self.v1 {
            base.v1(older)
        } else {
            base
        }
    }

    /// What is pruned, in words: `done events`, `dead events and V1
    /// callbacks`.
    fn what(&self) -> String {
        let state = match self.state.unwrap_or(Prunable::Done) {
            Prunable::Done => "done",
            Prunable::Dead => "dead",
        };
        if self.v1 {
            format!("{state} events and done or dead V1 callbacks")
        } else {
            format!("{state} events")
        }
    }
}

/// Runs `boxhook inbox prune`.
pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let store = args.store.store()?;
    if let Some(path) = store.sqlite_path() {
        // Pruning a file that is not there would create an empty inbox.
        if !path.is_file() {
            return Err(usage(format!(
                "no inbox at {} (pass --inbox FILE or --store URL)",
                path.display()
            )));
        }
    }
    let retention = args.retention();
    let now = Utc::now();
    let before = Retention::cutoff(now, Some(args.older_than))
        .unwrap_or(now)
        .to_rfc3339_opts(SecondsFormat::Secs, true);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let inbox = store.open().await.map_err(crate::store::failure)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Ordering::Relaxed);
            }
        });
        let progress = Progress::new(&format!("pruning {} received before {before}", args.what()));
        let mut so_far = Pruned::default();
        // By hand, the cut is exactly where the operator said.
        let batch = crate::store::prune_plan(&inbox).batch;
        let mut said = false;
        let pacing = Pacing {
            batch,
            pause: PAUSE,
            patience: STUCK_FOR,
        };
        let result = prune_all(
            &inbox,
            &retention,
            now,
            pacing,
            &stop,
            |batch| {
                so_far.add(*batch);
                progress.show(&so_far);
            },
            |_waited| {
                if !said {
                    said = true;
                    progress.say(&format!(
                        "more is left, but the store removes nothing now (another process is \
                         pruning it, or workers hold the events left): trying again every {} s \
                         for up to {} s",
                        RETRY.as_secs(),
                        STUCK_FOR.as_secs()
                    ));
                }
            },
        )
        .await;
        progress.finish();
        let (pruned, failure) = match result {
            Ok(pruned) => (pruned, None),
            Err((pruned, err)) => (pruned, Some(err)),
        };
        let line = format!(
            "pruned {} event(s) received before {before} from {}: {} done, {} dead, {} v1; {} \
             expired deduplication key(s) removed",
            pruned.events(),
            store.describe(),
            pruned.done,
            pruned.dead,
            pruned.v1,
            pruned.keys
        );
        if let Some(err) = failure {
            return Err(anyhow::anyhow!(
                "{line}, then the store failed: {err}; run the command again once the store is \
                 fixed"
            ));
        }
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        if stop.load(Ordering::Relaxed) && pruned.more {
            writeln!(out, "interrupted: more is left to prune")?;
            return Ok(ExitCode::from(130));
        }
        if pruned.more {
            writeln!(
                out,
                "stopped with more left to prune: for {} s the store removed nothing (another \
                 process is pruning it, or workers hold the events left); run the command again \
                 later",
                STUCK_FOR.as_secs()
            )?;
            return Ok(ExitCode::from(3));
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// A spinner on a terminal's stderr; nothing otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    what: String,
}

impl Progress {
    fn new(what: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.set_message(format!("{what}: 0 removed so far"));
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            bar,
            what: what.to_owned(),
        }
    }

    fn show(&self, so_far: &Pruned) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "{}: {} event(s) and {} key(s) removed so far",
                self.what,
                so_far.events(),
                so_far.keys
            ));
        }
    }

    /// A line on stderr, above the spinner on a terminal.
    fn say(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use boxhook::inbox::ErrorKind;
    use clap::Parser as _;

    use super::*;
    use crate::fake::Fake;

    /// The plan of the tests that do not look at it.
    const PLAN: Plan = Plan {
        batch: 1000,
        whole_days: false,
    };

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("a time")
            .with_timezone(&Utc)
    }

    #[test]
    fn whole_days_moves_each_cut_back_to_its_utc_midnight() {
        let hours = |h: u64| Duration::from_secs(h * 3600);
        let now = at("2026-12-06T04:30:00Z");
        let retention = Retention {
            done: Some(hours(30 * 24)),
            dead: Some(hours(24)),
            v1: Some(hours(12)),
            keys: hours(7 * 24),
        };
        let aligned = whole_days(&retention, now);
        let cut = |age| Retention::cutoff(now, age).expect("a cut");
        assert_eq!(cut(aligned.done), at("2026-11-06T00:00:00Z"));
        assert_eq!(cut(aligned.dead), at("2026-12-05T00:00:00Z"));
        // Under a day, and the keys: as given.
        assert_eq!(aligned.v1, Some(hours(12)));
        assert_eq!(aligned.keys, hours(7 * 24));
        // Forever stays forever; a cut already at midnight stays there.
        let midnight = at("2026-12-06T00:00:00Z");
        let kept = Retention {
            done: None,
            ..Retention::default()
        };
        let aligned = whole_days(&kept, midnight);
        assert_eq!(aligned.done, None);
        assert_eq!(aligned.dead, Retention::default().dead);
        // Never shorter than the retention, whatever the time of day.
        for now in ["2026-12-06T00:00:00.001Z", "2026-12-06T23:59:59.999Z"] {
            let aligned = whole_days(&Retention::default(), at(now));
            assert!(aligned.done >= Retention::default().done, "{now}");
            assert!(
                aligned.done < Retention::default().done.map(|d| d + DAY),
                "{now}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn inbox_prune_waits_while_another_pruner_holds_the_store() {
        // Progress, then two calls skipped (another process prunes), then
        // progress again to the end.
        let inbox = fake(vec![
            batch(25, 0, true),
            batch(0, 0, true),
            batch(0, 0, true),
            batch(25, 3, false),
        ]);
        let never = AtomicBool::new(false);
        let mut waits = Vec::new();
        let total = prune_all(
            &inbox,
            &Retention::default(),
            Utc::now(),
            pacing(25, STUCK_FOR),
            &never,
            |_| {},
            |waited| waits.push(waited),
        )
        .await
        .expect("pruned");
        assert_eq!((total.done, total.keys, total.more), (50, 3, false));
        assert_eq!(waits, [Duration::ZERO, RETRY]);

        // Skipped for good: gives up after STUCK_FOR, saying more is left.
        let inbox = fake(
            std::iter::once(batch(10, 0, true))
                .chain(std::iter::repeat_with(|| batch(0, 0, true)).take(100))
                .collect(),
        );
        let started = tokio::time::Instant::now();
        let total = prune_all(
            &inbox,
            &Retention::default(),
            Utc::now(),
            pacing(25, STUCK_FOR),
            &never,
            |_| {},
            |_| {},
        )
        .await
        .expect("pruned");
        assert_eq!((total.done, total.more), (10, true));
        let waited = started.elapsed();
        assert!(
            waited >= STUCK_FOR && waited < STUCK_FOR + 2 * RETRY,
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_whole_days_pruner_cuts_at_midnight_and_says_so() {
        let inbox = fake(vec![batch(1, 0, false)]);
        let status = Arc::new(PruneStatus::new(Retention::default()));
        let plan = Plan {
            batch: 7,
            whole_days: true,
        };
        let task = tokio::spawn(Pruner::new(Arc::clone(&inbox), Arc::clone(&status), plan).run());
        tokio::time::sleep(FIRST + Duration::from_millis(1)).await;
        let calls = inbox.prune_calls.lock().expect("lock").clone();
        let (retention, now, batch) = calls.first().copied().expect("one call");
        assert_eq!(batch, 7);
        assert_eq!(retention, whole_days(&Retention::default(), now));
        let cut = Retention::cutoff(now, retention.done).expect("a cut");
        assert_eq!(
            cut,
            cut.duration_trunc(TimeDelta::days(1)).expect("in range")
        );
        // The status shows the retention as configured.
        assert_eq!(status.retention(), Retention::default());
        task.abort();
    }

    #[allow(clippy::unnecessary_wraps, reason = "a scripted answer of prune")]
    fn batch(done: u64, keys: u64, more: bool) -> Result<Pruned, InboxError> {
        Ok(Pruned {
            done,
            keys,
            more,
            ..Pruned::default()
        })
    }

    /// The tests' pacing: `batch` events a call, the shortest pause, `patience`.
    fn pacing(batch: usize, patience: Duration) -> Pacing {
        Pacing {
            batch,
            pause: PAUSE,
            patience,
        }
    }

    fn fake(batches: Vec<Result<Pruned, InboxError>>) -> Arc<Fake> {
        let fake = Fake::default();
        *fake.prunes.lock().expect("lock") = batches.into();
        Arc::new(fake)
    }

    #[tokio::test(start_paused = true)]
    async fn a_round_goes_on_while_more_is_left_in_bounded_batches() {
        let inbox = fake(vec![
            batch(1000, 0, true),
            batch(1000, 2, true),
            batch(10, 0, false),
            batch(5, 0, false),
        ]);
        let never = AtomicBool::new(false);
        let mut seen = Vec::new();
        let started = tokio::time::Instant::now();
        let cut = Utc::now();
        let total = prune_all(
            &inbox,
            &Retention::default(),
            cut,
            pacing(1000, Duration::ZERO),
            &never,
            |b| seen.push(b.done),
            |_| {},
        )
        .await
        .expect("pruned");
        assert_eq!(
            total,
            Pruned {
                done: 2010,
                keys: 2,
                ..Pruned::default()
            }
        );
        assert_eq!(seen, [1000, 1000, 10]);
        // Two pauses: after each batch that said more.
        assert_eq!(started.elapsed(), 2 * PAUSE);
        let calls = inbox.prune_calls.lock().expect("lock").clone();
        assert_eq!(calls.len(), 3, "the fourth batch is the next round's");
        // One cut for the whole round, whatever the time when each batch runs.
        assert!(calls
            .iter()
            .all(|(r, now, b)| *r == Retention::default() && *now == cut && *b == 1000));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_keeps_what_was_removed_before_it() {
        let inbox = fake(vec![
            batch(1000, 0, true),
            Err(InboxError::new(
                ErrorKind::Storage,
                "database or disk is full",
            )),
        ]);
        let never = AtomicBool::new(false);
        let (pruned, err) = prune_all(
            &inbox,
            &Retention::default(),
            Utc::now(),
            pacing(1000, Duration::ZERO),
            &never,
            |_| {},
            |_| {},
        )
        .await
        .expect_err("failed");
        assert_eq!(pruned.done, 1000);
        assert_eq!(err.kind(), ErrorKind::Storage);
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_that_removes_nothing_ends_the_round_and_stop_is_heard() {
        let inbox = fake(vec![batch(0, 0, true), batch(1, 0, true)]);
        let never = AtomicBool::new(false);
        let total = prune_all(
            &inbox,
            &Retention::default(),
            Utc::now(),
            pacing(1000, Duration::ZERO),
            &never,
            |_| {},
            |_| {},
        )
        .await;
        assert_eq!(total.ok().map(|p| p.more), Some(true));
        assert_eq!(inbox.prune_calls.lock().expect("lock").len(), 1);

        let inbox = fake(vec![batch(1, 0, true), batch(1, 0, true)]);
        let stop = AtomicBool::new(true);
        let total = prune_all(
            &inbox,
            &Retention::default(),
            Utc::now(),
            pacing(1000, Duration::ZERO),
            &stop,
            |_| {},
            |_| {},
        )
        .await;
        assert_eq!(total.ok().map(|p| (p.done, p.more)), Some((1, true)));
        assert_eq!(inbox.prune_calls.lock().expect("lock").len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_background_pruner_runs_at_start_then_on_schedule_and_survives_failures() {
        let inbox = fake(vec![
            batch(3, 1, false),
            Err(InboxError::new(ErrorKind::Storage, "database is locked")),
            batch(2, 0, false),
        ]);
        let status = Arc::new(PruneStatus::new(Retention::default()));
        let pruner = Pruner::new(Arc::clone(&inbox), Arc::clone(&status), PLAN);
        let task = tokio::spawn(pruner.run());
        let calls = || inbox.prune_calls.lock().expect("lock").len();
        tokio::time::sleep(Duration::from_millis(4999)).await;
        assert_eq!(calls(), 0, "not before FIRST");
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert_eq!(calls(), 1);
        let last = status.last();
        assert_eq!(
            (last.pruned.done, last.pruned.keys, last.error),
            (3, 1, None)
        );
        tokio::time::sleep(EVERY).await;
        assert_eq!(calls(), 2);
        assert_eq!(
            status.last().error.as_deref(),
            Some("inbox storage failed: database is locked")
        );
        tokio::time::sleep(EVERY).await;
        assert_eq!(calls(), 3, "retried at the next round");
        assert_eq!(status.last().error, None);
        assert_eq!(status.last().pruned.done, 2);
        assert!(!task.is_finished());
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_that_cannot_prune_turns_the_pruner_off() {
        let inbox = fake(vec![Err(InboxError::new(ErrorKind::Unsupported, "no"))]);
        let status = Arc::new(PruneStatus::new(Retention::default()));
        let task = tokio::spawn(Pruner::new(Arc::clone(&inbox), Arc::clone(&status), PLAN).run());
        tokio::time::sleep(FIRST + Duration::from_millis(1)).await;
        assert!(task.is_finished());
        assert!(status
            .last()
            .off
            .is_some_and(|off| off.starts_with("this store cannot prune")));
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(args: &[&str]) -> Args {
        Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
            .map_or_else(|err| panic!("{err}"), |cli| cli.args)
    }

    fn refused(args: &[&str]) -> String {
        match Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied())) {
            Ok(_) => panic!("{args:?} accepted"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn by_hand_prunes_done_events_unless_told_otherwise() {
        let hour = Some(Duration::from_secs(3600));
        let args = parse(&["--older-than", "1h"]);
        assert_eq!(args.retention(), Retention::nothing().done(hour));
        assert_eq!(args.what(), "done events");
        let args = parse(&["--older-than", "1h", "--state", "dead", "--v1"]);
        assert_eq!(args.retention(), Retention::nothing().dead(hour).v1(hour));
        assert_eq!(args.what(), "dead events and done or dead V1 callbacks");
        let args = parse(&["--older-than", "1h", "--retain-keys", "30d"]);
        assert_eq!(args.retention().keys, Duration::from_secs(30 * 86_400));
    }

    #[test]
    fn by_hand_refuses_what_is_never_pruned() {
        let err = refused(&["--older-than", "1h", "--state", "pending"]);
        assert!(
            err.contains("pending events are never pruned (a worker still has to process them)"),
            "{err}"
        );
        let err = refused(&["--older-than", "1h", "--state", "finished"]);
        assert!(
            err.contains("unknown state \"finished\"; give done or dead"),
            "{err}"
        );
        assert!(refused(&[]).contains("--older-than"));
        assert!(refused(&["--older-than", "forever"]).contains("\"forever\" is not a duration"));
    }
}
