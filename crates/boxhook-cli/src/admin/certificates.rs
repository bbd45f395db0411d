//! The certificates the delivery listener serves now, by domain, with when
//! each expires: written by `serve` each time it loads one (`--tls-cert` at
//! start and on each reload, `--acme` from its cache), read by the
//! dashboard's certificate card.
//!
//! `/metrics` carries the same expiry as
//! `boxhook_tls_certificate_expiry_seconds{domain}`, but a label set, once
//! recorded, stays there until the process ends (the metrics facade cannot
//! remove one): a name dropped from the certificate by a reload keeps its
//! last value in `/metrics`, while this record, and so the dashboard, holds
//! only the names of the certificate in use.

use std::sync::Mutex;

/// Where a certificate comes from, which says how it is renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// `--tls-cert`/`--tls-key`: the operator renews the files.
    Files,
    /// `--acme`: renewed in the background.
    Acme,
}

/// One domain of the certificate in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InUse {
    pub(crate) domain: String,
    /// When the certificate expires (its notAfter), in Unix seconds.
    pub(crate) not_after: i64,
    pub(crate) source: Source,
}

/// The certificate in use, by domain (empty: plain HTTP, or no
/// certificate yet).
#[derive(Debug, Default)]
pub(crate) struct Certificates {
    in_use: Mutex<Vec<InUse>>,
}

impl Certificates {
    /// Notes that the certificate for `domains`, expiring at `not_after`
    /// (Unix seconds), is the one served now; it replaces the one noted
    /// before.
    pub(crate) fn record(&self, domains: &[String], not_after: i64, source: Source) {
        let now: Vec<InUse> = domains
            .iter()
            .map(|domain| InUse {
                domain: domain.clone(),
                not_after,
                source,
            })
            .collect();
        if let Ok(mut in_use) = self.in_use.lock() {
            *in_use = now;
        }
    }

    /// The domains served now, in the certificate's order.
    pub(crate) fn in_use(&self) -> Vec<InUse> {
        self.in_use.lock().map(|i| i.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_certificate_replaces_the_names_of_the_old() {
        let certificates = Certificates::default();
        assert_eq!(certificates.in_use(), []);
        certificates.record(
            &["a.example".to_owned(), "b.example".to_owned()],
            100,
            Source::Files,
        );
        certificates.record(&["b.example".to_owned()], 200, Source::Files);
        assert_eq!(
            certificates.in_use(),
            [InUse {
                domain: "b.example".to_owned(),
                not_after: 200,
                source: Source::Files
            }]
        );
    }
}
