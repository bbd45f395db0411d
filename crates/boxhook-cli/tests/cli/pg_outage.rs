//! What `boxhook serve` and `boxhook work` do while their PostgreSQL
//! database is down, and after it comes back, as real processes: a
//! receiver and a worker keep running through the outage, the receiver
//! answers 503 at once (never 2xx), `/readyz` says not ready, the worker's
//! settle of the event it was running is retried until the database is
//! back, and Box's re-sent deliveries are stored once each and processed
//! once each, without restarting anything. And a receiver or worker started
//! while the database is down exits 1 with a clear message.
//!
//! Skipped with a message when PostgreSQL is not installed, unless
//! `BOXHOOK_POSTGRES=required` (CI).

#![cfg(unix)]
#![allow(
    clippy::doc_markdown,
    reason = "PostgreSQL is a product name, not code"
)]

use crate::common;

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use boxhook::inbox::{EntryState, Inbox, ListFilter};
use boxhook_postgres::PgInbox;
use boxhook_testkit::postgres::Cluster;
use common::admin::{admin_addr, get};
use common::{boxhook, event, exchange, signed_request, temp_dir, Server};

/// How long a receiver may take to answer while the database is down: a
/// refused connection fails at once, far under Box's 30 s.
const PROMPT: Duration = Duration::from_secs(3);
/// How long after the database is back deliveries must be stored again.
const RECOVERY: Duration = Duration::from_secs(15);

/// Posts `body`, signed now, on a fresh connection: the status and how
/// long the answer took.
fn deliver(server: &Server, body: &str) -> (u16, Duration) {
    let started = Instant::now();
    let stream = server.connect();
    stream
        .set_read_timeout(Some(Duration::from_secs(40)))
        .expect("read timeout");
    let mut reader = BufReader::new(stream);
    let head = exchange(&mut reader, &signed_request(body)).expect("an answer");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, started.elapsed())
}

/// A running `boxhook work`, its stderr collected.
struct Worker {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Worker {
    fn start(url: &str, handler: &Path) -> Self {
        let mut child = boxhook()
            .args(["work", "--store", url, "--exec"])
            .arg(handler)
            .args(["--concurrency", "2", "--lease", "20", "--timeout", "10"])
            .args(["--backoff", "0", "--poll-ms", "200"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn boxhook work");
        let stderr = common::collect_lines(child.stderr.take().expect("piped stderr"));
        Self { child, stderr }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits up to `limit` for `done()`; panics with `what` otherwise.
fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The handler's log: `start ID` / `end ID` lines, one per run.
fn runs(log: &Path) -> BTreeMap<String, usize> {
    let mut runs = BTreeMap::new();
    for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
        if let Some(id) = line.strip_prefix("end ") {
            *runs.entry(id.to_owned()).or_insert(0) += 1;
        }
    }
    runs
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one scenario in order: up, down, back, then every assertion"
)]
fn serve_and_work_ride_out_a_database_restart() {
    let Some(cluster) = Cluster::start("outage") else {
        return;
    };
    let started = Instant::now();
    let url = cluster.tcp_url();
    let dir = temp_dir("pg-outage");
    let log = dir.join("runs.log");
    let gate = dir.join("gate");
    let handler = dir.join("handle.sh");
    // `held` runs until the test opens the gate: the event in progress
    // when the database goes away.
    common::write_script(
        &handler,
        &format!(
            "cat > /dev/null\n\
             echo \"start $BOXHOOK_EVENT_ID\" >> {log}\n\
             if [ \"$BOXHOOK_EVENT_ID\" = held ]; then\n\
             while [ ! -e {gate} ]; do sleep 0.05; done\n\
             fi\n\
             echo \"end $BOXHOOK_EVENT_ID\" >> {log}\n",
            log = log.display(),
            gate = gate.display()
        ),
    );

    let mut server = Server::start_on(&["--store", url.as_str()], &["--admin", "127.0.0.1:0"], &[]);
    let admin = admin_addr(&server);
    // The test server trades durability for speed, and serve says so.
    let text = server.wait_for_stderr("synchronous_commit=off", Duration::from_secs(5));
    for name in ["fsync", "synchronous_commit"] {
        assert!(
            text.contains(&format!(
                "PostgreSQL runs with {name}=off for boxhook's connections: a COMMIT can return \
                 before it is safe on disk, so an event answered 2xx can be lost if the database \
                 server crashes; set {name} = on"
            )),
            "{text}"
        );
    }
    let mut worker = Worker::start(&url, &handler);

    // Up: stored, answered 200, processed.
    for id in ["up-1", "up-2", "held"] {
        assert_eq!(deliver(&server, &event(id)).0, 200, "{id} while up");
    }
    wait_until(Duration::from_secs(20), "held runs", || {
        runs(&log).contains_key("up-2")
            && std::fs::read_to_string(&log).is_ok_and(|t| t.contains("start held"))
    });
    assert_eq!(
        get(&admin, "/readyz", None),
        (
            200,
            get(&admin, "/readyz", None).1,
            "ready: store reachable, 2 signature key(s) loaded\n".to_owned()
        )
    );

    // Down, with `held` still running: it finishes during the outage.
    cluster.stop();
    let down_at = Instant::now();
    std::fs::write(&gate, "").expect("open the gate");
    let mut slowest = Duration::ZERO;
    for id in ["down-1", "down-2", "down-3"] {
        let (status, took) = deliver(&server, &event(id));
        assert_eq!(status, 503, "{id} while the database is down");
        slowest = slowest.max(took);
    }
    assert!(slowest < PROMPT, "answered 503 in {slowest:?}");
    let (_, _, metrics) = get(&admin, "/metrics", None);
    for line in [
        r#"boxhook_deliveries_total{status="503"} 3"#,
        r#"boxhook_events_total{trigger="FILE.UPLOADED",outcome="failed"} 3"#,
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }
    // Not ready: the last store failed (and reads fail too).
    let (status, _, body) = get(&admin, "/readyz", None);
    assert_eq!(status, 503, "{body}");
    let (head, why) = body
        .split_once(" s ago: ")
        .unwrap_or_else(|| panic!("{body}"));
    assert!(
        head.starts_with("not ready: the last write to the store failed "),
        "{body}"
    );
    assert!(
        why.starts_with("inbox storage failed: no PostgreSQL connection: "),
        "{body}"
    );
    let text = server.wait_for_stderr("event=down-3", Duration::from_secs(5));
    for id in ["down-1", "down-2", "down-3"] {
        let line = text
            .lines()
            .find(|l| l.starts_with("POST / 503") && l.contains(&format!("event={id} ")))
            .unwrap_or_else(|| panic!("no 503 line for {id} in {text}"));
        assert!(
            line.starts_with("POST / 503 inbox_failed delivery="),
            "{line}"
        );
        let error = text
            .lines()
            .find(|l| {
                l.contains("cannot store the event in the inbox")
                    && l.contains(&format!("event=4133/{id} "))
            })
            .unwrap_or_else(|| panic!("no error line for {id} in {text}"));
        assert!(
            error.contains(
                "error=inbox storage failed: no PostgreSQL connection: Error occurred while \
                 creating a new object: error connecting to server: Connection refused (os error \
                 111); check that the database is up and reachable"
            ),
            "{error}"
        );
    }
    // Let the worker fail to claim and to settle for a while.
    wait_until(Duration::from_secs(10), "the worker notices", || {
        worker
            .stderr()
            .contains("inbox worker cannot reach the inbox")
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        server.child.try_wait().expect("try_wait").is_none(),
        "serve exited"
    );
    assert!(
        worker.child.try_wait().expect("try_wait").is_none(),
        "work exited"
    );
    let outage = down_at.elapsed();

    // Back: the same processes store and process again.
    cluster.start_again();
    let back_at = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (status, _) = deliver(&server, &event("down-1"));
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "never a 2xx before it is stored");
        assert!(
            back_at.elapsed() < RECOVERY,
            "still {status} after {RECOVERY:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let recovered = back_at.elapsed();
    for id in ["down-2", "down-3", "up-1"] {
        assert_eq!(deliver(&server, &event(id)).0, 200, "{id} re-sent");
    }
    assert_eq!(get(&admin, "/readyz", None).0, 200);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let inbox = runtime.block_on(PgInbox::connect(&url)).expect("connect");
    let entries = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let entries = runtime
                .block_on(inbox.list(ListFilter::new()))
                .expect("list");
            if entries.len() == 6 && entries.iter().all(|e| e.state == EntryState::Done) {
                break entries;
            }
            assert!(
                Instant::now() < deadline,
                "not all done: {:?}",
                entries
                    .iter()
                    .map(|e| (e.event_id.clone(), e.state))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let got: BTreeMap<String, (u64, u32)> = entries
        .iter()
        .map(|e| (e.event_id.clone(), (e.deliveries, e.attempts)))
        .collect();
    let want: BTreeMap<String, (u64, u32)> = [
        ("down-1", (1, 1)),
        ("down-2", (1, 1)),
        ("down-3", (1, 1)),
        ("held", (1, 1)),
        ("up-1", (2, 1)),
        ("up-2", (1, 1)),
    ]
    .into_iter()
    .map(|(id, n)| (id.to_owned(), n))
    .collect();
    assert_eq!(got, want, "(deliveries, attempts) per event");
    let ran = runs(&log);
    assert_eq!(
        ran,
        want.keys().map(|id| (id.clone(), 1)).collect(),
        "each event ran once"
    );
    // The worker said what happened, and that it is back.
    wait_until(
        Duration::from_secs(15),
        "the worker reaches the inbox again",
        || {
            worker
                .stderr()
                .contains("inbox worker reached the inbox again")
        },
    );
    wait_until(
        Duration::from_secs(15),
        "the worker's LISTEN connection is open again",
        || {
            worker
                .stderr()
                .contains("PostgreSQL LISTEN connection open again")
        },
    );
    let text = worker.stderr();
    // The lost LISTEN connection is one warning, not one a second, and its
    // return is another.
    let listen_warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains("LISTEN connection"))
        .collect();
    assert_eq!(listen_warnings.len(), 2, "{text}");
    assert!(
        listen_warnings[1].contains("PostgreSQL LISTEN connection open again"),
        "{text}"
    );
    assert!(
        text.contains("PostgreSQL runs with synchronous_commit=off for boxhook's connections"),
        "{text}"
    );
    assert!(
        text.contains(
            "cannot settle the inbox event; trying again while its lease lasts event=4133/held \
             attempt=1 error=inbox storage failed: no PostgreSQL connection: "
        ),
        "{text}"
    );
    println!(
        "outage {outage:?}: 503 within {slowest:?}; stored again {recovered:?} after the \
         database was back ({attempts} attempt(s)); all done {:?} after start",
        started.elapsed(),
    );

    let _ = std::process::Command::new("kill")
        .args(["-TERM", &worker.child.id().to_string()])
        .status();
    let status = common::wait_for(&mut worker.child, Duration::from_secs(20)).expect("work stops");
    assert!(status.success(), "{status}");
    assert!(server.terminate(Duration::from_secs(20)).success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A receiver or worker started while its database is down does not wait
/// for it: it exits 1 at once, before listening, saying what it could not
/// reach and what to check. A supervisor (systemd `Restart=on-failure`,
/// Kubernetes) restarts it; Box retries what it could not deliver meanwhile.
#[test]
fn serve_and_work_started_while_the_database_is_down_exit_1_saying_why() {
    let Some(cluster) = Cluster::start("outage-start") else {
        return;
    };
    let url = cluster.tcp_url();
    cluster.stop();
    let keys = [
        "--primary-key",
        boxhook_testkit::SAMPLE_PRIMARY_KEY,
        "--secondary-key",
        boxhook_testkit::SAMPLE_SECONDARY_KEY,
    ];
    let commands: [(&str, Vec<&str>); 2] = [
        (
            "serve",
            vec!["serve", "--listen", "127.0.0.1:0", "--store", &url],
        ),
        ("work", vec!["work", "--store", &url, "--exec", "true"]),
    ];
    for (name, args) in commands {
        let started = Instant::now();
        let out = common::run(
            boxhook().args(keys).args(&args).env_remove("RUST_LOG"),
            Duration::from_secs(30),
        );
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            out.stdout.is_empty(),
            "{name} printed {:?}",
            String::from_utf8_lossy(&out.stdout)
        );
        let want = format!(
            "boxhook: cannot open store {url}: inbox storage failed: cannot connect to {url}: "
        );
        assert!(stderr.contains(&want), "{name}: {stderr}");
        assert!(
            stderr.contains("check that the server runs, the host, port, user and password"),
            "{name}: {stderr}"
        );
        assert!(took < PROMPT, "{name} took {took:?} to give up");
        println!(
            "{name} with the database down: exit 1 after {took:?}: {}",
            stderr.trim()
        );
    }
}
