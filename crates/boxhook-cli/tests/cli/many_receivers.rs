//! Many receivers and workers on one `PostgreSQL` database, as real
//! processes: three `boxhook serve --store postgres://…`, two `boxhook work
//! --exec`, and the test kit's Box-like sender delivering 5,000 events,
//! with retries to other receivers (some concurrent with the original),
//! while one receiver and one worker are killed with SIGKILL.
//!
//! The load balancer is the sender itself: each attempt picks a receiver
//! round-robin (a retry goes to a different one), as a load balancer in
//! front of the receivers would spread Box's deliveries.
//!
//! Skipped with a message when PostgreSQL is not installed, unless
//! `BOXHOOK_POSTGRES=required` (CI).

#![cfg(unix)]
#![allow(
    clippy::doc_markdown,
    reason = "PostgreSQL is a product name, not code"
)]

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boxhook::inbox::{EntryState, Inbox, ListFilter};
use boxhook_postgres::PgInbox;
use boxhook_testkit::postgres::Cluster;
use boxhook_testkit::{sample_keys, Delivery, RetrySchedule, Simulator};
use common::{boxhook, temp_dir, Server};

const EVENTS: usize = 5_000;
/// Deliveries in flight at once.
const IN_FLIGHT: usize = 48;
/// Each worker's --concurrency.
const WORKER_CONCURRENCY: usize = 6;
/// The whole run must finish within this.
const DEADLINE: Duration = Duration::from_secs(150);

fn body(n: usize) -> String {
    format!(
        r#"{{"type":"webhook_event","id":"evt-{n:05}","created_at":"2026-01-01T00:00:00-08:00","trigger":"FILE.UPLOADED","webhook":{{"id":"4133","type":"webhook"}},"source":{{"id":"{n}","type":"file","name":"r\u00e9sum\u00e9-{n}.pdf"}}}}"#
    )
}

fn start_worker(url: &str, handler: &Path) -> Child {
    boxhook()
        .args(["work", "--store", url, "--exec"])
        .arg(handler)
        .args(["--concurrency", &WORKER_CONCURRENCY.to_string()])
        .args(["--lease", "6", "--timeout", "5", "--backoff", "0"])
        .args(["--max-attempts", "50", "--poll-ms", "200"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn boxhook work")
}

/// What the sender saw for one event.
#[derive(Default, Clone)]
struct Sent {
    /// Attempts made, and how many were answered 2xx.
    attempts: usize,
    accepted: usize,
    /// Receivers the attempts went to.
    receivers: BTreeSet<usize>,
    concurrent: bool,
}

/// Delivers event `n`: round-robin receiver; every 8th event also goes to
/// the next receiver at the same moment (a retry racing the original);
/// every 8th (offset 4) is retried on another receiver after the first
/// answer (Box did not get it in time); any attempt without a 2xx is
/// retried on the next receiver, like Box's retries, up to 10 times.
async fn deliver(n: usize, simulators: &[Simulator]) -> Sent {
    let mut sent = Sent::default();
    let first = n % simulators.len();
    let record = |sent: &mut Sent, receiver: usize, ok: bool| {
        sent.attempts += 1;
        sent.accepted += usize::from(ok);
        sent.receivers.insert(receiver);
    };
    let attempt = |receiver: usize| {
        let simulator = &simulators[receiver % simulators.len()];
        async move { simulator.send(Delivery::new(body(n))).await.delivered() }
    };
    if n.is_multiple_of(8) {
        let other = (first + 1) % simulators.len();
        let (a, b) = tokio::join!(attempt(first), attempt(other));
        record(&mut sent, first, a);
        record(&mut sent, other, b);
        sent.concurrent = true;
    } else {
        let ok = attempt(first).await;
        record(&mut sent, first, ok);
        if n % 8 == 4 {
            let other = (first + 2) % simulators.len();
            let ok = attempt(other).await;
            record(&mut sent, other, ok);
        }
    }
    let mut next = first;
    while sent.accepted == 0 && sent.attempts < 10 {
        next = (next + 1) % simulators.len();
        let ok = attempt(next).await;
        record(&mut sent, next, ok);
    }
    sent
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one end-to-end scenario: start, deliver, kill, settle, then every assertion"
)]
fn three_receivers_two_workers_and_kills_store_each_event_once_and_finish_it() {
    let Some(cluster) = Cluster::start("many") else {
        return;
    };
    let started = Instant::now();
    let url = cluster.url();
    let dir = temp_dir("many");
    let log = dir.join("runs.log");
    let handler = dir.join("handle.sh");
    common::write_script(
        &handler,
        &format!(
            "echo \"start $BOXHOOK_EVENT_ID $BOXHOOK_WORKER_ID\" >> {log}\n\
             cat > /dev/null\n\
             sleep 0.01\n\
             echo \"end $BOXHOOK_EVENT_ID $BOXHOOK_WORKER_ID\" >> {log}\n",
            log = log.display()
        ),
    );

    // Three receivers starting at once on an empty database: the schema is
    // migrated once, under the advisory lock.
    let receivers: Vec<Server> = std::thread::scope(|scope| {
        let starting: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| Server::start_on(&["--store", url.as_str()], &[], &[])))
            .collect();
        starting
            .into_iter()
            .map(|h| h.join().expect("receiver started"))
            .collect()
    });
    let mut workers = vec![start_worker(&url, &handler), start_worker(&url, &handler)];

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let simulators: Arc<Vec<Simulator>> = Arc::new(
        receivers
            .iter()
            .map(|server| {
                Simulator::builder(server.url.parse().expect("uri"), sample_keys())
                    .schedule(RetrySchedule::none())
                    .timeout(Duration::from_secs(20))
                    .build()
            })
            .collect(),
    );
    let delivered = Arc::new(AtomicUsize::new(0));
    let mut receivers: Vec<Option<Server>> = receivers.into_iter().map(Some).collect();
    let mut killed_worker = None;
    let sent: Vec<Sent> = runtime.block_on(async {
        let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        let mut tasks = Vec::with_capacity(EVENTS);
        for n in 0..EVENTS {
            let permit = Arc::clone(&permits)
                .acquire_owned()
                .await
                .expect("semaphore");
            if n == EVENTS * 2 / 5 {
                // Mid-run: kill -9 one receiver (deliveries in flight to it
                // fail and are retried elsewhere) and one worker (its events
                // in progress are claimed again when their lease ends).
                if let Some(mut server) = receivers[0].take() {
                    server.child.kill().expect("kill receiver");
                    let _ = server.child.wait();
                }
                let mut worker = workers.remove(0);
                killed_worker = Some(worker.id());
                worker.kill().expect("kill worker");
                let _ = worker.wait();
            }
            let simulators = Arc::clone(&simulators);
            let delivered = Arc::clone(&delivered);
            tasks.push(tokio::spawn(async move {
                let sent = deliver(n, &simulators).await;
                delivered.fetch_add(1, Ordering::Relaxed);
                drop(permit);
                sent
            }));
        }
        let mut sent = Vec::with_capacity(EVENTS);
        for task in tasks {
            sent.push(task.await.expect("delivery task"));
        }
        sent
    });
    let killed_worker = killed_worker.expect("a worker was killed");
    let sending = started.elapsed();

    // Every event accepted by some receiver.
    let unaccepted: Vec<usize> = (0..EVENTS).filter(|n| sent[*n].accepted == 0).collect();
    assert_eq!(unaccepted, Vec::<usize>::new(), "events never answered 2xx");
    let retried = sent.iter().filter(|s| s.attempts > 1).count();
    let elsewhere = sent.iter().filter(|s| s.receivers.len() > 1).count();
    let concurrent = sent.iter().filter(|s| s.concurrent).count();
    assert!(retried * 10 >= EVENTS, "only {retried} events retried");
    assert!(
        elsewhere * 10 >= EVENTS,
        "only {elsewhere} retries on another receiver"
    );

    // Wait until every event is done.
    let inbox = runtime
        .block_on(PgInbox::connect(&url))
        .expect("connect to check");
    let entries = loop {
        let entries = runtime
            .block_on(inbox.list(ListFilter::new()))
            .expect("list");
        let done = entries
            .iter()
            .filter(|e| e.state == EntryState::Done)
            .count();
        if done == EVENTS {
            break entries;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "only {done} of {EVENTS} events done after {:?}",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let settled = started.elapsed();

    // Stored exactly once each, every 2xx counted.
    let mut by_id: BTreeMap<String, u64> = BTreeMap::new();
    for entry in &entries {
        assert!(
            by_id
                .insert(entry.event_id.clone(), entry.deliveries)
                .is_none(),
            "{} stored twice",
            entry.event_id
        );
    }
    assert_eq!(by_id.len(), EVENTS);
    for (n, sent) in sent.iter().enumerate() {
        let id = format!("evt-{n:05}");
        let deliveries = by_id.get(&id).copied().unwrap_or(0);
        assert!(
            deliveries >= u64::try_from(sent.accepted).expect("small"),
            "{id}: {} deliveries answered 2xx but {deliveries} counted",
            sent.accepted
        );
    }
    for n in (0..EVENTS).step_by(97) {
        let stored = runtime
            .block_on(inbox.get(&format!("evt-{n:05}")))
            .expect("get")
            .expect("stored");
        assert_eq!(
            stored.body,
            body(n).into_bytes(),
            "evt-{n:05}: body byte for byte"
        );
    }

    // No event ran on two workers at once; only the killed worker's events
    // ran twice.
    let text = std::fs::read_to_string(&log).expect("runs log");
    let mut running: BTreeMap<&str, &str> = BTreeMap::new();
    let mut runs: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let killed_tag = format!("-{killed_worker}-");
    for line in text.lines() {
        let mut parts = line.split(' ');
        let (Some(what), Some(event), Some(worker)) = (parts.next(), parts.next(), parts.next())
        else {
            panic!("bad log line {line:?}");
        };
        match what {
            "start" => {
                if let Some(other) = running.insert(event, worker) {
                    panic!("{event} started on {worker} while running on {other}");
                }
                runs.entry(event).or_default().push(worker);
            }
            "end" => {
                assert_eq!(running.remove(event), Some(worker), "{line}");
            }
            _ => panic!("bad log line {line:?}"),
        }
    }
    assert_eq!(runs.len(), EVENTS, "every event ran");
    let repeated: Vec<(&str, &Vec<&str>)> = runs
        .iter()
        .filter(|(_, w)| w.len() > 1)
        .map(|(e, w)| (*e, w))
        .collect();
    for (event, workers) in &repeated {
        assert!(
            workers[..workers.len() - 1]
                .iter()
                .all(|worker| worker.contains(&killed_tag)),
            "{event} ran more than once, not only because its worker was killed: {workers:?}"
        );
    }
    assert!(
        repeated.len() <= WORKER_CONCURRENCY,
        "{} events ran twice; the killed worker held at most {WORKER_CONCURRENCY}",
        repeated.len()
    );
    println!(
        "{EVENTS} events: {retried} retried, {elsewhere} on another receiver, {concurrent} with \
         concurrent deliveries; sent in {sending:?}, all done after {settled:?}; executed more \
         than once (their worker was killed while running them): {}",
        repeated.len()
    );

    for worker in &mut workers {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &worker.id().to_string()])
            .status();
        assert!(common::wait_for(worker, Duration::from_secs(20)).is_some());
    }
    for server in receivers.into_iter().flatten() {
        assert!(server.terminate(Duration::from_secs(20)).success());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
