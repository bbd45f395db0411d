//! TLS 1.0 and 1.1, which rustls cannot speak: a minimal `ClientHello` of
//! that version, written byte by byte, and the first record of the answer
//! classified (RFC 2246 section 7.4.1.2, RFC 4346 section 7.4.1.2, RFC 6066
//! for the server name, RFC 4492 for the elliptic-curve extensions).

/// An old protocol version, as its two wire bytes say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OldVersion {
    /// TLS 1.0: `03 01`.
    Tls10,
    /// TLS 1.1: `03 02`.
    Tls11,
}

impl OldVersion {
    /// The version's two wire bytes.
    pub(crate) fn wire(self) -> [u8; 2] {
        match self {
            Self::Tls10 => [3, 1],
            Self::Tls11 => [3, 2],
        }
    }

    /// Its name, `TLS 1.0` or `TLS 1.1`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Tls10 => "TLS 1.0",
            Self::Tls11 => "TLS 1.1",
        }
    }
}

/// The cipher suites offered: the ones servers that still speak TLS 1.0/1.1
/// accept (ECDHE and RSA key exchange with AES-CBC-SHA).
const SUITES: [u16; 6] = [
    0xc013, // TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA
    0xc014, // TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA
    0xc009, // TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA
    0xc00a, // TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA
    0x002f, // TLS_RSA_WITH_AES_128_CBC_SHA
    0x0035, // TLS_RSA_WITH_AES_256_CBC_SHA
];

fn push_u16(out: &mut Vec<u8>, value: usize) {
    out.extend_from_slice(&u16::try_from(value).unwrap_or(u16::MAX).to_be_bytes());
}

/// A `ClientHello` of `version` for `host` (sent as the server name unless
/// it is an IP address, which SNI cannot carry), in one record:
///
/// ```text
/// 16                 record type: handshake
/// 03 01 | 03 02      record version: the version offered
/// LL LL              record length
///   01               handshake type: client_hello
///   LL LL LL         handshake length
///   03 01 | 03 02    client_version: the version offered
///   32 bytes         random (fixed: nothing is kept from this handshake)
///   00               session_id: empty
///   00 0c + 6 × 2    cipher_suites (SUITES)
///   01 00            compression_methods: null only
///   LL LL            extensions length
///     00 00 ...      server_name: host_name (RFC 6066), when a name
///     00 0a 00 06 00 04 00 17 00 18
///                    supported_groups: secp256r1, secp384r1
///     00 0b 00 02 01 00
///                    ec_point_formats: uncompressed
/// ```
pub(crate) fn client_hello(version: OldVersion, host: &str) -> Vec<u8> {
    let [major, minor] = version.wire();
    let mut extensions = Vec::new();
    if host.parse::<std::net::IpAddr>().is_err() && !host.is_empty() && host.len() < 256 {
        let name = host.trim_end_matches('.').as_bytes();
        // server_name (0), its length, the list's length, host_name (0), the name's length.
        extensions.extend_from_slice(&[0, 0]);
        push_u16(&mut extensions, name.len().saturating_add(5));
        push_u16(&mut extensions, name.len().saturating_add(3));
        extensions.push(0);
        push_u16(&mut extensions, name.len());
        extensions.extend_from_slice(name);
    }
    extensions.extend_from_slice(&[0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x17, 0x00, 0x18]);
    extensions.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);

    let mut body = vec![major, minor];
    body.extend_from_slice(&[0x5a; 32]);
    body.push(0);
    push_u16(&mut body, SUITES.len().saturating_mul(2));
    for suite in SUITES {
        body.extend_from_slice(&suite.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]);
    push_u16(&mut body, extensions.len());
    body.extend_from_slice(&extensions);

    let mut handshake = vec![1];
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes();
    handshake.extend_from_slice(&len[1..]);
    handshake.extend_from_slice(&body);

    let mut record = vec![0x16, major, minor];
    push_u16(&mut record, handshake.len());
    record.extend_from_slice(&handshake);
    record
}

/// What the server answered to an old `ClientHello`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// A `ServerHello` agreeing to the version offered.
    Accepted,
    /// An alert, a closed connection, or a `ServerHello` of another version.
    Refused(String),
    /// Not enough bytes yet to tell.
    Incomplete,
}

/// Classifies the first bytes the server sent back.
pub(crate) fn classify(version: OldVersion, answer: &[u8]) -> Answer {
    match answer {
        [] => Answer::Refused("the server closed the connection".to_owned()),
        [0x15, ..] => match answer.get(5..7) {
            Some([level, description]) => Answer::Refused(format!(
                "the server answered with an alert (level {level}, description {description})"
            )),
            _ => Answer::Incomplete,
        },
        // A handshake record: its first message must be a `ServerHello` (2),
        // whose server_version follows the 4-byte handshake header.
        [0x16, ..] => match answer.get(5..11) {
            Some([2, _, _, _, major, minor]) if [*major, *minor] == version.wire() => {
                Answer::Accepted
            }
            Some([2, _, _, _, major, minor]) => Answer::Refused(format!(
                "the server answered with version {major}.{minor}, not {}",
                version.name()
            )),
            Some(_) => {
                Answer::Refused("the server answered with another handshake message".to_owned())
            }
            None => Answer::Incomplete,
        },
        _ => Answer::Refused("the server's answer is not TLS".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hello_is_laid_out_field_by_field() {
        let hello = client_hello(OldVersion::Tls11, "a.b");
        let extensions: &[u8] = &[
            0, 0, 0, 8, 0, 6, 0, 0, 3, b'a', b'.', b'b', // server_name
            0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x17, 0x00, 0x18, // groups
            0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // point formats
        ];
        let body_len = 2 + 32 + 1 + 2 + 12 + 2 + 2 + extensions.len();
        let mut want = vec![0x16, 3, 2, 0, u8::try_from(body_len + 4).expect("small")];
        want.extend_from_slice(&[1, 0, 0, u8::try_from(body_len).expect("small"), 3, 2]);
        want.extend_from_slice(&[0x5a; 32]);
        want.extend_from_slice(&[0, 0, 12, 0xc0, 0x13, 0xc0, 0x14, 0xc0, 0x09, 0xc0, 0x0a]);
        want.extend_from_slice(&[0x00, 0x2f, 0x00, 0x35, 1, 0, 0, 28]);
        want.extend_from_slice(extensions);
        assert_eq!(hello, want);
        // An IP address is not sent as a server name.
        let by_ip = client_hello(OldVersion::Tls10, "127.0.0.1");
        assert_eq!(by_ip.len(), want.len() - 12);
        assert_eq!(&by_ip[..3], &[0x16, 3, 1]);
    }

    #[test]
    fn answers_are_classified() {
        let v = OldVersion::Tls10;
        assert_eq!(
            classify(v, &[0x16, 3, 1, 0, 80, 2, 0, 0, 76, 3, 1]),
            Answer::Accepted
        );
        assert_eq!(
            classify(v, &[0x16, 3, 3, 0, 80, 2, 0, 0, 76, 3, 3]),
            Answer::Refused("the server answered with version 3.3, not TLS 1.0".to_owned())
        );
        assert_eq!(
            classify(v, &[0x15, 3, 1, 0, 2, 2, 70]),
            Answer::Refused(
                "the server answered with an alert (level 2, description 70)".to_owned()
            )
        );
        assert_eq!(
            classify(v, &[]),
            Answer::Refused("the server closed the connection".to_owned())
        );
        assert_eq!(classify(v, &[0x16, 3, 1]), Answer::Incomplete);
        assert_eq!(classify(v, &[0x15, 3]), Answer::Incomplete);
        assert_eq!(
            classify(v, b"HTTP/1.1 400"),
            Answer::Refused("the server's answer is not TLS".to_owned())
        );
    }
}
