//! Group commit of stores: concurrent [`store`] calls share one statement,
//! so one round trip, one commit and one WAL flush carry many deliveries.
//!
//! A store that finds fewer than [`FLIGHTS`] statements in flight goes at
//! once, alone (no added latency without concurrency). Otherwise it joins
//! the queue, and the first flight to finish takes the whole queue (at most
//! [`MAX_BATCH`] records, [`MAX_BATCH_BYTES`] of bodies) as its next
//! statement: the batch forms while the statements before it run, never
//! by waiting for more stores.
//!
//! The rules, as in the SQLite inbox's group commit:
//!
//! - each caller is answered only after the COMMIT of the statement that
//!   holds its record;
//! - a batch whose statement fails is stored again one record at a time,
//!   each in a statement of its own ([`STORE`]), so one record that cannot
//!   be stored fails only its own caller, and a record whose day has no
//!   partition yet creates it;
//! - deduplication stays exact inside a batch: records of one event are
//!   one row of the statement, whose deliveries count all of them (`ON
//!   CONFLICT DO UPDATE` may not touch a row twice in one statement); the
//!   first of them is [`Stored::New`] when the event is new, the others
//!   duplicates numbered in arrival order.
//!
//! A record waits in the queue at most [`POOL_WAIT`], as long as a store
//! waits for a connection, then fails with a message that says so.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use boxhook::inbox::backend::{millis, stored};
use boxhook::inbox::{ErrorKind, InboxError, NewRecord, Stored};
use tokio::sync::oneshot;

use crate::connect::{Shared, Which, POOL_WAIT};
use crate::{partitions, storage};

/// Most records in one statement.
pub(crate) const MAX_BATCH: usize = 64;

/// Most body bytes in one statement: past this, the batch is closed (its
/// last record may take it over).
pub(crate) const MAX_BATCH_BYTES: usize = 4 << 20;

/// Most store statements in flight at once per inbox (each on a connection
/// of its own). The stores that arrive while they run form the next batch.
/// Measured with one receiver on a shared 2-core machine (docs/PERFORMANCE.md,
/// the PostgreSQL section): at a load average of 4 to 6, 2 stored more than
/// 4 (bigger batches cost PostgreSQL less CPU per delivery); at 11 to 18, 4
/// stored more. 2 also leaves the rest of the pool to claims and settles.
pub(crate) const FLIGHTS: usize = 2;

/// [`SHARD`](crate::inbox::SHARD), for `concat!`.
macro_rules! shard {
    () => {
        "(pg_backend_pid() % 16)::smallint"
    };
}
pub(crate) use shard;

/// The store of one record: one statement, so one round trip and one
/// commit.
///
/// 1. `keyed` inserts the event's key, or counts one more delivery of a
///    key stored before (its row lock makes concurrent stores of one event
///    wait for each other: one inserts, the others count). A pruned event's
///    key is still there: its retry is a duplicate.
/// 2. `added` inserts the event itself only when its key is new.
/// 3. The counter shard gains a pending event (when new) and a delivery,
///    last, so no statement holds a counter row while waiting for another
///    lock. The statement is an `INSERT`, so a read-only database says
///    `cannot execute INSERT`.
pub(crate) const STORE: &str = concat!(
    "WITH keyed AS ( \
       INSERT INTO event_keys (webhook_id, event_id, received_at) VALUES ($1, $2, $7) \
       ON CONFLICT (webhook_id, event_id) DO UPDATE SET deliveries = event_keys.deliveries + 1 \
       RETURNING deliveries), \
     added AS ( \
       INSERT INTO events (webhook_id, event_id, trigger_name, source_type, source_id, \
                           delivery_id, received_at, body, kind) \
       SELECT $1, $2, $3::text, $4::text, $5::text, $6::text, $7, $8::bytea, $9::text \
       FROM keyed WHERE deliveries = 1 \
       RETURNING 1) \
     INSERT INTO event_counts AS c (webhook_id, shard, pending, deliveries) \
     SELECT $1, ",
    shard!(),
    ", (SELECT count(*) FROM added), 1 \
     ON CONFLICT (webhook_id, shard) DO UPDATE \
     SET pending = c.pending + EXCLUDED.pending, deliveries = c.deliveries + 1 \
     RETURNING (SELECT deliveries FROM keyed)"
);

/// The store of a batch: [`STORE`]'s three steps over arrays, one element
/// per distinct event (`$10` the number of the batch's records of it), in
/// one statement.
///
/// - `keyed` takes the keys in `(webhook_id, event_id)` order, so two
///   batches that share events lock their keys in the same order and never
///   wait for each other in a cycle; a new key starts at `n` deliveries, a
///   known one gains `n`, so a key is new exactly when its count is `n`.
/// - `added` inserts the new events in arrival order (their `seq` order).
/// - `counted` adds, per webhook in webhook order, the new events and the
///   deliveries to the connection's counter shard, last.
///
/// It returns each event's delivery count after the statement, in the
/// arrays' order.
pub(crate) const STORE_BATCH: &str = concat!(
    "WITH input AS ( \
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                            $6::text[], $7::bigint[], $8::bytea[], $9::text[], $10::bigint[]) \
       WITH ORDINALITY AS i (webhook_id, event_id, trigger_name, source_type, source_id, \
                             delivery_id, received_at, body, kind, n, ord)), \
     keyed AS ( \
       INSERT INTO event_keys AS k (webhook_id, event_id, received_at, deliveries) \
       SELECT webhook_id, event_id, received_at, n FROM input ORDER BY webhook_id, event_id \
       ON CONFLICT (webhook_id, event_id) DO UPDATE SET deliveries = k.deliveries + EXCLUDED.deliveries \
       RETURNING webhook_id, event_id, deliveries), \
     added AS ( \
       INSERT INTO events (webhook_id, event_id, trigger_name, source_type, source_id, \
                           delivery_id, received_at, body, kind) \
       SELECT i.webhook_id, i.event_id, i.trigger_name, i.source_type, i.source_id, \
              i.delivery_id, i.received_at, i.body, i.kind \
       FROM input i JOIN keyed k ON k.webhook_id = i.webhook_id AND k.event_id = i.event_id \
       WHERE k.deliveries = i.n ORDER BY i.ord \
       RETURNING webhook_id), \
     counted AS ( \
       INSERT INTO event_counts AS c (webhook_id, shard, pending, deliveries) \
       SELECT webhook_id, ",
    shard!(),
    ", sum(pending)::bigint, sum(deliveries)::bigint FROM ( \
         SELECT webhook_id, 0 AS pending, n AS deliveries FROM input \
         UNION ALL SELECT webhook_id, 1, 0 FROM added) AS changes \
       GROUP BY webhook_id ORDER BY webhook_id \
       ON CONFLICT (webhook_id, shard) DO UPDATE \
       SET pending = c.pending + EXCLUDED.pending, deliveries = c.deliveries + EXCLUDED.deliveries) \
     SELECT k.deliveries FROM input i \
     JOIN keyed k ON k.webhook_id = i.webhook_id AND k.event_id = i.event_id ORDER BY i.ord"
);

/// A record to store, and where its outcome goes.
struct Job {
    id: u64,
    record: NewRecord,
    reply: oneshot::Sender<Result<Stored, InboxError>>,
}

/// The queue of records waiting for a statement, and the statements in
/// flight.
#[derive(Default)]
pub(crate) struct Batcher {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    flights: usize,
    next_id: u64,
}

impl Batcher {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `record`; returns its id, and the batch to send at once when
    /// a flight is free (then counted as taken).
    fn enqueue(
        &self,
        record: NewRecord,
        reply: oneshot::Sender<Result<Stored, InboxError>>,
    ) -> (u64, Option<Vec<Job>>) {
        let mut state = self.state();
        let id = state.next_id;
        state.next_id = id.wrapping_add(1);
        state.queue.push_back(Job { id, record, reply });
        if state.flights < FLIGHTS {
            state.flights = state.flights.saturating_add(1);
            (id, Some(take(&mut state.queue)))
        } else {
            (id, None)
        }
    }

    /// The next batch for a flight that finished, or `None` (and one flight
    /// fewer) when nothing is queued: checked and counted under one lock,
    /// so no record is queued behind a flight that is ending.
    fn next(&self) -> Option<Vec<Job>> {
        let mut state = self.state();
        if state.queue.is_empty() {
            state.flights = state.flights.saturating_sub(1);
            None
        } else {
            Some(take(&mut state.queue))
        }
    }

    /// Takes record `id` out of the queue, if no flight took it yet.
    fn withdraw(&self, id: u64) -> bool {
        let mut state = self.state();
        match state.queue.iter().position(|job| job.id == id) {
            Some(at) => state.queue.remove(at).is_some(),
            None => false,
        }
    }
}

/// The queue's first records, up to [`MAX_BATCH`] and [`MAX_BATCH_BYTES`].
fn take(queue: &mut VecDeque<Job>) -> Vec<Job> {
    let mut batch = Vec::new();
    let mut bytes = 0usize;
    while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
        let Some(job) = queue.pop_front() else {
            break;
        };
        bytes = bytes.saturating_add(job.record.body.len());
        batch.push(job);
    }
    batch
}

/// Stores `record`, in the statement of a batch (see the module docs).
pub(crate) async fn store(shared: &Arc<Shared>, record: NewRecord) -> Result<Stored, InboxError> {
    let (reply, mut answer) = oneshot::channel();
    let (id, departing) = shared.stores.enqueue(record, reply);
    if let Some(batch) = departing {
        // The flight is counted as ended by its guard, made before the
        // task: a task dropped before it first runs (a runtime shutting
        // down) gives its flight back too.
        let flight = Flight {
            shared: Arc::clone(shared),
            ended: false,
        };
        // A task of its own: a caller that goes away (a client that hung
        // up) neither cancels the others' statement nor strands the queue.
        tokio::spawn(fly(flight, batch));
    }
    if let Ok(outcome) = tokio::time::timeout(POOL_WAIT, &mut answer).await {
        return outcome.unwrap_or_else(|_| Err(gone()));
    }
    if shared.stores.withdraw(id) {
        return Err(InboxError::new(
            ErrorKind::Storage,
            format!(
                "no PostgreSQL connection: this store waited {} s in the queue behind the \
                 {FLIGHTS} store statements in flight (or their wait for a pooled connection): \
                 the database is slow or a lock holds them; check pg_stat_activity for what \
                 they wait for",
                POOL_WAIT.as_secs()
            ),
        ));
    }
    // Taken into a statement meanwhile: its outcome is the answer.
    answer.await.unwrap_or_else(|_| Err(gone()))
}

/// The error of a store whose statement's task ended without answering.
fn gone() -> InboxError {
    InboxError::new(
        ErrorKind::Closed,
        "the store's batch ended without an answer (a panic, or the runtime shutting down); \
         the event may or may not be stored: the sender's retry will tell",
    )
}

/// A flight in progress: counted as ended when dropped without taking the
/// queue's `None` (a panic, a task dropped by a runtime shutting down).
struct Flight {
    shared: Arc<Shared>,
    ended: bool,
}

impl Drop for Flight {
    fn drop(&mut self) {
        if !self.ended {
            let mut state = self.shared.stores.state();
            state.flights = state.flights.saturating_sub(1);
        }
    }
}

/// Sends `batch`, then the batches queued meanwhile, until none is.
async fn fly(mut flight: Flight, mut batch: Vec<Job>) {
    loop {
        send(&flight.shared, batch).await;
        let Some(next) = flight.shared.stores.next() else {
            flight.ended = true;
            return;
        };
        batch = next;
    }
}

/// Stores one batch and answers each of its callers; gives up on the
/// statement after the store timeout (see `Options::store_timeout`).
async fn send(shared: &Shared, batch: Vec<Job>) {
    let mut client = match shared.connection(Which::Write).await {
        Ok(client) => client,
        Err(error) => {
            for job in batch {
                let _ = job.reply.send(Err(same_error(&error)));
            }
            return;
        }
    };
    let (records, mut replies): (Vec<NewRecord>, Vec<_>) = batch
        .into_iter()
        .map(|job| (job.record, Some(job.reply)))
        .unzip();
    let stored = tokio::time::timeout(
        shared.store_timeout,
        store_all(&mut client, &records, &mut replies),
    )
    .await;
    let new = if let Ok(new) = stored {
        new
    } else {
        // Neither answered nor closed: the connection may still carry
        // the statement's reply, so it goes, not back to the pool.
        let _ = deadpool_postgres::Object::take(client);
        let error = InboxError::new(
            ErrorKind::Storage,
            format!(
                "PostgreSQL did not answer a store statement within {} s; its connection \
                 is closed. The event may or may not be stored: the sender's retry is \
                 counted as a duplicate if it was. Check the network path to the database \
                 and pg_stat_activity",
                shared.store_timeout.as_secs_f64()
            ),
        );
        tracing::error!(records = records.len(), error = %error, "PostgreSQL store statement timed out");
        for reply in replies.iter_mut().filter_map(Option::take) {
            let _ = reply.send(Err(same_error(&error)));
        }
        // Some of them may be stored (one by one, or committed unseen).
        true
    };
    if new {
        shared.notify_ready();
    }
}

/// Stores `records` (together, or one by one) and answers each caller in
/// `replies`, taking its sender as it does; whether any event was new (or
/// may have been).
async fn store_all(
    client: &mut deadpool_postgres::Object,
    records: &[NewRecord],
    replies: &mut [Option<oneshot::Sender<Result<Stored, InboxError>>>],
) -> bool {
    let mut new = false;
    let together = if records.len() > 1 {
        let batch: Vec<&NewRecord> = records.iter().collect();
        match store_many(client, &batch).await {
            Ok(outcomes) => Some(outcomes),
            Err(Failed::Statement(error)) => {
                // Rolled back: nothing of it is stored; one by one below.
                tracing::debug!(records = records.len(), error = %error, "PostgreSQL batch store failed and was rolled back; storing its records one by one");
                None
            }
            Err(Failed::AfterCommit(error)) => {
                // Committed, but its answer does not read: storing again
                // would count every delivery twice. Each caller fails; the
                // sender's retry is a duplicate, as it should be.
                tracing::error!(records = records.len(), error = %error, "PostgreSQL batch store committed but its answer did not read; its deliveries fail and their retries will be duplicates");
                for reply in replies.iter_mut().filter_map(Option::take) {
                    let _ = reply.send(Err(same_error(&error)));
                }
                return true;
            }
        }
    } else {
        None
    };
    match together {
        Some(outcomes) => {
            for (reply, outcome) in replies.iter_mut().zip(outcomes) {
                new |= outcome == Stored::New;
                if let Some(reply) = reply.take() {
                    let _ = reply.send(Ok(outcome));
                }
            }
        }
        None => {
            // Alone, or the batch failed (and rolled back): one by one.
            for (record, reply) in records.iter().zip(replies.iter_mut()) {
                let outcome = store_one(client, record).await;
                new |= matches!(outcome, Ok(Stored::New));
                if let Some(reply) = reply.take() {
                    let _ = reply.send(outcome);
                }
            }
        }
    }
    new
}

/// An error of the same kind and message as `error`, for another caller
/// (an `InboxError` is not `Clone`: its source is a boxed error).
fn same_error(error: &InboxError) -> InboxError {
    let message =
        std::error::Error::source(error).map_or_else(|| error.to_string(), ToString::to_string);
    InboxError::new(error.kind(), message)
}

/// Stores one record with [`STORE`]; when its day has no partition yet,
/// creates it and runs again.
pub(crate) async fn store_one(
    client: &mut deadpool_postgres::Object,
    record: &NewRecord,
) -> Result<Stored, InboxError> {
    let stmt = client.prepare_cached(STORE).await.map_err(storage)?;
    let received_at = millis(record.received_at);
    let mut created = false;
    let row = loop {
        let stored = client
            .query_one(
                &stmt,
                &[
                    &record.webhook_id,
                    &record.event_id,
                    &record.trigger,
                    &record.source_type,
                    &record.source_id,
                    &record.delivery_id,
                    &received_at,
                    &&record.body[..],
                    &record.kind.as_str(),
                ],
            )
            .await;
        match stored {
            Err(error) if !created && partitions::is_missing(&error) => {
                partitions::create(client, partitions::day_of(received_at)).await?;
                created = true;
            }
            other => break other.map_err(storage)?,
        }
    };
    Ok(stored(row.try_get(0).map_err(storage)?))
}

/// The records of a batch, one array element per distinct event, and
/// where each record's outcome is read from.
#[derive(Default)]
struct Columns<'a> {
    webhook_ids: Vec<&'a str>,
    event_ids: Vec<&'a str>,
    triggers: Vec<&'a str>,
    source_types: Vec<Option<&'a str>>,
    source_ids: Vec<Option<&'a str>>,
    delivery_ids: Vec<Option<&'a str>>,
    received_at: Vec<i64>,
    bodies: Vec<&'a [u8]>,
    kinds: Vec<&'a str>,
    /// How many of the batch's records each event has.
    counts: Vec<i64>,
    /// Per record: its event's element, and how many records of the same
    /// event came before it in the batch.
    places: Vec<(usize, i64)>,
}

impl<'a> Columns<'a> {
    /// Groups `records` by event, in order of first arrival: each event's
    /// first record is the one stored.
    fn of(records: &[&'a NewRecord]) -> Self {
        let mut columns = Self::default();
        let mut seen: HashMap<(&str, &str), usize> = HashMap::with_capacity(records.len());
        for record in records {
            let key = (record.webhook_id.as_str(), record.event_id.as_str());
            let element = *seen.entry(key).or_insert_with(|| {
                columns.webhook_ids.push(&record.webhook_id);
                columns.event_ids.push(&record.event_id);
                columns.triggers.push(&record.trigger);
                columns.source_types.push(record.source_type.as_deref());
                columns.source_ids.push(record.source_id.as_deref());
                columns.delivery_ids.push(record.delivery_id.as_deref());
                columns.received_at.push(millis(record.received_at));
                columns.bodies.push(&record.body[..]);
                columns.kinds.push(record.kind.as_str());
                columns.counts.push(0);
                columns.counts.len().saturating_sub(1)
            });
            let before = columns.counts[element];
            columns.counts[element] = before.saturating_add(1);
            columns.places.push((element, before));
        }
        columns
    }

    /// Each record's outcome, from each event's delivery count after the
    /// statement: an event with `n` records here and `d` deliveries now
    /// had `d - n` before; its records are deliveries `d - n + 1`, … in
    /// arrival order (the first of a new event is delivery 1: new).
    fn outcomes(&self, deliveries: &[i64]) -> Result<Vec<Stored>, InboxError> {
        if deliveries.len() != self.counts.len() {
            return Err(InboxError::new(
                ErrorKind::Storage,
                format!(
                    "the batch store returned {} delivery counts for {} events",
                    deliveries.len(),
                    self.counts.len()
                ),
            ));
        }
        Ok(self
            .places
            .iter()
            .map(|&(element, before)| {
                let earlier = deliveries[element].saturating_sub(self.counts[element]);
                stored(earlier.saturating_add(before).saturating_add(1))
            })
            .collect())
    }
}

/// Why a batch store failed: before its commit (nothing stored), or after
/// it (everything stored, the answer unreadable).
enum Failed {
    Statement(InboxError),
    AfterCommit(InboxError),
}

/// Stores `records` with [`STORE_BATCH`]: one statement, one commit.
async fn store_many(
    client: &deadpool_postgres::Object,
    records: &[&NewRecord],
) -> Result<Vec<Stored>, Failed> {
    let columns = Columns::of(records);
    let stmt = client
        .prepare_cached(STORE_BATCH)
        .await
        .map_err(|error| Failed::Statement(storage(error)))?;
    let rows = client
        .query(
            &stmt,
            &[
                &columns.webhook_ids,
                &columns.event_ids,
                &columns.triggers,
                &columns.source_types,
                &columns.source_ids,
                &columns.delivery_ids,
                &columns.received_at,
                &columns.bodies,
                &columns.kinds,
                &columns.counts,
            ],
        )
        .await
        .map_err(|error| Failed::Statement(storage(error)))?;
    let deliveries = rows
        .iter()
        .map(|row| row.try_get::<_, i64>(0))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| Failed::AfterCommit(storage(error)))?;
    columns.outcomes(&deliveries).map_err(Failed::AfterCommit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(event_id: &str) -> NewRecord {
        let body = format!(
            r#"{{"type":"webhook_event","id":"{event_id}","trigger":"FILE.UPLOADED","webhook":{{"id":"4133"}}}}"#
        );
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("in range");
        NewRecord::parse(body.into_bytes(), Some("d-1"), at).expect("a webhook_event")
    }

    #[test]
    fn records_of_one_event_are_one_element_numbered_in_arrival_order() {
        let records = [
            record("e-1"),
            record("e-2"),
            record("e-1"),
            record("e-3"),
            record("e-1"),
        ];
        let refs: Vec<&NewRecord> = records.iter().collect();
        let columns = Columns::of(&refs);
        assert_eq!(columns.event_ids, ["e-1", "e-2", "e-3"]);
        assert_eq!(columns.counts, [3, 1, 1]);
        // e-1 new (3 deliveries now), e-2 known (5 now), e-3 new.
        assert_eq!(
            columns.outcomes(&[3, 5, 1]).expect("outcomes"),
            [
                Stored::New,
                Stored::Duplicate { deliveries: 5 },
                Stored::Duplicate { deliveries: 2 },
                Stored::New,
                Stored::Duplicate { deliveries: 3 },
            ]
        );
        // e-1 known with 4 before: 5, 6, 7.
        assert_eq!(
            columns.outcomes(&[7, 1, 1]).expect("outcomes"),
            [
                Stored::Duplicate { deliveries: 5 },
                Stored::New,
                Stored::Duplicate { deliveries: 6 },
                Stored::New,
                Stored::Duplicate { deliveries: 7 },
            ]
        );
        let error = columns.outcomes(&[3, 1]).expect_err("one count short");
        assert_eq!(
            error.to_string(),
            "inbox storage failed: the batch store returned 2 delivery counts for 3 events"
        );
    }

    /// `sql` with each `$n` replaced as `params` say (the longest first, so
    /// `$10` is not read as `$1` and a `0`).
    fn substituted(sql: &str, params: &[(&str, &str)]) -> String {
        let mut params = params.to_vec();
        params.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
        let mut out = sql.to_owned();
        for (from, to) in params {
            assert!(out.contains(from), "{from} is not in the statement");
            out = out.replace(from, to);
        }
        out
    }

    /// The pgbench scripts of benches/load/postgres.sh are the inbox's own
    /// statements, their parameters given by pgbench variables (`-D`, and a
    /// random event id per transaction); the batch's arrays are built from
    /// them by `array_fill` and `generate_series` (pgbench variables are
    /// numbers or fixed strings). `BOXHOOK_BLESS=1` rewrites the files.
    #[test]
    fn the_pgbench_scripts_run_the_inbox_statements() {
        let single = substituted(
            STORE,
            &[
                ("$1", ":w"),
                ("$2", ":id"),
                ("$3", ":trigger"),
                ("$4", ":stype"),
                ("$5", ":sid"),
                ("$6", ":did"),
                ("$7", ":at"),
                ("$8", ":body"),
                ("$9", ":kind"),
            ],
        );
        let fill = |var: &str, ty: &str| format!("array_fill({var}::{ty}, ARRAY[:b::int])");
        let batch = substituted(
            STORE_BATCH,
            &[
                ("$1::text[]", &fill(":w", "text")),
                (
                    "$2::text[]",
                    "(SELECT array_agg(:id::text || '-' || i) FROM generate_series(1, :b::int) i)",
                ),
                ("$3::text[]", &fill(":trigger", "text")),
                ("$4::text[]", &fill(":stype", "text")),
                ("$5::text[]", &fill(":sid", "text")),
                ("$6::text[]", &fill(":did", "text")),
                ("$7::bigint[]", &fill(":at", "bigint")),
                ("$8::bytea[]", &fill(":body", "bytea")),
                ("$9::text[]", &fill(":kind", "text")),
                ("$10::bigint[]", &fill("1", "bigint")),
            ],
        );
        let header = "-- Generated by the_pgbench_scripts_run_the_inbox_statements \
                      (crates/boxhook-postgres/src/batch.rs): do not edit.\n\
                      \\set id random(1, 9000000000000000000)\n";
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benches/load/pgbench");
        for (file, statement) in [("store.sql", single), ("store_batch.sql", batch)] {
            let expected = format!("{header}{statement};\n");
            let path = dir.join(file);
            if std::env::var_os("BOXHOOK_BLESS").is_some() {
                std::fs::create_dir_all(&dir).expect("mkdir");
                std::fs::write(&path, &expected).expect("write");
            }
            let found = std::fs::read_to_string(&path).unwrap_or_default();
            assert_eq!(
                found,
                expected,
                "{} is not the inbox's statement: run this test with BOXHOOK_BLESS=1",
                path.display()
            );
        }
    }

    #[test]
    fn a_batch_is_closed_by_count_or_by_bytes() {
        let cases = [
            // (records, body bytes each, batch sizes taken)
            (3, 10, vec![3]),
            (MAX_BATCH + 5, 10, vec![MAX_BATCH, 5]),
            (5, MAX_BATCH_BYTES / 2, vec![2, 2, 1]),
            (2, MAX_BATCH_BYTES + 1, vec![1, 1]),
        ];
        for (records, size, expected) in cases {
            let mut queue: VecDeque<Job> = (0..records)
                .map(|i| {
                    let mut record = record(&format!("e-{i}"));
                    record.body = bytes::Bytes::from(vec![b' '; size]);
                    Job {
                        id: i as u64,
                        record,
                        reply: oneshot::channel().0,
                    }
                })
                .collect();
            let mut sizes = Vec::new();
            while !queue.is_empty() {
                sizes.push(take(&mut queue).len());
            }
            assert_eq!(sizes, expected, "{records} records of {size} bytes");
        }
    }
}

/// One batch sent as the queue would send it, on a throwaway server
/// (skipped with a message when PostgreSQL is not installed, unless
/// `BOXHOOK_POSTGRES=required`).
#[cfg(all(test, unix))]
mod on_postgres {
    use super::*;
    use crate::{Options, PgInbox};
    use boxhook::inbox::{Inbox, ListFilter};
    use boxhook_testkit::postgres::Cluster;
    use chrono::{DateTime, TimeDelta, Utc};

    fn record(event_id: &str, at: DateTime<Utc>) -> NewRecord {
        let body = format!(
            r#"{{"type":"webhook_event","id":"{event_id}","trigger":"FILE.UPLOADED","webhook":{{"id":"4133"}}}}"#
        );
        NewRecord::parse(body.into_bytes(), Some("d-1"), at).expect("a webhook_event")
    }

    /// An inbox in schema `schema`, and a plain connection to that schema.
    async fn open(cluster: &Cluster, schema: &str) -> (PgInbox, tokio_postgres::Client) {
        let url = cluster.url();
        let inbox = PgInbox::connect_with(&url, &Options::default().schema(schema).pool_size(4))
            .await
            .expect("connect");
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
            .batch_execute(&format!("SET search_path = {schema}"))
            .await
            .expect("search_path");
        (inbox, client)
    }

    /// Runs `records` through [`send`] as one batch; each caller's answer.
    async fn send_batch(
        inbox: &PgInbox,
        records: Vec<NewRecord>,
    ) -> Vec<Result<Stored, InboxError>> {
        let (batch, answers): (Vec<_>, Vec<_>) = records
            .into_iter()
            .enumerate()
            .map(|(id, record)| {
                let (reply, answer) = oneshot::channel();
                let id = u64::try_from(id).expect("small");
                (Job { id, record, reply }, answer)
            })
            .unzip();
        send(&inbox.shared, batch).await;
        let mut outcomes = Vec::new();
        for answer in answers {
            outcomes.push(answer.await.expect("answered"));
        }
        outcomes
    }

    /// (event id, deliveries) of every stored event, in `seq` order.
    async fn events(inbox: &PgInbox) -> Vec<(String, u64)> {
        inbox
            .list(ListFilter::new())
            .await
            .expect("list")
            .into_iter()
            .map(|entry| (entry.event_id, entry.deliveries))
            .collect()
    }

    /// The counters' sums: (pending, deliveries).
    async fn counters(sql: &tokio_postgres::Client) -> (i64, i64) {
        let row = sql
            .query_one(
                "SELECT sum(pending)::bigint, sum(deliveries)::bigint FROM event_counts",
                &[],
            )
            .await
            .expect("counters");
        (row.get(0), row.get(1))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_statement_counts_duplicates_inside_the_batch_and_against_stored_keys() {
        let Some(cluster) = Cluster::start("batch-dedup") else {
            return;
        };
        let (inbox, sql) = open(&cluster, "dedup").await;
        let now = Utc::now();
        assert_eq!(
            inbox.store(record("e-0", now)).await.expect("store"),
            Stored::New
        );
        let records = [
            record("e-1", now),
            record("e-0", now),
            record("e-1", now),
            record("e-2", now),
            record("e-1", now),
            record("e-0", now),
        ];
        let refs: Vec<&NewRecord> = records.iter().collect();
        let client = inbox.shared.connection(Which::Write).await.expect("client");
        // The statement itself, not the one-by-one fallback.
        let Ok(outcomes) = store_many(&client, &refs).await else {
            panic!("one statement");
        };
        assert_eq!(
            outcomes,
            [
                Stored::New,
                Stored::Duplicate { deliveries: 2 },
                Stored::Duplicate { deliveries: 2 },
                Stored::New,
                Stored::Duplicate { deliveries: 3 },
                Stored::Duplicate { deliveries: 3 },
            ]
        );
        assert_eq!(
            events(&inbox).await,
            [("e-0".into(), 3), ("e-1".into(), 3), ("e-2".into(), 1)]
        );
        assert_eq!(counters(&sql).await, (3, 7));
        assert_eq!(inbox.counts().await.expect("counts").pending, 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_batch_is_stored_one_by_one_and_fails_only_its_bad_record() {
        let Some(cluster) = Cluster::start("batch-failed") else {
            return;
        };
        let (inbox, sql) = open(&cluster, "failed").await;
        sql.batch_execute("ALTER TABLE event_keys ADD CONSTRAINT no_bad CHECK (event_id <> 'bad')")
            .await
            .expect("constraint");
        let at = DateTime::from_timestamp(1_700_000_000, 0).expect("in range");
        let refused = "inbox storage failed: db error: ERROR: new row for relation \
                       \"event_keys\" violates check constraint \"no_bad\"\nDETAIL: Failing row \
                       contains (4133, bad, 1700000000000, 1, f). (SQLSTATE 23514)";
        let records = || {
            vec![
                record("e-1", at),
                record("bad", at),
                record("e-1", at),
                record("e-2", at),
            ]
        };
        // As one statement, the whole batch fails (and rolls back).
        let client = inbox.shared.connection(Which::Write).await.expect("client");
        let together = records();
        let refs: Vec<&NewRecord> = together.iter().collect();
        let Err(Failed::Statement(error)) = store_many(&client, &refs).await else {
            panic!("the statement must fail, before its commit");
        };
        assert!(
            error
                .to_string()
                .contains("violates check constraint \"no_bad\""),
            "{error}"
        );
        drop(client);
        assert_eq!(events(&inbox).await, []);

        let outcomes = send_batch(&inbox, records()).await;
        assert_eq!(outcomes.len(), 4);
        assert_eq!(outcomes[0].as_ref().ok(), Some(&Stored::New));
        let error = outcomes[1].as_ref().expect_err("refused");
        assert_eq!(error.kind(), ErrorKind::Storage);
        assert_eq!(error.to_string(), refused);
        assert_eq!(
            outcomes[2].as_ref().ok(),
            Some(&Stored::Duplicate { deliveries: 2 })
        );
        assert_eq!(outcomes[3].as_ref().ok(), Some(&Stored::New));
        assert_eq!(events(&inbox).await, [("e-1".into(), 2), ("e-2".into(), 1)]);
        assert_eq!(counters(&sql).await, (2, 3));
        let keys: i64 = sql
            .query_one("SELECT count(*) FROM event_keys", &[])
            .await
            .expect("keys")
            .get(0);
        assert_eq!(keys, 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_with_a_day_without_partition_creates_it_and_stores_every_record() {
        let Some(cluster) = Cluster::start("batch-partition") else {
            return;
        };
        let (inbox, sql) = open(&cluster, "parts").await;
        let now = Utc::now();
        let old = DateTime::from_timestamp(1_586_476_800, 0).expect("2020-04-10");
        let outcomes = send_batch(
            &inbox,
            vec![
                record("e-1", now),
                record("e-old", old),
                record("e-old", old + TimeDelta::seconds(1)),
            ],
        )
        .await;
        let outcomes: Vec<Stored> = outcomes
            .into_iter()
            .map(|outcome| outcome.expect("stored"))
            .collect();
        assert_eq!(
            outcomes,
            [
                Stored::New,
                Stored::New,
                Stored::Duplicate { deliveries: 2 }
            ]
        );
        let made: Vec<String> = sql
            .query(
                "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                 WHERE i.inhparent = 'events'::regclass AND c.relname LIKE 'events_2020%'",
                &[],
            )
            .await
            .expect("partitions")
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert_eq!(made, ["events_20200410"]);
        assert_eq!(
            events(&inbox).await,
            [("e-1".into(), 1), ("e-old".into(), 2)]
        );
        assert_eq!(counters(&sql).await, (2, 3));
    }
}
