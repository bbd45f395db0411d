//! What the receiver records through the [`metrics`] facade.
//!
//! boxhook records these metrics and installs no exporter. Install the
//! recorder you use (Prometheus, `StatsD`, `OpenTelemetry`, …) before the first
//! delivery, and call [`describe`] once after installing it, so that each
//! metric carries its help text and unit. With no recorder installed,
//! recording costs one atomic load per call.
//!
//! Labels have low cardinality by design: no event id, delivery id or
//! webhook id is ever a label. `trigger` holds only the triggers this version
//! knows; any other trigger is counted as `other`.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `boxhook_deliveries_total` | counter | `status` | requests answered by [`VerifyLayer`](crate::VerifyLayer), by HTTP status code (`"200"`, `"401"`, …) |
//! | `boxhook_rejections_total` | counter | `reason` | requests the layer refused, by [`Rejection::code`](crate::verify::Rejection::code) (`mismatch`, `expired`, `payload_too_large`, …) |
//! | `boxhook_verified_total` | counter | `key`, `form` | verified deliveries: `key` is `primary` or `secondary`, `form` is `raw` or `escaped` |
//! | `boxhook_events_total` | counter | `trigger`, `outcome` | events the [`Router`](crate::Router) routed; `outcome` is `handled`, `duplicate`, `unhandled` or `failed` (see [`outcome_label`]) |
//! | `boxhook_alerts_total` | counter | `kind` | `webhook_deleted`, `no_active_session` deliveries (handled or not) |
//! | `boxhook_verify_seconds` | histogram | | time of [`Verifier::verify`](crate::Verifier::verify) for each delivery that reached it |
//! | `boxhook_handler_seconds` | histogram | | time a handler ran, for each event a handler ran on (until its deadline) |
//!
//! Three more describe an inbox as a whole, which neither the router nor a
//! worker sees: this library names and describes them, and the program that
//! owns the inbox records them.
//!
//! | name | kind | labels | set from |
//! |---|---|---|---|
//! | `boxhook_inbox_events` | gauge | `state` | each state's count in the inbox's [`Counts`](crate::inbox::Counts) (`pending`, `claimed`, `done`, `dead`) |
//! | `boxhook_inbox_oldest_pending_age_seconds` | gauge | | the age of [`Counts::oldest_pending`](crate::inbox::Counts::oldest_pending); 0 when nothing is pending |
//! | `boxhook_pruned_total` | counter | `state` | each field of a prune's [`Pruned`](crate::inbox::Pruned): `done`, `dead`, `v1`, `keys` |
//!
//! `boxhook_webhook_recreations_total{result}` (`recreated`,
//! `already_back`, `alerted`, `failed`) is counted by `boxhook-admin`'s
//! `Recreate` handler.
//!
//! ```
//! // Any recorder works; this one keeps the values in memory for the test.
//! let recorder = metrics_util::debugging::DebuggingRecorder::new();
//! let snapshotter = recorder.snapshotter();
//! metrics::with_local_recorder(&recorder, || {
//!     boxhook::metrics::describe();
//!     metrics::counter!(boxhook::metrics::DELIVERIES_TOTAL, "status" => "200").increment(1);
//! });
//! assert_eq!(snapshotter.snapshot().into_vec().len(), 1);
//! ```

use std::time::Duration;

use boxhook_core::model::Trigger;
use boxhook_core::{BodyForm, KeySlot};
use http::StatusCode;

use crate::Outcome;

/// `boxhook_deliveries_total{status}`.
pub const DELIVERIES_TOTAL: &str = "boxhook_deliveries_total";
/// `boxhook_rejections_total{reason}`.
pub const REJECTIONS_TOTAL: &str = "boxhook_rejections_total";
/// `boxhook_verified_total{key,form}`.
pub const VERIFIED_TOTAL: &str = "boxhook_verified_total";
/// `boxhook_events_total{trigger,outcome}`.
pub const EVENTS_TOTAL: &str = "boxhook_events_total";
/// `boxhook_alerts_total{kind}`.
pub const ALERTS_TOTAL: &str = "boxhook_alerts_total";
/// `boxhook_verify_seconds`.
pub const VERIFY_SECONDS: &str = "boxhook_verify_seconds";
/// `boxhook_handler_seconds`.
pub const HANDLER_SECONDS: &str = "boxhook_handler_seconds";
/// `boxhook_inbox_events{state}`: the inbox's events by state, set by the
/// program that owns the inbox (see the [module docs](self)).
pub const INBOX_EVENTS: &str = "boxhook_inbox_events";
/// `boxhook_inbox_oldest_pending_age_seconds`: set by the program that owns
/// the inbox.
pub const INBOX_OLDEST_PENDING_AGE: &str = "boxhook_inbox_oldest_pending_age_seconds";
/// `boxhook_pruned_total{state}`: counted by the program that prunes the
/// inbox.
pub const PRUNED_TOTAL: &str = "boxhook_pruned_total";

/// Gives each metric above its help text and unit, in the recorder
/// installed now. Call it once, after installing the recorder.
///
/// ```
/// boxhook::metrics::describe(); // no recorder installed: does nothing
/// ```
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        DELIVERIES_TOTAL,
        "Requests answered by the verify layer, by HTTP status code."
    );
    describe_counter!(
        REJECTIONS_TOTAL,
        "Requests the verify layer refused, by rejection code."
    );
    describe_counter!(
        VERIFIED_TOTAL,
        "Verified deliveries, by the key (primary, secondary) and body form (raw, escaped) that matched."
    );
    describe_counter!(
        EVENTS_TOTAL,
        "Events routed, by trigger (unknown triggers as other) and outcome."
    );
    describe_counter!(
        ALERTS_TOTAL,
        "WEBHOOK.DELETED and NO_ACTIVE_SESSION deliveries, by kind."
    );
    describe_histogram!(
        VERIFY_SECONDS,
        Unit::Seconds,
        "Time to verify one delivery's signatures and timestamp."
    );
    describe_histogram!(
        HANDLER_SECONDS,
        Unit::Seconds,
        "Time a handler ran on one event."
    );
    describe_gauge!(INBOX_EVENTS, "Events in the inbox, by state.");
    describe_gauge!(
        INBOX_OLDEST_PENDING_AGE,
        Unit::Seconds,
        "Age of the oldest pending event, from when it was received; 0 when none is pending."
    );
    describe_counter!(
        PRUNED_TOTAL,
        "Rows pruned from the inbox: done, dead and v1 events, and keys (expired deduplication keys of pruned events)."
    );
}

/// The `outcome` label of [`EVENTS_TOTAL`] for a router outcome: `handled`,
/// `duplicate` (also for [`Outcome::InProgress`], a repeat delivery while
/// the first is still running), `unhandled`, or `failed` (every other
/// outcome: the handler failed, panicked, timed out or asked for a retry,
/// or a store failed).
///
/// ```
/// use boxhook::{metrics::outcome_label, Outcome};
/// assert_eq!(outcome_label(Outcome::Handled), "handled");
/// assert_eq!(outcome_label(Outcome::InProgress), "duplicate");
/// assert_eq!(outcome_label(Outcome::TimedOut), "failed");
/// ```
#[must_use]
pub fn outcome_label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Handled => "handled",
        Outcome::Duplicate | Outcome::InProgress => "duplicate",
        Outcome::Unhandled => "unhandled",
        _ => "failed",
    }
}

/// The `trigger` label: the trigger's name if this version knows it,
/// `other` if not (so a sender cannot create label values).
///
/// ```
/// use boxhook::{metrics::trigger_label, Trigger};
/// assert_eq!(trigger_label(&Trigger::FileUploaded), "FILE.UPLOADED");
/// assert_eq!(trigger_label(&Trigger::from("FILE.ARCHIVED")), "other");
/// ```
#[must_use]
pub fn trigger_label(trigger: &Trigger) -> &'static str {
    trigger.known_name().unwrap_or("other")
}

pub(crate) fn delivery(status: StatusCode) {
    // The codes boxhook answers with, without allocating; any other (an
    // inner service's own) is formatted.
    let label: metrics::SharedString = match status.as_u16() {
        200 => "200".into(),
        400 => "400".into(),
        401 => "401".into(),
        405 => "405".into(),
        408 => "408".into(),
        413 => "413".into(),
        500 => "500".into(),
        503 => "503".into(),
        _ => status.as_str().to_owned().into(),
    };
    metrics::counter!(DELIVERIES_TOTAL, "status" => label).increment(1);
}

pub(crate) fn rejection(code: &'static str) {
    metrics::counter!(REJECTIONS_TOTAL, "reason" => code).increment(1);
}

pub(crate) fn verified(key: KeySlot, form: BodyForm) {
    metrics::counter!(VERIFIED_TOTAL, "key" => key.as_str(), "form" => form.as_str()).increment(1);
}

pub(crate) fn verify_time(took: Duration) {
    metrics::histogram!(VERIFY_SECONDS).record(took.as_secs_f64());
}

pub(crate) fn event(trigger: &Trigger, outcome: Outcome) {
    metrics::counter!(
        EVENTS_TOTAL,
        "trigger" => trigger_label(trigger),
        "outcome" => outcome_label(outcome)
    )
    .increment(1);
}

pub(crate) fn alert(trigger: &Trigger) {
    let kind = match trigger {
        Trigger::WebhookDeleted => "webhook_deleted",
        Trigger::NoActiveSession => "no_active_session",
        _ => return,
    };
    metrics::counter!(ALERTS_TOTAL, "kind" => kind).increment(1);
}

pub(crate) fn handler_time(took: Duration) {
    metrics::histogram!(HANDLER_SECONDS).record(took.as_secs_f64());
}
