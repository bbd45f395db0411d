//! [`Printable`]: untrusted text made safe for a log line or a terminal.
//!
//! Everything in a Box delivery is chosen by someone else: the event id, the
//! trigger, a file name, the delivery id header. Written raw into a log, a
//! `\n` forges a second log line, and an `ESC` or `BEL` sequence can clear an
//! operator's screen or retitle their terminal. Every human-readable output
//! of boxhook (log lines, CLI tables, diagnoses) writes such text through
//! [`Printable`]; machine-readable output (`--json`) is escaped by its format.

use std::fmt::{self, Write as _};

/// Displays a string with every character that could change how a terminal
/// or a line-based log reads it escaped, and everything else as it is.
///
/// Escaped: the C0 controls (`\n`, `\r` and `\t` by name, the others as
/// `\u{1b}`), `DEL`, the C1 controls (U+0080–U+009F), and the Unicode
/// bidirectional overrides and isolates (U+200E, U+200F, U+202A–U+202E,
/// U+2066–U+2069), which can make a line read in a different order than it
/// is written. A backslash is left alone, so ordinary text, Windows paths
/// included, reads as it is; the escapes only ever replace characters that
/// would otherwise be invisible or act on the terminal.
///
/// ```
/// use boxhook_core::Printable;
///
/// assert_eq!(Printable("file-42").to_string(), "file-42");
/// assert_eq!(
///     Printable("e1\n2026-11-30 INFO forged line").to_string(),
///     r"e1\n2026-11-30 INFO forged line"
/// );
/// assert_eq!(Printable("\u{1b}]0;pwned\u{7}").to_string(), r"\u{1b}]0;pwned\u{7}");
/// assert_eq!(Printable("café ✓").to_string(), "café ✓");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Printable<'a>(pub &'a str);

impl Printable<'_> {
    /// Whether `c` is written as an escape.
    ///
    /// ```
    /// use boxhook_core::Printable;
    ///
    /// assert!(Printable::escapes('\u{1b}'));
    /// assert!(Printable::escapes('\u{202e}'));
    /// assert!(!Printable::escapes('é'));
    /// ```
    #[must_use]
    pub const fn escapes(c: char) -> bool {
        matches!(c,
            '\0'..='\u{1f}' | '\u{7f}'..='\u{9f}'
            | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
}

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(Self::escapes) {
            f.write_str(&rest[..at])?;
            let mut chars = rest[at..].chars();
            let c = chars.next().unwrap_or_default();
            match c {
                '\n' => f.write_str(r"\n")?,
                '\r' => f.write_str(r"\r")?,
                '\t' => f.write_str(r"\t")?,
                other => write!(f, "\\u{{{:x}}}", u32::from(other))?,
            }
            rest = chars.as_str();
        }
        f.write_str(rest)
    }
}

/// [`Printable`] for bytes that may not be UTF-8: invalid sequences are
/// written as `\x..` escapes, byte by byte.
///
/// ```
/// use boxhook_core::printable_bytes;
///
/// assert_eq!(printable_bytes(b"ok\xff\n"), r"ok\xff\n");
/// ```
#[must_use]
pub fn printable_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        let _ = write!(out, "{}", Printable(chunk.valid()));
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_control_and_nothing_else() {
        for c in (0..=0x10_ffffu32).filter_map(char::from_u32) {
            let shown = Printable(c.encode_utf8(&mut [0; 4])).to_string();
            let expected_escape = c.is_control()
                || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
            assert_eq!(shown != c.to_string(), expected_escape, "{c:?} -> {shown}");
            assert!(!shown.chars().any(char::is_control), "{c:?} -> {shown:?}");
        }
    }

    #[test]
    fn keeps_text_around_escapes() {
        let table = [
            ("", ""),
            ("a\r\nb", r"a\r\nb"),
            ("\u{0}\u{7f}\u{85}", r"\u{0}\u{7f}\u{85}"),
            ("x\u{202e}y", r"x\u{202e}y"),
            ("back\\slash", "back\\slash"),
        ];
        for (input, shown) in table {
            assert_eq!(Printable(input).to_string(), shown, "{input:?}");
        }
    }
}
