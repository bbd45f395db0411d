//! The server over TLS, with a rustls client on 127.0.0.1: FIPS-only
//! clients complete handshakes on TLS 1.2 and 1.3 and others are refused,
//! handshakes have their deadline and count against the connection cap,
//! and a reloaded certificate reaches new handshakes only.
#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use boxhook_testkit::fs::TempDir;
use rustls::client::Resumption;
use rustls::crypto::{ring, CryptoProvider, SupportedKxGroup};
use rustls::{ClientConfig, RootCertStore, SupportedCipherSuite};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::{serve, CertError, Limits, ReloadableCert, Server, Tls, TlsPolicy, SHED_GRACE};

const GET_HELLO: &[u8] = b"GET /hello HTTP/1.1\r\nhost: localhost\r\n\r\n";

fn hello_app() -> axum::Router {
    axum::Router::new().route("/hello", axum::routing::get(|| async { "hi" }))
}

/// A self-signed certificate for `localhost` written as PEM files.
struct Pair {
    der: CertificateDer<'static>,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

fn pair(dir: &TempDir, name: &str) -> Pair {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.path().join(format!("{name}.crt"));
    let key = dir.path().join(format!("{name}.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    Pair {
        der: made.cert.der().clone(),
        cert,
        key,
    }
}

async fn start(
    tls: Tls,
    configure: impl FnOnce(Server<axum::Router>) -> Server<axum::Router>,
) -> (SocketAddr, oneshot::Sender<()>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server =
        configure(serve(listener, hello_app()).tls(tls)).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
    (addr, stop, tokio::spawn(server.run()))
}

/// A client offering only `suites` and `groups` on `version`, trusting
/// `roots`, without session resumption.
fn client(
    roots: &[&CertificateDer<'static>],
    version: &'static rustls::SupportedProtocolVersion,
    suites: &[SupportedCipherSuite],
    groups: &[&'static dyn SupportedKxGroup],
) -> TlsConnector {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add((*root).clone()).unwrap();
    }
    let provider = CryptoProvider {
        cipher_suites: suites.to_vec(),
        kx_groups: groups.to_vec(),
        ..ring::default_provider()
    };
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Every connection a full handshake: a resumed session shows the
    // certificate of the session it resumes, not the one served now.
    config.resumption = Resumption::disabled();
    TlsConnector::from(Arc::new(config))
}

fn fips_client(roots: &[&CertificateDer<'static>]) -> TlsConnector {
    client(
        roots,
        &rustls::version::TLS13,
        &[ring::cipher_suite::TLS13_AES_128_GCM_SHA256],
        &[ring::kx_group::SECP256R1],
    )
}

async fn connect(
    addr: SocketAddr,
    connector: &TlsConnector,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

/// Sends `GET /hello` and reads the answer (its head and the body `hi`).
async fn get_hello(stream: &mut TlsStream<TcpStream>) -> Vec<u8> {
    stream.write_all(GET_HELLO).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.ends_with(b"\r\n\r\nhi") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_ne!(n, 0, "closed before the answer: {answer:?}");
        answer.extend_from_slice(&buf[..n]);
    }
    answer
}

fn assert_ok(answer: &[u8]) {
    let text = String::from_utf8_lossy(answer);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("\r\ncontent-length: 2\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nhi"), "{text}");
}

fn peer_cert(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// How long until the server closes `stream`, or `None` if still open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn fips_only_clients_are_served_over_tls_1_2_and_1_3() {
    let dir = TempDir::new("tls-fips");
    let pair = pair(&dir, "a");
    let cert = Arc::new(ReloadableCert::from_pem_files(&pair.cert, &pair.key).unwrap());
    let (addr, stop, server) = start(Tls::new(cert, TlsPolicy::FipsOnly), |s| s).await;
    let cases: [(
        &'static rustls::SupportedProtocolVersion,
        SupportedCipherSuite,
    ); 4] = [
        (
            &rustls::version::TLS13,
            ring::cipher_suite::TLS13_AES_128_GCM_SHA256,
        ),
        (
            &rustls::version::TLS13,
            ring::cipher_suite::TLS13_AES_256_GCM_SHA384,
        ),
        (
            &rustls::version::TLS12,
            ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            &rustls::version::TLS12,
            ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ),
    ];
    for (version, suite) in cases {
        for group in [ring::kx_group::SECP256R1, ring::kx_group::SECP384R1] {
            let connector = client(&[&pair.der], version, &[suite], &[group]);
            let mut stream = connect(addr, &connector).await.unwrap();
            let (_, session) = stream.get_ref();
            assert_eq!(session.protocol_version(), Some(version.version));
            assert_eq!(
                session.negotiated_cipher_suite().map(|s| s.suite()),
                Some(suite.suite())
            );
            assert_eq!(
                session
                    .negotiated_key_exchange_group()
                    .map(SupportedKxGroup::name),
                Some(group.name())
            );
            assert_eq!(session.alpn_protocol(), Some(&b"http/1.1"[..]));
            assert_ok(&get_hello(&mut stream).await);
        }
    }
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn chacha20_only_and_x25519_only_clients_are_refused_in_fips_only_mode() {
    let dir = TempDir::new("tls-refused");
    let pair = pair(&dir, "a");
    let cert = Arc::new(ReloadableCert::from_pem_files(&pair.cert, &pair.key).unwrap());
    let chacha13 = client(
        &[&pair.der],
        &rustls::version::TLS13,
        &[ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256],
        &[ring::kx_group::SECP256R1],
    );
    let chacha12 = client(
        &[&pair.der],
        &rustls::version::TLS12,
        &[ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256],
        &[ring::kx_group::SECP256R1],
    );
    let x25519_13 = client(
        &[&pair.der],
        &rustls::version::TLS13,
        &[ring::cipher_suite::TLS13_AES_128_GCM_SHA256],
        &[ring::kx_group::X25519],
    );
    let x25519_12 = client(
        &[&pair.der],
        &rustls::version::TLS12,
        &[ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256],
        &[ring::kx_group::X25519],
    );
    let refused = [&chacha13, &chacha12, &x25519_13, &x25519_12];

    let (addr, stop, server) = start(Tls::new(cert.clone(), TlsPolicy::FipsOnly), |s| s).await;
    for connector in refused {
        let err = connect(addr, connector).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
        assert!(
            err.to_string().contains("HandshakeFailure"),
            "the server refused: {err}"
        );
    }
    stop.send(()).unwrap();
    server.await.unwrap();

    // The same clients are served under the Modern policy: the refusal above is the policy's.
    let (addr, stop, server) = start(Tls::new(cert, TlsPolicy::Modern), |s| s).await;
    for connector in refused {
        let mut stream = connect(addr, connector).await.unwrap();
        assert_ok(&get_hello(&mut stream).await);
    }
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn a_handshake_never_finished_is_cut_at_the_handshake_deadline() {
    let dir = TempDir::new("tls-deadline");
    let pair = pair(&dir, "a");
    let cert = Arc::new(ReloadableCert::from_pem_files(&pair.cert, &pair.key).unwrap());
    let tls = Tls::new(cert, TlsPolicy::FipsOnly).handshake_timeout(Duration::from_millis(400));
    // Idle and header deadlines far later: only the handshake's can cut.
    let limits = Limits {
        idle_timeout: Duration::from_secs(30),
        header_timeout: Duration::from_secs(30),
        ..Limits::DEFAULT
    };
    let (addr, stop, server) = start(tls, |s| s.limits(limits)).await;
    // Silent, and a ClientHello record cut after its header.
    for sent in [&b""[..], &[0x16, 0x03, 0x01, 0x02, 0x00][..]] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(sent).await.unwrap();
        let closed = closed_within(&mut stream, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(
            closed >= Duration::from_millis(300) && closed < Duration::from_secs(2),
            "{closed:?}"
        );
    }
    // A client that shakes hands in time is served.
    let mut stream = connect(addr, &fips_client(&[&pair.der])).await.unwrap();
    assert_ok(&get_hello(&mut stream).await);
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn a_connection_in_its_handshake_counts_against_the_cap_and_is_shed_when_idle() {
    let dir = TempDir::new("tls-cap");
    let pair = pair(&dir, "a");
    let cert = Arc::new(ReloadableCert::from_pem_files(&pair.cert, &pair.key).unwrap());
    let limits = Limits {
        max_connections: 1,
        idle_timeout: Duration::from_secs(30),
        ..Limits::DEFAULT
    };
    let (addr, stop, server) =
        start(Tls::new(cert, TlsPolicy::FipsOnly), |s| s.limits(limits)).await;
    // A stalled handshake holds the only place...
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    tokio::time::sleep(SHED_GRACE + Duration::from_millis(100)).await;
    assert_eq!(
        closed_within(&mut stalled, Duration::from_millis(100)).await,
        None,
        "alone, it waits for its deadline"
    );
    // ...until a newcomer arrives: then it is shed, and the newcomer served.
    let mut stream = connect(addr, &fips_client(&[&pair.der])).await.unwrap();
    assert!(closed_within(&mut stalled, Duration::from_secs(2))
        .await
        .is_some());
    assert_ok(&get_hello(&mut stream).await);
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn a_reloaded_certificate_reaches_new_handshakes_and_a_broken_one_keeps_the_old() {
    let dir = TempDir::new("tls-reload");
    let first = pair(&dir, "first");
    let second = pair(&dir, "second");
    let cert = Arc::new(ReloadableCert::from_pem_files(&first.cert, &first.key).unwrap());
    let (addr, stop, server) = start(Tls::new(cert.clone(), TlsPolicy::FipsOnly), |s| s).await;
    let trusting_both = fips_client(&[&first.der, &second.der]);

    let mut open = connect(addr, &trusting_both).await.unwrap();
    assert_ok(&get_hello(&mut open).await);
    assert_eq!(peer_cert(&open), first.der);

    cert.reload_from_pem_files(&second.cert, &second.key)
        .unwrap();
    assert_eq!(cert.chain(), std::slice::from_ref(&second.der));
    let mut fresh = connect(addr, &trusting_both).await.unwrap();
    assert_eq!(
        peer_cert(&fresh),
        second.der,
        "a new handshake sees the new one"
    );
    assert_ok(&get_hello(&mut fresh).await);
    // The connection opened before the reload goes on, with its certificate.
    assert_ok(&get_hello(&mut open).await);
    assert_eq!(peer_cert(&open), first.der);

    // Broken pairs: each an error, and the second certificate stays.
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, b"not a certificate\n").unwrap();
    let missing = dir.path().join("missing.pem");
    let err = cert
        .reload_from_pem_files(&first.cert, &second.key)
        .unwrap_err();
    assert!(matches!(err, CertError::Mismatch { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "certificate {} and private key {} do not go together: the key is not the certificate's",
            first.cert.display(),
            second.key.display()
        )
    );
    let err = cert
        .reload_from_pem_files(&garbage, &second.key)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "certificate {}: no PEM certificate in it",
            garbage.display()
        )
    );
    let err = cert
        .reload_from_pem_files(&second.cert, &missing)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("private key {}: no such file", missing.display())
    );
    let err = cert
        .reload_from_pem_files(&second.cert, &second.cert)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "private key {}: no PEM private key in it",
            second.cert.display()
        )
    );
    assert_eq!(cert.chain(), std::slice::from_ref(&second.der));
    let mut after = connect(addr, &trusting_both).await.unwrap();
    assert_eq!(
        peer_cert(&after),
        second.der,
        "the old (second) certificate stays"
    );
    assert_ok(&get_hello(&mut after).await);
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn after_the_handshake_a_slow_head_is_cut_at_the_header_deadline_as_in_plain() {
    let dir = TempDir::new("tls-head");
    let pair = pair(&dir, "a");
    let cert = Arc::new(ReloadableCert::from_pem_files(&pair.cert, &pair.key).unwrap());
    let limits = Limits {
        header_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_secs(30),
        ..Limits::DEFAULT
    };
    let (addr, stop, server) =
        start(Tls::new(cert, TlsPolicy::FipsOnly), |s| s.limits(limits)).await;
    let mut stream = connect(addr, &fips_client(&[&pair.der])).await.unwrap();
    let started = Instant::now();
    stream
        .write_all(b"GET /hello HTTP/1.1\r\nhost: loc")
        .await
        .unwrap();
    let mut buf = Vec::new();
    // hyper answers a head that timed out with nothing: the stream just ends.
    // Ended cleanly or by a reset: either way within the deadline.
    let _ended = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(buf, b"", "no answer to a head that never completed");
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    stop.send(()).unwrap();
    server.await.unwrap();
}

/// A FIPS client offering only the ALPN protocol `acme-tls/1`, as an ACME
/// CA validating TLS-ALPN-01 does.
fn acme_client(roots: &[&CertificateDer<'static>]) -> TlsConnector {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add((*root).clone()).unwrap();
    }
    let provider = CryptoProvider {
        cipher_suites: vec![ring::cipher_suite::TLS13_AES_128_GCM_SHA256],
        kx_groups: vec![ring::kx_group::SECP256R1],
        ..ring::default_provider()
    };
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = vec![super::ACME_TLS_ALPN.to_vec()];
    config.resumption = Resumption::disabled();
    TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn acme_tls_alpn_handshakes_are_answered_only_when_asked_and_carry_no_http() {
    let dir = TempDir::new("tls-acme-alpn");
    let pair = pair(&dir, "a");
    let cert = Arc::new(ReloadableCert::from_pem_files(&pair.cert, &pair.key).unwrap());

    let (addr, stop, server) = start(Tls::new(cert.clone(), TlsPolicy::FipsOnly), |s| s).await;
    let refused = connect(addr, &acme_client(&[&pair.der])).await;
    assert!(refused.is_err(), "acme-tls/1 is not offered by default");
    stop.send(()).unwrap();
    server.await.unwrap();

    let tls = Tls::new(cert, TlsPolicy::FipsOnly).answer_acme_tls_alpn();
    assert_eq!(tls.alpn_protocols(), [&b"http/1.1"[..], b"acme-tls/1"]);
    let (addr, stop, server) = start(tls, |s| s).await;
    let mut validation = connect(addr, &acme_client(&[&pair.der])).await.unwrap();
    assert_eq!(
        validation.get_ref().1.alpn_protocol(),
        Some(&b"acme-tls/1"[..])
    );
    // Closed after the handshake: a request gets no answer.
    let _ = validation.write_all(GET_HELLO).await;
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), validation.read(&mut buf))
        .await
        .expect("closed, not left open");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    // An ordinary client still gets http/1.1 and its answer.
    let mut stream = connect(addr, &fips_client(&[&pair.der])).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_ok(&get_hello(&mut stream).await);
    stop.send(()).unwrap();
    server.await.unwrap();
}
