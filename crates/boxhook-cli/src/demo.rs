//! `boxhook demo`: the receiver of `serve`, in process, on a free port with a
//! temporary inbox and generated keys, and a simulated Box sending it the
//! deliveries a real receiver meets. Prints what was sent and what happened,
//! checks every answer, and doubles as a smoke test (exit 0 only if all is
//! as expected).

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use boxhook::inbox::{Inbox as _, ListFilter};
use boxhook::runtime::send::{Delivery, DeliveryIds, RetrySchedule, Simulator};
use boxhook::server::DEFAULT_BODY_BUDGET;
use boxhook::verify::DEFAULT_BODY_LIMIT;
use boxhook_core::diagnose::DiagnosisKeys;
use boxhook_core::model::Envelope;
use boxhook_core::{KeyRing, Printable};
use boxhook_store::sqlite::SqliteInbox;
use tokio::net::TcpListener;

use crate::logging::DeliveryLog;
use crate::receiver::App;
use crate::send::body_for_trigger;

/// Arguments of `boxhook demo`.
#[derive(clap::Args)]
#[command(after_help = "\
The demo generates its own keys: no key flags, no environment.

Examples:
  boxhook demo
  boxhook demo --keep")]
pub(crate) struct Args {
    /// Keep the demo's inbox file afterwards (its path is printed), to try
    /// `boxhook inbox list --inbox FILE` on it.
    #[arg(long)]
    keep: bool,
}

/// One delivery of the demo and the answer it must get.
struct Step {
    title: &'static str,
    delivery: Delivery,
    status: u16,
    outcome: &'static str,
}

/// Runs the demo; exit 0 only if every step behaved as expected.
pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let dir = std::env::temp_dir().join(format!(
        "boxhook-demo-{}-{}",
        std::process::id(),
        DeliveryIds::random().next_id()
    ));
    std::fs::create_dir_all(&dir)?;
    let inbox_path = dir.join("inbox.sqlite");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let passed = runtime.block_on(demo(&inbox_path));
    if args.keep {
        println!("inbox kept at {}", inbox_path.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(if passed? {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn demo(inbox_path: &PathBuf) -> anyhow::Result<bool> {
    // Random per run; the demo's receiver and simulated Box share them.
    let ids = DeliveryIds::random();
    let primary = format!("demo-primary-{}", ids.next_id());
    let secondary = format!("demo-secondary-{}", ids.next_id());
    let ring = KeyRing::from_strs(Some(&primary), Some(&secondary))?;
    let v1_secret = format!("demo-v1-{}", ids.next_id());

    let inbox = SqliteInbox::open(inbox_path)
        .map_err(|err| anyhow::anyhow!("cannot open inbox {}: {err}", inbox_path.display()))?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let seen: Arc<Mutex<HashMap<String, DeliveryLog>>> = Arc::default();
    let app = App::new(
        ring.clone(),
        inbox.clone(),
        "/",
        DEFAULT_BODY_LIMIT,
        DEFAULT_BODY_BUDGET,
    )
    .v1(Some(crate::demo_v1::service(&v1_secret, &inbox)?))
    .diagnose_rejections(DiagnosisKeys::new(Some(&primary), Some(&secondary))?, true)
    .observe(remember(&seen));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = app.spawn(listener, stopped);

    println!("boxhook demo");
    println!("  receiver:  http://{addr}/ (boxhook serve, in process, generated keys)");
    println!("  inbox:     {}", inbox_path.display());
    println!("  sender:    a simulated Box (boxhook-testkit), one attempt per delivery\n");

    let upload = body_for_trigger("FILE.UPLOADED")?;
    let steps = steps(&upload)?;

    let target = format!("http://{addr}/").parse()?;
    let simulator = Simulator::builder(target, ring.clone())
        .schedule(RetrySchedule::none())
        .timeout(Duration::from_secs(10))
        .build();
    let mut failures = 0;
    let mut stored_ids = BTreeSet::new();
    for (n, step) in steps.iter().enumerate() {
        match run_step(n + 1, step, &simulator, &seen).await? {
            Some(stored) => {
                stored_ids.extend(stored);
            }
            None => failures += 1,
        }
    }
    let last_v1 = || lock(&seen).get(crate::demo_v1::PATH).cloned();
    match crate::demo_v1::step(steps.len() + 1, addr, &v1_secret, last_v1).await? {
        Some(id) => drop(stored_ids.insert(id)),
        None => failures += 1,
    }
    if !crate::webhooks::demo_step(steps.len() + 2, &ring).await? {
        failures += 1;
    }

    let entries = inbox.list(ListFilter::new()).await?;
    println!("the inbox now holds:");
    print!("{}", crate::inbox::table(&entries));
    let listed: BTreeSet<String> = entries.iter().map(|e| e.event_id.clone()).collect();
    let upload_id = Envelope::parse(&upload)?.id().to_owned();
    let upload_entry = entries.iter().find(|e| e.event_id == upload_id);
    let upload_body = inbox.get(&upload_id).await?.map(|s| s.body);
    let checks = [
        (
            listed == stored_ids && entries.len() == 5,
            "exactly the 4 accepted events and the V1 callback are stored, none of the rejected ones",
        ),
        (
            upload_entry.is_some_and(|e| e.deliveries == 2),
            "the retried upload is stored once, with 2 deliveries counted",
        ),
        (
            upload_body.as_deref() == Some(&upload[..]),
            "the stored body is byte for byte what Box sent",
        ),
        (
            entries.iter().any(|e| e.trigger == "FILE.ARCHIVED"),
            "the unknown trigger is kept as its exact string",
        ),
    ];
    for (ok, what) in checks {
        println!("{} {what}", if ok { "  ok:" } else { "  FAILED:" });
        failures += usize::from(!ok);
    }

    let _ = stop.send(());
    server.await?;
    drop(inbox);
    if failures == 0 {
        println!("\ndemo passed: every delivery got the answer Box needs");
        println!("next: `boxhook serve --help`, `boxhook verify --help`");
    } else {
        println!("\ndemo FAILED: {failures} check(s) went wrong");
    }
    Ok(failures == 0)
}

/// The deliveries a real receiver meets, in order; `upload` is sent twice.
fn steps(upload: &[u8]) -> anyhow::Result<[Step; 7]> {
    Ok([
        Step {
            title: "a file upload (FILE.UPLOADED)",
            delivery: Delivery::new(upload.to_vec()),
            status: 200,
            outcome: "handled",
        },
        Step {
            title: "an upload changed in transit (one byte of the body altered after signing)",
            delivery: Delivery::new(body_for_trigger("FILE.UPLOADED")?).tampered(),
            status: 401,
            outcome: "mismatch",
        },
        Step {
            title: "an upload signed 601 s ago (a replay, or a request queued too long)",
            delivery: Delivery::new(body_for_trigger("FILE.UPLOADED")?).stale(),
            status: 401,
            outcome: "expired",
        },
        Step {
            title: "Box retrying the first upload (same event id, new delivery id and signature)",
            delivery: Delivery::new(upload.to_vec()),
            status: 200,
            outcome: "duplicate",
        },
        Step {
            title: "WEBHOOK.DELETED with reason auto_cleanup (Box removed the webhook)",
            delivery: Delivery::new(body_for_trigger("WEBHOOK.DELETED")?),
            status: 200,
            outcome: "handled",
        },
        Step {
            title: "NO_ACTIVE_SESSION (the webhook's authorization expired)",
            delivery: Delivery::new(body_for_trigger("NO_ACTIVE_SESSION")?),
            status: 200,
            outcome: "handled",
        },
        Step {
            title: "a trigger boxhook does not know (FILE.ARCHIVED)",
            delivery: Delivery::new(body_for_trigger("FILE.ARCHIVED")?),
            status: 200,
            outcome: "handled",
        },
    ])
}

/// Sends one step's delivery and prints what happened; `None` when the
/// answer was not the expected one, else the event id if it was stored.
async fn run_step(
    n: usize,
    step: &Step,
    simulator: &Simulator,
    seen: &Mutex<HashMap<String, DeliveryLog>>,
) -> anyhow::Result<Option<Option<String>>> {
    let body = step.delivery.body();
    let envelope = Envelope::parse(&body).ok();
    let (event_id, trigger) = envelope
        .as_ref()
        .map_or(("?", "?"), |e| (e.id(), e.trigger().as_str()));
    println!("{n}. {}", step.title);
    println!(
        "   sent:     {trigger}, event {event_id}, {} bytes",
        body.len()
    );

    let report = simulator.send(step.delivery.clone()).await;
    let Some(attempt) = report.last() else {
        anyhow::bail!("the simulator made no attempt");
    };
    let log = lock(seen).get(attempt.delivery_id()).cloned();
    let status = attempt.status().map(|s| s.as_u16());
    let outcome = log.as_ref().map_or("-", |l| l.outcome);
    let mut got = match attempt.result() {
        Ok(status) => format!("{status}, {outcome}"),
        Err(err) => err.to_string(),
    };
    if let Some(detail) = log.as_ref().and_then(|l| l.detail.as_deref()) {
        let _ = write!(got, " ({detail})");
    }
    println!("   delivery: {}", attempt.delivery_id());
    println!("   answer:   {got}");
    for hint in log.iter().flat_map(|l| &l.hints) {
        println!(
            "   hint:     [{}] {}",
            hint.code(),
            Printable(hint.message())
        );
    }
    let alert = envelope
        .as_ref()
        .and_then(|e| boxhook::alert::for_trigger(e.trigger()))
        .map(|alert| format!("stored and acknowledged; ALERT: {alert}"));
    if let Some(note) = alert.as_deref().or_else(|| note(trigger)) {
        println!("   note:     {note}");
    }
    if status == Some(step.status) && outcome == step.outcome {
        println!("   ok\n");
        Ok(Some((status == Some(200)).then(|| event_id.to_owned())))
    } else {
        println!("   UNEXPECTED: wanted {} {}\n", step.status, step.outcome);
        Ok(None)
    }
}

/// What an operator should know about these triggers (see "`WEBHOOK.DELETED` and
/// `NO_ACTIVE_SESSION`" in docs/PROTOCOL.md).
fn note(trigger: &str) -> Option<&'static str> {
    match trigger {
        "FILE.ARCHIVED" => {
            Some("unknown triggers are acknowledged with 200: Box retries any non-2xx")
        }
        _ => None,
    }
}

/// An observer keeping each request's log by delivery id (the V1 path's
/// last one under the path: V1 callbacks have no delivery id).
fn remember(
    seen: &Arc<Mutex<HashMap<String, DeliveryLog>>>,
) -> impl Fn(&DeliveryLog) + Send + Sync {
    let seen = Arc::clone(seen);
    move |log| {
        if let Some(id) = &log.delivery_id {
            lock(&seen).insert(id.clone(), log.clone());
        } else if log.path == crate::demo_v1::PATH {
            lock(&seen).insert(crate::demo_v1::PATH.to_owned(), log.clone());
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
