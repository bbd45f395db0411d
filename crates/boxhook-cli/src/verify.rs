//! `boxhook verify`: check a captured delivery with the core's `Verifier`,
//! and when it fails, say why (see `diagnose`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use boxhook_core::{Clock as _, Freshness, Printable, SystemClock};
use chrono::{DateTime, Utc};

use crate::diagnose::{diagnose, Report};
use crate::keys::KeyArgs;
use crate::{read_input, usage};

/// Arguments of `boxhook verify`.
#[derive(clap::Args)]
#[command(after_help = "\
The headers file holds `Name: value` lines as captured: names in any case, \
CRLF or LF, other lines (a request or status line, curl's `> ` prefixes) \
ignored, and everything after the first blank line following the headers \
ignored too.

With --body-from-request, one file holds the whole request: a raw capture \
(`nc -l 8080 > req.txt`: request line, headers, blank line, body, framed by \
Content-Length or chunked) or a `curl -v` dump in which the body was kept \
after the `>` line that ends the headers.

Each hint has a stable code (with --json: `hints` is a list of objects with \
`code` and `message`); docs/DIAGNOSIS.md lists them.

Exit status: 0 valid, 1 invalid, 2 usage error.

Examples:
  boxhook verify --headers req.txt --body body.json
  # as of when it arrived, for a request captured an hour ago:
  boxhook verify --headers req.txt --body body.json --now 2024-05-14T15:02:20Z
  boxhook verify --body-from-request req.txt --json")]
pub(crate) struct Args {
    /// The captured request headers.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "body_from_request"
    )]
    headers: Option<PathBuf>,
    /// The captured body, byte for byte.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "body_from_request"
    )]
    body: Option<PathBuf>,
    /// One file holding the whole captured request, headers and body.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["headers", "body"])]
    body_from_request: Option<PathBuf>,
    /// The receiver's time to check freshness against, RFC 3339 [default: now]
    #[arg(long, value_name = "T")]
    now: Option<String>,
    /// The maximum age of a delivery, in seconds (Box: 600).
    #[arg(long, value_name = "S", default_value_t = 600)]
    max_age: u64,
    /// How far ahead of --now a timestamp may be, in seconds.
    #[arg(long, value_name = "S", default_value_t = 60)]
    max_future_skew: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    pub(crate) keys: crate::keys::KeyArgs,
}

/// Verifies, prints the verdict, and exits 0 (valid) or 1 (invalid).
pub(crate) fn run(keys: &KeyArgs, args: &Args) -> anyhow::Result<ExitCode> {
    let diagnosis_keys = keys.diagnosis_keys()?;
    let (headers_text, body, headers_from) =
        match (&args.body_from_request, &args.headers, &args.body) {
            (Some(request), _, _) => {
                let capture = read_input(request, "request capture")?;
                let (head, body) = crate::capture::split(&capture)
                    .map_err(|why| usage(format!("{}: {why}", request.display())))?;
                (head, body, request)
            }
            (None, Some(headers), Some(body)) => (
                String::from_utf8_lossy(&read_input(headers, "headers file")?).into_owned(),
                read_input(body, "body file")?,
                headers,
            ),
            _ => return Err(usage("pass --headers and --body, or --body-from-request")),
        };
    let now: DateTime<Utc> = match &args.now {
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map_err(|_| usage(format!("--now {text:?} is not an RFC 3339 date-time")))?
            .to_utc(),
        None => SystemClock.now(),
    };
    let freshness = Freshness::new(
        Duration::from_secs(args.max_age),
        Duration::from_secs(args.max_future_skew),
    );
    let headers = parse_headers(&headers_text);
    if headers.is_empty() {
        return Err(usage(format!(
            "{} holds no `Name: value` header lines",
            headers_from.display()
        )));
    }
    let report = diagnose(&diagnosis_keys, &headers, &body, now, freshness);
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(if report.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The `(name, value)` pairs of a captured header block.
///
/// Lines without a colon, or whose part before the colon is not an HTTP
/// token (a request line such as `POST http://host/ HTTP/1.1`), are skipped.
/// A line starting with white space continues the previous value (a
/// wrapped header). The block ends at the first blank line after a header.
pub(crate) fn parse_headers(text: &str) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line
            .strip_prefix("> ")
            .or_else(|| line.strip_prefix("< "))
            .unwrap_or(line);
        if line.trim().is_empty() {
            if pairs.is_empty() {
                continue;
            }
            break;
        }
        if line.starts_with([' ', '\t']) {
            // A folded continuation line (obs-fold): part of the previous value.
            if let Some((_, value)) = pairs.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            continue;
        }
        pairs.push((name.to_owned(), value.trim().to_owned()));
    }
    pairs
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl Report {
    /// The human report. Messages and hints can quote the capture (header
    /// values, names): written through `Printable`, so no control character
    /// of it reaches the terminal. (`--json` is escaped by JSON itself.)
    fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let message = Printable(&self.message);
        if self.valid {
            let _ = writeln!(out, "valid: {message}");
        } else {
            let reason = Printable(self.reason.unwrap_or("invalid"));
            let _ = writeln!(out, "invalid ({reason}): {message}");
        }
        for hint in &self.hints {
            let _ = writeln!(out, "  - [{}] {}", hint.code(), Printable(hint.message()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_headers, Report};
    use boxhook_core::diagnose::{Hint, HintCode};

    #[test]
    fn the_text_report_escapes_what_the_capture_put_in_it() {
        let report = Report {
            valid: false,
            key: None,
            form: None,
            reason: Some("malformed_timestamp"),
            message: "timestamp \"x\u{1b}]0;t\u{7}\" is not an RFC 3339 date-time".to_owned(),
            hints: vec![Hint::new(
                HintCode::Unexplained,
                "line\nforged: ok \u{202e}",
            )],
            delivery_id: Some("d\n1".to_owned()),
        };
        let text = report.to_text();
        assert_eq!(
            text,
            "invalid (malformed_timestamp): timestamp \"x\\u{1b}]0;t\\u{7}\" is not an RFC 3339 date-time\n  - [unexplained] line\\nforged: ok \\u{202e}\n"
        );
        assert_eq!(text.lines().count(), 2, "no forged line");
        assert!(text
            .lines()
            .all(|line| !line.chars().any(|c| c.is_control() || c == '\u{202e}')));
    }

    #[test]
    fn parses_captures_in_their_usual_shapes() {
        let cases: [(&str, &[(&str, &str)]); 5] = [
            (
                "BOX-SIGNATURE-PRIMARY: abc\r\n\tdef\r\n",
                &[("BOX-SIGNATURE-PRIMARY", "abc def")],
            ),
            (
                "POST /hook HTTP/1.1\r\nHost: x\r\nBOX-DELIVERY-ID: d-1\r\n\r\n{\"a\":1}",
                &[("Host", "x"), ("BOX-DELIVERY-ID", "d-1")],
            ),
            (
                "> POST http://h:1/ HTTP/1.1\n> box-signature-primary: ab=\n",
                &[("box-signature-primary", "ab=")],
            ),
            (
                "\n\nBox-Delivery-Timestamp:2020-01-01T00:00:00Z  \n",
                &[("Box-Delivery-Timestamp", "2020-01-01T00:00:00Z")],
            ),
            ("HTTP/1.1 200 OK\nnot a header\n", &[]),
        ];
        for (text, want) in cases {
            let got = parse_headers(text);
            let got: Vec<_> = got.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            assert_eq!(got, want, "{text:?}");
        }
    }
}
