//! The admin token: `Authorization: Bearer TOKEN`, or a basic login whose
//! password is the token (so a browser can open the dashboard), compared in
//! constant time.

use base64::Engine as _;
use http::HeaderMap;
use subtle::ConstantTimeEq as _;

use crate::usage;

/// The shortest token accepted: long enough that guessing it is hopeless.
const MIN_TOKEN_LEN: usize = 16;

/// The fewest different characters a token may have: a random token of 16
/// or more characters has far more (a 64-character `openssl rand -hex 32`
/// has all 16 hex digits), while one character repeated, or a word typed
/// twice (`passwordpassword`: 7), has fewer.
const MIN_DISTINCT_CHARS: usize = 8;

/// A token given with `--admin-token`.
pub(super) struct Token(Vec<u8>);

impl Token {
    /// Refuses a token too short to be a secret, or one that cannot travel
    /// in a header.
    pub(super) fn new(token: &str) -> anyhow::Result<Self> {
        if token.len() < MIN_TOKEN_LEN {
            return Err(usage(format!(
                "--admin-token is {} characters; use at least {MIN_TOKEN_LEN}, e.g. the output \
                 of `openssl rand -hex 32`",
                token.len()
            )));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(usage(
                "--admin-token must be printable ASCII without spaces, e.g. the output of \
                 `openssl rand -hex 32`",
            ));
        }
        let distinct = token
            .bytes()
            .collect::<std::collections::BTreeSet<u8>>()
            .len();
        if distinct < MIN_DISTINCT_CHARS {
            return Err(usage(format!(
                "--admin-token has only {distinct} different character(s); a token needs at \
                 least {MIN_DISTINCT_CHARS} (a repeated character or word is easy to guess): \
                 use e.g. the output of `openssl rand -hex 32`"
            )));
        }
        Ok(Self(token.as_bytes().to_vec()))
    }

    /// Whether `headers` carry this token.
    pub(super) fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return self.matches(rest.as_bytes());
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
                return false;
            };
            let password = match decoded.iter().position(|&b| b == b':') {
                Some(colon) => decoded.get(colon.saturating_add(1)..).unwrap_or_default(),
                None => return false,
            };
            return self.matches(password);
        }
        false
    }

    /// Constant time in the content; the length alone may show.
    fn matches(&self, given: &[u8]) -> bool {
        given.len() == self.0.len() && bool::from(given.ct_eq(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(
            http::header::AUTHORIZATION,
            value.parse().expect("header value"),
        );
        map
    }

    #[test]
    fn admits_the_token_as_bearer_or_basic_password_only() {
        let token = Token::new("0123456789abcdef0123").expect("token");
        let basic = |userpass: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(userpass)
            )
        };
        let cases: &[(&str, bool)] = &[
            ("Bearer 0123456789abcdef0123", true),
            ("bearer 0123456789abcdef0123", true),
            ("Bearer 0123456789abcdef012", false),
            ("Bearer 0123456789abcdef01234", false),
            ("Bearer 0123456789abcdef0124", false),
            ("Bearer", false),
            ("Token 0123456789abcdef0123", false),
            (&basic("admin:0123456789abcdef0123"), true),
            (&basic(":0123456789abcdef0123"), true),
            (&basic("0123456789abcdef0123"), false),
            (&basic("admin:wrong"), false),
            ("Basic !!!", false),
        ];
        for (value, want) in cases {
            assert_eq!(token.admits(&headers(value)), *want, "{value}");
        }
        assert!(!token.admits(&HeaderMap::new()));
    }

    #[test]
    fn refuses_short_or_unprintable_tokens() {
        for bad in [
            "short",
            "0123456789abcde",
            "0123456789 abcdef0123",
            "0123456789abcdef\n",
            "aaaaaaaaaaaaaaaa",
            "passwordpassword",
            "abababababababababababababababab",
        ] {
            let err = Token::new(bad).err().expect("refused");
            assert!(err.to_string().contains("--admin-token"), "{err}");
        }
        assert_eq!(
            Token::new("aaaaaaaaaaaaaaaa")
                .err()
                .expect("refused")
                .to_string(),
            "--admin-token has only 1 different character(s); a token needs at least 8 (a \
             repeated character or word is easy to guess): use e.g. the output of `openssl \
             rand -hex 32`"
        );
        assert!(Token::new("0123456789abcdef").is_ok());
    }
}
