//! `serve --tls-cert --tls-key`: a signed delivery over HTTPS (a client
//! offering only FIPS-approved suites and groups, as Box's does) is stored
//! and answered 200; SIGHUP after replacing the files makes new handshakes
//! see the new certificate while an open connection goes on, and a broken
//! replacement keeps the old one; a pair that does not load at start is a
//! usage error (exit 2) that leaves nothing behind. The certificate's
//! expiry is `boxhook_tls_certificate_expiry_seconds{domain}` for each of
//! its names, at start and after each reload, and the dashboard warns of a
//! certificate that expires within 14 days. Under load (deliveries over
//! keep-alive connections and over a fresh connection each), replacing the
//! files and sending SIGHUP again and again fails no delivery, and each
//! new handshake after a reload sees the new certificate. A certificate
//! with an RSA key (made by `openssl req`) completes TLS 1.2 with only the
//! ECDHE-RSA AES-GCM suites offered, and TLS 1.3.

use crate::common;

use std::io::{BufReader, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use boxhook_testkit::fs::TempDir;
use common::admin::{admin_addr, get};
use common::{boxhook, event, inbox_list, read_response, run, signed_request, Server};
use rustls::client::Resumption;
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

const LIMIT: Duration = Duration::from_secs(30);

type Tls = BufReader<StreamOwned<ClientConnection, TcpStream>>;

/// A self-signed certificate for `localhost`: its DER, its PEM and its key's PEM.
fn certificate() -> (CertificateDer<'static>, String, String) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    (
        made.cert.der().clone(),
        made.cert.pem(),
        made.signing_key.serialize_pem(),
    )
}

/// A self-signed certificate for `names` that expires at `not_after` (Unix
/// seconds): its DER, its PEM and its key's PEM.
pub(crate) fn certificate_until(
    names: &[&str],
    not_after: u64,
) -> (CertificateDer<'static>, String, String) {
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .expect("params");
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(not_after);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-signed");
    (cert.der().clone(), cert.pem(), key.serialize_pem())
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// The value of the sample line `series` in Prometheus text.
fn sample(metrics: &str, series: &str) -> Option<u64> {
    metrics.lines().find_map(|line| {
        let value: f64 = line.strip_prefix(series)?.trim().parse().ok()?;
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "whole, positive numbers"
        )]
        Some(value as u64)
    })
}

/// A client offering TLS 1.3 with only AES-128-GCM on P-256 and ALPN
/// `http/1.1`, trusting `roots`, making a full handshake on every connection.
fn fips_client(roots: &[&CertificateDer<'static>]) -> Arc<ClientConfig> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add((*root).clone()).expect("root");
    }
    let provider = CryptoProvider {
        cipher_suites: vec![ring::cipher_suite::TLS13_AES_128_GCM_SHA256],
        kx_groups: vec![ring::kx_group::SECP256R1],
        ..ring::default_provider()
    };
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(store)
        .with_no_client_auth();
    config.resumption = Resumption::disabled();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A TLS connection to `server`, its handshake done.
fn connect(server: &Server, config: &Arc<ClientConfig>) -> Tls {
    let tcp = server.connect();
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let name = ServerName::try_from("localhost").expect("name");
    let conn = ClientConnection::new(Arc::clone(config), name).expect("client");
    let mut stream = StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .expect("handshake");
    }
    BufReader::new(stream)
}

fn peer_cert(tls: &Tls) -> CertificateDer<'static> {
    tls.get_ref()
        .conn
        .peer_certificates()
        .expect("a certificate")[0]
        .clone()
}

/// Posts a signed delivery of event `id`; returns the response head.
fn deliver(tls: &mut Tls, id: &str) -> String {
    tls.get_mut()
        .write_all(&signed_request(&event(id)))
        .expect("send");
    read_response(tls).expect("an answer")
}

fn hangup(server: &Server) {
    let status = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

fn write_pair(cert_file: &Path, key_file: &Path, cert: &str, key: &str) {
    std::fs::write(cert_file, cert).expect("write cert");
    std::fs::write(key_file, key).expect("write key");
}

/// Replaces both files as a renewal tool does: each written beside it,
/// then renamed over it.
fn replace_pair(cert_file: &Path, key_file: &Path, cert: &str, key: &str) {
    for (file, text) in [(cert_file, cert), (key_file, key)] {
        let new = file.with_extension("new");
        std::fs::write(&new, text).expect("write");
        std::fs::rename(&new, file).expect("rename");
    }
}

#[test]
fn a_signed_delivery_over_tls_is_stored_and_answered_200() {
    let dir = TempDir::new("tls-serve");
    let (der, cert, key) = certificate();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    write_pair(&cert_file, &key_file, &cert, &key);
    let inbox = dir.path().join("inbox.sqlite");
    let server = Server::start(
        &inbox,
        &[
            "--tls-cert",
            cert_file.to_str().expect("utf-8"),
            "--tls-key",
            key_file.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(server.url, format!("https://127.0.0.1:{}/", server.port));
    let listening = format!("listening on https://127.0.0.1:{}/\n", server.port);
    let stderr = server.wait_for_stderr(&listening, LIMIT);
    assert!(stderr.contains(&listening), "{stderr}");

    let mut tls = connect(&server, &fips_client(&[&der]));
    assert_eq!(tls.get_ref().conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    let head = deliver(&mut tls, "tls-1");
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    let head = deliver(&mut tls, "tls-1");
    assert!(
        head.starts_with("http/1.1 200 ok\r\n"),
        "a duplicate: {head}"
    );
    assert!(server.terminate(LIMIT).success());
    let listed = inbox_list(&inbox);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["event_id"], "tls-1");
}

#[test]
fn sighup_reloads_the_certificate_and_a_broken_replacement_keeps_the_old() {
    let dir = TempDir::new("tls-reload");
    let (first_der, first_cert, first_key) = certificate();
    let (second_der, second_cert, second_key) = certificate();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    write_pair(&cert_file, &key_file, &first_cert, &first_key);
    let server = Server::start(
        &dir.path().join("inbox.sqlite"),
        &[
            "--tls-cert",
            cert_file.to_str().expect("utf-8"),
            "--tls-key",
            key_file.to_str().expect("utf-8"),
        ],
    );
    let client = fips_client(&[&first_der, &second_der]);
    let mut open = connect(&server, &client);
    assert_eq!(peer_cert(&open), first_der);
    let head = deliver(&mut open, "before");
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");

    write_pair(&cert_file, &key_file, &second_cert, &second_key);
    hangup(&server);
    let reloaded = format!(
        "certificate reloaded from {} and {}\n",
        cert_file.display(),
        key_file.display()
    );
    let stderr = server.wait_for_stderr(&reloaded, LIMIT);
    assert!(stderr.contains(&reloaded), "{stderr}");
    let mut fresh = connect(&server, &client);
    assert_eq!(
        peer_cert(&fresh),
        second_der,
        "a new handshake sees the new one"
    );
    let head = deliver(&mut fresh, "after");
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    // The connection opened before the reload goes on.
    let head = deliver(&mut open, "still-open");
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");

    // A broken replacement: the certificate of one pair, the key of another.
    std::fs::write(&key_file, &first_key).expect("write key");
    hangup(&server);
    let failed = format!(
        "certificate reload failed: certificate {} and private key {} do not go together: \
         the key is not the certificate's; keeping the old one\n",
        cert_file.display(),
        key_file.display()
    );
    let stderr = server.wait_for_stderr(&failed, LIMIT);
    assert!(stderr.contains(&failed), "{stderr}");
    let mut after = connect(&server, &client);
    assert_eq!(peer_cert(&after), second_der, "the old certificate stays");
    let head = deliver(&mut after, "kept");
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert!(server.terminate(LIMIT).success());
}

#[test]
fn a_certificate_that_does_not_load_at_start_is_a_usage_error() {
    let dir = TempDir::new("tls-bad-start");
    let (_, cert, _) = certificate();
    let (_, _, other_key) = certificate();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    write_pair(&cert_file, &key_file, &cert, &other_key);
    let inbox = dir.path().join("inbox.sqlite");
    let out = run(
        boxhook()
            .args(["--primary-key", boxhook_testkit::SAMPLE_PRIMARY_KEY])
            .args(["serve", "--listen", "127.0.0.1:0", "--inbox"])
            .arg(&inbox)
            .arg("--tls-cert")
            .arg(&cert_file)
            .arg("--tls-key")
            .arg(&key_file),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "boxhook: cannot load the TLS certificate: certificate {} and private key {} do not \
             go together: the key is not the certificate's\n",
            cert_file.display(),
            key_file.display()
        )
    );
    assert_eq!(out.stdout, b"");
    assert!(!inbox.exists(), "nothing created");

    let out = run(
        boxhook()
            .args(["--primary-key", boxhook_testkit::SAMPLE_PRIMARY_KEY])
            .args(["serve", "--inbox"])
            .arg(&inbox)
            .arg("--tls-cert")
            .arg(&cert_file),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the following required arguments were not provided:\n  --tls-key <FILE>"),
        "{stderr}"
    );
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one server: start, reload, each checked"
)]
fn the_certificates_expiry_is_a_metric_and_a_dashboard_warning_within_14_days() {
    const DAY: u64 = 86_400;
    let dir = TempDir::new("tls-expiry");
    // Ten days and an hour left: the dashboard says 10 days.
    let soon = unix_now() + 10 * DAY + 3600;
    let (soon_der, soon_cert, soon_key) = certificate_until(&["localhost", "hooks.test"], soon);
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    write_pair(&cert_file, &key_file, &soon_cert, &soon_key);
    let server = Server::start(
        &dir.path().join("inbox.sqlite"),
        &[
            "--tls-cert",
            cert_file.to_str().expect("utf-8"),
            "--tls-key",
            key_file.to_str().expect("utf-8"),
            "--admin",
            "127.0.0.1:0",
        ],
    );
    let admin = admin_addr(&server);
    let (status, _, metrics) = get(&admin, "/metrics", None);
    assert_eq!(status, 200);
    for domain in ["localhost", "hooks.test"] {
        assert_eq!(
            sample(
                &metrics,
                &format!("boxhook_tls_certificate_expiry_seconds{{domain=\"{domain}\"}}")
            ),
            Some(soon),
            "{domain}: {metrics}"
        );
    }
    let (status, _, summary) = get(&admin, "/summary.json", None);
    assert_eq!(status, 200);
    let summary: serde_json::Value = serde_json::from_str(&summary).expect("JSON");
    let on =
        chrono::DateTime::from_timestamp(i64::try_from(soon).expect("i64"), 0).expect("a time");
    let warning = |domain: &str| {
        format!(
            "The certificate for {domain} expires in 10 days, on {}: put a renewed certificate \
             in the --tls-cert and --tls-key files and send serve SIGHUP.",
            on.format("%Y-%m-%d %H:%M UTC")
        )
    };
    assert_eq!(
        summary["certificates"],
        serde_json::json!([
            {"domain": "localhost", "expires_at": on.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
             "days_left": 10, "level": "warning", "message": warning("localhost")},
            {"domain": "hooks.test", "expires_at": on.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
             "days_left": 10, "level": "warning", "message": warning("hooks.test")},
        ])
    );
    let (status, _, page) = get(&admin, "/", None);
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!(
            "<ul id=\"cert-alerts\"><li class=\"warning\" data-level=\"warning\">{}</li>",
            warning("localhost")
        )),
        "{page}"
    );

    // A renewed certificate for localhost alone, 90 days: no warning, and
    // hooks.test leaves the dashboard (its label stays in /metrics, with
    // its last value: a label set cannot be removed).
    let later = unix_now() + 90 * DAY;
    let (later_der, later_cert, later_key) = certificate_until(&["localhost"], later);
    write_pair(&cert_file, &key_file, &later_cert, &later_key);
    hangup(&server);
    let reloaded = format!(
        "certificate reloaded from {} and {}\n",
        cert_file.display(),
        key_file.display()
    );
    let stderr = server.wait_for_stderr(&reloaded, LIMIT);
    assert!(stderr.contains(&reloaded), "{stderr}");
    let tls = connect(&server, &fips_client(&[&soon_der, &later_der]));
    assert_eq!(peer_cert(&tls), later_der);
    let (_, _, metrics) = get(&admin, "/metrics", None);
    assert_eq!(
        sample(
            &metrics,
            "boxhook_tls_certificate_expiry_seconds{domain=\"localhost\"}"
        ),
        Some(later),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "boxhook_tls_certificate_expiry_seconds{domain=\"hooks.test\"}"
        ),
        Some(soon),
        "{metrics}"
    );
    let (_, _, summary) = get(&admin, "/summary.json", None);
    let summary: serde_json::Value = serde_json::from_str(&summary).expect("JSON");
    let certificates = summary["certificates"].as_array().expect("a list");
    assert_eq!(certificates.len(), 1, "{summary}");
    assert_eq!(certificates[0]["domain"], "localhost");
    assert_eq!(certificates[0]["level"], "ok");
    assert_eq!(certificates[0]["message"], serde_json::Value::Null);
    assert!(
        (89..=90).contains(&certificates[0]["days_left"].as_i64().expect("days")),
        "{summary}"
    );
    drop(tls);
    assert!(server.terminate(LIMIT).success());
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one load, its reloads and its checks"
)]
fn reloads_under_load_fail_no_delivery_and_new_handshakes_see_the_new_certificate() {
    use std::sync::atomic::{AtomicBool, Ordering};

    const KEEP_ALIVE: usize = 3;
    const RELOADS: usize = 4;
    // Per worker: at most this many deliveries, and at least this many
    // after the last reload.
    const CAP: usize = 500;
    const AFTER: usize = 5;
    let dir = TempDir::new("tls-reload-load");
    let pairs = [certificate(), certificate()];
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    write_pair(&cert_file, &key_file, &pairs[0].1, &pairs[0].2);
    let inbox = dir.path().join("inbox.sqlite");
    let server = Server::start(
        &inbox,
        &[
            "--tls-cert",
            cert_file.to_str().expect("utf-8"),
            "--tls-key",
            key_file.to_str().expect("utf-8"),
        ],
    );
    let client = fips_client(&[&pairs[0].0, &pairs[1].0]);
    let reloaded = format!(
        "certificate reloaded from {} and {}\n",
        cert_file.display(),
        key_file.display()
    );
    let done = AtomicBool::new(false);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    // Each worker's deliveries: (event id, response head).
    let (kept, fresh) = std::thread::scope(|scope| {
        let worker = |name: String, reconnect: bool| {
            let (server, client, done) = (&server, &client, &done);
            scope.spawn(move || {
                let mut answers = Vec::new();
                let mut tls = connect(server, client);
                let mut after = 0;
                while answers.len() < CAP && after < AFTER && std::time::Instant::now() < deadline {
                    if done.load(Ordering::SeqCst) {
                        after += 1;
                    }
                    if reconnect {
                        tls = connect(server, client);
                    }
                    let id = format!("{name}-{}", answers.len());
                    let head = deliver(&mut tls, &id);
                    answers.push((id, head));
                }
                answers
            })
        };
        let keep_alive: Vec<_> = (0..KEEP_ALIVE)
            .map(|n| worker(format!("kept{n}"), false))
            .collect();
        let fresh = worker("fresh".to_owned(), true);
        for reload in 1..=RELOADS {
            std::thread::sleep(Duration::from_millis(150));
            let (der, cert, key) = &pairs[reload % 2];
            replace_pair(&cert_file, &key_file, cert, key);
            hangup(&server);
            let limit = std::time::Instant::now() + LIMIT;
            while server.stderr().matches(&reloaded).count() < reload {
                assert!(std::time::Instant::now() < limit, "{}", server.stderr());
                std::thread::sleep(Duration::from_millis(10));
            }
            let tls = connect(&server, &client);
            assert_eq!(&peer_cert(&tls), der, "the handshake after reload {reload}");
        }
        done.store(true, Ordering::SeqCst);
        let kept: Vec<_> = keep_alive
            .into_iter()
            .flat_map(|w| w.join().expect("a keep-alive worker"))
            .collect();
        (kept, fresh.join().expect("the fresh-connection worker"))
    });
    assert!(
        std::time::Instant::now() < deadline,
        "the load took over 60 s"
    );
    for (id, head) in kept.iter().chain(&fresh) {
        assert!(head.starts_with("http/1.1 200 ok\r\n"), "{id}: {head}");
    }
    assert!(kept.len() >= KEEP_ALIVE * AFTER, "{}", kept.len());
    assert!(fresh.len() >= AFTER, "{}", fresh.len());
    assert!(server.terminate(LIMIT).success());
    // Counted in the store: a listing of hundreds of events would fill the
    // pipe of `inbox list`.
    let stored: i64 = rusqlite::Connection::open(&inbox)
        .expect("open the inbox")
        .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
        .expect("count");
    assert_eq!(
        usize::try_from(stored).ok(),
        Some(kept.len() + fresh.len()),
        "every delivery stored once"
    );
    eprintln!(
        "{} deliveries over {KEEP_ALIVE} keep-alive connections and {} over fresh ones across \
         {RELOADS} reloads",
        kept.len(),
        fresh.len()
    );
}

/// A client offering `version` with only `suite` on `group`, trusting `root`.
fn client_offering(
    version: &'static rustls::SupportedProtocolVersion,
    suite: rustls::SupportedCipherSuite,
    group: &'static dyn rustls::crypto::SupportedKxGroup,
    root: &CertificateDer<'static>,
) -> Arc<ClientConfig> {
    let mut store = RootCertStore::empty();
    store.add(root.clone()).expect("root");
    let provider = CryptoProvider {
        cipher_suites: vec![suite],
        kx_groups: vec![group],
        ..ring::default_provider()
    };
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[version])
        .expect("the version")
        .with_root_certificates(store)
        .with_no_client_auth();
    config.resumption = Resumption::disabled();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

#[test]
#[allow(clippy::too_many_lines, reason = "one server, each client checked")]
fn an_rsa_certificate_serves_tls_1_2_with_the_ecdhe_rsa_gcm_suites_and_tls_1_3() {
    use rustls::pki_types::pem::PemObject as _;
    let dir = TempDir::new("tls-rsa");
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        // A server's certificate, not the CA one `req -x509` makes by default.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key_file)
        .arg("-out")
        .arg(&cert_file)
        .output();
    let made = match made {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("SKIPPED an_rsa_certificate_…: no openssl command to make the RSA key");
            return;
        }
        other => other.expect("run openssl"),
    };
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let der = CertificateDer::from_pem_file(&cert_file).expect("the certificate");
    let server = Server::start(
        &dir.path().join("inbox.sqlite"),
        &[
            "--tls-cert",
            cert_file.to_str().expect("utf-8"),
            "--tls-key",
            key_file.to_str().expect("utf-8"),
        ],
    );
    let cases = [
        (
            &rustls::version::TLS12,
            ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            ring::kx_group::SECP256R1,
        ),
        (
            &rustls::version::TLS12,
            ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            ring::kx_group::SECP384R1,
        ),
        (
            &rustls::version::TLS13,
            ring::cipher_suite::TLS13_AES_128_GCM_SHA256,
            ring::kx_group::SECP256R1,
        ),
        (
            &rustls::version::TLS13,
            ring::cipher_suite::TLS13_AES_256_GCM_SHA384,
            ring::kx_group::SECP384R1,
        ),
    ];
    for (n, (version, suite, group)) in cases.into_iter().enumerate() {
        let what = format!(
            "{:?} {:?} {:?}",
            version.version,
            suite.suite(),
            group.name()
        );
        let mut tls = connect(&server, &client_offering(version, suite, group, &der));
        let conn = &tls.get_ref().conn;
        assert_eq!(conn.protocol_version(), Some(version.version), "{what}");
        assert_eq!(
            conn.negotiated_cipher_suite().map(|s| s.suite()),
            Some(suite.suite()),
            "{what}"
        );
        assert_eq!(peer_cert(&tls), der, "{what}");
        let head = deliver(&mut tls, &format!("rsa-{n}"));
        assert!(head.starts_with("http/1.1 200 ok\r\n"), "{what}: {head}");
    }
    // OpenSSL's client too, offering one suite and one group each time.
    for (version, cipher, shown) in [
        (
            ["-tls1_2", "-cipher"],
            "ECDHE-RSA-AES128-GCM-SHA256",
            "TLSv1.2, Cipher is ECDHE-RSA-AES128-GCM-SHA256",
        ),
        (
            ["-tls1_3", "-ciphersuites"],
            "TLS_AES_128_GCM_SHA256",
            "TLSv1.3, Cipher is TLS_AES_128_GCM_SHA256",
        ),
    ] {
        let out = run(
            Command::new("openssl")
                .args([
                    "s_client",
                    "-connect",
                    &format!("127.0.0.1:{}", server.port),
                ])
                .args(["-servername", "localhost", "-groups", "P-256"])
                .args(version)
                .arg(cipher)
                .stdin(std::process::Stdio::null()),
            LIMIT,
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(shown), "{cipher}: {stdout}");
    }
    assert!(server.terminate(LIMIT).success());
}
