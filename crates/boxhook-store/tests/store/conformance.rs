//! `AnyInbox`, opened from a store's text, keeps every rule of the inbox
//! traits (`boxhook_testkit::conformance::full_inbox`) on each backend.

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn any_inbox_on_sqlite_files_conforms() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use boxhook_store::{Backend, Store};
    use boxhook_testkit::fs::TempDir;

    let dir = TempDir::new("store-conformance");
    let n = AtomicUsize::new(0);
    boxhook_testkit::conformance::full_inbox(|| {
        let file = dir.file(&format!(
            "inbox-{}.sqlite",
            n.fetch_add(1, Ordering::Relaxed)
        ));
        let store = Store::parse(&format!("sqlite:{}", file.display())).expect("parse");
        let inbox = crate::block(store.open()).expect("open");
        assert_eq!(inbox.backend(), Backend::Sqlite);
        inbox
    })
    .await;
}

#[cfg(all(feature = "postgres", unix))]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn any_inbox_on_postgres_conforms() {
    use boxhook_store::{Backend, Store};
    use boxhook_testkit::postgres::Cluster;

    let Some(cluster) = Cluster::start("store-conformance") else {
        return;
    };
    let url = cluster.url();
    boxhook_testkit::conformance::full_inbox(|| {
        let store = Store::parse(&url)
            .and_then(|store| store.with_options(crate::postgres::fresh_options()))
            .expect("parse");
        let inbox = crate::block(store.open()).expect("open");
        assert_eq!(inbox.backend(), Backend::Postgres);
        inbox
    })
    .await;
}
