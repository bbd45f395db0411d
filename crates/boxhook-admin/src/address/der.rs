//! Just enough of an X.509 certificate's DER to tell whether it is
//! self-issued and when it expires (RFC 5280, section 4.1): rustls verifies
//! the chain; this reads the two facts it does not report.

/// What the certificate rule reads from the server's certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Leaf {
    /// `notAfter`, in seconds since the Unix epoch.
    pub(crate) not_after: i64,
    /// The issuer's name is byte for byte the subject's: a self-signed
    /// (or at least self-issued) certificate.
    pub(crate) self_issued: bool,
}

/// One DER element: its tag, its contents, and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        let len = bytes.iter().try_fold(0_usize, |acc, b| {
            acc.checked_mul(256)?.checked_add(usize::from(*b))
        })?;
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (content, rest) = rest.split_at(len);
    Some((tag, content, rest))
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// Reads `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version
/// OPTIONAL, serialNumber INTEGER, signature AlgorithmIdentifier, issuer
/// Name, validity SEQUENCE { notBefore Time, notAfter Time }, subject Name,
/// ... }, ... }`.
pub(crate) fn leaf(der: &[u8]) -> Option<Leaf> {
    let (SEQUENCE, cert, _) = element(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = element(cert)? else {
        return None;
    };
    let (mut tag, _, mut rest) = element(tbs)?;
    if tag == VERSION {
        (tag, _, rest) = element(rest)?;
    }
    if tag != INTEGER {
        return None;
    }
    let (SEQUENCE, _algorithm, rest) = element(rest)? else {
        return None;
    };
    let issuer_len = rest.len().checked_sub(element(rest)?.2.len())?;
    let issuer = rest.get(..issuer_len)?;
    let (SEQUENCE, _, rest) = element(rest)? else {
        return None;
    };
    let (SEQUENCE, validity, rest) = element(rest)? else {
        return None;
    };
    let subject_len = rest.len().checked_sub(element(rest)?.2.len())?;
    let subject = rest.get(..subject_len)?;
    let (_, _, validity) = element(validity)?;
    let (tag, not_after, _) = element(validity)?;
    Some(Leaf {
        not_after: time(tag, not_after)?,
        self_issued: issuer == subject,
    })
}

/// `UTCTime` (`YYMMDDHHMMSSZ`, years 1950-2049) or `GeneralizedTime`
/// (`YYYYMMDDHHMMSSZ`), the two forms RFC 5280 allows, as Unix seconds.
// Reason: every operand is at most four decimal digits.
#[allow(clippy::arithmetic_side_effects)]
fn time(tag: u8, text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?;
    let digits = text.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| digits.get(range)?.parse::<i64>().ok();
    let (year, at) = match (tag, digits.len()) {
        (UTC_TIME, 12) => {
            let yy = number(0..2)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
        }
        (GENERALIZED_TIME, 14) => (number(0..4)?, 4),
        _ => return None,
    };
    let field = |n: usize| number(at + 2 * n..at + 2 * n + 2);
    let (month, day, hour, minute, second) =
        (field(0)?, field(1)?, field(2)?, field(3)?, field(4)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
// Reason: years of four digits at most (from `time`).
#[allow(clippy::arithmetic_side_effects)]
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `seconds` since the epoch as `YYYY-MM-DD HH:MM:SS UTC` (Hinnant's
/// `civil_from_days`).
// Reason: an i64 of seconds is at most ~1e14 days; no step overflows.
#[allow(clippy::arithmetic_side_effects)]
pub(crate) fn format_utc(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_time_forms_read_as_unix_seconds() {
        assert_eq!(time(UTC_TIME, b"700101000000Z"), Some(0));
        assert_eq!(time(UTC_TIME, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(
            time(GENERALIZED_TIME, b"20500101000000Z"),
            Some(2_524_608_000)
        );
        assert_eq!(
            time(GENERALIZED_TIME, b"20240229120000Z"),
            Some(1_709_208_000)
        );
        assert_eq!(time(UTC_TIME, b"20240229120000Z"), None);
        assert_eq!(time(UTC_TIME, b"7001010000000"), None);
        assert_eq!(time(UTC_TIME, b"701301000000Z"), None);
        assert_eq!(time(UTC_TIME, b"70010100000+Z"), None);
    }

    #[test]
    fn dates_format_back() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(1_709_208_000), "2024-02-29 12:00:00 UTC");
        assert_eq!(format_utc(2_524_607_999), "2049-12-31 23:59:59 UTC");
    }

    #[test]
    fn truncated_input_is_none_not_a_panic() {
        let cert = rcgen::generate_simple_self_signed(vec!["a.test".to_owned()])
            .expect("a certificate")
            .cert;
        let der = cert.der().to_vec();
        let full = leaf(&der).expect("reads");
        assert!(full.self_issued);
        for cut in 0..der.len() {
            let _ = leaf(&der[..cut]);
        }
        assert_eq!(leaf(&[]), None);
        assert_eq!(leaf(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
    }
}
