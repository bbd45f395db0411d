#!/usr/bin/env bash
# Receivers and workers on PostgreSQL against SQLite, one run:
#   serve on SQLite            one `boxhook serve --inbox F`
#   serve on Postgres          one `boxhook serve --store postgres://…`
#   2 x serve on Postgres      two receivers on the same database, each
#                              loaded by its own wrk with its own events
#   pgbench, 1 row             PostgreSQL's own ceiling: the inbox's single-row
#                              store statement, POOL connections (serve's pool),
#                              just before and after the 1-receiver row (mean)
#   pgbench, batched           the inbox's batch statement, FLIGHTS connections
#                              (serve's store statements in flight), as many
#                              rows per statement as serve's batches had
#   work --exec true           a no-op command per event (SQLite, Postgres),
#                              WORK_SECONDS on the events stored above
#   work --pipe                a trivial Python handler (one `ok` per line)
#   work --forward             POST, signed like Box, to a local 200 server
#   library worker             worker_noop: the library Worker with a no-op
#                              handler, CONCURRENCY workers, one event per
#                              round trip and BATCH per round trip
#   graphile-worker            the npm job queue, no-op task, CONCURRENCY
#                              jobs at once, on the same server, without and
#                              with its batching (localQueue BATCH); the
#                              script installs it into a temp dir (npm) and
#                              removes it; both drain WORKER_COUNT jobs,
#                              sized from a probe of the batched worker so
#                              that each row lasts about WORKER_SECONDS
# PostgreSQL is a throwaway durable server (fsync=on, synchronous_commit=on,
# as production) started from Debian's binaries as `nobody`, on a unix
# socket in a temp dir, with pg_stat_statements (to count serve's batches).
# 127.0.0.1 only; everything started is stopped.
#
# The corpus is sized from a measured rate: a 2 s probe of serve on SQLite
# (the fastest row) with a small corpus, then MARGIN times that rate for
# DURATION seconds per half of the corpus (COUNT=N overrides); a row that
# runs out of new deliveries makes the serve rows run again, larger.
#
#   bash benches/load/postgres.sh   # DURATION=8 CONNECTIONS=32 CONCURRENCY=8 WORK_SECONDS=15 MARGIN=2
#                                   # WORK_BATCH=64 WORK_TIMEOUT=4 BATCH=64 WORKER_SECONDS=10
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
DURATION="${DURATION:-8}"
CONNECTIONS="${CONNECTIONS:-32}"
CONCURRENCY="${CONCURRENCY:-8}"
SIZE="${SIZE:-3072}"
MARGIN="${MARGIN:-2}"
# serve's PostgreSQL pool (boxhook_postgres::Options' default) and its
# store statements in flight (crates/boxhook-postgres/src/batch.rs, FLIGHTS).
POOL=16
FLIGHTS="$(sed -n 's/^pub(crate) const FLIGHTS: usize = \([0-9]*\);/\1/p' crates/boxhook-postgres/src/batch.rs)"
out="$root/target/load-pg"
rm -rf "$out"; mkdir -p "$out"

cargo build --release --quiet -p boxhook-benches --bins
cargo build --release --quiet -p boxhook-cli
# Copies: a build sharing the target directory cannot swap them mid-run.
mkdir -p "$out/bin"
for b in boxhook sign_corpus bare_server fill_store worker_noop; do cp "${CARGO_TARGET_DIR:-$root/target}/release/$b" "$out/bin/"; done
bin="$out/bin"
pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"

pids=()
pgdir="$(mktemp -d /tmp/boxhook-pgbench-XXXXXX)"
source "$root/benches/load/graphile.sh"
cleanup() {
  graphile_cleanup
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  runuser -u nobody -- "$pgbin/pg_ctl" -D "$pgdir/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$pgdir"
}
trap cleanup EXIT
chown nobody "$pgdir"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
runuser -u nobody -- "$pgbin/initdb" -D "$pgdir/data" -U postgres -A trust -E UTF8 >/dev/null
runuser -u nobody -- "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w \
  -o "-p $port -k $pgdir -c listen_addresses='' -c fsync=on -c synchronous_commit=on -c max_connections=200 -c shared_preload_libraries=pg_stat_statements" start >/dev/null
for db in bench; do runuser -u nobody -- "$pgbin/createdb" -h "$pgdir" -p "$port" -U postgres "$db"; done
pg() { echo "postgres://postgres@localhost/$1?host=$pgdir&port=$port"; }

echo "machine: $(nproc) cores, $(rustc --version), $("$pgbin/postgres" --version)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
keys=(--primary-key SamplePrimaryKey --secondary-key SampleSecondaryKey)
# serve NAME STORE-ARGS...: starts a receiver, sets $url.
serve() {
  local name="$1"; shift
  timeout --signal=TERM "$((DURATION + 120))" "$bin/boxhook" "${keys[@]}" serve --listen 127.0.0.1:0 "$@" \
    >"$out/$name.stdout" 2>"$out/$name.stderr" &
  pids+=("$!")
  for _ in $(seq 1 200); do
    url="$(sed -n 's|^listening on \(http://127\.0\.0\.1:[0-9]*/\).*|\1|p' "$out/$name.stdout" 2>/dev/null || true)"
    [[ -n "$url" ]] && return 0
    sleep 0.1
  done
  echo "postgres.sh: $name did not start; see $out/$name.stderr" >&2; exit 1
}
# load NAME CORPUS THREADS CONNECTIONS URL: wrk, prints requests/s.
load() {
  BOXHOOK_CORPUS="$2" BOXHOOK_THREADS="$3" timeout "$((DURATION + 60))" \
    wrk -t"$3" -c"$4" -d"${DURATION}s" --latency -s "$root/benches/load/deliveries.lua" "$5" >"$out/$1.wrk" 2>&1 || true
  local result; result="$(grep '^BOXHOOK_RESULT' "$out/$1.wrk")"
  get() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$result"; }
  [[ "$(get non2xx)" == 0 ]] || { echo "postgres.sh: $1: $result" >&2; exit 1; }
  # Out of new deliveries: the rate is noted, and the serve rows run again
  # with a corpus sized from it.
  [[ "$(get repeats)" == 0 ]] || echo "$1 $(get requests) $(get duration_us)" >>"$out/ran-out"
  awk -v r="$(get requests)" -v d="$(get duration_us)" 'BEGIN { printf "%.0f", r / (d / 1e6) }'
}
stop_all() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; pids=(); }

# The probe: serve on SQLite for 2 s over a small corpus (repeats allowed),
# then the corpus for the runs: each half (wrk threads 0-1 and 2-3) holds
# MARGIN x that rate x DURATION deliveries. On a shared machine the rate can
# change between the probe and the runs: a row that runs out of new
# deliveries makes the serve rows run again, on fresh stores, with a corpus
# sized from the fastest rate seen (up to 3 rounds).
if [[ -z "${COUNT:-}" ]]; then
  "$bin/sign_corpus" load --count 40000 --size "$SIZE" --threads 2 --out "$out/probe" >/dev/null
  serve probe --inbox "$out/probe.sqlite"
  BOXHOOK_CORPUS="$out/probe" BOXHOOK_THREADS=2 timeout 60 \
    wrk -t2 -c"$CONNECTIONS" -d2s -s "$root/benches/load/deliveries.lua" "$url" >"$out/probe.wrk" 2>&1 || true
  stop_all
  probe="$(sed -n 's/.* requests=\([0-9]*\) duration_us=\([0-9]*\).*/\1 \2/p' "$out/probe.wrk")"
  [[ -n "$probe" ]] || { echo "postgres.sh: the probe did not run; see $out/probe.wrk" >&2; exit 1; }
  COUNT="$(awk -v p="$probe" -v m="$MARGIN" -v d="$DURATION" 'BEGIN { split(p, a, " "); r = a[1] / (a[2] / 1e6); printf "%d", 2 * int(m * r * d + 1000) }')"
  echo "probe: serve on SQLite, $(awk -v p="$probe" 'BEGIN { split(p, a, " "); printf "%.0f", a[1] / (a[2] / 1e6) }') requests/s for 2 s: corpus of $COUNT deliveries"
  rm -f "$out"/probe*
fi
# PostgreSQL's own ceilings: pgbench running the inbox's statements
# (benches/load/pgbench/*.sql, generated from the crate's constants and
# checked by its tests) on a migrated database, for DURATION s each, with
# the same server settings, the body of the corpus's first delivery (as
# bytea text, backslashes doubled), and serve's connection counts. The
# single-row ceiling runs just before and just after serve's 1-receiver
# row, and their mean is the ratios' reference: on a shared machine the
# rate drifts from one minute to the next.
"$bin/boxhook" migrate --store "$(pg bench)" >/dev/null
pgbench_tps() {
  local clients="$1"; shift
  "$pgbin/pgbench" -h "$pgdir" -p "$port" -U postgres -n -M prepared -c "$clients" -j 2 -T "$DURATION" \
    -D w=1847502 -D trigger=FILE.UPLOADED -D stype=file -D sid=12345 -D did=d-1 \
    -D at="$(( $(date +%s) * 1000 ))" -D body="$(cat "$out/body")" -D kind=v2 "$@" bench 2>"$out/pgbench.err" \
    | sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}
# The serve rows, on fresh stores.
serve_rows() {
rm -f "$out"/inbox.sqlite* "$out/other".*
for db in one two; do
  psql -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
done
psql -d one -c "CREATE EXTENSION pg_stat_statements"
"$bin/sign_corpus" load --count "$COUNT" --size "$SIZE" --threads 4 --out "$out/corpus"
ln -s "$out/corpus.2" "$out/other.0"; ln -s "$out/corpus.3" "$out/other.1"
python3 -c 'import sys
f = open(sys.argv[1], "rb"); n = int(f.readline()); body = f.read(n).split(b"\r\n\r\n", 1)[1]
sys.stdout.buffer.write(body.replace(b"\\", b"\\\\"))' "$out/corpus.0" >"$out/body"

serve sqlite --inbox "$out/inbox.sqlite"; sqlite_rps="$(load sqlite "$out/corpus" 2 "$CONNECTIONS" "$url")"; stop_all
# WAL flushes against commits: how many stores one fsync carried.
walstat() {
  "$pgbin/psql" -h "$pgdir" -p "$port" -U postgres -d one -At -c \
    "SELECT (SELECT wal_sync FROM pg_stat_wal) || ' ' || (SELECT xact_commit FROM pg_stat_database WHERE datname = 'one')"
}
# CPU ticks (user + system) of the given processes, and of the whole machine.
ticks_of() { local t=0 p; for p in "$@"; do [[ -r "/proc/$p/stat" ]] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
machine_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
single_before="$(pgbench_tps "$POOL" -f "$root/benches/load/pgbench/store.sql")"
serve pg1 --store "$(pg one)"; sleep 1; psql -d one -c "SELECT pg_stat_statements_reset()" >/dev/null; before="$(walstat)"
receiver="$(pgrep -P "${pids[-1]}")"
cpu0=("$(ticks_of "$receiver")" "$(ticks_of $(pgrep -u nobody postgres))" "$(machine_ticks)")
pg1_rps="$(load pg1 "$out/corpus" 2 "$CONNECTIONS" "$url")"; after="$(walstat)"
cpu1=("$(ticks_of "$receiver")" "$(ticks_of $(pgrep -u nobody postgres))" "$(machine_ticks)")
stop_all
single_after="$(pgbench_tps "$POOL" -f "$root/benches/load/pgbench/store.sql")"
cpu_split="$(awk -v r="$((cpu1[0] - cpu0[0]))" -v p="$((cpu1[1] - cpu0[1]))" -v m="$((cpu1[2] - cpu0[2]))" \
  'BEGIN { printf "receiver %.0f %%, PostgreSQL %.0f %%, the rest (wrk, kernel) %.0f %% of %.1f CPU-seconds", 100 * r / m, 100 * p / m, 100 * (m - r - p) / m, m / 100 }')"
read -r sync0 commit0 <<<"$before"; read -r sync1 commit1 <<<"$after"
group="$(awk -v s="$((sync1 - sync0))" -v c="$((commit1 - commit0))" 'BEGIN { printf "%d WAL fsyncs for %d commits: %.1f commits per fsync", s, c, c / s }')"
# serve's store statements during the 1-receiver run: single-row ones
# (alone) and batches (rows returned: one per event).
read -r singles batches batched <<<"$(psql -d one -F ' ' -c "SELECT
    coalesce(sum(calls) FILTER (WHERE query LIKE 'WITH keyed AS%'), 0),
    coalesce(sum(calls) FILTER (WHERE query LIKE 'WITH input AS%'), 0),
    coalesce(sum(rows) FILTER (WHERE query LIKE 'WITH input AS%'), 0)
  FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'one')")"
mean_batch="$(awk -v s="$singles" -v b="$batches" -v r="$batched" 'BEGIN { printf "%.1f", (s + r) / (s + b) }')"
batches_line="$singles statements of 1 row, $batches of several ($batched rows): $mean_batch rows per statement"
serve pg2a --store "$(pg two)"; url_a="$url"; serve pg2b --store "$(pg two)"; url_b="$url"
load pg2a "$out/corpus" 2 "$((CONNECTIONS / 2))" "$url_a" >"$out/pg2a.rps" &
loader=$!
load pg2b "$out/other" 2 "$((CONNECTIONS / 2))" "$url_b" >"$out/pg2b.rps"
wait "$loader"
pg2_rps="$(( $(cat "$out/pg2a.rps") + $(cat "$out/pg2b.rps") ))"; stop_all
}
psql() { "$pgbin/psql" -h "$pgdir" -p "$port" -U postgres -X -q -At "$@"; }
for round in 1 2 3; do
  rm -f "$out/ran-out"
  serve_rows
  [[ -f "$out/ran-out" ]] || break
  fastest="$(awk '{ r = $2 / ($3 / 1e6); if (r > m) m = r } END { printf "%.0f", m }' "$out/ran-out")"
  COUNT="$(awk -v r="$fastest" -v m="$MARGIN" -v d="$DURATION" -v c="$COUNT" 'BEGIN { n = 2 * int(m * r * d + 1000); print (n > 2 * c ? n : 2 * c) }')"
  echo "round $round: $(cut -d' ' -f1 "$out/ran-out" | paste -sd, -) ran out of new deliveries (up to $fastest requests/s): again with $COUNT"
done
[[ ! -f "$out/ran-out" ]] || { echo "postgres.sh: still out of new deliveries after 3 rounds: set COUNT" >&2; exit 1; }
echo "load after serving: $(cut -d' ' -f1-3 /proc/loadavg)"

batch_rows="$(awk -v m="$mean_batch" 'BEGIN { r = int(m + 0.5); print (r < 2 ? 2 : r) }')"
single_tps="$(awk -v a="$single_before" -v b="$single_after" 'BEGIN { printf "%.0f", (a + b) / 2 }')"
batch_tps="$(pgbench_tps "$FLIGHTS" -D b="$batch_rows" -f "$root/benches/load/pgbench/store_batch.sql")"
[[ -n "$single_before" && -n "$single_after" && -n "$batch_tps" ]] || { echo "postgres.sh: pgbench failed; see $out/pgbench.err" >&2; exit 1; }
batch_rps="$(awk -v t="$batch_tps" -v b="$batch_rows" 'BEGIN { printf "%.0f", t * b }')"
single_rps="$(printf '%.0f' "$single_tps")"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "load after pgbench: $(cut -d' ' -f1-3 /proc/loadavg)"

# work NAME STORE HANDLER-ARGS...: runs a worker for WORK_SECONDS on events
# already stored, then SIGTERM; prints events done per second.
WORK_SECONDS="${WORK_SECONDS:-15}"
# Every work row claims up to WORK_BATCH events per round trip; `work` caps
# --batch at --lease / --timeout (300 / 60 = 5 by default), so the rows set
# a --timeout that lets the batch through, as a fast handler's deployment
# would.
WORK_BATCH="${WORK_BATCH:-64}"
WORK_TIMEOUT="${WORK_TIMEOUT:-4}"
done_in() {
  # The last line: "N event(s)", or "50 of N done event(s), newest first; …".
  "$bin/boxhook" inbox list --store "$1" --state done | tail -n 1 \
    | sed -n -e 's/^[0-9]* of \([0-9]*\) .*/\1/p;t' -e 's/^\([0-9]*\) .*/\1/p'
}
work() {
  local name="$1" store="$2"; shift 2
  local before start end after
  before="$(done_in "$store")"; start="$(date +%s.%N)"
  "$bin/boxhook" "${keys[@]}" work --store "$store" --concurrency "$CONCURRENCY" --grace 5 \
    --batch "$WORK_BATCH" --timeout "$WORK_TIMEOUT" "$@" \
    >"$out/$name.out" 2>"$out/$name.err" &
  local worker=$!
  local pg0 m0; pg0="$(ticks_of $(pgrep -u nobody postgres))"; m0="$(machine_ticks)"
  sleep "$WORK_SECONDS"
  # Where the CPU went, sampled before the stop: the worker itself, its
  # handlers (live children and those already reaped), PostgreSQL.
  local own tree pg1 m1
  own="$(ticks_of "$worker")"; tree="$(tree_ticks "$worker")"
  pg1="$(ticks_of $(pgrep -u nobody postgres))"; m1="$(machine_ticks)"
  kill -TERM "$worker"; wait "$worker" || true
  end="$(date +%s.%N)"; after="$(done_in "$store")"
  local left; left="$("$bin/boxhook" inbox list --store "$store" --state pending --limit 1 | grep -c . || true)"
  awk -v n="$((after - before))" -v s="$start" -v e="$end" 'BEGIN { printf "%d events in %.1f s: %.0f/s", n, e - s, n / (e - s) }'
  # A store emptied before the end: the rate is a lower bound.
  [[ "$left" -gt 1 ]] || printf ' (ran out of pending events: at least this)'
  awk -v w="$own" -v h="$((tree - own))" -v p="$((pg1 - pg0))" -v m="$((m1 - m0))" -v n="$((after - before))" \
    'BEGIN { printf "; CPU: worker %.0f %%, its handlers %.0f %%, PostgreSQL %.0f %% of %.1f CPU-s (%.0f, %.0f and %.0f µs per event)",
      100 * w / m, 100 * h / m, 100 * p / m, m / 100, w * 1e4 / n, h * 1e4 / n, p * 1e4 / n }'
}
# tree_ticks PID: CPU ticks of PID, of its children already reaped, and of
# its live descendants.
tree_ticks() {
  local t child
  t="$(awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat" 2>/dev/null || echo 0)"
  for child in $(pgrep -P "$1"); do t=$((t + $(tree_ticks "$child"))); done
  echo "$t"
}
# The trivial --pipe handler: one `ok` per line, Python as in the README.
printf 'import sys\nfor line in sys.stdin.buffer:\n    print("ok", flush=True)\n' >"$out/ok_pipe.py"
work_sqlite="$(work work-sqlite "sqlite:$out/inbox.sqlite" --exec true)"
work_pg="$(work work-pg "$(pg one)" --exec true)"
pipe_pg="$(work pipe-pg "$(pg one)" --pipe "python3 $out/ok_pipe.py")"
timeout 600 "$bin/bare_server" --listen 127.0.0.1:0 --for-seconds 500 >"$out/bare.stdout" 2>&1 &
pids+=("$!")
sleep 0.5
bare="$(sed -n 's|^listening on \(http://127\.0\.0\.1:[0-9]*\).*|\1/|p' "$out/bare.stdout")"
forward_pg="$(work forward-pg "$(pg two)" --forward "$bare")"
stop_all

# The library worker and graphile-worker, no-op handlers, same server: each
# drains WORKER_COUNT jobs from a database of its own. WORKER_COUNT comes
# from a probe (the batched worker on 5,000 events), so that a faster
# machine gets more jobs, not a shorter, noisier row.
BATCH="${BATCH:-64}"
WORKER_SECONDS="${WORKER_SECONDS:-10}"
for db in wprobe w1 wb gw gwq; do runuser -u nobody -- "$pgbin/createdb" -h "$pgdir" -p "$port" -U postgres "$db"; done
# noop DB EVENTS BATCH: fills DB with EVENTS pending events, drains them,
# prints "N events in S s: R/s".
noop() {
  "$bin/fill_store" --store "$(pg "$1")" --events "$2" --pending "$2" \
    --from-ms "$(( $(date +%s) * 1000 - $2 ))" --step-ms 1 >"$out/$1.fill" 2>&1
  timeout 600 "$bin/worker_noop" --store "$(pg "$1")" --concurrency "$CONCURRENCY" --batch "$3" >"$out/$1.out" 2>&1 || {
    echo "postgres.sh: worker_noop failed; see $out/$1.out" >&2; exit 1; }
  local result; result="$(grep '^WORKER_RESULT' "$out/$1.out")"
  [[ "$(sed -n 's/.* events=\([0-9]*\).*/\1/p' <<<"$result")" == "$2" ]] || { echo "postgres.sh: $1: $result" >&2; exit 1; }
  sed -n 's/.* events=\([0-9]*\) seconds=\([0-9.]*\) per_second=\([0-9]*\).*/\1 events in \2 s: \3\/s/p' <<<"$result"
}
rate_of() { awk -F': ' '{ sub("/s", "", $2); print $2 }' <<<"$1"; }
probe_w="$(noop wprobe 5000 "$BATCH")"
WORKER_COUNT="${WORKER_COUNT:-$(awk -v r="$(rate_of "$probe_w")" -v s="$WORKER_SECONDS" 'BEGIN { n = int(r * s); print (n < 5000 ? 5000 : (n > 2000000 ? 2000000 : n)) }')}"
echo "probe: the batched worker, $probe_w: $WORKER_COUNT jobs per worker row"
noop1_pg="$(noop w1 "$WORKER_COUNT" 1)"
noopb_pg="$(noop wb "$WORKER_COUNT" "$BATCH")"
graphile_install
gw_pg="$(graphile_noop "$(pg gw)" "$WORKER_COUNT" "$CONCURRENCY")"
gwq_pg="$(graphile_noop "$(pg gwq)" "$WORKER_COUNT" "$CONCURRENCY" "$BATCH")"
graphile_cleanup

echo
echo "| run | figure |"
echo "|---|---:|"
echo "| serve, SQLite (wrk -t2 -c$CONNECTIONS) | $sqlite_rps deliveries/s |"
echo "| pgbench, the inbox's single-row store, $POOL connections, before and after the 1-receiver row | $single_rps rows/s (mean of $(printf '%.0f' "$single_before") and $(printf '%.0f' "$single_after")) |"
echo "| pgbench, the inbox's batch store, $FLIGHTS connections, $batch_rows rows per statement | $batch_rps rows/s ($batch_tps statements/s) |"
echo "| serve, PostgreSQL, 1 receiver (wrk -t2 -c$CONNECTIONS) | $pg1_rps deliveries/s: $(ratio "$pg1_rps" "$single_rps") x single-row, $(ratio "$pg1_rps" "$batch_rps") x batched |"
echo "| serve, PostgreSQL, 2 receivers, same database (2 x wrk -t2 -c$((CONNECTIONS / 2))) | $pg2_rps deliveries/s: $(ratio "$pg2_rps" "$single_rps") x single-row, $(ratio "$pg2_rps" "$batch_rps") x batched |"
echo "| serve's store statements, 1 receiver (pg_stat_statements) | $batches_line |"
echo "| group commit, 1 receiver (PostgreSQL's own) | $group |"
echo "| CPU during the 1-receiver run (/proc, ticks of 10 ms) | $cpu_split |"
echo "| work --exec true, SQLite, --concurrency $CONCURRENCY --batch $WORK_BATCH --timeout $WORK_TIMEOUT | $work_sqlite |"
echo "| work --exec true, PostgreSQL, same flags | $work_pg |"
echo "| work --pipe (trivial Python handler), PostgreSQL, same flags | $pipe_pg |"
echo "| work --forward (local 200 server), PostgreSQL, same flags | $forward_pg |"
echo "| work --pipe / work --exec, PostgreSQL (goal >= 10) | $(ratio "$(rate_of "$pipe_pg")" "$(rate_of "$work_pg")") |"
echo "| work --forward / serve on PostgreSQL, 1 receiver (goal >= 0.5) | $(ratio "$(rate_of "$forward_pg")" "$pg1_rps") |"
echo "| library worker, no-op handler, $CONCURRENCY workers, one event per round trip | $noop1_pg |"
echo "| library worker, no-op handler, $CONCURRENCY workers, batch $BATCH | $noopb_pg |"
echo "| graphile-worker, no-op task, concurrency $CONCURRENCY | $gw_pg |"
echo "| graphile-worker, no-op task, concurrency $CONCURRENCY, localQueue $BATCH | $gwq_pg |"
echo "| library worker / graphile-worker: unbatched, batched (goal >= 1) | $(ratio "$(rate_of "$noop1_pg")" "$(rate_of "$gw_pg")"), $(ratio "$(rate_of "$noopb_pg")" "$(rate_of "$gwq_pg")") |"
echo
echo "load average (1/5/15 min) at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
