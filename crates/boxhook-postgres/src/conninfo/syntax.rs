//! How libpq's two forms of connection string are cut: a `postgres://`
//! URL into user info, location and query; the `key=value` form into its
//! settings, quotes and escapes undone.

/// A `postgres://` URL cut into its parts (see [`Cut`] for where the user
/// info ends).
pub(super) struct Url<'a> {
    scheme: &'a str,
    pub(super) userinfo: Option<&'a str>,
    /// Host, port and path.
    location: &'a str,
    pub(super) query: Option<&'a str>,
}

impl Url<'_> {
    /// The URL up to its query, the password replaced by `password`. With
    /// a replacement, user info that is no plain user name (it holds one
    /// of `/?&=@`: the cut took in part of a path or a query) is replaced
    /// whole.
    pub(super) fn head(&self, password: Option<&str>) -> String {
        let userinfo = self.userinfo.map(|info| match password {
            None => format!("{info}@"),
            Some(password) => {
                let (user, has_password) = match info.split_once(':') {
                    Some((user, _)) => (user, true),
                    None => (info, false),
                };
                if user.contains(['/', '?', '&', '=', '@']) {
                    format!("{password}@")
                } else if has_password {
                    format!("{user}:{password}@")
                } else {
                    format!("{user}@")
                }
            }
        });
        format!(
            "{}://{}{}",
            self.scheme,
            userinfo.unwrap_or_default(),
            self.location
        )
    }
}

/// Where [`split_url`] ends the user info.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cut {
    /// At the first `@` after which the rest reads as a URL's tail: a
    /// host list (letters, digits, `.-_:,[]%`), then perhaps a path without
    /// `@` or `?`, then perhaps a query of `key=value` pairs; at the last
    /// `@` when none does. For a well-formed URL (an `@` in the user info
    /// percent-encoded) that is where tokio-postgres cuts: its first `@`.
    /// A password holding an unencoded `@` (`u:Pw@s3cret@host/db`) makes
    /// the user info hold one, which the parser refuses.
    Parse,
    /// At the last `@`, for redaction: a password may hold any character,
    /// so everything up to the last `@` may be part of it. This hides too
    /// much rather than too little: an `@` in the query
    /// (`?application_name=me@host`) hides the host and path with it.
    Widest,
}

/// Cuts a `postgres://` or `postgresql://` URL where `cut` says; `None`
/// for anything else.
pub(super) fn split_url(url: &str, cut: Cut) -> Option<Url<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "postgres" && scheme != "postgresql" {
        return None;
    }
    let ats = || rest.match_indices('@').map(|(at, _)| at);
    let end = match cut {
        Cut::Parse => ats()
            .find(|&at| rest.get(at.saturating_add(1)..).is_some_and(is_url_tail))
            .or_else(|| rest.rfind('@')),
        Cut::Widest => rest.rfind('@'),
    };
    let (userinfo, after) = match end {
        Some(at) => (
            rest.get(..at),
            rest.get(at.saturating_add(1)..).unwrap_or_default(),
        ),
        None => (None, rest),
    };
    let (location, query) = match after.split_once('?') {
        Some((location, query)) => (location, Some(query)),
        None => (after, None),
    };
    Some(Url {
        scheme,
        userinfo,
        location,
        query,
    })
}

/// Whether `tail` reads as what follows a URL's user info: a host list,
/// an optional path (no `@`, no `?`), an optional query whose pairs are
/// each empty or `key=value` with a plain key.
fn is_url_tail(tail: &str) -> bool {
    let is_host = |c: char| c.is_ascii_alphanumeric() || ".-_:,[]%".contains(c);
    let rest = tail.trim_start_matches(is_host);
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    let path_ok = path.is_empty() || (path.starts_with('/') && !path.contains('@'));
    let is_key = |c: char| c.is_ascii_alphanumeric() || "_.%-".contains(c);
    let query_ok = query.is_none_or(|query| {
        query.split('&').all(|pair| {
            pair.is_empty()
                || pair
                    .split_once('=')
                    .is_some_and(|(key, _)| !key.is_empty() && key.chars().all(is_key))
        })
    });
    path_ok && query_ok
}

/// One `key=value` of the keyword form.
pub(super) struct Param<'a> {
    pub(super) key: &'a str,
    pub(super) value: String,
    /// As written, quotes and escapes included.
    pub(super) text: &'a str,
}

/// Splits the keyword form as libpq (and tokio-postgres) do: whitespace
/// around `=` allowed, values in single quotes or not, `\` escaping the
/// next character. `None` when malformed.
pub(super) fn keywords(s: &str) -> Option<Vec<Param<'_>>> {
    let mut cursor = Cursor {
        s,
        it: s.char_indices().peekable(),
    };
    let mut params = Vec::new();
    loop {
        cursor.skip_whitespace();
        let start = cursor.position();
        let key = cursor.take_while(|c| !c.is_whitespace() && c != '=');
        if key.is_empty() {
            return cursor.it.peek().is_none().then_some(params);
        }
        cursor.skip_whitespace();
        if !cursor.eat('=') {
            return None;
        }
        cursor.skip_whitespace();
        let value = if cursor.eat('\'') {
            let value = cursor.unescape(|c| c == '\'');
            cursor.eat('\'').then_some(value)?
        } else {
            Some(cursor.unescape(char::is_whitespace)).filter(|value| !value.is_empty())?
        };
        params.push(Param {
            key,
            value,
            text: s.get(start..cursor.position())?,
        });
    }
}

struct Cursor<'a> {
    s: &'a str,
    it: std::iter::Peekable<std::str::CharIndices<'a>>,
}

impl<'a> Cursor<'a> {
    fn position(&mut self) -> usize {
        self.it.peek().map_or(self.s.len(), |&(at, _)| at)
    }

    fn skip_whitespace(&mut self) {
        self.take_while(char::is_whitespace);
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let start = self.position();
        while self.it.next_if(|&(_, c)| keep(c)).is_some() {}
        let end = self.position();
        self.s.get(start..end).unwrap_or_default()
    }

    fn eat(&mut self, want: char) -> bool {
        self.it.next_if(|&(_, c)| c == want).is_some()
    }

    /// The characters up to one that `ends` (not consumed), with `\x`
    /// read as `x`.
    fn unescape(&mut self, ends: impl Fn(char) -> bool) -> String {
        let mut value = String::new();
        while let Some((_, c)) = self.it.next_if(|&(_, c)| !ends(c)) {
            if c == '\\' {
                value.extend(self.it.next().map(|(_, c)| c));
            } else {
                value.push(c);
            }
        }
        value
    }
}
