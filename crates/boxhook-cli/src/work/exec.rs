//! `--exec`: one `sh -c CMD` per event.

use std::process::Stdio;
use std::time::Duration;

use boxhook::inbox::Claimed;
use boxhook::HandlerError;
use boxhook_core::Printable;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::Command;

/// The command and how long one run may take.
pub(super) struct Exec {
    command: String,
    timeout: Duration,
}

impl Exec {
    pub(super) fn new(command: String, timeout: Duration) -> Self {
        Self { command, timeout }
    }

    /// Runs the command on `claimed`: Ok when it exits 0 within the
    /// timeout. Killed when it runs past it, or when the worker cancels
    /// this future (the lease or the grace period ended).
    pub(super) async fn run(&self, claimed: &Claimed) -> Result<(), HandlerError> {
        let entry = &claimed.entry;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&self.command)
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
        let group = child.id().map(|pid| KillGroup { pid, done: false });
        let stdin = child.stdin.take();
        let stderr = child.stderr.take();
        let body = claimed.body.clone();
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
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    crate::serve::notice(
                        "INFO",
                        &format!(
                            "event {} attempt {attempt} stderr: {}",
                            Printable(&event_id),
                            Printable(&line)
                        ),
                    );
                }
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
            group.done = true;
        }
        match finished {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(HandlerError::new(format!("the command {status}"))),
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

/// Kills a command's process group when dropped, unless it finished: on a
/// timeout, and when the worker drops the run (lease or grace period over).
struct KillGroup {
    pid: u32,
    done: bool,
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
