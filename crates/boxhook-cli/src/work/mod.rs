//! `boxhook work`: a worker process. It claims stored events from the
//! inbox and hands each to a command (`--exec`), to a long-lived process
//! (`--pipe`) or to an HTTP endpoint (`--forward`), so that any language
//! can consume Box events durably.

mod exec;
mod forward;
mod pipe;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use boxhook::inbox::{Backoff, Claimed, InboxHandler, Ran, RecordKind, Worker};
use boxhook::v1::V1Callback;
use boxhook::HandlerError;
use boxhook_core::model::WebhookEvent;
use bytes::Bytes;

use crate::keys::KeyArgs;
use crate::store::StoreArgs;
use crate::usage;

/// Arguments of `boxhook work`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("handler").required(true).args(["exec", "pipe", "forward"])))]
#[command(group(clap::ArgGroup::new("command").args(["exec", "pipe"])))]
#[command(after_help = "\
--exec runs `sh -c CMD` once per event: the stored body, byte for byte, on \
stdin; its stdout is passed through, each stderr line is logged with the \
event id. Exit 0 marks the event done; any other exit, or running past \
--timeout (the command is killed), schedules a retry after --backoff, \
doubling per attempt up to --max-backoff. After --max-attempts failed \
attempts the event is dead: see `boxhook inbox list --state dead` and \
`boxhook inbox requeue`.

The command's environment is clean: BOXHOOK_KIND (v2 or v1), \
BOXHOOK_EVENT_ID, BOXHOOK_WEBHOOK_ID, BOXHOOK_TRIGGER, BOXHOOK_ATTEMPT and \
BOXHOOK_WORKER_ID; PATH, HOME, USER, LOGNAME, TMPDIR, TZ, LANG, LANGUAGE \
and LC_* from the worker's environment, when set; and each variable named \
with --env NAME. Nothing else: not BOX_PRIMARY_KEY, BOX_SECONDARY_KEY, \
BOXHOOK_STORE, BOXHOOK_ADMIN_TOKEN nor a V1 secret, unless --env names it.

--pipe starts `sh -c CMD` once per worker slot (--concurrency) and keeps \
it: each event is one JSON line on its stdin, an object with \"attempt\", \
\"delivery_id\" (null when unknown), \"event_id\", \"kind\" (v2 or v1), \
\"received_at\", \"trigger\", \"webhook_id\" and, last, \"body\": the stored \
body as a JSON value (line breaks between its tokens turned into spaces). \
Read each line as it comes and flush each answer. The process \
answers each line with one line on its stdout: `ok` (done), `retry` (retry \
after --backoff, as a failed --exec run), `retry SECONDS` (retry after \
exactly that long, 0 to 604800), or `dead [REASON]` (dead now, not \
retried). One event is in flight per process; retries still end at \
--max-attempts. Any other line fails the event and restarts the process, \
as does its exit before answering, or no answer within --timeout (it is \
killed); a process that keeps exiting before its first answer is started \
again after 0.1 s, doubling to 5 s. One that closes its stdin or exits after \
an answer is started again for the next event, which does not fail. Its environment is --exec's without \
the per-event variables (BOXHOOK_WORKER_ID is set); each stderr line is \
logged with its worker id. On stop, its stdin is closed: exit then (it is \
killed 2 s later).

--forward POSTs each event's body to URL, signed as Box signs it (keys from \
--primary-key/--secondary-key or BOX_PRIMARY_KEY/BOX_SECONDARY_KEY, a fresh \
BOX-DELIVERY-TIMESTAMP): a 2xx marks it done. Connections are kept \
alive and reused from event to event, one per event in flight.

V1 callbacks (stored by `serve --v1-path`, kind v1) go to the same command \
or URL (and as --pipe's body) as one JSON object instead of the body: {\"type\": \"v1_callback\", \
\"id\", \"received_at\", \"trigger\", \"item_id\", \"item_name\", \
\"item_type\", \"user_id\" (null when absent), \"params\": [[name, value], \
...] (every parameter in order, the secret removed)}; --exec sets \
BOXHOOK_KIND=v1, --forward signs it as it signs an event. A stored body \
that cannot be read back (not a webhook_event, not form parameters) is \
dead at once, with one log line, not retried.

--batch N (16 unless given) claims up to N events per worker slot in one \
round trip to the store, and settles the slot's finished events together: \
one event at a time still runs in each slot. Capped at --lease / --timeout. \
--batch 1 claims and settles each event on its own.

Processing is at least once: an event whose worker dies is claimed again \
when its --lease ends. On SIGINT/SIGTERM the worker stops claiming, puts \
the claimed events not yet started back in the queue at once, lets \
events in progress finish for --grace seconds, then cancels them and puts \
them back in the queue.

--admin ADDR (off by default; a token off loopback, as for serve) serves \
/metrics (the inbox's events per state as boxhook_inbox_events{state}), \
/healthz, /readyz (200 while the store answers and its last write \
succeeded) and / (the inbox's counts and oldest pending age).

Retention, as for serve: done events pruned after --retain-done (30d), dead \
ones after --retain-dead (90d), V1 callbacks after --retain-v1 (30d), keys \
kept --retain-keys (7d); pruned in batches every 5 minutes, not with --once.

Exit status: 0 stopped by a signal, or (--once) every event processed; 1 \
(--once) an event failed, or the store failed; 2 usage error.

Examples:
  boxhook work --inbox ./boxhook-inbox.sqlite --exec ./handle.sh
  boxhook work --store postgres://boxhook@db/boxhook --concurrency 8 --exec 'python3 handle.py'
  boxhook work --inbox ./boxhook-inbox.sqlite --concurrency 4 --pipe 'python3 pipe_handler.py'
  boxhook work --store postgres://boxhook@db/boxhook --forward http://127.0.0.1:9000/box")]
pub(crate) struct Args {
    /// Run this shell command once per event.
    #[arg(long, value_name = "CMD")]
    exec: Option<String>,
    /// Keep one process per worker slot running this shell command, and
    /// hand it each event as a JSON line (see below).
    #[arg(long, value_name = "CMD")]
    pipe: Option<String>,
    /// Also pass this variable of the worker's environment on to --exec's
    /// or --pipe's command (repeat for several); it must be set. Without it
    /// the command gets only the BOXHOOK_* variables, PATH, HOME, USER,
    /// LOGNAME, TMPDIR, TZ, LANG, LANGUAGE and LC_*.
    #[arg(long = "env", value_name = "NAME", requires = "command")]
    env: Vec<String>,
    /// POST each event, signed like Box, to this http:// URL.
    #[arg(long, value_name = "URL")]
    forward: Option<String>,
    /// How many events are processed at once, 1 to 1024.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    concurrency: u32,
    /// How many events each worker slot claims at once, 1 to 1000, each
    /// claim and each group of settles one round trip to the store (1:
    /// one event per round trip). The slot runs them one after the other;
    /// at most --lease / --timeout are claimed at once, so that the last
    /// one starts within its lease even if each before it runs to
    /// --timeout.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BATCH,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    batch: u32,
    /// How long a claim lasts, in seconds, 1 to 86400: an event whose
    /// worker died is claimed again after it. Must exceed --timeout.
    #[arg(long, value_name = "S", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    lease: u64,
    /// How long one run of --exec (one --forward request, one --pipe
    /// answer) may take, in seconds, 1 to 86400 (default: 60, or less
    /// than --lease).
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    timeout: Option<u64>,
    /// After this many failed attempts an event is dead, 1 to 1000.
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    max_attempts: u32,
    /// The wait before the second attempt, in seconds (doubling after
    /// each further failure), 0 to 86400.
    #[arg(long, value_name = "S", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    backoff: u64,
    /// The longest wait between two attempts, in seconds, 0 to 604800.
    #[arg(long, value_name = "S", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(0..=604_800))]
    max_backoff: u64,
    /// Only events with this exact trigger (repeat for several).
    #[arg(long = "trigger", value_name = "T")]
    triggers: Vec<String>,
    /// Process what is ready, then exit (1 if any event failed).
    #[arg(long)]
    once: bool,
    /// After SIGINT/SIGTERM, how long events in progress may take, in
    /// seconds, 0 to 3600.
    #[arg(long, value_name = "S", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    grace: u64,
    /// How often an idle worker looks for work, in milliseconds, 10 to
    /// 60000 (PostgreSQL also wakes it at once through LISTEN/NOTIFY).
    #[arg(long, value_name = "MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(10..=60_000))]
    poll_ms: u64,
    /// How stderr's log is written: text, or json (one JSON object per
    /// line, the framework's events too).
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = crate::logging::LogFormat::Text)]
    log_format: crate::logging::LogFormat,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    admin: crate::admin::AdminArgs,
    #[command(flatten)]
    retention: crate::retention::RetentionArgs,
    #[command(flatten)]
    pub(crate) keys: crate::keys::KeyArgs,
}

/// `--batch` unless given: enough to make the store's round trips cheap
/// next to a fast handler (`--forward` to a local server, `--pipe`), few
/// enough that a slot does not sit on events other slots could take.
const DEFAULT_BATCH: u32 = 16;

/// Where events go: a command per event, a process per worker slot, or an
/// HTTP endpoint.
enum Plan {
    Exec(Arc<exec::Exec>),
    Pipe(Arc<pipe::Pipe>),
    Forward(Arc<forward::Forward>),
}

impl Plan {
    /// The handler of one worker slot: its own process with `--pipe`.
    fn slot(&self, worker_id: &str) -> Handler {
        match self {
            Self::Exec(exec) => Handler::Exec(Arc::clone(exec)),
            Self::Pipe(pipe) => Handler::Pipe(Arc::new(pipe::Slot::new(
                Arc::clone(pipe),
                worker_id.to_owned(),
            ))),
            Self::Forward(forward) => Handler::Forward(Arc::clone(forward)),
        }
    }
}

/// What processes one event: a command, a worker slot's process, or an
/// HTTP endpoint.
#[derive(Clone)]
enum Handler {
    Exec(Arc<exec::Exec>),
    Pipe(Arc<pipe::Slot>),
    Forward(Arc<forward::Forward>),
}

impl InboxHandler for Handler {
    async fn call(&self, _event: WebhookEvent, claimed: Claimed) -> Result<(), HandlerError> {
        let body = claimed.body.clone();
        self.run(&claimed, RecordKind::V2, body).await
    }

    async fn call_v1(&self, callback: V1Callback, claimed: Claimed) -> Result<(), HandlerError> {
        self.run(&claimed, RecordKind::V1, v1_document(&callback))
            .await
    }
}

impl Handler {
    /// Hands `body` over: to the command's stdin, in the process's line, or
    /// as the forwarded body.
    async fn run(
        &self,
        claimed: &Claimed,
        kind: RecordKind,
        body: Bytes,
    ) -> Result<(), HandlerError> {
        match self {
            Self::Exec(exec) => {
                let input = exec::Input {
                    kind: kind.as_str(),
                    stdin: body,
                };
                exec.run(claimed, input).await
            }
            Self::Pipe(slot) => slot.run(claimed, kind, &body).await,
            Self::Forward(forward) => forward.run(body).await,
        }
    }
}

/// A V1 callback as `work` hands it over (the command's stdin, the
/// forwarded body): one JSON object with the typed fields and every
/// parameter, in order, as `[name, value]` pairs.
fn v1_document(callback: &V1Callback) -> Bytes {
    let params: Vec<[&str; 2]> = callback.params().iter().map(|(n, v)| [n, v]).collect();
    let document = serde_json::json!({
        "type": "v1_callback",
        "id": callback.id(),
        "received_at": callback
            .received_at()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "trigger": callback.trigger().as_str(),
        "item_id": callback.item_id(),
        "item_name": callback.item_name(),
        "item_type": callback.item_type(),
        "user_id": callback.user_id(),
        "params": params,
    });
    Bytes::from(document.to_string())
}

/// The command, process or endpoint each event goes to.
fn plan(keys: &KeyArgs, args: &Args, timeout: Duration) -> anyhow::Result<Plan> {
    Ok(match (&args.exec, &args.pipe, &args.forward) {
        (Some(command), _, _) if command.trim().is_empty() => {
            return Err(usage("--exec needs a command, e.g. --exec ./handle.sh"))
        }
        (Some(command), _, _) => Plan::Exec(Arc::new(exec::Exec::new(
            command.clone(),
            timeout,
            exec::Environment::new(&args.env)?,
        ))),
        (None, Some(command), _) if command.trim().is_empty() => {
            return Err(usage(
                "--pipe needs a command, e.g. --pipe 'python3 pipe_handler.py'",
            ))
        }
        (None, Some(command), _) => Plan::Pipe(Arc::new(pipe::Pipe::new(
            command.clone(),
            timeout,
            exec::Environment::new(&args.env)?,
        ))),
        (None, None, Some(url)) => {
            Plan::Forward(Arc::new(forward::Forward::new(url, keys.ring()?, timeout)?))
        }
        (None, None, None) => return Err(usage("give --exec CMD, --pipe CMD or --forward URL")),
    })
}

/// A flag that turns true on SIGINT or SIGTERM, once the stop is logged.
fn stop_on_signal() -> tokio::sync::watch::Receiver<bool> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        crate::stop_signal().await;
        crate::logging::notice(
            "INFO",
            "stopping: no new claims; finishing events in progress",
        );
        let _ = stop.send(true);
    });
    stopped
}

/// Runs workers until a signal (or, with `--once`, until nothing is ready).
pub(crate) fn run(keys: &KeyArgs, args: &Args) -> anyhow::Result<ExitCode> {
    let lease = Duration::from_secs(args.lease);
    let timeout = Duration::from_secs(
        args.timeout
            .unwrap_or(60.min(args.lease.saturating_sub(1)).max(1)),
    );
    if timeout >= lease {
        return Err(usage(format!(
            "--timeout {}s must be shorter than --lease {}s: past its lease an event may be \
             claimed by another worker",
            timeout.as_secs(),
            lease.as_secs()
        )));
    }
    // Events claimed together run one after the other: the last must start
    // within its lease even if each before it runs to the timeout.
    let batch = u64::from(args.batch).min((args.lease / timeout.as_secs()).max(1));
    let batch = usize::try_from(batch).unwrap_or(1);
    let plan = plan(keys, args, timeout)?;
    crate::logging::init_tracing_as(args.log_format)?;
    let store = args.store.store()?;
    // Before the first event: the recorder must see every count.
    let admin = args.admin.prepare()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let inbox = store.open().await.map_err(crate::store::failure)?;
        // Pruned unless a batch run (--once); claims and settles watched.
        let prune =
            (!args.once).then(|| (args.retention.retention(), crate::store::prune_plan(&inbox)));
        let (inbox, health, prune) = crate::health::Watched::start(inbox, prune);
        if let Some(admin) = admin {
            admin.start_for_worker(inbox.clone(), health, prune).await?;
        }
        let until = if args.once {
            ", until nothing is ready"
        } else {
            ""
        };
        let workers = args.concurrency;
        let line = format!(
            "working on {} with {workers} worker(s){until}",
            store.describe()
        );
        crate::logging::notice("INFO", &line);
        let stopped = stop_on_signal();
        let tally = Tally::default();
        let host = hostname();
        let mut tasks = Vec::new();
        let mut slots = Vec::new();
        for n in 0..args.concurrency {
            let worker_id = format!("{host}-{}-{n}", std::process::id());
            let handler = plan.slot(&worker_id);
            if let Handler::Pipe(slot) = &handler {
                slots.push(Arc::clone(slot));
            }
            let worker = Worker::new(inbox.clone(), handler)
                .worker_id(worker_id)
                .lease(lease)
                .backoff(Backoff::exponential(
                    Duration::from_secs(args.backoff),
                    Duration::from_secs(args.max_backoff),
                ))
                .max_attempts(args.max_attempts)
                .triggers(args.triggers.clone())
                .batch(batch)
                .poll_interval(Duration::from_millis(args.poll_ms));
            tasks.push(tokio::spawn(work_on(
                worker,
                args.once,
                Duration::from_secs(args.grace),
                stopped.clone(),
                tally.clone(),
            )));
        }
        for task in tasks {
            task.await?;
        }
        // All at once: each may take its 2 s to exit.
        futures_util::future::join_all(slots.iter().map(|slot| slot.close())).await;
        let (done, failed) = (
            tally.done.load(Ordering::Relaxed),
            tally.failed.load(Ordering::Relaxed),
        );
        if args.once {
            println!("processed {done} event(s); {failed} attempt(s) failed");
        }
        crate::logging::notice("INFO", "stopped");
        Ok(if failed > 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    })
}

/// Events done and attempts failed, across the workers of a `--once` run.
#[derive(Clone, Default)]
struct Tally {
    done: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

/// Runs `worker` until `stopped` turns true (or, with `--once`, until
/// nothing is ready), then lets events in progress finish for `grace`.
async fn work_on<I, H>(
    worker: Worker<I, H>,
    once: bool,
    grace: Duration,
    mut stopped: tokio::sync::watch::Receiver<bool>,
    tally: Tally,
) where
    I: boxhook::inbox::Inbox,
    H: InboxHandler,
{
    let shutdown = async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    if once {
        worker
            .run_until_idle(shutdown, grace, |ran| {
                let counter = if matches!(ran, Ok(Ran::Acked)) {
                    &tally.done
                } else {
                    &tally.failed
                };
                counter.fetch_add(1, Ordering::Relaxed);
            })
            .await;
    } else {
        worker.run_until_within(shutdown, grace).await;
    }
}

/// This machine's name, for worker ids.
fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "worker".to_owned())
}
