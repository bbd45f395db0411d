//! TLS against a real PostgreSQL with `ssl=on`, its certificate signed by
//! a CA made here (rcgen) for the name `localhost` only: which connection
//! strings connect and which are refused with which message, that the
//! pool's connections and the `LISTEN` connection are encrypted (as the
//! server's `pg_stat_ssl` sees them), and that a NOTIFY wake-up crosses
//! TLS. Skipped with a message when PostgreSQL is not installed, unless
//! `BOXHOOK_POSTGRES=required`.

#![allow(
    clippy::doc_markdown,
    reason = "PostgreSQL is a product name, not code"
)]
#![cfg(all(unix, feature = "tls"))]

use std::path::Path;
use std::time::{Duration, Instant};

use boxhook::inbox::{Inbox, ListFilter, NewRecord, Stored};
use boxhook_postgres::{Options, PgInbox};
use boxhook_testkit::fs::TempDir;
use boxhook_testkit::postgres::Cluster;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// A CA: its certificate (PEM) and what signs with it.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().expect("key");
    let pem = params.self_signed(&key).expect("self-signed").pem();
    Ca {
        pem,
        issuer: Issuer::new(params, key),
    }
}

/// A server certificate for `names` signed by `ca`, and its key (PEM).
fn server_certificate(ca: &Ca, names: &[&str]) -> (String, String) {
    let names: Vec<String> = names.iter().map(|&name| name.to_owned()).collect();
    let mut params = CertificateParams::new(names).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, "boxhook test server");
    let key = KeyPair::generate().expect("key");
    let certificate = params.signed_by(&key, &ca.issuer).expect("signed");
    (certificate.pem(), key.serialize_pem())
}

/// The server (certificate for `localhost` only, by "boxhook test CA"),
/// and a directory holding `ca.pem` (that CA), `other-ca.pem` (a CA that
/// signed nothing here) and files that are no CA bundle.
fn start(name: &str) -> Option<(Cluster, TempDir)> {
    let ca = ca("boxhook test CA");
    let (certificate, key) = server_certificate(&ca, &["localhost"]);
    let cluster = Cluster::start_with_tls(name, &certificate, &key)?;
    let dir = TempDir::new(&format!("tls-{name}"));
    write(&dir.file("ca.pem"), &ca.pem);
    write(&dir.file("other-ca.pem"), &self::ca("another CA").pem);
    write(&dir.file("empty.pem"), "");
    write(&dir.file("not-pem.pem"), "this is not a certificate\n");
    write(
        &dir.file("bad-base64.pem"),
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    );
    Some((cluster, dir))
}

fn write(path: &Path, contents: &str) {
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn path(dir: &TempDir, name: &str) -> String {
    dir.file(name).to_str().expect("UTF-8").to_owned()
}

fn event(id: &str) -> NewRecord {
    let body = format!(
        r#"{{"type":"webhook_event","id":"{id}","trigger":"FILE.UPLOADED","webhook":{{"id":"4133","type":"webhook"}}}}"#
    );
    NewRecord::parse(body.into_bytes(), Some("d-1"), chrono::Utc::now()).expect("an event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(
    clippy::too_many_lines,
    reason = "one table of connection strings and their outcomes"
)]
async fn each_connection_string_connects_or_is_refused_saying_what_to_do() {
    let Some((cluster, dir)) = start("tls-table") else {
        return;
    };
    let port = cluster.port();
    let by_name = format!("postgres://postgres:secret@localhost:{port}/postgres");
    let by_ip = format!("postgres://postgres:secret@127.0.0.1:{port}/postgres");
    let ca = path(&dir, "ca.pem");
    let other = path(&dir, "other-ca.pem");
    let redacted = |url: &str| url.replace(":secret@", ":***@");
    let unknown_issuer = |url: &str, roots: &str| {
        format!(
            "inbox storage failed: cannot connect to {} over TLS: the server's certificate is \
             not signed by a CA in {roots} (unknown issuer); pass sslrootcert=PATH with your \
             database provider's CA certificates (PEM), the bundle for this server",
            redacted(url)
        )
    };
    let no_pem = |file: &str| {
        format!(
            "inbox storage failed: sslrootcert {file} holds no certificate (no -----BEGIN \
             CERTIFICATE----- block); give your database provider's CA certificates as PEM \
             (a DER file converts with `openssl x509 -inform der -in FILE -out ca.pem`)",
        )
    };
    let ok = || Ok(());
    let cases: Vec<(&str, String, Result<(), String>)> = vec![
        (
            "our CA, the certificate's host name",
            format!("{by_name}?sslmode=verify-full&sslrootcert={ca}"),
            ok(),
        ),
        (
            "key=value form",
            format!(
                "host=localhost port={port} user=postgres password=secret dbname=postgres \
                 sslmode=verify-full sslrootcert='{ca}'"
            ),
            ok(),
        ),
        (
            "sslrootcert alone turns TLS on",
            format!("{by_name}?sslrootcert={ca}"),
            ok(),
        ),
        (
            "require checks as verify-full does",
            format!("{by_name}?sslmode=require&sslrootcert={ca}"),
            ok(),
        ),
        (
            "verify-ca accepts our CA's certificate for another name",
            format!("{by_ip}?sslmode=verify-ca&sslrootcert={ca}"),
            ok(),
        ),
        (
            "the Mozilla roots do not know our CA",
            format!("{by_name}?sslmode=verify-full"),
            Err(unknown_issuer(
                &format!("{by_name}?sslmode=verify-full"),
                "the Mozilla root store (no sslrootcert given)",
            )),
        ),
        (
            "require without sslrootcert checks against the Mozilla roots",
            format!("{by_name}?sslmode=require"),
            Err(unknown_issuer(
                &format!("{by_name}?sslmode=require"),
                "the Mozilla root store (no sslrootcert given)",
            )),
        ),
        (
            "another CA",
            format!("{by_name}?sslmode=verify-full&sslrootcert={other}"),
            Err(unknown_issuer(
                &format!("{by_name}?sslmode=verify-full&sslrootcert={other}"),
                &format!("sslrootcert {other}"),
            )),
        ),
        (
            "verify-ca still checks the CA",
            format!("{by_ip}?sslmode=verify-ca&sslrootcert={other}"),
            Err(unknown_issuer(
                &format!("{by_ip}?sslmode=verify-ca&sslrootcert={other}"),
                &format!("sslrootcert {other}"),
            )),
        ),
        (
            "our CA, but the certificate does not name 127.0.0.1",
            format!("{by_ip}?sslmode=verify-full&sslrootcert={ca}"),
            Err(format!(
                "inbox storage failed: cannot connect to {} over TLS: the server's certificate \
                 does not name the host connected to (invalid peer certificate: certificate \
                 not valid for name \"127.0.0.1\"; certificate is only valid for DnsName(\
                 \"localhost\")); connect with a host name the certificate names, or use \
                 sslmode=verify-ca to check only that your CA signed it",
                redacted(&format!("{by_ip}?sslmode=verify-full&sslrootcert={ca}"))
            )),
        ),
        (
            "a unix socket: no TLS there",
            format!("{}&sslmode=verify-full&sslrootcert={ca}", cluster.url()),
            Err(format!(
                "inbox storage failed: TLS is asked for, but host {} is a unix socket, where \
                 PostgreSQL never uses TLS; connect over TCP (host=NAME), or leave sslmode \
                 and sslrootcert out for the socket",
                cluster
                    .url()
                    .split("host=")
                    .nth(1)
                    .and_then(|rest| rest.split('&').next())
                    .expect("host")
            )),
        ),
        (
            "a missing sslrootcert",
            format!(
                "{by_name}?sslmode=verify-full&sslrootcert={}",
                path(&dir, "nope.pem")
            ),
            Err(format!(
                "inbox storage failed: cannot read sslrootcert {}: No such file or directory \
                 (os error 2); give the path of your database provider's CA certificates \
                 (PEM), readable by this process",
                path(&dir, "nope.pem")
            )),
        ),
        (
            "an empty sslrootcert",
            format!("{by_name}?sslrootcert={}", path(&dir, "empty.pem")),
            Err(no_pem(&path(&dir, "empty.pem"))),
        ),
        (
            "an sslrootcert that is no PEM",
            format!("{by_name}?sslrootcert={}", path(&dir, "not-pem.pem")),
            Err(no_pem(&path(&dir, "not-pem.pem"))),
        ),
        (
            "an sslrootcert with broken base64",
            format!("{by_name}?sslrootcert={}", path(&dir, "bad-base64.pem")),
            Err(format!(
                "inbox storage failed: sslrootcert {} is not valid PEM (bad base64: \
                 InvalidCharacter(33)); give your database provider's CA certificates as PEM \
                 (-----BEGIN CERTIFICATE----- blocks)",
                path(&dir, "bad-base64.pem")
            )),
        ),
    ];
    let options = Options::default().pool_size(1).schema("tls_table");
    for (case, url, want) in cases {
        let got = PgInbox::connect_with(&url, &options)
            .await
            .map(drop)
            .map_err(|error| error.to_string());
        assert_eq!(got, want, "{case}: {url}");
        if let Err(message) = got {
            assert!(!message.contains("secret"), "{case}: {message}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pem_can_come_from_the_program_rather_than_a_file() {
    let Some((cluster, dir)) = start("tls-options") else {
        return;
    };
    let url = format!("postgres://postgres@localhost:{}/postgres", cluster.port());
    let pem = std::fs::read(dir.file("ca.pem")).expect("ca.pem");
    let options = Options::default()
        .pool_size(1)
        .root_certificates_pem(pem.clone());
    let inbox = PgInbox::connect_with(&url, &options)
        .await
        .expect("connect");
    assert_eq!(
        inbox.store(event("e-pem")).await.expect("store"),
        Stored::New
    );

    let other = std::fs::read(dir.file("other-ca.pem")).expect("other-ca.pem");
    let error = PgInbox::connect_with(&url, &Options::default().root_certificates_pem(other))
        .await
        .expect_err("refused");
    assert_eq!(
        error.to_string(),
        format!(
            "inbox storage failed: cannot connect to {url} over TLS: the server's certificate \
             is not signed by a CA in the certificates given to \
             Options::root_certificates_pem (unknown issuer); pass sslrootcert=PATH with your \
             database provider's CA certificates (PEM), the bundle for this server"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_tls_is_refused_not_used_in_plain_text() {
    let Some(cluster) = Cluster::start("tls-off") else {
        return;
    };
    let dir = TempDir::new("tls-off");
    write(&dir.file("ca.pem"), &ca("boxhook test CA").pem);
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        cluster.tcp_url(),
        path(&dir, "ca.pem")
    );
    let error = PgInbox::connect(&url).await.expect_err("refused");
    assert_eq!(
        error.to_string(),
        format!(
            "inbox storage failed: cannot connect to {url} over TLS: the server does not \
             accept TLS (its ssl setting is off); turn ssl on in the server (your provider's \
             console, or ssl = on in postgresql.conf), or leave sslmode and sslrootcert out \
             on a trusted network"
        )
    );
}

/// Every backend the server has, as `(application_name, ssl, TLS version,
/// last query)`, seen from a plain-text connection over the unix socket.
async fn backends(observer: &tokio_postgres::Client) -> Vec<(String, bool, String, String)> {
    observer
        .query(
            "SELECT a.application_name, s.ssl, coalesce(s.version, ''), a.query \
             FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
             WHERE a.backend_type = 'client backend' ORDER BY a.pid",
            &[],
        )
        .await
        .expect("pg_stat_ssl")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_and_the_listen_connection_are_encrypted_and_a_wake_up_crosses_tls() {
    let Some((cluster, dir)) = start("tls-listen") else {
        return;
    };
    let url = format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}",
        cluster.port(),
        path(&dir, "ca.pem")
    );
    let options = Options::default().pool_size(2).schema("tls_listen");
    let receiver = PgInbox::connect_with(&url, &options)
        .await
        .expect("connect");
    let worker = PgInbox::connect_with(&url, &options)
        .await
        .expect("connect");

    // An event stored and listed back over TLS.
    assert_eq!(
        receiver.store(event("e-1")).await.expect("store"),
        Stored::New
    );
    let listed = worker.list(ListFilter::new()).await.expect("list");
    let ids: Vec<&str> = listed.iter().map(|entry| entry.event_id.as_str()).collect();
    assert_eq!(ids, ["e-1"]);

    // The first wait starts the worker's LISTEN connection.
    worker.wait_for_work(Duration::from_secs(10)).await;
    worker.wait_for_work(Duration::from_millis(100)).await;

    let observer_url = format!("{}&application_name=observer", cluster.url());
    let (observer, connection) = tokio_postgres::connect(&observer_url, tokio_postgres::NoTls)
        .await
        .expect("observer");
    let driver = tokio::spawn(connection);
    let deadline = Instant::now() + Duration::from_secs(20);
    let seen = loop {
        let seen = backends(&observer).await;
        if seen
            .iter()
            .any(|(_, _, _, query)| query == "LISTEN boxhook_events")
        {
            break seen;
        }
        assert!(Instant::now() < deadline, "no LISTEN connection: {seen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The observer's own plain-text row shows the column tells them apart.
    assert!(
        seen.iter()
            .any(|(name, ssl, _, _)| name == "observer" && !ssl),
        "{seen:?}"
    );
    let ours: Vec<_> = seen.iter().filter(|(name, ..)| name == "boxhook").collect();
    // Both pools' connections, and the LISTEN one.
    assert!(ours.len() >= 3, "{seen:?}");
    for (_, ssl, version, query) in &ours {
        assert!(*ssl, "a plain-text boxhook connection ({query}): {seen:?}");
        assert_eq!(version, "TLSv1.3", "{seen:?}");
    }

    // A store on one pool wakes the worker through its TLS LISTEN connection.
    let waiting = tokio::spawn({
        let worker = worker.clone();
        async move {
            let started = Instant::now();
            worker.wait_for_work(Duration::from_secs(60)).await;
            started.elapsed()
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        receiver.store(event("e-2")).await.expect("store"),
        Stored::New
    );
    let waited = tokio::time::timeout(Duration::from_secs(60), waiting)
        .await
        .expect("woken before the poll interval")
        .expect("join");
    assert!(
        waited < Duration::from_secs(20),
        "the worker waited {waited:?} of its 60 s"
    );
    driver.abort();
}
