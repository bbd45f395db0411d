//! The two facts of the server's certificate that rustls does not report:
//! whether it is self-issued and when it expires, read with `x509-parser`
//! (the parser `serve --acme` uses for the same expiry).

use boxhook::chrono::DateTime;

/// What the certificate rule reads from the server's certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Leaf {
    /// `notAfter`, in seconds since the Unix epoch.
    pub(crate) not_after: i64,
    /// The issuer's name is byte for byte the subject's: a self-signed
    /// (or at least self-issued) certificate.
    pub(crate) self_issued: bool,
}

/// Reads `der`, or `None` when it is no X.509 certificate.
pub(crate) fn leaf(der: &[u8]) -> Option<Leaf> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(Leaf {
        not_after: cert.validity().not_after.timestamp(),
        self_issued: cert.issuer().as_raw() == cert.subject().as_raw(),
    })
}

/// `seconds` since the epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn format_utc(seconds: i64) -> String {
    DateTime::from_timestamp(seconds, 0).map_or_else(
        || format!("{seconds} s after 1970"),
        |at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_print_as_utc() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(1_709_208_000), "2024-02-29 12:00:00 UTC");
        assert_eq!(format_utc(2_524_607_999), "2049-12-31 23:59:59 UTC");
    }

    #[test]
    fn what_is_not_a_certificate_reads_as_none() {
        assert_eq!(leaf(b""), None);
        assert_eq!(leaf(&[0x30, 0x03, 0x02, 0x01, 0x01]), None);
    }
}
