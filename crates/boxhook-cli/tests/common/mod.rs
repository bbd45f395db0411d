//! Helpers for running the `boxhook` binary as a process.

#![allow(dead_code, unreachable_pub)] // Reason: each test file uses a subset.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The binary, with no key in its environment.
pub fn boxhook() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_boxhook"));
    command
        .env_remove("BOX_PRIMARY_KEY")
        .env_remove("BOX_SECONDARY_KEY")
        .stdin(Stdio::null());
    command
}

/// Runs to completion, within `limit`.
pub fn run(command: &mut Command, limit: Duration) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn boxhook");
    let status = wait_for(&mut child, limit).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("boxhook did not finish within {limit:?}");
    });
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    child.stdout.take().map(|mut s| s.read_to_end(&mut stdout));
    child.stderr.take().map(|mut s| s.read_to_end(&mut stderr));
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Waits for `child` to exit, for at most `limit`.
pub fn wait_for(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// A fresh, empty directory under the system temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "boxhook-cli-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// A running `boxhook serve`.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub port: u16,
}

impl Server {
    /// Starts `serve` on a free port with the kit's sample keys, and waits
    /// for its `listening on` line.
    pub fn start(inbox: &Path, extra: &[&str]) -> Self {
        let mut child = boxhook()
            .args(["--primary-key", boxhook_testkit::SAMPLE_PRIMARY_KEY])
            .args(["--secondary-key", boxhook_testkit::SAMPLE_SECONDARY_KEY])
            .args(["serve", "--listen", "127.0.0.1:0", "--inbox"])
            .arg(inbox)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn boxhook serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("serve printed its address");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        let port = url
            .trim_start_matches("http://127.0.0.1:")
            .split('/')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port in the url");
        Self { child, url, port }
    }

    /// Sends SIGTERM (through `kill`, no unsafe code) and waits for the exit.
    pub fn terminate(mut self, limit: Duration) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let exit = wait_for(&mut self.child, limit);
        if exit.is_none() {
            let _ = self.child.kill();
        }
        exit.expect("serve stopped after SIGTERM")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `inbox list --json`, parsed.
pub fn inbox_list(inbox: &Path) -> Vec<serde_json::Value> {
    let out = run(
        boxhook()
            .args(["inbox", "list", "--json", "--inbox"])
            .arg(inbox),
        Duration::from_secs(20),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}
