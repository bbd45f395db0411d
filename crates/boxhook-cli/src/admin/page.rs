//! The dashboard page: the summary (see `summary.rs`) rendered on the
//! server into one HTML page, and a small script that re-renders the page
//! from `/summary.json` every few seconds. Everything is
//! embedded in the binary; everything that came from the network is
//! HTML-escaped here and set with `textContent` in the script.

use std::fmt::Write as _;

use serde_json::Value;

use super::state::MINUTES;

/// Where the script is served.
pub(super) const SCRIPT_PATH: &str = "/dashboard.js";
/// Where the style sheet is served.
pub(super) const STYLE_PATH: &str = "/dashboard.css";
/// The script.
pub(super) const SCRIPT: &str = include_str!("dashboard.js");
/// The style sheet.
pub(super) const STYLE: &str = include_str!("dashboard.css");
const TEMPLATE: &str = include_str!("dashboard.html");

/// Escapes text for HTML content and attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn n(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// A `<span data-k="KEY">N</span>`, the form the script updates and the
/// browser test reads.
fn num(key: &str, value: u64) -> String {
    format!(
        "<span class=\"n\" data-k=\"{}\">{value}</span>",
        escape(key)
    )
}

/// The page for `summary`, rendered on the server.
pub(super) fn html(summary: &Value) -> String {
    let mut body = String::new();
    let _ = write!(body, "{}", cards(summary));
    TEMPLATE
        .replace("{{script}}", SCRIPT_PATH)
        .replace("{{style}}", STYLE_PATH)
        .replace("{{role}}", &escape(s(summary, "role")))
        .replace("{{now}}", &escape(s(summary, "now")))
        .replace("{{cards}}", &body)
}

fn cards(summary: &Value) -> String {
    let mut out = String::new();
    if s(summary, "role") == "work" {
        // A worker receives no deliveries: its page is the inbox.
        out.push_str(
            "<section class=\"card wide\"><h2>boxhook work</h2><p>This process works \
             through the inbox; the receiver's own admin listener (serve --admin) shows \
             deliveries, rejections, keys and alerts.</p></section>",
        );
        card_inbox(summary, &mut out);
        card_retention(summary, &mut out);
        return out;
    }
    card_deliveries_per_minute(summary, &mut out);
    card_rejections_by_reason(summary, &mut out);
    card_events_by_trigger(summary, &mut out);
    card_keys(summary, &mut out);
    card_alerts(summary, &mut out);
    card_certificates(summary, &mut out);
    card_inbox(summary, &mut out);
    card_retention(summary, &mut out);
    card_recent_rejected_deliveries(summary, &mut out);
    out
}

/// The certificates card: each domain the delivery listener serves, when
/// its certificate expires, and a warning within 14 days of that (an error
/// once expired). When it warns it is wide and shown first (`urgent`: CSS
/// order).
fn card_certificates(summary: &Value, out: &mut String) {
    let (mut alerts, mut rows) = (String::new(), String::new());
    let mut warns = false;
    for c in summary
        .get("certificates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let level = s(c, "level");
        if let Some(message) = c.get("message").and_then(Value::as_str) {
            warns = true;
            let _ = write!(
                alerts,
                "<li class=\"{level}\" data-level=\"{level}\">{}</li>",
                escape(message),
                level = escape(level),
            );
        }
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(s(c, "domain")),
            escape(s(c, "expires_at")),
            c.get("days_left").and_then(Value::as_i64).unwrap_or(0),
        );
    }
    let _ = write!(
        out,
        "<section class=\"card{}\" id=\"certificates\"><h2>Certificates</h2>\
         <ul id=\"cert-alerts\">{alerts}</ul><table id=\"certs\"><thead><tr><th>domain</th>\
         <th>expires</th><th>days left</th></tr></thead><tbody>{}</tbody></table></section>",
        if warns { " wide urgent" } else { "" },
        or_empty(rows, 3, "none: plain HTTP, or no certificate yet"),
    );
}

/// The deliveries per minute card.
fn card_deliveries_per_minute(summary: &Value, out: &mut String) {
    let null = Value::Null;
    let deliveries = summary.get("deliveries").unwrap_or(&null);
    let _ =
        write!(
        out,
        "<section class=\"card wide\" id=\"deliveries\"><h2>Deliveries per minute, last hour</h2>\
         <p>{} accepted, {} rejected</p><div id=\"chart\">{}</div>\
         <p class=\"legend\"><span class=\"sw ok\"></span> accepted \
         <span class=\"sw bad\"></span> rejected</p></section>",
        num("deliveries.accepted", n(deliveries, "accepted")),
        num("deliveries.rejected", n(deliveries, "rejected")),
        chart(summary.get("minutes").and_then(Value::as_array).map_or(&[][..], Vec::as_slice)),
    );
}

/// The rejections by reason card.
fn card_rejections_by_reason(summary: &Value, out: &mut String) {
    let mut rows = String::new();
    if let Some(map) = summary.get("rejections").and_then(Value::as_object) {
        for (reason, count) in map {
            let _ = write!(
                rows,
                "<tr><td>{}</td><td>{}</td></tr>",
                escape(reason),
                num(&format!("rejections.{reason}"), count.as_u64().unwrap_or(0))
            );
        }
    }
    let _ = write!(
        out,
        "<section class=\"card\"><h2>Rejections by reason</h2><table id=\"rejections\">\
         <thead><tr><th>reason</th><th>count</th></tr></thead><tbody>{}</tbody></table></section>",
        or_empty(rows, 2, "none")
    );
}

/// The events by trigger card.
fn card_events_by_trigger(summary: &Value, out: &mut String) {
    let mut rows = String::new();
    for t in summary
        .get("triggers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let trigger = s(t, "trigger");
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(trigger),
            num(&format!("triggers.{trigger}.events"), n(t, "events")),
            num(
                &format!("triggers.{trigger}.duplicates"),
                n(t, "duplicates")
            ),
        );
    }
    let _ = write!(
        out,
        "<section class=\"card\"><h2>Events by trigger</h2><table id=\"triggers\"><thead><tr>\
         <th>trigger</th><th>events</th><th>duplicates</th></tr></thead><tbody>{}</tbody>\
         </table></section>",
        or_empty(rows, 3, "none")
    );
}

/// The keys card.
fn card_keys(summary: &Value, out: &mut String) {
    let null = Value::Null;
    let keys = summary.get("keys").unwrap_or(&null);
    let _ = write!(
        out,
        "<section class=\"card\"><h2>Keys</h2><table id=\"keys\"><tbody>\
         <tr><td>primary key</td><td>{}</td><td>raw body</td><td>{}</td></tr>\
         <tr><td>secondary key</td><td>{}</td><td>escaped body</td><td>{}</td></tr>\
         </tbody></table><p id=\"advice\">{}</p></section>",
        num("keys.primary", n(keys, "primary")),
        num("keys.raw", n(keys, "raw")),
        num("keys.secondary", n(keys, "secondary")),
        num("keys.escaped", n(keys, "escaped")),
        escape(s(keys, "advice")),
    );
}

/// The alerts card.
fn card_alerts(summary: &Value, out: &mut String) {
    let null = Value::Null;
    let counts = summary.get("alert_counts").unwrap_or(&null);
    let mut rows = String::new();
    for a in summary
        .get("alerts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let _ = write!(
            rows,
            "<li><b>{}</b> at {} — {}: {}</li>",
            escape(s(a, "trigger")),
            escape(s(a, "at")),
            escape(&alert_about(a)),
            escape(s(a, "what_to_do")),
        );
    }
    if rows.is_empty() {
        rows.push_str("<li class=\"empty\">none</li>");
    }
    let _ = write!(
        out,
        "<section class=\"card\"><h2>Alerts</h2><p>WEBHOOK.DELETED {} · NO_ACTIVE_SESSION {}</p>\
         <ul id=\"alerts\">{rows}</ul></section>",
        num("alerts.webhook_deleted", n(counts, "webhook_deleted")),
        num("alerts.no_active_session", n(counts, "no_active_session")),
    );
}

/// The states, in the order the inbox card shows them.
const STATES: [&str; 4] = ["pending", "claimed", "done", "dead"];

/// The inbox card.
fn card_inbox(summary: &Value, out: &mut String) {
    let null = Value::Null;
    let inbox = summary.get("inbox").unwrap_or(&null);
    let mut rows = String::new();
    if let Some(states) = inbox.get("states").and_then(Value::as_object) {
        for state in STATES {
            if let Some(count) = states.get(state) {
                let _ = write!(
                    rows,
                    "<tr><td>{state}</td><td>{}</td></tr>",
                    num(&format!("inbox.{state}"), count.as_u64().unwrap_or(0))
                );
            }
        }
        if let Some(total) = inbox.get("total").and_then(Value::as_u64) {
            let _ = write!(
                rows,
                "<tr class=\"total\"><td>all</td><td>{}</td></tr>",
                num("inbox.total", total)
            );
        }
    }
    let oldest = match inbox.get("oldest_pending_age_s").and_then(Value::as_u64) {
        Some(age) => format!(
            "oldest pending event: {} s old",
            num("inbox.oldest_pending_age_s", age)
        ),
        None => "no pending event".to_owned(),
    };
    let error = format!(
        "<p class=\"error\" id=\"inbox-error\">{}</p>",
        escape(inbox.get("error").and_then(Value::as_str).unwrap_or(""))
    );
    let _ = write!(
        out,
        "<section class=\"card\"><h2>Inbox</h2><table id=\"inbox\"><thead><tr><th>state</th>\
         <th>events</th></tr></thead><tbody>{}</tbody></table><p id=\"oldest\">{oldest}</p>{error}\
         <p class=\"small\">counted at <span id=\"inbox-checked\">{}</span></p></section>",
        or_empty(rows, 2, "not counted yet"),
        escape(
            inbox
                .get("checked_at")
                .and_then(Value::as_str)
                .unwrap_or("-")
        ),
    );
}

/// The retention card: how long each kind of finished event is kept, and
/// what the pruner removed since the process started.
fn card_retention(summary: &Value, out: &mut String) {
    let null = Value::Null;
    let retention = summary.get("retention").unwrap_or(&null);
    let pruned = summary.get("pruned").unwrap_or(&null);
    if retention.is_null() {
        out.push_str(
            "<section class=\"card\" id=\"retention\"><h2>Retention</h2><p>This process \
             does not prune the inbox.</p></section>",
        );
        return;
    }
    let mut rows = String::new();
    for (what, key) in [
        ("done events", "done"),
        ("dead events", "dead"),
        ("V1 callbacks", "v1"),
        ("deduplication keys", "keys"),
    ] {
        let _ = write!(
            rows,
            "<tr><td>{what}</td><td data-r=\"{key}\">{}</td><td>{}</td></tr>",
            escape(s(retention, key)),
            num(&format!("pruned.{key}"), n(pruned, key)),
        );
    }
    let last = match retention.get("last_round_at").and_then(Value::as_str) {
        Some(at) => format!("last round at {}", escape(at)),
        None => "no round yet".to_owned(),
    };
    let problem = retention
        .get("off")
        .and_then(Value::as_str)
        .or_else(|| retention.get("error").and_then(Value::as_str))
        .unwrap_or("");
    let _ = write!(
        out,
        "<section class=\"card\" id=\"retention\"><h2>Retention</h2><table id=\"pruned\">\
         <thead><tr><th>what</th><th>kept</th><th>pruned</th></tr></thead><tbody>{rows}</tbody>\
         </table><p class=\"small\"><span id=\"prune-last\">{last}</span>; pruned counts \
         since this process started</p><p class=\"error\" id=\"prune-error\">{}</p>\
         </section>",
        escape(problem),
    );
}

/// The recent rejected deliveries card (last, full width).
fn card_recent_rejected_deliveries(summary: &Value, out: &mut String) {
    let mut rows = String::new();
    for r in summary
        .get("recent")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let hint = match (
            r.get("hint_code").and_then(Value::as_str),
            r.get("hint").and_then(Value::as_str),
        ) {
            (Some(code), Some(text)) => format!("<b>{}</b>: {}", escape(code), escape(text)),
            _ => escape(s(r, "detail")),
        };
        let _ = write!(
            rows,
            "<tr><td>{}</td><td class=\"id\">{}</td><td>{} {}</td><td>{}</td></tr>",
            escape(s(r, "at").get(11..19).unwrap_or("")),
            escape(r.get("delivery_id").and_then(Value::as_str).unwrap_or("-")),
            n(r, "status"),
            escape(s(r, "reason")),
            hint
        );
    }
    let _ = write!(
        out,
        "<section class=\"card wide\"><h2>Recent rejected deliveries</h2><div class=\"scroll\">\
         <table id=\"recent\"><thead><tr><th>time (UTC)</th><th>delivery</th><th>answer</th>\
         <th>why, and what to do</th></tr></thead><tbody>{}</tbody></table></div></section>",
        or_empty(rows, 4, "none")
    );
}

/// Which webhook an alert is about, and why Box deleted it when it did.
fn alert_about(alert: &Value) -> String {
    let webhook = alert
        .get("webhook_id")
        .and_then(Value::as_str)
        .unwrap_or("-");
    match s(alert, "trigger") {
        "WEBHOOK.DELETED" => {
            let reason = alert.get("reason").and_then(Value::as_str).unwrap_or("-");
            format!("webhook {webhook}, reason {reason}")
        }
        _ => format!("webhook {webhook}"),
    }
}

fn or_empty(rows: String, columns: usize, text: &str) -> String {
    if rows.is_empty() {
        format!("<tr><td colspan=\"{columns}\" class=\"empty\">{text}</td></tr>")
    } else {
        rows
    }
}

/// The bar chart: one pair of bars per minute, scaled to the busiest one.
fn chart(minutes: &[Value]) -> String {
    let top = minutes
        .iter()
        .map(|m| n(m, "accepted").max(n(m, "rejected")))
        .max()
        .unwrap_or(0)
        .max(1);
    let mut svg = format!(
        "<svg viewBox=\"0 0 {} 100\" preserveAspectRatio=\"none\" role=\"img\" \
         aria-label=\"deliveries per minute\">",
        MINUTES * 10
    );
    for (i, m) in minutes.iter().enumerate() {
        let x = i * 10;
        for (offset, key, class) in [(1, "accepted", "ok"), (5, "rejected", "bad")] {
            let value = n(m, key);
            if value == 0 {
                continue;
            }
            let height = value.saturating_mul(96) / top;
            let _ = write!(
                svg,
                "<rect class=\"{class}\" x=\"{}\" y=\"{}\" width=\"4\" height=\"{height}\"><title>{value} {key}</title></rect>",
                x + offset,
                100u64.saturating_sub(height),
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_certificates_card_shows_the_warning_first_and_wide() {
        let summary = json!({"certificates": [
            {"domain": "a.example", "expires_at": "2027-03-01T00:00:00Z", "days_left": 85,
             "level": "ok", "message": null},
            {"domain": "<b>.example", "expires_at": "2026-12-16T00:00:00Z", "days_left": 10,
             "level": "warning", "message": "The certificate for <b>.example expires in 10 days"},
        ]});
        let page = html(&summary);
        assert!(
            page.contains(
                "<section class=\"card wide urgent\" id=\"certificates\"><h2>Certificates</h2><ul \
             id=\"cert-alerts\"><li class=\"warning\" data-level=\"warning\">The certificate \
             for &lt;b&gt;.example expires in 10 days</li></ul>"
            ),
            "{page}"
        );
        assert!(page.contains(
            "<tr><td>a.example</td><td>2027-03-01T00:00:00Z</td><td>85</td></tr><tr><td>&lt;b&gt;.example</td>"
        ), "{page}");
        let plain = html(&json!({"certificates": []}));
        assert!(
            plain.contains(
                "<section class=\"card\" id=\"certificates\"><h2>Certificates</h2><ul \
             id=\"cert-alerts\"></ul>"
            ),
            "{plain}"
        );
        assert!(plain.contains("none: plain HTTP, or no certificate yet"));
    }

    #[test]
    fn escapes_markup_quotes_and_controls() {
        assert_eq!(
            escape("<script>\"a\"&'b'\u{1b}[2J</script>"),
            "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;\\u{1b}[2J&lt;/script&gt;"
        );
    }

    #[test]
    fn renders_a_delivery_id_from_the_network_as_text() {
        let summary = json!({
            "recent": [{"at": "2026-01-01T00:00:00Z", "status": 401, "delivery_id": "<img src=x onerror=alert(1)>", "reason": "mismatch"}],
            "rejections": {"<b>": 1},
        });
        let page = html(&summary);
        assert!(!page.contains("<img"));
        assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(page.contains("<td>&lt;b&gt;</td>"));
    }

    #[test]
    fn a_worker_page_shows_the_inbox_and_the_retention_only() {
        let summary = json!({"role": "work", "inbox": {"states": {"pending": 3, "dead": 1}}});
        let page = html(&summary);
        assert!(page.contains("<span class=\"n\" data-k=\"inbox.pending\">3</span>"));
        assert!(page.contains("<span class=\"n\" data-k=\"inbox.dead\">1</span>"));
        assert!(page.contains("This process does not prune the inbox."));
        assert!(!page.contains("Deliveries per minute"));
        assert!(!page.contains("id=\"keys\""));
    }

    #[test]
    fn the_inbox_card_lists_states_in_order_with_the_total() {
        let summary = json!({"inbox": {
            "states": {"claimed": 1, "dead": 2, "done": 999_000, "pending": 3},
            "total": 999_006,
        }});
        let page = html(&summary);
        let at = |needle: &str| page.find(needle).unwrap_or_else(|| panic!("{needle}"));
        assert!(at("<td>pending</td>") < at("<td>claimed</td>"));
        assert!(at("<td>claimed</td>") < at("<td>done</td>"));
        assert!(at("<td>done</td>") < at("<td>dead</td>"));
        assert!(page.contains(
            "<tr class=\"total\"><td>all</td><td><span class=\"n\" data-k=\"inbox.total\">999006</span></td></tr>"
        ));
    }

    #[test]
    fn the_retention_card_shows_what_is_kept_and_pruned() {
        let summary = json!({
            "retention": {"done": "30d", "dead": "forever", "v1": "30d", "keys": "7d",
                          "last_round_at": "2026-12-01T00:00:00Z", "error": "disk <full>", "off": null},
            "pruned": {"done": 1000, "dead": 0, "v1": 2, "keys": 7},
        });
        let page = html(&summary);
        assert!(page.contains(
            "<tr><td>done events</td><td data-r=\"done\">30d</td><td><span class=\"n\" data-k=\"pruned.done\">1000</span></td></tr>"
        ));
        assert!(page.contains("<td data-r=\"dead\">forever</td>"));
        assert!(page.contains("data-k=\"pruned.keys\">7<"));
        assert!(page.contains("<span id=\"prune-last\">last round at 2026-12-01T00:00:00Z</span>"));
        assert!(page.contains("<p class=\"error\" id=\"prune-error\">disk &lt;full&gt;</p>"));
    }
}
