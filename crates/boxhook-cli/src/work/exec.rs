//! `--exec`: one `sh -c CMD` per event, in a clean environment.

use std::ffi::OsString;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use boxhook::inbox::Claimed;
use boxhook::HandlerError;
use boxhook_core::Printable;
use bytes::Bytes;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::Command;

use crate::usage;

/// What the command gets from the worker's own environment, when set:
/// where programs are, whose home, the locale and the time zone. Nothing
/// else (no signature key, no store, no V1 secret) unless `--env` names it.
const PASSED_ON: [&str; 8] = [
    "PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "TZ", "LANG", "LANGUAGE",
];

/// The variables the worker sets for each event; `--env` cannot name them.
const EVENT_VARIABLES: [&str; 6] = [
    "BOXHOOK_KIND",
    "BOXHOOK_EVENT_ID",
    "BOXHOOK_WEBHOOK_ID",
    "BOXHOOK_TRIGGER",
    "BOXHOOK_ATTEMPT",
    "BOXHOOK_WORKER_ID",
];

/// The command, how long one run may take, and the environment every run
/// starts from.
pub(super) struct Exec {
    command: String,
    timeout: Duration,
    base_env: Environment,
}

/// What a handler's environment starts from: the variables of
/// [`PASSED_ON`] and `LC_*` taken from this process's environment, and
/// those `--env` names. `--exec` and `--pipe` both start from it.
pub(super) struct Environment(Vec<(OsString, OsString)>);

impl Environment {
    /// This process's variables of [`PASSED_ON`] and `LC_*`, and the
    /// `extra` ones (`--env`), which must be set.
    pub(super) fn new(extra: &[String]) -> anyhow::Result<Self> {
        let mut base_env: Vec<(OsString, OsString)> = std::env::vars_os()
            .filter(|(name, _)| {
                name.to_str()
                    .is_some_and(|name| PASSED_ON.contains(&name) || name.starts_with("LC_"))
            })
            .collect();
        for name in extra {
            base_env.retain(|(have, _)| have != name.as_str());
            base_env.push((name.into(), passed_on(name)?));
        }
        base_env.sort();
        Ok(Self(base_env))
    }

    /// Each variable, as `Command::envs` takes them.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&OsString, &OsString)> {
        self.0.iter().map(|(name, value)| (name, value))
    }
}

/// What one run is handed: the stdin bytes and `BOXHOOK_KIND`.
pub(super) struct Input {
    pub(super) kind: &'static str,
    pub(super) stdin: Bytes,
}

impl Exec {
    /// `command`, run in `base_env` plus the event's variables.
    pub(super) fn new(command: String, timeout: Duration, base_env: Environment) -> Self {
        Self {
            command,
            timeout,
            base_env,
        }
    }

    /// Runs the command on `claimed`: Ok when it exits 0 within the
    /// timeout. Killed when it runs past it, or when the worker cancels
    /// this future (the lease or the grace period ended).
    pub(super) async fn run(&self, claimed: &Claimed, input: Input) -> Result<(), HandlerError> {
        let entry = &claimed.entry;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .env_clear()
            .envs(self.base_env.iter())
            .env("BOXHOOK_KIND", input.kind)
            .env("BOXHOOK_EVENT_ID", &entry.event_id)
            .env("BOXHOOK_WEBHOOK_ID", &entry.webhook_id)
            .env("BOXHOOK_TRIGGER", &entry.trigger)
            .env("BOXHOOK_ATTEMPT", claimed.attempt().to_string())
            .env("BOXHOOK_WORKER_ID", &claimed.worker_id)
            .stdin(Stdio::piped())
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group, so that a timeout or a cancellation
            // kills what the shell started too, not only the shell.
            .process_group(0)
            .spawn()
            .map_err(|err| {
                HandlerError::new(format!("cannot start sh -c {:?}: {err}", self.command))
            })?;
        let group = child.id().map(KillGroup::new);
        let stdin = child.stdin.take();
        let stderr = child.stderr.take();
        let body = input.stdin;
        let event_id = entry.event_id.clone();
        let attempt = claimed.attempt();
        let feed = async move {
            if let Some(mut stdin) = stdin {
                // A command that does not read its stdin closes the pipe:
                // not an error of the event.
                let _ = stdin.write_all(&body).await;
                let _ = stdin.shutdown().await;
            }
        };
        let log = async move {
            if let Some(stderr) = stderr {
                let prefix = format!("event {} attempt {attempt}", Printable(&event_id));
                log_stderr(stderr, &prefix).await;
            }
        };
        let run = async {
            let ((), (), status) = tokio::join!(feed, log, child.wait());
            status
        };
        let finished = tokio::time::timeout(self.timeout, run).await;
        if let (Ok(Ok(_)), Some(mut group)) = (&finished, group) {
            // The shell exited; what it left running in the background is
            // the command's business.
            group.done();
        }
        match finished {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(HandlerError::new(format!("the command {}", exited(status)))),
            Ok(Err(err)) => Err(HandlerError::new(format!(
                "cannot wait for the command: {err}"
            ))),
            Err(_) => {
                // `group`, dropped here, kills the whole process group.
                Err(HandlerError::new(format!(
                    "the command ran past --timeout {}s and was killed",
                    self.timeout.as_secs()
                )))
            }
        }
    }
}

/// The value of `--env NAME`, from this process's environment.
fn passed_on(name: &str) -> anyhow::Result<OsString> {
    if name.is_empty() || name.contains('=') || name.contains('\0') {
        return Err(usage(format!(
            "--env {}: give a variable's name, e.g. --env API_TOKEN; its value comes from \
             the worker's environment (a value on the command line would show in `ps`)",
            Printable(name)
        )));
    }
    if EVENT_VARIABLES.contains(&name) {
        return Err(usage(format!(
            "--env {name}: the worker sets {name} for each event itself"
        )));
    }
    std::env::var_os(name).ok_or_else(|| {
        usage(format!(
            "--env {}: the variable is not set in the worker's environment; set it, or drop \
             --env {}",
            Printable(name),
            Printable(name)
        ))
    })
}

/// How the command ended, in words: `exited with status 3`, `was killed
/// by signal 9`.
pub(super) fn exited(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            return format!("was killed by signal {signal}");
        }
    }
    match status.code() {
        Some(code) => format!("exited with status {code}"),
        None => format!("ended: {status}"),
    }
}

/// Kills a command's process group when dropped, unless it finished: on a
/// timeout, and when the worker drops the run (lease or grace period over).
pub(super) struct KillGroup {
    pid: u32,
    done: bool,
}

impl KillGroup {
    /// The group led by `pid`, killed when this is dropped.
    pub(super) fn new(pid: u32) -> Self {
        Self { pid, done: false }
    }

    /// Its leader exited: nothing to kill.
    pub(super) fn done(&mut self) {
        self.done = true;
    }
}

impl Drop for KillGroup {
    fn drop(&mut self) {
        if !self.done {
            // `kill -KILL -- -PGID`, without unsafe code.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.pid)])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_read_as_words() {
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(exited(ExitStatus::from_raw(3 << 8)), "exited with status 3");
        assert_eq!(exited(ExitStatus::from_raw(0)), "exited with status 0");
        assert_eq!(exited(ExitStatus::from_raw(9)), "was killed by signal 9");
    }
}

/// The longest piece of a handler's stderr logged as one line; a longer
/// line (a progress bar redrawn with `\r`, a dump without newlines) is
/// logged in pieces of this size.
const MAX_STDERR_LINE: usize = 8 * 1024;

/// Logs a handler's stderr line by line (a line ends at `\n` or `\r`, or
/// after [`MAX_STDERR_LINE`] bytes), as `PREFIX stderr: LINE`, until it
/// closes: bytes that are not UTF-8 are shown as U+FFFD and do not stop the
/// reading (a handler whose stderr stopped being read would die of SIGPIPE
/// or block on its next write).
pub(super) async fn log_stderr(stderr: impl tokio::io::AsyncRead + Unpin, prefix: &str) {
    let mut stderr = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        let (used, end) = match stderr.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(buffer) => {
                let room = MAX_STDERR_LINE - line.len();
                let ends = buffer
                    .iter()
                    .take(room)
                    .position(|&b| b == b'\n' || b == b'\r');
                if let Some(at) = ends {
                    line.extend_from_slice(&buffer[..at]);
                    (at + 1, true)
                } else {
                    let used = buffer.len().min(room);
                    line.extend_from_slice(&buffer[..used]);
                    (used, line.len() == MAX_STDERR_LINE)
                }
            }
        };
        stderr.consume(used);
        if end {
            log_line(prefix, &line);
            line.clear();
        }
    }
    if !line.is_empty() {
        log_line(prefix, &line);
    }
}

fn log_line(prefix: &str, line: &[u8]) {
    if line.is_empty() {
        // `\r\n`, or a redraw: nothing to show.
        return;
    }
    crate::logging::notice(
        "INFO",
        &format!(
            "{prefix} stderr: {}",
            Printable(&String::from_utf8_lossy(line))
        ),
    );
}
