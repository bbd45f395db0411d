//! `webhooks plan|apply`: every declared address checked against Box's
//! rules (`boxhook check-address`'s checks), shown with the plan; a failing
//! address is a warning, or with `--strict` an error (exit 2, nothing
//! applied). On by default: an address Box refuses shows up otherwise only
//! as deliveries that never arrive. `--no-check-addresses` skips them.

use std::io::Write as _;

use boxhook_admin::address::{check, Options, Report};
use boxhook_admin::DesiredState;
use boxhook_core::Printable;
use serde_json::Value;

use crate::usage;

/// Checks each distinct address of `desired`, in the file's order.
pub(super) async fn check_all(desired: &DesiredState) -> anyhow::Result<Vec<Report>> {
    let mut addresses: Vec<&str> = Vec::new();
    for webhook in desired.webhooks() {
        if !addresses.contains(&webhook.address.as_str()) {
            addresses.push(&webhook.address);
        }
    }
    let options = Options::default();
    let mut reports = Vec::with_capacity(addresses.len());
    for address in addresses {
        reports.push(
            check(address, &options)
                .await
                .map_err(|err| usage(err.to_string()))?,
        );
    }
    Ok(reports)
}

/// The reports as JSON: `[{"url", "ok", "checks": [{"rule", "status", "reason"}]}]`.
pub(super) fn json(reports: &[Report]) -> Value {
    Value::Array(reports.iter().map(crate::check_address::json).collect())
}

/// Prints the reports as lines: each address with its failed and warned
/// rules (all rules passing: one line); `strict` says a failure is an error.
pub(super) fn print(reports: &[Report], strict: bool) -> anyhow::Result<()> {
    let failure = if strict {
        "Box would not accept it (an error with --strict)"
    } else {
        "Box would not accept it (a warning; --strict makes it an error)"
    };
    let mut out = std::io::stdout().lock();
    for report in reports {
        let url = Printable(report.url());
        if report.failed() {
            writeln!(out, "address    {url}: {failure}")?;
        } else {
            writeln!(out, "address    {url}: Box's rules hold")?;
        }
        for c in report.checks() {
            if matches!(c.verdict.status(), "fail" | "warn") {
                writeln!(
                    out,
                    "  {:<8} {:<15} {}",
                    c.verdict.status(),
                    c.rule.id(),
                    Printable(c.verdict.reason())
                )?;
            }
        }
    }
    Ok(())
}

/// With `--strict`, the error when any address failed: exit 2, nothing applied.
pub(super) fn strict_failure(reports: &[Report]) -> Option<anyhow::Error> {
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| r.failed())
        .map(|r| r.url().to_owned())
        .collect();
    (!failed.is_empty()).then(|| {
        usage(format!(
            "--strict: {} address(es) fail Box's rules, nothing sent to Box: {}",
            failed.len(),
            failed.join(", ")
        ))
    })
}
