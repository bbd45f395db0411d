//! No password in anything shown: a store's `describe`, `Display` and
//! `Debug`, and every error, refused or failing to connect.

use boxhook_store::Store;

/// The password in every text below.
const PASSWORD: &str = "s3cr3t";

#[test]
fn no_parsed_or_refused_store_shows_its_password() {
    let texts: Vec<&str> = crate::urls::table()
        .into_iter()
        .map(|(text, _)| text)
        .filter(|text| text.contains(PASSWORD))
        .collect();
    assert!(texts.len() >= 6, "{texts:?}");
    for text in texts {
        let shown = match Store::parse(text) {
            Ok(store) => {
                assert!(store.has_password(), "{text:?}");
                format!("{store} {store:?} {}", store.describe())
            }
            Err(err) => {
                let plain = format!("{err} {err:?}");
                format!("{plain} {}", err.named("--store"))
            }
        };
        assert!(!shown.contains(PASSWORD), "{text:?}: {shown}");
    }
}

/// A port nothing listens on.
#[cfg(feature = "postgres")]
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// Failing to connect names the store without its password, in each form.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn a_store_that_cannot_be_reached_is_named_without_its_password() {
    use boxhook::inbox::ErrorKind;
    use boxhook_store::OpenErrorKind;

    let port = closed_port();
    for (url, shown) in [
        (
            format!("postgres://boxhook:{PASSWORD}@127.0.0.1:{port}/boxhook?connect_timeout=5"),
            format!("postgres://boxhook:***@127.0.0.1:{port}/boxhook?connect_timeout=5"),
        ),
        (
            format!(
                "host=127.0.0.1 port={port} user=boxhook password={PASSWORD} dbname=boxhook \
                 connect_timeout=5"
            ),
            format!(
                "host=127.0.0.1 port={port} user=boxhook password=*** dbname=boxhook \
                 connect_timeout=5"
            ),
        ),
    ] {
        let store = Store::parse(&url).expect("a connection string");
        assert_eq!(store.describe(), shown);
        let errors = [
            ("cannot open store", store.open().await.expect_err("open")),
            (
                "cannot open store",
                store.open_existing().await.expect_err("open_existing"),
            ),
            (
                "cannot migrate",
                store.migrate().await.expect_err("migrate"),
            ),
        ];
        for (what, err) in errors {
            let message = err.to_string();
            assert_eq!(err.kind(), OpenErrorKind::Open, "{message}");
            let inbox_error = err.inbox_error().expect("the inbox's error");
            assert_eq!(inbox_error.kind(), ErrorKind::Storage, "{message}");
            assert_eq!(message, format!("{what} {shown}: {inbox_error}"));
            assert!(
                message.starts_with(&format!(
                    "{what} {shown}: inbox storage failed: cannot connect to {shown}: "
                )),
                "{message}"
            );
            assert!(message.contains("Connection refused"), "{message}");
            assert!(!format!("{message} {err:?}").contains(PASSWORD), "{err:?}");
        }
    }
}
