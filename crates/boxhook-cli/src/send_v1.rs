//! `boxhook send --v1`: one V1 callback, the way Box sends it: the callback
//! URL as configured in the Developer Console, its `#placeholder#`s
//! replaced, as a GET (or, with `--post`, its query as a form body).

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use boxhook::v1::Params;
use boxhook_core::Printable;
use http::Uri;

use crate::usage;

/// What the placeholders stand for unless `--set` says otherwise (the
/// trigger comes from `--trigger`).
const DEFAULTS: [(&str, &str); 4] = [
    ("item_id", "123456789"),
    ("item_name", "Q1 report.pdf"),
    ("item_type", "file"),
    ("from_user_id", "22"),
];

/// One V1 callback to send.
pub(crate) struct Callback<'a> {
    /// The callback URL, placeholders and all.
    pub(crate) url: &'a str,
    /// What `#event_type#` becomes.
    pub(crate) trigger: &'a str,
    /// `name=value` pairs for other placeholders.
    pub(crate) set: &'a [String],
    /// Send the query as a form body.
    pub(crate) post: bool,
    /// How long to wait for the answer.
    pub(crate) timeout: Duration,
}

/// Sends it, printing one line; exit 0 on a 2xx.
pub(crate) fn run(callback: &Callback<'_>) -> anyhow::Result<ExitCode> {
    let url = fill(callback.url, callback.trigger, callback.set)?;
    let uri: Uri = url.parse().map_err(|err| {
        usage(format!(
            "--to {}: not a URL once filled in: {err}",
            Printable(&url)
        ))
    })?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(usage(
            "--to must be an http:// URL (point it at the receiver behind the TLS proxy)",
        ));
    }
    let started = Instant::now();
    let status = send(&uri, callback.post, callback.timeout)?;
    println!(
        "V1 {} {}  {status}  {} ms",
        if callback.post { "POST" } else { "GET" },
        Printable(uri.path()),
        started.elapsed().as_millis()
    );
    Ok(if (200..300).contains(&status) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `url` with every `#name#` replaced by its value, form-encoded.
pub(crate) fn fill(url: &str, trigger: &str, set: &[String]) -> anyhow::Result<String> {
    let mut values: Vec<(String, String)> = vec![("event_type".into(), trigger.into())];
    values.extend(
        DEFAULTS
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
    );
    for pair in set {
        let (name, value) = pair.split_once('=').ok_or_else(|| {
            usage(format!(
                "--set {}: write NAME=VALUE, e.g. item_id=42",
                Printable(pair)
            ))
        })?;
        values.retain(|(n, _)| n != name);
        values.push((name.to_owned(), value.to_owned()));
    }
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(start) = rest.find('#') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('#') else {
            return Err(usage("--to: a # without its closing #, e.g. #item_id#"));
        };
        let name = &after[..end];
        let Some((_, value)) = values.iter().find(|(n, _)| n == name) else {
            let known: Vec<&str> = values.iter().map(|(n, _)| n.as_str()).collect();
            return Err(usage(format!(
                "--to: no value for #{}#; known: {}; add --set {}=VALUE",
                Printable(name),
                known.join(", "),
                Printable(name)
            )));
        };
        // A form value on its own: the encoding of a one-pair form, minus "x=".
        let encoded = Params::from_pairs([("x", value.as_str())]).encode();
        out.push_str(&encoded[2..]);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// One HTTP/1.1 request on a fresh connection; returns the status.
pub(crate) fn send(uri: &Uri, post: bool, timeout: Duration) -> anyhow::Result<u16> {
    let host = uri.host().unwrap_or_default();
    let tcp_port = uri.port_u16().unwrap_or(80);
    let addr = (host, tcp_port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| anyhow::anyhow!("{host} resolves to no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|err| anyhow::anyhow!("cannot connect to {addr}: {err}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let authority = uri.authority().map_or(host, |a| a.as_str());
    let request = if post {
        let body = uri.query().unwrap_or_default();
        format!(
            "POST {} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: boxhook-send-v1\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            uri.path(),
            body.len()
        )
    } else {
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        format!(
            "GET {target} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: boxhook-send-v1\r\n\
             Connection: close\r\n\r\n"
        )
    };
    stream.write_all(request.as_bytes())?;
    let mut head = Vec::new();
    let mut buf = [0_u8; 1024];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > 8192 {
            break;
        }
    }
    let line = String::from_utf8_lossy(&head);
    line.split(' ')
        .nth(1)
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no HTTP status in the answer from {addr}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_encoded() {
        let url = "http://h/v1?token=s&e=#event_type#&n=#item_name#&i=#item_id#&x=#extra#";
        let set = ["extra=a&b é".to_owned(), "item_id=42".to_owned()];
        assert_eq!(
            fill(url, "uploaded", &set).expect("fills"),
            "http://h/v1?token=s&e=uploaded&n=Q1+report.pdf&i=42&x=a%26b+%C3%A9"
        );
    }

    #[test]
    fn unknown_or_unclosed_placeholders_are_usage_errors() {
        let unknown = fill("http://h/?a=#nope#", "t", &[]).expect_err("unknown");
        assert!(
            unknown.to_string().contains("no value for #nope#"),
            "{unknown}"
        );
        assert!(fill("http://h/?a=#item_id", "t", &[]).is_err());
        assert!(fill("http://h/", "t", &["novalue".to_owned()]).is_err());
    }
}
