//! TLS for [`Server`](super::Server) (feature `server-tls`): the settings
//! ([`Tls`], [`TlsPolicy`]), a certificate reloadable from PEM files
//! ([`ReloadableCert`]) and the handshake under its deadline.
//!
//! The exact lists and the limits around the handshake are documented in
//! the [server module](super#tls).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rustls::crypto::{ring, CryptoProvider};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::limits::Limits;
use super::tracker::{Check, Conn};

/// The ALPN protocol of ACME's TLS-ALPN-01 challenge (RFC 8737), accepted
/// after [`Tls::answer_acme_tls_alpn`].
///
/// ```
/// assert_eq!(boxhook::server::ACME_TLS_ALPN, b"acme-tls/1");
/// ```
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// How long a TLS handshake may take unless told otherwise: 10 s.
///
/// ```
/// assert_eq!(boxhook::server::DEFAULT_HANDSHAKE_TIMEOUT.as_secs(), 10);
/// ```
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which cipher suites and key exchange groups the server accepts; see the
/// [module docs](super#tls-versions-suites-and-groups) for the exact lists.
///
/// ```
/// use boxhook::server::TlsPolicy;
///
/// assert_eq!(TlsPolicy::default(), TlsPolicy::FipsOnly);
/// assert_eq!(TlsPolicy::FipsOnly.cipher_suites().len(), 6);
/// assert_eq!(TlsPolicy::FipsOnly.kx_groups(), ["secp256r1", "secp384r1"]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TlsPolicy {
    /// AES-GCM suites with ECDHE on P-256 or P-384 (NIST SP 800-52 Rev. 2),
    /// as Box's client offers: the default.
    #[default]
    FipsOnly,
    /// ring's defaults: also ChaCha20-Poly1305 and X25519.
    Modern,
}

impl TlsPolicy {
    /// The ring provider restricted to this policy's suites and groups.
    fn provider(self) -> CryptoProvider {
        let base = ring::default_provider();
        match self {
            Self::Modern => base,
            Self::FipsOnly => CryptoProvider {
                cipher_suites: vec![
                    ring::cipher_suite::TLS13_AES_128_GCM_SHA256,
                    ring::cipher_suite::TLS13_AES_256_GCM_SHA384,
                    ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                    ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                    ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                    ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                ],
                kx_groups: vec![ring::kx_group::SECP256R1, ring::kx_group::SECP384R1],
                ..base
            },
        }
    }

    /// The IANA names of the cipher suites this policy accepts, TLS 1.3
    /// first.
    ///
    /// ```
    /// use boxhook::server::TlsPolicy;
    ///
    /// assert_eq!(TlsPolicy::FipsOnly.cipher_suites()[0], "TLS13_AES_128_GCM_SHA256");
    /// assert!(TlsPolicy::Modern.cipher_suites().contains(&"TLS13_CHACHA20_POLY1305_SHA256".to_owned()));
    /// ```
    #[must_use]
    pub fn cipher_suites(self) -> Vec<String> {
        self.provider()
            .cipher_suites
            .iter()
            .map(|suite| format!("{:?}", suite.suite()))
            .collect()
    }

    /// The names of the key exchange groups this policy accepts.
    ///
    /// ```
    /// use boxhook::server::TlsPolicy;
    ///
    /// assert_eq!(TlsPolicy::Modern.kx_groups(), ["X25519", "secp256r1", "secp384r1"]);
    /// ```
    #[must_use]
    pub fn kx_groups(self) -> Vec<String> {
        self.provider()
            .kx_groups
            .iter()
            .map(|group| format!("{:?}", group.name()))
            .collect()
    }
}

/// TLS settings for [`Server::tls`](super::Server::tls): a certificate
/// resolver, a [`TlsPolicy`] and a handshake deadline.
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// use boxhook::server::{ReloadableCert, Server, Tls, TlsPolicy};
///
/// # async fn example(app: axum::Router) -> Result<(), Box<dyn std::error::Error>> {
/// let cert = Arc::new(ReloadableCert::from_pem_files("cert.pem", "key.pem")?);
/// let tls = Tls::new(cert.clone(), TlsPolicy::FipsOnly).handshake_timeout(Duration::from_secs(5));
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:443").await?;
/// let server = tokio::spawn(Server::new(listener, app).tls(tls).run());
/// // Later, when the files were renewed:
/// cert.reload_from_pem_files("cert.pem", "key.pem")?;
/// # let _ = server;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    config: Arc<ServerConfig>,
    policy: TlsPolicy,
    handshake_timeout: Duration,
}

impl Tls {
    /// TLS 1.2 and 1.3 under `policy`, ALPN `http/1.1`, the certificate
    /// that `resolver` picks for each handshake, and a
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use boxhook::server::{ReloadableCert, Tls, TlsPolicy};
    ///
    /// # fn example(cert: ReloadableCert) {
    /// let tls = Tls::new(Arc::new(cert), TlsPolicy::default());
    /// assert_eq!(tls.policy(), TlsPolicy::FipsOnly);
    /// # }
    /// ```
    #[must_use]
    pub fn new(resolver: Arc<dyn ResolvesServerCert>, policy: TlsPolicy) -> Self {
        let config = ServerConfig::builder_with_provider(Arc::new(policy.provider()))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            // Both versions are built into the provider: this cannot fail.
            .unwrap_or_else(|err| unreachable!("ring offers TLS 1.2 and 1.3: {err}"))
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        let mut config = config;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = Arc::new(config);
        Self {
            acceptor: TlsAcceptor::from(Arc::clone(&config)),
            config,
            policy,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// How long a handshake may take, from the accept (default
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`]).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use boxhook::server::{ReloadableCert, Tls, TlsPolicy};
    ///
    /// # fn example(cert: Arc<ReloadableCert>) {
    /// let tls = Tls::new(cert, TlsPolicy::FipsOnly).handshake_timeout(Duration::from_secs(3));
    /// assert_eq!(tls.handshake_deadline(), Duration::from_secs(3));
    /// # }
    /// ```
    #[must_use]
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The handshake deadline set by [`Tls::handshake_timeout`].
    ///
    /// ```
    /// # fn example(tls: boxhook::server::Tls) {
    /// println!("handshakes are cut after {:?}", tls.handshake_deadline());
    /// # }
    /// ```
    #[must_use]
    pub fn handshake_deadline(&self) -> Duration {
        self.handshake_timeout
    }

    /// Also accepts handshakes that offer only the ALPN protocol
    /// [`ACME_TLS_ALPN`] (`acme-tls/1`, RFC 8737): an ACME CA validating a
    /// TLS-ALPN-01 challenge on this listener. The resolver picks the
    /// certificate for them (the challenge certificate); such a connection
    /// is closed once its handshake is done and never carries HTTP. Clients
    /// that offer `http/1.1` still get `http/1.1`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use boxhook::server::{ReloadableCert, Tls, TlsPolicy, ACME_TLS_ALPN};
    ///
    /// # fn example(cert: Arc<ReloadableCert>) {
    /// let tls = Tls::new(cert, TlsPolicy::FipsOnly).answer_acme_tls_alpn();
    /// assert_eq!(tls.alpn_protocols(), [b"http/1.1".as_slice(), ACME_TLS_ALPN]);
    /// # }
    /// ```
    #[must_use]
    pub fn answer_acme_tls_alpn(mut self) -> Self {
        let mut config = ServerConfig::clone(&self.config);
        if !config.alpn_protocols.iter().any(|p| p == ACME_TLS_ALPN) {
            config.alpn_protocols.push(ACME_TLS_ALPN.to_vec());
        }
        self.config = Arc::new(config);
        self.acceptor = TlsAcceptor::from(Arc::clone(&self.config));
        self
    }

    /// The ALPN protocols the server accepts, in its order of preference.
    ///
    /// ```
    /// # fn example(tls: boxhook::server::Tls) {
    /// assert_eq!(tls.alpn_protocols()[0], b"http/1.1");
    /// # }
    /// ```
    #[must_use]
    pub fn alpn_protocols(&self) -> Vec<&[u8]> {
        self.config
            .alpn_protocols
            .iter()
            .map(Vec::as_slice)
            .collect()
    }

    /// The policy the settings were made with.
    ///
    /// ```
    /// # fn example(tls: boxhook::server::Tls) {
    /// println!("{:?}", tls.policy());
    /// # }
    /// ```
    #[must_use]
    pub fn policy(&self) -> TlsPolicy {
        self.policy
    }

    /// Runs the handshake on `stream` while `conn` stays within its limits
    /// and the handshake deadline; `None` when it failed, was cut or shed.
    pub(super) async fn handshake(
        &self,
        stream: TcpStream,
        conn: &Conn,
        limits: &Limits,
    ) -> Option<TlsStream<TcpStream>> {
        let deadline = conn.accepted_at().checked_add(self.handshake_timeout);
        let accept = self.acceptor.accept(stream);
        let mut accept = std::pin::pin!(accept);
        loop {
            let now = Instant::now();
            if deadline.is_some_and(|at| at <= now) {
                return None;
            }
            let next = match conn.check(limits, now) {
                Check::Close { .. } => return None,
                Check::Later(next) => match (next, deadline) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                },
            };
            let sleep = super::sleep_until(next);
            tokio::select! {
                // A TLS-ALPN-01 validation ends with its handshake.
                done = accept.as_mut() => {
                    return done
                        .ok()
                        .filter(|tls| tls.get_ref().1.alpn_protocol() != Some(ACME_TLS_ALPN));
                }
                () = conn.wake.notified() => {}
                () = sleep => {}
            }
        }
    }
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("policy", &self.policy)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

/// Why a certificate and key could not be loaded.
///
/// ```
/// use boxhook::server::{CertError, ReloadableCert};
///
/// let err = ReloadableCert::from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem")
///     .unwrap_err();
/// assert!(matches!(err, CertError::Certificate { .. }));
/// assert!(err.to_string().starts_with("certificate /nonexistent/cert.pem: "), "{err}");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum CertError {
    /// The certificate file could not be read, or holds no PEM certificate.
    Certificate {
        /// The certificate file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The key file could not be read, holds no PEM private key, or a key
    /// of a kind the provider does not support.
    Key {
        /// The key file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The key is not the certificate's, or the certificate does not parse.
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Certificate { path, reason } => {
                write!(f, "certificate {}: {reason}", path.display())
            }
            Self::Key { path, reason } => write!(f, "private key {}: {reason}", path.display()),
            Self::Mismatch { cert, key, reason } => write!(
                f,
                "certificate {} and private key {} do not go together: {reason}",
                cert.display(),
                key.display()
            ),
        }
    }
}

impl std::error::Error for CertError {}

/// Says what a PEM read error means for a file holding `what`.
fn pem_reason(err: &rustls_pki_types::pem::Error, what: &str) -> String {
    match err {
        rustls_pki_types::pem::Error::Io(io) if io.kind() == io::ErrorKind::NotFound => {
            "no such file".to_owned()
        }
        rustls_pki_types::pem::Error::Io(io) => format!("cannot read it: {io}"),
        rustls_pki_types::pem::Error::NoItemsFound => format!("no PEM {what} in it"),
        other => format!("not valid PEM: {other}"),
    }
}

/// Reads a certificate chain (end-entity first) and its private key from
/// PEM files, for the ring provider.
fn load_pem_files(cert: &Path, key: &Path) -> Result<CertifiedKey, CertError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|err| CertError::Certificate {
            path: cert.to_owned(),
            reason: pem_reason(&err, "certificate"),
        })?;
    if chain.is_empty() {
        return Err(CertError::Certificate {
            path: cert.to_owned(),
            reason: "no PEM certificate in it".to_owned(),
        });
    }
    let der = PrivateKeyDer::from_pem_file(key).map_err(|err| CertError::Key {
        path: key.to_owned(),
        reason: pem_reason(&err, "private key"),
    })?;
    let provider = ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(der)
        .map_err(|err| CertError::Key {
            path: key.to_owned(),
            reason: err.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|err| CertError::Mismatch {
        cert: cert.to_owned(),
        key: key.to_owned(),
        reason: match err {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                "the key is not the certificate's".to_owned()
            }
            other => other.to_string(),
        },
    })?;
    Ok(certified)
}

/// A certificate read from PEM files that can be swapped in place: each
/// handshake takes the one held at that moment.
///
/// [`reload_from_pem_files`](Self::reload_from_pem_files) reads the new
/// pair in full and checks that the key is the certificate's before it
/// swaps: a broken pair is an error and the old certificate stays.
/// Connections already open keep the certificate they shook hands with.
///
/// ```no_run
/// use std::sync::Arc;
/// use boxhook::server::ReloadableCert;
///
/// # fn example() -> Result<(), boxhook::server::CertError> {
/// let cert = Arc::new(ReloadableCert::from_pem_files("cert.pem", "key.pem")?);
/// match cert.reload_from_pem_files("cert.pem", "key.pem") {
///     Ok(()) => eprintln!("certificate reloaded"),
///     Err(err) => eprintln!("certificate reload failed: {err}; keeping the old one"),
/// }
/// # Ok(())
/// # }
/// ```
pub struct ReloadableCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableCert {
    /// Reads a certificate chain (end-entity first, then intermediates) and
    /// its private key (PKCS#8, PKCS#1 or SEC1; RSA, ECDSA or Ed25519) from
    /// PEM files.
    ///
    /// ```no_run
    /// # fn example() -> Result<(), boxhook::server::CertError> {
    /// let cert = boxhook::server::ReloadableCert::from_pem_files(
    ///     "/etc/boxhook/fullchain.pem",
    ///     "/etc/boxhook/privkey.pem",
    /// )?;
    /// # let _ = cert;
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_pem_files(
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, CertError> {
        let certified = load_pem_files(cert.as_ref(), key.as_ref())?;
        Ok(Self {
            current: RwLock::new(Arc::new(certified)),
        })
    }

    /// Reads a new pair as [`from_pem_files`](Self::from_pem_files) does
    /// and, if it loads, serves it to every handshake from now on; if it
    /// does not, returns why and keeps the current one.
    ///
    /// ```no_run
    /// # fn example(cert: &boxhook::server::ReloadableCert) {
    /// if let Err(err) = cert.reload_from_pem_files("cert.pem", "key.pem") {
    ///     eprintln!("certificate reload failed: {err}; keeping the old one");
    /// }
    /// # }
    /// ```
    pub fn reload_from_pem_files(
        &self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<(), CertError> {
        let certified = load_pem_files(cert.as_ref(), key.as_ref())?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(certified);
        Ok(())
    }

    /// The certificate chain served now, end-entity first (DER).
    ///
    /// ```no_run
    /// # fn example(cert: &boxhook::server::ReloadableCert) {
    /// println!("{} certificate(s) in the chain", cert.chain().len());
    /// # }
    /// ```
    #[must_use]
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.current().cert.clone()
    }

    fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl fmt::Debug for ReloadableCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadableCert")
            .field("chain_len", &self.current().cert.len())
            .finish_non_exhaustive()
    }
}
