//! What `plan`, `apply` and `list` print: aligned lines, or JSON. Text from
//! Box (ids, addresses, messages) goes through `Printable`.

use std::io::Write as _;

use boxhook_admin::{ApplyResult, Change, Error, Webhook};
use boxhook_core::Printable;
use serde_json::{json, Value};

fn describe(change: &Change) -> (&'static str, String, String) {
    match change {
        Change::Create { webhook } => (
            "create",
            webhook.target.clone(),
            format!(
                "{} {}",
                Printable(&webhook.address),
                webhook.triggers.join(",")
            ),
        ),
        Change::Update { id, webhook, diff } => {
            let mut parts = Vec::new();
            if let Some(a) = &diff.address {
                parts.push(format!(
                    "address {} -> {}",
                    Printable(&a.from),
                    Printable(&a.to)
                ));
            }
            let mut triggers: Vec<String> = diff
                .add_triggers
                .iter()
                .map(|t| format!("+{}", Printable(t)))
                .collect();
            triggers.extend(
                diff.remove_triggers
                    .iter()
                    .map(|t| format!("-{}", Printable(t))),
            );
            if !triggers.is_empty() {
                parts.push(format!("triggers {}", triggers.join(" ")));
            }
            (
                "update",
                webhook.target.clone(),
                format!("webhook {}: {}", Printable(id), parts.join("; ")),
            )
        }
        Change::Unchanged { id, webhook } => (
            "unchanged",
            webhook.target.clone(),
            format!("webhook {}", Printable(id)),
        ),
        Change::Delete {
            id,
            target,
            address,
        } => (
            "delete",
            target.clone(),
            format!("webhook {} ({})", Printable(id), Printable(address)),
        ),
    }
}

/// Prints a plan.
///
/// `addresses`: with `--json`, the address checks (unless
/// `--no-check-addresses`), under the key `addresses`.
pub(super) fn plan(changes: &[Change], json: bool, addresses: Option<Value>) -> anyhow::Result<()> {
    let count = |action: &str| changes.iter().filter(|c| describe(c).0 == action).count();
    let (create, update, unchanged, delete) = (
        count("create"),
        count("update"),
        count("unchanged"),
        count("delete"),
    );
    let mut out = std::io::stdout().lock();
    if json {
        let doc = json!({
            "changes": changes,
            "create": create, "update": update, "unchanged": unchanged, "delete": delete,
        });
        let doc = with_addresses(doc, addresses);
        writeln!(out, "{doc}")?;
        return Ok(());
    }
    for change in changes {
        let (action, target, detail) = describe(change);
        let target = Printable(&target).to_string();
        writeln!(out, "{action:<10} {target:<24} {detail}")?;
    }
    writeln!(
        out,
        "plan: {create} to create, {update} to update, {delete} to delete, {unchanged} unchanged"
    )?;
    Ok(())
}

fn error_json(err: &Error) -> Value {
    match err.api() {
        Some(api) => json!({
            "status": api.status, "code": api.code, "message": api.message, "request_id": api.request_id,
        }),
        None => json!({"message": err.to_string()}),
    }
}

/// `doc` with `"addresses": addresses` added, when given.
fn with_addresses(mut doc: Value, addresses: Option<Value>) -> Value {
    if let (Value::Object(map), Some(addresses)) = (&mut doc, addresses) {
        map.insert("addresses".into(), addresses);
    }
    doc
}

/// Prints what apply did; how many changes failed. `addresses` as for [`plan`].
pub(super) fn applied(
    results: &[ApplyResult],
    json: bool,
    addresses: Option<Value>,
) -> anyhow::Result<usize> {
    let failed = results.iter().filter(|r| r.result.is_err()).count();
    let mut out = std::io::stdout().lock();
    if json {
        let items: Vec<Value> = results
            .iter()
            .map(|r| {
                let mut item = serde_json::to_value(&r.change).unwrap_or(Value::Null);
                if let Value::Object(map) = &mut item {
                    match &r.result {
                        Ok(done) => {
                            map.insert("result".into(), done.name().into());
                            map.insert("id".into(), done.id().into());
                        }
                        Err(err) => {
                            map.insert("result".into(), "failed".into());
                            map.insert("error".into(), error_json(err));
                        }
                    }
                }
                item
            })
            .collect();
        writeln!(
            out,
            "{}",
            with_addresses(
                json!({"results": items, "converged": failed == 0, "failed": failed}),
                addresses
            )
        )?;
        return Ok(failed);
    }
    for r in results {
        let (action, target, _) = describe(&r.change);
        let target = Printable(&target).to_string();
        match &r.result {
            Ok(done) => writeln!(
                out,
                "{:<18} {target:<24} webhook {}",
                done.name(),
                Printable(done.id())
            )?,
            Err(err) => writeln!(
                out,
                "{:<18} {target:<24} {action}: {}",
                "FAILED",
                Printable(&err.to_string())
            )?,
        }
    }
    if failed == 0 {
        writeln!(
            out,
            "apply: converged, {} webhook(s) as declared",
            results.len()
        )?;
    } else {
        writeln!(
            out,
            "apply: {failed} of {} change(s) FAILED (named above); run apply again once fixed",
            results.len()
        )?;
    }
    Ok(failed)
}

/// Prints the webhooks.
pub(super) fn list(all: &[Webhook], json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for w in all {
        if json {
            writeln!(
                out,
                "{}",
                json!({
                    "id": w.id, "target": w.target.to_string(), "address": w.address, "triggers": w.triggers,
                })
            )?;
        } else {
            writeln!(
                out,
                "{:<12} {:<24} {} {}",
                Printable(&w.id).to_string(),
                Printable(&w.target.to_string()).to_string(),
                Printable(&w.address),
                Printable(&w.triggers.join(","))
            )?;
        }
    }
    if !json {
        writeln!(out, "{} webhook(s)", all.len())?;
    }
    Ok(())
}
