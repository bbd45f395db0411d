//! [`Params`]: callback parameters in `application/x-www-form-urlencoded`
//! form, decoded once, kept in order.

use std::fmt;

/// At most this many parameters in one callback; more is refused
/// ([`ParamsError::TooMany`]). A console-configured V1 URL carries a
/// handful.
pub const MAX_PARAMS: usize = 256;

/// Callback parameters, in the order they arrived, repeated names
/// included.
///
/// Decoding follows the `application/x-www-form-urlencoded` parser of the
/// WHATWG URL standard: pairs split on `&`, name and value on the first
/// `=`, `+` is a space, `%XX` is the byte `XX`, and a `%` not followed by
/// two hex digits stays a literal `%`. Empty pairs (`a=1&&b=2`) are
/// skipped. Unlike that parser, bytes that do not decode to UTF-8 are an
/// error, not replaced: a callback's values are never silently changed.
///
/// ```
/// use boxhook::v1::Params;
///
/// let params = Params::parse(b"item_name=Q1+report%C3%A9.pdf&tag=a&tag=b&empty=")?;
/// assert_eq!(params.get("item_name"), Some("Q1 reporté.pdf"));
/// assert_eq!(params.get_all("tag").collect::<Vec<_>>(), ["a", "b"]);
/// assert_eq!(params.get("empty"), Some(""));
/// assert_eq!(params.len(), 4);
/// assert_eq!(Params::parse(params.encode().as_bytes())?, params);
/// # Ok::<(), boxhook::v1::ParamsError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Decodes a query string (without its `?`) or a form body.
    ///
    /// # Errors
    ///
    /// [`ParamsError::TooMany`] past [`MAX_PARAMS`] pairs,
    /// [`ParamsError::NotUtf8`] when a name or value does not decode to
    /// UTF-8.
    pub fn parse(input: &[u8]) -> Result<Self, ParamsError> {
        let mut pairs = Vec::new();
        for (index, pair) in input
            .split(|&b| b == b'&')
            .filter(|pair| !pair.is_empty())
            .enumerate()
        {
            if index >= MAX_PARAMS {
                return Err(ParamsError::TooMany { max: MAX_PARAMS });
            }
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at.saturating_add(1)..]),
                None => (pair, &b""[..]),
            };
            let name = decode(name).map_err(|()| ParamsError::NotUtf8 { index })?;
            let value = decode(value).map_err(|()| ParamsError::NotUtf8 { index })?;
            pairs.push((name, value));
        }
        Ok(Self { pairs })
    }

    /// Parameters from name-value pairs, in this order.
    ///
    /// ```
    /// let params = boxhook::v1::Params::from_pairs([("event_type", "uploaded"), ("item_id", "5")]);
    /// assert_eq!(params.encode(), "event_type=uploaded&item_id=5");
    /// ```
    #[must_use]
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        Self {
            pairs: pairs
                .into_iter()
                .map(|(n, v)| (n.into(), v.into()))
                .collect(),
        }
    }

    /// The first value of `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every pair, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// How many pairs there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Removes every pair named `name`, returning their values in order.
    pub fn take_all(&mut self, name: &str) -> Vec<String> {
        let mut taken = Vec::new();
        self.pairs.retain_mut(|(n, v)| {
            if n == name {
                taken.push(std::mem::take(v));
                false
            } else {
                true
            }
        });
        taken
    }

    /// The pairs as `application/x-www-form-urlencoded` text, which
    /// [`parse`](Self::parse) reads back to equal parameters (no pair is
    /// empty on the way back: an empty name and value encode as `=`).
    ///
    /// Unreserved bytes (`A-Z a-z 0-9 * - . _`) stay, a space becomes `+`,
    /// every other byte is `%XX`.
    #[must_use]
    pub fn encode(&self) -> String {
        let mut out = String::new();
        for (index, (name, value)) in self.pairs.iter().enumerate() {
            if index > 0 {
                out.push('&');
            }
            encode_into(&mut out, name);
            out.push('=');
            encode_into(&mut out, value);
        }
        out
    }
}

impl<'a> IntoIterator for &'a Params {
    type Item = (&'a str, &'a str);
    type IntoIter = Box<dyn Iterator<Item = (&'a str, &'a str)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

fn decode(raw: &[u8]) -> Result<String, ()> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some((&first, tail)) = rest.split_first() {
        match first {
            b'+' => {
                bytes.push(b' ');
                rest = tail;
            }
            b'%' => match tail {
                [hi, lo, after @ ..] if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() => {
                    bytes.push(hex(*hi) << 4 | hex(*lo));
                    rest = after;
                }
                _ => {
                    bytes.push(b'%');
                    rest = tail;
                }
            },
            other => {
                bytes.push(other);
                rest = tail;
            }
        }
    }
    String::from_utf8(bytes).map_err(|_| ())
}

fn hex(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit.wrapping_sub(b'0'),
        b'a'..=b'f' => digit.wrapping_sub(b'a').wrapping_add(10),
        _ => digit.wrapping_sub(b'A').wrapping_add(10),
    }
}

fn encode_into(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in text.as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0x0f)]));
            }
        }
    }
}

/// Callback parameters could not be decoded.
///
/// ```
/// use boxhook::v1::{Params, ParamsError};
///
/// assert_eq!(Params::parse(b"a=1&b=%FF"), Err(ParamsError::NotUtf8 { index: 1 }));
/// assert_eq!(ParamsError::NotUtf8 { index: 1 }.code(), "v1_params_not_utf8");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParamsError {
    /// More than [`MAX_PARAMS`] pairs.
    TooMany {
        /// The limit.
        max: usize,
    },
    /// The pair at `index` (from 0, empty pairs not counted) does not
    /// decode to UTF-8.
    NotUtf8 {
        /// Which pair.
        index: usize,
    },
}

impl ParamsError {
    /// A stable snake-case code, for logs and metrics.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::TooMany { .. } => "v1_too_many_params",
            Self::NotUtf8 { .. } => "v1_params_not_utf8",
        }
    }
}

impl fmt::Display for ParamsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooMany { max } => write!(
                f,
                "more than {max} callback parameters; check the callback URL configured in the Box Developer Console"
            ),
            Self::NotUtf8 { index } => write!(
                f,
                "callback parameter {index} does not percent-decode to UTF-8; Box sends UTF-8, so this request did not come from Box as configured"
            ),
        }
    }
}

impl std::error::Error for ParamsError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_table() {
        type Case<'a> = (&'a [u8], &'a [(&'a str, &'a str)]);
        let cases: &[Case<'_>] = &[
            (b"", &[]),
            (b"&&", &[]),
            (b"a", &[("a", "")]),
            (b"a=", &[("a", "")]),
            (b"=v", &[("", "v")]),
            (b"a=b=c", &[("a", "b=c")]),
            (b"a+b=c+d", &[("a b", "c d")]),
            (b"a=%2B%26%3D", &[("a", "+&=")]),
            (b"a=%2b", &[("a", "+")]),
            (b"a=%", &[("a", "%")]),
            (b"a=%4", &[("a", "%4")]),
            (b"a=%zz", &[("a", "%zz")]),
            (b"a=%E2%82%AC", &[("a", "\u{20ac}")]),
            ("a=é".as_bytes(), &[("a", "é")]),
            (
                b"x=1&x=2&y=3&x=4",
                &[("x", "1"), ("x", "2"), ("y", "3"), ("x", "4")],
            ),
        ];
        for (input, expected) in cases {
            let params = Params::parse(input).expect("decodes");
            let got: Vec<_> = params.iter().collect();
            assert_eq!(&got, expected, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn refusals() {
        assert_eq!(
            Params::parse(b"%C3"),
            Err(ParamsError::NotUtf8 { index: 0 })
        );
        assert_eq!(
            Params::parse(b"a=1&&\xff=2"),
            Err(ParamsError::NotUtf8 { index: 1 })
        );
        let many = "a=1&".repeat(MAX_PARAMS);
        assert_eq!(
            Params::parse(many.as_bytes()).map(|p| p.len()),
            Ok(MAX_PARAMS)
        );
        let too_many = format!("{many}b=2");
        assert_eq!(
            Params::parse(too_many.as_bytes()),
            Err(ParamsError::TooMany { max: MAX_PARAMS })
        );
    }

    #[test]
    fn take_all_removes_every_pair_of_a_name() {
        let mut params = Params::parse(b"t=1&a=x&t=2").expect("decodes");
        assert_eq!(params.take_all("t"), ["1", "2"]);
        assert_eq!(params.encode(), "a=x");
    }

    proptest::proptest! {
        #[test]
        fn encode_then_parse_is_identity(pairs in proptest::collection::vec((".{0,8}", ".{0,8}"), 0..8)) {
            let params = Params::from_pairs(pairs);
            proptest::prop_assert_eq!(Params::parse(params.encode().as_bytes()), Ok(params));
        }
    }
}
