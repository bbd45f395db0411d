//! Claim latency of `MemoryStore` under contention: many tasks on a
//! multi-thread runtime each claim and complete new events, as a busy
//! receiver does, while the store grows past its maps' rehash points.
//! Prints p50/p99/p99.9/max of one `claim` call.
//!
//! ```text
//! store_contention --tasks 64 --workers 4 --events 1000000
//! ```

use std::time::{Duration, Instant};

use boxhook::idempotency::{Claim, EventKey, IdempotencyStore, MemoryStore};
use clap::Parser;

/// Claim latency of `MemoryStore` under contention.
#[derive(Parser, Debug)]
struct Cli {
    /// Concurrent tasks claiming.
    #[arg(long, default_value_t = 64)]
    tasks: usize,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Events claimed and completed in all (each new).
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// The store's cap (above `events`: nothing is evicted, so the maps grow).
    #[arg(long, default_value_t = 4_000_000)]
    store_entries: usize,
}

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.workers.max(1))
        .build()
        .expect("runtime");
    let store = std::sync::Arc::new(MemoryStore::new(
        cli.store_entries.max(1),
        Duration::from_secs(24 * 3600),
    ));
    let tasks = cli.tasks.max(1);
    let per_task = cli.events / tasks;
    let now = chrono::Utc::now();
    let lease = Duration::from_secs(30);
    let started = Instant::now();
    let mut latencies: Vec<u64> = runtime.block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|task| {
                let store = std::sync::Arc::clone(&store);
                tokio::spawn(async move {
                    let mut own = Vec::with_capacity(per_task);
                    for i in 0..per_task {
                        let key = EventKey::new(
                            "413309744",
                            format!("a3b9ce1d-2df5-4a1b-{task:04x}-{i:012x}"),
                        );
                        let start = Instant::now();
                        let claim = store.claim(&key, now, lease).await.expect("claim");
                        let took = start.elapsed();
                        assert_eq!(claim, Claim::Acquired);
                        store.complete(&key, now).await.expect("complete");
                        own.push(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
                        if i % 16 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                    own
                })
            })
            .collect();
        let mut all = Vec::new();
        for handle in handles {
            all.extend(handle.await.expect("task"));
        }
        all
    });
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let at = |q: f64| {
        // Reason: an index into a sorted, non-empty vector.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let i = ((latencies.len().saturating_sub(1)) as f64 * q) as usize;
        latencies.get(i).copied().unwrap_or(0)
    };
    println!(
        "claims={} tasks={} workers={} entries_at_end={} wall={:.2}s p50={}ns p99={}ns p99.9={}ns max={}ns",
        latencies.len(),
        tasks,
        cli.workers,
        store.len(),
        elapsed.as_secs_f64(),
        at(0.50),
        at(0.99),
        at(0.999),
        latencies.last().copied().unwrap_or(0),
    );
}
