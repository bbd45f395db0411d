//! `boxhook sign`: the headers Box would send for a body, signed with the
//! core's `Signer` (one implementation of Box's signature in the tree).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use boxhook::runtime::send::DeliveryIds;
use boxhook_core::{Clock as _, DeliveryTimestamp, Signer, SystemClock};

use crate::keys::KeyArgs;
use crate::{read_input, usage};

/// Arguments of `boxhook sign`.
#[derive(clap::Args)]
#[command(after_help = "\
Exit status: 0 signed, 2 usage error.

Examples:
  boxhook sign --primary-key \"$KEY\" --body event.json > headers.txt
  boxhook verify --primary-key \"$KEY\" --headers headers.txt --body event.json")]
pub(crate) struct Args {
    /// The body to sign, byte for byte.
    #[arg(long, value_name = "FILE")]
    body: PathBuf,
    /// BOX-DELIVERY-TIMESTAMP, RFC 3339, signed exactly as written [default: now, in Box's form]
    #[arg(long, value_name = "T")]
    timestamp: Option<String>,
    /// BOX-DELIVERY-ID [default: a fresh UUID-shaped id]
    #[arg(long, value_name = "ID")]
    delivery_id: Option<String>,
    /// Sign the body as PHP's json_encode would have written it (`\/`,
    /// `\uXXXX`), as Box does, instead of the bytes as they are.
    #[arg(long)]
    escaped: bool,
    #[command(flatten)]
    pub(crate) keys: crate::keys::KeyArgs,
}

/// Prints one `Name: value` line per header, in Box's order and spelling.
pub(crate) fn run(keys: &KeyArgs, args: &Args) -> anyhow::Result<ExitCode> {
    let ring = keys.ring()?;
    let body = read_input(&args.body, "body file")?;
    let timestamp = match &args.timestamp {
        Some(text) => DeliveryTimestamp::parse(text)
            .map_err(|_| usage(format!("--timestamp {text:?} is not an RFC 3339 date-time")))?,
        None => DeliveryTimestamp::from_utc(SystemClock.now()),
    };
    let delivery_id = args
        .delivery_id
        .clone()
        .unwrap_or_else(|| DeliveryIds::random().next_id());
    if delivery_id.is_empty() || delivery_id.chars().any(char::is_control) {
        return Err(usage(
            "--delivery-id must be non-empty, without control characters",
        ));
    }
    let box_signer = Signer::new(ring);
    let signed = if args.escaped {
        box_signer
            .sign_escaped(&body, &timestamp, &delivery_id)
            .map_err(|err| usage(format!("--escaped needs a UTF-8 body: {err}")))?
    } else {
        box_signer.sign(&body, &timestamp, &delivery_id)
    };
    let mut lines = String::new();
    for (name, value) in signed.iter() {
        let _ = writeln!(lines, "{}: {value}", name.to_ascii_uppercase());
    }
    // One fallible write, not `println!`: a reader that closes the pipe
    // early (`| head -1`) ends the command quietly instead of a panic.
    std::io::Write::write_all(&mut std::io::stdout().lock(), lines.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
