//! Credentials: a static access token, or the Client Credentials Grant with
//! a token fetched from `{api-base}/oauth2/token` and refreshed before it
//! expires.

use std::fmt;
use std::time::{Duration, Instant};

use boxhook::v1::Params;
use serde::Deserialize;

/// Who `boxhook-admin` acts as.
///
/// ```
/// use boxhook_admin::{Credentials, SubjectType};
///
/// let token = Credentials::AccessToken("dev-token".into());
/// let ccg = Credentials::client_credentials("id", "secret", SubjectType::Enterprise, "12345");
/// assert_eq!(format!("{token:?}"), "AccessToken(<redacted>)");
/// assert_eq!(format!("{ccg:?}"), "ClientCredentials { client_id: \"id\", subject: enterprise:12345 }");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A bearer token used as is (a developer token, or one your own code
    /// obtained). It is never refreshed.
    AccessToken(String),
    /// The Client Credentials Grant.
    ClientCredentials(ClientCredentials),
}

/// The Client Credentials Grant's four values.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: String,
    /// Whose token: the enterprise's service account, or a user.
    pub subject_type: SubjectType,
    /// The enterprise id or the user id.
    pub subject_id: String,
}

/// `box_subject_type` of the Client Credentials Grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubjectType {
    /// The enterprise's service account (`enterprise`).
    Enterprise,
    /// A managed or app user (`user`).
    User,
}

impl SubjectType {
    /// Box's spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enterprise => "enterprise",
            Self::User => "user",
        }
    }

    /// `enterprise` or `user`.
    ///
    /// ```
    /// use boxhook_admin::SubjectType;
    /// assert_eq!(SubjectType::parse("user"), Some(SubjectType::User));
    /// assert_eq!(SubjectType::parse("admin"), None);
    /// ```
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "enterprise" => Some(Self::Enterprise),
            "user" => Some(Self::User),
            _ => None,
        }
    }
}

impl Credentials {
    /// The Client Credentials Grant for `subject_type`:`subject_id`.
    pub fn client_credentials(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        subject_type: SubjectType,
        subject_id: impl Into<String>,
    ) -> Self {
        Self::ClientCredentials(ClientCredentials {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            subject_type,
            subject_id: subject_id.into(),
        })
    }

    /// Reads `BOX_ACCESS_TOKEN`, or `BOX_CLIENT_ID`, `BOX_CLIENT_SECRET`,
    /// `BOX_SUBJECT_TYPE` and `BOX_SUBJECT_ID`, through `var` (pass
    /// `|name| std::env::var(name).ok()`). The error says what to set.
    ///
    /// ```
    /// use boxhook_admin::Credentials;
    ///
    /// let env = |name: &str| (name == "BOX_ACCESS_TOKEN").then(|| "t".to_owned());
    /// assert_eq!(Credentials::from_vars(env)?, Credentials::AccessToken("t".into()));
    /// let err = Credentials::from_vars(|name: &str| (name == "BOX_CLIENT_ID").then(|| "id".to_owned()))
    ///     .unwrap_err();
    /// assert!(err.starts_with("BOX_CLIENT_ID is set but BOX_CLIENT_SECRET, BOX_SUBJECT_TYPE, BOX_SUBJECT_ID are not"));
    /// # Ok::<(), String>(())
    /// ```
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        const CCG: [&str; 4] = [
            "BOX_CLIENT_ID",
            "BOX_CLIENT_SECRET",
            "BOX_SUBJECT_TYPE",
            "BOX_SUBJECT_ID",
        ];
        let get = |name: &str| var(name).filter(|v| !v.is_empty());
        let token = get("BOX_ACCESS_TOKEN");
        let ccg: Vec<Option<String>> = CCG.iter().map(|n| get(n)).collect();
        let set: Vec<&str> = CCG
            .iter()
            .zip(&ccg)
            .filter(|(_, v)| v.is_some())
            .map(|(n, _)| *n)
            .collect();
        if token.is_some() && !set.is_empty() {
            return Err(format!(
                "both BOX_ACCESS_TOKEN and {} are set: unset one, so it is clear who acts",
                set.join(", ")
            ));
        }
        if let Some(token) = token {
            return Ok(Self::AccessToken(token));
        }
        if set.is_empty() {
            return Err(
                "no Box credentials: set BOX_ACCESS_TOKEN, or BOX_CLIENT_ID, \
                        BOX_CLIENT_SECRET, BOX_SUBJECT_TYPE (enterprise or user) and \
                        BOX_SUBJECT_ID for the Client Credentials Grant"
                    .to_owned(),
            );
        }
        if set.len() < CCG.len() {
            let missing: Vec<&str> = CCG
                .iter()
                .zip(&ccg)
                .filter(|(_, v)| v.is_none())
                .map(|(n, _)| *n)
                .collect();
            return Err(format!(
                "{} is set but {} are not: the Client Credentials Grant needs all four",
                set.join(", "),
                missing.join(", ")
            ));
        }
        let mut values = ccg.into_iter().flatten();
        let (Some(id), Some(secret), Some(kind), Some(subject)) =
            (values.next(), values.next(), values.next(), values.next())
        else {
            return Err("the Client Credentials Grant needs all four BOX_* values".to_owned());
        };
        let Some(subject_type) = SubjectType::parse(&kind) else {
            return Err(format!(
                "BOX_SUBJECT_TYPE must be enterprise or user, not {kind:?}"
            ));
        };
        Ok(Self::client_credentials(id, secret, subject_type, subject))
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AccessToken(_) => f.write_str("AccessToken(<redacted>)"),
            Self::ClientCredentials(c) => f
                .debug_struct("ClientCredentials")
                .field("client_id", &c.client_id)
                .field(
                    "subject",
                    &format_args!("{}:{}", c.subject_type.as_str(), c.subject_id),
                )
                .finish(),
        }
    }
}

impl ClientCredentials {
    /// The form body of the token request.
    pub(crate) fn form(&self) -> String {
        Params::from_pairs([
            ("grant_type", "client_credentials"),
            ("client_id", &self.client_id),
            ("client_secret", &self.client_secret),
            ("box_subject_type", self.subject_type.as_str()),
            ("box_subject_id", &self.subject_id),
        ])
        .encode()
    }
}

/// `application/x-www-form-urlencoded` encoding of one value: the
/// encoding of a one-pair form, without its `x=`.
pub(crate) fn form_encode(value: &str) -> String {
    let mut encoded = Params::from_pairs([("x", value)]).encode();
    encoded.drain(..2);
    encoded
}

/// The token endpoint's answer.
#[derive(Deserialize)]
pub(crate) struct TokenAnswer {
    pub(crate) access_token: String,
    pub(crate) expires_in: u64,
}

/// A fetched token and when to stop using it.
pub(crate) struct CachedToken {
    pub(crate) token: String,
    pub(crate) refresh_at: Instant,
}

impl CachedToken {
    /// A token valid for `expires_in` seconds from `now`, refreshed a
    /// minute early (or at half its life, when shorter than two minutes).
    pub(crate) fn new(token: String, expires_in: u64, now: Instant) -> Self {
        let margin = (expires_in / 2).min(60);
        let life = Duration::from_secs(expires_in.saturating_sub(margin));
        Self {
            token,
            refresh_at: now.checked_add(life).unwrap_or(now),
        }
    }

    pub(crate) fn fresh(&self, now: Instant) -> bool {
        now < self.refresh_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding() {
        assert_eq!(form_encode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
        let c = ClientCredentials {
            client_id: "id".into(),
            client_secret: "s&cret".into(),
            subject_type: SubjectType::User,
            subject_id: "42".into(),
        };
        assert_eq!(
            c.form(),
            "grant_type=client_credentials&client_id=id&client_secret=s%26cret&\
             box_subject_type=user&box_subject_id=42"
        );
    }

    #[test]
    fn tokens_are_refreshed_before_they_expire() {
        let now = Instant::now();
        let t = CachedToken::new("t".into(), 3600, now);
        assert!(t.fresh(now + Duration::from_secs(3539)));
        assert!(!t.fresh(now + Duration::from_secs(3540)));
        let short = CachedToken::new("t".into(), 10, now);
        assert!(short.fresh(now + Duration::from_secs(4)));
        assert!(!short.fresh(now + Duration::from_secs(5)));
        assert!(!CachedToken::new("t".into(), 0, now).fresh(now));
    }

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn credentials_from_vars() {
        let all = [
            ("BOX_CLIENT_ID", "id"),
            ("BOX_CLIENT_SECRET", "sec"),
            ("BOX_SUBJECT_TYPE", "enterprise"),
            ("BOX_SUBJECT_ID", "9"),
        ];
        assert_eq!(
            Credentials::from_vars(vars(&all)),
            Ok(Credentials::client_credentials(
                "id",
                "sec",
                SubjectType::Enterprise,
                "9"
            ))
        );
        let bad_type = [
            ("BOX_CLIENT_ID", "id"),
            ("BOX_CLIENT_SECRET", "sec"),
            ("BOX_SUBJECT_TYPE", "admin"),
            ("BOX_SUBJECT_ID", "9"),
        ];
        assert_eq!(
            Credentials::from_vars(vars(&bad_type)),
            Err("BOX_SUBJECT_TYPE must be enterprise or user, not \"admin\"".to_owned())
        );
        let both = [("BOX_ACCESS_TOKEN", "t"), ("BOX_CLIENT_ID", "id")];
        assert_eq!(
            Credentials::from_vars(vars(&both)),
            Err(
                "both BOX_ACCESS_TOKEN and BOX_CLIENT_ID are set: unset one, so it is clear \
                 who acts"
                    .to_owned()
            )
        );
        let none =
            "no Box credentials: set BOX_ACCESS_TOKEN, or BOX_CLIENT_ID, BOX_CLIENT_SECRET, \
                    BOX_SUBJECT_TYPE (enterprise or user) and BOX_SUBJECT_ID for the Client \
                    Credentials Grant";
        assert_eq!(Credentials::from_vars(vars(&[])), Err(none.to_owned()));
        assert_eq!(
            Credentials::from_vars(vars(&[("BOX_ACCESS_TOKEN", "")])),
            Err(none.to_owned()),
            "an empty variable counts as unset"
        );
    }
}
