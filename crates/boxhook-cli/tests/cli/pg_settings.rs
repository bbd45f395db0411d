//! `--pool-size` and `--schema` on a PostgreSQL store: `serve` under
//! concurrent deliveries opens no more connections than it is given, its
//! events land in the named schema and nowhere else, and the flags are
//! refused on a SQLite store. Skipped with a message when PostgreSQL is not
//! installed, unless `BOXHOOK_POSTGRES=required`.

#![allow(
    clippy::doc_markdown,
    reason = "PostgreSQL is a product name, not code"
)]
#![cfg(unix)]

use crate::common;

use std::io::BufReader;
use std::process::Command;
use std::time::Duration;

use boxhook_testkit::postgres::Cluster;
use common::{boxhook, event, exchange, run, signed_request, Server};

const LIMIT: Duration = Duration::from_secs(60);
/// Deliveries in flight at once, well above the pool's size.
const CONNECTIONS: usize = 8;
const PER_CONNECTION: usize = 10;

/// Runs one query through the cluster's own `psql`; returns its output.
fn psql(cluster: &Cluster, query: &str) -> String {
    let out = Command::new(cluster.bindir().join("psql"))
        .args(["-X", "-A", "-t", "-d", &cluster.url(), "-c", query])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// Connections the receiver holds (it names itself `boxhook`).
fn receiver_connections(cluster: &Cluster) -> usize {
    psql(
        cluster,
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'boxhook'",
    )
    .parse()
    .expect("a count")
}

fn inbox_list(url: &str, extra: &[&str]) -> std::process::Output {
    run(
        boxhook()
            .args(["inbox", "list", "--all", "--json", "--store", url])
            .args(extra),
        LIMIT,
    )
}

#[test]
fn serve_keeps_to_its_pool_size_and_its_schema() {
    let Some(cluster) = Cluster::start("cli-settings") else {
        return;
    };
    let url = cluster.url();
    let server = Server::start_on(
        &[
            "--store",
            url.as_str(),
            "--pool-size",
            "2",
            "--schema",
            "tenant_a",
        ],
        &[],
        &[],
    );

    // Eight connections deliver at once while a lock on the events table
    // holds every store back, so each waiting delivery wants a connection
    // of its own; the most the receiver holds is sampled meanwhile.
    let most = std::thread::scope(|scope| {
        let locker = scope.spawn(|| {
            psql(
                &cluster,
                "BEGIN; LOCK TABLE tenant_a.events IN EXCLUSIVE MODE; \
                 SELECT pg_sleep(1.0); COMMIT",
            )
        });
        while psql(
            &cluster,
            "SELECT count(*) FROM pg_locks WHERE relation = 'tenant_a.events'::regclass \
             AND mode = 'ExclusiveLock' AND granted",
        ) != "1"
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        let senders: Vec<_> = (0..CONNECTIONS)
            .map(|c| {
                let server = &server;
                scope.spawn(move || {
                    let mut reader = BufReader::new(server.connect());
                    for n in 0..PER_CONNECTION {
                        let request = signed_request(&event(&format!("e-{c}-{n}")));
                        let head = exchange(&mut reader, &request).expect("an answer");
                        assert!(head.starts_with("http/1.1 200"), "{head}");
                    }
                })
            })
            .collect();
        let mut most = 0;
        while !senders
            .iter()
            .all(std::thread::ScopedJoinHandle::is_finished)
        {
            most = most.max(receiver_connections(&cluster));
        }
        for sender in senders {
            sender.join().expect("sender");
        }
        locker.join().expect("locker");
        most.max(receiver_connections(&cluster))
    });
    assert!(
        (1..=2).contains(&most),
        "{most} connections for a pool of 2"
    );

    // The events are in tenant_a, and the default schema has no boxhook tables.
    let out = inbox_list(&url, &["--schema", "tenant_a"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(
        listed.lines().count(),
        CONNECTIONS * PER_CONNECTION,
        "{listed}"
    );
    assert_eq!(
        psql(
            &cluster,
            "SELECT count(*) FROM tenant_a.events; \
             SELECT to_regclass('public.events') IS NULL"
        ),
        format!("{}\nt", CONNECTIONS * PER_CONNECTION)
    );
    let out = inbox_list(&url, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());

    // A schema name that is not a plain identifier is refused before use.
    let out = inbox_list(&url, &["--schema", "tenant_a -c fsync=off"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "schema name \"tenant_a -c fsync=off\" is not a plain identifier: use lower-case \
             letters, digits and underscores"
        ),
        "{stderr}"
    );
    drop(server);
}

#[test]
fn postgres_settings_on_a_sqlite_store_are_a_usage_error() {
    let dir = common::temp_dir("settings-sqlite");
    let inbox = dir.join("inbox.sqlite");
    for (flag, value) in [("--pool-size", "4"), ("--schema", "tenant_a")] {
        let out = run(
            boxhook()
                .args(["inbox", "list", "--inbox"])
                .arg(&inbox)
                .args([flag, value]),
            LIMIT,
        );
        assert_eq!(out.status.code(), Some(2), "{flag}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with(&format!(
                "boxhook: {flag} applies to a PostgreSQL store (--store postgres://…), not to \
                 the SQLite file {}",
                inbox.display()
            )),
            "{stderr}"
        );
    }
    let out = run(
        boxhook()
            .args(["inbox", "list", "--pool-size", "0", "--inbox"])
            .arg(&inbox),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2));
}
