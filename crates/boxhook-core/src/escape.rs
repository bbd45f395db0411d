//! The escaped form of a body: what PHP's `json_encode` would have written
//! (see "The escaped form" in docs/PROTOCOL.md).
//!
//! Box signs JSON that escapes every `/` inside strings as `\/` and every
//! non-ASCII character as lower-case `\uXXXX` (a UTF-16 surrogate pair above
//! U+FFFF). A proxy or framework that re-encodes the body as raw UTF-8, or
//! drops the `\/`, breaks the signature; the escaped form rebuilds the bytes
//! Box signed so the verifier can still match them.

use std::borrow::Cow;
use std::fmt;

/// Rewrites `body` the way PHP's default `json_encode` writes strings.
///
/// - every non-ASCII character becomes `\uXXXX` with lower-case hex, characters
///   above U+FFFF a surrogate pair (`😀` → `\ud83d\ude00`);
/// - every `/` inside a JSON string that is not already escaped becomes `\/`;
///   a `/` right after an escaped backslash (`\\/`) is *not* escaped, so it is
///   rewritten (`\\\/`), exactly as `json_encode` would have written it;
/// - everything else is copied unchanged, including `/` outside strings
///   (which valid JSON never has).
///
/// A body that needs no change — pure ASCII, already escaped, which is what Box
/// sends — comes back borrowed, without an allocation. The function is
/// idempotent and its output is always ASCII.
///
/// # Invalid UTF-8
///
/// `json_encode` refuses invalid UTF-8, so Box can never have signed such a
/// body in escaped form: the function returns [`EscapeError`] with the offset
/// of the first invalid byte, and the verifier then simply has no second form
/// to try.
///
/// ```
/// use boxhook_core::escaped_form;
///
/// let reserialized = r#"{"name":"スクリーン 2020/08.txt"}"#;
/// let escaped = escaped_form(reserialized.as_bytes())?;
/// assert_eq!(
///     &*escaped,
///     br#"{"name":"\u30b9\u30af\u30ea\u30fc\u30f3 2020\/08.txt"}"#,
/// );
///
/// // Already in Box's form: borrowed, untouched.
/// assert!(matches!(escaped_form(&escaped)?, std::borrow::Cow::Borrowed(_)));
/// // Invalid UTF-8 has no escaped form.
/// assert_eq!(escaped_form(b"{\"a\":\"\xff\"}").unwrap_err().valid_up_to(), 6);
/// # Ok::<(), boxhook_core::EscapeError>(())
/// ```
pub fn escaped_form(body: &[u8]) -> Result<Cow<'_, [u8]>, EscapeError> {
    let text = std::str::from_utf8(body).map_err(|e| EscapeError {
        valid_up_to: e.valid_up_to(),
    })?;
    let mut scanner = Scanner::default();
    let Some(first) = text
        .char_indices()
        .find(|&(_, c)| scanner.step(c) != Action::Keep)
    else {
        return Ok(Cow::Borrowed(body));
    };
    let (start, first_char) = first;
    // A guess for a few escapes; saturating, so even a body near `isize::MAX`
    // only makes `Vec` report its own capacity error, never an overflow.
    let mut out = Vec::with_capacity(body.len().saturating_add(body.len() / 4).saturating_add(8));
    out.extend_from_slice(&body[..start]);
    // The scanner has already stepped over the first char that changes.
    write_changed(first_char, &mut out);
    let rest = &text[start..][first_char.len_utf8()..];
    for c in rest.chars() {
        match scanner.step(c) {
            Action::Keep => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            Action::Rewrite => write_changed(c, &mut out),
        }
    }
    Ok(Cow::Owned(out))
}

fn write_changed(c: char, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    if c == '/' {
        out.extend_from_slice(b"\\/");
        return;
    }
    let mut units = [0u16; 2];
    for &unit in c.encode_utf16(&mut units).iter() {
        out.extend_from_slice(b"\\u");
        for shift in [12, 8, 4, 0] {
            out.push(HEX[usize::from((unit >> shift) & 0xf)]);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Keep,
    Rewrite,
}

/// Tracks whether we are inside a JSON string and right after a backslash.
#[derive(Default)]
struct Scanner {
    in_string: bool,
    after_backslash: bool,
}

impl Scanner {
    fn step(&mut self, c: char) -> Action {
        if !c.is_ascii() {
            self.after_backslash = false;
            return Action::Rewrite;
        }
        if !self.in_string {
            self.in_string = c == '"';
            return Action::Keep;
        }
        if self.after_backslash {
            // `\/`, `\\`, `\"`, `\u`...: the escaped char is taken as it is.
            self.after_backslash = false;
            return Action::Keep;
        }
        match c {
            '\\' => self.after_backslash = true,
            '"' => self.in_string = false,
            '/' => return Action::Rewrite,
            _ => {}
        }
        Action::Keep
    }
}

/// The body is not valid UTF-8, so it has no escaped form.
///
/// ```
/// use boxhook_core::escaped_form;
///
/// let err = escaped_form(b"ab\xc3").unwrap_err();
/// assert_eq!(err.valid_up_to(), 2);
/// assert_eq!(
///     err.to_string(),
///     "body is not valid UTF-8 from byte 2, so it has no escaped form",
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EscapeError {
    valid_up_to: usize,
}

impl EscapeError {
    /// How many leading bytes of the body are valid UTF-8.
    #[must_use]
    pub fn valid_up_to(&self) -> usize {
        self.valid_up_to
    }
}

impl fmt::Display for EscapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "body is not valid UTF-8 from byte {}, so it has no escaped form",
            self.valid_up_to
        )
    }
}

impl std::error::Error for EscapeError {}

#[cfg(test)]
mod tests {
    use super::escaped_form;

    #[test]
    fn table() {
        let cases: &[(&str, &str)] = &[
            (r#"{"a":"b"}"#, r#"{"a":"b"}"#),
            (r#"{"u":"http://x/y"}"#, r#"{"u":"http:\/\/x\/y"}"#),
            (r#"{"u":"http:\/\/x"}"#, r#"{"u":"http:\/\/x"}"#),
            (r#"{"p":"a\\/b"}"#, r#"{"p":"a\\\/b"}"#),
            (r#"{"p":"a\\\/b"}"#, r#"{"p":"a\\\/b"}"#),
            (r#"{"q":"say \"/\""}"#, r#"{"q":"say \"\/\""}"#),
            (r#"{"n":"é"}"#, r#"{"n":"\u00e9"}"#),
            (r#"{"n":"😀"}"#, r#"{"n":"\ud83d\ude00"}"#),
            (r#"{"n":"\u00e9"}"#, r#"{"n":"\u00e9"}"#),
            ("{\"n\":\"\u{2028}\"}", r#"{"n":"\u2028"}"#),
            (r#"{"k/":1} / "#, r#"{"k\/":1} / "#),
            (r#"["/","/"]"#, r#"["\/","\/"]"#),
            ("", ""),
        ];
        for (input, want) in cases {
            let got = escaped_form(input.as_bytes()).expect("valid UTF-8");
            assert_eq!(
                std::str::from_utf8(&got).expect("ASCII"),
                *want,
                "input {input}"
            );
        }
    }

    #[test]
    fn unchanged_input_is_borrowed() {
        let body = br#"{"a":"x\/y \u00e9"}"#;
        assert!(matches!(
            escaped_form(body),
            Ok(std::borrow::Cow::Borrowed(b)) if std::ptr::eq(b, body.as_slice())
        ));
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        for (input, at) in [
            (&b"\xff"[..], 0),
            (b"{\"a\":\"\xe3\x81\"}", 6),
            (b"ok\x80", 2),
        ] {
            assert_eq!(escaped_form(input).expect_err("invalid").valid_up_to(), at);
        }
    }
}
