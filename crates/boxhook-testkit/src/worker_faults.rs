//! The worker's promises checked under faults, for any inbox and any worker
//! configuration: [`check_worker_invariants`].
//!
//! A few hundred events are stored, then several [`Worker`]s drain them with
//! a [`Recorder`] handler that logs every run (event, worker, attempt, the
//! claim's lease, start, end, outcome) and, chosen by a seeded generator for
//! each event and attempt, fails, panics, runs past its lease (so leases are
//! really lost) or succeeds after a short while. Meanwhile worker tasks are
//! aborted in the middle of a handler and replaced by new ones, and the
//! caller's own faults run (for a database: connections killed, the server
//! stopped and started again). Once every event is `done` or `dead`, the
//! run log and the inbox are checked against these rules:
//!
//! | rule | what is checked |
//! |---|---|
//! | `done-after-success` | every `done` event has a run of its last claim (the attempt the inbox counted last) whose handler succeeded, and when that handler finished the inbox did not already show the event `done` or `dead` |
//! | `dead-per-max-attempts` | every `dead` event was claimed at least `max_attempts` times, and the handler of its last claim did not succeed |
//! | `one-live-holder` | no two runs of one event overlap in time unless the later one started after the earlier one's lease had ended; no attempt is run twice; attempts grow in the order runs start; no run has an attempt the inbox never counted |
//! | `lost-lease-runs-again` | every run that ended without settling its event (aborted with its worker, cancelled at its lease, or whose settle failed) was followed by another claim of the event: run again, or marked `dead` past `max_attempts` |
//! | `all-settled` | every stored event is listed exactly once and is `done` or `dead` |
//! | `counts-match-list` | `counts()` says exactly how many events `list` shows in each state |
//! | `cancelled-at-lease` | no run goes on more than 400 ms (timer and scheduling slack on a loaded machine) past its claim's lease end: the worker cancels the handler when the lease ends, however long the claim took to come back |
//!
//! A broken rule panics with its name, what broke, and the seed; set
//! `BOXHOOK_SEED` to that seed to make the same choices again (the
//! handler's choices per event and attempt repeat exactly; the order in
//! which workers claim does not). Without `BOXHOOK_SEED` the seed comes from
//! the clock, and it is printed with the [`Report`].
//!
//! ```
//! use boxhook_testkit::worker_faults::{check_worker_invariants, Plan};
//!
//! # tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(async {
//! let inbox = boxhook_sqlite::SqliteInbox::in_memory().expect("an inbox");
//! let plan = Plan::new("doc").events(12).workers(4).aborts(2).lease(std::time::Duration::from_millis(400));
//! // The worker as configured (here unchanged), and no faults of the store's own.
//! let report = check_worker_invariants(inbox, plan, |worker| worker, |_rng| async {}).await;
//! assert_eq!(report.done + report.dead, 12);
//! println!("{report}");
//! # });
//! ```

#![allow(
    clippy::missing_panics_doc,
    reason = "the checks panic on purpose, with the broken rule's name"
)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use boxhook::inbox::{
    Claimed, DeadLetters, EntryState, Inbox, InboxEntry, InboxHandler, ListFilter, NewRecord,
    Worker,
};
use boxhook::model::WebhookEvent;
use boxhook::HandlerError;
use chrono::{DateTime, TimeDelta, Utc};
use tokio::task::JoinHandle;

/// The environment variable that fixes the seed.
pub const SEED_ENV: &str = "BOXHOOK_SEED";

/// How long a run may go on past its claim's lease end (`cancelled-at-lease`):
/// timers and a loaded machine's scheduling, not the handler.
const PAST_LEASE_SLACK: Duration = Duration::from_millis(400);

/// What to run: how many events and workers, the lease, and how often the
/// handler fails; see the [module docs](self).
///
/// ```
/// use std::time::Duration;
/// use boxhook_testkit::worker_faults::Plan;
///
/// let plan = Plan::new("sqlite").events(300).workers(6).lease(Duration::from_millis(1500));
/// assert_eq!(plan.events_count(), 300);
/// println!("seed {}", plan.seed_value());
/// ```
#[derive(Debug, Clone)]
pub struct Plan {
    name: String,
    seed: u64,
    events: usize,
    workers: usize,
    lease: Duration,
    max_attempts: u32,
    aborts: usize,
    deadline: Duration,
}

impl Plan {
    /// 300 events, 6 workers, a 1.5 s lease, `max_attempts` 5, up to 10
    /// worker tasks aborted mid-handler, everything settled within 40 s;
    /// the seed from `BOXHOOK_SEED`, else from the clock. `name` goes
    /// into the worker ids, the event ids and every message.
    #[must_use]
    pub fn new(name: &str) -> Self {
        let seed = std::env::var(SEED_ENV)
            .ok()
            .and_then(|seed| seed.trim().parse().ok())
            .unwrap_or_else(|| {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |since| since.as_nanos());
                // The low bits vary most; any 64 of them make a seed.
                u64::try_from(nanos & u128::from(u64::MAX)).unwrap_or(0)
            });
        Self {
            name: name.to_owned(),
            seed,
            events: 300,
            workers: 6,
            lease: Duration::from_millis(1500),
            max_attempts: 5,
            aborts: 10,
            deadline: Duration::from_secs(40),
        }
    }

    /// The seed (overrides `BOXHOOK_SEED`).
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// How many events are stored and drained.
    #[must_use]
    pub fn events(mut self, events: usize) -> Self {
        self.events = events;
        self
    }

    /// How many workers run at once (at least 1).
    #[must_use]
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// The workers' lease; the handler's long runs last this plus a second.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The workers' `max_attempts` (at least 1).
    #[must_use]
    pub fn max_attempts(mut self, max: u32) -> Self {
        self.max_attempts = max.max(1);
        self
    }

    /// How many worker tasks are aborted in the middle of a handler (and
    /// replaced); 0 aborts none.
    #[must_use]
    pub fn aborts(mut self, aborts: usize) -> Self {
        self.aborts = aborts;
        self
    }

    /// How long the drain may take before the check fails.
    #[must_use]
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The seed in force.
    #[must_use]
    pub fn seed_value(&self) -> u64 {
        self.seed
    }

    /// How many events are stored.
    #[must_use]
    pub fn events_count(&self) -> usize {
        self.events
    }
}

/// A small seeded generator (`SplitMix64`) for choosing faults and their
/// moments.
///
/// ```
/// use boxhook_testkit::worker_faults::Rng;
///
/// let mut a = Rng::new(7);
/// let mut b = Rng::new(7);
/// assert_eq!(a.below(100), b.below(100));
/// let wait = a.between(std::time::Duration::from_millis(10), std::time::Duration::from_millis(20));
/// assert!(wait >= std::time::Duration::from_millis(10) && wait < std::time::Duration::from_millis(20));
/// ```
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64().checked_rem(n).unwrap_or(0)
    }

    /// A duration in `low..high` (`low` when the range is empty).
    pub fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let span = u64::try_from(high.saturating_sub(low).as_micros()).unwrap_or(u64::MAX);
        low.saturating_add(Duration::from_micros(self.below(span)))
    }

    /// An independent generator derived from this one.
    #[must_use]
    pub fn fork(&mut self) -> Self {
        Self(self.next_u64())
    }
}

/// `SplitMix64`'s output function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// How one run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Still running (only while the drain goes on).
    Running,
    /// The handler returned `Ok(())`.
    Succeeded,
    /// The handler returned an error.
    Failed,
    /// The handler panicked.
    Panicked,
    /// The worker cancelled the handler at its lease (and settled the
    /// attempt as failed, unless its settle failed).
    Cancelled,
    /// The handler was dropped with its worker task, aborted: nothing
    /// settled the attempt.
    Aborted,
}

/// One run of the handler, as the [`Recorder`] saw it.
#[derive(Debug, Clone)]
pub struct Run {
    /// The event's id.
    pub event_id: String,
    /// The worker that claimed it.
    pub worker_id: String,
    /// The claim's attempt.
    pub attempt: u32,
    /// The claim's lease end.
    pub lease_until: DateTime<Utc>,
    /// When the handler started.
    pub start: DateTime<Utc>,
    /// When it ended (or was dropped).
    pub end: Option<DateTime<Utc>>,
    /// How it ended.
    pub outcome: Outcome,
    /// The event's state in the inbox when the handler was about to
    /// succeed (`None` when the inbox did not answer within 300 ms).
    pub state_at_success: Option<EntryState>,
}

/// Looks an event's state up, for the [`Recorder`].
type Peek = Arc<
    dyn Fn(String) -> std::pin::Pin<Box<dyn Future<Output = Option<EntryState>> + Send>>
        + Send
        + Sync,
>;

/// The handler [`check_worker_invariants`] gives its workers: it logs every
/// run and fails, panics, overruns or succeeds as the seed decides for
/// each event and attempt. A configured worker keeps it as its handler.
///
/// ```
/// use boxhook::inbox::{InboxHandler, Worker};
/// use boxhook_testkit::worker_faults::Recorder;
///
/// fn takes<H: InboxHandler>() {}
/// takes::<Recorder>();
/// // Only check_worker_invariants makes one; its type names the workers:
/// fn configure<I: boxhook::inbox::Inbox>(worker: Worker<I, Recorder>) -> Worker<I, Recorder> {
///     worker.poll_interval(std::time::Duration::from_millis(20))
/// }
/// # let _ = configure::<boxhook_sqlite::SqliteInbox>;
/// ```
#[derive(Clone)]
pub struct Recorder {
    shared: Arc<Shared>,
}

struct Shared {
    seed: u64,
    lease: Duration,
    runs: Mutex<Vec<Run>>,
    /// Workers whose task is being aborted: a run they drop is `Aborted`.
    aborting: Mutex<HashSet<String>>,
    peek: Peek,
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("seed", &self.shared.seed)
            .field("runs", &self.runs().len())
            .finish_non_exhaustive()
    }
}

/// What the handler does in one run.
#[derive(Debug, Clone, Copy)]
enum Act {
    Fail(Duration),
    Panic,
    Overrun(Duration),
    Succeed(Duration),
}

impl Recorder {
    fn runs(&self) -> std::sync::MutexGuard<'_, Vec<Run>> {
        self.shared
            .runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The choice for `event_id`'s attempt `attempt`: 12 % fail, 2 % panic,
    /// 6 % run a second past the lease, the rest succeed within 60 ms.
    fn act(&self, event_id: &str, attempt: u32) -> Act {
        let mut key = self.shared.seed ^ u64::from(attempt).wrapping_mul(0x1000_0000_01B3);
        for byte in event_id.bytes() {
            key = mix(key ^ u64::from(byte));
        }
        let mut rng = Rng::new(key);
        match rng.below(100) {
            0..12 => Act::Fail(rng.between(Duration::ZERO, Duration::from_millis(40))),
            12..14 => Act::Panic,
            14..20 => Act::Overrun(self.shared.lease.saturating_add(Duration::from_secs(1))),
            _ => Act::Succeed(rng.between(Duration::ZERO, Duration::from_millis(60))),
        }
    }

    fn finish(&self, index: usize, outcome: Outcome, state: Option<EntryState>) {
        if let Some(run) = self.runs().get_mut(index)
            && run.outcome == Outcome::Running
        {
            run.outcome = outcome;
            run.end = Some(Utc::now());
            run.state_at_success = state;
        }
    }

    /// Whether `worker_id` is in the middle of a handler.
    fn running(&self, worker_id: &str) -> bool {
        self.runs()
            .iter()
            .rev()
            .any(|run| run.worker_id == worker_id && run.outcome == Outcome::Running)
    }
}

/// Marks its run [`Outcome::Cancelled`] when dropped before it finished.
struct Guard {
    recorder: Recorder,
    index: usize,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let worker = self
            .recorder
            .runs()
            .get(self.index)
            .map(|run| run.worker_id.clone())
            .unwrap_or_default();
        let aborted = self
            .recorder
            .shared
            .aborting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&worker);
        let outcome = if aborted {
            Outcome::Aborted
        } else {
            Outcome::Cancelled
        };
        self.recorder.finish(self.index, outcome, None);
    }
}

/// A handler failure the [`Recorder`] chose.
#[derive(Debug)]
struct Chosen;

impl fmt::Display for Chosen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a failure chosen by the worker fault check")
    }
}

impl std::error::Error for Chosen {}

impl InboxHandler for Recorder {
    async fn call(&self, _event: WebhookEvent, claimed: Claimed) -> Result<(), HandlerError> {
        let event_id = claimed.entry.event_id.clone();
        let attempt = claimed.attempt();
        let index = {
            let mut runs = self.runs();
            runs.push(Run {
                event_id: event_id.clone(),
                worker_id: claimed.worker_id.clone(),
                attempt,
                lease_until: claimed.lease_until,
                start: Utc::now(),
                end: None,
                outcome: Outcome::Running,
                state_at_success: None,
            });
            runs.len().saturating_sub(1)
        };
        let guard = Guard {
            recorder: self.clone(),
            index,
        };
        match self.act(&event_id, attempt) {
            Act::Fail(after) => {
                tokio::time::sleep(after).await;
                self.finish(index, Outcome::Failed, None);
                Err(HandlerError::new(Chosen))
            }
            Act::Panic => {
                self.finish(index, Outcome::Panicked, None);
                drop(guard);
                // Unwinds as a panic does, without the panic hook's report
                // (and backtrace) on stderr for each one.
                std::panic::resume_unwind(Box::new("a panic chosen by the worker fault check"));
            }
            Act::Overrun(after) | Act::Succeed(after) => {
                tokio::time::sleep(after).await;
                // What the inbox shows just before the success is
                // recorded: the settle comes after it.
                let state = (self.shared.peek)(event_id).await;
                self.finish(index, Outcome::Succeeded, state);
                drop(guard);
                Ok(())
            }
        }
    }
}

/// What one [`check_worker_invariants`] run saw, every rule kept.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Report {
    /// The plan's name.
    pub name: String,
    /// The seed.
    pub seed: u64,
    /// Events stored.
    pub events: usize,
    /// Handler runs.
    pub runs: usize,
    /// Runs that succeeded.
    pub succeeded: usize,
    /// Runs that failed (errors and panics).
    pub failed: usize,
    /// Runs the worker cancelled at their lease.
    pub cancelled: usize,
    /// Runs dropped with their aborted worker task.
    pub aborted: usize,
    /// Runs whose attempt was never settled (dropped with their aborted
    /// worker, or their handler succeeded but the settle failed until the
    /// lease ended): each was followed by another claim of the event.
    pub lost_leases: usize,
    /// Worker tasks aborted in the middle of a handler.
    pub aborted_workers: usize,
    /// Pairs of runs of one event that overlapped in time, the later one
    /// started after the earlier one's lease had ended.
    pub overlaps_after_lease: usize,
    /// The longest a run went on past its claim's lease end.
    pub longest_past_lease: Duration,
    /// Events `done` at the end.
    pub done: u64,
    /// Events `dead` at the end.
    pub dead: u64,
    /// How long the drain took.
    pub elapsed: Duration,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "worker faults `{}` (seed {}): {} events, {} runs ({} succeeded, {} failed, {} \
             cancelled at the lease, {} aborted), {} lost leases claimed again, {} workers aborted mid-handler, {} overlaps \
             after a lease ended, longest past a lease {} ms; {} done, {} dead, in {:.1} s",
            self.name,
            self.seed,
            self.events,
            self.runs,
            self.succeeded,
            self.failed,
            self.cancelled,
            self.aborted,
            self.lost_leases,
            self.aborted_workers,
            self.overlaps_after_lease,
            self.longest_past_lease.as_millis(),
            self.done,
            self.dead,
            self.elapsed.as_secs_f64()
        )
    }
}

/// A running worker task.
struct Running {
    id: String,
    task: JoinHandle<()>,
}

/// Starts workers, each configured, all stopped by one signal.
struct Crew<I, C> {
    inbox: I,
    recorder: Recorder,
    configure: C,
    name: String,
    lease: Duration,
    max_attempts: u32,
    stopped: tokio::sync::watch::Receiver<bool>,
    started: usize,
}

impl<I, C> Crew<I, C>
where
    I: Inbox + DeadLetters + Clone + Send + Sync + 'static,
    C: Fn(Worker<I, Recorder>) -> Worker<I, Recorder>,
{
    fn spawn(&mut self) -> Running {
        self.started = self.started.saturating_add(1);
        let id = format!("{}-worker-{}", self.name, self.started);
        let worker = (self.configure)(
            Worker::new(self.inbox.clone(), self.recorder.clone())
                .worker_id(id.clone())
                .lease(self.lease)
                .poll_interval(Duration::from_millis(50))
                .retry_delay(Duration::from_millis(50))
                .max_attempts(self.max_attempts),
        );
        let mut stopped = self.stopped.clone();
        let task = tokio::spawn(worker.run_until_within(
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            },
            Duration::from_secs(5),
        ));
        Running { id, task }
    }
}

/// Panics with the rule's name, what broke and how to repeat it.
fn fail(plan: &Plan, rule: &str, detail: &dyn fmt::Display) -> ! {
    panic!(
        "worker invariant `{rule}` violated in `{}` (seed {}; run again with {SEED_ENV}={}): \
         {detail}",
        plan.name, plan.seed, plan.seed
    )
}

/// Stores `plan`'s events; returns their ids.
async fn store_events<I: Inbox>(inbox: &I, plan: &Plan) -> Vec<String> {
    let ids: Vec<String> = (1..=plan.events)
        .map(|n| format!("{}-{n}", plan.name))
        .collect();
    let received = Utc::now();
    for (n, id) in ids.iter().enumerate() {
        let body = format!(
            r#"{{"type":"webhook_event","id":"{id}","trigger":"FILE.UPLOADED","webhook":{{"id":"w-{}"}}}}"#,
            n % 4
        );
        // Received a millisecond apart, in order.
        let at = received
            .checked_add_signed(TimeDelta::milliseconds(i64::try_from(n).unwrap_or(0)))
            .unwrap_or(received);
        let record = NewRecord::parse(body, Some("d-1"), at).expect("a record");
        inbox
            .store(record)
            .await
            .unwrap_or_else(|e| panic!("cannot store {id} before the check: {e}"));
    }
    ids
}

/// A recorder whose success peeks at `inbox`.
fn recorder<I: Inbox + Clone + Send + Sync + 'static>(inbox: &I, plan: &Plan) -> Recorder {
    let inbox = inbox.clone();
    let peek: Peek = Arc::new(move |id: String| {
        let inbox = inbox.clone();
        Box::pin(async move {
            match tokio::time::timeout(Duration::from_millis(300), inbox.get(&id)).await {
                Ok(Ok(Some(stored))) => Some(stored.entry.state),
                _ => None,
            }
        })
    });
    Recorder {
        shared: Arc::new(Shared {
            seed: plan.seed,
            lease: plan.lease,
            runs: Mutex::new(Vec::new()),
            aborting: Mutex::new(HashSet::new()),
            peek,
        }),
    }
}

/// Stores `plan`'s events in `inbox`, drains them with `plan.workers`
/// workers (each `configure`d after the check's own settings: the lease,
/// a 50 ms poll interval and retry delay, `max_attempts`) while aborting
/// worker tasks mid-handler and running `faults` (given a seeded [`Rng`];
/// it must end, and leave the inbox usable), then checks the rules in the
/// [module docs](self) and returns what it saw.
///
/// Run it on a multi-thread tokio runtime.
///
/// # Panics
///
/// With the rule's name, what broke and the seed, when a rule is broken;
/// when the events cannot be stored, or are not all `done` or `dead`
/// within the plan's deadline.
pub async fn check_worker_invariants<I, C, F, Fut>(
    inbox: I,
    plan: Plan,
    configure: C,
    faults: F,
) -> Report
where
    I: Inbox + DeadLetters + Clone + Send + Sync + 'static,
    C: Fn(Worker<I, Recorder>) -> Worker<I, Recorder> + Send + Sync + 'static,
    F: FnOnce(Rng) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut rng = Rng::new(plan.seed);
    let ids = store_events(&inbox, &plan).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut crew = Crew {
        recorder: recorder(&inbox, &plan),
        inbox,
        configure,
        name: plan.name.clone(),
        lease: plan.lease,
        max_attempts: plan.max_attempts,
        stopped,
        started: 0,
    };
    let began = Instant::now();
    let mut workers: Vec<Running> = (0..plan.workers).map(|_| crew.spawn()).collect();
    let faults = tokio::spawn(faults(rng.fork()));
    let mut aborted = 0_usize;
    loop {
        tokio::time::sleep(rng.between(Duration::from_millis(150), Duration::from_millis(600)))
            .await;
        if aborted < plan.aborts {
            let busy: Vec<usize> = (0..workers.len())
                .filter(|&i| crew.recorder.running(&workers[i].id))
                .collect();
            let pick = usize::try_from(rng.below(busy.len() as u64)).unwrap_or(0);
            if let Some(&victim) = busy.get(pick) {
                let victim = workers.swap_remove(victim);
                crew.recorder
                    .shared
                    .aborting
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(victim.id.clone());
                victim.task.abort();
                let _ = victim.task.await;
                aborted = aborted.saturating_add(1);
                workers.push(crew.spawn());
            }
        }
        if faults.is_finished()
            && let Ok(counts) = crew.inbox.counts().await
            && counts.pending == 0
            && counts.claimed == 0
        {
            break;
        }
        if began.elapsed() > plan.deadline {
            let counts = crew.inbox.counts().await;
            let finished = faults.is_finished();
            fail(
                &plan,
                "all-settled",
                &format!(
                    "not every event was done or dead after {:?} (faults finished: {finished}; \
                     counts: {counts:?})",
                    plan.deadline
                ),
            );
        }
    }
    let elapsed = began.elapsed();
    stop.send_replace(true);
    for worker in workers {
        if tokio::time::timeout(Duration::from_secs(10), worker.task)
            .await
            .is_err()
        {
            let detail = format!("worker {} did not stop within 10 s of shutdown", worker.id);
            fail(&plan, "all-settled", &detail);
        }
    }
    if let Err(error) = faults.await {
        fail(
            &plan,
            "all-settled",
            &format!("the faults task failed: {error}"),
        );
    }
    let runs = crew.recorder.runs().clone();
    let mut report = settled(&crew.inbox, &plan, &ids, &runs).await;
    report.aborted_workers = aborted;
    report.elapsed = elapsed;
    report
}

/// Reads the inbox once the workers stopped and checks every rule.
async fn settled<I: Inbox>(inbox: &I, plan: &Plan, ids: &[String], runs: &[Run]) -> Report {
    let listed = inbox
        .list(ListFilter::new())
        .await
        .unwrap_or_else(|e| panic!("cannot list the inbox after the drain: {e}"));
    let counts = inbox
        .counts()
        .await
        .unwrap_or_else(|e| panic!("cannot count the inbox after the drain: {e}"));
    let report = check(plan, ids, &listed, runs).unwrap_or_else(|(rule, detail)| {
        fail(plan, rule, &detail);
    });
    for state in [
        EntryState::Pending,
        EntryState::Claimed,
        EntryState::Done,
        EntryState::Dead,
    ] {
        let in_list = listed.iter().filter(|entry| entry.state == state).count() as u64;
        if counts.get(state) != in_list {
            fail(
                plan,
                "counts-match-list",
                &format!(
                    "counts() says {} {state:?}, list shows {in_list} ({counts:?})",
                    counts.get(state)
                ),
            );
        }
    }
    report
}

/// The rules over the run log and the final list: the report, or the
/// broken rule and what broke.
fn check(
    plan: &Plan,
    ids: &[String],
    listed: &[InboxEntry],
    runs: &[Run],
) -> Result<Report, (&'static str, String)> {
    let mut report = Report {
        name: plan.name.clone(),
        seed: plan.seed,
        events: ids.len(),
        runs: runs.len(),
        ..Report::default()
    };
    let mut entries: BTreeMap<&str, &InboxEntry> = BTreeMap::new();
    for entry in listed {
        if entries.insert(&entry.event_id, entry).is_some() {
            return Err(("all-settled", format!("{} is listed twice", entry.event_id)));
        }
    }
    if entries.len() != ids.len() || ids.iter().any(|id| !entries.contains_key(id.as_str())) {
        return Err((
            "all-settled",
            format!("{} events listed, {} stored", entries.len(), ids.len()),
        ));
    }
    let mut by_event: HashMap<&str, Vec<&Run>> = HashMap::new();
    for run in runs {
        by_event.entry(&run.event_id).or_default().push(run);
        match run.outcome {
            Outcome::Succeeded => report.succeeded = report.succeeded.saturating_add(1),
            Outcome::Failed | Outcome::Panicked => {
                report.failed = report.failed.saturating_add(1);
            }
            Outcome::Cancelled => report.cancelled = report.cancelled.saturating_add(1),
            Outcome::Aborted => report.aborted = report.aborted.saturating_add(1),
            Outcome::Running => {
                return Err((
                    "all-settled",
                    format!(
                        "run of {} attempt {} by {} still running after shutdown",
                        run.event_id, run.attempt, run.worker_id
                    ),
                ));
            }
        }
        if let Some(past) = run
            .end
            .and_then(|end| end.signed_duration_since(run.lease_until).to_std().ok())
        {
            report.longest_past_lease = report.longest_past_lease.max(past);
            if past > PAST_LEASE_SLACK {
                return Err((
                    "cancelled-at-lease",
                    format!(
                        "{}'s run of attempt {} by {} ended {past:?} after its lease ended ({}): \
                         the worker must cancel a handler when its claim's lease ends",
                        run.event_id, run.attempt, run.worker_id, run.lease_until
                    ),
                ));
            }
        }
    }
    for (id, entry) in &entries {
        let mut runs = by_event.remove(id).unwrap_or_default();
        runs.sort_by_key(|run| run.start);
        one_live_holder(id, entry, &runs, &mut report)?;
        final_state(plan, id, entry, &runs, &mut report)?;
        unsettled_runs(id, entry, &runs, &mut report)?;
    }
    if let Some((id, runs)) = by_event.into_iter().next() {
        return Err((
            "one-live-holder",
            format!(
                "{} runs of {id}, an event the inbox does not list",
                runs.len()
            ),
        ));
    }
    Ok(report)
}

/// `done-after-success`, `dead-per-max-attempts` and `all-settled` for one
/// event, its runs sorted by start.
fn final_state(
    plan: &Plan,
    id: &str,
    entry: &InboxEntry,
    runs: &[&Run],
    report: &mut Report,
) -> Result<(), (&'static str, String)> {
    let last = runs.iter().find(|run| run.attempt == entry.attempts);
    match entry.state {
        EntryState::Done => {
            report.done = report.done.saturating_add(1);
            let Some(last) = last.filter(|run| run.outcome == Outcome::Succeeded) else {
                return Err((
                    "done-after-success",
                    format!(
                        "{id} is done, but the handler of its last claim (attempt {}) did \
                         not succeed: {:?}",
                        entry.attempts,
                        last.map(|run| run.outcome)
                    ),
                ));
            };
            if matches!(
                last.state_at_success,
                Some(EntryState::Done | EntryState::Dead)
            ) {
                return Err((
                    "done-after-success",
                    format!(
                        "{id} was already {:?} when the handler of its last claim (attempt \
                         {}) was about to succeed",
                        last.state_at_success, entry.attempts
                    ),
                ));
            }
        }
        EntryState::Dead => {
            report.dead = report.dead.saturating_add(1);
            if entry.attempts < plan.max_attempts
                || last.is_some_and(|run| run.outcome == Outcome::Succeeded)
            {
                return Err((
                    "dead-per-max-attempts",
                    format!(
                        "{id} is dead after {} claims (max_attempts {}); its last claim's \
                         handler: {:?}",
                        entry.attempts,
                        plan.max_attempts,
                        last.map(|run| run.outcome)
                    ),
                ));
            }
        }
        state => {
            return Err(("all-settled", format!("{id} is {state:?} after the drain")));
        }
    }
    Ok(())
}

/// `lost-lease-runs-again` for one event, its runs sorted by start.
fn unsettled_runs(
    id: &str,
    entry: &InboxEntry,
    runs: &[&Run],
    report: &mut Report,
) -> Result<(), (&'static str, String)> {
    for run in runs {
        // A run that did not settle its event: every run of an earlier
        // claim than the last, and the last one when it neither
        // succeeded (done) nor failed for good (dead).
        let settled = run.attempt == entry.attempts
            && matches!(
                (entry.state, run.outcome),
                (EntryState::Done, Outcome::Succeeded)
                    | (
                        EntryState::Dead,
                        Outcome::Failed | Outcome::Panicked | Outcome::Cancelled
                    )
            );
        if settled {
            continue;
        }
        let failed_and_released = matches!(
            run.outcome,
            Outcome::Failed | Outcome::Panicked | Outcome::Cancelled
        );
        if run.attempt >= entry.attempts {
            return Err((
                "lost-lease-runs-again",
                format!(
                    "{id}'s run of attempt {} by {} ended {:?} without settling, and the \
                     event was never claimed again ({:?} after {} claims)",
                    run.attempt, run.worker_id, run.outcome, entry.state, entry.attempts
                ),
            ));
        }
        if !failed_and_released {
            report.lost_leases = report.lost_leases.saturating_add(1);
        }
    }
    Ok(())
}

/// `one-live-holder` for one event's runs, sorted by start.
fn one_live_holder(
    id: &str,
    entry: &InboxEntry,
    runs: &[&Run],
    report: &mut Report,
) -> Result<(), (&'static str, String)> {
    for (i, earlier) in runs.iter().enumerate() {
        if earlier.attempt > entry.attempts {
            return Err((
                "one-live-holder",
                format!(
                    "{id} was run as attempt {} by {}, but the inbox counted {} claims",
                    earlier.attempt, earlier.worker_id, entry.attempts
                ),
            ));
        }
        for later in &runs[i.saturating_add(1)..] {
            if later.attempt <= earlier.attempt {
                return Err((
                    "one-live-holder",
                    format!(
                        "{id}: attempt {} by {} started at {} after attempt {} by {} started at {}",
                        later.attempt,
                        later.worker_id,
                        later.start,
                        earlier.attempt,
                        earlier.worker_id,
                        earlier.start
                    ),
                ));
            }
            let earlier_end = earlier.end.unwrap_or(DateTime::<Utc>::MAX_UTC);
            if earlier_end <= later.start {
                continue;
            }
            // The inboxes keep lease ends in whole milliseconds.
            let lease_end = truncate_ms(earlier.lease_until);
            if later.start < lease_end {
                return Err((
                    "one-live-holder",
                    format!(
                        "{id}: attempt {} by {} ran {} .. {:?} under a lease until {}, and \
                         attempt {} by {} started at {}, while that lease lasted",
                        earlier.attempt,
                        earlier.worker_id,
                        earlier.start,
                        earlier.end,
                        earlier.lease_until,
                        later.attempt,
                        later.worker_id,
                        later.start
                    ),
                ));
            }
            report.overlaps_after_lease = report.overlaps_after_lease.saturating_add(1);
        }
    }
    Ok(())
}

fn truncate_ms(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_700_000_000_000_i64.saturating_add(ms)).expect("a time")
    }

    fn run(attempt: u32, start: i64, end: i64, lease: i64, outcome: Outcome) -> Run {
        Run {
            event_id: "t-1".to_owned(),
            worker_id: format!("w-{attempt}"),
            attempt,
            lease_until: at(lease),
            start: at(start),
            end: Some(at(end)),
            outcome,
            state_at_success: Some(EntryState::Claimed),
        }
    }

    fn entry(state: EntryState, attempts: u32) -> InboxEntry {
        let record = NewRecord::parse(
            &br#"{"type":"webhook_event","id":"t-1","trigger":"FILE.UPLOADED"}"#[..],
            None,
            at(0),
        )
        .expect("a record");
        InboxEntry::new(&record, 1, attempts, state)
    }

    fn rule(entry: &InboxEntry, runs: &[Run]) -> Option<&'static str> {
        check(
            &Plan::new("t").seed(1).events(1).max_attempts(3),
            &["t-1".to_owned()],
            std::slice::from_ref(entry),
            runs,
        )
        .err()
        .map(|(rule, _)| rule)
    }

    #[test]
    fn each_broken_rule_is_caught_and_named() {
        use EntryState::{Claimed, Dead, Done};
        use Outcome::{Aborted, Cancelled, Failed, Succeeded};
        let cases: Vec<(&str, InboxEntry, Vec<Run>, Option<&str>)> = vec![
            (
                "a clean success",
                entry(Done, 1),
                vec![run(1, 0, 10, 1000, Succeeded)],
                None,
            ),
            (
                "a lost lease run again after it ended",
                entry(Done, 2),
                vec![
                    run(1, 0, 1010, 1000, Cancelled),
                    run(2, 1005, 1100, 2005, Succeeded),
                ],
                None,
            ),
            (
                "done, last claim failed",
                entry(Done, 2),
                vec![run(1, 0, 10, 1000, Succeeded), run(2, 20, 30, 1020, Failed)],
                Some("done-after-success"),
            ),
            (
                "done, last claim never ran",
                entry(Done, 2),
                vec![run(1, 0, 10, 1000, Succeeded)],
                Some("done-after-success"),
            ),
            (
                "dead before max_attempts",
                entry(Dead, 2),
                vec![run(1, 0, 10, 1000, Failed), run(2, 20, 30, 1020, Failed)],
                Some("dead-per-max-attempts"),
            ),
            (
                "two live holders",
                entry(Done, 2),
                vec![
                    run(1, 0, 1000, 1000, Cancelled),
                    run(2, 500, 600, 1500, Succeeded),
                ],
                Some("one-live-holder"),
            ),
            (
                "one attempt run twice",
                entry(Done, 1),
                vec![
                    run(1, 0, 10, 1000, Succeeded),
                    run(1, 20, 30, 1000, Succeeded),
                ],
                Some("one-live-holder"),
            ),
            (
                "a lost lease never claimed again",
                entry(Claimed, 1),
                vec![run(1, 0, 1000, 1000, Cancelled)],
                Some("all-settled"),
            ),
            (
                "dead after its last run was cancelled at the lease",
                entry(Dead, 3),
                vec![
                    run(1, 0, 10, 1000, Failed),
                    run(2, 20, 30, 1020, Failed),
                    run(3, 40, 1040, 1040, Cancelled),
                ],
                None,
            ),
            (
                "dead with its last run aborted and never claimed again",
                entry(Dead, 3),
                vec![
                    run(1, 0, 10, 1000, Failed),
                    run(2, 20, 30, 1020, Failed),
                    run(3, 40, 500, 1040, Aborted),
                ],
                Some("lost-lease-runs-again"),
            ),
            (
                "a run 500 ms past its lease",
                entry(Done, 1),
                vec![run(1, 0, 1500, 1000, Succeeded)],
                Some("cancelled-at-lease"),
            ),
            (
                "a success whose settle was lost, claimed again",
                entry(Done, 2),
                vec![
                    run(1, 0, 10, 1000, Succeeded),
                    run(2, 1001, 1010, 2001, Succeeded),
                ],
                None,
            ),
        ];
        for (name, entry, runs, expected) in cases {
            assert_eq!(rule(&entry, &runs), expected, "{name}");
        }
    }

    #[test]
    fn a_done_event_already_settled_before_its_handler_ended_is_caught() {
        let mut early = run(1, 0, 10, 1000, Outcome::Succeeded);
        early.state_at_success = Some(EntryState::Done);
        assert_eq!(
            rule(&entry(EntryState::Done, 1), &[early]),
            Some("done-after-success")
        );
    }

    #[test]
    fn the_handler_choices_repeat_for_a_seed() {
        let recorder = |seed| Recorder {
            shared: Arc::new(Shared {
                seed,
                lease: Duration::from_secs(1),
                runs: Mutex::new(Vec::new()),
                aborting: Mutex::new(HashSet::new()),
                peek: Arc::new(|_| Box::pin(async { None })),
            }),
        };
        let (a, b) = (recorder(42), recorder(42));
        let choices = |r: &Recorder| {
            (1..200)
                .map(|n| format!("{:?}", r.act(&format!("e-{n}"), 1)))
                .collect::<Vec<_>>()
        };
        assert_eq!(choices(&a), choices(&b));
        let all = choices(&a).join(" ");
        for kind in ["Fail", "Panic", "Overrun", "Succeed"] {
            assert!(all.contains(kind), "no {kind} in 199 choices");
        }
    }
}
