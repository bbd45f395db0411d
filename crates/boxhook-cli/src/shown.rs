//! Errors as the operator's terminal sees them. An error's text can quote
//! the network (a Box API message, a database server's error, a header):
//! the final `boxhook: …` line writes the whole chain through
//! [`Printable`], so no escape code reaches the terminal and no line break
//! forges a line. Only the lines of a [`Lines`] error, which boxhook wrote
//! one problem each, stay lines (each escaped on its own).

use std::fmt::{self, Write as _};

use boxhook_core::Printable;

/// An error of several lines, one problem each (a desired-state file's
/// violations): shown one per line, each escaped.
#[derive(Debug)]
pub(crate) struct Lines(pub(crate) Vec<String>);

impl fmt::Display for Lines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}

impl std::error::Error for Lines {}

/// A usage error (exit 2) whose message is `head`, then `lines` one per
/// line: `head: line 1\nline 2…` once printed.
pub(crate) fn usage_lines(head: impl Into<String>, lines: Vec<String>) -> anyhow::Error {
    anyhow::Error::new(Lines(lines)).context(crate::UsageError(head.into()))
}

/// `err` and its causes joined as `{err:#}` joins them (`a: b: c`), every
/// control character escaped, line breaks included, except between the
/// lines of a [`Lines`] cause.
pub(crate) fn error_chain(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for (i, cause) in err.chain().enumerate() {
        if i > 0 {
            out.push_str(": ");
        }
        if let Some(Lines(lines)) = cause.downcast_ref::<Lines>() {
            for (n, line) in lines.iter().enumerate() {
                if n > 0 {
                    out.push('\n');
                }
                let _ = write!(out, "{}", Printable(line));
            }
        } else {
            let _ = write!(out, "{}", Printable(&cause.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{error_chain, usage_lines};

    #[test]
    fn the_chain_is_escaped_whole_and_lines_stay_lines() {
        let hostile = anyhow::anyhow!("Box answered 400: \u{1b}[2Jx\nboxhook: all good")
            .context("cannot list the webhooks");
        assert_eq!(
            error_chain(&hostile),
            r"cannot list the webhooks: Box answered 400: \u{1b}[2Jx\nboxhook: all good"
        );

        let listed = usage_lines(
            "webhooks.toml",
            vec![
                "2 problem(s), nothing was sent to Box:".to_owned(),
                "webhook 1 (folder:0): no".to_owned(),
                "webhook 2 (folder:\u{7}1\n): no".to_owned(),
            ],
        );
        assert!(listed.is::<crate::UsageError>(), "exit 2");
        assert_eq!(
            error_chain(&listed),
            "webhooks.toml: 2 problem(s), nothing was sent to Box:\n\
             webhook 1 (folder:0): no\n\
             webhook 2 (folder:\\u{7}1\\n): no"
        );
        assert_eq!(
            format!("{listed:#}").lines().count(),
            4,
            "unescaped: a line more"
        );
    }
}
