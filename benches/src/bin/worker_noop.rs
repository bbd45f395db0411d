//! The library [`Worker`] with a no-op in-process handler on a filled
//! store, for `benches/load/work.sh`: the rate `boxhook work` cannot pass,
//! whatever its handler, since every event still costs a claim and a
//! settle in the store.
//!
//! ```text
//! worker_noop --store sqlite:inbox.sqlite --concurrency 8
//! worker_noop --store 'postgres://postgres@localhost/w?host=/tmp/pg&port=5432' --batch 64
//! ```
//!
//! Runs `--concurrency` workers until nothing is ready, then prints
//! `WORKER_RESULT events=… seconds=… per_second=…` on stdout. With
//! `--batch N` (N > 1) each worker claims up to N events per round trip
//! and settles them together ([`Worker::batch`]); 1, the default, claims
//! and settles one event per round trip.

#![allow(
    clippy::doc_markdown,
    reason = "SQLite and PostgreSQL are names, not code"
)]
#![allow(clippy::cast_precision_loss, reason = "an event count shown as a rate")]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boxhook::inbox::{BatchClaims, Claimed, DeadLetters, Ran, Worker};
use boxhook::model::WebhookEvent;
use boxhook::HandlerError;
use boxhook_postgres::{Options, PgInbox};
use boxhook_sqlite::SqliteInbox;
use clap::Parser;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Processes every ready event of a store with a handler that does nothing.
#[derive(Parser)]
struct Cli {
    /// `sqlite:PATH` or a `postgres://` URL.
    #[arg(long)]
    store: String,
    /// How many workers claim at once, as `boxhook work --concurrency`.
    #[arg(long, default_value_t = 8)]
    concurrency: u32,
    /// How many events each worker claims per round trip (1: one at a
    /// time, unbatched).
    #[arg(long, default_value_t = 1)]
    batch: usize,
}

/// Runs the workers on `inbox` until idle: (events acknowledged, seconds).
async fn drain<I: DeadLetters + BatchClaims + Clone>(
    inbox: I,
    concurrency: u32,
    batch: usize,
) -> (u64, f64) {
    let acked = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..concurrency {
        let worker = Worker::new(inbox.clone(), |_: WebhookEvent, _: Claimed| async {
            Ok::<(), HandlerError>(())
        })
        .worker_id(format!("noop-{n}"))
        .max_attempts(10)
        .batch(batch);
        let acked = Arc::clone(&acked);
        tasks.push(tokio::spawn(async move {
            worker
                .run_until_idle(std::future::pending(), Duration::ZERO, |ran| {
                    if matches!(ran, Ok(Ran::Acked)) {
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .await;
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    (
        acked.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    )
}

async fn run(cli: Cli) -> Result<()> {
    let (events, seconds) = if let Some(path) = cli.store.strip_prefix("sqlite:") {
        drain(
            Arc::new(SqliteInbox::open(path)?),
            cli.concurrency,
            cli.batch,
        )
        .await
    } else if boxhook_postgres::is_postgres_url(&cli.store) {
        let inbox = PgInbox::connect_with(&cli.store, &Options::default()).await?;
        drain(Arc::new(inbox), cli.concurrency, cli.batch).await
    } else {
        return Err(format!(
            "--store {:?}: give sqlite:PATH or a postgres:// URL",
            cli.store
        )
        .into());
    };
    println!(
        "WORKER_RESULT events={events} seconds={seconds:.3} per_second={:.0}",
        events as f64 / seconds
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("worker_noop: cannot start a runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("worker_noop: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
