//! `serve --acme`: against Debian's `pebble` (Let's Encrypt's ACME test
//! server, validations on: `PEBBLE_VA_ALWAYS_VALID=0`) and
//! `pebble-challtestsrv` (its DNS, answering 127.0.0.1), `serve` obtains a
//! certificate through a real TLS-ALPN-01 validation on its own listener,
//! serves a signed delivery over it to a client that trusts only pebble's
//! root, and after a restart serves the same certificate from
//! `--acme-cache` without a new account or order; a short-lived
//! certificate is renewed in the background with the same account key.
//! Skipped with a message
//! when pebble is not installed, unless `BOXHOOK_ACME=required` (CI).

use crate::common;

use std::io::{BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use boxhook_testkit::fs::{installed, TempDir};
use common::{boxhook, collect_lines, event, inbox_list, read_response, signed_request, wait_for};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::client::Resumption;
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

const LIMIT: Duration = Duration::from_secs(60);
const DOMAIN: &str = "hooks.boxhook.test";
const REQUIRED_ENV: &str = "BOXHOOK_ACME";

/// pebble and pebble-challtestsrv, or `None` (and a `skipped` line) when
/// they are missing and not required.
fn pebble_binaries() -> Option<(PathBuf, PathBuf)> {
    if let (Some(pebble), Some(challtestsrv)) =
        (installed("pebble"), installed("pebble-challtestsrv"))
    {
        return Some((pebble, challtestsrv));
    }
    assert!(
        !std::env::var(REQUIRED_ENV).is_ok_and(|v| v == "required"),
        "{REQUIRED_ENV}=required but pebble or pebble-challtestsrv is not on PATH; \
         apt-get install pebble"
    );
    eprintln!("skipped: no pebble (apt-get install pebble)");
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A CA's certificate (PEM), and a certificate for 127.0.0.1 that it
/// signed, with its key (PEM): pebble's own HTTPS.
fn directory_certificates() -> (String, String, String) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.distinguished_name
        .push(DnType::CommonName, "boxhook ACME test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().expect("key");
    let ca_pem = ca.self_signed(&ca_key).expect("self-signed").pem();
    let issuer = Issuer::new(ca, ca_key);
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
    let server_key = KeyPair::generate().expect("key");
    let certificate = server.signed_by(&server_key, &issuer).expect("signed");
    (ca_pem, certificate.pem(), server_key.serialize_pem())
}

/// A child process killed when dropped, with its output collected.
struct Running {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    fn start(command: &mut Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let stdout = collect_lines(child.stdout.take().expect("stdout"));
        let stderr = collect_lines(child.stderr.take().expect("stderr"));
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// What it wrote so far: stdout, then stderr.
    fn output(&self) -> String {
        let stdout = self.stdout.lock().expect("lock").clone();
        stdout + &self.stderr.lock().expect("lock")
    }

    /// Waits up to `limit` for the output to contain `needle`.
    fn wait_for(&self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let text = self.output();
            if text.contains(needle) || Instant::now() >= deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then the exit within `limit`.
    fn terminate(&mut self, limit: Duration) -> bool {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
        wait_for(&mut self.child, limit).is_some_and(|status| status.success())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// pebble with its DNS, on free loopback ports, validating TLS-ALPN-01 on
/// `tls_port`.
struct Pebble {
    _dns: Running,
    server: Running,
    directory: String,
    management: u16,
    ca_file: PathBuf,
    ca_pem: String,
}

impl Pebble {
    /// `validity`: how long its certificates last, in seconds (pebble's
    /// default is 5 years).
    fn start(
        dir: &Path,
        pebble: &Path,
        challtestsrv: &Path,
        tls_port: u16,
        validity: Option<u64>,
    ) -> Self {
        let (ca_pem, cert, key) = directory_certificates();
        let (ca_file, cert_file, key_file) = (
            dir.join("pebble-ca.pem"),
            dir.join("pebble-cert.pem"),
            dir.join("pebble-key.pem"),
        );
        std::fs::write(&ca_file, &ca_pem).expect("write CA");
        std::fs::write(&cert_file, cert).expect("write cert");
        std::fs::write(&key_file, key).expect("write key");
        let (dns_port, dns_management) = (free_port(), free_port());
        let dns = Running::start(Command::new(challtestsrv).args([
            "-defaultIPv4",
            "127.0.0.1",
            "-defaultIPv6",
            "",
            "-dns01",
            &format!("127.0.0.1:{dns_port}"),
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
            "-management",
            &format!("127.0.0.1:{dns_management}"),
        ]));
        let dns_log = dns.wait_for("Starting challenge servers", LIMIT);
        assert!(dns_log.contains("Starting challenge servers"), "{dns_log}");
        let (port, management) = (free_port(), free_port());
        let mut config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{port}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": cert_file,
            "privateKey": key_file,
            "httpPort": free_port(),
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        if let Some(seconds) = validity {
            config["pebble"]["certificateValidityPeriod"] = seconds.into();
        }
        let config_file = dir.join("pebble.json");
        std::fs::write(&config_file, config.to_string()).expect("write config");
        let server = Running::start(
            Command::new(pebble)
                .arg("-config")
                .arg(&config_file)
                .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
                // Real validations, without pebble's random delays and
                // rejected nonces.
                .env("PEBBLE_VA_ALWAYS_VALID", "0")
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_WFE_NONCEREJECT", "0")
                .env("PEBBLE_AUTHZREUSE", "0"),
        );
        let log = server.wait_for("ACME directory available", LIMIT);
        assert!(log.contains("ACME directory available"), "{log}");
        Self {
            _dns: dns,
            server,
            directory: format!("https://127.0.0.1:{port}/dir"),
            management,
            ca_file,
            ca_pem,
        }
    }

    /// The root pebble issues under, from its management interface.
    fn root(&self) -> CertificateDer<'static> {
        let ca = CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).expect("CA");
        let mut tls = connect(
            self.management,
            &client(&[ca], &[]),
            ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
        );
        tls.get_mut()
            .write_all(b"GET /roots/0 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .expect("send");
        let mut response = Vec::new();
        // pebble closes without close_notify: what came is enough.
        let _ = tls.read_to_end(&mut response);
        let text = String::from_utf8(response).expect("utf-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("a response");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        CertificateDer::from_pem_slice(body.as_bytes()).expect("pebble's root")
    }

    /// How many times pebble's log has `needle`.
    fn count(&self, needle: &str) -> usize {
        self.server.output().matches(needle).count()
    }
}

type Tls = BufReader<StreamOwned<ClientConnection, TcpStream>>;

/// A client offering only TLS 1.3, AES-128-GCM and P-256 (as Box's does),
/// trusting `roots`, with ALPN `alpn` (`http/1.1` when empty).
fn client(roots: &[CertificateDer<'static>], alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).expect("root");
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
    config.alpn_protocols = if alpn.is_empty() {
        vec![b"http/1.1".to_vec()]
    } else {
        alpn.iter().map(|p| p.to_vec()).collect()
    };
    Arc::new(config)
}

/// A TLS connection to `port` for `name`, its handshake done.
fn connect(port: u16, config: &Arc<ClientConfig>, name: ServerName<'static>) -> Tls {
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
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

fn domain() -> ServerName<'static> {
    ServerName::try_from(DOMAIN).expect("name")
}

/// `serve --acme DOMAIN` on `port`, against `pebble`, caching in `cache`.
fn serve(port: u16, inbox: &Path, cache: &Path, pebble: &Pebble) -> Running {
    let mut command = boxhook();
    command
        .env_remove("RUST_LOG")
        .args(["--primary-key", boxhook_testkit::SAMPLE_PRIMARY_KEY])
        .args(["--secondary-key", boxhook_testkit::SAMPLE_SECONDARY_KEY])
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--inbox")
        .arg(inbox)
        .args(["--acme", DOMAIN, "--acme-cache"])
        .arg(cache)
        .args(["--acme-directory", &pebble.directory])
        .arg("--acme-directory-ca")
        .arg(&pebble.ca_file)
        .args(["--acme-contact", "mailto:ops@example.com"])
        .args(["--admin", "127.0.0.1:0"]);
    let running = Running::start(&mut command);
    let listening = format!("listening on https://127.0.0.1:{port}/\n");
    let out = running.wait_for(&listening, LIMIT);
    assert!(out.contains(&listening), "{out}");
    running
}

/// `serve`'s `/metrics`, from its admin listener.
fn scrape(server: &Running) -> String {
    let out = server.wait_for("admin on http://", LIMIT);
    let addr = out
        .lines()
        .find_map(|l| l.strip_prefix("admin on http://"))
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no admin address in {out}"));
    let (status, _, body) = common::admin::get(addr, "/metrics", None);
    assert_eq!(status, 200, "{body}");
    body
}

/// The value of the sample `series` in `metrics`, as a whole number.
fn sample(metrics: &str, series: &str) -> Option<i64> {
    metrics.lines().find_map(|line| {
        let value: f64 = line.strip_prefix(series)?.trim().parse().ok()?;
        #[allow(clippy::cast_possible_truncation, reason = "whole numbers")]
        Some(value as i64)
    })
}

/// Posts a signed delivery of event `id` over `tls`; the response head.
fn deliver(tls: &mut Tls, id: &str) -> String {
    tls.get_mut()
        .write_all(&signed_request(&event(id)))
        .expect("send");
    read_response(tls).expect("an answer")
}

fn peer_chain(tls: &Tls) -> Vec<CertificateDer<'static>> {
    tls.get_ref()
        .conn
        .peer_certificates()
        .expect("certificates")
        .to_vec()
}

#[test]
fn serve_acme_obtains_a_certificate_by_tls_alpn_01_and_keeps_it_across_a_restart() {
    let Some((pebble_bin, challtestsrv)) = pebble_binaries() else {
        return;
    };
    let dir = TempDir::new("acme");
    let port = free_port();
    let pebble = Pebble::start(dir.path(), &pebble_bin, &challtestsrv, port, None);
    let (inbox, cache) = (dir.file("inbox.sqlite"), dir.file("acme-cache"));

    let mut first = serve(port, &inbox, &cache, &pebble);
    let obtained = format!("ACME: new certificate for {DOMAIN} in use\n");
    let out = first.wait_for(&obtained, LIMIT);
    assert!(out.contains(&obtained), "{out}\n{}", pebble.server.output());
    // A real validation of the challenge, on serve's own port.
    assert_eq!(pebble.count("set VALID by completed challenge"), 1);
    assert_eq!(pebble.count("Issued certificate serial"), 1);

    let root = pebble.root();
    let config = client(std::slice::from_ref(&root), &[]);
    let mut tls = connect(port, &config, domain());
    assert_eq!(tls.get_ref().conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    let issued = peer_chain(&tls);
    let head = deliver(&mut tls, "acme-1");
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    drop(tls);
    let (_, leaf) = x509_parser::parse_x509_certificate(&issued[0]).expect("x509");
    let not_after = leaf.validity().not_after.timestamp();
    let metrics = scrape(&first);
    assert_eq!(
        sample(
            &metrics,
            &format!("boxhook_tls_certificate_expiry_seconds{{domain=\"{DOMAIN}\"}}")
        ),
        Some(not_after),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "boxhook_acme_renewals_total{outcome=\"success\"}"),
        Some(1),
        "{metrics}"
    );
    assert!(first.terminate(LIMIT), "{}", first.output());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&cache)
            .expect("cache")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "the cache is private");
    }
    let mut kept: Vec<String> = std::fs::read_dir(&cache)
        .expect("cache")
        .map(|entry| {
            let name = entry.expect("entry").file_name();
            name.to_string_lossy()
                .split('_')
                .take(2)
                .collect::<Vec<_>>()
                .join("_")
        })
        .collect();
    kept.sort();
    assert_eq!(kept, ["cached_account", "cached_cert"]);

    // A restart serves the cached certificate: no new account, no order.
    let mut second = serve(port, &inbox, &cache, &pebble);
    let cached = format!("ACME: serving the cached certificate for {DOMAIN}\n");
    let out = second.wait_for(&cached, LIMIT);
    assert!(out.contains(&cached), "{out}");
    let mut tls = connect(port, &config, domain());
    assert_eq!(peer_chain(&tls), issued, "the same certificate");
    let head = deliver(&mut tls, "acme-2");
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    let metrics = scrape(&second);
    assert_eq!(
        sample(
            &metrics,
            &format!("boxhook_tls_certificate_expiry_seconds{{domain=\"{DOMAIN}\"}}")
        ),
        Some(not_after),
        "the cached one's: {metrics}"
    );
    assert!(
        !metrics.contains("boxhook_acme_renewals_total"),
        "{metrics}"
    );
    drop(tls);
    assert!(second.terminate(LIMIT), "{}", second.output());
    assert!(
        !second.output().contains("ACME: new certificate"),
        "{}",
        second.output()
    );
    assert_eq!(pebble.count("POST /sign-me-up"), 1, "one account");
    assert_eq!(pebble.count("POST /order-plz"), 1, "one order");

    let ids: Vec<_> = inbox_list(&inbox)
        .iter()
        .map(|e| e["event_id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids, ["acme-2", "acme-1"]);
}

/// The account keys in `cache`.
fn account_keys(cache: &Path) -> Vec<Vec<u8>> {
    std::fs::read_dir(cache)
        .expect("cache")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("cached_account_"))
        })
        .map(|path| std::fs::read(path).expect("account"))
        .collect()
}

#[test]
fn a_short_lived_certificate_is_renewed_in_the_background() {
    let Some((pebble_bin, challtestsrv)) = pebble_binaries() else {
        return;
    };
    let dir = TempDir::new("acme-renew");
    let port = free_port();
    // 15 s certificates: renewed once two thirds (10 s) have passed.
    let pebble = Pebble::start(dir.path(), &pebble_bin, &challtestsrv, port, Some(15));
    let (inbox, cache) = (dir.file("inbox.sqlite"), dir.file("acme-cache"));
    let server = serve(port, &inbox, &cache, &pebble);
    let obtained = format!("ACME: new certificate for {DOMAIN} in use\n");
    let out = server.wait_for(&obtained, LIMIT);
    assert!(out.contains(&obtained), "{out}\n{}", pebble.server.output());
    let config = client(&[pebble.root()], &[]);
    let first = peer_chain(&connect(port, &config, domain()));
    let account = account_keys(&cache);
    assert_eq!(account.len(), 1);

    let deadline = Instant::now() + LIMIT;
    while server.output().matches(&obtained).count() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = server.output();
    assert_eq!(out.matches(&obtained).count(), 2, "renewed once: {out}");
    assert!(!out.contains("WARN") && !out.contains("retrying"), "{out}");
    assert_eq!(pebble.count("Issued certificate serial"), 2);
    assert_eq!(account_keys(&cache), account, "the same account key");
    let mut tls = connect(port, &config, domain());
    let second = peer_chain(&tls);
    let (_, leaf) = x509_parser::parse_x509_certificate(&second[0]).expect("x509");
    let metrics = scrape(&server);
    assert_eq!(
        sample(
            &metrics,
            &format!("boxhook_tls_certificate_expiry_seconds{{domain=\"{DOMAIN}\"}}")
        ),
        Some(leaf.validity().not_after.timestamp()),
        "the renewed one's: {metrics}"
    );
    assert_eq!(
        sample(&metrics, "boxhook_acme_renewals_total{outcome=\"success\"}"),
        Some(2),
        "{metrics}"
    );
    assert_ne!(second[0], first[0], "new handshakes get the renewed one");
    let head = deliver(&mut tls, "after-renewal");
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
}

#[test]
fn acme_flags_are_checked_before_anything_is_created() {
    let dir = TempDir::new("acme-usage");
    let cases: [(&[&str], &str); 5] = [
        (&["--acme", "hooks.example.com"], "--acme-cache"),
        (
            &["--acme", "https://hooks.example.com", "--acme-cache", "c"],
            "boxhook: --acme https://hooks.example.com is not a domain name, e.g. --acme hooks.example.com\n",
        ),
        (
            &["--acme", "hooks.example.com", "--acme-cache", "c", "--acme-contact", "ops@example.com"],
            "boxhook: --acme-contact ops@example.com must be a mailto: URL, e.g. mailto:ops@example.com\n",
        ),
        (
            &["--acme", "hooks.example.com", "--acme-cache", "c", "--tls-cert", "a", "--tls-key", "b"],
            "cannot be used with",
        ),
        (
            &["--acme", "hooks.example.com", "--acme-cache", "c", "--acme-directory-ca", "/dev/null"],
            "boxhook: --acme-directory-ca /dev/null: no CERTIFICATE block; give the CA's \
             certificate in PEM (-----BEGIN CERTIFICATE-----)\n",
        ),
    ];
    for (flags, expected) in cases {
        let out = common::run(
            boxhook()
                .current_dir(dir.path())
                .args(["--primary-key", boxhook_testkit::SAMPLE_PRIMARY_KEY])
                .args([
                    "serve",
                    "--listen",
                    "127.0.0.1:0",
                    "--inbox",
                    "inbox.sqlite",
                ])
                .args(flags),
            LIMIT,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
    assert!(left.is_empty(), "nothing created: {left:?}");
}
