//! The TLS rules: the certificate, the FIPS-only handshakes, the old
//! versions, and the test delivery.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use boxhook::runtime::fixtures;
use boxhook::runtime::send::{Delivery, DeliveryIds};
use boxhook::{Clock as _, KeyRing, SystemClock};
use bytes::Bytes;
use http::header::HOST;
use http::HeaderValue;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{ring, CryptoProvider, SupportedKxGroup};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    SupportedCipherSuite, SupportedProtocolVersion,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::der;
use super::hello::{self, Answer, OldVersion};
use super::{Options, Verdict, EXPIRY_WARNING};

/// The cipher suites Box's client offers, and the only ones the FIPS
/// handshakes offer: AES-GCM with ECDHE (NIST SP 800-52 Rev. 2, section
/// 3.3.1; FIPS 140-3 approved), TLS 1.3 first.
pub const FIPS_SUITES: [SupportedCipherSuite; 6] = [
    ring::cipher_suite::TLS13_AES_256_GCM_SHA384,
    ring::cipher_suite::TLS13_AES_128_GCM_SHA256,
    ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
];

/// The key-exchange groups the FIPS handshakes offer: the NIST curves
/// P-256 and P-384 (no X25519, which FIPS 140-3 does not approve for key
/// agreement).
pub const FIPS_GROUPS: [&'static dyn SupportedKxGroup; 2] =
    [ring::kx_group::SECP256R1, ring::kx_group::SECP384R1];

/// ring restricted to [`FIPS_SUITES`] and [`FIPS_GROUPS`].
fn fips_provider() -> CryptoProvider {
    CryptoProvider {
        cipher_suites: FIPS_SUITES.to_vec(),
        kx_groups: FIPS_GROUPS.to_vec(),
        ..ring::default_provider()
    }
}

/// A verifier that accepts any chain and keeps it, so the certificate rule
/// can say *why* a chain fails rather than only that the handshake did; the
/// handshake signatures are still checked.
#[derive(Debug)]
struct Recorder {
    chain: Mutex<Vec<CertificateDer<'static>>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut chain = self.chain.lock().unwrap_or_else(PoisonError::into_inner);
        chain.clear();
        chain.push(end_entity.clone().into_owned());
        chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The TLS side of one check: where to connect and what to call the host.
pub(super) struct Probe<'a> {
    pub(super) addr: SocketAddr,
    pub(super) host: &'a str,
    pub(super) path_and_query: &'a str,
    pub(super) options: &'a Options,
}

/// A handshake's result: the negotiated parameters, or why it failed.
type Handshaken = tokio_rustls::client::TlsStream<TcpStream>;

impl Probe<'_> {
    fn server_name(&self) -> Result<ServerName<'static>, String> {
        ServerName::try_from(self.host.to_owned())
            .map_err(|err| format!("{} is not a valid TLS server name: {err}", self.host))
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for extra in &self.options.extra_roots {
            // A certificate the CA file holds but webpki cannot use as a
            // root is reported by the chain's verification, not here.
            let _ = roots.add(extra.clone());
        }
        roots
    }

    /// Connects and shakes hands with `config`, bounded by the network timeout.
    async fn handshake(&self, config: ClientConfig) -> Result<Handshaken, String> {
        let name = self.server_name()?;
        let limit = self.options.network_timeout;
        let attempt = async {
            let tcp = TcpStream::connect(self.addr)
                .await
                .map_err(|err| format!("cannot connect to {}: {err}", self.addr))?;
            TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await
                .map_err(|err| format!("handshake with {} failed: {err}", self.addr))
        };
        tokio::time::timeout(limit, attempt)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "no handshake with {} within {} s",
                    self.addr,
                    limit.as_secs()
                ))
            })
    }

    /// [`super::Rule::Certificate`].
    pub(super) async fn certificate(&self) -> Verdict {
        let provider = Arc::new(ring::default_provider());
        let recorder = Arc::new(Recorder {
            chain: Mutex::new(Vec::new()),
            provider: Arc::clone(&provider),
        });
        let config = match ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(rustls::ALL_VERSIONS)
        {
            Ok(builder) => builder
                .dangerous()
                .with_custom_certificate_verifier(
                    Arc::clone(&recorder) as Arc<dyn ServerCertVerifier>
                )
                .with_no_client_auth(),
            Err(err) => return Verdict::Fail(format!("cannot configure TLS: {err}")),
        };
        if let Err(err) = self.handshake(config).await {
            return Verdict::Fail(format!("no certificate to check: {err}"));
        }
        let chain = recorder
            .chain
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Verdict::Fail("the server sent no certificate".to_owned());
        };
        let Some(facts) = der::leaf(leaf) else {
            return Verdict::Fail(
                "the server's certificate is not a readable X.509 certificate".to_owned(),
            );
        };
        if facts.self_issued {
            return Verdict::Fail(
                "the certificate is self-signed: Box requires one signed by a reputable certificate authority"
                    .to_owned(),
            );
        }
        let Ok(name) = self.server_name() else {
            return Verdict::Fail(format!("{} is not a valid TLS server name", self.host));
        };
        let verifier =
            match WebPkiServerVerifier::builder_with_provider(Arc::new(self.roots()), provider)
                .build()
            {
                Ok(verifier) => verifier,
                Err(err) => return Verdict::Fail(format!("cannot build the verifier: {err}")),
            };
        let expires = der::format_utc(facts.not_after);
        if let Err(err) =
            verifier.verify_server_cert(leaf, intermediates, &name, &[], UnixTime::now())
        {
            return Verdict::Fail(match err {
                rustls::Error::InvalidCertificate(
                    CertificateError::Expired | CertificateError::ExpiredContext { .. },
                ) => format!("the certificate expired on {expires}"),
                rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                ) => format!("the certificate is not valid for {}", self.host),
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
                    "the chain does not lead to a root in Mozilla's list (webpki-roots)".to_owned()
                }
                other => format!("the chain does not verify: {other}"),
            });
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let left = facts.not_after.saturating_sub(now);
        let days = left / 86_400;
        let warn_below = i64::try_from(EXPIRY_WARNING.as_secs()).unwrap_or(i64::MAX);
        if left < warn_below {
            Verdict::Warn(format!(
                "the chain verifies for {}, but expires on {expires}, in {days} day(s): renew it",
                self.host
            ))
        } else {
            Verdict::Pass(format!(
                "the chain verifies against Mozilla's roots for {}; expires on {expires} ({days} days)",
                self.host
            ))
        }
    }

    /// [`super::Rule::Tls12`] or [`super::Rule::Tls13`].
    pub(super) async fn fips_handshake(
        &self,
        version: &'static SupportedProtocolVersion,
    ) -> Verdict {
        let provider = Arc::new(fips_provider());
        let recorder = Arc::new(Recorder {
            chain: Mutex::new(Vec::new()),
            provider: Arc::clone(&provider),
        });
        let name = format!("{:?}", version.version).replace("TLSv1_", "TLS 1.");
        let config = match ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
        {
            Ok(builder) => builder
                .dangerous()
                .with_custom_certificate_verifier(recorder)
                .with_no_client_auth(),
            Err(err) => return Verdict::Fail(format!("cannot configure {name}: {err}")),
        };
        match self.handshake(config).await {
            Ok(stream) => {
                let (_, connection) = stream.get_ref();
                let suite = connection
                    .negotiated_cipher_suite()
                    .map(|s| format!("{:?}", s.suite()))
                    .unwrap_or_default();
                let group = connection
                    .negotiated_key_exchange_group()
                    .map(|g| format!("{:?}", g.name()))
                    .unwrap_or_default();
                Verdict::Pass(format!("{name} with {suite} on {group}"))
            }
            Err(err) => Verdict::Fail(format!(
                "{err} (offering only AES-GCM suites on secp256r1/secp384r1, as Box does)"
            )),
        }
    }

    /// [`super::Rule::Tls10Refused`] or [`super::Rule::Tls11Refused`].
    pub(super) async fn old_version(&self, version: OldVersion) -> Verdict {
        let limit = self.options.network_timeout;
        let attempt = async {
            let mut tcp = TcpStream::connect(self.addr)
                .await
                .map_err(|err| format!("cannot connect to {}: {err}", self.addr))?;
            tcp.write_all(&hello::client_hello(version, self.host))
                .await
                .map_err(|err| format!("cannot send a {} ClientHello: {err}", version.name()))?;
            let mut answer = Vec::new();
            let mut buf = [0_u8; 512];
            loop {
                // A reset is a refusal as plain as a close.
                let read = tcp.read(&mut buf).await.unwrap_or(0);
                if read == 0 {
                    return Ok(match hello::classify(version, &answer) {
                        Answer::Incomplete => {
                            Answer::Refused("the server closed the connection".to_owned())
                        }
                        done => done,
                    });
                }
                answer.extend_from_slice(buf.get(..read).unwrap_or_default());
                match hello::classify(version, &answer) {
                    Answer::Incomplete => {}
                    done => return Ok(done),
                }
            }
        };
        match tokio::time::timeout(limit, attempt).await {
            Ok(Ok(Answer::Accepted)) => Verdict::Warn(format!(
                "the server accepts {}: Box speaks only TLS 1.2 and 1.3, but older clients could still connect; disable it",
                version.name()
            )),
            Ok(Ok(Answer::Refused(why))) => Verdict::Pass(format!("{} refused: {why}", version.name())),
            Ok(Ok(Answer::Incomplete)) => Verdict::Pass(format!("{} refused", version.name())),
            Ok(Err(err)) => Verdict::Skipped(err),
            Err(_) => Verdict::Warn(format!(
                "no answer to a {} ClientHello within {} s",
                version.name(),
                limit.as_secs()
            )),
        }
    }

    /// [`super::Rule::Delivery`]: a signed, realistic `FILE.UPLOADED`
    /// delivery with a fresh event id, over a FIPS-only TLS connection that
    /// verifies the certificate, answered 2xx within the delivery timeout.
    pub(super) async fn delivery(&self, keys: &KeyRing) -> Verdict {
        let body = match upload_body() {
            Ok(body) => body,
            Err(err) => return Verdict::Fail(err),
        };
        let delivery = Delivery::new(body)
            .keys(keys.clone())
            .sent_at(SystemClock.now())
            .at(self.path_and_query);
        let mut request = delivery.to_request();
        let name = if self.host.parse::<std::net::Ipv6Addr>().is_ok() {
            format!("[{}]", self.host)
        } else {
            self.host.to_owned()
        };
        let host = match self.addr.port() {
            443 => name,
            port => format!("{name}:{port}"),
        };
        match HeaderValue::from_str(&host) {
            Ok(value) => {
                request.headers_mut().insert(HOST, value);
            }
            Err(err) => return Verdict::Fail(format!("{host} is not a Host header: {err}")),
        }
        let config = match ClientConfig::builder_with_provider(Arc::new(fips_provider()))
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        {
            Ok(builder) => builder
                .with_root_certificates(self.roots())
                .with_no_client_auth(),
            Err(err) => return Verdict::Fail(format!("cannot configure TLS: {err}")),
        };
        let started = Instant::now();
        let limit = self.options.delivery_timeout;
        let event_id = delivery.sent_delivery_id();
        let attempt = async {
            let tls = self.handshake(config).await?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(tls))
                    .await
                    .map_err(|err| format!("HTTP handshake failed: {err}"))?;
            let driver = tokio::spawn(connection);
            let response = sender.send_request(request).await;
            driver.abort();
            response.map_err(|err| format!("no response: {err}"))
        };
        let outcome = tokio::time::timeout(limit, attempt).await;
        let took = format_elapsed(started.elapsed());
        match outcome {
            Ok(Ok(response)) if response.status().is_success() => Verdict::Pass(format!(
                "delivery {event_id} answered {} in {took}",
                response.status()
            )),
            Ok(Ok(response)) => Verdict::Fail(format!(
                "delivery {event_id} answered {} in {took}: Box counts anything but a 2xx as a failure and retries",
                response.status()
            )),
            Ok(Err(err)) => Verdict::Fail(format!("delivery {event_id}: {err} after {took}")),
            Err(_) => Verdict::Fail(format!(
                "delivery {event_id}: no answer within {} s: Box gives up on a delivery after 30 s and retries",
                limit.as_secs_f64()
            )),
        }
    }
}

/// `1234 ms` or `12.3 s`.
fn format_elapsed(elapsed: Duration) -> String {
    if elapsed < Duration::from_secs(10) {
        format!("{} ms", elapsed.as_millis())
    } else {
        format!("{:.1} s", elapsed.as_secs_f64())
    }
}

/// The fixture corpus's `FILE.UPLOADED` payload with a fresh event id, every
/// other byte kept: Box's compact form puts the event's `"id":"…"` first.
fn upload_body() -> Result<Vec<u8>, String> {
    let fixture = fixtures::for_trigger("FILE.UPLOADED")
        .next()
        .ok_or("the fixture corpus has no FILE.UPLOADED payload")?;
    let body = fixture.body();
    let old_id = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("id").and_then(|id| id.as_str().map(str::to_owned)))
        .ok_or("the FILE.UPLOADED fixture has no string event id")?;
    let needle = format!("\"id\":\"{old_id}\"");
    let at = body
        .windows(needle.len())
        .position(|window| window == needle.as_bytes())
        .ok_or("the FILE.UPLOADED fixture's event id is not in compact form")?;
    let (before, rest) = body.split_at(at);
    let after = rest.get(needle.len()..).unwrap_or_default();
    let mut out = before.to_vec();
    out.extend_from_slice(format!("\"id\":\"{}\"", DeliveryIds::random().next_id()).as_bytes());
    out.extend_from_slice(after);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upload_body_gets_a_fresh_id_and_keeps_the_rest() {
        let first = upload_body().expect("a body");
        let second = upload_body().expect("a body");
        assert_ne!(first, second);
        let a: serde_json::Value = serde_json::from_slice(&first).expect("JSON");
        let b: serde_json::Value = serde_json::from_slice(&second).expect("JSON");
        assert_eq!(a["trigger"], "FILE.UPLOADED");
        assert_ne!(a["id"], b["id"]);
        assert_eq!(a["source"], b["source"]);
        assert_eq!(first.len(), second.len());
    }

    #[test]
    fn only_the_fips_lists_are_offered() {
        let provider = fips_provider();
        let suites: Vec<String> = provider
            .cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        assert_eq!(
            suites,
            [
                "TLS13_AES_256_GCM_SHA384",
                "TLS13_AES_128_GCM_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            ]
        );
        let groups: Vec<String> = provider
            .kx_groups
            .iter()
            .map(|g| format!("{:?}", g.name()))
            .collect();
        assert_eq!(groups, ["secp256r1", "secp384r1"]);
    }
}
