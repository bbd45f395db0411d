//! `boxhook check-address`: the command against TLS receivers on 127.0.0.1
//! (tokio-rustls, certificates made by rcgen), reached through `--resolve`;
//! one test per rule, passing and failing, and the exit statuses.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common::{boxhook, run, temp_dir};

const HOST: &str = "hooks.example.com";
const LIMIT: Duration = Duration::from_secs(60);
const KEY: &str = "check-address-primary";

/// A private CA: its PEM (for `--ca-file`) and its signer.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca() -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "boxhook check-address test CA");
    let key = KeyPair::generate().expect("key");
    let pem = params.self_signed(&key).expect("CA").pem();
    Ca {
        issuer: Issuer::new(params, key),
        pem,
    }
}

type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// A certificate for `name` signed by `ca`, valid until `not_after` seconds
/// since the epoch (default: rcgen's 4096).
fn leaf(ca: &Ca, name: &str, not_after: Option<u64>) -> Identity {
    let mut params = CertificateParams::new(vec![name.to_owned()]).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
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

/// A TLS receiver on 127.0.0.1 answering every request with `status` after
/// `delay`; it keeps the requests it read. Stops when dropped.
struct Receiver {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start((chain, key): Identity, status: u16, delay: Duration) -> Self {
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("certificate");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&requests);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let kept = Arc::clone(&kept);
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Some(request) = read_request(&mut tls).await else {
                        return;
                    };
                    kept.lock().expect("lock").push(request);
                    tokio::time::sleep(delay).await;
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        Self {
            addr,
            requests,
            _runtime: runtime,
        }
    }

    fn resolve(&self, host: &str) -> String {
        format!("{host}:{}", self.addr)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("lock").clone()
    }
}

/// One HTTP/1.1 request with a `content-length` body, as text.
async fn read_request(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> Option<String> {
    let mut data = Vec::new();
    let mut buf = [0_u8; 4096];
    loop {
        let read = stream.read(&mut buf).await.ok()?;
        if read == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..read]);
        let text = String::from_utf8_lossy(&data).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return Some(text);
            }
        }
    }
}

fn write_ca(dir: &Path, ca: &Ca) -> String {
    let path = dir.join("ca.pem");
    std::fs::write(&path, &ca.pem).expect("ca.pem");
    path.display().to_string()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// Runs `check-address` with `args`; (exit code, stdout, stderr).
fn check_address(args: &[&str], key: Option<&str>) -> (i32, String, String) {
    let mut command = boxhook();
    command.arg("check-address").args(args);
    if let Some(key) = key {
        command.env("BOX_PRIMARY_KEY", key);
    }
    let output = run(&mut command, LIMIT);
    (
        output.status.code().expect("exited"),
        String::from_utf8(output.stdout).expect("UTF-8"),
        String::from_utf8(output.stderr).expect("UTF-8"),
    )
}

/// The line of `rule` in the text output.
fn line<'a>(stdout: &'a str, rule: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(rule))
        .unwrap_or_else(|| panic!("no line for {rule} in {stdout}"))
}

#[test]
fn a_good_receiver_passes_with_a_signed_delivery_and_exits_0() {
    let dir = temp_dir("check-address-good");
    let ca = ca();
    let receiver = Receiver::start(leaf(&ca, HOST, None), 200, Duration::ZERO);
    let ca_file = write_ca(&dir, &ca);
    let url = format!("https://{HOST}/box/webhooks?app=1");
    let (code, stdout, stderr) = check_address(
        &[
            "--resolve",
            &receiver.resolve(HOST),
            "--ca-file",
            &ca_file,
            "--allow-private-address",
            "--send",
            &url,
        ],
        Some(KEY),
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], format!("check-address {url}"));
    assert_eq!(lines[1], "  pass     https-port-443  https on port 443");
    assert_eq!(
        lines[2],
        "  warn     public-address  127.0.0.1 is loopback (pinned by --resolve): allowed by \
         --allow-private-address, but the real Box would not deliver there"
    );
    assert_eq!(
        lines[3],
        "  pass     not-box-com     hooks.example.com is not under box.com"
    );
    assert!(lines[4].starts_with(
        "  pass     certificate     the chain verifies against Mozilla's roots for hooks.example.com; \
         expires on 4096-01-01 00:00:00 UTC"
    ));
    assert_eq!(
        lines[5],
        "  pass     tls1.2-fips     TLS 1.2 with TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 on secp256r1"
    );
    assert_eq!(
        lines[6],
        "  pass     tls1.3-fips     TLS 1.3 with TLS13_AES_256_GCM_SHA384 on secp256r1"
    );
    assert!(lines[7].starts_with(
        "  pass     tls1.0-refused  TLS 1.0 refused: the server answered with an alert"
    ));
    assert!(lines[8].starts_with(
        "  pass     tls1.1-refused  TLS 1.1 refused: the server answered with an alert"
    ));
    assert!(
        lines[9].starts_with("  pass     delivery        delivery "),
        "{stdout}"
    );
    assert!(
        lines[9].contains(" answered 200 OK in ") && lines[9].ends_with(" ms"),
        "{stdout}"
    );
    assert_eq!(
        lines[10],
        "Box's rules hold: 8 passed, 0 failed, 1 warned, 0 skipped"
    );
    assert_eq!(lines.len(), 11);

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1, "one delivery");
    let request = &requests[0];
    assert!(
        request.starts_with("POST /box/webhooks?app=1 HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(request.contains("\r\nbox-signature-primary: "), "{request}");
    assert!(
        request.contains("\r\nuser-agent: Box-WH-Client/0.1\r\n"),
        "{request}"
    );
    assert!(
        request.contains("\"trigger\":\"FILE.UPLOADED\""),
        "{request}"
    );
    let host = format!("\r\nhost: {HOST}:{}\r\n", receiver.addr.port());
    assert!(request.contains(&host), "{request}");
}

#[test]
fn json_lists_every_rule_and_skips_the_delivery_without_send() {
    let dir = temp_dir("check-address-json");
    let ca = ca();
    let receiver = Receiver::start(leaf(&ca, HOST, None), 200, Duration::ZERO);
    let ca_file = write_ca(&dir, &ca);
    let (code, stdout, stderr) = check_address(
        &[
            "--json",
            "--resolve",
            &receiver.resolve(HOST),
            "--ca-file",
            &ca_file,
            "--allow-private-address",
            &format!("https://{HOST}/"),
        ],
        None,
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(report["url"], format!("https://{HOST}/"));
    assert_eq!(report["ok"], true);
    let statuses: Vec<(String, String)> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            (
                c["rule"].as_str().expect("rule").to_owned(),
                c["status"].as_str().expect("status").to_owned(),
            )
        })
        .collect();
    let want = [
        ("https-port-443", "pass"),
        ("public-address", "warn"),
        ("not-box-com", "pass"),
        ("certificate", "pass"),
        ("tls1.2-fips", "pass"),
        ("tls1.3-fips", "pass"),
        ("tls1.0-refused", "pass"),
        ("tls1.1-refused", "pass"),
        ("delivery", "skipped"),
    ];
    assert_eq!(
        statuses,
        want.map(|(r, s)| (r.to_owned(), s.to_owned())).to_vec()
    );
    assert_eq!(
        report["checks"][8]["reason"],
        "no test delivery sent (give --send and the keys)"
    );
    assert!(receiver.requests().is_empty());
}

#[test]
fn a_loopback_address_without_the_flag_fails() {
    let dir = temp_dir("check-address-loopback");
    let ca = ca();
    let receiver = Receiver::start(leaf(&ca, HOST, None), 200, Duration::ZERO);
    let ca_file = write_ca(&dir, &ca);
    let (code, stdout, _) = check_address(
        &[
            "--resolve",
            &receiver.resolve(HOST),
            "--ca-file",
            &ca_file,
            &format!("https://{HOST}/"),
        ],
        None,
    );
    assert_eq!(code, 1, "{stdout}");
    assert_eq!(
        line(&stdout, "public-address"),
        "  fail     public-address  127.0.0.1 is loopback (pinned by --resolve): Box delivers only \
         to public addresses"
    );
    assert!(
        stdout.ends_with(
            "Box would not accept this address: 7 passed, 1 failed, 0 warned, 1 skipped\n"
        ),
        "{stdout}"
    );
}

#[test]
fn port_8443_fails() {
    let dir = temp_dir("check-address-port");
    let ca = ca();
    let receiver = Receiver::start(leaf(&ca, HOST, None), 200, Duration::ZERO);
    let ca_file = write_ca(&dir, &ca);
    let (code, stdout, _) = check_address(
        &[
            "--resolve",
            &receiver.resolve(HOST),
            "--ca-file",
            &ca_file,
            "--allow-private-address",
            &format!("https://{HOST}:8443/"),
        ],
        None,
    );
    assert_eq!(code, 1, "{stdout}");
    assert_eq!(
        line(&stdout, "https-port-443"),
        "  fail     https-port-443  port 8443: Box delivers only to the standard HTTPS port, 443"
    );
}

#[test]
fn a_box_com_name_fails() {
    let dir = temp_dir("check-address-box");
    let ca = ca();
    let receiver = Receiver::start(leaf(&ca, "hooks.box.com", None), 200, Duration::ZERO);
    let ca_file = write_ca(&dir, &ca);
    let (code, stdout, _) = check_address(
        &[
            "--resolve",
            &receiver.resolve("hooks.box.com"),
            "--ca-file",
            &ca_file,
            "--allow-private-address",
            "https://Hooks.Box.Com./",
        ],
        None,
    );
    assert_eq!(code, 1, "{stdout}");
    assert_eq!(
        line(&stdout, "not-box-com"),
        "  fail     not-box-com     hooks.box.com is box.com or under it: Box does not deliver to \
         its own domains"
    );
    assert_eq!(
        line(&stdout, "certificate").split_whitespace().next(),
        Some("pass")
    );
}

#[test]
fn a_self_signed_certificate_fails() {
    let certified = rcgen::generate_simple_self_signed(vec![HOST.to_owned()]).expect("self-signed");
    let dir = temp_dir("check-address-self-signed");
    std::fs::write(dir.join("self.pem"), certified.cert.pem()).expect("self.pem");
    let receiver = Receiver::start(
        (
            vec![certified.cert.der().clone()],
            PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()).into(),
        ),
        200,
        Duration::ZERO,
    );
    let (code, stdout, _) = check_address(
        &[
            "--resolve",
            &receiver.resolve(HOST),
            "--ca-file",
            &dir.join("self.pem").display().to_string(),
            "--allow-private-address",
            &format!("https://{HOST}/"),
        ],
        None,
    );
    assert_eq!(code, 1, "{stdout}");
    assert_eq!(
        line(&stdout, "certificate"),
        "  fail     certificate     the certificate is self-signed: Box requires one signed by a \
         reputable certificate authority"
    );
}

#[test]
fn an_expired_certificate_fails_and_one_expiring_in_days_warns() {
    let dir = temp_dir("check-address-expired");
    let ca = ca();
    let ca_file = write_ca(&dir, &ca);
    let expired = Receiver::start(leaf(&ca, HOST, Some(946_771_200)), 200, Duration::ZERO);
    let (code, stdout, _) = check_address(
        &[
            "--resolve",
            &expired.resolve(HOST),
            "--ca-file",
            &ca_file,
            "--allow-private-address",
            &format!("https://{HOST}/"),
        ],
        None,
    );
    assert_eq!(code, 1, "{stdout}");
    assert_eq!(
        line(&stdout, "certificate"),
        "  fail     certificate     the certificate expired on 2000-01-02 00:00:00 UTC"
    );

    let soon = now_secs() + 3 * 86_400 + 3600;
    let expiring = Receiver::start(leaf(&ca, HOST, Some(soon)), 200, Duration::ZERO);
    let (code, stdout, _) = check_address(
        &[
            "--resolve",
            &expiring.resolve(HOST),
            "--ca-file",
            &ca_file,
            "--allow-private-address",
            &format!("https://{HOST}/"),
        ],
        None,
    );
    assert_eq!(code, 0, "a warning does not fail: {stdout}");
    let certificate = line(&stdout, "certificate");
    assert!(
        certificate.starts_with(
            "  warn     certificate     the chain verifies for hooks.example.com, but expires on "
        ) && certificate.ends_with(", in 3 day(s): renew it"),
        "{certificate}"
    );
}

#[test]
fn a_receiver_answering_500_fails_the_delivery() {
    let dir = temp_dir("check-address-500");
    let ca = ca();
    let receiver = Receiver::start(leaf(&ca, HOST, None), 500, Duration::ZERO);
    let ca_file = write_ca(&dir, &ca);
    let (code, stdout, _) = check_address(
        &[
            "--resolve",
            &receiver.resolve(HOST),
            "--ca-file",
            &ca_file,
            "--allow-private-address",
            "--send",
            &format!("https://{HOST}/"),
        ],
        Some(KEY),
    );
    assert_eq!(code, 1, "{stdout}");
    let delivery = line(&stdout, "delivery");
    assert!(
        delivery.contains(" answered 500 Internal Server Error in ")
            && delivery.ends_with(": Box counts anything but a 2xx as a failure and retries"),
        "{delivery}"
    );
}

/// Box waits 30 s: `--timeout` is that bound, so this test stands in
/// `--timeout 1` and a receiver answering after 3 s for Box's 30 s and a
/// receiver answering after 31 s.
#[test]
fn a_receiver_answering_too_late_fails_the_delivery() {
    let dir = temp_dir("check-address-slow");
    let ca = ca();
    let receiver = Receiver::start(leaf(&ca, HOST, None), 200, Duration::from_secs(3));
    let ca_file = write_ca(&dir, &ca);
    let (code, stdout, _) = check_address(
        &[
            "--resolve",
            &receiver.resolve(HOST),
            "--ca-file",
            &ca_file,
            "--allow-private-address",
            "--send",
            "--timeout",
            "1",
            &format!("https://{HOST}/"),
        ],
        Some(KEY),
    );
    assert_eq!(code, 1, "{stdout}");
    let delivery = line(&stdout, "delivery");
    assert!(
        delivery
            .ends_with(": no answer within 1 s: Box gives up on a delivery after 30 s and retries"),
        "{delivery}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["/box"],
            "boxhook: \"/box\" is not an absolute URL (https://host/path)\n",
        ),
        (
            &["--resolve", "hooks.example.com", "https://hooks.example.com/"],
            "boxhook: --resolve \"hooks.example.com\": expected HOST:ADDR, e.g. \
             hooks.example.com:127.0.0.1 or hooks.example.com:127.0.0.1:8443\n",
        ),
        (
            &["--send", "https://hooks.example.com/"],
            "boxhook: no signature key: pass --primary-key and/or --secondary-key, \
             or set BOX_PRIMARY_KEY and/or BOX_SECONDARY_KEY\n",
        ),
        (
            &["--ca-file", "/nonexistent/ca.pem", "https://hooks.example.com/"],
            "boxhook: cannot read --ca-file /nonexistent/ca.pem: No such file or directory (os error 2)\n",
        ),
        (
            &["--ca-file", "/dev/null", "https://hooks.example.com/"],
            "boxhook: --ca-file /dev/null: no CERTIFICATE block; give the CA's certificate in \
             PEM (-----BEGIN CERTIFICATE-----)\n",
        ),
    ];
    for (args, want) in cases {
        let (code, stdout, stderr) = check_address(args, None);
        assert_eq!(
            (code, stdout.as_str(), stderr.as_str()),
            (2, "", want),
            "{args:?}"
        );
    }
}

/// `boxhook webhooks ARGS` against a fake Box API; (exit code, stdout,
/// stderr), and how many webhooks the fake holds afterwards.
fn webhooks_against_fake(toml: &str, args: &[&str]) -> (i32, String, String, usize) {
    use boxhook_admin::fake::{FakeBoxApi, FAKE_ACCESS_TOKEN};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let api = runtime
        .block_on(FakeBoxApi::builder().start())
        .expect("fake");
    let dir = temp_dir("check-address-webhooks");
    let file = dir.join("webhooks.toml");
    std::fs::write(&file, toml).expect("webhooks.toml");
    let mut command = boxhook();
    command
        .env_remove("BOX_CLIENT_ID")
        .env("BOX_ACCESS_TOKEN", FAKE_ACCESS_TOKEN)
        .arg("webhooks")
        .args(args)
        .args([
            "--file",
            &file.display().to_string(),
            "--api-base",
            &api.uri(),
        ]);
    let output = run(&mut command, LIMIT);
    (
        output.status.code().expect("exited"),
        String::from_utf8(output.stdout).expect("UTF-8"),
        String::from_utf8(output.stderr).expect("UTF-8"),
        api.webhooks().len(),
    )
}

/// `.invalid` never resolves (RFC 6761): the address fails the same way
/// with or without a network.
const UNRESOLVABLE: &str = "[[webhook]]
target = \"folder:11\"
address = \"https://hooks.example.invalid/box\"
triggers = [\"FILE.UPLOADED\"]
";

#[test]
fn webhooks_plan_shows_a_failing_address_as_a_warning() {
    // Checked by default: no flag.
    let (code, stdout, stderr, held) = webhooks_against_fake(UNRESOLVABLE, &["plan"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        "address    https://hooks.example.invalid/box: Box would not accept it (a warning; \
         --strict makes it an error)"
    );
    assert!(
        lines[1].starts_with("  fail     public-address  hooks.example.invalid does not resolve: "),
        "{stdout}"
    );
    assert!(lines[2].starts_with("create     folder:11"), "{stdout}");
    assert_eq!(
        lines[3],
        "plan: 1 to create, 0 to update, 0 to delete, 0 unchanged"
    );
    assert_eq!(held, 0);

    let (code, stdout, _, _) = webhooks_against_fake(UNRESOLVABLE, &["plan", "--json"]);
    assert_eq!(code, 0, "{stdout}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(doc["create"], 1);
    assert_eq!(
        doc["addresses"][0]["url"],
        "https://hooks.example.invalid/box"
    );
    assert_eq!(doc["addresses"][0]["ok"], false);
    assert_eq!(doc["addresses"][0]["checks"][1]["rule"], "public-address");
    assert_eq!(doc["addresses"][0]["checks"][1]["status"], "fail");
    assert_eq!(
        doc["addresses"][0]["checks"].as_array().map(Vec::len),
        Some(9)
    );
}

#[test]
fn webhooks_apply_strict_refuses_a_failing_address_and_changes_nothing() {
    let (code, stdout, stderr, held) = webhooks_against_fake(UNRESOLVABLE, &["apply", "--strict"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert_eq!(
        stderr,
        "boxhook: --strict: 1 address(es) fail Box's rules, nothing sent to Box: \
         https://hooks.example.invalid/box\n"
    );
    assert!(stdout.starts_with(
        "address    https://hooks.example.invalid/box: Box would not accept it (an error with \
         --strict)\n"
    ));
    assert_eq!(held, 0, "nothing was created");

    // Without --strict the same address is only a warning: apply goes on.
    let (code, stdout, stderr, held) = webhooks_against_fake(UNRESOLVABLE, &["apply"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with(
        "address    https://hooks.example.invalid/box: Box would not accept it (a warning; \
         --strict makes it an error)\n"
    ));
    assert_eq!(held, 1);
}

#[test]
fn webhooks_no_check_addresses_skips_the_checks() {
    for command in ["plan", "apply"] {
        let (code, stdout, stderr, _) =
            webhooks_against_fake(UNRESOLVABLE, &[command, "--no-check-addresses"]);
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(!stdout.contains("address "), "{command}: {stdout}");
        assert_eq!(stderr, "", "{command}");
    }
    let (code, stdout, _, _) =
        webhooks_against_fake(UNRESOLVABLE, &["plan", "--json", "--no-check-addresses"]);
    assert_eq!(code, 0, "{stdout}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(doc.get("addresses"), None, "{doc}");
    assert_eq!(doc["create"], 1);

    // --check-addresses, the opt-in of old, still asks for the default.
    let (code, stdout, _, _) = webhooks_against_fake(UNRESOLVABLE, &["plan", "--check-addresses"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.starts_with("address    https://hooks.example.invalid/box: "),
        "{stdout}"
    );

    // --strict needs the checks.
    let (code, stdout, stderr, held) =
        webhooks_against_fake(UNRESOLVABLE, &["apply", "--strict", "--no-check-addresses"]);
    assert_eq!(code, 2, "{stdout}");
    assert!(
        stderr.starts_with(
            "error: the argument '--strict' cannot be used with '--no-check-addresses'\n"
        ),
        "{stderr}"
    );
    assert_eq!(held, 0);
}

/// `openssl s_server` on a free 127.0.0.1 port with `extra` flags and a
/// certificate from `ca`, killed when dropped; `None` (the test says
/// SKIPPED) without an `openssl` command.
struct OpenSslServer {
    child: std::process::Child,
    port: u16,
    _dir: crate::common::TestDir,
}

impl OpenSslServer {
    fn start(ca: &Ca, extra: &[&str]) -> Option<Self> {
        let dir = temp_dir("check-address-openssl");
        let params = {
            let mut params = CertificateParams::new(vec![HOST.to_owned()]).expect("params");
            params.distinguished_name.push(DnType::CommonName, HOST);
            params
        };
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &ca.issuer).expect("signed");
        std::fs::write(dir.join("cert.pem"), cert.pem()).expect("cert.pem");
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("key.pem");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let spawned = std::process::Command::new("openssl")
            .args(["s_server", "-accept", &format!("127.0.0.1:{port}"), "-www"])
            .arg("-cert")
            .arg(dir.join("cert.pem"))
            .arg("-key")
            .arg(dir.join("key.pem"))
            .args(extra)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let Ok(child) = spawned else {
            eprintln!("SKIPPED: no openssl command to run s_server");
            return None;
        };
        let server = Self {
            child,
            port,
            _dir: dir,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "openssl s_server did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }
}

impl Drop for OpenSslServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real TLS stack that still speaks TLS 1.0 and 1.1 (OpenSSL at security
/// level 0): the hand-written `ClientHello`s are accepted, so both rules
/// warn; the same server limited to TLS 1.2 and up refuses them.
#[test]
fn openssl_accepting_tls_1_0_and_1_1_warns_and_refusing_them_passes() {
    let dir = temp_dir("check-address-old-tls");
    let ca = ca();
    let ca_file = write_ca(&dir, &ca);
    let Some(old) = OpenSslServer::start(&ca, &["-cipher", "DEFAULT:@SECLEVEL=0"]) else {
        return;
    };
    let (code, stdout, _) = check_address(
        &[
            "--resolve",
            &format!("{HOST}:127.0.0.1:{}", old.port),
            "--ca-file",
            &ca_file,
            "--allow-private-address",
            &format!("https://{HOST}/"),
        ],
        None,
    );
    assert_eq!(code, 0, "warnings only: {stdout}");
    for version in ["1.0", "1.1"] {
        assert_eq!(
            line(&stdout, &format!("tls{version}-refused")),
            format!(
                "  warn     tls{version}-refused  the server accepts TLS {version}: Box speaks only \
                 TLS 1.2 and 1.3, but older clients could still connect; disable it"
            )
        );
    }
    assert_eq!(
        line(&stdout, "certificate").split_whitespace().next(),
        Some("pass")
    );
    assert_eq!(
        line(&stdout, "tls1.2-fips").split_whitespace().next(),
        Some("pass")
    );
    assert_eq!(
        line(&stdout, "tls1.3-fips").split_whitespace().next(),
        Some("pass")
    );
    drop(old);

    let Some(modern) = OpenSslServer::start(&ca, &["-no_tls1", "-no_tls1_1"]) else {
        return;
    };
    let (code, stdout, _) = check_address(
        &[
            "--resolve",
            &format!("{HOST}:127.0.0.1:{}", modern.port),
            "--ca-file",
            &ca_file,
            "--allow-private-address",
            &format!("https://{HOST}/"),
        ],
        None,
    );
    assert_eq!(code, 0, "{stdout}");
    for version in ["1.0", "1.1"] {
        let found = line(&stdout, &format!("tls{version}-refused"));
        assert!(
            found.starts_with(&format!(
                "  pass     tls{version}-refused  TLS {version} refused: the server answered with an alert"
            )),
            "{stdout}"
        );
    }
}

/// `boxhook serve --tls-cert/--tls-key` itself meets every rule Box states
/// that a test on loopback can check: FIPS-only TLS 1.2 and 1.3, TLS 1.0
/// and 1.1 refused (rustls cannot speak them, and this shows it from the
/// outside), and a signed delivery stored and answered 200. Only the
/// public-address rule warns, since the address is 127.0.0.1.
#[test]
fn boxhook_serve_over_tls_passes_every_rule() {
    let dir = temp_dir("check-address-serve");
    let ca = ca();
    let (chain, key) = leaf(&ca, HOST, None);
    let cert_file = dir.join("cert.pem");
    let key_file = dir.join("key.pem");
    let pem = |label: &str, der: &[u8]| {
        use base64::Engine as _;
        let text = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = text
            .as_bytes()
            .chunks(64)
            .map(|chunk| std::str::from_utf8(chunk).expect("base64 is ASCII"))
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    };
    std::fs::write(&cert_file, pem("CERTIFICATE", chain[0].as_ref())).expect("cert.pem");
    std::fs::write(&key_file, pem("PRIVATE KEY", key.secret_der())).expect("key.pem");
    let ca_file = write_ca(&dir, &ca);
    let inbox = dir.join("inbox.sqlite");
    let server = crate::common::Server::start(
        &inbox,
        &[
            "--tls-cert",
            cert_file.to_str().expect("UTF-8"),
            "--tls-key",
            key_file.to_str().expect("UTF-8"),
        ],
    );
    let url = format!("https://{HOST}/");
    let resolve = format!("{HOST}:127.0.0.1:{}", server.port);
    let mut command = boxhook();
    command
        .arg("check-address")
        .args([
            "--resolve",
            &resolve,
            "--ca-file",
            &ca_file,
            "--allow-private-address",
            "--send",
            &url,
        ])
        .env("BOX_PRIMARY_KEY", boxhook_testkit::SAMPLE_PRIMARY_KEY);
    let output = run(&mut command, LIMIT);
    let stdout = String::from_utf8(output.stdout).expect("UTF-8");
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    for (rule, verdict) in [
        ("https-port-443", "pass"),
        ("public-address", "warn"),
        ("not-box-com", "pass"),
        ("certificate", "pass"),
        ("tls1.2-fips", "pass"),
        ("tls1.3-fips", "pass"),
        ("tls1.0-refused", "pass"),
        ("tls1.1-refused", "pass"),
        ("delivery", "pass"),
    ] {
        let line = line(&stdout, rule);
        assert!(
            line.trim_start().starts_with(verdict),
            "{rule}: {line}\n{stdout}"
        );
    }
    assert!(
        stdout.ends_with("Box's rules hold: 8 passed, 0 failed, 1 warned, 0 skipped\n"),
        "{stdout}"
    );
    assert!(server.terminate(LIMIT).success());
    let listed = crate::common::inbox_list(&inbox);
    assert_eq!(listed.len(), 1, "the test delivery is stored: {listed:?}");
    assert_eq!(listed[0]["trigger"], "FILE.UPLOADED");
}
