//! `check-address`: does a notification URL meet every rule Box states for
//! V2 webhook addresses, checked from the outside before going live?
//!
//! Box's webhook limitations page (developer.box.com, "Webhooks" →
//! "Limitations") says the notification URL must be "a valid HTTPS URL that
//! resolves to a valid IP address", on "the standard HTTPS port (443)", to
//! a publicly accessible server that is not a `*.box.com` one, whose
//! certificate is "signed by a reputable certificate authority" (no
//! self-signed ones), over "TLS 1.2 and TLS 1.3 with FIPS compliant cipher
//! suites". A delivery that gets no 2xx within 30 seconds is a failure and
//! is retried. Each [`Rule`] is one of those sentences:
//!
//! | Rule | Passes when |
//! |---|---|
//! | [`Rule::HttpsPort`] | the scheme is `https` and the port 443 |
//! | [`Rule::PublicAddress`] | the host resolves, and every address is public ([`non_public_reason`]) |
//! | [`Rule::NotBox`] | the host is neither `box.com` nor under it |
//! | [`Rule::Certificate`] | the chain verifies against Mozilla's roots for the host name, is not self-signed, not expired; a warning under 14 days to expiry |
//! | [`Rule::Tls12`], [`Rule::Tls13`] | a handshake offering only FIPS-approved suites and groups ([`FIPS_SUITES`], [`FIPS_GROUPS`]) succeeds |
//! | [`Rule::Tls10Refused`], [`Rule::Tls11Refused`] | the server refuses a TLS 1.0 / 1.1 `ClientHello` (a warning if it accepts) |
//! | [`Rule::Delivery`] | with keys ([`Options::send`]), a signed `FILE.UPLOADED` delivery is answered 2xx within [`Options::delivery_timeout`] (Box: 30 s) |
//!
//! The TLS rules talk to the first address the host resolves to. For tests,
//! [`Options::extra_roots`] trusts a private CA and [`Options::resolve`]
//! pins the address (and port); a pinned loopback address still fails
//! [`Rule::PublicAddress`] unless [`Options::allow_private_address`], and
//! even then the rule warns that the real Box would not deliver there.
//!
//! ```no_run
//! use boxhook_admin::address::{check, Options};
//!
//! # async fn run() -> Result<(), boxhook_admin::address::UrlError> {
//! let report = check("https://hooks.example.com/box", &Options::default()).await?;
//! for c in report.checks() {
//!     println!("{:8} {:16} {}", c.verdict.status(), c.rule.id(), c.verdict.reason());
//! }
//! std::process::exit(if report.failed() { 1 } else { 0 });
//! # }
//! ```

mod der;
mod hello;
mod ip;
mod tls;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use boxhook::KeyRing;
use http::Uri;
use rustls::pki_types::CertificateDer;

pub use ip::non_public_reason;
pub use tls::{FIPS_GROUPS, FIPS_SUITES};

/// How close to expiry a certificate gets a warning: 14 days.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// One of Box's rules for a notification URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// The scheme is `https` and the port 443.
    HttpsPort,
    /// The host resolves, and every address it resolves to is public.
    PublicAddress,
    /// The host is not `box.com` or under it.
    NotBox,
    /// The certificate chain verifies against Mozilla's roots for the host
    /// name, is not self-signed, and is not expired (warn under 14 days).
    Certificate,
    /// A TLS 1.2 handshake with only FIPS-approved suites and groups offered.
    Tls12,
    /// A TLS 1.3 handshake with only FIPS-approved suites and groups offered.
    Tls13,
    /// TLS 1.0 is refused (a warning if accepted).
    Tls10Refused,
    /// TLS 1.1 is refused (a warning if accepted).
    Tls11Refused,
    /// A signed `FILE.UPLOADED` delivery is answered 2xx in time.
    Delivery,
}

impl Rule {
    /// Every rule, in the order [`check`] reports them.
    pub const ALL: [Self; 9] = [
        Self::HttpsPort,
        Self::PublicAddress,
        Self::NotBox,
        Self::Certificate,
        Self::Tls12,
        Self::Tls13,
        Self::Tls10Refused,
        Self::Tls11Refused,
        Self::Delivery,
    ];

    /// A stable machine name, as `--json` writes it.
    ///
    /// ```
    /// use boxhook_admin::address::Rule;
    /// assert_eq!(Rule::Tls10Refused.id(), "tls1.0-refused");
    /// ```
    #[must_use]
    pub fn id(self) -> &'static str {
        match self {
            Self::HttpsPort => "https-port-443",
            Self::PublicAddress => "public-address",
            Self::NotBox => "not-box-com",
            Self::Certificate => "certificate",
            Self::Tls12 => "tls1.2-fips",
            Self::Tls13 => "tls1.3-fips",
            Self::Tls10Refused => "tls1.0-refused",
            Self::Tls11Refused => "tls1.1-refused",
            Self::Delivery => "delivery",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// What a rule found, with the reason in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The rule holds.
    Pass(String),
    /// The rule does not hold: Box would not deliver, or not reliably.
    Fail(String),
    /// The rule holds, but something deserves attention (a certificate
    /// close to expiry, an old TLS version still accepted, a private
    /// address allowed for a test).
    Warn(String),
    /// The rule could not be checked (the reason says why).
    Skipped(String),
}

impl Verdict {
    /// `pass`, `fail`, `warn` or `skipped`.
    ///
    /// ```
    /// use boxhook_admin::address::Verdict;
    /// assert_eq!(Verdict::Warn("soon".into()).status(), "warn");
    /// ```
    #[must_use]
    pub fn status(&self) -> &'static str {
        match self {
            Self::Pass(_) => "pass",
            Self::Fail(_) => "fail",
            Self::Warn(_) => "warn",
            Self::Skipped(_) => "skipped",
        }
    }

    /// The reason.
    ///
    /// ```
    /// use boxhook_admin::address::Verdict;
    /// assert_eq!(Verdict::Fail("port 8443".into()).reason(), "port 8443");
    /// ```
    #[must_use]
    pub fn reason(&self) -> &str {
        match self {
            Self::Pass(reason)
            | Self::Fail(reason)
            | Self::Warn(reason)
            | Self::Skipped(reason) => reason,
        }
    }

    /// Whether this is a [`Verdict::Fail`].
    ///
    /// ```
    /// use boxhook_admin::address::Verdict;
    /// assert!(Verdict::Fail("x".into()).is_fail());
    /// assert!(!Verdict::Skipped("x".into()).is_fail());
    /// ```
    #[must_use]
    pub fn is_fail(&self) -> bool {
        matches!(self, Self::Fail(_))
    }
}

/// One rule and its verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// The rule checked.
    pub rule: Rule,
    /// What it found.
    pub verdict: Verdict,
}

/// Every rule's verdict for one URL, in [`Rule::ALL`]'s order.
#[derive(Clone, Debug)]
pub struct Report {
    url: String,
    checks: Vec<Check>,
}

impl Report {
    /// The URL checked, as given.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The verdicts, one per rule.
    #[must_use]
    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    /// The verdict of `rule`.
    #[must_use]
    pub fn verdict(&self, rule: Rule) -> Option<&Verdict> {
        self.checks
            .iter()
            .find(|c| c.rule == rule)
            .map(|c| &c.verdict)
    }

    /// Whether any rule failed (warnings and skipped rules do not fail).
    #[must_use]
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.verdict.is_fail())
    }
}

/// `--resolve HOST:ADDR`: connect to `ADDR` (an IP address, or an IP
/// address and port such as `127.0.0.1:8443` or `[::1]:8443`) whenever the
/// URL's host is `HOST`, without asking DNS.
///
/// ```
/// use boxhook_admin::address::Resolve;
///
/// let pin: Resolve = "hooks.example.com:127.0.0.1:8443".parse()?;
/// assert_eq!(pin.host(), "hooks.example.com");
/// assert_eq!(pin.addr().to_string(), "127.0.0.1");
/// assert_eq!(pin.port(), Some(8443));
/// # Ok::<(), boxhook_admin::address::UrlError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolve {
    host: String,
    addr: IpAddr,
    port: Option<u16>,
}

impl Resolve {
    /// The host name pinned.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The address it resolves to.
    #[must_use]
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The port to connect to instead of the URL's, if given.
    #[must_use]
    pub fn port(&self) -> Option<u16> {
        self.port
    }
}

impl FromStr for Resolve {
    type Err = UrlError;

    fn from_str(text: &str) -> Result<Self, UrlError> {
        let bad = || {
            UrlError(format!("--resolve {text:?}: expected HOST:ADDR, e.g. hooks.example.com:127.0.0.1 or hooks.example.com:127.0.0.1:8443"))
        };
        let (host, addr) = text.split_once(':').ok_or_else(bad)?;
        if host.is_empty() {
            return Err(bad());
        }
        let (addr, port) = if let Ok(socket) = addr.parse::<SocketAddr>() {
            (socket.ip(), Some(socket.port()))
        } else {
            let bare = addr.trim_start_matches('[').trim_end_matches(']');
            (bare.parse::<IpAddr>().map_err(|_| bad())?, None)
        };
        Ok(Self {
            host: host.to_owned(),
            addr,
            port,
        })
    }
}

/// What [`check`] needs besides the URL.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// Pin the host's address (tests): no DNS for that host.
    pub resolve: Option<Resolve>,
    /// Certificates trusted besides Mozilla's roots (tests: a private CA).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// A non-public address is a warning instead of a failure (tests).
    pub allow_private_address: bool,
    /// Send a signed delivery with these keys ([`Rule::Delivery`]); `None`
    /// skips the rule.
    pub send: Option<KeyRing>,
    /// How long the delivery may take to be answered: Box's 30 s
    /// ([`boxhook::runtime::send::BOX_TIMEOUT`]); a parameter so tests can
    /// use a shorter one.
    pub delivery_timeout: Duration,
    /// The bound on each DNS lookup, connection and handshake.
    pub network_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            resolve: None,
            extra_roots: Vec::new(),
            allow_private_address: false,
            send: None,
            delivery_timeout: boxhook::runtime::send::BOX_TIMEOUT,
            network_timeout: Duration::from_secs(10),
        }
    }
}

/// The URL cannot be checked at all: not a URL, or no host (a usage error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlError(String);

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UrlError {}

/// The host, lowercased and without a trailing dot.
fn normalized_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// [`Rule::NotBox`] for `host`.
///
/// ```
/// use boxhook_admin::address::{box_host_verdict, Verdict};
///
/// assert!(box_host_verdict("Hooks.BOX.com.").is_fail());
/// assert!(box_host_verdict("box.com").is_fail());
/// assert!(matches!(box_host_verdict("dropbox.com"), Verdict::Pass(_)));
/// assert!(matches!(box_host_verdict("box.com.example.net"), Verdict::Pass(_)));
/// ```
#[must_use]
pub fn box_host_verdict(host: &str) -> Verdict {
    let host = normalized_host(host);
    if host == "box.com" || host.ends_with(".box.com") {
        Verdict::Fail(format!(
            "{host} is box.com or under it: Box does not deliver to its own domains"
        ))
    } else {
        Verdict::Pass(format!("{host} is not under box.com"))
    }
}

/// [`Rule::HttpsPort`] for a parsed URL.
fn https_verdict(uri: &Uri) -> Verdict {
    let scheme = uri.scheme_str().unwrap_or_default().to_ascii_lowercase();
    let port = uri.port_u16();
    match (scheme.as_str(), port) {
        ("https", None | Some(443)) => Verdict::Pass("https on port 443".to_owned()),
        ("https", Some(port)) => Verdict::Fail(format!(
            "port {port}: Box delivers only to the standard HTTPS port, 443"
        )),
        (other, _) => Verdict::Fail(format!(
            "scheme {other}: Box delivers only to https:// URLs"
        )),
    }
}

/// Checks `url` against every [`Rule`]; rules that cannot be checked (the
/// host does not resolve, the URL is not https) are [`Verdict::Skipped`].
///
/// An `Err` only when `url` is not an absolute URL with a host.
pub async fn check(url: &str, options: &Options) -> Result<Report, UrlError> {
    let uri: Uri = url
        .parse()
        .map_err(|err| UrlError(format!("{url:?} is not a URL: {err}")))?;
    let (Some(_), Some(raw_host)) = (uri.scheme_str(), uri.host()) else {
        return Err(UrlError(format!(
            "{url:?} is not an absolute URL (https://host/path)"
        )));
    };
    let host = normalized_host(raw_host);
    let https = uri
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("https"));
    let url_port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });

    let mut checks = vec![Check {
        rule: Rule::HttpsPort,
        verdict: https_verdict(&uri),
    }];
    let resolved = resolve(&host, url_port, options).await;
    checks.push(Check {
        rule: Rule::PublicAddress,
        verdict: address_verdict(&host, &resolved, options),
    });
    checks.push(Check {
        rule: Rule::NotBox,
        verdict: box_host_verdict(&host),
    });

    let target = match (&resolved, https) {
        (_, false) => Err("not an https:// URL".to_owned()),
        (Err(_), true) => Err(format!("{host} does not resolve")),
        (Ok(addrs), true) => addrs
            .first()
            .copied()
            .ok_or_else(|| format!("{host} resolves to no address")),
    };
    match target {
        Err(why) => {
            for rule in &Rule::ALL[3..] {
                checks.push(Check {
                    rule: *rule,
                    verdict: Verdict::Skipped(why.clone()),
                });
            }
        }
        Ok(addr) => {
            let probe = tls::Probe {
                addr,
                host: &host,
                path_and_query: uri.path_and_query().map_or("/", |p| p.as_str()),
                options,
            };
            checks.push(Check {
                rule: Rule::Certificate,
                verdict: probe.certificate().await,
            });
            checks.push(Check {
                rule: Rule::Tls12,
                verdict: probe.fips_handshake(&rustls::version::TLS12).await,
            });
            checks.push(Check {
                rule: Rule::Tls13,
                verdict: probe.fips_handshake(&rustls::version::TLS13).await,
            });
            checks.push(Check {
                rule: Rule::Tls10Refused,
                verdict: probe.old_version(hello::OldVersion::Tls10).await,
            });
            checks.push(Check {
                rule: Rule::Tls11Refused,
                verdict: probe.old_version(hello::OldVersion::Tls11).await,
            });
            checks.push(Check {
                rule: Rule::Delivery,
                verdict: match &options.send {
                    Some(keys) => probe.delivery(keys).await,
                    None => Verdict::Skipped(
                        "no test delivery sent (give --send and the keys)".to_owned(),
                    ),
                },
            });
        }
    }
    Ok(Report {
        url: url.to_owned(),
        checks,
    })
}

/// The socket addresses for `host`: the pinned one, or DNS's.
async fn resolve(host: &str, port: u16, options: &Options) -> Result<Vec<SocketAddr>, String> {
    if let Some(pin) = options
        .resolve
        .as_ref()
        .filter(|pin| normalized_host(&pin.host) == host)
    {
        return Ok(vec![SocketAddr::new(pin.addr, pin.port.unwrap_or(port))]);
    }
    match tokio::time::timeout(
        options.network_timeout,
        tokio::net::lookup_host((host, port)),
    )
    .await
    {
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                Err("no address".to_owned())
            } else {
                Ok(addrs)
            }
        }
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!(
            "no answer within {} s",
            options.network_timeout.as_secs()
        )),
    }
}

/// [`Rule::PublicAddress`] for what `host` resolved to.
fn address_verdict(
    host: &str,
    resolved: &Result<Vec<SocketAddr>, String>,
    options: &Options,
) -> Verdict {
    let addrs = match resolved {
        Err(err) => return Verdict::Fail(format!("{host} does not resolve: {err}")),
        Ok(addrs) => addrs,
    };
    let mut ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
    ips.dedup();
    let listed = ips
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let pinned = if options
        .resolve
        .as_ref()
        .is_some_and(|pin| normalized_host(&pin.host) == host)
    {
        " (pinned by --resolve)"
    } else {
        ""
    };
    let private: Vec<String> = ips
        .iter()
        .filter_map(|ip| non_public_reason(*ip).map(|why| format!("{ip} is {why}")))
        .collect();
    if private.is_empty() {
        return Verdict::Pass(format!("{host} resolves to {listed}{pinned}, all public"));
    }
    let found = private.join("; ");
    if options.allow_private_address {
        Verdict::Warn(format!(
            "{found}{pinned}: allowed by --allow-private-address, but the real Box would not deliver there"
        ))
    } else {
        Verdict::Fail(format!(
            "{found}{pinned}: Box delivers only to public addresses"
        ))
    }
}
