#!/usr/bin/env bash
# What the PostgreSQL inbox's day partitions cost and save (schema 2 against
# schema 1), on a throwaway durable server (fsync=on, synchronous_commit=on,
# as production) started from Debian's binaries as `nobody`, on a unix
# socket in a temp dir; everything started is stopped and removed.
#
#   store   pgbench, CLIENTS clients for DURATION s, ROUNDS rounds each
#           alternating: schema 1's store (one INSERT … ON CONFLICT) and
#           schema 2's (key, event and counter in one statement), each a
#           new event with a 600-byte body; then the WAL one store writes.
#   prune   examples/prune_cost.rs: EVENTS done events on each of two days,
#           one day's partition dropped whole, the other's events deleted
#           in batches of 1,000 (that partition holds a pending event).
#
#   bash benches/load/pg-partitions.sh   # CLIENTS=16 DURATION=20 ROUNDS=3 EVENTS=500000
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
CLIENTS="${CLIENTS:-16}"
SECONDS_EACH="${DURATION:-20}"
ROUNDS="${ROUNDS:-3}"
EVENTS="${EVENTS:-500000}"

cargo build --release --quiet -p boxhook-cli
cargo build --release --quiet -p boxhook-postgres --example prune_cost
bin="$root/target/release"
pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"

pgdir="$(mktemp -d /tmp/boxhook-pgparts-XXXXXX)"
cleanup() {
  runuser -u nobody -- "$pgbin/pg_ctl" -D "$pgdir/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$pgdir"
}
trap cleanup EXIT
chown nobody "$pgdir"
runuser -u nobody -- "$pgbin/initdb" -D "$pgdir/data" -U postgres -A trust -E UTF8 >/dev/null
runuser -u nobody -- "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w \
  -o "-p 5432 -k $pgdir -c listen_addresses='' -c fsync=on -c synchronous_commit=on -c max_connections=100" \
  start >/dev/null
url="postgres://postgres@localhost/postgres?host=$pgdir&port=5432"
psql() { "$pgbin/psql" -h "$pgdir" -p 5432 -U postgres -X -q -t -A "$@"; }
pgbench() { "$pgbin/pgbench" -h "$pgdir" -p 5432 -U postgres -n -M prepared "$@" postgres; }

echo "machine: $(nproc) cores, $("$pgbin/postgres" --version)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

# Schema 1 as boxhook created it, in `v1`; schema 2 by `boxhook migrate`, in `v2`.
psql -c "CREATE SCHEMA v1"
sed -n '/^const V1: &str = "/,/^";/p' crates/boxhook-postgres/src/schema.rs | sed '1d;$d' \
  | PGOPTIONS="-c search_path=v1" psql >/dev/null
"$bin/boxhook" migrate --store "$url" --schema v2 >/dev/null
now_ms="$(( $(date +%s) * 1000 ))"
cat >"$pgdir/v1.sql" <<'SQL'
\set n random(1, 2000000000)
INSERT INTO v1.events (webhook_id, event_id, trigger_name, source_type, source_id, delivery_id,
  received_at, body, kind)
VALUES ('w', 'e-' || :n, 'FILE.UPLOADED', 'file', '12', 'd-1', :r,
  convert_to(repeat('x', 600), 'UTF8'), 'v2')
ON CONFLICT (webhook_id, event_id) DO UPDATE SET deliveries = events.deliveries + 1
RETURNING deliveries;
SQL
# The statement PgInbox::store sends (crates/boxhook-postgres/src/inbox.rs, STORE).
cat >"$pgdir/v2.sql" <<'SQL'
\set n random(1, 2000000000)
WITH keyed AS (
  INSERT INTO v2.event_keys (webhook_id, event_id, received_at) VALUES ('w', 'e-' || :n, :r)
  ON CONFLICT (webhook_id, event_id) DO UPDATE SET deliveries = event_keys.deliveries + 1
  RETURNING deliveries),
added AS (
  INSERT INTO v2.events (webhook_id, event_id, trigger_name, source_type, source_id,
    delivery_id, received_at, body, kind)
  SELECT 'w', 'e-' || :n, 'FILE.UPLOADED', 'file', '12', 'd-1', :r,
    convert_to(repeat('x', 600), 'UTF8'), 'v2' FROM keyed WHERE deliveries = 1 RETURNING 1)
INSERT INTO v2.event_counts AS c (webhook_id, shard, pending, deliveries)
SELECT 'w', (pg_backend_pid() % 16)::smallint, (SELECT count(*) FROM added), 1
ON CONFLICT (webhook_id, shard) DO UPDATE
SET pending = c.pending + EXCLUDED.pending, deliveries = c.deliveries + 1
RETURNING (SELECT deliveries FROM keyed);
SQL
for round in $(seq 1 "$ROUNDS"); do
  for schema in v1 v2; do
    tps="$(pgbench -c "$CLIENTS" -j 2 -T "$SECONDS_EACH" -D r="$now_ms" -f "$pgdir/$schema.sql" \
      | sed -n 's/^tps = \([0-9.]*\).*/\1/p')"
    echo "store, schema ${schema#v}, round $round: $tps stores/s"
  done
done
psql -c "CHECKPOINT" >/dev/null
for schema in v1 v2; do
  # After a first pass (full-page images after the checkpoint), the steady state.
  pgbench -c 8 -j 2 -t 500 -D r="$now_ms" -f "$pgdir/$schema.sql" >/dev/null
  start="$(psql -c "SELECT pg_current_wal_lsn()")"
  pgbench -c 8 -j 2 -t 2000 -D r="$now_ms" -f "$pgdir/$schema.sql" >/dev/null
  end="$(psql -c "SELECT pg_current_wal_lsn()")"
  echo "store, schema ${schema#v}: $(psql -c "SELECT round(pg_wal_lsn_diff('$end', '$start') / 16000)") bytes of WAL per store"
done
"$bin/examples/prune_cost" "$url" "$EVENTS"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
