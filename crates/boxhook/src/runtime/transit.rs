//! What happens to a body in transit, one change at a time: the cases the
//! diagnosis (`boxhook::diagnose`) must recognise. Each function returns
//! `None` when the change would leave the body as it is.
//!
//! ```
//! use boxhook::runtime::transit;
//!
//! assert_eq!(transit::spaced(br#"{"a":[1,2]}"#).as_deref(), Some(&br#"{"a": [1, 2]}"#[..]));
//! assert_eq!(transit::crlf(b"a\nb").as_deref(), Some(&b"a\r\nb"[..]));
//! assert_eq!(transit::mojibake("é".as_bytes()).as_deref(), Some("Ã©".as_bytes()));
//! ```

use unicode_normalization::UnicodeNormalization as _;

/// Python's `json.dumps` default separators: `", "` and `": "` between
/// tokens, strings untouched.
#[must_use]
pub fn spaced(body: &[u8]) -> Option<Vec<u8>> {
    rewrite(body, |b, out, _| {
        out.push(b);
        if b == b',' || b == b':' {
            out.push(b' ');
        }
    })
}

/// Pretty-printed with two-space indentation, as `JSON.stringify(v, null, 2)`
/// writes it (empty objects and arrays get a line break too).
#[must_use]
pub fn indented(body: &[u8]) -> Option<Vec<u8>> {
    rewrite(body, |b, out, depth| match b {
        b'{' | b'[' => {
            out.push(b);
            *depth = depth.saturating_add(1);
            newline(out, *depth);
        }
        b'}' | b']' => {
            *depth = depth.saturating_sub(1);
            newline(out, *depth);
            out.push(b);
        }
        b',' => {
            out.push(b);
            newline(out, *depth);
        }
        b':' => out.extend_from_slice(b": "),
        _ => out.push(b),
    })
}

fn newline(out: &mut Vec<u8>, depth: usize) {
    out.push(b'\n');
    for _ in 0..depth {
        out.extend_from_slice(b"  ");
    }
}

/// Applies `token` to every byte outside JSON strings.
fn rewrite(body: &[u8], mut token: impl FnMut(u8, &mut Vec<u8>, &mut usize)) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len().saturating_mul(2));
    let (mut in_string, mut escaped, mut depth) = (false, false, 0usize);
    for &b in body {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
            out.push(b);
        } else {
            token(b, &mut out, &mut depth);
        }
    }
    (out != body).then_some(out)
}

/// Parsed and written again with the top-level members in reverse order
/// (and Box's escapes lost, as `serde_json` writes strings).
#[must_use]
pub fn reordered(body: &[u8]) -> Option<Vec<u8>> {
    crate::runtime::send::reserialize::reordered(body).filter(|out| out != body)
}

/// Decoded as Windows-1252 and encoded again as UTF-8 (`é` → `Ã©`).
#[must_use]
pub fn mojibake(body: &[u8]) -> Option<Vec<u8>> {
    // The WHATWG table for 0x80–0x9F; the rest is Latin-1.
    const HIGH: &str = "€\u{81}‚ƒ„…†‡ˆ‰Š‹Œ\u{8d}Ž\u{8f}\u{90}‘’“”•–—˜™š›œ\u{9d}žŸ";
    let mut out = String::with_capacity(body.len().saturating_mul(2));
    for &b in body {
        match b {
            0x80..=0x9F => out.extend(HIGH.chars().nth(usize::from(b & 0x1F))),
            _ => out.push(char::from(b)),
        }
    }
    (out.as_bytes() != body).then(|| out.into_bytes())
}

/// Every line feed made CR LF.
#[must_use]
pub fn crlf(body: &[u8]) -> Option<Vec<u8>> {
    if !body.contains(&b'\n') {
        return None;
    }
    let mut out = Vec::with_capacity(body.len().saturating_mul(2));
    for &b in body {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    Some(out)
}

/// A UTF-8 byte-order mark in front.
#[must_use]
pub fn bom(body: &[u8]) -> Option<Vec<u8>> {
    Some([&b"\xEF\xBB\xBF"[..], body].concat())
}

/// A line feed at the end.
#[must_use]
pub fn trailing_newline(body: &[u8]) -> Option<Vec<u8>> {
    Some([body, b"\n"].concat())
}

/// Converted to Unicode normalization form D (as macOS file names are).
#[must_use]
pub fn nfd(body: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(body).ok()?;
    let out: String = text.nfd().collect();
    (out != text).then(|| out.into_bytes())
}
