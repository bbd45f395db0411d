//! Helpers for running the `boxhook` binary as a process.

#![allow(dead_code, unreachable_pub)] // Reason: each test file uses a subset.

pub mod admin;

use std::io::{BufRead as _, BufReader, ErrorKind, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary, with no key in its environment.
pub fn boxhook() -> Command {
    // The copy beside the test binary when it runs as nobody (fs::as_unprivileged).
    let mut command = Command::new(boxhook_testkit::fs::sibling(std::path::Path::new(env!(
        "CARGO_BIN_EXE_boxhook"
    ))));
    command
        .env_remove("BOX_PRIMARY_KEY")
        .env_remove("BOX_SECONDARY_KEY")
        .env_remove("BOXHOOK_ADMIN_TOKEN")
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

/// A fresh, empty directory under the system temp dir, removed with
/// everything in it when dropped (at the end of the test that made it).
pub fn temp_dir(name: &str) -> TestDir {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "boxhook-cli-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    TestDir(dir)
}

/// A directory from [`temp_dir`]: a `Path` to use, removed when dropped.
#[derive(Debug)]
pub struct TestDir(PathBuf);

impl std::ops::Deref for TestDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TestDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for TestDir {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `boxhook serve`.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub port: u16,
    /// Everything it wrote to stderr so far.
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `serve` on a free port with the kit's sample keys, and waits
    /// for its `listening on` line.
    pub fn start(inbox: &Path, extra: &[&str]) -> Self {
        Self::start_with_env(inbox, extra, &[])
    }

    /// [`Server::start`] with `env` set (and `RUST_LOG` unset unless given).
    pub fn start_with_env(inbox: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let store = [std::ffi::OsStr::new("--inbox"), inbox.as_os_str()];
        Self::start_on(&store, extra, env)
    }

    /// Starts `serve` with `store` (e.g. `["--store", url]`) as
    /// [`Server::start_with_env`] does.
    pub fn start_on(
        store: &[impl AsRef<std::ffi::OsStr>],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut command = boxhook();
        command.env_remove("RUST_LOG");
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .args(["--primary-key", boxhook_testkit::SAMPLE_PRIMARY_KEY])
            .args(["--secondary-key", boxhook_testkit::SAMPLE_SECONDARY_KEY])
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(store)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn boxhook serve");
        let stderr = collect_lines(child.stderr.take().expect("piped stderr"));
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
            .trim_start_matches("https://127.0.0.1:")
            .split('/')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port in the url");
        Self {
            child,
            url,
            port,
            stderr,
        }
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// Waits up to `limit` for stderr to contain `needle`; returns all of it.
    pub fn wait_for_stderr(&self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let text = self.stderr();
            if text.contains(needle) || Instant::now() >= deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A new connection to the server.
    pub fn connect(&self) -> TcpStream {
        TcpStream::connect(("127.0.0.1", self.port)).expect("connect")
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

/// `inbox list --all --json`, parsed: every event, newest first.
pub fn inbox_list(inbox: &Path) -> Vec<serde_json::Value> {
    let out = run(
        boxhook()
            .args(["inbox", "list", "--all", "--json", "--inbox"])
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

/// A delivery of `body` signed with the kit's sample keys at the current
/// time, as raw HTTP/1.1 bytes for `/` (keep-alive).
pub fn signed_request(body: &str) -> Vec<u8> {
    raw_request(&boxhook_testkit::Delivery::new(body.to_owned()).sent_at(chrono::Utc::now()))
}

/// `delivery` as raw HTTP/1.1 bytes for `/` (keep-alive).
pub fn raw_request(delivery: &boxhook_testkit::Delivery) -> Vec<u8> {
    let body = delivery.body();
    let mut request = b"POST / HTTP/1.1\r\nhost: 127.0.0.1\r\n".to_vec();
    for (name, value) in &delivery.headers() {
        if name != http::header::CONTENT_LENGTH {
            request.extend_from_slice(name.as_str().as_bytes());
            request.extend_from_slice(b": ");
            request.extend_from_slice(value.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
    }
    request.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    request.extend_from_slice(&body);
    request
}

/// A `webhook_event` body with event id `id`.
pub fn event(id: &str) -> String {
    serde_json::json!({
        "type": "webhook_event",
        "id": id,
        "created_at": "2024-05-14T08:02:14-07:00",
        "trigger": "FILE.UPLOADED",
        "webhook": {"id": "4133", "type": "webhook"},
        "source": {"id": "f-1", "type": "file", "name": "a.txt"},
        "additional_info": []
    })
    .to_string()
}

/// Reads one response (head and Content-Length body) from `reader` (a
/// socket, or a TLS stream); returns its head, lowercased, or `None` if the
/// connection closed first.
pub fn read_response(reader: &mut impl std::io::BufRead) -> Option<String> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => head.push_str(&line.to_ascii_lowercase()),
        }
    }
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some(head)
}

/// Sends `request` on `stream` and reads the response head (see [`read_response`]).
pub fn exchange(reader: &mut BufReader<TcpStream>, request: &[u8]) -> Option<String> {
    reader.get_mut().write_all(request).ok()?;
    read_response(reader)
}

/// Waits up to `limit` for the server to close `stream` (end of stream or a
/// reset), reading and discarding whatever comes first; returns how long it
/// took, or `None` if it is still open.
pub fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .expect("set read timeout");
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None
            }
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
}

/// Collects what `pipe` carries, whole lines at a time: a reader never sees
/// half a log line (the pipe hands over chunks that may end mid-line, or
/// mid-character).
pub fn collect_lines(pipe: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
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

/// Writes an executable shell script (`#!/bin/sh`, then `body`) at `path`,
/// for `boxhook work --exec`.
pub fn write_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, format!("#!/bin/sh\n{body}"))
        .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// Sends `request` (raw HTTP/1.1, on a connection of its own) to the
/// server on `port`; returns the response's status, 0 when none came.
pub fn raw_status(port: u16, request: &str) -> u16 {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    if stream.write_all(request.as_bytes()).is_err() {
        return 0;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
