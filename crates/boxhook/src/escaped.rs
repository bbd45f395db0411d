//! Untrusted text in log fields: everything a delivery carries (ids, the
//! trigger, error messages quoting input) is written through
//! [`Printable`], so a `\n` cannot forge a log line and no control sequence
//! reaches an operator's terminal.

use std::fmt;

use boxhook_core::Printable;
use tracing::field::{display, DisplayValue};

/// A string field, escaped.
pub(crate) fn text(s: &str) -> DisplayValue<Printable<'_>> {
    display(Printable(s))
}

/// An optional string field (absent stays absent), escaped.
pub(crate) fn opt(s: Option<&str>) -> Option<DisplayValue<Printable<'_>>> {
    s.map(text)
}

/// Any `Display` value (an error, a key), escaped once it is formatted.
pub(crate) fn shown<T: fmt::Display>(value: T) -> DisplayValue<Escaped<T>> {
    display(Escaped(value))
}

/// Formats `T`, then writes the text through [`Printable`]. Costs an
/// allocation only when a subscriber actually formats the field.
pub(crate) struct Escaped<T>(T);

impl<T: fmt::Display> fmt::Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.to_string();
        fmt::Display::fmt(&Printable(&text), f)
    }
}

impl<T: fmt::Display> fmt::Debug for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_escaped() {
        assert_eq!(text("a\nb").to_string(), r"a\nb");
        assert_eq!(
            opt(Some("\u{1b}[2J")).map(|v| v.to_string()).as_deref(),
            Some(r"\u{1b}[2J")
        );
        assert!(opt(None).is_none());
        assert_eq!(shown(format_args!("x{}y", '\u{7}')).to_string(), r"x\u{7}y");
    }
}
