//! Pruning: whole day partitions dropped where every event in them may go,
//! bounded `DELETE`s elsewhere, then the deduplication keys whose time is
//! up. One pruner at a time per schema, across every process.
//!
//! One call, on the pruning connection:
//!
//! 1. Takes the session advisory lock `boxhook-prune:<schema>` with
//!    `pg_try_advisory_lock`; when another process holds it (or another
//!    call of this process holds the pruning connection), returns at once,
//!    having pruned nothing, with `more` (try again later). The lock is released at the end; a call
//!    dropped half way (cancelled) closes its connection, which releases it.
//! 2. Finishes what an interrupted call left: a partition whose `DETACH …
//!    CONCURRENTLY` was cut short is finalized, and a detached one not yet
//!    dropped is checked again and dropped, or attached again.
//! 3. Creates the partitions of the coming days (by the wall clock).
//! 4. Drops whole partitions, oldest first: those whose every event the
//!    retention lets go (no pending or claimed one, none younger than its
//!    state's retention), while their events fit in the batch, or the
//!    first one holding at least [`WHOLE_PARTITION_ROWS`] events (which no
//!    bounded `DELETE` should go through), which spends the batch. `DETACH PARTITION … CONCURRENTLY` takes
//!    no lock a store, claim or read waits for; once detached, the table is
//!    checked again (a `revive` may have raced the first check) and either
//!    dropped, its counts subtracted in the same transaction, or attached
//!    again. Its events' keys stay in `event_keys`.
//! 5. With what is left of the batch, deletes events the retention lets go,
//!    oldest first, in one transaction (`FOR UPDATE SKIP LOCKED`: rows a
//!    worker or a revive holds are left for the next call), marking their
//!    keys `gone` (or deleting those whose key retention is over) and
//!    subtracting their counts.
//! 6. Deletes at most `batch` keys whose `received_at + keys` has passed
//!    and whose event is gone: marked `gone`, or in a range of days no
//!    partition covers any more (their partition was dropped), checked one
//!    by one against `events` for a day whose partition came back.
//! 7. Says `more` when a prunable event is left (an index probe per state
//!    and kind), or the keys stopped at the batch.
//!
//! Each step is a transaction of its own, and no step holds a lock a store
//! waits for longer than one batch: the `DELETE`s lock rows no store
//! writes, a duplicate store of a pruned event waits at most for the batch
//! that marks its key, and counter rows are updated last.

use std::collections::BTreeMap;
use std::time::Duration;

use boxhook::inbox::backend::millis;
use boxhook::inbox::{InboxError, Pruned, Retention, MIN_KEEP_KEYS};
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Object};

use crate::connect::Shared;
use crate::inbox::{ADD_COUNTS, SHARD};
use crate::partitions::{self, quote_ident, Partition};
use crate::storage;

/// A partition with at least this many events is dropped whole even when
/// the batch is smaller: deleting them row by row is what partitions are
/// there to avoid. One with fewer events than this and more than the batch
/// is pruned by batches like any other (and dropped once empty).
pub(crate) const WHOLE_PARTITION_ROWS: i64 = 10_000;

/// How long a pruning statement waits for a lock before giving up (the
/// call fails; the next one starts over).
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// One kind of prunable event: V2 done, V2 dead, V1 done, V1 dead.
#[derive(Debug, Clone, Copy)]
struct Class {
    state: &'static str,
    kind: &'static str,
    /// Events received before this (ms) may go; `None`: kept forever.
    cutoff: Option<i64>,
}

impl Class {
    /// The events of this class received at or after this are kept
    /// (`i64::MIN`: all of them).
    fn kept_from(self) -> i64 {
        self.cutoff.unwrap_or(i64::MIN)
    }
}

fn classes(retention: &Retention, now: DateTime<Utc>) -> [Class; 4] {
    let cutoff = |age| Retention::cutoff(now, age).map(millis);
    let class = |state, kind, age| Class {
        state,
        kind,
        cutoff: cutoff(age),
    };
    [
        class("done", "v2", retention.done),
        class("dead", "v2", retention.dead),
        class("done", "v1", retention.v1),
        class("dead", "v1", retention.v1),
    ]
}

/// What [`Prune::prune`](boxhook::inbox::Prune::prune) does on PostgreSQL
/// (see the [module docs](self)).
pub(crate) async fn prune(
    shared: &Shared,
    retention: &Retention,
    now: DateTime<Utc>,
    batch: usize,
) -> Result<Pruned, InboxError> {
    // Skipped because another call prunes: nothing removed, and `more`,
    // since nothing says nothing is left.
    let skipped = Pruned {
        more: true,
        ..Pruned::default()
    };
    let Some(client) = shared.idle_maintenance().await? else {
        tracing::debug!("this process is pruning this inbox already; skipped");
        return Ok(skipped);
    };
    let Some(mut held) = Held::take(client).await? else {
        tracing::debug!("another process is pruning this inbox; skipped");
        return Ok(skipped);
    };
    let result = run(held.client(), retention, now, batch).await;
    held.release().await;
    result
}

/// The pruning connection while it holds the pruners' advisory lock.
struct Held {
    client: Option<Object>,
}

/// The advisory lock's key: one pruner per schema.
const LOCK_KEY: &str = "hashtext('boxhook-prune:' || current_schema())";

impl Held {
    /// Takes the lock, or `None` when another session holds it.
    async fn take(client: Object) -> Result<Option<Self>, InboxError> {
        let taken: bool = client
            .query_one(&format!("SELECT pg_try_advisory_lock({LOCK_KEY})"), &[])
            .await
            .map_err(storage)?
            .try_get(0)
            .map_err(storage)?;
        Ok(taken.then_some(Self {
            client: Some(client),
        }))
    }

    fn client(&mut self) -> &mut Object {
        self.client
            .as_mut()
            .unwrap_or_else(|| unreachable!("released only by consuming it"))
    }

    /// Releases the lock; when that fails, closes the connection, which
    /// releases it too.
    async fn release(mut self) {
        if let Some(client) = self.client.take() {
            let unlocked = client
                .batch_execute(&format!(
                    "RESET lock_timeout; SELECT pg_advisory_unlock({LOCK_KEY})"
                ))
                .await;
            if unlocked.is_err() {
                drop(Object::take(client));
            }
        }
    }
}

impl Drop for Held {
    /// A call dropped half way: close the connection (releasing the lock)
    /// rather than hand it back to the pool still holding it.
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}

async fn run(
    client: &mut Object,
    retention: &Retention,
    now: DateTime<Utc>,
    batch: usize,
) -> Result<Pruned, InboxError> {
    let mut pruned = Pruned::default();
    let budget = i64::try_from(batch).unwrap_or(i64::MAX);
    let classes = classes(retention, now);
    let keys_cutoff = millis(
        Retention::cutoff(now, Some(retention.keys.max(MIN_KEEP_KEYS)))
            .unwrap_or(DateTime::<Utc>::MIN_UTC),
    );
    client
        .batch_execute(&format!(
            "SET lock_timeout = '{}ms'",
            LOCK_TIMEOUT.as_millis()
        ))
        .await
        .map_err(storage)?;
    finish_interrupted(client, &classes, &mut pruned).await?;
    if let Err(error) = partitions::ensure_ahead(client, Utc::now()).await {
        tracing::warn!(%error, "cannot create the coming days' event partitions; retrying at the next prune");
    }
    let spent = |pruned: &Pruned| i64::try_from(pruned.events()).unwrap_or(i64::MAX);
    if budget > spent(&pruned) {
        drop_partitions(
            client,
            &classes,
            budget.saturating_sub(spent(&pruned)),
            &mut pruned,
        )
        .await?;
    }
    if budget > spent(&pruned) {
        let left = budget.saturating_sub(spent(&pruned));
        delete_events(client, &classes, left, keys_cutoff, &mut pruned).await?;
    }
    let keys_budget = budget.saturating_sub(i64::try_from(pruned.keys).unwrap_or(i64::MAX));
    let keys_more = delete_keys(client, keys_cutoff, keys_budget, &mut pruned).await?;
    pruned.more = keys_more || events_left(&*client, &classes).await?;
    Ok(pruned)
}

/// Whether any event is left that `classes` would prune.
async fn events_left(
    client: &impl GenericClient,
    classes: &[Class; 4],
) -> Result<bool, InboxError> {
    for class in classes {
        let Some(cutoff) = class.cutoff else {
            continue;
        };
        let left: bool = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM events \
                 WHERE state = $1 AND kind = $2 AND received_at < $3)",
                &[&class.state, &class.kind, &cutoff],
            )
            .await
            .map_err(storage)?
            .try_get(0)
            .map_err(storage)?;
        if left {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Finalizes detaches cut short, then drops (or attaches again) the
/// detached partitions a stopped pruner left.
async fn finish_interrupted(
    client: &mut Object,
    classes: &[Class; 4],
    pruned: &mut Pruned,
) -> Result<(), InboxError> {
    for partition in partitions::attached(&*client).await? {
        if partition.detach_pending {
            tracing::info!(
                partition = partition.table,
                "finishing the detach of an event partition that an earlier prune started"
            );
            client
                .batch_execute(&format!(
                    "ALTER TABLE events DETACH PARTITION {} FINALIZE",
                    quote_ident(&partition.table)
                ))
                .await
                .map_err(storage)?;
        }
    }
    for (table, day) in partitions::detached(&*client).await? {
        let Some((lo, hi)) = partitions::bounds(day) else {
            continue;
        };
        let partition = Partition {
            table,
            lo,
            hi,
            detach_pending: false,
        };
        drop_detached(client, &partition, classes, pruned).await?;
    }
    Ok(())
}

/// Detaches and drops, oldest first, the partitions that can go whole
/// within `budget` events, or the first one of at least
/// [`WHOLE_PARTITION_ROWS`] (which spends the budget).
async fn drop_partitions(
    client: &mut Object,
    classes: &[Class; 4],
    budget: i64,
    pruned: &mut Pruned,
) -> Result<(), InboxError> {
    let Some(latest) = classes.iter().filter_map(|c| c.cutoff).max() else {
        return Ok(());
    };
    let mut left = budget;
    for partition in partitions::attached(&*client).await? {
        if partition.detach_pending || partition.hi > latest {
            continue;
        }
        let table = quote_ident(&partition.table);
        if !all_prunable(&*client, &table, classes).await? {
            continue;
        }
        let rows: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT $1) s"),
                &[&WHOLE_PARTITION_ROWS],
            )
            .await
            .map_err(storage)?
            .try_get(0)
            .map_err(storage)?;
        if rows > left && rows < WHOLE_PARTITION_ROWS {
            continue;
        }
        client
            .batch_execute(&format!(
                "ALTER TABLE events DETACH PARTITION {table} CONCURRENTLY"
            ))
            .await
            .map_err(storage)?;
        let before = pruned.events();
        if drop_detached(client, &partition, classes, pruned).await? {
            let dropped = pruned.events().saturating_sub(before);
            left = left.saturating_sub(i64::try_from(dropped).unwrap_or(i64::MAX));
            if left <= 0 {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Whether no event in `table` must stay: none pending or claimed, none of
/// a state and kind kept at least as long as it has been there.
async fn all_prunable(
    client: &impl GenericClient,
    table: &str,
    classes: &[Class; 4],
) -> Result<bool, InboxError> {
    use std::fmt::Write as _;
    let mut sql =
        format!("SELECT NOT EXISTS (SELECT 1 FROM {table} WHERE state IN ('pending', 'claimed'))");
    for (n, class) in (1..).zip(classes) {
        // Writing to a String cannot fail.
        let _ = write!(
            sql,
            " AND NOT EXISTS (SELECT 1 FROM {table} WHERE state = '{}' AND kind = '{}' \
             AND received_at >= ${n})",
            class.state, class.kind
        );
    }
    client
        .query_one(
            &sql,
            &[
                &classes[0].kept_from(),
                &classes[1].kept_from(),
                &classes[2].kept_from(),
                &classes[3].kept_from(),
            ],
        )
        .await
        .map_err(storage)?
        .try_get(0)
        .map_err(storage)
}

/// Drops a detached partition, subtracting its events from the counts in
/// the same transaction, when every event in it may go; otherwise attaches
/// it again (or, when a new partition took its day meanwhile, moves its
/// events there). Whether it was dropped.
async fn drop_detached(
    client: &mut Object,
    partition: &Partition,
    classes: &[Class; 4],
    pruned: &mut Pruned,
) -> Result<bool, InboxError> {
    let table = quote_ident(&partition.table);
    if !all_prunable(&*client, &table, classes).await? {
        tracing::info!(
            partition = partition.table,
            "an event partition being dropped holds events to keep; attaching it again"
        );
        reattach(client, partition).await?;
        return Ok(false);
    }
    let tx = client.transaction().await.map_err(storage)?;
    let rows = tx
        .query(
            &format!(
                "SELECT webhook_id, \
                 count(*) FILTER (WHERE state = 'done' AND kind = 'v2'), \
                 count(*) FILTER (WHERE state = 'dead' AND kind = 'v2'), \
                 count(*) FILTER (WHERE kind = 'v1'), \
                 count(*) FILTER (WHERE state = 'done'), \
                 count(*) FILTER (WHERE state = 'dead') \
                 FROM {table} GROUP BY webhook_id ORDER BY webhook_id"
            ),
            &[],
        )
        .await
        .map_err(storage)?;
    let mut gone = Gone::default();
    let mut events = 0_u64;
    for row in &rows {
        let count = |i| row.try_get::<_, i64>(i).map_err(storage);
        let (done, dead) = (count(4)?, count(5)?);
        pruned.done = pruned.done.saturating_add(unsigned(count(1)?));
        pruned.dead = pruned.dead.saturating_add(unsigned(count(2)?));
        pruned.v1 = pruned.v1.saturating_add(unsigned(count(3)?));
        events = events.saturating_add(unsigned(done.saturating_add(dead)));
        gone.add(row.try_get(0).map_err(storage)?, done, dead);
    }
    gone.subtract(&tx).await?;
    tx.batch_execute(&format!("DROP TABLE {table}"))
        .await
        .map_err(storage)?;
    tx.commit().await.map_err(storage)?;
    tracing::info!(
        partition = partition.table,
        events,
        "dropped a pruned event partition"
    );
    Ok(true)
}

/// Attaches a detached partition again, or moves its events into the
/// partition that took its day meanwhile.
async fn reattach(client: &mut Object, partition: &Partition) -> Result<(), InboxError> {
    let table = quote_ident(&partition.table);
    let covered = partitions::attached(&*client)
        .await?
        .iter()
        .any(|p| p.lo < partition.hi && partition.lo < p.hi);
    let sql = if covered {
        // Counted already, keyed already: the rows only change tables.
        format!("INSERT INTO events SELECT * FROM {table}; DROP TABLE {table}")
    } else {
        format!(
            "ALTER TABLE events ATTACH PARTITION {table} FOR VALUES FROM ({}) TO ({})",
            partition.lo, partition.hi
        )
    };
    let tx = client.transaction().await.map_err(storage)?;
    tx.batch_execute(&sql).await.map_err(storage)?;
    tx.commit().await.map_err(storage)
}

/// Deletes at most `budget` prunable events, oldest first within each
/// class, in one transaction.
async fn delete_events(
    client: &mut Object,
    classes: &[Class; 4],
    budget: i64,
    keys_cutoff: i64,
    pruned: &mut Pruned,
) -> Result<(), InboxError> {
    let tx = client.transaction().await.map_err(storage)?;
    let delete = tx
        .prepare_cached(
            "WITH victims AS ( \
               SELECT event_id, webhook_id, received_at FROM events \
               WHERE state = $1 AND kind = $2 AND received_at < $3 \
               ORDER BY received_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
             DELETE FROM events e USING victims v \
             WHERE e.event_id = v.event_id AND e.webhook_id = v.webhook_id \
             AND e.received_at = v.received_at AND e.state = $1 \
             RETURNING e.webhook_id, e.event_id",
        )
        .await
        .map_err(storage)?;
    let mut left = budget;
    let mut keys = (Vec::<String>::new(), Vec::<String>::new());
    let mut gone = Gone::default();
    for class in classes {
        let Some(cutoff) = class.cutoff else {
            continue;
        };
        if left == 0 {
            break;
        }
        let rows = tx
            .query(&delete, &[&class.state, &class.kind, &cutoff, &left])
            .await
            .map_err(storage)?;
        let n = i64::try_from(rows.len()).unwrap_or(i64::MAX);
        left = left.saturating_sub(n);
        let n = unsigned(n);
        match (class.kind, class.state) {
            ("v1", _) => pruned.v1 = pruned.v1.saturating_add(n),
            (_, "done") => pruned.done = pruned.done.saturating_add(n),
            _ => pruned.dead = pruned.dead.saturating_add(n),
        }
        for row in &rows {
            let webhook: String = row.try_get(0).map_err(storage)?;
            keys.0.push(webhook.clone());
            keys.1.push(row.try_get(1).map_err(storage)?);
            let done = class.state == "done";
            gone.add(webhook, i64::from(done), i64::from(!done));
        }
    }
    if !keys.0.is_empty() {
        // The keys' row locks first, in `(webhook_id, event_id)` order as a
        // batch of stores takes them: an UPDATE or DELETE joined to an
        // array locks in whatever order its plan reads, and could wait for
        // a batch that waits for it.
        tx.execute(
            "SELECT 1 FROM event_keys k JOIN unnest($1::text[], $2::text[]) d(w, e) \
             ON k.webhook_id = d.w AND k.event_id = d.e \
             ORDER BY k.webhook_id, k.event_id FOR UPDATE OF k",
            &[&keys.0, &keys.1],
        )
        .await
        .map_err(storage)?;
        // Keys still within their retention stay, marked; the others go.
        tx.execute(
            "UPDATE event_keys k SET gone = true FROM unnest($1::text[], $2::text[]) d(w, e) \
             WHERE k.webhook_id = d.w AND k.event_id = d.e AND k.received_at >= $3",
            &[&keys.0, &keys.1, &keys_cutoff],
        )
        .await
        .map_err(storage)?;
        let removed = tx
            .execute(
                "DELETE FROM event_keys k USING unnest($1::text[], $2::text[]) d(w, e) \
                 WHERE k.webhook_id = d.w AND k.event_id = d.e AND k.received_at < $3",
                &[&keys.0, &keys.1, &keys_cutoff],
            )
            .await
            .map_err(storage)?;
        pruned.keys = pruned.keys.saturating_add(removed);
        gone.subtract(&tx).await?;
    }
    tx.commit().await.map_err(storage)
}

/// Deletes at most `budget` keys whose retention is over and whose event
/// is gone; whether it stopped at the budget.
async fn delete_keys(
    client: &mut Object,
    keys_cutoff: i64,
    budget: i64,
    pruned: &mut Pruned,
) -> Result<bool, InboxError> {
    if budget <= 0 {
        return Ok(true);
    }
    let mut left = budget;
    let marked = client
        .execute(
            "DELETE FROM event_keys WHERE (webhook_id, event_id) IN ( \
               SELECT webhook_id, event_id FROM event_keys \
               WHERE gone AND received_at < $1 \
               ORDER BY received_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
            &[&keys_cutoff, &left],
        )
        .await
        .map_err(storage)?;
    pruned.keys = pruned.keys.saturating_add(marked);
    left = left.saturating_sub(i64::try_from(marked).unwrap_or(i64::MAX));
    // The days no partition covers, before the keys' cutoff: their events
    // went with a dropped partition.
    let covered = partitions::attached(&*client).await?;
    let mut from = i64::MIN;
    let mut gaps = Vec::new();
    for partition in covered.iter().chain(std::iter::once(&Partition {
        table: String::new(),
        lo: i64::MAX,
        hi: i64::MAX,
        detach_pending: false,
    })) {
        let to = partition.lo.min(keys_cutoff);
        if from < to {
            gaps.push((from, to));
        }
        from = from.max(partition.hi);
        if from >= keys_cutoff {
            break;
        }
    }
    for (from, to) in gaps {
        if left == 0 {
            break;
        }
        let removed = client
            .execute(
                "DELETE FROM event_keys WHERE (webhook_id, event_id) IN ( \
                   SELECT webhook_id, event_id FROM event_keys k \
                   WHERE received_at >= $1 AND received_at < $2 \
                   AND NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = k.event_id \
                                   AND e.webhook_id = k.webhook_id \
                                   AND e.received_at = k.received_at) \
                   ORDER BY received_at LIMIT $3 FOR UPDATE SKIP LOCKED)",
                &[&from, &to, &left],
            )
            .await
            .map_err(storage)?;
        pruned.keys = pruned.keys.saturating_add(removed);
        left = left.saturating_sub(i64::try_from(removed).unwrap_or(i64::MAX));
    }
    Ok(left == 0)
}

/// Done and dead events removed, per webhook, to subtract from the counts.
#[derive(Default)]
struct Gone(BTreeMap<String, (i64, i64)>);

impl Gone {
    fn add(&mut self, webhook: String, done: i64, dead: i64) {
        let counts = self.0.entry(webhook).or_default();
        counts.0 = counts.0.saturating_add(done);
        counts.1 = counts.1.saturating_add(dead);
    }

    /// Subtracts the counts, one counter row per webhook, in webhook order
    /// (as every statement that updates several does).
    async fn subtract(&self, tx: &impl GenericClient) -> Result<(), InboxError> {
        if self.0.is_empty() {
            return Ok(());
        }
        let webhooks: Vec<&str> = self.0.keys().map(String::as_str).collect();
        let done: Vec<i64> = self.0.values().map(|c| c.0).collect();
        let dead: Vec<i64> = self.0.values().map(|c| c.1).collect();
        tx.execute(
            &format!(
                "INSERT INTO event_counts AS c (webhook_id, shard, done, dead) \
                 SELECT w, {SHARD}, -done, -dead \
                 FROM unnest($1::text[], $2::bigint[], $3::bigint[]) d(w, done, dead) \
                 ORDER BY w \
                 ON CONFLICT (webhook_id, shard) DO UPDATE SET {ADD_COUNTS}"
            ),
            &[&webhooks, &done, &dead],
        )
        .await
        .map_err(storage)?;
        Ok(())
    }
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
