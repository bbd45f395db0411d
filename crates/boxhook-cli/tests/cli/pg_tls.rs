//! `--store` over TLS: the `boxhook` command (`migrate`, `serve`, `work`,
//! `inbox list`) reaches a PostgreSQL with `ssl=on` whose certificate a
//! private CA signed, given that CA with `sslrootcert`, and a bad
//! `sslrootcert` fails with a message that says what to do, a non-zero exit
//! and no password. Skipped with a message when PostgreSQL is not
//! installed, unless `BOXHOOK_POSTGRES=required`.

#![allow(
    clippy::doc_markdown,
    reason = "PostgreSQL is a product name, not code"
)]
#![cfg(unix)]

use crate::common;

use std::io::BufReader;
use std::time::Duration;

use boxhook_testkit::fs::TempDir;
use boxhook_testkit::postgres::Cluster;
use common::{boxhook, event, exchange, run, signed_request, Server};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

const LIMIT: Duration = Duration::from_secs(60);

/// A CA's certificate (PEM), and a server certificate for `localhost`
/// that it signed, with the server's key (PEM).
fn certificates() -> (String, String, String) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.distinguished_name
        .push(DnType::CommonName, "boxhook test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().expect("key");
    let ca_pem = ca.self_signed(&ca_key).expect("self-signed").pem();
    let issuer = Issuer::new(ca, ca_key);
    let server = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    let server_key = KeyPair::generate().expect("key");
    let certificate = server.signed_by(&server_key, &issuer).expect("signed");
    (ca_pem, certificate.pem(), server_key.serialize_pem())
}

#[test]
fn inbox_list_reads_a_store_over_tls_and_a_bad_sslrootcert_says_what_to_do() {
    let (ca, certificate, key) = certificates();
    let Some(cluster) = Cluster::start_with_tls("cli-tls", &certificate, &key) else {
        return;
    };
    let dir = TempDir::new("cli-tls");
    let ca_file = dir.file("ca.pem");
    std::fs::write(&ca_file, ca).expect("ca.pem");
    let base = format!(
        "postgres://postgres:hunter2@localhost:{}/postgres",
        cluster.port()
    );
    let shown_base = base.replace(":hunter2@", ":***@");
    let url = format!(
        "{base}?sslmode=verify-full&sslrootcert={}",
        ca_file.display()
    );
    let shown = url.replace(":hunter2@", ":***@");

    // Through the environment, as advised: `--store` with a password would
    // add a warning on stderr.
    let migrated = run(boxhook().env("BOXHOOK_STORE", &url).arg("migrate"), LIMIT);
    assert_eq!(
        (
            migrated.status.code(),
            String::from_utf8_lossy(&migrated.stdout).into_owned(),
            String::from_utf8_lossy(&migrated.stderr).into_owned()
        ),
        (
            Some(0),
            format!("schema version 2\n{shown} is up to date\n"),
            String::new()
        )
    );
    // A receiver and a worker on the TLS store: a delivery is stored, then
    // processed.
    let server = Server::start_on(&["--store", url.as_str()], &[], &[]);
    let mut reader = BufReader::new(server.connect());
    let head = exchange(&mut reader, &signed_request(&event("e-tls"))).expect("an answer");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    drop(reader);
    drop(server);
    let worked = run(
        boxhook().args([
            "work",
            "--store",
            &url,
            "--once",
            "--exec",
            "cat > /dev/null",
        ]),
        LIMIT,
    );
    assert_eq!(
        worked.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&worked.stderr)
    );

    let listed = run(
        boxhook().args(["inbox", "list", "--json", "--store", &url]),
        LIMIT,
    );
    assert_eq!(
        listed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let ids: Vec<(&str, &str)> = rows
        .iter()
        .map(|row| {
            (
                row["event_id"].as_str().unwrap_or_default(),
                row["state"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(ids, [("e-tls", "done")]);

    refused_with_what_to_do(&base, &shown_base, &dir);
}

/// `inbox list` with a missing or empty `sslrootcert`, or none (the Mozilla
/// roots, which do not know the test CA): exit 1, nothing on stdout, and
/// one line on stderr saying what failed and what to do, with no password.
fn refused_with_what_to_do(base: &str, shown_base: &str, dir: &TempDir) {
    let missing = dir.file("missing.pem");
    let empty = dir.file("empty.pem");
    std::fs::write(&empty, "").expect("empty.pem");
    let cases = [
        (
            format!(
                "{base}?sslmode=verify-full&sslrootcert={}",
                missing.display()
            ),
            format!(
                "cannot read sslrootcert {}: No such file or directory (os error 2); give the \
                 path of your database provider's CA certificates (PEM), readable by this \
                 process",
                missing.display()
            ),
        ),
        (
            format!("{base}?sslrootcert={}", empty.display()),
            format!(
                "sslrootcert {} holds no certificate (no -----BEGIN CERTIFICATE----- block); \
                 give your database provider's CA certificates as PEM (a DER file converts \
                 with `openssl x509 -inform der -in FILE -out ca.pem`)",
                empty.display()
            ),
        ),
        (
            format!("{base}?sslmode=verify-full"),
            format!(
                "cannot connect to {shown_base}?sslmode=verify-full over TLS: the server's \
                 certificate is not signed by a CA in the Mozilla root store (no sslrootcert \
                 given) (unknown issuer); pass sslrootcert=PATH with your database \
                 provider's CA certificates (PEM), the bundle for this server"
            ),
        ),
    ];
    for (bad, why) in cases {
        let out = run(
            boxhook().env("BOXHOOK_STORE", &bad).args(["inbox", "list"]),
            LIMIT,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{bad}: {stderr}");
        assert!(out.stdout.is_empty(), "{bad}");
        assert_eq!(
            stderr,
            format!(
                "boxhook: cannot open store {}: inbox storage failed: {why}\n",
                bad.replace(":hunter2@", ":***@")
            ),
            "{bad}"
        );
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
}
