//! `--pipe`: one long-lived handler process per worker slot. Each event
//! goes to its stdin as one JSON line; the process answers one line on its
//! stdout: `ok`, `retry [seconds]` or `dead [reason]`. One event is in
//! flight per process at a time.

use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use boxhook::inbox::{Claimed, RecordKind};
use boxhook::HandlerError;
use boxhook_core::Printable;
use bytes::Bytes;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::exec::{exited, Environment, KillGroup};

/// The longest answer line read, newline included: a longer one is a
/// protocol error (its process is restarted, since what it writes next no
/// longer lines up with the events).
const MAX_ANSWER: u64 = 64 * 1024;
/// The longest `retry SECONDS` honoured: a week, as `--max-backoff`.
const MAX_RETRY_SECONDS: u64 = 604_800;
/// The wait before starting a process again after one that ended before
/// answering anything, doubled for each further one in a row.
const FIRST_RESTART_DELAY: Duration = Duration::from_millis(100);
/// The longest such wait.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(5);
/// How long a process may take to exit once its stdin is closed at stop.
const EXIT_WAIT: Duration = Duration::from_secs(2);

/// The command and what each of its processes starts with.
pub(super) struct Pipe {
    command: String,
    timeout: Duration,
    env: Environment,
}

impl Pipe {
    pub(super) fn new(command: String, timeout: Duration, env: Environment) -> Self {
        Self {
            command,
            timeout,
            env,
        }
    }
}

/// One worker slot's handler process: started on the first event, kept
/// across events, started again after it ended, hung or lost the protocol.
pub(super) struct Slot {
    pipe: Arc<Pipe>,
    worker_id: String,
    process: tokio::sync::Mutex<Option<Process>>,
    /// Processes in a row that ended before answering any event.
    failed_starts: AtomicU32,
}

/// A running handler process.
struct Process {
    /// Kills its process group (the shell and what it started) when
    /// dropped, unless it exited. First: fields drop in order, and the
    /// group is killed before the child is reaped (so its id cannot be
    /// reused meanwhile).
    group: KillGroup,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pid: u32,
    /// Events it answered.
    answered: u64,
}

/// What the process answered for one event.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Ok,
    Retry(Option<u64>),
    Dead(Option<String>),
}

/// How one exchange with a process ended, short of an answer line.
enum Broken {
    /// Its stdin would not take the event: it had closed it (exited)
    /// before reading it.
    Unread,
    /// Its stdout closed before a full answer line, part of one written.
    Ended,
    /// Its stdout closed with nothing written for this event.
    Silent,
    /// A line longer than [`MAX_ANSWER`].
    TooLong,
}

impl Slot {
    pub(super) fn new(pipe: Arc<Pipe>, worker_id: String) -> Self {
        Self {
            pipe,
            worker_id,
            process: tokio::sync::Mutex::new(None),
            failed_starts: AtomicU32::new(0),
        }
    }

    /// Hands one event to the process and settles on its answer: `Ok` for
    /// `ok`; an error otherwise, `retry SECONDS` as
    /// [`HandlerError::retry_in`] and `dead` as [`HandlerError::give_up`].
    pub(super) async fn run(
        &self,
        claimed: &Claimed,
        kind: RecordKind,
        body: &Bytes,
    ) -> Result<(), HandlerError> {
        let line = event_line(claimed, kind, body);
        let mut held = self.process.lock().await;
        let mut process = if let Some(mut process) = held.take() {
            if process.exited() {
                self.replace(process).await;
                self.start()?
            } else if let Some(stray) = process.stray().await {
                // More than one line for its last event: whatever it writes
                // next would answer the wrong event.
                crate::logging::notice(
                    "WARN",
                    &format!(
                        "pipe handler {} (pid {}) wrote more than one line for its last event \
                         (then {:?}); stdout is for answers only, one line per event (log to \
                         stderr): it was killed and is started again",
                        self.worker_id,
                        process.pid,
                        String::from_utf8_lossy(&stray)
                    ),
                );
                drop(process);
                self.start()?
            } else {
                process
            }
        } else {
            self.wait_before_start().await;
            self.start()?
        };
        // From here `process` is owned by this future: when the worker
        // drops it (the lease or the grace period ended), the process is
        // killed with it and the next event starts a new one.
        // One --timeout for the event, whatever happens in it (a process
        // started again below, the wait for one that ended).
        let deadline = tokio::time::Instant::now() + self.pipe.timeout;
        let mut exchange = tokio::time::timeout_at(deadline, process.exchange(&line)).await;
        if process.answered > 0 && self.ended_between_events(&mut process, &exchange).await {
            // It ended itself after answering the last event, this one
            // unread: a handler may (to start afresh). Once, to a new one.
            self.replace(process).await;
            process = self.start()?;
            exchange = tokio::time::timeout_at(deadline, process.exchange(&line)).await;
        }
        let event = Printable(&claimed.entry.event_id);
        let attempt = claimed.attempt();
        let answer = match exchange {
            Ok(Ok(answer)) => answer,
            Ok(Err(Broken::Ended | Broken::Silent | Broken::Unread)) => {
                let answered = process.answered;
                let how = process.reap().await;
                if answered == 0 {
                    self.failed_starts.fetch_add(1, Ordering::Relaxed);
                }
                return Err(HandlerError::new(format!(
                    "the --pipe handler {how} before answering; it is started again for the \
                     next event"
                )));
            }
            Ok(Err(Broken::TooLong)) => {
                return Err(HandlerError::new(format!(
                    "the --pipe handler answered a line longer than {MAX_ANSWER} bytes; it was \
                     killed and is started again for the next event"
                )));
            }
            Err(_) => {
                return Err(HandlerError::new(format!(
                    "no answer from the --pipe handler within --timeout {}s; it was killed and \
                     is started again for the next event",
                    self.pipe.timeout.as_secs()
                )));
            }
        };
        let Ok(answer) = parse(&answer) else {
            // What it writes next would not line up with the events.
            return Err(HandlerError::new(format!(
                "the --pipe handler answered {:?} for event {event} attempt {attempt}, \
                 which is not `ok`, `retry [seconds]` or `dead [reason]`; it was killed \
                 and is started again for the next event",
                String::from_utf8_lossy(&answer)
            )));
        };
        process.answered += 1;
        self.failed_starts.store(0, Ordering::Relaxed);
        *held = Some(process);
        match answer {
            Answer::Ok => Ok(()),
            Answer::Retry(None) => Err(HandlerError::new("the --pipe handler answered `retry`")),
            Answer::Retry(Some(seconds)) => Err(HandlerError::retry_in(
                Duration::from_secs(seconds),
                format!("the --pipe handler answered `retry {seconds}`"),
            )),
            Answer::Dead(reason) => {
                let said = match &reason {
                    Some(reason) => format!("dead {reason}"),
                    None => "dead".to_owned(),
                };
                Err(HandlerError::give_up(format!(
                    "the --pipe handler answered `{said}`"
                )))
            }
        }
    }

    /// After processes that ended before answering anything: 100 ms for
    /// the second in a row, doubling up to 5 s.
    async fn wait_before_start(&self) {
        let failed = self.failed_starts.load(Ordering::Relaxed);
        if failed == 0 {
            return;
        }
        let delay = FIRST_RESTART_DELAY
            .saturating_mul(1 << (failed - 1).min(16))
            .min(MAX_RESTART_DELAY);
        tokio::time::sleep(delay).await;
    }

    /// Starts `sh -c CMD` in the `--exec` environment (without the
    /// per-event variables: those are in each line), its stderr logged line
    /// by line.
    fn start(&self) -> Result<Process, HandlerError> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&self.pipe.command)
            .env_clear()
            .envs(self.pipe.env.iter())
            .env("BOXHOOK_WORKER_ID", &self.worker_id)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group, so that a restart kills what the
            // shell started too.
            .process_group(0)
            .spawn()
            .map_err(|err| {
                HandlerError::new(format!("cannot start sh -c {:?}: {err}", self.pipe.command))
            })?;
        let (Some(pid), Some(stdin), Some(stdout), Some(stderr)) = (
            child.id(),
            child.stdin.take(),
            child.stdout.take(),
            child.stderr.take(),
        ) else {
            return Err(HandlerError::new(
                "the --pipe handler started without its pipes",
            ));
        };
        let prefix = format!("pipe handler {} (pid {pid})", self.worker_id);
        tokio::spawn(async move { super::exec::log_stderr(stderr, &prefix).await });
        Ok(Process {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            group: KillGroup::new(pid),
            pid,
            answered: 0,
        })
    }

    /// Whether `exchange` failed because the process ended on its own
    /// between events: its stdin closed before it took the event, or its
    /// stdout closed with nothing written and it exited with status 0 (a
    /// crash, a signal or a non-zero exit is a failure of this event).
    async fn ended_between_events(
        &self,
        process: &mut Process,
        exchange: &Result<Result<Vec<u8>, Broken>, tokio::time::error::Elapsed>,
    ) -> bool {
        match exchange {
            Ok(Err(Broken::Unread)) => true,
            Ok(Err(Broken::Silent)) => {
                matches!(
                    tokio::time::timeout(Duration::from_secs(1), process.child.wait()).await,
                    Ok(Ok(status)) if status.success()
                )
            }
            _ => false,
        }
    }

    /// Reaps a process that ended between events, with one log line; the
    /// caller starts the next.
    async fn replace(&self, process: Process) {
        let answered = process.answered;
        let how = process.reap().await;
        crate::logging::notice(
            "INFO",
            &format!(
                "pipe handler {} {how} after answering {answered} event(s); starting it again",
                self.worker_id
            ),
        );
    }

    /// At stop: closes the process's stdin (end of input: time to exit)
    /// and waits up to 2 s for it to exit, then kills it.
    pub(super) async fn close(&self) {
        let Some(process) = self.process.lock().await.take() else {
            return;
        };
        let Process {
            mut child,
            stdin,
            mut group,
            pid,
            ..
        } = process;
        drop(stdin);
        match tokio::time::timeout(EXIT_WAIT, child.wait()).await {
            Ok(Ok(_)) => group.done(),
            _ => crate::logging::notice(
                "WARN",
                &format!(
                    "pipe handler {} (pid {pid}) did not exit within {} s of its stdin \
                     closing; killed",
                    self.worker_id,
                    EXIT_WAIT.as_secs()
                ),
            ),
        }
    }
}

impl Process {
    /// Writes `line` and reads one line back (without its newline).
    async fn exchange(&mut self, line: &[u8]) -> Result<Vec<u8>, Broken> {
        if self.stdin.write_all(line).await.is_err() || self.stdin.flush().await.is_err() {
            return Err(Broken::Unread);
        }
        let mut answer = Vec::new();
        let read = (&mut self.stdout)
            .take(MAX_ANSWER)
            .read_until(b'\n', &mut answer)
            .await;
        match read {
            Ok(_) if answer.last() == Some(&b'\n') => {
                answer.pop();
                if answer.last() == Some(&b'\r') {
                    answer.pop();
                }
                Ok(answer)
            }
            Ok(n) if n as u64 >= MAX_ANSWER => Err(Broken::TooLong),
            Ok(0) => Err(Broken::Silent),
            // End of output without a full line, or a read error.
            _ => Err(Broken::Ended),
        }
    }

    /// Output it wrote after its last answer line, if any is there now
    /// (without waiting).
    async fn stray(&mut self) -> Option<Vec<u8>> {
        let ready = tokio::time::timeout(Duration::ZERO, self.stdout.fill_buf()).await;
        match ready {
            Ok(Ok(buffered)) if !buffered.is_empty() => {
                Some(buffered[..buffered.len().min(80)].to_vec())
            }
            _ => None,
        }
    }

    /// Whether it has exited (without waiting).
    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// How the process ended, in words, once its output closed: it is
    /// waited for up to 1 s, then killed.
    async fn reap(mut self) -> String {
        match tokio::time::timeout(Duration::from_secs(1), self.child.wait()).await {
            Ok(Ok(status)) => {
                self.group.done();
                format!("(pid {}) {}", self.pid, exited(status))
            }
            _ => format!("(pid {}) closed its stdout and was killed", self.pid),
        }
    }
}

/// Reads an answer line: `ok`, `retry`, `retry SECONDS`, `dead`, `dead
/// REASON`; the word and what follows it apart by spaces or tabs, trailing
/// ones ignored. `retry SECONDS` past a week waits a week (as
/// `--max-backoff` caps a backoff).
fn parse(line: &[u8]) -> Result<Answer, ()> {
    let line = std::str::from_utf8(line).map_err(|_| ())?;
    let line = line.trim_end_matches([' ', '\t']);
    let (word, rest) = match line.split_once([' ', '\t']) {
        Some((word, rest)) => (word, Some(rest.trim_start_matches([' ', '\t']))),
        None => (line, None),
    };
    match (word, rest) {
        ("ok", None) => Ok(Answer::Ok),
        ("retry", None) => Ok(Answer::Retry(None)),
        ("retry", Some(seconds))
            if !seconds.is_empty() && seconds.bytes().all(|b| b.is_ascii_digit()) =>
        {
            // All digits: only too many of them fails to parse.
            let seconds = seconds.parse::<u64>().unwrap_or(u64::MAX);
            Ok(Answer::Retry(Some(seconds.min(MAX_RETRY_SECONDS))))
        }
        ("dead", None) => Ok(Answer::Dead(None)),
        ("dead", Some(reason)) => Ok(Answer::Dead(
            (!reason.is_empty()).then(|| reason.to_owned()),
        )),
        _ => Err(()),
    }
}

/// One event as its line on the process's stdin, newline included:
/// `{"event_id", "webhook_id", "trigger", "kind", "attempt", "delivery_id",
/// "received_at", "body"}`, where `body` is the stored body as a JSON value
/// (a V1 callback: its JSON document). Bodies are JSON (the worker marks a
/// V2 body that is not a `webhook_event` dead before any handler sees it),
/// embedded as stored, byte for byte, except that line breaks, which JSON
/// allows only between tokens, become spaces, and U+2028 and U+2029 inside
/// strings become `\u2028` and `\u2029` (the same strings); a body that is
/// somehow not JSON goes as a JSON string instead.
fn event_line(claimed: &Claimed, kind: RecordKind, body: &[u8]) -> Vec<u8> {
    let entry = &claimed.entry;
    let head = serde_json::json!({
        "event_id": entry.event_id,
        "webhook_id": entry.webhook_id,
        "trigger": entry.trigger,
        "kind": kind.as_str(),
        "attempt": claimed.attempt(),
        "delivery_id": entry.delivery_id,
        "received_at": entry
            .received_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    let mut line = serde_json::to_vec(&head).unwrap_or_default();
    // `{...}` without its closing brace, then `,"body":…}`.
    line.pop();
    line.extend_from_slice(b",\"body\":");
    if serde_json::from_slice::<&serde_json::value::RawValue>(body).is_ok() {
        push_on_one_line(&mut line, body);
    } else {
        let text = serde_json::Value::String(String::from_utf8_lossy(body).into_owned());
        push_on_one_line(&mut line, text.to_string().as_bytes());
    }
    line.extend_from_slice(b"}\n");
    line
}

/// Appends the JSON text `json` to `line` on one line: line breaks (JSON
/// allows them only between tokens) become spaces; U+2028 and U+2029, valid
/// JSON only inside strings, become `\u2028` and `\u2029` (the same
/// strings), since some line readers (Python's `str.splitlines`,
/// JavaScript before ES2019) end lines there.
fn push_on_one_line(line: &mut Vec<u8>, json: &[u8]) {
    let mut rest = json;
    while let Some((&b, tail)) = rest.split_first() {
        match (b, tail) {
            (b'\n' | b'\r', _) => line.push(b' '),
            (0xE2, [0x80, last @ (0xA8 | 0xA9), after @ ..]) => {
                line.extend_from_slice(if *last == 0xA8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                });
                rest = after;
                continue;
            }
            _ => line.push(b),
        }
        rest = tail;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_read_as_the_protocol_says() {
        let cases: [(&str, Result<Answer, ()>); 26] = [
            ("ok", Ok(Answer::Ok)),
            ("ok  \t", Ok(Answer::Ok)),
            ("retry", Ok(Answer::Retry(None))),
            ("retry 0", Ok(Answer::Retry(Some(0)))),
            ("retry 30", Ok(Answer::Retry(Some(30)))),
            ("retry  30", Ok(Answer::Retry(Some(30)))),
            ("retry 604800", Ok(Answer::Retry(Some(604_800)))),
            ("dead", Ok(Answer::Dead(None))),
            ("dead ", Ok(Answer::Dead(None))),
            (
                "dead no such file: 42",
                Ok(Answer::Dead(Some("no such file: 42".to_owned()))),
            ),
            ("", Err(())),
            ("OK", Err(())),
            (" ok", Err(())),
            ("ok then", Err(())),
            ("okay", Err(())),
            ("retry 604801", Ok(Answer::Retry(Some(604_800)))),
            (
                "retry 99999999999999999999999",
                Ok(Answer::Retry(Some(604_800))),
            ),
            ("retry\t30", Ok(Answer::Retry(Some(30)))),
            ("dead\t\tgone", Ok(Answer::Dead(Some("gone".to_owned())))),
            ("ok\tthen", Err(())),
            ("retry -1", Err(())),
            ("retry +1", Err(())),
            ("retry 1.5", Err(())),
            ("retry soon", Err(())),
            ("{\"status\":\"ok\"}", Err(())),
            ("done", Err(())),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line.as_bytes()), want, "{line:?}");
        }
        assert_eq!(parse(b"ok\xff"), Err(()));
    }

    #[test]
    fn event_lines_keep_the_body_on_one_line() {
        let body = "{\"a\":\"x\u{2028}y\u{2029}z\",\r\n\"b\":[1,\n2]}";
        let escaped = embedded(body.as_bytes());
        assert_eq!(escaped, "{\"a\":\"x\\u2028y\\u2029z\",  \"b\":[1, 2]}");
        let value: serde_json::Value = serde_json::from_str(&escaped).expect("JSON");
        assert_eq!(value["a"], "x\u{2028}y\u{2029}z");
        assert_eq!(embedded(b"not json \xe2\x80\xa8"), "\"not json \\u2028\"");
    }

    /// The `body` member of the event line for `body`.
    fn embedded(body: &[u8]) -> String {
        let claimed = boxhook::inbox::Claimed {
            entry: boxhook::inbox::InboxEntry {
                webhook_id: "w".to_owned(),
                event_id: "e-1".to_owned(),
                trigger: "FILE.UPLOADED".to_owned(),
                source_type: None,
                source_id: None,
                delivery_id: None,
                received_at: chrono::Utc::now(),
                deliveries: 1,
                attempts: 1,
                state: boxhook::inbox::EntryState::Claimed,
                kind: RecordKind::V2,
            },
            body: Bytes::copy_from_slice(body),
            worker_id: "w".to_owned(),
            lease_until: chrono::Utc::now(),
        };
        let line = String::from_utf8(event_line(&claimed, RecordKind::V2, body)).expect("UTF-8");
        assert_eq!(line.matches('\n').count(), 1);
        let value: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
        let start = line.find(",\"body\":").expect("body") + 8;
        assert_eq!(value["event_id"], "e-1");
        line[start..line.len() - 2].to_owned()
    }
}
