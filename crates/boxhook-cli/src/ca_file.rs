//! CA certificates named on the command line (`check-address --ca-file`,
//! `serve --acme-directory-ca`): one reader, so both options accept the
//! same files and refuse the same ones with the same words.

use std::path::Path;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::CertificateDer;

use crate::{read_input, usage};

/// The CA certificates of the PEM file at `path`, given with `flag`: every
/// `CERTIFICATE` block, each usable as a trust anchor. A file that cannot be
/// read, is not PEM, holds no certificate or holds one rustls cannot trust
/// is a usage error naming the flag, the file and what to give instead.
pub(crate) fn read(path: &Path, flag: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = read_input(path, flag)?;
    parse(&pem).map_err(|why| usage(format!("{flag} {}: {why}", path.display())))
}

/// [`read`] once the bytes are in: the reason a file is refused.
fn parse(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| format!("not a PEM file ({err}); give the CA's certificate in PEM"))?;
    if certificates.is_empty() {
        return Err("no CERTIFICATE block; give the CA's certificate in PEM \
                    (-----BEGIN CERTIFICATE-----)"
            .to_owned());
    }
    for (n, certificate) in certificates.iter().enumerate() {
        let mut one = RootCertStore::empty();
        if one.add(certificate.clone()).is_err() {
            return Err(format!(
                "certificate {} of {} is not a usable CA certificate (its DER does not \
                 parse as X.509); give the CA's own certificate",
                n + 1,
                certificates.len()
            ));
        }
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn ca_files_are_read_or_refused_with_what_to_give() {
        let one = rcgen::generate_simple_self_signed(vec!["ca.test".to_owned()])
            .expect("self-signed")
            .cert
            .pem();
        let two = format!("{one}{one}");
        let cases: [(&str, Result<usize, &str>); 6] = [
            ("", Err("no CERTIFICATE block; give the CA's certificate in PEM (-----BEGIN CERTIFICATE-----)")),
            ("just text\n", Err("no CERTIFICATE block; give the CA's certificate in PEM (-----BEGIN CERTIFICATE-----)")),
            (
                "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
                Err("not a PEM file"),
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                Err("certificate 1 of 1 is not a usable CA certificate"),
            ),
            (&one, Ok(1)),
            (&two, Ok(2)),
        ];
        for (pem, expected) in cases {
            match (parse(pem.as_bytes()), expected) {
                (Ok(certificates), Ok(n)) => assert_eq!(certificates.len(), n, "{pem:?}"),
                (Err(why), Err(start)) => assert!(why.starts_with(start), "{pem:?}: {why}"),
                (got, want) => panic!("{pem:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
