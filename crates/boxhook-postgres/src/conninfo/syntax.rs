//! How libpq's two forms of connection string are cut, as tokio-postgres
//! cuts them: a `postgres://` URL into user info, location and query; the
//! `key=value` form into its settings, quotes and escapes undone.

/// A `postgres://` URL cut where tokio-postgres cuts it: the user info
/// ends at the first `@`, the query starts at the next `?`.
pub(super) struct Url<'a> {
    scheme: &'a str,
    pub(super) userinfo: Option<&'a str>,
    /// Host, port and path.
    location: &'a str,
    pub(super) query: Option<&'a str>,
}

impl Url<'_> {
    /// The URL up to its query, the password replaced by `password`.
    pub(super) fn head(&self, password: Option<&str>) -> String {
        let userinfo = self
            .userinfo
            .map(|info| match (info.split_once(':'), password) {
                (Some((user, _)), Some(password)) => format!("{user}:{password}@"),
                _ => format!("{info}@"),
            });
        format!(
            "{}://{}{}",
            self.scheme,
            userinfo.unwrap_or_default(),
            self.location
        )
    }
}

pub(super) fn split_url(url: &str) -> Option<Url<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "postgres" && scheme != "postgresql" {
        return None;
    }
    let (userinfo, after) = match rest.split_once('@') {
        Some((userinfo, after)) => (Some(userinfo), after),
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
