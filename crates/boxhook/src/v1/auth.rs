//! [`V1Auth`]: the shared secret a V1 callback URL carries.

use std::fmt;

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::Params;

/// The shortest secret [`V1Auth`] accepts, in bytes: 16 random bytes,
/// base64- or hex-encoded, are longer than this.
pub const MIN_SECRET_LEN: usize = 16;

/// How a V1 receiver tells Box's callbacks from anyone else's requests.
///
/// V1 callbacks are not signed. The only protection is a secret the owner
/// writes into the callback URL in the Developer Console, such as
/// `https://hooks.example.com/box/v1?token=SECRET&event_type=#event_type#`;
/// a request is accepted when the parameter `token` (the name is yours)
/// appears exactly once and equals one of the live secrets. Keep the URL
/// on HTTPS: over plain HTTP anyone on the path reads the secret.
///
/// - Several secrets may be live at once ([`or_secret`](Self::or_secret)):
///   add the new one, change the URL in the console, then drop the old one.
/// - Secrets are compared in constant time: each candidate's SHA-256 is
///   compared with every secret's, all of them, without stopping early.
/// - The secret parameter is removed from the callback before it is
///   routed or stored, so it never reaches a handler, the inbox or a log.
/// - There is no way to build one without a secret except
///   [`allow_unauthenticated`](Self::allow_unauthenticated), which says
///   what it does, and whose service logs a warning when built.
///
/// ```
/// use boxhook::v1::V1Auth;
///
/// let auth = V1Auth::secret("token", "old-secret-0123456789")?
///     .or_secret("new-secret-0123456789")?;
/// assert_eq!(auth.param(), Some("token"));
/// assert_eq!(auth.secrets(), 2);
/// assert!(V1Auth::secret("token", "short").is_err());
/// # Ok::<(), boxhook::v1::V1AuthError>(())
/// ```
#[derive(Clone)]
pub struct V1Auth {
    mode: Mode,
}

#[derive(Clone)]
enum Mode {
    Secrets {
        param: String,
        digests: Vec<[u8; 32]>,
    },
    Unauthenticated,
}

impl V1Auth {
    /// Accepts callbacks whose parameter `param` is `secret`.
    ///
    /// # Errors
    ///
    /// [`V1AuthError::EmptyParam`] or [`V1AuthError::ShortSecret`].
    pub fn secret(param: impl Into<String>, secret: impl AsRef<[u8]>) -> Result<Self, V1AuthError> {
        let param = param.into();
        if param.is_empty() {
            return Err(V1AuthError::EmptyParam);
        }
        Self {
            mode: Mode::Secrets {
                param,
                digests: Vec::new(),
            },
        }
        .or_secret(secret)
    }

    /// Also accepts `secret` (for rotation).
    ///
    /// # Errors
    ///
    /// [`V1AuthError::ShortSecret`].
    pub fn or_secret(mut self, secret: impl AsRef<[u8]>) -> Result<Self, V1AuthError> {
        let secret = secret.as_ref();
        if secret.len() < MIN_SECRET_LEN {
            return Err(V1AuthError::ShortSecret {
                len: secret.len(),
                min: MIN_SECRET_LEN,
            });
        }
        if let Mode::Secrets { digests, .. } = &mut self.mode {
            digests.push(Sha256::digest(secret).into());
        }
        Ok(self)
    }

    /// Accepts every callback, with no secret at all: anyone who finds the
    /// URL can add events. The service built with it logs a warning when
    /// built. Meant for a private network, or a test.
    ///
    /// ```
    /// let auth = boxhook::v1::V1Auth::allow_unauthenticated();
    /// assert!(auth.is_unauthenticated());
    /// ```
    #[must_use]
    pub fn allow_unauthenticated() -> Self {
        Self {
            mode: Mode::Unauthenticated,
        }
    }

    /// Whether this is [`allow_unauthenticated`](Self::allow_unauthenticated).
    #[must_use]
    pub fn is_unauthenticated(&self) -> bool {
        matches!(self.mode, Mode::Unauthenticated)
    }

    /// The secret parameter's name (`None` when unauthenticated).
    #[must_use]
    pub fn param(&self) -> Option<&str> {
        match &self.mode {
            Mode::Secrets { param, .. } => Some(param),
            Mode::Unauthenticated => None,
        }
    }

    /// How many secrets are live.
    #[must_use]
    pub fn secrets(&self) -> usize {
        match &self.mode {
            Mode::Secrets { digests, .. } => digests.len(),
            Mode::Unauthenticated => 0,
        }
    }

    /// Checks `params` and removes the secret parameter from them.
    ///
    /// ```
    /// use boxhook::v1::{Params, V1Auth, V1AuthFailure};
    ///
    /// let auth = V1Auth::secret("token", "s3cret-s3cret-s3cret")?;
    /// let mut params = Params::parse(b"token=s3cret-s3cret-s3cret&event_type=uploaded")?;
    /// assert_eq!(auth.check(&mut params), Ok(()));
    /// assert_eq!(params.encode(), "event_type=uploaded");
    ///
    /// let mut wrong = Params::parse(b"token=guess&event_type=uploaded")?;
    /// assert_eq!(auth.check(&mut wrong), Err(V1AuthFailure::Wrong));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Why the callback is not accepted.
    pub fn check(&self, params: &mut Params) -> Result<(), V1AuthFailure> {
        let Mode::Secrets { param, digests } = &self.mode else {
            return Ok(());
        };
        let given = params.take_all(param);
        let candidate = match given.as_slice() {
            [] => return Err(V1AuthFailure::Missing),
            [one] => one,
            more => return Err(V1AuthFailure::Repeated { count: more.len() }),
        };
        let digest: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        // Every secret is compared, whatever matched before.
        let matched = digests.iter().fold(subtle::Choice::from(0), |any, secret| {
            any | secret.ct_eq(&digest)
        });
        if bool::from(matched) {
            Ok(())
        } else {
            Err(V1AuthFailure::Wrong)
        }
    }
}

impl fmt::Debug for V1Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.mode {
            Mode::Secrets { param, digests } => f
                .debug_struct("V1Auth")
                .field("param", param)
                .field("secrets", &digests.len())
                .finish_non_exhaustive(),
            Mode::Unauthenticated => f.write_str("V1Auth::allow_unauthenticated()"),
        }
    }
}

/// A [`V1Auth`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum V1AuthError {
    /// The parameter name is empty.
    EmptyParam,
    /// The secret is shorter than [`MIN_SECRET_LEN`].
    ShortSecret {
        /// Its length in bytes.
        len: usize,
        /// The minimum.
        min: usize,
    },
}

impl fmt::Display for V1AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyParam => f.write_str("the V1 secret parameter's name is empty"),
            Self::ShortSecret { len, min } => write!(
                f,
                "the V1 secret is {len} bytes long; use at least {min} random bytes \
                 (e.g. `openssl rand -hex 24`)"
            ),
        }
    }
}

impl std::error::Error for V1AuthError {}

/// Why a callback's secret was refused: logged, never told to the peer.
///
/// ```
/// assert_eq!(boxhook::v1::V1AuthFailure::Wrong.code(), "v1_secret_wrong");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum V1AuthFailure {
    /// The secret parameter is absent.
    Missing,
    /// The secret parameter appears more than once.
    Repeated {
        /// How many times.
        count: usize,
    },
    /// The secret matches none of the live secrets.
    Wrong,
}

impl V1AuthFailure {
    /// A stable snake-case code, for logs and metrics.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::Missing => "v1_secret_missing",
            Self::Repeated { .. } => "v1_secret_repeated",
            Self::Wrong => "v1_secret_wrong",
        }
    }
}

impl fmt::Display for V1AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str(
                "the secret parameter is missing; check the callback URL in the Box Developer Console",
            ),
            Self::Repeated { count } => write!(
                f,
                "the secret parameter appears {count} times; it must appear once in the callback URL"
            ),
            Self::Wrong => f.write_str(
                "the secret matches none of the configured secrets; if you rotated it, \
                 configure both the old and the new one until the console URL is updated",
            ),
        }
    }
}

impl std::error::Error for V1AuthFailure {}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "prop-secret-0123456789";

    proptest::proptest! {
        /// Accepted exactly when the parameter appears once with a live
        /// secret; the parameter is gone afterwards, whatever the answer,
        /// and nothing else changed.
        #[test]
        fn accepts_exactly_one_matching_secret(
            tokens in proptest::collection::vec(
                proptest::sample::select(vec![SECRET, "prop-secret-012345678", "", "x"]),
                0..4,
            ),
            others in proptest::collection::vec(("[a-z]{1,3}", ".{0,4}"), 0..4),
        ) {
            let auth = V1Auth::secret("token", "other-secret-0123456789")
                .and_then(|a| a.or_secret(SECRET))
                .map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            let others: Vec<(String, String)> =
                others.into_iter().filter(|(n, _)| n != "token").collect();
            let mut pairs = others.clone();
            pairs.extend(tokens.iter().map(|t| ("token".to_owned(), (*t).to_owned())));
            let mut params = Params::from_pairs(pairs);
            let answer = auth.check(&mut params);
            let expected = match tokens.as_slice() {
                [] => Err(V1AuthFailure::Missing),
                [one] if *one == SECRET => Ok(()),
                [_] => Err(V1AuthFailure::Wrong),
                more => Err(V1AuthFailure::Repeated { count: more.len() }),
            };
            proptest::prop_assert_eq!(answer, expected);
            proptest::prop_assert_eq!(params, Params::from_pairs(others));
        }
    }

    #[test]
    fn unauthenticated_accepts_and_keeps_everything() {
        let auth = V1Auth::allow_unauthenticated();
        let mut params = Params::parse(b"token=x&a=1").expect("params");
        assert_eq!(auth.check(&mut params), Ok(()));
        assert_eq!(params.encode(), "token=x&a=1");
        assert_eq!((auth.param(), auth.secrets()), (None, 0));
    }
}
