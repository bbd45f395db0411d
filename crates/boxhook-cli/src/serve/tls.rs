//! `serve --tls-cert FILE --tls-key FILE`: HTTPS on the delivery listener,
//! with the certificate reloaded from its files on SIGHUP.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use boxhook::server::{ReloadableCert, Tls, TlsPolicy, DEFAULT_HANDSHAKE_TIMEOUT};

use crate::admin::{CertificateSource, Certificates};
use crate::logging::notice;
use crate::usage;

/// The TLS flags of `boxhook serve`.
#[derive(clap::Args)]
#[allow(
    clippy::struct_field_names,
    reason = "the fields are the --tls-* flags, named as the user types them"
)]
pub(crate) struct TlsArgs {
    /// Serve HTTPS with this certificate chain (PEM: the server's
    /// certificate first, then the intermediates, e.g. fullchain.pem).
    /// Reloaded with --tls-key on SIGHUP.
    #[arg(long, help_heading = "TLS", value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, help_heading = "TLS", value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// How long a TLS handshake may take, in seconds, 1 to 300.
    #[arg(long, help_heading = "TLS", value_name = "S", default_value_t = DEFAULT_HANDSHAKE_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=300))]
    tls_handshake_timeout: u64,
}

impl TlsArgs {
    /// `--tls-handshake-timeout`, which `--acme` uses too.
    pub(crate) fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.tls_handshake_timeout)
    }
}

/// The certificate loaded from the files given, ready to serve.
pub(crate) struct Prepared {
    cert: Arc<ReloadableCert>,
    cert_path: PathBuf,
    key_path: PathBuf,
    handshake_timeout: Duration,
    in_use: Arc<Certificates>,
}

/// Loads the certificate named by `args`, if any; a pair that does not
/// load is a usage error (exit 2). Once serving, the certificate in use is
/// recorded in `in_use` and in the metrics.
pub(crate) fn prepare(
    args: &TlsArgs,
    in_use: &Arc<Certificates>,
) -> anyhow::Result<Option<Prepared>> {
    let (Some(cert_path), Some(key_path)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let cert = ReloadableCert::from_pem_files(cert_path, key_path)
        .map_err(|err| usage(format!("cannot load the TLS certificate: {err}")))?;
    Ok(Some(Prepared {
        cert: Arc::new(cert),
        cert_path: cert_path.clone(),
        key_path: key_path.clone(),
        handshake_timeout: args.handshake_timeout(),
        in_use: Arc::clone(in_use),
    }))
}

impl Prepared {
    /// The server's TLS settings: FIPS-only, this certificate.
    pub(crate) fn tls(&self) -> Tls {
        Tls::new(self.cert.clone(), TlsPolicy::FipsOnly).handshake_timeout(self.handshake_timeout)
    }

    /// Records when the certificate expires, for each of its names (call
    /// it once the metrics recorder is installed).
    pub(crate) fn record_expiry(&self) {
        record(&self.cert, &self.in_use);
    }

    /// Reloads the certificate on each SIGHUP, with an operator line for
    /// each reload; runs on the current runtime until the process ends.
    /// The handler is installed before this returns, so a SIGHUP sent once
    /// the `listening on` line is out is never the default (fatal) one.
    #[cfg(unix)]
    pub(crate) fn reload_on_sighup(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = signal(SignalKind::hangup())?;
        let cert = Arc::clone(&self.cert);
        let in_use = Arc::clone(&self.in_use);
        let (cert_path, key_path) = (self.cert_path.clone(), self.key_path.clone());
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                match cert.reload_from_pem_files(&cert_path, &key_path) {
                    Ok(()) => {
                        record(&cert, &in_use);
                        notice(
                            "INFO",
                            &format!(
                                "certificate reloaded from {} and {}",
                                cert_path.display(),
                                key_path.display()
                            ),
                        );
                    }
                    Err(err) => notice(
                        "WARN",
                        &format!("certificate reload failed: {err}; keeping the old one"),
                    ),
                }
            }
        });
        Ok(())
    }
}

/// Records when `cert`'s leaf expires, for each of its DNS names.
fn record(cert: &ReloadableCert, in_use: &Certificates) {
    if let Some(leaf) = cert.chain().first() {
        super::acme::record_expiry(in_use, CertificateSource::Files, None, leaf);
    }
}
