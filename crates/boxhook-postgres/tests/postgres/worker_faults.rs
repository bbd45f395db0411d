//! The worker's promises on a PostgreSQL inbox while the database
//! misbehaves: connections killed with `pg_terminate_backend` at random
//! moments, the server stopped as a crash would (`pg_ctl stop -m
//! immediate`) and started again twice mid-run, and meanwhile workers
//! aborted mid-handler and handlers failing, panicking and running past a
//! 1.5 s lease: nothing is `done` without a successful handler, no event
//! has two live holders, every lost lease is claimed again, and the counts
//! agree with the list. The seed is printed with the report;
//! `BOXHOOK_SEED=<seed>` repeats the handler's choices and the faults'
//! moments. Skipped with a message when PostgreSQL is not installed,
//! unless `BOXHOOK_POSTGRES=required`.

#![allow(
    clippy::doc_markdown,
    reason = "PostgreSQL is a product name, not code"
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boxhook_postgres::PgInbox;
use boxhook_testkit::postgres::Cluster;
use boxhook_testkit::worker_faults::{check_worker_invariants, Plan, Rng};

/// How long connections are killed at random.
const KILLING: Duration = Duration::from_secs(9);

/// A plain connection beside the inbox's pool, or `None` while the server
/// is down.
async fn connect(url: &str) -> Option<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .ok()?;
    tokio::spawn(connection);
    Some(client)
}

/// What the faults did.
#[derive(Default)]
struct Done {
    killed: AtomicU64,
    crashes: AtomicU64,
}

/// For [`KILLING`]: every 100–400 ms, terminates each client connection
/// but its own with a chance of 1 in 3; at two random moments, crashes the
/// server and starts it again 0.3–1 s later.
async fn faults(cluster: Arc<Cluster>, url: String, mut rng: Rng, done: Arc<Done>) {
    let began = Instant::now();
    let mut crashes = vec![
        rng.between(Duration::from_millis(1500), Duration::from_millis(3500)),
        rng.between(Duration::from_secs(5), Duration::from_secs(7)),
    ];
    let mut admin = None;
    while began.elapsed() < KILLING {
        tokio::time::sleep(rng.between(Duration::from_millis(100), Duration::from_millis(400)))
            .await;
        if crashes.first().is_some_and(|at| began.elapsed() >= *at) {
            crashes.remove(0);
            let down = rng.between(Duration::from_millis(300), Duration::from_secs(1));
            let cluster = Arc::clone(&cluster);
            tokio::task::spawn_blocking(move || {
                cluster.crash();
                std::thread::sleep(down);
                cluster.start_again();
            })
            .await
            .expect("crash and restart");
            done.crashes.fetch_add(1, Ordering::Relaxed);
            admin = None;
            continue;
        }
        if admin.is_none() {
            admin = connect(&url).await;
        }
        let Some(client) = &admin else { continue };
        let terminated = client
            .query_one(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' \
                 AND random() < 0.33",
                &[],
            )
            .await
            .map(|row| row.get::<_, i64>(0));
        match terminated {
            Ok(terminated) => {
                done.killed
                    .fetch_add(u64::try_from(terminated).unwrap_or(0), Ordering::Relaxed);
            }
            Err(_) => admin = None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_connections_and_crashes_settle_nothing_twice_and_lose_nothing() {
    under_faults("worker-faults", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batched_workers_keep_the_same_promises_under_the_same_faults() {
    under_faults("worker-faults-batched", 8).await;
}

/// Drains 300 events with six workers claiming `batch` at a time
/// (`Worker::batch`; 1: one at a time) while connections are killed and
/// the server crashes twice, and checks the worker's promises.
async fn under_faults(name: &str, batch: usize) {
    let Some(cluster) = Cluster::start_durable(name) else {
        return;
    };
    let cluster = Arc::new(cluster);
    let url = cluster.tcp_url();
    let inbox = PgInbox::connect(&url).await.expect("connect");
    let plan = Plan::new(name)
        .events(300)
        .workers(6)
        .lease(Duration::from_millis(1500))
        .max_attempts(3)
        .aborts(6);
    let done = Arc::new(Done::default());
    let report = check_worker_invariants(inbox, plan, move |worker| worker.batch(batch), {
        let done = Arc::clone(&done);
        |rng| faults(Arc::clone(&cluster), url.clone(), rng, done)
    })
    .await;
    let (killed, crashes) = (
        done.killed.load(Ordering::Relaxed),
        done.crashes.load(Ordering::Relaxed),
    );
    eprintln!("{report}; {killed} connections killed, {crashes} crashes");
    assert_eq!(report.done + report.dead, 300);
    assert_eq!(crashes, 2, "{report}");
    assert!(killed > 0, "no connection was killed: {report}");
}
