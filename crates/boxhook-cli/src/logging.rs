//! What the CLI tells its operator: one line per request ([`DeliveryLog`]),
//! with every field that came from the network escaped, and the framework's
//! own warnings and errors through a `tracing` subscriber on stderr.

use std::fmt;
use std::io::IsTerminal as _;
use std::time::Duration;

use boxhook::v1::{V1Accepted, V1Rejection};
use boxhook::verify::Rejection;
use boxhook::{Outcome, RoutedEvent};
use boxhook_core::model::{DeletionReason, Trigger};
use boxhook_core::Printable;
use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use tracing_subscriber::EnvFilter;

use crate::usage;

/// The filter used when `RUST_LOG` is unset: the framework's warnings and
/// errors (why a delivery could not be stored, rejected signatures), not
/// its per-event info lines, since `serve` already logs each request.
pub(crate) const DEFAULT_LOG_FILTER: &str = "warn";

/// How the operator's log is written: `--log-format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    // Plain comments, not doc comments: clap would turn variant docs into a
    // list that switches `serve --help` to its long layout.
    // One line of text per request, fields escaped.
    #[default]
    Text,
    // One JSON object per line, with the same fields as the text line.
    Json,
}

/// Whether the operator's lines are JSON (set once, by [`init_tracing_as`]).
static JSON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes one of the program's own lines for the operator (start, stop,
/// `--webhooks` notes) on stderr: through [`Printable`] (the line can quote
/// the network: a Box API error, a command's stderr), or as a JSON object
/// with `level` and `message` when `--log-format json`, so every stderr line
/// parses.
pub(crate) fn notice(level: &str, message: &str) {
    if JSON.load(std::sync::atomic::Ordering::Relaxed) {
        let line = serde_json::json!({
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "level": level,
            "message": message,
        });
        eprintln!("{line}");
    } else {
        eprintln!("{}", Printable(message));
    }
}

/// Writes what [`boxhook::server`] has to say (a failed accept, a grace
/// run out) as one of the operator's WARN lines, for both listeners.
pub(crate) fn server_notice(said: &boxhook::server::Notice) {
    let line = match said {
        boxhook::server::Notice::AcceptFailed(err) => format!(
            "accept failed: {err}; retrying (if out of file descriptors, \
             raise `ulimit -n` or lower --max-connections)"
        ),
        boxhook::server::Notice::GraceExpired { grace, .. } => format!(
            "in-flight deliveries still running after {} s; stopping anyway \
             (Box retries them; raise --grace to wait longer)",
            grace.as_secs()
        ),
        other => other.to_string(),
    };
    notice("WARN", &line);
}

/// Sends `tracing` events to stderr, filtered by `RUST_LOG` or else by
/// [`DEFAULT_LOG_FILTER`], as text or one JSON object per line. An invalid
/// `RUST_LOG` is a usage error.
pub(crate) fn init_tracing_as(format: LogFormat) -> anyhow::Result<()> {
    JSON.store(
        format == LogFormat::Json,
        std::sync::atomic::Ordering::Relaxed,
    );
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec).map_err(|err| {
            usage(format!(
                "RUST_LOG={} is not a valid log filter ({err}); unset it, or use e.g. \
                 RUST_LOG=warn or RUST_LOG=boxhook=info",
                Printable(&spec)
            ))
        })?,
        _ => EnvFilter::new(DEFAULT_LOG_FILTER),
    };
    // Another subscriber already installed (in a test harness) is fine.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    Ok(())
}

/// What happened to one request, for the log line and the demo.
#[derive(Debug, Clone)]
pub(crate) struct DeliveryLog {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) status: StatusCode,
    /// The router's outcome (`handled`, `duplicate`, ...), the verify
    /// layer's rejection code (`expired`, `mismatch`, ...), or `not_found`.
    pub(crate) outcome: &'static str,
    /// The rejection's detail, e.g. "timestamp is 601 s old, limit 600 s".
    pub(crate) detail: Option<String>,
    pub(crate) delivery_id: Option<String>,
    pub(crate) event: Option<RoutedEvent>,
    /// The V1 callback answered, on the V1 path.
    pub(crate) v1: Option<V1Accepted>,
    pub(crate) latency: Duration,
    /// The diagnosis of a 401, when one was made (see `receiver::diagnosis`).
    pub(crate) hints: Vec<boxhook_core::diagnose::Hint>,
}

impl DeliveryLog {
    pub(crate) fn new(
        method: Method,
        path: String,
        delivery_id: Option<String>,
        response: &Response<Full<Bytes>>,
        latency: Duration,
    ) -> Self {
        let extensions = response.extensions();
        let rejection = extensions.get::<Rejection>();
        let v1_rejection = extensions.get::<V1Rejection>();
        let outcome = if let Some(outcome) = extensions.get::<Outcome>() {
            outcome.as_str()
        } else if let Some(rejection) = rejection {
            rejection.code()
        } else if let Some(rejection) = v1_rejection {
            rejection.code()
        } else if response.status() == StatusCode::NOT_FOUND {
            "not_found"
        } else {
            "unknown"
        };
        Self {
            method,
            path,
            status: response.status(),
            outcome,
            detail: rejection
                .map(|r| match r.verify_error() {
                    Some(err) => err.to_string(),
                    None => r.to_string(),
                })
                .or_else(|| v1_rejection.map(ToString::to_string)),
            delivery_id,
            event: extensions.get::<RoutedEvent>().cloned(),
            v1: extensions.get::<V1Accepted>().cloned(),
            latency,
            hints: Vec::new(),
        }
    }
}

impl DeliveryLog {
    /// The event id and trigger of the V2 event or V1 callback, if either.
    fn ids(&self) -> Option<(&str, &str)> {
        match (&self.event, &self.v1) {
            (Some(e), _) => Some((e.event_id(), e.trigger().as_str())),
            (None, Some(v1)) => Some((v1.id.as_str(), v1.trigger.as_str())),
            (None, None) => None,
        }
    }

    /// The log line as one JSON object: the text line's fields, each under
    /// its name (`null` where the text line has `-`), each string written
    /// through [`Printable`] as on the text line (ordinary text is
    /// unchanged), then JSON-escaped.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let event = self.event.as_ref();
        let ids = self.ids();
        let hints: Vec<&str> = self.hints.iter().map(|h| h.code().as_str()).collect();
        let text = |value: &str| Printable(value).to_string();
        serde_json::json!({
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "level": "INFO",
            "message": "delivery",
            "method": text(self.method.as_str()),
            "path": text(&self.path),
            "status": self.status.as_u16(),
            "outcome": self.outcome,
            "delivery_id": self.delivery_id.as_deref().map(text),
            "event_id": ids.map(|(id, _)| text(id)),
            "trigger": ids.map(|(_, trigger)| text(trigger)),
            "latency_ms": u64::try_from(self.latency.as_millis()).unwrap_or(u64::MAX),
            "detail": self.detail.as_deref().map(text),
            "alert": event.and_then(|e| boxhook::alert::for_trigger(e.trigger())),
            "reason": event.and_then(deletion_reason).map(text),
            "hints": hints,
        })
    }
}

impl fmt::Display for DeliveryLog {
    /// `method path status outcome delivery_id event_id trigger latency`,
    /// `-` for what is unknown, then the rejection's detail or an alert.
    /// Every field but the status and latency is written through
    /// [`Printable`], so a line break or terminal escape sent by a client
    /// shows as an escape and one request is always one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let event = self.event.as_ref();
        let (event_id, trigger) = self.ids().unwrap_or(("-", "-"));
        write!(
            f,
            "{} {} {} {} delivery={} event={} trigger={} {}ms",
            Printable(self.method.as_str()),
            Printable(&self.path),
            self.status.as_u16(),
            Printable(self.outcome),
            Printable(self.delivery_id.as_deref().unwrap_or("-")),
            Printable(event_id),
            Printable(trigger),
            self.latency.as_millis(),
        )?;
        if let Some(detail) = &self.detail {
            write!(f, " ({})", Printable(detail))?;
        }
        match event.and_then(|e| boxhook::alert::for_trigger(e.trigger())) {
            Some(alert) => write!(f, " ALERT: {alert}")?,
            None => return Ok(()),
        }
        match event.and_then(deletion_reason) {
            Some(reason) => write!(f, " (reason {})", Printable(reason)),
            None if event.is_some_and(|e| *e.trigger() == Trigger::WebhookDeleted) => {
                f.write_str(" (no reason given)")
            }
            None => Ok(()),
        }
    }
}

/// `additional_info.reason` of a `WEBHOOK.DELETED`, as Box spells it.
fn deletion_reason(event: &RoutedEvent) -> Option<&str> {
    event.deletion_reason().map(DeletionReason::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_line_escapes_what_the_text_line_escapes() {
        let mut response = Response::new(Full::<Bytes>::default());
        *response.status_mut() = StatusCode::NOT_FOUND;
        let log = DeliveryLog::new(
            Method::POST,
            "/a\u{1b}[2J\u{202e}b".to_owned(),
            Some("d-1".to_owned()),
            &response,
            Duration::from_millis(3),
        );
        let json = log.to_json();
        assert_eq!(json["path"], "/a\\u{1b}[2J\\u{202e}b");
        assert_eq!(json["status"], 404);
        assert_eq!(json["outcome"], "not_found");
        assert_eq!(json["delivery_id"], "d-1");
        assert_eq!(json["event_id"], serde_json::Value::Null);
        assert_eq!(json["latency_ms"], 3);
        assert!(log
            .to_string()
            .contains("/a\\u{1b}[2J\\u{202e}b 404 not_found delivery=d-1"));
    }
}
