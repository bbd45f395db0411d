//! `boxhook check-address URL`: Box's rules for a notification URL, each
//! checked from the outside and printed as pass / fail / warn / skipped
//! with its reason (the checks are `boxhook_admin::address`).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use boxhook_admin::address::{check, Options, Report, Resolve};
use boxhook_core::Printable;

use crate::keys::KeyArgs;
use crate::usage;

/// Arguments of `boxhook check-address`.
#[derive(clap::Args)]
#[command(after_help = "\
Rules (Box's webhook limitations page): https on port 443; the host resolves \
to public addresses only; not box.com or under it; a certificate chain that \
verifies against Mozilla's roots for the host, not self-signed, not expired \
(a warning under 14 days); TLS 1.2 and TLS 1.3 handshakes offering only \
FIPS-approved suites and groups (AES-GCM, P-256/P-384); TLS 1.0 and 1.1 \
refused (a warning if accepted); with --send, a signed FILE.UPLOADED \
delivery answered 2xx within 30 s.

Run it before `boxhook webhooks apply`, which runs the same checks on every \
declared address (a failing one is a warning; --strict: an error).

Exit status: 0 if no rule failed (warnings and skipped rules do not fail), \
1 if one did, 2 usage error.

Examples:
  boxhook check-address https://hooks.example.com/box/webhooks
  BOX_PRIMARY_KEY=... boxhook check-address --send https://hooks.example.com/box/webhooks
  boxhook check-address --json https://hooks.example.com/box/webhooks | jq .")]
pub(crate) struct Args {
    /// The notification URL, as it will be given to Box.
    #[arg(value_name = "URL")]
    url: String,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    json: bool,
    /// Also send a signed test delivery (FILE.UPLOADED, a fresh event id)
    /// with the keys, and require a 2xx within --timeout.
    #[arg(long)]
    send: bool,
    /// How long the test delivery may take, in seconds (Box: 30).
    #[arg(long, value_name = "S", default_value_t = 30, requires = "send")]
    timeout: u64,
    /// For tests: also trust the CA certificates in this PEM file.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// For tests: connect to ADDR (an IP address, optionally with a port:
    /// 127.0.0.1:8443) for HOST, without DNS.
    #[arg(long, value_name = "HOST:ADDR")]
    resolve: Option<String>,
    /// For tests: a loopback or private address warns instead of failing
    /// (the real Box would still not deliver there).
    #[arg(long)]
    allow_private_address: bool,
    #[command(flatten)]
    pub(crate) keys: KeyArgs,
}

/// Checks, prints, and exits 0 (no rule failed) or 1.
pub(crate) fn run(keys: &KeyArgs, args: &Args) -> anyhow::Result<ExitCode> {
    let mut options = Options::default();
    options.allow_private_address = args.allow_private_address;
    options.delivery_timeout = Duration::from_secs(args.timeout);
    if let Some(pin) = &args.resolve {
        options.resolve = Some(
            pin.parse::<Resolve>()
                .map_err(|err| usage(err.to_string()))?,
        );
    }
    if let Some(path) = &args.ca_file {
        options.extra_roots = crate::ca_file::read(path, "--ca-file")?;
    }
    if args.send {
        options.send = Some(keys.ring()?);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime
        .block_on(check(&args.url, &options))
        .map_err(|err| usage(err.to_string()))?;
    if args.json {
        println!("{}", json(&report));
    } else {
        print!("{}", text(&report));
    }
    Ok(if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// One line per rule, then a summary.
fn text(report: &Report) -> String {
    let mut out = format!("check-address {}\n", Printable(report.url()));
    let mut counts = [0_usize; 4];
    for c in report.checks() {
        let status = c.verdict.status();
        let slot = ["pass", "fail", "warn", "skipped"]
            .iter()
            .position(|s| *s == status)
            .unwrap_or_default();
        if let Some(count) = counts.get_mut(slot) {
            *count += 1;
        }
        let _ = writeln!(
            out,
            "  {status:<8} {:<15} {}",
            c.rule.id(),
            Printable(c.verdict.reason())
        );
    }
    let [pass, fail, warn, skipped] = counts;
    let verdict = if report.failed() {
        "Box would not accept this address"
    } else {
        "Box's rules hold"
    };
    let _ = writeln!(
        out,
        "{verdict}: {pass} passed, {fail} failed, {warn} warned, {skipped} skipped"
    );
    out
}

/// `{"url", "ok", "checks": [{"rule", "status", "reason"}]}`.
pub(crate) fn json(report: &Report) -> serde_json::Value {
    serde_json::json!({
        "url": report.url(),
        "ok": !report.failed(),
        "checks": report.checks().iter().map(|c| serde_json::json!({
            "rule": c.rule.id(),
            "status": c.verdict.status(),
            "reason": c.verdict.reason(),
        })).collect::<Vec<_>>(),
    })
}
