//! `boxhook send`: deliver a webhook like Box, through the test kit's
//! `Simulator` (a fresh timestamp, signature and delivery id per attempt).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use boxhook::runtime::fixtures;
use boxhook::runtime::send::{Attempt, Delivery, DeliveryIds, RetrySchedule, Simulator};
use boxhook_core::model::Envelope;
use http::Uri;

use crate::keys::KeyArgs;
use crate::{read_input, usage};

/// Arguments of `boxhook send`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("payload").required(true).args(["trigger", "body"])))]
#[command(after_help = "\
Exit status: 0 if an attempt got a 2xx, 1 if none did, 2 usage error.

Examples:
  boxhook send --to http://127.0.0.1:8080/ --trigger FILE.UPLOADED
  boxhook send --to http://127.0.0.1:8080/ --body event.json --retry --speedup 600
  boxhook send --v1 --trigger uploaded \
      --to 'http://127.0.0.1:8080/v1?token=SECRET&event_type=#event_type#&item_id=#item_id#'

With --v1, --to is the callback URL as written in the Developer Console: each \
#name# is replaced (#event_type# by --trigger; #item_id#, #item_name#, \
#item_type#, #from_user_id# by sample values; any other by --set name=value), \
and the callback is sent once (V1 is never retried, and unsigned), as a GET \
or, with --post, its query as a form body.")]
pub(crate) struct Args {
    /// The receiver, plain http:// (point it at the receiver, not at its TLS proxy).
    #[arg(long, value_name = "URL")]
    to: String,
    /// Send a realistic payload for this trigger from the fixture corpus,
    /// with a fresh event id, e.g. FILE.UPLOADED.
    #[arg(long, value_name = "T")]
    trigger: Option<String>,
    /// Send this body, byte for byte.
    #[arg(long, value_name = "FILE")]
    body: Option<PathBuf>,
    /// Retry anything but a 2xx on Box's schedule (10 retries, 5 min doubling
    /// to 1 h) instead of making a single attempt.
    #[arg(long)]
    retry: bool,
    /// Divide the retry delays by this factor (600 turns 5 min into 0.5 s).
    #[arg(long, value_name = "N", default_value_t = 1, requires = "retry")]
    speedup: u32,
    /// How long to wait for each response, in seconds (Box: 30).
    #[arg(long, value_name = "S", default_value_t = 30)]
    timeout: u64,
    /// Send a V1 callback (unsigned; see below) instead of a V2 delivery.
    #[arg(long, conflicts_with_all = ["body", "retry"], requires = "trigger")]
    v1: bool,
    /// With --v1: send the query as a POST form body instead of a GET.
    #[arg(long, requires = "v1")]
    post: bool,
    /// With --v1: the value of a #NAME# placeholder, as NAME=VALUE (repeatable).
    #[arg(long, value_name = "NAME=VALUE", requires = "v1")]
    set: Vec<String>,
    #[command(flatten)]
    pub(crate) keys: crate::keys::KeyArgs,
}

/// Sends, printing one line per attempt.
pub(crate) fn run(keys: &KeyArgs, args: &Args) -> anyhow::Result<ExitCode> {
    if args.v1 {
        return crate::send_v1::run(&crate::send_v1::Callback {
            url: &args.to,
            trigger: args.trigger.as_deref().unwrap_or_default(),
            set: &args.set,
            post: args.post,
            timeout: Duration::from_secs(args.timeout),
        });
    }
    let ring = keys.ring()?;
    let target = target_uri(&args.to)?;
    let body = match (&args.trigger, &args.body) {
        (Some(trigger), _) => body_for_trigger(trigger)?,
        (None, Some(path)) => read_input(path, "body file")?,
        (None, None) => return Err(usage("give --trigger or --body")),
    };
    let schedule = if args.retry {
        RetrySchedule::box_like().compressed(args.speedup)
    } else {
        RetrySchedule::none()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        let simulator = Simulator::builder(target, ring)
            .schedule(schedule)
            .timeout(Duration::from_secs(args.timeout))
            .on_attempt(|attempt| println!("{}", attempt_line(attempt)))
            .build();
        simulator.send(Delivery::new(body)).await
    });
    if report.delivered() {
        println!("delivered after {} attempt(s)", report.attempts().len());
        Ok(ExitCode::SUCCESS)
    } else {
        println!("gave up after {} attempt(s)", report.attempts().len());
        Ok(ExitCode::FAILURE)
    }
}

/// `--to`, which must be an absolute `http://` URI.
pub(crate) fn target_uri(text: &str) -> anyhow::Result<Uri> {
    let uri: Uri = text
        .parse()
        .map_err(|err| usage(format!("--to {text:?} is not a URL: {err}")))?;
    match uri.scheme_str() {
        Some("http") if uri.host().is_some() => Ok(uri),
        Some("https") => Err(usage(
            "--to: the simulator speaks plain HTTP; point it at the receiver behind the TLS proxy",
        )),
        _ => Err(usage(format!("--to {text:?} must be an http:// URL"))),
    }
}

/// One line: attempt number, delivery id, status or error, elapsed time.
pub(crate) fn attempt_line(attempt: &Attempt) -> String {
    let result = match attempt.result() {
        Ok(status) => status.to_string(),
        Err(err) => err.to_string(),
    };
    format!(
        "attempt {:>2}  delivery {}  {result}  {} ms",
        attempt.number(),
        attempt.delivery_id(),
        attempt.elapsed().as_millis()
    )
}

/// A fixture payload for `trigger` with a fresh event id.
pub(crate) fn body_for_trigger(trigger: &str) -> anyhow::Result<Vec<u8>> {
    let Some(fixture) = fixtures::for_trigger(trigger).next() else {
        let mut known: Vec<_> = fixtures::all()
            .iter()
            .filter_map(fixtures::Fixture::trigger)
            .collect();
        known.sort_unstable();
        known.dedup();
        return Err(usage(format!(
            "no fixture has trigger {trigger:?}; known: {}",
            known.join(", ")
        )));
    };
    with_event_id(fixture.body(), &DeliveryIds::random().next_id())
        .ok_or_else(|| anyhow::anyhow!("fixture {} has no string event id", fixture.name()))
}

/// `body` with its event `id` replaced, every other byte kept: Box's compact
/// form puts `"id":"..."` right after `"type"`, so the first occurrence is
/// the event's.
pub(crate) fn with_event_id(body: &[u8], new_id: &str) -> Option<Vec<u8>> {
    let old_id = Envelope::parse(body).ok()?.id().to_owned();
    let needle = format!("\"id\":\"{old_id}\"");
    let at = body
        .windows(needle.len())
        .position(|window| window == needle.as_bytes())?;
    let mut out = Vec::with_capacity(body.len() + new_id.len());
    out.extend_from_slice(&body[..at]);
    out.extend_from_slice(format!("\"id\":\"{new_id}\"").as_bytes());
    out.extend_from_slice(&body[at + needle.len()..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_event_id_changes_only_the_id() {
        let body =
            br#"{"type":"webhook_event","id":"e-1","trigger":"X.Y","webhook":{"id":"w"},"source":{"id":"e-1"}}"#;
        let out = with_event_id(body, "e-2").expect("has an id");
        assert_eq!(
            out,
            br#"{"type":"webhook_event","id":"e-2","trigger":"X.Y","webhook":{"id":"w"},"source":{"id":"e-1"}}"#
        );
    }

    #[test]
    fn every_trigger_fixture_gets_a_fresh_id() {
        let body = body_for_trigger("FILE.UPLOADED").expect("fixture exists");
        let envelope = Envelope::parse(&body).expect("still an event");
        assert_eq!(envelope.trigger().as_str(), "FILE.UPLOADED");
        assert_eq!(envelope.id().len(), 36);
    }
}
