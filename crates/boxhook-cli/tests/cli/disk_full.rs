//! `boxhook serve` with its inbox on a full disk: a 2 MiB tmpfs and 60
//! distinct signed events of ~30 KB. Every delivery answered 2xx is in the
//! inbox after serve stops (the file reopened), byte for byte; every other
//! delivery got a 5xx, so Box retries it; and once space is freed, a
//! restarted serve stores those retries.

#![cfg(unix)] // Reason: tmpfs mounts, permission bits, inodes and `kill`.
#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use crate::common;
use crate::small_fs;

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use boxhook::inbox::{Inbox as _, ListFilter};
use boxhook_sqlite::SqliteInbox;
use boxhook_testkit::{sample_keys, Delivery, RetrySchedule, Simulator};
use common::wait_for;
use small_fs::on_small_fs;

const LIMIT: Duration = Duration::from_secs(30);

/// A distinct `webhook_event` of about `size` bytes.
fn big_event(n: u64, size: usize) -> String {
    let mut state = n.wrapping_add(1);
    let name: String = (0..size)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            char::from(b'a' + u8::try_from((state >> 59) % 26).unwrap())
        })
        .collect();
    format!(
        r#"{{"type":"webhook_event","id":"e-{n}","trigger":"FILE.UPLOADED","webhook":{{"id":"4133","type":"webhook"}},"source":{{"id":"f-{n}","type":"file","name":"{name}"}}}}"#
    )
}

/// `boxhook serve` with the keys in its environment, its stderr collected.
struct Serve {
    child: Child,
    url: String,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Serve {
    fn start(inbox: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_boxhook"))
            .env("BOX_PRIMARY_KEY", boxhook_testkit::SAMPLE_PRIMARY_KEY)
            .env("BOX_SECONDARY_KEY", boxhook_testkit::SAMPLE_SECONDARY_KEY)
            .args(["serve", "--listen", "127.0.0.1:0", "--inbox"])
            .arg(inbox)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn boxhook serve");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0_u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(LIMIT).expect("serve printed its address");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Self { child, url, stderr }
    }

    /// SIGTERM, then the exit status and everything written on stderr.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = wait_for(&mut self.child, LIMIT).expect("serve stopped after SIGTERM");
        // The reader thread sees EOF once the process is gone.
        std::thread::sleep(Duration::from_millis(100));
        let stderr = String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned();
        (status, stderr)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_on_a_full_disk_answers_5xx_and_loses_no_acknowledged_event() {
    on_small_fs(
        "serve_on_a_full_disk_answers_5xx_and_loses_no_acknowledged_event",
        "2m",
        fill,
    );
}

#[allow(
    clippy::too_many_lines,
    reason = "one scenario, read top to bottom: fill, stop, reopen, free, retry"
)]
fn fill(dir: &Path) {
    let inbox = dir.join("inbox.sqlite");
    // Room to free later, for Box's retries.
    std::fs::write(dir.join("ballast"), vec![0_u8; 384 * 1024]).expect("write ballast");
    let serve = Serve::start(&inbox);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bodies: Vec<String> = (0..60).map(|n| big_event(n, 30 * 1024)).collect();
    let statuses: Vec<u16> = runtime.block_on(async {
        let sim = Simulator::builder(serve.url.parse().unwrap(), sample_keys())
            .schedule(RetrySchedule::none())
            .timeout(Duration::from_secs(10))
            .build();
        let mut statuses = Vec::new();
        for body in &bodies {
            let report = sim.send(Delivery::new(body.clone())).await;
            let status = report
                .last()
                .and_then(boxhook_testkit::Attempt::status)
                .map_or(0, |s| s.as_u16());
            statuses.push(status);
        }
        statuses
    });
    let (exit, stderr) = serve.stop();
    assert_eq!(exit.code(), Some(0), "{stderr}");

    let acknowledged: Vec<usize> = (0..bodies.len())
        .filter(|&n| (200..300).contains(&statuses[n]))
        .collect();
    let refused: Vec<usize> = (0..bodies.len())
        .filter(|&n| !(200..300).contains(&statuses[n]))
        .collect();
    eprintln!(
        "{} of {} deliveries acknowledged before the disk filled up",
        acknowledged.len(),
        bodies.len()
    );
    assert!(acknowledged.len() >= 10, "{statuses:?}\n{stderr}");
    assert!(refused.len() >= 5, "2 MiB never filled up: {statuses:?}");
    assert!(
        stderr.contains("database or disk is full"),
        "no reason logged:\n{stderr}"
    );
    for &n in &refused {
        assert!(
            (500..600).contains(&statuses[n]),
            "event e-{n} got {}, not a 5xx: {statuses:?}\n{stderr}",
            statuses[n]
        );
    }

    // Reopened after serve stopped: every acknowledged event, byte for byte.
    let reader = SqliteInbox::open_read_only(&inbox).expect("reopen the inbox");
    runtime.block_on(async {
        for &n in &acknowledged {
            let stored = reader
                .get(&format!("e-{n}"))
                .await
                .expect("get")
                .unwrap_or_else(|| panic!("e-{n} was answered 2xx but is not in the inbox"));
            assert_eq!(stored.body, bodies[n].as_bytes(), "e-{n}");
        }
        let listed = reader.list(ListFilter::new()).await.expect("list");
        assert_eq!(listed.len(), acknowledged.len(), "only acknowledged events");
    });
    drop(reader);

    // And the CLI reads the same.
    let listed = common::inbox_list(&inbox);
    assert_eq!(listed.len(), acknowledged.len());

    // Space freed (384 KiB), serve restarted: Box's retries of the first
    // five refused deliveries (150 KiB) are stored.
    let retrying = &refused[..5];
    std::fs::remove_file(dir.join("ballast")).expect("free space");
    let serve = Serve::start(&inbox);
    let retried: Vec<u16> = runtime.block_on(async {
        let sim = Simulator::builder(serve.url.parse().unwrap(), sample_keys())
            .schedule(RetrySchedule::none())
            .timeout(Duration::from_secs(10))
            .build();
        let mut statuses = Vec::new();
        for &n in retrying {
            let report = sim.send(Delivery::new(bodies[n].clone())).await;
            statuses.push(
                report
                    .last()
                    .and_then(boxhook_testkit::Attempt::status)
                    .map_or(0, |s| s.as_u16()),
            );
        }
        statuses
    });
    let (exit, stderr) = serve.stop();
    assert_eq!(exit.code(), Some(0), "{stderr}");
    assert_eq!(retried, vec![200; retrying.len()], "{stderr}");
    let listed = common::inbox_list(&inbox);
    let mut ids: Vec<&str> = listed
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut want: Vec<String> = acknowledged
        .iter()
        .chain(retrying)
        .map(|n| format!("e-{n}"))
        .collect();
    want.sort_unstable();
    assert_eq!(ids, want);
}
