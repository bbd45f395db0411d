//! Repairs of the body, each tried alone: a trailing line break, a
//! byte-order mark, line endings, JSON white space, charset damage and
//! Unicode normalization.

use unicode_normalization::UnicodeNormalization as _;

use super::check::Check;
use super::{charset, json, Hint, HintCode};
use crate::Freshness;

const BOM: &[u8] = b"\xEF\xBB\xBF";

pub(super) fn repairs(check: &Check<'_, '_>, freshness: Freshness) -> Vec<Hint> {
    let body = check.body;
    let mut hints = Vec::new();
    let mut found = |code: HintCode, repaired: &[u8], message: &str| {
        if repaired != body
            && let Some(v) = check.body_verifies(repaired, freshness)
        {
            hints.push(Hint::new(
                code,
                format!("{message}; repaired, it verifies ({} key)", v.key_slot()),
            ));
        }
    };

    let trimmed = body.strip_suffix(b"\n").unwrap_or(body);
    let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
    found(
        HintCode::TrailingNewline,
        trimmed,
        "the body ends with a line break the request did not have (an editor, `echo` or \
         a capture tool added it)",
    );

    if let Some(stripped) = body.strip_prefix(BOM) {
        found(
            HintCode::Bom,
            stripped,
            "the body starts with a UTF-8 byte-order mark (EF BB BF) Box never sends: an \
             editor or a Windows tool added it",
        );
    }

    if body.windows(2).any(|w| w == b"\r\n") {
        found(
            HintCode::Crlf,
            &replace(body, b"\r\n", b"\n"),
            "the body's line feeds were turned into CR LF (a Windows tool, or a text-mode \
             transfer)",
        );
    }
    if body.contains(&b'\n') {
        let mut lf_only = Vec::with_capacity(body.len());
        let mut previous = 0u8;
        for &b in body {
            if b == b'\n' && previous != b'\r' {
                lf_only.push(b'\r');
            }
            lf_only.push(b);
            previous = b;
        }
        found(
            HintCode::Crlf,
            &lf_only,
            "the body's CR LF line endings were turned into line feeds (a text-mode \
             transfer or Git's line-ending conversion)",
        );
    }

    if let Some(compact) = json::compacted(body) {
        found(
            HintCode::ReserializedWhitespace,
            &compact,
            "the body has JSON white space (indentation, `\": \"`, `\", \"`) that Box never \
             sends: a framework parsed the JSON and wrote it again pretty-printed or \
             spaced (Python's json.dumps, JSON.stringify with an indent); verify the raw \
             bytes before parsing",
        );
    }

    if let Some(original) = charset::undo_mojibake(body) {
        found(
            HintCode::Charset,
            &original,
            "the body was decoded as Latin-1 / Windows-1252 and written again as UTF-8 \
             (`é` became `Ã©`): read the body as bytes, or as UTF-8",
        );
    }

    if let Ok(text) = std::str::from_utf8(body)
        && !text.is_ascii()
    {
        for (form, normal) in [
            ("NFC", text.nfc().collect::<String>()),
            ("NFD", text.nfd().collect::<String>()),
        ] {
            found(
                HintCode::UnicodeNormalized,
                normal.as_bytes(),
                &format!(
                    "the body's Unicode normalization was changed (Box sent it in {form}; \
                         macOS file names and some text tools convert it): keep the bytes \
                         as received"
                ),
            );
        }
    }
    hints
}

fn replace(body: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix(from) {
            out.extend_from_slice(to);
            rest = after;
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}
