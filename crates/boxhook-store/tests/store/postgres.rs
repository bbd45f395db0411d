//! Opening PostgreSQL stores on a throwaway server: `open` migrates,
//! `open_existing` does not, `migrate` says the schema's version.

use std::sync::atomic::{AtomicUsize, Ordering};

use boxhook_store::postgres::Options;

/// A schema of its own per case: every case starts from an empty inbox.
pub(crate) fn fresh_options() -> Options {
    static CASE: AtomicUsize = AtomicUsize::new(0);
    let n = CASE.fetch_add(1, Ordering::Relaxed);
    Options::default().pool_size(8).schema(format!("case_{n}"))
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_existing_needs_a_migrated_schema_and_migrate_says_its_version() {
    use boxhook::inbox::{ErrorKind, Inbox as _};
    use boxhook_store::{Backend, OpenErrorKind, Store};
    use boxhook_testkit::postgres::Cluster;

    let Some(cluster) = Cluster::start("store-open") else {
        return;
    };
    // The throwaway server trusts every local connection: the password is
    // there to be hidden, not checked.
    let url = cluster.tcp_url().replace("postgres@", "postgres:s3cr3t@");
    let store = Store::parse(&url)
        .and_then(|store| store.with_options(fresh_options()))
        .expect("parse");
    let shown = store.describe();
    assert!(!shown.contains("s3cr3t"), "{shown}");

    let err = store
        .open_existing()
        .await
        .expect_err("nothing migrated yet");
    assert_eq!(err.kind(), OpenErrorKind::Open);
    let inbox_error = err.inbox_error().expect("the inbox's error");
    assert_eq!(inbox_error.kind(), ErrorKind::Corrupt, "{err}");
    assert_eq!(
        err.to_string(),
        format!("cannot open store {shown}: {inbox_error}")
    );
    assert!(!err.to_string().contains("s3cr3t"), "{err}");

    let version = store.migrate().await.expect("migrate").expect("a version");
    assert!(version >= 1, "{version}");
    assert_eq!(store.migrate().await.expect("again"), Some(version));

    let inbox = store.open_existing().await.expect("migrated");
    assert_eq!(inbox.backend(), Backend::Postgres);
    assert!(inbox.as_postgres().is_some());
    assert_eq!(inbox.counts().await.expect("counts").pending, 0);
    let inbox = store.open().await.expect("open");
    assert_eq!(inbox.counts().await.expect("counts").pending, 0);
}
