//! The receiver under test as a process, and the tracer attached to its
//! store's writer thread.
//!
//! A [`Target`] is a command: anything that takes `--inbox FILE` through
//! its builder, prints `listening on http://127.0.0.1:PORT/` as its first
//! line on stdout, stores into that SQLite inbox through `boxhook-sqlite`
//! (whose writer thread is named `boxhook-sqlite`), and stops with exit 0 on
//! SIGTERM. `boxhook serve` is one; the broken double (`double.rs`) is
//! another.

use std::ffi::OsString;
use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a request, a start or a stop may take before it counts as a
/// hang.
pub const BOUND: Duration = Duration::from_secs(10);

/// The name SQLite's writer thread carries (`boxhook-sqlite`'s `Db`).
const WRITER_THREAD: &str = "boxhook-sqlite";

/// What to run: a name for reports and the command for an inbox file.
pub struct Target {
    pub name: &'static str,
    /// The command for one inbox file (not yet spawned).
    pub command: Box<dyn Fn(&Path) -> Command + Send + Sync>,
    /// The V1 path it serves, with the secret in its query, if any.
    pub v1: Option<(&'static str, &'static str)>,
}

/// The V1 secret `serve --v1-path /v1` is given.
pub const V1_SECRET: &str = "sweep-v1-secret-0123456789";

impl Target {
    /// `boxhook serve --inbox FILE` with V1 callbacks on `/v1`.
    pub fn serve() -> Self {
        Self {
            name: "boxhook serve",
            command: Box::new(|inbox| {
                let mut command = Command::new(env!("CARGO_BIN_EXE_boxhook"));
                command
                    .env_remove("RUST_LOG")
                    .env("BOX_PRIMARY_KEY", boxhook_testkit::SAMPLE_PRIMARY_KEY)
                    .env("BOX_SECONDARY_KEY", boxhook_testkit::SAMPLE_SECONDARY_KEY)
                    .env("SWEEP_V1_SECRET", V1_SECRET)
                    .args(["serve", "--listen", "127.0.0.1:0"])
                    .args(["--v1-path", "/v1", "--v1-secret-env", "SWEEP_V1_SECRET"])
                    .arg("--inbox")
                    .arg(inbox);
                command
            }),
            v1: Some(("/v1", V1_SECRET)),
        }
    }

    /// This test binary as the broken receiver (see `double.rs`).
    pub fn broken_double() -> Self {
        Self {
            name: "broken double (2xx before COMMIT)",
            command: Box::new(|inbox| {
                let exe = std::env::current_exe().expect("the test binary's path");
                let mut command = Command::new(exe);
                command.arg(crate::double::ARG).arg("--inbox").arg(inbox);
                command
            }),
            v1: None,
        }
    }
}

/// A running receiver.
pub struct Process {
    child: Child,
    pub port: u16,
    stderr: Arc<Mutex<String>>,
}

impl Process {
    /// Starts `target` on `inbox` and waits for its `listening on` line.
    pub fn start(target: &Target, inbox: &Path) -> Result<Self, String> {
        Self::start_command((target.command)(inbox))
    }

    /// Starts `command` (a receiver's, maybe wrapped) as [`Process::start`].
    pub fn start_command(mut command: Command) -> Result<Self, String> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {command:?}: {e}"))?;
        let stderr = collect(child.stderr.take().expect("piped stderr"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            while matches!(reader.read_line(&mut line), Ok(1..)) {
                if line.starts_with("listening on ") {
                    break;
                }
                line.clear();
            }
            let _ = tx.send(line);
            // Keep draining: the receiver must never block on stdout.
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
        });
        let mut process = Self {
            child,
            port: 0,
            stderr,
        };
        let line = rx.recv_timeout(BOUND).unwrap_or_default();
        let port = line
            .trim()
            .strip_prefix("listening on http://127.0.0.1:")
            .and_then(|rest| rest.trim_end_matches('/').parse().ok());
        if let Some(port) = port {
            process.port = port;
            return Ok(process);
        }
        let _ = process.child.kill();
        let _ = process.child.wait();
        std::thread::sleep(Duration::from_millis(50));
        Err(format!(
            "no `listening on` line (got {line:?}); stderr: {}",
            process.stderr()
        ))
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The id of SQLite's writer thread, waiting up to [`BOUND`] for it.
    pub fn writer_thread(&self) -> Option<u32> {
        let deadline = Instant::now() + BOUND;
        while Instant::now() < deadline {
            if let Some(tid) = thread_named(self.pid(), WRITER_THREAD) {
                return Some(tid);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// Its exit status, waiting up to `limit`; `None` while it runs.
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the stderr reader see the end of the pipe.
                std::thread::sleep(Duration::from_millis(30));
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, then the exit status within [`BOUND`] (`None`: it hung and
    /// was killed).
    pub fn stop(mut self) -> (Option<ExitStatus>, String) {
        if let Ok(None) = self.child.try_wait() {
            signal(self.pid(), "TERM");
        }
        let status = self.wait(BOUND);
        (status, self.stderr())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `kill -SIG pid` (no unsafe code).
pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// The thread of `pid` whose name is `name`.
fn thread_named(pid: u32, name: &str) -> Option<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    tasks.flatten().find_map(|task| {
        let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
        (comm.trim_end() == name)
            .then(|| task.file_name().to_str()?.parse().ok())
            .flatten()
    })
}

/// Collects a pipe's text, whole lines at a time.
fn collect(pipe: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&text);
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        while let Ok(1..) = reader.read_until(b'\n', &mut line) {
            sink.lock()
                .expect("stderr lock")
                .push_str(&String::from_utf8_lossy(&line));
            line.clear();
        }
    });
    text
}

/// `strace` attached to one thread (the writer), tampering with its
/// system calls as `injects` say, and logging every call it makes.
pub struct Tracer {
    child: Child,
    log: PathBuf,
}

impl Tracer {
    /// Attaches to thread `tid` (only that thread: its call counters start
    /// at zero now, after start-up, and no other thread is touched), and
    /// waits until strace says it is attached.
    pub fn attach(tid: u32, injects: &[String], log: &Path) -> Result<Self, String> {
        let mut args: Vec<OsString> = vec!["-p".into(), tid.to_string().into(), "-o".into()];
        args.push(log.as_os_str().to_owned());
        for inject in injects {
            args.push("-e".into());
            args.push(format!("inject={inject}").into());
        }
        let mut child = Command::new("strace")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run strace: {e}"))?;
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut all = String::new();
            let mut line = String::new();
            let mut told = false;
            while matches!(reader.read_line(&mut line), Ok(1..)) {
                all.push_str(&line);
                if !told && line.contains("attached") {
                    let _ = tx.send(Ok(()));
                    told = true;
                }
                line.clear();
            }
            if !told {
                let _ = tx.send(Err(all));
            }
        });
        match rx.recv_timeout(BOUND) {
            Ok(Ok(())) => Ok(Self {
                child,
                log: log.to_owned(),
            }),
            Ok(Err(text)) => Err(format!("strace could not attach to {tid}: {text}")),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("strace did not attach to {tid} within {BOUND:?}"))
            }
        }
    }

    /// Detaches (the thread goes on untraced) and returns the system calls
    /// it saw, in order.
    pub fn detach(mut self) -> Vec<Call> {
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id(), "INT");
        }
        let deadline = Instant::now() + BOUND;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Call::parse_log(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One system call from strace's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Its name (`pwrite64`, `fsync`, …).
    pub name: String,
    /// Its line, for reports.
    pub line: String,
    /// Whether strace tampered with it.
    pub injected: bool,
}

impl Call {
    /// The calls of a single-thread log. A first `futex` line is the call
    /// the thread was blocked in when strace attached (its queue's wait):
    /// strace did not see it enter, so it counts for no `when=`, and it is
    /// left out.
    pub fn parse_log(log: &str) -> Vec<Self> {
        let attached_in = usize::from(log.starts_with("futex("));
        log.lines()
            .skip(attached_in)
            .filter(|line| !line.starts_with("---") && !line.starts_with("+++"))
            .filter_map(|line| {
                let name = line.split('(').next()?;
                (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
                    .then(|| Self {
                        name: name.to_owned(),
                        line: line.chars().take(160).collect(),
                        injected: line.contains("(INJECTED"),
                    })
            })
            .collect()
    }
}
