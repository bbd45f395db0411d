//! `serve --acme DOMAIN --acme-cache DIR`: HTTPS with certificates from an
//! ACME CA (Let's Encrypt by default), obtained and renewed in the
//! background through TLS-ALPN-01 challenges answered on the delivery
//! listener itself, by `rustls-acme`.
//!
//! The account key and the certificate are kept in `--acme-cache`, so a
//! restart serves the cached certificate at once and orders nothing. A
//! certificate is renewed once two thirds of its validity have passed
//! (about 30 days before a 90-day certificate expires); a failed order is
//! retried after 1, 2, 4, … s (at most about 18 h apart), each failure an
//! operator line.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use boxhook::server::{Tls, TlsPolicy};
use futures_util::StreamExt as _;
use rustls::crypto::ring;
use rustls::{ClientConfig, RootCertStore};
use rustls_acme::caches::DirCache;
use rustls_acme::{AccountCache, CertCache};
use rustls_acme::{AcmeConfig, AcmeState, EventOk};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::CertificateDer;

use boxhook_core::Printable;

use crate::logging::notice;
use crate::usage;

/// Let's Encrypt's production directory, the default `--acme-directory`.
const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory (`--acme-staging`).
const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";
/// Certificates obtained or renewed, by outcome (`success`, `failure`).
const RENEWALS_TOTAL: &str = "boxhook_acme_renewals_total";
/// When the certificate in use for a domain expires, in Unix seconds.
const EXPIRY_SECONDS: &str = "boxhook_tls_certificate_expiry_seconds";

/// The ACME flags of `boxhook serve`.
#[derive(clap::Args)]
pub(crate) struct AcmeArgs {
    /// Serve HTTPS with a certificate for DOMAIN from an ACME CA, obtained
    /// and renewed through TLS-ALPN-01 on this listener (so it must be
    /// reachable on port 443 at DOMAIN). Repeat for more names on the same
    /// certificate.
    #[arg(long, help_heading = "TLS", value_name = "DOMAIN", requires = "acme_cache",
          conflicts_with_all = ["tls_cert", "tls_key"])]
    acme: Vec<String>,
    /// Where the ACME account key and certificates are kept across
    /// restarts (created if missing; keep it private).
    #[arg(long, help_heading = "TLS", value_name = "DIR", requires = "acme")]
    acme_cache: Option<PathBuf>,
    /// A contact for the ACME account, e.g. mailto:ops@example.com.
    /// Repeatable.
    #[arg(long, help_heading = "TLS", value_name = "URL", requires = "acme")]
    acme_contact: Vec<String>,
    /// The ACME directory URL [default: Let's Encrypt's production one].
    #[arg(
        long,
        help_heading = "TLS",
        value_name = "URL",
        requires = "acme",
        conflicts_with = "acme_staging"
    )]
    acme_directory: Option<String>,
    /// Use Let's Encrypt's staging directory (certificates no browser or
    /// Box trusts; for trying the setup).
    #[arg(long, help_heading = "TLS", requires = "acme")]
    acme_staging: bool,
    /// Also trust this CA (PEM) for the ACME directory's own HTTPS, e.g. a
    /// test CA such as pebble's.
    #[arg(long, help_heading = "TLS", value_name = "FILE", requires = "acme")]
    acme_directory_ca: Option<PathBuf>,
}

/// The ACME settings checked, ready to start on a runtime.
pub(crate) struct Prepared {
    config: AcmeConfig<std::io::Error, std::io::Error>,
    domains: Vec<String>,
    cache: PathBuf,
}

/// Checks the ACME flags, if `--acme` is given; a mistake is a usage error
/// (exit 2).
pub(crate) fn prepare(args: &AcmeArgs) -> anyhow::Result<Option<Prepared>> {
    if args.acme.is_empty() {
        return Ok(None);
    }
    let Some(cache) = &args.acme_cache else {
        return Err(usage("--acme needs --acme-cache DIR"));
    };
    if let Some(domain) = args
        .acme
        .iter()
        .find(|d| d.is_empty() || d.contains(['/', ':', ' ']))
    {
        return Err(usage(format!(
            "--acme {} is not a domain name, e.g. --acme hooks.example.com",
            Printable(domain)
        )));
    }
    if let Some(contact) = args.acme_contact.iter().find(|c| !c.starts_with("mailto:")) {
        return Err(usage(format!(
            "--acme-contact {} must be a mailto: URL, e.g. mailto:ops@example.com",
            Printable(contact)
        )));
    }
    let directory = match (&args.acme_directory, args.acme_staging) {
        (Some(url), _) if !url.starts_with("https://") => {
            return Err(usage(format!(
                "--acme-directory {} must be an https:// URL",
                Printable(url)
            )));
        }
        (Some(url), _) => url.clone(),
        (None, true) => LETS_ENCRYPT_STAGING.to_owned(),
        (None, false) => LETS_ENCRYPT.to_owned(),
    };
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &args.acme_directory_ca {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|err| {
                usage(format!(
                    "cannot read --acme-directory-ca {}: {err}",
                    path.display()
                ))
            })?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(usage(format!(
                "--acme-directory-ca {} holds no usable CA certificate",
                path.display()
            )));
        }
    }
    let client = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|err| anyhow::anyhow!("the ACME client's TLS settings: {err}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let config = AcmeConfig::new_with_client_config(&args.acme, Arc::new(client))
        .contact(&args.acme_contact)
        .directory(directory)
        .cache(WatchedCache(DirCache::new(cache.clone())));
    Ok(Some(Prepared {
        config,
        domains: args.acme.clone(),
        cache: cache.clone(),
    }))
}

impl Prepared {
    /// Starts ordering and renewing on the current runtime, and returns the
    /// server's TLS settings: FIPS-only, the ACME certificate, and the
    /// TLS-ALPN-01 challenges answered. Until a certificate is obtained (or
    /// loaded from the cache), handshakes other than the CA's fail.
    /// Creates the cache directory, private to its owner, if missing.
    pub(crate) fn start(self, handshake_timeout: Duration) -> anyhow::Result<Tls> {
        let mut dir = std::fs::DirBuilder::new();
        dir.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
        dir.create(&self.cache).map_err(|err| {
            anyhow::anyhow!(
                "cannot create --acme-cache {}: {err}; check its permissions",
                self.cache.display()
            )
        })?;
        let state = self.config.state();
        let tls = Tls::new(state.resolver(), TlsPolicy::FipsOnly)
            .handshake_timeout(handshake_timeout)
            .answer_acme_tls_alpn();
        let domains = self.domains.join(", ");
        tokio::spawn(drive(state, domains));
        Ok(tls)
    }
}

/// The `--acme-cache` directory, recording the expiry of each certificate
/// it loads or stores (the one then in use) as
/// `boxhook_tls_certificate_expiry_seconds{domain}`.
struct WatchedCache(DirCache<PathBuf>);

/// Records when the first certificate in `pem` expires, for each domain.
fn record_expiry(domains: &[String], pem: &[u8]) {
    let Some(Ok(der)) = CertificateDer::pem_slice_iter(pem).next() else {
        return;
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
        return;
    };
    // Unix seconds fit an f64 exactly for the next 285 million years.
    #[allow(clippy::cast_precision_loss, reason = "exact below 2^53")]
    let not_after = cert.validity().not_after.timestamp() as f64;
    for domain in domains {
        metrics::gauge!(EXPIRY_SECONDS, "domain" => domain.clone()).set(not_after);
    }
}

#[async_trait::async_trait]
impl CertCache for WatchedCache {
    type EC = std::io::Error;

    async fn load_cert(
        &self,
        domains: &[String],
        directory_url: &str,
    ) -> Result<Option<Vec<u8>>, Self::EC> {
        let pem = self.0.load_cert(domains, directory_url).await?;
        if let Some(pem) = &pem {
            record_expiry(domains, pem);
        }
        Ok(pem)
    }

    async fn store_cert(
        &self,
        domains: &[String],
        directory_url: &str,
        cert: &[u8],
    ) -> Result<(), Self::EC> {
        record_expiry(domains, cert);
        self.0.store_cert(domains, directory_url, cert).await
    }
}

#[async_trait::async_trait]
impl AccountCache for WatchedCache {
    type EA = std::io::Error;

    async fn load_account(
        &self,
        contact: &[String],
        directory_url: &str,
    ) -> Result<Option<Vec<u8>>, Self::EA> {
        self.0.load_account(contact, directory_url).await
    }

    async fn store_account(
        &self,
        contact: &[String],
        directory_url: &str,
        account: &[u8],
    ) -> Result<(), Self::EA> {
        self.0.store_account(contact, directory_url, account).await
    }
}

/// Runs `state`'s orders and renewals, with an operator line for each
/// event, until the process ends.
async fn drive(mut state: AcmeState<std::io::Error, std::io::Error>, domains: String) {
    while let Some(event) = state.next().await {
        match event {
            Ok(EventOk::DeployedCachedCert) => {
                notice(
                    "INFO",
                    &format!("ACME: serving the cached certificate for {domains}"),
                );
            }
            Ok(EventOk::DeployedNewCert) => {
                metrics::counter!(RENEWALS_TOTAL, "outcome" => "success").increment(1);
                notice(
                    "INFO",
                    &format!("ACME: new certificate for {domains} in use"),
                );
            }
            Ok(EventOk::CertCacheStore | EventOk::AccountCacheStore) => {}
            Err(err) => {
                if matches!(err, rustls_acme::EventError::Order(_)) {
                    metrics::counter!(RENEWALS_TOTAL, "outcome" => "failure").increment(1);
                }
                notice(
                    "WARN",
                    &format!("ACME: certificate for {domains}: {err}; retrying with backoff"),
                );
            }
        }
    }
}
