//! What the dashboard shows, as JSON (`/summary.json`): the counters read
//! back from the rendered metrics, the dashboard's rings, the inbox count,
//! and the retention in force with what the pruner removed.

use std::collections::BTreeMap;

use boxhook::model::WebhookEvent;
use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};

use super::certificates::{InUse, Source};
use super::http::Shared;
use super::inbox::InboxSummary;
use super::metrics_text::{by_label, count, samples};
use crate::retention::show;

/// How many days before a certificate expires the dashboard warns.
pub(super) const WARN_DAYS: i64 = 14;

/// Seconds in a day.
const DAY: i64 = 86_400;

/// The most time a page spends reading alerts' reasons from the store.
const ALERT_REASONS_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// Everything the page shows, as JSON, with `inbox` as the inbox count.
pub(super) async fn summary(shared: &Shared, inbox: &InboxSummary) -> Value {
    let now = Utc::now();
    let samples = samples(&shared.metrics.render());
    let statuses = by_label(&samples, boxhook::metrics::DELIVERIES_TOTAL, "status");
    let (mut accepted, mut rejected) = (0u64, 0u64);
    for (status, n) in &statuses {
        if status.starts_with('2') {
            accepted = accepted.saturating_add(*n);
        } else {
            rejected = rejected.saturating_add(*n);
        }
    }
    let rejections = by_label(&samples, boxhook::metrics::REJECTIONS_TOTAL, "reason");
    let keys = by_label(&samples, boxhook::metrics::VERIFIED_TOTAL, "key");
    let forms = by_label(&samples, boxhook::metrics::VERIFIED_TOTAL, "form");
    let alert_counts = by_label(&samples, boxhook::metrics::ALERTS_TOTAL, "kind");
    let pruned = by_label(&samples, boxhook::metrics::PRUNED_TOTAL, "state");
    let mut triggers: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for sample in samples
        .iter()
        .filter(|s| s.name == boxhook::metrics::EVENTS_TOTAL)
    {
        let (Some(trigger), Some(outcome)) =
            (sample.labels.get("trigger"), sample.labels.get("outcome"))
        else {
            continue;
        };
        let n = count(sample.value);
        let entry = triggers.entry(trigger.clone()).or_default();
        entry.0 = entry.0.saturating_add(n);
        if outcome == "duplicate" {
            entry.1 = entry.1.saturating_add(n);
        }
    }
    let get = |map: &BTreeMap<String, u64>, k: &str| map.get(k).copied().unwrap_or(0);
    let (primary, secondary) = (get(&keys, "primary"), get(&keys, "secondary"));
    let (raw, escaped) = (get(&forms, "raw"), get(&forms, "escaped"));

    let (minutes, recent, alerts) = match &shared.dashboard {
        Some(dashboard) => {
            fill_alert_reasons(shared, dashboard).await;
            (
                dashboard.minutes(now),
                dashboard.recent(),
                dashboard.alerts(),
            )
        }
        None => (Vec::new(), Vec::new(), Vec::new()),
    };
    let retention = shared.prune.as_deref().map(retention);
    json!({
        "role": if shared.dashboard.is_some() { "serve" } else { "work" },
        "now": now.to_rfc3339_opts(SecondsFormat::Secs, true),
        "deliveries": {"accepted": accepted, "rejected": rejected},
        "minutes": minutes.iter().map(|m| json!({
            "t": m.index.saturating_mul(60), "accepted": m.accepted, "rejected": m.rejected,
        })).collect::<Vec<_>>(),
        "rejections": rejections,
        "recent": recent.iter().map(|r| json!({
            "at": r.at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "status": r.status,
            "delivery_id": r.delivery_id,
            "reason": r.reason,
            "detail": r.detail,
            "hint_code": r.hint.as_ref().map(|h| h.0),
            "hint": r.hint.as_ref().map(|h| h.1.clone()),
        })).collect::<Vec<_>>(),
        "triggers": triggers.iter().map(|(t, (events, duplicates))| json!({
            "trigger": t, "events": events, "duplicates": duplicates,
        })).collect::<Vec<_>>(),
        "keys": {
            "primary": primary, "secondary": secondary, "raw": raw, "escaped": escaped,
            "advice": rotation_advice(primary, secondary),
        },
        "alert_counts": {
            "webhook_deleted": get(&alert_counts, "webhook_deleted"),
            "no_active_session": get(&alert_counts, "no_active_session"),
        },
        "alerts": alerts.iter().map(|a| json!({
            "at": a.at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "trigger": a.trigger,
            "event_id": a.event_id,
            "webhook_id": a.webhook_id,
            "reason": a.reason,
            "what_to_do": a.what_to_do,
        })).collect::<Vec<_>>(),
        "inbox": inbox_json(inbox, now),
        "certificates": certificates_json(shared, now.timestamp()),
        "retention": retention,
        "pruned": {
            "done": get(&pruned, "done"),
            "dead": get(&pruned, "dead"),
            "v1": get(&pruned, "v1"),
            "keys": get(&pruned, "keys"),
        },
    })
}

/// How urgent a certificate's expiry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Level {
    /// More than [`WARN_DAYS`] days left.
    Ok,
    /// [`WARN_DAYS`] days left or fewer.
    Warning,
    /// Expired: Box's client refuses the handshake.
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

/// How urgent `cert`'s expiry is at `now` (Unix seconds), the whole days
/// left (negative once expired), and, unless [`Level::Ok`], what the
/// dashboard says of it.
pub(super) fn certificate_status(cert: &InUse, now: i64) -> (Level, i64, Option<String>) {
    let left = cert.not_after.saturating_sub(now);
    let days = left.div_euclid(DAY);
    let on = chrono::DateTime::from_timestamp(cert.not_after, 0).map_or_else(
        || cert.not_after.to_string(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    );
    let what_to_do = match cert.source {
        Source::Files => {
            "put a renewed certificate in the --tls-cert and --tls-key files and send serve SIGHUP"
        }
        Source::Acme => {
            "serve --acme renews it by itself 30 days before expiry, so renewal is failing: read \
             the ACME lines in serve's log (does the domain's port 443 reach this listener? is \
             the CA reachable?)"
        }
    };
    if left <= 0 {
        let message = format!(
            "The certificate for {} expired on {on}: Box does not deliver to it until it is \
             renewed; {what_to_do}.",
            cert.domain
        );
        return (Level::Error, days, Some(message));
    }
    if left > WARN_DAYS.saturating_mul(DAY) {
        return (Level::Ok, days, None);
    }
    let unit = if days == 1 { "day" } else { "days" };
    let message = format!(
        "The certificate for {} expires in {days} {unit}, on {on}: {what_to_do}.",
        cert.domain
    );
    (Level::Warning, days, Some(message))
}

/// The certificate card's lines: one per domain served now.
fn certificates_json(shared: &Shared, now: i64) -> Vec<Value> {
    shared
        .certificates
        .as_deref()
        .map(super::certificates::Certificates::in_use)
        .unwrap_or_default()
        .iter()
        .map(|c| certificate_json(c, now))
        .collect()
}

/// One certificate's line on the dashboard.
fn certificate_json(cert: &InUse, now: i64) -> Value {
    let (level, days_left, message) = certificate_status(cert, now);
    json!({
        "domain": cert.domain,
        "expires_at": chrono::DateTime::from_timestamp(cert.not_after, 0)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
        "days_left": days_left,
        "level": level.as_str(),
        "message": message,
    })
}

/// The inbox card's counts.
fn inbox_json(inbox: &InboxSummary, now: chrono::DateTime<Utc>) -> Value {
    let states: serde_json::Map<String, Value> = inbox
        .states()
        .into_iter()
        .map(|(state, n)| (state.to_owned(), Value::from(n)))
        .collect();
    json!({
        "states": states,
        "total": inbox.counts.map(|c| c.total()),
        "oldest_pending_age_s": inbox
            .counts
            .and_then(|c| c.oldest_pending)
            .map(|t| (now - t).num_seconds().max(0)),
        "checked_at": inbox.checked_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
        "error": inbox.error,
    })
}

/// The retention in force and the pruner's last round.
fn retention(prune: &crate::prune::PruneStatus) -> Value {
    let retention = prune.retention();
    let last = prune.last();
    json!({
        "done": show(retention.done),
        "dead": show(retention.dead),
        "v1": show(retention.v1),
        "keys": show(Some(retention.keys)),
        "last_round_at": last.at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
        "error": last.error,
        "off": last.off,
    })
}

/// Reads the reason of each `WEBHOOK.DELETED` alert shown without one
/// from the stored event (only those have a reason); a store that does
/// not answer holds the page up [`ALERT_REASONS_WITHIN`] at most.
async fn fill_alert_reasons(shared: &Shared, dashboard: &super::Dashboard) {
    let lookups = async {
        for alert in dashboard
            .alerts()
            .iter()
            .filter(|a| a.reason.is_none() && a.trigger == "WEBHOOK.DELETED")
        {
            if let Some(reason) = alert_reason(shared, &alert.event_id).await {
                dashboard.set_alert_reason(&alert.event_id, &reason);
            }
        }
    };
    let _ = tokio::time::timeout(ALERT_REASONS_WITHIN, lookups).await;
}

/// `additional_info.reason` of a stored `WEBHOOK.DELETED`.
async fn alert_reason(shared: &Shared, event_id: &str) -> Option<String> {
    let body = shared.counter.probe().body(event_id).await?;
    let event = WebhookEvent::parse(&body).ok()?;
    let reason = event.additional_info().deletion_reason()?;
    Some(reason.as_str().to_owned())
}

/// The plain-words line on the key card.
pub(super) fn rotation_advice(primary: u64, secondary: u64) -> String {
    match (primary, secondary) {
        (0, 0) => "No verified delivery yet: nothing shows which key Box signs with. Wait for \
                   deliveries before rotating a key."
            .to_owned(),
        (_, 0) => format!(
            "All {primary} verified deliveries matched the primary key. Resetting the \
             secondary key in Box is safe. To rotate the primary, reset it in Box, deploy it \
             here, and wait until deliveries stop matching the secondary only."
        ),
        (_, _) => format!(
            "{secondary} verified deliveries matched only the secondary key: the primary key \
             here is not the one Box signs with (a rotation under way, or a stale key). Do not \
             reset the secondary key until this stays at 0."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_warns_within_14_days_and_is_an_error_once_expired() {
        // What is left, the source, then the level, days and message expected.
        type Case = (&'static str, i64, Source, Level, i64, Option<&'static str>);
        // 2026-12-06 00:00:00 UTC.
        let now = 1_796_515_200;
        let cases: [Case; 7] = [
            ("30 days", 30 * DAY, Source::Acme, Level::Ok, 30, None),
            ("15 days", 15 * DAY, Source::Files, Level::Ok, 15, None),
            (
                "14 days and a second",
                14 * DAY + 1,
                Source::Files,
                Level::Ok,
                14,
                None,
            ),
            (
                "14 days",
                14 * DAY,
                Source::Files,
                Level::Warning,
                14,
                Some(
                    "The certificate for hooks.example.com expires in 14 days, on 2026-12-20 \
                     00:00 UTC: put a renewed certificate in the --tls-cert and --tls-key files \
                     and send serve SIGHUP.",
                ),
            ),
            (
                "13 days",
                13 * DAY + 3600,
                Source::Acme,
                Level::Warning,
                13,
                Some(
                    "The certificate for hooks.example.com expires in 13 days, on 2026-12-19 \
                     01:00 UTC: serve --acme renews it by itself 30 days before expiry, so \
                     renewal is failing: read the ACME lines in serve's log (does the domain's \
                     port 443 reach this listener? is the CA reachable?).",
                ),
            ),
            (
                "an hour",
                3600,
                Source::Files,
                Level::Warning,
                0,
                Some(
                    "The certificate for hooks.example.com expires in 0 days, on 2026-12-06 \
                     01:00 UTC: put a renewed certificate in the --tls-cert and --tls-key files \
                     and send serve SIGHUP.",
                ),
            ),
            (
                "expired",
                -2 * DAY,
                Source::Files,
                Level::Error,
                -2,
                Some(
                    "The certificate for hooks.example.com expired on 2026-12-04 00:00 UTC: Box \
                     does not deliver to it until it is renewed; put a renewed certificate in \
                     the --tls-cert and --tls-key files and send serve SIGHUP.",
                ),
            ),
        ];
        for (what, left, source, level, days, message) in cases {
            let cert = InUse {
                domain: "hooks.example.com".to_owned(),
                not_after: now + left,
                source,
            };
            assert_eq!(
                certificate_status(&cert, now),
                (level, days, message.map(str::to_owned)),
                "{what}"
            );
        }
        let at_expiry = InUse {
            domain: "a.example".to_owned(),
            not_after: now,
            source: Source::Acme,
        };
        assert_eq!(certificate_status(&at_expiry, now).0, Level::Error);
    }

    #[test]
    fn rotation_advice_names_the_situation() {
        assert!(rotation_advice(0, 0).starts_with("No verified delivery yet"));
        assert!(rotation_advice(5, 0).starts_with("All 5 verified deliveries matched the primary key. Resetting the secondary key in Box is safe."));
        assert!(rotation_advice(5, 2)
            .starts_with("2 verified deliveries matched only the secondary key"));
    }
}
