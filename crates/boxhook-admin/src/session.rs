//! `NO_ACTIVE_SESSION`: the alert, with the remedy for the way the webhook's
//! app authenticates.

use boxhook::{DeliveryContext, Handler, HandlerError, NoActiveSession};

/// How the app that created the webhooks authenticates: the remedy for a
/// dead session depends on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthKind {
    /// JWT (server authentication with a key pair).
    Jwt,
    /// OAuth 2.0 (a user's access and refresh tokens).
    OAuth2,
    /// A developer token.
    DeveloperToken,
    /// The Client Credentials Grant.
    ClientCredentials,
    /// Not known: every remedy is given.
    Unknown,
}

impl AuthKind {
    /// `jwt`, `oauth2`, `developer-token`, `client-credentials`.
    ///
    /// ```
    /// use boxhook_admin::AuthKind;
    /// assert_eq!(AuthKind::parse("oauth2"), Some(AuthKind::OAuth2));
    /// assert_eq!(AuthKind::parse("saml"), None);
    /// ```
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "jwt" => Self::Jwt,
            "oauth2" => Self::OAuth2,
            "developer-token" => Self::DeveloperToken,
            "client-credentials" => Self::ClientCredentials,
            _ => return None,
        })
    }

    /// What to do when Box sends `NO_ACTIVE_SESSION` for a webhook created
    /// this way.
    ///
    /// ```
    /// use boxhook_admin::AuthKind;
    /// assert_eq!(
    ///     AuthKind::DeveloperToken.remedy(),
    ///     "developer tokens expire after an hour: generate a new one in the Developer Console, \
    ///      or move to JWT, OAuth 2.0 or Client Credentials for a webhook that lasts"
    /// );
    /// ```
    #[must_use]
    pub fn remedy(self) -> &'static str {
        match self {
            Self::Jwt => {
                "the app's authorization was removed: an enterprise admin must re-authorize the \
                 app in the Admin Console (Apps > Custom Apps Manager)"
            }
            Self::OAuth2 => {
                "the user's access and refresh tokens have both expired: the user must consent \
                 again (run the app's OAuth 2.0 authorization flow) so new tokens are issued"
            }
            Self::DeveloperToken => {
                "developer tokens expire after an hour: generate a new one in the Developer \
                 Console, or move to JWT, OAuth 2.0 or Client Credentials for a webhook that lasts"
            }
            Self::ClientCredentials => {
                "the app's authorization is gone: an enterprise admin must re-authorize the app in \
                 the Admin Console (Apps > Custom Apps Manager), and its client secret must still be valid"
            }
            Self::Unknown => {
                "the session that created the webhook is gone: JWT and Client Credentials apps are \
                 re-authorized in the Admin Console; OAuth 2.0 users must consent again; developer \
                 tokens expire after an hour and must be generated again"
            }
        }
    }
}

/// A `NO_ACTIVE_SESSION` handler that logs the alert with the remedy for
/// `auth` (at `warn`), calls the observer, and acknowledges the event.
///
/// ```
/// use boxhook_admin::{AuthKind, SessionAlert};
/// let router = boxhook::Router::new().on_no_active_session(SessionAlert::new(AuthKind::Jwt, |line: &str| eprintln!("{line}")));
/// # let _ = router;
/// ```
pub struct SessionAlert {
    auth: AuthKind,
    observer: Box<dyn Fn(&str) + Send + Sync>,
}

impl SessionAlert {
    /// The alert for an app authenticating with `auth`; `observer` gets the
    /// alert line.
    pub fn new(auth: AuthKind, observer: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self {
            auth,
            observer: Box::new(observer),
        }
    }

    /// The alert line for `alert`.
    #[must_use]
    pub fn line(&self, alert: &NoActiveSession) -> String {
        format!(
            "ALERT: NO_ACTIVE_SESSION for webhook {}: {}",
            alert.webhook_id().unwrap_or("?"),
            self.auth.remedy()
        )
    }
}

impl Handler<NoActiveSession> for SessionAlert {
    async fn call(
        &self,
        alert: NoActiveSession,
        _ctx: DeliveryContext,
    ) -> Result<(), HandlerError> {
        let line = self.line(&alert);
        // The webhook id comes from the delivery: escaped.
        tracing::warn!(target: "boxhook_admin", "{}", boxhook::Printable(&line));
        (self.observer)(&line);
        Ok(())
    }
}
