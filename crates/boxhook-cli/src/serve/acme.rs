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

use crate::admin::{CertificateSource, Certificates};
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
/// (exit 2). The certificate in use is recorded in `in_use` (and in the
/// metrics).
pub(crate) fn prepare(
    args: &AcmeArgs,
    in_use: &Arc<Certificates>,
) -> anyhow::Result<Option<Prepared>> {
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
        roots.add_parsable_certificates(crate::ca_file::read(path, "--acme-directory-ca")?);
    }
    let client = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|err| anyhow::anyhow!("the ACME client's TLS settings: {err}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let config = AcmeConfig::new_with_client_config(&args.acme, Arc::new(client))
        .contact(&args.acme_contact)
        .directory(directory)
        .cache(WatchedCache {
            dir: DirCache::new(cache.clone()),
            in_use: Arc::clone(in_use),
        });
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
/// it loads or stores (the one then in use) with [`record_expiry`].
struct WatchedCache {
    dir: DirCache<PathBuf>,
    in_use: Arc<Certificates>,
}

impl WatchedCache {
    /// Records when the first certificate in `pem` expires, for each domain.
    fn record(&self, domains: &[String], pem: &[u8]) {
        if let Some(Ok(der)) = CertificateDer::pem_slice_iter(pem).next() {
            record_expiry(&self.in_use, CertificateSource::Acme, Some(domains), &der);
        }
    }
}

/// Records when the certificate `der` expires, as
/// `boxhook_tls_certificate_expiry_seconds{domain}` (Unix seconds) and in
/// `in_use`, for each of `domains`, or, when `None`, for each DNS name of
/// the certificate (its subjectAltName, else its common name). A
/// certificate that does not parse records nothing. A domain recorded
/// before and not named now keeps its last value in `/metrics` (a label
/// set cannot be removed) but leaves `in_use`.
pub(super) fn record_expiry(
    in_use: &Certificates,
    source: CertificateSource,
    domains: Option<&[String]>,
    der: &CertificateDer<'_>,
) {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return;
    };
    let domains = domains.map_or_else(|| dns_names(&cert), <[String]>::to_vec);
    let not_after = cert.validity().not_after.timestamp();
    // Unix seconds fit an f64 exactly for the next 285 million years.
    #[allow(clippy::cast_precision_loss, reason = "exact below 2^53")]
    let gauge = not_after as f64;
    for domain in &domains {
        metrics::gauge!(EXPIRY_SECONDS, "domain" => domain.clone()).set(gauge);
    }
    in_use.record(&domains, not_after, source);
}

/// The DNS names of `cert`'s subjectAltName, or its common name if it has
/// none.
fn dns_names(cert: &x509_parser::certificate::X509Certificate<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let names: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if !names.is_empty() {
        return names;
    }
    cert.subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .map(str::to_owned)
        .collect()
}

#[async_trait::async_trait]
impl CertCache for WatchedCache {
    type EC = std::io::Error;

    async fn load_cert(
        &self,
        domains: &[String],
        directory_url: &str,
    ) -> Result<Option<Vec<u8>>, Self::EC> {
        let pem = self.dir.load_cert(domains, directory_url).await?;
        if let Some(pem) = &pem {
            self.record(domains, pem);
        }
        Ok(pem)
    }

    async fn store_cert(
        &self,
        domains: &[String],
        directory_url: &str,
        cert: &[u8],
    ) -> Result<(), Self::EC> {
        self.record(domains, cert);
        self.dir.store_cert(domains, directory_url, cert).await
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
        self.dir.load_account(contact, directory_url).await
    }

    async fn store_account(
        &self,
        contact: &[String],
        directory_url: &str,
        account: &[u8],
    ) -> Result<(), Self::EA> {
        self.dir
            .store_account(contact, directory_url, account)
            .await
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
