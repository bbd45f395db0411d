use std::path::PathBuf;
use std::sync::Arc;

use proptest::prelude::*;
use tokio_postgres::config::SslMode;

use super::{parse, redact, take_tls_settings, Roots, Security, Taken};

fn taken(rest: &str, mode: Option<&str>, rootcert: Option<&str>) -> Taken {
    Taken {
        rest: rest.to_owned(),
        mode: mode.map(str::to_owned),
        rootcert: rootcert.map(str::to_owned),
    }
}

#[test]
fn the_tls_settings_are_taken_out_of_both_forms_and_the_rest_is_left_as_written() {
    let cases = [
        (
            "postgres://u:p@h:5432/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20b.pem",
            taken(
                "postgres://u:p@h:5432/db",
                Some("verify-full"),
                Some("/etc/ca b.pem"),
            ),
        ),
        (
            "postgresql://u@h/db?application_name=x&sslrootcert=/ca.pem&connect_timeout=5",
            taken(
                "postgresql://u@h/db?application_name=x&connect_timeout=5",
                None,
                Some("/ca.pem"),
            ),
        ),
        ("postgres://h/db", taken("postgres://h/db", None, None)),
        // The user info ends at the first '@', as tokio-postgres reads it:
        // a '?' in the password does not start the query.
        (
            "postgres://u:p?w@h/db?sslmode=require",
            taken("postgres://u:p?w@h/db", Some("require"), None),
        ),
        // The last one wins, as in libpq.
        (
            "postgres://h/db?sslmode=disable&sslmode=verify-ca",
            taken("postgres://h/db", Some("verify-ca"), None),
        ),
        (
            "host=h sslmode=verify-ca sslrootcert='/path with space/ca.pem' user=u",
            taken(
                "host=h user=u",
                Some("verify-ca"),
                Some("/path with space/ca.pem"),
            ),
        ),
        (
            "host = h  sslrootcert = /a\\ b.pem",
            taken("host = h", None, Some("/a b.pem")),
        ),
        (
            "password='it''s' host=h",
            // Malformed ('' is no escape): handed over whole, tokio-postgres says where.
            taken("password='it''s' host=h", None, None),
        ),
        ("host=h sslmode", taken("host=h sslmode", None, None)),
    ];
    for (url, want) in cases {
        assert_eq!(take_tls_settings(url).expect(url), want, "{url}");
    }
}

fn verified(roots: Roots, check_name: bool) -> Security {
    Security::Verified { roots, check_name }
}

#[test]
fn sslmode_and_sslrootcert_decide_the_security() {
    let file = || Roots::File(PathBuf::from("/ca.pem"));
    let cases = [
        ("postgres://h/db", Security::Plain),
        ("postgres://h/db?sslmode=disable", Security::Plain),
        ("postgres://h/db?sslmode=allow", Security::Plain),
        ("postgres://h/db?sslmode=prefer", Security::Plain),
        // boxhook's `require` checks the certificate and the host name.
        (
            "postgres://h/db?sslmode=require",
            verified(Roots::Mozilla, true),
        ),
        (
            "postgres://h/db?sslmode=verify-full",
            verified(Roots::Mozilla, true),
        ),
        (
            "postgres://h/db?sslrootcert=system",
            verified(Roots::Mozilla, true),
        ),
        // A root certificate alone asks for TLS.
        (
            "postgres://h/db?sslrootcert=/ca.pem",
            verified(file(), true),
        ),
        (
            "postgres://h/db?sslmode=require&sslrootcert=/ca.pem",
            verified(file(), true),
        ),
        (
            "postgres://h/db?sslmode=verify-ca&sslrootcert=/ca.pem",
            verified(file(), false),
        ),
        (
            "host=h sslmode=verify-full sslrootcert=/ca.pem",
            verified(file(), true),
        ),
    ];
    for (url, want) in cases {
        let info = parse(url, None).expect(url);
        assert_eq!(info.security, want, "{url}");
        let mode = match want {
            Security::Plain => SslMode::Disable,
            Security::Verified { .. } => SslMode::Require,
        };
        assert_eq!(info.config.get_ssl_mode(), mode, "{url}");
        assert_eq!(info.config.get_hosts().len(), 1, "{url}");
    }
    let pem: Arc<[u8]> = Arc::from(&b"-----BEGIN CERTIFICATE-----"[..]);
    for (url, want) in [
        (
            "postgres://h/db",
            verified(Roots::Pem(Arc::clone(&pem)), true),
        ),
        (
            "postgres://h/db?sslmode=verify-ca",
            verified(Roots::Pem(Arc::clone(&pem)), false),
        ),
    ] {
        assert_eq!(parse(url, Some(&pem)).expect(url).security, want, "{url}");
    }
    // What boxhook does not take is tokio-postgres's, as written.
    let direct = parse(
        "postgres://h/db?sslnegotiation=direct&sslrootcert=/ca.pem",
        None,
    )
    .expect("direct");
    assert_eq!(direct.security, verified(file(), true));
    assert_eq!(
        direct.config.get_ssl_negotiation(),
        tokio_postgres::config::SslNegotiation::Direct
    );
}

#[test]
fn contradictions_and_unsupported_settings_are_refused_with_what_to_do() {
    let pem: Arc<[u8]> = Arc::from(&b"pem"[..]);
    let not_a_string = |query: &str, why: &str| {
        format!(
            "inbox storage failed: postgres://u:***@h/db?{query} is not a PostgreSQL \
             connection string: {why}"
        )
    };
    let verify_ca = "inbox storage failed: sslmode=verify-ca needs sslrootcert=PATH, your \
                     database provider's own CA: with a public root store any site's \
                     certificate would pass; use sslmode=verify-full for a server whose \
                     certificate a public CA signed";
    let cases = [
        (
            "postgres://u:pw@h/db?sslmode=verify-ca",
            None,
            verify_ca.to_owned(),
        ),
        (
            "postgres://u:pw@h/db?sslmode=verify-ca&sslrootcert=system",
            None,
            verify_ca.to_owned(),
        ),
        (
            "postgres://u:pw@h/db?sslmode=prefer&sslrootcert=/ca.pem",
            None,
            "inbox storage failed: sslmode=prefer does not use TLS, yet sslrootcert /ca.pem is \
             given; use sslmode=verify-full (or leave sslmode out) to connect over TLS"
                .to_owned(),
        ),
        (
            "postgres://u:pw@h/db?sslmode=disable",
            Some(&pem),
            "inbox storage failed: sslmode=disable does not use TLS, yet the certificates given \
             to Options::root_certificates_pem is given; use sslmode=verify-full (or leave \
             sslmode out) to connect over TLS"
                .to_owned(),
        ),
        (
            "postgres://u:pw@h/db?sslmode=verify_full",
            None,
            "inbox storage failed: sslmode=\"verify_full\" is not one of disable, allow, \
             prefer, require, verify-ca, verify-full"
                .to_owned(),
        ),
        (
            "postgres://u:pw@h/db?sslrootcert=",
            None,
            "inbox storage failed: sslrootcert is empty; give the path of your database \
             provider's CA certificates (PEM), or sslrootcert=system for the public root store"
                .to_owned(),
        ),
        (
            "postgres://u:pw@h/db?sslrootcert=/ca.pem",
            Some(&pem),
            "inbox storage failed: root certificates are given twice, as sslrootcert and as \
             Options::root_certificates_pem; keep one"
                .to_owned(),
        ),
        (
            "postgres://u:pw@h/db?sslmode=verify-full&sslcert=/me.pem",
            None,
            not_a_string(
                "sslmode=verify-full&sslcert=/me.pem",
                "sslcert is not supported: boxhook does not send client certificates nor read \
                 revocation lists; authenticate with a password",
            ),
        ),
        (
            "postgres://u:pw@h/db?sslmode=verify-full&sslrootcert=%FF",
            None,
            not_a_string(
                "sslmode=verify-full&sslrootcert=%FF",
                "the value of sslrootcert is not UTF-8 once percent-decoded",
            ),
        ),
        (
            "postgres://u:pw@h/db?sslmode=verify-full&bogus=1",
            None,
            not_a_string(
                "sslmode=verify-full&bogus=1",
                "invalid connection string: unknown option `bogus`; expected e.g. \
                 postgres://user:password@host:5432/dbname or host=… user=… dbname=…",
            ),
        ),
    ];
    for (url, pem, want) in cases {
        let error = parse(url, pem).expect_err(url);
        assert_eq!(error.kind(), boxhook::inbox::ErrorKind::Storage, "{url}");
        assert_eq!(error.to_string(), want, "{url}");
    }
}

#[test]
fn passwords_never_reach_messages() {
    let cases = [
        ("postgres://u:secret@h/db", "postgres://u:***@h/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgres://h/db", "postgres://h/db"),
        (
            "postgres://u:secret@h/db?sslmode=require",
            "postgres://u:***@h/db?sslmode=require",
        ),
        (
            "postgres://u@h/db?password=secret&sslmode=require",
            "postgres://u@h/db?password=***&sslmode=require",
        ),
        ("host=h user=u", "host=h user=u"),
        (
            "host=h password=secret user=u",
            "host=h password=*** user=u",
        ),
        (
            "host=h password = 'se cret' user=u",
            "host=h password=*** user=u",
        ),
        (
            "host=h password='unterminated",
            "(a malformed connection string with a password; not shown)",
        ),
    ];
    for (url, want) in cases {
        assert_eq!(redact(url), want, "{url}");
    }
}

#[test]
fn the_whole_password_is_hidden_wherever_it_ends() {
    let cases = [
        // An unencoded '@' in the password: the user info runs to the '@'
        // before the host, not to the first one.
        (
            "postgres://boxhook:Pw@s3cr3t-Top@127.0.0.1:55499/boxhook",
            "postgres://boxhook:***@127.0.0.1:55499/boxhook",
        ),
        (
            "postgres://u:a@b@c@h/db?sslmode=require",
            "postgres://u:***@h/db?sslmode=require",
        ),
        // ':' in the password: the user name ends at the first one.
        ("postgres://u:p:w:x@h/db", "postgres://u:***@h/db"),
        ("postgres://u:p:w@x@h:5432/db", "postgres://u:***@h:5432/db"),
        // '/' and '?' in the password, with and without '@' after them.
        ("postgres://u:p/w@h/db", "postgres://u:***@h/db"),
        ("postgres://u:p@ss/w@rd@h/db", "postgres://u:***@h/db"),
        (
            "postgres://u:p?w@h/db?sslmode=require",
            "postgres://u:***@h/db?sslmode=require",
        ),
        ("postgres://u:p@ss?wd@h/db?x=1", "postgres://u:***@h/db?x=1"),
        // Percent-encoded: shown as written, password hidden.
        (
            "postgres://u%40corp:p%40ss%3Aw@h/db",
            "postgres://u%40corp:***@h/db",
        ),
        // IPv6 hosts, with a port and several hosts.
        (
            "postgres://u:pw@[::1]:5432/db",
            "postgres://u:***@[::1]:5432/db",
        ),
        (
            "postgres://u:p@w@[fe80::1%25eth0]/db",
            "postgres://u:***@[fe80::1%25eth0]/db",
        ),
        (
            "postgres://u:pw@h1:5432,[::1]:5433/db",
            "postgres://u:***@h1:5432,[::1]:5433/db",
        ),
        // An '@' in the query: everything before it may be a password, so
        // all of it is hidden (too much rather than too little).
        (
            "postgres://u:pw@h/db?application_name=me@host",
            "postgres://u:***@host",
        ),
        (
            "postgres://h/db?application_name=me@host",
            "postgres://***@host",
        ),
        (
            "postgres://h/db?password=s3cr3t&application_name=me@host",
            "postgres://***@host",
        ),
        ("postgres://u:pw@h/db?password=x@y", "postgres://u:***@y"),
        // A user and no password: nothing hidden.
        ("postgres://u@h/db", "postgres://u@h/db"),
        // Passwords in the query, an unencoded '&' in one included.
        (
            "postgres://u@h/db?password=s3cr3t&sslmode=require",
            "postgres://u@h/db?password=***&sslmode=require",
        ),
        (
            "postgres://u@h/db?password=a&b&c&sslmode=require",
            "postgres://u@h/db?password=***&sslmode=require",
        ),
        (
            "postgres://u@h/db?pass%77ord=s3cr3t",
            "postgres://u@h/db?pass%77ord=***",
        ),
        (
            "postgres://u@h/db?PASSWORD=s3cr3t",
            "postgres://u@h/db?PASSWORD=***",
        ),
        // The key=value form, quoted values and escapes included.
        (
            "host=127.0.0.1 port=55499 user=boxhook password=Pw-s3cr3t-Top dbname=boxhook",
            "host=127.0.0.1 port=55499 user=boxhook password=*** dbname=boxhook",
        ),
        (
            "host=h password='a b\\' c@d' user=u",
            "host=h password=*** user=u",
        ),
        ("password = 'x=y z' host=h", "password=*** host=h"),
        ("host=h PASSWORD=s3cr3t", "host=h password=***"),
        (
            "host=h PASSWORD='unterminated s3cr3t",
            "(a malformed connection string with a password; not shown)",
        ),
    ];
    for (url, want) in cases {
        assert_eq!(redact(url), want, "{url}");
    }
}

#[test]
fn an_unencoded_at_sign_in_the_user_info_is_refused_with_how_to_write_it() {
    let error = parse(
        "postgres://boxhook:Pw@s3cr3t-Top@127.0.0.1:55499/boxhook",
        None,
    )
    .expect_err("an @ in the password");
    assert_eq!(
        error.to_string(),
        "inbox storage failed: postgres://boxhook:***@127.0.0.1:55499/boxhook is not a \
         PostgreSQL connection string: the user name or password holds an unencoded @ (or the \
         URL has an @ where a host name should be); write each @ in a user name, password or \
         database name as %40"
    );
    let encoded = parse(
        "postgres://boxhook:Pw%40s3cr3t-Top@127.0.0.1:55499/boxhook",
        None,
    )
    .expect("encoded");
    assert_eq!(encoded.config.get_password(), Some(&b"Pw@s3cr3t-Top"[..]));
    assert_eq!(encoded.config.get_user(), Some("boxhook"));
    // An '@' in the query is read as tokio-postgres reads it.
    let query = parse("postgres://u:pw@h/db?application_name=me@host", None).expect("query @");
    assert_eq!(query.config.get_password(), Some(&b"pw"[..]));
    assert_eq!(query.config.get_application_name(), Some("me@host"));
}

proptest! {
    /// Whatever the password and however the string is written, neither
    /// `redact` nor a parse error shows it.
    #[test]
    fn no_password_survives_redaction(
        password in "[A-Za-z0-9 !#$%&()*+,./:;<=>?@\\[\\]^_{|}~-]{8,24}",
        bogus in any::<bool>(),
    ) {
        let encoded: String = percent_encoding::utf8_percent_encode(
            &password,
            percent_encoding::NON_ALPHANUMERIC,
        )
        .to_string();
        let quoted = password.replace('\\', "\\\\").replace('\'', "\\'");
        let extra = if bogus { " bogus=1" } else { "" };
        let query = if bogus { "&bogus=1" } else { "" };
        for url in [
            format!("postgres://u:{encoded}@h/db?sslmode=verify-full{query}"),
            // As a user pastes it, unencoded.
            format!("postgres://u:{password}@h/db?sslmode=verify-full{query}"),
            format!("postgres://u:{password}@[::1]:5432/db"),
            format!("postgres://u@h/db?password={encoded}{query}"),
            format!("host=h password='{quoted}' sslmode=verify-full{extra}"),
        ] {
            let shown = redact(&url);
            prop_assert!(!shown.contains(&password), "{shown}");
            prop_assert!(!shown.contains(&encoded), "{shown}");
            if let Err(error) = parse(&url, None) {
                prop_assert!(!error.to_string().contains(&password), "{error}");
                prop_assert!(!error.to_string().contains(&encoded), "{error}");
            }
        }
    }
}

proptest! {
    /// A password pasted unencoded with an `@` in it: what follows its last
    /// `@` (upper case and digits here, which nothing else in the URL holds)
    /// never shows, wherever the URL puts the password.
    #[test]
    fn the_part_after_an_at_sign_in_a_password_is_hidden_too(
        head in "[A-Za-z0-9!#$%&()*+,./:;<=>?@\\[\\]^_{|}~-]{0,12}",
        tail in "[A-Z0-9]{6,12}",
        query in prop_oneof![Just(""), Just("?sslmode=verify-full"), Just("?application_name=me@host")],
    ) {
        let password = format!("{head}@{tail}");
        for url in [
            format!("postgres://u:{password}@h/db{query}"),
            format!("postgres://u:{password}@[::1]:5432/db{query}"),
            format!("postgresql://u:{password}@h1:5432,h2:5433/db{query}"),
        ] {
            let shown = redact(&url);
            prop_assert!(!shown.contains(&tail), "{url} -> {shown}");
            if let Err(error) = parse(&url, None) {
                prop_assert!(!error.to_string().contains(&tail), "{error}");
            }
        }
    }
}
