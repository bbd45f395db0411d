//! The connection string. tokio-postgres parses it once boxhook has taken
//! out the TLS settings that tokio-postgres does not know (`sslrootcert`,
//! `sslmode=verify-ca|verify-full`), in the URL form and in the
//! `key=value` form alike. The choices are in the crate docs' TLS section.

use std::path::PathBuf;
use std::sync::Arc;

use boxhook::inbox::{ErrorKind, InboxError};
use percent_encoding::percent_decode_str;
use tokio_postgres::config::SslMode;

use syntax::{keywords, split_url, Cut, Url};

mod syntax;

/// How the connections are secured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Security {
    /// No TLS: no `sslmode`, or `disable`, `allow` or `prefer`, and no
    /// root certificates.
    Plain,
    /// TLS, the server's certificate checked against `roots`, and its host
    /// name too when `check_name`.
    Verified { roots: Roots, check_name: bool },
}

/// The certificates a server's certificate must chain to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Roots {
    /// The Mozilla root store compiled in (`webpki-roots`): no
    /// `sslrootcert`, or `sslrootcert=system`.
    Mozilla,
    /// The PEM file named by `sslrootcert`.
    File(PathBuf),
    /// The PEM given to `Options::root_certificates_pem`.
    Pem(Arc<[u8]>),
}

impl Roots {
    /// For messages: where the trusted certificates come from.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Mozilla => "the Mozilla root store (no sslrootcert given)".to_owned(),
            Self::File(path) => format!("sslrootcert {}", path.display()),
            Self::Pem(_) => "the certificates given to Options::root_certificates_pem".to_owned(),
        }
    }
}

/// What `parse` makes of a connection string.
#[derive(Debug)]
pub(crate) struct ConnInfo {
    /// Everything but TLS, with `ssl_mode` set to match `security`.
    pub(crate) config: tokio_postgres::Config,
    pub(crate) security: Security,
}

/// libpq's settings for client certificates and revocation lists, which
/// boxhook does not support (tokio-postgres would only say "unknown option").
const UNSUPPORTED: [&str; 5] = ["sslcert", "sslkey", "sslpassword", "sslcrl", "sslcrldir"];

/// Parses `url` (`postgres://…` or `key=value …`); `pem` is
/// `Options::root_certificates_pem`.
pub(crate) fn parse(url: &str, pem: Option<&Arc<[u8]>>) -> Result<ConnInfo, InboxError> {
    let taken = take_tls_settings(url).map_err(|why| invalid(url, &why))?;
    let mut config: tokio_postgres::Config = taken.rest.parse().map_err(|error| {
        invalid(
            url,
            &format!(
                "{}; expected e.g. postgres://user:password@host:5432/dbname or \
                 host=… user=… dbname=…",
                crate::describe(&error)
            ),
        )
    })?;
    let security = security(taken.mode.as_deref(), taken.rootcert, pem)?;
    if security != Security::Plain {
        refuse_unix_sockets(&config)?;
    }
    config.ssl_mode(match security {
        Security::Plain => SslMode::Disable,
        Security::Verified { .. } => SslMode::Require,
    });
    Ok(ConnInfo { config, security })
}

/// PostgreSQL never speaks TLS on a unix socket: say so, rather than
/// fail on the empty host name TLS would be given.
fn refuse_unix_sockets(config: &tokio_postgres::Config) -> Result<(), InboxError> {
    #[cfg(unix)]
    for host in config.get_hosts() {
        if let tokio_postgres::config::Host::Unix(path) = host {
            return Err(InboxError::new(
                ErrorKind::Storage,
                format!(
                    "TLS is asked for, but host {} is a unix socket, where PostgreSQL never \
                     uses TLS; connect over TCP (host=NAME), or leave sslmode and sslrootcert \
                     out for the socket",
                    path.display()
                ),
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = config;
    Ok(())
}

fn invalid(url: &str, why: &str) -> InboxError {
    InboxError::new(
        ErrorKind::Storage,
        format!(
            "{} is not a PostgreSQL connection string: {why}",
            redact(url)
        ),
    )
}

/// libpq's `sslmode` and `sslrootcert`, as boxhook reads them.
fn security(
    mode: Option<&str>,
    rootcert: Option<String>,
    pem: Option<&Arc<[u8]>>,
) -> Result<Security, InboxError> {
    let refuse = |message: String| Err(InboxError::new(ErrorKind::Storage, message));
    let system = rootcert.as_deref() == Some("system");
    let roots = match (rootcert, pem) {
        (Some(_), Some(_)) => {
            return refuse(
                "root certificates are given twice, as sslrootcert and as \
                 Options::root_certificates_pem; keep one"
                    .to_owned(),
            )
        }
        (Some(path), None) if path.is_empty() => {
            return refuse(
                "sslrootcert is empty; give the path of your database provider's CA \
                 certificates (PEM), or sslrootcert=system for the public root store"
                    .to_owned(),
            )
        }
        (Some(_), None) if system => Some(Roots::Mozilla),
        (Some(path), None) => Some(Roots::File(PathBuf::from(path))),
        (None, Some(pem)) => Some(Roots::Pem(Arc::clone(pem))),
        (None, None) => None,
    };
    match (mode, roots) {
        (None | Some("disable" | "allow" | "prefer"), None) => Ok(Security::Plain),
        (Some(mode @ ("disable" | "allow" | "prefer")), Some(roots)) => refuse(format!(
            "sslmode={mode} does not use TLS, yet {} is given; use sslmode=verify-full \
             (or leave sslmode out) to connect over TLS",
            roots.describe()
        )),
        (None | Some("require" | "verify-full"), roots) => Ok(Security::Verified {
            roots: roots.unwrap_or(Roots::Mozilla),
            check_name: true,
        }),
        (Some("verify-ca"), Some(roots)) if !system => Ok(Security::Verified {
            roots,
            check_name: false,
        }),
        (Some("verify-ca"), _) => refuse(
            "sslmode=verify-ca needs sslrootcert=PATH, your database provider's own CA: \
             with a public root store any site's certificate would pass; use \
             sslmode=verify-full for a server whose certificate a public CA signed"
                .to_owned(),
        ),
        (Some(other), _) => refuse(format!(
            "sslmode={other:?} is not one of disable, allow, prefer, require, verify-ca, \
             verify-full"
        )),
    }
}

/// A connection string less `sslmode` and `sslrootcert`, and their values.
#[derive(Debug, Default, PartialEq, Eq)]
struct Taken {
    rest: String,
    mode: Option<String>,
    rootcert: Option<String>,
}

impl Taken {
    /// Keeps `value` if `key` is boxhook's (the last one wins, as in libpq).
    fn take(&mut self, key: &str, value: String) -> Result<bool, String> {
        if UNSUPPORTED.contains(&key) {
            return Err(format!(
                "{key} is not supported: boxhook does not send client certificates nor read \
                 revocation lists; authenticate with a password"
            ));
        }
        match key {
            "sslmode" => self.mode = Some(value),
            "sslrootcert" => self.rootcert = Some(value),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

fn take_tls_settings(url: &str) -> Result<Taken, String> {
    match split_url(url, Cut::Parse) {
        Some(url) => take_from_url(&url),
        None => take_from_keywords(url),
    }
}

fn take_from_url(url: &Url<'_>) -> Result<Taken, String> {
    if url.userinfo.is_some_and(|info| info.contains('@')) {
        // tokio-postgres (and libpq) would end the password at its first
        // `@` and take the rest for the host.
        return Err(
            "the user name or password holds an unencoded @ (or the URL has an @ \
                    where a host name should be); write each @ in a user name, password or \
                    database name as %40"
                .to_owned(),
        );
    }
    let mut taken = Taken::default();
    let mut kept = Vec::new();
    for pair in url.query.into_iter().flat_map(|query| query.split('&')) {
        let Some((key, value)) = pair.split_once('=') else {
            kept.push(pair);
            continue;
        };
        let value = percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| format!("the value of {key} is not UTF-8 once percent-decoded"))?;
        if !taken.take(
            &percent_decode_str(key).decode_utf8_lossy(),
            value.into_owned(),
        )? {
            kept.push(pair);
        }
    }
    taken.rest = url.head(None);
    if !kept.is_empty() {
        taken.rest = format!("{}?{}", taken.rest, kept.join("&"));
    }
    Ok(taken)
}

fn take_from_keywords(s: &str) -> Result<Taken, String> {
    let Some(params) = keywords(s) else {
        // Malformed: tokio-postgres says where.
        return Ok(Taken {
            rest: s.to_owned(),
            ..Taken::default()
        });
    };
    let mut taken = Taken::default();
    let mut kept = Vec::new();
    for param in params {
        if !taken.take(param.key, param.value)? {
            kept.push(param.text);
        }
    }
    taken.rest = kept.join(" ");
    Ok(taken)
}

/// libpq's connection settings, to tell its `key=value` form from a file
/// name that happens to hold an `=`.
const LIBPQ_KEYWORDS: [&str; 43] = [
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "require_auth",
    "channel_binding",
    "connect_timeout",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "replication",
    "gssencmode",
    "sslmode",
    "sslnegotiation",
    "requiressl",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcertmode",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "service",
    "target_session_attrs",
    "load_balance_hosts",
    "min_protocol_version",
];

/// Whether `s` is libpq's `key=value` form: it splits into settings, at
/// least one of them one of libpq's.
pub(crate) fn is_keyword_form(s: &str) -> bool {
    keywords(s).is_some_and(|params| {
        params
            .iter()
            .any(|param| LIBPQ_KEYWORDS.contains(&param.key))
    })
}

/// `url` (either form) with its password replaced by `***`, for messages.
pub(crate) fn redact(url: &str) -> String {
    if let Some(parts) = split_url(url, Cut::Widest) {
        let head = parts.head(Some("***"));
        let Some(query) = parts.query else {
            return head;
        };
        let mut shown = Vec::new();
        // After a password, a pair without `=` is most likely the rest of
        // a password holding an unencoded `&`: hidden with it.
        let mut in_password = false;
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some((key, _)) => {
                    in_password = percent_decode_str(key)
                        .decode_utf8_lossy()
                        .eq_ignore_ascii_case("password");
                    shown.push(if in_password {
                        format!("{key}=***")
                    } else {
                        pair.to_owned()
                    });
                }
                None if in_password => {}
                None => shown.push(pair.to_owned()),
            }
        }
        return format!("{head}?{}", shown.join("&"));
    }
    match keywords(url) {
        Some(params) => params
            .iter()
            .map(|param| {
                if param.key.eq_ignore_ascii_case("password") {
                    "password=***"
                } else {
                    param.text
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
        None if url.to_ascii_lowercase().contains("password") => {
            "(a malformed connection string with a password; not shown)".to_owned()
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests;
