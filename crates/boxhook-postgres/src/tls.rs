//! TLS with rustls (the `tls` feature): the trusted certificates, a
//! verifier that skips only the host name for `sslmode=verify-ca`, and
//! what a failed handshake means, said so that an operator can act on it.

use std::error::Error;
use std::sync::Arc;

use boxhook::inbox::{ErrorKind, InboxError};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};

use crate::conninfo::Roots;

/// The rustls configuration for these roots; the host name is checked
/// only when `check_name`.
pub(crate) fn client_config(roots: &Roots, check_name: bool) -> Result<ClientConfig, InboxError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let store = Arc::new(root_store(roots)?);
    let verifier = WebPkiServerVerifier::builder_with_provider(store, Arc::clone(&provider))
        .build()
        .map_err(|error| storage(format!("cannot use {}: {error}", roots.describe())))?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| storage(error.to_string()))?;
    let builder = if check_name {
        builder.with_webpki_verifier(verifier)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(CaOnly(verifier)))
    };
    Ok(builder.with_no_client_auth())
}

fn storage(message: String) -> InboxError {
    InboxError::new(ErrorKind::Storage, message)
}

/// The trusted certificates: Mozilla's, or every certificate of a PEM
/// file or buffer (which then replace Mozilla's, as libpq's `sslrootcert`
/// replaces the system's).
fn root_store(roots: &Roots) -> Result<RootCertStore, InboxError> {
    let pem: Arc<[u8]> = match roots {
        Roots::Mozilla => return Ok(webpki_roots::TLS_SERVER_ROOTS.iter().cloned().collect()),
        Roots::Pem(pem) => Arc::clone(pem),
        Roots::File(path) => std::fs::read(path)
            .map_err(|error| {
                storage(format!(
                    "cannot read sslrootcert {}: {error}; give the path of your database \
                     provider's CA certificates (PEM), readable by this process",
                    path.display()
                ))
            })?
            .into(),
    };
    let what = roots.describe();
    let mut store = RootCertStore::empty();
    for (index, certificate) in CertificateDer::pem_slice_iter(&pem).enumerate() {
        let certificate = certificate.map_err(|error| {
            storage(format!(
                "{what} is not valid PEM ({}); give your database provider's CA \
                 certificates as PEM (-----BEGIN CERTIFICATE----- blocks)",
                pem_error(&error)
            ))
        })?;
        store.add(certificate).map_err(|error| {
            storage(format!(
                "certificate {} of {what} is not a usable CA certificate: {error}",
                index.saturating_add(1)
            ))
        })?;
    }
    if store.is_empty() {
        return Err(storage(format!(
            "{what} holds no certificate (no -----BEGIN CERTIFICATE----- block); give your \
             database provider's CA certificates as PEM (a DER file converts with `openssl \
             x509 -inform der -in FILE -out ca.pem`)"
        )));
    }
    Ok(store)
}

fn pem_error(error: &pem::Error) -> String {
    match error {
        pem::Error::MissingSectionEnd { end_marker } => {
            format!("no {} line", String::from_utf8_lossy(end_marker))
        }
        pem::Error::IllegalSectionStart { line } => {
            format!("bad line {:?}", String::from_utf8_lossy(line))
        }
        pem::Error::Base64Decode(why) => format!("bad base64: {why}"),
        other => other.to_string(),
    }
}

/// `sslmode=verify-ca`: rustls's own verification (chain to the roots,
/// validity period, signatures), accepting a certificate whose only fault
/// is not naming the host. webpki checks the name last, after the chain,
/// so a name error means everything else passed.
#[derive(Debug)]
struct CaOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for CaOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// What went wrong in a TLS connection attempt and what to do, when
/// `error` (or what caused it) says; `None` for other failures.
pub(crate) fn explain(error: &(dyn Error + 'static), roots: &Roots) -> Option<String> {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(why) = rustls_error(error).map(|error| certificate(error, roots)) {
            return Some(why);
        }
        if error.is::<rustls::pki_types::InvalidDnsNameError>() {
            return Some(
                "the host is neither a valid DNS name nor an IP address, so no certificate \
                 can name it; connect with the host name the server's certificate names"
                    .to_owned(),
            );
        }
        let text = error.to_string();
        if text == "server does not support TLS" {
            return Some(
                "the server does not accept TLS (its ssl setting is off); turn ssl on in the \
                 server (your provider's console, or ssl = on in postgresql.conf), or leave \
                 sslmode and sslrootcert out on a trusted network"
                    .to_owned(),
            );
        }
        if text == "no hostname provided for TLS handshake" {
            return Some(
                "TLS needs a host name or address to check the certificate against; give the \
                 server's host (host=… or postgres://HOST/…)"
                    .to_owned(),
            );
        }
        cause = error.source();
    }
    None
}

/// The rustls error in `error`: itself, or inside the `io::Error` that
/// tokio-rustls wraps it in (whose `source()` skips it).
fn rustls_error<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a rustls::Error> {
    error.downcast_ref::<rustls::Error>().or_else(|| {
        error
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    })
}

fn certificate(error: &rustls::Error, roots: &Roots) -> String {
    let rustls::Error::InvalidCertificate(problem) = error else {
        return format!("the TLS handshake failed: {error}");
    };
    match problem {
        CertificateError::UnknownIssuer => format!(
            "the server's certificate is not signed by a CA in {} (unknown issuer); pass \
             sslrootcert=PATH with your database provider's CA certificates (PEM), the \
             bundle for this server",
            roots.describe()
        ),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!(
                "the server's certificate does not name the host connected to ({error}); \
                 connect with a host name the certificate names, or use sslmode=verify-ca to \
                 check only that your CA signed it"
            )
        }
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => format!(
            "the server's certificate is outside its validity period ({error}); renew it, \
             or check this machine's clock"
        ),
        _ => format!("the server's certificate was refused: {error}"),
    }
}
