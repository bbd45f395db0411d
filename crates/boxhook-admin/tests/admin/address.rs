//! `address::check` against real TLS receivers on 127.0.0.1 (tokio-rustls,
//! certificates made by rcgen): one test per rule, passing and failing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use boxhook::{Clock as _, KeyRing, SystemClock, Verifier};
use boxhook_admin::address::{check, Options, Report, Rule, Verdict};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

const HOST: &str = "hooks.example.com";

/// A private CA, trusted through `Options::extra_roots`.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
}

fn ca() -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "boxhook check-address test CA");
    let key = KeyPair::generate().expect("key");
    let der = params.self_signed(&key).expect("CA").der().clone();
    Ca {
        issuer: Issuer::new(params, key),
        der,
    }
}

type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// A certificate for `names` signed by `ca`, valid until `not_after`
/// seconds since the epoch (default: rcgen's 4096).
fn leaf(ca: &Ca, names: &[&str], not_after: Option<u64>) -> Identity {
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .expect("params");
    params.distinguished_name.push(DnType::CommonName, names[0]);
    if let Some(secs) = not_after {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(secs);
    }
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &ca.issuer).expect("signed");
    (
        vec![cert.der().clone()],
        PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
    )
}

fn self_signed(names: &[&str]) -> Identity {
    let certified = rcgen::generate_simple_self_signed(
        names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
    )
    .expect("self-signed");
    (
        vec![certified.cert.der().clone()],
        PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()).into(),
    )
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// How the test receiver answers.
#[derive(Clone)]
struct Answer {
    /// The status for a delivery that verifies with `keys` (401 otherwise).
    status: u16,
    delay: Duration,
    keys: KeyRing,
}

fn keys() -> KeyRing {
    KeyRing::from_strs(
        Some("check-address-primary"),
        Some("check-address-secondary"),
    )
    .expect("keys")
}

fn ok() -> Answer {
    Answer {
        status: 200,
        delay: Duration::ZERO,
        keys: keys(),
    }
}

/// A TLS receiver on 127.0.0.1 with `config`, answering each request per
/// `answer` after verifying its signature.
async fn receiver(config: ServerConfig, answer: Answer) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let answer = answer.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let answer = answer.clone();
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body.collect().await?.to_bytes();
                        tokio::time::sleep(answer.delay).await;
                        let verified = Verifier::new(answer.keys)
                            .verify(&parts.headers, &body, SystemClock.now())
                            .is_ok();
                        let status = if verified { answer.status } else { 401 };
                        Ok::<_, hyper::Error>(
                            hyper::Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::new()))
                                .expect("response"),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    addr
}

fn server_config(identity: Identity) -> ServerConfig {
    server_config_with(identity, ring::default_provider(), rustls::DEFAULT_VERSIONS)
}

fn server_config_with(
    (chain, key): Identity,
    provider: CryptoProvider,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> ServerConfig {
    ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("certificate")
}

fn options(addr: SocketAddr, ca: Option<&Ca>) -> Options {
    let mut options = Options::default();
    options.resolve = Some(format!("{HOST}:{addr}").parse().expect("pin"));
    options.allow_private_address = true;
    options.extra_roots = ca.map(|ca| vec![ca.der.clone()]).unwrap_or_default();
    options.network_timeout = Duration::from_secs(5);
    options
}

fn verdict(report: &Report, rule: Rule) -> &Verdict {
    report.verdict(rule).expect("every rule is reported")
}

fn status(report: &Report, rule: Rule) -> &'static str {
    verdict(report, rule).status()
}

fn reason(report: &Report, rule: Rule) -> &str {
    verdict(report, rule).reason()
}

#[tokio::test]
async fn a_good_receiver_passes_every_rule_but_the_pinned_loopback_address() {
    let ca = ca();
    let addr = receiver(server_config(leaf(&ca, &[HOST], None)), ok()).await;
    let mut options = options(addr, Some(&ca));
    options.send = Some(keys());
    let report = check(&format!("https://{HOST}/box/webhooks"), &options)
        .await
        .expect("a URL");
    let rules: Vec<Rule> = report.checks().iter().map(|c| c.rule).collect();
    assert_eq!(rules, Rule::ALL);
    assert_eq!(
        verdict(&report, Rule::HttpsPort),
        &Verdict::Pass("https on port 443".to_owned())
    );
    assert_eq!(
        verdict(&report, Rule::PublicAddress),
        &Verdict::Warn(
            "127.0.0.1 is loopback (pinned by --resolve): allowed by --allow-private-address, \
             but the real Box would not deliver there"
                .to_owned()
        )
    );
    assert_eq!(
        verdict(&report, Rule::NotBox),
        &Verdict::Pass(format!("{HOST} is not under box.com"))
    );
    assert_eq!(status(&report, Rule::Certificate), "pass");
    assert!(
        reason(&report, Rule::Certificate).starts_with(&format!(
            "the chain verifies against Mozilla's roots for {HOST}; expires on 4096-01-01 00:00:00 UTC"
        )),
        "{:?}",
        report.checks()
    );
    assert_eq!(
        verdict(&report, Rule::Tls12),
        &Verdict::Pass(
            "TLS 1.2 with TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 on secp256r1".to_owned()
        )
    );
    assert_eq!(
        verdict(&report, Rule::Tls13),
        &Verdict::Pass("TLS 1.3 with TLS13_AES_256_GCM_SHA384 on secp256r1".to_owned())
    );
    assert_eq!(status(&report, Rule::Tls10Refused), "pass");
    assert_eq!(status(&report, Rule::Tls11Refused), "pass");
    assert!(reason(&report, Rule::Tls10Refused)
        .starts_with("TLS 1.0 refused: the server answered with an alert"));
    assert_eq!(
        status(&report, Rule::Delivery),
        "pass",
        "{:?}",
        report.checks()
    );
    assert!(reason(&report, Rule::Delivery).contains(" answered 200 OK in "));
    assert!(!report.failed());
}

#[tokio::test]
async fn without_keys_the_delivery_is_skipped_and_without_the_flag_loopback_fails() {
    let ca = ca();
    let addr = receiver(server_config(leaf(&ca, &[HOST], None)), ok()).await;
    let mut options = options(addr, Some(&ca));
    options.allow_private_address = false;
    let report = check(&format!("https://{HOST}/"), &options)
        .await
        .expect("a URL");
    assert_eq!(
        verdict(&report, Rule::PublicAddress),
        &Verdict::Fail(
            "127.0.0.1 is loopback (pinned by --resolve): Box delivers only to public addresses"
                .to_owned()
        )
    );
    assert_eq!(
        verdict(&report, Rule::Delivery),
        &Verdict::Skipped("no test delivery sent (give --send and the keys)".to_owned())
    );
    assert!(report.failed());
}

#[tokio::test]
async fn port_8443_and_plain_http_fail_the_https_rule() {
    let ca = ca();
    let addr = receiver(server_config(leaf(&ca, &[HOST], None)), ok()).await;
    let options = options(addr, Some(&ca));
    let report = check(&format!("https://{HOST}:8443/"), &options)
        .await
        .expect("a URL");
    assert_eq!(
        verdict(&report, Rule::HttpsPort),
        &Verdict::Fail("port 8443: Box delivers only to the standard HTTPS port, 443".to_owned())
    );
    assert_eq!(
        status(&report, Rule::Tls13),
        "pass",
        "the TLS rules still run"
    );

    let report = check(&format!("http://{HOST}/"), &options)
        .await
        .expect("a URL");
    assert_eq!(
        verdict(&report, Rule::HttpsPort),
        &Verdict::Fail("scheme http: Box delivers only to https:// URLs".to_owned())
    );
    for rule in &Rule::ALL[3..] {
        assert_eq!(
            verdict(&report, *rule),
            &Verdict::Skipped("not an https:// URL".to_owned()),
            "{rule}"
        );
    }
}

#[tokio::test]
async fn a_box_com_name_fails() {
    let ca = ca();
    let addr = receiver(server_config(leaf(&ca, &["hooks.Box.com"], None)), ok()).await;
    let mut options = options(addr, Some(&ca));
    options.resolve = Some(format!("hooks.box.com:{addr}").parse().expect("pin"));
    let report = check("https://hooks.BOX.com./", &options)
        .await
        .expect("a URL");
    assert_eq!(
        verdict(&report, Rule::NotBox),
        &Verdict::Fail(
            "hooks.box.com is box.com or under it: Box does not deliver to its own domains"
                .to_owned()
        )
    );
}

#[tokio::test]
async fn a_host_that_does_not_resolve_fails_and_skips_the_tls_rules() {
    let report = check("https://no-such-host.invalid/", &Options::default())
        .await
        .expect("a URL");
    assert_eq!(status(&report, Rule::PublicAddress), "fail");
    assert!(
        reason(&report, Rule::PublicAddress).starts_with("no-such-host.invalid does not resolve: ")
    );
    assert_eq!(
        verdict(&report, Rule::Certificate),
        &Verdict::Skipped("no-such-host.invalid does not resolve".to_owned())
    );
}

#[tokio::test]
async fn not_a_url_is_an_error() {
    let err = check("/box", &Options::default())
        .await
        .expect_err("no scheme");
    assert_eq!(
        err.to_string(),
        "\"/box\" is not an absolute URL (https://host/path)"
    );
    let err = check("https://hooks example/", &Options::default())
        .await
        .expect_err("a space");
    assert_eq!(
        err.to_string(),
        "\"https://hooks example/\" is not a URL: invalid uri character"
    );
}

#[tokio::test]
async fn a_self_signed_certificate_fails() {
    let identity = self_signed(&[HOST]);
    let trusted = identity.0[0].clone();
    let addr = receiver(server_config(identity), ok()).await;
    let mut options = options(addr, None);
    // Even trusted, a self-signed certificate is not one Box accepts.
    options.extra_roots = vec![trusted];
    let report = check(&format!("https://{HOST}/"), &options)
        .await
        .expect("a URL");
    assert_eq!(
        verdict(&report, Rule::Certificate),
        &Verdict::Fail(
            "the certificate is self-signed: Box requires one signed by a reputable certificate authority"
                .to_owned()
        )
    );
}

#[tokio::test]
async fn an_expired_certificate_fails_and_one_about_to_expire_warns() {
    let ca = ca();
    let expired = receiver(
        server_config(leaf(&ca, &[HOST], Some(946_771_200))), // 2000-01-02
        ok(),
    )
    .await;
    let report = check(&format!("https://{HOST}/"), &options(expired, Some(&ca)))
        .await
        .expect("a URL");
    assert_eq!(
        verdict(&report, Rule::Certificate),
        &Verdict::Fail("the certificate expired on 2000-01-02 00:00:00 UTC".to_owned())
    );

    let soon = now_secs() + 5 * 86_400 + 3600;
    let expiring = receiver(server_config(leaf(&ca, &[HOST], Some(soon))), ok()).await;
    let report = check(&format!("https://{HOST}/"), &options(expiring, Some(&ca)))
        .await
        .expect("a URL");
    assert_eq!(status(&report, Rule::Certificate), "warn");
    assert!(
        reason(&report, Rule::Certificate).ends_with(", in 5 day(s): renew it"),
        "{:?}",
        report.checks()
    );
}

#[tokio::test]
async fn an_unknown_ca_or_another_name_fails() {
    let ca = ca();
    let addr = receiver(server_config(leaf(&ca, &[HOST], None)), ok()).await;
    let report = check(&format!("https://{HOST}/"), &options(addr, None))
        .await
        .expect("a URL");
    assert_eq!(
        verdict(&report, Rule::Certificate),
        &Verdict::Fail(
            "the chain does not lead to a root in Mozilla's list (webpki-roots)".to_owned()
        )
    );

    let other = receiver(server_config(leaf(&ca, &["other.example.com"], None)), ok()).await;
    let report = check(&format!("https://{HOST}/"), &options(other, Some(&ca)))
        .await
        .expect("a URL");
    assert_eq!(
        verdict(&report, Rule::Certificate),
        &Verdict::Fail(format!("the certificate is not valid for {HOST}"))
    );
}

#[tokio::test]
async fn a_server_without_fips_suites_fails_both_handshakes() {
    let ca = ca();
    let chacha_x25519 = CryptoProvider {
        cipher_suites: vec![
            ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
            ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
        kx_groups: vec![ring::kx_group::X25519],
        ..ring::default_provider()
    };
    let config = server_config_with(
        leaf(&ca, &[HOST], None),
        chacha_x25519,
        rustls::DEFAULT_VERSIONS,
    );
    let addr = receiver(config, ok()).await;
    let report = check(&format!("https://{HOST}/"), &options(addr, Some(&ca)))
        .await
        .expect("a URL");
    for rule in [Rule::Tls12, Rule::Tls13] {
        assert_eq!(status(&report, rule), "fail", "{rule}");
        assert!(
            reason(&report, rule)
                .ends_with("(offering only AES-GCM suites on secp256r1/secp384r1, as Box does)"),
            "{:?}",
            report.checks()
        );
    }
    // The certificate rule offers every suite: the chain is still judged.
    assert_eq!(status(&report, Rule::Certificate), "pass");
}

#[tokio::test]
async fn a_tls13_only_server_fails_the_tls12_rule() {
    let ca = ca();
    let config = server_config_with(
        leaf(&ca, &[HOST], None),
        ring::default_provider(),
        &[&rustls::version::TLS13],
    );
    let addr = receiver(config, ok()).await;
    let report = check(&format!("https://{HOST}/"), &options(addr, Some(&ca)))
        .await
        .expect("a URL");
    assert_eq!(status(&report, Rule::Tls12), "fail");
    assert_eq!(status(&report, Rule::Tls13), "pass");
}

/// A server that speaks TLS 1.0 only: it answers a TLS 1.0 `ClientHello` with
/// the start of a TLS 1.0 `ServerHello`, and any other with a 1.0 one too.
async fn tls10_only_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut hello = [0_u8; 5];
                if tcp.read_exact(&mut hello).await.is_ok() {
                    // handshake record 3.1, 42 bytes: ServerHello, 38 bytes, version 3.1, ...
                    let mut answer = vec![0x16, 3, 1, 0, 42, 2, 0, 0, 38, 3, 1];
                    answer.extend_from_slice(&[0; 32]);
                    answer.extend_from_slice(&[0, 0xc0, 0x13, 0]);
                    let _ = tcp.write_all(&answer).await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_accepted_tls_1_0_warns_and_a_downgraded_1_1_is_refused() {
    let addr = tls10_only_server().await;
    let report = check(&format!("https://{HOST}/"), &options(addr, None))
        .await
        .expect("a URL");
    assert_eq!(
        verdict(&report, Rule::Tls10Refused),
        &Verdict::Warn(
            "the server accepts TLS 1.0: Box speaks only TLS 1.2 and 1.3, but older clients \
             could still connect; disable it"
                .to_owned()
        )
    );
    assert_eq!(
        verdict(&report, Rule::Tls11Refused),
        &Verdict::Pass(
            "TLS 1.1 refused: the server answered with version 3.1, not TLS 1.1".to_owned()
        )
    );
}

#[tokio::test]
async fn a_receiver_answering_500_fails_the_delivery() {
    let ca = ca();
    let answer = Answer {
        status: 500,
        ..ok()
    };
    let addr = receiver(server_config(leaf(&ca, &[HOST], None)), answer).await;
    let mut options = options(addr, Some(&ca));
    options.send = Some(keys());
    let report = check(&format!("https://{HOST}/"), &options)
        .await
        .expect("a URL");
    assert_eq!(status(&report, Rule::Delivery), "fail");
    assert!(
        reason(&report, Rule::Delivery).contains(" answered 500 Internal Server Error in ")
            && reason(&report, Rule::Delivery)
                .ends_with(": Box counts anything but a 2xx as a failure and retries"),
        "{:?}",
        report.checks()
    );
}

#[tokio::test]
async fn a_delivery_signed_with_other_keys_is_refused_by_the_receiver() {
    let ca = ca();
    let addr = receiver(server_config(leaf(&ca, &[HOST], None)), ok()).await;
    let mut options = options(addr, Some(&ca));
    options.send = Some(KeyRing::from_strs(Some("not-the-receivers-key"), None).expect("keys"));
    let report = check(&format!("https://{HOST}/"), &options)
        .await
        .expect("a URL");
    assert_eq!(status(&report, Rule::Delivery), "fail");
    assert!(reason(&report, Rule::Delivery).contains(" answered 401 Unauthorized in "));
}

/// Box waits 30 s; the bound is `Options::delivery_timeout`, so this test
/// stands in a 1 s bound and a receiver answering after 3 s for Box's 30 s
/// and a receiver answering after 31 s.
#[tokio::test]
async fn a_receiver_answering_after_the_timeout_fails_the_delivery() {
    let ca = ca();
    let answer = Answer {
        delay: Duration::from_secs(3),
        ..ok()
    };
    let addr = receiver(server_config(leaf(&ca, &[HOST], None)), answer).await;
    let mut options = options(addr, Some(&ca));
    options.send = Some(keys());
    options.delivery_timeout = Duration::from_secs(1);
    let report = check(&format!("https://{HOST}/"), &options)
        .await
        .expect("a URL");
    assert_eq!(status(&report, Rule::Delivery), "fail");
    assert!(
        reason(&report, Rule::Delivery)
            .ends_with(": no answer within 1 s: Box gives up on a delivery after 30 s and retries"),
        "{:?}",
        report.checks()
    );
}
