//! What the fake checks the way Box does, and its form and query decoding.

use std::collections::HashMap;

pub(super) fn target_problem(kind: &str, id: &str) -> Option<&'static str> {
    if !matches!(kind, "file" | "folder") {
        return Some("Bad Request: target.type must be file or folder");
    }
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Some("Bad Request: target.id is invalid");
    }
    (kind == "folder" && id == "0")
        .then_some("Bad Request: webhooks cannot be created on the root folder")
}

pub(super) fn address_problem(address: &str) -> Option<&'static str> {
    let Ok(uri) = address.parse::<http::Uri>() else {
        return Some("Bad Request: address is not a valid URL");
    };
    if uri.scheme_str() != Some("https") {
        return Some("Bad Request: address must be an HTTPS URL");
    }
    if !matches!(uri.port_u16(), None | Some(443)) {
        return Some("Bad Request: address must use port 443");
    }
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if host.is_empty() || host == "box.com" || host.ends_with(".box.com") {
        return Some("Bad Request: address must not be a Box address");
    }
    None
}

/// `a=b&c=d` (form or query), percent- and plus-decoded.
pub(super) fn form_pairs(raw: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(raw)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i.saturating_add(1)..i.saturating_add(3))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i = i.saturating_add(3);
            }
            (b'+', _) => {
                out.push(b' ');
                i = i.saturating_add(1);
            }
            _ => {
                out.push(b);
                i = i.saturating_add(1);
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
