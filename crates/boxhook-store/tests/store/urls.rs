//! Every form `Store::parse` accepts or refuses, with the exact error kind
//! and message, in this build's features.

use boxhook_store::{Backend, OpenErrorKind, Store};

/// What parsing a text must give.
#[derive(Debug)]
pub(crate) enum Want {
    /// A SQLite file at this path.
    Sqlite(&'static str),
    /// A PostgreSQL store, described as this (its password hidden).
    Postgres(&'static str),
    /// Refused as a usage error with this message.
    Refused(String),
}

const GIVE: &str = "give postgres://…, postgresql://…, host=… dbname=… (PostgreSQL), \
                    sqlite:PATH or a path (SQLite)";
const NO_FILE: &str =
    "the store names no file; give postgres://…, host=… dbname=…, sqlite:PATH or a path";
const NEITHER: &str = "the store is neither a PostgreSQL connection string (postgres://… or \
                       libpq's host=… port=… user=… dbname=…) nor a plain path; for a SQLite \
                       file whose name holds '=' or starts or ends with a space, write \
                       sqlite:PATH";

fn refused(message: &str) -> Want {
    Want::Refused(message.to_owned())
}

/// A SQLite file, or its refusal in a build without SQLite.
fn sqlite(path: &'static str) -> Want {
    if cfg!(feature = "sqlite") {
        Want::Sqlite(path)
    } else {
        refused(
            "the store names a SQLite file, and this build has no SQLite support \
             (boxhook-store's `sqlite` feature)",
        )
    }
}

/// A `postgres://` URL, or its refusal in a build without PostgreSQL.
fn pg_url(described: &'static str) -> Want {
    if cfg!(feature = "postgres") {
        Want::Postgres(described)
    } else {
        refused(
            "the store names a PostgreSQL database, and this build has no PostgreSQL support \
             (boxhook-store's `postgres` feature)",
        )
    }
}

/// A text with `=`, refused as no connection string in a build with
/// PostgreSQL, as no plain path in one without.
fn not_a_connection_string() -> Want {
    if cfg!(feature = "postgres") {
        refused(NEITHER)
    } else {
        refused(
            "the store is no plain path, and this build cannot read PostgreSQL connection \
             strings (boxhook-store's `postgres` feature); for a SQLite file whose name holds \
             '=', write sqlite:PATH",
        )
    }
}

/// libpq's `key=value` form, or its refusal in a build without PostgreSQL.
fn pg_keywords(described: &'static str) -> Want {
    if cfg!(feature = "postgres") {
        Want::Postgres(described)
    } else {
        not_a_connection_string()
    }
}

pub(crate) fn table() -> Vec<(&'static str, Want)> {
    vec![
        // PostgreSQL URLs, both schemes.
        ("postgres://u@h/db", pg_url("postgres://u@h/db")),
        ("postgresql://h/db", pg_url("postgresql://h/db")),
        ("postgres://u:s3cr3t@h/db", pg_url("postgres://u:***@h/db")),
        (
            "postgresql://u@h/db?password=s3cr3t&sslmode=verify-full",
            pg_url("postgresql://u@h/db?password=***&sslmode=verify-full"),
        ),
        // libpq's key=value form, quoted values and spaces around `=` too.
        (
            "host=127.0.0.1 port=55499 user=boxhook password=Pw-s3cr3t-Top dbname=boxhook",
            pg_keywords("host=127.0.0.1 port=55499 user=boxhook password=*** dbname=boxhook"),
        ),
        (
            "dbname = boxhook password='a s3cr3t'",
            pg_keywords("dbname = boxhook password=***"),
        ),
        ("host=db", pg_keywords("host=db")),
        // SQLite: explicit, with `//`, or a plain path.
        ("sqlite:inbox.sqlite", sqlite("inbox.sqlite")),
        ("sqlite:///var/x.sqlite", sqlite("/var/x.sqlite")),
        ("sqlite://x.sqlite", sqlite("x.sqlite")),
        ("sqlite:run=3.sqlite", sqlite("run=3.sqlite")),
        ("sqlite: spaced.sqlite ", sqlite(" spaced.sqlite ")),
        ("sqlite:mysql://x", sqlite("mysql://x")),
        ("/var/x.sqlite", sqlite("/var/x.sqlite")),
        ("x.sqlite", sqlite("x.sqlite")),
        ("./boxhook-inbox.sqlite", sqlite("./boxhook-inbox.sqlite")),
        ("my inbox.sqlite", sqlite("my inbox.sqlite")),
        ("C:\\inbox.sqlite", sqlite("C:\\inbox.sqlite")),
        // No file.
        ("", refused(NO_FILE)),
        ("sqlite:", refused(NO_FILE)),
        ("sqlite://", refused(NO_FILE)),
        ("//", refused(NO_FILE)),
        // Another scheme: named when it is one, never what follows it.
        (
            "mysql://boxhook:s3cr3t@127.0.0.1/boxhook",
            refused(&format!("the store: unknown scheme mysql://; {GIVE}")),
        ),
        (
            "Postgres+x.y-z://h/db",
            refused(&format!(
                "the store: unknown scheme Postgres+x.y-z://; {GIVE}"
            )),
        ),
        (
            "boxhook:s3cr3t@db://boxhook",
            refused(&format!("the store: unknown scheme before ://; {GIVE}")),
        ),
        (
            "1ab://h",
            refused(&format!("the store: unknown scheme before ://; {GIVE}")),
        ),
        // `=` but no connection string, or spaces around a path.
        ("run=3.sqlite", not_a_connection_string()),
        ("hots=127.0.0.1 pasword=s3cr3t", not_a_connection_string()),
        ("host=127.0.0.1 password='s3cr3t", not_a_connection_string()),
        (" inbox.sqlite", refused(NEITHER)),
        ("inbox.sqlite\n", refused(NEITHER)),
    ]
}

#[test]
fn every_form_is_accepted_or_refused_exactly() {
    for (text, want) in table() {
        let got = Store::parse(text);
        match (&want, got) {
            (Want::Sqlite(path), Ok(store)) => {
                assert_eq!(store.backend(), Backend::Sqlite, "{text:?}");
                assert_eq!(store.sqlite_path(), Some(path.as_ref()), "{text:?}");
                assert_eq!(store.connection_string(), None, "{text:?}");
                assert_eq!(store.describe(), *path, "{text:?}");
            }
            (Want::Postgres(described), Ok(store)) => {
                assert_eq!(store.backend(), Backend::Postgres, "{text:?}");
                assert_eq!(store.connection_string(), Some(text), "{text:?}");
                assert_eq!(store.sqlite_path(), None, "{text:?}");
                assert_eq!(store.describe(), *described, "{text:?}");
                assert_eq!(store.has_password(), text.contains("s3cr3t"), "{text:?}");
            }
            (Want::Refused(message), Err(err)) => {
                assert_eq!(err.kind(), OpenErrorKind::Usage, "{text:?}");
                assert_eq!(err.to_string(), *message, "{text:?}");
                assert!(err.inbox_error().is_none(), "{text:?}");
                // What the command line says: its flag where the store is named.
                let flag = message.replacen("the store", "--store", 1);
                assert_eq!(err.named("--store").to_string(), flag, "{text:?}");
            }
            (want, got) => panic!("{text:?}: want {want:?}, got {got:?}"),
        }
        // FromStr is parse.
        assert_eq!(
            format!("{:?}", text.parse::<Store>()),
            format!("{:?}", Store::parse(text)),
            "{text:?}"
        );
    }
}

/// The texts of boxhook's command-line tests, as it prints them.
#[test]
fn the_command_line_messages_come_out_verbatim() {
    let cases = [
        (
            "hots=127.0.0.1 pasword=s3cr3t",
            "--store is neither a PostgreSQL connection string (postgres://… or libpq's \
             host=… port=… user=… dbname=…) nor a plain path; for a SQLite file whose name \
             holds '=' or starts or ends with a space, write sqlite:PATH",
        ),
        (
            "mysql://boxhook:s3cr3t@127.0.0.1/boxhook",
            "--store: unknown scheme mysql://; give postgres://…, postgresql://…, host=… \
             dbname=… (PostgreSQL), sqlite:PATH or a path (SQLite)",
        ),
        (
            "sqlite:",
            "--store names no file; give postgres://…, host=… dbname=…, sqlite:PATH or a path",
        ),
    ];
    for (text, want) in cases {
        if text.contains('=') && cfg!(not(feature = "postgres")) {
            continue;
        }
        let err = Store::parse(text).expect_err(text);
        assert_eq!(err.named("--store").to_string(), want, "{text:?}");
    }
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_options_apply_to_postgres_only() {
    use boxhook_store::postgres::Options;

    let store = Store::parse("postgres://boxhook:s3cr3t@db/boxhook")
        .and_then(|store| store.with_options(Options::default().pool_size(4).schema("tenant")))
        .expect("a PostgreSQL store takes options");
    assert_eq!(
        store.connection_string(),
        Some("postgres://boxhook:s3cr3t@db/boxhook")
    );
    if cfg!(feature = "sqlite") {
        let err = Store::parse("sqlite:in=box.sqlite")
            .and_then(|store| store.with_options(Options::default()))
            .expect_err("a SQLite store takes no PostgreSQL options");
        assert_eq!(err.kind(), OpenErrorKind::Usage);
        assert_eq!(
            err.to_string(),
            "PostgreSQL options apply to a PostgreSQL store, not to the SQLite file in=box.sqlite"
        );
        // Not a message about the text: naming it changes nothing.
        assert_eq!(
            err.named("--store").to_string(),
            "PostgreSQL options apply to a PostgreSQL store, not to the SQLite file in=box.sqlite"
        );
    }
}
