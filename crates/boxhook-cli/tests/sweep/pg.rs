//! The PostgreSQL half's receiver under test and its checks: a receiver
//! storing through the fault proxy (`boxhook_testkit::pgproxy`) into a
//! schema of its own on a throwaway cluster, and the invariants read on a
//! clean direct connection.

use std::process::Command;
use std::time::{Duration, Instant};

use boxhook::inbox::RecordKind;
use boxhook_testkit::pgproxy::{Connection, PgProxy};
use boxhook_testkit::postgres::Cluster;

use crate::check::{compare, Row, Sent};
use crate::process::{Process, V1_SECRET};
use crate::wire::{Answer, Item};

/// The command for a store URL, a schema and a pool size.
pub type Launch = Box<dyn Fn(&str, &str, u16) -> Command + Send + Sync>;

/// What to run against a store URL: a name for reports, the command for a
/// URL, a schema and a pool size, and its V1 path and secret.
pub struct PgTarget {
    pub name: &'static str,
    pub command: Launch,
    pub v1: Option<(&'static str, &'static str)>,
    /// Whether it runs a pruner (`serve` does, 5 s after it starts).
    pub prunes: bool,
}

impl PgTarget {
    /// `boxhook serve --store URL --schema S --pool-size N` with V1
    /// callbacks on `/v1`.
    pub fn serve() -> Self {
        Self {
            name: "boxhook serve --store postgres://…",
            command: Box::new(|url, schema, pool| {
                let mut command = Command::new(env!("CARGO_BIN_EXE_boxhook"));
                command
                    .env_remove("RUST_LOG")
                    .env("BOX_PRIMARY_KEY", boxhook_testkit::SAMPLE_PRIMARY_KEY)
                    .env("BOX_SECONDARY_KEY", boxhook_testkit::SAMPLE_SECONDARY_KEY)
                    .env("SWEEP_V1_SECRET", V1_SECRET)
                    .args(["serve", "--listen", "127.0.0.1:0"])
                    .args(["--v1-path", "/v1", "--v1-secret-env", "SWEEP_V1_SECRET"])
                    .args(["--store", url, "--schema", schema])
                    .args(["--pool-size", &pool.to_string()]);
                command
            }),
            v1: Some(("/v1", V1_SECRET)),
            prunes: true,
        }
    }

    /// This test binary as the broken PostgreSQL receiver (`pgdouble.rs`).
    pub fn broken_double() -> Self {
        Self {
            name: "broken PostgreSQL double (2xx before COMMIT)",
            command: Box::new(|url, schema, pool| {
                let exe = std::env::current_exe().expect("the test binary's path");
                let mut command = Command::new(exe);
                command
                    .arg(crate::pgdouble::ARG)
                    .args(["--store", url, "--schema", schema])
                    .args(["--pool-size", &pool.to_string()]);
                command
            }),
            v1: None,
            prunes: false,
        }
    }
}

/// A receiver storing through its own proxy into its own schema.
pub struct Bench {
    pub proxy: PgProxy,
    pub process: Process,
    pub schema: String,
    /// The direct URL, for the checks.
    pub direct: String,
    pub v1: Option<(&'static str, &'static str)>,
    pub sent: Sent,
    /// Whether the target runs a pruner.
    prunes: bool,
}

impl Bench {
    /// Starts `target` on `cluster` through a new proxy, in `schema`, with
    /// `pool` connections.
    pub fn start(
        cluster: &Cluster,
        target: &PgTarget,
        schema: &str,
        pool: u16,
    ) -> Result<Self, String> {
        let proxy = PgProxy::start(cluster.port()).map_err(|e| format!("proxy: {e}"))?;
        let url = format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
            proxy.port()
        );
        let process = Process::start_command((target.command)(&url, schema, pool))?;
        Ok(Self {
            proxy,
            process,
            schema: schema.to_owned(),
            direct: format!("{}?sslmode=disable", cluster.tcp_url()),
            v1: target.v1,
            sent: Sent::default(),
            prunes: target.prunes,
        })
    }

    /// Waits for the pruner's first round (5 s after `serve` starts), which
    /// opens a connection of its own and runs statements on it, so that it
    /// is not mistaken for the store's connection; a target that does not
    /// prune (the double) waits for nothing.
    pub fn after_first_prune(&self) -> Result<(), String> {
        if !self.prunes {
            return Ok(());
        }
        let began = wait_for(Duration::from_secs(15), || {
            self.process.stderr().contains("pruning every")
        });
        std::thread::sleep(Duration::from_millis(700));
        self.quiet();
        if began {
            Ok(())
        } else {
            Err("the pruner's first round did not start within 15 s".to_owned())
        }
    }

    /// Sends `item` and notes its answer.
    pub fn deliver(&mut self, item: &Item) -> Answer {
        let answer = item.send(self.process.port, self.v1);
        self.sent.note(item, answer.acknowledged());
        answer
    }

    /// Waits until no message has gone through the proxy for 150 ms (at
    /// most 3 s): a new event's `NOTIFY`, sent after its answer, is done.
    pub fn quiet(&self) {
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut last = self.proxy.connections();
        let mut since = Instant::now();
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(30));
            let now = self.proxy.connections();
            if now != last {
                last = now;
                since = Instant::now();
            } else if since.elapsed() >= Duration::from_millis(150) {
                return;
            }
        }
    }

    /// Sends `item`, waits for quiet, and says which connection carried
    /// its store (the one whose messages to the server grew the most
    /// meanwhile), with the messages' counts meanwhile.
    pub fn deliver_traced(&mut self, item: &Item) -> (Answer, Option<Connection>) {
        let before = self.proxy.connections();
        let answer = self.deliver(item);
        self.quiet();
        let after = self.proxy.connections();
        let moved = after
            .into_iter()
            .map(|c| {
                let was = before
                    .iter()
                    .find(|b| b.id == c.id)
                    .map_or((0, 0), |b| (b.to_server, b.to_client));
                Connection {
                    to_server: c.to_server - was.0,
                    to_client: c.to_client - was.1,
                    ..c
                }
            })
            .filter(|c| c.to_server > 0)
            .max_by_key(|c| c.to_server);
        (answer, moved)
    }

    /// The invariants now: problems, and acknowledged deliveries lost.
    pub fn check(&self) -> (Vec<String>, usize) {
        check(&self.direct, &self.schema, &self.sent)
    }

    /// The delivery count of V2 event `id` (0: not stored).
    pub fn deliveries(&self, id: &str) -> Result<i64, String> {
        let query = format!(
            "SELECT coalesce((SELECT deliveries FROM {}.event_keys WHERE webhook_id = '4133' \
             AND event_id = $1), 0)",
            self.schema
        );
        let id = id.to_owned();
        block_on(&self.direct, move |client| {
            Box::pin(async move {
                let row = client
                    .query_one(&query, &[&id])
                    .await
                    .map_err(|e| pg_error(&e))?;
                Ok(row.get::<_, i64>(0))
            })
        })
    }
}

/// A PostgreSQL error with the server's message and SQLSTATE.
fn pg_error(error: &tokio_postgres::Error) -> String {
    error.as_db_error().map_or_else(
        || error.to_string(),
        |db| {
            format!(
                "{}: {} (SQLSTATE {})",
                db.severity(),
                db.message(),
                db.code().code()
            )
        },
    )
}

/// Runs `job` on a fresh direct connection to `url`.
fn block_on<T>(
    url: &str,
    job: impl for<'a> FnOnce(
        &'a tokio_postgres::Client,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<T, String>> + 'a>,
    >,
) -> Result<T, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let (client, connection) = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_postgres::connect(url, tokio_postgres::NoTls),
        )
        .await
        .map_err(|_| "no connection to the cluster within 10 s".to_owned())?
        .map_err(|e| format!("cannot connect to the cluster: {e}"))?;
        let driver = tokio::spawn(connection);
        let result = job(&client).await;
        drop(client);
        let _ = driver.await;
        result
    })
}

/// The invariants of the inbox in `schema`, read on a direct connection:
/// every delivery answered 2xx stored once, byte for byte, and counted;
/// no two rows of one event; every event with its key and every key (not
/// pruned) with its event; the counters' sums equal to what they count.
pub fn check(url: &str, schema: &str, sent: &Sent) -> (Vec<String>, usize) {
    let schema = schema.to_owned();
    let read = block_on(url, move |client| {
        Box::pin(async move {
            let rows = client
                .query(
                    &format!(
                        "SELECT e.event_id, e.source_id, e.kind, e.body, coalesce(k.deliveries, 0) \
                         FROM {schema}.events e LEFT JOIN {schema}.event_keys k \
                         ON k.webhook_id = e.webhook_id AND k.event_id = e.event_id"
                    ),
                    &[],
                )
                .await
                .map_err(|e| pg_error(&e))?;
            let mut stored = Vec::with_capacity(rows.len());
            for row in rows {
                let kind: String = row.get(2);
                let deliveries: i64 = row.get(4);
                stored.push(Row {
                    event_id: row.get(0),
                    source_id: row.get(1),
                    kind: if kind == "v1" {
                        RecordKind::V1
                    } else {
                        RecordKind::V2
                    },
                    deliveries: u64::try_from(deliveries).unwrap_or(0),
                    body: row.get(3),
                });
            }
            let mut broken = Vec::new();
            let rules = [
                (
                    "events with two rows of one (webhook_id, event_id)",
                    format!(
                        "SELECT count(*) FROM (SELECT 1 FROM {schema}.events \
                         GROUP BY webhook_id, event_id HAVING count(*) > 1) AS d"
                    ),
                ),
                (
                    "events without their key in event_keys",
                    format!(
                        "SELECT count(*) FROM {schema}.events e WHERE NOT EXISTS (SELECT 1 FROM \
                         {schema}.event_keys k WHERE k.webhook_id = e.webhook_id \
                         AND k.event_id = e.event_id)"
                    ),
                ),
                (
                    "keys (not pruned) without their event: a retry would be a duplicate of nothing",
                    format!(
                        "SELECT count(*) FROM {schema}.event_keys k WHERE NOT k.gone AND NOT \
                         EXISTS (SELECT 1 FROM {schema}.events e WHERE e.webhook_id = k.webhook_id \
                         AND e.event_id = k.event_id)"
                    ),
                ),
                (
                    "webhooks whose counted deliveries differ from their keys' deliveries",
                    format!(
                        "SELECT count(*) FROM (SELECT webhook_id, sum(deliveries) AS n FROM \
                         {schema}.event_counts GROUP BY webhook_id) c FULL JOIN (SELECT \
                         webhook_id, sum(deliveries) AS n FROM {schema}.event_keys GROUP BY \
                         webhook_id) k USING (webhook_id) \
                         WHERE coalesce(c.n, 0) <> coalesce(k.n, 0)"
                    ),
                ),
                (
                    "webhooks whose counted pending events differ from their pending events",
                    format!(
                        "SELECT count(*) FROM (SELECT webhook_id, sum(pending) AS n FROM \
                         {schema}.event_counts GROUP BY webhook_id) c FULL JOIN (SELECT \
                         webhook_id, count(*) AS n FROM {schema}.events WHERE state = 'pending' \
                         GROUP BY webhook_id) e USING (webhook_id) \
                         WHERE coalesce(c.n, 0) <> coalesce(e.n, 0)"
                    ),
                ),
            ];
            for (what, query) in rules {
                let n: i64 = client
                    .query_one(&query, &[])
                    .await
                    .map_err(|e| format!("{what}: {}", pg_error(&e)))?
                    .get(0);
                if n != 0 {
                    broken.push(format!("CONSTRAINT: {n} {what}"));
                }
            }
            Ok((stored, broken))
        })
    });
    match read {
        Ok((stored, broken)) => {
            let (mut problems, lost) = compare(&stored, sent);
            problems.extend(broken);
            (problems, lost)
        }
        Err(e) => (
            vec![format!("cannot read the inbox on a direct connection: {e}")],
            sent.acknowledged(),
        ),
    }
}

/// Waits up to `limit` for `done`.
pub fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}
